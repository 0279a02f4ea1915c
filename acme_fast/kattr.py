"""k-attr-mean KLD (Method 2 of Majdandzic, Rajesh et al. 2022; SPEC section 3)."""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from typing import Any

import numpy as np

from . import _core
from ._limits import check_memory, kattr_hist_bytes, out_of_memory
from ._results import KattrResult, _Sources
from ._validate import (
    as_attr,
    check_int,
    check_layout,
    check_preset,
    check_quantile,
    check_threads,
    effective_threads,
    first_bad,
    raise_kernel_error,
    seq_len,
)

__all__ = ["kattr_kld", "KattrAccumulator", "gauge_correct"]

PI_ACME = 3.1416  # the constant of the published code
_WEIGHTS = {"r2": 0, "none": 1, "inv_r2": 2}
_MAX_BINS = 46340  # n_bins**2 < 2**31
_SCOPES = ("sequence", "global")


def gauge_correct(attr: Any, *, layout: str = "NLC") -> np.ndarray:
    """Gauge (gradient) correction: subtract the mean over the 4 channels at each position.

    Parameters
    ----------
    attr : array_like, shape (N, L, 4) or (N, 4, L), float32 or float64
    layout : {"NLC", "NCL"}

    Returns
    -------
    ndarray, same shape and dtype as ``attr``
        Computed in float64, returned in the input's precision.
    """
    ncl = check_layout(layout)
    a = as_attr(attr, ncl)
    axis = 1 if ncl else 2
    a64 = a.astype(np.float64, copy=False)
    bad = ~np.isfinite(a64)
    if bad.any():
        i, j, c = first_bad(bad)
        pos = j if not ncl else c  # (N, L, 4): axis 1 is the position; (N, 4, L): axis 2
        raise ValueError(f"attr: expected finite values, found {a64[i, j, c]} at sequence {i}, position {pos}")
    # The mean as a sum of quarters: the same value as np.mean (scaling by 1/4 is exact), and it
    # cannot overflow for finite input.
    out = a64 - (a64 * 0.25).sum(axis=axis, keepdims=True)
    return out.astype(a.dtype, copy=False)


_KATTR_FIX = "use a larger bin_width (the bins grow as 1/bin_width**2) or fewer n_threads"


class _KattrParams:
    """Resolved, validated parameters of the k-attr-mean metric."""

    def __init__(self, window: int, quantile: float, threshold_scope: str | None, bin_width: float,
                 prior_bins: int | None, weight: str, preset: str, layout: str,
                 n_threads: int | None) -> None:
        self.acme = check_preset(preset)
        self.preset = preset
        self.window = check_int("window", window, 1)
        if not self.acme and self.window % 2 == 0:
            raise ValueError(f"window: expected an odd window for preset 'paper' (centred mean), got {window}")
        self.quantile = check_quantile(quantile)
        if threshold_scope is None:
            threshold_scope = "global" if self.acme else "sequence"
        if not isinstance(threshold_scope, str) or threshold_scope not in _SCOPES:
            raise ValueError(f"threshold_scope: expected 'sequence', 'global' or None, got {threshold_scope!r}")
        self.threshold_scope = threshold_scope
        if isinstance(bin_width, bool) or not isinstance(bin_width, numbers.Real):
            raise TypeError(f"bin_width: expected a number in (0, pi) radians, got {bin_width!r}")
        if not (0.0 < float(bin_width) < math.pi):
            raise ValueError(f"bin_width: expected a width in radians in (0, pi), got {bin_width!r}")
        self.bin_width = float(bin_width)
        n_bins = (PI_ACME if self.acme else math.pi) / self.bin_width
        if not n_bins <= _MAX_BINS:  # bin indices are 32-bit; memory runs out long before anyway
            raise ValueError(f"bin_width: expected a width of at least {math.pi / _MAX_BINS:.3g} radians (at most "
                             f"{_MAX_BINS} bins per angle), got {bin_width!r}")
        self.n_bins = int(n_bins)
        if prior_bins is None:
            prior_bins = 6 if self.acme else 5
        # A boxcar wider than twice the grid only repeats bins: bounded by the bins.
        hi = 2 * self.n_bins + 1
        if isinstance(prior_bins, numbers.Integral) and not isinstance(prior_bins, bool) and prior_bins > hi:
            raise ValueError(f"prior_bins: expected an integer in 1..{hi} (2 n_bins + 1; bin_width={self.bin_width:g} "
                             f"gives n_bins = {self.n_bins} per angle), got {prior_bins}")
        self.prior_bins = check_int("prior_bins", prior_bins, 1, hi)
        if not isinstance(weight, str) or weight not in _WEIGHTS:
            raise ValueError(f"weight: expected one of {sorted(_WEIGHTS)}, got {weight!r}")
        self.weight = weight
        self.ncl = check_layout(layout)
        self.n_threads = check_threads(n_threads)
        self.check_memory()

    def check_memory(self) -> None:
        """Refuse (MemoryError naming bin_width) a histogram that would not fit in memory."""
        nt = effective_threads(self.n_threads)
        check_memory(kattr_hist_bytes(self.n_bins, nt), "bin_width",
                     f"bin_width={self.bin_width:g} gives {self.n_bins}x{self.n_bins} angular bins; the histograms "
                     f"with {nt} thread(s)", _KATTR_FIX)

    def key(self) -> tuple:
        return (self.acme, self.window, self.quantile, self.threshold_scope, self.bin_width,
                self.prior_bins, self.weight)

    def attr(self, attr: Any) -> np.ndarray:
        a = as_attr(attr, self.ncl)
        L = seq_len(a, self.ncl)
        if L < self.window:
            raise ValueError(f"attr: sequence length L={L} is shorter than window={self.window}; "
                             "expected L >= window")
        return a

    def kernel_args(self) -> tuple:
        return (self.acme, self.window, self.quantile, self.bin_width, self.n_bins, _WEIGHTS[self.weight])

    def finish(self, hist: np.ndarray, n_points: int) -> KattrResult:
        kld, mass, prior = _core.kattr_finish(hist, self.acme, self.n_bins, self.prior_bins)
        if n_points == 0:
            warnings.warn("kattr_kld: no point passed the threshold; the KLD is NaN", RuntimeWarning,
                          stacklevel=3)
        return KattrResult(kld=float(kld), mass=mass, prior=prior, n_points=int(n_points),
                           bin_width=self.bin_width, preset=self.preset)


