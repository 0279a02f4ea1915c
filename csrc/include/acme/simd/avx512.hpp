// AVX-512 tier (x86-64 with AVX-512 F/DQ/VL/BW: Intel Skylake-SP and later,
// AMD Zen 4 and later). The kernels of the dispatch table (dispatch.hpp) for
// this tier; their AVX2 and NEON versions are in avx2.hpp and neon.hpp, in
// the same order, and the scalar code at each call site is the reference.
//
// Every function here computes exactly what the scalar loop it replaces
// computes, bit for bit: the same IEEE operations (add, sub, mul, div, sqrt,
// all correctly rounded) in the same order per value, no fused multiply-add
// (the target attribute leaves FMA out and the build passes
// -ffp-contract=off), and the same output order (compress stores keep the
// input order). Each function handles a prefix whose length is a multiple of
// its vector width and returns that length; the caller's scalar loop
// finishes the tail.
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
#define ACME_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,popcnt,bmi2")))

namespace acme::core::avx512 {


// Per-position maps of 8 positions: E1, E2 (or the published E2a), E3 and the
// gauge-corrected norm, exactly as Basis and gauge_norm compute them.
struct F32Block {
    __m512d e1, e2, e3, nrm;
};

// Channels x, y, z, w (A, C, G, T) of positions l .. l + 7 as doubles.
ACME_AVX512 inline void f32_read(const float* a, std::int64_t L, std::int64_t l, bool ncl, __m512d& x, __m512d& y,
                                 __m512d& z, __m512d& w) {
    if (ncl) {
        x = _mm512_cvtps_pd(_mm256_loadu_ps(a + l));
        y = _mm512_cvtps_pd(_mm256_loadu_ps(a + L + l));
        z = _mm512_cvtps_pd(_mm256_loadu_ps(a + 2 * L + l));
        w = _mm512_cvtps_pd(_mm256_loadu_ps(a + 3 * L + l));
    } else {
        const __m512i ix = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m512i one = _mm512_set1_epi32(1);
        const __m512i iy = _mm512_add_epi32(ix, one), iz = _mm512_add_epi32(iy, one), iw = _mm512_add_epi32(iz, one);
        const __m512 v0 = _mm512_loadu_ps(a + 4 * l);
        const __m512 v1 = _mm512_loadu_ps(a + 4 * l + 16);
        x = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_permutex2var_ps(v0, ix, v1)));
        y = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_permutex2var_ps(v0, iy, v1)));
        z = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_permutex2var_ps(v0, iz, v1)));
        w = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_permutex2var_ps(v0, iw, v1)));
    }
}

// gauge_norm2 of 8 positions: mu = (x + y + z + w) / 4 (== * 0.25 exactly);
// a*a + b*b + c*c + d*d, left to right.
ACME_AVX512 inline __m512d gauge_norm2_8(__m512d x, __m512d y, __m512d z, __m512d w) {
    const __m512d mu =
        _mm512_mul_pd(_mm512_add_pd(_mm512_add_pd(_mm512_add_pd(x, y), z), w), _mm512_set1_pd(0.25));
    const __m512d da = _mm512_sub_pd(x, mu), db = _mm512_sub_pd(y, mu);
    const __m512d dc = _mm512_sub_pd(z, mu), dd = _mm512_sub_pd(w, mu);
    __m512d n2 = _mm512_add_pd(_mm512_mul_pd(da, da), _mm512_mul_pd(db, db));
    n2 = _mm512_add_pd(n2, _mm512_mul_pd(dc, dc));
    return _mm512_add_pd(n2, _mm512_mul_pd(dd, dd));
}

// load_norms2 for float32 input: s[l] = gauge_norm2 of positions l < L8; fin
// becomes false if any value read is inf or nan. Returns L8.
ACME_AVX512 inline std::int64_t norms2_f32(const float* a, std::int64_t L, bool ncl, double* s, bool& fin) {
    const std::int64_t L8 = L & ~std::int64_t(7);
    __m512d f = _mm512_setzero_pd();  // stays 0 unless some value is inf or nan
    for (std::int64_t l = 0; l < L8; l += 8) {
        __m512d x, y, z, w;
        f32_read(a, L, l, ncl, x, y, z, w);
        f = _mm512_add_pd(f, _mm512_add_pd(_mm512_add_pd(_mm512_sub_pd(x, x), _mm512_sub_pd(y, y)),
                                           _mm512_add_pd(_mm512_sub_pd(z, z), _mm512_sub_pd(w, w))));
        _mm512_storeu_pd(s + l, gauge_norm2_8(x, y, z, w));
    }
    fin = _mm512_cmp_pd_mask(f, _mm512_setzero_pd(), _CMP_EQ_OQ) == 0xFF;
    return L8;
}

