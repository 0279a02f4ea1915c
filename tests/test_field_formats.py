"""Files the field writes, read directly: chromBPNet/BPNet contribution .h5 (shap/seq,
projected_shap/seq, raw/seq; float16; (N, 4, L)), tfmodisco-lite / bpnet-lite .npz (arr_0,
(N, 4, L)), CREsted *_contrib.npz (N, C, L, 4) with a class axis; float16 attributions everywhere
(the same result as the same values in float32); --projected."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import acme_fast as af
from acme_fast.cli import main
from acme_fast.stream import score_stream

N, L = 30, 80


@pytest.fixture
def data():
    rng = np.random.default_rng(4)
    x = np.eye(4, dtype=np.int8)[rng.integers(0, 4, (N, L))]  # (N, L, 4)
    hyp = rng.normal(size=(N, L, 4)).astype(np.float16)
    return x, hyp


def _ncl(a):
    return np.ascontiguousarray(np.swapaxes(a, 1, 2))


def test_float16_is_float32_everywhere(data):
    x, hyp = data
    h32 = hyp.astype(np.float32)
    assert af.kattr_kld(hyp).kld == af.kattr_kld(h32).kld
    assert af.kattr_kld(hyp, preset="acme").kld == af.kattr_kld(h32, preset="acme").kld
    assert af.kmer_kld(x, hyp, k=3).kld == af.kmer_kld(x, h32, k=3).kld
    np.testing.assert_array_equal(af.gauge_correct(hyp), af.gauge_correct(h32))
    m = np.full(x.shape, 0.25)
    assert af.groundtruth_scores(x, hyp, m).mean_snr == af.groundtruth_scores(x, h32, m).mean_snr


def test_chrombpnet_h5(tmp_path, data, capsys):
    h5py = pytest.importorskip("h5py")
    x, hyp = data
    p = tmp_path / "fold_0.counts_scores.h5"
    with h5py.File(p, "w") as f:
        f["raw/seq"] = _ncl(x)
        f["shap/seq"] = _ncl(hyp)
        f["projected_shap/seq"] = _ncl(hyp * x)
    res = score_stream(str(p), str(p), layout="NCL", k=3, progress=False, batch_size=7)
    assert res["kattr"].kld == af.kattr_kld(hyp.astype(np.float32)).kld  # shap/seq by default
    assert res["kmer"].kld == af.kmer_kld(x, hyp.astype(np.float32), k=3).kld
    proj = score_stream(str(p), str(p), layout="NCL", k=3, progress=False, projected=True)
    want = (hyp.astype(np.float32) * x).astype(np.float32)
    assert proj["kattr"].kld == af.kattr_kld(want).kld
    same = score_stream(str(p), str(p), dataset="projected_shap/seq", layout="NCL", k=3, progress=False)
    assert same["kattr"].kld == af.kattr_kld((hyp * x).astype(np.float32)).kld
    rc = main(["score", str(p), "--seqs", str(p), "--layout", "NCL", "--k", "3", "-o", str(tmp_path / "t.csv"),
               "-q"])
    assert rc == 0, capsys.readouterr().err
    with open(tmp_path / "t.csv") as f:
        row = next(csv.DictReader(f))
    assert row["model"] == "fold_0.counts_scores" and float(row["kattr_kld"]) == res["kattr"].kld


def test_modisco_npz(tmp_path, data):
    x, hyp = data
    np.savez(tmp_path / "ohe.npz", _ncl(x).astype(np.float32))
    np.savez_compressed(tmp_path / "shap.npz", _ncl(hyp))
    res = score_stream(str(tmp_path / "shap.npz"), str(tmp_path / "ohe.npz"), layout="NCL", k=3, progress=False)
    assert res["kmer"].kld == af.kmer_kld(x, hyp.astype(np.float32), k=3).kld


def test_crested_class_axis(tmp_path, data, capsys):
    x, _ = data
    rng = np.random.default_rng(9)
    contrib = rng.normal(size=(N, 3, L, 4)).astype(np.float32)
    np.savez_compressed(tmp_path / "m_contrib.npz", contrib)
    with pytest.raises(ValueError, match=r"4-D array \(30, 3, 80, 4\).*class axis.*class_index= \(--class\)"):
        score_stream(str(tmp_path / "m_contrib.npz"), metrics=("kattr",), progress=False)
    for c in range(3):
        res = score_stream(str(tmp_path / "m_contrib.npz"), x, class_index=c, k=3, progress=False, batch_size=4)
        assert res["kattr"].kld == af.kattr_kld(contrib[:, c]).kld
        assert res["kmer"].kld == af.kmer_kld(x, contrib[:, c], k=3).kld
    with pytest.raises(ValueError, match="out of range for 3 classes"):
        score_stream(str(tmp_path / "m_contrib.npz"), metrics=("kattr",), class_index=3, progress=False)
    np.save(tmp_path / "x.npy", x)
    rc = main(["score", str(tmp_path / "m_contrib.npz"), "--seqs", str(tmp_path / "x.npy"), "--class", "2",
               "--k", "3", "-o", str(tmp_path / "t.csv"), "-q"])
    assert rc == 0, capsys.readouterr().err


def test_projected_needs_seqs(tmp_path, data, capsys):
    _, hyp = data
    np.save(tmp_path / "a.npy", hyp)
    with pytest.raises(ValueError, match="projected: .* needs x"):
        score_stream(str(tmp_path / "a.npy"), metrics=("kattr",), projected=True, progress=False)
    assert main(["score", str(tmp_path / "a.npy"), "--projected", "-o", str(tmp_path / "t.csv")]) == 2
    assert "--projected: multiplying by the one-hot sequences needs --seqs" in capsys.readouterr().err
