"""Command line: ``acme-fast score`` end to end (and ``demo --kernels-only`` runs)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import attribution, onehot, read_csv, run_cli, to_ncl

import acme_fast as af

N, L = 17, 30


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(99)
    x = onehot(rng, N, L)
    a1 = attribution(rng, N, L)
    a2 = attribution(rng, N, L, dtype=np.float64)
    np.save(tmp_path / "seqs.npy", x)
    np.save(tmp_path / "m1.npy", a1)
    np.save(tmp_path / "m2.npy", a2)
    return tmp_path, x, [a1, a2]


run = run_cli


def test_score_csv(files, capsys):
    d, x, attrs = files
    out = d / "table.csv"
    rc, _, err = run(["score", "--seqs", d / "seqs.npy", d / "m1.npy", d / "m2.npy", "-o", out, "--k", 3,
                      "--batch-size", 5, "--quiet"], capsys)
    assert rc == 0, err
    assert err == ""
    rows = read_csv(out)
    assert [r["attr"] for r in rows] == [str(d / "m1.npy"), str(d / "m2.npy")]
    for row, a in zip(rows, attrs):
        km = af.kmer_kld(x, a, k=3)
        ka = af.kattr_kld(a)
        assert float(row["kmer_kld"]) == km.kld and int(row["kmer_n_intervals"]) == km.n_intervals
        assert float(row["kattr_kld"]) == ka.kld and int(row["kattr_n_points"]) == ka.n_points
        assert (row["n_sequences"], row["length"], row["preset"], row["layout"]) == (str(N), str(L), "paper", "NLC")
        assert (row["kmer_k"], row["kattr_window"], row["kmer_quantile"]) == ("3", "3", "0.9")
    assert [p.name for p in d.iterdir() if p.name.endswith(".tmp")] == []  # no temporary file left


def test_score_json_acme_ncl_h5(files, capsys):
    h5py = pytest.importorskip("h5py")
    d, x, attrs = files
    with h5py.File(d / "m.h5", "w") as f:
        f["saliency"] = np.ascontiguousarray(to_ncl(attrs[0]))
        f["ism"] = np.ascontiguousarray(to_ncl(attrs[1]))
    np.save(d / "seqs_ncl.npy", np.ascontiguousarray(to_ncl(x)))
    out = d / "t.json"
    rc, _, err = run(["score", "--seqs", d / "seqs_ncl.npy", d / "m.h5", "--dataset", "ism", "-o", out,
                      "--layout", "ncl", "--preset", "acme", "--quantile", 0.8, "--window", 3, "-q"], capsys)
    assert rc == 0, err
    rows = json.loads(out.read_text())
    assert len(rows) == 1
    r = rows[0]
    km = af.kmer_kld(to_ncl(x), to_ncl(attrs[1]), layout="NCL", preset="acme", quantile=0.8)
    ka = af.kattr_kld(to_ncl(attrs[1]), layout="NCL", preset="acme", quantile=0.8)
    assert r["kmer_kld"] == km.kld and r["kattr_kld"] == ka.kld and r["kattr_n_points"] == ka.n_points
    assert r["layout"] == "NCL" and r["preset"] == "acme" and r["kattr_threshold_scope"] == "global"
    assert r["kmer_quantile"] == r["kattr_quantile"] == 0.8


def test_without_seqs_only_kattr(files, capsys):
    d, _, attrs = files
    out = d / "t.csv"
    rc, _, err = run(["score", d / "m1.npy", "-o", out, "-q"], capsys)
    assert rc == 0, err
    (row,) = read_csv(out)
    assert "kmer_kld" not in row and float(row["kattr_kld"]) == af.kattr_kld(attrs[0]).kld


def test_overwrite_refused_then_forced(files, capsys):
    d, _, _ = files
    out = d / "t.csv"
    out.write_text("precious\n")
    args = ["score", "--seqs", d / "seqs.npy", d / "m1.npy", "-o", out, "--k", 3, "-q"]
    rc, _, err = run(args, capsys)
    assert rc == 2
    assert err.count("\n") == 1 and "exists; pass --force to overwrite" in err and str(out) in err
    assert out.read_text() == "precious\n"
    rc, _, err = run(args + ["--force"], capsys)
    assert rc == 0, err
    assert len(read_csv(out)) == 1


def test_fasta_seqs(files, capsys):
    d, x, attrs = files
    fa = d / "seqs.fa"
    with open(fa, "w") as f:
        for i, row in enumerate(x):
            s = "".join("ACGT"[j] for j in row.argmax(1))
            f.write(f">seq{i}\n{s[:13].lower()}\n{s[13:]}\n")
    rc, _, err = run(["score", "--seqs", fa, d / "m1.npy", "-o", d / "a.csv", "--k", 3, "-q"], capsys)
    assert rc == 0, err
    rc, _, err = run(["score", "--seqs", d / "seqs.npy", d / "m1.npy", "-o", d / "b.csv", "--k", 3, "-q"], capsys)
    assert rc == 0, err
    ra, rb = read_csv(d / "a.csv")[0], read_csv(d / "b.csv")[0]
    assert ra["kmer_kld"] == rb["kmer_kld"] and ra["kattr_kld"] == rb["kattr_kld"]


@pytest.mark.parametrize("text, match", [
    (">a\n" + "A" * L + "\n>b\n" + "A" * 7 + "R" + "A" * (L - 8) + "\n",
     "record 'b' (record 2) has 'R' at position 8; expected A, C, G, T or N"),
    (">a\n" + "A" * L + "\n>b\n" + "A" * (L - 1) + "\n", "record 'b' (record 2) has length 29, expected 30"),
])
def test_fasta_errors(files, capsys, text, match):
    d, _, _ = files
    (d / "bad.fa").write_text(text)
    rc, _, err = run(["score", "--seqs", d / "bad.fa", d / "m1.npy", "-o", d / "t.csv", "-q"], capsys)
    assert rc == 2
    assert err.startswith("acme-fast score: error: seqs file ") and match in err and err.count("\n") == 1
    assert not (d / "t.csv").exists()


def test_bad_inputs_fail_before_work(files, capsys, monkeypatch):
    d, x, _ = files
    np.save(d / "short.npy", attribution(np.random.default_rng(0), N - 2, L))
    (d / "trunc.npy").write_bytes((d / "m1.npy").read_bytes()[:300])
    import acme_fast.stream as stream

    def boom(*a, **k):
        raise AssertionError("scored before all inputs were checked")

    monkeypatch.setattr(stream, "score_stream", boom)
    for bad, match in [("short.npy", "has shape (15, 30, 4) but seqs file"), ("trunc.npy", "truncated .npy file"),
                       ("missing.npy", "no such file")]:
        rc, _, err = run(["score", "--seqs", d / "seqs.npy", d / "m1.npy", d / bad, "-o", d / "t.csv", "-q"],
                         capsys)
        assert rc == 2 and match in err and bad in err and err.count("\n") == 1, err
    assert not (d / "t.csv").exists()
    rc, _, err = run(["score", d / "m1.npy", "-o", d / "t.txt"], capsys)
    assert rc == 2 and "expected a file name ending in .csv or .json" in err
    rc, _, err = run(["score", d / "m1.npy", "-o", d / "nodir" / "t.csv"], capsys)
    assert rc == 2 and "does not exist" in err
    rc, _, err = run(["score", "--seqs", d / "seqs.npy", d / "m1.npy", "-o", d / "t.csv", "--layout", "NCL"],
                     capsys)
    assert rc == 2 and "it looks like layout='NLC'" in err


def test_scheduler_passes_through(files, capsys, monkeypatch):
    d, _, _ = files
    import acme_fast.dask as afd

    seen = {}

    def fake(attr_paths, seqs_path=None, **kw):
        seen.update(kw, attr_paths=attr_paths, seqs_path=seqs_path)
        return [{"attr": p, "n_sequences": N, "length": L, "kattr_kld": 1.5} for p in attr_paths]

    monkeypatch.setattr(afd, "score_files", fake)
    out = d / "t.json"
    rc, _, err = run(["score", "--seqs", d / "seqs.npy", d / "m1.npy", "-o", out, "--scheduler", "tcp://h:8786",
                      "--k", 4, "-q"], capsys)
    assert rc == 0, err
    assert seen["scheduler"] == "tcp://h:8786" and seen["k"] == 4 and seen["seqs_path"] == str(d / "seqs.npy")
    assert seen["metrics"] == ("kmer", "kattr") and seen["preset"] == "paper" and seen["layout"] == "NLC"
    assert json.loads(out.read_text())[0]["kattr_kld"] == 1.5


def test_scheduler_without_dask(files, capsys, monkeypatch):
    d, _, _ = files
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "distributed", None)
    rc, _, err = run(["score", "--seqs", d / "seqs.npy", d / "m1.npy", "-o", d / "t.csv", "--scheduler", "x:1"],
                     capsys)
    assert rc == 2 and "acme_fast[dask]" in err and err.count("\n") == 1
    assert not (d / "t.csv").exists()


def test_progress_and_summary(files, capsys):
    d, _, _ = files
    rc, _, err = run(["score", "--seqs", d / "seqs.npy", d / "m1.npy", "-o", d / "t.csv", "--k", 3,
                      "--preset", "acme"], capsys)
    assert rc == 0 and "1 row(s) written to" in err


def test_demo_kernels_only_runs(capsys):
    rc, out, _ = run(["demo", "--kernels-only", "--n", 200, "--length", 100, "--quiet"], capsys)
    assert rc in (0, 1) and "acme_fast demo --kernels-only" in out
    assert "focused" in out and "diffuse" in out
