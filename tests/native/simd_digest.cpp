// Digests of every kernel's results on every SIMD tier this CPU has.
//
// Pure C++ (the core headers only, no Python), so that it cross-compiles for
// arm64 and runs under qemu-user: tests/native/run.sh builds it natively and
// with aarch64-linux-gnu-g++, runs both, and checks that every tier of both
// architectures prints the same digests (the NEON tier can only be checked
// this way on an x86 CI machine).
//
// Inputs are generated from a fixed seed (splitmix64): float32 and float64
// attributions with motif-like bumps, exact zeros, ties and tiny values, in
// both layouts, several lengths around the vector widths; one-hot sequences
// with N rows; sequence models. For each tier the program computes the k-mer
// counts and KLD, the k-attr histograms and KLDs (both presets, sequence and
// global scope, windows 3 and 5), the per-point radii and bins, the fast bins
// of unit directions (edges included), the ground-truth rows and compat's
// process_attribution_map pass, and prints one FNV-1a digest per result. Exit status 1 when a tier differs from scalar,
// or when the sample selection of order_pair_ranks (Sample64) differs from
// std::nth_element.
//
// Usage: simd_digest            all tiers, "tier name digest" lines
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "acme/compat.hpp"
#include "acme/groundtruth.hpp"
#include "acme/kattr.hpp"
#include "acme/kmer.hpp"

using namespace acme::core;

