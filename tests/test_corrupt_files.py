"""Damaged files: every reader format x {truncated, flipped header bytes, flipped data bytes,
missing chunk/dataset/key}. Each case is one line naming the file and what is wrong (the CLI
exits 2), raised when the file is opened (before any scoring) where the damage is in headers or
metadata, and while reading where only the data can show it. The one case no reader can see,
flipped data bytes in a plain .npy (the format has no checksum), is scored as written; the README
says so."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from acme_fast.cli import main
from acme_fast.io import ArraySource
from acme_fast.stream import score_stream

N, L = 200, 50


def _data():
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (N, L))]
    a = rng.normal(size=(N, L, 4)).astype(np.float32)
    return x, a


def _flip(path: Path, offset: int, n: int = 8) -> None:
    b = bytearray(path.read_bytes())
    offset = offset % len(b)
    for i in range(offset, min(offset + n, len(b))):
        b[i] ^= 0xFF
    path.write_bytes(bytes(b))


def _truncate(path: Path, frac: float = 0.6) -> None:
    b = path.read_bytes()
    path.write_bytes(b[: int(len(b) * frac)])


def _chunk_files(store: Path) -> list[Path]:
    return sorted(Path(d) / f for d, _, fs in os.walk(store) for f in fs if not f.startswith(("zarr.json", ".z")))


# (format, damage) -> (when the error comes: "open" | "read" | None for undetectable)
CASES = {
    ("npy", "truncated"): "open", ("npy", "header"): "open", ("npy", "data"): None, ("npy", "missing"): "open",
    ("npz-stored", "truncated"): "open", ("npz-stored", "header"): "open", ("npz-stored", "data"): "read",
    ("npz-stored", "missing"): "open",
    ("npz-deflated", "truncated"): "open", ("npz-deflated", "header"): "open", ("npz-deflated", "data"): "read",
    ("npz-deflated", "missing"): "open",
    ("h5", "truncated"): "open", ("h5", "header"): "open", ("h5", "data"): "read", ("h5", "missing"): "open",
    ("zarr", "truncated"): "read", ("zarr", "header"): "open", ("zarr", "data"): "read", ("zarr", "missing"): "open",
    ("fasta", "truncated"): "open", ("fasta", "header"): "open", ("fasta", "data"): "open",
    ("fasta", "missing"): "open",
    ("fasta.gz", "truncated"): "open", ("fasta.gz", "header"): "open", ("fasta.gz", "data"): "open",
    ("fasta.gz", "missing"): "open",
}


def make_damaged(tmp: Path, fmt: str, damage: str) -> tuple[Path, str, str | None]:
    """Write the file, damage it; returns (path, role 'attr' or 'seqs', dataset name)."""
    x, a = _data()
    if fmt == "npy":
        p = tmp / "a.npy"
        np.save(p, a)
        if damage == "truncated":
            _truncate(p)
        elif damage == "header":
            _flip(p, 20, 4)
        elif damage == "data":
            _flip(p, 4000)
        else:  # the header lost rows: the file holds more than it declares
            p.write_bytes(p.read_bytes().replace(b"(200, 50, 4)", b"(199, 50, 4)"))
        return p, "attr", None
    if fmt.startswith("npz"):
        p = tmp / "a.npz"
        (np.savez if fmt == "npz-stored" else np.savez_compressed)(p, **{("other" if damage == "missing"
                                                                             else "saliency"): a})
        if damage == "truncated":
            _truncate(p)
        elif damage == "header":
            _flip(p, 40, 4)  # the member's local header
        elif damage == "data":
            _flip(p, p.stat().st_size // 2)
        return p, "attr", "saliency"
    if fmt == "h5":
        h5py = pytest.importorskip("h5py")
        p = tmp / "a.h5"
        with h5py.File(p, "w") as f:
            f.create_dataset("other" if damage == "missing" else "saliency", data=a, chunks=(50, L, 4),
                             compression="gzip", fletcher32=True)
        if damage == "truncated":
            _truncate(p)
        elif damage == "header":
            _flip(p, 800, 16)  # the dataset's object header
        elif damage == "data":
            _flip(p, p.stat().st_size // 2, 16)
        return p, "attr", "saliency"
    if fmt == "zarr":
        zarr = pytest.importorskip("zarr")
        p = tmp / "a.zarr"
        z = zarr.open(str(p), mode="w", shape=a.shape, chunks=(50, L, 4), dtype="float32")
        z[:] = a
        chunk = _chunk_files(p)[1]
        if damage == "truncated":
            _truncate(chunk)
        elif damage == "header":
            meta = p / "zarr.json" if (p / "zarr.json").exists() else p / ".zarray"
            _flip(meta, 10, 4)
        elif damage == "data":
            _flip(chunk, 20)
        else:
            chunk.unlink()
        return p, "attr", None
    # FASTA (the sequences)
    letters = np.array(list("ACGT"))[x.argmax(-1)]
    text = "".join(f">s{i}\n{''.join(r)}\n" for i, r in enumerate(letters))
    gz = fmt == "fasta.gz"
    p = tmp / ("s.fa.gz" if gz else "s.fa")
    if damage == "missing":  # a record lost its sequence (a line went missing)
        text = text.replace(f">s7\n{''.join(letters[7])}\n", ">s7\n")
    with (gzip.open(p, "wt") if gz else open(p, "w")) as f:
        f.write(text)
    if damage == "truncated":
        _truncate(p)
    elif damage == "header":
        _flip(p, 3 if gz else 0, 1)
    elif damage == "data":
        _flip(p, p.stat().st_size // 2, 4)
    return p, "seqs", None


def _score(path: Path, role: str, dataset: str | None, tmp: Path) -> None:
    x, a = _data()
    if role == "attr":
        score_stream(str(path), x, dataset=dataset, progress=False, batch_size=64, k=3)
    else:
        score_stream(a, str(path), progress=False, batch_size=64, k=3)


@pytest.mark.parametrize("fmt,damage", list(CASES), ids=[f"{f}-{d}" for f, d in CASES])
def test_damaged_file(tmp_path, fmt, damage):
    path, role, dataset = make_damaged(tmp_path, fmt, damage)
    when = CASES[(fmt, damage)]
    name = "attr" if role == "attr" else "seqs"
    if when is None:  # no checksum in the format: read as written
        ArraySource(str(path), dataset, name=name)
        _score(path, role, dataset, tmp_path)
        return
    if when == "open":
        with pytest.raises((ValueError, OSError)) as ei:
            ArraySource(str(path), dataset, name=name)
    else:
        src = ArraySource(str(path), dataset, name=name)  # headers and metadata are fine
        src.close()
        with pytest.raises((ValueError, OSError)) as ei:
            _score(path, role, dataset, tmp_path)
    msg = str(ei.value)
    assert f"'{path}'" in msg, msg
    assert "\n" not in msg and len(msg) < 600, msg
    assert "Traceback" not in msg


@pytest.mark.parametrize("fmt,damage", [k for k, v in CASES.items() if v is not None],
                         ids=[f"{f}-{d}" for (f, d), v in CASES.items() if v is not None])
def test_damaged_file_cli(tmp_path, capsys, fmt, damage):
    path, role, dataset = make_damaged(tmp_path, fmt, damage)
    x, a = _data()
    out = tmp_path / "scores.csv"
    if role == "attr":
        np.save(tmp_path / "x.npy", x)
        argv = ["score", str(path), "--seqs", str(tmp_path / "x.npy"), "-o", str(out), "-q", "--k", "3"]
        if dataset:
            argv += ["--dataset", dataset]
    else:
        np.save(tmp_path / "a.npy", a)
        argv = ["score", str(tmp_path / "a.npy"), "--seqs", str(path), "-o", str(out), "-q", "--k", "3"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("acme-fast score: error: ") and "\n" not in err, err
    assert path.name in err, err
    assert not out.exists()
