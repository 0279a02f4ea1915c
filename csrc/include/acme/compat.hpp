// The drop-in layer's per-point passes (acme_fast.compat, SPEC section 6): the
// published method-2 functions return per-point arrays, so they cannot use the
// histogram kernels; these build the same arrays in one pass each, with the
// same floating-point operations in the same order as the numpy code they
// replace (which is the published code's order), so the outputs are the same
// bits. The transcendental functions (arctan, arccos) stay in numpy, on the
// kept points only, so they are numpy's on every machine.
#pragma once

#include <memory>

#include "common.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace acme::core {

// process_attribution_map: gauge correction, division by the sequence's total
// norm, forward wrap-around window sum of k terms, published projection.
// a: (N, L, 4) NLC; out: (N, L, 3) float64. Returns the flat index of the first
// non-finite input value, or -1.
// Per-thread scratch of compat_process_map: the four channels, their window sums,
// the three coordinates and the norms, one array each (structure of arrays: every
// loop of compat_process_seq is a plain loop the compiler vectorises, with the
// numpy code's operations per value).
struct ProcessScratch {
    std::vector<double> buf;
    double *ch[4], *w[4], *e[3], *nrm;
    void resize(i64 L) {
        buf.resize(static_cast<size_t>(12 * L));
        double* b = buf.data();
        for (int c = 0; c < 4; ++c) ch[c] = b + c * L;
        for (int c = 0; c < 4; ++c) w[c] = b + (4 + c) * L;
        for (int c = 0; c < 3; ++c) e[c] = b + (8 + c) * L;
        nrm = b + 11 * L;
    }
};

// One sequence ai (L, 4) of process_attribution_map into o (L, 3). Returns the
// index in ai of its first non-finite value, or -1 (o is then not written).
// Always inlined into its callers, so that the AVX2 caller below compiles the
// same operations with 4-lane vectors (no FMA: the same bits).
template <class TA>
__attribute__((always_inline)) inline i64 compat_process_seq(const TA* __restrict__ ai, i64 L, int k,
                                                             ProcessScratch& sc, double* __restrict__ o) {
    // the published constants, as numpy evaluates them (Python floats)
    const double c1 = 1.0 / std::sqrt(2.0), c2 = std::sqrt(2.0 / 3.0), c3 = std::sqrt(3.0 / 4.0);
    const double half = 1.0 / 2.0, third = 1.0 / 3.0;
    double* __restrict__ x = sc.ch[0];
    double* __restrict__ y = sc.ch[1];
    double* __restrict__ z = sc.ch[2];
    double* __restrict__ t = sc.ch[3];
    double* __restrict__ nrm = sc.nrm;
    double amax = 0.0, fin = 0.0;  // fin stays 0 unless a value is inf or nan
    for (i64 l = 0; l < L; ++l) {
        x[l] = static_cast<double>(ai[4 * l]);
        y[l] = static_cast<double>(ai[4 * l + 1]);
        z[l] = static_cast<double>(ai[4 * l + 2]);
        t[l] = static_cast<double>(ai[4 * l + 3]);
        fin += ((x[l] - x[l]) + (y[l] - y[l])) + ((z[l] - z[l]) + (t[l] - t[l]));
        amax = std::max(amax, std::max(std::max(std::fabs(x[l]), std::fabs(y[l])),
                                       std::max(std::fabs(z[l]), std::fabs(t[l]))));
    }
    if (fin != 0.0) {  // the first non-finite value, in (position, channel) order
        for (i64 j = 0; j < 4 * L; ++j)
            if (!std::isfinite(static_cast<double>(ai[j]))) return j;
    }
    // squares would over- or underflow: scale by a power of two first (exact)
    if (amax > 0 && (amax > 0x1p+400 || amax < 0x1p-400)) {
        int ex;
        std::frexp(amax, &ex);
        for (int c = 0; c < 4; ++c)
            for (i64 l = 0; l < L; ++l) sc.ch[c][l] = std::ldexp(sc.ch[c][l], -ex);
    }
    for (i64 l = 0; l < L; ++l) {
        const double mu = (((x[l] + y[l]) + z[l]) + t[l]) / 4;
        x[l] -= mu;
        y[l] -= mu;
        z[l] -= mu;
        t[l] -= mu;
        nrm[l] = std::sqrt(((x[l] * x[l] + y[l] * y[l]) + z[l] * z[l]) + t[l] * t[l]);
    }
    const double total = pairwise_sum(nrm, L);  // np.sum(norm, axis=-1)
    for (int c = 0; c < 4; ++c) {
        double* __restrict__ g = sc.ch[c];
        double* __restrict__ w = sc.w[c];
        for (i64 l = 0; l < L; ++l) g[l] /= total;  // 0 / 0 = nan, as published
        // forward wrap-around window sum, left to right: w[l] = g[l] + g[l+1] + ...
        for (i64 l = 0; l < L; ++l) w[l] = g[l];
        for (int s = 1; s < k; ++s) {
            for (i64 l = 0; l < L - s; ++l) w[l] += g[l + s];
            for (i64 l = L - s; l < L; ++l) w[l] += g[l + s - L];
        }
    }
    const double* __restrict__ w0 = sc.w[0];
    const double* __restrict__ w1 = sc.w[1];
    const double* __restrict__ w2 = sc.w[2];
    const double* __restrict__ w3 = sc.w[3];
    double* __restrict__ e1 = sc.e[0];
    double* __restrict__ e2 = sc.e[1];
    double* __restrict__ e3 = sc.e[2];
    for (i64 l = 0; l < L; ++l) {
        e1[l] = c1 * (-w0[l] + w1[l]);
        e2[l] = c2 * (-half * w0[l] - half * w1[l]);
        e3[l] = c3 * (((-third * w0[l] - third * w1[l]) - third * w2[l]) + w3[l]);
    }
    for (i64 l = 0; l < L; ++l) {
        o[3 * l] = e1[l];
        o[3 * l + 1] = e2[l];
        o[3 * l + 2] = e3[l];
    }
    return -1;
}

