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

// The next position >= l whose mask byte is set (want = 1) or clear (want = 0),
// or L. Eight bytes at a time on little-endian CPUs (every x86-64 and arm64
// build): the mask holds 0 or 1 per byte, so a word's lowest byte that differs
// from `want` is found from its trailing zero bits.
inline i64 next_mask(const std::uint8_t* mask, i64 l, i64 L, std::uint8_t want) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    constexpr u64 ones = 0x0101010101010101ULL;
    const u64 flip = want ? 0 : ones;
    for (; l + 8 <= L; l += 8) {
        u64 w;
        std::memcpy(&w, mask + l, 8);
        w ^= flip;  // the bytes equal to `want` are now 1, the others 0
        if (w) return l + (__builtin_ctzll(w) >> 3);
    }
#endif
    while (l < L && mask[l] != want) ++l;
    return l;
}

// The smallest double v >= 0 with sqrt(v) > cut (cut >= 0, not NaN): a correctly
// rounded sqrt is monotone, so for v >= 0, sqrt(v) > cut  <=>  v >= the result.
// From cut * cut, which is within a few ulps of it, stepped to the exact edge.
// +inf when no finite v qualifies.
inline double sqrt_above(double cut) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    double t = cut * cut;
    while (t < inf && !(std::sqrt(t) > cut)) t = std::nextafter(t, inf);
    while (t > 0.0 && std::sqrt(std::nextafter(t, 0.0)) > cut) t = std::nextafter(t, 0.0);
    return t;
}

