// k-mer KLD (SPEC section 2): thresholded k-mer extraction and the k-mer prior.
#pragma once

#include <array>

#include "common.hpp"

namespace acme::core {

struct KmerCounts {
    std::vector<i64> counts;  // 4**k, k-mers inside attributed intervals
    std::vector<i64> prior;   // 4**k, k-mers of the full sequences (if asked)
    i64 n_intervals = 0;
    i64 n_nucleotides = 0;
    InputError error;
};

// Count every k-mer of codes[b..e] (inclusive) that has no N, into counts.
inline void count_kmers(const std::int8_t* codes, i64 b, i64 e, int k, i64* counts) {
    const u64 mask = (k == 32) ? ~u64(0) : ((u64(1) << (2 * k)) - 1);
    u64 idx = 0;
    int valid = 0;  // length of the current N-free run, capped at k
    for (i64 l = b; l <= e; ++l) {
        const int c = codes[l];
        if (c < 0) {
            valid = 0;
            idx = 0;
            continue;
        }
        idx = ((idx << 2) | static_cast<u64>(c)) & mask;
        if (valid < k) ++valid;
        if (valid == k) ++counts[idx];
    }
}

// Attributed intervals of one sequence from its scores s[L] (SPEC 2.2-2.5):
// positions with s > quantile, runs extended by `buffer` on the 3' end, merged
// when they touch, kept when at least k long. `scratch` has room for L values.
// s2: squared scores (the sqrt is monotone, so the order statistics are
// selected on s2 and only the few positions above the lower one take a sqrt;
// the cutoff and every comparison are those of the scores themselves).
// `scratch` has room for L doubles, `mask` for L bytes. Returns the cutoff.
template <class F>
double for_each_interval(const double* s2, i64 L, double quantile, i64 buffer, int k, double* scratch,
                         std::uint8_t* mask, F&& emit, double* scratch2 = nullptr, double* scratch3 = nullptr) {
    const OrderPair o = order_pair(s2, L, quantile, scratch, scratch2, scratch3);
    const double cut = numpy_lerp(std::sqrt(o.a), std::sqrt(o.b), o.gamma);
    for (i64 l = 0; l < L; ++l) mask[l] = s2[l] > o.a;  // necessary for sqrt(s2) > cut
    for (i64 l = 0; l < L; ++l)
        if (mask[l]) mask[l] = std::sqrt(s2[l]) > cut;
    i64 cur_b = -1, cur_e = -1;  // current merged interval
    i64 l = 0;
    while (l < L) {
        if (!mask[l]) {
            ++l;
            continue;
        }
        const i64 b = l;
        while (l < L && mask[l]) ++l;
        const i64 e = std::min(l - 1 + buffer, L - 1);
        if (cur_b >= 0 && b <= cur_e) {
            cur_e = std::max(cur_e, e);
        } else {
            if (cur_b >= 0 && cur_e - cur_b + 1 >= k) emit(cur_b, cur_e);
            cur_b = b;
            cur_e = e;
        }
    }
    if (cur_b >= 0 && cur_e - cur_b + 1 >= k) emit(cur_b, cur_e);
    return cut;
}

// x: (N, L, 4) or (N, 4, L) one-hot (any numeric type, rows of zeros are N).
// a: attributions of the same layout, or nullptr for the prior only.
template <class TX, class TA, bool NCL>
KmerCounts kmer_count(const TX* x, const TA* a, i64 N, i64 L, int k, double quantile, i64 buffer,
                      bool want_prior, int n_threads) {
    const size_t nk = size_t(1) << (2 * k);
    const int nt = resolve_threads(n_threads);
    KmerCounts out;
    out.counts.assign(a ? nk : 0, 0);
    out.prior.assign(want_prior ? nk : 0, 0);
    std::vector<std::vector<i64>> t_counts(nt), t_prior(nt);
    std::vector<i64> t_nint(nt, 0), t_nnuc(nt, 0);
    std::vector<InputError> t_err(nt);

#pragma omp parallel num_threads(nt)
    {
        const int tid = thread_id();
        std::vector<i64>& counts = t_counts[tid];
        std::vector<i64>& prior = t_prior[tid];
        if (a) counts.assign(nk, 0);
        if (want_prior) prior.assign(nk, 0);
        std::vector<std::int8_t> codes(static_cast<size_t>(L));
        std::vector<double> s(a ? L : 0), scratch(a ? L : 0), scratch2(a ? L : 0), scratch3(a ? L : 0);
        std::vector<std::uint8_t> mask(a ? L : 0);
        InputError& err = t_err[tid];
        i64 nint = 0, nnuc = 0;

#pragma omp for schedule(dynamic, 16)
        for (i64 i = 0; i < N; ++i) {
            i64 bad = 0;
            if (!load_codes<TX, NCL>(x + i * L * 4, L, codes.data(), bad)) {
                err.record(InputError::not_one_hot, i, bad, 0.0);
                continue;
            }
            if (want_prior) count_kmers(codes.data(), 0, L - 1, k, prior.data());
            if (!a) continue;
            double bad_val = 0.0;
            if (!load_norms2<TA, NCL>(a + i * L * 4, L, s.data(), bad, bad_val)) {
                err.record(InputError::not_finite, i, bad, bad_val);
                continue;
            }
            for_each_interval(
                s.data(), L, quantile, buffer, k, scratch.data(), mask.data(),
                [&](i64 b, i64 e) {
                    ++nint;
                    nnuc += e - b + 1;
                    count_kmers(codes.data(), b, e, k, counts.data());
                },
                scratch2.data(), scratch3.data());
        }
        t_nint[tid] = nint;
        t_nnuc[tid] = nnuc;
    }
    // Integer reduction: exact, independent of the thread count.
    for (int t = 0; t < nt; ++t) {
        out.error.merge(t_err[t]);
        out.n_intervals += t_nint[t];
        out.n_nucleotides += t_nnuc[t];
        if (a && !t_counts[t].empty())
            for (size_t j = 0; j < nk; ++j) out.counts[j] += t_counts[t][j];
        if (want_prior && !t_prior[t].empty())
            for (size_t j = 0; j < nk; ++j) out.prior[j] += t_prior[t][j];
    }
    return out;
}

struct KmerIntervals {
    std::vector<i64> seq, begin, end;  // kept intervals, inclusive ends, sorted by (seq, begin)
    std::vector<double> cutoff;        // per-sequence quantile of the scores
    InputError error;
};

// The kept intervals themselves (SPEC 2.1-2.5), for callers that need the
// attributed subsequences rather than their k-mer counts.
template <class TA, bool NCL>
KmerIntervals kmer_intervals(const TA* a, i64 N, i64 L, int k, double quantile, i64 buffer, bool gauge,
                             int n_threads) {
    const int nt = resolve_threads(n_threads);
    KmerIntervals out;
    out.cutoff.assign(static_cast<size_t>(N), 0.0);
    std::vector<std::vector<std::array<i64, 3>>> per_seq(static_cast<size_t>(N));
    std::vector<InputError> terr(nt);
#pragma omp parallel num_threads(nt)
    {
        const int tid = thread_id();
        std::vector<double> g(static_cast<size_t>(L) * 4), s(L), scratch(L);
        std::vector<std::uint8_t> mask(L);
#pragma omp for schedule(dynamic, 16)
        for (i64 i = 0; i < N; ++i) {
            i64 bad = 0;
            double bad_val = 0.0;
            if (!load_gauge<TA, NCL>(a + i * L * 4, L, g.data(), bad, bad_val, gauge)) {
                terr[tid].record(InputError::not_finite, i, bad, bad_val);
                continue;
            }
            for (i64 l = 0; l < L; ++l) {
                const double* v = &g[l * 4];
                s[l] = v[0] * v[0] + v[1] * v[1] + v[2] * v[2] + v[3] * v[3];
            }
            out.cutoff[i] = for_each_interval(s.data(), L, quantile, buffer, k, scratch.data(), mask.data(),
                                              [&](i64 b, i64 e) { per_seq[i].push_back({i, b, e}); });
        }
    }
    for (int t = 0; t < nt; ++t) out.error.merge(terr[t]);
    for (auto& v : per_seq)
        for (auto& t : v) {
            out.seq.push_back(t[0]);
            out.begin.push_back(t[1]);
            out.end.push_back(t[2]);
        }
    return out;
}

// KL(p || q) with p = counts / sum(counts), over p > 0, natural log, summed in
// index order. Returns NaN when counts are all zero. `zero_prior_index` is set
// to the first j with p_j > 0 and q_j == 0 (then the result is +inf).
inline double kld_counts(const i64* counts, const double* q, size_t n, i64& zero_prior_index) {
    zero_prior_index = -1;
    i64 total = 0;
    for (size_t j = 0; j < n; ++j) total += counts[j];
    if (total == 0) return std::numeric_limits<double>::quiet_NaN();
    const double dt = static_cast<double>(total);
    double kl = 0.0;
    for (size_t j = 0; j < n; ++j) {
        if (counts[j] == 0) continue;
        const double p = static_cast<double>(counts[j]) / dt;
        if (!(q[j] > 0.0)) {
            if (zero_prior_index < 0) zero_prior_index = static_cast<i64>(j);
            continue;
        }
        kl += p * std::log(p / q[j]);
    }
    if (zero_prior_index >= 0) return std::numeric_limits<double>::infinity();
    return kl;
}

}  // namespace acme::core
