// NEON tier (arm64: Apple Silicon, AWS Graviton, Ampere; NEON is part of the
// base ISA, so this needs no special flag and every arm64 build runs it).
// Same kernels, names and order as avx2.hpp and avx512.hpp; the dispatch
// table (dispatch.hpp) lists them side by side.
//
// The same contract as the x86 tiers: every function computes exactly what
// the scalar loop it replaces computes, bit for bit: the same correctly
// rounded IEEE operations (add, sub, mul, div, sqrt) in the same order per
// value, float64 in 2-lane and float32 in 4-lane vectors with the scalar
// loop's 8-lane norm accumulator kept as four 2-lane parts, no fused
// multiply-add (GCC's intrinsics are plain operators, so the build's
// -ffp-contract=off is what keeps a*b + c unfused, here as in the scalar code),
// and compaction in input order. min/max follow the x86 instructions' rule
// (a < b ? a : b, a > b ? a : b), which the x86 tiers use, not NEON's NaN
// rule. Each function does a prefix of its input and returns its length; the
// caller's scalar loop finishes the tail.
//
// NEON has no compress instruction and 2 float64 lanes: the compactions
// (bracket, select_pair, indices_above, keep_radius, gt_split_f32,
// curve_counts_f32) compare in vectors and
// store lane by lane, as the scalar loop does.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "select.hpp"
#include "tier.hpp"

#if ACME_NEON_SIMD
#include <arm_neon.h>