// Attributed intervals of one sequence from its scores s[L] (SPEC 2.2-2.5):
// positions with s > quantile, runs extended by `buffer` on the 3' end, merged
// when they touch, kept when at least k long. s2: squared scores (the sqrt is
// monotone, so the order statistics are selected on s2, and a position's test
// sqrt(s2) > cut is the comparison s2 >= sqrt_above(cut): the cutoff and every
// comparison are those of the scores themselves). `scratch` has room for L
// doubles, `mask` for L bytes. Returns the cutoff.
template <class F>
double for_each_interval(const double* __restrict__ s2, i64 L, double quantile, i64 buffer, int k, double* scratch,
                         std::uint8_t* __restrict__ mask, F&& emit, double* scratch2 = nullptr,
                         double* scratch3 = nullptr) {
    const OrderPair o = order_pair(s2, L, quantile, scratch, scratch2, scratch3);
    const double cut = numpy_lerp(std::sqrt(o.a), std::sqrt(o.b), o.gamma);
    // The positions whose score sqrt(s2) is above cut: s2 > o.a (necessary for it) and
    // s2 >= sqrt_above(cut) (equivalent to it), i.e. s2 >= t with t the larger of
    // sqrt_above(cut) and the double after o.a. One comparison per position, without
    // a sqrt (a quarter of the k-mer kernel's time when it took one).
    const double t = std::max(sqrt_above(cut), std::nextafter(o.a, std::numeric_limits<double>::infinity()));
    for (i64 l = 0; l < L; ++l) mask[l] = static_cast<std::uint8_t>(s2[l] >= t);
    i64 cur_b = -1, cur_e = -1;  // current merged interval
    for (i64 l = next_mask(mask, 0, L, 1); l < L; l = next_mask(mask, l, L, 1)) {
        const i64 b = l;
        l = next_mask(mask, l, L, 0);
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

// Squared scores of one sequence into s[L] (see load_norms2); a float64
// sequence whose squares over- or underflow is rescaled first (exact, see
// rescale_copy). Returns the power of two the scores were divided by (0 when
// not rescaled), or kNoRescale on non-finite input (bad_pos/bad_val set).
template <class TA, bool NCL>
int load_scores2(const TA* a, i64 L, double* s, std::vector<double>& rbuf, i64& bad_pos, double& bad_val) {
    if (!load_norms2<TA, NCL>(a, L, s, bad_pos, bad_val)) return kNoRescale;
    if constexpr (std::is_same_v<TA, double>) {
        if (squares_out_of_range(s, L)) {
            const int e = rescale_copy(a, L, rbuf);
            if (e != kNoRescale) {
                load_norms2<double, NCL>(rbuf.data(), L, s, bad_pos, bad_val);
                return e;
            }
        }
    }
    return 0;
}

// Above this many k-mers the count tables are shared by all threads (atomic
// adds, exact for integers) instead of one private table per thread: with
// k >= 9 a private table per thread would cost more memory, and more time to
// zero and merge, than the counting itself.
constexpr size_t kPrivateKmerTable = size_t(1) << 16;

template <bool Atomic>
inline void bump(i64* counts, u64 idx) {
    if constexpr (Atomic) {
#pragma omp atomic
        ++counts[idx];
    } else {
        ++counts[idx];
    }
}

// One k-mer chain: the index of the last k codes and how many of them (up to k)
// are bases, not N (code < 0). step() takes the code at the next position and
// says whether the k-mer ending there is complete.
struct KmerChain {
    u64 idx = 0;
    int valid = 0;
    bool step(int c, int k, u64 mask) {
        const bool ok = c >= 0;
        idx = ok ? (((idx << 2) | static_cast<u64>(c)) & mask) : 0;
        valid = ok ? std::min(valid + 1, k) : 0;
        return valid == k;
    }
};

// Count every k-mer of codes[b..e] (inclusive) that has no N, into counts.
// The k-mer ending at l is counted when l - k + 1 >= b and none of its codes is
// an N. Long ranges run as four chains at once (each the k-mers ending in one
// quarter, starting k - 1 positions before it), which overlaps their dependent
// index updates; the counts are integers, so the order does not matter.
template <bool Atomic>
inline void count_kmers_t(const std::int8_t* codes, i64 b, i64 e, int k, i64* counts) {
    const u64 mask = (k == 32) ? ~u64(0) : ((u64(1) << (2 * k)) - 1);
    // the k-mers ending in [from, e], the chain built from max(b, from - k + 1)
    auto serial = [&](i64 from) {
        KmerChain ch;
        for (i64 l = std::max(b, from - (k - 1)); l <= e; ++l)
            if (ch.step(codes[l], k, mask) && l >= from) bump<Atomic>(counts, ch.idx);
    };
    const i64 n = e - b + 1;
    if (n < 16 * static_cast<i64>(k) + 64) {
        serial(b);
        return;
    }
    const i64 m = n / 4;  // chain j: the k-mers ending in [b + j m, b + (j + 1) m)
    KmerChain c0, c1, c2, c3;
    const std::int8_t* p1 = codes + b + m - (k - 1);
    const std::int8_t* p2 = p1 + m;
    const std::int8_t* p3 = p2 + m;
    for (int t = 0; t < k - 1; ++t) {  // chains 1-3: the k - 1 codes before their quarter
        c1.step(p1[t], k, mask);
        c2.step(p2[t], k, mask);
        c3.step(p3[t], k, mask);
    }
    p1 += k - 1;
    p2 += k - 1;
    p3 += k - 1;
    const std::int8_t* p0 = codes + b;
    for (i64 t = 0; t < m; ++t) {
        if (c0.step(p0[t], k, mask)) bump<Atomic>(counts, c0.idx);
        if (c1.step(p1[t], k, mask)) bump<Atomic>(counts, c1.idx);
        if (c2.step(p2[t], k, mask)) bump<Atomic>(counts, c2.idx);
        if (c3.step(p3[t], k, mask)) bump<Atomic>(counts, c3.idx);
    }
    serial(b + 4 * m);  // the k-mers ending after the four quarters
}

// x: (N, L, 4) or (N, 4, L) one-hot (any numeric type, rows of zeros are N).
// a: attributions of the same layout, or nullptr for the prior only.
// buffer > L - 1 is the same as L - 1 (a run cannot extend past the sequence).
template <class TX, class TA, bool NCL>
KmerCounts kmer_count(const TX* x, const TA* a, i64 N, i64 L, int k, double quantile, i64 buffer,
                      bool want_prior, int n_threads) {
    const size_t nk = size_t(1) << (2 * k);
    const int nt = resolve_threads(n_threads, N);
    buffer = std::min(buffer, L - 1);
    const bool shared = nk > kPrivateKmerTable;
    KmerCounts out;
    out.counts.assign(a ? nk : 0, 0);
    out.prior.assign(want_prior ? nk : 0, 0);
    std::vector<std::vector<i64>> t_counts(nt), t_prior(nt);
    std::vector<i64> t_nint(nt, 0), t_nnuc(nt, 0);
    std::vector<InputError> t_err(nt);
    struct Scratch {
        std::vector<std::int8_t> codes;
        std::vector<double> s, scratch, scratch2, scratch3, rbuf;
        std::vector<std::uint8_t> mask;
    };
    std::vector<Scratch> tw(nt);

    parallel_for(
        nt, N, 16,
        [&](int tid) {
            Scratch& w = tw[tid];
            if (!shared) {
                if (a) t_counts[tid].assign(nk, 0);
                if (want_prior) t_prior[tid].assign(nk, 0);
            }
            w.codes.resize(static_cast<size_t>(L));
            if (a) {
                for (auto* v : {&w.s, &w.scratch, &w.scratch2, &w.scratch3}) v->resize(static_cast<size_t>(L));
                w.mask.resize(static_cast<size_t>(L));
            }
        },
        [&](int tid, i64 i) {
            Scratch& w = tw[tid];
            i64* counts = shared ? out.counts.data() : t_counts[tid].data();
            i64* prior = shared ? out.prior.data() : t_prior[tid].data();
            auto count = [&](i64 b, i64 e, i64* table) {
                if (shared) count_kmers_t<true>(w.codes.data(), b, e, k, table);
                else count_kmers_t<false>(w.codes.data(), b, e, k, table);
            };
            i64 bad = 0;
            if (!load_codes<TX, NCL>(x + i * L * 4, L, w.codes.data(), bad)) {
                t_err[tid].record(InputError::not_one_hot, i, bad, 0.0);
                return;
            }
            if (want_prior) count(0, L - 1, prior);
            if (!a) return;
            double bad_val = 0.0;
            if (load_scores2<TA, NCL>(a + i * L * 4, L, w.s.data(), w.rbuf, bad, bad_val) == kNoRescale) {
                t_err[tid].record(InputError::not_finite, i, bad, bad_val);
                return;
            }
            for_each_interval(
                w.s.data(), L, quantile, buffer, k, w.scratch.data(), w.mask.data(),
                [&](i64 b, i64 e) {
                    ++t_nint[tid];
                    t_nnuc[tid] += e - b + 1;
                    count(b, e, counts);
                },
                w.scratch2.data(), w.scratch3.data());
        });
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
    const int nt = resolve_threads(n_threads, N);
    buffer = std::min(buffer, L - 1);
    KmerIntervals out;
    out.cutoff.assign(static_cast<size_t>(N), 0.0);
    std::vector<std::vector<std::array<i64, 3>>> per_seq(static_cast<size_t>(N));
    std::vector<InputError> terr(nt);
    struct Scratch {
        std::vector<double> g, s, scratch, scratch2, scratch3, rbuf;
        std::vector<std::uint8_t> mask;
    };
    std::vector<Scratch> tw(nt);
    parallel_for(
        nt, N, 16,
        [&](int tid) {
            Scratch& w = tw[tid];
            w.g.resize(static_cast<size_t>(L) * 4);
            for (auto* v : {&w.s, &w.scratch, &w.scratch2, &w.scratch3}) v->resize(static_cast<size_t>(L));
            w.mask.resize(static_cast<size_t>(L));
        },
        [&](int tid, i64 i) {
            Scratch& w = tw[tid];
            i64 bad = 0;
            double bad_val = 0.0;
            const TA* ai = a + i * L * 4;
            if (!load_gauge<TA, NCL>(ai, L, w.g.data(), bad, bad_val, gauge)) {
                terr[tid].record(InputError::not_finite, i, bad, bad_val);
                return;
            }
            auto squares = [&]() {
                for (i64 l = 0; l < L; ++l) {
                    const double* v = &w.g[l * 4];
                    w.s[l] = v[0] * v[0] + v[1] * v[1] + v[2] * v[2] + v[3] * v[3];
                }
            };
            squares();
            int e = 0;  // scores divided by 2^e (see rescale_copy)
            if (squares_out_of_range(w.s.data(), L)) {
                e = rescale_copy(ai, L, w.rbuf);
                if (e != kNoRescale) {
                    load_gauge<double, NCL>(w.rbuf.data(), L, w.g.data(), bad, bad_val, gauge);
                    squares();
                } else {
                    e = 0;
                }
            }
            const double cut = for_each_interval(
                w.s.data(), L, quantile, buffer, k, w.scratch.data(), w.mask.data(),
                [&](i64 b, i64 e2) { per_seq[i].push_back({i, b, e2}); }, w.scratch2.data(), w.scratch3.data());
            out.cutoff[i] = std::ldexp(cut, e);
        });
    for (int t = 0; t < nt; ++t) out.error.merge(terr[t]);
    size_t total = 0;
    for (const auto& v : per_seq) total += v.size();
    out.seq.reserve(total);
    out.begin.reserve(total);
    out.end.reserve(total);
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