// One-hot codes of float32 rows (load_codes): per row of 4 channels, the
// channel holding 1 (0..3), -1 for an all-zero row (N); bad becomes true for
// any value other than 0 and 1 or a row with two 1s. Returns the rows done.
ACME_AVX512 inline std::int64_t codes_f32(const float* x, std::int64_t L, bool ncl, std::int8_t* codes, bool& bad) {
    // code of a row from its 4-bit mask of ones; -2 marks two or more ones
    static constexpr std::int8_t lut[16] = {-1, 0, 1, -2, 2, -2, -2, -2, 3, -2, -2, -2, -2, -2, -2, -2};
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    bool b = false;
    if (!ncl) {
        const std::int64_t L4 = L & ~std::int64_t(3);
        for (std::int64_t l = 0; l < L4; l += 4) {
            const __m512 v = _mm512_loadu_ps(x + 4 * l);
            const unsigned m1 = _mm512_cmp_ps_mask(v, one, _CMP_EQ_OQ);
            const unsigned m0 = _mm512_cmp_ps_mask(v, zero, _CMP_EQ_OQ);
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
    const std::int64_t L16 = L & ~std::int64_t(15);
    for (std::int64_t l = 0; l < L16; l += 16) {
        unsigned m1[4];
        for (int c = 0; c < 4; ++c) {
            const __m512 v = _mm512_loadu_ps(x + c * L + l);
            m1[c] = _mm512_cmp_ps_mask(v, one, _CMP_EQ_OQ);
            b |= (_mm512_cmp_ps_mask(v, zero, _CMP_EQ_OQ) | m1[c]) != 0xFFFFu;
        }
        for (int r = 0; r < 16; ++r) {
            const unsigned nib = ((m1[0] >> r) & 1u) | (((m1[1] >> r) & 1u) << 1) | (((m1[2] >> r) & 1u) << 2) |
                                 (((m1[3] >> r) & 1u) << 3);
            const std::int8_t c = lut[nib];
            b |= c == -2;
            codes[l + r] = c;
        }
    }
    bad = b;
    return L16;
}

ACME_AVX512 inline F32Block f32_block(const float* a, std::int64_t L, std::int64_t l, bool ncl, bool acme) {
    __m512d x, y, z, w;
    f32_read(a, L, l, ncl, x, y, z, w);
    const __m512d r2 = _mm512_set1_pd(0.70710678118654752440);
    const __m512d r6 = _mm512_set1_pd(acme ? 0.5 * 0.40824829046386301637 : 0.40824829046386301637);
    const __m512d r12 = _mm512_set1_pd(0.28867513459481288225);
    F32Block b;
    b.nrm = _mm512_sqrt_pd(gauge_norm2_8(x, y, z, w));
    b.e1 = _mm512_mul_pd(_mm512_sub_pd(y, x), r2);
    const __m512d e2 = acme ? _mm512_add_pd(_mm512_sub_pd(z, x), _mm512_sub_pd(w, y))
                            : _mm512_add_pd(_mm512_sub_pd(z, x), _mm512_sub_pd(z, y));
    b.e2 = _mm512_mul_pd(e2, r6);
    const __m512d e3 = _mm512_add_pd(_mm512_add_pd(_mm512_sub_pd(w, x), _mm512_sub_pd(w, y)), _mm512_sub_pd(w, z));
    b.e3 = _mm512_mul_pd(e3, r12);
    return b;
}

// Per-position pass of SeqPoints::load for float32 input, 8 positions per
// step: E1, E2, E3 stored, acc[j] += norm of positions 8k + j. Returns the
// positions done.
ACME_AVX512 inline std::int64_t load_f32(const float* a, std::int64_t L, bool ncl, bool acme, double* E1,
                                          double* E2, double* E3, double* acc) {
    const std::int64_t L8 = L & ~std::int64_t(7);
    __m512d tot = _mm512_loadu_pd(acc);
    for (std::int64_t l = 0; l < L8; l += 8) {
        const F32Block b = f32_block(a, L, l, ncl, acme);
        tot = _mm512_add_pd(tot, b.nrm);
        _mm512_storeu_pd(E1 + l, b.e1);
        _mm512_storeu_pd(E2 + l, b.e2);
        _mm512_storeu_pd(E3 + l, b.e3);
    }
    _mm512_storeu_pd(acc, tot);
    return L8;
}

// (E[p] + E[p + 1]) + E[p + 2] for the 8 points of block `prev`, given the next block.
ACME_AVX512 inline __m512d window3_sum(__m512d prev, __m512d cur) {
    const __m512i pi = _mm512_castpd_si512(prev), ci = _mm512_castpd_si512(cur);
    const __m512d s1 = _mm512_castsi512_pd(_mm512_alignr_epi64(ci, pi, 1));  // E[p + 1]
    const __m512d s2 = _mm512_castsi512_pd(_mm512_alignr_epi64(ci, pi, 2));  // E[p + 2]
    return _mm512_add_pd(_mm512_add_pd(prev, s1), s2);
}

// load_f32 fused with the window-3 sums, without a round trip through memory:
// windows p = 0 .. pw (pw = L8 - 8) go straight to o1, o2, o3 and os; E is
// stored only for the first and the last full block (the wrap-around windows
// and the scalar tail need those). Returns the positions done (L8); 0 when L < 16.
ACME_AVX512 inline std::int64_t load_w3_f32(const float* a, std::int64_t L, bool ncl, bool acme, double* E1,
                                             double* E2, double* E3, double* o1, double* o2, double* o3,
                                             double* os, double* acc, std::int64_t& pw) {
    const std::int64_t L8 = L & ~std::int64_t(7);
    pw = 0;
    if (L8 < 16) return 0;
    __m512d tot = _mm512_loadu_pd(acc);
    F32Block prev = f32_block(a, L, 0, ncl, acme);
    tot = _mm512_add_pd(tot, prev.nrm);
    _mm512_storeu_pd(E1, prev.e1);
    _mm512_storeu_pd(E2, prev.e2);
    _mm512_storeu_pd(E3, prev.e3);
    for (std::int64_t l = 8; l < L8; l += 8) {
        // Software prefetch 8 KB ahead (measured: ~8 % faster than the hardware
        // prefetcher alone); past the end it touches the next sequence, harmless.
        // And the same positions of the next sequence (usually this thread's next)
        // towards L2, a whole sequence ahead.
        if (ncl) {
            for (int c = 0; c < 4; ++c) {
                _mm_prefetch(reinterpret_cast<const char*>(a + c * L + l + 512), _MM_HINT_T0);
                _mm_prefetch(reinterpret_cast<const char*>(a + (4 + c) * L + l), _MM_HINT_T1);
            }
        } else {
            _mm_prefetch(reinterpret_cast<const char*>(a + 4 * l + 2048), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(a + 4 * (L + l)), _MM_HINT_T1);
            _mm_prefetch(reinterpret_cast<const char*>(a + 4 * (L + l) + 16), _MM_HINT_T1);
        }
        const F32Block b = f32_block(a, L, l, ncl, acme);
        tot = _mm512_add_pd(tot, b.nrm);
        const __m512d s1 = window3_sum(prev.e1, b.e1);
        const __m512d s2 = window3_sum(prev.e2, b.e2);
        const __m512d s3 = window3_sum(prev.e3, b.e3);
        const std::int64_t p = l - 8;
        _mm512_storeu_pd(o1 + p, s1);
        _mm512_storeu_pd(o2 + p, s2);
        _mm512_storeu_pd(o3 + p, s3);
        const __m512d q = _mm512_add_pd(_mm512_mul_pd(s1, s1), _mm512_mul_pd(s2, s2));
        _mm512_storeu_pd(os + p, _mm512_add_pd(q, _mm512_mul_pd(s3, s3)));
        prev = b;
    }
    _mm512_storeu_pd(E1 + L8 - 8, prev.e1);
    _mm512_storeu_pd(E2 + L8 - 8, prev.e2);
    _mm512_storeu_pd(E3 + L8 - 8, prev.e3);
    _mm512_storeu_pd(acc, tot);
    pw = L8 - 8;
    return L8;
}

// Window-3 sums of SeqPoints::load (points p = 0 .. n), 8 points per step.
ACME_AVX512 inline std::int64_t window3(const double* E1, const double* E2, const double* E3, std::int64_t n,
                                         double* o1, double* o2, double* o3, double* os) {
    const std::int64_t n8 = n & ~std::int64_t(7);
    for (std::int64_t p = 0; p < n8; p += 8) {
        const __m512d s1 =
            _mm512_add_pd(_mm512_add_pd(_mm512_loadu_pd(E1 + p), _mm512_loadu_pd(E1 + p + 1)), _mm512_loadu_pd(E1 + p + 2));
        const __m512d s2 =
            _mm512_add_pd(_mm512_add_pd(_mm512_loadu_pd(E2 + p), _mm512_loadu_pd(E2 + p + 1)), _mm512_loadu_pd(E2 + p + 2));
        const __m512d s3 =
            _mm512_add_pd(_mm512_add_pd(_mm512_loadu_pd(E3 + p), _mm512_loadu_pd(E3 + p + 1)), _mm512_loadu_pd(E3 + p + 2));
        _mm512_storeu_pd(o1 + p, s1);
        _mm512_storeu_pd(o2 + p, s2);
        _mm512_storeu_pd(o3 + p, s3);
        __m512d q = _mm512_add_pd(_mm512_mul_pd(s1, s1), _mm512_mul_pd(s2, s2));
        _mm512_storeu_pd(os + p, _mm512_add_pd(q, _mm512_mul_pd(s3, s3)));
    }
    return n8;
}

// The bracket pass of order_pair: below += #(v < lo); values with lo <= v <= hi
// appended to buf (in order) at m. Returns the values done.
ACME_AVX512 inline std::int64_t bracket(const double* src, std::int64_t n, double lo, double hi, double* buf,
                                         std::int64_t& below, std::int64_t& m) {
    const std::int64_t n8 = n & ~std::int64_t(7);
    const __m512d vlo = _mm512_set1_pd(lo), vhi = _mm512_set1_pd(hi);
    std::int64_t b = below, k = m;
    for (std::int64_t j = 0; j < n8; j += 8) {
        const __m512d v = _mm512_loadu_pd(src + j);
        const __mmask8 lt = _mm512_cmp_pd_mask(v, vlo, _CMP_LT_OQ);
        const __mmask8 in = _mm512_cmp_pd_mask(v, vlo, _CMP_GE_OQ) & _mm512_cmp_pd_mask(v, vhi, _CMP_LE_OQ);
        b += _mm_popcnt_u32(lt);
        // Register compress + plain store: the memory form of vcompresspd is
        // microcoded and slow on some CPUs (AMD Zen 4). The store writes 8
        // values at k <= j, so it stays inside buf[0, n); past the kept ones
        // it leaves garbage, as the scalar loop does.
        _mm512_storeu_pd(buf + k, _mm512_maskz_compress_pd(in, v));
        k += _mm_popcnt_u32(in);
    }
    below = b;
    m = k;
    return n8;
}

// Indices p < n with s[p] > t appended (in order) to idx at k. Returns the values done.
ACME_AVX512 inline std::int64_t indices_above(const double* s, std::int64_t n, double t, std::int64_t* idx,
                                               std::int64_t& k) {
    const std::int64_t n8 = n & ~std::int64_t(7);
    const __m512d vt = _mm512_set1_pd(t);
    __m512i pv = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i eight = _mm512_set1_epi64(8);
    std::int64_t c = k;
    for (std::int64_t p = 0; p < n8; p += 8) {
        const __mmask8 gt = _mm512_cmp_pd_mask(_mm512_loadu_pd(s + p), vt, _CMP_GT_OQ);
        _mm512_storeu_si512(idx + c, _mm512_maskz_compress_epi64(gt, pv));  // c <= p: inside idx[0, n)
        c += _mm_popcnt_u32(gt);
        pv = _mm512_add_epi64(pv, eight);
    }
    k = c;
    return n8;
}

// keys[p] = bits(sqrt(s[p]) * scale) >> shift for p < n rounded down to 8 (radii
// are >= 0, so the bit patterns are monotone in them). Returns n8.
ACME_AVX512 inline std::int64_t radius_keys(const double* s, std::int64_t n, double scale, int shift,
                                            std::int64_t* keys) {
    const std::int64_t n8 = n & ~std::int64_t(7);
    const __m512d vs = _mm512_set1_pd(scale);
    const __m128i sh = _mm_cvtsi32_si128(shift);
    for (std::int64_t p = 0; p < n8; p += 8) {
        const __m512d r = _mm512_mul_pd(_mm512_sqrt_pd(_mm512_loadu_pd(s + p)), vs);
        _mm512_storeu_si512(keys + p, _mm512_srl_epi64(_mm512_castpd_si512(r), sh));
    }
    return n8;
}

// SeqPoints::keep_radius for j < n rounded down to 8: r = sqrt(s[idx[j]]) * scale,
// kept (idx and r compacted to m, in order) when r > t (strict) or r >= t.
// Compacting in place is safe: m <= j, and the block is read before the store.
ACME_AVX512 inline std::int64_t keep_radius(const double* s, std::int64_t* idx, std::int64_t n, double scale,
                                            double t, bool strict, double* rad, std::int64_t& m) {
    const std::int64_t n8 = n & ~std::int64_t(7);
    const __m512d vs = _mm512_set1_pd(scale), vt = _mm512_set1_pd(t);
    std::int64_t k = m;
    for (std::int64_t j = 0; j < n8; j += 8) {
        const __m512i p = _mm512_loadu_si512(idx + j);
        const __m512d r = _mm512_mul_pd(_mm512_sqrt_pd(_mm512_i64gather_pd(p, s, 8)), vs);
        const __mmask8 keep = strict ? _mm512_cmp_pd_mask(r, vt, _CMP_GT_OQ) : _mm512_cmp_pd_mask(r, vt, _CMP_GE_OQ);
        _mm512_storeu_si512(idx + k, _mm512_maskz_compress_epi64(keep, p));
        _mm512_storeu_pd(rad + k, _mm512_maskz_compress_pd(keep, r));
        k += _mm_popcnt_u32(keep);
    }
    m = k;
    return n8;
}

// Bins of 16 angles in [0, pi] known by their cosines c, in float32: the
// cheap arccos of approx_angle_bin (A & S 4.4.45, |error| < 6.7e-5 rad), and
// -1 for a lane within 2e-4 rad of a bin edge. c carries a relative error of
// a few 1e-7 (float32 inputs and operations), which moves the angle by
// |dc| / sin(angle): below 2e-5 rad while 1 - |c| >= 1e-4. Nearer the poles a
// lane is trusted only in the first or last bin, at least 2e-3 rad from its
// inner edge (the angle error there is below 1e-3 rad).
ACME_AVX512 inline __m512i approx_angle_bin16(__m512 c, float bin_width, float inv_bw, int top) {
    const __m512 ax = _mm512_abs_ps(c);
    __m512 poly = _mm512_sub_ps(_mm512_set1_ps(0.0742610f), _mm512_mul_ps(_mm512_set1_ps(0.0187293f), ax));
    poly = _mm512_add_ps(_mm512_set1_ps(-0.2121144f), _mm512_mul_ps(ax, poly));
    poly = _mm512_add_ps(_mm512_set1_ps(1.5707288f), _mm512_mul_ps(ax, poly));
    const __m512 om = _mm512_sub_ps(_mm512_set1_ps(1.0f), ax);
    __m512 ac = _mm512_mul_ps(_mm512_sqrt_ps(om), poly);
    const __mmask16 neg = _mm512_cmp_ps_mask(c, _mm512_setzero_ps(), _CMP_LT_OQ);
    ac = _mm512_mask_sub_ps(ac, neg, _mm512_set1_ps(3.14159265f), ac);
    const __m512i vtop = _mm512_set1_epi32(top);
    const __m512i g = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_mul_ps(ac, _mm512_set1_ps(inv_bw))), vtop);
    const __m512 bw = _mm512_set1_ps(bin_width);
    const __m512 lower = _mm512_mul_ps(_mm512_cvtepi32_ps(g), bw);
    const __m512 upper = _mm512_add_ps(lower, bw);
    const __m512 margin = _mm512_set1_ps(2e-4f), wide = _mm512_set1_ps(2e-3f);
    const __mmask16 first = _mm512_cmpeq_epi32_mask(g, _mm512_setzero_si512());
    const __mmask16 last = _mm512_cmpeq_epi32_mask(g, vtop);
    const __mmask16 lo_ok = first | _mm512_cmp_ps_mask(_mm512_sub_ps(ac, lower), margin, _CMP_GE_OQ);
    const __mmask16 hi_ok = last | _mm512_cmp_ps_mask(_mm512_sub_ps(upper, ac), margin, _CMP_GE_OQ);
    const __mmask16 polar = _mm512_cmp_ps_mask(om, _mm512_set1_ps(1e-4f), _CMP_LT_OQ);
    const __mmask16 pole_ok = (first & _mm512_cmp_ps_mask(_mm512_sub_ps(upper, ac), wide, _CMP_GE_OQ)) |
                              (last & _mm512_cmp_ps_mask(_mm512_sub_ps(ac, lower), wide, _CMP_GE_OQ));
    const __mmask16 ok = lo_ok & hi_ok & (static_cast<__mmask16>(~polar) | pole_ok);
    return _mm512_mask_blend_epi32(ok, _mm512_set1_epi32(-1), g);
}

