// AVX2 versions of the k-attr loops, for x86-64 CPUs without AVX-512 (AMD Zen 2/3,
// most Intel desktops and laptops). Chosen at run time by the dispatch table (dispatch.hpp).
//
// The same contract as the AVX-512 loops in avx512.hpp: every function computes
// exactly what the scalar loop it replaces computes, bit for bit: the same
// correctly rounded IEEE operations (add, sub, mul, sqrt) in the same order per
// value, no fused multiply-add (the target attribute leaves FMA out and the build
// passes -ffp-contract=off), the 8-lane norm accumulator of the scalar loop kept
// as two 4-lane halves, and compaction (compress) that keeps the input order.
// Each function does a prefix of its input and returns its length; the caller's
// scalar loop finishes the tail.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "select.hpp"
#include "tier.hpp"

#if ACME_X86_SIMD
#include <immintrin.h>
#define ACME_AVX2 __attribute__((target("avx2,popcnt")))

namespace acme::core::avx2 {

// For each 4-bit mask, the lanes it selects moved to the front, in order: as
// 32-bit lane indices of 64-bit lanes (for _mm256_permutevar8x32_epi32) and as
// 32-bit lane indices of 4 floats (for _mm_permutevar_ps). Unused slots take lane 0.
// idx64_high: the same lanes moved to the top (the last popcount(mask) slots), in order.
struct CompressLUT {
    alignas(32) std::int32_t idx64[16][8];
    alignas(32) std::int32_t idx64_high[16][8];
    alignas(16) std::int32_t idx32[16][4];
    constexpr CompressLUT() : idx64{}, idx64_high{}, idx32{} {
        for (int m = 0; m < 16; ++m) {
            int k = 0;
            for (int lane = 0; lane < 4; ++lane)
                if (m & (1 << lane)) idx32[m][k++] = lane;
            for (int j = 0; j < 4; ++j) {
                const int lane = j < k ? idx32[m][j] : 0;
                idx64[m][2 * j] = 2 * lane;
                idx64[m][2 * j + 1] = 2 * lane + 1;
                const int hi = j >= 4 - k ? idx32[m][j - (4 - k)] : 0;
                idx64_high[m][2 * j] = 2 * hi;
                idx64_high[m][2 * j + 1] = 2 * hi + 1;
            }
        }
    }
};
inline constexpr CompressLUT kCompress{};

ACME_AVX2 inline __m256i compress_perm(int mask) {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.idx64[mask]));
}

// Channels x, y, z, w (A, C, G, T) of positions l .. l + 3 as doubles.
ACME_AVX2 inline void f32_read(const float* a, std::int64_t L, std::int64_t l, bool ncl, __m256d& x, __m256d& y,
                               __m256d& z, __m256d& w) {
    if (ncl) {
        x = _mm256_cvtps_pd(_mm_loadu_ps(a + l));
        y = _mm256_cvtps_pd(_mm_loadu_ps(a + L + l));
        z = _mm256_cvtps_pd(_mm_loadu_ps(a + 2 * L + l));
        w = _mm256_cvtps_pd(_mm_loadu_ps(a + 3 * L + l));
    } else {
        __m128 r0 = _mm_loadu_ps(a + 4 * l), r1 = _mm_loadu_ps(a + 4 * l + 4);
        __m128 r2 = _mm_loadu_ps(a + 4 * l + 8), r3 = _mm_loadu_ps(a + 4 * l + 12);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);  // rows (positions) to columns (channels)
        x = _mm256_cvtps_pd(r0);
        y = _mm256_cvtps_pd(r1);
        z = _mm256_cvtps_pd(r2);
        w = _mm256_cvtps_pd(r3);
    }
}

// gauge_norm2 of 4 positions: mu = (x + y + z + w) / 4 (== * 0.25 exactly);
// a*a + b*b + c*c + d*d, left to right.
ACME_AVX2 inline __m256d gauge_norm2_4(__m256d x, __m256d y, __m256d z, __m256d w) {
    const __m256d mu =
        _mm256_mul_pd(_mm256_add_pd(_mm256_add_pd(_mm256_add_pd(x, y), z), w), _mm256_set1_pd(0.25));
    const __m256d da = _mm256_sub_pd(x, mu), db = _mm256_sub_pd(y, mu);
    const __m256d dc = _mm256_sub_pd(z, mu), dd = _mm256_sub_pd(w, mu);
    __m256d n2 = _mm256_add_pd(_mm256_mul_pd(da, da), _mm256_mul_pd(db, db));
    n2 = _mm256_add_pd(n2, _mm256_mul_pd(dc, dc));
    return _mm256_add_pd(n2, _mm256_mul_pd(dd, dd));
}

// load_norms2 for float32 input: s[l] = gauge_norm2 of positions l < L4; fin
// becomes false if any value read is inf or nan. Returns L4.
ACME_AVX2 inline std::int64_t norms2_f32(const float* a, std::int64_t L, bool ncl, double* s, bool& fin) {
    const std::int64_t L4 = L & ~std::int64_t(3);
    __m256d f = _mm256_setzero_pd();  // stays 0 unless some value is inf or nan
    for (std::int64_t l = 0; l < L4; l += 4) {
        __m256d x, y, z, w;
        f32_read(a, L, l, ncl, x, y, z, w);
        f = _mm256_add_pd(f, _mm256_add_pd(_mm256_add_pd(_mm256_sub_pd(x, x), _mm256_sub_pd(y, y)),
                                           _mm256_add_pd(_mm256_sub_pd(z, z), _mm256_sub_pd(w, w))));
        _mm256_storeu_pd(s + l, gauge_norm2_4(x, y, z, w));
    }
    fin = _mm256_movemask_pd(_mm256_cmp_pd(f, _mm256_setzero_pd(), _CMP_EQ_OQ)) == 0xF;
    return L4;
}

struct F64x4Block {
    __m256d e1, e2, e3, nrm;
};

