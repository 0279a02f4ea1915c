// Ground-truth attribution quality (SPEC section 4), as tfomics.evaluate
// computes it: AUROC/AUPRC over signal + background positions (scikit-learn's
// curves), and signal / top-k noise / SNR in the attribution's own precision.
#pragma once

#include <array>
#include <type_traits>

#include "common.hpp"

namespace acme::core {

// m * log2(m + 1e-10), memoised: sequence models repeat a few values (0.25 in
// every background position, the same PWM columns), and log2 dominates the
// cost otherwise. A direct-mapped table keyed by the value's bits; exact.
class EntropyTerm {
   public:
    EntropyTerm() { key_.fill(~u64(0)); }
    double operator()(double m) {
        u64 bits;
        std::memcpy(&bits, &m, sizeof bits);
        const size_t slot = static_cast<size_t>((bits * 0x9E3779B97F4A7C15ull) >> 56);
        if (key_[slot] != bits) {
            key_[slot] = bits;
            val_[slot] = m * std::log2(m + 1e-10);
        }
        return val_[slot];
    }

   private:
    std::array<u64, 256> key_;
    std::array<double, 256> val_{};
};

template <class T>
struct GroundTruthRow {
    double auroc, auprc;
    T signal, noise_topk, snr;
};

template <class T>
struct ScoredLabel {
    T s;
    std::uint8_t y;
};

// Sorts v[0..n) by decreasing score (finite values), LSD radix on the
// score's bits, 8 bits a pass, skipping passes where every key has the same
// byte. Equal scores end up adjacent (-0 and +0 next to each other), which is
// all the curve walk needs: it only acts at changes of value.
template <class T>
struct RadixScratch {
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    std::vector<ScoredLabel<T>> tmp;
    std::vector<U> keys, tmp_keys;
    explicit RadixScratch(i64 n) : tmp(n), keys(n), tmp_keys(n) {}
};

template <class T>
void sort_desc(ScoredLabel<T>* v, i64 n, RadixScratch<T>& rs) {
    using U = typename RadixScratch<T>::U;
    constexpr int kBits = 8 * static_cast<int>(sizeof(U));
    constexpr U kSign = U(1) << (kBits - 1);
    U* keys = rs.keys.data();
    U* tkeys = rs.tmp_keys.data();
    ScoredLabel<T>* src = v;
    ScoredLabel<T>* dst = rs.tmp.data();
    for (i64 j = 0; j < n; ++j) {
        U b;
        std::memcpy(&b, &v[j].s, sizeof b);
        const U asc = (b & kSign) ? ~b : (b ^ kSign);  // increasing with the value
        keys[j] = ~asc;                                 // decreasing
    }
    for (int shift = 0; shift < kBits; shift += 8) {
        i64 count[256] = {0};
        for (i64 j = 0; j < n; ++j) ++count[(keys[j] >> shift) & 0xFF];
        if (count[(keys[0] >> shift) & 0xFF] == n) continue;  // one byte value: nothing to reorder
        i64 pos = 0;
        for (int b = 0; b < 256; ++b) {
            const i64 c = count[b];
            count[b] = pos;
            pos += c;
        }
        for (i64 j = 0; j < n; ++j) {
            const i64 d = count[(keys[j] >> shift) & 0xFF]++;
            tkeys[d] = keys[j];
            dst[d] = src[j];
        }
        std::swap(keys, tkeys);
        std::swap(src, dst);
    }
    if (src != v) std::copy(src, src + n, v);
}

// scikit-learn's roc_auc (roc_curve + auc) and auc(recall, precision) from
// precision_recall_curve, over (score, label in {0, 1}) pairs, which are
// reordered. NaN when only one class is present.
template <class T>
void curve_aucs(ScoredLabel<T>* v, i64 n, double& auroc, double& auprc, RadixScratch<T>* rs = nullptr) {
    i64 npos = 0;
    for (i64 j = 0; j < n; ++j) npos += v[j].y;
    if (npos == 0 || npos == n) {
        auroc = auprc = std::numeric_limits<double>::quiet_NaN();
        return;
    }
    if (rs != nullptr) sort_desc(v, n, *rs);
    else std::sort(v, v + n, [](const ScoredLabel<T>& a, const ScoredLabel<T>& b) { return a.s > b.s; });
    // Walk distinct thresholds from the highest score down.
    double tps = 0, fps = 0;
    double prev_fpr = 0, prev_tpr = 0;
    double prev_rec = 0, prev_prec = 1;  // the (recall 0, precision 1) end point
    double roc = 0, pr = 0;
    const double P = static_cast<double>(npos), Nn = static_cast<double>(n - npos);
    for (i64 j = 0; j < n; ++j) {
        if (v[j].y) tps += 1; else fps += 1;
        if (j + 1 < n && v[j + 1].s == v[j].s) continue;  // not a threshold yet
        const double fpr = fps / Nn, tpr = tps / P;
        roc += (fpr - prev_fpr) * (tpr + prev_tpr) / 2.0;
        prev_fpr = fpr;
        prev_tpr = tpr;
        const double prec = tps / (tps + fps), rec = tps / P;
        pr += (rec - prev_rec) * (prec + prev_prec) / 2.0;
        prev_rec = rec;
        prev_prec = prec;
    }
    auroc = roc;
    auprc = pr;
}

// x, a: (N, L, 4) or (N, 4, L); model: (N, L, 4) or (N, 4, L) float64.
template <class TX, class TA, bool NCL>
void groundtruth(const TX* x, const TA* a, const double* model, i64 N, i64 L, double threshold, i64 top_k,
                 int n_threads, GroundTruthRow<TA>* out, InputError& err) {
    const int nt = resolve_threads(n_threads);
    std::vector<InputError> terr(nt);
#pragma omp parallel num_threads(nt)
    {
        const int tid = thread_id();
        std::vector<std::int8_t> codes(L);
        std::vector<TA> s(L), sel(L), noise(L);
        std::vector<double> info(L);
        std::vector<ScoredLabel<TA>> eval(L);
        RadixScratch<TA> radix(L);
        EntropyTerm entropy_term;
#pragma omp for schedule(dynamic, 8)
        for (i64 i = 0; i < N; ++i) {
            i64 bad = 0;
            if (!load_codes<TX, NCL>(x + i * L * 4, L, codes.data(), bad)) {
                terr[tid].record(InputError::not_one_hot, i, bad, 0.0);
                continue;
            }
            const TA* ai = a + i * L * 4;
            const double* mi = model + i * L * 4;
            // grad x input: with one-hot x the sum has one non-zero term. Branch-free
            // finiteness check (fin stays 0 unless a value is inf or nan); the slow
            // loop only runs to name the offending position.
            double fin = 0.0;
            for (i64 l = 0; l < L; ++l) {
                const int c = codes[l];
                double v[4];
                for (int cc = 0; cc < 4; ++cc) v[cc] = static_cast<double>(NCL ? ai[cc * L + l] : ai[l * 4 + cc]);
                fin += ((v[0] - v[0]) + (v[1] - v[1])) + ((v[2] - v[2]) + (v[3] - v[3]));
                s[l] = c >= 0 ? (NCL ? ai[c * L + l] : ai[l * 4 + c]) : TA(0);
            }
            if (fin != 0.0) {
                i64 bad_pos = 0;
                double bad_val = 0.0;
                first_nonfinite<TA, NCL>(ai, L, bad_pos, bad_val);
                terr[tid].record(InputError::not_finite, i, bad_pos, bad_val);
                continue;
            }
            for (i64 l = 0; l < L; ++l) {
                double inf = 2.0;
                for (int cc = 0; cc < 4; ++cc) inf += entropy_term(NCL ? mi[cc * L + l] : mi[l * 4 + cc]);
                info[l] = inf;
            }
            const double mn = *std::min_element(info.begin(), info.end());
            // Evaluated positions: signal (label 1) and background (label 0).
            i64 n_eval = 0, n_sig = 0, n_noise = 0;
            for (i64 l = 0; l < L; ++l) {
                const bool sig = info[l] > threshold, bg = info[l] == mn;
                if (sig || bg) eval[n_eval++] = {s[l], static_cast<std::uint8_t>(sig ? 1 : 0)};
                if (bg && s[l] > TA(0)) noise[n_noise++] = s[l];
            }
            GroundTruthRow<TA>& row = out[i];
            curve_aucs(eval.data(), n_eval, row.auroc, row.auprc, &radix);
            if (n_noise < top_k) {
                row.signal = row.noise_topk = row.snr = TA(0);
                continue;
            }
            // signal: np.mean over signal positions, in position order.
            for (i64 l = 0; l < L; ++l)
                if (info[l] > threshold) sel[n_sig++] = s[l];
            row.signal = numpy_mean(sel.data(), n_sig);
            // noise: np.mean of the top_k largest, in descending order.
            std::partial_sort(noise.begin(), noise.begin() + top_k, noise.begin() + n_noise, std::greater<TA>());
            row.noise_topk = numpy_mean(noise.data(), top_k);
            const TA snr = row.signal / row.noise_topk;
            row.snr = std::isnan(static_cast<double>(snr)) ? TA(0) : snr;
        }
    }
    for (int t = 0; t < nt; ++t) err.merge(terr[t]);
}

}  // namespace acme::core