// Window vectors idx[j .. j + 8) as float32 (x', y', z') = (e2, e3, e1), each
// point scaled by a power of two (exact) that brings its radius near 1, so
// that float32 neither overflows nor underflows on its way. Also the points'
// masks: rho = 0 in double (no phi) or y' != 0 that float32 flushes to 0 (its
// sign decides phi's branch), and x' = 0 (the acme preset's branch).
ACME_AVX512 inline void gather_unit8(const double* e1, const double* e2, const double* e3, const double* s,
                                     const std::int64_t* idx, std::int64_t j, __m256& x, __m256& y, __m256& z,
                                     __mmask8& no_rho, __mmask8& x_zero) {
    const __m512i vi = _mm512_loadu_si512(idx + j);
    const __m512d xp = _mm512_i64gather_pd(vi, e2, 8), yp = _mm512_i64gather_pd(vi, e3, 8);
    const __m512d zp = _mm512_i64gather_pd(vi, e1, 8), sv = _mm512_i64gather_pd(vi, s, 8);
    // s > 0: getexp(s) = floor(log2 s); scale by 2^-floor(that / 2).
    const __m512d half = _mm512_roundscale_pd(_mm512_mul_pd(_mm512_getexp_pd(sv), _mm512_set1_pd(-0.5)),
                                              _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    x = _mm512_cvtpd_ps(_mm512_scalef_pd(xp, half));
    y = _mm512_cvtpd_ps(_mm512_scalef_pd(yp, half));
    z = _mm512_cvtpd_ps(_mm512_scalef_pd(zp, half));
    const __m512d zero = _mm512_setzero_pd();
    x_zero = _mm512_cmp_pd_mask(xp, zero, _CMP_EQ_OQ);
    const __mmask8 y_zero = _mm512_cmp_pd_mask(yp, zero, _CMP_EQ_OQ);
    no_rho = (x_zero & y_zero) | (static_cast<__mmask8>(~y_zero) & _mm256_cmp_ps_mask(y, _mm256_setzero_ps(), _CMP_EQ_OQ));
}

// The vectorised part of SeqPoints::bin_points: bins of the points idx[0 .. n16)
// (n16 = n rounded down to 16) into bins, -1 where the exact formula must
// decide. The cosines of both angles are computed in float32 (16 lanes, on
// points scaled to radius ~1); approx_angle_bin16's margins cover the float32
// error, and every lane in doubt takes the exact path. Returns n16.
ACME_AVX512 inline std::int64_t bin_points(const double* e1, const double* e2, const double* e3, const double* s,
                                            const std::int64_t* idx, std::int64_t n, bool acme, double bin_width,
                                            std::int64_t top, std::int64_t nb, std::int64_t* bins) {
    const std::int64_t n16 = n & ~std::int64_t(15);
    const float bw = static_cast<float>(bin_width), inv_bw = static_cast<float>(1.0 / bin_width);
    const __m512 one = _mm512_set1_ps(1.0f), mone = _mm512_set1_ps(-1.0f), zero = _mm512_setzero_ps();
    for (std::int64_t j = 0; j < n16; j += 16) {
        __m256 x0, y0, z0, x1, y1, z1;
        __mmask8 nr0, xz0, nr1, xz1;
        gather_unit8(e1, e2, e3, s, idx, j, x0, y0, z0, nr0, xz0);
        gather_unit8(e1, e2, e3, s, idx, j + 8, x1, y1, z1, nr1, xz1);
        const __m512 xp = _mm512_insertf32x8(_mm512_castps256_ps512(x0), x1, 1);
        const __m512 yp = _mm512_insertf32x8(_mm512_castps256_ps512(y0), y1, 1);
        const __m512 zp = _mm512_insertf32x8(_mm512_castps256_ps512(z0), z1, 1);
        const __mmask16 no_rho = static_cast<__mmask16>(nr0 | (static_cast<unsigned>(nr1) << 8));
        const __mmask16 x_zero = static_cast<__mmask16>(xz0 | (static_cast<unsigned>(xz1) << 8));
        const __m512 rho2 = _mm512_add_ps(_mm512_mul_ps(xp, xp), _mm512_mul_ps(yp, yp));
        const __m512 rho = _mm512_sqrt_ps(rho2);
        const __m512 r = _mm512_sqrt_ps(_mm512_add_ps(rho2, _mm512_mul_ps(zp, zp)));
        __m512 ct = _mm512_div_ps(zp, r);
        ct = _mm512_min_ps(_mm512_max_ps(ct, mone), one);
        // cp = -sgn(y') sqrt(u / (2 rho)), u = x' >= 0 ? y'^2 / (rho + x') : rho - x'
        const __mmask16 xpos = _mm512_cmp_ps_mask(xp, zero, _CMP_GE_OQ);
        const __m512 u = _mm512_mask_blend_ps(xpos, _mm512_sub_ps(rho, xp),
                                              _mm512_div_ps(_mm512_mul_ps(yp, yp), _mm512_add_ps(rho, xp)));
        const __mmask16 ypos = _mm512_cmp_ps_mask(yp, zero, _CMP_GE_OQ);
        __m512 cp = _mm512_sqrt_ps(_mm512_div_ps(u, _mm512_add_ps(rho, rho)));
        cp = _mm512_mask_sub_ps(cp, ypos, zero, cp);
        cp = _mm512_min_ps(_mm512_max_ps(cp, mone), one);
        // rho tiny next to r (|cos theta| ~ 1, phi ill-conditioned in float32), rho = 0, or
        // the acme preset's x' = 0 branch: the exact path.
        __mmask16 doubt = no_rho | _mm512_cmp_ps_mask(rho, _mm512_set1_ps(1e-3f), _CMP_LT_OQ);
        if (acme) doubt |= x_zero;
        else doubt |= _mm512_cmp_ps_mask(cp, _mm512_set1_ps(static_cast<float>(kPhiPoleCos)), _CMP_GT_OQ);
        cp = _mm512_mask_mov_ps(cp, doubt, zero);
        const __m512i bi = approx_angle_bin16(cp, bw, inv_bw, static_cast<int>(top));
        const __m512i bj = approx_angle_bin16(ct, bw, inv_bw, static_cast<int>(top));
        const __mmask16 bad = doubt | _mm512_cmplt_epi32_mask(bi, _mm512_setzero_si512()) |
                              _mm512_cmplt_epi32_mask(bj, _mm512_setzero_si512());
        const __m512i bin = _mm512_mask_blend_epi32(
            bad, _mm512_add_epi32(_mm512_mullo_epi32(bi, _mm512_set1_epi32(static_cast<int>(nb))), bj),
            _mm512_set1_epi32(-1));
        _mm512_storeu_si512(bins + j, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(bin)));
        _mm512_storeu_si512(bins + j + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(bin, 1)));
    }
    return n16;
}

