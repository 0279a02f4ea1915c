"""k-mer KLD (Method 1 of Majdandzic, Rajesh et al. 2022; SPEC section 2)."""

from __future__ import annotations

import copy
import itertools
import warnings
from typing import Any

import numpy as np

from . import _core
from ._limits import check_memory, kmer_table_bytes, out_of_memory
from ._results import KmerResult, _Sources
from ._validate import (
    as_attr,
    as_onehot,
    check_int,
    check_layout,
    check_preset,
    check_quantile,
    check_real,
    check_same_shape,
    check_threads,
    effective_threads,
    first_bad,
    raise_kernel_error,
    seq_len,
)

__all__ = ["kmer_prior", "kmer_kld", "KmerAccumulator", "kmer_names"]


def kmer_names(k: int) -> list:
    """The 4**k k-mers as strings, in index order (AAA..., AAC..., ..., TTT...)."""
    k = check_int("k", k, 1, 12)
    return ["".join(p) for p in itertools.product("ACGT", repeat=k)]


def _check_k_len(k: Any, L: int) -> int:
    k = check_int("k", k, 1, 12)
    if L < k:
        raise ValueError(f"x: sequence length L={L} is shorter than k={k}; expected L >= k")
    return k


def kmer_prior(x: Any, *, k: int = 6, layout: str = "NLC", n_threads: int | None = None) -> np.ndarray:
    """Frequencies of all k-mers of all sequences (stride 1, k-mers with N skipped).

    Parameters
    ----------
    x : array_like, shape (N, L, 4) or (N, 4, L)
        One-hot sequences (A, C, G, T); an all-zero row is an unknown base.
    k : int, 1..12
    layout : {"NLC", "NCL"}
    n_threads : int, optional
        Threads for the kernel (default: all cores).

    Returns
    -------
    ndarray, shape (4**k,), float64
        Sums to 1.
    """
    ncl = check_layout(layout)
    xa = as_onehot(x, ncl)
    k = _check_k_len(k, seq_len(xa, ncl))
    nt = check_threads(n_threads)
    _check_kmer_memory(k, nt, prior=True)
    with out_of_memory("k", _KMER_FIX):
        out = _core.kmer_count(xa, None, k, 0.5, 0, True, ncl, nt)
    raise_kernel_error(out["error"], xa, ncl)
    counts = out["prior_counts"]
    total = counts.sum()
    if total == 0:
        raise ValueError(f"x: no k-mer of length {k} without an unknown base (N) in any sequence")
    return counts / total


_KMER_FIX = "use a smaller k (each step of k needs 4x the memory) or fewer n_threads"


def _check_kmer_memory(k: int, n_threads: int, prior: bool) -> None:
    nt = effective_threads(n_threads)
    check_memory(kmer_table_bytes(k, nt, prior), "k",
                 f"k={k} gives 4**{k} = {4**k:,} k-mers; the count tables with {nt} thread(s)", _KMER_FIX)


def _check_prior(prior: Any, k: int) -> np.ndarray:
    try:
        q = np.asarray(prior, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"prior: expected an array of 4**k = {4**k} frequencies ({exc})") from None
    if q.ndim != 1 or q.shape[0] != 4**k:
        raise ValueError(f"prior: expected a 1-D array of length 4**k = {4**k}, got shape {q.shape}")
    bad = ~np.isfinite(q) | (q < 0)
    if bad.any():
        j = first_bad(bad)[0]
        raise ValueError(f"prior: expected finite, non-negative frequencies, got {q[j]!r} at index {j}")
    s = q.sum()
    if not np.isclose(s, 1.0, rtol=0, atol=1e-6):
        raise ValueError(f"prior: expected frequencies that sum to 1, got sum {s!r}")
    return np.ascontiguousarray(q)


