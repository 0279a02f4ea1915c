// The drop-in layer's per-point passes (acme_fast.compat, SPEC section 6): the
// published method-2 functions return per-point arrays, so they cannot use the
// histogram kernels; these build the same arrays in one pass each, with the
// same floating-point operations in the same order as the numpy code they
// replace (which is the published code's order), so the outputs are the same
// bits. The transcendental functions (arctan, arccos) stay in numpy, on the
// kept points only, so they are numpy's on every machine.
#pragma once

#include <memory>
#include <mutex>

#include "common.hpp"
#include "kattr.hpp"

#if ACME_X86_SIMD
#include <immintrin.h>
// The AVX-512 builds of the compat passes: GCC's auto-vectoriser keeps to 256-bit vectors unless
// told to prefer 512 (Clang: min_vector_width). Measured against the AVX2 builds at N = 4000,
// L = 2048, 2 threads: spherical pass 29.7-35.6 -> 23.8-28.7 ms, process_attribution_map (with
// divide_exact) 30.1-30.6 -> 27.8-28.9 ms.
#if defined(__clang__)
#define ACME_COMPAT_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"), min_vector_width(512)))
#else
#define ACME_COMPAT_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,prefer-vector-width=512")))
#endif
#endif

namespace acme::core {

// process_attribution_map: gauge correction, division by the sequence's total
// norm, forward wrap-around window sum of k terms, published projection.
// a: (N, L, 4) NLC; out: (N, L, 3) float64. Returns the flat index of the first
// non-finite input value, or -1.
// Per-thread scratch of compat_process_map: the four channels (with k - 1 more
// values each, for the window's wrap-around), their window sums and the norms,
// one array each (structure of arrays: every loop of compat_process_seq is a plain
// loop the compiler vectorises, with the numpy code's operations per value).
struct ProcessScratch {
    std::vector<double> buf;
    double *ch[4], *w[4], *nrm, *stage;
    void resize(i64 L, int k) {
        const i64 Lk = L + k + 8;  // room for the wrapped values, and a vector's worth more
        buf.assign(static_cast<size_t>(8 * Lk + 4 * L), 0.0);
        double* b = buf.data();
        for (int c = 0; c < 4; ++c) ch[c] = b + c * Lk;
        for (int c = 0; c < 4; ++c) w[c] = b + (4 + c) * Lk;
        nrm = b + 8 * Lk;
        stage = nrm + L;  // 3 L: one sequence's output before it is streamed out
    }
};

// How compat_process_seq writes its output: straight into it (DirectOut), or
// into the scratch's stage (in cache) and from there to the output with
// streaming stores (StreamOut, the x86-64 vector tiers). Streaming stores write
// whole cache lines without reading them first: the output is 196 MB at N = 4000,
// L = 2048, more than the caches, and a block kept from an earlier call
// (bindings.cpp: OutputPool) would otherwise be read from memory only to be
// overwritten. Measured (2 threads, builds taking turns, 8 rounds; means of the
// best times): AVX-512 process_attribution_map 27.5 -> 26.0 ms, the method-2
// pipeline 55.4 -> 53.5 ms; AVX2 build 29.9 -> 29.5 and 63.9 -> 62.9 ms.
struct DirectOut {
    static constexpr bool kStaged = false;
    static void copy(double*, const double*, i64) {}
};

// v[0 .. n) /= d, correctly rounded (the bits of the division), without the
// divider: process_attribution_map divides every value of a sequence by the
// same total, and the divider (about 8 cycles per 4 doubles) was its bottleneck.
// With z = RN(1 / d) (one true division) and fused multiply-adds (one rounding
// each), per value:
//   q0 = RN(v z);  r0 = RN(v - q0 d);  q1 = RN(q0 + r0 z)   -- a Newton step:
//     q0 is within 2 ulps of v / d (not always faithful), and q0 + r0 z within
//     about 2^-50 ulp of it, so q1 is within (1/2 + 2^-50) ulp: faithful;
//   r1 = v - q1 d (exact: q1 is faithful);  q2 = RN(q1 + r1 z) = RN(v / d)
// by Markstein's theorem (z within half an ulp of 1 / d and q1 faithful give
// the correctly rounded quotient; Markstein 1990, IBM J. Res. Dev. 34(1);
// machine-checked by Russinoff for AMD's divider). The theorem needs no
// underflow: the caller guarantees d in [2^-400, 2^400] and every nonzero |v|
// in [d 2^-400, d 2^400], so that every quotient, remainder and product above
// is a normal number. A zero v gives +0 in the FMA steps; its sign is copied
// back (v / d with d > 0 has v's sign). The same bits as the scalar tier's
// division: tests/test_compat_passes.py (divide_exact on near-ties, divisors
// with all-ones significands and random values, every tier).
inline bool divide_exact_in_range(double d) { return d >= 0x1p-400 && d <= 0x1p+400; }

#if ACME_X86_SIMD
using DivideFn = void (*)(double*, i64, double);

// Four values x / d (vd = d, vz = RN(1 / d), sign = -0.0).
__attribute__((target("avx2,fma"))) inline __m256d divide_exact4(__m256d x, __m256d vd, __m256d vz, __m256d sign) {
    __m256d q = _mm256_mul_pd(x, vz);
    __m256d r = _mm256_fnmadd_pd(q, vd, x);  // x - q d, one rounding
    q = _mm256_fmadd_pd(r, vz, q);
    r = _mm256_fnmadd_pd(q, vd, x);  // exact
    q = _mm256_fmadd_pd(r, vz, q);
    return _mm256_or_pd(q, _mm256_and_pd(x, sign));
}

__attribute__((target("avx2,fma"))) inline void divide_exact_avx2(double* v, i64 n, double d) {
    const __m256d vd = _mm256_set1_pd(d), vz = _mm256_set1_pd(1.0 / d), sign = _mm256_set1_pd(-0.0);
    i64 l = 0;
    for (; l + 4 <= n; l += 4) _mm256_storeu_pd(v + l, divide_exact4(_mm256_loadu_pd(v + l), vd, vz, sign));
    for (; l < n; ++l) v[l] /= d;
}

// Eight values x / d (vd = d, vz = RN(1 / d), sign = the sign bits).
ACME_COMPAT_AVX512 inline __m512d divide_exact8(__m512d x, __m512d vd, __m512d vz, __m512i sign) {
    __m512d q = _mm512_mul_pd(x, vz);
    __m512d r = _mm512_fnmadd_pd(q, vd, x);  // x - q d, one rounding
    q = _mm512_fmadd_pd(r, vz, q);
    r = _mm512_fnmadd_pd(q, vd, x);  // exact
    q = _mm512_fmadd_pd(r, vz, q);
    return _mm512_castsi512_pd(
        _mm512_or_si512(_mm512_castpd_si512(q), _mm512_and_si512(_mm512_castpd_si512(x), sign)));
}

ACME_COMPAT_AVX512 inline void divide_exact_avx512(double* v, i64 n, double d) {
    const __m512d vd = _mm512_set1_pd(d), vz = _mm512_set1_pd(1.0 / d);
    const __m512i sign = _mm512_set1_epi64(std::numeric_limits<std::int64_t>::min());
    i64 l = 0;
    for (; l + 8 <= n; l += 8) _mm512_storeu_pd(v + l, divide_exact8(_mm512_loadu_pd(v + l), vd, vz, sign));
    for (; l < n; ++l) v[l] /= d;
}

// The tier's exact division, or nullptr (the scalar tier divides).
inline DivideFn divide_exact_fn() {
    if (simd_tier() == kAvx512) return &divide_exact_avx512;
    if (simd_tier() == kAvx2 && cpu_has_fma()) return &divide_exact_avx2;
    return nullptr;
}
#endif

// v[0 .. n) /= d on this tier (the test hook of divide_exact; the same bits as
// dividing on every tier). d and v must be in divide_exact's range.
inline void divide_exact(double* v, i64 n, double d) {
#if ACME_X86_SIMD
    if (const DivideFn f = divide_exact_fn()) {
        f(v, n, d);
        return;
    }
#endif
    for (i64 l = 0; l < n; ++l) v[l] /= d;
}

// The published projection of a window sum (w0, w1, w2, w3) to three
// coordinates: the constants as numpy evaluates them (Python floats), the
// operations in the numpy code's order. The scalar loops and the vector tails
// call it; the vector loops (window3_*) do the same operations on its constants.
struct Projection {
    double c1 = 1.0 / std::sqrt(2.0), c2 = std::sqrt(2.0 / 3.0), c3 = std::sqrt(3.0 / 4.0);
    double half = 1.0 / 2.0, third = 1.0 / 3.0;
    __attribute__((always_inline)) void operator()(double* __restrict__ ol, double w0, double w1, double w2,
                                                   double w3) const {
        ol[0] = c1 * (-w0 + w1);
        ol[1] = c2 * (-half * w0 - half * w1);
        ol[2] = c3 * (((-third * w0 - third * w1) - third * w2) + w3);
    }
};

#if ACME_X86_SIMD

// Positions l0 .. L of window3_*: compat_process_seq's scalar operations, dividing
// with the divider (the same bits as divide_exact).
inline void window3_tail(double* const ch[4], i64 l0, i64 L, double total, const Projection& k, double* o) {
    if (l0 >= L) return;
    double v[4][8 + 2];
    for (int c = 0; c < 4; ++c)
        for (i64 q = l0; q < L + 2; ++q) v[c][q - l0] = ch[c][q] / total;
    for (i64 q = l0; q < L; ++q) {
        double w[4];
        for (int c = 0; c < 4; ++c) w[c] = (v[c][q - l0] + v[c][q - l0 + 1]) + v[c][q - l0 + 2];
        k(o + 3 * q, w[0], w[1], w[2], w[3]);
    }
}

// The published window (k = 3) of the AVX-512 build in one pass over the four
// centred channels ch[c][0 .. L + 2) (continued by their first two values):
// each value divided by the total (divide_exact's steps, in registers), the
// window sums (v[l] + v[l+1]) + v[l+2] from a block and the next one (valignq),
// the projection, and the three coordinates interleaved and written with
// streaming stores where the output is aligned. The same operations in the same
// order per value as compat_process_seq's loops; the tail (L mod 8 positions)
// runs those loops' scalar code with the divider (the same bits).
// Needs ch[c] readable below L + 8 and total in divide_exact's range. The
// next_bytes bytes at `next` (the next sequence's input) are prefetched
// towards L2 along the way: a small gain at most (AVX-512, builds with and
// without, eight processes each taking turns: mean 21.3 against 22.3 ms, the
// pipeline within noise).
// Measured against the separate loops (divide_exact, then the compiler's
// window-and-projection loop, then StreamOut), float32 maps, N = 4000, L = 2048,
// 2 threads, 8 rounds taking turns, means of the best times: AVX-512
// process_attribution_map 27.4 -> 20.7 ms (pipeline 56.9 -> 49.9); the AVX2
// version (window3_avx2) 32.4 -> 28.3 ms (pipeline 69.3 -> 65.8).
ACME_COMPAT_AVX512 inline void window3_avx512(double* const ch[4], i64 L, double total, const Projection& k,
                                              double* o, const char* next, i64 next_bytes) {
    const __m512d vd = _mm512_set1_pd(total), vz = _mm512_set1_pd(1.0 / total);
    const __m512i sign = _mm512_set1_epi64(std::numeric_limits<std::int64_t>::min());
    const __m512d c1 = _mm512_set1_pd(k.c1), c2 = _mm512_set1_pd(k.c2), c3 = _mm512_set1_pd(k.c3);
    const __m512d mhalf = _mm512_set1_pd(-k.half), half = _mm512_set1_pd(k.half);
    const __m512d mthird = _mm512_set1_pd(-k.third), third = _mm512_set1_pd(k.third);
    // output interleave: o0 = e0[0] e1[0] e2[0] e0[1] e1[1] e2[1] e0[2] e1[2], ...
    // (first e0 and e1 into their slots, then e2 into the rest; index 8 + j is the second source's j)
    const __m512i i01a = _mm512_setr_epi64(0, 8, 0, 1, 9, 0, 2, 10);
    const __m512i i01b = _mm512_setr_epi64(0, 1, 8, 3, 4, 9, 6, 7);
    const __m512i i11a = _mm512_setr_epi64(0, 3, 11, 0, 4, 12, 0, 5);
    const __m512i i11b = _mm512_setr_epi64(10, 1, 2, 11, 4, 5, 12, 7);
    const __m512i i21a = _mm512_setr_epi64(13, 0, 6, 14, 0, 7, 15, 0);
    const __m512i i21b = _mm512_setr_epi64(0, 13, 2, 3, 14, 5, 6, 15);
    const bool aligned = (reinterpret_cast<std::uintptr_t>(o) & 63) == 0;
    __m512d cur[4];
    for (int c = 0; c < 4; ++c) cur[c] = divide_exact8(_mm512_loadu_pd(ch[c]), vd, vz, sign);
    i64 l = 0;
    for (; l + 8 <= L; l += 8) {
        const i64 at = l * 16;  // the next sequence's 16 L bytes (float32) over this loop's L / 8 steps
        if (at < next_bytes) {
            _mm_prefetch(next + at, _MM_HINT_T1);
            _mm_prefetch(next + at + 64, _MM_HINT_T1);
        }
        __m512d w[4];
        for (int c = 0; c < 4; ++c) {
            const __m512d nxt = divide_exact8(_mm512_loadu_pd(ch[c] + l + 8), vd, vz, sign);
            const __m512d s1 = _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(nxt),
                                                                       _mm512_castpd_si512(cur[c]), 1));
            const __m512d s2 = _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(nxt),
                                                                       _mm512_castpd_si512(cur[c]), 2));
            w[c] = _mm512_add_pd(_mm512_add_pd(cur[c], s1), s2);
            cur[c] = nxt;
        }
        const __m512d neg_w0 = _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(w[0]), sign));
        const __m512d e0 = _mm512_mul_pd(c1, _mm512_add_pd(neg_w0, w[1]));
        const __m512d e1 = _mm512_mul_pd(c2, _mm512_sub_pd(_mm512_mul_pd(mhalf, w[0]), _mm512_mul_pd(half, w[1])));
        const __m512d e2 = _mm512_mul_pd(
            c3, _mm512_add_pd(_mm512_sub_pd(_mm512_sub_pd(_mm512_mul_pd(mthird, w[0]), _mm512_mul_pd(third, w[1])),
                                            _mm512_mul_pd(third, w[2])),
                              w[3]));
        const __m512d o0 = _mm512_permutex2var_pd(_mm512_permutex2var_pd(e0, i01a, e1), i01b, e2);
        const __m512d o1 = _mm512_permutex2var_pd(_mm512_permutex2var_pd(e0, i11a, e1), i11b, e2);
        const __m512d o2 = _mm512_permutex2var_pd(_mm512_permutex2var_pd(e0, i21a, e1), i21b, e2);
        double* ol = o + 3 * l;
        if (aligned) {
            _mm512_stream_pd(ol, o0);
            _mm512_stream_pd(ol + 8, o1);
            _mm512_stream_pd(ol + 16, o2);
        } else {
            _mm512_storeu_pd(ol, o0);
            _mm512_storeu_pd(ol + 8, o1);
            _mm512_storeu_pd(ol + 16, o2);
        }
    }
    window3_tail(ch, l, L, total, k, o);
    _mm_sfence();  // streaming stores are weakly ordered: visible before the loop's join
}

