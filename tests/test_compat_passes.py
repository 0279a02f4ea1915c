"""compat's method-2 functions run their per-point passes in C++ (compat.hpp); they must give
exactly the arrays of the numpy code they replaced (tests/_compat_numpy.py), bit for bit,
including NaN where the published code makes NaN, and the same errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from _compat_numpy import (
    ref_calculate_entropy_2,
    ref_process_attribution_map,
    ref_spherical_coordinates_process_2_trad,
)
from conftest import run_isolated
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _assert_same_bits(got, ref):
    """Bit for bit, so that -0.0 differs from 0.0 (assert_array_equal takes them as equal); NaN
    where ref has NaN, whatever its sign bit (IEEE leaves a NaN's sign unspecified)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan].view(np.uint64), ref[~nan].view(np.uint64))


KINDS = ["motif", "ties", "zeros", "huge", "const"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N,L,k", [(3, 50, 3), (2, 7, 1), (4, 129, 5), (1, 3, 3), (5, 300, 2), (2, 1000, 7)])
def test_process_attribution_map_same_bits(kind, dtype, N, L, k):
    a = _maps(N * L + k, N, L, dtype, kind)
    ref = ref_process_attribution_map(a, k)
    for got in _on_every_tier(lambda: C.process_attribution_map(a, k)):
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_process_attribution_map_large_output(n_threads):
    """An output of more than 4 MiB, which the pass faults in first (one contiguous part per thread,
    parallel.hpp's prefault): the same bits with any thread count."""
    N, L = 90, 2048  # 4.4 MB of float64 output
    a = _maps(5, N, L, np.float32, "motif")
    ref = ref_process_attribution_map(a, 3)
    got, bad = _core.compat_process_map(a, 3, n_threads)
    assert bad == -1
    np.testing.assert_array_equal(got, ref)


def test_process_attribution_map_pooled_outputs():
    """Outputs of 16 MB and more live on a block that is kept when its array dies and reused by the
    next call (bindings.cpp: OutputPool). A reused block still holds the old map: the new one must
    not show it; a live array or view must never be handed out again. In a separate process: a
    pool that gave a block out twice would crash (a block unmapped while in use)."""
    p = run_isolated(textwrap.dedent("""
        import sys
        import numpy as np
        sys.path.insert(0, sys.argv[1])
        from test_compat_passes import _assert_same_bits, _maps
        from _compat_numpy import ref_process_attribution_map
        from acme_fast import compat as C

        N, L = 360, 2048  # 17.7 MB of output
        a = _maps(1, N, L, np.float32, "motif")
        b = _maps(2, N, L, np.float32, "zeros")  # NaN sequences (0 / 0) and zero positions
        ref_a, ref_b = ref_process_attribution_map(a, 3), ref_process_attribution_map(b, 3)
        first = C.process_attribution_map(a)
        assert first.nbytes >= 16 << 20 and first.flags.writeable and first.flags.c_contiguous
        second = C.process_attribution_map(b)  # while `first` lives: a fresh block
        assert not np.shares_memory(first, second)
        _assert_same_bits(first, ref_a)
        _assert_same_bits(second, ref_b)
        view = first[5:9]  # the block stays with the view
        del first
        third = C.process_attribution_map(b)  # `second`'s block is reused only once it dies: not yet
        assert not np.shares_memory(third, view) and not np.shares_memory(third, second)
        _assert_same_bits(view, ref_a[5:9])
        del second, third, view
        for m, ref in ((a, ref_a), (b, ref_b), (a[: N * 3 // 4], ref_a[: N * 3 // 4]), (a, ref_a)):
            _assert_same_bits(C.process_attribution_map(m), ref)  # on kept blocks
        print("ok")
        """), timeout=120, args=(str(Path(__file__).parent),))
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-3000:]


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


def test_process_attribution_map_signed_zeros_same_bits():
    """A -0.0 input among zeros centres to -0.0 and divides to -0.0 (the exact division's FMA
    steps would give +0.0; its sign is copied back). With k = 1 the sign reaches the output
    (c1 * (-w0 + w1) with w1 = -0.0), and with k = 3 from windows of three such positions;
    compared bit for bit, as assert_array_equal takes -0.0 for 0.0."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 40, 4)).astype(np.float32)
    z = np.arange(40) % 5 < 3  # windows of 3 zero positions
    a[:, z] = 0.0
    a[:, z, 1] = -0.0
    for k in (1, 3):
        ref = ref_process_attribution_map(a, k)
        assert (np.signbit(ref) & (ref == 0)).any()  # the case is there
        for got in _on_every_tier(lambda k=k: C.process_attribution_map(a, k)):
            _assert_same_bits(got, ref)


def _hard_divisions(rng, n):
    """(v, d) pairs where dividing by multiplying goes wrong: divisors with significands near 2
    (1/d rounds far from 1/d), short significands (3, 5, 7 ...) and random ones; numerators whose
    quotients lie within a few ulps of a rounding midpoint, exact multiples, zeros of both signs."""
    kind = rng.integers(0, 3)
    if kind == 0:
        d = np.nextafter(2.0, 0.0) - float(rng.integers(0, 64)) * 2.0**-52
    elif kind == 1:
        d = 1.0 + float(rng.integers(1, 1024)) * 2.0**-10
    else:
        d = 1.0 + rng.random()
    d = float(np.ldexp(d, int(rng.integers(-390, 390))))
    m, e = 1.0 + rng.random(n), rng.integers(-380, 0, n)
    q = np.ldexp(m, e)
    near_tie = ((q + np.spacing(q) / 2) * d).view(np.int64) + rng.integers(-3, 4, n)  # a few ulps either side
    exact = np.ldexp(np.round(m * 2.0**20) * 2.0**-20, e) * d  # short quotients: often exact
    v = np.where(rng.random(n) < 0.5, near_tie.view(np.float64), exact)
    v[rng.random(n) < 0.5] *= -1.0
    v[rng.random(n) < 0.02] = 0.0
    v[rng.random(n) < 0.02] = -0.0
    lo, hi = d * 2.0**-400, d * 2.0**400
    bad = (v != 0) & ((np.abs(v) < lo) | (np.abs(v) > hi))
    v[bad] = d / 3
    return v, d


@pytest.mark.parametrize("seed", range(40))
def test_divide_exact_same_bits_as_division(seed):
    """compat's division of a sequence by its total without the divider (reciprocal, one Newton step,
    one Markstein step, with FMA) gives the correctly rounded quotient, so the bits of numpy's
    v / d, on every tier. Near-ties are where a missing correction shows: the product v * RN(1/d)
    alone differs in most of these cases."""
    rng = np.random.default_rng(seed)
    v, d = _hard_divisions(rng, 4099)  # 4096 + 3: the vector loop and its tail
    ref = v / d
    for got in _on_every_tier(lambda: _core.divide_exact(v, d)):
        _assert_same_bits(got, ref)


def test_divide_exact_cases_are_hard():
    """The cases above are hard: the product v * RN(1/d), without the correction steps, differs
    from the quotient in a fifth of them (none for some divisors, most for others)."""
    wrong = [np.mean(v * (1.0 / d) != v / d) for v, d in (_hard_divisions(np.random.default_rng(s), 4099)
                                                          for s in range(40))]
    assert np.mean(wrong) > 0.1 and max(wrong) > 0.5


@settings(max_examples=200, deadline=None)
@given(st.floats(2.0**-400, 2.0**400), st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=40),
       st.integers(-399, 0))
def test_divide_exact_same_bits_property(d, frac, e):
    v = np.ldexp(np.array(frac), e) * d
    v[(v != 0) & (np.abs(v) < d * 2.0**-400)] = 0.0
    ref = v / d
    for got in _on_every_tier(lambda: _core.divide_exact(v, d)):
        _assert_same_bits(got, ref)


def test_divide_exact_range_is_checked():
    with pytest.raises(ValueError, match=r"d: expected a divisor in \[2\^-400, 2\^400\]"):
        _core.divide_exact(np.ones(3), 2.0**401)
    with pytest.raises(ValueError, match=r"v: expected 0 or \|v\| in"):
        _core.divide_exact(np.array([1.0, 2.0**-500]), 1.0)


@pytest.mark.parametrize("top", [2.0**400, np.nextafter(2.0**400, np.inf), 2.0**-400, np.nextafter(2.0**-400, 0),
                                 1e-310, 1e300])
@pytest.mark.parametrize("k", [3, 4])
def test_process_attribution_map_scale_edges(top, k):
    """The power-of-two rescale happens exactly when the largest |value| of a sequence is above
    2**400 or below 2**-400 (and not 0): at and beside both edges, with the largest value alone
    among ordinary ones or the whole sequence that small."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 37, 4))
    a[0, 5, 2] = top  # one value at the edge, the rest ordinary
    a[1] *= top / np.abs(a[1]).max()  # the whole sequence scaled to the edge
    a[2, :, :] = 0.0
    a[2, 7, 1] = -top  # one nonzero value
    ref = ref_process_attribution_map(a, k)
    for got in _on_every_tier(lambda: C.process_attribution_map(a, k)):
        np.testing.assert_array_equal(got, ref)


