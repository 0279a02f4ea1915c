// Ground-truth attribution quality (SPEC section 4), as tfomics.evaluate
// computes it: AUROC/AUPRC over signal + background positions (scikit-learn's
// curves), and signal / top-k noise / SNR in the attribution's own precision.
//
// Per sequence: one pass reads x, attr and x_model (codes, grad x input,
// checks, information content), one branch-free pass splits the positions
// into signal / background, a radix sort orders the evaluated scores, and one
// walk over the sorted scores gives both curves and the top-k noise.
#pragma once

#include <array>
#include <type_traits>

#include <memory>

#include "common.hpp"

namespace acme::core {

// m * log2(m + 1e-10), memoised: sequence models repeat a few values (0.25 in
// every background position, the same PWM columns), and log2 dominates the
// cost otherwise. An open-addressing table keyed by the value's bits (linear
// probing, never evicting; exact): each distinct value costs one log2 per
// thread and call. (A direct-mapped table thrashed: the benchmarks' 481
// distinct values took 34k log2 calls per 600k lookups in 4096 slots, where
// colliding values alternated.) At most half the slots are filled, so a probe
// always ends at an empty slot; values beyond that are computed each time.
class EntropyTerm {
   public:
    EntropyTerm() { key_.fill(kEmpty); }
    double operator()(double m) {
        u64 bits;
        std::memcpy(&bits, &m, sizeof bits);
        size_t slot = static_cast<size_t>((bits * 0x9E3779B97F4A7C15ull) >> (64 - kLogSlots));
        while (key_[slot] != kEmpty) {
            if (key_[slot] == bits) return val_[slot];
            slot = (slot + 1) & (kSlots - 1);
        }
        const double v = m * std::log2(m + 1e-10);
        if (used_ < kSlots / 2 && bits != kEmpty) {  // (kEmpty's bits, a NaN, are never stored)
            key_[slot] = bits;
            val_[slot] = v;
            ++used_;
        }
        return v;
    }