// The same with 4-lane vectors (AVX2 with FMA).
__attribute__((target("avx2,fma"))) inline void window3_avx2(double* const ch[4], i64 L, double total,
                                                             const Projection& k, double* o, const char* next,
                                                             i64 next_bytes) {
    const __m256d vd = _mm256_set1_pd(total), vz = _mm256_set1_pd(1.0 / total), sign = _mm256_set1_pd(-0.0);
    const __m256d c1 = _mm256_set1_pd(k.c1), c2 = _mm256_set1_pd(k.c2), c3 = _mm256_set1_pd(k.c3);
    const __m256d mhalf = _mm256_set1_pd(-k.half), half = _mm256_set1_pd(k.half);
    const __m256d mthird = _mm256_set1_pd(-k.third), third = _mm256_set1_pd(k.third);
    const bool aligned = (reinterpret_cast<std::uintptr_t>(o) & 31) == 0;
    __m256d cur[4];
    for (int c = 0; c < 4; ++c) cur[c] = divide_exact4(_mm256_loadu_pd(ch[c]), vd, vz, sign);
    i64 l = 0;
    for (; l + 4 <= L; l += 4) {
        const i64 at = l * 16;  // the next sequence's 16 L bytes over this loop's L / 4 steps
        if (at < next_bytes) _mm_prefetch(next + at, _MM_HINT_T1);
        __m256d w[4];
        for (int c = 0; c < 4; ++c) {
            const __m256d nxt = divide_exact4(_mm256_loadu_pd(ch[c] + l + 4), vd, vz, sign);
            const __m256d s2 = _mm256_permute2f128_pd(cur[c], nxt, 0x21);  // v[l+2 .. l+5]
            const __m256d s1 = _mm256_shuffle_pd(cur[c], s2, 0x5);          // v[l+1 .. l+4]
            w[c] = _mm256_add_pd(_mm256_add_pd(cur[c], s1), s2);
            cur[c] = nxt;
        }
        const __m256d e0 = _mm256_mul_pd(c1, _mm256_add_pd(_mm256_xor_pd(w[0], sign), w[1]));
        const __m256d e1 = _mm256_mul_pd(c2, _mm256_sub_pd(_mm256_mul_pd(mhalf, w[0]), _mm256_mul_pd(half, w[1])));
        const __m256d e2 = _mm256_mul_pd(
            c3, _mm256_add_pd(_mm256_sub_pd(_mm256_sub_pd(_mm256_mul_pd(mthird, w[0]), _mm256_mul_pd(third, w[1])),
                                            _mm256_mul_pd(third, w[2])),
                              w[3]));
        // interleave: e0[0] e1[0] e2[0] e0[1] | e1[1] e2[1] e0[2] e1[2] | e2[2] e0[3] e1[3] e2[3]
        const __m256d t0 = _mm256_unpacklo_pd(e0, e1);     // e0[0] e1[0] e0[2] e1[2]
        const __m256d t1 = _mm256_unpackhi_pd(e0, e1);     // e0[1] e1[1] e0[3] e1[3]
        const __m256d u = _mm256_shuffle_pd(e2, t1, 0x0);   // e2[0] e0[1] e2[2] e0[3]
        const __m256d v = _mm256_shuffle_pd(t1, e2, 0xF);   // e1[1] e2[1] e1[3] e2[3]
        const __m256d o0 = _mm256_permute2f128_pd(t0, u, 0x20);
        const __m256d o1 = _mm256_permute2f128_pd(v, t0, 0x30);
        const __m256d o2 = _mm256_permute2f128_pd(u, v, 0x31);
        double* ol = o + 3 * l;
        if (aligned) {
            _mm256_stream_pd(ol, o0);
            _mm256_stream_pd(ol + 4, o1);
            _mm256_stream_pd(ol + 8, o2);
        } else {
            _mm256_storeu_pd(ol, o0);
            _mm256_storeu_pd(ol + 4, o1);
            _mm256_storeu_pd(ol + 8, o2);
        }
    }
    window3_tail(ch, l, L, total, k, o);
    _mm_sfence();
}
#endif

