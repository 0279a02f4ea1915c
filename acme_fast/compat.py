"""Drop-in replacements for the published reference code (SPEC section 6).

The functions here have the names, arguments and return values of ``acme.utils``
(github crajesh6/acme) and of the method-2 functions of its notebook
``notebooks/method_2_analysis.ipynb``, and reproduce their numbers (preset ``"acme"``),
backed by the package's kernels. A notebook written against the reference runs after
changing one import::

    # from acme.utils import collect_passing_subsequences, calculate_kmer_entropy
    from acme_fast.compat import collect_passing_subsequences, calculate_kmer_entropy

All arrays are NLC, ``(N, L, 4)``, as in the reference. Each function's docstring lists
what differs from the reference, if anything. New code should use
:func:`acme_fast.kmer_kld` and :func:`acme_fast.kattr_kld`, which do not round, take
every parameter the reference ignored and also accept NCL arrays.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from ._limits import check_memory, kattr_hist_bytes
from ._validate import (
    as_attr,
    as_onehot,
    check_int,
    check_quantile,
    check_same_shape,
    raise_kernel_error,
)
from .kmer import kmer_names, kmer_prior

__all__ = [
    "kmer_featurization",
    "compute_kmer_spectra_testset",
    "collect_passing_subsequences",
    "calculate_kmer_entropy",
    "orthonormal_coordinates",
    "process_attribution_map",
    "spherical_coordinates_process_2_trad",
    "initialize_integration_2",
    "calculate_entropy_2",
]

#: The constant the reference uses for pi in method 2.
PI = 3.1416

_DNA_DICT = {0: "A", 1: "C", 2: "G", 3: "T"}
_MAX_K = 12

# byte -> code: A/C/G/T (either case) 0..3, N/n 4 (unknown, skipped), separator 5, other 255
_UNKNOWN, _SEP, _BAD = 4, 5, 255
_BYTE_CODE = np.full(256, _BAD, dtype=np.uint8)
for _i, _c in enumerate("ACGT"):
    _BYTE_CODE[ord(_c)] = _i
    _BYTE_CODE[ord(_c.lower())] = _i
_BYTE_CODE[ord("N")] = _UNKNOWN
_BYTE_CODE[ord("n")] = _UNKNOWN
_BYTE_CODE[ord("\n")] = _SEP


# --------------------------------------------------------------------------------------
# helpers
def _onehot_codes(xa: np.ndarray, name: str = "X") -> np.ndarray:
    """(N, L) int8 codes (A=0, C=1, G=2, T=3, N=-1) of a one-hot (N, L, 4) array; checks the values."""
    codes, err = _core.onehot_codes(np.ascontiguousarray(xa), False, 0)
    raise_kernel_error(err, xa, False, xname=name)
    return codes


def _check_k(name: str, k: Any) -> int:
    return check_int(name, k, 1, _MAX_K)


def _kmer_index_stream(seqs: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of all k-mers without N in ``seqs`` (stride 1) and the sequence each is in."""
    if isinstance(seqs, (str, bytes)):
        raise TypeError("seqs: expected a list of sequence strings, got a single string")
    seqs = list(seqs)
    if not seqs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    for j, s in enumerate(seqs):
        if not isinstance(s, str):
            raise TypeError(f"seqs: expected strings, item {j} is {type(s).__name__}")
    text = "\n".join(seqs)
    try:
        raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError as exc:
        raise ValueError(f"seqs: expected DNA letters A, C, G, T or N, found {text[exc.start]!r}") from None
    codes = _BYTE_CODE[raw]
    if (codes == _BAD).any():
        bad = chr(int(raw[np.argmax(codes == _BAD)]))
        raise ValueError(f"seqs: expected DNA letters A, C, G, T or N, found {bad!r}")
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    T = codes.size
    n_win = T - k + 1
    if n_win <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ok = codes < 4
    bad_cum = np.concatenate(([0], np.cumsum(~ok, dtype=np.int64)))
    valid = (bad_cum[k:] - bad_cum[:n_win]) == 0
    c = np.where(ok, codes, 0).astype(np.int64)
    idx = np.zeros(n_win, dtype=np.int64)
    for j in range(k):
        idx = idx * 4 + c[j : j + n_win]
    pos = np.flatnonzero(valid)
    seq_id = np.searchsorted(starts, pos, side="right") - 1
    return idx[pos], seq_id