namespace acme::core::neon {

// Channels x, y, z, w (A, C, G, T) of positions l .. l + 3 as float32.
inline void f32_read(const float* a, std::int64_t L, std::int64_t l, bool ncl, float32x4_t& x, float32x4_t& y,
                     float32x4_t& z, float32x4_t& w) {
    if (ncl) {
        x = vld1q_f32(a + l);
        y = vld1q_f32(a + L + l);
        z = vld1q_f32(a + 2 * L + l);
        w = vld1q_f32(a + 3 * L + l);
    } else {
        const float32x4x4_t v = vld4q_f32(a + 4 * l);  // de-interleaves rows (positions) into channels
        x = v.val[0];
        y = v.val[1];
        z = v.val[2];
        w = v.val[3];
    }
}

inline float64x2_t lo64(float32x4_t v) { return vcvt_f64_f32(vget_low_f32(v)); }
inline float64x2_t hi64(float32x4_t v) { return vcvt_high_f64_f32(v); }

// gauge_norm2 of 2 positions: mu = (x + y + z + w) / 4 (== * 0.25 exactly);
// a*a + b*b + c*c + d*d, left to right.
inline float64x2_t gauge_norm2_2(float64x2_t x, float64x2_t y, float64x2_t z, float64x2_t w) {
    const float64x2_t mu = vmulq_f64(vaddq_f64(vaddq_f64(vaddq_f64(x, y), z), w), vdupq_n_f64(0.25));
    const float64x2_t da = vsubq_f64(x, mu), db = vsubq_f64(y, mu);
    const float64x2_t dc = vsubq_f64(z, mu), dd = vsubq_f64(w, mu);
    float64x2_t n2 = vaddq_f64(vmulq_f64(da, da), vmulq_f64(db, db));
    n2 = vaddq_f64(n2, vmulq_f64(dc, dc));
    return vaddq_f64(n2, vmulq_f64(dd, dd));
}

// 0 in both lanes unless a value is inf or nan.
inline float64x2_t nonfinite_probe(float64x2_t x, float64x2_t y, float64x2_t z, float64x2_t w) {
    return vaddq_f64(vaddq_f64(vsubq_f64(x, x), vsubq_f64(y, y)), vaddq_f64(vsubq_f64(z, z), vsubq_f64(w, w)));
}

// load_norms2 for float32 input: s[l] = gauge_norm2 of positions l < L4; fin
// becomes false if any value read is inf or nan. Returns L4.
inline std::int64_t norms2_f32(const float* a, std::int64_t L, bool ncl, double* s, bool& fin) {
    const std::int64_t L4 = L & ~std::int64_t(3);
    float64x2_t f = vdupq_n_f64(0.0);
    for (std::int64_t l = 0; l < L4; l += 4) {
        float32x4_t x, y, z, w;
        f32_read(a, L, l, ncl, x, y, z, w);
        const float64x2_t x0 = lo64(x), y0 = lo64(y), z0 = lo64(z), w0 = lo64(w);
        const float64x2_t x1 = hi64(x), y1 = hi64(y), z1 = hi64(z), w1 = hi64(w);
        f = vaddq_f64(f, vaddq_f64(nonfinite_probe(x0, y0, z0, w0), nonfinite_probe(x1, y1, z1, w1)));
        vst1q_f64(s + l, gauge_norm2_2(x0, y0, z0, w0));
        vst1q_f64(s + l + 2, gauge_norm2_2(x1, y1, z1, w1));
    }
    const uint64x2_t eq = vceqq_f64(f, vdupq_n_f64(0.0));
    fin = (vgetq_lane_u64(eq, 0) & vgetq_lane_u64(eq, 1)) != 0;
    return L4;
}

// One-hot codes of float32 rows (load_codes): per row of 4 channels the
// channel holding 1 (0..3), -1 for an all-zero row (N); bad becomes true for
// any value other than 0 and 1 or a row with two 1s. Returns the rows done.
inline std::int64_t codes_f32(const float* x, std::int64_t L, bool ncl, std::int8_t* codes, bool& bad) {
    // code of a row from its 4-bit mask of ones; -2 marks two or more ones
    static constexpr std::int8_t lut[16] = {-1, 0, 1, -2, 2, -2, -2, -2, 3, -2, -2, -2, -2, -2, -2, -2};
    const float32x4_t one = vdupq_n_f32(1.0f), zero = vdupq_n_f32(0.0f);
    const uint32x4_t bit[4] = {vdupq_n_u32(1), vdupq_n_u32(2), vdupq_n_u32(4), vdupq_n_u32(8)};
    const std::int64_t L4 = L & ~std::int64_t(3);
    bool b = false;
    for (std::int64_t l = 0; l < L4; l += 4) {
        float32x4_t ch[4];
        f32_read(x, L, l, ncl, ch[0], ch[1], ch[2], ch[3]);
        uint32x4_t nib = vdupq_n_u32(0), ok = vdupq_n_u32(0xFFFFFFFFu);
        for (int c = 0; c < 4; ++c) {
            const uint32x4_t is1 = vceqq_f32(ch[c], one);
            ok = vandq_u32(ok, vorrq_u32(is1, vceqq_f32(ch[c], zero)));
            nib = vorrq_u32(nib, vandq_u32(is1, bit[c]));
        }
        b |= vminvq_u32(ok) == 0;
        std::uint32_t n[4];
        vst1q_u32(n, nib);
        for (int r = 0; r < 4; ++r) {
            const std::int8_t c = lut[n[r]];
            b |= c == -2;
            codes[l + r] = c;
        }
    }
    bad = b;
    return L4;
}

struct F64x2Block {
    float64x2_t e1, e2, e3, nrm;
};

inline F64x2Block f64_block(float64x2_t x, float64x2_t y, float64x2_t z, float64x2_t w, bool acme) {
    const float64x2_t r2 = vdupq_n_f64(0.70710678118654752440);
    const float64x2_t r6 = vdupq_n_f64(acme ? 0.5 * 0.40824829046386301637 : 0.40824829046386301637);
    const float64x2_t r12 = vdupq_n_f64(0.28867513459481288225);
    F64x2Block b;
    b.nrm = vsqrtq_f64(gauge_norm2_2(x, y, z, w));
    b.e1 = vmulq_f64(vsubq_f64(y, x), r2);
    const float64x2_t e2 =
        acme ? vaddq_f64(vsubq_f64(z, x), vsubq_f64(w, y)) : vaddq_f64(vsubq_f64(z, x), vsubq_f64(z, y));
    b.e2 = vmulq_f64(e2, r6);
    const float64x2_t e3 = vaddq_f64(vaddq_f64(vsubq_f64(w, x), vsubq_f64(w, y)), vsubq_f64(w, z));
    b.e3 = vmulq_f64(e3, r12);
    return b;
}

// Per-position pass of SeqPoints::load for float32 input, 8 positions per step
// (four blocks of 2): E1, E2, E3 stored, acc[j] += norm of positions 8k + j (the
// scalar loop's 8 lanes). Returns the positions done.
inline std::int64_t load_f32(const float* a, std::int64_t L, bool ncl, bool acme, double* E1, double* E2,
                             double* E3, double* acc) {
    const std::int64_t L8 = L & ~std::int64_t(7);
    float64x2_t acc2[4] = {vld1q_f64(acc), vld1q_f64(acc + 2), vld1q_f64(acc + 4), vld1q_f64(acc + 6)};
    for (std::int64_t l = 0; l < L8; l += 8) {
        for (int q = 0; q < 2; ++q) {
            float32x4_t x, y, z, w;
            f32_read(a, L, l + 4 * q, ncl, x, y, z, w);
            const F64x2Block b0 = f64_block(lo64(x), lo64(y), lo64(z), lo64(w), acme);
            const F64x2Block b1 = f64_block(hi64(x), hi64(y), hi64(z), hi64(w), acme);
            acc2[2 * q] = vaddq_f64(acc2[2 * q], b0.nrm);
            acc2[2 * q + 1] = vaddq_f64(acc2[2 * q + 1], b1.nrm);
            const std::int64_t p = l + 4 * q;
            vst1q_f64(E1 + p, b0.e1);
            vst1q_f64(E2 + p, b0.e2);
            vst1q_f64(E3 + p, b0.e3);
            vst1q_f64(E1 + p + 2, b1.e1);
            vst1q_f64(E2 + p + 2, b1.e2);
            vst1q_f64(E3 + p + 2, b1.e3);
        }
    }
    for (int q = 0; q < 4; ++q) vst1q_f64(acc + 2 * q, acc2[q]);
    return L8;
}

// load_w3_f32 of avx512.hpp: load_f32 fused with the window-3 sums, without a
// round trip through memory, 8 positions per step (four blocks of 2, the norm
// accumulator's 8 lanes): windows p = 0 .. pw (pw = L8 - 8) go straight to
// o1, o2, o3 and os; E is stored only for the first and the last 8 positions
// (the wrap-around windows and the scalar tail need those). Returns the
// positions done (L8); 0 when L < 16.
inline std::int64_t load_w3_f32(const float* a, std::int64_t L, bool ncl, bool acme, double* E1, double* E2,
                                double* E3, double* o1, double* o2, double* o3, double* os, double* acc,
                                std::int64_t& pw) {
    const std::int64_t L8 = L & ~std::int64_t(7);
    pw = 0;
    if (L8 < 16) return 0;
    float64x2_t acc2[4] = {vld1q_f64(acc), vld1q_f64(acc + 2), vld1q_f64(acc + 4), vld1q_f64(acc + 6)};
    F64x2Block prev[4], cur[4];
    auto blocks = [&](std::int64_t l, F64x2Block* b) {  // positions l .. l + 7, and their norms summed
        for (int q = 0; q < 2; ++q) {
            float32x4_t x, y, z, w;
            f32_read(a, L, l + 4 * q, ncl, x, y, z, w);
            b[2 * q] = f64_block(lo64(x), lo64(y), lo64(z), lo64(w), acme);
            b[2 * q + 1] = f64_block(hi64(x), hi64(y), hi64(z), hi64(w), acme);
        }
        for (int q = 0; q < 4; ++q) acc2[q] = vaddq_f64(acc2[q], b[q].nrm);
    };
    auto store_e = [&](std::int64_t l, const F64x2Block* b) {
        for (int q = 0; q < 4; ++q) {
            vst1q_f64(E1 + l + 2 * q, b[q].e1);
            vst1q_f64(E2 + l + 2 * q, b[q].e2);
            vst1q_f64(E3 + l + 2 * q, b[q].e3);
        }
    };
    // windows p, p + 1 from the blocks of positions p, p + 1 (u), p + 2, p + 3 (v):
    // (E[p] + E[p + 1]) + E[p + 2], and the squared norm (s1 s1 + s2 s2) + s3 s3
    auto windows2 = [&](std::int64_t p, const F64x2Block& u, const F64x2Block& v) {
        const float64x2_t s1 = vaddq_f64(vaddq_f64(u.e1, vextq_f64(u.e1, v.e1, 1)), v.e1);
        const float64x2_t s2 = vaddq_f64(vaddq_f64(u.e2, vextq_f64(u.e2, v.e2, 1)), v.e2);
        const float64x2_t s3 = vaddq_f64(vaddq_f64(u.e3, vextq_f64(u.e3, v.e3, 1)), v.e3);
        vst1q_f64(o1 + p, s1);
        vst1q_f64(o2 + p, s2);
        vst1q_f64(o3 + p, s3);
        const float64x2_t q = vaddq_f64(vmulq_f64(s1, s1), vmulq_f64(s2, s2));
        vst1q_f64(os + p, vaddq_f64(q, vmulq_f64(s3, s3)));
    };
    blocks(0, prev);
    store_e(0, prev);
    for (std::int64_t l = 8; l < L8; l += 8) {
        blocks(l, cur);
        windows2(l - 8, prev[0], prev[1]);
        windows2(l - 6, prev[1], prev[2]);
        windows2(l - 4, prev[2], prev[3]);
        windows2(l - 2, prev[3], cur[0]);
        for (int q = 0; q < 4; ++q) prev[q] = cur[q];
    }
    store_e(L8 - 8, prev);
    for (int q = 0; q < 4; ++q) vst1q_f64(acc + 2 * q, acc2[q]);
    pw = L8 - 8;
    return L8;
}

// Window-3 sums of SeqPoints::load (points p = 0 .. n), 2 points per step.
inline std::int64_t window3(const double* E1, const double* E2, const double* E3, std::int64_t n, double* o1,
                            double* o2, double* o3, double* os) {
    const std::int64_t n2 = n & ~std::int64_t(1);
    for (std::int64_t p = 0; p < n2; p += 2) {
        const float64x2_t s1 = vaddq_f64(vaddq_f64(vld1q_f64(E1 + p), vld1q_f64(E1 + p + 1)), vld1q_f64(E1 + p + 2));
        const float64x2_t s2 = vaddq_f64(vaddq_f64(vld1q_f64(E2 + p), vld1q_f64(E2 + p + 1)), vld1q_f64(E2 + p + 2));
        const float64x2_t s3 = vaddq_f64(vaddq_f64(vld1q_f64(E3 + p), vld1q_f64(E3 + p + 1)), vld1q_f64(E3 + p + 2));
        vst1q_f64(o1 + p, s1);
        vst1q_f64(o2 + p, s2);
        vst1q_f64(o3 + p, s3);
        const float64x2_t q = vaddq_f64(vmulq_f64(s1, s1), vmulq_f64(s2, s2));
        vst1q_f64(os + p, vaddq_f64(q, vmulq_f64(s3, s3)));
    }
    return n2;
}

// The bracket pass of order_pair: below += #(v < lo); values with lo <= v <= hi
// appended to buf (in order) at m. Returns the values done.
inline std::int64_t bracket(const double* src, std::int64_t n, double lo, double hi, double* buf,
                            std::int64_t& below, std::int64_t& m) {
    const std::int64_t n2 = n & ~std::int64_t(1);
    const float64x2_t vlo = vdupq_n_f64(lo), vhi = vdupq_n_f64(hi);
    std::int64_t b = below, k = m;
    for (std::int64_t j = 0; j < n2; j += 2) {
        const float64x2_t v = vld1q_f64(src + j);
        const uint64x2_t lt = vshrq_n_u64(vcltq_f64(v, vlo), 63);
        const uint64x2_t in = vshrq_n_u64(vandq_u64(vcgeq_f64(v, vlo), vcleq_f64(v, vhi)), 63);
        b += static_cast<std::int64_t>(vgetq_lane_u64(lt, 0) + vgetq_lane_u64(lt, 1));
        buf[k] = vgetq_lane_f64(v, 0);  // k <= j: inside buf[0, n)
        k += static_cast<std::int64_t>(vgetq_lane_u64(in, 0));
        buf[k] = vgetq_lane_f64(v, 1);
        k += static_cast<std::int64_t>(vgetq_lane_u64(in, 1));
    }
    below = b;
    m = k;
    return n2;
}

// select_pair (select.hpp) with 2-lane compares and branch-free stores: below
// the pivot to the front, above it to the back (a store to the other side's
// next slot lies in the free middle [lt, n - gt): overwritten or never read).
inline std::int64_t partition2(const double* src, std::int64_t n, double piv, double* dst, std::int64_t& lt,
                               std::int64_t& gt) {
    const float64x2_t vp = vdupq_n_f64(piv);
    const std::int64_t n2 = n & ~std::int64_t(1);
    for (std::int64_t j = 0; j < n2; j += 2) {
        const float64x2_t x = vld1q_f64(src + j);
        const uint64x2_t ml = vshrq_n_u64(vcltq_f64(x, vp), 63), mg = vshrq_n_u64(vcgtq_f64(x, vp), 63);
        const double x0 = vgetq_lane_f64(x, 0), x1 = vgetq_lane_f64(x, 1);
        dst[lt] = x0;  // lt + gt <= j
        lt += static_cast<std::int64_t>(vgetq_lane_u64(ml, 0));
        dst[n - 1 - gt] = x0;
        gt += static_cast<std::int64_t>(vgetq_lane_u64(mg, 0));
        dst[lt] = x1;
        lt += static_cast<std::int64_t>(vgetq_lane_u64(ml, 1));
        dst[n - 1 - gt] = x1;
        gt += static_cast<std::int64_t>(vgetq_lane_u64(mg, 1));
    }
    return n2;
}

// The count of values <= a: left to select_pair_with's scalar loop (2 lanes gain nothing there).
inline std::int64_t count_le_none(const double*, std::int64_t, double, std::int64_t&, double&) { return 0; }

inline void select_pair(const double* v, std::int64_t m, std::int64_t k, double* t1, double* t2, double& a,
                        double& b) {
    select_pair_with(v, m, k, t1, t2, a, b, partition2, count_le_none);
}

// Indices p < n with s[p] > t appended (in order) to idx at k. Returns the values done.
inline std::int64_t indices_above(const double* s, std::int64_t n, double t, std::int64_t* idx, std::int64_t& k) {
    const std::int64_t n2 = n & ~std::int64_t(1);
    const float64x2_t vt = vdupq_n_f64(t);
    std::int64_t c = k;
    for (std::int64_t p = 0; p < n2; p += 2) {
        const uint64x2_t gt = vshrq_n_u64(vcgtq_f64(vld1q_f64(s + p), vt), 63);
        idx[c] = p;  // c <= p: inside idx[0, n)
        c += static_cast<std::int64_t>(vgetq_lane_u64(gt, 0));
        idx[c] = p + 1;
        c += static_cast<std::int64_t>(vgetq_lane_u64(gt, 1));
    }
    k = c;
    return n2;
}

// keys[p] = bits(sqrt(s[p]) * scale) >> shift for p < n rounded down to 2. Returns n2.
inline std::int64_t radius_keys(const double* s, std::int64_t n, double scale, int shift, std::int64_t* keys) {
    const std::int64_t n2 = n & ~std::int64_t(1);
    const float64x2_t vs = vdupq_n_f64(scale);
    const int64x2_t sh = vdupq_n_s64(-static_cast<std::int64_t>(shift));  // a negative left shift shifts right
    for (std::int64_t p = 0; p < n2; p += 2) {
        const float64x2_t r = vmulq_f64(vsqrtq_f64(vld1q_f64(s + p)), vs);
        vst1q_s64(keys + p, vreinterpretq_s64_u64(vshlq_u64(vreinterpretq_u64_f64(r), sh)));
    }
    return n2;
}

// SeqPoints::keep_radius for j < n rounded down to 2: r = sqrt(s[idx[j]]) * scale,
// kept (idx and r compacted to m, in order) when r > t (strict) or r >= t.
// Compacting in place is safe: m <= j, and both indices are read before the stores.
inline std::int64_t keep_radius(const double* s, std::int64_t* idx, std::int64_t n, double scale, double t,
                                bool strict, double* rad, std::int64_t& m) {
    const std::int64_t n2 = n & ~std::int64_t(1);
    const float64x2_t vs = vdupq_n_f64(scale), vt = vdupq_n_f64(t);
    std::int64_t k = m;
    for (std::int64_t j = 0; j < n2; j += 2) {
        const std::int64_t p0 = idx[j], p1 = idx[j + 1];
        const float64x2_t sv = vsetq_lane_f64(s[p1], vdupq_n_f64(s[p0]), 1);
        const float64x2_t r = vmulq_f64(vsqrtq_f64(sv), vs);
        const uint64x2_t keep = vshrq_n_u64(strict ? vcgtq_f64(r, vt) : vcgeq_f64(r, vt), 63);
        idx[k] = p0;
        rad[k] = vgetq_lane_f64(r, 0);
        k += static_cast<std::int64_t>(vgetq_lane_u64(keep, 0));
        idx[k] = p1;
        rad[k] = vgetq_lane_f64(r, 1);
        k += static_cast<std::int64_t>(vgetq_lane_u64(keep, 1));
    }
    m = k;
    return n2;
}

// The x86 instructions' min/max (maxps: a > b ? a : b; minps: a < b ? a : b),
// which the x86 tiers use: the same lanes for NaN and signed zeros.
// Bitwise not of 64-bit lanes.
inline uint64x2_t vmvnq_u8_u64(uint64x2_t x) { return vreinterpretq_u64_u8(vmvnq_u8(vreinterpretq_u8_u64(x))); }

inline float32x4_t max_x86(float32x4_t a, float32x4_t b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
inline float32x4_t min_x86(float32x4_t a, float32x4_t b) { return vbslq_f32(vcltq_f32(a, b), a, b); }

// approx_angle_bin16 of avx512.hpp on 4 lanes (the same float32 operations):
// the bin of each angle in [0, pi] known by its cosine c, -1 within the margins.
inline int32x4_t approx_angle_bin4(float32x4_t c, float bin_width, float inv_bw, int top) {
    const float32x4_t ax = vabsq_f32(c);
    float32x4_t poly = vsubq_f32(vdupq_n_f32(0.0742610f), vmulq_f32(vdupq_n_f32(0.0187293f), ax));
    poly = vaddq_f32(vdupq_n_f32(-0.2121144f), vmulq_f32(ax, poly));
    poly = vaddq_f32(vdupq_n_f32(1.5707288f), vmulq_f32(ax, poly));
    const float32x4_t om = vsubq_f32(vdupq_n_f32(1.0f), ax);
    float32x4_t ac = vmulq_f32(vsqrtq_f32(om), poly);
    const uint32x4_t neg = vcltq_f32(c, vdupq_n_f32(0.0f));
    ac = vbslq_f32(neg, vsubq_f32(vdupq_n_f32(3.14159265f), ac), ac);
    const int32x4_t vtop = vdupq_n_s32(top);
    const int32x4_t g = vminq_s32(vcvtq_s32_f32(vmulq_f32(ac, vdupq_n_f32(inv_bw))), vtop);  // truncates, as cvttps
    const float32x4_t bw = vdupq_n_f32(bin_width);
    const float32x4_t lower = vmulq_f32(vcvtq_f32_s32(g), bw);
    const float32x4_t upper = vaddq_f32(lower, bw);
    const float32x4_t margin = vdupq_n_f32(2e-4f), wide = vdupq_n_f32(2e-3f);
    const uint32x4_t first = vceqq_s32(g, vdupq_n_s32(0));
    const uint32x4_t last = vceqq_s32(g, vtop);
    const float32x4_t dlo = vsubq_f32(ac, lower), dhi = vsubq_f32(upper, ac);
    const uint32x4_t lo_ok = vorrq_u32(first, vcgeq_f32(dlo, margin));
    const uint32x4_t hi_ok = vorrq_u32(last, vcgeq_f32(dhi, margin));
    const uint32x4_t polar = vcltq_f32(om, vdupq_n_f32(1e-4f));
    const uint32x4_t pole_ok =
        vorrq_u32(vandq_u32(first, vcgeq_f32(dhi, wide)), vandq_u32(last, vcgeq_f32(dlo, wide)));
    const uint32x4_t ok = vandq_u32(vandq_u32(lo_ok, hi_ok), vorrq_u32(vmvnq_u32(polar), pole_ok));
    return vbslq_s32(ok, g, vdupq_n_s32(-1));
}

// Window vectors idx[j .. j + 2) as float32 (x', y', z') = (e2, e3, e1), each
// point scaled by 2^h, h = ceil(-floor(log2 s) / 2) (exact; from the exponent
// bits, as gather_unit8 of avx512.hpp), so that float32 neither overflows nor
// underflows on its way. no_rho / x_zero: all-ones lanes for the points the
// exact path must decide (x' = y' = 0; y' != 0 that float32 flushes to 0, whose
// sign decides phi's branch; or s zero, subnormal or inf) and for those with x' = 0.
inline void gather_unit2(const double* e1, const double* e2, const double* e3, const double* s,
                         const std::int64_t* idx, std::int64_t j, float32x2_t& x, float32x2_t& y, float32x2_t& z,
                         uint64x2_t& no_rho, uint64x2_t& x_zero) {
    const std::int64_t p0 = idx[j], p1 = idx[j + 1];
    const float64x2_t xp = vsetq_lane_f64(e2[p1], vdupq_n_f64(e2[p0]), 1);
    const float64x2_t yp = vsetq_lane_f64(e3[p1], vdupq_n_f64(e3[p0]), 1);
    const float64x2_t zp = vsetq_lane_f64(e1[p1], vdupq_n_f64(e1[p0]), 1);
    const float64x2_t sv = vsetq_lane_f64(s[p1], vdupq_n_f64(s[p0]), 1);
    // biased exponent E of s; the scale's biased exponent is ((3072 - E) >> 1) - 1
    const uint64x2_t E = vandq_u64(vshrq_n_u64(vreinterpretq_u64_f64(sv), 52), vdupq_n_u64(0x7ff));
    const uint64x2_t hb = vsubq_u64(vshrq_n_u64(vsubq_u64(vdupq_n_u64(3072), E), 1), vdupq_n_u64(1));
    const float64x2_t scale = vreinterpretq_f64_u64(vshlq_n_u64(hb, 52));
    x = vcvt_f32_f64(vmulq_f64(xp, scale));
    y = vcvt_f32_f64(vmulq_f64(yp, scale));
    z = vcvt_f32_f64(vmulq_f64(zp, scale));
    const float64x2_t zero = vdupq_n_f64(0.0);
    x_zero = vceqq_f64(xp, zero);
    const uint64x2_t edge = vorrq_u64(vceqq_u64(E, vdupq_n_u64(0)), vceqq_u64(E, vdupq_n_u64(0x7ff)));
    const uint64x2_t y_zero = vceqq_f64(yp, zero);
    // lanes where float32 y is 0 (as 64-bit lanes: widen the 2 float compare results)
    const uint64x2_t y32_zero = vreinterpretq_u64_s64(vmovl_s32(vreinterpret_s32_u32(vceq_f32(y, vdup_n_f32(0.0f)))));
    no_rho = vorrq_u64(vorrq_u64(vandq_u64(x_zero, y_zero), vbicq_u64(y32_zero, y_zero)), edge);
}

// bin_points of avx512.hpp, 4 points per step: bins of the points idx[0 .. n4)
// into bins, -1 where the exact formula must decide (the caller's exact pass).
// Returns n4.
inline std::int64_t bin_points(const double* e1, const double* e2, const double* e3, const double* s,
                               const std::int64_t* idx, std::int64_t n, bool acme, double bin_width,
                               std::int64_t top, std::int64_t nb, std::int64_t* bins) {
    const std::int64_t n4 = n & ~std::int64_t(3);
    const float bw = static_cast<float>(bin_width), inv_bw = static_cast<float>(1.0 / bin_width);
    const float32x4_t one = vdupq_n_f32(1.0f), mone = vdupq_n_f32(-1.0f), zero = vdupq_n_f32(0.0f);
    for (std::int64_t j = 0; j < n4; j += 4) {
        float32x2_t x0, y0, z0, x1, y1, z1;
        uint64x2_t nr0, xz0, nr1, xz1;
        gather_unit2(e1, e2, e3, s, idx, j, x0, y0, z0, nr0, xz0);
        gather_unit2(e1, e2, e3, s, idx, j + 2, x1, y1, z1, nr1, xz1);
        const float32x4_t xp = vcombine_f32(x0, x1), yp = vcombine_f32(y0, y1), zp = vcombine_f32(z0, z1);
        // 64-bit lane masks narrowed to 32-bit lanes (all ones stay all ones)
        const uint32x4_t no_rho = vcombine_u32(vmovn_u64(nr0), vmovn_u64(nr1));
        const uint32x4_t x_zero = vcombine_u32(vmovn_u64(xz0), vmovn_u64(xz1));
        const float32x4_t rho2 = vaddq_f32(vmulq_f32(xp, xp), vmulq_f32(yp, yp));
        const float32x4_t rho = vsqrtq_f32(rho2);
        const float32x4_t r = vsqrtq_f32(vaddq_f32(rho2, vmulq_f32(zp, zp)));
        float32x4_t ct = vdivq_f32(zp, r);
        ct = min_x86(max_x86(ct, mone), one);
        // cp = -sgn(y') sqrt(u / (2 rho)), u = x' >= 0 ? y'^2 / (rho + x') : rho - x'
        const uint32x4_t xpos = vcgeq_f32(xp, zero);
        const float32x4_t u =
            vbslq_f32(xpos, vdivq_f32(vmulq_f32(yp, yp), vaddq_f32(rho, xp)), vsubq_f32(rho, xp));
        const uint32x4_t ypos = vcgeq_f32(yp, zero);
        float32x4_t cp = vsqrtq_f32(vdivq_f32(u, vaddq_f32(rho, rho)));
        cp = vbslq_f32(ypos, vsubq_f32(zero, cp), cp);
        cp = min_x86(max_x86(cp, mone), one);
        // rho tiny next to r, rho = 0, or the acme preset's x' = 0 branch: the exact path.
        uint32x4_t doubt = vorrq_u32(no_rho, vcltq_f32(rho, vdupq_n_f32(1e-3f)));
        if (acme) doubt = vorrq_u32(doubt, x_zero);
        else doubt = vorrq_u32(doubt, vcgtq_f32(cp, vdupq_n_f32(static_cast<float>(kPhiPoleCos))));  // phi' near 0
        cp = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(cp), doubt));  // +0 where in doubt
        const int32x4_t bi = approx_angle_bin4(cp, bw, inv_bw, static_cast<int>(top));
        const int32x4_t bj = approx_angle_bin4(ct, bw, inv_bw, static_cast<int>(top));
        const uint32x4_t bad = vorrq_u32(vorrq_u32(vcltzq_s32(bi), vcltzq_s32(bj)), doubt);
        const int32x4_t bin =
            vbslq_s32(bad, vdupq_n_s32(-1), vaddq_s32(vmulq_s32(bi, vdupq_n_s32(static_cast<int>(nb))), bj));
        vst1q_s64(bins + j, vmovl_s32(vget_low_s32(bin)));
        vst1q_s64(bins + j + 2, vmovl_high_s32(bin));
    }
    return n4;
}