// One sequence ai (L, 4) of process_attribution_map into o (L, 3). Returns the
// index in ai of its first non-finite value, or -1 (o is then not written).
// Always inlined into its callers, so that the AVX2 and AVX-512 callers below
// compile the same operations with 4- and 8-lane vectors (no FMA contraction:
// the same bits). kExactDivide: float32 maps divide by the total with
// divide_exact (the same bits as the division); Out: how the output is written.
template <class TA, bool kExactDivide = false, class Out = DirectOut, int kWindow3 = 0>
__attribute__((always_inline)) inline i64 compat_process_seq(const TA* __restrict__ ai, i64 L, int k,
                                                             ProcessScratch& sc, double* __restrict__ o) {
    const Projection project;
    double* __restrict__ x = sc.ch[0];
    double* __restrict__ y = sc.ch[1];
    double* __restrict__ z = sc.ch[2];
    double* __restrict__ t = sc.ch[3];
    double* __restrict__ nrm = sc.nrm;
    // gauge correction and the norm of one position, in the numpy code's order
    // (on values, not arrays, so that the loops below vectorise)
    auto centre = [](double& a, double& b, double& c, double& d, double& n) {
        const double mu = (((a + b) + c) + d) / 4;
        a -= mu;
        b -= mu;
        c -= mu;
        d -= mu;
        n = std::sqrt(((a * a + b * b) + c * c) + d * d);
    };
    // counts (integer reductions, so that the loop vectorises): values not finite,
    // values whose squares overflow (|v| > 2^400), values not tiny (|v| >= 2^-400), values not 0.
    // Finite float32 values lie in [2^-149, 2^128) or are 0: only the first count can be non-zero.
    constexpr bool kMayRescale = !std::is_same_v<TA, float>;
    i64 n_bad = 0, n_big = 0, n_normal = 0, n_nonzero = 0;
    for (i64 l = 0; l < L; ++l) {
        double a = static_cast<double>(ai[4 * l]), b = static_cast<double>(ai[4 * l + 1]);
        double c = static_cast<double>(ai[4 * l + 2]), d = static_cast<double>(ai[4 * l + 3]);
        const double chk = ((a - a) + (b - b)) + ((c - c) + (d - d));  // nan iff a value is inf or nan
        n_bad += chk != chk;
        if constexpr (kMayRescale) {
            const double m =
                std::max(std::max(std::fabs(a), std::fabs(b)), std::max(std::fabs(c), std::fabs(d)));
            n_big += m > 0x1p+400;
            n_normal += m >= 0x1p-400;
            n_nonzero += m > 0.0;
        }
        centre(a, b, c, d, nrm[l]);  // done again below in the rare case that the values must be scaled first
        x[l] = a;
        y[l] = b;
        z[l] = c;
        t[l] = d;
    }
    if (n_bad > 0) {  // the first non-finite value, in (position, channel) order
        for (i64 j = 0; j < 4 * L; ++j)
            if (!std::isfinite(static_cast<double>(ai[j]))) return j;
    }
    // squares would over- or underflow (the largest |value| above 2^400 or below 2^-400,
    // and not 0): scale by a power of two first (exact), then centre
    if (n_big > 0 || (n_normal == 0 && n_nonzero > 0)) {
        double amax = 0.0;
        for (i64 j = 0; j < 4 * L; ++j) amax = std::max(amax, std::fabs(static_cast<double>(ai[j])));
        int ex;
        std::frexp(amax, &ex);
        for (i64 l = 0; l < L; ++l) {
            double a = std::ldexp(static_cast<double>(ai[4 * l]), -ex);
            double b = std::ldexp(static_cast<double>(ai[4 * l + 1]), -ex);
            double c = std::ldexp(static_cast<double>(ai[4 * l + 2]), -ex);
            double d = std::ldexp(static_cast<double>(ai[4 * l + 3]), -ex);
            centre(a, b, c, d, nrm[l]);
            x[l] = a;
            y[l] = b;
            z[l] = c;
            t[l] = d;
        }
    }
    const double total = pairwise_sum(nrm, L);  // np.sum(norm, axis=-1)
#if ACME_X86_SIMD
    if constexpr (kWindow3 != 0 && std::is_same_v<TA, float>) {
        if (k == 3 && divide_exact_in_range(total)) {  // in range: see below
            for (int c = 0; c < 4; ++c)
                for (int s = 1; s < k; ++s) sc.ch[c][L - 1 + s] = sc.ch[c][(s - 1) % L];
            // the next sequence in memory (most often this thread's next: the loop hands out
            // runs of sequences), prefetched towards L2 while this one is finished (past the
            // last sequence the prefetches read nothing: x86 prefetches never fault)
            const char* next = reinterpret_cast<const char*>(ai + 4 * L);
            const i64 next_bytes = static_cast<i64>(sizeof(TA)) * 4 * L;
            if constexpr (kWindow3 == 2)
                window3_avx512(sc.ch, L, total, project, o, next, next_bytes);
            else
                window3_avx2(sc.ch, L, total, project, o, next, next_bytes);
            return -1;
        }
    }
#endif
    bool divided = false;
#if ACME_X86_SIMD
    // float32 maps: every nonzero centred value is a multiple of 2^-151 (a float minus a
    // quarter of a sum of floats) and at most the total (|v| <= its norm <= the total), so
    // with the total in range every value is in divide_exact's range
    if constexpr (kExactDivide && std::is_same_v<TA, float>) {
        if (divide_exact_in_range(total)) {
            const DivideFn div = divide_exact_fn();
            for (int c = 0; c < 4; ++c) div(sc.ch[c], L, total);
            divided = true;
        }
    }
#endif
    if (!divided) {
        for (i64 l = 0; l < L; ++l) {  // 0 / 0 = nan, as published
            x[l] /= total;
            y[l] /= total;
            z[l] /= total;
            t[l] /= total;
        }
    }
    // forward wrap-around window sum, left to right: w[l] = g[l] + g[l+1] + ...
    // (the channels continued by their first k - 1 values, so no index wraps)
    for (int c = 0; c < 4; ++c)
        for (int s = 1; s < k; ++s) sc.ch[c][L - 1 + s] = sc.ch[c][(s - 1) % L];
    double* __restrict__ dst = Out::kStaged ? sc.stage : o;
    if (k == 3) {  // the published window: sums and projection in one loop
        for (i64 l = 0; l < L; ++l)
            project(dst + 3 * l, (x[l] + x[l + 1]) + x[l + 2], (y[l] + y[l + 1]) + y[l + 2],
                    (z[l] + z[l + 1]) + z[l + 2], (t[l] + t[l + 1]) + t[l + 2]);
        Out::copy(o, dst, 3 * L);
        return -1;
    }
    for (int c = 0; c < 4; ++c) {
        const double* __restrict__ g = sc.ch[c];
        double* __restrict__ w = sc.w[c];
        for (i64 l = 0; l < L; ++l) w[l] = g[l];
        for (int s = 1; s < k; ++s)
            for (i64 l = 0; l < L; ++l) w[l] += g[l + s];
    }
    const double* __restrict__ w0 = sc.w[0];
    const double* __restrict__ w1 = sc.w[1];
    const double* __restrict__ w2 = sc.w[2];
    const double* __restrict__ w3 = sc.w[3];
    for (i64 l = 0; l < L; ++l) project(dst + 3 * l, w0[l], w1[l], w2[l], w3[l]);
    Out::copy(o, dst, 3 * L);
    return -1;
}

