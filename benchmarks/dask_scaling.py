#!/usr/bin/env python
"""Scaling of ``acme_fast.dask.score_files`` from 1 to 2 Dask workers (processes, one thread each).

    python benchmarks/dask_scaling.py                  # 4 files of 256 MiB, presets paper and acme
    python benchmarks/dask_scaling.py --files 8 --mb 256 --workers 1 2 --repeats 3

Writes ``--files`` float32 NLC attribution .npy files of ``--mb`` MiB each (L = 2048, N(0, 1),
different seeds) and one shared uint8 one-hot .npy into a temporary directory (deleted
afterwards). For each worker count w it starts
``distributed.LocalCluster(n_workers=w, threads_per_worker=1, processes=True)``, runs
``score_files(files, seqs, client=client, metrics=("kmer", "kattr"), preset=P, n_threads=1)``
once untimed (worker imports, page cache), then ``--repeats`` timed calls, and reports the
minimum, positions/s and the speedup over w = 1. Cluster start-up is not timed. Reference
rows: ``score_stream`` of the files one after another in this process, n_threads = 1 and all.
The results of every run are checked to be equal (==) to the first.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import genome_scale as gs  # noqa: E402

METRICS = ("kmer", "kattr")


def _key(rows):
    return [(r["kmer_kld"], r["kattr_kld"]) for r in rows]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--files", type=int, default=4, help="attribution files (default 4)")
    ap.add_argument("--mb", type=float, default=256, help="MiB per attribution file (default 256)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    ap.add_argument("--presets", nargs="+", default=["paper", "acme"], choices=["paper", "acme"])
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per setting (default 3)")
    ap.add_argument("--dir", default=None, help="where to write the files (default: $TMPDIR or /tmp)")
    args = ap.parse_args(argv)

    import distributed

    import acme_fast
    from acme_fast.dask import score_files
    from acme_fast.stream import score_stream

    n = gs.n_for_bytes(args.mb * 2**20)
    positions = args.files * n * gs.L_DEFAULT
    res: dict = {}
    want: dict = {}
    with tempfile.TemporaryDirectory(prefix="acme_dask_", dir=args.dir) as d:
        paths = []
        seqs = None
        for i in range(args.files):
            a, x = gs.write_inputs(d, n, seed=i, with_x=(i == 0), attr_name=f"attr{i}.npy")
            paths.append(str(a))
            seqs = str(x) if x is not None else seqs
        print(f"{args.files} files of N = {n} × L = {gs.L_DEFAULT} float32 ({os.path.getsize(paths[0]) / 2**20:.0f} MiB"
              f" each) + x {os.path.getsize(seqs) / 2**20:.0f} MiB uint8; metrics {'+'.join(METRICS)}; "
              f"{os.cpu_count()} cpus", flush=True)

        for preset in args.presets:
            def seq(nt, preset=preset):
                return [score_stream(p, seqs, metrics=METRICS, preset=preset, progress=False, n_threads=nt)
                        for p in paths]
            for nt in (1, None):
                seq(nt)
                ts = [gs.timed(lambda nt=nt: seq(nt)) for _ in range(args.repeats)]
                label = f"score_stream in one process, n_threads={nt or acme_fast.max_threads()}"
                res[(preset, label)] = min(ts)
                out = seq(nt)
                want.setdefault(preset, [(r["kmer"].kld, r["kattr"].kld) for r in out])
                print(f"  {preset}: {label}: {min(ts):.2f} s", flush=True)

        for w in args.workers:
            t0 = time.perf_counter()
            with distributed.LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None,
                                          silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
                print(f"  LocalCluster with {w} worker(s) started in {time.perf_counter() - t0:.1f} s", flush=True)
                for preset in args.presets:
                    def run(preset=preset):
                        return score_files(paths, seqs, client=client, metrics=METRICS, preset=preset, n_threads=1)
                    rows = run()
                    assert _key(rows) == want[preset], (preset, w, _key(rows), want[preset])
                    ts = []
                    for _ in range(args.repeats):
                        t = time.perf_counter()
                        rows = run()
                        ts.append(time.perf_counter() - t)
                        assert _key(rows) == want[preset]
                    res[(preset, f"score_files, {w} worker(s) × 1 thread")] = min(ts)
                    print(f"  {preset}: {w} worker(s): {min(ts):.2f} s", flush=True)

    print(f"\n{args.files} files × {n} × {gs.L_DEFAULT} = {positions / 1e6:.0f} M positions per call; "
          f"min of {args.repeats} calls; all results identical (==)\n")
    print("| preset | run | time s | M positions/s | speedup over 1 worker |")
    print("|---|---|--:|--:|--:|")
    for preset in args.presets:
        base = res.get((preset, "score_files, 1 worker(s) × 1 thread"))
        for (p, label), t in res.items():
            if p != preset:
                continue
            sp = "—" if base is None else f"{base / t:.2f}"
            print(f"| {preset} | {label} | {t:.2f} | {positions / t / 1e6:.1f} | {sp} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