class KattrAccumulator:
    """Streaming k-attr-mean KLD: :meth:`update` with batches, :meth:`merge`, :meth:`result`.

    Takes the keyword arguments of :func:`kattr_kld`, plus ``two_pass``. Every mode gives
    exactly (bit for bit) the one-shot result, for any batching and any merge order:

    * sequence threshold scope (preset "paper" default): one pass; the state is an exact
      (fixed-point) histogram, a few kB.
    * global scope (preset "acme" default), ``two_pass=False``: one pass; the cutoff
      depends on all points, so every point's radius and bin are kept (12 bytes per
      position) until :meth:`result`.
    * global scope, ``two_pass=True``: bounded memory, two passes over the same data.
      Pass 0 counts radii in a 2**20-bucket radix histogram; :meth:`next_pass` finds the
      bucket that holds the cutoff; pass 1 bins every point above it and keeps only the
      points inside it. ``n_passes`` says how many passes an accumulator needs.

    Examples
    --------
    >>> acc = KattrAccumulator(preset="acme", two_pass=True)   # doctest: +SKIP
    >>> for p in range(acc.n_passes):
    ...     for batch in batches():
    ...         acc.update(batch)
    ...     if p + 1 < acc.n_passes:
    ...         acc.next_pass()
    >>> acc.result().kld
    """

    def __init__(self, *, window: int = 3, quantile: float = 0.9, threshold_scope: str | None = None,
                 bin_width: float = 0.1, prior_bins: int | None = None, weight: str = "r2",
                 preset: str = "paper", layout: str = "NLC", n_threads: int | None = None,
                 two_pass: bool = False) -> None:
        self._p = _KattrParams(window, quantile, threshold_scope, bin_width, prior_bins, weight, preset,
                               layout, n_threads)
        self.two_pass = bool(two_pass)
        self.n_passes = 2 if (self.two_pass and self._p.threshold_scope == "global") else 1
        self.pass_index = 0
        self._plan: tuple | None = None  # (bucket, need, n_sequences of pass 0), two-pass mode
        self._reset_data()

    def _reset_data(self) -> None:
        self._sources = _Sources()
        self._hist = np.zeros((self._p.n_bins**2, 4), dtype=np.uint64)
        self._n_points = 0
        self._r: list[np.ndarray] = []
        self._bin: list[np.ndarray] = []
        self._keys: np.ndarray | None = None
        self.n_sequences = 0

    @property
    def params(self) -> _KattrParams:
        return self._p

    @property
    def n_threads(self) -> int | None:
        """Kernel threads for the next updates (None: all cores). Results do not depend on it,
        so it may change between batches or passes."""
        return self._p.n_threads or None

    @n_threads.setter
    def n_threads(self, value: int | None) -> None:
        self._p.n_threads = check_threads(value)
        self._p.check_memory()

    def _check_intact(self) -> None:
        if getattr(self, "_broken", False):
            raise ValueError("this accumulator holds part of a batch that failed validation; "
                             "start a new one (the error was raised by that update)")

    def _mode(self) -> str:
        if self._p.threshold_scope == "sequence":
            return "sequence"
        if self.n_passes == 1:
            return "stored"
        return "keys" if self.pass_index == 0 else "bins"

    def update(self, attr: Any) -> KattrAccumulator:
        """Add a batch of raw attribution maps, shape (n, L, 4) or (n, 4, L)."""
        with out_of_memory("bin_width", _KATTR_FIX):
            return self._update(attr)

    def _update(self, attr: Any) -> KattrAccumulator:
        p = self._p
        a = p.attr(attr)
        mode = self._mode()
        if mode == "sequence":
            out = _core.kattr_hist(a, *p.kernel_args(), False, p.ncl, p.n_threads)
            raise_kernel_error(out["error"])
            self._hist = _core.hist_merge(self._hist, out["hist"])
            self._n_points += int(out["n_points"])
        elif mode == "stored":
            r, b, err = _core.kattr_points(a, *p.kernel_args(), p.ncl, p.n_threads)
            raise_kernel_error(err)
            self._r.append(r)
            self._bin.append(b)
        elif mode == "keys":
            if self._keys is None:
                self._keys = np.zeros(_core.stream_keys, dtype=np.int64)
            try:
                (err,) = _core.kattr_stream_keys(a, *p.kernel_args(), p.ncl, p.n_threads, self._keys)
            except BaseException:  # Ctrl-C (or no memory) inside: part of this batch is in the counts
                self._broken = True
                raise
            if err is not None:  # the counts were added in place: part of this batch is in them
                self._broken = True
            raise_kernel_error(err)
        else:
            out = _core.kattr_stream_bin(a, *p.kernel_args(), p.ncl, p.n_threads, self._plan[0])
            raise_kernel_error(out["error"])
            self._hist = _core.hist_merge(self._hist, out["hist"])
            self._n_points += int(out["n_points"])
            self._r.append(out["cand_r"])
            self._bin.append(out["cand_bin"])
        self.n_sequences += int(a.shape[0])
        self._sources.fed()
        return self

    def merge(self, other: KattrAccumulator) -> KattrAccumulator:
        """Add another accumulator's state (other data, same parameters, same pass)."""
        if not isinstance(other, KattrAccumulator):
            raise TypeError(f"other: expected a KattrAccumulator, got {type(other).__name__}")
        if other._p.key() != self._p.key() or other.n_passes != self.n_passes:
            raise ValueError("other: accumulators were made with different parameters")
        self._check_intact()
        other._check_intact()
        if other.pass_index != self.pass_index or other._plan != self._plan:
            raise ValueError(f"other: expected an accumulator in pass {self.pass_index} with the same cutoff plan "
                             f"(use empty_like() for pass 1), got pass {other.pass_index}")
        self._sources.check_disjoint(other._sources)
        self._hist = _core.hist_merge(self._hist, other._hist)
        self._n_points += other._n_points
        self._r.extend(other._r)
        self._bin.extend(other._bin)
        if other._keys is not None:
            self._keys = other._keys.copy() if self._keys is None else self._keys + other._keys
        self.n_sequences += other.n_sequences
        self._sources.add(other._sources)
        return self

    def empty_like(self) -> KattrAccumulator:
        """A fresh accumulator with the same parameters, pass and cutoff plan, and no data."""
        new = copy.copy(self)
        new._reset_data()
        return new

    def next_pass(self) -> KattrAccumulator:
        """End pass 0 of a two-pass accumulator (all data and merges in) and start pass 1.

        Pass 1 must see the same data again (any batching, any split over workers).
        """
        self._check_intact()
        if self.n_passes != 2 or self.pass_index != 0:
            raise ValueError(f"next_pass: this accumulator has {self.n_passes} pass(es) and is in pass "
                             f"{self.pass_index}; only pass 0 of a two-pass accumulator can end")
        if self.n_sequences == 0:
            raise ValueError("no data: call update() with at least one batch first")
        bucket, need = _core.kattr_stream_plan(self._keys, self._p.quantile, self._p.acme)
        # What pass 1 must find if it sees the same data: the points above the bucket and in it.
        above = int(self._keys[bucket + 1:].sum()) if bucket >= 0 else 0
        inside = int(self._keys[bucket]) if bucket >= 0 else 0
        self._plan = (int(bucket), int(need), int(self.n_sequences), above, inside)
        self.pass_index = 1
        self._reset_data()
        return self

    def result(self) -> KattrResult:
        """The k-attr-mean KLD of everything added so far."""
        p = self._p
        self._check_intact()
        if self.pass_index + 1 < self.n_passes:
            raise ValueError("result: a two-pass accumulator needs next_pass() and a second pass over the data")
        if self.n_sequences == 0:
            raise ValueError("no data: call update() with at least one batch first")
        mode = self._mode()
        if mode == "sequence":
            return p.finish(self._hist, self._n_points)
        r = np.concatenate(self._r) if self._r else np.zeros(0)
        b = np.concatenate(self._bin) if self._bin else np.zeros(0, dtype=np.int32)
        if mode == "stored":
            out = _core.kattr_hist_from_points(r, b, p.acme, p.quantile, p.n_bins, _WEIGHTS[p.weight], p.n_threads)
        else:
            if self.n_sequences != self._plan[2]:
                raise ValueError(f"pass 1 saw {self.n_sequences} sequences but pass 0 saw {self._plan[2]}; "
                                 "both passes must see the same data")
            above, inside = self._plan[3], self._plan[4]
            if self._n_points != above or r.shape[0] != inside:
                raise ValueError(f"pass 1 saw different data from pass 0 (the same {self.n_sequences} sequences were "
                                 f"expected: {above} points above the cutoff bucket and {inside} in it, pass 1 found "
                                 f"{self._n_points} and {r.shape[0]}); both passes must see the same data")
            out = _core.kattr_stream_finish(self._hist, r, b, self._plan[1], p.n_bins, _WEIGHTS[p.weight])
        raise_kernel_error(out["error"])
        return p.finish(out["hist"], int(out["n_points"]) + (self._n_points if mode == "bins" else 0))

    def __getstate__(self) -> dict:
        # The pass-0 radix histogram is 8 MB dense but has few non-zero buckets: ship it sparse.
        state = self.__dict__.copy()
        if self._keys is not None:
            nz = np.flatnonzero(self._keys)
            state["_keys"] = ("sparse", nz.astype(np.int32), self._keys[nz])
        return state

    def __setstate__(self, state: dict) -> None:
        keys = state.get("_keys")
        if isinstance(keys, tuple) and keys and keys[0] == "sparse":
            dense = np.zeros(_core.stream_keys, dtype=np.int64)
            dense[keys[1]] = keys[2]
            state["_keys"] = dense
        self.__dict__.update(state)