template <class TA>
i64 compat_process_seq_default(const TA* ai, i64 L, int k, ProcessScratch& sc, double* o) {
    return compat_process_seq(ai, L, k, sc, o);
}

#if ACME_X86_SIMD
// StreamOut of the AVX2 and AVX-512 builds: n values from the stage to the
// output, 32-byte (64-byte) streaming stores from the first aligned value on
struct StreamOut256 {
    static constexpr bool kStaged = true;
    __attribute__((target("avx2"))) static void copy(double* o, const double* src, i64 n) {
        i64 j = 0;
        for (; j < n && (reinterpret_cast<std::uintptr_t>(o + j) & 31) != 0; ++j) o[j] = src[j];
        for (; j + 4 <= n; j += 4) _mm256_stream_pd(o + j, _mm256_loadu_pd(src + j));
        for (; j < n; ++j) o[j] = src[j];
        _mm_sfence();  // streaming stores are weakly ordered: visible before the loop's join
    }
};
struct StreamOut512 {
    static constexpr bool kStaged = true;
    __attribute__((target("avx512f"))) static void copy(double* o, const double* src, i64 n) {
        i64 j = 0;
        for (; j < n && (reinterpret_cast<std::uintptr_t>(o + j) & 63) != 0; ++j) o[j] = src[j];
        for (; j + 8 <= n; j += 8) _mm512_stream_pd(o + j, _mm512_loadu_pd(src + j));
        for (; j < n; ++j) o[j] = src[j];
        _mm_sfence();
    }
};

template <class TA>
__attribute__((target("avx2"))) i64 compat_process_seq_avx2(const TA* ai, i64 L, int k, ProcessScratch& sc,
                                                              double* o) {
    return compat_process_seq<TA, false, StreamOut256>(ai, L, k, sc, o);
}
// The same with divide_exact's division (the CPU has FMA: every AVX2 CPU made, and AVX-512),
// and the AVX-512 build of that
template <class TA>
__attribute__((target("avx2"))) i64 compat_process_seq_avx2_div(const TA* ai, i64 L, int k, ProcessScratch& sc,
                                                                  double* o) {
    return compat_process_seq<TA, true, StreamOut256, 1>(ai, L, k, sc, o);
}
template <class TA>
ACME_COMPAT_AVX512 i64 compat_process_seq_avx512(const TA* ai, i64 L, int k, ProcessScratch& sc, double* o) {
    return compat_process_seq<TA, true, StreamOut512, 2>(ai, L, k, sc, o);
}
#endif

// process_attribution_map: gauge correction, division by the sequence's total
// norm, forward wrap-around window sum of k terms, published projection.
// a: (N, L, 4) NLC; out: (N, L, 3) float64. Returns the flat index of the first
// non-finite input value, or -1. The x86-64 vector tiers run the AVX2 and
// AVX-512 builds of the same code, with divide_exact's division for float32
// maps (the same bits: tests/test_compat_passes.py, tests/native).
template <class TA>
i64 compat_process_map(const TA* a, i64 N, i64 L, int k, int n_threads, double* out) {
    std::atomic<i64> first_bad{std::numeric_limits<i64>::max()};
    const int nt = resolve_threads(n_threads, N);
    std::vector<ProcessScratch> scratch(static_cast<size_t>(nt));
    auto seq = &compat_process_seq_default<TA>;
#if ACME_X86_SIMD
    if (simd_tier() == kAvx512)
        seq = &compat_process_seq_avx512<TA>;
    else if (simd_tier() == kAvx2)
        seq = divide_exact_fn() != nullptr ? &compat_process_seq_avx2_div<TA> : &compat_process_seq_avx2<TA>;
#endif
    // the output may be fresh (its pages not yet mapped: fault them in from every thread)
    // or a block kept from an earlier call (then this only touches mapped pages)
    prefault(out, N * L * 3 * static_cast<i64>(sizeof(double)), nt);
    parallel_for(
        nt, N, 4, [&](int tid) { scratch[tid].resize(L, k); },
        [&](int tid, i64 i) {
            const i64 j = seq(a + i * L * 4, L, k, scratch[tid], out + i * L * 3);
            if (j < 0) return;
            i64 cur = first_bad.load();
            const i64 idx = i * L * 4 + j;
            while (idx < cur && !first_bad.compare_exchange_weak(cur, idx)) {
            }
        });
    const i64 b = first_bad.load();
    return b == std::numeric_limits<i64>::max() ? -1 : b;
}

