"""Property tests: the package against the slow, obvious oracle in tests/reference.py.

Shapes are kept small (the oracle is Python loops). Every example is run in both
layouts (NCL = transpose of the NLC input), which must give the same result exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import reference as ref
from conftest import attribution, onehot, to_ncl
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import acme_fast
from acme_fast import _core

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

X_DTYPES = [np.bool_, np.uint8, np.float32, np.float64]
A_DTYPES = [np.float32, np.float64]
# "mixed": each sequence drawn from a different kind (some sequences have no attributed position)
A_KINDS = ["normal", "normal", "ties", "zeros", "const", "mixed"]


def make_attr(rng, n, L, dtype, kind):
    if kind == "mixed":
        kinds = rng.choice(["normal", "zeros", "const"], size=n)
        return np.concatenate([attribution(rng, 1, L, dtype, str(k)) for k in kinds])
    return attribution(rng, n, L, dtype, kind)


@st.composite
def dna(draw, min_len=1, max_n=6, max_len=40, kinds=A_KINDS):
    """(rng, x (NLC), attr (NLC), kind) with min_len <= L <= max_len, often L == min_len."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.sampled_from([1, 1, 2, 3, 4, 5, max_n]))
    L = draw(st.one_of(st.just(min_len), st.integers(min_len, max(min_len, max_len))))
    n_frac = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))
    xdt = draw(st.sampled_from(X_DTYPES))
    adt = draw(st.sampled_from(A_DTYPES))
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(seed)
    x = onehot(rng, n, L, n_frac, dtype=xdt)
    a = make_attr(rng, n, L, adt, kind)
    return rng, x, a, kind


