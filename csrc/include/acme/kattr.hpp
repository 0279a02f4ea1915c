// k-attr-mean KLD (SPEC section 3): window means, Gram-Schmidt projection,
// thresholding, spherical binning and the KL against a smoothed prior.
#pragma once

#include <functional>
#include <memory>

#include "common.hpp"

namespace acme::core {

enum class Weight : int { r2 = 0, none = 1, inv_r2 = 2 };

struct KattrConfig {
    bool acme = false;       // preset "acme" (published code) or "paper"
    int window = 3;          // paper: centred mean of `window` terms; acme: forward sum
    double quantile = 0.9;
    double bin_width = 0.1;
    int n_bins = 31;         // bins per axis
    Weight weight = Weight::r2;
};

constexpr double kPiAcme = 3.1416;  // the published code's constant
constexpr double kPi = 3.14159265358979323846;

// Number of points a sequence of length L contributes.
inline i64 kattr_points_per_seq(const KattrConfig& cfg, i64 L) {
    return cfg.acme ? L : L - 2 * (cfg.window / 2);
}

// Histogram bin (row phi', column theta) of a point (e1, e2, e3) with
// r = ||e|| > 0, by the formulas of SPEC 3 (atan2 / the published arctan
// branches, arccos). x' = e2, y' = e3, z' = e1.
inline i64 kattr_bin_exact(const KattrConfig& cfg, double e1, double e2, double e3, double r) {
    const double xp = e2, yp = e3, zp = e1;
    const i64 n = cfg.n_bins;
    double phi_p, theta;
    double c = zp / r;
    c = c > 1.0 ? 1.0 : (c < -1.0 ? -1.0 : c);
    theta = std::acos(c);
    i64 bi, bj;
    if (cfg.acme) {
        double phi;
        if (xp > 0) phi = std::atan(yp / xp);
        else if (xp < 0 && yp >= 0) phi = std::atan(yp / xp) + kPiAcme;
        else if (xp < 0) phi = std::atan(yp / xp) - kPiAcme;
        else phi = kPiAcme / 2;
        phi_p = phi / 2 + kPiAcme / 2;
        bi = static_cast<i64>(phi_p / cfg.bin_width);  // int(): truncation, as published
        bj = static_cast<i64>(theta / cfg.bin_width);
    } else {
        double phi = std::atan2(yp, xp);
        if (phi <= -kPi) phi = kPi;  // (-pi, pi]
        phi_p = phi / 2 + kPi / 2;
        bi = static_cast<i64>(std::floor(phi_p / cfg.bin_width));
        bj = static_cast<i64>(std::floor(theta / cfg.bin_width));
    }
    bi = std::min(std::max(bi, i64(0)), n - 1);
    bj = std::min(std::max(bj, i64(0)), n - 1);
    return bi * n + bj;
}

// Bin of an angle in [0, pi] known by its cosine c, from a cheap arccos
// (Abramowitz & Stegun 4.4.45, |error| < 7e-5 rad); -1 when that angle is
// within 2e-4 rad of a bin edge, where only the exact formula can decide.
// Branch-free so that a batch of points pipelines.
inline i64 approx_angle_bin(double c, double bin_width, double inv_bw, i64 top) {
    constexpr double margin = 2e-4;
    const double ax = std::fabs(c);
    double ac = std::sqrt(1.0 - ax) * (1.5707288 + ax * (-0.2121144 + ax * (0.0742610 - 0.0187293 * ax)));
    ac = c < 0 ? kPi - ac : ac;
    i64 g = static_cast<i64>(ac * inv_bw);
    g = g > top ? top : g;
    const double lower = static_cast<double>(g) * bin_width, upper = lower + bin_width;
    const bool ok = (g == 0 || ac - lower >= margin) && (g == top || upper - ac >= margin);
    return ok ? g : -1;
}

// Per-thread scratch for the points of one sequence, structure of arrays.
struct SeqPoints {
    std::vector<double> E1, E2, E3, nrm;  // per position: projected raw attribution, its norm
    std::vector<double> e1, e2, e3, s;    // per point: unscaled window sum, its squared norm
    std::vector<double> scratch, c_phi, c_theta;
    std::vector<double> rad;              // per kept point: normalised radius
    std::vector<i64> idx, bins;
    std::vector<double> rbuf;             // a rescaled copy of the sequence (rare, see load)
    bool rescaled = false;                // load() is reading such a copy
    double scale = 0.0;  // normalised radius r = sqrt(s) * scale
    i64 P = 0;
    // Sum of the norms outside this range: squares may have over- or underflowed.
    static constexpr double kTotalHi = 0x1p+390, kTotalLo = 0x1p-390;

    explicit SeqPoints(i64 L) {
        for (auto* v : {&E1, &E2, &E3, &nrm, &e1, &e2, &e3, &s, &scratch, &c_phi, &c_theta, &rad})
            v->resize(static_cast<size_t>(L));
        idx.resize(static_cast<size_t>(L));
        bins.resize(static_cast<size_t>(L));
    }

