"""Table 1 from one or more ``acme-fast reproduce --sweep`` runs (trials added by later runs).

    acme-fast reproduce --sweep --trials 1 --save-attributions --out sweep_t0
    acme-fast reproduce --sweep --trials 1 --start-trial 1 --strategies standard,mixup,... --out sweep_t1
    python benchmarks/sweep_table1.py sweep_t0 sweep_t1 --out sweep_all --figures docs/figures/sweep

Concatenates the runs' ``scores.csv`` (and links their attribution maps into ``OUT/attributions``),
writes ``OUT/scores.csv`` and ``OUT/summary.json`` (:func:`acme_fast.reproduce.summarise`; the runs'
settings, which must agree, are carried over; ``seconds`` is the models' training and scoring
time) and the figures, and prints the group means and the Spearman correlations beside the
paper's Table 1 as Markdown. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pandas as pd

PAPER = {"kattr_kld_paper": 0.78, "kmer_kld_paper": 0.40, "auroc": 0.28}
_SETTINGS = ("epochs", "width", "learning_rate", "n_sequences", "seed", "full")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="output folders of acme-fast reproduce --sweep")
    ap.add_argument("--out", required=True, help="folder for the merged table, summary and figures")
    ap.add_argument("--figures", default=None, help="also write the figures here (e.g. docs/figures/sweep)")
    a = ap.parse_args()

    from acme_fast.reproduce import MIN_GROUP_AUROC, figures, summarise

    tables, settings = [], None
    for run in a.runs:
        run = Path(run)
        tables.append(pd.read_csv(run / "scores.csv"))
        if not (run / "summary.json").exists():  # a run stopped early: its scores.csv is complete per model
            print(f"note: {run} has no summary.json (stopped early?); its settings are not checked")
            continue
        s = json.loads((run / "summary.json").read_text())
        mine = {k: s.get(k) for k in _SETTINGS}
        if settings is not None and mine != settings:
            raise SystemExit(f"{run}: settings {mine} differ from the first run's {settings}")
        settings = mine
    t = pd.concat(tables, ignore_index=True)
    seconds = float(t["seconds"].sum())  # training and scoring, per model (not dataset generation)
    if t["model"].duplicated().any():
        raise SystemExit(f"the same model appears twice: {sorted(t.loc[t['model'].duplicated(), 'model'])[:3]}")
    out = Path(a.out)
    (out / "attributions").mkdir(parents=True, exist_ok=True)
    for run in a.runs:
        for f in sorted((Path(run) / "attributions").glob("*.npy")):
            link = out / "attributions" / f.name
            if not link.exists():
                os.symlink(f.resolve(), link)
    t.to_csv(out / "scores.csv", index=False)
    summary = summarise(t)
    summary.update(sweep=True, runs=[str(r) for r in a.runs], seconds=seconds, **(settings or {}))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    figures(t, out)
    trained_only = t.groupby(["strategy", "batch_norm", "activation"])["auroc"].transform("mean") >= MIN_GROUP_AUROC
    if a.figures:
        figures(t, a.figures)
        figures(t[trained_only], Path(a.figures).with_name(Path(a.figures).name + "_trained"))

    keys = ["strategy", "batch_norm", "activation"]
    g = t.groupby(keys, sort=False)
    means = g[["auroc", "gt_snr", "gt_auroc", "kmer_kld_paper", "kattr_kld_paper", "kattr_kld_acme"]].mean()
    means["n"] = g.size()
    means["epochs"] = g["epochs_trained"].mean()
    print(f"{len(t)} models in {len(means)} groups, {seconds / 60:.0f} min of training and scoring in all\n")
    print("| strategy | BN | first layer | trials | test AUROC | GT SNR | GT AUROC | KLD k-mer | KLD k-attr (paper) "
          "| KLD k-attr (acme) | trained |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|")
    for (st, bn, act), r in means.iterrows():
        ok = "yes" if r["auroc"] >= MIN_GROUP_AUROC else "**no**"
        print(f"| {st} | {'yes' if bn else 'no'} | {act} | {int(r['n'])} | {r['auroc']:.3f} | {r['gt_snr']:.3f} | "
              f"{r['gt_auroc']:.3f} | {r['kmer_kld_paper']:.3f} | {r['kattr_kld_paper']:.3f} | "
              f"{r['kattr_kld_acme']:.3f} | {ok} |")
    cols = ["kattr_kld_paper", "kmer_kld_paper", "kattr_kld_acme", "auroc"]
    print("\n| Spearman with GT SNR | groups / models | KLD k-attr (paper) | KLD k-mer | KLD k-attr (acme) "
          "| test AUROC |")
    print("|---|--:|--:|--:|--:|--:|")
    print("| **paper, Table 1** (group means) | 26 / 327 | **0.78** | **0.40** | — | **0.28** |")
    rows = [
        (f"here: group means, the {summary['n_groups_trained']} groups that trained",
         f"{summary['n_groups_trained']} / {summary['n_models_trained']}", summary["group_mean_spearman_trained"]),
        ("here: group means, all groups", f"{summary['n_groups']} / {summary['n_models']}",
         summary["group_mean_spearman"]),
    ]
    for thr, d in summary["by_min_auroc"].items():
        rows.append((f"here: models with test AUROC >= {thr}", f"— / {d['n_models']}", d))
    rows.append(("here: all models", f"— / {summary['n_models']}", summary["overall"]))
    for name, n, d in rows:
        print(f"| {name} | {n} | " + " | ".join(f"{d.get(c, float('nan')):.2f}" for c in cols) + " |")
    if summary["failed_groups"]:
        print("\nGroups below mean test AUROC " f"{MIN_GROUP_AUROC:g}: " + "; ".join(
            f"{f['strategy']}/{'BN' if f['batch_norm'] else 'no BN'}/{f['activation']} ({f['auroc']:.3f})"
            for f in summary["failed_groups"]))


if __name__ == "__main__":
    main()
