"""Input validation: one place that checks what users pass before the kernels run.

Shape, dtype, layout and parameter checks happen here, in Python, once. Checks
on the values themselves (one-hot rows, finite attributions) are made by the
C++ kernels in the same pass that reads the data (a separate numpy pass would
cost as much as the metric); the kernels report the first offending position
and :func:`raise_kernel_error` turns it into the same kind of message.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np

from . import _core

LAYOUTS = ("NLC", "NCL")
PRESETS = ("paper", "acme")

_X_NATIVE = (np.uint8, np.float32, np.float64)


def check_layout(layout: Any, name: str = "layout") -> bool:
    """Return True for "NCL", False for "NLC"; raise for anything else."""
    if not isinstance(layout, str) or layout.upper() not in LAYOUTS:
        raise ValueError(f"{name}: expected 'NLC' (N, L, 4) or 'NCL' (N, 4, L), got {layout!r}")
    return layout.upper() == "NCL"


def check_preset(preset: Any) -> bool:
    """Return True for the "acme" preset, False for "paper"."""
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ValueError(f"preset: expected 'paper' or 'acme', got {preset!r}")
    return preset == "acme"


def check_threads(n_threads: int | None) -> int:
    """None means all cores (0 for the kernels); at most :func:`acme_fast._limits.thread_limit`."""
    if n_threads is None:
        return 0
    from ._limits import thread_limit

    hi = thread_limit()
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"n_threads: expected None or an integer in 1..{hi}, got {type(n_threads).__name__} "
                        f"{n_threads!r}")
    if not 1 <= n_threads <= hi:
        raise ValueError(f"n_threads: expected None or an integer in 1..{hi} (at most 4 per core, at least 64; "
                         f"this machine has {os.cpu_count()} cores), got {n_threads!r}")
    return int(n_threads)


def effective_threads(n_threads: int) -> int:
    """The threads a kernel call with ``n_threads`` (0: all cores) starts at most."""
    return int(_core.max_threads(n_threads))


def check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name}: expected an integer {rng}, got {value}")
    return int(value)


def check_real(name: str, value: Any, lo: float = -np.inf, lo_open: bool = False) -> float:
    """A finite real number >= lo (> lo with lo_open)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a finite number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not np.isfinite(v) or v < lo or (lo_open and v == lo):
        bound = f"> {lo}" if lo_open else f">= {lo}"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return v


