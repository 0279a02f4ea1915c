"""``acme-fast demo``: the paper in miniature (generate, train, attribute, score, select, draw).

Run at a toy size (a few hundred sequences, 1-2 epochs): what is checked is the pipeline, the table
and the files, not the models' quality.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from acme_fast.cli import main
from acme_fast.demo import MINIATURE, demo_verdict, model_name, next_free_dir, paper_in_miniature

for _mod in ("tensorflow", "pyjaspar", "matplotlib", "logomaker", "h5py"):
    pytest.importorskip(_mod)

TOY = {"n": 600, "epochs": 2, "burn_in": 1, "models": (("relu", True, "standard"), ("exponential", False, "standard"))}


def test_next_free_dir(tmp_path):
    base = tmp_path / "acme_demo"
    assert next_free_dir(base) == base
    base.mkdir()
    assert next_free_dir(base) == base  # empty: usable
    (base / "f").write_text("x")
    assert next_free_dir(base) == tmp_path / "acme_demo_2"
    (tmp_path / "acme_demo_2").write_text("a file")
    assert next_free_dir(base) == tmp_path / "acme_demo_3"


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini") / "demo"
    lines = []
    res = paper_in_miniature(out, progress=False, log=lines.append, **TOY)
    return out, res, lines


def test_miniature_table(mini):
    out, res, lines = mini
    t = res.table
    assert list(t["model"]) == ["relu/BN/standard", "exponential/noBN/standard"]
    assert list(t["batch_norm"]) == [True, False]
    assert len(lines) == 2 and "relu/BN/standard" in lines[0]
    for col in ("auroc", "aupr", "gt_snr", "gt_auroc", "gt_auprc", "kmer_kld_paper", "kattr_kld_paper",
                "kmer_kld_acme", "kattr_kld_acme"):
        assert np.isfinite(t[col]).all(), col
    assert ((t["auroc"] >= 0) & (t["auroc"] <= 1)).all()
    assert (t["epochs_trained"] >= 1).all() and (t["epochs_trained"] <= TOY["burn_in"] + TOY["epochs"]).all()
    sel = res.selection
    assert set(sel.index) == set(t["model"])
    kept = sel[sel["kept"]]
    # ranked by the k-attr KLD among the kept models, best AUROC always kept
    assert list(kept["rank"]) == sorted(kept["rank"])
    assert np.all(np.diff(kept["kattr_kld_paper"].to_numpy()) <= 0)
    assert sel.loc[t.loc[t["auroc"].idxmax(), "model"], "kept"]
    assert (kept["auroc"] >= t["auroc"].max() - 0.02 - 1e-12).all()


def test_miniature_files(mini):
    out, res, _ = mini
    names = {p.name for p in res.files}
    assert {"scores.csv", "selection.png", "logos.png", "snr_vs_auroc.png", "snr_vs_kattr_kld_paper.png"} <= names
    for p in res.files:
        assert p.parent == out and p.stat().st_size > 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind
    back = pd.read_csv(out / "scores.csv", index_col=0)
    assert list(back.index) == list(res.selection.index)
    np.testing.assert_allclose(back["kattr_kld_paper"], res.selection["kattr_kld_paper"], rtol=1e-12)
    with open(out / "logos.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_miniature_refuses_a_nonempty_folder(mini):
    out, _, _ = mini
    with pytest.raises(FileExistsError, match="out_dir"):
        paper_in_miniature(out, progress=False, **TOY)


@pytest.mark.parametrize("kw, match", [
    ({"models": (("relu", True, "dropout"),)}, "strategy expected"),
    ({"models": (("tanh", True, "standard"),)}, "activation expected"),
    ({"models": (("relu", "yes", "standard"),)}, "batch_norm expected"),
    ({"models": (("relu", True),)}, "tuples"),
    ({"models": ()}, "at least one"),
    ({"models": (("relu", True, "standard"), ("relu", True, "standard"))}, "twice"),
])
def test_miniature_bad_arguments(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        paper_in_miniature(tmp_path / "d", progress=False, **{**TOY, **kw})
    assert not (tmp_path / "d").exists()


def test_cli_demo(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acme_demo").mkdir()
    (tmp_path / "acme_demo" / "keep.txt").write_text("user data")
    rc = main(["demo", "--n", "600", "--epochs", "1", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Model selection" in out and "GT SNR" in out
    for m in MINIATURE["models"]:
        assert model_name(*m) in out
    assert "Test AUROC alone picks" in out
    # the taken default folder is left alone; the next free one is used and named
    assert (tmp_path / "acme_demo" / "keep.txt").read_text() == "user data"
    assert "acme_demo_2" in out and (tmp_path / "acme_demo_2" / "scores.csv").is_file()


@pytest.mark.parametrize("args, match", [
    (["--length", "100"], "--length applies to --kernels-only"),
    (["--kernels-only", "--epochs", "3"], "do not apply with --kernels-only"),
    (["--epochs", "0"], "--epochs"),
    (["--n", "10"], "--n"),
])
def test_cli_demo_errors(tmp_path, capsys, args, match):
    rc = main(["demo", "--out", str(tmp_path / "d"), *args])
    _, err = capsys.readouterr()
    assert rc == 2 and match in err


def test_cli_demo_refuses_nonempty_out(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    rc = main(["demo", "--out", str(tmp_path), "--n", "600", "--epochs", "1"])
    _, err = capsys.readouterr()
    assert rc == 2 and "--out" in err and "not an empty directory" in err


def _verdict_inputs(auroc, snr, kld):
    names = ["a", "b", "c"]
    t = pd.DataFrame({"auroc": auroc, "gt_snr": snr, "kattr_kld_paper": kld}, index=names)
    from acme_fast.select import select_models

    sel = select_models(t, performance="auroc", consistency="kattr_kld_paper", tolerance=0.02)
    return t, sel


def test_demo_verdict_names_both_picks():
    # AUROC picks a (worse maps); the KLD picks b, within the tolerance, with the better SNR
    t, sel = _verdict_inputs([0.97, 0.965, 0.90], [0.6, 1.4, 2.0], [0.1, 0.9, 1.5])
    lines = demo_verdict(t, sel)
    assert lines[0].startswith("Test AUROC alone picks a (AUROC 0.970, GT SNR 0.60)")
    assert "picks b (AUROC 0.965, GT SNR 1.40)" in lines[0] and "Best GT SNR: c." in lines[0]
    assert "0.005 apart" in lines[1] and "GT SNR 1.40 against 0.60" in lines[1]
    # both criteria agree
    t, sel = _verdict_inputs([0.97, 0.965, 0.90], [1.6, 1.4, 2.0], [1.0, 0.9, 1.5])
    assert "both criteria agree" in demo_verdict(t, sel)[1]
    # the KLD's pick is not better: said so, not hidden
    t, sel = _verdict_inputs([0.97, 0.965, 0.90], [1.6, 1.4, 2.0], [0.1, 0.9, 1.5])
    assert "did not improve" in demo_verdict(t, sel)[1]
