"""The kernel's fast angular binning (cosine comparisons, cheap arccos, exact fallback near
edges) must give exactly the bins of the SPEC formulas (atan2 / published arctan, arccos)."""

from __future__ import annotations

import numpy as np
import pytest

from acme_fast import _core


def _directions(rng, n):
    v = rng.standard_normal((n, 3))
    return v * rng.lognormal(0, 3, size=(n, 1))


def _near_edges(bw, n_bins, acme, n_per_edge=50, eps=(0.0, 1e-15, 1e-9, 1e-6, 5e-5, 2e-4, 1e-3)):
    """Points whose angles lie at and around every bin edge, for both axes."""
    pi = 3.1416 if acme else np.pi
    pts = []
    rng = np.random.default_rng(1)
    for j in range(1, n_bins):
        edge = j * bw
        for d in eps:
            for sign in (-1, 1):
                ang = edge + sign * d
                other = rng.uniform(0.05, np.pi - 0.05, size=n_per_edge)
                # theta edge: z' = cos(theta); phi' edge: phi = 2 phi' - pi
                for theta, phi_p in ((np.full_like(other, ang), other), (other, np.full_like(other, ang))):
                    phi = 2 * phi_p - pi
                    zp = np.cos(theta)
                    rho = np.sin(theta)
                    xp, yp = rho * np.cos(phi), rho * np.sin(phi)
                    pts.append(np.stack([zp, xp, yp], axis=1))  # (e1, e2, e3) = (z', x', y')
    return np.concatenate(pts) if pts else np.zeros((0, 3))


def _near_poles(rng, n):
    """Directions within 1e-9 .. 1e-2 rad of the z' axis (theta near 0 or pi), and of the
    x' axis in the (x', y') plane (phi' near 0 or pi): where float32 cosines are least exact.
    Offsets below 1e-16 put phi within rounding of -pi, where atan2 returns -pi and the paper
    preset maps it to +pi (the last phi' bin, not the first)."""
    out = []
    for d in (1e-17, 2e-16, 1e-9, 1e-7, 1e-5, 1e-4, 1.4e-2, 1e-2):
        t = rng.uniform(0.5, 1.0, n) * d
        ph = rng.uniform(-np.pi, np.pi, n)
        for theta in (t, np.pi - t):
            out.append(np.stack([np.cos(theta), np.sin(theta) * np.cos(ph), np.sin(theta) * np.sin(ph)], axis=1))
        th = rng.uniform(0.05, np.pi - 0.05, n)
        for phi in (np.pi - t, -np.pi + t, t, -t):
            out.append(np.stack([np.cos(th), np.sin(th) * np.cos(phi), np.sin(th) * np.sin(phi)], axis=1))
    return np.concatenate(out) * rng.lognormal(0, 3, size=(len(out) * n, 1))


@pytest.fixture(params=list(_core.simd_levels()))
def simd_path(request):
    """Every tier this CPU has (the vector binning where it exists, and the scalar one)."""
    import acme_fast as af

    af.set_simd_level(request.param)
    yield request.param
    af.set_simd_level(None)


@pytest.mark.parametrize("acme", [False, True])
@pytest.mark.parametrize("bw", [0.1, 0.2, 0.05, 0.3, 1.0, 3.0, 0.01, 0.003])
def test_fast_bins_equal_exact_bins(acme, bw, simd_path):
    n_bins = int((3.1416 if acme else np.pi) / bw)
    rng = np.random.default_rng(0)
    e = np.concatenate([
        _directions(rng, 50_000),
        _near_edges(bw, n_bins, acme),
        # axes and degenerate directions: x' = 0, y' = +-0, z' = +-r
        _near_poles(rng, 2_000),
        _directions(rng, 5_000) * 1e-150,  # float32 would underflow without the per-point scaling
        _directions(rng, 5_000) * 1e150,
        np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1],
                  [0.5, 0.0, -0.0], [0.5, -1.0, -0.0], [0.5, -1.0, 0.0], [-0.3, 0.0, 2.0], [0.2, 0.0, -2.0],
                  # y' a rounding residue below x' < 0: atan2 rounds to -pi (paper: mapped to +pi)
                  [0.99967907529643052, -0.025332714313187933, -5.9492514630731346e-18],
                  [0.1, -1.0, -1e-300], [0.1, -1.0, -5e-324], [0.1, -1.0, -1e-17], [0.1, -1.0, -2e-16]]),
    ]).astype(np.float64)
    fast, exact = _core.kattr_bins(np.ascontiguousarray(e), acme, bw, n_bins)
    bad = np.flatnonzero(fast != exact)
    assert bad.size == 0, f"{bad.size} points binned differently, e.g. {e[bad[:3]]}"
    assert exact.min() >= 0 and exact.max() < n_bins**2
