"""Out-of-core readers: stream batches of sequences from files larger than memory.

An :class:`ArraySource` wraps one 3-D array, ``(N, L, 4)`` (``layout="NLC"``) or
``(N, 4, L)`` (``layout="NCL"``), stored in

* ``.npy``: memory-mapped (``np.load(mmap_mode="r")``); pages already read are dropped
  from the process after each batch, so resident memory stays at about one batch;
* ``.npz``: one member (``dataset``; default: the only 3-D member, or ``arr_0`` as
  tfmodisco-lite writes). Uncompressed members (``np.savez``) are memory-mapped,
  compressed ones (``np.savez_compressed``) are decompressed batch by batch;
* ``.h5`` / ``.hdf5`` (h5py): ``dataset`` names the dataset; default: the only 3-D one;
* Zarr stores (a ``.zarr`` directory; zarr): an array, or a group and ``dataset``;
* FASTA (``.fa``, ``.fasta``, ``.fna``, optionally ``.gz``): read into a one-hot
  ``uint8`` array in memory (all records must have the same length);
* an array in memory (numpy, or anything with ``shape``, ``dtype`` and slicing, such as an
  ``h5py.Dataset`` or a ``zarr.Array``).

Everything is checked when the source is opened, before any data is read: the file exists
and is readable, is not truncated, holds the dataset asked for (or the error lists the
candidates), and the array is 3-D with 4 channels where ``layout`` says (with a hint when
the other layout fits). :func:`check_pair` checks that sequences and attributions agree.

Examples
--------
>>> with ArraySource("attr.h5", dataset="saliency") as src:      # doctest: +SKIP
...     for batch in src.iter_batches():                          # (n, L, 4) numpy arrays
...         acc.update(batch)
"""

from __future__ import annotations

import gzip
import mmap
import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ._deps import need
from ._validate import check_int, check_layout

__all__ = [
    "ArraySource",
    "open_source",
    "check_pair",
    "check_attr_dtype",
    "check_onehot_dtype",
    "default_batch_size",
    "read_fasta",
    "BATCH_BYTES",
    "open_in",
]

#: Target size in bytes of one batch (all inputs of a step together).
BATCH_BYTES = 64 * 2**20

_NPY = (".npy",)
_NPZ = (".npz",)
_HDF5 = (".h5", ".hdf5", ".hdf", ".he5")
_ZARR = (".zarr",)
_FASTA = (".fa", ".fasta", ".fna", ".fas", ".ffn", ".frn", ".mfa")
_FORMATS = ".npy, .npz, .h5/.hdf5, .zarr or FASTA (.fa/.fasta/.fna, optionally .gz)"
_MAX_LISTED = 20


def _shape_str(shape: tuple) -> str:
    return str(tuple(int(s) for s in shape))


def _need(module: str) -> Any:
    """Import an optional reader dependency (extra ``[io]``)."""
    return need(module, "reading this file", "io")


def _list_datasets(items: list[tuple[str, tuple, Any]]) -> str:
    shown = [f"'{n}' {_shape_str(s)} {np.dtype(d)}" for n, s, d in items[:_MAX_LISTED]]
    more = f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return ", ".join(shown) + more if shown else "none"


#: Dataset keys chosen by default, by role (the first word of the source's name).
_KNOWN_KEYS = {"attr": ("shap/seq",), "seqs": ("raw/seq",), "x": ("raw/seq",)}


def _pick_dataset(label: str, dataset: str | None, items: list[tuple[str, tuple, Any]], what: str) -> str:
    """Resolve the dataset name among ``items`` = [(name, shape, dtype)]."""
    names = [n for n, _, _ in items]
    if dataset is not None:
        key = dataset.strip("/")
        if key not in names:
            raise ValueError(
                f"{label}: expected a {what} named '{dataset}'; the file has {what}s: {_list_datasets(items)}"
            )
        return key
    # Files the field writes, by their keys: chromBPNet/BPNet contribution files hold the
    # hypothetical scores (shap/seq), their projection on the sequence (projected_shap/seq) and the
    # one-hot sequences (raw/seq), all (N, 4, L).
    for key in _KNOWN_KEYS.get(label.split(" ")[0], ()):
        if key in names:
            return key
    cands = [it for it in items if len(it[1]) in (3, 4)]
    if len(cands) == 1:
        return cands[0][0]
    if "arr_0" in [n for n, _, _ in cands]:
        return "arr_0"
    if not cands:
        raise ValueError(
            f"{label}: expected a 3-D {what} (N, L, 4) or (N, 4, L), found none; {what}s: {_list_datasets(items)}"
        )
    raise ValueError(
        f"{label}: several 3-D {what}s, name one with {_dataset_option(label)}: {_list_datasets(cands)}"
    )


