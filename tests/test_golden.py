"""The golden files (outputs of the published reference code) through the public API,
one-shot, through the accumulators in uneven batches, and through merged accumulators."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import golden_params, to_ncl

import acme_fast

KMER = golden_params("kmer")
KATTR = golden_params("kattr")
GROUNDTRUTH = golden_params("groundtruth")


def kmer_kwargs(e, preset="acme"):
    return dict(k=e["k"], quantile=e["quantile"], buffer=e["buffer"], preset=preset)


def kattr_kwargs(e):
    return dict(window=e["window"], quantile=e["quantile"], bin_width=e["bin_width"],
                prior_bins=e["prior_bins"], threshold_scope=e["threshold_scope"], preset=e["preset"])


def batches(n):
    """Uneven batch boundaries: 7, 1, rest."""
    cuts = [0, min(7, n), min(8, n), n]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


# --------------------------------------------------------------------------- k-mer
@pytest.mark.parametrize("preset", ["acme", "paper"])
@pytest.mark.parametrize("e, d", KMER)
def test_kmer_golden(e, d, preset):
    res = acme_fast.kmer_kld(d["X"], d["A"], **kmer_kwargs(e, preset))
    np.testing.assert_allclose(res.kld, e["kld"], rtol=1e-6, atol=0)
    assert res.n_intervals == e["n_intervals"]
    assert res.n_nucleotides == e["n_nucleotides"]
    assert res.counts.shape == (4 ** e["k"],)
    np.testing.assert_array_equal(res.counts / res.counts.sum(), d["p"])
    np.testing.assert_array_equal(res.prior, d["prior"])
    assert res.k == e["k"] and res.preset == preset
    # the prior on its own
    np.testing.assert_array_equal(acme_fast.kmer_prior(d["X"], k=e["k"]), d["prior"])
    # the same through the NCL layout
    res2 = acme_fast.kmer_kld(to_ncl(d["X"]), to_ncl(d["A"]), layout="NCL", **kmer_kwargs(e, preset))
    assert res2.kld == res.kld
    np.testing.assert_array_equal(res2.counts, res.counts)


@pytest.mark.parametrize("e, d", KMER)
def test_kmer_golden_to_dict(e, d):
    res = acme_fast.kmer_kld(d["X"], d["A"], **kmer_kwargs(e))
    dd = res.to_dict()
    assert dd["kld"] == res.kld and dd["n_intervals"] == e["n_intervals"]
    np.testing.assert_array_equal(dd["counts"], res.counts)


@pytest.mark.parametrize("e, d", KMER)
def test_kmer_golden_accumulator(e, d):
    X, A = d["X"], d["A"]
    one = acme_fast.kmer_kld(X, A, **kmer_kwargs(e))
    acc = acme_fast.KmerAccumulator(**kmer_kwargs(e))
    for a, b in batches(len(X)):
        acc.update(X[a:b], A[a:b])
    res = acc.result()
    assert res.kld == one.kld
    np.testing.assert_array_equal(res.counts, one.counts)
    np.testing.assert_array_equal(res.prior, one.prior)
    assert (res.n_intervals, res.n_nucleotides) == (one.n_intervals, one.n_nucleotides)

    h = len(X) // 2
    a1 = acme_fast.KmerAccumulator(**kmer_kwargs(e)).update(X[:h], A[:h])
    a2 = acme_fast.KmerAccumulator(**kmer_kwargs(e)).update(X[h:], A[h:])
    res = a1.merge(a2).result()
    assert res.kld == one.kld
    np.testing.assert_array_equal(res.counts, one.counts)
    np.testing.assert_array_equal(res.prior, one.prior)
    assert (res.n_intervals, res.n_nucleotides) == (one.n_intervals, one.n_nucleotides)


# --------------------------------------------------------------------------- k-attr
@pytest.mark.parametrize("e, d", KATTR)
def test_kattr_golden(e, d):
    res = acme_fast.kattr_kld(d["A"], **kattr_kwargs(e))
    np.testing.assert_allclose(res.kld, e["kld"], rtol=1e-6, atol=0)
    assert res.n_points == e["n_points"]
    assert res.mass.shape == d["pdf"].shape
    np.testing.assert_allclose(res.density, d["pdf"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(res.mass.sum(), 1.0, rtol=0, atol=1e-12)
    # the defaults of the acme preset are the published ones
    if e["threshold_scope"] == "global" and e["prior_bins"] == 6:
        dflt = acme_fast.kattr_kld(d["A"], quantile=e["quantile"], bin_width=e["bin_width"], preset="acme")
        assert dflt.kld == res.kld
    # prior: NaN exactly on the border bins for the acme preset
    nb = res.mass.shape[0]
    border = np.ones((nb, nb), bool)
    border[1:-1, 1:-1] = False
    assert np.all(np.isnan(res.prior[border]))
    assert not np.any(np.isnan(res.prior[~border]))
    res2 = acme_fast.kattr_kld(to_ncl(d["A"]), layout="NCL", **kattr_kwargs(e))
    assert res2.kld == res.kld
    np.testing.assert_array_equal(res2.mass, res.mass)


@pytest.mark.parametrize("scope", ["global", "sequence"])
@pytest.mark.parametrize("preset", ["acme", "paper"])
@pytest.mark.parametrize("e, d", KATTR)
def test_kattr_golden_accumulator(e, d, preset, scope):
    A = d["A"]
    kw = dict(kattr_kwargs(e), preset=preset, threshold_scope=scope)
    one = acme_fast.kattr_kld(A, **kw)
    acc = acme_fast.KattrAccumulator(**kw)
    for a, b in batches(len(A)):
        acc.update(A[a:b])
    res = acc.result()
    assert res.kld == one.kld
    assert res.n_points == one.n_points
    np.testing.assert_array_equal(res.mass, one.mass)

    h = len(A) // 2
    a1 = acme_fast.KattrAccumulator(**kw).update(A[:h])
    a2 = acme_fast.KattrAccumulator(**kw).update(A[h:])
    res = a1.merge(a2).result()
    assert res.kld == one.kld
    assert res.n_points == one.n_points
    np.testing.assert_array_equal(res.mass, one.mass)


# --------------------------------------------------------------------------- ground truth
@pytest.mark.parametrize("layout", ["NLC", "NCL"])
@pytest.mark.parametrize("e, d", GROUNDTRUTH)
def test_groundtruth_golden(e, d, layout):
    X, A, M = d["X"], d["A"], d["x_model"]
    if layout == "NCL":
        X, A, M = to_ncl(X), to_ncl(A), to_ncl(M)
    res = acme_fast.groundtruth_scores(X, A, M, threshold=e["threshold"], top_k=e["top_k"], layout=layout)
    for name in ("auroc", "auprc", "signal", "noise_topk", "snr"):
        got, want = getattr(res, name), d[name]
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, equal_nan=True, err_msg=name)
    for name in ("signal", "noise_topk", "snr"):  # float32 semantics of tfomics, exactly
        assert getattr(res, name).dtype == d[name].dtype, name
        np.testing.assert_array_equal(getattr(res, name), d[name], err_msg=name)
    for name in ("mean_auroc", "mean_auprc", "mean_snr"):
        np.testing.assert_allclose(getattr(res, name), e[name], rtol=0, atol=1e-9, err_msg=name)
