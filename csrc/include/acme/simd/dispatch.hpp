// The one dispatch table of the vector kernels.
//
// Each row of a table is one kernel; each table is one tier: scalar, AVX2,
// AVX-512 (x86-64) or NEON (arm64), so a kernel's versions are read side by
// side in the tables below and in avx2.hpp / avx512.hpp / neon.hpp (same
// names, same order). The scalar loop at each call site defines the order of
// every floating-point operation and is the scalar tier: a vector kernel does
// a prefix of the input exactly as that loop would (same IEEE operations per
// value, no FMA, fixed lane counts and combine trees) and returns its length;
// the scalar loop does the rest. The scalar table's entries are empty (nullptr):
// the scalar code does all of it. So every tier gives the same bits, and every
// vector tier has every kernel.
//
// The table in use is chosen once, on first use (at import of the Python
// module), from the CPU's features; set_tier() switches to another tier the
// CPU has (ACME_FAST_SIMD, tests).
#pragma once

#include <atomic>
#include <cstdint>

#include "tier.hpp"
#include "avx2.hpp"
#include "avx512.hpp"
#include "neon.hpp"

namespace acme::core {

struct Kernels {
    int tier;
    // Inputs of one sequence (float32 attributions).
    std::int64_t (*norms2_f32)(const float* a, std::int64_t L, bool ncl, double* s, bool& fin);
    std::int64_t (*codes_f32)(const float* x, std::int64_t L, bool ncl, std::int8_t* codes, bool& bad);
    // k-attr: per-position projection, window sums, selection, binning.
    std::int64_t (*load_f32)(const float* a, std::int64_t L, bool ncl, bool acme, double* E1, double* E2,
                             double* E3, double* acc);
    std::int64_t (*load_w3_f32)(const float* a, std::int64_t L, bool ncl, bool acme, double* E1, double* E2,
                                double* E3, double* o1, double* o2, double* o3, double* os, double* acc,
                                std::int64_t& pw);
    std::int64_t (*window3)(const double* E1, const double* E2, const double* E3, std::int64_t n, double* o1,
                            double* o2, double* o3, double* os);
    std::int64_t (*bracket)(const double* src, std::int64_t n, double lo, double hi, double* buf,
                            std::int64_t& below, std::int64_t& m);
    void (*select_pair)(const double* v, std::int64_t m, std::int64_t k, double* t1, double* t2, double& a,
                        double& b);
    std::int64_t (*indices_above)(const double* s, std::int64_t n, double t, std::int64_t* idx, std::int64_t& k);
    std::int64_t (*radius_keys)(const double* s, std::int64_t n, double scale, int shift, std::int64_t* keys);
    std::int64_t (*keep_radius)(const double* s, std::int64_t* idx, std::int64_t n, double scale, double t,
                                bool strict, double* rad, std::int64_t& m);
    std::int64_t (*bin_points)(const double* e1, const double* e2, const double* e3, const double* s,
                               const std::int64_t* idx, std::int64_t n, bool acme, double bin_width,
                               std::int64_t top, std::int64_t nb, std::int64_t* bins);
    // Ground truth: scores, split, sort, curves.
    std::int64_t (*gt_scores_f32)(const float* a, const double* m, const std::int8_t* codes, std::int64_t L,
                                  bool ncl, float* s, std::uint8_t* changed, bool& finite, bool& prob);
    std::int64_t (*gt_split_f32)(const double* info, const float* s, std::int64_t n, double threshold, double mn,
                                 std::uint64_t* ev, float* sel, float* noise, std::int64_t& n_eval,
                                 std::int64_t& n_sig, std::int64_t& n_noise);
    void (*exclusive_prefix_256)(std::uint32_t* c);
    std::int64_t (*curve_counts_f32)(const std::uint64_t* v, std::int64_t n, double* tps, double* fps,
                                     std::int64_t& m, std::int64_t& tp);
    std::int64_t (*curve_terms)(double* tps, double* fps, std::int64_t m, double P, double Nn, double& prev_fpr,
                                double& prev_tpr, double& prev_prec);
};

// Scalar: every loop at its call site.
inline constexpr Kernels kScalarKernels{kScalar, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                        nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                        nullptr};

#if ACME_X86_SIMD
inline constexpr Kernels kAvx2Kernels{
    kAvx2,
    avx2::norms2_f32,
    avx2::codes_f32,
    avx2::load_f32,
    avx2::load_w3_f32,
    avx2::window3,
    avx2::bracket,
    avx2::select_pair,
    avx2::indices_above,
    avx2::radius_keys,
    avx2::keep_radius,
    avx2::bin_points,
    avx2::gt_scores_f32,
    avx2::gt_split_f32,
    avx2::exclusive_prefix_256,
    avx2::curve_counts_f32,
    avx2::curve_terms,
};

inline constexpr Kernels kAvx512Kernels{
    kAvx512,
    avx512::norms2_f32,
    avx512::codes_f32,
    avx512::load_f32,
    avx512::load_w3_f32,
    avx512::window3,
    avx512::bracket,
    avx512::select_pair,
    avx512::indices_above,
    avx512::radius_keys,
    avx512::keep_radius,
    avx512::bin_points,
    avx512::gt_scores_f32,
    avx512::gt_split_f32,
    avx512::exclusive_prefix_256,
    avx512::curve_counts_f32,
    avx512::curve_terms,
};
#endif

#if ACME_NEON_SIMD
inline constexpr Kernels kNeonKernels{
    kNeon,
    neon::norms2_f32,
    neon::codes_f32,
    neon::load_f32,
    neon::load_w3_f32,
    neon::window3,
    neon::bracket,
    neon::select_pair,
    neon::indices_above,
    neon::radius_keys,
    neon::keep_radius,
    neon::bin_points,
    neon::gt_scores_f32,
    neon::gt_split_f32,
    neon::exclusive_prefix_256,
    neon::curve_counts_f32,
    neon::curve_terms,
};
#endif

// The table of tier t, nullptr when this build has none for it.
inline const Kernels* kernels_of(int t) {
    switch (t) {
        case kScalar: return &kScalarKernels;
#if ACME_X86_SIMD
        case kAvx2: return &kAvx2Kernels;
        case kAvx512: return &kAvx512Kernels;
#endif
#if ACME_NEON_SIMD
        case kNeon: return &kNeonKernels;
#endif
        default: return nullptr;
    }
}

inline std::atomic<const Kernels*>& active_kernels() {
    static std::atomic<const Kernels*> k{kernels_of(cpu_tier())};  // filled once, from the CPU's features
    return k;
}

// The table in use.
inline const Kernels& kernels() { return *active_kernels().load(std::memory_order_relaxed); }

// The tier in use.
inline int simd_tier() { return kernels().tier; }

// Switches to tier t; false (nothing changed) when the CPU or this build lacks it.
inline bool set_tier(int t) {
    const Kernels* k = kernels_of(t);
    if (k == nullptr || !tier_available(t)) return false;
    active_kernels().store(k, std::memory_order_relaxed);
    return true;
}

}  // namespace acme::core