def _dataset_option(label: str) -> str:
    """How the user names the dataset of this input: the API keyword and the CLI flag."""
    if label.startswith("seqs"):
        return "x_dataset= (CLI: --seqs-dataset)"
    if label.startswith("ground truth"):
        return "x_model_dataset= (CLI: --ground-truth-dataset)"
    return "dataset= (CLI: --dataset)"


# ---------------------------------------------------------------- readers ------------------


class _SliceReader:
    """Anything that slices along axis 0 into numpy (ndarray, h5py.Dataset, zarr.Array)."""

    def __init__(self, arr: Any, copy: bool = False) -> None:
        self.arr = arr
        self.copy = copy

    def read(self, start: int, stop: int) -> np.ndarray:
        b = np.asarray(self.arr[start:stop])
        if self.copy or not b.flags.c_contiguous:
            b = np.array(b, order="C", copy=True)
        return b

    def close(self) -> None:
        self.arr = None


class _MemmapReader(_SliceReader):
    """A memory-mapped array; copies each batch out and drops the pages read from the mapping."""

    def __init__(self, arr: np.memmap, data_offset: int) -> None:
        super().__init__(arr, copy=True)
        self._array_offset = data_offset % mmap.ALLOCATIONGRANULARITY
        self._row_bytes = int(np.prod(arr.shape[1:])) * arr.dtype.itemsize
        self._c_order = arr.flags.c_contiguous

    def read(self, start: int, stop: int) -> np.ndarray:
        b = super().read(start, stop)
        if self._c_order:
            self._drop(self._array_offset + start * self._row_bytes, self._array_offset + stop * self._row_bytes)
        return b

    def _drop(self, lo: int, hi: int) -> None:
        """Best effort: unmap the pages of [lo, hi) so resident memory does not grow with the file."""
        mm = getattr(self.arr, "_mmap", None)
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if mm is None or advice is None:
            return
        lo = lo - lo % mmap.PAGESIZE
        if hi > lo:
            try:
                mm.madvise(advice, lo, hi - lo)
            except (OSError, ValueError, AttributeError):
                pass

    def close(self) -> None:
        mm = getattr(self.arr, "_mmap", None)
        self.arr = None
        if mm is not None:
            try:
                mm.close()
            except (BufferError, ValueError):  # a batch view still holds it; freed with the view
                pass


class _ClassReader:
    """One class of a reader of (N, C, ...) arrays: rows read whole, the class taken out."""

    def __init__(self, inner: Any, index: int) -> None:
        self.inner, self.index = inner, index

    @property
    def arr(self) -> Any:
        return getattr(self.inner, "arr", None)

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.ascontiguousarray(self.inner.read(start, stop)[:, self.index])

    def close(self) -> None:
        self.inner.close()


class _ZipStoredReader(_MemmapReader):
    """A stored (uncompressed) .npz member, memory-mapped; its CRC-32 is checked while the rows
    are read in order from the first to the last (as scoring reads them): a mismatch raises when
    the last row is read. Reads out of order stop the check (the bytes are still read)."""

    def __init__(self, arr: np.memmap, data_offset: int, crc_header: int, crc_expected: int, label: str) -> None:
        super().__init__(arr, data_offset)
        self._crc: int | None = crc_header
        self._crc_pos = 0
        self._crc_expected = crc_expected
        self._label = label

    def read(self, start: int, stop: int) -> np.ndarray:
        b = super().read(start, stop)
        if self._crc is not None:
            if start != self._crc_pos:
                self._crc = None
            else:
                self._crc = zlib.crc32(memoryview(b).cast("B"), self._crc)
                self._crc_pos = stop
                if stop == self.arr.shape[0] and self._crc != self._crc_expected:
                    raise ValueError(
                        f"{self._label}: damaged: the CRC-32 of its data is {self._crc:08x}, the zip file records "
                        f"{self._crc_expected:08x}; some bytes changed after it was written")
        return b