// gt_scores_f32 of avx512.hpp, 4 positions per step: s[l] = attr at the base
// of x (0 for N); finite becomes false if an attribution value read is inf or
// nan, prob if a model value is outside [0, 1] (or nan); bit r of changed[l / 8]
// (bytes written whole, two steps per byte) is set where the model's row l + r
// differs, bit for bit, from the row before (always for l = 0). Returns L
// rounded down to 8.
inline std::int64_t gt_scores_f32(const float* a, const double* m, const std::int8_t* codes, std::int64_t L,
                                  bool ncl, float* s, std::uint8_t* changed, bool& finite, bool& prob) {
    const std::int64_t n8 = L & ~std::int64_t(7);
    const float64x2_t zero = vdupq_n_f64(0.0), one = vdupq_n_f64(1.0);
    float32x4_t f = vdupq_n_f32(0.0f);       // stays 0 unless an attribution value is inf or nan
    uint64x2_t ok = vdupq_n_u64(~0ull);      // model values in [0, 1] so far
    for (std::int64_t l = 0; l < n8; l += 8) {
        for (int q = 0; q < 8; q += 4) {  // attribution values of rows l .. l + 7
            float32x4_t ch[4];
            f32_read(a, L, l + q, ncl, ch[0], ch[1], ch[2], ch[3]);
            for (int c = 0; c < 4; ++c) f = vaddq_f32(f, vsubq_f32(ch[c], ch[c]));
        }
        for (int r = 0; r < 8; ++r) {
            const int c = codes[l + r];
            s[l + r] = c >= 0 ? (ncl ? a[c * L + l + r] : a[4 * (l + r) + c]) : 0.0f;
        }
        unsigned eq = 0;  // bit r: row l + r equals row l + r - 1
        for (int r = 0; r < 8; ++r) {
            const std::int64_t p = l + r;
            uint64x2_t same = vdupq_n_u64(~0ull);
            for (int h = 0; h < 4; h += 2) {
                float64x2_t v;
                if (ncl)
                    v = vsetq_lane_f64(m[(h + 1) * L + p], vdupq_n_f64(m[h * L + p]), 1);
                else
                    v = vld1q_f64(m + 4 * p + h);
                ok = vandq_u64(ok, vandq_u64(vcgeq_f64(v, zero), vcleq_f64(v, one)));
                if (p == 0) continue;
                const float64x2_t u = ncl ? vsetq_lane_f64(m[(h + 1) * L + p - 1], vdupq_n_f64(m[h * L + p - 1]), 1)
                                          : vld1q_f64(m + 4 * (p - 1) + h);
                same = vandq_u64(same, vceqq_u64(vreinterpretq_u64_f64(v), vreinterpretq_u64_f64(u)));
            }
            if (p > 0) eq |= static_cast<unsigned>((vgetq_lane_u64(same, 0) & vgetq_lane_u64(same, 1)) != 0) << r;
        }
        changed[l >> 3] = static_cast<std::uint8_t>(~eq | (l == 0));
    }
    finite = vminvq_u32(vceqq_f32(f, vdupq_n_f32(0.0f))) != 0;
    prob = (vgetq_lane_u64(ok, 0) & vgetq_lane_u64(ok, 1)) != 0;
    return n8;
}