// select_pair (select.hpp) with 8-lane loops: values < pivot are compressed to
// dst from the front, values > pivot from the back; masked stores never write
// outside the part they fill.
ACME_AVX512 inline std::int64_t partition8(const double* src, std::int64_t n, double piv, double* dst,
                                           std::int64_t& lt, std::int64_t& gt) {
    const __m512d vp = _mm512_set1_pd(piv);
    const std::int64_t n8 = n & ~std::int64_t(7);
    for (std::int64_t j = 0; j < n8; j += 8) {
        const __m512d x = _mm512_loadu_pd(src + j);
        const __mmask8 ml = _mm512_cmp_pd_mask(x, vp, _CMP_LT_OQ);
        const __mmask8 mg = _mm512_cmp_pd_mask(x, vp, _CMP_GT_OQ);
        const unsigned cl = _mm_popcnt_u32(ml), cg = _mm_popcnt_u32(mg);
        _mm512_mask_storeu_pd(dst + lt, static_cast<__mmask8>((1u << cl) - 1u), _mm512_maskz_compress_pd(ml, x));
        gt += cg;
        _mm512_mask_storeu_pd(dst + (n - gt), static_cast<__mmask8>((1u << cg) - 1u), _mm512_maskz_compress_pd(mg, x));
        lt += cl;
    }
    return n8;
}