class _ZipStreamReader:
    """A compressed .npz member in C order, decompressed sequentially batch by batch."""

    def __init__(self, path: Path, member: str, shape: tuple, dtype: np.dtype, label: str) -> None:
        self.path, self.member, self.shape, self.dtype, self.label = path, member, shape, dtype, label
        self._row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
        self._zf: zipfile.ZipFile | None = None
        self._fp: Any = None
        self._pos = 0

    def _open(self) -> None:
        self.close()
        self._zf = zipfile.ZipFile(self.path)
        self._fp = self._zf.open(self.member)
        version = np.lib.format.read_magic(self._fp)
        _read_header(self._fp, version)
        self._pos = 0

    def read(self, start: int, stop: int) -> np.ndarray:
        if self._fp is None or start < self._pos:
            self._open()
        if start > self._pos:  # skip forward
            self._fp.seek(self._fp.tell() + (start - self._pos) * self._row_bytes)
            self._pos = start
        n = stop - start
        out = np.empty((n,) + tuple(self.shape[1:]), dtype=self.dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))
        got = 0
        while got < len(view):
            k = self._fp.readinto(view[got:])
            if not k:
                raise ValueError(
                    f"{self.label}: member '{self.member}' ends early (sequence {start + got // self._row_bytes}"
                    f" of {self.shape[0]}); the file is truncated or corrupt"
                )
            got += k
        self._pos = stop
        if stop == self.shape[0]:
            # zipfile checks the member's CRC-32 at its end: read past the last row to reach it
            if self._fp.read(1):
                raise ValueError(f"{self.label}: damaged: the member holds more bytes than its header declares")
        return out

    def close(self) -> None:
        if self._fp is not None:
            self._fp.close()
        if self._zf is not None:
            self._zf.close()
        self._fp = self._zf = None


def _read_header(fp: Any, version: tuple) -> tuple:
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp)
    return np.lib.format.read_array_header_2_0(fp)  # 2.0 and 3.0 (utf-8) read the same for numeric dtypes


