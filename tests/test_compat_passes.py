"""compat's method-2 functions run their per-point passes in C++ (compat.hpp); they must give
exactly the arrays of the numpy code they replaced (tests/_compat_numpy.py), bit for bit,
including NaN where the published code makes NaN, and the same errors."""

from __future__ import annotations

import numpy as np
import pytest
from _compat_numpy import (
    ref_calculate_entropy_2,
    ref_process_attribution_map,
    ref_spherical_coordinates_process_2_trad,
)

import acme_fast as af
from acme_fast import _core
from acme_fast import compat as C

TIERS = list(_core.simd_levels())


def _on_every_tier(f):
    """f() on every SIMD tier this CPU has (the C++ passes have vector builds); restores the best."""
    try:
        return [(af.set_simd_level(t), f())[1] for t in TIERS]
    finally:
        af.set_simd_level(None)


def _maps(seed, N, L, dtype, kind):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((N, L, 4))
    if kind == "motif":
        a[:, L // 3 : L // 3 + 6, 1] += 4.0
    elif kind == "ties":
        a = np.round(a * 2) / 2
    elif kind == "zeros":
        a[::2] = 0.0  # all-zero sequences: 0 / 0 = NaN, as published
        a[:, ::3] = 0.0
    elif kind == "huge":
        a[0] *= 1e200  # squares overflow: the power-of-two rescale
        a[-1] *= 1e-200
    elif kind == "const":
        a[:] = 1.5  # gauge-corrected to 0 everywhere
    if kind == "huge":
        return a  # float64 only: float32 cannot hold the extremes
    return a.astype(dtype)


KINDS = ["motif", "ties", "zeros", "huge", "const"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N,L,k", [(3, 50, 3), (2, 7, 1), (4, 129, 5), (1, 3, 3), (5, 300, 2), (2, 1000, 7)])
def test_process_attribution_map_same_bits(kind, dtype, N, L, k):
    a = _maps(N * L + k, N, L, dtype, kind)
    ref = ref_process_attribution_map(a, k)
    for got in _on_every_tier(lambda: C.process_attribution_map(a, k)):
        np.testing.assert_array_equal(got, ref)


def test_process_attribution_map_errors():
    a = np.ones((2, 5, 4), np.float32)
    a[1, 3, 2] = np.inf
    with pytest.raises(ValueError, match=r"saliency_map_raw: expected finite values, found inf at sequence 1, "
                                         r"position 3"):
        C.process_attribution_map(a)
    a[0, 4, 0] = np.nan
    with pytest.raises(ValueError, match=r"found nan at sequence 0, position 4"):
        C.process_attribution_map(a)
    with pytest.raises(ValueError, match=r"k: expected an integer in 1..L = 1..5"):
        C.process_attribution_map(np.ones((2, 5, 4)), k=6)


def _same_lists(got, ref):
    assert len(got) == len(ref) == 3
    for g, r in zip(got, ref):
        assert len(g) == len(r)
        for gi, ri in zip(g, r):
            assert gi.dtype == ri.dtype
            np.testing.assert_array_equal(gi, ri)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cutoff", [0.0, 0.04, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("mask", ["one", "half", "array", "bool", "row"])
def test_spherical_same_bits(kind, cutoff, mask):
    N, L = 6, 140
    rng = np.random.default_rng(11)
    maps = [C.process_attribution_map(_maps(s, N, L, np.float64, kind), 3) for s in (1, 2)]
    maps.append(rng.standard_normal((N, L, 3)).astype(np.float32))  # any map, any dtype
    odd = rng.standard_normal((N, L, 3))
    odd[0, :5] = np.nan
    odd[1, 3] = [np.inf, 1.0, -np.inf]
    odd[2, 7] = [1e200, -1e200, 3.0]  # squares overflow: r = inf -> max
    odd[3, 9] = [1e-200, 0.0, -0.0]
    maps.append(odd)
    x = np.zeros((N, L, 4), np.float32)
    m = {"one": 1, "half": 0.5, "array": rng.uniform(0, 2, (N, L)), "bool": rng.uniform(size=(N, L)) > 0.3,
         "row": np.arange(L) % 3}[mask]
    ref = ref_spherical_coordinates_process_2_trad(maps, x, m, cutoff)
    for got in _on_every_tier(lambda: C.spherical_coordinates_process_2_trad(maps, x, m, cutoff)):
        _same_lists(got, ref)


def test_spherical_axes_and_signs():
    """Points on the axes, with signed zeros and exact ties of radii: every branch of phi."""
    vals = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.0])
    grid = np.array(np.meshgrid(vals, vals, vals, indexing="ij")).reshape(3, -1).T
    s = np.repeat(grid[None], 2, axis=0)
    x = np.zeros(s.shape[:2] + (4,))
    for cutoff in (0.0, 0.3, 0.9):
        _same_lists(C.spherical_coordinates_process_2_trad([s], x, 1, cutoff),
                    ref_spherical_coordinates_process_2_trad([s], x, 1, cutoff))