ACME_AVX2 inline F64x4Block f32_block(const float* a, std::int64_t L, std::int64_t l, bool ncl, bool acme) {
    __m256d x, y, z, w;
    f32_read(a, L, l, ncl, x, y, z, w);
    const __m256d r2 = _mm256_set1_pd(0.70710678118654752440);
    const __m256d r6 = _mm256_set1_pd(acme ? 0.5 * 0.40824829046386301637 : 0.40824829046386301637);
    const __m256d r12 = _mm256_set1_pd(0.28867513459481288225);
    F64x4Block b;
    b.nrm = _mm256_sqrt_pd(gauge_norm2_4(x, y, z, w));
    b.e1 = _mm256_mul_pd(_mm256_sub_pd(y, x), r2);
    const __m256d e2 = acme ? _mm256_add_pd(_mm256_sub_pd(z, x), _mm256_sub_pd(w, y))
                            : _mm256_add_pd(_mm256_sub_pd(z, x), _mm256_sub_pd(z, y));
    b.e2 = _mm256_mul_pd(e2, r6);
    const __m256d e3 =
        _mm256_add_pd(_mm256_add_pd(_mm256_sub_pd(w, x), _mm256_sub_pd(w, y)), _mm256_sub_pd(w, z));
    b.e3 = _mm256_mul_pd(e3, r12);
    return b;
}

// E1, E2, E3 of positions l .. l + 7.
ACME_AVX2 inline void store_e8(double* E1, double* E2, double* E3, std::int64_t l, const F64x4Block& b0,
                               const F64x4Block& b1) {
    _mm256_storeu_pd(E1 + l, b0.e1);
    _mm256_storeu_pd(E2 + l, b0.e2);
    _mm256_storeu_pd(E3 + l, b0.e3);
    _mm256_storeu_pd(E1 + l + 4, b1.e1);
    _mm256_storeu_pd(E2 + l + 4, b1.e2);
    _mm256_storeu_pd(E3 + l + 4, b1.e3);
}

// Per-position pass of SeqPoints::load for float32 input, 8 positions per step
// (two blocks of 4): E1, E2, E3 stored, acc[j] += norm of positions 8k + j (the
// scalar loop's 8 lanes). Returns the positions done.
ACME_AVX2 inline std::int64_t load_f32(const float* a, std::int64_t L, bool ncl, bool acme, double* E1, double* E2,
                                       double* E3, double* acc) {
    const std::int64_t L8 = L & ~std::int64_t(7);
    __m256d lo = _mm256_loadu_pd(acc), hi = _mm256_loadu_pd(acc + 4);
    for (std::int64_t l = 0; l < L8; l += 8) {
        const F64x4Block b0 = f32_block(a, L, l, ncl, acme);
        const F64x4Block b1 = f32_block(a, L, l + 4, ncl, acme);
        lo = _mm256_add_pd(lo, b0.nrm);
        hi = _mm256_add_pd(hi, b1.nrm);
        store_e8(E1, E2, E3, l, b0, b1);
    }
    _mm256_storeu_pd(acc, lo);
    _mm256_storeu_pd(acc + 4, hi);
    return L8;
}

// Window-3 sums of the 4 points of a: (E[p] + E[p + 1]) + E[p + 2], b the next 4 positions.
// In-lane shuffles only where they suffice (vshufpd: one cycle, two per cycle on Zen 3).
ACME_AVX2 inline __m256d window3_sum4(__m256d a, __m256d b) {
    const __m256d s2 = _mm256_permute2f128_pd(a, b, 0x21);  // a2 a3 b0 b1
    const __m256d s1 = _mm256_shuffle_pd(a, s2, 0x5);       // a1 a2 a3 b0
    return _mm256_add_pd(_mm256_add_pd(a, s1), s2);
}

// Windows p .. p + 3 from the blocks of positions p .. p + 3 (a) and p + 4 .. p + 7 (b):
// the sums and their squared norm, (s1 s1 + s2 s2) + s3 s3.
ACME_AVX2 inline void windows4(double* o1, double* o2, double* o3, double* os, std::int64_t p, __m256d a1,
                               __m256d a2, __m256d a3, const F64x4Block& b) {
    const __m256d s1 = window3_sum4(a1, b.e1), s2 = window3_sum4(a2, b.e2), s3 = window3_sum4(a3, b.e3);
    _mm256_storeu_pd(o1 + p, s1);
    _mm256_storeu_pd(o2 + p, s2);
    _mm256_storeu_pd(o3 + p, s3);
    const __m256d q = _mm256_add_pd(_mm256_mul_pd(s1, s1), _mm256_mul_pd(s2, s2));
    _mm256_storeu_pd(os + p, _mm256_add_pd(q, _mm256_mul_pd(s3, s3)));
}

// The layout and the preset fixed at compile time: no branch in the loop, the
// constants in registers.
template <bool NCL, bool ACME>
ACME_AVX2 inline std::int64_t load_w3_f32_t(const float* a, std::int64_t L, double* E1, double* E2, double* E3,
                                            double* o1, double* o2, double* o3, double* os, double* acc,
                                            std::int64_t& pw) {
    const std::int64_t L8 = L & ~std::int64_t(7);
    __m256d lo = _mm256_loadu_pd(acc), hi = _mm256_loadu_pd(acc + 4);
    const F64x4Block p0 = f32_block(a, L, 0, NCL, ACME);
    F64x4Block q = f32_block(a, L, 4, NCL, ACME);
    lo = _mm256_add_pd(lo, p0.nrm);
    hi = _mm256_add_pd(hi, q.nrm);
    store_e8(E1, E2, E3, 0, p0, q);
    windows4(o1, o2, o3, os, 0, p0.e1, p0.e2, p0.e3, q);
    // The previous block's projections roll along: 3 registers, not a whole block.
    __m256d r1 = q.e1, r2 = q.e2, r3 = q.e3;
    for (std::int64_t l = 8; l < L8; l += 8) {
        // software prefetch ahead, and the same positions of the next sequence towards L2
        // (as avx512.hpp; past the end it touches the next sequence, harmless)
        if constexpr (NCL) {
            for (int c = 0; c < 4; ++c) {
                _mm_prefetch(reinterpret_cast<const char*>(a + c * L + l + 512), _MM_HINT_T0);
                _mm_prefetch(reinterpret_cast<const char*>(a + (4 + c) * L + l), _MM_HINT_T1);
            }
        } else {
            _mm_prefetch(reinterpret_cast<const char*>(a + 4 * l + 2048), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(a + 4 * (L + l)), _MM_HINT_T1);
        }
        const F64x4Block b0 = f32_block(a, L, l, NCL, ACME);
        lo = _mm256_add_pd(lo, b0.nrm);
        windows4(o1, o2, o3, os, l - 4, r1, r2, r3, b0);
        const F64x4Block b1 = f32_block(a, L, l + 4, NCL, ACME);
        hi = _mm256_add_pd(hi, b1.nrm);
        windows4(o1, o2, o3, os, l, b0.e1, b0.e2, b0.e3, b1);
        r1 = b1.e1;
        r2 = b1.e2;
        r3 = b1.e3;
        if (l + 8 == L8) store_e8(E1, E2, E3, l, b0, b1);
    }
    _mm256_storeu_pd(acc, lo);
    _mm256_storeu_pd(acc + 4, hi);
    pw = L8 - 4;
    return L8;
}

