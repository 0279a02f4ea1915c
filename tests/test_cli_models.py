"""Command line: attribute, score --ground-truth, select and plot, end to end on temporary files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import attribution, onehot, read_csv, run_cli

import acme_fast as af

N, L = 23, 40


run = run_cli


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    tf = pytest.importorskip("tensorflow")
    keras = tf.keras
    d = tmp_path_factory.mktemp("cli_models")
    keras.utils.set_random_seed(3)
    inp = keras.Input((L, 4))
    h = keras.layers.Conv1D(6, 5, activation="relu")(inp)
    h = keras.layers.Flatten()(h)
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(h))
    model.save(d / "m.keras")
    rng = np.random.default_rng(11)
    x = onehot(rng, N, L)
    np.save(d / "seqs.npy", x)
    return d, x


@pytest.mark.parametrize("ext", [".npy", ".npz", ".h5"])
def test_attribute(model_files, tmp_path, capsys, ext):
    if ext == ".h5":
        h5py = pytest.importorskip("h5py")
    from acme_fast import attribution as af_attr

    d, x = model_files
    out = tmp_path / f"attr{ext}"
    rc, _, err = run(["attribute", d / "m.keras", d / "seqs.npy", "-o", out, "--batch-size", 8, "-q"], capsys)
    assert rc == 0, err
    want = np.asarray(af_attr.saliency(af_attr.load_model(d / "m.keras"), x, batch_size=8))
    if ext == ".npy":
        got = np.load(out)
    elif ext == ".npz":
        with np.load(out) as z:
            assert z.files == ["saliency"]
            got = z["saliency"]
    else:
        with h5py.File(out, "r") as f:
            got = f["saliency"][()]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left
    # refuses to overwrite; --force overwrites
    rc, _, err = run(["attribute", d / "m.keras", d / "seqs.npy", "-o", out, "-q"], capsys)
    assert rc == 2 and "exists; pass --force" in err and err.count("\n") == 1
    rc, _, err = run(["attribute", d / "m.keras", d / "seqs.npy", "-o", out, "-q", "--force",
                      "--method", "smoothgrad", "--dataset", "sg"], capsys)
    assert rc == 0, err


def test_attribute_errors(model_files, tmp_path, capsys):
    d, _ = model_files
    rc, _, err = run(["attribute", d / "m.keras", d / "seqs.npy", "-o", tmp_path / "a.txt"], capsys)
    assert rc == 2 and ".npy" in err
    rc, _, err = run(["attribute", d / "nope.keras", d / "seqs.npy", "-o", tmp_path / "a.npy", "-q"], capsys)
    assert rc == 2 and err.startswith("acme-fast attribute: error:")
    assert not (tmp_path / "a.npy").exists()


def test_score_ground_truth(tmp_path, capsys):
    rng = np.random.default_rng(4)
    x = onehot(rng, N, L)
    xm = rng.dirichlet(np.ones(4), size=(N, L)).astype(np.float32)
    a = attribution(rng, N, L)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "xm.npy", xm)
    np.save(tmp_path / "a.npy", a)
    out = tmp_path / "t.csv"
    rc, _, err = run(["score", tmp_path / "a.npy", "--seqs", tmp_path / "x.npy", "--ground-truth",
                      tmp_path / "xm.npy", "--k", 3, "--batch-size", 5, "-o", out, "-q"], capsys)
    assert rc == 0, err
    (row,) = read_csv(out)
    gt = af.groundtruth_scores(x, a, xm)
    assert float(row["gt_auroc"]) == gt.mean_auroc and float(row["gt_auprc"]) == gt.mean_auprc
    assert float(row["gt_snr"]) == pytest.approx(gt.mean_snr, rel=1e-15)
    assert float(row["kmer_kld"]) == af.kmer_kld(x, a, k=3).kld
    rc, _, err = run(["score", tmp_path / "a.npy", "--ground-truth", tmp_path / "xm.npy", "-o",
                      tmp_path / "u.csv", "-q"], capsys)
    assert rc == 2 and "--seqs" in err
    np.save(tmp_path / "xm_bad.npy", xm[:5])
    rc, _, err = run(["score", tmp_path / "a.npy", "--seqs", tmp_path / "x.npy", "--ground-truth",
                      tmp_path / "xm_bad.npy", "-o", tmp_path / "u.csv", "-q"], capsys)
    assert rc == 2 and "shape" in err and not (tmp_path / "u.csv").exists()


@pytest.fixture
def table(tmp_path):
    rows = [{"model": f"m{i}", "auroc": a, "kmer_kld": k, "kattr_kld": k2}
            for i, (a, k, k2) in enumerate([(0.90, 1.0, 0.5), (0.95, 0.8, 0.7), (0.70, 2.0, 0.9), (0.94, 1.5, 0.2)])]
    p = tmp_path / "scores.csv"
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return p


@pytest.mark.parametrize("ext", [".csv", ".json"])
def test_select(table, tmp_path, capsys, ext):
    pytest.importorskip("acme_fast.select")
    out = tmp_path / f"sel{ext}"
    rc, _, err = run(["select", table, "--performance", "auroc", "--consistency", "kmer_kld", "--min-performance",
                      0.85, "-o", out, "-q"], capsys)
    assert rc == 0, err
    rows = read_csv(out) if ext == ".csv" else json.loads(out.read_text())
    kept = {r["model"]: str(r["kept"]) in ("True", "true", "1") for r in rows}
    assert kept == {"m0": True, "m1": True, "m2": False, "m3": True}
    want = af.select_models(table, performance="auroc", consistency="kmer_kld", min_performance=0.85)
    best = want.loc[want["rank"] == 1, "model"].item()
    assert best == "m3" and any(r["model"] == best and float(r["rank"]) == 1 for r in rows)
    rc, _, err = run(["select", table, "--performance", "auroc", "--consistency", "kmer_kld", "-o", out], capsys)
    assert rc == 2 and "--force" in err
    rc, _, err = run(["select", table, "--performance", "auroc", "--consistency", "kmer_kld",
                      "--consistency", "kattr_kld",
                      "--tolerance", 0.1, "-o", out, "-q", "--force"], capsys)
    assert rc == 0, err
    rc, _, err = run(["select", table, "--performance", "nope", "--consistency", "kmer_kld",
                      "-o", tmp_path / f"x{ext}", "-q"], capsys)
    assert rc == 2 and "nope" in err


def test_plot(tmp_path, table, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("acme_fast.plot")
    rng = np.random.default_rng(2)
    x = onehot(rng, N, L)
    a = attribution(rng, N, L)
    xm = rng.dirichlet(np.ones(4), size=(N, L)).astype(np.float32)
    for name, arr in (("x", x), ("a", a), ("xm", xm)):
        np.save(tmp_path / f"{name}.npy", arr)
    cmds = {
        "k.png": ["plot", "kmer", "--seqs", tmp_path / "x.npy", tmp_path / "a.npy", "--k", 3],
        "t.pdf": ["plot", "kattr", tmp_path / "a.npy"],
        "l.png": ["plot", "logo", "--seqs", tmp_path / "x.npy", tmp_path / "a.npy", "--index", 3,
                  "--ground-truth", tmp_path / "xm.npy"],
        "s.png": ["plot", "selection", table, "--performance", "auroc", "--consistency", "kmer_kld"],
    }
    for fname, cmd in cmds.items():
        out = tmp_path / fname
        rc, _, err = run(cmd + ["-o", out, "-q"], capsys)
        assert rc == 0, err
        head = out.read_bytes()[:8]
        assert head.startswith(b"%PDF") if fname.endswith(".pdf") else head == b"\x89PNG\r\n\x1a\n"
        rc, _, err = run(cmd + ["-o", out, "-q"], capsys)
        assert rc == 2 and "exists; pass --force" in err
    rc, _, err = run(cmds["l.png"][:-2] + ["-o", tmp_path / "l2.png", "-q"], capsys)  # no x_model
    assert rc == 0, err
    rc, _, err = run(["plot", "logo", "--seqs", tmp_path / "x.npy", tmp_path / "a.npy", "--index", N,
                      "-o", tmp_path / "bad.png"], capsys)
    assert rc == 2 and "--index" in err
    rc, _, err = run(["plot", "kattr", tmp_path / "a.npy", "-o", tmp_path / "bad.jpg"], capsys)
    assert rc == 2 and ".png or .pdf or .svg" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