ACME_AVX512 inline std::int64_t count_le8(const double* v, std::int64_t m, double a, std::int64_t& le,
                                          double& mins) {
    const __m512d va = _mm512_set1_pd(a);
    __m512d mn = _mm512_set1_pd(std::numeric_limits<double>::infinity());
    const std::int64_t m8 = m & ~std::int64_t(7);
    for (std::int64_t j = 0; j < m8; j += 8) {
        const __m512d x = _mm512_loadu_pd(v + j);
        const __mmask8 ml = _mm512_cmp_pd_mask(x, va, _CMP_LE_OQ);
        le += _mm_popcnt_u32(ml);
        mn = _mm512_mask_min_pd(mn, static_cast<__mmask8>(~ml), mn, x);
    }
    mins = std::min(mins, _mm512_reduce_min_pd(mn));
    return m8;
}

ACME_AVX512 inline void select_pair(const double* v, std::int64_t m, std::int64_t k, double* t1, double* t2,
                                    double& a, double& b) {
    select_pair_with(v, m, k, t1, t2, a, b, partition8, count_le8);
}

// ---------------------------------------------------------------------------
// Ground truth.

// Positions l < L rounded down to 8 of one float32 sequence: s[l] = attr at the
// base of x (0 for N); two checks: attr finite, x_model in [0, 1]; and bit l of
// `changed` (bytes written whole) set where x_model's row l differs, bit for bit,
// from row l - 1 (always for l = 0). Returns the positions done.
ACME_AVX512 inline std::int64_t gt_scores_f32(const float* a, const double* m, const std::int8_t* codes,
                                              std::int64_t L, bool ncl, float* s, std::uint8_t* changed,
                                              bool& finite, bool& prob) {
    const std::int64_t n8 = L & ~std::int64_t(7);
    const __m512d zero = _mm512_setzero_pd(), one = _mm512_set1_pd(1.0);
    const __m256i four_j = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    __mmask16 nonfinite = 0;
    __mmask8 notprob = 0;
    for (std::int64_t l = 0; l < n8; l += 8) {
        std::int64_t cw;
        std::memcpy(&cw, codes + l, 8);
        const __m256i c = _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(cw));
        const __mmask8 known = _mm256_cmpge_epi32_mask(c, _mm256_setzero_si256());
        __m256 sv;
        if (ncl) {
            const __m256 x = _mm256_loadu_ps(a + l), y = _mm256_loadu_ps(a + L + l);
            const __m256 z = _mm256_loadu_ps(a + 2 * L + l), w = _mm256_loadu_ps(a + 3 * L + l);
            nonfinite |= _mm256_fpclass_ps_mask(x, 0x99) | _mm256_fpclass_ps_mask(y, 0x99) |
                         _mm256_fpclass_ps_mask(z, 0x99) | _mm256_fpclass_ps_mask(w, 0x99);
            sv = _mm256_setzero_ps();
            sv = _mm256_mask_mov_ps(sv, _mm256_cmpeq_epi32_mask(c, _mm256_set1_epi32(0)), x);
            sv = _mm256_mask_mov_ps(sv, _mm256_cmpeq_epi32_mask(c, _mm256_set1_epi32(1)), y);
            sv = _mm256_mask_mov_ps(sv, _mm256_cmpeq_epi32_mask(c, _mm256_set1_epi32(2)), z);
            sv = _mm256_mask_mov_ps(sv, _mm256_cmpeq_epi32_mask(c, _mm256_set1_epi32(3)), w);
        } else {
            const __m512 v0 = _mm512_loadu_ps(a + 4 * l), v1 = _mm512_loadu_ps(a + 4 * l + 16);
            nonfinite |= _mm512_fpclass_ps_mask(v0, 0x99) | _mm512_fpclass_ps_mask(v1, 0x99);
            const __m512i idx = _mm512_castsi256_si512(_mm256_add_epi32(four_j, c));
            sv = _mm512_castps512_ps256(_mm512_maskz_permutex2var_ps(known, v0, idx, v1));
        }
        _mm256_storeu_ps(s + l, sv);
        // Rows l .. l + 7 against rows l - 1 .. l + 6 (the load before the array start
        // is masked: masked-off lanes do not fault).
        std::uint32_t eq;
        if (ncl) {
            eq = 0xFF;
            for (int q = 0; q < 4; ++q) {
                const double* p = m + q * L + l;
                const __m512d v = _mm512_loadu_pd(p);
                const __m512d u = l ? _mm512_loadu_pd(p - 1) : _mm512_maskz_loadu_pd(0xFE, p - 1);
                notprob |= static_cast<__mmask8>(~(_mm512_cmp_pd_mask(v, zero, _CMP_GE_OQ) &
                                                   _mm512_cmp_pd_mask(v, one, _CMP_LE_OQ)));
                eq &= _mm512_cmpeq_epi64_mask(_mm512_castpd_si512(v), _mm512_castpd_si512(u));
            }
        } else {
            std::uint32_t lanes = 0;  // bit 4 r + c: channel c of row r equals the row before
            for (int q = 0; q < 4; ++q) {
                const double* p = m + 4 * l + 8 * q;
                const __m512d v = _mm512_loadu_pd(p);
                const __m512d u = (l || q) ? _mm512_loadu_pd(p - 4) : _mm512_maskz_loadu_pd(0xF0, p - 4);
                notprob |= static_cast<__mmask8>(~(_mm512_cmp_pd_mask(v, zero, _CMP_GE_OQ) &
                                                   _mm512_cmp_pd_mask(v, one, _CMP_LE_OQ)));
                lanes |= static_cast<std::uint32_t>(
                             _mm512_cmpeq_epi64_mask(_mm512_castpd_si512(v), _mm512_castpd_si512(u)))
                         << (8 * q);
            }
            eq = _pext_u32(lanes & (lanes >> 1) & (lanes >> 2) & (lanes >> 3), 0x11111111u);
        }
        changed[l >> 3] = static_cast<std::uint8_t>(~eq | (l == 0));
    }
    finite = nonfinite == 0;
    prob = notprob == 0;
    return n8;
}