// np.nan_to_num of a float64: nan -> 0, +-inf -> +-max (comparisons only, so that
// the loops using it vectorise).
inline double nan_to_num(double v) {
    constexpr double big = std::numeric_limits<double>::max();
    return v != v ? 0.0 : (v > big ? big : (v < -big ? -big : v));
}

// Point p's coordinates (e1, e2, e3) times the mask value mk, nan_to_num'd.
inline void masked_coords(const double* s, i64 p, double mk, double& x, double& y, double& z) {
    x = nan_to_num(s[3 * p] * mk);
    y = nan_to_num(s[3 * p + 1] * mk);
    z = nan_to_num(s[3 * p + 2] * mk);
}

// The published radius of point p: nan_to_num(sqrt(e1 e1 + e2 e2 + e3 e3)).
inline double point_radius(const double* s, i64 p) {
    const double c0 = s[3 * p], c1 = s[3 * p + 1], c2 = s[3 * p + 2];
    return nan_to_num(std::sqrt((c0 * c0 + c1 * c1) + c2 * c2));
}

// A growable array of T without value-initialisation (std::vector zero-fills what it
// grows by: a second write of every candidate's memory).
template <class T>
class GrowBuffer {
public:
    T* data() const { return p_.get(); }
    T& operator[](size_t j) const { return p_[j]; }
    size_t bytes() const { return sizeof(T) * cap_; }
    // room for `more` values after the first `used` (kept): doubling, so amortised O(1)
    void room(i64 used, i64 more) {
        const size_t need = static_cast<size_t>(used + more);
        if (need <= cap_) return;
        const size_t cap = std::max(need, 2 * cap_);
        std::unique_ptr<T[]> q(new T[cap]);
        if (used > 0) std::memcpy(q.get(), p_.get(), sizeof(T) * static_cast<size_t>(used));
        p_ = std::move(q);
        cap_ = cap;
    }

private:
    std::unique_ptr<T[]> p_;
    size_t cap_ = 0;
};

// One thread's part of SphericalPass: scratch for one sequence, the radii inside
// the bracket (for the cutoff's selection) and the candidates' values, appended
// sequence after sequence.
struct SphericalThread {
    std::vector<double> r, kv;  // one sequence: radius, keep value (masked radius)
    std::vector<i64> idx;       // one sequence: its candidates
    GrowBuffer<double> band;    // radii in [lo, hi]
    i64 n_band = 0, below = 0;  // radii in the band, radii below lo
    // candidates: keep value, ratio y'/x', branch, clipped cosine, radius
    GrowBuffer<double> keep, ratio, cosine, rad;
    GrowBuffer<std::int8_t> branch;
    i64 n_cand = 0;

    // expect: about how many candidates this thread will hold (room made now, once)
    void start(i64 L, i64 expect) {
        r.resize(static_cast<size_t>(L));
        kv.resize(static_cast<size_t>(L));
        idx.resize(static_cast<size_t>(L));
        n_band = below = n_cand = 0;
        for (auto* b : {&keep, &ratio, &cosine, &rad}) b->room(0, expect);
        branch.room(0, expect);
    }
    size_t bytes() const {
        return band.bytes() + keep.bytes() + ratio.bytes() + cosine.bytes() + rad.bytes() + branch.bytes();
    }
};

// SphericalPass's buffers, kept between calls: the threads' candidates and the
// band of radii with its selection scratch. Compat users call the pass once per
// model on maps of the same size, and fresh buffers (about 37 MB at N = 4000,
// L = 2048) cost a page fault per 4 KiB on every call whenever glibc maps them
// fresh (after np.load, for one: about 9k faults, 10 ms of a 2-thread call). One
// set is kept, and only up to kMaxBytes; a call that finds it taken (another
// thread's call is running) allocates its own. The buffers carry nothing from one
// call to the next: every value is written before it is read.
class SphericalPool {
public:
    static constexpr size_t kMaxBytes = size_t(64) << 20;
    struct Set {
        std::vector<SphericalThread> threads;
        GrowBuffer<double> band, scratch;  // the threads' bands side by side; the selection's scratch
        size_t bytes() const {
            size_t total = band.bytes() + scratch.bytes();
            for (const auto& t : threads) total += t.bytes();
            return total;
        }
    };
    static Set take(size_t n_threads) {
        Set set;
        {
            std::lock_guard<std::mutex> lock(mu());
            std::swap(set, kept());
        }
        set.threads.resize(n_threads);
        return set;
    }
    static void give(Set&& set) {
        if (set.bytes() > kMaxBytes) return;  // freed by the caller
        std::lock_guard<std::mutex> lock(mu());
        if (kept().threads.empty()) std::swap(kept(), set);
    }

private:
    static std::mutex& mu() {
        static std::mutex m;
        return m;
    }
    static Set& kept() {
        static Set k;
        return k;
    }
};

// One sequence (points p0 .. p0 + L) of SphericalPass's pass: radii; those below
// lo counted, those in [lo, hi] kept for the selection; the points whose masked
// radius (the keep value) is above lo are candidates (the cutoff is in [lo, hi]),
// their values computed now, while the coordinates are in cache. Returns the
// number of candidates. Always inlined into its callers (the AVX2 one compiles
// the same operations with 4-lane vectors: the same bits).
__attribute__((always_inline)) inline i64 spherical_seq(const double* __restrict__ s, i64 p0, i64 L, double mask,
                                                        const double* __restrict__ mask_arr, bool unit, double lo,
                                                        double hi, bool collect, SphericalThread& t) {
    s += 3 * p0;
    if (mask_arr != nullptr) mask_arr += p0;
    double* __restrict__ r = t.r.data();
    double* __restrict__ kv = t.kv.data();
    const double* keep = kv;  // the keep values: kv, or r itself (see below)
    for (i64 l = 0; l < L; ++l) r[l] = point_radius(s, l);
    if (unit) {
        // With the mask 1 the masked radius is r itself, except where nan_to_num
        // changed r (a nan or inf coordinate, or squares that overflow: r is 0 or
        // max there), where it is computed again from the coordinates.
        constexpr double big = std::numeric_limits<double>::max();
        i64 special = 0;
        for (i64 l = 0; l < L; ++l) special += (r[l] == 0.0) | (r[l] == big);
        if (special > 0) {
            for (i64 l = 0; l < L; ++l) {
                kv[l] = r[l];
                if (r[l] == 0.0 || r[l] == big) {
                    double x, y, z;
                    masked_coords(s, l, 1.0, x, y, z);
                    kv[l] = std::sqrt((x * x + y * y) + z * z);
                }
            }
        } else {
            keep = r;
        }
    } else {
        for (i64 l = 0; l < L; ++l) {
            double x, y, z;
            masked_coords(s, l, mask_arr ? mask_arr[l] : mask, x, y, z);
            kv[l] = std::sqrt((x * x + y * y) + z * z);
        }
    }
    // the radii below and inside the bracket, as order_pair_ranks' bracket pass
    t.band.room(t.n_band, L);
    i64 below = 0, m = 0;
    bracket_values(r, L, lo, hi, t.band.data() + t.n_band, below, m);
    t.below += below;
    t.n_band += m;
    if (!collect) return 0;
    const i64* idx = t.idx.data();
    const i64 n = indices_above(keep, L, lo, t.idx.data());
    const i64 j0 = t.n_cand;
    for (auto* b : {&t.keep, &t.ratio, &t.cosine, &t.rad}) b->room(j0, n);
    t.branch.room(j0, n);
    for (i64 q = 0; q < n; ++q) {
        const i64 l = idx[q], j = j0 + q;
        double x, y, z;
        masked_coords(s, l, mask_arr ? mask_arr[l] : mask, x, y, z);
        const double xr = y, yr = z, zr = x;  // rotated axes
        t.ratio[j] = yr / xr;
        const int neg = xr < 0, below0 = yr < 0;
        t.branch[j] = static_cast<std::int8_t>(xr == 0 ? 3 : neg * (1 + below0));
        const double c = zr / r[l];
        t.cosine[j] = c < -1.0 ? -1.0 : (c > 1.0 ? 1.0 : c);  // np.clip: nan stays nan
        t.rad[j] = r[l];
        t.keep[j] = keep[l];
    }
    t.n_cand += n;
    return n;
}