def kattr_kld(attr: Any, *, window: int = 3, quantile: float = 0.9, threshold_scope: str | None = None,
              bin_width: float = 0.1, prior_bins: int | None = None, weight: str = "r2",
              preset: str = "paper", layout: str = "NLC", n_threads: int | None = None) -> KattrResult:
    """k-attr-mean KLD: how concentrated the directions of strong attribution windows are.

    Window-averaged, gauge-corrected, normalised attribution vectors are projected onto the
    3-D plane orthogonal to (1, 1, 1, 1); the strongest ones (radius above ``quantile``) are
    binned by direction (phi', theta) weighted by r**2, and the KL divergence of that mass
    from its boxcar-smoothed self is returned (SPEC section 3). Higher is more consistent.

    Parameters
    ----------
    attr : array_like, shape (N, L, 4) or (N, 4, L), float32 or float64
        Raw attribution maps.
    window : int
        "paper": odd width of the centred mean (valid positions only); "acme": number of
        terms of the published forward, wrap-around window sum.
    quantile : float in (0, 1)
    threshold_scope : {"sequence", "global"}, optional
        Per-sequence quantile of the radius (default for "paper") or one rank cutoff over
        all points (the published rule; default for "acme").
    bin_width : float in (0, pi)
        Bin width in radians on both angles.
    prior_bins : int, optional
        Boxcar width of the prior in bins (default 5 for "paper", 6 for "acme").
    weight : {"r2", "none", "inv_r2"}
        Weight of each kept point.
    preset : {"paper", "acme"}
        "paper": the method as described, defects of the published code fixed. "acme":
        reproduces the published code (``golden/`` files) to floating-point tolerance.
    layout : {"NLC", "NCL"}
    n_threads : int, optional
        Threads (default all cores). The result is bit-identical for any value.

    Returns
    -------
    KattrResult
        ``kld``, ``mass`` (n_bins, n_bins), ``prior``, ``n_points``.
    """
    p = _KattrParams(window, quantile, threshold_scope, bin_width, prior_bins, weight, preset, layout,
                     n_threads)
    a = p.attr(attr)
    glob = p.threshold_scope == "global"
    with out_of_memory("bin_width", _KATTR_FIX):
        out = _core.kattr_hist(a, *p.kernel_args(), glob, p.ncl, p.n_threads)
        raise_kernel_error(out["error"])
        return p.finish(out["hist"], int(out["n_points"]))
