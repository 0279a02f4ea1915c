#!/usr/bin/env python
"""Two builds of acme_fast side by side: kernel times at N = 4000, L = 2048, one build per process.

Build each version into its own folder, then let the processes take turns, so that a slow spell
of a shared machine hits both alike::

    pip install --no-build-isolation --no-deps --target /tmp/old <checkout of the old commit>
    pip install --no-build-isolation --no-deps --target /tmp/new .
    python benchmarks/build_ab.py data /tmp/ab.npz              # the benchmarks' data, once
    for rep in 1 2 3; do for v in old new; do
        PYTHONPATH=/tmp/$v python -P benchmarks/build_ab.py time /tmp/ab.npz $v --rounds 15
    done; done > /tmp/ab.jsonl
    python benchmarks/build_ab.py summary /tmp/ab.jsonl

(``python -P`` keeps the current folder, and so the source tree's ``acme_fast``, off ``sys.path``;
an editable install of the package in the same environment takes precedence over PYTHONPATH, so
use an environment without one.) ``time`` prints one JSON line: the one-pass floors, each metric's
min over rounds with 1 and 2 threads, and its value (``repr``), so that the summary can say
whether the builds agree. ``ACME_FAST_SIMD`` forces a lower tier as usual.

``compat`` times the drop-in method-2 pipeline the same way (``process_attribution_map`` ->
``spherical_coordinates_process_2_trad`` with the scalar 1 and with the published notebooks' mask
-> ``calculate_entropy_2``) beside ``kattr_kld(preset="acme")``, 2 threads::

    for rep in 1 2 3 4; do for v in old new; do
        PYTHONPATH=/tmp/$v python -P benchmarks/build_ab.py compat /tmp/ab.npz $v --rounds 7
    done; done > /tmp/ab_compat.jsonl
    python benchmarks/build_ab.py summary /tmp/ab_compat.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

_FLOOR_OF = {"kmer_u8": "kmer_u8", "kmer_f32": "kmer_f32", "kattr_paper": "kattr", "kattr_acme": "kattr",
             "gt": "gt"}


def _data(path: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_config as cfg
    import datagen

    d = datagen.make_atac(4000, 2048, seed=cfg.SEED)
    s = datagen.make_synthetic(4000, 200, seed=cfg.SEED + 1)
    np.savez(path, x_u8=d["x_u8"], x_f32=d["x_f32"], attr=d["attr"], gx=s["x_u8"], ga=s["attr"], gm=s["x_model"])


def _tmin(f, rounds: int) -> float:
    """The best of `rounds` calls of f after one warm-up call, in ms."""
    f()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best


def _time(path: str, label: str, rounds: int) -> None:
    import acme_fast as af

    d = dict(np.load(path))
    x8, xf, a, gx, ga, gm = (d[k] for k in ("x_u8", "x_f32", "attr", "gx", "ga", "gm"))

    def gt(t):
        r = af.groundtruth_scores(gx, ga, gm, n_threads=t)
        return [float(np.nansum(np.asarray(v, dtype=np.float64))) for v in (r.auroc, r.auprc, r.snr)]

    fns = {
        "kmer_u8": lambda t: af.kmer_kld(x8, a, n_threads=t).kld,
        "kmer_f32": lambda t: af.kmer_kld(xf, a, n_threads=t).kld,
        "kattr_paper": lambda t: af.kattr_kld(a, preset="paper", n_threads=t).kld,
        "kattr_acme": lambda t: af.kattr_kld(a, preset="acme", n_threads=t).kld,
        "gt": gt,
    }
    out = {"label": label, "simd": af.simd_level(), "max_threads": af.max_threads(),
           "floor": {"kmer_u8": _tmin(lambda: (a.sum(), x8.sum()), rounds),
                     "kmer_f32": _tmin(lambda: (a.sum(), xf.sum()), rounds),
                     "kattr": _tmin(lambda: a.sum(), rounds),
                     "gt": _tmin(lambda: (ga.sum(), gx.sum(), gm.sum()), rounds)},
           "value": {k: repr(f(2)) for k, f in fns.items()}}
    for t in (1, 2):
        out[f"{t}t"] = {k: _tmin(lambda f=f, t=t: f(t), rounds) for k, f in fns.items()}
    print(json.dumps(out), flush=True)


def _compat(path: str, label: str, rounds: int) -> None:
    import acme_fast as af
    from acme_fast import compat as C

    d = dict(np.load(path))
    x, a = d["x_f32"], d["attr"]
    notebook_mask = np.sum(np.ones(x.shape), axis=-1) / 4  # as the published notebooks build it

    def pipeline(mask):
        maps = C.process_attribution_map(a, k=3)
        p1, p2, r = C.spherical_coordinates_process_2_trad([maps], x, mask, radius_count_cutoff=0.1)
        _, bl, bv, nb, _ = C.initialize_integration_2(0.1)
        return C.calculate_entropy_2(p1, p2, r, nb, bl, bv, 3)[0]

    out = {"label": label, "simd": af.simd_level(), "compat": {
        "kernel": _tmin(lambda: af.kattr_kld(a, window=3, quantile=0.9, preset="acme", n_threads=2), rounds),
        "process_attribution_map": _tmin(lambda: C.process_attribution_map(a, k=3), rounds),
        "pipeline_mask_1": _tmin(lambda: pipeline(1), rounds),
        "pipeline_notebook_mask": _tmin(lambda: pipeline(notebook_mask), rounds)},
        "value": repr(float(pipeline(1)))}
    print(json.dumps(out), flush=True)


def _compat_summary(rows: list[dict]) -> None:
    labels = list(dict.fromkeys(r["label"] for r in rows))
    print("same values in every build:", len({r["value"] for r in rows}) == 1)
    print("range over processes, ms (2 threads)\n")
    keys = list(rows[0]["compat"])
    print("| build | tier | " + " | ".join(keys) + " | pipeline / kernel |")
    print("|---|---|" + "--:|" * (len(keys) + 1))
    for lab in labels:
        rr = [r for r in rows if r["label"] == lab]
        cells = [f"{min(r['compat'][k] for r in rr):.1f}-{max(r['compat'][k] for r in rr):.1f}" for k in keys]
        ratio = [r["compat"][k] / r["compat"]["kernel"] for r in rr for k in keys if k.startswith("pipeline")]
        print(f"| {lab} | {rr[0]['simd']} | " + " | ".join(cells) + f" | {min(ratio):.2f}-{max(ratio):.2f} |")


def _summary(path: str) -> None:
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    if rows and "compat" in rows[0]:
        _compat_summary(rows)
        return
    labels = list(dict.fromkeys(r["label"] for r in rows))
    values = {lab: next(r["value"] for r in rows if r["label"] == lab) for lab in labels}
    print("tiers:", {lab: next(r["simd"] for r in rows if r["label"] == lab) for lab in labels})
    print("same values in every build:", all(len({values[lab][m] for lab in labels}) == 1 for m in _FLOOR_OF))
    print("min over processes, ms\n")
    print("| metric | " + " | ".join(f"{lab} floor | {lab} 1t | {lab} 2t | {lab} 2t/floor" for lab in labels) + " |")
    print("|---|" + "--:|" * (4 * len(labels)))
    for m, f in _FLOOR_OF.items():
        cells = []
        for lab in labels:
            rr = [r for r in rows if r["label"] == lab]
            fl, t1, t2 = (min(r[k][m if k != "floor" else f] for r in rr) for k in ("floor", "1t", "2t"))
            cells.append(f"{fl:.2f} | {t1:.1f} | {t2:.1f} | {t2 / fl:.2f}")
        print(f"| {m} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("data", help="write the benchmarks' data to an .npz file")
    p.add_argument("path")
    p = sub.add_parser("time", help="time the build that `import acme_fast` finds; one JSON line")
    p.add_argument("path")
    p.add_argument("label")
    p.add_argument("--rounds", type=int, default=15)
    p = sub.add_parser("compat", help="time compat's method-2 pipeline and its kernel; one JSON line")
    p.add_argument("path")
    p.add_argument("label")
    p.add_argument("--rounds", type=int, default=7)
    p = sub.add_parser("summary", help="table of the JSON lines of several processes")
    p.add_argument("path")
    a = ap.parse_args(argv)
    if a.cmd == "data":
        _data(a.path)
    elif a.cmd == "time":
        _time(a.path, a.label, a.rounds)
    elif a.cmd == "compat":
        _compat(a.path, a.label, a.rounds)
    else:
        _summary(a.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
