"""The numpy computations of acme_fast.compat's per-point functions as they were before those
passes moved to C++ (compat.hpp): the slow, obvious reference that tests/test_compat_passes.py
compares with, bit for bit. Only the arithmetic, in the published code's order: argument checks
and error messages are compat's own (the tests call compat for those)."""

from __future__ import annotations

import numpy as np

from acme_fast import _core
from acme_fast.compat import PI


def ref_orthonormal_coordinates(a: np.ndarray) -> np.ndarray:
    """The published projection of (N, L, 4) vectors, in float64."""
    x, y, z, w = (a[:, :, c].astype(np.float64, copy=False) for c in range(4))
    out = np.empty(a.shape[:2] + (3,), dtype=np.float64)
    out[:, :, 0] = np.multiply(1 / np.sqrt(2), -x + y)
    s = np.multiply(-1 / 2, x)
    s -= 1 / 2 * y
    out[:, :, 1] = np.multiply(np.sqrt(2 / 3), s)
    s = np.multiply(-1 / 3, x)
    s -= 1 / 3 * y
    s -= 1 / 3 * z
    s += w
    out[:, :, 2] = np.multiply(np.sqrt(3 / 4), s)
    return out


def ref_process_attribution_map(a: np.ndarray, k: int = 3) -> np.ndarray:
    """Gauge correction, division by the total norm, forward wrap-around window sum, projection."""
    a = np.asarray(a).astype(np.float64)
    L = a.shape[1]
    amax = np.abs(a).max(axis=(1, 2))
    odd = (amax > 0) & ((amax > 2.0**400) | (amax < 2.0**-400))  # power-of-two rescale (exact)
    if odd.any():
        a[odd] = np.ldexp(a[odd], -np.frexp(amax[odd])[1][:, None, None])
    a -= (((a[..., 0:1] + a[..., 1:2]) + a[..., 2:3]) + a[..., 3:4]) / 4
    sq = np.square(a)
    norm = np.sqrt(((sq[..., 0] + sq[..., 1]) + sq[..., 2]) + sq[..., 3])
    with np.errstate(divide="ignore", invalid="ignore"):
        a /= np.sum(norm, axis=-1)[:, None, None]
    w = a.copy()
    for t in range(1, k):
        w[:, : L - t] += a[:, t:]
        w[:, L - t :] += a[:, :t]
    return ref_orthonormal_coordinates(w)


def ref_spherical_coordinates_process_2_trad(maps, X, mask, radius_count_cutoff=0.04):
    """Angles and radii of the points above the all-points radius cutoff, one triple per map."""
    N, L = np.shape(X)[:2]
    size = N * L
    radius_count = int(radius_count_cutoff * float(np.prod(np.shape(X))) / 4)
    m = np.asarray(mask)
    phi_1_s, phi_2_s, r_s = [], [], []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for smap in maps:
            s = np.asarray(smap)
            c = [s[:, :, i].astype(np.float64) for i in range(3)]
            r = np.sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2])
            xm, ym, zm = (ci * m for ci in c)
            x, y, z = (np.nan_to_num(v.reshape(size)) for v in (xm, ym, zm))
            r = np.nan_to_num(r.reshape(size))
            cutoff = r.min() if radius_count == 0 else np.partition(r, size - radius_count)[size - radius_count]
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


def ref_calculate_entropy_2(phi_1_s, phi_2_s, r_s, n_bins, box_length, box_volume, prior_range):
    """KLD of each map's r**2-weighted (phi', theta) histogram against its local mean, 3 decimals."""
    prior_range = min(prior_range, n_bins)
    out = []
    for p1, p2, r in zip(phi_1_s, phi_2_s, r_s):
        p1, p2, r = (np.asarray(v, dtype=np.float64).ravel() for v in (p1, p2, r))
        if p1.size == 0:
            out.append(np.float64(0.0))
            continue
        k = np.minimum((p1 / box_length).astype(np.int64), n_bins - 1)
        l_ = np.minimum((p2 / box_length).astype(np.int64), n_bins - 1)
        hist = _core.hist_from_bins(np.ascontiguousarray(k * n_bins + l_), np.ascontiguousarray(r * r), n_bins)
        kld, _, _ = _core.kattr_finish(hist, True, n_bins, 2 * prior_range)
        out.append(np.round(np.float64(kld), 3) if np.isfinite(kld) else np.float64(0.0))
    return out


def ref_collect_passing_subsequences(attr_map, X, threshold=0.9, kmer_length=3):
    """Intervals' sequences with the one-hot codes and the strings built in numpy."""
    a = np.asarray(attr_map)
    xa = np.asarray(X)
    x0, x1, x2, x3 = (xa[..., c] for c in range(4))
    codes = (x1 + 2 * x2 + 3 * x3 + 4 * (1 - (x0 + x1 + x2 + x3))).astype(np.uint8)
    L = codes.shape[1]
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
