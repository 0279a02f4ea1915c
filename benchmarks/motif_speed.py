"""Motif discovery on ATAC-sized data: N = 4000 x L = 2048, beside the two metrics on the same data.

    python benchmarks/motif_speed.py [--n 4000] [--length 2048] [--repeats 3] [--json out.json]

Data: ``benchmarks/datagen.make_atac`` (20 random 10-mers planted 6 times per sequence, the
attribution a grad-x-input-like bump on them plus noise), float32, NLC. Timed, best of
``--repeats`` rounds (the contenders take turns in every round):

* ``metrics``: ``kmer_kld`` + ``kattr_kld`` (the baseline: what scoring costs);
* ``find_motifs``: both passes, both methods;
* ``match``: Tomtom (memelite) of the motifs against all of JASPAR 2024 CORE vertebrates
  (879 matrices), after one warm-up call that compiles memelite's numba code.

It also reports how many of the 20 planted 10-mers the motifs recover (a motif whose
consensus holds at least 8 of the 10 bases at some shift, either strand).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--length", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    from datagen import make_atac

    import acme_fast as af
    from acme_fast import motifs as M

    d = make_atac(a.n, a.length, seed=0)
    x, attr = d["x_u8"], d["attr"]
    rng = np.random.default_rng(0)  # the same planted 10-mers as make_atac draws them
    rng.choice(4, size=(a.n, a.length), p=[0.3, 0.2, 0.2, 0.3])
    planted = ["".join("ACGT"[c] for c in row) for row in rng.integers(0, 4, size=(20, 10), dtype=np.int8)]
    db = M.jaspar_motifs()
    res = M.find_motifs(x, attr)
    M.match_motifs(res, db)  # warm-up: numba compiles memelite's Tomtom once (cached on disk)

    times: dict = {"metrics": [], "find_motifs": [], "match": []}
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        af.kmer_kld(x, attr)
        af.kattr_kld(attr)
        times["metrics"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        res = M.find_motifs(x, attr)
        times["find_motifs"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        M.match_motifs(res, db)
        times["match"].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}

    def hits(cons: str, target: str) -> bool:
        cons = cons.upper()
        rc = "".join("TGCA"["ACGT".index(c)] for c in reversed(target))
        for t in (target, rc):
            for d_ in range(-len(cons) + 6, len(t) - 5):
                same = sum(1 for i, c in enumerate(cons) if 0 <= i + d_ < len(t) and t[i + d_] == c)
                if same >= 8:
                    return True
        return False

    found = sum(any(hits(m.consensus, p) for m in res) for p in planted)
    total = best["find_motifs"] + best["match"]
    print(f"N x L = {a.n} x {a.length}, {os.cpu_count()} CPUs, SIMD {af.simd_level()}")
    print(f"metrics (kmer_kld + kattr_kld): {best['metrics']:.2f} s")
    print(f"find_motifs (both methods, two passes): {best['find_motifs']:.2f} s "
          f"({best['find_motifs'] / best['metrics']:.1f}x the metrics)")
    print(f"Tomtom against JASPAR 2024 CORE vertebrates ({len(db)} matrices): {best['match']:.2f} s")
    print(f"total {total:.2f} s; {len(res)} motifs; {found} of {len(planted)} planted 10-mers recovered")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"n": a.n, "length": a.length, "best_s": best, "times_s": times, "n_motifs": len(res),
                       "planted_recovered": found, "cpus": os.cpu_count(), "simd": af.simd_level(),
                       "python": platform.python_version()}, f, indent=2)


if __name__ == "__main__":
    main()