// load_w3_f32 of avx512.hpp: load_f32 fused with the window-3 sums, without a
// round trip through memory, 8 positions per step (two blocks of 4, the norm
// accumulator's 8 lanes): windows p < pw (pw = L8 - 4) go straight to o1, o2,
// o3 and os; E is stored only for the first and the last 8 positions (the
// wrap-around windows and the scalar tail need those). Returns the positions
// done (L8); 0 when L < 16.
ACME_AVX2 inline std::int64_t load_w3_f32(const float* a, std::int64_t L, bool ncl, bool acme, double* E1,
                                          double* E2, double* E3, double* o1, double* o2, double* o3, double* os,
                                          double* acc, std::int64_t& pw) {
    pw = 0;
    if ((L & ~std::int64_t(7)) < 16) return 0;
    if (ncl) {
        return acme ? load_w3_f32_t<true, true>(a, L, E1, E2, E3, o1, o2, o3, os, acc, pw)
                    : load_w3_f32_t<true, false>(a, L, E1, E2, E3, o1, o2, o3, os, acc, pw);
    }
    return acme ? load_w3_f32_t<false, true>(a, L, E1, E2, E3, o1, o2, o3, os, acc, pw)
                : load_w3_f32_t<false, false>(a, L, E1, E2, E3, o1, o2, o3, os, acc, pw);
}

// Window-3 sums of SeqPoints::load (points p = 0 .. n), 4 points per step.
ACME_AVX2 inline std::int64_t window3(const double* E1, const double* E2, const double* E3, std::int64_t n,
                                      double* o1, double* o2, double* o3, double* os) {
    const std::int64_t n4 = n & ~std::int64_t(3);
    for (std::int64_t p = 0; p < n4; p += 4) {
        const __m256d s1 = _mm256_add_pd(_mm256_add_pd(_mm256_loadu_pd(E1 + p), _mm256_loadu_pd(E1 + p + 1)),
                                         _mm256_loadu_pd(E1 + p + 2));
        const __m256d s2 = _mm256_add_pd(_mm256_add_pd(_mm256_loadu_pd(E2 + p), _mm256_loadu_pd(E2 + p + 1)),
                                         _mm256_loadu_pd(E2 + p + 2));
        const __m256d s3 = _mm256_add_pd(_mm256_add_pd(_mm256_loadu_pd(E3 + p), _mm256_loadu_pd(E3 + p + 1)),
                                         _mm256_loadu_pd(E3 + p + 2));
        _mm256_storeu_pd(o1 + p, s1);
        _mm256_storeu_pd(o2 + p, s2);
        _mm256_storeu_pd(o3 + p, s3);
        const __m256d q = _mm256_add_pd(_mm256_mul_pd(s1, s1), _mm256_mul_pd(s2, s2));
        _mm256_storeu_pd(os + p, _mm256_add_pd(q, _mm256_mul_pd(s3, s3)));
    }
    return n4;
}

// The bracket pass of order_pair: below += #(v < lo); values with lo <= v <= hi
// appended to buf (in order) at m. Returns the values done. The store writes 4
// values at m <= j, inside buf[0, n), as the scalar loop may.
ACME_AVX2 inline std::int64_t bracket(const double* src, std::int64_t n, double lo, double hi, double* buf,
                                      std::int64_t& below, std::int64_t& m) {
    const std::int64_t n4 = n & ~std::int64_t(3);
    const __m256d vlo = _mm256_set1_pd(lo), vhi = _mm256_set1_pd(hi);
    std::int64_t b = below, k = m;
    for (std::int64_t j = 0; j < n4; j += 4) {
        const __m256d v = _mm256_loadu_pd(src + j);
        const int lt = _mm256_movemask_pd(_mm256_cmp_pd(v, vlo, _CMP_LT_OQ));
        const int in = _mm256_movemask_pd(
            _mm256_and_pd(_mm256_cmp_pd(v, vlo, _CMP_GE_OQ), _mm256_cmp_pd(v, vhi, _CMP_LE_OQ)));
        b += _mm_popcnt_u32(static_cast<unsigned>(lt));
        const __m256i packed = _mm256_permutevar8x32_epi32(_mm256_castpd_si256(v), compress_perm(in));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(buf + k), packed);
        k += _mm_popcnt_u32(static_cast<unsigned>(in));
    }
    below = b;
    m = k;
    return n4;
}

// select_pair (select.hpp) with 4-lane loops: values below the pivot are
// compressed to the front (4-lane stores at lt), values above it to the back
// (4-lane stores ending at n - gt, the kept lanes on top). Blocks stop 8 values
// before the end, so that neither store's unused lanes reach the other side's
// values.
ACME_AVX2 inline std::int64_t partition4(const double* src, std::int64_t n, double piv, double* dst,
                                         std::int64_t& lt, std::int64_t& gt) {
    const __m256d vp = _mm256_set1_pd(piv);
    const std::int64_t nv = (n - 4) & ~std::int64_t(3);  // n > 32: the last block starts at <= n - 8
    for (std::int64_t j = 0; j < nv; j += 4) {
        const __m256d x = _mm256_loadu_pd(src + j);
        const int ml = _mm256_movemask_pd(_mm256_cmp_pd(x, vp, _CMP_LT_OQ));
        const int mg = _mm256_movemask_pd(_mm256_cmp_pd(x, vp, _CMP_GT_OQ));
        const __m256i xi = _mm256_castpd_si256(x);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + lt), _mm256_permutevar8x32_epi32(xi, compress_perm(ml)));
        const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.idx64_high[mg]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + (n - gt - 4)), _mm256_permutevar8x32_epi32(xi, hi));
        lt += _mm_popcnt_u32(static_cast<unsigned>(ml));
        gt += _mm_popcnt_u32(static_cast<unsigned>(mg));
    }
    return nv;
}