// The exclusive prefix sum of 256 counts, in place (the radix sort's bucket
// starts), 4 counts per step: integer sums, exact in any order.
inline void exclusive_prefix_256(std::uint32_t* c) {
    const uint32x4_t z = vdupq_n_u32(0);
    uint32x4_t carry = z;
    for (int b = 0; b < 256; b += 4) {
        const uint32x4_t v = vld1q_u32(c + b);
        uint32x4_t x = vaddq_u32(v, vextq_u32(z, v, 3));  // v[i] + v[i - 1]
        x = vaddq_u32(x, vextq_u32(z, x, 2));
        x = vaddq_u32(x, carry);
        vst1q_u32(c + b, vsubq_u32(x, v));
        carry = vdupq_laneq_u32(x, 3);
    }
}

// gt_split_f32 of avx512.hpp, 4 positions per step: as the scalar loop of
// groundtruth, appends {key, label} of signal (1) and background (0) positions
// to ev, signal scores to sel and positive background scores to noise, in
// position order. Returns n rounded down to 4.
inline std::int64_t gt_split_f32(const double* info, const float* s, std::int64_t n, double threshold, double mn,
                                 std::uint64_t* ev, float* sel, float* noise, std::int64_t& n_eval,
                                 std::int64_t& n_sig, std::int64_t& n_noise) {
    const std::int64_t n4 = n & ~std::int64_t(3);
    const float64x2_t vt = vdupq_n_f64(threshold), vmn = vdupq_n_f64(mn);
    std::int64_t ne = n_eval, ns = n_sig, nn = n_noise;
    for (std::int64_t l = 0; l < n4; l += 4) {
        const float64x2_t i0 = vld1q_f64(info + l), i1 = vld1q_f64(info + l + 2);
        const float32x4_t sv = vld1q_f32(s + l);
        const uint32x4_t sig = vcombine_u32(vmovn_u64(vcgtq_f64(i0, vt)), vmovn_u64(vcgtq_f64(i1, vt)));
        const uint32x4_t bg = vcombine_u32(vmovn_u64(vceqq_f64(i0, vmn)), vmovn_u64(vceqq_f64(i1, vmn)));
        // ScoreKey<float>::of: bits b of s + 0; key = b ^ (negative ? 0 : 0x7FFFFFFF).
        const uint32x4_t b = vreinterpretq_u32_f32(vaddq_f32(sv, vdupq_n_f32(0.0f)));
        const uint32x4_t neg = vreinterpretq_u32_s32(vshrq_n_s32(vreinterpretq_s32_u32(b), 31));
        const uint32x4_t key = veorq_u32(b, vbicq_u32(vdupq_n_u32(0x7FFFFFFFu), neg));
        const uint32x4_t pos = vandq_u32(bg, vcgtq_f32(sv, vdupq_n_f32(0.0f)));
        std::uint32_t k4[4], g4[4], b4[4], p4[4];
        float v4[4];
        vst1q_u32(k4, key);
        vst1q_u32(g4, vshrq_n_u32(sig, 31));
        vst1q_u32(b4, vshrq_n_u32(vorrq_u32(sig, bg), 31));
        vst1q_u32(p4, vshrq_n_u32(pos, 31));
        vst1q_f32(v4, sv);
        for (int r = 0; r < 4; ++r) {  // counts <= l + r: inside the arrays
            ev[ne] = std::uint64_t(k4[r]) | (std::uint64_t(g4[r]) << 32);
            ne += b4[r];
            sel[ns] = v4[r];
            ns += g4[r];
            noise[nn] = v4[r];
            nn += p4[r];
        }
    }
    n_eval = ne;
    n_sig = ns;
    n_noise = nn;
    return n4;
}

