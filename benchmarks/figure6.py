"""The paper's Figure 6 over the regularisation groups of an ``acme-fast reproduce --sweep`` run.

    acme-fast reproduce --sweep --save-attributions --out sweep
    python benchmarks/figure6.py sweep -o docs/figures/figure6_sweep.png --table sensitivity_sweep.csv

Reads the sweep's saliency maps (``sweep/attributions/*.npy``, the positive test sequences of the
sweep's dataset, regenerated from ``summary.json``'s ``n_sequences`` and ``seed``), keeps the groups
that trained (mean test AUROC >= ``MIN_GROUP_AUROC``, as the Table 1 comparison does), scores every
map over the grids of k, quantile and window with :func:`acme_fast.sensitivity` (each map read once)
and draws :func:`acme_fast.plot.plot_sensitivity` with one line per regularisation strategy and one
row of panels per (first-layer activation, batch norm). Prints the mean KLD per strategy at the
default setting. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", help="output folder of acme-fast reproduce --sweep --save-attributions")
    ap.add_argument("-o", "--output", required=True, help="PNG to write")
    ap.add_argument("--table", default=None, help="also write the tidy table (CSV)")
    ap.add_argument("--all-groups", action="store_true", help="keep the groups that did not train too")
    a = ap.parse_args()

    import acme_fast as af
    from acme_fast.plot import plot_sensitivity
    from acme_fast.reproduce import MIN_GROUP_AUROC
    from acme_fast.synthetic import make_dataset

    run = Path(a.sweep)
    scores = pd.read_csv(run / "scores.csv")
    summary = json.loads((run / "summary.json").read_text())
    keys = ["strategy", "batch_norm", "activation"]
    if not a.all_groups:
        ok = scores.groupby(keys)["auroc"].transform("mean") >= MIN_GROUP_AUROC
        scores = scores[ok]
    files = {m: run / "attributions" / f"{m}.npy" for m in scores["model"]}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise SystemExit(f"missing attribution files (run the sweep with --save-attributions): {missing[:3]}")
    data = make_dataset(n=int(summary["n_sequences"]), seed=int(summary["seed"]), progress=False)
    x_pos, _ = data.positives("test")
    t0 = time.perf_counter()
    table = af.sensitivity(files, x_pos)
    seconds = time.perf_counter() - t0
    meta = scores[["model"] + keys].rename(columns={"model": "set"})
    meta["first layer"] = meta["activation"] + ", " + meta["batch_norm"].map({True: "BN", False: "no BN"})
    table = table.merge(meta, on="set")
    if a.table:
        table.to_csv(a.table, index=False)
    plot_sensitivity(table, group="strategy", panel="first layer", save=a.output, overwrite=True,
                     title=f"Sensitivity of both KLDs to their hyperparameters: {scores['model'].nunique()} sweep "
                           f"models in {scores.groupby(keys).ngroups} trained groups")
    at_default = table[(table["k"].fillna(6) == 6) & (table["window"].fillna(3) == 3) & (table["quantile"] == 0.9)]
    print(f"{len(files)} maps x {table.groupby('set').size().iloc[0]} settings scored in {seconds:.1f} s")
    piv = at_default.pivot_table(index="strategy", columns=["metric", "first layer"], values="kld", aggfunc="mean")
    print("| strategy | " + " | ".join(f"{m} ({g})" for m, g in piv.columns) + " |")
    print("|---|" + "--:|" * len(piv.columns))
    for name, row in piv.iterrows():
        print(f"| {name} | " + " | ".join("—" if pd.isna(v) else f"{v:.3f}" for v in row) + " |")


if __name__ == "__main__":
    main()