namespace {

struct Rng {
    std::uint64_t s;
    std::uint64_t next() {
        std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }  // [0, 1)
    // Symmetric, heavy-ish tailed values (Marsaglia's polar method without the log):
    // only + - * / sqrt, so the same bits on every IEEE machine.
    double normal() {
        double u, v, q;
        do {
            u = 2.0 * uniform() - 1.0;
            v = 2.0 * uniform() - 1.0;
            q = u * u + v * v;
        } while (q >= 1.0 || q == 0.0);
        return u * std::sqrt(2.0 * (1.0 - q) / q) * 0.5;
    }
};

// cos and sin of |x| <= 4 by their Taylor series (30 terms, + and * only): the
// same bits on every machine, where libm's may differ in the last place.
void cos_sin(double x, double& c, double& s) {
    double term = 1.0;
    c = 0.0;
    s = 0.0;
    for (int n = 0; n < 60; ++n) {
        if (n % 4 == 0) c += term;
        else if (n % 4 == 1) s += term;
        else if (n % 4 == 2) c -= term;
        else s -= term;
        term = term * x / static_cast<double>(n + 1);
    }
}

struct Digest {
    std::uint64_t h = 1469598103934665603ull;
    void bytes(const void* p, size_t n) {
        const auto* b = static_cast<const unsigned char*>(p);
        for (size_t i = 0; i < n; ++i) {
            h ^= b[i];
            h *= 1099511628211ull;
        }
    }
    template <class T>
    void vec(const std::vector<T>& v) {
        bytes(v.data(), v.size() * sizeof(T));
    }
    template <class T>
    void val(T v) {
        bytes(&v, sizeof v);
    }
};

struct Case {
    std::int64_t N, L;
    std::vector<float> a32;   // N x L x 4 (NLC)
    std::vector<double> a64;  // the same values as float64, some scaled to extremes
    std::vector<float> x;     // one-hot, NLC
    std::vector<double> model;
};

template <class T>
std::vector<T> to_ncl(const std::vector<T>& v, std::int64_t N, std::int64_t L) {
    std::vector<T> out(v.size());
    for (std::int64_t i = 0; i < N; ++i)
        for (std::int64_t l = 0; l < L; ++l)
            for (int c = 0; c < 4; ++c) out[(i * 4 + c) * L + l] = v[(i * L + l) * 4 + c];
    return out;
}

Case make_case(std::uint64_t seed, std::int64_t N, std::int64_t L) {
    Rng rng{seed};
    Case k{N, L, {}, {}, {}, {}};
    const size_t n = static_cast<size_t>(N * L * 4);
    k.a32.resize(n);
    k.a64.resize(n);
    k.x.assign(n, 0.0f);
    k.model.resize(n);
    for (std::int64_t i = 0; i < N; ++i) {
        const std::int64_t motif = L > 12 ? static_cast<std::int64_t>(rng.uniform() * static_cast<double>(L - 12)) : 0;
        const int kind = static_cast<int>(i % 6);
        for (std::int64_t l = 0; l < L; ++l) {
            const int base = static_cast<int>(rng.next() & 3);
            const bool unknown = (rng.next() % 97) == 0;
            const bool in_motif = l >= motif && l < motif + 12;
            double sum = 0.0;
            double mp[4];
            for (int c = 0; c < 4; ++c) {
                mp[c] = rng.uniform() + (c == base ? 1.0 : 0.0);
                sum += mp[c];
            }
            for (int c = 0; c < 4; ++c) {
                const size_t j = static_cast<size_t>((i * L + l) * 4 + c);
                double v = rng.normal() * 0.1;
                if (in_motif && c == base) v += 1.0 + rng.uniform();
                if (kind == 1) v = std::round(v * 8.0) / 8.0;     // many ties
                if (kind == 2 && (l % 5) == 0) v = 0.0;          // zero positions
                if (kind == 3) v *= 1e-30;                        // tiny (float32 still normal)
                k.a32[j] = static_cast<float>(v);
                double v64 = static_cast<double>(k.a32[j]);
                if (kind == 4) v64 *= 0x1p+700;                   // squares overflow: the rescaled path
                if (kind == 5) v64 *= 0x1p-700;                   // squares underflow
                k.a64[j] = v64;
                k.x[j] = (!unknown && c == base) ? 1.0f : 0.0f;
                // every third sequence: a background model (rows repeat) outside the motif
                k.model[j] = (i % 3 == 0 && !in_motif) ? 0.25 : mp[c] / sum;
            }
        }
    }
    return k;
}

using Results = std::map<std::string, std::uint64_t>;

void put(Results& out, const std::string& name, const Digest& d) { out[name] = d.h; }

void digest_error(Digest& d, const InputError& e) {
    d.val(e.kind);
    d.val(e.seq);
    d.val(e.pos);
}

template <class TA, bool NCL>
void run_kattr(Results& out, const std::string& tag, const TA* a, std::int64_t N, std::int64_t L) {
    for (bool acme : {false, true})
        for (int window : {3, 5})
            for (bool global : {false, true}) {
                KattrConfig cfg;
                cfg.acme = acme;
                cfg.window = window;
                if (kattr_points_per_seq(cfg, L) < 1) continue;
                std::vector<FixedSum> hist(static_cast<size_t>(cfg.n_bins) * cfg.n_bins);
                std::int64_t n_points = 0;
                double cutoff = NAN;
                InputError err;
                if (global)
                    kattr_global_scope<TA, NCL>(a, N, L, cfg, 2, hist.data(), n_points, cutoff, err);
                else
                    kattr_sequence_scope<TA, NCL>(a, N, L, cfg, 2, hist.data(), n_points, err);
                Digest d;
                for (const FixedSum& f : hist) d.bytes(f.limb, sizeof f.limb);
                d.val(n_points);
                d.val(cutoff);
                digest_error(d, err);
                std::vector<double> mass(hist.size()), prior(hist.size());
                d.val(kattr_finish(hist.data(), cfg, 3, mass.data(), prior.data()));
                d.vec(mass);
                const std::string name = tag + (acme ? "/acme" : "/paper") + "/w" + std::to_string(window) +
                                         (global ? "/global" : "/sequence");
                put(out, "kattr" + name, d);
            }
    KattrConfig cfg;
    const std::int64_t P = kattr_points_per_seq(cfg, L);
    if (P >= 1) {
        std::vector<double> r(static_cast<size_t>(N * P));
        std::vector<std::int32_t> bin(static_cast<size_t>(N * P));
        InputError err;
        kattr_all_points<TA, NCL>(a, N, L, cfg, 2, r.data(), bin.data(), err);
        Digest d;
        d.vec(r);
        d.vec(bin);
        digest_error(d, err);
        put(out, "points" + tag, d);
    }
}

template <class TA, bool NCL>
void run_kmer(Results& out, const std::string& tag, const float* x, const TA* a, std::int64_t N, std::int64_t L) {
    for (int k : {1, 3, 6}) {
        if (L < k) continue;
        const KmerCounts res = kmer_count<float, TA, NCL>(x, a, N, L, k, 0.9, 2, true, 2);
        Digest d;
        d.vec(res.counts);
        d.vec(res.prior);
        d.val(res.n_intervals);
        d.val(res.n_nucleotides);
        digest_error(d, res.error);
        std::vector<double> q(res.prior.size());
        double tot = 0.0;
        for (size_t j = 0; j < q.size(); ++j) tot += static_cast<double>(res.prior[j] + 1);
        for (size_t j = 0; j < q.size(); ++j) q[j] = static_cast<double>(res.prior[j] + 1) / tot;
        std::int64_t zero = -1;
        d.val(kld_counts(res.counts.data(), q.data(), q.size(), zero));
        d.val(zero);
        put(out, "kmer" + tag + "/k" + std::to_string(k), d);
    }
}

template <class TA, bool NCL>
void run_groundtruth(Results& out, const std::string& tag, const float* x, const TA* a, const double* m,
                     std::int64_t N, std::int64_t L) {
    std::vector<GroundTruthRow<TA>> rows(static_cast<size_t>(N));
    InputError err;
    groundtruth<float, TA, NCL>(x, a, m, N, L, 0.01, 8, 2, rows.data(), err);
    Digest d;
    for (const auto& r : rows) {
        d.val(r.auroc);
        d.val(r.auprc);
        d.val(r.signal);
        d.val(r.noise_topk);
        d.val(r.snr);
    }
    digest_error(d, err);
    put(out, "groundtruth" + tag, d);
}

// compat's process_attribution_map pass (x86-64 vector tiers: the AVX2 build
// with the FMA division of compat.hpp's divide_exact; arm64: the divider).
template <class TA>
void run_compat_process(Results& out, const std::string& tag, const TA* a, std::int64_t N, std::int64_t L) {
    for (int k : {1, 3, 5}) {
        if (k > L) continue;
        std::vector<double> o(static_cast<size_t>(N * L * 3));
        Digest d;
        d.val(compat_process_map(a, N, L, k, 2, o.data()));
        d.vec(o);
        put(out, "compat_process" + tag + "/k" + std::to_string(k), d);
    }
}

// Fast bins of unit directions: a grid that puts points on and near every bin
// edge of both angles, the poles, the x' = 0 and y' = 0 half-planes.
void run_bins(Results& out) {
    std::vector<double> e;
    const double pi = 3.14159265358979323846;
    for (int i = 0; i <= 124; ++i)
        for (int j = 0; j <= 124; ++j)
            for (double eps : {0.0, 1e-9, -1e-9, 3e-4, -3e-4}) {
                const double theta = i * (pi / 124) + eps, phi2 = j * (pi / 124) - eps;  // phi' in [0, pi]
                const double phi = 2.0 * phi2 - pi;
                double ct, st, cp, sp;
                cos_sin(theta, ct, st);
                cos_sin(phi, cp, sp);
                e.push_back(ct);
                e.push_back(st * cp);
                e.push_back(st * sp);
            }
    Rng rng{7};
    for (int i = 0; i < 4096; ++i)
        for (int c = 0; c < 3; ++c) e.push_back(((rng.next() & 7) == 0) ? 0.0 : rng.normal() * (c == 0 ? 1e3 : 1.0));
    const std::int64_t n = static_cast<std::int64_t>(e.size() / 3);
    for (bool acme : {false, true}) {
        KattrConfig cfg;
        cfg.acme = acme;
        SeqPoints sp(n);
        sp.P = n;
        sp.scale = 1.0;
        std::int64_t m = 0;
        for (std::int64_t j = 0; j < n; ++j) {
            sp.e1[j] = e[3 * j];
            sp.e2[j] = e[3 * j + 1];
            sp.e3[j] = e[3 * j + 2];
            sp.s[j] = sp.e1[j] * sp.e1[j] + sp.e2[j] * sp.e2[j] + sp.e3[j] * sp.e3[j];
            sp.idx[m] = j;
            m += sp.s[j] > 0;
        }
        sp.bin_points(cfg, m);
        Digest d;
        d.bytes(sp.bins.data(), static_cast<size_t>(m) * sizeof(std::int64_t));
        put(out, std::string("bins/") + (acme ? "acme" : "paper"), d);
    }
}

Results run_all() {
    Results out;
    run_bins(out);
    const std::int64_t lengths[] = {5, 9, 17, 64, 203, 1000};
    std::uint64_t seed = 1;
    for (std::int64_t L : lengths) {
        const std::int64_t N = L >= 1000 ? 12 : 30;
        const Case k = make_case(seed++, N, L);
        const std::string t = "/L" + std::to_string(L);
        const auto a32n = to_ncl(k.a32, N, L);
        const auto a64n = to_ncl(k.a64, N, L);
        const auto xn = to_ncl(k.x, N, L);
        const auto mn = to_ncl(k.model, N, L);
        run_kattr<float, false>(out, t + "/f32/nlc", k.a32.data(), N, L);
        run_kattr<float, true>(out, t + "/f32/ncl", a32n.data(), N, L);
        run_kattr<double, false>(out, t + "/f64/nlc", k.a64.data(), N, L);
        run_kattr<double, true>(out, t + "/f64/ncl", a64n.data(), N, L);
        run_kmer<float, false>(out, t + "/f32/nlc", k.x.data(), k.a32.data(), N, L);
        run_kmer<float, true>(out, t + "/f32/ncl", xn.data(), a32n.data(), N, L);
        run_kmer<double, false>(out, t + "/f64/nlc", k.x.data(), k.a64.data(), N, L);
        run_groundtruth<float, false>(out, t + "/f32/nlc", k.x.data(), k.a32.data(), k.model.data(), N, L);
        run_groundtruth<float, true>(out, t + "/f32/ncl", xn.data(), a32n.data(), mn.data(), N, L);
        run_groundtruth<double, false>(out, t + "/f64/nlc", k.x.data(), k.a64.data(), k.model.data(), N, L);
        run_compat_process<float>(out, t + "/f32", k.a32.data(), N, L);
        run_compat_process<double>(out, t + "/f64", k.a64.data(), N, L);
    }
    return out;
}

// The branch-free 64-value sample selection of order_pair_ranks (Sample64)
// against std::nth_element, every rank, on random rows, rows with ties and
// equal rows, signed zeros and infinities. Returns the number of mismatches.
int check_sample64() {
    Rng rng{42};
    int bad = 0;
    for (int row = 0; row < 3000; ++row) {
        double x[64];
        for (int j = 0; j < 64; ++j) {
            switch (row % 5) {
                case 0: x[j] = rng.normal(); break;
                case 1: x[j] = static_cast<double>(rng.next() % 4); break;  // ties
                case 2: x[j] = 1.5; break;                                  // all equal
                case 3: x[j] = (rng.next() % 2) ? 0.0 : -0.0; break;        // signed zeros
                default: x[j] = (rng.next() % 8 == 0) ? ((rng.next() % 2) ? 1.0 : -1.0) / 0.0 : rng.normal();
            }
        }
        const Sample64 sm(x);
        for (int k = 0; k < 64; ++k) {
            double y[64];
            std::memcpy(y, x, sizeof y);
            std::nth_element(y, y + k, y + 64);
            if (!(sm.kth(k) == y[k])) ++bad;
        }
    }
    return bad;
}

}  // namespace

