// The quickselect that every vector tier's select_pair runs (avx2.hpp,
// avx512.hpp, neon.hpp): one copy of the pivot choice, the narrowing and the
// finish; each tier supplies only its vector loops.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

namespace acme::core {

// The k-th and (k+1)-th smallest of v[0 .. m) (0 <= k < m; b = a when
// k + 1 == m), v unmodified, no NaN. Quickselect with three-way partitions,
// ping-ponging between the scratch buffers t1 and t2 (room for m each);
// std::nth_element finishes small (or stubborn) ranges. Order statistics are
// values, so the answer is std::nth_element's.
//
// The tier's loops, each doing a prefix and returning its length (this
// function finishes the rest):
// - partition(src, n, piv, dst, lt, gt): values of src below piv to the front
//   of dst (dst[lt++]), values above it to the back (dst[n - ++gt]);
// - count_le(v, m, a, le, mins): le += #(values <= a), mins = min(mins, values > a).
template <class Partition, class CountLe>
inline void select_pair_with(const double* v, std::int64_t m, std::int64_t k, double* t1, double* t2, double& a,
                             double& b, Partition&& partition, CountLe&& count_le) {
    const double* src = v;
    std::int64_t n = m, kk = k;
    double* bufs[2] = {t1, t2};
    int wi = 0, rounds = 0;
    bool found = false;
    while (n > 32 && rounds++ < 64) {
        double* dst = bufs[wi];  // src is v or lies in the other buffer
        double p0 = src[0], p1 = src[n / 2], p2 = src[n - 1];  // pivot: median of three
        if (p0 > p1) std::swap(p0, p1);
        if (p1 > p2) std::swap(p1, p2);
        if (p0 > p1) std::swap(p0, p1);
        const double piv = p1;
        std::int64_t lt = 0, gt = 0;
        for (std::int64_t j = partition(src, n, piv, dst, lt, gt); j < n; ++j) {
            const double x = src[j];
            if (x < piv) dst[lt++] = x;
            else if (x > piv) dst[n - ++gt] = x;
        }
        const std::int64_t eq = n - lt - gt;
        if (kk < lt) {
            src = dst;
            n = lt;
        } else if (kk < lt + eq) {
            a = piv;
            found = true;
            break;
        } else {
            kk -= lt + eq;
            src = dst + (n - gt);
            n = gt;
        }
        wi ^= 1;
    }
    if (!found) {
        double* dst = bufs[wi];
        if (src != dst) std::memmove(dst, src, sizeof(double) * static_cast<size_t>(n));
        std::nth_element(dst, dst + kk, dst + n);
        a = dst[kk];
    }
    if (k + 1 >= m) {
        b = a;
        return;
    }
    // b: a again if at least k + 2 values are <= a, else the smallest value above a.
    std::int64_t le = 0;
    double mins = std::numeric_limits<double>::infinity();
    for (std::int64_t i = count_le(v, m, a, le, mins); i < m; ++i) {
        if (v[i] <= a) ++le;
        else mins = std::min(mins, v[i]);
    }
    b = le >= k + 2 ? a : mins;
}

}  // namespace acme::core
