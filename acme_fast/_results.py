"""Small result containers returned by the metrics."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class _ToDict:
    def to_dict(self, arrays: bool = True) -> dict[str, Any]:
        """Fields as a dict. With ``arrays=False`` only the scalars (for a table row)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                if arrays:
                    out[f.name] = v
            elif isinstance(v, np.generic):
                out[f.name] = v.item()
            else:
                out[f.name] = v
        return out


@dataclass(frozen=True)
class KmerResult(_ToDict):
    """k-mer KLD (SPEC section 2).

    Attributes
    ----------
    kld : float
        KL divergence (natural log) of the attributed k-mer distribution from the prior.
        NaN when no interval of length >= k was attributed.
    counts : ndarray, shape (4**k,), int64
        k-mer counts inside attributed intervals (index: base 4, A=0 C=1 G=2 T=3, first base
        most significant).
    prior : ndarray, shape (4**k,), float64
        The prior used (after the pseudocount, if any).
    n_intervals, n_nucleotides : int
        Number and total length of the kept intervals.
    """

    kld: float
    counts: np.ndarray = field(repr=False)
    prior: np.ndarray = field(repr=False)
    n_intervals: int
    n_nucleotides: int
    k: int
    preset: str


@dataclass(frozen=True)
class KattrResult(_ToDict):
    """k-attr-mean KLD (SPEC section 3).

    Attributes
    ----------
    kld : float
        KL divergence of the angular mass from its smoothed prior. NaN when no point was kept.
    mass : ndarray, shape (n_bins, n_bins)
        Probability mass, rows phi', columns theta (sums to 1).
    prior : ndarray, shape (n_bins, n_bins)
        The smoothed prior (preset "acme": NaN on the border bins, which the published
        method never evaluates).
    n_points : int
        Number of kept (thresholded) points.
    """

    kld: float
    mass: np.ndarray = field(repr=False)
    prior: np.ndarray = field(repr=False)
    n_points: int
    bin_width: float
    preset: str

    @property
    def density(self) -> np.ndarray:
        """Mass per unit solid angle of the (phi', theta) grid, ``mass / bin_width**2``
        (what the published code called ``Empirical_box_pdf``)."""
        return self.mass / self.bin_width**2


@dataclass(frozen=True)
class GroundTruthResult(_ToDict):
    """Attribution quality against the ground truth (SPEC section 4).

    Per-sequence arrays, shape (N,): ``auroc``, ``auprc`` (float64; NaN where only one class
    is evaluated), ``signal``, ``noise_topk``, ``snr`` (the attribution's dtype, as tfomics).
    Summaries: ``mean_auroc``, ``mean_auprc``, ``mean_snr`` (nanmean over sequences).
    """

    auroc: np.ndarray = field(repr=False)
    auprc: np.ndarray = field(repr=False)
    signal: np.ndarray = field(repr=False)
    noise_topk: np.ndarray = field(repr=False)
    snr: np.ndarray = field(repr=False)
    mean_auroc: float
    mean_auprc: float
    mean_snr: float


class _Sources:
    """Which data an accumulator holds, so that merging the same data twice is refused.

    An accumulator gets an identity when it is first fed; a merge adds the other's identities.
    Merging an accumulator into itself, or one whose data is already in (the same accumulator
    twice, or a copy of one merged before), would count those sequences twice.
    """

    def __init__(self) -> None:
        self.own: int | None = None
        self.ids: frozenset[int] = frozenset()

    def fed(self) -> None:
        if self.own is None:
            self.own = uuid.uuid4().int
            self.ids = self.ids | {self.own}

    def check_disjoint(self, other: _Sources) -> None:
        if other is self or (self.ids & other.ids):
            raise ValueError("other: holds data that this accumulator already holds (it is this accumulator, a "
                             "copy of it, or was merged into it before); merging would count those sequences twice. "
                             "Merge accumulators fed with different data, each once")

    def add(self, other: _Sources) -> None:
        self.ids = self.ids | other.ids
