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
    t = run_sweep(data, groups=groups, trials=1, epochs=1, width=0.25, seed=0, progress=False, out_dir=tmp_path)
    assert len(t) == 2
    cols = {"strategy", "batch_norm", "activation", "trial", "epochs_trained", "auroc", "aupr", "gt_snr", "gt_auroc",
            "gt_auprc", "kmer_kld_paper", "kattr_kld_paper", "kmer_kld_acme", "kattr_kld_acme"}
    assert cols <= set(t.columns)
    assert list(zip(t.strategy, t.batch_norm, t.activation)) == groups
    assert (t.trial == 0).all() and (t.epochs_trained == 1).all()
    num = t[sorted(cols - {"strategy", "batch_norm", "activation"})].to_numpy(dtype=float)
    assert np.isfinite(num).all()
    assert (tmp_path / "scores.csv").is_file()
    s = summarise(t)
    assert s["n_models"] == 2 and len(s["group_means"]) == 2
    json.dumps(s, default=float)
    assert figures(t, tmp_path)


@pytest.mark.parametrize("argv", [
    ["reproduce", "--out", "OUT"],                                   # no --models, no --sweep
    ["reproduce", "--sweep", "--limit", "2", "--out", "OUT"],        # --limit is for shipped models
    ["reproduce", "--sweep", "--epochs", "0", "--out", "OUT"],
    ["reproduce", "--models", "M", "--epochs", "3", "--out", "OUT"],  # sweep option without --sweep
])
def test_cli_reproduce_sweep_argument_errors(argv, tmp_path, capsys):
    from acme_fast.cli import main

    argv = [str(tmp_path / a) if a in ("OUT", "M") else a for a in argv]
    (tmp_path / "M").mkdir()
    assert main(argv) == 2
    assert not (tmp_path / "OUT").exists()