    // Window vectors of one sequence projected onto the plane (SPEC 3, steps
    // 1-3): e = window *sum* of projected raw attributions and s = ||e||^2,
    // unscaled; `scale` turns them into the normalised map's radius (paper:
    // 1 / (total * window), the window mean; acme: 1 / total, the published
    // window sum). The projections are linear and every row sums to zero, so
    // each position is projected once, from the raw values, and the gauge
    // correction is implied (see Basis). Returns false on non-finite input.
    template <class TA, bool NCL>
    bool load(const TA* a, i64 L, const KattrConfig& cfg, i64& bad_pos, double& bad_val) {
        const bool acme = cfg.acme;
        double* __restrict__ E1p = E1.data();
        double* __restrict__ E2p = E2.data();
        double* __restrict__ E3p = E3.data();
        double* __restrict__ np_ = nrm.data();
        const TA* __restrict__ ap = a;
        // The norms are summed in 8 interleaved lanes (position l into lane l % 8),
        // combined in a fixed tree: the same bits on the vector and scalar paths.
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const int w = cfg.window;
        i64 l0 = 0, pw = -1;  // positions done by the vector path; windows done (-1: none, not fused)
        const Kernels& K = kernels();
        if constexpr (std::is_same_v<TA, float>) {
            if (K.load_w3_f32 && w == 3)
                l0 = K.load_w3_f32(a, L, NCL, acme, E1p, E2p, E3p, e1.data(), e2.data(), e3.data(), s.data(), acc,
                                   pw);
            if (K.load_f32 && l0 == 0) l0 = K.load_f32(a, L, NCL, acme, E1p, E2p, E3p, acc);
        }
        if (acme) {
            for (i64 l = l0; l < L; ++l) {
                double x, y, z, w;
                read4<TA, NCL>(ap, L, l, x, y, z, w);
                np_[l] = gauge_norm(x, y, z, w);
                E1p[l] = Basis::e1(x, y);
                E2p[l] = Basis::e2a(x, y, z, w);
                E3p[l] = Basis::e3(x, y, z, w);
            }
        } else {
            for (i64 l = l0; l < L; ++l) {
                double x, y, z, w;
                read4<TA, NCL>(ap, L, l, x, y, z, w);
                np_[l] = gauge_norm(x, y, z, w);
                E1p[l] = Basis::e1(x, y);
                E2p[l] = Basis::e2(x, y, z);
                E3p[l] = Basis::e3(x, y, z, w);
            }
        }
        for (i64 l = l0; l < L; ++l) acc[l & 7] += np_[l];  // the positions the vector path left
        const double total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        // Any inf/nan input makes its norm, and so the total, non-finite.
        if (!std::isfinite(total) && first_nonfinite<TA, NCL>(a, L, bad_pos, bad_val)) return false;
        if constexpr (std::is_same_v<TA, double>) {
            // Finite float64 input whose squares overflow (total is inf) or
            // underflow (tiny total): the same sequence scaled by a power of
            // two gives the same normalised map, exactly (see rescale_copy).
            // (A total of 0 may be underflow too; an all-zero sequence is not copied.)
            if (!rescaled && (!(total <= kTotalHi) || total < kTotalLo)) {
                if (rescale_copy(a, L, rbuf) != kNoRescale) {
                    std::vector<double> tmp;
                    tmp.swap(rbuf);  // the nested call must not write the buffer it reads
                    rescaled = true;  // one level: the copy's largest value is in [1, 2)
                    const bool ok = load<double, NCL>(tmp.data(), L, cfg, bad_pos, bad_val);
                    rescaled = false;
                    tmp.swap(rbuf);
                    return ok;
                }
            }
        }
        // A sequence whose norms sum to 0 stays 0 (the published code made NaN
        // and zeroed it: the same points, all of radius 0).
        const double inv = total > 0.0 ? 1.0 / total : 0.0;
        P = kattr_points_per_seq(cfg, L);
        scale = acme ? inv : inv / w;
        // Point p sums positions p .. p+w-1 (paper: centred at p + w/2; acme:
        // forward with wrap-around, w <= L). Windows that do not wrap first.
        const i64 straight = acme ? L - w + 1 : P;
        if (w == 3) {
            double* __restrict__ o1 = e1.data();
            double* __restrict__ o2 = e2.data();
            double* __restrict__ o3 = e3.data();
            double* __restrict__ os = s.data();
            i64 p0 = pw > 0 ? pw : 0;
            if (K.window3 && pw < 0) p0 = K.window3(E1p, E2p, E3p, straight, o1, o2, o3, os);
            for (i64 p = p0; p < straight; ++p) {
                const double s1 = E1p[p] + E1p[p + 1] + E1p[p + 2];
                const double s2 = E2p[p] + E2p[p + 1] + E2p[p + 2];
                const double s3 = E3p[p] + E3p[p + 1] + E3p[p + 2];
                o1[p] = s1;
                o2[p] = s2;
                o3[p] = s3;
                os[p] = s1 * s1 + s2 * s2 + s3 * s3;
            }
        } else {
            for (i64 p = 0; p < straight; ++p) {
                double s1 = 0, s2 = 0, s3 = 0;
                for (int t = 0; t < w; ++t) {
                    s1 += E1[p + t];
                    s2 += E2[p + t];
                    s3 += E3[p + t];
                }
                e1[p] = s1;
                e2[p] = s2;
                e3[p] = s3;
            }
        }
        for (i64 p = straight; p < P; ++p) {
            double s1 = 0, s2 = 0, s3 = 0;
            for (int t = 0; t < w; ++t) {
                i64 j = p + t;
                if (j >= L) j -= L;
                s1 += E1[j];
                s2 += E2[j];
                s3 += E3[j];
            }
            e1[p] = s1;
            e2[p] = s2;
            e3[p] = s3;
        }
        for (i64 p = (w == 3 ? straight : 0); p < P; ++p) s[p] = e1[p] * e1[p] + e2[p] * e2[p] + e3[p] * e3[p];
        return true;
    }

    // Among the points idx[0..n), keeps those whose radius r = sqrt(s) * scale is
    // above t (r > t when strict, else r >= t): idx[0..m) in order, their radii in
    // rad[0..m). Returns m.
    i64 keep_radius(i64 n, double t, bool strict) {
        i64 j0 = 0, m = 0;
        if (const auto f = kernels().keep_radius) j0 = f(s.data(), idx.data(), n, scale, t, strict, rad.data(), m);
        for (i64 j = j0; j < n; ++j) {
            const i64 p = idx[j];
            const double r = std::sqrt(s[p]) * scale;
            idx[m] = p;
            rad[m] = r;
            m += strict ? r > t : r >= t;
        }
        return m;
    }

    // The radius keys bits(sqrt(s[p]) * scale) >> shift of every point, counted
    // into keys (idx is the scratch); with `bits`, the radii's whole bit patterns
    // stored there too (bits[0..P)).
    void count_radius_keys(int shift, i64* keys, u64* bits = nullptr) {
        const int sh = bits ? 0 : shift;  // the kernel's shift: whole patterns when they are kept
        i64 p0 = 0;
        if (const auto f = kernels().radius_keys) p0 = f(s.data(), P, scale, sh, idx.data());
        for (i64 p = p0; p < P; ++p) {
            const double r = std::sqrt(s[p]) * scale;
            u64 v;
            std::memcpy(&v, &r, sizeof v);
            idx[p] = static_cast<i64>(v >> sh);
        }
        if (bits) {
            for (i64 p = 0; p < P; ++p) {
                bits[p] = static_cast<u64>(idx[p]);
                ++keys[bits[p] >> shift];
            }
        } else {
            for (i64 p = 0; p < P; ++p) ++keys[idx[p]];
        }
    }

    // Points with radius sqrt(s[p]) * scale >= b into idx[0..n), in order, their
    // radii into rad[0..n); returns n. A cheap test on s (with a margin far above
    // rounding) prefilters; the exact radius test decides.
    i64 select_at_least(double b) {
        double lo = -1.0;  // every s >= 0 passes
        if (b > 0.0 && scale > 0.0) {
            const double t = b / scale;
            lo = t * t * (1.0 - 1e-9);  // r >= b implies s > lo
        }
        return keep_radius(indices_above(s.data(), P, lo, idx.data()), b, false);
    }