@pytest.mark.parametrize("box", [0.1, 0.05, 0.3, 1.0])
@pytest.mark.parametrize("prior_range", [1, 3, 10])
def test_entropy_same_bits(box, prior_range):
    rng = np.random.default_rng(5)
    maps = [C.process_attribution_map(_maps(s, 8, 200, np.float32, "motif"), 3) for s in range(3)]
    x = np.zeros((8, 200, 4))
    p1, p2, r = C.spherical_coordinates_process_2_trad(maps, x, 1, 0.1)
    p1.append(np.array([]))
    p2.append(np.array([]))
    r.append(np.array([]))  # a map without points: 0.0
    p1.append(rng.uniform(-0.05, 3.2, 50))  # small negative angles truncate to bin 0, as numpy
    p2.append(rng.uniform(0, 3.2, 50))
    r.append(rng.uniform(-1, 1, 50))
    _, bl, bv, nb, _ = C.initialize_integration_2(box)
    got = C.calculate_entropy_2(p1, p2, r, nb, bl, bv, prior_range)
    ref = ref_calculate_entropy_2(p1, p2, r, nb, bl, bv, prior_range)
    assert [float(v) for v in got] == [float(v) for v in ref]


@pytest.mark.parametrize("p1,p2,r,match", [
    ([np.nan], [0.1], [1.0], r"phi_1_s\[0\], phi_2_s\[0\]: expected finite angles"),
    ([0.1], [np.inf], [1.0], r"expected finite angles"),
    ([0.1], [0.2], [np.nan], r"r_s\[0\]: expected finite radii below 2\*\*48"),
    ([0.1], [0.2], [2.0**48], r"expected finite radii below 2\*\*48"),
    ([-0.2], [0.2], [1.0], r"expected angles >= 0"),
    ([0.2], [-1e300], [1.0], r"expected angles >= 0"),
])
def test_entropy_errors(p1, p2, r, match):
    with pytest.raises(ValueError, match=match):
        C.calculate_entropy_2([np.array(p1)], [np.array(p2)], [np.array(r)], 31, 0.1, 0.01, 3)


def test_entropy_huge_angle_goes_to_the_last_bin():
    """An angle / box_length beyond int64 is binned in the last bin (numpy's cast wrapped it negative
    on x86 and raised 'expected angles >= 0'): the same KLD as the last bin's own angle."""
    args = (31, 0.1, 0.01, 3)
    huge = C.calculate_entropy_2([np.array([0.5, 1e300])], [np.array([0.3, 0.3])], [np.array([1.0, 2.0])], *args)
    last = C.calculate_entropy_2([np.array([0.5, 3.05])], [np.array([0.3, 0.3])], [np.array([1.0, 2.0])], *args)
    assert huge == last and np.isfinite(huge[0])


@pytest.mark.parametrize("xdtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("adtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 3, 6])
def test_collect_passing_subsequences_same_lists(xdtype, adtype, k):
    from _compat_numpy import ref_collect_passing_subsequences

    rng = np.random.default_rng(k)
    N, L = 7, 301
    x = np.eye(4)[rng.integers(0, 4, (N, L))]
    x[1, 10:20] = 0  # N rows
    x = x.astype(xdtype)
    a = _maps(k, N, L, adtype, "motif")
    a[3] = 0  # no attributed positions
    got = C.collect_passing_subsequences(a, x, 0.9, k)
    ref = ref_collect_passing_subsequences(a, x, 0.9, k)
    assert got[0] == ref[0] and len(got[0]) > 0 and all(isinstance(s, str) for s in got[0])
    assert got[1].dtype == ref[1].dtype
    np.testing.assert_array_equal(got[1], ref[1])


def test_collect_passing_subsequences_bad_onehot():
    x = np.eye(4)[np.zeros((2, 10), int)]
    x[1, 4, 2] = 1  # two ones in a row
    with pytest.raises(ValueError, match=r"X: .*sequence 1.*position 4"):
        C.collect_passing_subsequences(np.ones((2, 10, 4)), x)
