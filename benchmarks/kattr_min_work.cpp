// The least work any k-attr kernel that follows SPEC must do per position, timed alone:
// read the float32 NLC attributions once, convert to double, centre the 4 channels (gauge
// correction) and take the 4-D norm's square root (the per-sequence total of norms that
// normalises the map), summed. No windows, projections, angles, selection or histogram.
//
//   g++ -O3 -march=native -fopenmp -ffp-contract=off -fno-math-errno \
//       benchmarks/kattr_min_work.cpp -o /tmp/kattr_min_work && /tmp/kattr_min_work [N L rounds]
//
// Prints the best time over the rounds for 1 and 2 threads (and more if given as a 4th
// argument), to set beside `kattr_kld(preset="acme")` at the same size: a kernel cannot be
// faster than this on the same machine. With AVX-512 (-march=native on such a CPU) the
// positions are deinterleaved with two permutes per 8, as the package's AVX-512 tier does;
// otherwise the compiler vectorises the plain loop.
#include <omp.h>

#include <chrono>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
    const long N = argc > 1 ? std::atol(argv[1]) : 4000, L = argc > 2 ? std::atol(argv[2]) : 2048;
    const int rounds = argc > 3 ? std::atoi(argv[3]) : 15, max_t = argc > 4 ? std::atoi(argv[4]) : 2;
    std::vector<float> a(static_cast<size_t>(N * L * 4));
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    for (int t = 1; t <= max_t; t *= 2) {
        double best = 1e30, check = 0;
        for (int r = 0; r < rounds; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            double total = 0;
#pragma omp parallel for num_threads(t) schedule(static) reduction(+ : total)
            for (long i = 0; i < N; ++i) {
                const float* p = a.data() + i * L * 4;
#if defined(__AVX512F__)
                const __m512i ix = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
                const __m512i iz = _mm512_add_epi32(ix, _mm512_set1_epi32(2));
                __m512d acc = _mm512_setzero_pd();
                for (long l = 0; l < L; l += 8) {  // L a multiple of 8
                    const __m512 v0 = _mm512_loadu_ps(p + 4 * l), v1 = _mm512_loadu_ps(p + 4 * l + 16);
                    const __m512 xy = _mm512_permutex2var_ps(v0, ix, v1), zw = _mm512_permutex2var_ps(v0, iz, v1);
                    __m512d x = _mm512_cvtps_pd(_mm512_castps512_ps256(xy));
                    __m512d y = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(xy), 1)));
                    __m512d z = _mm512_cvtps_pd(_mm512_castps512_ps256(zw));
                    __m512d w = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(zw), 1)));
                    const __m512d mu = _mm512_mul_pd(_mm512_add_pd(_mm512_add_pd(_mm512_add_pd(x, y), z), w),
                                                     _mm512_set1_pd(0.25));
                    x = _mm512_sub_pd(x, mu), y = _mm512_sub_pd(y, mu), z = _mm512_sub_pd(z, mu), w = _mm512_sub_pd(w, mu);
                    const __m512d s = _mm512_add_pd(
                        _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(x, x), _mm512_mul_pd(y, y)), _mm512_mul_pd(z, z)),
                        _mm512_mul_pd(w, w));
                    acc = _mm512_add_pd(acc, _mm512_sqrt_pd(s));
                }
                total += _mm512_reduce_add_pd(acc);
#else
                double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                for (long l = 0; l < L; l += 8)
#pragma omp simd
                    for (int j = 0; j < 8; ++j) {
                        const float* q = p + 4 * (l + j);
                        double x = q[0], y = q[1], z = q[2], w = q[3];
                        const double mu = (((x + y) + z) + w) / 4;
                        x -= mu, y -= mu, z -= mu, w -= mu;
                        acc[j] += std::sqrt(((x * x + y * y) + z * z) + w * w);
                    }
                for (double v : acc) total += v;
#endif
            }
            const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            best = dt < best ? dt : best;
            check += total;
        }
        std::printf("threads %d: %.2f ms (%.2f ns a position per thread)  [check %.6g]\n", t, best * 1e3,
                    best * 1e9 * t / static_cast<double>(N * L), check);
    }
    return 0;
}