int main() {
    if (const int bad = check_sample64()) {
        std::fprintf(stderr, "Sample64: %d order statistics differ from std::nth_element\n", bad);
        return 1;
    }
    std::vector<int> tiers;
    for (int t = 0; t < kNumTiers; ++t)
        if (tier_available(t) && kernels_of(t) != nullptr) tiers.push_back(t);
    std::map<int, Results> res;
    for (int t : tiers) {
        if (!set_tier(t)) {
            std::fprintf(stderr, "cannot switch to tier %s\n", kTierNames[t]);
            return 2;
        }
        res[t] = run_all();
    }
    int status = 0;
    const Results& ref = res[kScalar];
    for (int t : tiers) {
        for (const auto& [name, h] : res[t]) {
            std::printf("%s %s %016" PRIx64 "\n", kTierNames[t], name.c_str(), h);
            if (ref.at(name) != h) {
                std::fprintf(stderr, "DIFFERS: %s on %s (scalar %016" PRIx64 ")\n", name.c_str(), kTierNames[t],
                             ref.at(name));
                status = 1;
            }
        }
    }
    std::fprintf(stderr, "%zu results on tiers:", ref.size());
    for (int t : tiers) std::fprintf(stderr, " %s", kTierNames[t]);
    std::fprintf(stderr, status ? " - tiers differ\n" : " - all tiers identical\n");
    return status;
}