def _kl_div(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Elementwise ``scipy.special.kl_div`` (x log(x/y) - x + y; y where x == 0; inf otherwise)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        both = (p > 0) & (q > 0)
        out = np.where(both, p * np.log(np.where(both, p / np.where(both, q, 1.0), 1.0)) - p + q, np.inf)
        out = np.where((p == 0) & (q >= 0), q, out)
        out = np.where(np.isnan(p) | np.isnan(q), np.nan, out)
    return out


# --------------------------------------------------------------------------------------
# method 1: k-mer KLD (acme.utils, acme.kmer)
class kmer_featurization:  # noqa: N801 (the reference's name)
    """k-mer counter with the interface of ``acme.kmer.kmer_featurization``.

    Parameters
    ----------
    k : int, 1..12
        The k of the k-mers.

    Notes
    -----
    Vectorised with numpy. Differences from the reference: lower-case letters are
    accepted, k-mers containing ``N`` are skipped (the reference raised), and frequencies
    (``write_number_of_occurrences=False``) are over the counted k-mers, zeros for a
    sequence without any (the reference divided by ``len(seq) - k + 1``).
    """

    def __init__(self, k: int) -> None:
        self.k = _check_k("k", k)
        self.letters = ["A", "C", "G", "T"]
        self.multiplyBy = 4 ** np.arange(self.k - 1, -1, -1)
        self.n = 4**self.k

    def obtain_kmer_feature_for_a_list_of_sequences(self, seqs: Sequence[str],
                                                    write_number_of_occurrences: bool = False) -> np.ndarray:
        """k-mer counts (or frequencies) of each sequence.

        Parameters
        ----------
        seqs : list of str
        write_number_of_occurrences : bool
            True: counts; False: frequencies per sequence.

        Returns
        -------
        ndarray, shape (len(seqs), 4**k), float64
        """
        seqs = list(seqs) if not isinstance(seqs, (str, bytes)) else seqs
        idx, sid = _kmer_index_stream(seqs, self.k)
        m = len(seqs)
        feats = np.bincount(sid * self.n + idx, minlength=m * self.n).astype(np.float64).reshape(m, self.n)
        if not write_number_of_occurrences:
            tot = feats.sum(axis=1, keepdims=True)
            feats = np.divide(feats, tot, out=np.zeros_like(feats), where=tot > 0)
        return feats

    def obtain_kmer_feature_for_one_sequence(self, seq: str,
                                             write_number_of_occurrences: bool = False) -> np.ndarray:
        """k-mer counts (or frequencies) of one sequence, shape (4**k,), float64."""
        return self.obtain_kmer_feature_for_a_list_of_sequences([seq], write_number_of_occurrences)[0]

    def kmer_numbering_for_one_kmer(self, kmer: str) -> np.int64:
        """Index of a k-mer: base 4, A=0 C=1 G=2 T=3, first base most significant."""
        try:
            digits = np.array([self.letters.index(letter) for letter in str(kmer).upper()], dtype=np.int64)
        except ValueError:
            raise ValueError(f"kmer: expected letters A, C, G, T, got {kmer!r}") from None
        if digits.size != self.k:
            raise ValueError(f"kmer: expected {self.k} letters, got {kmer!r}")
        return (digits * self.multiplyBy).sum()


def compute_kmer_spectra_testset(X: Any, kmer_length: int = 3, dna_dict: dict = _DNA_DICT) -> np.ndarray:
    """Frequencies of all k-mers of all sequences (the default k-mer prior).

    Parameters
    ----------
    X : array_like, shape (N, L, 4)
        One-hot sequences.
    kmer_length : int, 1..12
    dna_dict : dict
        Channel -> letter; must be a permutation of A, C, G, T.

    Returns
    -------
    ndarray, shape (4**kmer_length,), float64

    Notes
    -----
    Same as :func:`acme_fast.kmer_prior`. Differences from the reference: all-zero rows
    (N) are skipped instead of crashing; no progress bar.
    """
    k = _check_k("kmer_length", kmer_length)
    try:
        perm = ["ACGT".index(str(dna_dict[c]).upper()) for c in range(4)]
    except (KeyError, ValueError, TypeError):
        perm = None
    if perm is None or sorted(perm) != [0, 1, 2, 3]:
        raise ValueError(f"dna_dict: expected a map of channels 0..3 to the letters A, C, G, T, "
                         f"got {dna_dict!r}")
    if perm != [0, 1, 2, 3]:
        xa = as_onehot(X, False, "X")
        X = np.ascontiguousarray(xa[..., np.argsort(perm)])
    try:
        return kmer_prior(X, k=k, layout="NLC")
    except (ValueError, TypeError) as exc:  # the published parameter is X, not x
        if str(exc).startswith("x: "):
            raise type(exc)("X: " + str(exc)[3:]) from None
        raise


def collect_passing_subsequences(attr_map: Any, X: Any, threshold: float = 0.9, kmer_length: int = 3,
                                 buffer_size: int = 2) -> tuple[list[str], np.ndarray]:
    """Subsequences under high attribution (the intervals of the k-mer KLD).

    Per sequence, positions whose attribution norm is strictly above the ``threshold``
    quantile are grouped into runs, each extended by 2 on its 3' end (clipped at the
    sequence end), merged when they overlap or touch, and kept when at least
    ``kmer_length`` long.

    Parameters
    ----------
    attr_map : array_like, shape (N, L, 4), float32 or float64
        Attribution maps, used as given (pass gauge-corrected maps, as the reference's
        ``load_data`` produced).
    X : array_like, shape (N, L, 4)
        One-hot sequences.
    threshold : float in (0, 1)
        Per-sequence quantile (numpy's linear method).
    kmer_length : int >= 1
        Minimum interval length.
    buffer_size : int
        Ignored, as in the reference (the buffer is always 2); a value other than 2 gives
        a warning. Use ``acme_fast.kmer_kld(buffer=...)`` for another buffer.

    Returns
    -------
    seq_list : list of str
        The kept intervals' sequences over A, C, G, T (N for all-zero rows), by sequence,
        then by position.
    cutoff_array : ndarray, shape (N,)
        The per-sequence cutoffs, in the dtype of ``attr_map``.

    Notes
    -----
    Differences from the reference: all-zero rows of ``X`` give ``N`` (the reference
    crashed); a sequence without attributed positions (all norms equal) contributes
    nothing (the reference then paired the following sequences' intervals with the wrong
    rows of ``X``); norms and cutoffs are computed in float64 (the cutoffs are returned
    cast to the input dtype, which can differ from numpy's float32 quantile in the last
    unit).
    """
    if buffer_size != 2:
        warnings.warn(
            f"collect_passing_subsequences: buffer_size={buffer_size!r} is ignored, as in the reference code "
            "(the buffer is always 2); use acme_fast.kmer_kld(buffer=...) for another buffer",
            UserWarning, stacklevel=2)
    q = check_quantile(threshold, "threshold")
    k = check_int("kmer_length", kmer_length, 1)
    a = as_attr(attr_map, False, "attr_map")
    xa = as_onehot(X, False, "X")
    check_same_shape(xa, a, "X", "attr_map")
    codes = _onehot_codes(xa, "X")
    N, L = codes.shape
    out = _core.kmer_intervals(a, min(k, _MAX_K), q, 2, False, False, 0)  # intervals at least k long
    raise_kernel_error(out["error"], None, False, xname="X", aname="attr_map")
    seq, begin, end = out["seq"], out["begin"], out["end"]
    keep = end - begin + 1 >= k
    seq, begin, end = seq[keep], begin[keep], end[keep]
    order = np.lexsort((begin, seq))
    seq, begin, end = seq[order], begin[order], end[order]
    seq_list = _core.compat_strings(codes, np.ascontiguousarray(seq), np.ascontiguousarray(begin),
                                    np.ascontiguousarray(end))
    return seq_list, out["cutoff"].astype(a.dtype)


def calculate_kmer_entropy(X: Any, seq_list: Sequence[str], kmer_prior: Any, kmer_length: int = 3
                           ) -> tuple[np.float64, kmer_featurization, np.ndarray, Any, dict]:
    """k-mer KLD of the attributed subsequences against a prior, rounded to 3 decimals.

    Parameters
    ----------
    X : array_like
        Unused (kept for the reference's signature).
    seq_list : list of str
        Subsequences, e.g. from :func:`collect_passing_subsequences`.
    kmer_prior : array_like, shape (4**kmer_length,)
        Prior k-mer frequencies, e.g. from :func:`compute_kmer_spectra_testset`.
    kmer_length : int, 1..12

    Returns
    -------
    entropy : numpy.float64
        ``round(sum(kl_div(p, kmer_prior)), 3)`` with scipy's ``kl_div``; for a normalised
        prior this is ``sum_{p > 0} p ln(p / q)`` (inf where ``q = 0 < p``); NaN when no
        k-mer was counted.
    obj : kmer_featurization
    global_counts_normalized : ndarray, shape (4**kmer_length,), float64
        The attributed k-mer frequencies ``p``.
    kmer_prior : the prior, as passed
    kmer_dict : dict
        Index -> k-mer string.

    Notes
    -----
    Counted with numpy (scipy is not needed). Differences from the reference: k-mers with
    ``N`` are skipped (the reference raised); a prior of the wrong length raises
    ``ValueError``.
    """
    k = _check_k("kmer_length", kmer_length)
    obj = kmer_featurization(k)
    idx, _ = _kmer_index_stream(seq_list, k)
    global_counts = np.bincount(idx, minlength=obj.n).astype(np.float64)
    total = global_counts.sum()
    if total == 0:
        warnings.warn("calculate_kmer_entropy: no k-mer in seq_list; the entropy is NaN", RuntimeWarning,
                      stacklevel=2)
        global_counts_normalized = np.full(obj.n, np.nan)
    else:
        global_counts_normalized = global_counts / total
    q = np.asarray(kmer_prior, dtype=np.float64)
    if q.shape != (obj.n,):
        raise ValueError(f"kmer_prior: expected shape ({obj.n},) for kmer_length={k}, got {q.shape}")
    entropy = np.round(np.sum(_kl_div(global_counts_normalized, q)), 3)
    kmer_dict = dict(enumerate(kmer_names(k)))
    return entropy, obj, global_counts_normalized, kmer_prior, kmer_dict


# --------------------------------------------------------------------------------------
# method 2: k-attr-mean KLD (notebooks/method_2_analysis.ipynb)
def _as_map_nl(m: Any, name: str, min_c: int) -> np.ndarray:
    a = np.asarray(m)
    if a.ndim != 3 or a.shape[2] < min_c or a.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected a numeric array of shape (N, L, {min_c}), got "
                         f"{a.dtype} {a.shape}")
    return a