def _notebook_mask(x, last=None):
    """The published notebooks' mask, an (N, L) array of ones (taken as the scalar 1 when every value
    has the bits of the first); with `last`, its last value changed (then it must stay an array)."""
    m = np.sum(np.ones(x.shape), axis=-1) / 4
    if last is not None:
        m[-1, -1] = last
    return m


def _same_lists(got, ref):
    assert len(got) == len(ref) == 3
    for g, r in zip(got, ref):
        assert len(g) == len(r)
        for gi, ri in zip(g, r):
            assert gi.dtype == ri.dtype
            np.testing.assert_array_equal(gi, ri)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cutoff", [0.0, 0.04, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("mask", ["one", "half", "array", "bool", "row", "ones", "ones_last", "const"])
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
         "row": np.arange(L) % 3, "ones": _notebook_mask(x), "ones_last": _notebook_mask(x, last=2.0),
         "const": np.full((N, L), 0.5)}[mask]
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


@pytest.mark.parametrize("kind", ["motif", "ties", "zeros", "const"])
@pytest.mark.parametrize("cutoff", [0.0, 0.1, 0.5, 0.999])
@pytest.mark.parametrize("mask", ["one", "array", "ones", "ones_last"])
def test_spherical_sampled_bracket(kind, cutoff, mask):
    """Maps of 2**14 points or more: the cutoff is bracketed by a sample of radii and the map read
    once. The same arrays as the numpy code, and as the two-pass path (force=1) and a bracket that
    misses (force=2, which falls back to it)."""
    N, L = 9, 2000
    rng = np.random.default_rng(17)
    s = C.process_attribution_map(_maps(23, N, L, np.float64, kind), 3)
    s[1, 3] = [np.nan, 1.0, 2.0]
    s[2, 4] = [1e200, -1e200, 3.0]
    x = np.zeros((N, L, 4), np.float32)
    m = {"one": 1, "array": rng.uniform(0, 2, (N, L)), "ones": _notebook_mask(x),
         "ones_last": _notebook_mask(x, last=2.0)}[mask]
    ref = ref_spherical_coordinates_process_2_trad([s], x, m, cutoff)
    for got in _on_every_tier(lambda: C.spherical_coordinates_process_2_trad([s], x, m, cutoff)):
        _same_lists(got, ref)
    count = int(cutoff * N * L)
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.nan_to_num(np.sqrt(s[..., 0] * s[..., 0] + s[..., 1] * s[..., 1] + s[..., 2] * s[..., 2])).ravel()
    want_cut = r.min() if count == 0 else np.partition(r, r.size - count)[r.size - count]
    marr = None if mask == "one" else np.ascontiguousarray(m, dtype=np.float64)
    outs = [_core.compat_spherical(s, 1.0, marr, count, 0, force) for force in (0, 1, 2)]
    assert not outs[1][5] and not outs[2][5]  # the forced paths: two passes, and a bracket that misses
    for out in outs:
        assert out[4] == want_cut
        for a, b in zip(out[:4], outs[0][:4]):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(outs[0][3], ref[2][0])