template <class TA>
i64 compat_process_seq_default(const TA* ai, i64 L, int k, ProcessScratch& sc, double* o) {
    return compat_process_seq(ai, L, k, sc, o);
}

#if ACME_X86_SIMD
template <class TA>
__attribute__((target("avx2"))) i64 compat_process_seq_avx2(const TA* ai, i64 L, int k, ProcessScratch& sc,
                                                              double* o) {
    return compat_process_seq(ai, L, k, sc, o);
}
#endif

// process_attribution_map: gauge correction, division by the sequence's total
// norm, forward wrap-around window sum of k terms, published projection.
// a: (N, L, 4) NLC; out: (N, L, 3) float64. Returns the flat index of the first
// non-finite input value, or -1. The x86-64 vector tiers run the AVX2 build of
// the same code (the same bits: tests/test_compat_passes.py).
template <class TA>
i64 compat_process_map(const TA* a, i64 N, i64 L, int k, int n_threads, double* out) {
    std::atomic<i64> first_bad{std::numeric_limits<i64>::max()};
    const int nt = resolve_threads(n_threads, N);
    std::vector<ProcessScratch> scratch(static_cast<size_t>(nt));
    auto seq = &compat_process_seq_default<TA>;
#if ACME_X86_SIMD
    if (simd_tier() == kAvx2 || simd_tier() == kAvx512) seq = &compat_process_seq_avx2<TA>;
#endif
    parallel_for(
        nt, N, 4, [&](int tid) { scratch[tid].resize(L); },
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

// An uninitialised buffer of n doubles for a large per-point pass. On Linux it is
// mapped with transparent huge pages where the kernel allows them (madvise):
// first-touching tens of MB in 4 KiB pages costs more than the pass itself.
class PointBuffer {
public:
    explicit PointBuffer(size_t n) : bytes_(n * sizeof(double)) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (bytes_ >= (size_t(1) << 21)) {
            void* m = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m != MAP_FAILED) {
                madvise(m, bytes_, MADV_HUGEPAGE);  // advice only: ignored where unsupported
                p_ = static_cast<double*>(m);
                mapped_ = true;
                return;
            }
        }
#endif
        p_ = new double[n > 0 ? n : 1];
    }
    ~PointBuffer() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (mapped_) {
            munmap(p_, bytes_);
            return;
        }
#endif
        delete[] p_;
    }
    PointBuffer(const PointBuffer&) = delete;
    PointBuffer& operator=(const PointBuffer&) = delete;
    double* get() const { return p_; }
    double& operator[](i64 j) const { return p_[j]; }

private:
    double* p_ = nullptr;
    size_t bytes_;
    bool mapped_ = false;
};