def _why(exc: BaseException) -> str:
    """One line: the exception's type and its first line."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 160:
        first = first[:157] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _check_numeric(label: str, dtype: np.dtype) -> None:
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biufc":
        raise ValueError(f"{label}: expected a numeric array, got dtype {dtype}")


# ---------------------------------------------------------------- openers -------------------


def _open_npy(path: Path, label: str) -> tuple[Any, str | None]:
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = _read_header(f, version)
            offset = f.tell()
    except Exception as exc:  # noqa: BLE001  (a damaged header raises ValueError, SyntaxError, TokenError, ...)
        raise ValueError(f"{label}: not a readable .npy file, its header is damaged ({_why(exc)})") from None
    _check_numeric(label, dtype)
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < expected:
        raise ValueError(
            f"{label}: truncated .npy file: its header says shape {_shape_str(shape)} {dtype} "
            f"({expected} bytes with the header) but the file has {size} bytes; was it still being written?"
        )
    if size > expected:
        raise ValueError(
            f"{label}: damaged .npy file: its header says shape {_shape_str(shape)} {dtype} ({expected} bytes with "
            f"the header) but the file has {size} bytes; the header does not describe the data"
        )
    if int(np.prod(shape)) == 0:
        return _SliceReader(np.empty(shape, dtype)), None
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{label}: could not memory-map the .npy file ({exc})") from None
    return _MemmapReader(arr, offset), None


def _zip_member_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Byte offset of a stored member's data in the zip file (after its local header)."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise ValueError("bad local file header")
        n_name = int.from_bytes(local[26:28], "little")
        n_extra = int.from_bytes(local[28:30], "little")
        return info.header_offset + 30 + n_name + n_extra


def _open_npz(path: Path, dataset: str | None, label: str) -> tuple[Any, str]:
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{label}: not a readable .npz (zip) file ({_why(exc)}); is it truncated or "
                         "damaged?") from None
    with zf:
        members = {}
        items = []
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[:-4]
            try:
                with zf.open(info) as fp:
                    version = np.lib.format.read_magic(fp)
                    shape, fortran, dtype = _read_header(fp, version)
                    hdr = fp.tell()
            except Exception as exc:  # noqa: BLE001  (damaged headers raise many types; zlib.error too)
                raise ValueError(f"{label}: member '{key}' is not a readable .npy array, it is damaged "
                                 f"({_why(exc)})") from None
            members[key] = (info, shape, fortran, dtype, hdr)
            items.append((key, shape, dtype if dtype.fields is None else np.dtype("V")))
        key = _pick_dataset(label, dataset, items, "member")
        info, shape, fortran, dtype, hdr = members[key]
    label_k = f"{label} member '{key}'"
    _check_numeric(label_k, dtype)
    if info.compress_type == zipfile.ZIP_STORED:
        try:
            data_off = _zip_member_offset(path, info) + hdr
        except (ValueError, OSError) as exc:
            raise ValueError(f"{label_k}: corrupt zip entry ({exc})") from None
        expected = data_off + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if path.stat().st_size < expected or info.file_size < hdr + expected - data_off:
            raise ValueError(f"{label_k}: truncated: its header says shape {_shape_str(shape)} {dtype}, "
                             "but the file is shorter")
        if int(np.prod(shape)) == 0:
            return _SliceReader(np.empty(shape, dtype)), key
        arr = np.memmap(path, dtype=dtype, mode="r", offset=data_off, shape=shape, order="F" if fortran else "C")
        if fortran:  # the rows are not stored in order: no CRC check while streaming
            return _MemmapReader(arr, data_off), key
        with open(path, "rb") as f:  # the member's CRC-32 covers its .npy header too
            f.seek(data_off - hdr)
            head = f.read(hdr)
        return _ZipStoredReader(arr, data_off, zlib.crc32(head), info.CRC, label_k), key
    if fortran:  # rare: a compressed Fortran-order member cannot be streamed by rows; load it
        with np.load(path, allow_pickle=False) as z:
            return _SliceReader(z[key]), key
    return _ZipStreamReader(path, key + ".npy", shape, dtype, label_k), key


def _open_hdf5(path: Path, dataset: str | None, label: str) -> tuple[Any, str, Any]:
    h5py = _need("h5py")
    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{label}: not a readable HDF5 file ({_why(exc)}); is it truncated or damaged?") from None
    try:
        items: list[tuple[str, tuple, Any]] = []

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                items.append((name, obj.shape if obj.shape is not None else (), obj.dtype))

        try:
            f.visititems(visit)
        except Exception as exc:  # noqa: BLE001  (damaged object headers: RuntimeError, OSError, KeyError)
            raise ValueError(f"{label}: damaged HDF5 file: its objects cannot be listed ({_why(exc)})") from None
        key = _pick_dataset(label, dataset, items, "dataset")
        try:
            ds = f[key]
            dtype = ds.dtype
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"{label}: damaged HDF5 file: dataset '{key}' cannot be opened ({_why(exc)})") from None
        _check_numeric(f"{label} dataset '{key}'", dtype)
    except BaseException:
        f.close()
        raise
    return _SliceReader(ds), key, f


def _is_zarr_dir(path: Path) -> bool:
    return path.is_dir() and (
        path.suffix.lower() in _ZARR or any((path / m).exists() for m in ("zarr.json", ".zarray", ".zgroup"))
    )


def _check_zarr_chunks(arr: Any, label: str, allow_missing: bool) -> None:
    """A chunk missing from the store would read as the fill value, silently: refuse it unless asked."""
    if allow_missing:
        return
    try:
        total, present = int(arr.nchunks), int(arr.nchunks_initialized)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{label}: damaged Zarr store: its chunks cannot be listed ({_why(exc)})") from None
    if present < total:
        fill = getattr(arr, "fill_value", None)
        raise ValueError(
            f"{label}: {total - present} of its {total} chunks are missing from the Zarr store; zarr would read them "
            f"as the fill value ({fill}) without a word. The store is incomplete or damaged; if missing chunks are "
            "meant as fill values, pass allow_missing_chunks=True (--allow-missing-chunks)"
        )


def _open_zarr(path: Path, dataset: str | None, label: str, allow_missing: bool = False) -> tuple[Any, str | None]:
    zarr = _need("zarr")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises many types (FileNotFoundError, KeyError, its own errors)
        raise ValueError(f"{label}: not a readable Zarr store ({type(exc).__name__}: {exc})") from None
    if hasattr(node, "shape") and not hasattr(node, "groups"):  # an array
        if dataset is not None:
            raise ValueError(f"{label}: expected a Zarr group holding '{dataset}', got a single array "
                             f"{_shape_str(node.shape)}; omit dataset (--dataset)")
        _check_numeric(label, np.dtype(node.dtype))
        _check_zarr_chunks(node, label, allow_missing)
        return _SliceReader(node), None

    items: list[tuple[str, tuple, Any]] = []

    def walk(g: Any, prefix: str) -> None:
        for name, arr in g.arrays():
            items.append((prefix + name, tuple(arr.shape), arr.dtype))
        for name, sub in g.groups():
            walk(sub, prefix + name + "/")

    try:
        walk(node, "")
    except Exception as exc:
        raise ValueError(f"{label}: could not list the Zarr group ({type(exc).__name__}: {exc})") from None
    key = _pick_dataset(label, dataset, items, "array")
    try:
        arr = node[key]
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{label}: damaged Zarr store: array '{key}' cannot be opened ({_why(exc)})") from None
    _check_numeric(f"{label} array '{key}'", np.dtype(arr.dtype))
    _check_zarr_chunks(arr, f"{label} array '{key}'", allow_missing)
    return _SliceReader(arr), key


def _strip_gz(path: Path) -> tuple[str, bool]:
    name = path.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    return os.path.splitext(name)[1], gz


def _is_fasta(path: Path) -> bool:
    ext, gz = _strip_gz(path)
    if ext in _FASTA:
        return True
    if gz or path.is_dir() or ext in _NPY + _NPZ + _HDF5 + _ZARR:
        return False
    try:
        with open(path, "rb") as f:
            return f.read(256).lstrip()[:1] == b">"
    except OSError:
        return False


# ---------------------------------------------------------------- FASTA ---------------------

_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"ACGT"):
    _LUT[_c] = _i
    _LUT[_c + 32] = _i  # lower case
_LUT[ord("N")] = _LUT[ord("n")] = 4
_EYE = np.eye(5, 4, dtype=np.uint8)  # code 4 (N) -> all-zero row


def open_in(stack: Any, source: Any, dataset: str | None, layout: str, name: str, *,
            allow_missing_chunks: bool = False, class_index: int | None = None) -> ArraySource:
    """:func:`open_source`, with the source closed when ``stack`` (a contextlib.ExitStack)
    closes if it was opened here (a source passed in stays open)."""
    src = open_source(source, dataset, layout, name=name, allow_missing_chunks=allow_missing_chunks,
                      class_index=class_index)
    if src is not source:
        stack.callback(src.close)
    return src


def read_fasta(path: str | os.PathLike, *, layout: str = "NLC", name: str = "seqs") -> np.ndarray:
    """Read a FASTA file into one-hot DNA.

    Parameters
    ----------
    path : str or path
        FASTA file (optionally gzip-compressed, ``.gz``). Bases A, C, G, T and N, in any case;
        N becomes an all-zero row. Every record must have the same length.
    layout : {"NLC", "NCL"}
    name : str
        What to call the file in error messages.

    Returns
    -------
    ndarray, shape (N, L, 4) or (N, 4, L), uint8
    """
    ncl = check_layout(layout)
    p = Path(path)
    label = f"{name} file '{path}'"
    if not p.exists():
        raise FileNotFoundError(f"{label}: no such file")
    try:
        opener = gzip.open if p.name.lower().endswith(".gz") else open
        with opener(p, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # gzip: BadGzipFile (OSError), truncation, bad CRC, bad data
        raise ValueError(f"{label}: could not read the file, it is truncated or damaged ({_why(exc)})") from None
    starts = []
    pos = data.find(b">")
    if pos < 0 or data[:pos].strip():
        raise ValueError(f"{label}: expected a FASTA file starting with a '>' header line, got "
                         f"{data[:40].decode('latin-1')!r}")
    while pos >= 0:
        starts.append(pos)
        pos = data.find(b"\n>", pos + 1)
        if pos >= 0:
            pos += 1
    n = len(starts)
    out: np.ndarray | None = None
    first = ""
    length = 0
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < n else len(data)
        rec = data[s + 1:e]
        nl = rec.find(b"\n")
        header, body = (rec, b"") if nl < 0 else (rec[:nl], rec[nl + 1:])
        rname = header.decode("utf-8", "replace").strip().split()[0] if header.strip() else f"#{i + 1}"
        seq = np.frombuffer(body.translate(None, b" \t\r\n"), dtype=np.uint8)
        if seq.size == 0:
            raise ValueError(f"{label}: record '{rname}' (record {i + 1}) has no sequence")
        codes = _LUT[seq]
        bad = codes == 255
        if bad.any():
            j = int(np.argmax(bad))
            ch = chr(seq[j])
            hint = ""
            if ch.upper() in "RYSWKMBDHV":
                hint = ("; it is an IUPAC ambiguity code, which has no one-hot row: replace these codes by N, e.g. "
                        "sed '/^>/!s/[RYSWKMBDHVryswkmbdhv]/N/g' in.fa > out.fa")
            raise ValueError(
                f"{label}: record '{rname}' (record {i + 1}) has {ch!r} at position {j + 1}; "
                f"expected A, C, G, T or N{hint}"
            )
        if out is None:
            first, length = rname, int(seq.size)
            out = np.zeros((n, 4, length) if ncl else (n, length, 4), dtype=np.uint8)
        elif seq.size != length:
            raise ValueError(
                f"{label}: record '{rname}' (record {i + 1}) has length {seq.size}, expected {length} like the "
                f"first record '{first}'; all records must have the same length"
            )
        oh = _EYE[codes]
        out[i] = oh.T if ncl else oh
    assert out is not None
    return out


# ---------------------------------------------------------------- the source ----------------


class ArraySource:
    """One 3-D array of sequences, read in batches along axis 0.

    Parameters
    ----------
    source : str, path, ndarray or array-like
        A ``.npy``, ``.npz``, ``.h5``/``.hdf5`` or FASTA file, a Zarr store (``.zarr``
        directory), a numpy array, or an array-like with ``shape``, ``dtype`` and slicing
        (``h5py.Dataset``, ``zarr.Array``).
    dataset : str, optional
        HDF5 dataset / Zarr array in a group / ``.npz`` member. Default: the only 3-D one
        (for ``.npz`` also ``arr_0``); if there are several, the error lists them.
    layout : {"NLC", "NCL"}
        ``(N, L, 4)`` or ``(N, 4, L)``. Batches keep the stored layout.
    name : str
        What to call the array in error messages ("attr", "x", "seqs" ...).
    allow_missing_chunks : bool
        Zarr only: read chunks missing from the store as the array's fill value. By default a
        missing chunk is an error (found when the source is opened): zarr itself would return
        the fill value without a word.
    class_index : int, optional
        For a 4-D array with a class axis, (N, C, L, 4) or (N, C, 4, L) (CREsted
        ``*_contrib.npz``): the class to read; batches are then (n, L, 4) / (n, 4, L).

    Attributes
    ----------
    shape : tuple of int
        ``(N, L, 4)`` or ``(N, 4, L)``.
    dtype : numpy.dtype
        The stored dtype (batches have it too).
    n_sequences, length : int
        ``N`` and ``L``.
    label : str
        How error messages name the source, e.g. ``"attr file 'model1.h5'"``.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Unreadable, truncated or corrupt file, no such dataset, not 3-D, no axis of 4
        channels where ``layout`` says, or empty.
    ImportError
        ``h5py`` / ``zarr`` missing for those formats.

    Examples
    --------
    >>> with ArraySource("attr.npy", layout="NCL") as src:     # doctest: +SKIP
    ...     src.shape, src.n_sequences
    ...     for batch in src.iter_batches(1024):
    ...         ...
    """

    def __init__(self, source: Any, dataset: str | None = None, layout: str = "NLC", *, name: str = "attr",
                 allow_missing_chunks: bool = False, class_index: int | None = None) -> None:
        self.ncl = check_layout(layout)
        self.allow_missing_chunks = bool(allow_missing_chunks)
        if class_index is not None:
            class_index = check_int("class_index", class_index, 0)
        self.class_index = class_index
        self.layout = layout.upper()
        self.name = name
        self.dataset: str | None = dataset
        self.path: Path | None = None
        self.format = "array"
        self._file: Any = None
        if dataset is not None and not isinstance(dataset, str):
            raise TypeError(f"dataset: expected a dataset name (str) or None, got {type(dataset).__name__}")
        if isinstance(source, (str, os.PathLike)):
            self.path = Path(source)
            self.label = f"{name} file '{source}'"
            self._reader = self._open_path(self.path, dataset)
            self._spec: tuple | None = (str(source), dataset, self.layout, name, self.allow_missing_chunks,
                                        self.class_index)
        else:
            self.label = name
            self._spec = None
            if isinstance(source, ArraySource):
                raise TypeError(f"{name}: already an ArraySource; use open_source() to pass it through")
            if not isinstance(source, np.ndarray) and all(hasattr(source, a) for a in ("shape", "dtype",
                                                                                          "__getitem__")):
                arr = source  # h5py.Dataset, zarr.Array, ...: read lazily
                self.format = type(source).__module__.split(".")[0]
            else:
                try:
                    arr = np.asarray(source)
                except ValueError as exc:  # ragged nested lists
                    raise ValueError(f"{name}: expected a regular 3-D array, got nested sequences of unequal lengths "
                                     f"({exc})") from None
            self._reader = _SliceReader(arr)
        arr = self._reader.arr if isinstance(self._reader, _SliceReader) else None
        if isinstance(self._reader, _ZipStreamReader):
            shape, dtype = self._reader.shape, self._reader.dtype
        else:
            shape, dtype = tuple(arr.shape), np.dtype(arr.dtype)
        try:
            shape = self._select_class(tuple(int(v) for v in shape))
            self._check_shape(tuple(int(s) for s in shape))
            _check_numeric(self.label, dtype)
        except BaseException:
            self.close()
            raise
        self.shape: tuple = tuple(int(s) for s in shape)
        self.dtype: np.dtype = dtype

    # -- opening ---------------------------------------------------------------------------

    def _open_path(self, p: Path, dataset: str | None) -> Any:
        label = self.label
        if not p.exists():
            raise FileNotFoundError(f"{label}: no such file or directory")
        if _is_zarr_dir(p):
            self.format = "zarr"
            reader, self.dataset = _open_zarr(p, dataset, label, self.allow_missing_chunks)
            return reader
        if p.is_dir():
            raise ValueError(f"{label}: is a directory, not a Zarr store (no zarr.json/.zarray/.zgroup); "
                             f"expected {_FORMATS}")
        if not os.access(p, os.R_OK):
            raise PermissionError(f"{label}: permission denied")
        ext = p.suffix.lower()
        if ext in _NPY:
            self.format = "npy"
            if dataset is not None:
                raise ValueError(f"{label}: a .npy file holds one array; dataset='{dataset}' does not apply")
            reader, _ = _open_npy(p, label)
            return reader
        if ext in _NPZ:
            self.format = "npz"
            reader, self.dataset = _open_npz(p, dataset, label)
            return reader
        if ext in _HDF5:
            self.format = "hdf5"
            reader, self.dataset, self._file = _open_hdf5(p, dataset, label)
            return reader
        if _is_fasta(p):
            self.format = "fasta"
            return _SliceReader(read_fasta(p, layout=self.layout, name=self.name))
        # unknown extension: sniff the magic bytes
        with open(p, "rb") as f:
            head = f.read(8)
        if head.startswith(b"\x93NUMPY"):
            self.format = "npy"
            return _open_npy(p, label)[0]
        if head.startswith(b"PK\x03\x04"):
            self.format = "npz"
            reader, self.dataset = _open_npz(p, dataset, label)
            return reader
        if head.startswith(b"\x89HDF\r\n\x1a\n"):
            self.format = "hdf5"
            reader, self.dataset, self._file = _open_hdf5(p, dataset, label)
            return reader
        raise ValueError(f"{label}: unknown file type '{p.suffix}'; expected {_FORMATS}")

    def _select_class(self, shape: tuple) -> tuple:
        """(N, C, L, 4) / (N, C, 4, L) contributions with a class axis (CREsted): keep class_index."""
        if len(shape) != 4:
            if self.class_index is not None:
                raise ValueError(f"{self.label}: class_index (--class) applies to 4-D arrays (N, C, L, 4) with a "
                                 f"class axis, got shape {_shape_str(shape)}")
            return shape
        if self.class_index is None:
            raise ValueError(f"{self.label}: a 4-D array {_shape_str(shape)}, read as (N, classes, L, 4) with a class "
                             "axis (CREsted contributions): choose the class with class_index= (--class)")
        if self.class_index >= shape[1]:
            raise ValueError(f"{self.label}: class_index (--class) {self.class_index} is out of range for "
                             f"{shape[1]} classes")
        self._reader = _ClassReader(self._reader, self.class_index)
        return (shape[0],) + shape[2:]

    def _check_shape(self, shape: tuple) -> None:
        lay = "(N, 4, L)" if self.ncl else "(N, L, 4)"
        if len(shape) != 3:
            raise ValueError(f"{self.label}: expected a 3-D array {lay}, got shape {_shape_str(shape)}")
        c_axis, other = (1, 2) if self.ncl else (2, 1)
        if shape[c_axis] != 4:
            hint = ""
            if shape[other] == 4:
                alt = "NLC" if self.ncl else "NCL"
                hint = f"; it looks like layout='{alt}', pass layout='{alt}' (--layout {alt})"
            raise ValueError(
                f"{self.label}: with layout='{self.layout}' expected 4 channels (A, C, G, T) on axis {c_axis} "
                f"{lay}, got shape {_shape_str(shape)}{hint}"
            )
        if shape[0] == 0 or shape[other] == 0:
            raise ValueError(f"{self.label}: expected a non-empty array, got shape {_shape_str(shape)}")

    # -- properties ------------------------------------------------------------------------

    @property
    def n_sequences(self) -> int:
        """Number of sequences ``N``."""
        return self.shape[0]

    @property
    def length(self) -> int:
        """Sequence length ``L``."""
        return self.shape[2] if self.ncl else self.shape[1]

    @property
    def nbytes_per_sequence(self) -> int:
        """Bytes of one sequence (``4 * L * itemsize``)."""
        return 4 * self.length * self.dtype.itemsize

    def default_batch_size(self, target_bytes: int = BATCH_BYTES) -> int:
        """Sequences per batch so that a batch is about ``target_bytes`` (64 MiB)."""
        return default_batch_size(self, target_bytes=target_bytes)

    # -- reading ---------------------------------------------------------------------------

    def read(self, start: int, stop: int) -> np.ndarray:
        """Sequences ``start:stop`` as a C-contiguous numpy array in the stored layout."""
        if self._reader is None:
            raise ValueError(f"{self.label}: the source is closed")
        start, stop = max(0, int(start)), min(self.n_sequences, int(stop))
        try:
            return self._reader.read(start, stop)
        except ValueError as exc:
            if str(exc).startswith(self.label):  # already says which file and what is wrong
                raise
            raise ValueError(f"{self.label}: reading sequences {start}..{stop - 1} failed, the file is damaged "
                             f"({_why(exc)})") from None
        except MemoryError:
            raise
        except OSError as exc:
            raise OSError(f"{self.label}: reading sequences {start}..{stop - 1} failed ({_why(exc)})") from None
        except Exception as exc:  # noqa: BLE001  (zlib.error, BadZipFile, codec errors of zarr/HDF5 filters)
            raise ValueError(f"{self.label}: reading sequences {start}..{stop - 1} failed, the file is damaged "
                             f"({_why(exc)})") from None

    def iter_batches(self, batch_size: int | None = None, start: int = 0,
                     stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield consecutive batches of sequences.

        Parameters
        ----------
        batch_size : int, optional
            Sequences per batch (default: :meth:`default_batch_size`, about 64 MiB). The last
            batch may be shorter.
        start, stop : int
            Range of sequences (default: all).

        Yields
        ------
        ndarray, shape (b, L, 4) or (b, 4, L)
            C-contiguous, the stored dtype. Only one batch is held at a time.
        """
        bs = self.default_batch_size() if batch_size is None else check_int("batch_size", batch_size, 1)
        stop = self.n_sequences if stop is None else min(int(stop), self.n_sequences)
        for s in range(int(start), stop, bs):
            yield self.read(s, min(s + bs, stop))

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.iter_batches()

    def __len__(self) -> int:
        return self.n_sequences

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Release the file (HDF5 handle, memory map, zip)."""
        reader, self._reader = getattr(self, "_reader", None), None
        if reader is not None:
            reader.close()
        f, self._file = getattr(self, "_file", None), None
        if f is not None:
            try:
                f.close()
            except Exception:  # noqa: BLE001  (h5py may already be shutting down)
                pass

    def __enter__(self) -> ArraySource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __reduce__(self) -> tuple:
        """Pickle file-backed sources by reference (reopened on unpickling, e.g. on a Dask worker)."""
        if self._spec is not None:
            return (_reopen, self._spec)
        return (_reopen_array, (self.read(0, self.n_sequences), self.layout, self.name))

    def __repr__(self) -> str:
        ds = f", dataset='{self.dataset}'" if self.dataset else ""
        where = f"'{self.path}'" if self.path is not None else self.format
        return (f"ArraySource({where}{ds}, layout='{self.layout}', shape={_shape_str(self.shape)}, "
                f"dtype={self.dtype})")


def _reopen(path: str, dataset: str | None, layout: str, name: str, allow_missing_chunks: bool = False,
            class_index: int | None = None) -> ArraySource:
    return ArraySource(path, dataset, layout, name=name, allow_missing_chunks=allow_missing_chunks,
                       class_index=class_index)


def _reopen_array(arr: np.ndarray, layout: str, name: str) -> ArraySource:
    return ArraySource(arr, None, layout, name=name)


def open_source(source: Any, dataset: str | None = None, layout: str = "NLC", *, name: str = "attr",
                allow_missing_chunks: bool = False, class_index: int | None = None) -> ArraySource:
    """An :class:`ArraySource` for a path, an array, or an existing source (returned as is).

    Parameters are those of :class:`ArraySource`. An existing source must have the layout
    asked for.
    """
    if isinstance(source, ArraySource):
        if source.layout != layout.upper():
            raise ValueError(f"{name}: the source was opened with layout='{source.layout}', "
                             f"expected layout='{layout.upper()}'")
        return source
    return ArraySource(source, dataset, layout, name=name, allow_missing_chunks=allow_missing_chunks,
                       class_index=class_index)


def check_pair(x: ArraySource, attr: ArraySource) -> None:
    """Raise ValueError unless sequences and attributions have the same N and L.

    The message names both sources and their shapes.
    """
    if x.layout != attr.layout:
        raise ValueError(f"{attr.label}: layout '{attr.layout}' differs from {x.label} layout '{x.layout}'")
    if x.shape != attr.shape:
        what = []
        if x.n_sequences != attr.n_sequences:
            what.append(f"N: {x.n_sequences} vs {attr.n_sequences}")
        if x.length != attr.length:
            what.append(f"L: {x.length} vs {attr.length}")
        raise ValueError(
            f"{attr.label}: has shape {_shape_str(attr.shape)} but {x.label} has shape {_shape_str(x.shape)}; "
            f"expected the same number of sequences and length ({', '.join(what)})"
        )


def check_attr_dtype(src: ArraySource) -> None:
    """Attributions must be float16/32/64 (float16 is widened batch by batch)."""
    if src.dtype.kind != "f" or src.dtype.itemsize > 8:
        raise TypeError(f"{src.label}: expected float32 or float64 attributions, got dtype {src.dtype}")


def check_onehot_dtype(src: ArraySource) -> None:
    """One-hot sequences must be bool, integer or float."""
    if src.dtype.kind not in "biuf":
        raise TypeError(f"{src.label}: expected a bool, integer or float one-hot array, got dtype {src.dtype}")


def default_batch_size(*sources: ArraySource, target_bytes: int = BATCH_BYTES) -> int:
    """Sequences per batch so that one batch of all ``sources`` together is about ``target_bytes``."""
    per_seq = sum(s.nbytes_per_sequence for s in sources if s is not None)
    n = max((s.n_sequences for s in sources if s is not None), default=1)
    return int(max(1, min(n, target_bytes // max(per_seq, 1))))
