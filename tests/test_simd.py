"""Every vector tier (AVX2, AVX-512, NEON) gives the same bits as the scalar code it replaces.

Each test runs its case under the scalar tier and under every vector tier this CPU has
(``acme_fast.set_simd_level``); on a CPU without any, only the scalar path runs and the
comparisons are vacuous (the tier tests say so).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import numpy as np
import pytest
from conftest import attribution, onehot, to_ncl

import acme_fast as af
from acme_fast import _core

VECTOR_TIERS = [t for t in _core.simd_levels() if t != "scalar"]


@pytest.fixture(params=VECTOR_TIERS or ["scalar"])
def both_paths(request):
    """Run f under the scalar tier and under one vector tier (each tier this CPU has, in turn);
    restores the CPU's best tier."""
    tier = request.param

    def run(f):
        try:
            assert af.set_simd_level("scalar") == "scalar"
            scalar = f()
            assert af.set_simd_level(tier) == tier
            vector = f()
        finally:
            af.set_simd_level(None)
        return scalar, vector

    return run


def test_level():
    assert af.simd_level() in af.SIMD_LEVELS
    assert af.simd_level() == _core.cpu_simd_level()  # the best tier by default
    levels = list(_core.simd_levels())
    assert levels[0] == "scalar" and levels[-1] == af.simd_level() and set(levels) <= set(af.SIMD_LEVELS)
    # x86-64: scalar < avx2 < avx512 as the CPU has them; arm64: scalar < neon (NEON is always there)
    x86 = [t for t in ("scalar", "avx2", "avx512") if t in levels]
    assert levels in (x86, ["scalar", "neon"])
    if platform.machine().lower() in ("aarch64", "arm64"):
        assert levels == ["scalar", "neon"]
    assert (af.simd_level() == "avx512") == bool(_core.cpu_has_avx512())


def test_set_simd_level():
    try:
        for tier in _core.simd_levels():
            assert af.set_simd_level(tier) == tier == af.simd_level()
        with pytest.raises(ValueError, match="level: expected one of"):
            af.set_simd_level("sse2")
        missing = [t for t in af.SIMD_LEVELS if t not in _core.simd_levels()]
        for tier in missing:
            with pytest.raises(ValueError, match="is not available"):
                af.set_simd_level(tier)
    finally:
        af.set_simd_level(None)
    assert af.simd_level() == _core.cpu_simd_level()