    // Bins of the points idx[0..n) into bins[0..n): the same bins as
    // kattr_bin_exact, mostly without atan2/acos. Both angles lie in [0, pi], so
    // each is known by its cosine: cos(theta) = z'/r and
    // cos(phi') = cos(phi/2 + pi/2) = -sin(phi/2) = -sgn(y') sqrt((rho - x') / (2 rho)).
    // Points near an edge (the acme preset's 3.1416 shifts its angles by
    // < 1e-5, well inside the 2e-4 margin) and degenerate directions take the
    // exact path.
    void bin_points(const KattrConfig& cfg, i64 n) {
        const bool acme = cfg.acme;
        i64 j0 = 0;
        if (const auto f = kernels().bin_points)
            j0 = f(e1.data(), e2.data(), e3.data(), s.data(), idx.data(), n, acme, cfg.bin_width, cfg.n_bins - 1,
                   cfg.n_bins, bins.data());
        for (i64 j = j0; j < n; ++j) {
            const i64 p = idx[j];
            const double xp = e2[p], yp = e3[p], zp = e1[p];
            const double rho = std::sqrt(xp * xp + yp * yp);
            const double r = std::sqrt(s[p]);
            double ct = zp / r;
            ct = ct > 1.0 ? 1.0 : (ct < -1.0 ? -1.0 : ct);
            const double u = xp >= 0.0 ? yp * yp / (rho + xp) : rho - xp;  // rho - x', without cancellation
            double cp = (yp >= 0.0 ? -1.0 : 1.0) * std::sqrt(u / (2.0 * rho));
            cp = cp > 1.0 ? 1.0 : (cp < -1.0 ? -1.0 : cp);
            // rho = 0, s overflowed to inf (the exact formula's r = inf is not the point's
            // radius; load() rescales so that this never happens there), the acme preset's
            // x' = 0 branch, or the paper preset's phi' near 0 (where atan2 may round phi
            // to -pi: kPhiPoleCos): the exact path.
            const bool degenerate = !(rho > 0.0) || !(r <= std::numeric_limits<double>::max()) ||
                                    (acme ? xp == 0.0 : cp > kPhiPoleCos);
            c_theta[j] = ct;
            c_phi[j] = degenerate ? 2.0 : cp;  // 2.0: marks the exact path
        }
        const double bw = cfg.bin_width, inv_bw = 1.0 / bw;
        const i64 top = cfg.n_bins - 1, nb = cfg.n_bins;
        for (i64 j = j0; j < n; ++j) {
            const bool degenerate = c_phi[j] > 1.0;
            const i64 bi = approx_angle_bin(degenerate ? 0.0 : c_phi[j], bw, inv_bw, top);
            const i64 bj = approx_angle_bin(c_theta[j], bw, inv_bw, top);
            bins[j] = (degenerate || bi < 0 || bj < 0) ? -1 : bi * nb + bj;
        }
        for (i64 j = 0; j < n; ++j) {
            if (bins[j] >= 0) continue;
            const i64 p = idx[j];
            bins[j] = kattr_bin_exact(cfg, e1[p], e2[p], e3[p], std::sqrt(s[p]));
        }
    }
};

inline double kattr_weight(Weight w, double r) {
    switch (w) {
        case Weight::none: return 1.0;
        case Weight::inv_r2: return 1.0 / (r * r);
        default: return r * r;
    }
}

// Per-thread state of a histogram pass. The common weights go to WindowSum
// integers (two copies, taking the points alternately: consecutive points
// often fall in the same bin, and one copy would make each add wait for the
// previous one's store), the rest to the exact FixedSum histogram; flush()
// adds the integers into it. All integer additions: the same bits whatever
// the order, the copies or the thread count.
struct KattrThreadHist {
    std::vector<FixedSum> hist;
#if defined(__SIZEOF_INT128__)
    std::vector<WindowSum::u128> fast;  // 2 * nb2: copy 0, then copy 1
#endif
    i64 n_fast = 0;  // adds into `fast` since its last flush
    size_t nb2 = 0;
    i64 n_points = 0;
    InputError err;
    void reset(size_t n_bins2) {
        nb2 = n_bins2;
        hist.assign(nb2, FixedSum{});
#if defined(__SIZEOF_INT128__)
        fast.assign(2 * nb2, 0);
        n_fast = 0;
#endif
    }
    // One point, with the counters given: the members (add) or a batch's locals
    // (add_all).
    void add_counted(const KattrConfig& cfg, i64 bin, double r, i64 seq, i64 pos, i64& np, i64& nf) {
        const double w = kattr_weight(cfg.weight, r);
        ++np;
#if defined(__SIZEOF_INT128__)
        const WindowSum::u128 u = WindowSum::units(w);
        if (u != 0) {
            fast[static_cast<size_t>(bin) + (static_cast<size_t>(np) & 1) * nb2] += u;
            if (++nf == WindowSum::kMaxAdds) {
                flush();
                nf = 0;
            }
            return;
        }
#endif
        if (!hist[static_cast<size_t>(bin)].add(w)) err.record(InputError::weight_overflow, seq, pos, r);
    }
    void add(const KattrConfig& cfg, i64 bin, double r, i64 seq, i64 pos) {
        add_counted(cfg, bin, r, seq, pos, n_points, n_fast);
    }
    // add(...) for the points j < m (bins, radii, positions), the counters kept in
    // locals over the batch: as members, each add's increment of n_points and
    // n_fast waited for the previous add's store (the profile's hottest line).
    void add_all(const KattrConfig& cfg, const i64* bins, const double* rad, i64 m, i64 seq, const i64* pos) {
        i64 np = n_points, nf = n_fast;
        for (i64 j = 0; j < m; ++j) add_counted(cfg, bins[j], rad[j], seq, pos[j], np, nf);
        n_points = np;
        n_fast = nf;
    }
    // add(...) if keep; branch-free on keep for the common weights (a kept /
    // dropped mix in no order would mispredict half the time).
    void add_if(const KattrConfig& cfg, i64 bin, double r, bool keep, i64 seq, i64 pos) {
#if defined(__SIZEOF_INT128__)
        const WindowSum::u128 u = WindowSum::units(kattr_weight(cfg.weight, r));
        if (u != 0) {
            n_points += keep;
            fast[static_cast<size_t>(bin) + (static_cast<size_t>(n_points) & 1) * nb2] +=
                u & (WindowSum::u128(0) - static_cast<WindowSum::u128>(keep));
            n_fast += keep;
            if (n_fast >= WindowSum::kMaxAdds) flush();
            return;
        }
#endif
        if (keep) add(cfg, bin, r, seq, pos);
    }
    void flush() {
#if defined(__SIZEOF_INT128__)
        for (size_t j = 0; j < fast.size(); ++j) {
            if (fast[j] != 0) WindowSum::add_to(hist[j % nb2], fast[j]);
            fast[j] = 0;
        }
        n_fast = 0;
#endif
    }
};

inline void merge_thread_hists(std::vector<KattrThreadHist>& th, FixedSum* hist, size_t nb2, i64& n_points,
                               InputError& err) {
    for (auto& t : th) {
        if (!t.hist.empty()) {
            t.flush();
            for (size_t j = 0; j < nb2; ++j) hist[j].merge(t.hist[j]);
        }
        n_points += t.n_points;
        err.merge(t.err);
    }
}

// Runs body(tid, i, sp) in parallel for the sequences i = 0, step, 2 step, ...
// < N whose attributions load into the thread's SeqPoints sp; thread_init(tid)
// runs once per thread first. Non-finite input is recorded in err (the first
// offending position wins, whatever the thread count).
template <class TA, bool NCL, class ThreadInit, class Body>
void for_each_sequence(const TA* a, i64 N, i64 L, const KattrConfig& cfg, int nt, InputError& err,
                       ThreadInit&& thread_init, Body&& body, i64 step = 1) {
    const i64 n_iter = (N + step - 1) / step;
    std::vector<InputError> terr(nt);
    std::vector<std::unique_ptr<SeqPoints>> tsp(nt);
    parallel_for(
        nt, n_iter, 16,
        [&](int tid) {
            thread_init(tid);
            tsp[tid] = std::make_unique<SeqPoints>(L);
        },
        [&](int tid, i64 k) {
            const i64 i = k * step;
            i64 bad = 0;
            double bad_val = 0;
            SeqPoints& sp = *tsp[tid];
            if (!sp.load<TA, NCL>(a + i * L * 4, L, cfg, bad, bad_val)) {
                terr[tid].record(InputError::not_finite, i, bad, bad_val);
                return;
            }
            body(tid, i, sp);
        });
    for (const InputError& e : terr) err.merge(e);
}

// Sequence scope (preset paper default): per-sequence quantile of r, strict.
// Adds into hist (n_bins**2) and n_points.
template <class TA, bool NCL>
void kattr_sequence_scope(const TA* a, i64 N, i64 L, const KattrConfig& cfg, int n_threads, FixedSum* hist,
                          i64& n_points, InputError& err) {
    const int nt = resolve_threads(n_threads, N);
    const size_t nb2 = static_cast<size_t>(cfg.n_bins) * cfg.n_bins;
    std::vector<KattrThreadHist> th(nt);
    for_each_sequence<TA, NCL>(
        a, N, L, cfg, nt, err, [&](int tid) { th[tid].reset(nb2); },
        [&](int tid, i64 i, SeqPoints& sp) {
            KattrThreadHist& me = th[tid];
            const i64 P = sp.P;
            const double scale = sp.scale;
            // r = sqrt(s) * scale is monotone in s: select on s, interpolate on r.
            const OrderPair o = order_pair(sp.s.data(), P, cfg.quantile, sp.scratch.data(), sp.c_phi.data(),
                                           sp.c_theta.data());
            const double cut = numpy_lerp(std::sqrt(o.a) * scale, std::sqrt(o.b) * scale, o.gamma);
            // r > cut implies s > o.a: a branch-free prefilter, then the exact test.
            const i64 m = sp.keep_radius(indices_above(sp.s.data(), P, o.a, sp.idx.data()), cut, true);
            sp.bin_points(cfg, m);
            me.add_all(cfg, sp.bins.data(), sp.rad.data(), m, i, sp.idx.data());
        });
    merge_thread_hists(th, hist, nb2, n_points, err);
}

// Number of points kept by the global rule: m = floor(T * (1 - q) + 1e-9),
// cutoff = the m-th largest r, keep r > cutoff. With m == 0 the published code
// took sort(r)[-0], the smallest radius; the paper preset keeps nothing.
inline i64 global_rank(i64 total, double quantile, bool acme) {
    i64 m = static_cast<i64>(std::floor(static_cast<double>(total) * (1.0 - quantile) + 1e-9));
    if (m < 1 && acme) m = total;  // sort(r)[-0] == sort(r)[0]
    return m;
}


constexpr int kRadiusKeyShift = 48;  // in-memory radix: the top 16 bits of the radius

inline u64 radius_key(double r) {
    u64 bits;
    std::memcpy(&bits, &r, sizeof bits);
    return bits >> kRadiusKeyShift;  // r >= 0: the bit pattern is monotone in r
}

// A 16-bit radix key for radii r >= the radius whose bit pattern is `base`:
// (bits(r) - base) >> shift. Chosen to spread the candidates of a pass over
// the 2^16 buckets, so that the bucket holding the cutoff holds few of them.
struct RadiusKey {
    u64 base = 0;
    int shift = kRadiusKeyShift;
    int width = 16;  // keys of the radii in range lie in [0, 2^width)
    u64 operator()(double r) const {
        u64 bits;
        std::memcpy(&bits, &r, sizeof bits);
        return (bits - base) >> shift;
    }
    size_t size() const { return size_t(1) << width; }
    // The key for radii in [lo, hi) (hi may be +inf), width bits.
    static RadiusKey spanning(double lo, double hi, int width = 16) {
        RadiusKey k;
        k.width = width;
        std::memcpy(&k.base, &lo, sizeof lo);
        u64 top;
        std::memcpy(&top, &hi, sizeof hi);
        const u64 span = top > k.base ? top - k.base : 0;
        int bits = 0;
        while (bits < 64 && (span >> bits) != 0) ++bits;
        k.shift = std::max(0, bits - width);
        return k;
    }
};

// The smallest r >= 0 whose top bits (bits >> shift) are >= key: for r >= 0
// the bit pattern is monotone in r, so key(r) >= key  <=>  r >= key_floor(key).
inline double key_floor(u64 key, int shift) {
    const u64 bits = key << shift;
    double r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
}

struct RadiusBin {
    double r;
    i64 bin;
    RadiusBin() {}  // resize() leaves new elements to be written (no zeroing)
    RadiusBin(double r_, i64 bin_) : r(r_), bin(bin_) {}
};

// The bucket split of the exact two-pass global scope (in memory and
// streaming): the points of one sequence whose radius key (bits(r) >> shift)
// is above bucket B go into the thread's histogram; those inside B are kept
// (radius, bin) as candidates for the exact cutoff.
inline void split_at_bucket(SeqPoints& sp, const KattrConfig& cfg, int shift, u64 B, i64 seq,
                            KattrThreadHist& th, std::vector<RadiusBin>& cand) {
    const i64 n = sp.select_at_least(key_floor(B, shift));  // key(r) >= B
    sp.bin_points(cfg, n);
    for (i64 j = 0; j < n; ++j) {
        const double r = sp.rad[j];
        u64 bits;
        std::memcpy(&bits, &r, sizeof bits);
        if ((bits >> shift) > B) th.add(cfg, sp.bins[j], r, seq, sp.idx[j]);
        else cand.push_back({r, sp.bins[j]});
    }
}

// Radix selection, shared by the global scope's paths: per-thread bucket counts
// summed into one table; the bucket holding the m-th largest value (1 <= m <=
// the count; `above` counts the values in higher buckets); the need-th largest
// of the values found in that bucket (one list per thread, concatenated).
inline std::vector<i64> sum_counts(const std::vector<std::vector<i64>>& parts, size_t n) {
    std::vector<i64> out(n, 0);
    for (const auto& t : parts)
        for (size_t j = 0; j < n; ++j) out[j] += t[j];
    return out;
}

inline u64 bucket_of_rank(const i64* keys, size_t n, i64 m, i64& above) {
    above = 0;
    for (size_t j = n; j-- > 0;) {
        if (above + keys[j] >= m) return j;
        above += keys[j];
    }
    return 0;  // m exceeds the count (callers rule it out)
}

inline double nth_largest(const std::vector<std::vector<double>>& parts, size_t size, i64 need) {
    std::vector<double> v;
    v.reserve(size);
    for (const auto& p : parts) v.insert(v.end(), p.begin(), p.end());
    std::nth_element(v.begin(), v.begin() + (need - 1), v.end(), std::greater<double>());
    return v[static_cast<size_t>(need - 1)];
}

// Adds the candidate points (one list per thread of the pass that found
// them) above the m-th largest radius among them, in parallel: a radix
// histogram of the radii finds the bucket that holds the m-th largest,
// nth_element finishes inside that bucket, and per-thread exact histograms
// take the kept points. Each thread works on its own list (no concatenation).
// `key`: the radix key of the candidates' radii; `tkeys`: the lists' key
// histograms if the caller counted them while filling the lists (else empty:
// counted here).
inline void add_above_rank(const std::vector<std::vector<RadiusBin>>& lists, i64 m, const KattrConfig& cfg,
                           int nt, FixedSum* hist, i64& n_points, double& cutoff_out, InputError& err,
                           const RadiusKey& key, std::vector<std::vector<i64>> tkeys = {}) {
    const size_t kKeys = key.size();
    const int nl = static_cast<int>(lists.size());
    if (tkeys.size() != lists.size()) {
        tkeys.assign(nl, {});
        parallel_for(nt, nl, 1, [](int) {}, [&](int, i64 t) {
            std::vector<i64>& keys = tkeys[t];
            keys.assign(kKeys, 0);
            for (const RadiusBin& c : lists[t]) ++keys[key(c.r)];
        });
    }
    const std::vector<i64> keys = sum_counts(tkeys, kKeys);
    i64 above;
    const u64 B = bucket_of_rank(keys.data(), kKeys, m, above);
    std::vector<std::vector<double>> tinb(nl);
    parallel_for(nt, nl, 1, [](int) {}, [&](int, i64 t) {
        for (const RadiusBin& c : lists[t])
            if (key(c.r) == B) tinb[t].push_back(c.r);
    });
    const double cut = nth_largest(tinb, static_cast<size_t>(keys[B]), m - above);  // 1 <= m - above <= keys[B]
    cutoff_out = cut;
    const size_t nb2 = static_cast<size_t>(cfg.n_bins) * cfg.n_bins;
    std::vector<KattrThreadHist> th(nl);
    parallel_for(nt, nl, 1, [](int) {}, [&](int, i64 t) {
        KattrThreadHist& me = th[t];
        me.reset(nb2);
        const std::vector<RadiusBin>& list = lists[t];
        for (size_t j = 0; j < list.size(); ++j)
            me.add_if(cfg, list[j].bin, list[j].r, list[j].r > cut, 0, static_cast<i64>(j));
    });
    merge_thread_hists(th, hist, nb2, n_points, err);
}

// Global scope, exact, in two passes over the attributions:
// pass 1 builds a radix histogram of the radii (top 16 bits of the double);
// the bucket that holds the m-th largest radius is found; pass 2 bins every
// point above that bucket and keeps the points inside it as candidates, among
// which the exact cutoff is selected. Memory: the candidates only.
template <class TA, bool NCL>
void kattr_global_two_pass(const TA* a, i64 N, i64 L, const KattrConfig& cfg, int n_threads, FixedSum* hist,
                           i64& n_points, double& cutoff_out, InputError& err) {
    const int nt = resolve_threads(n_threads, N);
    const size_t nb2 = static_cast<size_t>(cfg.n_bins) * cfg.n_bins;
    const i64 P = kattr_points_per_seq(cfg, L);
    constexpr size_t kKeys = size_t(1) << 16;
    std::vector<std::vector<i64>> tkeys(nt);
    for_each_sequence<TA, NCL>(
        a, N, L, cfg, nt, err, [&](int tid) { tkeys[tid].assign(kKeys, 0); },
        [&](int tid, i64, SeqPoints& sp) { sp.count_radius_keys(kRadiusKeyShift, tkeys[tid].data()); });
    if (!err.ok() || stop_requested()) return;
    const std::vector<i64> keys = sum_counts(tkeys, kKeys);
    const i64 total = N * P;
    const i64 m = global_rank(total, cfg.quantile, cfg.acme);
    if (m < 1 || total == 0) {
        cutoff_out = std::numeric_limits<double>::infinity();
        return;
    }
    // Bucket B holding the m-th largest radius; `above` points lie in higher buckets.
    i64 above;
    const u64 B = bucket_of_rank(keys.data(), kKeys, m, above);
    std::vector<KattrThreadHist> th(nt);
    std::vector<std::vector<RadiusBin>> tcand(nt);
    for_each_sequence<TA, NCL>(
        a, N, L, cfg, nt, err, [&](int tid) { th[tid].reset(nb2); },
        [&](int tid, i64 i, SeqPoints& sp) { split_at_bucket(sp, cfg, kRadiusKeyShift, B, i, th[tid], tcand[tid]); });
    if (stop_requested()) return;
    merge_thread_hists(th, hist, nb2, n_points, err);
    // Every candidate lies in bucket B: 16 more bits of radix inside it.
    const RadiusKey inside{B << kRadiusKeyShift, kRadiusKeyShift - 16, 16};
    add_above_rank(tcand, m - above, cfg, nt, hist, n_points, cutoff_out, err, inside);  // 1 <= m - above <= size
}

// Global scope, exact, usually in one pass. A sample of sequences (every
// k-th) gives two radii b < b_hi, very likely below and above the final
// cutoff (about the 1 - 1.5 (1 - q) and 1 - 0.6 (1 - q) quantiles). One pass
// bins every point with r >= b: those with r >= b_hi go straight into the
// histogram, those in [b, b_hi) are kept as candidates (radius and bin). If
// fewer than m points have r >= b_hi and at least m have r >= b, the m-th
// largest radius (the cutoff) lies among the candidates, every direct point is
// above it, and the candidates above it complete the answer: exact. Otherwise
// (an unlucky sample), or when the kept points would not be few, the
// two-pass algorithm runs instead.
template <class TA, bool NCL>
void kattr_global_scope(const TA* a, i64 N, i64 L, const KattrConfig& cfg, int n_threads, FixedSum* hist,
                        i64& n_points, double& cutoff_out, InputError& err) {
    const i64 P = kattr_points_per_seq(cfg, L);
    const i64 total = N * P;
    const i64 m = global_rank(total, cfg.quantile, cfg.acme);
    const double frac_m = static_cast<double>(m) / static_cast<double>(std::max<i64>(total, 1));
    const double frac = std::min(1.0, 1.5 * frac_m);
    constexpr double kMaxCandidateBytes = 256.0 * 1024 * 1024;
    if (m < 1 || total == 0 || frac > 0.4 || N < 64 ||
        static_cast<double>(total) * frac * sizeof(RadiusBin) > kMaxCandidateBytes) {
        kattr_global_two_pass<TA, NCL>(a, N, L, cfg, n_threads, hist, n_points, cutoff_out, err);
        return;
    }
    const int nt = resolve_threads(n_threads, N);
    const size_t nb2 = static_cast<size_t>(cfg.n_bins) * cfg.n_bins;
    // 1. The bounds, from every stride-th sequence (input errors are reported by
    // the pass below): a radix histogram of the sampled radii (top 16 bits, per
    // thread). b is the lower edge of the bucket holding the sample's ks-th
    // largest radius, b_hi the upper edge of the one holding its ks_hi-th: the
    // bucket edges only widen the band between them.
    const i64 stride = std::max<i64>(1, N / 64);
    const i64 n_sample = (N + stride - 1) / stride;
    constexpr size_t kKeys = size_t(1) << 16;
    std::vector<std::vector<i64>> skeys(nt);
    // The sampled sequences' radii too (their bit patterns, when they fit in
    // 16 MB): for the spread of their counts above the cutoff, and for the
    // sample's exact quantiles (below).
    const bool keep_bits = n_sample * P <= (i64(1) << 21);
    std::vector<u64> sb(keep_bits ? static_cast<size_t>(n_sample * P) : 0);
    InputError sample_err;  // reported by the full pass below
    for_each_sequence<TA, NCL>(
        a, N, L, cfg, nt, sample_err, [&](int tid) { skeys[tid].assign(kKeys, 0); },
        [&](int tid, i64 i, SeqPoints& sp) {
            u64* bits = keep_bits ? sb.data() + (i / stride) * P : nullptr;
            sp.count_radius_keys(kRadiusKeyShift, skeys[tid].data(), bits);
        },
        stride);
    if (stop_requested()) return;
    for (int tt = 1; tt < nt; ++tt)
        for (size_t j = 0; j < kKeys; ++j) skeys[0][j] += skeys[tt][j];
    const double ns = static_cast<double>(n_sample * P);
    // The band between the bounds: by default from 0.6 to 1.5 times the kept
    // fraction; narrowed to 4 standard errors of the sample's kept fraction
    // (from the spread of the sampled sequences' own fractions, with the finite
    // population correction) but at least 5 % of the fraction either side. Only
    // the speed depends on it: a bound on the wrong side falls back (below).
    double f_lo = frac, f_hi = 0.6 * frac_m;
    if (keep_bits && n_sample >= 16) {
        const std::vector<i64>& k = skeys[0];
        const i64 km = std::max<i64>(1, static_cast<i64>(frac_m * ns));
        size_t jm = 0;
        i64 above = 0;
        for (size_t j = kKeys; j-- > 0;) {
            above += k[j];
            if (above >= km) {
                jm = j;
                break;
            }
        }
        double sum = 0.0, sum2 = 0.0;
        for (i64 t = 0; t < n_sample; ++t) {
            const u64* d = sb.data() + t * P;
            i64 c = 0;
            for (i64 p = 0; p < P; ++p) c += (d[p] >> kRadiusKeyShift) >= jm;
            const double f = static_cast<double>(c) / static_cast<double>(P);
            sum += f;
            sum2 += f * f;
        }
        const double nsd = static_cast<double>(n_sample);
        const double mean = sum / nsd, var = std::max(0.0, sum2 / nsd - mean * mean) * nsd / (nsd - 1.0);
        const double fpc = std::max(0.0, 1.0 - nsd / static_cast<double>(N));
        const double margin = std::max(4.0 * std::sqrt(var / nsd * fpc), 0.05 * frac_m);
        f_lo = std::min(f_lo, frac_m + margin);
        f_hi = std::max(f_hi, frac_m - margin);
    }
    const i64 ks = std::min<i64>(n_sample * P, static_cast<i64>(f_lo * ns) + 1);
    const i64 ks_hi = std::min<i64>(ks - 1, static_cast<i64>(f_hi * ns));
    // The sample's k-th largest radius, known to lie in bucket j, with `above`
    // sampled radii in the buckets above j: exact from the kept bit patterns
    // (a selection among the few in that bucket), else `edge`, an edge of the
    // bucket on the safe side. The buckets are coarse (1/16 of an octave), and
    // their edges alone gave a band twice as wide as the sample's quantiles
    // (make_atac, N = 4000).
    auto sample_kth = [&](size_t j, i64 k, i64 above, double edge) {
        if (!keep_bits) return edge;
        std::vector<u64> in;
        for (const u64 v : sb)
            if ((v >> kRadiusKeyShift) == j) in.push_back(v);
        const i64 rank = k - above;  // 1 <= rank <= in.size()
        std::nth_element(in.begin(), in.begin() + (rank - 1), in.end(), std::greater<u64>());
        return key_floor(in[static_cast<size_t>(rank - 1)], 0);
    };
    double b = 0.0, b_hi = std::numeric_limits<double>::infinity();
    {
        const std::vector<i64>& k = skeys[0];
        i64 above = 0;
        bool hi_found = ks_hi < 1;  // no upper bound: nothing goes straight in
        double hi_edge = b_hi;       // the upper edge of b_hi's bucket
        for (size_t j = kKeys; j-- > 0;) {
            if (!hi_found && above + k[j] >= ks_hi) {
                hi_found = true;
                if (j + 1 < kKeys) hi_edge = key_floor(j + 1, kRadiusKeyShift);
                b_hi = sample_kth(j, ks_hi, above, hi_edge);
            }
            if (above + k[j] >= ks) {
                b = sample_kth(j, ks, above, key_floor(j, kRadiusKeyShift));
                break;
            }
            above += k[j];
        }
        if (!(b < b_hi)) b_hi = hi_edge;  // tied quantiles would leave no band
    }
    std::vector<u64>().swap(sb);
    std::vector<std::vector<i64>>().swap(skeys);
    // 2. One pass: every point with r >= b binned; r >= b_hi added, the rest kept.
    std::vector<KattrThreadHist> th(nt);
    std::vector<std::vector<RadiusBin>> tcand(nt);
    std::vector<std::vector<i64>> tkeys(nt);  // key histogram of each list, for add_above_rank
    // Candidates lie in [b, b_hi); their keys count into 2^12 buckets per thread
    // (32 KB, near the core: 2^16 buckets made each count a cache miss).
    const RadiusKey key = RadiusKey::spanning(b, b_hi, 12);
    const size_t expect = static_cast<size_t>(1.2 * frac * static_cast<double>(total) / nt) + 1024;
    for_each_sequence<TA, NCL>(
        a, N, L, cfg, nt, err,
        [&](int tid) {
            th[tid].reset(nb2);
            tcand[tid].reserve(expect);
            tkeys[tid].assign(key.size(), 0);
        },
        [&](int tid, i64 i, SeqPoints& sp) {
            const i64 n = sp.select_at_least(b);
            sp.bin_points(cfg, n);
            KattrThreadHist& me = th[tid];
            std::vector<RadiusBin>& c = tcand[tid];
            i64* keys = tkeys[tid].data();
            // Without branches (above b_hi and inside the band come in no order): the
            // points above b_hi compacted to the front of bins/rad/idx (in place: nd <= j),
            // those inside appended to the candidates; then their keys counted and the
            // others added, each in its own loop.
            const size_t nc0 = c.size();
            size_t nc = nc0;
            c.resize(nc0 + static_cast<size_t>(n));
            i64 nd = 0;
            for (i64 j = 0; j < n; ++j) {
                const double r = sp.rad[j];
                const i64 bj = sp.bins[j], pj = sp.idx[j];
                const bool direct = r >= b_hi;
                sp.bins[nd] = bj;
                sp.rad[nd] = r;
                sp.idx[nd] = pj;
                nd += direct;
                c[nc] = {r, bj};
                nc += !direct;
            }
            c.resize(nc);
            for (size_t t = nc0; t < nc; ++t) ++keys[key(c[t].r)];
            me.add_all(cfg, sp.bins.data(), sp.rad.data(), nd, i, sp.idx.data());
        });
    if (!err.ok() || stop_requested()) return;
    i64 direct = 0, count = 0;
    for (const auto& t : th) direct += t.n_points;
    for (const auto& c : tcand) count += static_cast<i64>(c.size());
    if (!(direct < m && m <= direct + count)) {  // a bound on the wrong side of the cutoff: fall back
        th.clear();
        tcand.clear();
        kattr_global_two_pass<TA, NCL>(a, N, L, cfg, n_threads, hist, n_points, cutoff_out, err);
        return;
    }
    merge_thread_hists(th, hist, nb2, n_points, err);
    add_above_rank(tcand, m - direct, cfg, nt, hist, n_points, cutoff_out, err, key, std::move(tkeys));
}

// Every point's radius and bin, for accumulators of the global scope, which
// cannot know the cutoff before the last batch.
template <class TA, bool NCL>
void kattr_all_points(const TA* a, i64 N, i64 L, const KattrConfig& cfg, int n_threads, double* r_out,
                      std::int32_t* bin_out, InputError& err) {
    const int nt = resolve_threads(n_threads, N);
    const i64 P = kattr_points_per_seq(cfg, L);
    for_each_sequence<TA, NCL>(a, N, L, cfg, nt, err, [](int) {}, [&](int, i64 i, SeqPoints& sp) {
        double* r = r_out + i * P;
        std::int32_t* b = bin_out + i * P;
        i64 n = 0;
        for (i64 p = 0; p < P; ++p) {
            r[p] = std::sqrt(sp.s[p]) * sp.scale;
            b[p] = 0;
            sp.idx[n] = p;
            n += r[p] > 0;
        }
        sp.bin_points(cfg, n);
        for (i64 j = 0; j < n; ++j) b[sp.idx[j]] = static_cast<std::int32_t>(sp.bins[j]);
    });
}

// ---------------------------------------------------------------------------
// Streaming global scope in bounded memory: two passes over the data, each
// with mergeable state, for inputs that do not fit in memory (and for Dask).
// Pass 0 counts radii by their top 20 bits (a 2^20-bucket radix histogram);
// the bucket B that holds the m-th largest radius is then known exactly. Pass 1
// adds every point above B to the exact histogram and keeps the few points
// inside B (radius and bin), among which the cutoff is finally selected.

constexpr int kStreamKeyBits = 20;
constexpr size_t kStreamKeys = size_t(1) << kStreamKeyBits;

inline u64 stream_key(double r) {
    u64 bits;
    std::memcpy(&bits, &r, sizeof bits);
    return bits >> (64 - kStreamKeyBits);  // r >= 0: monotone in r
}

// Pass 0: adds the batch's radius keys into keys[kStreamKeys].
template <class TA, bool NCL>
void kattr_stream_keys(const TA* a, i64 N, i64 L, const KattrConfig& cfg, int n_threads, i64* keys,
                       InputError& err) {
    // Thread 0 counts straight into `keys`; only the other threads need private
    // tables (8 MB each), merged afterwards (integer adds: order does not matter).
    // A table costs about as much as counting a million points (zeroing 8 MB,
    // then 2^20 adds in the merge), so a call gets one more thread per million
    // points only. Streamed batches are small: on 2 cores, a two-pass stream of
    // 8192 x 200 in 256-sequence batches took 1.1 s with n_threads = 16 (15
    // tables a batch) against 20 ms on one thread.
    const i64 per_table = static_cast<i64>(kStreamKeys);
    const i64 points = N * L;
    const int nt = resolve_threads(n_threads, std::min<i64>(N, 1 + points / per_table));
    std::vector<std::vector<i64>> tkeys(nt);
    std::vector<i64*> dst(nt, keys);
    for_each_sequence<TA, NCL>(
        a, N, L, cfg, nt, err,
        [&](int tid) {
            if (tid > 0) {
                tkeys[tid].assign(kStreamKeys, 0);
                dst[tid] = tkeys[tid].data();
            }
        },
        [&](int tid, i64, SeqPoints& sp) { sp.count_radius_keys(64 - kStreamKeyBits, dst[tid]); });
    if (nt <= 1) return;
    // The merge, split by bucket range: each thread adds every table's part of its range.
    const i64 n_keys = static_cast<i64>(kStreamKeys);
    parallel_for(nt, nt, 1, [](int) {}, [&](int, i64 part) {
        const i64 j0 = n_keys * part / nt, j1 = n_keys * (part + 1) / nt;
        for (int t = 1; t < nt; ++t)
            if (!tkeys[t].empty())
                for (i64 j = j0; j < j1; ++j) keys[j] += tkeys[t][j];
    });
}

// The plan after pass 0: bucket B and how many of its points lie at or above
// the cutoff (need). B = -1 when nothing is kept.
inline void kattr_stream_plan(const i64* keys, double quantile, bool acme, i64& B, i64& need) {
    i64 total = 0;
    for (size_t j = 0; j < kStreamKeys; ++j) total += keys[j];
    const i64 m = global_rank(total, quantile, acme);
    B = -1;
    need = 0;
    if (m < 1 || total == 0) return;
    i64 above;
    B = static_cast<i64>(bucket_of_rank(keys, kStreamKeys, m, above));
    need = m - above;
}

// Pass 1: points above bucket B into hist; points inside B into (cand_r, cand_bin).
template <class TA, bool NCL>
void kattr_stream_bin(const TA* a, i64 N, i64 L, const KattrConfig& cfg, int n_threads, i64 B, FixedSum* hist,
                      i64& n_points, std::vector<double>& cand_r, std::vector<std::int32_t>& cand_bin,
                      InputError& err) {
    if (B < 0) return;
    const int nt = resolve_threads(n_threads, N);
    const size_t nb2 = static_cast<size_t>(cfg.n_bins) * cfg.n_bins;
    const u64 ub = static_cast<u64>(B);
    std::vector<KattrThreadHist> th(nt);
    std::vector<std::vector<RadiusBin>> tcand(nt);
    for_each_sequence<TA, NCL>(
        a, N, L, cfg, nt, err, [&](int tid) { th[tid].reset(nb2); },
        [&](int tid, i64 i, SeqPoints& sp) {
            split_at_bucket(sp, cfg, 64 - kStreamKeyBits, ub, i, th[tid], tcand[tid]);
        });
    merge_thread_hists(th, hist, nb2, n_points, err);
    for (const auto& c : tcand)
        for (const RadiusBin& rb : c) {
            cand_r.push_back(rb.r);
            cand_bin.push_back(static_cast<std::int32_t>(rb.bin));
        }
}

// End of pass 1: adds the candidates above their need-th largest radius.
inline void kattr_stream_finish(const double* cand_r, const std::int32_t* cand_bin, i64 n, i64 need,
                                const KattrConfig& cfg, FixedSum* hist, i64& n_points, double& cutoff_out,
                                InputError& err) {
    if (need < 1 || n < need) {
        cutoff_out = std::numeric_limits<double>::infinity();
        return;
    }
    std::vector<double> rr(cand_r, cand_r + n);
    std::nth_element(rr.begin(), rr.begin() + (need - 1), rr.end(), std::greater<double>());
    const double cut = rr[static_cast<size_t>(need - 1)];
    cutoff_out = cut;
    for (i64 j = 0; j < n; ++j) {
        if (cand_r[j] > cut) {
            if (!hist[cand_bin[j]].add(kattr_weight(cfg.weight, cand_r[j])))
                err.record(InputError::weight_overflow, 0, j, cand_r[j]);
            ++n_points;
        }
    }
}

// Histogram of stored points (radius r, bin) with r above the global rule's
// cutoff, the m-th largest r (+inf when nothing is kept); returns the cutoff.
// In parallel over chunks of 2^16 points: a radix histogram of the radii's top
// 16 bits finds the bucket holding the m-th largest, nth_element finishes
// among that bucket's radii only, and per-thread exact histograms take the
// kept points (integer adds: the same bits for any thread count). Serially,
// a copy and nth_element over all n took most of a stored accumulator's result().
inline double kattr_hist_stored(const double* r, const std::int32_t* bin, i64 n, const KattrConfig& cfg,
                                int n_threads, FixedSum* hist, i64& n_points, InputError& err) {
    const i64 m = global_rank(n, cfg.quantile, cfg.acme);
    if (m < 1 || n == 0) return std::numeric_limits<double>::infinity();
    constexpr int kChunkBits = 16;
    const i64 n_chunks = ((n - 1) >> kChunkBits) + 1;
    const int nt = resolve_threads(n_threads, n_chunks);
    auto chunk = [&](i64 c, i64& lo, i64& hi) {
        lo = c << kChunkBits;
        hi = std::min(n, lo + (i64(1) << kChunkBits));
    };
    constexpr size_t kKeys = size_t(1) << 16;
    std::vector<std::vector<i64>> tkeys(nt);
    parallel_for(nt, n_chunks, 1, [&](int tid) { tkeys[tid].assign(kKeys, 0); },
                 [&](int tid, i64 c) {
                     i64 lo, hi;
                     chunk(c, lo, hi);
                     i64* k = tkeys[tid].data();
                     for (i64 j = lo; j < hi; ++j) ++k[radius_key(r[j])];
                 });
    const std::vector<i64> keys = sum_counts(tkeys, kKeys);
    std::vector<std::vector<i64>>().swap(tkeys);
    i64 above;
    const u64 B = bucket_of_rank(keys.data(), kKeys, m, above);
    std::vector<std::vector<double>> tin(nt);
    parallel_for(nt, n_chunks, 1, [](int) {}, [&](int tid, i64 c) {
        i64 lo, hi;
        chunk(c, lo, hi);
        for (i64 j = lo; j < hi; ++j)
            if (radius_key(r[j]) == B) tin[tid].push_back(r[j]);
    });
    const double cut = nth_largest(tin, static_cast<size_t>(keys[B]), m - above);  // 1 <= m - above <= keys[B]
    const size_t nb2 = static_cast<size_t>(cfg.n_bins) * cfg.n_bins;
    std::vector<KattrThreadHist> th(nt);
    std::vector<std::vector<i64>> tidx(nt);
    parallel_for(nt, n_chunks, 1,
                 [&](int tid) {
                     th[tid].reset(nb2);
                     tidx[tid].resize(size_t(1) << kChunkBits);
                 },
                 [&](int tid, i64 c) {
                     i64 lo, hi;
                     chunk(c, lo, hi);
                     // the kept points' indices first, without branches (about 1 point in 10
                     // is kept, in no order), then their weights: only theirs are computed
                     i64* idx = tidx[tid].data();
                     i64 k = 0;
                     for (i64 j = lo; j < hi; ++j) {
                         idx[k] = j;
                         k += r[j] > cut;
                     }
                     KattrThreadHist& me = th[tid];
                     for (i64 t = 0; t < k; ++t) me.add(cfg, bin[idx[t]], r[idx[t]], 0, idx[t]);
                 });
    merge_thread_hists(th, hist, nb2, n_points, err);
    return cut;
}

// Running window sums along one axis of an n x n FixedSum grid: for every
// cell (i along the axis), out = sum of in over the offsets [lo, hi] whose
// index is valid: periodic (mod n) or inside [vmin, vmax]. Integer adds and
// subtractions: exact, O(n + width) per line. Periodic windows wider than n
// count a cell once per time they cover it, as the direct sum would.
// `at(line, i)` maps (line, position along the axis) to the grid index.
template <class At>
void window_sums_1d(const FixedSum* in, FixedSum* out, i64 n, i64 lo, i64 hi, bool periodic, i64 vmin, i64 vmax,
                    At&& at) {
    if (!periodic) {  // offsets beyond the grid add nothing: the same sums, O(n) per line
        lo = std::max(lo, -n);
        hi = std::min(hi, n);
    }
    auto valid = [&](i64 t) { return periodic || (t >= vmin && t <= vmax); };
    auto wrap = [&](i64 t) { return periodic ? ((t % n) + n) % n : t; };
    for (i64 line = 0; line < n; ++line) {
        FixedSum acc;
        for (i64 t = lo; t <= hi; ++t)
            if (valid(t)) acc.merge(in[at(line, wrap(t))]);
        out[at(line, 0)] = acc;
        for (i64 i = 1; i < n; ++i) {
            const i64 add = i + hi, drop = i - 1 + lo;
            if (valid(add)) acc.merge(in[at(line, wrap(add))]);
            if (valid(drop)) acc.sub(in[at(line, wrap(drop))]);
            out[at(line, i)] = acc;
        }
    }
}

// Mass, prior and KLD from the exact histogram. Returns the KLD (NaN if empty).
// paper: prior = boxcar mean over offsets [-(pb/2), (pb-1)/2], periodic along
// phi' (rows), in-range bins only along theta; KL over every bin with P > 0.
// acme: interior bins only, bin 0 never counts, as published.
// The boxcar sums are running sums of the exact integer histogram: O(n^2), and
// exact; the prior is that sum / total / count. 1 <= prior_bins <= 2 n + 1.
inline double kattr_finish(const FixedSum* hist, const KattrConfig& cfg, int prior_bins, double* mass,
                           double* prior) {
    const i64 n = cfg.n_bins;
    FixedSum tot;
    for (i64 j = 0; j < n * n; ++j) tot.merge(hist[j]);
    const double total = tot.value();
    for (i64 j = 0; j < n * n; ++j) mass[j] = total > 0 ? hist[j].value() / total : 0.0;
    const i64 lo = -(prior_bins / 2), hi = (prior_bins - 1) / 2;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    // paper: rows periodic, columns in [0, n); acme: both in [1, n - 1].
    const bool periodic = !cfg.acme;
    const i64 vmin = cfg.acme ? 1 : 0, vmax = n - 1;
    std::vector<FixedSum> rows(static_cast<size_t>(n * n)), box(static_cast<size_t>(n * n));
    // along phi' (row index i) for each column j, then along theta (column index j) for each row i
    window_sums_1d(hist, rows.data(), n, lo, hi, periodic, vmin, vmax, [n](i64 j, i64 i) { return i * n + j; });
    window_sums_1d(rows.data(), box.data(), n, lo, hi, false, vmin, vmax, [n](i64 i, i64 j) { return i * n + j; });
    auto count = [&](i64 c, bool per) {
        if (per) return hi - lo + 1;
        const i64 a = std::max(c + lo, vmin), b = std::min(c + hi, vmax);
        return b >= a ? b - a + 1 : i64(0);
    };
    double kl = 0.0;
    for (i64 i = 0; i < n; ++i) {
        const i64 ci = count(i, periodic);
        for (i64 j = 0; j < n; ++j) {
            const bool interior = i >= 1 && i <= n - 2 && j >= 1 && j <= n - 2;
            if (cfg.acme && !interior) {
                prior[i * n + j] = nan;
                continue;
            }
            const i64 cnt = ci * count(j, false);
            const double q = (cnt && total > 0) ? box[i * n + j].value() / total / static_cast<double>(cnt) : 0.0;
            prior[i * n + j] = q;
            const double p = mass[i * n + j];
            if (p > 0 && q > 0) kl += p * std::log(p / q);
        }
    }
    return total > 0 ? kl : nan;
}

}  // namespace acme::core
