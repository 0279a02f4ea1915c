"""Helpers of the genome-scale benchmarks (test_stream.py, stream_cold.py, memory_peak.py, dask_scaling.py).

* :func:`write_inputs` writes a float32 NLC attribution ``.npy`` (random normal) and a uint8
  one-hot ``.npy`` of the same shape, chunk by chunk: the whole array is never in memory.
* :data:`CASES` and :func:`run_case`: what is timed, the same in the warm (pytest-benchmark)
  and the cold-cache (stream_cold.py) runs:

  ``read attr`` / ``read attr+x``: iterate ``open_source(path).iter_batches(bs)`` (and
  ``.read`` the same rows of x) without touching the data. Each batch is a copy out of the
  memory map (page faults + memcpy, then ``madvise(MADV_DONTNEED)`` of the pages read), i.e.
  exactly the I/O that ``score_stream`` does, with the same batch size (``bs`` =
  ``acme_fast.io.default_batch_size`` of the inputs the metric reads, about 64 MiB).
  The scoring cases run ``acme_fast.stream.score_stream(..., progress=False)`` with all
  threads; they are compared with the read of the same inputs (``ref``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

L_DEFAULT = 2048
C = 4
ATTR_BYTES_PER_SEQ = L_DEFAULT * C * 4  # float32


def n_for_bytes(nbytes: float, L: int = L_DEFAULT) -> int:
    """Sequences of length L whose float32 NLC attributions take about ``nbytes``."""
    return max(1, int(round(nbytes / (L * C * 4))))


def _write_npy(path: Path, shape: tuple, dtype: str, chunks) -> None:
    """Write a C-order .npy header, then each chunk (an iterator of arrays) in turn."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_2_0(
            f, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": tuple(shape)})
        for ch in chunks:
            f.write(memoryview(np.ascontiguousarray(ch)).cast("B"))


def write_inputs(dirpath: str | os.PathLike, n: int, L: int = L_DEFAULT, *, seed: int = 0, with_x: bool = True,
                 chunk_bytes: int = 64 * 2**20, attr_name: str = "attr.npy", x_name: str = "x.npy") -> tuple:
    """Write ``attr.npy`` (float32, (n, L, 4), N(0, 1)) and ``x.npy`` (uint8 one-hot) into ``dirpath``.

    Generated ``chunk_bytes`` of attributions at a time. Returns ``(attr_path, x_path or None)``.
    """
    d = Path(dirpath)
    rows = max(1, chunk_bytes // (L * C * 4))
    rng = np.random.default_rng(seed)

    def attr_chunks():
        for s in range(0, n, rows):
            yield rng.standard_normal((min(rows, n - s), L, C), dtype=np.float32)

    def x_chunks():
        ar = np.arange(C, dtype=np.uint8)
        for s in range(0, n, rows * 4):
            codes = rng.integers(0, C, size=(min(rows * 4, n - s), L), dtype=np.uint8)
            yield (codes[..., None] == ar).view(np.uint8)

    a = d / attr_name
    _write_npy(a, (n, L, C), "<f4", attr_chunks())
    x = None
    if with_x:
        x = d / x_name
        _write_npy(x, (n, L, C), "|u1", x_chunks())
    return a, x


# --------------------------------------------------------------------------- timed cases
#: name -> (kind, inputs, kwargs). kind "read" or "score"; inputs "attr" or "attr+x".
CASES = {
    "read attr": ("read", "attr", {}),
    "kattr paper": ("score", "attr", {"metrics": ("kattr",), "preset": "paper"}),
    "kattr acme (2 passes)": ("score", "attr", {"metrics": ("kattr",), "preset": "acme"}),
    "read attr+x": ("read", "attr+x", {}),
    "kmer": ("score", "attr+x", {"metrics": ("kmer",), "preset": "paper"}),
    "kmer+kattr paper": ("score", "attr+x", {"metrics": ("kmer", "kattr"), "preset": "paper"}),
}
#: The read each scoring case is compared with.
REF = {"attr": "read attr", "attr+x": "read attr+x"}


def read_only(attr_path, x_path=None) -> int:
    """Iterate the batches score_stream would read (same batch size); returns the number of sequences."""
    from acme_fast.io import default_batch_size, open_source

    n = 0
    with open_source(attr_path, name="attr") as a:
        if x_path is None:
            for b in a.iter_batches(default_batch_size(a)):
                n += b.shape[0]
                del b
            return n
        with open_source(x_path, name="x") as x:
            bs = default_batch_size(a, x)
            for s in range(0, a.n_sequences, bs):
                ab = a.read(s, min(s + bs, a.n_sequences))
                xb = x.read(s, min(s + bs, a.n_sequences))
                n += ab.shape[0]
                del ab, xb
    return n


def run_case(name: str, attr_path, x_path, n_threads=None):
    kind, inputs, kw = CASES[name]
    xp = x_path if inputs == "attr+x" else None
    if kind == "read":
        return read_only(attr_path, xp)
    from acme_fast.stream import score_stream

    return score_stream(str(attr_path), None if xp is None else str(xp), progress=False, n_threads=n_threads, **kw)


def case_bytes(name: str, attr_path, x_path) -> int:
    """Bytes the case reads from disk (two passes over attr for the acme k-attr)."""
    kind, inputs, kw = CASES[name]
    b = os.path.getsize(attr_path)
    if name.startswith("kattr acme"):
        b *= 2
    if inputs == "attr+x":
        b += os.path.getsize(x_path)
    return b


def drop_caches() -> str | None:
    """``sync; echo 3 > /proc/sys/vm/drop_caches``; None on success, else why not."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# --------------------------------------------------------------------------- reporting
def table(times: dict, positions: int, ref_of: dict, title: str = "") -> str:
    """Markdown rows: case, time, M positions/s, GB/s read, ratio to its read. ``times``: name -> (s, bytes)."""
    out = [title] if title else []
    out += ["| case | time s | M positions/s | GB/s read | / read of the same inputs |", "|---|--:|--:|--:|--:|"]
    for name, (t, nbytes) in times.items():
        ref = ref_of.get(name)
        ratio = "—" if ref is None or ref not in times or ref == name else f"{t / times[ref][0]:.2f}"
        out.append(f"| {name} | {t:.3f} | {positions / t / 1e6:.1f} | {nbytes / t / 1e9:.2f} | {ratio} |")
    return "\n".join(out)


def ref_map() -> dict:
    return {name: REF[inputs] for name, (kind, inputs, kw) in CASES.items()}


#: Filled by test_stream.py (name -> (min seconds, bytes read)); printed by conftest's terminal summary.
WARM_RESULTS: dict = {}
WARM_INFO: dict = {}