def orthonormal_coordinates(attr_map: Any) -> np.ndarray:
    """Project 4-channel vectors to 3-D coordinates, as published.

    ``e1 = (-x + y) / sqrt(2)``, ``e2 = sqrt(2/3) (-x/2 - y/2)``,
    ``e3 = sqrt(3/4) (-x/3 - y/3 - z/3 + w)``. The published ``e2`` lacks the ``z`` term,
    so the basis is not orthonormal (SPEC section 3, preset "acme").

    Parameters
    ----------
    attr_map : array_like, shape (N, L, 4)

    Returns
    -------
    ndarray, shape (N, L, 3), float64

    Notes
    -----
    Computed in float64 (the reference computed in the input's precision and stored
    float64). Also exported under the notebook's spelling ``ortonormal_coordinates``.
    """
    a = _as_map_nl(attr_map, "attr_map", 4)
    x, y, z, w = (a[:, :, c].astype(np.float64, copy=False) for c in range(4))
    out = np.empty(a.shape[:2] + (3,), dtype=np.float64)
    s = -x + y
    out[:, :, 0] = np.multiply(1 / np.sqrt(2), s, out=s)
    s = np.multiply(-1 / 2, x)
    s -= 1 / 2 * y
    out[:, :, 1] = np.multiply(np.sqrt(2 / 3), s, out=s)
    s = np.multiply(-1 / 3, x)
    s -= 1 / 3 * y
    s -= 1 / 3 * z
    s += w
    out[:, :, 2] = np.multiply(np.sqrt(3 / 4), s, out=s)
    return out