ACME_AVX2 inline std::int64_t count_le4(const double* v, std::int64_t m, double a, std::int64_t& le, double& mins) {
    const __m256d va = _mm256_set1_pd(a);
    __m256d mn = _mm256_set1_pd(std::numeric_limits<double>::infinity());
    const std::int64_t m4 = m & ~std::int64_t(3);
    for (std::int64_t i = 0; i < m4; i += 4) {
        const __m256d x = _mm256_loadu_pd(v + i);
        const __m256d ml = _mm256_cmp_pd(x, va, _CMP_LE_OQ);
        le += _mm_popcnt_u32(static_cast<unsigned>(_mm256_movemask_pd(ml)));
        mn = _mm256_blendv_pd(_mm256_min_pd(mn, x), mn, ml);
    }
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, mn);
    mins = std::min(mins, std::min(std::min(lanes[0], lanes[1]), std::min(lanes[2], lanes[3])));
    return m4;
}

ACME_AVX2 inline void select_pair(const double* v, std::int64_t m, std::int64_t k, double* t1, double* t2,
                                  double& a, double& b) {
    select_pair_with(v, m, k, t1, t2, a, b, partition4, count_le4);
}

// Indices p < n with s[p] > t appended (in order) to idx at k. Returns the values done.
ACME_AVX2 inline std::int64_t indices_above(const double* s, std::int64_t n, double t, std::int64_t* idx,
                                            std::int64_t& k) {
    const std::int64_t n4 = n & ~std::int64_t(3);
    const __m256d vt = _mm256_set1_pd(t);
    __m256i pv = _mm256_setr_epi64x(0, 1, 2, 3);
    const __m256i four = _mm256_set1_epi64x(4);
    std::int64_t c = k;
    for (std::int64_t p = 0; p < n4; p += 4) {
        const int gt = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(s + p), vt, _CMP_GT_OQ));
        // c <= p: the 4 values stored stay inside idx[0, n)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + c), _mm256_permutevar8x32_epi32(pv, compress_perm(gt)));
        c += _mm_popcnt_u32(static_cast<unsigned>(gt));
        pv = _mm256_add_epi64(pv, four);
    }
    k = c;
    return n4;
}

// keys[p] = bits(sqrt(s[p]) * scale) >> shift for p < n rounded down to 4. Returns n4.
ACME_AVX2 inline std::int64_t radius_keys(const double* s, std::int64_t n, double scale, int shift,
                                          std::int64_t* keys) {
    const std::int64_t n4 = n & ~std::int64_t(3);
    const __m256d vs = _mm256_set1_pd(scale);
    const __m128i sh = _mm_cvtsi32_si128(shift);
    for (std::int64_t p = 0; p < n4; p += 4) {
        const __m256d r = _mm256_mul_pd(_mm256_sqrt_pd(_mm256_loadu_pd(s + p)), vs);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(keys + p), _mm256_srl_epi64(_mm256_castpd_si256(r), sh));
    }
    return n4;
}

// SeqPoints::keep_radius for j < n rounded down to 4: r = sqrt(s[idx[j]]) * scale,
// kept (idx and r compacted to m, in order) when r > t (strict) or r >= t.
// Compacting in place is safe: m <= j, and the block is read before the store.
ACME_AVX2 inline std::int64_t keep_radius(const double* s, std::int64_t* idx, std::int64_t n, double scale, double t,
                                          bool strict, double* rad, std::int64_t& m) {
    const std::int64_t n4 = n & ~std::int64_t(3);
    const __m256d vs = _mm256_set1_pd(scale), vt = _mm256_set1_pd(t);
    std::int64_t k = m;
    for (std::int64_t j = 0; j < n4; j += 4) {
        const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + j));
        const __m256d r = _mm256_mul_pd(_mm256_sqrt_pd(_mm256_i64gather_pd(s, p, 8)), vs);
        const int keep = _mm256_movemask_pd(strict ? _mm256_cmp_pd(r, vt, _CMP_GT_OQ) : _mm256_cmp_pd(r, vt, _CMP_GE_OQ));
        const __m256i perm = compress_perm(keep);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + k), _mm256_permutevar8x32_epi32(p, perm));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(rad + k),
                            _mm256_permutevar8x32_epi32(_mm256_castpd_si256(r), perm));
        k += _mm_popcnt_u32(static_cast<unsigned>(keep));
    }
    m = k;
    return n4;
}


// An 8-lane 32-bit mask (all ones where bit i of `bits` is set).
ACME_AVX2 inline __m256 lanes_from_bits(int bits) {
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(bits), sel), sel));
}

// approx_angle_bin16 of avx512.hpp on 8 lanes (the same float32 operations): the
// bin of each angle in [0, pi] known by its cosine c, -1 within the margins.
ACME_AVX2 inline __m256i approx_angle_bin8(__m256 c, float bin_width, float inv_bw, int top) {
    const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), c);
    __m256 poly = _mm256_sub_ps(_mm256_set1_ps(0.0742610f), _mm256_mul_ps(_mm256_set1_ps(0.0187293f), ax));
    poly = _mm256_add_ps(_mm256_set1_ps(-0.2121144f), _mm256_mul_ps(ax, poly));
    poly = _mm256_add_ps(_mm256_set1_ps(1.5707288f), _mm256_mul_ps(ax, poly));
    const __m256 om = _mm256_sub_ps(_mm256_set1_ps(1.0f), ax);
    __m256 ac = _mm256_mul_ps(_mm256_sqrt_ps(om), poly);
    const __m256 neg = _mm256_cmp_ps(c, _mm256_setzero_ps(), _CMP_LT_OQ);
    ac = _mm256_blendv_ps(ac, _mm256_sub_ps(_mm256_set1_ps(3.14159265f), ac), neg);
    const __m256i vtop = _mm256_set1_epi32(top);
    const __m256i g = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_mul_ps(ac, _mm256_set1_ps(inv_bw))), vtop);
    const __m256 bw = _mm256_set1_ps(bin_width);
    const __m256 lower = _mm256_mul_ps(_mm256_cvtepi32_ps(g), bw);
    const __m256 upper = _mm256_add_ps(lower, bw);
    const __m256 margin = _mm256_set1_ps(2e-4f), wide = _mm256_set1_ps(2e-3f);
    const __m256 first = _mm256_castsi256_ps(_mm256_cmpeq_epi32(g, _mm256_setzero_si256()));
    const __m256 last = _mm256_castsi256_ps(_mm256_cmpeq_epi32(g, vtop));
    const __m256 dlo = _mm256_sub_ps(ac, lower), dhi = _mm256_sub_ps(upper, ac);
    const __m256 lo_ok = _mm256_or_ps(first, _mm256_cmp_ps(dlo, margin, _CMP_GE_OQ));
    const __m256 hi_ok = _mm256_or_ps(last, _mm256_cmp_ps(dhi, margin, _CMP_GE_OQ));
    const __m256 polar = _mm256_cmp_ps(om, _mm256_set1_ps(1e-4f), _CMP_LT_OQ);
    const __m256 pole_ok = _mm256_or_ps(_mm256_and_ps(first, _mm256_cmp_ps(dhi, wide, _CMP_GE_OQ)),
                                        _mm256_and_ps(last, _mm256_cmp_ps(dlo, wide, _CMP_GE_OQ)));
    const __m256 ok = _mm256_and_ps(_mm256_and_ps(lo_ok, hi_ok), _mm256_or_ps(_mm256_andnot_ps(polar, _mm256_castsi256_ps(_mm256_set1_epi32(-1))), pole_ok));
    return _mm256_blendv_epi8(_mm256_set1_epi32(-1), g, _mm256_castps_si256(ok));
}

