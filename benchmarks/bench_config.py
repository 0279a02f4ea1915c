"""Benchmark sizes and rounds of the acme_fast benchmarks, from the environment.

Sizes (env vars override):
    full mode (default):   ATAC-sized, N = 4000, L = 2048 (float32 attr, NLC);
                           ground truth on synthetic data, N = 4000, L = 200.
    ACME_BENCH_SHORT=1:    N = 1000 (ground truth N = 1000), fewer rounds (CI: ~15 s on 2 cores).
                           N = 1000 keeps attr (32 MiB) at least as large as a typical L3, so
                           the floor stays memory-bound as in full mode.
    ACME_BENCH_N, ACME_BENCH_L, ACME_BENCH_GT_N, ACME_BENCH_GT_L: explicit sizes.
    ACME_BENCH_SEED:       data seed (default 0).
"""

import os

SHORT = os.environ.get("ACME_BENCH_SHORT", "0") not in ("", "0", "false", "no")
SEED = int(os.environ.get("ACME_BENCH_SEED", "0"))
N = int(os.environ.get("ACME_BENCH_N", 1000 if SHORT else 4000))
L = int(os.environ.get("ACME_BENCH_L", 2048))
GT_N = int(os.environ.get("ACME_BENCH_GT_N", 1000 if SHORT else 4000))
GT_L = int(os.environ.get("ACME_BENCH_GT_L", 200))

# benchmark.pedantic rounds per kind of callable (a warm-up round precedes floor/kernel rounds).
# The floor and the kernel get the same number of rounds: the ratios compare their minima, and on a
# noisy machine the minimum of fewer rounds comes out higher.
ROUNDS = (
    {"floor": 10, "kernel": 10, "numpy": 3}
    if SHORT
    else {"floor": 20, "kernel": 20, "numpy": 5}
)
WARMUP = {"floor": 1, "kernel": 1, "numpy": 0}