def test_spherical_buffers_reused_across_sizes():
    """The pass keeps its candidate buffers between calls (SphericalPool): calls on maps of
    alternating sizes and cutoffs, each after a larger or smaller one, give the numpy code's arrays."""
    x_of = {}
    for i, (N, L, cutoff) in enumerate([(9, 2000, 0.1), (3, 6000, 0.5), (12, 1500, 0.02), (2, 9000, 0.3),
                                        (9, 2000, 0.1)]):
        s = C.process_attribution_map(_maps(40 + i, N, L, np.float64, "motif"), 3)
        x = x_of.setdefault((N, L), np.zeros((N, L, 4), np.float32))
        _same_lists(C.spherical_coordinates_process_2_trad([s], x, 1, cutoff),
                    ref_spherical_coordinates_process_2_trad([s], x, 1, cutoff))


def test_spherical_concurrent_calls():
    """Calls from several Python threads at once (the pass releases the GIL): one takes the kept
    buffers, the others make their own; every call gives the arrays of the same call made alone."""
    import threading

    maps = [C.process_attribution_map(_maps(60 + i, 6, 3000, np.float64, "motif"), 3) for i in range(4)]
    x = np.zeros((6, 3000, 4), np.float32)
    alone = [C.spherical_coordinates_process_2_trad([s], x, 1, 0.1) for s in maps]
    got = [[None] * len(maps) for _ in range(3)]
    errors = []

    def run(t):
        try:
            for j in range(len(maps)):
                k = (j + t) % len(maps)
                got[t][k] = C.spherical_coordinates_process_2_trad([maps[k]], x, 1, 0.1)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for t in range(3):
        for k in range(len(maps)):
            _same_lists(got[t][k], alone[k])


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_spherical_sampled_equals_two_pass(data):
    """Property: on maps of 2**14 points or more, the one-pass path (sampled bracket) gives the same
    cutoff and arrays as the two-pass path, for any cutoff fraction and mask."""
    N = data.draw(st.integers(8, 12))
    L = data.draw(st.integers(1400, 2100))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    kind = data.draw(st.sampled_from(["normal", "ties", "heavy", "zeros", "constant"]))
    s = rng.standard_normal((N, L, 3))
    if kind == "ties":
        s = np.round(s * 2) / 2
    elif kind == "heavy":
        s = s * rng.pareto(1.0, (N, L, 1))
    elif kind == "zeros":
        s[rng.uniform(size=(N, L)) < data.draw(st.floats(0.0, 1.0))] = 0.0
    elif kind == "constant":
        s[:] = 0.25
    count = data.draw(st.integers(0, N * L))
    mask = data.draw(st.sampled_from(["one", "half", "array"]))
    mval = 0.5 if mask == "half" else 1.0
    marr = rng.uniform(0, 2, N * L) if mask == "array" else None
    one = _core.compat_spherical(s, mval, marr, count, 0, 0)
    two = _core.compat_spherical(s, mval, marr, count, 0, 1)
    assert one[4] == two[4]
    for a, b in zip(one[:4], two[:4]):
        np.testing.assert_array_equal(a, b)