def first_bad(mask: np.ndarray) -> tuple:
    """Index of the first True in mask, as a tuple."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


def check_quantile(quantile: Any, name: str = "quantile") -> float:
    if isinstance(quantile, bool) or not isinstance(quantile, numbers.Real):
        raise TypeError(f"{name}: expected a number in (0, 1), got {quantile!r}")
    q = float(quantile)
    if not (0.0 < q < 1.0):
        raise ValueError(f"{name}: expected a number in the open interval (0, 1), got {quantile!r}")
    return q


def _shape_str(a: np.ndarray) -> str:
    return "(" + ", ".join(str(s) for s in a.shape) + ")"


def _as_3d(arr: Any, name: str, ncl: bool) -> np.ndarray:
    if arr is None:
        raise TypeError(f"{name}: expected an array, got None")
    try:
        a = np.asarray(arr)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{name}: expected a regular 3-D array {'(N, 4, L)' if ncl else '(N, L, 4)'}, got nested "
                         f"sequences of unequal lengths ({exc})") from None
    if a.dtype.byteorder not in ("=", "|") and a.dtype.kind in "biuf":
        a = a.astype(a.dtype.newbyteorder("="))  # e.g. big-endian data read from HDF5
    if a.dtype == object:
        raise TypeError(f"{name}: expected a numeric array, got dtype object")
    if a.ndim == 2:
        raise ValueError(
            f"{name}: expected a 3-D array {'(N, 4, L)' if ncl else '(N, L, 4)'}, got shape {_shape_str(a)}; "
            f"for a single sequence add the batch axis with {name}[None]"
        )
    if a.ndim != 3:
        raise ValueError(
            f"{name}: expected a 3-D array {'(N, 4, L)' if ncl else '(N, L, 4)'}, got shape {_shape_str(a)}"
        )
    c_axis = 1 if ncl else 2
    if a.shape[c_axis] != 4:
        other = 2 if ncl else 1
        hint = ""
        if a.shape[other] == 4:
            hint = f"; it looks like layout={'NLC' if ncl else 'NCL'}, pass layout='{'NLC' if ncl else 'NCL'}'"
        layout = "NCL" if ncl else "NLC"
        raise ValueError(
            f"{name}: with layout='{layout}' expected 4 channels (A, C, G, T) on axis {c_axis}, "
            f"got shape {_shape_str(a)}{hint}"
        )
    if a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {_shape_str(a)}")
    return a


def as_attr(attr: Any, ncl: bool, name: str = "attr") -> np.ndarray:
    """C-contiguous float32/float64 (N, L, 4) or (N, 4, L) array."""
    a = _as_3d(attr, name, ncl)
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected float32 or float64 attributions, got dtype {a.dtype}")
    return np.ascontiguousarray(a)


def as_onehot(x: Any, ncl: bool, name: str = "x") -> np.ndarray:
    """C-contiguous one-hot array in a dtype the kernels read directly.

    bool/int8/uint8 are viewed as uint8 (no copy); float32/float64 are used as
    they are; other integer or float dtypes are converted to float64 (values are
    kept, so a stray 2 is still reported as not one-hot).
    """
    a = _as_3d(x, name, ncl)
    if a.dtype.kind == "c":
        raise TypeError(f"{name}: expected a real one-hot array, got dtype {a.dtype}")
    a = np.ascontiguousarray(a)
    if a.dtype in (np.bool_, np.int8):
        a = a.view(np.uint8)
    elif a.dtype not in _X_NATIVE:
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected a numeric one-hot array, got dtype {a.dtype}")
        a = a.astype(np.float64)
    return a


def check_same_shape(x: np.ndarray, attr: np.ndarray, xname: str = "x", aname: str = "attr") -> None:
    if x.shape != attr.shape:
        raise ValueError(
            f"{aname}: expected the same shape as {xname} {_shape_str(x)}, got {_shape_str(attr)}"
        )


def seq_len(a: np.ndarray, ncl: bool) -> int:
    return int(a.shape[2] if ncl else a.shape[1])


_KIND_NOT_ONE_HOT = 1
_KIND_NOT_FINITE = 2
_KIND_WEIGHT_OVERFLOW = 3
KIND_NOT_PROBABILITY = 4  # groundtruth: x_model outside [0, 1]; the caller words it


def _onehot_hint(row: Any, xname: str) -> str:
    """How to fix a row that is almost one-hot (soft, scaled) or probabilities."""
    if row is None:
        return ""
    r = np.asarray(row, dtype=np.float64)
    if not np.isfinite(r).all() or (r < 0).any():
        return ""
    nz = r[r != 0]
    if nz.size == 1 and 0 < nz[0] < 1:
        return (f"; it looks like a scaled one-hot array: pass ({xname} > 0) or divide each row by its largest "
                "value")
    if nz.size > 1 and (r <= 1).all() and abs(r.sum() - 1.0) < 0.05:
        return (f"; the rows look like base probabilities (a soft one-hot): round them with "
                f"np.eye(4)[{xname}.argmax(-1)] (keep all-zero rows as N), or, if they are the probabilities the "
                "sequences were sampled from, pass them as x_model (--ground-truth)")
    return ""


def raise_kernel_error(err: tuple | None, x: np.ndarray | None = None, ncl: bool = False,
                       xname: str = "x", aname: str = "attr") -> None:
    """Turn a kernel's (kind, sequence, position, value) report into an exception."""
    if err is None:
        return
    kind, seq, pos, value = err
    if kind == _KIND_NOT_ONE_HOT:
        row = None
        if x is not None:
            row = x[seq, :, pos] if ncl else x[seq, pos, :]
            row = np.asarray(row)
            if x.dtype == np.uint8:
                row = row.astype(np.int64)
        raise ValueError(
            f"{xname}: expected one-hot rows (one 1 and three 0s, or all zeros for an unknown base N); "
            f"sequence {seq}, position {pos} is {None if row is None else row.tolist()}{_onehot_hint(row, xname)}"
        )
    if kind == _KIND_NOT_FINITE:
        raise ValueError(
            f"{aname}: expected finite values, found {value} at sequence {seq}, position {pos}"
        )
    if kind == _KIND_WEIGHT_OVERFLOW:
        raise ValueError(
            f"weight: a point of radius {value:.3g} gives a weight of 2**96 or more; "
            "weight='inv_r2' needs radii that are not vanishingly small"
        )
    raise RuntimeError(f"kernel reported an unknown error {err!r}")


def has_openmp() -> bool:
    return bool(_core.has_openmp)
