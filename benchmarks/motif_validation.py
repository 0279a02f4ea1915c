"""Do the discovered motifs recover the planted ones? The shipped models on the synthetic benchmark.

    python benchmarks/motif_validation.py [--models-dir ../shared/models/synthetic_cnn] [--per-group 5]
                                          [--modisco-per-group 1] [--json out.json]

For each model group of the 200 shipped models (deep/shallow x exponential/ReLU first layer),
``--per-group`` models: saliency maps of the positive test sequences of the synthetic benchmark
(``make_dataset(20000, seed=0)``), ``acme_fast.find_motifs`` on them, and Tomtom (memelite)
of every motif against the dataset's own motif pool: the 5 planted core PWMs (SP1, Gabpa,
CEBPB, MAX, YY1; JASPAR 2016) and the 50 background PWMs as decoys (Tomtom's p-values need a
background of targets). A core motif is recovered when some discovered motif's best match is it
with q < 0.05. Recall = recovered / 5; "other" counts motifs whose best match is no core motif.

tfmodisco-lite (the ``modisco-lite`` package) runs on the same attributions for
``--modisco-per-group`` models per group: its patterns, trimmed as its own report trims them
(columns with at least 0.3 of the peak column's |contribution|), are matched the same way, and
the table gives both recalls, their agreement (core motifs found by both / by either) and both times.
The file name does not start with ``test_``, so ``pytest benchmarks`` does not collect it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

GROUPS = (("deep", "exponential"), ("deep", "relu"), ("shallow", "exponential"), ("shallow", "relu"))


def recovered(pwms: list, db: dict, max_q: float = 0.05) -> tuple[set, int]:
    """Core motifs that are some query PWM's (W, 4) best match at q < max_q; queries matched elsewhere."""
    from acme_fast.motifs import Motif, MotifResult, match_motifs

    if not pwms:
        return set(), 0
    res = MotifResult([Motif(f"q{i}", ("kmer",), p, p, 1, np.zeros(0), 0.0) for i, p in enumerate(pwms)], 0, {})
    match_motifs(res, db, top=1, max_q=max_q)
    found, other = set(), 0
    for m in res:
        best = m.matches[0]["id"] if m.matches else None
        if best is not None and best.startswith("core:"):
            found.add(best[5:])
        else:
            other += 1
    return found, other


def _trimmed(pattern) -> np.ndarray:
    """A modisco pattern's PPM trimmed as modisco-lite's report does before Tomtom: the span of
    columns whose summed |contribution| reaches 0.3 of the peak column's."""
    ppm = np.asarray(pattern.sequence, dtype=np.float64)
    score = np.abs(np.asarray(pattern.contrib_scores)).sum(axis=1)
    keep = np.flatnonzero(score >= 0.3 * score.max())
    return ppm[keep[0]:keep[-1] + 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parents[2] / "shared/models/synthetic_cnn"))
    ap.add_argument("--per-group", type=int, default=5)
    ap.add_argument("--modisco-per-group", type=int, default=1)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    import acme_fast as af
    from acme_fast.attribution import saliency
    from acme_fast.motifs import find_motifs
    from acme_fast.synthetic import CORE_MOTIFS, load_jaspar_pwms, make_dataset
    from acme_fast.zoo import load_shipped_model

    data = make_dataset(n=a.n, seed=0, progress=False)
    x_pos, _ = data.positives("test")
    x_pos = np.asarray(x_pos, dtype=np.float32)
    jaspar = load_jaspar_pwms(data.params.get("jaspar_release", "JASPAR2016"))
    db = {f"core:{n}": jaspar[n] for n in CORE_MOTIFS}
    db.update({f"bg:{n}": jaspar[n] for n in data.params["background_motifs"]})
    print(f"{x_pos.shape[0]} positive test sequences; database: {len(CORE_MOTIFS)} core + "
          f"{len(db) - len(CORE_MOTIFS)} background PWMs")
    rows = []
    for arch, act in GROUPS:
        for i in range(a.per_group):
            path = Path(a.models_dir) / f"cnn_{arch}_{act}_{i}.h5"
            if not path.exists():
                continue
            attr = saliency(load_shipped_model(path), x_pos)
            t0 = time.perf_counter()
            res = find_motifs(x_pos, attr)
            t_find = time.perf_counter() - t0
            found, other = recovered([m.pwm for m in res], db)
            row = {"model": path.stem, "group": f"{arch} {act}", "n_motifs": len(res),
                   "recall": len(found) / len(CORE_MOTIFS), "found": sorted(found), "other": other,
                   "seconds_acme": t_find}
            if i < a.modisco_per_group:
                from modiscolite.tfmodisco import TFMoDISco

                t0 = time.perf_counter()
                pos, neg = TFMoDISco(one_hot=x_pos, hypothetical_contribs=attr, max_seqlets_per_metacluster=2000,
                                     sliding_window_size=15, flank_size=5, target_seqlet_fdr=0.05,
                                     n_leiden_runs=2)
                row["seconds_modisco"] = time.perf_counter() - t0
                pats = [_trimmed(p) for p in (pos or []) + (neg or [])]
                mfound, mother = recovered(pats, db)
                row.update(modisco_patterns=len(pats), modisco_recall=len(mfound) / len(CORE_MOTIFS),
                           modisco_found=sorted(mfound), modisco_other=mother,
                           agreement=(len(found & mfound) / len(found | mfound)) if (found | mfound) else 1.0)
            rows.append(row)
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    groups = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    print("\n| group | models | recall (acme_fast) | motifs | other | seconds | modisco recall | agreement | "
          "modisco seconds |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    summary = {}
    for g, rs in groups.items():
        mr = [r for r in rs if "modisco_recall" in r]
        s = {"models": len(rs), "recall": float(np.mean([r["recall"] for r in rs])),
             "n_motifs": float(np.mean([r["n_motifs"] for r in rs])), "other": float(np.mean([r["other"] for r in rs])),
             "seconds": float(np.mean([r["seconds_acme"] for r in rs]))}
        if mr:
            s.update(modisco_recall=float(np.mean([r["modisco_recall"] for r in mr])),
                     agreement=float(np.mean([r["agreement"] for r in mr])),
                     modisco_seconds=float(np.mean([r["seconds_modisco"] for r in mr])), modisco_models=len(mr))
        summary[g] = s
        print(f"| {g} | {s['models']} | {s['recall']:.2f} | {s['n_motifs']:.1f} | {s['other']:.1f} | "
              f"{s['seconds']:.2f} | {s.get('modisco_recall', float('nan')):.2f} | "
              f"{s.get('agreement', float('nan')):.2f} | {s.get('modisco_seconds', float('nan')):.1f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "summary": summary, "n_positives": int(x_pos.shape[0]),
                       "acme_fast": af.__version__, "python": platform.python_version(), "cpus": os.cpu_count()},
                      f, indent=2)


if __name__ == "__main__":
    main()
