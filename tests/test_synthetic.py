"""The synthetic benchmark generator (acme_fast.synthetic) and ``acme-fast synth``."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_python

pytest.importorskip("pyjaspar")
pytest.importorskip("h5py")

from acme_fast import synthetic as syn  # noqa: E402
from acme_fast.cli import main  # noqa: E402

SPLITS = ("train", "valid", "test")
L = 200


@pytest.fixture(scope="module")
def pwms():
    return syn.load_jaspar_pwms()


@pytest.fixture(scope="module")
def data():
    return syn.make_dataset(n=2000, length=L, seed=3, progress=False)


def cat(d, key):
    return np.concatenate([getattr(d, f"{key}_{s}") for s in SPLITS])


# ---------------------------------------------------------------- motifs --------------------


def test_jaspar2016_core_vertebrates(pwms):
    assert len(pwms) == 519
    for name in syn.CORE_MOTIFS:
        assert name in pwms
    assert list(pwms)[:3] == ["RUNX1", "TFAP2A", "Arnt"]  # MA0002, MA0003, MA0004: by accession (MA0001: plant)
    for p in pwms.values():
        assert p.dtype == np.float64 and p.shape[0] == 4 and p.shape[1] >= 1
        np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-12)
        assert np.all(p >= 0)


def test_jaspar_errors():
    with pytest.raises(ValueError, match="unknown JASPAR release"):
        syn.load_jaspar_pwms("JASPAR1999")
    with pytest.raises(ValueError, match="tax group"):
        syn.load_jaspar_pwms(tax_group="martians")
    assert "JASPAR2016" in syn.jaspar_releases()


def test_reverse_complement(pwms):
    p = pwms["SP1"]
    rc = syn.reverse_complement(p)
    np.testing.assert_array_equal(syn.reverse_complement(rc), p)
    w = p.shape[1]
    for b, c in ((0, 3), (1, 2), (2, 1), (3, 0)):  # A<->T, C<->G
        np.testing.assert_array_equal(rc[c], p[b, ::-1])
    onehot = np.eye(4)[[0, 0, 1, 2]].T  # AACG -> CGTT
    np.testing.assert_array_equal(syn.reverse_complement(onehot), np.eye(4)[[1, 2, 3, 3]].T)
    assert rc.shape == (4, w)
    with pytest.raises(ValueError, match="shape"):
        syn.reverse_complement(np.ones((5, 3)))


def test_similarity(pwms):
    sp1 = pwms["SP1"]
    assert syn.motif_similarity(sp1, sp1) == pytest.approx(1.0)
    assert syn.motif_similarity(sp1, syn.reverse_complement(sp1)) == pytest.approx(1.0)  # either strand
    assert syn.motif_similarity(sp1, sp1[:, 2:8]) == pytest.approx(1.0)  # contained in the longer one
    core = {c: pwms[c] for c in syn.CORE_MOTIFS}
    for name in ("SP2", "KLF5", "CEBPA", "ELK1", "Mycn", "USF1", "YY2", "MAX::MYC"):
        assert syn.resembles_core(name, pwms[name], core), name
    for name in ("FOXA1", "RUNX1", "GATA2", "Hoxd9"):
        assert not syn.resembles_core(name, pwms[name], core), name


# ---------------------------------------------------------------- the dataset ---------------


def test_shapes_balance_splits(data):
    n = 2000
    assert [getattr(data, f"X_{s}").shape[0] for s in SPLITS] == [1400, 200, 400]
    for s in SPLITS:
        x, y, m = getattr(data, f"X_{s}"), getattr(data, f"Y_{s}"), getattr(data, f"model_{s}")
        assert x.shape == m.shape == (y.shape[0], L, 4) and y.shape == (x.shape[0], 1)
        assert x.dtype == m.dtype == np.float32 and y.dtype.kind == "i"
        np.testing.assert_array_equal(x.sum(-1), 1.0)  # one-hot
        np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-5)
        for k in ("motif_names", "motif_strands", "motif_starts", "motif_widths"):
            assert getattr(data, f"{k}_{s}").shape == (x.shape[0], 7)
    y = cat(data, "Y")
    assert y.sum() == n // 2 and set(np.unique(y)) == {0, 1}
    # the permutation mixes the classes into every split
    assert 0.3 < data.Y_test.mean() < 0.7 and 0.3 < data.Y_valid.mean() < 0.7
    assert len(data.params["background_motifs"]) == 50


def test_motif_count_distribution(data):
    count = (cat(data, "motif_starts") >= 0).sum(axis=1)
    probs = syn.MOTIF_COUNT_PROBS
    assert set(np.unique(count)) <= set(probs)
    n = count.size
    obs = np.array([np.sum(count == k) for k in probs])
    exp = n * np.array(list(probs.values()))
    chi2 = float(np.sum((obs - exp) ** 2 / exp))
    assert chi2 < 18.5, (obs, exp)  # chi-square, 4 dof: p = 0.001


def test_layout_from_annotations(data, pwms):
    """Motifs lie in drawn order without overlap inside L; gaps sum to the free length; M matches."""
    names, strands = cat(data, "motif_names"), cat(data, "motif_strands")
    starts, widths, model = cat(data, "motif_starts"), cat(data, "motif_widths"), cat(data, "model")
    for i in range(names.shape[0]):
        k = int(np.sum(starts[i] >= 0))
        assert np.all(starts[i, k:] == -1) and np.all(names[i, k:] == "")
        st, w = starts[i, :k], widths[i, :k]
        ends = st + w
        assert st[0] >= 0 and ends[-1] <= L and np.all(st[1:] >= ends[:-1])
        gaps = np.concatenate([[st[0]], st[1:] - ends[:-1], [L - ends[-1]]])
        assert gaps.sum() == L - w.sum()
        covered = np.zeros(L, bool)
        for j in range(k):
            p = pwms[names[i, j]]
            p = p if strands[i, j] == "+" else syn.reverse_complement(p)
            assert p.shape[1] == w[j]
            np.testing.assert_allclose(model[i, st[j]:ends[j]], p.T, atol=1e-6)
            covered[st[j]:ends[j]] = True
        np.testing.assert_array_equal(model[i, ~covered], 0.25)


def test_bases_sampled_from_model(data):
    x, m = cat(data, "X"), cat(data, "model")
    gap = np.all(m == 0.25, axis=-1)
    freq = x[gap].mean(axis=0)
    np.testing.assert_allclose(freq, 0.25, atol=0.01)
    # motif positions: bases never drawn where M is 0, observed frequencies track M
    motif = ~gap
    assert np.all(m[x == 1] > 0)
    xm, mm = x[motif], m[motif]
    for b in range(4):
        for lo, hi in ((0.0, 0.05), (0.05, 0.5), (0.5, 0.95), (0.95, 1.01)):
            sel = (mm[:, b] >= lo) & (mm[:, b] < hi)
            if sel.sum() > 2000:
                assert abs(xm[sel, b].mean() - mm[sel, b].mean()) < 0.02, (b, lo, hi)
    # per column of one pool PWM (SP1 forward), pooled over its occurrences
    names, starts = cat(data, "motif_names"), cat(data, "motif_starts")
    strands = cat(data, "motif_strands")
    rows, slots = np.nonzero((names == "SP1") & (strands == "+"))
    assert rows.size > 100
    w = cat(data, "motif_widths")[rows[0], slots[0]]
    obs = np.mean([x[r, starts[r, s]:starts[r, s] + w] for r, s in zip(rows, slots)], axis=0)
    exp = m[rows[0], starts[rows[0], slots[0]]:starts[rows[0], slots[0]] + w]
    assert np.max(np.abs(obs - exp)) < 5 / np.sqrt(rows.size)


def test_positives_only_core(data):
    names, y = cat(data, "motif_names"), cat(data, "Y")[:, 0]
    core = set(syn.CORE_MOTIFS)
    pos = set(np.unique(names[y == 1])) - {""}
    neg = set(np.unique(names[y == 0])) - {""}
    assert pos == core
    assert neg - core and neg <= core | set(data.params["background_motifs"])
    assert not core & set(data.params["background_motifs"])
    xp, mp = data.positives("test")
    assert xp.shape == mp.shape == (int(data.Y_test.sum()), L, 4)
    np.testing.assert_array_equal(xp, data.X_test[data.Y_test[:, 0] == 1])
    with pytest.raises(ValueError, match="split"):
        data.positives("dev")
    i = int(np.nonzero(data.Y_test[:, 0] == 1)[0][0])
    assert all(nm in core for nm, _, _ in data.motifs("test", i))


def test_deterministic(data):
    same = syn.make_dataset(n=2000, length=L, seed=3, progress=False)
    for k in data.__dataclass_fields__:
        if k != "params":
            np.testing.assert_array_equal(getattr(same, k), getattr(data, k))
    assert same.params == data.params
    other = syn.make_dataset(n=2000, length=L, seed=4, progress=False)
    assert not np.array_equal(other.X_train, data.X_train)
    assert not np.array_equal(other.model_train, data.model_train)


def test_small_length_and_args():
    d = syn.make_dataset(n=40, length=100, seed=1, progress=False)
    assert d.X_train.shape == (28, 100, 4)
    assert np.all(cat(d, "motif_widths").sum(axis=1) < 100)
    with pytest.raises(ValueError, match="too short"):
        syn.make_dataset(n=400, length=30, progress=False)
    with pytest.raises(ValueError, match="not a JASPAR2016"):
        syn.make_dataset(n=40, core_motifs=("NOPE",), progress=False)
    with pytest.raises(ValueError, match="n:"):
        syn.make_dataset(n=1, progress=False)
    with pytest.raises(ValueError, match="n_background"):
        syn.make_dataset(n=40, n_background=10_000, progress=False)


def test_save_load_roundtrip(tmp_path, data):
    p = tmp_path / "syn.h5"
    assert data.save(p) == p
    back = syn.SyntheticDataset.load(p)
    for k in data.__dataclass_fields__:
        if k != "params":
            a, b = getattr(data, k), getattr(back, k)
            assert a.dtype == b.dtype and a.shape == b.shape, k
            np.testing.assert_array_equal(a, b)
    assert back.params == data.params
    with pytest.raises(FileExistsError):
        data.save(p)
    data.save(p, overwrite=True)
    assert [q.name for q in tmp_path.iterdir()] == ["syn.h5"]  # no temporary file left behind
    import h5py

    with h5py.File(p, "r") as f:
        assert f["X_test"].shape == data.X_test.shape and f.attrs["layout"] == "NLC"
        assert f.attrs["seed"] == 3 and f.attrs["jaspar_release"] == "JASPAR2016"
    bad = tmp_path / "other.h5"
    with h5py.File(bad, "w") as f:
        f["X_train"] = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="missing"):
        syn.SyntheticDataset.load(bad)


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "data.h5"
    rc = main(["synth", "-o", str(out), "--n", "400", "--seed", "7", "--quiet"])
    assert rc == 0 and out.is_file()
    d = syn.SyntheticDataset.load(out)
    assert d.X_train.shape == (280, L, 4) and d.params["seed"] == 7
    ref = syn.make_dataset(n=400, seed=7, progress=False)
    np.testing.assert_array_equal(d.X_test, ref.X_test)
    mtime = out.stat().st_mtime_ns
    rc = main(["synth", "-o", str(out), "--n", "400", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "exists" in err and "--force" in err
    assert out.stat().st_mtime_ns == mtime
    rc = main(["synth", "-o", str(out), "--n", "400", "--seed", "8", "--force"])
    err = capsys.readouterr().err
    assert rc == 0 and "written to" in err
    assert syn.SyntheticDataset.load(out).params["seed"] == 8
    assert main(["synth", "-o", str(tmp_path / "x.csv"), "--quiet"]) == 2
    assert main(["synth", "-o", str(tmp_path / "y.h5"), "--n", "0", "--quiet"]) == 2
    assert main(["synth", "-o", str(tmp_path / "z.h5"), "--jaspar-release", "JASPAR1999", "--quiet"]) == 2
    assert "unknown JASPAR release" in capsys.readouterr().err


def test_import_does_not_load_pyjaspar():
    run_python("import sys, acme_fast, acme_fast.synthetic\n"
               "assert not any(m in sys.modules for m in ('pyjaspar', 'Bio', 'h5py')), sorted(sys.modules)")