def call_both_layouts(fn, *arrays, **kw):
    """fn on NLC arrays and on their NCL transposes; returns both results and NLC warnings."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r1 = fn(*arrays, layout="NLC", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r2 = fn(*[to_ncl(a) for a in arrays], layout="NCL", **kw)
    return r1, r2, [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]


def assert_same_result(r1, r2):
    """Two results of the same type are identical (== on scalars, NaN == NaN)."""
    for f, v in r1.to_dict().items():
        u = getattr(r2, f)
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(u, v, err_msg=f)
        elif isinstance(v, float):
            assert (np.isnan(u) and np.isnan(v)) or u == v, f
        else:
            assert u == v, f


def close(got, want, rtol=1e-9, atol=1e-12):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# =========================================================================== k-mer prior
@settings(max_examples=80, **SETTINGS)
@given(k=st.integers(1, 5), data=st.data())
def test_kmer_prior(k, data):
    _, x, _, _ = data.draw(dna(min_len=k, kinds=["zeros"]))
    with np.errstate(all="ignore"):
        want = ref.kmer_prior(x, k)
    if not np.all(np.isfinite(want)):  # no k-mer without an N
        with pytest.raises(ValueError, match="x"):
            acme_fast.kmer_prior(x, k=k)
        return
    got = acme_fast.kmer_prior(x, k=k)
    got2 = acme_fast.kmer_prior(to_ncl(x), k=k, layout="NCL")
    assert got.shape == (4**k,) and got.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got2, got)


# =========================================================================== k-mer KLD
def check_kmer(x, a, *, k, quantile, buffer, prior=None, pseudocount=0.0, preset="paper"):
    with np.errstate(all="ignore"):
        want = ref.kmer_kld(x, a, k=k, quantile=quantile, buffer=buffer,
                            prior=prior, pseudocount=pseudocount)
    kw = dict(k=k, quantile=quantile, buffer=buffer, prior=prior, pseudocount=pseudocount, preset=preset)
    if prior is None and not np.all(np.isfinite(want["prior"])):
        with pytest.raises(ValueError, match="x"):  # every k-mer has an N: no prior
            acme_fast.kmer_kld(x, a, **kw)
        return
    q = want["prior"]
    if np.any((want["counts"] > 0) & (q == 0)):
        with pytest.raises(ValueError, match="pseudocount"):
            acme_fast.kmer_kld(x, a, **kw)
        return
    got, got2, warns = call_both_layouts(acme_fast.kmer_kld, x, a, **kw)
    assert_same_result(got, got2)
    np.testing.assert_array_equal(got.counts, want["counts"])
    assert got.counts.dtype.kind == "i"
    assert got.n_intervals == want["n_intervals"]
    assert got.n_nucleotides == want["n_nucleotides"]
    close(got.prior, want["prior"], rtol=1e-12, atol=0)
    assert got.k == k and got.preset == preset
    if want["counts"].sum() == 0:
        assert np.isnan(got.kld)
        assert warns, "expected a RuntimeWarning for an empty result"
    else:
        assert not warns, warns
        close(got.kld, want["kld"])


@settings(max_examples=400, **SETTINGS)
@given(
    k=st.integers(1, 6),
    quantile=st.one_of(st.sampled_from([0.5, 0.8, 0.9, 0.95]), st.floats(0.01, 0.99)),
    buffer=st.sampled_from([0, 1, 2, 2, 5]),
    preset=st.sampled_from(["paper", "acme"]),
    prior_kind=st.sampled_from([None, None, "full", "zeros"]),
    pseudocount=st.sampled_from([0.0, 0.0, 1e-3]),
    data=st.data(),
)
def test_kmer_kld(k, quantile, buffer, preset, prior_kind, pseudocount, data):
    rng, x, a, _ = data.draw(dna(min_len=k))
    prior = None
    if prior_kind is not None:
        prior = rng.dirichlet(np.ones(4**k))
        if prior_kind == "zeros":
            prior[rng.random(4**k) < 0.5] = 0
            if prior.sum() == 0:
                prior[0] = 1
            prior /= prior.sum()
    check_kmer(x, a, k=k, quantile=quantile, buffer=buffer, prior=prior, pseudocount=pseudocount,
               preset=preset)


@settings(max_examples=60, **SETTINGS)
@given(
    k=st.integers(1, 9),
    quantile=st.sampled_from([0.05, 0.5, 0.9]),
    buffer=st.sampled_from([0, 2, 40]),
    preset=st.sampled_from(["paper", "acme"]),
    data=st.data(),
)
def test_kmer_kld_long_sequences(k, quantile, buffer, preset, data):
    """Stretches of at least 16 k + 64 positions count their k-mers in four interleaved chains
    (kmer.hpp): the prior always, the attributed intervals when long (low quantile, long buffer).
    Any length mod 4, with Ns, against the numpy reference."""
    _, x, a, _ = data.draw(dna(min_len=16 * k + 64, max_len=16 * k + 64 + 300, max_n=3, kinds=["normal"]))
    check_kmer(x, a, k=k, quantile=quantile, buffer=buffer, preset=preset)


@pytest.mark.parametrize("preset", ["paper", "acme"])
def test_kmer_edge_cases(rng, preset):
    kw = dict(quantile=0.9, buffer=2, preset=preset)
    # L == k, N == 1
    check_kmer(onehot(rng, 1, 6), attribution(rng, 1, 6), k=6, **kw)
    # a whole sequence of N bases among normal ones; N bases inside attributed intervals
    x = onehot(rng, 4, 30, n_frac=0.2)
    x[1] = 0
    check_kmer(x, attribution(rng, 4, 30, np.float64), k=3, **kw)
    # nothing attributed: all-zero / constant / all-equal scores -> NaN with a warning
    for kind in ("zeros", "const"):
        check_kmer(onehot(rng, 3, 20), attribution(rng, 3, 20, kind=kind), k=3, **kw)
    # sequences without attributed positions between sequences with some (the published
    # code misassigned sequences here)
    a = attribution(rng, 5, 25)
    a[[0, 2]] = 0
    check_kmer(onehot(rng, 5, 25), a, k=4, **kw)
    # ties in the scores
    check_kmer(onehot(rng, 6, 40), attribution(rng, 6, 40, kind="ties"), k=3, quantile=0.5, buffer=1,
               preset=preset)
    # user prior with zeros: error without pseudocount, fine with it
    prior = np.zeros(4**2)
    prior[0] = 1.0
    x, a = onehot(rng, 3, 30), attribution(rng, 3, 30)
    with pytest.raises(ValueError, match="pseudocount"):
        acme_fast.kmer_kld(x, a, k=2, prior=prior, preset=preset)
    check_kmer(x, a, k=2, quantile=0.9, buffer=2, prior=prior, pseudocount=0.01, preset=preset)


def test_kmer_empty_warns_nan(rng):
    with pytest.warns(RuntimeWarning):
        res = acme_fast.kmer_kld(onehot(rng, 2, 20), np.zeros((2, 20, 4), np.float32), k=3)
    assert np.isnan(res.kld) and res.counts.sum() == 0 and res.n_intervals == 0


# =========================================================================== k-attr, paper
def rounding_decides(want, bin_width, n_bins, acme, exact_zeros=True, tol=1e-9):
    """True when the oracle's answer hinges on the last bits of a rounded value, so that
    two correct float64 implementations may legitimately differ.

    The k-attr pipeline (normalisation by a sum of norms, window means, irrational
    projection factors) is inexact, so points that are equal in exact arithmetic (ties,
    or rotations of one window in a wrap-around sum) come out a few ulps apart in an
    order that depends on the order of operations. That matters when such points sit at
    the threshold, on a bin edge, or where the angle phi is undefined or wraps around.
    Radii that are exactly 0 (all-zero or constant maps) are exact, not ambiguous, unless
    ``exact_zeros`` is False (maps whose windows can cancel to 0 up to rounding).
    """
    r, cut = want["r"], want["cut"]
    near = np.abs(r - cut) <= tol * np.abs(cut) + 1e-12
    for c in np.unique(cut[near]):
        g = near & (cut == c)
        if exact_zeros and c == 0 and np.all(r[g] == 0):
            continue
        if g.sum() >= 2 or np.any(r[g] != c):
            return True
    k = want["kept"]
    if np.any(np.hypot(k["x"], k["y"]) <= tol * k["r"]):  # phi undefined
        return True
    if np.any((k["x"] < 0) & (np.abs(k["y"]) <= tol * k["r"])):  # phi wraps at +-pi
        return True
    if acme and np.any(np.abs(k["x"]) <= tol * k["r"]):  # the published x' == 0 branch
        return True
    for ang in (k["phi_p"], k["theta"]):  # on a bin edge
        f = ang / bin_width
        j = np.round(f)
        if np.any((np.abs(f - j) <= tol * np.maximum(f, 1)) & (j >= 1) & (j <= n_bins - 1)):
            return True
    return False


def note(msg):
    try:
        event(msg)
    except Exception:  # outside a hypothesis test
        pass


def check_kattr_paper(a, *, window, quantile, threshold_scope, bin_width, prior_bins, weight,
                      kind="normal"):
    with np.errstate(all="ignore"):
        want = ref.kattr_paper(a, window=window, quantile=quantile, threshold_scope=threshold_scope,
                               bin_width=bin_width, prior_bins=prior_bins, weight=weight)
    if rounding_decides(want, bin_width, int(np.pi / bin_width), False, exact_zeros=kind != "ties"):
        note("ambiguous by rounding: not compared")
        return
    kw = dict(window=window, quantile=quantile, threshold_scope=threshold_scope, bin_width=bin_width,
              prior_bins=prior_bins, weight=weight, preset="paper")
    got, got2, warns = call_both_layouts(acme_fast.kattr_kld, a, **kw)
    assert_same_result(got, got2)
    assert got.n_points == want["n_points"]
    assert got.preset == "paper" and got.bin_width == bin_width
    nb = int(np.pi / bin_width)
    assert got.mass.shape == (nb, nb) and got.prior.shape == (nb, nb)
    if want["n_points"] == 0:
        assert np.isnan(got.kld)
        assert warns, "expected a RuntimeWarning for an empty result"
        return
    assert not warns, warns
    close(got.mass, want["mass"], rtol=0, atol=1e-12)
    close(got.prior, want["prior"], rtol=0, atol=1e-12)
    close(got.kld, want["kld"])
    np.testing.assert_allclose(got.density, got.mass / bin_width**2)


@settings(max_examples=400, **SETTINGS)
@given(
    window=st.sampled_from([1, 3, 5]),
    quantile=st.one_of(st.sampled_from([0.5, 0.8, 0.9, 0.95]), st.floats(0.01, 0.99)),
    threshold_scope=st.sampled_from(["sequence", "global"]),
    bin_width=st.sampled_from([0.1, 0.1, 0.2, 0.25, 0.5, 1.0, 3.0]),
    prior_bins=st.integers(1, 7),
    weight=st.sampled_from(["r2", "none", "inv_r2"]),
    data=st.data(),
)
def test_kattr_paper(window, quantile, threshold_scope, bin_width, prior_bins, weight, data):
    prior_bins = min(prior_bins, 2 * int(np.pi / bin_width) + 1)  # the largest boxcar the API accepts
    _, _, a, kind = data.draw(dna(min_len=window))
    check_kattr_paper(a, window=window, quantile=quantile, threshold_scope=threshold_scope,
                      bin_width=bin_width, prior_bins=prior_bins, weight=weight, kind=kind)


def test_kattr_paper_defaults(rng):
    a = attribution(rng, 4, 30)
    got = acme_fast.kattr_kld(a)
    want = ref.kattr_paper(a)  # window 3, quantile 0.9, sequence scope, 0.1 rad, 5 bins, r2
    assert got.n_points == want["n_points"]
    close(got.kld, want["kld"])


@pytest.mark.parametrize("scope", ["sequence", "global"])
def test_kattr_paper_edge_cases(rng, scope):
    kw = dict(quantile=0.9, threshold_scope=scope, bin_width=0.1, prior_bins=5, weight="r2")
    check_kattr_paper(attribution(rng, 1, 3), window=3, **kw)  # L == window, N == 1, one point
    check_kattr_paper(attribution(rng, 1, 5), window=5, **kw)
    for kind in ("zeros", "const", "ties"):
        check_kattr_paper(attribution(rng, 3, 20, kind=kind), window=3, kind=kind, **kw)
    a = attribution(rng, 4, 20)
    a[1] = 0  # a sequence whose norms sum to 0 stays 0
    check_kattr_paper(a, window=1, **kw)


def test_kattr_paper_global_m0_keeps_nothing(rng):
    # N * L * (1 - q) < 1: the paper preset keeps nothing
    with pytest.warns(RuntimeWarning):
        res = acme_fast.kattr_kld(attribution(rng, 1, 5), window=1, quantile=0.9, threshold_scope="global")
    assert res.n_points == 0 and np.isnan(res.kld)


# =========================================================================== k-attr, acme
def check_kattr_acme(a, *, window, quantile, bin_width, prior_bins, kind="normal"):
    with np.errstate(all="ignore"):
        want = ref.kattr_acme(a, window=window, quantile=quantile, bin_width=bin_width,
                              prior_bins=prior_bins)
    if rounding_decides(want, bin_width, int(3.1416 / bin_width), True, exact_zeros=kind != "ties"):
        note("ambiguous by rounding: not compared")
        return
    kw = dict(window=window, quantile=quantile, bin_width=bin_width, prior_bins=prior_bins, preset="acme")
    got, got2, warns = call_both_layouts(acme_fast.kattr_kld, a, **kw)
    assert_same_result(got, got2)
    assert got.n_points == want["n_points"]
    nb = int(3.1416 / bin_width)
    assert got.mass.shape == (nb, nb)
    if want["n_points"] == 0:
        assert np.isnan(got.kld)
        assert warns, "expected a RuntimeWarning for an empty result"
        return
    assert not warns, warns
    close(got.mass, want["mass"], rtol=0, atol=1e-12)
    inner = (slice(1, nb - 1), slice(1, nb - 1))
    close(got.prior[inner], want["prior"][inner], rtol=0, atol=1e-12)
    border = np.ones((nb, nb), bool)
    border[inner] = False
    assert np.all(np.isnan(got.prior[border]))
    close(got.kld, want["kld"])


@settings(max_examples=300, **SETTINGS)
@given(
    window=st.integers(1, 6),
    quantile=st.one_of(st.sampled_from([0.5, 0.8, 0.9, 0.95]), st.floats(0.01, 0.99)),
    bin_width=st.sampled_from([0.1, 0.1, 0.2, 0.25, 0.5, 1.0]),
    prior_bins=st.integers(1, 7),
    data=st.data(),
)
def test_kattr_acme(window, quantile, bin_width, prior_bins, data):
    _, _, a, kind = data.draw(dna(min_len=window))
    check_kattr_acme(a, window=window, quantile=quantile, bin_width=bin_width, prior_bins=prior_bins,
                     kind=kind)


def test_kattr_acme_edge_cases(rng):
    kw = dict(quantile=0.9, bin_width=0.1, prior_bins=6)
    # m = floor(N * L * 0.1) == 0: the published code keeps every point above the smallest radius
    check_kattr_acme(attribution(rng, 1, 5), window=3, **kw)
    check_kattr_acme(attribution(rng, 1, 3), window=3, **kw)  # L == window
    for kind in ("zeros", "const", "ties"):
        check_kattr_acme(attribution(rng, 3, 20, kind=kind), window=3, kind=kind, **kw)
    a = attribution(rng, 4, 20)
    a[2] = 0
    check_kattr_acme(a, window=3, **kw)


def test_kattr_acme_m0_keeps_all_but_smallest(rng):
    a = attribution(rng, 1, 5, np.float64)
    res = acme_fast.kattr_kld(a, quantile=0.9, preset="acme")
    assert res.n_points == 4


def test_kattr_acme_window_even_ok(rng):
    a = attribution(rng, 3, 20)
    check_kattr_acme(a, window=4, quantile=0.9, bin_width=0.1, prior_bins=6)


# =========================================================================== ground truth
@st.composite
def groundtruth_case(draw):
    rng, x, a, kind = draw(dna(min_len=1, max_len=40))
    n, L = x.shape[:2]
    m = np.full((n, L, 4), 0.25)
    for i in range(n):
        for _ in range(draw(st.integers(0, 2))):  # planted motifs (PWM columns)
            w = int(rng.integers(1, 7))
            b = int(rng.integers(0, max(1, L - w + 1)))
            m[i, b : b + w] = rng.dirichlet(np.full(4, 0.3), size=len(m[i, b : b + w]))
    if draw(st.booleans()):  # background rows a few ulps off 0.25: information ties decided in the last bits
        rows = rng.uniform(size=(n, L)) < 0.2
        k = rng.integers(1, 4, size=(n, L)).astype(np.float64)
        c = rng.permuted(np.tile(np.arange(4), (n, L, 1)), axis=-1)
        plus = np.take_along_axis(m, c[..., :1], -1) + k[..., None] * 2.0**-54
        minus = np.take_along_axis(m, c[..., 1:2], -1) - k[..., None] * 2.0**-54
        upd = m.copy()
        np.put_along_axis(upd, c[..., :1], plus, -1)
        np.put_along_axis(upd, c[..., 1:2], minus, -1)
        background = np.all(m == 0.25, axis=-1)
        m = np.where((rows & background)[..., None], upd, m)
    m = m.astype(draw(st.sampled_from([np.float32, np.float64])))
    if kind == "normal" and draw(st.booleans()):  # mostly positive scores: noise positions exist
        a = np.abs(a)
    return x, a, m


def check_groundtruth(x, a, m, threshold, top_k):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an empty slice: NaN, as tfomics
        want = ref.groundtruth(x, a, m, threshold=threshold, top_k=top_k)
    got, got2, warns = call_both_layouts(acme_fast.groundtruth_scores, x, a, m,
                                         threshold=threshold, top_k=top_k)
    assert not warns, warns
    assert_same_result(got, got2)
    for name in ("auroc", "auprc"):
        v = getattr(got, name)
        assert v.dtype == np.float64 and v.shape == (len(x),)
        np.testing.assert_allclose(v, want[name], rtol=0, atol=1e-9, equal_nan=True, err_msg=name)
    for name in ("signal", "noise_topk", "snr"):
        v = getattr(got, name)
        assert v.dtype == a.dtype, name
        np.testing.assert_array_equal(v, want[name], err_msg=name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("auroc", "auprc", "snr"):
            np.testing.assert_allclose(getattr(got, "mean_" + name), np.nanmean(want[name]),
                                       rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=name)


@settings(max_examples=300, **SETTINGS)
@given(case=groundtruth_case(), threshold=st.sampled_from([0.01, 0.1, 0.5]), top_k=st.integers(1, 5))
def test_groundtruth(case, threshold, top_k):
    x, a, m = case
    check_groundtruth(x, a, m, threshold, top_k)


def test_groundtruth_edge_cases(rng):
    n, L = 3, 30
    x = onehot(rng, n, L)
    m = np.full((n, L, 4), 0.25, np.float32)
    m[:, 10:16] = rng.dirichlet(np.full(4, 0.3), size=(n, 6))
    a = np.abs(attribution(rng, n, L))
    check_groundtruth(x, a, m, 0.1, 10)
    check_groundtruth(x, a, np.full((n, L, 4), 0.25), 0.1, 10)  # no signal anywhere: NaN AUCs
    check_groundtruth(x, np.zeros_like(a), m, 0.1, 10)  # all-equal scores
    check_groundtruth(x, attribution(rng, n, L, np.float64, kind="ties"), m, 0.1, 3)  # ties
    x[0, 12] = 0  # unknown base inside the motif
    check_groundtruth(x, a, m, 0.1, 2)


def test_reference_groundtruth_matches_sklearn(rng):
    """The oracle itself against scikit-learn (when installed)."""
    metrics = pytest.importorskip("sklearn.metrics")
    for _ in range(20):
        y = rng.integers(0, 2, 50)
        y[:2] = [0, 1]
        s = rng.integers(-3, 4, 50).astype(np.float64)
        assert abs(ref.roc_auc(y, s) - metrics.roc_auc_score(y, s)) < 1e-12
        p, r, _ = metrics.precision_recall_curve(y, s)
        assert abs(ref.pr_auc(y, s) - metrics.auc(r, p)) < 1e-12


# =========================================================================== gauge
@settings(max_examples=30, **SETTINGS)
@given(data=st.data())
def test_gauge_correct(data):
    _, _, a, _ = data.draw(dna())
    got = acme_fast.gauge_correct(a)
    assert got.dtype == a.dtype and got.shape == a.shape
    np.testing.assert_allclose(got, ref.gauge(a), rtol=0, atol=1e-6 if a.dtype == np.float32 else 1e-15)
    got2 = acme_fast.gauge_correct(to_ncl(a), layout="NCL")
    np.testing.assert_array_equal(got2, to_ncl(got))


# =========================================================================== numpy-exact helpers
def same(a, b):
    return a == b or (np.isnan(a) and np.isnan(b))


@settings(max_examples=150, **SETTINGS)
@given(n=st.integers(1, 1000), seed=st.integers(0, 2**32 - 1), scale=st.integers(-30, 30))
def test_pairwise_mean_matches_numpy(n, seed, scale):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n) * 10.0**scale * rng.uniform(0.5, 2.0, size=n) ** 8
    a32 = a.astype(np.float32)
    assert same(_core.pairwise_mean_f32(a32), float(np.mean(a32)))
    assert same(_core.pairwise_mean_f64(a), float(np.mean(a)))


@settings(max_examples=150, **SETTINGS)
@given(n=st.integers(1, 1000), seed=st.integers(0, 2**32 - 1),
       q=st.one_of(st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.95, 1.0]), st.floats(0, 1)),
       ties=st.booleans())
def test_quantile_linear_matches_numpy(n, seed, q, ties):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, n).astype(np.float64) if ties else rng.normal(size=n) * 10.0 ** rng.integers(-5, 5)
    assert same(_core.quantile_linear(a, q), float(np.quantile(a, q)))


@settings(max_examples=300, **SETTINGS)
@given(cut=st.one_of(st.floats(0, 1e154, allow_subnormal=True),
                     st.floats(0, 1e-150, allow_subnormal=True),
                     st.sampled_from([0.0, 5e-324, 1.0, 2.0, 3.0, 0.1, 1e154, 1.3407807929942596e154]),
                     st.integers(0, 2**26).map(float)))
def test_sqrt_above_is_the_exact_edge(cut):
    """The k-mer mask compares s2 >= sqrt_above(cut) instead of taking sqrt(s2) > cut: with a
    correctly rounded (monotone) sqrt that is the same test when the edge v0 has sqrt(v0) > cut
    and the double just below it has not. Exact squares (the integers' squares) sit right on it."""
    v0 = _core.sqrt_above(cut)
    with np.errstate(over="ignore"):
        if np.isinf(v0):
            assert not np.sqrt(np.finfo(np.float64).max) > cut
            return
    assert np.sqrt(v0) > cut
    below = np.nextafter(v0, 0.0)
    assert v0 == 0.0 or not (np.sqrt(below) > cut)
    for v in (cut * cut, np.nextafter(cut * cut, 0.0), np.nextafter(cut * cut, np.inf)):
        if np.isfinite(v):
            assert (v >= v0) == (np.sqrt(v) > cut)


def test_sqrt_above_rejects_negative():
    with pytest.raises(ValueError, match="cut"):
        _core.sqrt_above(-1.0)


# =========================================================================== pinned regressions
def test_kmer_tied_scores_at_cutoff_are_not_attributed():
    """Both positions have score sqrt(2.75) exactly (SPEC 2.1: ||A - mean_c A||), so the
    median is that score and nothing is strictly above it."""
    a = np.array([[[0.0, 1, -1, -1], [1, -1, 1, 0]]])
    x = np.eye(4)[[[0, 0]]]
    with pytest.warns(RuntimeWarning):
        res = acme_fast.kmer_kld(x, a, k=1, quantile=0.5, buffer=0)
    assert (res.n_intervals, res.n_nucleotides) == (0, 0)
    assert np.isnan(res.kld)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_channels_carry_no_attribution(dtype):
    """Equal values on the 4 channels are exactly 0 after gauge correction (SPEC 1), so
    no position is attributed and no k-attr point is kept, in any precision."""
    a = np.array([[[0.3] * 4, [0.7] * 4, [1.1] * 4, [0.1] * 4]], dtype=dtype)
    x = np.eye(4)[[[0, 1, 2, 3]]]
    assert not np.any(acme_fast.gauge_correct(a))
    with pytest.warns(RuntimeWarning):
        res = acme_fast.kmer_kld(x, a, k=1, quantile=0.5, buffer=0)
    assert res.n_nucleotides == 0 and np.isnan(res.kld)
    for preset in ("paper", "acme"):
        with pytest.warns(RuntimeWarning):
            res = acme_fast.kattr_kld(a, window=1, preset=preset)
        assert res.n_points == 0 and np.isnan(res.kld), preset


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_groundtruth_signed_zeros_and_ties(rng, dtype):
    """The radix sort of the curve walk keeps equal scores (and -0.0 / +0.0) together."""
    n, L = 4, 60
    x = onehot(rng, n, L)
    m = np.full((n, L, 4), 0.25)
    m[:, 20:30] = rng.dirichlet(np.full(4, 0.3), size=(n, 10))
    a = rng.choice(np.array([-0.0, 0.0, 1.0, -1.0, 0.5, 2.0, -2.5, 1e-30, -1e30]), size=(n, L, 4)).astype(dtype)
    check_groundtruth(x, a, m, 0.1, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_groundtruth_long_and_crowded_scores(rng, dtype):
    """Long sequences, and scores crowded into a narrow range (they share their leading
    bits, so the sort's radix passes leave long runs and its fallback finishes the order)."""
    n, L = 3, 2500
    x = onehot(rng, n, L)
    m = np.full((n, L, 4), 0.25)
    for b in (100, 900, 2000):
        m[:, b : b + 40] = rng.dirichlet(np.full(4, 0.3), size=(n, 40))
    spread = attribution(rng, n, L, dtype)
    crowded = (1.0 + rng.random((n, L, 4)) * 2.0**-12).astype(dtype)
    crowded[0, ::7] = dtype(1.0)  # ties among them
    for a in (spread, np.abs(spread), crowded):
        check_groundtruth(x, a, m, 0.1, 10)


def test_groundtruth_information_ties_in_the_last_bits(rng):
    """The background is the rows whose information *equals* the minimum, so its last bits
    decide it. Rows one ulp away from the background's 0.25 have information 2^-52 below the
    0.25 rows in SPEC's order (2 + the four terms summed first); adding each term to 2 in turn
    tied them with the background (AUROCs off by up to 0.05)."""
    n, L = 6, 700
    x = onehot(rng, n, L)
    m = np.full((n, L, 4), 0.25)
    up, down = np.nextafter(0.25, 1.0), np.nextafter(0.25, 0.0)
    m[:, 3::11] = [up, down, 0.25, 0.25]
    m[:, 8::13] = [0.25, 0.25, down, up]
    m[:, 200:240] = rng.dirichlet(np.full(4, 0.3), size=(n, 40))
    info = 2 + np.sum(m * np.log2(m + 1e-10), axis=-1)
    assert info[0, 3] < info[0, 0] and info[0, 8] < info[0, 0]  # the case this test is about
    a = np.abs(attribution(rng, n, L, np.float64))
    for threshold in (0.1, 0.5):
        check_groundtruth(x, a, m, threshold, 3)
    # 1,400 distinct values a few ulps from 0.25: the background is then the few rows of
    # smallest information, decided in the last bits.
    near = np.full((n, L, 4), 0.25)
    k = rng.permutation(np.arange(1, n * L + 1)).reshape(n, L) % 700
    near[..., 0] = 0.25 + k * 2.0**-54
    near[..., 1] = 0.25 - k * 2.0**-54
    check_groundtruth(x, a, near, 0.1, 3)


def test_groundtruth_more_model_values_than_the_memo_holds(rng, tmp_path):
    """10,800 distinct x_model values, more than the kernel's log2 memo holds (half of 4096
    slots; the rest are computed each time). Run in a separate process with a timeout: a memo
    that kept probing a full table would hang instead of failing."""
    from conftest import run_isolated

    n, L = 6, 700
    x = onehot(rng, n, L)
    m = np.full((n, L, 4), 0.25)
    m[:, 200:650] = rng.dirichlet(np.full(4, 0.3), size=(n, 450))
    a = np.abs(attribution(rng, n, L, np.float64))
    np.savez(tmp_path / "case.npz", x=x, a=a, m=m)
    p = run_isolated(
        "import sys, numpy as np, acme_fast\n"
        "d = np.load(sys.argv[1])\n"
        "r = acme_fast.groundtruth_scores(d['x'], d['a'], d['m'], threshold=0.1, top_k=3)\n"
        "np.savez(sys.argv[2], auroc=r.auroc, auprc=r.auprc, snr=r.snr)\n",
        timeout=120, args=(str(tmp_path / "case.npz"), str(tmp_path / "got.npz")))
    assert p.returncode == 0, p.stderr[-3000:]
    got = np.load(tmp_path / "got.npz")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = ref.groundtruth(x, a, m, threshold=0.1, top_k=3)
    for name in ("auroc", "auprc"):
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-9, equal_nan=True, err_msg=name)
    np.testing.assert_array_equal(got["snr"], want["snr"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_groundtruth_every_position_is_signal(rng, dtype):
    """Information above the threshold everywhere: the minimum-information (background)
    positions are signal positions too; one class only, so NaN AUCs, and the noise
    comes from those positions."""
    n, L = 4, 50
    x = onehot(rng, n, L)
    m = np.broadcast_to(np.array([0.7, 0.1, 0.1, 0.1]), (n, L, 4)).copy()
    m[:, 20:25] = [0.97, 0.01, 0.01, 0.01]
    a = np.abs(attribution(rng, n, L, dtype))
    check_groundtruth(x, a, m, 0.1, 3)
    check_groundtruth(x, a, np.broadcast_to(np.array([0.7, 0.1, 0.1, 0.1]), (n, L, 4)), 0.1, 3)