ortonormal_coordinates = orthonormal_coordinates


def process_attribution_map(saliency_map_raw: Any, k: int = 3) -> np.ndarray:
    """Gauge-correct, normalise, window-sum and project attribution maps (method 2).

    Parameters
    ----------
    saliency_map_raw : array_like, shape (N, L, 4), float32 or float64
        Raw attribution maps.
    k : int, 1..L
        Number of terms of the forward, wrap-around window sum
        ``W[l] = A[l] + A[(l+1) mod L] + ... + A[(l+k-1) mod L]``.

    Returns
    -------
    ndarray, shape (N, L, 3), float64
        :func:`orthonormal_coordinates` of the window sums.

    Notes
    -----
    Differences from the reference: ``k`` is a parameter (the notebook hard-coded 3 terms
    and users edited the line); computed in float64. As in the reference, a sequence whose
    attributions are all equal gives NaN (0/0), which
    :func:`spherical_coordinates_process_2_trad` turns into 0.

    Memory: an output of 16 MB or more (196 MB at N = 4000, L = 2048) is not owned by numpy
    (its ``base`` is a capsule). When it and every view of it are gone, its block is kept
    for the next call, so that a loop over models does not have the operating system map
    and zero a fresh block each time; the kept block is marked free to the kernel
    (``MADV_FREE``), which takes its pages back whenever memory runs short. At most one
    block is kept.
    """
    k = check_int("k", k, 1)
    a = np.ascontiguousarray(as_attr(saliency_map_raw, False, "saliency_map_raw"))
    L = a.shape[1]
    if k > L:  # as kattr_kld(preset="acme") bounds its window: a longer window wraps onto itself
        raise ValueError(f"k: expected an integer in 1..L = 1..{L} (the window wraps around the sequence), got {k}")
    # One pass per sequence in C++ (compat.hpp), the numpy code's operations in its order:
    # gauge correction, division by the total norm, window sum, projection. Sequences so large or
    # so small that their squares over- or underflow (|a| above ~1e120 or below ~1e-120) are
    # scaled by a power of two first: exact, and the normalised map is the same.
    out, bad = _core.compat_process_map(a, k, 0)
    if bad >= 0:
        i, l, c = np.unravel_index(bad, a.shape)
        raise ValueError(f"saliency_map_raw: expected finite values, found {float(a[i, l, c])} at sequence {i}, "
                         f"position {l}")
    return out