// Window vectors idx[j .. j + 4) as float32 (x', y', z') = (e2, e3, e1), each
// point scaled by 2^h, h = ceil(-floor(log2 s) / 2) (exact; as gather_unit8 of
// avx512.hpp, from the exponent bits), so that float32 neither overflows nor
// underflows on its way. Also the bits of the points with x' = 0 and of those
// the exact path must decide (x' = y' = 0; y' != 0 that float32 flushes to 0,
// whose sign decides phi's branch; or s zero, subnormal or inf).
ACME_AVX2 inline void gather_unit4(const double* e1, const double* e2, const double* e3, const double* s,
                                   const std::int64_t* idx, std::int64_t j, __m128& x, __m128& y, __m128& z,
                                   int& no_rho, int& x_zero) {
    const __m256i vi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + j));
    const __m256d xp = _mm256_i64gather_pd(e2, vi, 8), yp = _mm256_i64gather_pd(e3, vi, 8);
    const __m256d zp = _mm256_i64gather_pd(e1, vi, 8), sv = _mm256_i64gather_pd(s, vi, 8);
    // biased exponent E of s; the scale's biased exponent is ((3072 - E) >> 1) - 1
    const __m256i E = _mm256_and_si256(_mm256_srli_epi64(_mm256_castpd_si256(sv), 52), _mm256_set1_epi64x(0x7ff));
    const __m256i hb = _mm256_sub_epi64(_mm256_srli_epi64(_mm256_sub_epi64(_mm256_set1_epi64x(3072), E), 1),
                                        _mm256_set1_epi64x(1));
    const __m256d scale = _mm256_castsi256_pd(_mm256_slli_epi64(hb, 52));
    x = _mm256_cvtpd_ps(_mm256_mul_pd(xp, scale));
    y = _mm256_cvtpd_ps(_mm256_mul_pd(yp, scale));
    z = _mm256_cvtpd_ps(_mm256_mul_pd(zp, scale));
    const __m256d zero = _mm256_setzero_pd();
    x_zero = _mm256_movemask_pd(_mm256_cmp_pd(xp, zero, _CMP_EQ_OQ));
    // s zero, subnormal (rounded: the exact formula's r = sqrt(s) is not the points' radius), or
    // overflowed to inf: counted with no_rho, so that the exact path decides.
    const __m256i edge = _mm256_or_si256(_mm256_cmpeq_epi64(E, _mm256_setzero_si256()),
                                         _mm256_cmpeq_epi64(E, _mm256_set1_epi64x(0x7ff)));
    const int y_zero = _mm256_movemask_pd(_mm256_cmp_pd(yp, zero, _CMP_EQ_OQ));
    const int y_flushed = ~y_zero & _mm_movemask_ps(_mm_cmpeq_ps(y, _mm_setzero_ps()));
    no_rho = (x_zero & y_zero) | y_flushed | _mm256_movemask_pd(_mm256_castsi256_pd(edge));
}

// bin_points of avx512.hpp, 8 points per step: bins of the points idx[0 .. n8)
// into bins, -1 where the exact formula must decide (the caller's exact pass).
// Returns n8.
ACME_AVX2 inline std::int64_t bin_points(const double* e1, const double* e2, const double* e3, const double* s,
                                         const std::int64_t* idx, std::int64_t n, bool acme, double bin_width,
                                         std::int64_t top, std::int64_t nb, std::int64_t* bins) {
    const std::int64_t n8 = n & ~std::int64_t(7);
    const float bw = static_cast<float>(bin_width), inv_bw = static_cast<float>(1.0 / bin_width);
    const __m256 one = _mm256_set1_ps(1.0f), mone = _mm256_set1_ps(-1.0f), zero = _mm256_setzero_ps();
    for (std::int64_t j = 0; j < n8; j += 8) {
        __m128 x0, y0, z0, x1, y1, z1;
        int nr0, xz0, nr1, xz1;
        gather_unit4(e1, e2, e3, s, idx, j, x0, y0, z0, nr0, xz0);
        gather_unit4(e1, e2, e3, s, idx, j + 4, x1, y1, z1, nr1, xz1);
        const __m256 xp = _mm256_set_m128(x1, x0), yp = _mm256_set_m128(y1, y0), zp = _mm256_set_m128(z1, z0);
        const int no_rho = nr0 | (nr1 << 4), x_zero = xz0 | (xz1 << 4);
        const __m256 rho2 = _mm256_add_ps(_mm256_mul_ps(xp, xp), _mm256_mul_ps(yp, yp));
        const __m256 rho = _mm256_sqrt_ps(rho2);
        const __m256 r = _mm256_sqrt_ps(_mm256_add_ps(rho2, _mm256_mul_ps(zp, zp)));
        __m256 ct = _mm256_div_ps(zp, r);
        ct = _mm256_min_ps(_mm256_max_ps(ct, mone), one);
        // cp = -sgn(y') sqrt(u / (2 rho)), u = x' >= 0 ? y'^2 / (rho + x') : rho - x'
        const __m256 xpos = _mm256_cmp_ps(xp, zero, _CMP_GE_OQ);
        const __m256 u = _mm256_blendv_ps(_mm256_sub_ps(rho, xp),
                                          _mm256_div_ps(_mm256_mul_ps(yp, yp), _mm256_add_ps(rho, xp)), xpos);
        const __m256 ypos = _mm256_cmp_ps(yp, zero, _CMP_GE_OQ);
        __m256 cp = _mm256_sqrt_ps(_mm256_div_ps(u, _mm256_add_ps(rho, rho)));
        cp = _mm256_blendv_ps(cp, _mm256_sub_ps(zero, cp), ypos);
        cp = _mm256_min_ps(_mm256_max_ps(cp, mone), one);
        // rho tiny next to r, rho = 0, or the acme preset's x' = 0 branch: the exact path.
        // The paper preset's phi' near 0 (kPhiPoleCos): the exact path too.
        const int pole = _mm256_movemask_ps(_mm256_cmp_ps(cp, _mm256_set1_ps(static_cast<float>(kPhiPoleCos)), _CMP_GT_OQ));
        const int doubt_bits = no_rho | (acme ? x_zero : pole) |
                               _mm256_movemask_ps(_mm256_cmp_ps(rho, _mm256_set1_ps(1e-3f), _CMP_LT_OQ));
        cp = _mm256_andnot_ps(lanes_from_bits(doubt_bits), cp);
        const __m256i bi = approx_angle_bin8(cp, bw, inv_bw, static_cast<int>(top));
        const __m256i bj = approx_angle_bin8(ct, bw, inv_bw, static_cast<int>(top));
        const __m256i neg = _mm256_or_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), bi),
                                            _mm256_cmpgt_epi32(_mm256_setzero_si256(), bj));
        const __m256i bad = _mm256_or_si256(neg, _mm256_castps_si256(lanes_from_bits(doubt_bits)));
        const __m256i bin = _mm256_blendv_epi8(
            _mm256_add_epi32(_mm256_mullo_epi32(bi, _mm256_set1_epi32(static_cast<int>(nb))), bj),
            _mm256_set1_epi32(-1), bad);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(bins + j), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(bin)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(bins + j + 4),
                            _mm256_cvtepi32_epi64(_mm256_extracti128_si256(bin, 1)));
    }
    return n8;
}

