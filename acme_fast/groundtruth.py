"""Attribution quality against a known ground truth (synthetic data; SPEC section 4)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from . import _core
from ._results import GroundTruthResult
from ._validate import (
    KIND_NOT_PROBABILITY,
    as_attr,
    as_onehot,
    check_int,
    check_layout,
    check_real,
    check_same_shape,
    check_threads,
    first_bad,
    raise_kernel_error,
    seq_len,
)

__all__ = ["groundtruth_scores"]


def _nanmean(a: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(a))


def groundtruth_scores(x: Any, attr: Any, x_model: Any, *, threshold: float = 0.1, top_k: int = 10,
                       layout: str = "NLC", n_threads: int | None = None) -> GroundTruthResult:
    """AUROC, AUPRC and signal-to-noise of grad x input against the sequence model.

    Matches ``tfomics.evaluate`` (``interpretability_performance`` and
    ``signal_noise_stats``): signal positions have information content above
    ``threshold``; background positions have the sequence's minimum information.

    Parameters
    ----------
    x : array_like, shape (N, L, 4) or (N, 4, L)
        One-hot sequences.
    attr : array_like, same shape, float32 or float64
        Attribution maps; scored as grad x input, ``sum_c x * attr``.
    x_model : array_like, same shape
        Per-position base probabilities the sequences were sampled from.
    threshold : float
        Information (bits) above which a position is signal.
    top_k : int >= 1
        Noise level: mean of the ``top_k`` largest positive background scores. Sequences
        with fewer positive background positions get signal = noise = SNR = 0.
    layout : {"NLC", "NCL"}
    n_threads : int, optional

    Returns
    -------
    GroundTruthResult
        Per-sequence ``auroc``, ``auprc`` (float64), ``signal``, ``noise_topk``, ``snr`` (in
        the attribution's precision, as tfomics computed them), and their nan-means.
    """
    ncl = check_layout(layout)
    xa = as_onehot(x, ncl)
    aa = as_attr(attr, ncl)
    check_same_shape(xa, aa)
    m = np.asarray(x_model)
    if m.shape != xa.shape:
        raise ValueError(f"x_model: expected the same shape as x {xa.shape}, got {m.shape}")
    if m.dtype.kind not in "fiu":
        raise TypeError(f"x_model: expected a float array of probabilities, got dtype {m.dtype}")
    m = np.ascontiguousarray(m, dtype=np.float64)
    threshold = check_real("threshold", threshold)
    top_k = check_int("top_k", top_k, 1)
    # more than L noise positions never exist: any top_k > L gives SNR 0 everywhere, as L + 1 does
    top_k = min(top_k, seq_len(xa, ncl) + 1)
    # The kernel checks x_model (finite, in [0, 1]) in the pass that reads it.
    out = _core.groundtruth(xa, aa, m, threshold, top_k, ncl, check_threads(n_threads))
    err = out["error"]
    if err is not None and err[0] == KIND_NOT_PROBABILITY:
        seq = err[1]
        row = m[seq]
        idx = (seq, *first_bad(~((row >= 0) & (row <= 1))))
        raise ValueError(f"x_model: expected finite probabilities in [0, 1], got {m[idx]!r} at index {idx}")
    raise_kernel_error(err, xa, ncl)
    return GroundTruthResult(
        auroc=out["auroc"], auprc=out["auprc"], signal=out["signal"], noise_topk=out["noise_topk"],
        snr=out["snr"], mean_auroc=_nanmean(out["auroc"]), mean_auprc=_nanmean(out["auprc"]),
        mean_snr=_nanmean(out["snr"]),
    )
