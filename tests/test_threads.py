"""Results are bit-identical for any thread count (and for the default)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import attribution, onehot

import acme_fast

THREADS = [1, 2, 7, None]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2024)
    n, L = 200, 300
    x = onehot(rng, n, L, n_frac=0.01)
    a = attribution(rng, n, L)
    a[:, 100:110] += 3 * x[:, 100:110]  # some structure
    m = np.full((n, L, 4), 0.25)
    m[:, 100:110] = rng.dirichlet(np.full(4, 0.3), size=(n, 10))
    return x, a, m


def assert_identical(results):
    first = results[0].to_dict()
    for r in results[1:]:
        for f, v in r.to_dict().items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(v, first[f], err_msg=f)
            elif isinstance(v, float) and np.isnan(v):
                assert np.isnan(first[f]), f
            else:
                assert v == first[f], f


def test_openmp_reported():
    assert isinstance(acme_fast.has_openmp, bool)
    assert acme_fast.max_threads() >= 1


def test_kmer_prior_threads(data):
    x, _, _ = data
    res = [acme_fast.kmer_prior(x, k=6, n_threads=t) for t in THREADS]
    for r in res[1:]:
        np.testing.assert_array_equal(r, res[0])


@pytest.mark.parametrize("preset", ["paper", "acme"])
@pytest.mark.parametrize("k", [3, 6])
def test_kmer_threads(data, preset, k):
    x, a, _ = data
    assert_identical([acme_fast.kmer_kld(x, a, k=k, preset=preset, n_threads=t) for t in THREADS])


@pytest.mark.parametrize("weight", ["r2", "none", "inv_r2"])
@pytest.mark.parametrize("scope", ["sequence", "global"])
@pytest.mark.parametrize("preset", ["paper", "acme"])
def test_kattr_threads(data, preset, scope, weight):
    _, a, _ = data
    kw = dict(preset=preset, threshold_scope=scope, weight=weight)
    assert_identical([acme_fast.kattr_kld(a, n_threads=t, **kw) for t in THREADS])
    # float64 input and the NCL layout, too
    a64 = np.ascontiguousarray(np.swapaxes(a, 1, 2), dtype=np.float64)
    assert_identical([acme_fast.kattr_kld(a64, layout="NCL", n_threads=t, **kw) for t in THREADS])


def test_groundtruth_threads(data):
    x, a, m = data
    assert_identical([acme_fast.groundtruth_scores(x, a, m, n_threads=t) for t in THREADS])


@pytest.mark.parametrize("preset", ["paper", "acme"])
def test_accumulators_threads(data, preset):
    x, a, _ = data
    out_k, out_a = [], []
    for t in THREADS:
        acc = acme_fast.KmerAccumulator(k=5, preset=preset, n_threads=t)
        acc2 = acme_fast.KattrAccumulator(preset=preset, n_threads=t)
        for b in range(0, len(x), 64):
            acc.update(x[b : b + 64], a[b : b + 64])
            acc2.update(a[b : b + 64])
        out_k.append(acc.result())
        out_a.append(acc2.result())
    assert_identical(out_k + [acme_fast.kmer_kld(x, a, k=5, preset=preset)])
    assert_identical(out_a + [acme_fast.kattr_kld(a, preset=preset)])