// The signal/background split of positions l < n rounded down to 8 (float32
// scores s, information info): as the scalar loop of groundtruth, appends
// {key, label} of signal (1) and background (0) positions to ev, signal scores
// to sel and positive background scores to noise (register compress, then a
// full store: each array has room, its count never exceeds l). Returns n8.
ACME_AVX512 inline std::int64_t gt_split_f32(const double* info, const float* s, std::int64_t n, double threshold,
                                             double mn, std::uint64_t* ev, float* sel, float* noise,
                                             std::int64_t& n_eval, std::int64_t& n_sig, std::int64_t& n_noise) {
    const std::int64_t n8 = n & ~std::int64_t(7);
    const __m512d vt = _mm512_set1_pd(threshold), vmn = _mm512_set1_pd(mn);
    const __m256i flip = _mm256_set1_epi32(0x7FFFFFFF);
    const __m512i label = _mm512_set1_epi64(std::int64_t(1) << 32);
    std::int64_t ne = n_eval, ns = n_sig, nn = n_noise;
    for (std::int64_t l = 0; l < n8; l += 8) {
        const __m512d inf = _mm512_loadu_pd(info + l);
        const __m256 sv = _mm256_loadu_ps(s + l);
        const __mmask8 sig = _mm512_cmp_pd_mask(inf, vt, _CMP_GT_OQ);
        const __mmask8 bg = _mm512_cmp_pd_mask(inf, vmn, _CMP_EQ_OQ);
        // ScoreKey<float>::of: bits b of s + 0; key = ~(negative ? ~b : b ^ sign)
        //                                        = b ^ (negative ? 0 : 0x7FFFFFFF).
        const __m256i b = _mm256_castps_si256(_mm256_add_ps(sv, _mm256_setzero_ps()));
        const __m256i key = _mm256_xor_si256(b, _mm256_andnot_si256(_mm256_srai_epi32(b, 31), flip));
        __m512i item = _mm512_cvtepu32_epi64(key);
        item = _mm512_mask_or_epi64(item, sig, item, label);
        const __mmask8 keep = sig | bg;
        _mm512_storeu_si512(ev + ne, _mm512_maskz_compress_epi64(keep, item));
        ne += _mm_popcnt_u32(keep);
        _mm256_storeu_ps(sel + ns, _mm256_maskz_compress_ps(sig, sv));
        ns += _mm_popcnt_u32(sig);
        const __mmask8 pos = bg & _mm256_cmp_ps_mask(sv, _mm256_setzero_ps(), _CMP_GT_OQ);
        _mm256_storeu_ps(noise + nn, _mm256_maskz_compress_ps(pos, sv));
        nn += _mm_popcnt_u32(pos);
    }
    n_eval = ne;
    n_sig = ns;
    n_noise = nn;
    return n8;
}