inline i64 spherical_seq_default(const double* s, i64 p0, i64 L, double mask, const double* mask_arr, bool unit,
                                 double lo, double hi, bool collect, SphericalThread& t) {
    return spherical_seq(s, p0, L, mask, mask_arr, unit, lo, hi, collect, t);
}

#if ACME_X86_SIMD
__attribute__((target("avx2"))) inline i64 spherical_seq_avx2(const double* s, i64 p0, i64 L, double mask,
                                                                const double* mask_arr, bool unit, double lo,
                                                                double hi, bool collect, SphericalThread& t) {
    return spherical_seq(s, p0, L, mask, mask_arr, unit, lo, hi, collect, t);
}
ACME_COMPAT_AVX512 inline i64 spherical_seq_avx512(const double* s, i64 p0, i64 L, double mask, const double* mask_arr,
                                                   bool unit, double lo, double hi, bool collect, SphericalThread& t) {
    return spherical_seq(s, p0, L, mask, mask_arr, unit, lo, hi, collect, t);
}
#endif

// Whether the n values of m all have the bit pattern of m[0] (n >= 1), read in
// parallel rows of `row` values that stop once a difference is found. The
// published notebooks pass the mask as an array of ones (np.sum(np.ones(X.shape),
// axis=-1) / 4); multiplying by that array or by the scalar m[0] gives the same
// bits at every point, so such a mask can take the scalar paths of
// SphericalPass (the unit one for 1.0) instead of reading the array per point.
// Bit patterns, not ==, so that -0.0 and 0.0 (which give zeros of other signs)
// stay apart.
inline bool constant_bits(const double* m, i64 n, i64 row, int n_threads) {
    u64 first;
    std::memcpy(&first, m, sizeof first);
    std::atomic<bool> differs{false};
    const i64 rows = (n + row - 1) / row;
    parallel_for(resolve_threads(n_threads, rows), rows, 16, [](int) {}, [&](int, i64 i) {
        if (differs.load(std::memory_order_relaxed)) return;
        const i64 j1 = std::min(n, (i + 1) * row);
        u64 any = 0;
        for (i64 j = i * row; j < j1; ++j) {
            u64 v;
            std::memcpy(&v, m + j, sizeof v);
            any |= v ^ first;
        }
        if (any != 0) differs.store(true, std::memory_order_relaxed);
    });
    return !differs.load();
}

// spherical_coordinates_process_2_trad for one map (N, L, 3) of float64 with
// mask m (a scalar, or one value per position when mask_arr is given), in two
// steps so that the caller can allocate the outputs between them.
// select() finds the cutoff (the radius_count-th largest radius r =
// nan_to_num(sqrt(c0 c0 + c1 c1 + c2 c2)); the smallest when radius_count = 0)
// and how many points have a masked radius above it; write() stores, for those
// points in order, the ratio y'/x' for arctan, a branch code (0: phi = arctan,
// 1: + PI, 2: - PI, 3: x' = 0 -> PI / 2), the clipped cosine z'/r for arccos,
// and r.
// How: the radii of a sample of 4096 points, one per stratum of the map
// (sample_point), bracket the cutoff ([lo, hi], about 3.4 standard deviations of
// the sample's rank either side); one pass over
// the map counts the radii below lo, keeps those inside the bracket, and
// computes the values of every point whose masked radius is above lo, while its
// coordinates are in cache; the cutoff is then selected among the bracket's
// radii, and the candidates above it are the kept points. The map is read once
// and no per-point array is written. If the bracket misses the cutoff's rank (an
// unlucky sample), or the map is small, one pass selects the cutoff among all
// radii and a second computes the points above it. Exact either way.
class SphericalPass {
public:
    // force: 0 automatic; 1 the two-pass path; 2 a bracket that misses (tests)
    SphericalPass(const double* s, i64 N, i64 L, double mask, const double* mask_arr, int n_threads, int force = 0)
        : s_(s), N_(N), L_(L), mask_(mask), mask_arr_(mask_arr), nt_(resolve_threads(n_threads, N)),
          unit_(mask_arr == nullptr && mask == 1.0), force_(force),
          pool_(SphericalPool::take(static_cast<size_t>(nt_))), seq_tid_(static_cast<size_t>(N)),
          seq_start_(static_cast<size_t>(N)), seq_count_(static_cast<size_t>(N)),
          kept_(static_cast<size_t>(N) + 1, 0) {
        // a mask array of one value (the notebooks' array of ones) runs as that scalar: the same bits
        if (mask_arr_ != nullptr && N * L > 0 && constant_bits(mask_arr_, N * L, std::max<i64>(L, 4096), nt_)) {
            mask_ = mask_arr_[0];
            mask_arr_ = nullptr;
            unit_ = mask_ == 1.0;
        }
    }
    ~SphericalPass() { SphericalPool::give(std::move(pool_)); }
    SphericalPass(const SphericalPass&) = delete;
    SphericalPass& operator=(const SphericalPass&) = delete;

    i64 select(i64 radius_count) {
        const i64 size = N_ * L_;
        if (size == 0) return cutoff_ = std::numeric_limits<double>::infinity(), 0;
        const i64 rank = radius_count == 0 ? 0 : size - radius_count;  // the cutoff's rank, ascending
        const double inf = std::numeric_limits<double>::infinity();
        constexpr int S = 1 << kLogSample;
        bool found = false;
        if (size >= (i64(1) << 14) && force_ != 1) {
            double lo = inf, hi = inf;  // force 2: an empty bracket
            i64 under = S;              // sampled radii below lo: about S - under of S points are candidates
            if (force_ != 2) {
                std::vector<double> smp(S);
                for (int j = 0; j < S; ++j) smp[j] = point_radius(s_, sample_point(size, j));
                const i64 ts = (rank * S) / size, ia = ts - 64, ib = ts + 65;
                lo = -inf;
                hi = inf;
                under = std::max<i64>(ia, 0);
                if (ia >= 0) std::nth_element(smp.begin(), smp.begin() + ia, smp.end()), lo = smp[ia];
                if (ib < S) std::nth_element(smp.begin() + (ia >= 0 ? ia + 1 : 0), smp.begin() + ib, smp.end()),
                    hi = smp[ib];
            }
            if (!pass(lo, hi, true, size - (size / S) * under)) return 0;
            found = select_in_band(rank);
        }
        one_pass_ = found;
        if (!found) {
            // all radii in the band: the exact cutoff; then the points above it
            if (!pass(-inf, inf, false, 0)) return 0;
            select_in_band(rank);
            const double c = cutoff_;
            if (!pass(c, c, true, size - rank)) return 0;
        }
        // the kept points of each sequence: its candidates above the cutoff
        parallel_for(nt_, N_, 16, [](int) {}, [&](int, i64 i) {
            const SphericalThread& t = threads_[static_cast<size_t>(seq_tid_[static_cast<size_t>(i)])];
            const i64 a = seq_start_[static_cast<size_t>(i)], b = a + seq_count_[static_cast<size_t>(i)];
            i64 c = 0;
            for (i64 j = a; j < b; ++j) c += t.keep[static_cast<size_t>(j)] > cutoff_;
            kept_[static_cast<size_t>(i) + 1] = c;
        });
        if (stop_requested()) return 0;
        for (i64 i = 0; i < N_; ++i) kept_[static_cast<size_t>(i) + 1] += kept_[static_cast<size_t>(i)];
        return kept_[static_cast<size_t>(N_)];
    }

