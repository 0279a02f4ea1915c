"""The numpy versions of acme_fast.compat's method-2 functions, as they were before the per-point
passes moved to C++ (the slow, obvious reference the tests compare the C++ passes with, bit for bit).
Same operations in the same order; only the names differ (``ref_...``)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from acme_fast import _core
from acme_fast._limits import check_memory, kattr_hist_bytes
from acme_fast._validate import as_attr, check_int, first_bad
from acme_fast.compat import PI, _as_map_nl


def ref_orthonormal_coordinates(attr_map: Any) -> np.ndarray:
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



def ref_process_attribution_map(saliency_map_raw: Any, k: int = 3) -> np.ndarray:
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
    """
    k = check_int("k", k, 1)
    a = as_attr(saliency_map_raw, False, "saliency_map_raw").astype(np.float64)
    L = a.shape[1]
    if k > L:  # as kattr_kld(preset="acme") bounds its window: a longer window wraps onto itself
        raise ValueError(f"k: expected an integer in 1..L = 1..{L} (the window wraps around the sequence), got {k}")
    bad = ~np.isfinite(a)
    if bad.any():
        i, l, _ = first_bad(bad)
        raise ValueError(f"saliency_map_raw: expected finite values, found {a[i, l][bad[i, l]][0]} at sequence {i}, "
                         f"position {l}")
    # Sequences so large or so small that their squares over- or underflow (|a| above ~1e150 or
    # below ~1e-150, e.g. 1e-310) are scaled by a power of two first: exact, and the normalised
    # map is the same (it divides by the sequence's total norm).
    amax = np.abs(a).max(axis=(1, 2))
    odd = (amax > 0) & ((amax > 2.0**400) | (amax < 2.0**-400))
    if odd.any():
        a[odd] = np.ldexp(a[odd], -np.frexp(amax[odd])[1][:, None, None])
    # gauge correction and normalisation, summed in the reference's order
    a -= (((a[..., 0:1] + a[..., 1:2]) + a[..., 2:3]) + a[..., 3:4]) / 4
    sq = np.square(a)
    norm = np.sqrt(((sq[..., 0] + sq[..., 1]) + sq[..., 2]) + sq[..., 3])
    del sq
    with np.errstate(divide="ignore", invalid="ignore"):
        a /= np.sum(norm, axis=-1)[:, None, None]
    # forward wrap-around window sum: w[l] = a[l] + a[l+1] + ... + a[l+k-1] (mod L), left to right
    w = a.copy()
    for t in range(1, k):
        t %= L
        if t == 0:
            w += a
        else:
            w[:, : L - t] += a[:, t:]
            w[:, L - t :] += a[:, :t]
    return ref_orthonormal_coordinates(w)


def ref_spherical_coordinates_process_2_trad(saliency_map_raw_s: Any, X: Any, mask: Any,
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
        Multiplies the coordinates (not the radius used for the cutoff).
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
    phi_1_s: list[np.ndarray] = []
    phi_2_s: list[np.ndarray] = []
    r_s: list[np.ndarray] = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for j, smap in enumerate(maps):
            s = _as_map_nl(smap, f"saliency_map_raw_s[{j}]", 3)
            if s.shape[:2] != (N, L):
                raise ValueError(f"saliency_map_raw_s[{j}]: expected shape ({N}, {L}, 3) to match X, "
                                 f"got {s.shape}")
            c = [s[:, :, i].astype(np.float64) for i in range(3)]
            r = np.sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2])
            xm, ym, zm = (ci * m for ci in c)
            x = np.nan_to_num(xm.reshape(size))
            y = np.nan_to_num(ym.reshape(size))
            z = np.nan_to_num(zm.reshape(size))
            r = np.nan_to_num(r.reshape(size))
            if radius_count == 0:
                cutoff = r.min()
            else:
                kth = size - radius_count
                cutoff = np.partition(r, kth)[kth]
            keep = np.sqrt(x * x + y * y + z * z) > cutoff
            x, y, z, r = x[keep], y[keep], z[keep], r[keep]
            xr, yr, zr = y, z, x  # rotate axes
            at = np.arctan(yr / xr)
            phi = np.where((xr < 0) & (yr >= 0), at + PI, at)
            phi = np.where((xr < 0) & (yr < 0), at - PI, phi)
            phi = np.where(xr == 0, PI / 2, phi)
            phi_1_s.append(phi / 2 + PI / 2)
            phi_2_s.append(np.arccos(np.clip(zr / r, -1.0, 1.0)))
            r_s.append(r)
    return phi_1_s, phi_2_s, r_s



def ref_calculate_entropy_2(phi_1_s: Sequence[Any], phi_2_s: Sequence[Any], r_s: Sequence[Any], n_bins: int,
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
        if not (np.isfinite(p1).all() and np.isfinite(p2).all()):
            raise ValueError(f"phi_1_s[{s}], phi_2_s[{s}]: expected finite angles")
        if not (np.isfinite(r).all() and (np.abs(r) < 2.0**48).all()):
            raise ValueError(f"r_s[{s}]: expected finite radii below 2**48 (their squares are the weights)")
        with np.errstate(invalid="ignore", over="ignore"):
            k = np.minimum((p1 / box_length).astype(np.int64), n_bins - 1)
            l_ = np.minimum((p2 / box_length).astype(np.int64), n_bins - 1)
        if (k < 0).any() or (l_ < 0).any():
            raise ValueError(f"phi_1_s[{s}], phi_2_s[{s}]: expected angles >= 0")
        w = r * r
        hist = _core.hist_from_bins(np.ascontiguousarray(k * n_bins + l_), np.ascontiguousarray(w), n_bins)
        kld, _, _ = _core.kattr_finish(hist, True, n_bins, 2 * prior_range)
        out.append(np.round(np.float64(kld), 3) if np.isfinite(kld) else np.float64(0.0))
    return out


def ref_collect_passing_subsequences(attr_map, X, threshold=0.9, kmer_length=3):
    """The numpy version of compat.collect_passing_subsequences (codes and strings in numpy)."""
    from acme_fast._validate import as_onehot, raise_kernel_error

    a = as_attr(attr_map, False, "attr_map")
    xa = as_onehot(X, False, "X")
    out = _core.kmer_count(xa, None, 1, 0.5, 0, True, False, 0)
    raise_kernel_error(out["error"], xa, False, xname="X")
    x0, x1, x2, x3 = (xa[..., c] for c in range(4))
    codes = (x1 + 2 * x2 + 3 * x3 + 4 * (1 - (x0 + x1 + x2 + x3))).astype(np.uint8)
    N, L = codes.shape
    out = _core.kmer_intervals(a, 1, threshold, 2, False, False, 0)
    seq, begin, end = out["seq"], out["begin"], out["end"]
    keep = end - begin + 1 >= kmer_length
    seq, begin, end = seq[keep], begin[keep], end[keep]
    order = np.lexsort((begin, seq))
    seq, begin, end = seq[order], begin[order], end[order]
    text = np.frombuffer(b"ACGTN", dtype=np.uint8)[codes].tobytes().decode("ascii")
    lo = (seq * L + begin).tolist()
    hi = (seq * L + end + 1).tolist()
    return [text[b:e] for b, e in zip(lo, hi)], out["cutoff"].astype(a.dtype)