// One-hot codes of float32 rows (load_codes), as codes_f32 of avx512.hpp: per row
// of 4 channels the channel holding 1 (0..3), -1 for an all-zero row (N); bad
// becomes true for any value other than 0 and 1 or a row with two 1s. Returns
// the rows done.
ACME_AVX2 inline std::int64_t codes_f32(const float* x, std::int64_t L, bool ncl, std::int8_t* codes, bool& bad) {
    // code of a row from its 4-bit mask of ones; -2 marks two or more ones
    static constexpr std::int8_t lut[16] = {-1, 0, 1, -2, 2, -2, -2, -2, 3, -2, -2, -2, -2, -2, -2, -2};
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    bool b = false;
    if (!ncl) {
        const std::int64_t L4 = L & ~std::int64_t(3);
        for (std::int64_t l = 0; l < L4; l += 4) {
            const __m256 v0 = _mm256_loadu_ps(x + 4 * l), v1 = _mm256_loadu_ps(x + 4 * l + 8);
            const unsigned m1 = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v0, one, _CMP_EQ_OQ))) |
                                (static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v1, one, _CMP_EQ_OQ))) << 8);
            const unsigned m0 = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v0, zero, _CMP_EQ_OQ))) |
                                (static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v1, zero, _CMP_EQ_OQ))) << 8);
            b |= (m0 | m1) != 0xFFFFu;
            for (int r = 0; r < 4; ++r) {
                const std::int8_t c = lut[(m1 >> (4 * r)) & 15u];
                b |= c == -2;
                codes[l + r] = c;
            }
        }
        bad = b;
        return L4;
    }
    const std::int64_t L8 = L & ~std::int64_t(7);
    for (std::int64_t l = 0; l < L8; l += 8) {
        unsigned m1[4];
        for (int c = 0; c < 4; ++c) {
            const __m256 v = _mm256_loadu_ps(x + c * L + l);
            m1[c] = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, one, _CMP_EQ_OQ)));
            b |= (static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_EQ_OQ))) | m1[c]) != 0xFFu;
        }
        for (int r = 0; r < 8; ++r) {
            const unsigned nib = ((m1[0] >> r) & 1u) | (((m1[1] >> r) & 1u) << 1) | (((m1[2] >> r) & 1u) << 2) |
                                 (((m1[3] >> r) & 1u) << 3);
            const std::int8_t c = lut[nib];
            b |= c == -2;
            codes[l + r] = c;
        }
    }
    bad = b;
    return L8;
}

// Non-negative 64-bit integers below 2^52 to double, exactly (AVX2 has no such
// conversion): the bits of 2^52 + x, minus 2^52.
ACME_AVX2 inline __m256d small_u64_to_pd(__m256i x) {
    const __m256d magic = _mm256_set1_pd(0x1p52);
    return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, _mm256_castpd_si256(magic))), magic);
}

// curve_counts_f32 of avx512.hpp, 4 items per step: the threshold pass of the
// curve walk over sorted items v[0 .. n) (KeyLabel<uint32_t> as uint64: key
// low, label high), for j < (n - 1) rounded down to 4: at the end of each run of
// equal keys, the cumulative positives and negatives go to tps[m], fps[m]
// (++m). tp gets the positives among the items done; returns how many were
// done. Counts are integers (exact as doubles below 2^52).
ACME_AVX2 inline std::int64_t curve_counts_f32(const std::uint64_t* v, std::int64_t n, double* tps, double* fps,
                                               std::int64_t& m, std::int64_t& tp) {
    const std::int64_t n4 = n > 0 ? (n - 1) & ~std::int64_t(3) : 0;
    const __m256i lo = _mm256_set1_epi64x(0xFFFFFFFF), zero = _mm256_setzero_si256();
    const __m256i lane1 = _mm256_setr_epi64x(1, 2, 3, 4);
    __m256i carry = zero;
    std::int64_t k = m;
    for (std::int64_t j = 0; j < n4; j += 4) {
        const __m256i it = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + j));
        const __m256i nx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + j + 1));  // j + 4 < n
        __m256i x = _mm256_srli_epi64(it, 32);  // labels
        x = _mm256_add_epi64(x, _mm256_blend_epi32(_mm256_permute4x64_epi64(x, 0x90), zero, 0x03));  // + x[i-1]
        x = _mm256_add_epi64(x, _mm256_permute2x128_si256(x, x, 0x08));                              // + x[i-2]
        const __m256i tpv = _mm256_add_epi64(carry, x);
        const __m256i fpv = _mm256_sub_epi64(_mm256_add_epi64(_mm256_set1_epi64x(j), lane1), tpv);
        const int same = _mm256_movemask_pd(
            _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(it, lo), _mm256_and_si256(nx, lo))));
        const int last = ~same & 0xF;
        const __m256i perm = compress_perm(last);
        _mm256_storeu_pd(tps + k, small_u64_to_pd(_mm256_permutevar8x32_epi32(tpv, perm)));  // k <= j
        _mm256_storeu_pd(fps + k, small_u64_to_pd(_mm256_permutevar8x32_epi32(fpv, perm)));
        k += _mm_popcnt_u32(static_cast<unsigned>(last));
        carry = _mm256_permute4x64_epi64(tpv, 0xFF);
    }
    m = k;
    tp = _mm256_extract_epi64(carry, 0);
    return n4;
}