// The k-th smallest of v[0..n) (0 <= k < n), v unmodified: np.partition(v, k)[k]
// (order_pair's sampled bracket: usually one pass and a selection on a small part).
inline double kth_smallest(const double* v, i64 n, i64 k) {
    PointBuffer buf(static_cast<size_t>(n));  // written only where needed
    return order_pair_ranks(v, n, k, k, 0.0, buf.get()).a;
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

// Pass 1 of SphericalPass over points [p0, p1): the radius r and the norm mr of
// the masked, nan_to_num'd coordinates. Always inlined into its callers (the AVX2
// one compiles the same operations with 4-lane vectors: the same bits).
__attribute__((always_inline)) inline void spherical_radii(const double* __restrict__ s, i64 p0, i64 p1,
                                                           double mask, const double* __restrict__ mask_arr,
                                                           double* __restrict__ r, double* __restrict__ mr) {
    for (i64 p = p0; p < p1; ++p) {
        const double c0 = s[3 * p], c1 = s[3 * p + 1], c2 = s[3 * p + 2];
        r[p] = nan_to_num(std::sqrt((c0 * c0 + c1 * c1) + c2 * c2));
    }
    if (mr == nullptr) return;
    for (i64 p = p0; p < p1; ++p) {
        double x, y, z;
        masked_coords(s, p, mask_arr ? mask_arr[p] : mask, x, y, z);
        mr[p] = std::sqrt((x * x + y * y) + z * z);
    }
}

inline void spherical_radii_default(const double* s, i64 p0, i64 p1, double mask, const double* mask_arr, double* r,
                                    double* mr) {
    spherical_radii(s, p0, p1, mask, mask_arr, r, mr);
}

#if ACME_X86_SIMD
__attribute__((target("avx2"))) inline void spherical_radii_avx2(const double* s, i64 p0, i64 p1, double mask,
                                                                   const double* mask_arr, double* r, double* mr) {
    spherical_radii(s, p0, p1, mask, mask_arr, r, mr);
}
#endif

// spherical_coordinates_process_2_trad for one map (N, L, 3) of float64 with
// mask m (a scalar, or one value per position when mask_arr is given), in two
// steps so that the caller can allocate the outputs between them:
// select() computes the radii r = sqrt(c0 c0 + c1 c1 + c2 c2) of every point,
// the cutoff (the radius_count-th largest radius; the smallest when
// radius_count = 0) and how many points have a masked radius above it; write()
// stores, for those points in order, the ratio y'/x' for arctan, a branch code
// (0: phi = arctan, 1: + PI, 2: - PI, 3: x' = 0 -> PI / 2), the clipped cosine
// z'/r for arccos, and r.
class SphericalPass {
public:
    SphericalPass(const double* s, i64 N, i64 L, double mask, const double* mask_arr, int n_threads)
        : s_(s), N_(N), L_(L), mask_(mask), mask_arr_(mask_arr), nt_(resolve_threads(n_threads, N)),
          unit_(mask_arr == nullptr && mask == 1.0), r_(static_cast<size_t>(N * L)),
          mr_(unit_ ? 0 : static_cast<size_t>(N * L)), count_(static_cast<size_t>(N) + 1, 0) {}

    i64 select(i64 radius_count) {
        const i64 L = L_, size = N_ * L_;
        auto radii = &spherical_radii_default;
#if ACME_X86_SIMD
        if (simd_tier() == kAvx2 || simd_tier() == kAvx512) radii = &spherical_radii_avx2;
#endif
        parallel_for(nt_, N_, 16, [](int) {}, [&](int, i64 i) {
            radii(s_, i * L, (i + 1) * L, mask_, mask_arr_, r_.get(), unit_ ? nullptr : mr_.get());
        });
        if (radius_count == 0) {
            cutoff_ = std::numeric_limits<double>::infinity();
            for (i64 p = 0; p < size; ++p) cutoff_ = std::min(cutoff_, r_[p]);
        } else {
            cutoff_ = kth_smallest(r_.get(), size, size - radius_count);
        }
        parallel_for(nt_, N_, 16, [](int) {}, [&](int, i64 i) {
            i64 c = 0;
            for (i64 p = i * L; p < (i + 1) * L; ++p) c += kept(p);
            count_[static_cast<size_t>(i) + 1] = c;
        });
        for (i64 i = 0; i < N_; ++i) count_[static_cast<size_t>(i) + 1] += count_[static_cast<size_t>(i)];
        return count_[static_cast<size_t>(N_)];
    }

    double cutoff() const { return cutoff_; }

    void write(double* ratio, std::int8_t* branch, double* cosine, double* rad) const {
        const i64 L = L_;
        std::vector<std::vector<i64>> kept_idx(static_cast<size_t>(nt_));
        parallel_for(nt_, N_, 16, [&](int tid) { kept_idx[tid].resize(static_cast<size_t>(L)); },
                     [&](int tid, i64 i) {
            // the kept points of this sequence (branch-free compaction), then their values
            i64* idx = kept_idx[tid].data();
            i64 n = 0;
            for (i64 p = i * L; p < (i + 1) * L; ++p) {
                idx[n] = p;
                n += kept(p);
            }
            const i64 j0 = count_[static_cast<size_t>(i)];
            for (i64 q = 0; q < n; ++q) {
                const i64 p = idx[q], j = j0 + q;
                double x, y, z;
                masked(p, x, y, z);
                const double xr = y, yr = z, zr = x;  // rotated axes
                ratio[j] = yr / xr;
                const int neg = xr < 0, below = yr < 0;
                branch[j] = static_cast<std::int8_t>(xr == 0 ? 3 : neg * (1 + below));
                const double c = zr / r_[p];
                cosine[j] = c < -1.0 ? -1.0 : (c > 1.0 ? 1.0 : c);  // np.clip: nan stays nan
                rad[j] = r_[p];
            }
        });
    }

private:
    // Whether point p's masked radius is above the cutoff. With the mask 1 the
    // masked radius is the radius r itself, except where nan_to_num changed r
    // (a nan or inf coordinate, or squares that overflow: r is 0 or max there),
    // where it is computed again from the coordinates.
    bool kept(i64 p) const {
        if (!unit_) return mr_[p] > cutoff_;
        const double r = r_[p];
        if (r != 0.0 && r != std::numeric_limits<double>::max()) return r > cutoff_;
        double x, y, z;
        masked(p, x, y, z);
        return std::sqrt((x * x + y * y) + z * z) > cutoff_;
    }

    // the masked coordinates, nan_to_num'd (x = e1, y = e2, z = e3)
    void masked(i64 p, double& x, double& y, double& z) const {
        masked_coords(s_, p, mask_arr_ ? mask_arr_[p] : mask_, x, y, z);
    }

    const double* s_;
    i64 N_, L_;
    double mask_;
    const double* mask_arr_;
    int nt_;
    bool unit_;           // the mask is the scalar 1: no mr_ (see kept)
    PointBuffer r_, mr_;  // radius; norm of the masked coordinates
    std::vector<i64> count_;
    double cutoff_ = 0.0;
};

// calculate_entropy_2's histogram of one map: bins min(int(angle / box_length),
// n_bins - 1) of (phi', theta), weight r^2. Returns 0, or the first bad point's
// problem: 1 non-finite angle, 2 radius not finite or |r| >= 2^48, 3 negative
// bin (an angle below 0); `bad` is its index.
inline int compat_angle_hist(const double* p1, const double* p2, const double* r, i64 n, double box_length,
                             i64 n_bins, FixedSum* hist, i64& bad) {
    // the checks first, in the numpy code's order (all angles, then radii, then signs)
    for (i64 j = 0; j < n; ++j)
        if (!std::isfinite(p1[j]) || !std::isfinite(p2[j])) return bad = j, 1;
    for (i64 j = 0; j < n; ++j)
        if (!(std::fabs(r[j]) < 0x1p48)) return bad = j, 2;
    // ndarray.astype(int64) truncates; values beyond int64 are clamped here to the last bin
    auto bin = [&](double v) -> i64 {
        const double q = v / box_length;
        if (q >= 0x1p63) return n_bins - 1;
        if (q <= -0x1p63) return -1;
        const i64 b = static_cast<i64>(q);
        return b < n_bins - 1 ? b : n_bins - 1;
    };
    for (i64 j = 0; j < n; ++j)
        if (bin(p1[j]) < 0 || bin(p2[j]) < 0) return bad = j, 3;
    for (i64 j = 0; j < n; ++j) hist[bin(p1[j]) * n_bins + bin(p2[j])].add(r[j] * r[j]);
    return 0;
}

}  // namespace acme::core
