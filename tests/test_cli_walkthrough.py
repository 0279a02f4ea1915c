"""The README's command-line walk-through, end to end on tiny data, so that the README cannot
drift from the code: weights-only models through --builder (a file, a module in the working
directory, a package architecture by name) and the paper's shipped files by name, score-models
with labels and --attribute-on, select on its output, plot, every output read back. Plus the
command-line findings of the issue (builder errors before TensorFlow, help, --version, hints)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import read_csv, run_cli

N, L = 40, 200
SHIPPED = Path(__file__).resolve().parents[2] / "shared" / "models" / "synthetic_cnn"

ARCH = textwrap.dedent("""
    import keras

    def build(activation="relu", filters=4):
        inp = keras.Input((200, 4))
        h = keras.layers.Conv1D(filters, 7, activation=activation, name="conv")(inp)
        h = keras.layers.GlobalMaxPooling1D()(h)
        return keras.Model(inp, keras.layers.Dense(1, activation="sigmoid", name="out")(h))
""")


run = run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tf = pytest.importorskip("tensorflow")
    keras = tf.keras
    d = tmp_path_factory.mktemp("walk")
    (d / "arch.py").write_text(ARCH)
    sys.path.insert(0, str(d))
    try:
        import arch  # noqa: F401
    finally:
        sys.path.remove(str(d))
        sys.modules.pop("arch", None)
    ns: dict = {}
    exec(ARCH, ns)
    for i, act in enumerate(("relu", "exponential")):
        keras.utils.set_random_seed(i)
        ns["build"](act).save_weights(d / f"m_{act}.weights.h5")
    from acme_fast import zoo

    keras.utils.set_random_seed(5)
    zoo.cnn_shallow("relu", input_shape=(L, 4)).save_weights(d / "shallow.weights.h5")
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (N, L))]
    np.save(d / "seqs.npy", x)
    y = (rng.random(N) < 0.5).astype(np.int64)
    np.savetxt(d / "labels.txt", y, fmt="%d")
    return d, x, y


def test_walkthrough(files, capsys, monkeypatch):
    d, x, y = files
    monkeypatch.chdir(d)
    # 1. score-models: a builder in a file, keyword arguments, NAME=PATH, performance on all
    #    sequences, attributions on the positives
    rc, _, err = run(["score-models", f"relu={d / 'm_relu.weights.h5'}", f"exp={d / 'm_exponential.weights.h5'}",
                      "--builder", "arch.py:build", "--builder-kwargs", '{"filters": 4}', "--seqs", "seqs.npy",
                      "--labels", "labels.txt", "--attribute-on", "positives", "--k", 3, "-o", "scores.csv", "-q"],
                     capsys)
    assert rc == 0, err
    rows = read_csv(d / "scores.csv")
    assert [r["model"] for r in rows] == ["relu", "exp"]
    for r in rows:
        assert 0 <= float(r["auroc"]) <= 1 and 0 <= float(r["aupr"]) <= 1
        assert int(r["n_attributed"]) == int(y.sum()) and int(r["n_sequences"]) == N
        assert np.isfinite(float(r["kattr_kld"])) and np.isfinite(float(r["kmer_kld"]))
    # the CLI row equals the API on the same model
    import acme_fast as af

    api = af.score_model(d / "m_relu.weights.h5", x, y=y, builder=str(d / "arch.py") + ":build",
                         builder_kwargs={"filters": 4}, attribute_on="positives", k=3, progress=False)
    assert float(rows[0]["kattr_kld"]) == pytest.approx(api["kattr_kld"], rel=1e-12)
    assert float(rows[0]["auroc"]) == pytest.approx(api["auroc"], rel=1e-12)

    # 2. MODULE:FUNCTION from the working directory, and a package architecture by name
    rc, _, err = run(["score-models", d / "m_relu.weights.h5", "--builder", "arch:build", "--seqs", "seqs.npy",
                      "--labels", "labels.txt", "-o", "mod.json", "-q"], capsys)
    assert rc == 0, err
    rec = json.loads((d / "mod.json").read_text())
    assert rec[0]["model"] == "m_relu" and rec[0]["n_attributed"] == N
    rc, _, err = run(["score-models", d / "shallow.weights.h5", "--builder", "cnn_shallow", "--builder-kwargs",
                      '{"activation": "relu", "input_shape": [200, 4]}', "--seqs", "seqs.npy", "--labels",
                      "labels.txt", "-o", "zoo.csv", "-q"], capsys)
    assert rc == 0, err
    assert read_csv(d / "zoo.csv")[0]["model"] == "shallow"

    # 3. select on the score-models table: no pandas step; integer rank, blank when dropped
    rc, _, err = run(["select", "--performance", "auroc", "--consistency", "kattr_kld", "scores.csv",
                      "--tolerance", 1.0, "-o", "ranked.csv", "-q"], capsys)
    assert rc == 0, err
    ranked = read_csv(d / "ranked.csv")
    assert sorted(r["rank"] for r in ranked) == ["1", "2"]
    rc, _, err = run(["select", "scores.csv", "--performance", "auroc", "--consistency", "kattr_kld,kmer_kld",
                      "--min-performance", 2.0, "-o", "none.csv", "-q"], capsys)
    assert rc == 0, err
    assert all(r["rank"] == "" and r["kept"] == "False" for r in read_csv(d / "none.csv"))

    # 4. plot the selection, as PNG and SVG
    pytest.importorskip("matplotlib")
    for ext in ("png", "svg"):
        rc, _, err = run(["plot", "selection", "ranked.csv", "--performance", "auroc", "--consistency",
                          "kattr_kld", "-o", f"selection.{ext}", "-q"], capsys)
        assert rc == 0, err
        assert (d / f"selection.{ext}").stat().st_size > 1000
        assert (os.stat(d / f"selection.{ext}").st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


@pytest.mark.skipif(not SHIPPED.is_dir(), reason="the shipped models (../shared/models) are not here")
def test_shipped_files_need_no_builder(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from acme_fast import synthetic

    data = synthetic.make_dataset(n=400, seed=1, progress=False)
    np.save(tmp_path / "x.npy", data.X_test.astype(np.float32))
    np.save(tmp_path / "y.npy", data.Y_test)
    rc, _, err = run(["score-models", SHIPPED / "cnn_deep_exponential_0.h5", SHIPPED / "cnn_shallow_relu_0.h5",
                      "--seqs", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "--attribute-on", "positives",
                      "--k", 4, "-o", tmp_path / "t.csv", "-q"], capsys)
    assert rc == 0, err
    rows = read_csv(tmp_path / "t.csv")
    assert [r["model"] for r in rows] == ["cnn_deep_exponential_0", "cnn_shallow_relu_0"]
    assert float(rows[0]["auroc"]) > 0.9  # the trained models recognise the planted motifs


def _cli(*args, cwd=None):
    # outside the repository: from its root the uncompiled source tree would be imported
    import tempfile

    return subprocess.run([sys.executable, "-m", "acme_fast", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd or tempfile.gettempdir())


@pytest.mark.parametrize("builder,msg", [
    ("nosuchmodule:build", "--builder: cannot import module 'nosuchmodule'"),
    ("arch.py:nosuch", "--builder: no such file 'arch.py'"),
    ("json:nosuch", "--builder: 'json' has no function 'nosuch'"),
    ("not a spec", "--builder: expected 'MODULE:FUNCTION'"),
])
def test_builder_errors_come_before_tensorflow(tmp_path, builder, msg):
    np.save(tmp_path / "x.npy", np.eye(4, dtype=np.float32)[np.zeros((3, 10), dtype=int)])
    (tmp_path / "m.weights.h5").write_bytes(b"")
    code = ("import sys, acme_fast.cli as c; rc = c.main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules, file=sys.stderr); sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code, "score-models", "m.weights.h5", "--builder", builder,
                        "--seqs", "x.npy", "-o", "t.csv"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 2 and msg in p.stderr, p.stderr
    assert p.stderr.strip().endswith("False")  # TensorFlow never started


def test_weights_only_without_builder_says_how(files, capsys):
    d, _, _ = files
    rc, _, err = run(["score-models", d / "m_relu.weights.h5", "--seqs", d / "seqs.npy", "-o", d / "t.csv", "-q"],
                     capsys)
    assert rc == 2 and "holds weights only" in err and "--builder" in err and "cnn_deep" in err
    assert "load_model(" not in err


def test_version_and_help():
    p = _cli("--version")
    assert p.returncode == 0 and p.stdout.startswith("acme-fast ")
    from acme_fast.cli import build_parser

    def walk(parser):
        for action in parser._actions:
            if action.dest in ("help", "version"):
                continue
            if hasattr(action, "choices") and isinstance(action.choices, dict):  # subcommands
                for name, sub in action.choices.items():
                    helps = {a.dest: a.help for a in action._choices_actions} if hasattr(action, "_choices_actions") \
                        else {}
                    assert helps.get(name), f"subcommand {name!r} has no help"
                    assert sub.description, f"subcommand {name!r} has no description"
                    walk(sub)
            else:
                assert action.help, f"option {action.option_strings or action.dest} of {parser.prog} has no help"

    walk(build_parser())


def test_select_table_after_consistency(files, capsys, tmp_path):
    d, _, _ = files
    t = tmp_path / "s.csv"
    t.write_text("model,auroc,kmer_kld,kattr_kld\na,0.9,1.0,2.0\nb,0.8,1.5,1.0\n")
    rc, _, err = run(["select", "--performance", "kmer_kld", "--consistency", "kattr_kld", t, "-o",
                      tmp_path / "o.csv", "-q"], capsys)
    assert rc == 0, err
    assert [r["model"] for r in read_csv(tmp_path / "o.csv")] == ["a", "b"]


def test_hints_for_iupac_and_soft_onehot(tmp_path):
    import acme_fast as af
    from acme_fast.io import read_fasta

    (tmp_path / "s.fa").write_text(">a\nACGTRACGT\n")
    with pytest.raises(ValueError, match=r"'R' at position 5.*IUPAC ambiguity code.*replace these codes by N"):
        read_fasta(tmp_path / "s.fa")
    x = np.eye(4)[np.zeros((2, 10), dtype=int)]
    a = np.random.default_rng(0).normal(size=x.shape)
    soft = x * 0.97 + 0.01
    with pytest.raises(ValueError, match=r"base probabilities.*np.eye\(4\)\[x.argmax\(-1\)\].*x_model"):
        af.kmer_kld(soft, a)
    with pytest.raises(ValueError, match=r"scaled one-hot array: pass \(x > 0\)"):
        af.kmer_kld(x * 0.9, a)


def test_dataset_hint_names_the_right_flag(tmp_path):
    h5py = pytest.importorskip("h5py")
    from acme_fast.io import ArraySource

    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["a"] = np.zeros((2, 5, 4))
        f["b"] = np.zeros((2, 5, 4))
    with pytest.raises(ValueError, match=r"name one with x_dataset= \(CLI: --seqs-dataset\)"):
        ArraySource(tmp_path / "d.h5", name="seqs")
    with pytest.raises(ValueError, match=r"name one with dataset= \(CLI: --dataset\)"):
        ArraySource(tmp_path / "d.h5", name="attr")