def test_spherical_sample_covers_every_position():
    """The sample is not aliased with the sequence length: at N = 4000, L = 2048 evenly spaced points
    fell on 128 positions of each sequence; one per stratum at a mixed place covers them all."""
    size = 4000 * 2048
    p = _core.compat_sample_points(size)
    assert p.size == 4096 and np.all(np.diff(p) > 0) and p[0] >= 0 and p[-1] < size
    j = np.arange(4096)
    assert np.all(((j * size) >> 12 <= p) & (p < ((j + 1) * size) >> 12))  # one point in each stratum
    assert len(np.unique(p % 2048)) > 1500


def test_spherical_position_dependent_radii_one_pass():
    """Radii that depend on the position within the sequence: three times larger on one position in
    16, which evenly spaced samples of this map (every 8th point from the 4th) never hit, so that
    their bracket missed. The stratified sample holds the cutoff (one pass), with the two-pass
    result."""
    N, L = 16, 2048
    rng = np.random.default_rng(4)
    s = rng.standard_normal((N, L, 3))
    s[:, 8::16] *= 3.0  # one position in 16 has three times the radius
    count = N * L // 10
    one = _core.compat_spherical(s, 1.0, None, count, 0, 0)
    two = _core.compat_spherical(s, 1.0, None, count, 0, 1)
    assert one[5] and not two[5]
    assert one[4] == two[4]
    for a, b in zip(one[:4], two[:4]):
        np.testing.assert_array_equal(a, b)


