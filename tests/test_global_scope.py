"""The global threshold scope (preset acme, threshold_scope="global") has three code paths
in the kernel: a sampled one-pass path (N >= 64), its fall-back when the sampled bound is
too high, and the two-pass radix path; the accumulator uses a fourth (stored radii). All
must give exactly the same result, and agree with the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref

import acme_fast as af


def _accumulated(attr, **kw):
    acc = af.KattrAccumulator(**kw)
    for i in range(0, len(attr), 37):
        acc.update(attr[i : i + 37])
    return acc.result()


def _same(r1, r2):
    assert r1.n_points == r2.n_points
    assert r1.kld == r2.kld
    np.testing.assert_array_equal(r1.mass, r2.mass)


@pytest.mark.parametrize("preset", ["acme", "paper"])
@pytest.mark.parametrize("kind", ["normal", "ties"])
def test_one_pass_equals_accumulator_and_reference(preset, kind):
    rng = np.random.default_rng(5)
    n, L = 300, 40
    attr = rng.standard_normal((n, L, 4))
    if kind == "ties":
        attr = rng.choice([-1.0, 0.0, 1.0, 2.0], size=(n, L, 4))
    kw = dict(preset=preset, threshold_scope="global", quantile=0.9)
    one = af.kattr_kld(attr, **kw)
    _same(one, _accumulated(attr, **kw))
    if kind == "normal":  # ties make the oracle's order of operations matter at the cutoff
        oracle = (ref.kattr_acme(attr) if preset == "acme"
                  else ref.kattr_paper(attr, threshold_scope="global"))
        assert one.n_points == oracle["n_points"]
        assert one.kld == pytest.approx(oracle["kld"], rel=1e-9)


def test_fallback_when_sampled_bound_is_too_high():
    # Sampled sequences (every N // 64-th) carry one dominant position: their radii are large,
    # so the bound from the sample lies above the true cutoff and the kernel must fall back.
    rng = np.random.default_rng(7)
    n, L = 640, 50
    attr = rng.standard_normal((n, L, 4)) * 1e-3
    stride = n // 64
    attr[::stride, 10, 0] = 10.0
    for preset in ("acme", "paper"):
        kw = dict(preset=preset, threshold_scope="global", quantile=0.99)
        one = af.kattr_kld(attr, **kw)
        _same(one, _accumulated(attr, **kw))
        n_points = n * (L if preset == "acme" else L - 2)
        m = int(np.floor(n_points * (1 - 0.99) + 1e-9))
        assert one.n_points == m - 1  # continuous radii: everything above the m-th largest


def test_fallback_when_sampled_upper_bound_is_too_low():
    # The sampled sequences are plain noise; the others carry strong positions whose windows
    # lie far above every sampled radius. The sample's upper bound (points above it go
    # straight into the histogram) then has more than m points above it: the kernel must
    # fall back, and the result must still be exact.
    rng = np.random.default_rng(8)
    n, L = 640, 50
    attr = rng.standard_normal((n, L, 4))
    stride = n // 64
    strong = np.ones(n, bool)
    strong[::stride] = False
    attr[np.ix_(strong, [5, 15, 25, 35, 45], [0])] = 40.0
    for preset in ("acme", "paper"):
        kw = dict(preset=preset, threshold_scope="global", quantile=0.9)
        one = af.kattr_kld(attr, **kw)
        _same(one, _accumulated(attr, **kw))
        oracle = (ref.kattr_acme(attr) if preset == "acme"
                  else ref.kattr_paper(attr, threshold_scope="global"))
        assert one.n_points == oracle["n_points"]
        assert one.kld == pytest.approx(oracle["kld"], rel=1e-9)


@pytest.mark.parametrize("q", [0.5, 0.7, 0.99, 0.999])
def test_quantiles_across_paths(q):
    # q = 0.5 and 0.7 take the two-pass path (too many candidates), 0.99+ the one-pass path.
    rng = np.random.default_rng(11)
    attr = rng.standard_normal((200, 30, 4)).astype(np.float32)
    kw = dict(preset="acme", quantile=q)
    _same(af.kattr_kld(attr, **kw), _accumulated(attr, **kw))


def _two_pass(attr, parts=3, batch=41, **kw):
    """Streams attr through a two-pass accumulator split over `parts` workers (pickled,
    as Dask would ship them), merging each pass."""
    import pickle

    acc = af.KattrAccumulator(two_pass=True, **kw)
    for p in range(acc.n_passes):
        workers = [acc.empty_like() for _ in range(parts)]
        for j, i in enumerate(range(0, len(attr), batch)):
            workers[j % parts].update(attr[i : i + batch])
        workers = [pickle.loads(pickle.dumps(w)) for w in workers]
        acc = workers[0]
        for w in workers[1:]:
            acc.merge(w)
        if p + 1 < acc.n_passes:
            acc.next_pass()
    return acc


@pytest.mark.parametrize("preset,scope", [("acme", None), ("paper", "global"), ("paper", "sequence")])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.999])
def test_two_pass_bounded_equals_one_shot(preset, scope, q):
    rng = np.random.default_rng(21)
    attr = rng.standard_normal((300, 64, 4))
    kw = dict(preset=preset, threshold_scope=scope, quantile=q)
    acc = _two_pass(attr, **kw)
    assert acc.n_passes == (1 if scope == "sequence" else 2)
    _same(acc.result(), af.kattr_kld(attr, **kw))


def test_two_pass_keeps_few_candidates():
    # Only the points in the radix bucket of the cutoff are kept between batches.
    rng = np.random.default_rng(3)
    attr = rng.standard_normal((400, 256, 4)).astype(np.float32)
    acc = _two_pass(attr, preset="acme")
    kept = sum(len(r) for r in acc._r)
    assert 0 < kept < 0.01 * attr.shape[0] * attr.shape[1]
    _same(acc.result(), af.kattr_kld(attr, preset="acme"))


@pytest.mark.parametrize("n_threads", [1, 2, 3, 7])
def test_two_pass_large_batches_private_tables(n_threads):
    """A batch of more than 2^20 points per extra thread takes the private radius-key tables
    (8 MB each) and the merge split over the threads; smaller batches count on one thread.
    Every thread count gives the one-shot result."""
    rng = np.random.default_rng(8)
    attr = rng.standard_normal((1600, 2048, 4)).astype(np.float32)  # 3.3 M points: up to 4 threads
    one = af.kattr_kld(attr, preset="acme")
    acc = af.KattrAccumulator(preset="acme", two_pass=True, n_threads=n_threads)
    for p in range(acc.n_passes):
        acc.update(attr[:1100]).update(attr[1100:])  # 2.25 M and 1.0 M points
        if p + 1 < acc.n_passes:
            acc.next_pass()
    _same(acc.result(), one)


@pytest.mark.parametrize("n_threads", [1, 2, 3, 7])
@pytest.mark.parametrize("kind", ["normal", "ties"])
def test_stored_result_chunks_and_threads(n_threads, kind):
    """The stored accumulator's result() selects the cutoff among its radii by a radix
    histogram and the bucket holding it, in chunks of 2^16 points over the threads: the
    one-shot result at every thread count, with ties at the cutoff (integer-valued maps)."""
    rng = np.random.default_rng(9)
    attr = rng.standard_normal((700, 400, 4)).astype(np.float32)  # 280 k points: 5 chunks
    if kind == "ties":
        attr = rng.choice([-1.0, 0.0, 1.0, 2.0], size=(700, 400, 4)).astype(np.float32)
    for q in (0.5, 0.9, 0.999):
        one = af.kattr_kld(attr, preset="acme", quantile=q)
        acc = af.KattrAccumulator(preset="acme", quantile=q, n_threads=n_threads)
        for i in range(0, len(attr), 150):
            acc.update(attr[i : i + 150])
        assert acc._mode() == "stored"
        _same(acc.result(), one)


def test_stored_points_checked():
    """The stored-points kernel refuses bins out of range and negative or NaN radii (the radix
    keys assume r >= 0) with a ValueError naming the argument."""
    from acme_fast import _core

    r = np.array([0.5, 1.0, 2.0])
    b = np.array([0, 1, 2], dtype=np.int32)
    assert _core.kattr_hist_from_points(r, b, True, 0.3, 4, 0)["n_points"] == 1  # m = 2: r > 1.0
    with pytest.raises(ValueError, match="bin"):
        _core.kattr_hist_from_points(r, np.array([0, 1, 16], dtype=np.int32), True, 0.5, 4, 0)
    for bad in (-1.0, np.nan):
        with pytest.raises(ValueError, match="r: expected radii >= 0"):
            _core.kattr_hist_from_points(np.array([0.5, bad, 2.0]), b, True, 0.5, 4, 0)


def test_two_pass_protocol_errors():
    rng = np.random.default_rng(4)
    attr = rng.standard_normal((20, 30, 4))
    acc = af.KattrAccumulator(preset="acme", two_pass=True).update(attr)
    with pytest.raises(ValueError, match="next_pass"):
        acc.result()
    other = acc.empty_like()
    acc.next_pass()
    with pytest.raises(ValueError, match="pass"):
        acc.merge(other.update(attr))  # pass 0 into pass 1
    acc.update(attr[:10])
    with pytest.raises(ValueError, match="same data"):
        acc.result()
    with pytest.raises(ValueError, match="next_pass"):
        af.KattrAccumulator().next_pass()
    with pytest.raises(ValueError, match="single pass"):
        af.KmerAccumulator().next_pass()


def test_two_pass_accumulator_refuses_use_after_a_failed_update():
    rng = np.random.default_rng(8)
    good = rng.standard_normal((10, 30, 4))
    bad = good.copy()
    bad[7, 3, 1] = np.nan
    acc = af.KattrAccumulator(preset="acme", two_pass=True).update(good)
    with pytest.raises(ValueError, match="finite"):
        acc.update(bad)
    with pytest.raises(ValueError, match="failed validation"):
        acc.next_pass()


def test_two_pass_accumulator_refuses_use_after_an_interrupted_update(monkeypatch):
    """Ctrl-C inside pass 0 leaves part of the batch in the in-place counts: the accumulator
    must refuse to go on rather than give a KLD from a partial count."""
    from acme_fast import kattr

    rng = np.random.default_rng(9)
    attr = rng.standard_normal((10, 30, 4))
    acc = af.KattrAccumulator(preset="acme", two_pass=True).update(attr)

    class Interrupted:
        def __getattr__(self, name):
            return getattr(_core_real, name)

        @staticmethod
        def kattr_stream_keys(*args):
            args[-1][:7] += 1  # some of the batch counted, then the interrupt
            raise KeyboardInterrupt

    _core_real = kattr._core
    monkeypatch.setattr(kattr, "_core", Interrupted())
    with pytest.raises(KeyboardInterrupt):
        acc.update(attr)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="failed validation"):
        acc.next_pass()
    with pytest.raises(ValueError, match="failed validation"):
        acc.merge(acc.empty_like())


def test_sequences_sorted_by_amplitude():
    # The sampled band's width comes from the spread of the sampled sequences' kept
    # fractions: here a motif's amplitude grows 200-fold along the sequences, so the
    # fractions spread widely; the result must be exact whatever the band.
    rng = np.random.default_rng(12)
    n, L = 640, 60
    attr = rng.standard_normal((n, L, 4))
    attr[:, 20:30] *= np.linspace(0.1, 20.0, n)[:, None, None]
    for q in (0.9, 0.99):
        kw = dict(preset="acme", threshold_scope="global", quantile=q)
        one = af.kattr_kld(attr, **kw)
        _same(one, _accumulated(attr, **kw))
        oracle = ref.kattr_acme(attr, quantile=q)
        assert one.n_points == oracle["n_points"]
        assert one.kld == pytest.approx(oracle["kld"], rel=1e-9)


def test_tied_sample_quantiles():
    # One sequence in 8 is a constant row: all of its windows have the same radius, above
    # the noise sequences' radii but for a few, so the sample's upper and lower quantiles
    # near the cutoff are the same tied radius (no band between them), and the cutoff itself
    # is that radius: only the points strictly above it count.
    rng = np.random.default_rng(13)
    n, L = 640, 50
    attr = rng.standard_normal((n, L, 4))
    attr[::8] = np.array([3.0, -1.0, 0.5, -2.5])
    kw = dict(preset="acme", threshold_scope="global", quantile=0.9)
    one = af.kattr_kld(attr, **kw)
    _same(one, _accumulated(attr, **kw))
    oracle = ref.kattr_acme(attr)
    r = np.sort(oracle["r"])[::-1]
    tied = oracle["r"].reshape(n, L)[0, 0]
    m = int(np.floor(r.size * 0.1 + 1e-9))
    assert r[m - 1] == tied and (r == tied).sum() == n // 8 * L  # the cutoff is the tied radius
    assert one.n_points == oracle["n_points"] == int((r > tied).sum())


def test_long_sequences_sample_not_kept():
    # 64 sequences of 33,000 positions: the sampled radii (2.1 M) are more than the kernel
    # keeps for the sample's exact quantiles, so the band comes from the radix buckets' edges.
    rng = np.random.default_rng(14)
    attr = rng.standard_normal((64, 33_000, 4)).astype(np.float32)
    kw = dict(preset="acme", threshold_scope="global", quantile=0.99)
    one = af.kattr_kld(attr, **kw)
    _same(one, _accumulated(attr, **kw))
    m = int(np.floor(attr.shape[0] * attr.shape[1] * 0.01 + 1e-9))
    assert one.n_points == m - 1  # continuous radii: everything above the m-th largest
