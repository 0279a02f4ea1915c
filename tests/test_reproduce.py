"""Reproduction on the shipped synthetic-task CNNs (acme_fast.reproduce)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from acme_fast.reproduce import spearman, summarise

SHIPPED = Path(__file__).resolve().parents[2] / "shared" / "models" / "synthetic_cnn"


def _hand_spearman(a, b):
    """Ranks by hand (average over ties), then Pearson."""
    def ranks(v):
        v = list(v)
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for t in range(i, j + 1):
                r[order[t]] = (i + j) / 2 + 1
            i = j + 1
        return r

    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return num / den


def test_spearman_matches_hand_computation():
    a = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    b = [2.0, 7.0, 1.0, 8.0, 2.0, 8.0, 1.0, 8.0]
    assert spearman(a, b) == pytest.approx(_hand_spearman(a, b), abs=1e-12)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 1, 1, 1]) != spearman([1, 2, 3, 4], [1, 1, 1, 1])  # NaN
    assert spearman([1, 2, np.nan, 4, 5], [2, 1, 3, 4, 6]) == pytest.approx(_hand_spearman([1, 2, 4, 5],
                                                                                         [2, 1, 4, 6]))


def test_summarise_synthetic_table():
    rng = np.random.default_rng(0)
    t = pd.DataFrame({"architecture": ["deep", "shallow"] * 6, "activation": ["relu"] * 6 + ["exponential"] * 6,
                      "gt_snr": rng.normal(size=12), "auroc": rng.random(12), "kmer_kld_paper": rng.random(12),
                      "kattr_kld_paper": rng.random(12), "gt_auroc": rng.random(12)})
    s = summarise(t)
    assert s["n_models"] == 12
    assert set(s["overall"]) == {"kmer_kld_paper", "kattr_kld_paper", "auroc"}
    assert s["overall"]["auroc"] == pytest.approx(_hand_spearman(t["gt_snr"], t["auroc"]))
    deep = t[t.architecture == "deep"]
    assert s["by_architecture"]["deep"]["kattr_kld_paper"] == pytest.approx(
        _hand_spearman(deep["gt_snr"], deep["kattr_kld_paper"]))
    assert len(s["group_means"]) == 4 and all(g["n"] == 3 for g in s["group_means"])
    json.dumps(s, default=float)


def test_score_shipped_four_models(tmp_path):  # about 12 s (TensorFlow, 4 models, n=2000): not marked slow
    pytest.importorskip("tensorflow")
    pytest.importorskip("pyjaspar")
    if not SHIPPED.is_dir():
        pytest.skip(f"shipped models not found at {SHIPPED}")
    from acme_fast.cli import main
    from acme_fast.reproduce import figures, score_shipped

    t = score_shipped(SHIPPED, n=2000, seed=0, limit=1, progress=False)
    assert t.shape[0] == 4
    cols = {"model", "architecture", "activation", "seed_index", "auroc", "aupr", "gt_snr", "gt_auroc",
            "gt_auprc", "kmer_kld_paper", "kattr_kld_paper", "kmer_kld_acme", "kattr_kld_acme"}
    assert cols <= set(t.columns)
    assert sorted(zip(t.architecture, t.activation)) == [("deep", "exponential"), ("deep", "relu"),
                                                         ("shallow", "exponential"), ("shallow", "relu")]
    assert (t.seed_index == 0).all()
    assert ((t.auroc > 0.5) & (t.auroc <= 1)).all()
    for c in ("kmer_kld_paper", "kattr_kld_paper", "kmer_kld_acme", "kattr_kld_acme", "gt_snr"):
        assert np.isfinite(t[c]).all(), c
    written = figures(t, tmp_path / "fig")
    assert len(written) == 6 and all(p.stat().st_size > 0 for p in written)

    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("x")
    assert main(["reproduce", "--models", str(SHIPPED), "--out", str(out), "--n", "2000", "--limit", "1",
                 "--quiet"]) == 2
    assert main(["reproduce", "--models", str(SHIPPED), "--out", str(out), "--n", "2000", "--limit", "1",
                 "--quiet", "--force"]) == 0
    again = pd.read_csv(out / "scores.csv")
    assert np.allclose(again["kattr_kld_paper"], t["kattr_kld_paper"])
    assert json.loads((out / "summary.json").read_text())["n_models"] == 4


def test_score_shipped_other_methods(tmp_path):  # Figure 5: SmoothGrad and integrated gradients
    pytest.importorskip("tensorflow")
    pytest.importorskip("pyjaspar")
    if not SHIPPED.is_dir():
        pytest.skip(f"shipped models not found at {SHIPPED}")
    from acme_fast.cli import main
    from acme_fast.reproduce import score_shipped

    sal = score_shipped(SHIPPED, n=1000, seed=0, limit=1, progress=False, presets=("paper",))
    sg = score_shipped(SHIPPED, n=1000, seed=0, limit=1, progress=False, presets=("paper",), method="smoothgrad",
                       method_kwargs={"n_samples": 3, "seed": 1})
    ig = score_shipped(SHIPPED, n=1000, seed=0, limit=1, progress=False, presets=("paper",), method="ig",
                       method_kwargs={"steps": 4})
    assert set(sg["method"]) == {"smoothgrad"} and set(ig["method"]) == {"ig"}
    for t in (sg, ig):
        assert np.isfinite(t[["kmer_kld_paper", "kattr_kld_paper", "gt_snr"]]).all().all()
        assert (t["kattr_kld_paper"] != sal["kattr_kld_paper"]).any()  # other maps, other numbers
        np.testing.assert_array_equal(t["auroc"], sal["auroc"])  # the same models
    assert main(["reproduce", "--models", str(SHIPPED), "--out", str(tmp_path / "o"), "--sweep", "--method", "ig",
                 "--quiet"]) == 2
    assert main(["reproduce", "--models", str(SHIPPED), "--out", str(tmp_path / "o2"), "--n-samples", "3",
                 "--quiet"]) == 2