// Lanes prev[3], cur[0], cur[1], cur[2].
ACME_AVX2 inline __m256d shift_in(__m256d cur, __m256d prev) {
    const __m256d r = _mm256_permute4x64_pd(cur, 0x90);                  // cur[0], cur[0], cur[1], cur[2]
    const __m256d p3 = _mm256_permute4x64_pd(prev, 0xFF);                // prev[3] everywhere
    return _mm256_blend_pd(r, p3, 0x1);
}

// curve_terms of avx512.hpp, 4 thresholds per step: with t = tps[j], f = fps[j],
// prec = t / (t + f), fpr = f / negatives, tpr = t / positives, fps[j] becomes
// (fpr - prev fpr) * (tpr + prev tpr) / 2 and tps[j] (tpr - prev tpr) * (prec +
// prev prec) / 2. prev_* come in for j = 0 and go out as the last rates.
ACME_AVX2 inline std::int64_t curve_terms(double* tps, double* fps, std::int64_t m, double P, double Nn,
                                          double& prev_fpr, double& prev_tpr, double& prev_prec) {
    const std::int64_t m4 = m & ~std::int64_t(3);
    if (m4 == 0) return 0;
    const __m256d vp = _mm256_set1_pd(P), vn = _mm256_set1_pd(Nn), half = _mm256_set1_pd(0.5);
    __m256d pf = _mm256_set1_pd(prev_fpr), pt = _mm256_set1_pd(prev_tpr), pp = _mm256_set1_pd(prev_prec);
    for (std::int64_t j = 0; j < m4; j += 4) {
        const __m256d t = _mm256_loadu_pd(tps + j), f = _mm256_loadu_pd(fps + j);
        const __m256d pc = _mm256_div_pd(t, _mm256_add_pd(t, f));
        const __m256d fpr = _mm256_div_pd(f, vn), tpr = _mm256_div_pd(t, vp);
        const __m256d fpr0 = shift_in(fpr, pf), tpr0 = shift_in(tpr, pt), pc0 = shift_in(pc, pp);
        // x / 2.0 == x * 0.5 exactly
        _mm256_storeu_pd(fps + j,
                         _mm256_mul_pd(_mm256_mul_pd(_mm256_sub_pd(fpr, fpr0), _mm256_add_pd(tpr, tpr0)), half));
        _mm256_storeu_pd(tps + j,
                         _mm256_mul_pd(_mm256_mul_pd(_mm256_sub_pd(tpr, tpr0), _mm256_add_pd(pc, pc0)), half));
        pf = fpr;
        pt = tpr;
        pp = pc;
    }
    alignas(32) double buf[4];
    _mm256_store_pd(buf, pf);
    prev_fpr = buf[3];
    _mm256_store_pd(buf, pt);
    prev_tpr = buf[3];
    _mm256_store_pd(buf, pp);
    prev_prec = buf[3];
    return m4;
}

// gt_scores_f32 of avx512.hpp, 8 positions per step: s[l] = attr at the base
// of x (0 for N); finite becomes false if an attribution value read is inf or
// nan, prob if a model value is outside [0, 1] (or nan); bit r of changed[l / 8]
// (bytes written whole) is set where the model's row l + r differs, bit for
// bit, from the row before (always for l = 0). Returns L rounded down to 8.
ACME_AVX2 inline std::int64_t gt_scores_f32(const float* a, const double* m, const std::int8_t* codes,
                                            std::int64_t L, bool ncl, float* s, std::uint8_t* changed,
                                            bool& finite, bool& prob) {
    const std::int64_t n8 = L & ~std::int64_t(7);
    const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    __m256 f = _mm256_setzero_ps();        // stays 0 unless an attribution value is inf or nan
    __m256d ok = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));  // model values in [0, 1] so far
    for (std::int64_t l = 0; l < n8; l += 8) {
        if (ncl) {
            for (int c = 0; c < 4; ++c) {
                const __m256 v = _mm256_loadu_ps(a + c * L + l);
                f = _mm256_add_ps(f, _mm256_sub_ps(v, v));
            }
            for (int r = 0; r < 8; ++r) {
                const int c = codes[l + r];
                s[l + r] = c >= 0 ? a[c * L + l + r] : 0.0f;
            }
        } else {
            for (int q = 0; q < 4; ++q) {
                const __m256 v = _mm256_loadu_ps(a + 4 * l + 8 * q);
                f = _mm256_add_ps(f, _mm256_sub_ps(v, v));
            }
            for (int r = 0; r < 8; ++r) {
                const int c = codes[l + r];
                s[l + r] = c >= 0 ? a[4 * (l + r) + c] : 0.0f;
            }
        }
        unsigned eq = 0;  // bit r: row l + r equals row l + r - 1
        if (ncl) {
            unsigned all = 0xFF;
            for (int c = 0; c < 4; ++c) {
                const double* p = m + c * L + l;
                for (int h = 0; h < 2; ++h) {
                    const __m256d v = _mm256_loadu_pd(p + 4 * h);
                    ok = _mm256_and_pd(ok, _mm256_and_pd(_mm256_cmp_pd(v, zero, _CMP_GE_OQ),
                                                         _mm256_cmp_pd(v, one, _CMP_LE_OQ)));
                    // rows l - 1 .. l + 2 of this channel; row -1 does not exist: for l = 0 lane 0
                    // compares p[0] with itself (position 0 is marked changed below anyway)
                    const __m256d u = (l || h) ? _mm256_loadu_pd(p + 4 * h - 1) : _mm256_permute4x64_pd(v, 0x90);
                    const unsigned e = static_cast<unsigned>(_mm256_movemask_pd(
                        _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_castpd_si256(v), _mm256_castpd_si256(u)))));
                    all &= ~((~e & 0xFu) << (4 * h));
                }
            }
            eq = all;
        } else {
            for (int r = 0; r < 8; ++r) {
                const double* p = m + 4 * (l + r);
                const __m256d v = _mm256_loadu_pd(p);
                ok = _mm256_and_pd(ok, _mm256_and_pd(_mm256_cmp_pd(v, zero, _CMP_GE_OQ),
                                                     _mm256_cmp_pd(v, one, _CMP_LE_OQ)));
                if (l + r == 0) continue;
                const __m256d u = _mm256_loadu_pd(p - 4);
                const int e = _mm256_movemask_pd(
                    _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_castpd_si256(v), _mm256_castpd_si256(u))));
                eq |= static_cast<unsigned>(e == 0xF) << r;
            }
        }
        changed[l >> 3] = static_cast<std::uint8_t>(~eq | (l == 0));
    }
    finite = _mm256_movemask_ps(_mm256_cmp_ps(f, _mm256_setzero_ps(), _CMP_EQ_OQ)) == 0xFF;
    prob = _mm256_movemask_pd(ok) == 0xF;
    return n8;
}