def spherical_coordinates_process_2_trad(saliency_map_raw_s: Any, X: Any, mask: Any,
                                         radius_count_cutoff: float = 0.04
                                         ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Angles and radii of the strongest points of each processed map (method 2).

    For each map, points are ranked by radius over all ``N * L`` positions together; with
    ``m = int(radius_count_cutoff * X.size / 4)`` the cutoff is the m-th largest radius
    and points whose (masked) radius is strictly above it are kept. Coordinates are
    rotated ``(x', y', z') = (e2, e3, e1)``; ``phi' = phi / 2 + PI / 2`` with the
    published quadrant rule and ``PI = 3.1416``; ``theta = arccos(z' / r)``.

    Parameters
    ----------
    saliency_map_raw_s : list of array_like, each shape (N, L, 3)
        Maps from :func:`process_attribution_map` (a single array is taken as a list of
        one map).
    X : array_like, shape (N, L, 4)
        Only its shape is used.
    mask : scalar or array_like broadcastable to (N, L)
        Multiplies the coordinates (not the radius used for the cutoff). An array whose
        values are all the same (the notebooks' ``np.sum(np.ones(X.shape), axis=-1) / 4``)
        runs as that scalar, with the same results and without reading it per point.
    radius_count_cutoff : float >= 0
        Fraction of points at the cutoff rank.

    Returns
    -------
    phi_1_s, phi_2_s, r_s : lists of 1-D float64 ndarrays, one per map
        ``phi'``, ``theta`` and the (unmasked) radius of the kept points.

    Notes
    -----
    Differences from the reference: ``phi_1_s`` and ``phi_2_s`` hold ndarrays rather
    than Python lists; ``z' / r`` is clipped to [-1, 1] before ``arccos``; numpy's
    divide warnings are suppressed; no global ``N_EXP`` is set.
    """
    if isinstance(saliency_map_raw_s, np.ndarray) and saliency_map_raw_s.ndim == 3:
        saliency_map_raw_s = [saliency_map_raw_s]
    maps = list(saliency_map_raw_s)
    try:
        xshape = np.shape(X)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"X: expected a regular 3-D array (N, L, 4) ({exc})") from None
    if len(xshape) != 3:
        raise ValueError(f"X: expected a 3-D array (N, L, 4), got shape {xshape}")
    if isinstance(radius_count_cutoff, bool) or not isinstance(radius_count_cutoff, numbers.Real):
        raise TypeError(f"radius_count_cutoff: expected a finite number >= 0, got "
                        f"{type(radius_count_cutoff).__name__} {radius_count_cutoff!r}")
    if not (0 <= radius_count_cutoff < np.inf):
        raise ValueError(f"radius_count_cutoff: expected a finite number >= 0, got {radius_count_cutoff!r}")
    N, L = xshape[0], xshape[1]
    size = N * L
    count = radius_count_cutoff * float(np.prod(xshape)) / 4
    radius_count = int(count) if count <= size else size + 1
    if radius_count > size:
        raise ValueError(f"radius_count_cutoff: {radius_count_cutoff!r} gives {radius_count} points, "
                         f"more than the {size} positions")
    m = np.asarray(mask)
    try:
        ok = np.broadcast_shapes((N, L), m.shape) == (N, L)
    except ValueError:
        ok = False
    if not ok or m.dtype.kind not in "biuf":
        raise ValueError(f"mask: expected a number or an array broadcastable to ({N}, {L}), got "
                         f"{m.dtype} {m.shape}")
    if m.ndim == 0:
        mask_value, mask_arr = float(m), None
    else:
        mask_value, mask_arr = 1.0, np.ascontiguousarray(np.broadcast_to(m, (N, L)), dtype=np.float64)
    phi_1_s: list[np.ndarray] = []
    phi_2_s: list[np.ndarray] = []
    r_s: list[np.ndarray] = []
    for j, smap in enumerate(maps):
        s = _as_map_nl(smap, f"saliency_map_raw_s[{j}]", 3)
        if s.shape[:2] != (N, L):
            raise ValueError(f"saliency_map_raw_s[{j}]: expected shape ({N}, {L}, 3) to match X, "
                             f"got {s.shape}")
        if s.shape[2] != 3 or s.dtype != np.float64 or not s.flags.c_contiguous:
            s = np.ascontiguousarray(s[:, :, :3], dtype=np.float64)
        # radii, cutoff and the kept points' ratio y'/x', branch, clipped cosine and radius, in C++
        # (compat.hpp) with the numpy code's operations; arctan and arccos stay numpy's.
        ratio, branch, cosine, r, _, _ = _core.compat_spherical(s, mask_value, mask_arr, radius_count, 0)
        phi, theta = _angles(ratio, branch, cosine)
        phi_1_s.append(phi)
        phi_2_s.append(theta)
        r_s.append(r)
    return phi_1_s, phi_2_s, r_s


def _angles(ratio: np.ndarray, branch: np.ndarray, cosine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """phi' and theta of the kept points: numpy's ``arctan`` and ``arccos`` (so numpy's bits),
    phi' = phi / 2 + PI / 2 from the arctan with the numpy code's operations (compat.hpp).

    Computed in place: phi' over ``ratio`` and theta over ``cosine`` (returned as such; the caller's
    temporaries, so no fresh pages for two more arrays of the kept points).
    Large arrays are cut into parts, run on the package's OpenMP threads (``_core.run_parts``:
    numpy and the C++ pass release the GIL); each part's values are the same whichever thread
    computes them.
    """
    n = ratio.size
    phi = ratio
    theta = cosine

    def part(a: int, b: int) -> None:
        with np.errstate(divide="ignore", invalid="ignore"):
            np.arctan(phi[a:b], out=phi[a:b])
            np.arccos(theta[a:b], out=theta[a:b])
        _core.compat_phi(phi[a:b], branch[a:b])

    n_parts = max(1, min(int(_core.max_threads(0)), n >> 16))
    cuts = [n * j // n_parts for j in range(n_parts + 1)]
    if n_parts == 1:
        part(0, n)
        return phi, theta
    results: list = [None] * n_parts

    def run(j: int) -> None:  # never raises: the exception is re-raised below, on this thread
        results[j] = _capture(part, cuts[j], cuts[j + 1])

    _core.run_parts(run, n_parts, n_parts)
    for ok, exc in results:
        if not ok:
            raise exc
    return phi, theta


def _capture(f: Any, *args: Any) -> tuple[bool, Any]:
    """(True, f(*args)) or (False, the exception it raised): for re-raising on the calling thread."""
    try:
        return True, f(*args)
    except BaseException as exc:  # noqa: BLE001 - re-raised by the caller
        return False, exc


def initialize_integration_2(box_length: float) -> tuple[float, float, float, int, int]:
    """Histogram geometry of method 2.

    Parameters
    ----------
    box_length : float
        Bin width in radians, in (0, 3.1416].

    Returns
    -------
    LIM, box_length, box_volume, n_bins, n_bins_half
        ``3.1416``, ``box_length``, ``box_length**2``, ``int(LIM / box_length)``,
        ``int(n_bins / 2)``.

    Notes
    -----
    Differences from the reference: no global ``volume_border_correction`` is set.
    """
    if isinstance(box_length, bool) or not isinstance(box_length, numbers.Real) \
            or not (PI / 46340 <= box_length <= PI):
        raise ValueError(f"box_length: expected a bin width in radians in [{PI / 46340:.3g}, {PI}] (at most 46340 "
                         f"bins per angle), got {box_length!r}")
    LIM = PI
    box_volume = box_length * box_length
    n_bins = int(LIM / box_length)
    n_bins_half = int(n_bins / 2)
    return LIM, box_length, box_volume, n_bins, n_bins_half


def calculate_entropy_2(phi_1_s: Sequence[Any], phi_2_s: Sequence[Any], r_s: Sequence[Any], n_bins: int,
                        box_length: float, box_volume: float, prior_range: int) -> list[np.float64]:
    """k-attr-mean KLD of each map, rounded to 3 decimals (method 2).

    Points are binned by ``(phi', theta)`` (bin ``min(int(angle / box_length),
    n_bins - 1)``) with weight ``r**2``; the mass ``P`` is compared, over the interior bins
    ``1..n_bins-2`` with ``P > 0``, with its local mean over offsets
    ``-prior_range..prior_range-1`` restricted to bins ``1..n_bins-1``.

    Parameters
    ----------
    phi_1_s, phi_2_s, r_s : lists of 1-D array_like
        From :func:`spherical_coordinates_process_2_trad`.
    n_bins : int >= 1
    box_length : float > 0
    box_volume : float
        Unused (it cancels), kept for the reference's signature.
    prior_range : int >= 1

    Returns
    -------
    list of numpy.float64
        One KLD per map; 0.0 for a map without points (as in the reference).

    Notes
    -----
    Uses the package's exact fixed-point histogram. Differences from the reference: the
    number of maps is ``len(phi_1_s)`` (not the global ``N_EXP``); NaN or negative angles
    raise ``ValueError`` (the reference crashed or wrapped the index).
    """
    n_bins = check_int("n_bins", n_bins, 1, 46340)  # n_bins**2 bins must fit a 32-bit index
    check_memory(kattr_hist_bytes(n_bins, 1), "n_bins", f"n_bins={n_bins} gives {n_bins}x{n_bins} bins; the histogram",
                 "use fewer bins (a larger box_length)")
    prior_range = check_int("prior_range", prior_range, 1)
    prior_range = min(prior_range, n_bins)  # a wider window covers every bin already: the same prior
    if isinstance(box_length, bool) or not isinstance(box_length, numbers.Real) or not (box_length > 0):
        raise ValueError(f"box_length: expected a number > 0, got {box_length!r}")
    for name, v in (("phi_1_s", phi_1_s), ("phi_2_s", phi_2_s), ("r_s", r_s)):
        if isinstance(v, (str, bytes)) or not hasattr(v, "__len__") or not hasattr(v, "__getitem__"):
            raise TypeError(f"{name}: expected a list of 1-D arrays (one per map), got {type(v).__name__}")
    if not (len(phi_1_s) == len(phi_2_s) == len(r_s)):
        raise ValueError("phi_1_s, phi_2_s, r_s: expected lists of the same length")
    out: list[np.float64] = []
    for s in range(len(phi_1_s)):
        arrs = []
        for name, v in (("phi_1_s", phi_1_s), ("phi_2_s", phi_2_s), ("r_s", r_s)):
            try:
                arrs.append(np.asarray(v[s], dtype=np.float64).ravel())
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{name}[{s}]: expected a 1-D array of numbers ({exc})") from None
        p1, p2, r = arrs
        if not (p1.size == p2.size == r.size):
            raise ValueError(f"phi_1_s[{s}], phi_2_s[{s}], r_s[{s}]: expected the same length")
        if p1.size == 0:
            out.append(np.float64(0.0))
            continue
        # checks and the r**2-weighted histogram in one C++ pass (compat.hpp)
        hist, problem, _ = _core.compat_angle_hist(np.ascontiguousarray(p1), np.ascontiguousarray(p2),
                                                   np.ascontiguousarray(r), float(box_length), n_bins)
        if problem == 1:
            raise ValueError(f"phi_1_s[{s}], phi_2_s[{s}]: expected finite angles")
        if problem == 2:
            raise ValueError(f"r_s[{s}]: expected finite radii below 2**48 (their squares are the weights)")
        if problem == 3:
            raise ValueError(f"phi_1_s[{s}], phi_2_s[{s}]: expected angles >= 0")
        kld, _, _ = _core.kattr_finish(hist, True, n_bins, 2 * prior_range)
        out.append(np.round(np.float64(kld), 3) if np.isfinite(kld) else np.float64(0.0))
    return out
