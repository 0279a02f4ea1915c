// Shared building blocks for the acme_fast kernels.
//
// Pure C++17: raw pointers and sizes, no Python. Everything here is
// deterministic: the same inputs give the same bits whatever the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "parallel.hpp"
#include "simd/dispatch.hpp"

namespace acme::core {

using i64 = std::int64_t;
using u64 = std::uint64_t;

// splitmix64's output function: a well-mixed 64-bit value of x (deterministic
// pseudo-random choices, e.g. where to sample inside a stratum).
inline u64 splitmix64(u64 x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// ---------------------------------------------------------------------------
// Input errors found inside a parallel pass. Every thread records the first
// offending (sequence, position) it meets; the smallest wins, so the message
// is the same for any thread count.
struct InputError {
    enum Kind : int { none = 0, not_one_hot = 1, not_finite = 2, weight_overflow = 3, not_probability = 4 };
    int kind = none;
    i64 seq = std::numeric_limits<i64>::max();
    i64 pos = 0;
    double value = 0.0;

    void record(int k, i64 s, i64 p, double v) {
        if (kind == none || s < seq || (s == seq && p < pos)) {
            kind = k;
            seq = s;
            pos = p;
            value = v;
        }
    }
    void merge(const InputError& o) {
        if (o.kind != none) record(o.kind, o.seq, o.pos, o.value);
    }
    bool ok() const { return kind == none; }
};

// ---------------------------------------------------------------------------
// numpy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src), in the
// accumulator type T. The ground-truth metrics of tfomics were computed with
// np.mean on float32 arrays; reproducing them to 1e-9 needs the same order.
template <class T>
T pairwise_sum(const T* a, i64 n) {
    if (n < 8) {
        T res = T(0);
        for (i64 i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= 128) {
        T r[8];
        for (int j = 0; j < 8; ++j) r[j] = a[j];
        i64 i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; ++j) r[j] += a[i + j];
        T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    }
    i64 n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

// np.mean(a) for a 1-D array of dtype T (NaN for n == 0, as numpy).
template <class T>
T numpy_mean(const T* a, i64 n) {
    if (n == 0) return std::numeric_limits<T>::quiet_NaN();
    return pairwise_sum(a, n) / static_cast<T>(n);
}

// ---------------------------------------------------------------------------
// np.quantile(a, q) with the default 'linear' method, bit for bit: virtual
// index (n - 1) * q, numpy's two-sided lerp.
// The two order statistics and the weight that np.quantile(a, q) (linear)
// interpolates between: the lo-th and hi-th smallest values and gamma.
struct OrderPair {
    double a, b, gamma;
};

inline void quantile_ranks(i64 n, double q, i64& lo, i64& hi, double& gamma) {
    const double vidx = static_cast<double>(n - 1) * q;
    if (vidx >= static_cast<double>(n - 1)) {
        lo = hi = n - 1;
        gamma = 0.0;
    } else {
        const double prev = std::floor(vidx);
        lo = static_cast<i64>(prev);
        hi = lo + 1;
        gamma = vidx - prev;
    }
}

// numpy's _lerp: two-sided, so that gamma = 1 gives b exactly.
inline double numpy_lerp(double a, double b, double gamma) {
    const double diff = b - a;
    return gamma >= 0.5 ? b - diff * (1.0 - gamma) : a + diff * gamma;
}

// np.quantile(buf[0..n), q), bit for bit. `buf` is scratch and is reordered.
inline double quantile_linear(double* buf, i64 n, double q) {
    i64 lo, hi;
    double gamma;
    quantile_ranks(n, q, lo, hi, gamma);
    std::nth_element(buf, buf + lo, buf + n);
    const double a = buf[lo];
    const double b = (hi == lo) ? a : *std::min_element(buf + lo + 1, buf + n);
    return numpy_lerp(a, b, gamma);
}

// ---------------------------------------------------------------------------
// Order statistics of a 64-value sample without branches on the values:
// the sample as 16 rows of 4, each column sorted by Batcher's odd-even merge
// network (63 compare-exchanges of whole rows: 4 columns at once, min/max
// only), then the k-th smallest walked off the 4 sorted columns from the
// nearer end. std::nth_element on 64 values took 0.75-0.8 us per call on the
// AVX2 machine (Zen 3), most of it mispredicted branches; this 0.21-0.27 us.
// (Exact: the same values as nth_element, so the same bracket.)
struct Net16 {
    int n = 0;
    int a[63] = {}, b[63] = {};
    constexpr void merge(int lo, int len, int r) {
        const int step = r * 2;
        if (step < len) {
            merge(lo, len, step);
            merge(lo + r, len, step);
            for (int i = lo + r; i + r < lo + len; i += step) add(i, i + r);
        } else {
            add(lo, lo + r);
        }
    }
    constexpr void sort(int lo, int hi) {
        if (hi - lo >= 1) {
            const int mid = lo + (hi - lo) / 2;
            sort(lo, mid);
            sort(mid + 1, hi);
            merge(lo, hi - lo + 1, 1);
        }
    }
    constexpr void add(int i, int j) {
        a[n] = i;
        b[n] = j;
        ++n;
    }
    constexpr Net16() { sort(0, 15); }
};
inline constexpr Net16 kNet16{};
static_assert(kNet16.n == 63, "Batcher's network on 16 inputs has 63 comparators");

struct Sample64 {
    // Rows 1..16: the sample, 4 columns; rows 0 and 17: -inf and +inf, the
    // sentinels of the walk in kth().
    double v[18][4];
    explicit Sample64(const double* x) { sort(x); }
    // Rows 1..16: the 64 values of x, each column sorted ascending.
    void sort(const double* x) {
        for (int c = 0; c < 4; ++c) {
            v[0][c] = -std::numeric_limits<double>::infinity();
            v[17][c] = std::numeric_limits<double>::infinity();
        }
#if defined(__GNUC__) || defined(__clang__)
        // Rows as GCC/Clang vectors of 4 doubles (SSE2 pairs on any x86-64, NEON
        // pairs on arm64): the element-wise selects compile to min/max, no branches;
        // unrolled, so that the rows stay in registers.
        typedef double Row __attribute__((vector_size(32)));
        Row r[16];
        for (int i = 0; i < 16; ++i) std::memcpy(&r[i], x + 4 * i, sizeof(Row));
#if !defined(__clang__)
#pragma GCC unroll 63
#endif
        for (int c = 0; c < kNet16.n; ++c) {
            const Row p = r[kNet16.a[c]], q = r[kNet16.b[c]];
            r[kNet16.a[c]] = q < p ? q : p;
            r[kNet16.b[c]] = q < p ? p : q;
        }
        for (int i = 0; i < 16; ++i) std::memcpy(v[1 + i], &r[i], sizeof(Row));  // row stores (not rep movs)
#else
        std::memcpy(v[1], x, 64 * sizeof(double));
        for (int c = 0; c < kNet16.n; ++c) {
            double* p = v[1 + kNet16.a[c]];
            double* q = v[1 + kNet16.b[c]];
            for (int l = 0; l < 4; ++l) {
                const double a = p[l], b = q[l];  // the same selects as above
                p[l] = b < a ? b : a;
                q[l] = b < a ? a : b;
            }
        }
#endif
    }
    // The k-th smallest (0 <= k < 64): a merge walk over the four
    // sorted columns from the nearer end (at most 32 steps), the head chosen by
    // selects (a tournament of two pairs), not branches.
    double kth(int k) const {
        if (k < 32) {
            int h0 = 1, h1 = 1, h2 = 1, h3 = 1;  // in registers: no store and reload per step
            for (int s = 0;; ++s) {
                const double a = v[h0][0], b = v[h1][1], c = v[h2][2], d = v[h3][3];
                const int ab = b < a, cd = d < c;
                const double mab = std::min(a, b), mcd = std::min(c, d);
                const int x = mcd < mab;
                if (s == k) return std::min(mab, mcd);
                const int best = x * (2 + cd) + (1 - x) * ab;  // integer selects: no branch on the values
                h0 += best == 0;
                h1 += best == 1;
                h2 += best == 2;
                h3 += best == 3;
            }
        }
        int h0 = 16, h1 = 16, h2 = 16, h3 = 16;
        for (int s = 63;; --s) {
            const double a = v[h0][0], b = v[h1][1], c = v[h2][2], d = v[h3][3];
            const int ab = a < b, cd = c < d;
            const double mab = std::max(a, b), mcd = std::max(c, d);
            const int x = mab < mcd;
            if (s == k) return std::max(mab, mcd);
            const int best = x * (2 + cd) + (1 - x) * ab;
            h0 -= best == 0;
            h1 -= best == 1;
            h2 -= best == 2;
            h3 -= best == 3;
        }
    }
};

// The bracket pass of a selection: below += #(src[j] < lo) and the values with
// lo <= src[j] <= hi appended, in order, to buf at m (room for n values): the
// tier's vector loop, then the scalar loop, which defines the result, on the rest.
inline void bracket_values(const double* src, i64 n, double lo, double hi, double* buf, i64& below, i64& m) {
    i64 j0 = 0;
    if (const auto f = kernels().bracket) j0 = f(src, n, lo, hi, buf, below, m);
    for (i64 j = j0; j < n; ++j) {
        const double v = src[j];
        below += v < lo;
        buf[m] = v;
        m += (v >= lo) & (v <= hi);
    }
}

// The indices j < n with s[j] > t into idx (room for n), in order; returns how
// many (branch-free compaction: the tier's vector loop, then the scalar loop).
inline i64 indices_above(const double* s, i64 n, double t, i64* idx) {
    i64 k = 0, j0 = 0;
    if (const auto f = kernels().indices_above) j0 = f(s, n, t, idx, k);
    for (i64 j = j0; j < n; ++j) {
        idx[k] = j;
        k += s[j] > t;
    }
    return k;
}

// Order statistics for quantile q of src[0..n) without reordering src, usually
// in one pass: a sorted sample of 64 values brackets the two ranks; one pass
// counts the values below the bracket and copies those inside it to `buf`
// (room for n values), where nth_element finishes. If the bracket misses (an
// unlucky sample) the full selection runs instead. Exact either way.
// `buf2`, `buf3` (room for n each, optional) let the AVX-512 selection run.
// The same for the lo-th and hi-th smallest values (hi == lo or lo + 1) and a given gamma.
inline OrderPair order_pair_ranks(const double* src, i64 n, i64 lo, i64 hi, double gamma, double* buf,
                                  double* buf2 = nullptr, double* buf3 = nullptr) {
    auto full = [&]() {
        std::memcpy(buf, src, sizeof(double) * static_cast<size_t>(n));
        std::nth_element(buf, buf + lo, buf + n);
        const double a = buf[lo];
        const double b = (hi == lo) ? a : *std::min_element(buf + lo + 1, buf + n);
        return OrderPair{a, b, gamma};
    };
    if (n < 512) return full();
    // 64 evenly spaced values (a sequence's points); 4096 for a million values or more
    // (the drop-in layer's all-points cutoff), with margins of about 2.7 and 3.4 sample
    // standard deviations of the rank at q = 0.9: a bracket of ~20% or ~3% of the values.
    const bool big = n >= (i64(1) << 20);
    const int lgS = big ? 12 : 6, S = 1 << lgS;
    double smp[4096];
    const i64 off = n >> (lgS + 1);  // n / (2 S)
    for (int j = 0; j < S; ++j) smp[j] = src[((static_cast<i64>(j) * n) >> lgS) + off];  // (j n) / S
    const i64 ts = (lo * S) / n;
    const i64 ia = ts - (big ? 64 : 6), ib = ts + (big ? 65 : 7);
    const double inf = std::numeric_limits<double>::infinity();
    double plo = -inf, phi = inf;
    if (big) {
        // Only two order statistics of the sample are needed: two partial selections.
        if (ia >= 0) std::nth_element(smp, smp + ia, smp + S);
        if (ib < S) std::nth_element(smp + (ia >= 0 ? ia + 1 : 0), smp + ib, smp + S);
        if (ia >= 0) plo = smp[ia];
        if (ib < S) phi = smp[ib];
    } else {
        const Sample64 sm(smp);
        if (ia >= 0) plo = sm.kth(static_cast<int>(ia));
        if (ib < S) phi = sm.kth(static_cast<int>(ib));
    }
    i64 below = 0, m = 0;
    bracket_values(src, n, plo, phi, buf, below, m);
    if (!(below <= lo && hi < below + m)) return full();
    const i64 k = lo - below;
    const Kernels& K = kernels();
    if (buf2 != nullptr && buf3 != nullptr && K.select_pair) {
        double a, b;
        K.select_pair(buf, m, k, buf2, buf3, a, b);
        return OrderPair{a, (hi == lo) ? a : b, gamma};
    }
    std::nth_element(buf, buf + k, buf + m);
    const double a = buf[k];
    const double b = (hi == lo) ? a : *std::min_element(buf + k + 1, buf + m);
    return OrderPair{a, b, gamma};
}

inline OrderPair order_pair(const double* src, i64 n, double q, double* buf, double* buf2 = nullptr,
                            double* buf3 = nullptr) {
    i64 lo, hi;
    double gamma;
    quantile_ranks(n, q, lo, hi, gamma);
    return order_pair_ranks(src, n, lo, hi, gamma, buf, buf2, buf3);
}

// The same value as quantile_linear(copy of src, n, q).
inline double quantile_fast(const double* src, i64 n, double q, double* buf) {
    const OrderPair o = order_pair(src, n, q, buf);
    return numpy_lerp(o.a, o.b, o.gamma);
}

// ---------------------------------------------------------------------------
// Linear maps of a raw attribution vector (x, y, z, w) = (A, C, G, T).
// Every coefficient row sums to zero, so these equal the same maps applied to
// the gauge-corrected vector: the correction never has to be materialised.
//   e1, e2, e3: the orthonormal basis of the plane x + y + z + w = 0 (SPEC 3);
//   e2a: the published (non-orthonormal) second coordinate of the *corrected*
//        vector, (-x_c - y_c) / sqrt(6) = (-x - y + z + w) / (2 sqrt(6)).
// ||(e1, e2, e3)|| is the L2 norm of the gauge-corrected vector.
struct Basis {
    static constexpr double r2 = 0.70710678118654752440;   // 1/sqrt(2)
    static constexpr double r6 = 0.40824829046386301637;   // 1/sqrt(6)
    static constexpr double r12 = 0.28867513459481288225;  // 1/sqrt(12)
    // Written as sums of differences so that equal channels give exactly 0.
    static double e1(double x, double y) { return (y - x) * r2; }
    static double e2(double x, double y, double z) { return ((z - x) + (z - y)) * r6; }
    static double e3(double x, double y, double z, double w) { return ((w - x) + (w - y) + (w - z)) * r12; }
    static double e2a(double x, double y, double z, double w) { return ((z - x) + (w - y)) * (0.5 * r6); }
};

// ||A - mean_c A||_2^2 of one position, as SPEC writes it (numpy's order of
// operations), so that scores equal in exact arithmetic stay equal.
inline double gauge_norm2(double x, double y, double z, double w) {
    const double mu = (x + y + z + w) / 4.0;
    const double a = x - mu, b = y - mu, c = z - mu, d = w - mu;
    return a * a + b * b + c * c + d * d;
}
inline double gauge_norm(double x, double y, double z, double w) { return std::sqrt(gauge_norm2(x, y, z, w)); }

// Reads position l of one sequence (layout NLC: l*4 + c; NCL: c*L + l).
template <class TA, bool NCL>
inline void read4(const TA* a, i64 L, i64 l, double& x, double& y, double& z, double& w) {
    if (NCL) {
        x = static_cast<double>(a[l]);
        y = static_cast<double>(a[L + l]);
        z = static_cast<double>(a[2 * L + l]);
        w = static_cast<double>(a[3 * L + l]);
    } else {
        x = static_cast<double>(a[4 * l]);
        y = static_cast<double>(a[4 * l + 1]);
        z = static_cast<double>(a[4 * l + 2]);
        w = static_cast<double>(a[4 * l + 3]);
    }
}

// First non-finite value of a sequence (slow path, only after a check failed).
template <class TA, bool NCL>
bool first_nonfinite(const TA* a, i64 L, i64& bad_pos, double& bad_val) {
    for (i64 l = 0; l < L; ++l) {
        double v[4];
        read4<TA, NCL>(a, L, l, v[0], v[1], v[2], v[3]);
        for (double x : v)
            if (!std::isfinite(x)) {
                bad_pos = l;
                bad_val = x;
                return true;
            }
    }
    return false;
}

// First value of a sequence model that is not a probability in [0, 1] (slow
// path, only after a check failed); pos is the position.
template <bool NCL>
bool first_not_probability(const double* m, i64 L, i64& bad_pos, double& bad_val) {
    for (i64 l = 0; l < L; ++l)
        for (int c = 0; c < 4; ++c) {
            const double v = NCL ? m[c * L + l] : m[l * 4 + c];
            if (!(v >= 0.0 && v <= 1.0)) {
                bad_pos = l;
                bad_val = v;
                return true;
            }
        }
    return false;
}

// Squared gauge-corrected L2 norm of every position into s2[L]. False on non-finite input.
template <class TA, bool NCL>
bool load_norms2(const TA* a, i64 L, double* s, i64& bad_pos, double& bad_val) {
    double fin = 0.0;  // stays 0 unless some value is inf or nan (then nan)
    i64 l0 = 0;
    if constexpr (std::is_same_v<TA, float>) {
        bool ok = true;
        if (const auto f = kernels().norms2_f32) l0 = f(a, L, NCL, s, ok);
        if (!ok) fin = std::numeric_limits<double>::quiet_NaN();
    }
    for (i64 l = l0; l < L; ++l) {
        double x, y, z, w;
        read4<TA, NCL>(a, L, l, x, y, z, w);
        fin += (x - x) + (y - y) + (z - z) + (w - w);
        s[l] = gauge_norm2(x, y, z, w);
    }
    if (fin == 0.0) return true;
    first_nonfinite<TA, NCL>(a, L, bad_pos, bad_val);
    return false;
}

// ---------------------------------------------------------------------------
// Any finite float64 input is valid. Squared norms of values above ~1e154
// overflow and those of values below ~1e-154 lose precision or vanish, so a
// sequence whose squared norms leave [2^-800, 2^800] is first scaled by a
// power of two (exact for every value): the metrics depend on a sequence's
// norms only through comparisons and ratios within the sequence, which the
// scale leaves unchanged. float32 input never needs it (its squares stay far
// inside that range). Only this rare path pays for the copy.
constexpr double kSquareHi = 0x1p+800, kSquareLo = 0x1p-800;
constexpr int kNoRescale = std::numeric_limits<int>::min();

inline bool squares_out_of_range(const double* s, i64 n) {
    double mx = 0.0;
    for (i64 j = 0; j < n; ++j) mx = s[j] > mx ? s[j] : mx;
    return !(mx <= kSquareHi) || mx < kSquareLo;
}

// buf[0..4L) = a * 2^-e with e the exponent of max |a| (so that max |buf| is
// in [1, 2)); returns e, or kNoRescale (nothing copied) when every value is 0
// or some value is not finite (the caller's check reports that).
template <class TA>
int rescale_copy(const TA* a, i64 L, std::vector<double>& buf) {
    double mx = 0.0;
    for (i64 j = 0; j < 4 * L; ++j) {
        const double v = std::fabs(static_cast<double>(a[j]));
        if (!(v <= std::numeric_limits<double>::max())) return kNoRescale;
        mx = v > mx ? v : mx;
    }
    if (mx == 0.0) return kNoRescale;
    const int e = std::ilogb(mx);
    buf.resize(static_cast<size_t>(4 * L));
    for (i64 j = 0; j < 4 * L; ++j) buf[j] = std::ldexp(static_cast<double>(a[j]), -e);
    return e;
}

// ---------------------------------------------------------------------------
// Exact, order-independent sum of non-negative doubles: a 256-bit fixed-point
// integer with unit 2^-128. Bits below 2^-128 are truncated (deterministically);
// a weight of 2^96 or more is refused (leaves 32 bits of headroom for 4e9 adds).
// Adding and merging are integer additions, so batches, merges and thread
// counts cannot change a single bit of the histogram.
struct FixedSum {
    u64 limb[4] = {0, 0, 0, 0};

    static constexpr int kFracBits = 128;
    static constexpr int kMaxExp = 96;  // weights must be < 2^96

    void add_bits(int idx, u64 v) {
        for (int i = idx; i < 4 && v; ++i) {
            const u64 old = limb[i];
            limb[i] = old + v;
            v = (limb[i] < old) ? 1u : 0u;
        }
    }
    // Returns false if w is too large (or not finite / negative).
    bool add(double w) {
        u64 bits;
        std::memcpy(&bits, &w, sizeof bits);
        if (bits >> 63) return w == 0.0;  // -0.0 is fine, negatives are not
        const int ex = static_cast<int>((bits >> 52) & 0x7FF);
        if (ex == 0x7FF) return false;            // inf / nan
        if (ex == 0) return true;                 // zero or subnormal: below 2^-128
        if (ex - 1023 >= kMaxExp) return false;   // w >= 2^96
        u64 mant = (bits & ((u64(1) << 52) - 1)) | (u64(1) << 52);
        int shift = ex - 1075 + kFracBits;        // bit position of mant's LSB
        if (shift < 0) {
            if (shift <= -64) return true;        // below 2^-128: truncated
            mant >>= -shift;
            shift = 0;
        }
        const int idx = shift / 64, off = shift % 64;  // shift < 96 + 128 - 52: idx <= 2
#if defined(__SIZEOF_INT128__)
        // mant << off has at most 116 bits: one 128-bit add over limbs idx, idx + 1.
        using u128 = unsigned __int128;
        const u128 v = static_cast<u128>(mant) << off;
        const u128 cur = (static_cast<u128>(limb[idx + 1]) << 64) | limb[idx];
        const u128 sum = cur + v;
        limb[idx] = static_cast<u64>(sum);
        limb[idx + 1] = static_cast<u64>(sum >> 64);
        if (sum < v) add_bits(idx + 2, 1);
#else
        add_bits(idx, mant << off);
        if (off) add_bits(idx + 1, mant >> (64 - off));
#endif
        return true;
    }
    void merge(const FixedSum& o) {
        u64 carry = 0;
        for (int i = 0; i < 4; ++i) {
            const u64 a = limb[i], b = o.limb[i];
            u64 s = a + b;
            const u64 c1 = s < a;
            const u64 s2 = s + carry;
            const u64 c2 = s2 < s;
            limb[i] = s2;
            carry = c1 | c2;
        }
    }
    // this -= o (o <= this: used for running window sums, whose value never goes below zero).
    void sub(const FixedSum& o) {
        u64 borrow = 0;
        for (int i = 0; i < 4; ++i) {
            const u64 a = limb[i], b = o.limb[i];
            const u64 d = a - b;
            const u64 b1 = a < b;
            const u64 d2 = d - borrow;
            const u64 b2 = d < borrow;
            limb[i] = d2;
            borrow = b1 | b2;
        }
    }
    double value() const {
        return std::ldexp(static_cast<double>(limb[3]), 64) + static_cast<double>(limb[2]) +
               std::ldexp(static_cast<double>(limb[1]), -64) +
               std::ldexp(static_cast<double>(limb[0]), -128);
    }
};

#if defined(__SIZEOF_INT128__)
// The common weights, summed fast and exactly: a 128-bit integer in units of
// 2^-92 takes every weight in [2^-40, 2^8) (all its bits are >= 2^-92, so
// nothing is truncated: FixedSum would hold the same bits), and is added into
// a FixedSum afterwards. Up to 2^28 adds fit (< 2^36 in all); other weights go
// to FixedSum::add directly.
struct WindowSum {
    using u128 = unsigned __int128;
    static constexpr int kUnitExp = -92, kLoExp = -40, kHiExp = 8;
    static constexpr i64 kMaxAdds = i64(1) << 28;
    // The weight in units of 2^-92, or 0 when it is outside the window.
    static u128 units(double w) {
        u64 bits;
        std::memcpy(&bits, &w, sizeof bits);
        const int e = static_cast<int>((bits >> 52) & 0x7FF) - 1023;  // unbiased exponent
        if ((bits >> 63) || e < kLoExp || e >= kHiExp) return 0;
        const u64 mant = (bits & ((u64(1) << 52) - 1)) | (u64(1) << 52);
        return static_cast<u128>(mant) << (e - 52 - kUnitExp);
    }
    // fs += v * 2^-92
    static void add_to(FixedSum& fs, u128 v) {
        constexpr int sh = FixedSum::kFracBits + kUnitExp;  // 36: 2^-92 is bit 36 of FixedSum
        fs.add_bits(0, static_cast<u64>(v) << sh);
        fs.add_bits(1, static_cast<u64>(v >> (64 - sh)));
        fs.add_bits(2, static_cast<u64>(v >> (128 - sh)));
    }
};
#endif

// ---------------------------------------------------------------------------
// Per-sequence readers. Layout NLC: element (l, c) at l*4 + c; NCL: c*L + l.

// Gauge-corrected attribution of one sequence into out[L*4] (double), checking
// that every value is finite. Returns false (and the first bad position) if not.
// With correct == false the values are copied as given (for the compatibility
// layer, whose published functions expect an already corrected map).
template <class TA, bool NCL>
bool load_gauge(const TA* a, i64 L, double* out, i64& bad_pos, double& bad_val, bool correct = true) {
    for (i64 l = 0; l < L; ++l) {
        double v[4];
        for (int c = 0; c < 4; ++c) v[c] = static_cast<double>(NCL ? a[c * L + l] : a[l * 4 + c]);
        if (!(std::isfinite(v[0]) && std::isfinite(v[1]) && std::isfinite(v[2]) && std::isfinite(v[3]))) {
            bad_pos = l;
            bad_val = !std::isfinite(v[0]) ? v[0] : !std::isfinite(v[1]) ? v[1] : !std::isfinite(v[2]) ? v[2] : v[3];
            return false;
        }
        const double mu = correct ? (v[0] + v[1] + v[2] + v[3]) / 4.0 : 0.0;
        for (int c = 0; c < 4; ++c) out[l * 4 + c] = v[c] - mu;
    }
    return true;
}

// One-hot codes of one sequence: 0..3 for A,C,G,T, -1 for an all-zero row (N).
// Returns false at the first row that is neither.
template <class TX, bool NCL>
bool load_codes_slow(const TX* x, i64 L, std::int8_t* codes, i64& bad_pos) {
    for (i64 l = 0; l < L; ++l) {
        int code = -1, ones = 0;
        bool bad = false;
        for (int c = 0; c < 4; ++c) {
            const TX v = NCL ? x[c * L + l] : x[l * 4 + c];
            if (v == TX(1)) {
                ++ones;
                code = c;
            } else if (!(v == TX(0))) {
                bad = true;
            }
        }
        if (bad || ones > 1) {
            bad_pos = l;
            return false;
        }
        codes[l] = static_cast<std::int8_t>(code);
    }
    return true;
}

// Branch-free pass; the slow loop above only runs to locate a bad row.
template <class TX, bool NCL>
bool load_codes(const TX* x, i64 L, std::int8_t* codes, i64& bad_pos) {
    int bad = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if constexpr (sizeof(TX) == 1 && !NCL) {
        // A uint8 row is one 32-bit word: valid words are 0 and 1 << (8 * c).
        for (i64 l = 0; l < L; ++l) {
            std::uint32_t wd;
            std::memcpy(&wd, x + 4 * l, 4);
            bad |= ((wd & ~0x01010101u) != 0) | ((wd & (wd - 1)) != 0);
            codes[l] = wd ? static_cast<std::int8_t>(__builtin_ctz(wd) >> 3) : std::int8_t(-1);
        }
        if (!bad) return true;
        return load_codes_slow<TX, NCL>(x, L, codes, bad_pos);
    }
#endif
    i64 l0 = 0;
    if constexpr (std::is_same_v<TX, float>) {
        bool b = false;
        if (const auto f = kernels().codes_f32) l0 = f(x, L, NCL, codes, b);
        bad = b;
    }
    for (i64 l = l0; l < L; ++l) {
        TX v[4];
        for (int c = 0; c < 4; ++c) v[c] = NCL ? x[c * L + l] : x[l * 4 + c];
        const int o0 = v[0] == TX(1), o1 = v[1] == TX(1), o2 = v[2] == TX(1), o3 = v[3] == TX(1);
        const int z = (v[0] == TX(0)) + (v[1] == TX(0)) + (v[2] == TX(0)) + (v[3] == TX(0));
        const int ones = o0 + o1 + o2 + o3;
        bad |= (ones + z != 4) | (ones > 1);
        codes[l] = static_cast<std::int8_t>(ones ? (o1 + 2 * o2 + 3 * o3) : -1);
    }
    if (!bad) return true;
    return load_codes_slow<TX, NCL>(x, L, codes, bad_pos);
}

}  // namespace acme::core