    double cutoff() const { return cutoff_; }
    bool one_pass() const { return one_pass_; }  // the sampled bracket held the cutoff (for tests)

    // Point j of the sample of a map of `size` points (size >= 2^14): one point from each of
    // 2^kLogSample equal strata, at a place inside it given by splitmix64 of the stratum.
    // (Evenly spaced points fell on only a few positions of every sequence when L and the
    // stride share factors, e.g. 128 of 2048 at N = 4000, L = 2048, and radii that depend on
    // the position then biased the bracket.)
    static constexpr int kLogSample = 12;
    static i64 sample_point(i64 size, int j) {
        const i64 a = (static_cast<i64>(j) * size) >> kLogSample, b = (static_cast<i64>(j + 1) * size) >> kLogSample;
        return a + static_cast<i64>(splitmix64(static_cast<u64>(j)) % static_cast<u64>(b - a));
    }

    void write(double* ratio, std::int8_t* branch, double* cosine, double* rad) const {
        const double cut = cutoff_;
        parallel_for(nt_, N_, 16, [](int) {}, [&, cut](int, i64 i) {
            const SphericalThread& t = threads_[static_cast<size_t>(seq_tid_[static_cast<size_t>(i)])];
            const i64 a = seq_start_[static_cast<size_t>(i)], b = a + seq_count_[static_cast<size_t>(i)];
            // local restrict pointers (and the cutoff by value): otherwise every store may
            // alias the buffers' and the closure's pointers, and the loop reloads them all
            // per candidate
            const double* __restrict__ keep = t.keep.data();
            const double* __restrict__ ratio_in = t.ratio.data();
            const std::int8_t* __restrict__ branch_in = t.branch.data();
            const double* __restrict__ cosine_in = t.cosine.data();
            const double* __restrict__ rad_in = t.rad.data();
            double* __restrict__ ratio_out = ratio;
            std::int8_t* __restrict__ branch_out = branch;
            double* __restrict__ cosine_out = cosine;
            double* __restrict__ rad_out = rad;
            // Without a branch per candidate (kept or not is a coin toss near the cutoff):
            // every candidate is written at the next free slot, which only a kept one
            // takes. The loop ends when the sequence's slots are full, so that no write
            // reaches the next sequence's slots (another thread's).
            i64 j = kept_[static_cast<size_t>(i)];
            const i64 j_end = kept_[static_cast<size_t>(i) + 1];
            for (i64 q = a; q < b && j < j_end; ++q) {
                ratio_out[j] = ratio_in[q];
                branch_out[j] = branch_in[q];
                cosine_out[j] = cosine_in[q];
                rad_out[j] = rad_in[q];
                j += keep[q] > cut;
            }
        });
    }

private:
    // One pass over the map with the bracket [lo, hi] (collect: the candidates'
    // values too). False if interrupted.
    // expect: about how many candidates in all (each thread makes room for its share first).
    bool pass(double lo, double hi, bool collect, i64 expect) {
        const i64 share = collect ? expect / nt_ + expect / (8 * nt_) + L_ : 0;
        auto seq = &spherical_seq_default;
#if ACME_X86_SIMD
        if (simd_tier() == kAvx2) seq = &spherical_seq_avx2;
        if (simd_tier() == kAvx512) seq = &spherical_seq_avx512;
#endif
        const i64 L = L_;
        parallel_for(nt_, N_, 16, [&](int tid) { threads_[static_cast<size_t>(tid)].start(L, share); },
                     [&](int tid, i64 i) {
            SphericalThread& t = threads_[static_cast<size_t>(tid)];
            seq_tid_[static_cast<size_t>(i)] = tid;
            seq_start_[static_cast<size_t>(i)] = t.n_cand;
            seq_count_[static_cast<size_t>(i)] = seq(s_, i * L, L, mask_, mask_arr_, unit_, lo, hi, collect, t);
        });
        return !stop_requested();
    }

    // The cutoff, if the bracket of the last pass holds its rank (exact: selected among the band's radii).
    bool select_in_band(i64 rank) {
        i64 below = 0, m = 0;
        for (const auto& t : threads_) below += t.below, m += t.n_band;
        if (!(below <= rank && rank < below + m)) return false;
        pool_.band.room(0, m);
        double* band = pool_.band.data();
        i64 at = 0;
        for (const auto& t : threads_) {
            if (t.n_band > 0) std::memcpy(band + at, t.band.data(), sizeof(double) * static_cast<size_t>(t.n_band));
            at += t.n_band;
        }
        const i64 k = rank - below;
        if (m <= (i64(1) << 22)) {
            // the sampled bracket's band (~3 % of the radii): order_pair_ranks (a sampled
            // bracket again, the tier's bracket pass, nth_element on ~20 % of the band) is
            // faster than nth_element on all of it in this serial step (3.5 -> 2.3 ms at
            // N = 4000, L = 2048); the same value
            pool_.scratch.room(0, m);
            cutoff_ = order_pair_ranks(band, m, k, k, 0.0, pool_.scratch.data()).a;
            return true;
        }
        std::nth_element(band, band + k, band + m);  // all radii (two passes): in place
        cutoff_ = band[k];
        return true;
    }

    const double* s_;
    i64 N_, L_;
    double mask_;
    const double* mask_arr_;
    int nt_;
    bool unit_;  // the mask is the scalar 1: the masked radius is r (see spherical_seq)
    int force_;
    SphericalPool::Set pool_;
    std::vector<SphericalThread>& threads_ = pool_.threads;
    std::vector<int> seq_tid_;                 // the thread that ran each sequence
    std::vector<i64> seq_start_, seq_count_;   // and where its candidates are
    std::vector<i64> kept_;                    // kept points before each sequence
    double cutoff_ = 0.0;
    bool one_pass_ = false;
};

// spherical_coordinates_process_2_trad's phi' from at = np.arctan(ratio), in place,
// as the numpy code computes it: at + PI (branch 1), at - PI (2), PI / 2 (3) or at,
// then phi / 2 + PI / 2, with the published PI = 3.1416. Always inlined into its
// callers (the AVX2 one compiles the same operations with 4-lane vectors).
// The choice is made with bit masks, not branches: the branch codes follow the
// signs of the data, and a mispredicted branch per point cost ~7 ns a point
// (5.5 ms for 819k points); GCC does not turn the floating-point selects into
// blends, but vectorises the integer ones (0.6 ms with AVX2).
__attribute__((always_inline)) inline void compat_phi_body(double* __restrict__ at,
                                                           const std::int8_t* __restrict__ branch, i64 n) {
    constexpr double PI = 3.1416;
    constexpr double kHalf = PI / 2;
    u64 uh;
    std::memcpy(&uh, &kHalf, sizeof uh);
    for (i64 j = 0; j < n; ++j) {
        const double a = at[j], plus = a + PI, minus = a - PI;
        const i64 b = branch[j];
        u64 ua, up, um;
        std::memcpy(&ua, &a, sizeof ua);
        std::memcpy(&up, &plus, sizeof up);
        std::memcpy(&um, &minus, sizeof um);
        const u64 m1 = u64(0) - u64(b == 1), m2 = u64(0) - u64(b == 2), m3 = u64(0) - u64(b == 3);
        const u64 u = (ua & ~(m1 | m2 | m3)) | (up & m1) | (um & m2) | (uh & m3);
        double phi;
        std::memcpy(&phi, &u, sizeof phi);
        at[j] = phi / 2 + PI / 2;
    }
}

