"""Shared helpers for the acme_fast tests (data generators, golden loader, layouts)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


def onehot(rng, n, L, n_frac=0.0, dtype=np.float32):
    """Random one-hot DNA (n, L, 4); a fraction ``n_frac`` of rows are unknown bases (all zero)."""
    x = np.eye(4, dtype=np.float64)[rng.integers(0, 4, size=(n, L))]
    if n_frac > 0:
        x[rng.random((n, L)) < n_frac] = 0
    return x.astype(dtype)


def attribution(rng, n, L, dtype=np.float32, kind="normal"):
    """Random attribution maps (n, L, 4).

    kind: "normal" (continuous), "ties" (values in {-1, 0, 1}), "zeros",
    "const" (all four channels equal at a position, so zero after gauge correction).
    """
    if kind == "normal":
        a = rng.normal(size=(n, L, 4))
    elif kind == "ties":
        a = rng.integers(-1, 2, size=(n, L, 4)).astype(np.float64)
    elif kind == "zeros":
        a = np.zeros((n, L, 4))
    elif kind == "const":
        a = np.repeat(rng.normal(size=(n, L, 1)), 4, axis=-1)
    else:
        raise ValueError(kind)
    return a.astype(dtype)


def to_ncl(a):
    """(N, L, 4) -> (N, 4, L), the PyTorch layout (a transposed view)."""
    return np.swapaxes(np.asarray(a), 1, 2)


def golden(kind):
    """[(index entry, npz contents)] for kind in {"kmer", "kattr", "groundtruth"}."""
    index = json.loads((DATA / f"index_{kind}.json").read_text())
    out = []
    for entry in index:
        with np.load(DATA / entry["file"]) as z:
            out.append((entry, {k: z[k] for k in z.files}))
    return out


def golden_params(kind):
    """pytest parameters (one per golden case, id = file name)."""
    return [pytest.param(e, d, id=e["file"]) for e, d in golden(kind)]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def run_python(code: str) -> None:
    """Run code in a fresh interpreter, from a directory outside the repository, so that the
    installed package is imported (from the repository root, the uncompiled source tree would be)."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-c", code], check=True, cwd=d)


def run_isolated(code: str, timeout: float = 60.0, *, args: tuple = (), env: dict | None = None,
                 cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (outside the repository) with a timeout, so that a call
    that could crash or hang fails the test instead of killing the test run.

    Fails the test if the interpreter was killed by a signal (segfault, abort) or ran past
    ``timeout``; returns the finished process (stdout/stderr as text) otherwise.
    """
    import os

    with tempfile.TemporaryDirectory() as d:
        try:
            p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                               cwd=cwd or d, env=None if env is None else {**os.environ, **env})
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"hang: the call did not finish within {timeout} s\n{code}\n{exc.stderr or ''}")
    if p.returncode < 0:
        pytest.fail(f"killed by signal {-p.returncode}\n{code}\nstderr:\n{p.stderr[-3000:]}")
    return p


def run_cli(args, capsys):
    """acme-fast ARGS in this process: (exit status, stdout, stderr)."""
    from acme_fast.cli import main

    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def read_csv(path):
    """A CSV table as a list of dicts (strings)."""
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))