// The exclusive prefix sum of 256 counts, in place (the radix sort's bucket
// starts), 8 counts per step: integer sums, exact in any order.
ACME_AVX2 inline void exclusive_prefix_256(std::uint32_t* c) {
    __m256i carry = _mm256_setzero_si256();
    for (int b = 0; b < 256; b += 8) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + b));
        __m256i x = _mm256_add_epi32(v, _mm256_slli_si256(v, 4));  // within each 128-bit half
        x = _mm256_add_epi32(x, _mm256_slli_si256(x, 8));
        // the low half's total added to the high half
        const __m256i low_total = _mm256_permute2x128_si256(_mm256_shuffle_epi32(x, 0xFF), x, 0x08);
        x = _mm256_add_epi32(_mm256_add_epi32(x, low_total), carry);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + b), _mm256_sub_epi32(x, v));
        carry = _mm256_permutevar8x32_epi32(x, _mm256_set1_epi32(7));
    }
}

ACME_AVX2 inline __m128 compress4_ps(__m128 v, int mask) {
    return _mm_permutevar_ps(v, _mm_load_si128(reinterpret_cast<const __m128i*>(kCompress.idx32[mask])));
}

// 4 64-bit lanes: all ones where bit i of `bits` is set.
ACME_AVX2 inline __m256i lanes64_from_bits(int bits) {
    const __m256i sel = _mm256_setr_epi64x(1, 2, 4, 8);
    return _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(bits), sel), sel);
}

// gt_split_f32 of avx512.hpp, 8 positions per step (two halves of 4): as the
// scalar loop of groundtruth, appends {key, label} of signal (1) and background
// (0) positions to ev, signal scores to sel and positive background scores to
// noise, in position order (each store writes 4 lanes at a count <= l, inside
// the arrays). Returns n rounded down to 8.
ACME_AVX2 inline std::int64_t gt_split_f32(const double* info, const float* s, std::int64_t n, double threshold,
                                           double mn, std::uint64_t* ev, float* sel, float* noise,
                                           std::int64_t& n_eval, std::int64_t& n_sig, std::int64_t& n_noise) {
    const std::int64_t n8 = n & ~std::int64_t(7);
    const __m256d vt = _mm256_set1_pd(threshold), vmn = _mm256_set1_pd(mn);
    const __m256i flip = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i label = _mm256_set1_epi64x(std::int64_t(1) << 32);
    std::int64_t ne = n_eval, ns = n_sig, nn = n_noise;
    for (std::int64_t l = 0; l < n8; l += 8) {
        const __m256d i0 = _mm256_loadu_pd(info + l), i1 = _mm256_loadu_pd(info + l + 4);
        const __m256 sv = _mm256_loadu_ps(s + l);
        const int sig = _mm256_movemask_pd(_mm256_cmp_pd(i0, vt, _CMP_GT_OQ)) |
                        (_mm256_movemask_pd(_mm256_cmp_pd(i1, vt, _CMP_GT_OQ)) << 4);
        const int bg = _mm256_movemask_pd(_mm256_cmp_pd(i0, vmn, _CMP_EQ_OQ)) |
                       (_mm256_movemask_pd(_mm256_cmp_pd(i1, vmn, _CMP_EQ_OQ)) << 4);
        // ScoreKey<float>::of: bits b of s + 0; key = b ^ (negative ? 0 : 0x7FFFFFFF).
        const __m256i b = _mm256_castps_si256(_mm256_add_ps(sv, _mm256_setzero_ps()));
        const __m256i key = _mm256_xor_si256(b, _mm256_andnot_si256(_mm256_srai_epi32(b, 31), flip));
        const int keep = sig | bg;
        const int pos = bg & _mm256_movemask_ps(_mm256_cmp_ps(sv, _mm256_setzero_ps(), _CMP_GT_OQ));
        for (int h = 0; h < 2; ++h) {
            const int ks = (keep >> (4 * h)) & 15, ss = (sig >> (4 * h)) & 15, ps = (pos >> (4 * h)) & 15;
            __m256i item = _mm256_cvtepu32_epi64(h ? _mm256_extracti128_si256(key, 1) : _mm256_castsi256_si128(key));
            item = _mm256_or_si256(item, _mm256_and_si256(lanes64_from_bits(ss), label));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(ev + ne), _mm256_permutevar8x32_epi32(item, compress_perm(ks)));
            ne += _mm_popcnt_u32(static_cast<unsigned>(ks));
            const __m128 half = h ? _mm256_extractf128_ps(sv, 1) : _mm256_castps256_ps128(sv);
            _mm_storeu_ps(sel + ns, compress4_ps(half, ss));
            ns += _mm_popcnt_u32(static_cast<unsigned>(ss));
            _mm_storeu_ps(noise + nn, compress4_ps(half, ps));
            nn += _mm_popcnt_u32(static_cast<unsigned>(ps));
        }
    }
    n_eval = ne;
    n_sig = ns;
    n_noise = nn;
    return n8;
}

}  // namespace acme::core::avx2
#endif