class KmerAccumulator:
    """Streaming k-mer KLD: feed batches with :meth:`update`, combine with :meth:`merge`.

    Takes the keyword arguments of :func:`kmer_kld`. The state is integer counts, so any
    split of the data into batches or workers gives exactly the one-shot result.

    Examples
    --------
    >>> acc = KmerAccumulator(k=6)
    >>> for xb, ab in batches:          # doctest: +SKIP
    ...     acc.update(xb, ab)
    >>> acc.result().kld                # doctest: +SKIP
    """

    def __init__(self, *, k: int = 6, quantile: float = 0.9, buffer: int = 2, prior: Any = None,
                 pseudocount: float = 0.0, preset: str = "paper", layout: str = "NLC",
                 n_threads: int | None = None) -> None:
        self.k = check_int("k", k, 1, 12)
        self.quantile = check_quantile(quantile)
        self.buffer = check_int("buffer", buffer, 0)
        check_preset(preset)
        self.preset = preset
        self.ncl = check_layout(layout)
        self.layout = layout.upper()
        self.pseudocount = check_real("pseudocount", pseudocount, 0.0)
        self.prior = None if prior is None else _check_prior(prior, self.k)
        self.n_threads = n_threads  # checked, and the per-thread counts' memory too, by the setter
        self.counts = np.zeros(4**self.k, dtype=np.int64)
        self.prior_counts = None if self.prior is not None else np.zeros(4**self.k, dtype=np.int64)
        self._sources = _Sources()
        self.n_intervals = 0
        self.n_nucleotides = 0
        self.n_sequences = 0

    #: Passes over the data this accumulator needs (always one).
    n_passes = 1
    pass_index = 0

    @property
    def n_threads(self) -> int | None:
        """Kernel threads for the next updates (None: all cores). Results do not depend on it,
        so it may change between batches."""
        return self._n_threads or None

    @n_threads.setter
    def n_threads(self, value: int | None) -> None:
        nt = check_threads(value)
        _check_kmer_memory(self.k, nt, prior=self.prior is None)
        self._n_threads = nt

    def empty_like(self) -> KmerAccumulator:
        """A fresh accumulator with the same parameters (and prior) and no data."""
        new = copy.copy(self)
        new.counts = np.zeros_like(self.counts)
        new.prior_counts = None if self.prior_counts is None else np.zeros_like(self.prior_counts)
        new.n_intervals = new.n_nucleotides = new.n_sequences = 0
        new._sources = _Sources()
        return new

    def next_pass(self) -> KmerAccumulator:
        """The k-mer KLD needs a single pass: always raises."""
        raise ValueError("next_pass: the k-mer accumulator needs a single pass over the data")

    def _params(self) -> tuple:
        return (self.k, self.quantile, self.buffer, self.preset, self.pseudocount,
                None if self.prior is None else self.prior.tobytes())

    def update(self, x: Any, attr: Any) -> KmerAccumulator:
        """Add a batch.

        Parameters
        ----------
        x : array_like, shape (n, L, 4) or (n, 4, L)
            One-hot sequences.
        attr : array_like, same shape as ``x``, float32 or float64
            Raw attribution maps (gauge correction is applied here).
        """
        xa = as_onehot(x, self.ncl)
        aa = as_attr(attr, self.ncl)
        check_same_shape(xa, aa)
        L = seq_len(xa, self.ncl)
        _check_k_len(self.k, L)
        # a run cannot extend past the sequence: a buffer beyond L - 1 is L - 1 (and fits the kernel's int64)
        buffer = min(self.buffer, L - 1)
        with out_of_memory("k", _KMER_FIX):
            out = _core.kmer_count(xa, aa, self.k, self.quantile, buffer, self.prior is None,
                                   self.ncl, self._n_threads)
        raise_kernel_error(out["error"], xa, self.ncl)
        self.counts += out["counts"]
        if self.prior_counts is not None:
            self.prior_counts += out["prior_counts"]
        self.n_intervals += int(out["n_intervals"])
        self.n_nucleotides += int(out["n_nucleotides"])
        self.n_sequences += int(xa.shape[0])
        self._sources.fed()
        return self

    def merge(self, other: KmerAccumulator) -> KmerAccumulator:
        """Add another accumulator's state (fed with other data, same parameters)."""
        if not isinstance(other, KmerAccumulator):
            raise TypeError(f"other: expected a KmerAccumulator, got {type(other).__name__}")
        if other._params() != self._params():
            raise ValueError("other: accumulators were made with different parameters")
        self._sources.check_disjoint(other._sources)
        self.counts += other.counts
        if self.prior_counts is not None:
            self.prior_counts += other.prior_counts
        self.n_intervals += other.n_intervals
        self.n_nucleotides += other.n_nucleotides
        self.n_sequences += other.n_sequences
        self._sources.add(other._sources)
        return self

    def result(self) -> KmerResult:
        """The k-mer KLD of everything added so far."""
        if self.n_sequences == 0:
            raise ValueError("no data: call update() with at least one sequence first")
        if self.prior is None:
            total = self.prior_counts.sum()
            if total == 0:
                raise ValueError(f"x: no k-mer of length {self.k} without an unknown base (N) in any sequence")
            q = self.prior_counts / total
        else:
            q = self.prior
        if self.pseudocount > 0:
            q = (q + self.pseudocount) / (q + self.pseudocount).sum()
        q = np.ascontiguousarray(q, dtype=np.float64)
        kld, zero = _core.kld_counts(self.counts, q)
        if zero >= 0:
            name = "".join("ACGT"[(zero >> (2 * (self.k - 1 - j))) & 3] for j in range(self.k))
            raise ValueError(
                f"prior: zero for k-mer {name} (index {zero}), which occurs in attributed intervals; "
                "the KLD would be infinite. Pass pseudocount > 0 or a prior with full support"
            )
        if self.counts.sum() == 0:
            warnings.warn("kmer_kld: no attributed interval of length >= k; the KLD is NaN",
                          RuntimeWarning, stacklevel=2)
        return KmerResult(kld=float(kld), counts=self.counts.copy(), prior=q, n_intervals=self.n_intervals,
                          n_nucleotides=self.n_nucleotides, k=self.k, preset=self.preset)