inline void compat_phi_default(double* at, const std::int8_t* branch, i64 n) { compat_phi_body(at, branch, n); }

#if ACME_X86_SIMD
__attribute__((target("avx2"))) inline void compat_phi_avx2(double* at, const std::int8_t* branch, i64 n) {
    compat_phi_body(at, branch, n);
}
#endif

inline void compat_phi(double* at, const std::int8_t* branch, i64 n) {
#if ACME_X86_SIMD
    if (simd_tier() == kAvx2 || simd_tier() == kAvx512) return compat_phi_avx2(at, branch, n);
#endif
    compat_phi_default(at, branch, n);
}

// hist[bins[j]] += r[j]^2 for j < n (exact), into one thread's histogram
// (KattrThreadHist: the common weights as 128-bit integers, then the exact sum),
// the counters in locals over the loop.
inline void compat_hist_adds(const std::int32_t* bins, const double* r, i64 n, KattrThreadHist& th) {
    KattrConfig cfg;
    cfg.weight = Weight::r2;
    i64 np = 0, nf = 0;
    for (i64 j = 0; j < n; ++j) th.add_counted(cfg, bins[j], r[j], 0, j, np, nf);  // |r| < 2^48: fits
}

// calculate_entropy_2's bin of an angle: min(int(angle / box_length), n_bins - 1)
// (top = n_bins - 1). ndarray.astype(int64) truncates; values beyond int64 are
// clamped here to the last bin (the quotient clamped to [-1, top] first: the same
// bins, and no overflow). -1 for an angle at or below -box_length (refused);
// n_bins <= 46340, so the bin and b1 * n_bins + b2 fit 32 bits.
inline std::int32_t compat_angle_bin(double v, double box_length, double top) {
    double q = v / box_length;
    q = q < top ? q : top;  // nan -> top (a nan angle is refused)
    q = q > -1.0 ? q : -1.0;
    return static_cast<std::int32_t>(q);
}

// Problems among some points of calculate_entropy_2: non-finite angles, radii
// not finite or |r| >= 2^48, negative bins (an angle below 0).
struct AngleBinProblems {
    i64 angle = 0, rad = 0, neg = 0;
    bool any() const { return (angle | rad | neg) != 0; }
    void add(const AngleBinProblems& o) { angle += o.angle, rad += o.rad, neg += o.neg; }
};

// calculate_entropy_2's bins of the points j < n: bp[j] = b1 * n_bins + b2,
// with bins min(int(angle / box_length), n_bins - 1) of (phi', theta), and the
// problems counted (integer reductions: the loop vectorises). Always inlined
// into its callers (the AVX2 one compiles the same operations with 4-lane
// vectors: the same bins).
__attribute__((always_inline)) inline AngleBinProblems compat_angle_bins_body(const double* __restrict__ p1,
                                                                             const double* __restrict__ p2,
                                                                             const double* __restrict__ r, i64 n,
                                                                             double box_length, i64 n_bins,
                                                                             std::int32_t* __restrict__ bp) {
    const double top = static_cast<double>(n_bins - 1);
    const std::int32_t nb = static_cast<std::int32_t>(n_bins);
    i64 n_angle = 0, n_rad = 0, n_neg = 0;
    for (i64 j = 0; j < n; ++j) {
        const double x = p1[j] - p1[j], y = p2[j] - p2[j];  // nan iff the angle is inf or nan
        n_angle += (x != x) | (y != y);
        n_rad += !(std::fabs(r[j]) < 0x1p48);
        const std::int32_t b1 = compat_angle_bin(p1[j], box_length, top), b2 = compat_angle_bin(p2[j], box_length, top);
        n_neg += (b1 < 0) | (b2 < 0);
        bp[j] = b1 * nb + b2;
    }
    return AngleBinProblems{n_angle, n_rad, n_neg};
}

inline AngleBinProblems compat_angle_bins_default(const double* p1, const double* p2, const double* r, i64 n,
                                                  double box_length, i64 n_bins, std::int32_t* bp) {
    return compat_angle_bins_body(p1, p2, r, n, box_length, n_bins, bp);
}

#if ACME_X86_SIMD
__attribute__((target("avx2"))) inline AngleBinProblems compat_angle_bins_avx2(const double* p1, const double* p2,
                                                                                const double* r, i64 n,
                                                                                double box_length, i64 n_bins,
                                                                                std::int32_t* bp) {
    return compat_angle_bins_body(p1, p2, r, n, box_length, n_bins, bp);
}
#endif

// calculate_entropy_2's histogram of one map: bins min(int(angle / box_length),
// n_bins - 1) of (phi', theta), weight r^2, added into hist (n_bins^2, exact).
// Returns 0, or the first bad point's problem: 1 non-finite angle, 2 radius not
// finite or |r| >= 2^48, 3 negative bin (an angle below 0); `bad` is its index
// (the numpy code's order of checks: all angles, then radii, then signs).
// The points are cut into contiguous parts of 2^16 or more, one per thread, each
// binned (in blocks, in cache) and added into its thread's histogram; the
// histograms are merged after (integer sums: the same bits for any split). One
// thread when the histogram is large against the points (a histogram per thread
// would cost more than it saves).
inline int compat_angle_hist(const double* p1, const double* p2, const double* r, i64 n, double box_length,
                             i64 n_bins, FixedSum* hist, i64& bad, int n_threads = 0) {
    auto bins_of = &compat_angle_bins_default;
#if ACME_X86_SIMD
    if (simd_tier() == kAvx2 || simd_tier() == kAvx512) bins_of = &compat_angle_bins_avx2;
#endif
    const size_t nb2 = static_cast<size_t>(n_bins * n_bins);
    const bool small_hist = nb2 <= (size_t(1) << 16) && static_cast<i64>(nb2) <= n / 16;
    const int nt = small_hist ? resolve_threads(n_threads, std::max<i64>(n >> 16, 1)) : 1;
    std::vector<AngleBinProblems> found(static_cast<size_t>(nt));
    std::vector<KattrThreadHist> th(static_cast<size_t>(nt));
    parallel_for(nt, nt, 1, [&](int tid) { th[tid].reset(nb2); }, [&](int tid, i64 t) {
        constexpr i64 kBlock = 4096;
        std::int32_t bins[kBlock];
        AngleBinProblems& f = found[static_cast<size_t>(t)];
        for (i64 a = n * t / nt, b = n * (t + 1) / nt; a < b; a += kBlock) {
            const i64 m = std::min(kBlock, b - a);
            const AngleBinProblems g = bins_of(p1 + a, p2 + a, r + a, m, box_length, n_bins, bins);
            f.add(g);
            // after a problem: no more adds (an error is returned), but every block is still
            // counted, since the counts decide which check (in the numpy code's order) reports it
            if (!f.any()) compat_hist_adds(bins, r + a, m, th[tid]);
        }
    });
    AngleBinProblems all;
    for (const auto& f : found) all.add(f);
    // the first bad point, in the numpy code's order of checks (all angles, then radii, then signs)
    if (all.angle > 0) {
        for (i64 j = 0; j < n; ++j)
            if (!std::isfinite(p1[j]) || !std::isfinite(p2[j])) return bad = j, 1;
    }
    if (all.rad > 0) {
        for (i64 j = 0; j < n; ++j)
            if (!(std::fabs(r[j]) < 0x1p48)) return bad = j, 2;
    }
    if (all.neg > 0) {
        const double top = static_cast<double>(n_bins - 1);
        for (i64 j = 0; j < n; ++j)
            if (compat_angle_bin(p1[j], box_length, top) < 0 || compat_angle_bin(p2[j], box_length, top) < 0)
                return bad = j, 3;
    }
    for (auto& t : th) {
        t.flush();
        for (size_t j = 0; j < nb2; ++j) hist[j].merge(t.hist[j]);
    }
    return 0;
}

}  // namespace acme::core