   private:
    static constexpr int kLogSlots = 12;
    static constexpr size_t kSlots = size_t(1) << kLogSlots;
    static constexpr u64 kEmpty = ~u64(0);
    std::array<u64, kSlots> key_;
    std::array<double, kSlots> val_{};
    size_t used_ = 0;
};

template <class T>
struct GroundTruthRow {
    double auroc, auprc;
    T signal, noise_topk, snr;
};

// Sort keys of scores: unsigned order of the key is decreasing order of the
// score, and equal scores (-0.0 and +0.0 included) have equal keys.
template <class T>
struct ScoreKey {
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    static constexpr U kSign = U(1) << (8 * sizeof(U) - 1);
    static U of(T s) {
        s = s + T(0);  // -0.0 -> +0.0 (round to nearest)
        U b;
        std::memcpy(&b, &s, sizeof b);
        const U asc = (b & kSign) ? U(~b) : U(b ^ kSign);  // increasing with the score
        return U(~asc);
    }
    static T value(U key) {
        const U asc = U(~key);
        const U b = (asc & kSign) ? U(asc ^ kSign) : U(~asc);
        T s;
        std::memcpy(&s, &b, sizeof s);
        return s;
    }
};

// An evaluated position: its score's key and its label (1 signal, 0 background).
template <class U>
struct KeyLabel {
    U key;
    U label;
};
// The vector loops read KeyLabel<uint32_t> as one little-endian uint64 (key low, label high).
static_assert(sizeof(KeyLabel<std::uint32_t>) == 8, "KeyLabel<uint32_t> must be 8 bytes");

// Sorts v[0..n) by key (ascending key = decreasing score): an LSD radix sort
// on the top kTop bytes of the key (8 bits a pass; both byte histograms counted
// in one read; a pass is skipped when every key has the same byte there), then
// an insertion sort that finishes the order within equal top bytes. Scores
// spread over many values leave only a few short runs to finish; when the
// finishing moves exceed a budget (scores crowded into a few top-byte values)
// std::sort finishes instead, so the worst case stays O(n log n). Order within
// equal keys is irrelevant to the callers (the curve walk only acts at changes
// of key).
template <class U>
void sort_keys(KeyLabel<U>* v, i64 n, KeyLabel<U>* tmp) {
    constexpr int kTop = sizeof(U) == 4 ? 2 : 3;
    constexpr int kLow = 8 * (static_cast<int>(sizeof(U)) - kTop);
    const auto by_key = [](const KeyLabel<U>& a, const KeyLabel<U>& b) { return a.key < b.key; };
    if (n < 2) return;
    if (n > i64(0xFFFFFFFF)) {  // counts are 32-bit
        std::sort(v, v + n, by_key);
        return;
    }
    std::uint32_t count[kTop][256];
    std::memset(count, 0, sizeof count);
    for (i64 j = 0; j < n; ++j) {
        const U k = v[j].key >> kLow;
        for (int b = 0; b < kTop; ++b) ++count[b][(k >> (8 * b)) & 0xFF];
    }
    KeyLabel<U>* src = v;
    KeyLabel<U>* dst = tmp;
    for (int b = 0; b < kTop; ++b) {
        std::uint32_t* c = count[b];
        const int shift = kLow + 8 * b;
        if (c[(v[0].key >> shift) & 0xFF] == static_cast<std::uint32_t>(n)) continue;
        if (const auto f = kernels().exclusive_prefix_256) {
            f(c);
        } else {
            std::uint32_t pos = 0;
            for (int d = 0; d < 256; ++d) {
                const std::uint32_t t = c[d];
                c[d] = pos;
                pos += t;
            }
        }
        for (i64 j = 0; j < n; ++j) dst[c[(src[j].key >> shift) & 0xFF]++] = src[j];
        std::swap(src, dst);
    }
    if (src != v) std::copy(src, src + n, v);
    // Finish: insertion sort, sorted by the top bytes already.
    i64 budget = 8 * n + 64;
    for (i64 j = 1; j < n; ++j) {
        const KeyLabel<U> e = v[j];
        i64 h = j;
        while (h > 0 && v[h - 1].key > e.key) {
            v[h] = v[h - 1];
            --h;
        }
        v[h] = e;
        budget -= j - h;
        if (budget < 0) {
            std::sort(v, v + n, by_key);
            return;
        }
    }
}

inline int lowest_bit(u64 v) {  // v != 0
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(v);
#else
    int b = 0;
    while (!((v >> b) & 1)) ++b;
    return b;
#endif
}

// Scratch of one thread, sized for sequences of length L.
template <class TA>
struct GroundTruthScratch {
    using U = typename ScoreKey<TA>::U;
    std::vector<std::int8_t> codes;
    std::vector<TA> s, sel, noise;
    std::vector<double> info, tps, fps;
    std::vector<KeyLabel<U>> eval, tmp;
    std::vector<u64> changed;  // bit l: x_model's row l differs from row l - 1
    EntropyTerm entropy_term;
    explicit GroundTruthScratch(i64 L)
        : codes(L), s(L), sel(L), noise(L), info(L), tps(L), fps(L), eval(L), tmp(L),
          changed(static_cast<size_t>((L + 63) / 64)) {}
};

// scikit-learn's roc_auc (roc_curve + auc) and auc(recall, precision) from
// precision_recall_curve, over v[0..n) sorted by decreasing score, npos of
// them positive (0 < npos < n).
template <class U>
void curve_aucs_sorted(const KeyLabel<U>* v, i64 n, i64 npos, double* tps, double* fps, double& auroc,
                       double& auprc) {
    // Cumulative counts at the end of each run of equal scores (the thresholds).
    i64 m = 0, j0 = 0, tp0 = 0;
    if constexpr (sizeof(U) == 4)
        if (const auto f = kernels().curve_counts_f32)
            j0 = f(reinterpret_cast<const std::uint64_t*>(v), n, tps, fps, m, tp0);
    double tp = static_cast<double>(tp0), fp = static_cast<double>(j0 - tp0);
    for (i64 j = j0; j < n; ++j) {
        const double y = static_cast<double>(v[j].label);
        tp += y;
        fp += 1.0 - y;
        tps[m] = tp;
        fps[m] = fp;
        m += (j + 1 == n) || (v[j + 1].key != v[j].key);
    }
    // Rates and trapezoids (independent, vectorisable): fps[j] becomes the ROC
    // term of threshold j, tps[j] the PR term; then the two sums, in order.
    const double P = static_cast<double>(npos), Nn = static_cast<double>(n - npos);
    double prev_fpr = 0, prev_tpr = 0, prev_prec = 1;  // (recall 0, precision 1) starts the PR curve
    j0 = 0;
    if (const auto f = kernels().curve_terms) j0 = f(tps, fps, m, P, Nn, prev_fpr, prev_tpr, prev_prec);
    for (i64 j = j0; j < m; ++j) {
        const double t = tps[j], f = fps[j];
        const double pc = t / (t + f), fpr = f / Nn, tpr = t / P;  // tpr = recall
        fps[j] = (fpr - prev_fpr) * (tpr + prev_tpr) / 2.0;
        tps[j] = (tpr - prev_tpr) * (pc + prev_prec) / 2.0;
        prev_fpr = fpr;
        prev_tpr = tpr;
        prev_prec = pc;
    }
    double roc = 0, pr = 0;
    for (i64 j = 0; j < m; ++j) {
        roc += fps[j];
        pr += tps[j];
    }
    auroc = roc;
    auprc = pr;
}

// x, a: (N, L, 4) or (N, 4, L); model: (N, L, 4) or (N, 4, L) float64.
template <class TX, class TA, bool NCL>
void groundtruth(const TX* x, const TA* a, const double* model, i64 N, i64 L, double threshold, i64 top_k,
                 int n_threads, GroundTruthRow<TA>* out, InputError& err) {
    using Key = ScoreKey<TA>;
    const int nt = resolve_threads(n_threads, N);
    std::vector<InputError> terr(nt);
    std::vector<std::unique_ptr<GroundTruthScratch<TA>>> tw(nt);
    parallel_for(
        nt, N, 8, [&](int tid) { tw[tid] = std::make_unique<GroundTruthScratch<TA>>(L); },
        [&](int tid, i64 i) {
            GroundTruthScratch<TA>& w = *tw[tid];
            std::int8_t* codes = w.codes.data();
            TA* s = w.s.data();
            double* info = w.info.data();
            i64 bad = 0;
            if (!load_codes<TX, NCL>(x + i * L * 4, L, codes, bad)) {
                terr[tid].record(InputError::not_one_hot, i, bad, 0.0);
                return;
            }
            const TA* ai = a + i * L * 4;
            const double* mi = model + i * L * 4;
            // grad x input (one-hot x: one non-zero term), the finiteness of attr
            // (fin stays 0 unless a value is inf or nan), x_model in [0, 1] (NaN
            // fails both comparisons), and where x_model's rows change.
            u64* changed = w.changed.data();
            std::fill(w.changed.begin(), w.changed.end(), u64(0));
            bool fin_ok = true, prob_ok = true;
            i64 l0 = 0;
            if constexpr (std::is_same_v<TA, float>)
                if (const auto f = kernels().gt_scores_f32)
                    l0 = f(ai, mi, codes, L, NCL, s, reinterpret_cast<std::uint8_t*>(changed), fin_ok, prob_ok);
            TA fin = TA(0);
            for (i64 l = l0; l < L; ++l) {
                const int c = codes[l];
                TA v[4];
                bool diff = l == 0;
                for (int cc = 0; cc < 4; ++cc) {
                    v[cc] = NCL ? ai[cc * L + l] : ai[l * 4 + cc];
                    const double* p = NCL ? mi + cc * L + l : mi + l * 4 + cc;
                    prob_ok &= (*p >= 0.0) & (*p <= 1.0);
                    if (l > 0) diff |= std::memcmp(p, NCL ? p - 1 : p - 4, sizeof(double)) != 0;
                }
                fin += ((v[0] - v[0]) + (v[1] - v[1])) + ((v[2] - v[2]) + (v[3] - v[3]));
                s[l] = c >= 0 ? v[c] : TA(0);
                changed[l >> 6] |= u64(diff) << (l & 63);
            }
            fin_ok &= fin == TA(0);
            // Information content, computed where the row changes (background rows
            // repeat the same four values) and copied along the runs between.
            double mn = std::numeric_limits<double>::infinity(), cur = 0.0;
            i64 last = 0;
            for (i64 wi = 0; wi < static_cast<i64>(w.changed.size()); ++wi) {
                for (u64 bits = changed[wi]; bits != 0; bits &= bits - 1) {
                    const i64 p = 64 * wi + lowest_bit(bits);
                    std::fill(info + last, info + p, cur);
                    // SPEC 4 / tfomics: np.log2(4) + np.sum(terms, axis=-1), the four terms
                    // summed left to right first (numpy's order for 4 values), then 2 added.
                    // (Adding each term to 2 in turn rounded differently: rows one ulp from
                    // 0.25 then tied with the background.)
                    double sum = w.entropy_term(NCL ? mi[p] : mi[p * 4]);
                    for (int cc = 1; cc < 4; ++cc) sum += w.entropy_term(NCL ? mi[cc * L + p] : mi[p * 4 + cc]);
                    cur = 2.0 + sum;
                    mn = std::min(mn, cur);
                    last = p;
                }
            }
            std::fill(info + last, info + L, cur);
            if (!fin_ok) {
                i64 bad_pos = 0;
                double bad_val = 0.0;
                first_nonfinite<TA, NCL>(ai, L, bad_pos, bad_val);
                terr[tid].record(InputError::not_finite, i, bad_pos, bad_val);
                return;
            }
            if (!prob_ok) {
                i64 bad_pos = 0;
                double bad_val = 0.0;
                first_not_probability<NCL>(mi, L, bad_pos, bad_val);
                terr[tid].record(InputError::not_probability, i, bad_pos, bad_val);
                return;
            }
            // Evaluated positions: signal (label 1) and background (label 0);
            // the signal scores in position order; positive background scores.
            KeyLabel<typename Key::U>* ev = w.eval.data();
            TA* sel = w.sel.data();
            TA* noise = w.noise.data();
            i64 n_eval = 0, n_sig = 0, n_noise = 0;
            l0 = 0;
            if constexpr (std::is_same_v<TA, float>)
                if (const auto f = kernels().gt_split_f32)
                    l0 = f(info, s, L, threshold, mn, reinterpret_cast<std::uint64_t*>(ev), sel, noise, n_eval, n_sig,
                           n_noise);
            for (i64 l = l0; l < L; ++l) {
                const double inf = info[l];
                const TA sv = s[l];
                const int sig = inf > threshold, bg = inf == mn;
                ev[n_eval] = {Key::of(sv), static_cast<typename Key::U>(sig)};
                n_eval += sig | bg;
                sel[n_sig] = sv;
                n_sig += sig;
                noise[n_noise] = sv;
                n_noise += bg & (sv > TA(0));
            }
            GroundTruthRow<TA>& row = out[i];
            // With no background position above the threshold (the usual case), the
            // label-0 positions are exactly the background and the sorted order gives
            // the top-k noise too.
            const bool noise_from_sort = n_noise >= top_k && !(mn > threshold);
            const bool two_classes = n_sig > 0 && n_sig < n_eval;
            if (two_classes || noise_from_sort) sort_keys(ev, n_eval, w.tmp.data());
            if (two_classes) {
                curve_aucs_sorted(ev, n_eval, n_sig, w.tps.data(), w.fps.data(), row.auroc, row.auprc);
            } else {
                row.auroc = row.auprc = std::numeric_limits<double>::quiet_NaN();
            }
            if (n_noise < top_k) {
                row.signal = row.noise_topk = row.snr = TA(0);
                return;
            }
            // signal: np.mean over signal positions, in position order.
            row.signal = numpy_mean(sel, n_sig);
            // noise: np.mean of the top_k largest, in descending order.
            if (noise_from_sort) {
                i64 c = 0;
                for (i64 j = 0; c < top_k; ++j)
                    if (ev[j].label == 0) noise[c++] = Key::value(ev[j].key);
            } else {
                std::partial_sort(noise, noise + top_k, noise + n_noise, std::greater<TA>());
            }
            row.noise_topk = numpy_mean(noise, top_k);
            const TA snr = row.signal / row.noise_topk;
            row.snr = std::isnan(static_cast<double>(snr)) ? TA(0) : snr;
        });
    for (int t = 0; t < nt; ++t) err.merge(terr[t]);
}

}  // namespace acme::core
