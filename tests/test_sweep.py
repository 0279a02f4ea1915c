"""Regulariser sweep (acme_fast.reproduce.sweep_groups / run_sweep)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from acme_fast.reproduce import sweep_groups


def test_sweep_groups_size_and_uniqueness():
    from acme_fast.zoo import STRATEGIES

    g = sweep_groups()
    assert len(g) == 28 and len(set(g)) == 28
    assert {s for s, _, _ in g} == set(STRATEGIES)
    assert {bn for _, bn, _ in g} == {True, False}
    assert {a for _, _, a in g} == {"relu", "exponential"}


def test_run_sweep_two_groups_tiny(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("pyjaspar")
    from acme_fast.reproduce import figures, run_sweep, summarise
    from acme_fast.synthetic import make_dataset

    data = make_dataset(n=600, length=200, seed=0, progress=False)
    groups = [("standard", True, "exponential"), ("input_noise", False, "relu")]
    t = run_sweep(data, groups=groups, trials=1, epochs=1, burn_in=1, width=0.25, seed=0, progress=False,
                  out_dir=tmp_path, save_attributions=True)
    assert len(t) == 2
    assert list(t["model"]) == ["standard_bn_exponential_0", "input_noise_nobn_relu_0"]
    x_pos, _ = data.positives("test")
    for name in t["model"]:  # the saliency maps of the positive test sequences, for acme_fast.sensitivity
        a = np.load(tmp_path / "attributions" / f"{name}.npy")
        assert a.shape == x_pos.shape and a.dtype == np.float32 and np.isfinite(a).all()
    cols = {"strategy", "batch_norm", "activation", "trial", "epochs_trained", "auroc", "aupr", "gt_snr", "gt_auroc",
            "gt_auprc", "kmer_kld_paper", "kattr_kld_paper", "kmer_kld_acme", "kattr_kld_acme"}
    assert cols <= set(t.columns)
    assert list(zip(t.strategy, t.batch_norm, t.activation)) == groups
    assert (t.trial == 0).all() and (t.epochs_trained == 2).all()  # 1 burn-in epoch + 1
    num = t[sorted(cols - {"strategy", "batch_norm", "activation"})].to_numpy(dtype=float)
    assert np.isfinite(num).all()
    assert (tmp_path / "scores.csv").is_file()
    s = summarise(t)
    assert s["n_models"] == 2 and len(s["group_means"]) == 2
    # after 2 epochs on 600 sequences no group reaches a mean test AUROC of 0.95: reported, excluded
    assert s["n_groups"] == 2 and s["min_group_auroc"] == 0.95
    failed = {(g["strategy"], g["batch_norm"], g["activation"]) for g in s["failed_groups"]}
    trained = {g for g in groups if t[(t.strategy == g[0]) & (t.batch_norm == g[1])]["auroc"].mean() >= 0.95}
    assert failed == set(groups) - trained and s["n_groups_trained"] == len(trained)
    with pytest.raises(ValueError, match="save_attributions"):
        run_sweep(data, groups=groups[:1], epochs=1, save_attributions=True)
    # a later run adds trials: numbered from start_trial, seeded seed + trial
    t1 = run_sweep(data, groups=groups[:1], trials=1, start_trial=1, epochs=1, burn_in=0, width=0.25, seed=0,
                   progress=False)
    assert list(t1["model"]) == ["standard_bn_exponential_1"] and list(t1["trial"]) == [1]
    json.dumps(s, default=float)
    assert figures(t, tmp_path)


@pytest.mark.parametrize("argv", [
    ["reproduce", "--out", "OUT"],                                   # no --models, no --sweep
    ["reproduce", "--sweep", "--limit", "2", "--out", "OUT"],        # --limit is for shipped models
    ["reproduce", "--sweep", "--epochs", "0", "--out", "OUT"],
    ["reproduce", "--models", "M", "--epochs", "3", "--out", "OUT"],  # sweep option without --sweep
    ["reproduce", "--sweep", "--strategies", "standard,dropout", "--out", "OUT"],
    ["reproduce", "--sweep", "--strategies", ",", "--out", "OUT"],
    ["reproduce", "--sweep", "--start-trial", "-1", "--out", "OUT"],
    ["reproduce", "--models", "M", "--strategies", "mixup", "--out", "OUT"],
    ["reproduce", "--models", "M", "--save-attributions", "--out", "OUT"],
])
def test_cli_reproduce_sweep_argument_errors(argv, tmp_path, capsys):
    from acme_fast.cli import main

    argv = [str(tmp_path / a) if a in ("OUT", "M") else a for a in argv]
    (tmp_path / "M").mkdir()
    assert main(argv) == 2
    assert not (tmp_path / "OUT").exists()


def test_summarise_excludes_groups_that_did_not_train():
    import pandas as pd

    from acme_fast.reproduce import MIN_GROUP_AUROC, spearman, summarise

    rng = np.random.default_rng(0)
    groups = sweep_groups()[:6]
    rows = []
    for i, (s, bn, a) in enumerate(groups):
        for trial in range(2):
            auroc = 0.5 + 0.01 * trial if i == 4 else 0.96 + 0.003 * i + 0.001 * trial  # group 4 never trained
            rows.append({"strategy": s, "batch_norm": bn, "activation": a, "trial": trial, "auroc": auroc,
                         "gt_snr": rng.normal(1, 0.3), "gt_auroc": 0.8, "kmer_kld_paper": rng.random(),
                         "kattr_kld_paper": rng.random()})
    t = pd.DataFrame(rows)
    s = summarise(t)
    assert s["n_groups"] == 6 and s["n_groups_trained"] == 5 and s["n_models_trained"] == 10
    assert [(g["strategy"], g["batch_norm"], g["activation"]) for g in s["failed_groups"]] == [groups[4]]
    assert s["failed_groups"][0]["auroc"] < MIN_GROUP_AUROC
    means = t.groupby(["strategy", "batch_norm", "activation"], sort=False).mean(numeric_only=True).reset_index()
    kept = means[means["auroc"] >= MIN_GROUP_AUROC]
    for col in ("kattr_kld_paper", "kmer_kld_paper", "auroc"):
        assert s["group_mean_spearman_trained"][col] == pytest.approx(spearman(kept["gt_snr"], kept[col]))
        assert s["group_mean_spearman"][col] == pytest.approx(spearman(means["gt_snr"], means[col]))