// c[0 .. 256) becomes its exclusive prefix sum (radix sort bucket starts).
ACME_AVX512 inline void exclusive_prefix_256(std::uint32_t* c) {
    const __m512i z = _mm512_setzero_si512();
    __m512i carry = z;
    for (int b = 0; b < 256; b += 16) {
        const __m512i v = _mm512_loadu_si512(c + b);
        __m512i x = _mm512_add_epi32(v, _mm512_alignr_epi32(v, z, 15));
        x = _mm512_add_epi32(x, _mm512_alignr_epi32(x, z, 14));
        x = _mm512_add_epi32(x, _mm512_alignr_epi32(x, z, 12));
        x = _mm512_add_epi32(_mm512_add_epi32(x, _mm512_alignr_epi32(x, z, 8)), carry);
        _mm512_storeu_si512(c + b, _mm512_sub_epi32(x, v));
        carry = _mm512_permutexvar_epi32(_mm512_set1_epi32(15), x);
    }
}

// Inclusive prefix sum of the 8 lanes.
ACME_AVX512 inline __m512i prefix8_epi64(__m512i x) {
    const __m512i z = _mm512_setzero_si512();
    x = _mm512_add_epi64(x, _mm512_alignr_epi64(x, z, 7));
    x = _mm512_add_epi64(x, _mm512_alignr_epi64(x, z, 6));
    return _mm512_add_epi64(x, _mm512_alignr_epi64(x, z, 4));
}