def _level_in_subprocess(env_value):
    env = dict(os.environ, ACME_FAST_SIMD=env_value)
    r = subprocess.run([sys.executable, "-W", "always", "-c", "import acme_fast as af; print(af.simd_level())"],
                       capture_output=True, text=True, env=env, cwd="/", timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip(), r.stderr


def test_environment_variable_caps_the_tier():
    level, err = _level_in_subprocess("scalar")
    assert level == "scalar" and not err
    level, err = _level_in_subprocess("AVX512")  # case-insensitive; above the CPU's tier: warned, best used
    assert level == _core.cpu_simd_level()
    assert ("ACME_FAST_SIMD" in err) == ("avx512" not in _core.simd_levels())
    level, err = _level_in_subprocess("fast")
    assert level == _core.cpu_simd_level() and "ACME_FAST_SIMD='fast' ignored" in err and "expected one of" in err


def _same_kattr(r1, r2):
    assert r1.n_points == r2.n_points
    np.testing.assert_array_equal(r1.mass, r2.mass)
    assert r1.kld == r2.kld or (np.isnan(r1.kld) and np.isnan(r2.kld))


# L around the vector widths: < 8, < 16 (no fused pass), not a multiple of 8, and long
@pytest.mark.parametrize("L", [3, 7, 9, 15, 16, 17, 23, 64, 203, 1000])
@pytest.mark.parametrize("preset", ["paper", "acme"])
@pytest.mark.parametrize("layout", ["NLC", "NCL"])
def test_kattr_bits(both_paths, L, preset, layout):
    rng = np.random.default_rng(L)
    a = attribution(rng, 40, L)
    a[:, ::5] *= 6  # structure: sparse strong positions
    if layout == "NCL":
        a = np.ascontiguousarray(to_ncl(a))
    for scope in ("sequence", "global"):
        for window in (3, 5) if L >= 5 else (3,):
            kw = dict(preset=preset, layout=layout, window=window, threshold_scope=scope)
            s, v = both_paths(lambda kw=kw: af.kattr_kld(a, **kw))
            _same_kattr(s, v)


@pytest.mark.parametrize("kind", ["ties", "const", "zeros"])
@pytest.mark.parametrize("preset", ["paper", "acme"])
def test_kattr_bits_degenerate(both_paths, kind, preset):
    rng = np.random.default_rng(3)
    a = attribution(rng, 30, 77, kind=kind)
    s, v = both_paths(lambda: af.kattr_kld(a, preset=preset))
    _same_kattr(s, v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kattr_bits_huge_and_tiny(both_paths, dtype):
    rng = np.random.default_rng(4)
    a = attribution(rng, 20, 64, dtype=dtype)
    a[0] *= 1e-30
    a[1] *= 1e30
    a[2, :, :] = 0
    a[2, 10, 1] = 1.0  # one non-zero position
    s, v = both_paths(lambda: af.kattr_kld(a))
    _same_kattr(s, v)


def test_kattr_accumulators_bits(both_paths):
    rng = np.random.default_rng(5)
    a = attribution(rng, 64, 130)

    def stream(preset, two_pass):
        acc = af.KattrAccumulator(preset=preset, threshold_scope="global", two_pass=two_pass)
        for p in range(acc.n_passes):
            if p:
                acc.next_pass()
            for i in range(0, len(a), 17):
                acc.update(a[i:i + 17])
        return acc.result()

    for preset in ("paper", "acme"):
        for two_pass in (False, True):
            s, v = both_paths(lambda p=preset, t=two_pass: stream(p, t))
            _same_kattr(s, v)


def test_nonfinite_reported_the_same(both_paths):
    rng = np.random.default_rng(6)
    a = attribution(rng, 5, 40)
    a[3, 17, 2] = np.nan

    def msg():
        with pytest.raises(ValueError) as e:
            af.kattr_kld(a)
        return str(e.value)

    s, v = both_paths(msg)
    assert s == v and "17" in s


@pytest.mark.parametrize("L", [6, 9, 17, 64, 333])
@pytest.mark.parametrize("layout", ["NLC", "NCL"])
@pytest.mark.parametrize("xdtype", [np.float32, np.uint8, np.float64])
def test_kmer_bits(both_paths, L, layout, xdtype):
    rng = np.random.default_rng(L)
    x = onehot(rng, 30, L, n_frac=0.05).astype(xdtype)
    a = attribution(rng, 30, L)
    if layout == "NCL":
        x, a = np.ascontiguousarray(to_ncl(x)), np.ascontiguousarray(to_ncl(a))
    for preset in ("paper", "acme"):
        s, v = both_paths(lambda p=preset: af.kmer_kld(x, a, k=3, preset=p, layout=layout))
        assert s.n_intervals == v.n_intervals and s.n_nucleotides == v.n_nucleotides
        np.testing.assert_array_equal(s.counts, v.counts)
        np.testing.assert_array_equal(s.prior, v.prior)


@pytest.mark.parametrize("layout", ["NLC", "NCL"])
@pytest.mark.parametrize("bad", ["two_ones", "half", "nan", "minus_one"])
def test_kmer_bad_input_reported_the_same(both_paths, layout, bad):
    rng = np.random.default_rng(8)
    x = onehot(rng, 6, 50)
    a = attribution(rng, 6, 50)
    if bad == "two_ones":
        x[4, 33] = [1, 0, 1, 0]
    elif bad == "half":
        x[4, 33, 2] = 0.5
    elif bad == "nan":
        a[4, 33, 1] = np.nan
    else:
        x[4, 33] = [0, -1, 0, 0]
    if layout == "NCL":
        x, a = np.ascontiguousarray(to_ncl(x)), np.ascontiguousarray(to_ncl(a))

    def msg():
        with pytest.raises(ValueError) as e:
            af.kmer_kld(x, a, k=3, layout=layout)
        return str(e.value)

    s, v = both_paths(msg)
    assert s == v and "33" in s


def _gt_case(rng, n, L, layout, xdtype=np.uint8, adtype=np.float32):
    x = onehot(rng, n, L, n_frac=0.05).astype(xdtype)
    a = attribution(rng, n, L, adtype)
    m = np.full((n, L, 4), 0.25)
    for b in range(0, L, 37):  # planted PWM columns, some runs of identical rows
        m[:, b : b + 9] = rng.dirichlet(np.full(4, 0.3), size=(n, len(m[0, b : b + 9])))
        m[:, b + 9 : b + 12] = m[:, b : b + 1]
    if layout == "NCL":
        x, a, m = (np.ascontiguousarray(to_ncl(v)) for v in (x, a, m))
    return x, a, m


@pytest.mark.parametrize("L", [1, 7, 8, 9, 17, 64, 200, 1001])
@pytest.mark.parametrize("layout", ["NLC", "NCL"])
@pytest.mark.parametrize("xdtype", [np.uint8, np.float32])
def test_groundtruth_bits(both_paths, L, layout, xdtype):
    rng = np.random.default_rng(L)
    for adtype in (np.float32, np.float64):
        x, a, m = _gt_case(rng, 20, L, layout, xdtype, adtype)
        for top_k in (1, 10):
            s, v = both_paths(lambda x=x, a=a, m=m, k=top_k: af.groundtruth_scores(x, a, m, top_k=k, layout=layout))
            for f in ("auroc", "auprc", "signal", "noise_topk", "snr"):
                np.testing.assert_array_equal(getattr(s, f), getattr(v, f), err_msg=f)


@pytest.mark.parametrize("layout", ["NLC", "NCL"])
@pytest.mark.parametrize("bad", ["inf_attr", "nan_attr", "nan_model", "neg_model", "big_model"])
def test_groundtruth_bad_input_reported_the_same(both_paths, layout, bad):
    rng = np.random.default_rng(9)
    x, a, m = _gt_case(rng, 6, 50, "NLC")
    if bad == "inf_attr":
        a[4, 33, 1] = np.inf
    elif bad == "nan_attr":
        a[4, 33, 3] = np.nan
    else:
        m[4, 33, 2] = {"nan_model": np.nan, "neg_model": -1e-300, "big_model": 1.5}[bad]
    if layout == "NCL":
        x, a, m = (np.ascontiguousarray(to_ncl(v)) for v in (x, a, m))

    def msg():
        with pytest.raises(ValueError) as e:
            af.groundtruth_scores(x, a, m, layout=layout)
        return str(e.value)

    s, v = both_paths(msg)
    assert s == v and "33" in s
