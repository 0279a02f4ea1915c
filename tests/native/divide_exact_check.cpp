// compat.hpp's divide_exact against the divider, on many hard and random cases.
//
// divide_exact divides a sequence by its total with a reciprocal, a Newton step
// and a Markstein step (fused multiply-adds) instead of the divider; it must
// give the correctly rounded quotient, so the bits of v / d, whenever d and v
// are in its range. The Python tests check a few hundred thousand cases through
// _core.divide_exact; this checks tens of millions (argument: rounds of 4096),
// each vector tier this CPU has. Cases: divisors with significands just below 2
// (RN(1/d) far from 1/d), near 1, short (3, 5, 7 ...) and random, over the whole
// range [2^-400, 2^400]; numerators whose quotients lie a few ulps from a
// rounding midpoint, exact multiples, random values, zeros of both signs.
// Exit status 1 on any difference (the first ten are printed).
//
// Build and run (tests/native/run.sh does): g++ -std=c++17 -O2 -ffp-contract=off
//   -I csrc/include tests/native/divide_exact_check.cpp -o /tmp/divide_check && /tmp/divide_check 20000
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "acme/compat.hpp"

using namespace acme::core;

namespace {

std::uint64_t g_state = 42;
std::uint64_t next() {  // splitmix64
    std::uint64_t z = (g_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
double from_bits(std::uint64_t b) {
    double d;
    std::memcpy(&d, &b, 8);
    return d;
}
std::uint64_t bits(double d) {
    std::uint64_t b;
    std::memcpy(&b, &d, 8);
    return b;
}
constexpr std::uint64_t kMant = (1ull << 52) - 1;
double significand(std::uint64_t m) { return from_bits((1023ull << 52) | (m & kMant)); }  // [1, 2)

double divisor(long round) {
    std::uint64_t m;
    switch (round % 5) {
        case 0: m = next(); break;                             // random
        case 1: m = kMant - next() % 64; break;                // just below 2
        case 2: m = next() % 64; break;                        // just above 1
        case 3: m = (next() % 1024) << 42; break;              // short: 3, 5, 7 ... scaled
        default: m = (1ull << 51) | (next() % 16); break;      // about 1.5
    }
    return std::ldexp(significand(m), static_cast<int>(next() % 801) - 400);
}

double numerator(double d) {
    const int e = static_cast<int>(next() % 400) - 399;  // |v / d| in [2^-399, 2)
    double v;
    switch (next() % 3) {
        case 0: {  // a few ulps from a midpoint of the quotient
            const double q = std::ldexp(significand(next()), e);
            v = (q + std::ldexp(1.0, std::ilogb(q) - 53)) * d;
            v = from_bits(bits(v) + next() % 7 - 3);
            break;
        }
        case 1: v = std::ldexp(static_cast<double>(next() % 1000000 + 1), e - 20) * d; break;  // often exact
        default: v = std::ldexp(significand(next()), e) * d;
    }
    if (next() % 50 == 0) v = 0.0;
    if (next() % 2) v = -v;  // -0.0 too
    if (v != 0.0 && !(std::fabs(v) >= d * 0x1p-400 && std::fabs(v) <= d * 0x1p+400)) v = d / 3;
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    const long rounds = argc > 1 ? std::atol(argv[1]) : 20000;
    std::vector<int> tiers;
    for (int t : {kAvx2, kAvx512})
        if (tier_available(t) && set_tier(t) && divide_exact_fn() != nullptr) tiers.push_back(t);
    if (tiers.empty()) {
        std::printf("divide_exact: no vector tier with FMA on this CPU (the divider is used): nothing to check\n");
        return 0;
    }
    const int n = 4096 + 3;  // the vector loop and its tail
    std::vector<double> v(n), got(n);
    long checked = 0, bad = 0;
    for (long round = 0; round < rounds; ++round) {
        const double d = divisor(round);
        for (double& x : v) x = numerator(d);
        for (int t : tiers) {
            set_tier(t);
            got = v;
            divide_exact(got.data(), n, d);
            for (int i = 0; i < n; ++i, ++checked) {
                if (bits(got[i]) == bits(v[i] / d)) continue;
                if (bad++ < 10)
                    std::printf("DIFFERS on %s: %a / %a = %a, divide_exact gave %a\n", kTierNames[t], v[i], d, v[i] / d,
                                got[i]);
            }
        }
    }
    std::printf("divide_exact: %ld divisions on", checked);
    for (int t : tiers) std::printf(" %s", kTierNames[t]);
    std::printf(", %ld differ from the divider\n", bad);
    return bad != 0;
}
