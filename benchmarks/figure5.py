"""The paper's Figure 5 from ``acme-fast reproduce`` runs with other attribution methods.

    M=../shared/models/synthetic_cnn
    acme-fast reproduce --models $M --limit 3 --out repro_sal
    acme-fast reproduce --models $M --limit 3 --method smoothgrad --n-samples 20 --out repro_sg
    acme-fast reproduce --models $M --limit 3 --method ig --out repro_ig
    python benchmarks/figure5.py repro_sal repro_sg repro_ig -o docs/figures/figure5.png

One row per method, one column per KLD (paper preset): ground-truth SNR against the KLD, one
point per model, coloured by model group, with the Spearman correlation in each title. Prints
the correlations as a Markdown table. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="output folders of acme-fast reproduce")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()

    import matplotlib.pyplot as plt

    from acme_fast import plot as P
    from acme_fast.reproduce import spearman

    tables = []
    for run in a.runs:
        t = pd.read_csv(Path(run) / "scores.csv")
        s = json.loads((Path(run) / "summary.json").read_text())
        t["method"] = s.get("method", "saliency")
        tables.append(t)
    cols = [("kmer_kld_paper", "k-mer KLD"), ("kattr_kld_paper", "k-attr-mean KLD"), ("auroc", "test AUROC")]
    groups = sorted({f"{r.architecture} {r.activation}" for t in tables for r in t.itertuples()})
    colour = {g: P.PALETTE[i % len(P.PALETTE)] for i, g in enumerate(groups)}
    print("| method | models | Spearman(SNR, k-mer KLD) | Spearman(SNR, k-attr-mean KLD) | Spearman(SNR, AUROC) |")
    print("|---|--:|--:|--:|--:|")
    with plt.rc_context(P.HOUSE_STYLE):
        fig, axes = plt.subplots(len(tables), len(cols), figsize=(3.4 * len(cols), 2.9 * len(tables)), squeeze=False)
        for r, t in enumerate(tables):
            method = t["method"].iloc[0]
            rhos = []
            for c, (col, label) in enumerate(cols):
                ax = axes[r, c]
                for g in groups:
                    sel = (t["architecture"] + " " + t["activation"]) == g
                    ax.scatter(t.loc[sel, col], t.loc[sel, "gt_snr"], s=22, color=colour[g], label=g, zorder=3)
                rho = spearman(t[col], t["gt_snr"])
                rhos.append(rho)
                ax.set_xlabel(label)
                ax.set_ylabel(f"{method}\nground-truth SNR" if c == 0 else "ground-truth SNR")
                ax.set_title(f"{label}: Spearman {rho:.2f}", fontsize=9)
            print(f"| {method} | {len(t)} | {rhos[0]:.2f} | {rhos[1]:.2f} | {rhos[2]:.2f} |")
        h, lab = axes[0, 0].get_legend_handles_labels()
        fig.legend(h, lab, loc="lower center", ncol=len(lab), frameon=False, title="model group",
                   bbox_to_anchor=(0.5, -0.01))
        n = len(tables[0])
        fig.suptitle(f"Attribution quality (ground-truth SNR) against the metrics, per attribution method "
                     f"({n} shipped models each)", fontsize=10)
        fig.tight_layout(rect=(0, 0.07, 1, 0.96))
        fig.savefig(a.output, dpi=150, bbox_inches="tight")


if __name__ == "__main__":
    main()