def test_spherical_unlucky_sample():
    """Every sampled point has radius 0 and the others radius >= 1: the sample's bracket misses the
    cutoff's rank, and the two-pass path gives the numpy code's arrays."""
    N, L = 8, 2048
    size = N * L
    rng = np.random.default_rng(2)
    s = rng.uniform(1, 2, (size, 3)) * rng.choice([-1, 1], (size, 3))
    s[_core.compat_sample_points(size)] = 0.0
    s = s.reshape(N, L, 3)
    x = np.zeros((N, L, 4))
    assert not _core.compat_spherical(s, 1.0, None, size // 10, 0, 0)[5]  # the bracket missed: two passes
    for cutoff in (0.1, 0.9):
        _same_lists(C.spherical_coordinates_process_2_trad([s], x, 1, cutoff),
                    ref_spherical_coordinates_process_2_trad([s], x, 1, cutoff))


@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_run_parts_calls_each_part_once(n, n_threads):
    seen = []
    _core.run_parts(seen.append, n, n_threads)  # list.append holds the GIL: safe from any thread
    assert sorted(seen) == list(range(n))


def test_run_parts_reraises():
    def fn(i):
        if i == 1:
            raise ValueError("part 1 failed")

    with pytest.raises(ValueError, match="part 1 failed"):
        _core.run_parts(fn, 3, 2)
    with pytest.raises(ValueError, match="n: expected a count >= 0"):
        _core.run_parts(fn, -1, 2)


def test_angles_in_parts_same_bits():
    """Enough kept points for several parts (2**16 each) on the package's threads: the same bits as
    numpy on the whole arrays, every branch of phi' included."""
    n = 5 * 2**16 + 123
    rng = np.random.default_rng(11)
    ratio = rng.standard_normal(n) * rng.choice([1e-3, 1.0, 1e3], n)
    ratio[::97] = np.inf
    ratio[1::89] = np.nan
    branch = rng.integers(0, 4, n).astype(np.int8)
    cosine = np.clip(rng.uniform(-1.2, 1.2, n), -1, 1)
    cosine[::101] = np.nan
    r_in, c_in = ratio.copy(), cosine.copy()
    phi, theta = C._angles(r_in, branch, c_in)
    assert phi is r_in and theta is c_in  # in place: no fresh arrays of the kept points
    with np.errstate(divide="ignore", invalid="ignore"):
        want_phi = np.arctan(ratio)
        want_theta = np.arccos(cosine)
    _core.compat_phi(want_phi, branch)
    np.testing.assert_array_equal(phi, want_phi)
    np.testing.assert_array_equal(theta, want_theta)


@pytest.mark.parametrize("box", [0.1, 0.05, 0.3, 1.0, 0.01])
@pytest.mark.parametrize("prior_range", [1, 3, 10])
def test_entropy_same_bits(box, prior_range):
    rng = np.random.default_rng(5)
    maps = [C.process_attribution_map(_maps(s, 8, 200, np.float32, "motif"), 3) for s in range(3)]
    x = np.zeros((8, 200, 4))
    p1, p2, r = C.spherical_coordinates_process_2_trad(maps, x, 1, 0.1)
    p1.append(np.array([]))
    p2.append(np.array([]))
    r.append(np.array([]))  # a map without points: 0.0
    p1.append(rng.uniform(-0.005, 3.2, 50))  # small negative angles truncate to bin 0, as numpy
    p2.append(rng.uniform(0, 3.2, 50))
    r.append(rng.uniform(-1, 1, 50))
    n = 5000  # weights inside and outside the fast path's range [2**-40, 2**8), mixed
    p1.append(rng.uniform(0, 3.2, n))
    p2.append(rng.uniform(0, 3.2, n))
    r.append(rng.choice([1e-25, 1e-15, 3e-7, 0.5, 20.0, 1e5, 0.0, -2.0], n) * rng.uniform(0.5, 1.5, n))
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


@pytest.mark.parametrize("n_bins", [31, 314])
def test_angle_hist_in_parts_same_bits(n_bins):
    """Enough points for several parts (2**16 each, one histogram per thread, merged): the same
    histogram and KLD at every thread count, the same as the numpy code's KLD."""
    n = 3 * 2**16 + 77
    rng = np.random.default_rng(8)
    p1, p2 = rng.uniform(0, 3.2, n), rng.uniform(0, 3.2, n)
    r = rng.choice([1e-25, 3e-7, 0.5, 20.0, 0.0, -2.0], n) * rng.uniform(0.5, 1.5, n)
    box = np.pi / n_bins
    hists = [_core.compat_angle_hist(p1, p2, r, box, n_bins, t) for t in (1, 2, 3)]
    for h, problem, _ in hists:
        assert problem == 0
        np.testing.assert_array_equal(h, hists[0][0])
    _, bl, bv, nb, _ = C.initialize_integration_2(box)
    got = C.calculate_entropy_2([p1], [p2], [r], nb, bl, bv, 3)
    assert [float(v) for v in got] == [float(v) for v in ref_calculate_entropy_2([p1], [p2], [r], nb, bl, bv, 3)]


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_angle_hist_in_parts_first_problem(n_threads):
    """Problems in later parts: the first bad point in the numpy code's order of checks (all angles,
    then radii, then signs), whichever part found it."""
    n = 3 * 2**16
    p1, p2, r = np.full(n, 0.5), np.full(n, 0.5), np.ones(n)
    p1[n - 5] = -0.5  # a negative angle in the last part
    r[n // 2 + 3] = np.inf  # a bad radius in the middle part
    assert _core.compat_angle_hist(p1, p2, r, 0.1, 31, n_threads)[1:] == (2, n // 2 + 3)
    p2[n - 9] = np.nan  # a non-finite angle is reported before any radius
    assert _core.compat_angle_hist(p1, p2, r, 0.1, 31, n_threads)[1:] == (1, n - 9)
    p2[n - 9], r[n // 2 + 3] = 0.5, 1.0
    assert _core.compat_angle_hist(p1, p2, r, 0.1, 31, n_threads)[1:] == (3, n - 5)


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


def test_compat_phi_every_branch_bits():
    """phi' from arctan's values on every branch (selected by bit masks in C++), on every tier: the
    bits of the numpy code's expression, signed zeros, infinities and NaN included."""
    PI = 3.1416
    vals = np.array([0.0, -0.0, 1e-300, -1e-300, 0.5, -1.5707963267948966, 1.5707963267948966, 3.0, -3.0,
                     np.inf, -np.inf, np.nan, 1e308, -1e308])
    at = np.tile(vals, 4 * 9)
    branch = np.repeat(np.arange(4, dtype=np.int8), vals.size * 9)
    order = np.random.default_rng(3).permutation(at.size)  # every prefix below mixes the branches
    at, branch = at[order], branch[order]
    with np.errstate(invalid="ignore", over="ignore"):
        want = np.where(branch == 1, at + PI, np.where(branch == 2, at - PI, np.where(branch == 3, PI / 2, at)))
        want = want / 2 + PI / 2
    assert set(branch[:17]) == {0, 1, 2, 3}

    def run():
        got = at.copy()
        _core.compat_phi(got, branch)
        for n in (0, 1, 3, 5, 17):  # tails of every length
            part = at[:n].copy()
            _core.compat_phi(part, branch[:n])
            np.testing.assert_array_equal(part.view(np.uint64), want[:n].view(np.uint64))
        return got

    for got in _on_every_tier(run):
        np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))