// curve_counts_f32 of avx512.hpp, 2 items per step: the threshold pass of the
// curve walk over sorted items v[0 .. n) (KeyLabel<uint32_t> as uint64: key low,
// label high), for j < (n - 1) rounded down to 2: at the end of each run of
// equal keys, the cumulative positives and negatives go to tps[m], fps[m] (++m).
// tp gets the positives among the items done; returns how many were done.
inline std::int64_t curve_counts_f32(const std::uint64_t* v, std::int64_t n, double* tps, double* fps,
                                     std::int64_t& m, std::int64_t& tp) {
    const std::int64_t n2 = n > 0 ? (n - 1) & ~std::int64_t(1) : 0;
    const uint64x2_t lo = vdupq_n_u64(0xFFFFFFFFull);
    std::int64_t k = m, t = 0;
    for (std::int64_t j = 0; j < n2; j += 2) {
        const uint64x2_t it = vld1q_u64(v + j), nx = vld1q_u64(v + j + 1);  // j + 2 < n
        const uint64x2_t lab = vshrq_n_u64(it, 32);
        const uint64x2_t last = vshrq_n_u64(vmvnq_u8_u64(vceqq_u64(vandq_u64(it, lo), vandq_u64(nx, lo))), 63);
        const std::int64_t t0 = t + static_cast<std::int64_t>(vgetq_lane_u64(lab, 0));
        const std::int64_t t1 = t0 + static_cast<std::int64_t>(vgetq_lane_u64(lab, 1));
        tps[k] = static_cast<double>(t0);  // k <= j
        fps[k] = static_cast<double>(j + 1 - t0);
        k += static_cast<std::int64_t>(vgetq_lane_u64(last, 0));
        tps[k] = static_cast<double>(t1);
        fps[k] = static_cast<double>(j + 2 - t1);
        k += static_cast<std::int64_t>(vgetq_lane_u64(last, 1));
        t = t1;
    }
    m = k;
    tp = t;
    return n2;
}