def kmer_kld(x: Any, attr: Any, *, k: int = 6, quantile: float = 0.9, buffer: int = 2, prior: Any = None,
             pseudocount: float = 0.0, preset: str = "paper", layout: str = "NLC",
             n_threads: int | None = None) -> KmerResult:
    """k-mer KLD: how far the k-mers under high attribution are from the background.

    Per sequence, positions whose gauge-corrected attribution norm exceeds the sequence's
    ``quantile`` are grouped into runs, extended by ``buffer`` on the 3' end, merged, and
    kept if at least ``k`` long; the k-mers inside are counted and compared with the prior
    (SPEC section 2). Higher is more consistent.

    Parameters
    ----------
    x : array_like, shape (N, L, 4) or (N, 4, L)
        One-hot sequences (A, C, G, T); all-zero rows are unknown bases (N), skipped.
    attr : array_like, same shape, float32 or float64
        Raw attribution maps (saliency, SmoothGrad, IG, ...).
    k : int, 1..12
    quantile : float in (0, 1)
        Per-sequence quantile of the attribution norm (numpy's linear method); positions
        strictly above it are attributed.
    buffer : int >= 0
        3' extension of each run.
    prior : array_like, shape (4**k,), optional
        k-mer frequencies; default: computed from ``x`` (all k-mers of all sequences).
    pseudocount : float >= 0
        Added to every prior frequency before renormalising; needed when a user prior is
        zero where attributed k-mers occur.
    preset : {"paper", "acme"}
        Both give the same numbers for this metric (the published code crashed on N bases
        and misassigned sequences without attributed positions; neither is reproduced).
    layout : {"NLC", "NCL"}
    n_threads : int, optional
        Threads (default all cores). The result is identical for any value.

    Returns
    -------
    KmerResult
        ``kld``, ``counts``, ``prior``, ``n_intervals``, ``n_nucleotides``.
    """
    acc = KmerAccumulator(k=k, quantile=quantile, buffer=buffer, prior=prior, pseudocount=pseudocount,
                          preset=preset, layout=layout, n_threads=n_threads)
    acc.update(x, attr)
    return acc.result()
