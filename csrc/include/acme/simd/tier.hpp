// Instruction-set tiers and what this CPU has. Pure C++17, no Python.
//
// One build runs on every CPU of its architecture: the vector kernels carry
// target attributes (x86-64: avx2.hpp, avx512.hpp) or need nothing special
// (arm64: NEON is part of the base ISA), and dispatch.hpp picks one table of
// kernels at run time.
#pragma once

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define ACME_X86_SIMD 1
#else
#define ACME_X86_SIMD 0
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__) && defined(__ARM_NEON)
#define ACME_NEON_SIMD 1
#else
#define ACME_NEON_SIMD 0
#endif

namespace acme::core {

// The tiers, by number (the index into kTierNames). The tier that runs is the
// CPU's best unless the user asks for a lower one (ACME_FAST_SIMD, set_simd_level).
enum SimdTier : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3 };
inline constexpr int kNumTiers = 4;
inline constexpr const char* kTierNames[kNumTiers] = {"scalar", "avx2", "avx512", "neon"};

inline bool cpu_has_avx2() {
#if ACME_X86_SIMD
    static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
    return has;
#else
    return false;
#endif
}

inline bool cpu_has_avx512() {
#if ACME_X86_SIMD
    static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
    return has;
#else
    return false;
#endif
}

// FMA: every AVX2 CPU made has it, but the AVX2 tier does not require it; only
// compat's exact division (compat.hpp: divide_exact) uses it.
inline bool cpu_has_fma() {
#if ACME_X86_SIMD
    static const bool has = __builtin_cpu_supports("fma");
    return has;
#else
    return false;
#endif
}

// Whether this CPU can run tier t (scalar always; NEON on every arm64 CPU).
inline bool tier_available(int t) {
    switch (t) {
        case kScalar: return true;
        case kAvx2: return cpu_has_avx2();
        case kAvx512: return cpu_has_avx512();
        case kNeon: return ACME_NEON_SIMD != 0;
        default: return false;
    }
}

// The fast binning of every tier (kattr.hpp: SeqPoints::bin_points and its
// vector versions) sends a paper-preset point whose cos(phi') exceeds this to
// the exact formula: phi' below ~2e-3 means phi = atan2(y', x') near -pi, where
// the exact formula's atan2 may round to -pi, which the paper preset maps to
// +pi (phi' = pi, the last bin) although the true angle is in the first bin.
inline constexpr double kPhiPoleCos = 0.999998;  // cos(2e-3) = 0.999998000000667

// The best tier this CPU has.
inline int cpu_tier() {
    if (tier_available(kAvx512)) return kAvx512;
    if (tier_available(kAvx2)) return kAvx2;
    if (tier_available(kNeon)) return kNeon;
    return kScalar;
}

}  // namespace acme::core