// curve_terms of avx512.hpp, 2 thresholds per step: with t = tps[j], f = fps[j],
// prec = t / (t + f), fpr = f / negatives, tpr = t / positives, fps[j] becomes
// (fpr - prev fpr) * (tpr + prev tpr) / 2 and tps[j] (tpr - prev tpr) * (prec +
// prev prec) / 2. prev_* come in for j = 0 and go out as the last rates.
inline std::int64_t curve_terms(double* tps, double* fps, std::int64_t m, double P, double Nn, double& prev_fpr,
                                double& prev_tpr, double& prev_prec) {
    const std::int64_t m2 = m & ~std::int64_t(1);
    if (m2 == 0) return 0;
    const float64x2_t vp = vdupq_n_f64(P), vn = vdupq_n_f64(Nn), half = vdupq_n_f64(0.5);
    float64x2_t pf = vdupq_n_f64(prev_fpr), pt = vdupq_n_f64(prev_tpr), pp = vdupq_n_f64(prev_prec);
    for (std::int64_t j = 0; j < m2; j += 2) {
        const float64x2_t t = vld1q_f64(tps + j), f = vld1q_f64(fps + j);
        const float64x2_t pc = vdivq_f64(t, vaddq_f64(t, f));
        const float64x2_t fpr = vdivq_f64(f, vn), tpr = vdivq_f64(t, vp);
        // lanes prev[1], cur[0]
        const float64x2_t fpr0 = vextq_f64(pf, fpr, 1), tpr0 = vextq_f64(pt, tpr, 1), pc0 = vextq_f64(pp, pc, 1);
        // x / 2.0 == x * 0.5 exactly
        vst1q_f64(fps + j, vmulq_f64(vmulq_f64(vsubq_f64(fpr, fpr0), vaddq_f64(tpr, tpr0)), half));
        vst1q_f64(tps + j, vmulq_f64(vmulq_f64(vsubq_f64(tpr, tpr0), vaddq_f64(pc, pc0)), half));
        pf = fpr;
        pt = tpr;
        pp = pc;
    }
    prev_fpr = vgetq_lane_f64(pf, 1);
    prev_tpr = vgetq_lane_f64(pt, 1);
    prev_prec = vgetq_lane_f64(pp, 1);
    return m2;
}

}  // namespace acme::core::neon
#endif