// The threshold pass of the curve walk over sorted items v[0 .. n) (KeyLabel<uint32_t>
// as uint64: key low, label high), for j < (n - 1) rounded down to 8: at the end of
// each run of equal keys, the cumulative positives and negatives go to tps[m], fps[m]
// (++m). tp gets the positives among the items done; returns how many were done.
ACME_AVX512 inline std::int64_t curve_counts_f32(const std::uint64_t* v, std::int64_t n, double* tps, double* fps,
                                                 std::int64_t& m, std::int64_t& tp) {
    const std::int64_t n8 = n > 0 ? (n - 1) & ~std::int64_t(7) : 0;
    const __m512i lo = _mm512_set1_epi64(0xFFFFFFFF);
    const __m512i lane1 = _mm512_setr_epi64(1, 2, 3, 4, 5, 6, 7, 8);
    __m512i carry = _mm512_setzero_si512();
    std::int64_t k = m;
    for (std::int64_t j = 0; j < n8; j += 8) {
        const __m512i it = _mm512_loadu_si512(v + j), nx = _mm512_loadu_si512(v + j + 1);  // j + 8 < n
        const __m512i tpv = _mm512_add_epi64(carry, prefix8_epi64(_mm512_srli_epi64(it, 32)));
        const __m512i fpv = _mm512_sub_epi64(_mm512_add_epi64(_mm512_set1_epi64(j), lane1), tpv);
        const __mmask8 last = _mm512_cmpneq_epi64_mask(_mm512_and_si512(it, lo), _mm512_and_si512(nx, lo));
        _mm512_storeu_pd(tps + k, _mm512_cvtepi64_pd(_mm512_maskz_compress_epi64(last, tpv)));  // k <= j
        _mm512_storeu_pd(fps + k, _mm512_cvtepi64_pd(_mm512_maskz_compress_epi64(last, fpv)));
        k += _mm_popcnt_u32(last);
        carry = _mm512_permutexvar_epi64(_mm512_set1_epi64(7), tpv);
    }
    m = k;
    tp = _mm_cvtsi128_si64(_mm512_castsi512_si128(carry));
    return n8;
}

// Lanes prev[7], cur[0], .., cur[6].
ACME_AVX512 inline __m512d shift_in(__m512d cur, __m512d prev) {
    return _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(cur), _mm512_castpd_si512(prev), 7));
}

// Rates and trapezoid terms of the curve walk at thresholds j < m rounded down to
// 8, as the scalar loop of curve_aucs_sorted: with t = tps[j], f = fps[j],
// prec = t / (t + f), fpr = f / negatives, tpr = t / positives, fps[j] becomes
// (fpr - prev fpr) * (tpr + prev tpr) / 2 and tps[j] (tpr - prev tpr) * (prec +
// prev prec) / 2. prev_* come in for j = 0 and go out as the last rates.
ACME_AVX512 inline std::int64_t curve_terms(double* tps, double* fps, std::int64_t m, double P, double Nn,
                                            double& prev_fpr, double& prev_tpr, double& prev_prec) {
    const std::int64_t m8 = m & ~std::int64_t(7);
    if (m8 == 0) return 0;
    const __m512d vp = _mm512_set1_pd(P), vn = _mm512_set1_pd(Nn), half = _mm512_set1_pd(0.5);
    __m512d pf = _mm512_set1_pd(prev_fpr), pt = _mm512_set1_pd(prev_tpr), pp = _mm512_set1_pd(prev_prec);
    for (std::int64_t j = 0; j < m8; j += 8) {
        const __m512d t = _mm512_loadu_pd(tps + j), f = _mm512_loadu_pd(fps + j);
        const __m512d pc = _mm512_div_pd(t, _mm512_add_pd(t, f));
        const __m512d fpr = _mm512_div_pd(f, vn), tpr = _mm512_div_pd(t, vp);
        const __m512d fpr0 = shift_in(fpr, pf), tpr0 = shift_in(tpr, pt), pc0 = shift_in(pc, pp);
        // x / 2.0 == x * 0.5 exactly
        _mm512_storeu_pd(fps + j, _mm512_mul_pd(_mm512_mul_pd(_mm512_sub_pd(fpr, fpr0), _mm512_add_pd(tpr, tpr0)), half));
        _mm512_storeu_pd(tps + j, _mm512_mul_pd(_mm512_mul_pd(_mm512_sub_pd(tpr, tpr0), _mm512_add_pd(pc, pc0)), half));
        pf = fpr;
        pt = tpr;
        pp = pc;
    }
    alignas(64) double buf[8];
    _mm512_store_pd(buf, pf);
    prev_fpr = buf[7];
    _mm512_store_pd(buf, pt);
    prev_tpr = buf[7];
    _mm512_store_pd(buf, pp);
    prev_prec = buf[7];
    return m8;
}

}  // namespace acme::core::avx512
#endif
