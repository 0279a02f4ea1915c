#!/usr/bin/env python
"""OpenMP thread scaling of the kernels, thread counts taking turns in one process.

    python benchmarks/thread_scaling.py                        # 1 thread and all cores
    python benchmarks/thread_scaling.py --threads 1 2 4 8 16 --rounds 15
    python benchmarks/thread_scaling.py --n 16000              # more work per thread on many cores

The data are the benchmarks' (``datagen.make_atac(N, L)`` for the k-mer and k-attr KLDs,
``datagen.make_synthetic(GT_N, GT_L)`` for the ground truth; sizes from ``--n`` etc. or
``bench_config``). Each round times every thread count once, in turn, after one untimed call per
count; the table reports the minimum over rounds and the speedup over the first thread count.
Taking turns means that a slow spell of a shared machine hits every thread count alike, which
separate benchmark runs do not (``test_bench.py`` times 1 and 2 threads minutes apart). The
results of every call are checked to be equal (==) to the first call's: the kernels give the
same bits for any thread count.

``--floor`` adds a row per metric: a t-thread read floor, numpy sums of t slices of the metric's
inputs in t Python threads (numpy releases the GIL), timed in the same rounds. Memory-bound
kernels cannot scale further than this read does.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_config as cfg  # noqa: E402
import datagen  # noqa: E402

import acme_fast as af  # noqa: E402


def _metrics(n: int, length: int, gt_n: int, gt_l: int) -> dict:
    atac = datagen.make_atac(n, length, seed=cfg.SEED)
    syn = datagen.make_synthetic(gt_n, gt_l, seed=cfg.SEED + 1)
    x, a = atac["x_u8"], atac["attr"]
    gx, ga, gm = syn["x_u8"], syn["attr"], syn["x_model"]
    # name: (kernel call with t threads, the arrays it reads: the floor's inputs)
    return {
        f"kmer_kld[x=uint8] ({n} x {length})": (lambda t: af.kmer_kld(x, a, n_threads=t).kld, (a, x)),
        f"kattr_kld paper ({n} x {length})": (lambda t: af.kattr_kld(a, preset="paper", n_threads=t).kld, (a,)),
        f"kattr_kld acme ({n} x {length})": (lambda t: af.kattr_kld(a, preset="acme", n_threads=t).kld, (a,)),
        f"groundtruth ({gt_n} x {gt_l})": (lambda t: tuple(
            np.asarray(v).tobytes() for v in (lambda r: (r.auroc, r.auprc, r.snr))(
                af.groundtruth_scores(gx, ga, gm, n_threads=t))), (ga, gx, gm)),
    }


def _floor(arrays: tuple, t: int, pool: ThreadPoolExecutor):
    """One read of `arrays` by t threads: numpy sums of t row slices each (as test_bench.py's floor)."""
    def part(i: int) -> None:
        for v in arrays:
            n = v.shape[0]
            v[i * n // t:(i + 1) * n // t].sum()

    return lambda: list(pool.map(part, range(t)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--threads", type=int, nargs="+", default=None,
                    help="thread counts (default: 1 and acme_fast.max_threads())")
    ap.add_argument("--rounds", type=int, default=12, help="timed rounds (default 12)")
    ap.add_argument("--n", type=int, default=cfg.N, help=f"sequences (default {cfg.N})")
    ap.add_argument("--length", type=int, default=cfg.L, help=f"length (default {cfg.L})")
    ap.add_argument("--gt-n", type=int, default=cfg.GT_N, help=f"ground-truth sequences (default {cfg.GT_N})")
    ap.add_argument("--gt-length", type=int, default=cfg.GT_L, help=f"ground-truth length (default {cfg.GT_L})")
    ap.add_argument("--floor", action="store_true", help="also time a t-thread read floor of each metric's inputs")
    a = ap.parse_args(argv)
    threads = a.threads or sorted({1, af.max_threads()})
    if any(t < 1 for t in threads) or a.rounds < 1:
        ap.error("--threads and --rounds: expected integers >= 1")
    print(f"acme_fast {af.__version__}, SIMD {af.simd_level()}, max_threads {af.max_threads()}; "
          f"threads {threads}, {a.rounds} rounds taking turns; ms, min over rounds\n")
    print("| metric | " + " | ".join(f"{t} thr" for t in threads) + " | "
          + " | ".join(f"{threads[0]}→{t}" for t in threads[1:]) + " |")
    print("|---|" + "--:|" * (2 * len(threads) - 1))
    pools = {t: ThreadPoolExecutor(t) for t in threads} if a.floor else {}
    try:
        for name, (fn, arrays) in _metrics(a.n, a.length, a.gt_n, a.gt_length).items():
            first = fn(threads[0])
            for t in threads:
                if fn(t) != first:  # untimed call per count; the same bits for any thread count
                    raise SystemExit(f"{name}: {t} threads gave a different result")
            rows = {name: {t: (lambda t=t, fn=fn: fn(t)) for t in threads}}
            if a.floor:
                rows[f"floor: read of the inputs, {sum(v.nbytes for v in arrays) / 1e6:.0f} MB"] = {
                    t: _floor(arrays, t, pools[t]) for t in threads}
                for f in rows[next(reversed(rows))].values():
                    f()  # untimed: the pool's threads started
            best = {r: {t: float("inf") for t in threads} for r in rows}
            for _ in range(a.rounds):
                for t in threads:
                    for r, calls in rows.items():
                        t0 = time.perf_counter()
                        calls[t]()
                        best[r][t] = min(best[r][t], time.perf_counter() - t0)
            for r in rows:
                base = best[r][threads[0]]
                print(f"| {r} | " + " | ".join(f"{1e3 * best[r][t]:.1f}" for t in threads) + " | "
                      + " | ".join(f"{base / best[r][t]:.2f}×" for t in threads[1:]) + " |", flush=True)
            if a.floor:
                print(f"| {name}: kernel / floor | "
                      + " | ".join(f"{best[name][t] / best[r][t]:.2f}" for t in threads) + " |"
                      + " |" * (len(threads) - 1), flush=True)
    finally:
        for p in pools.values():
            p.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
