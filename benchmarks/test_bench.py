"""acme_fast kernels vs the bandwidth floor vs vectorised numpy, one group per metric.

Run from the repository root (the pyproject's addopts skip benchmarks unless
--benchmark-only is given):

    python -m pytest benchmarks --benchmark-only -p no:cacheprovider --benchmark-json=bench.json
    python benchmarks/compare.py bench.json

Every benchmark records ``extra_info`` = {metric, variant, impl, threads, N, L} that
benchmarks/compare.py uses to pair kernel, floor and numpy timings:
    impl "floor":  one numpy pass over the same input arrays (attr.sum(), + x.sum() where
                   the metric reads x, + x_model.sum() for the ground truth);
    impl "numpy":  benchmarks/numpy_impl.py (its result is checked against the kernel's);
    impl "kernel": acme_fast with n_threads = 1, 2 and None ("all" threads).
"""

from __future__ import annotations

import numpy as np
import numpy_impl as ni
import pytest
from bench_config import GT_L, GT_N, ROUNDS, WARMUP, L, N
from datagen import KLD_RTOL

import acme_fast as af

THREADS = [1, 2, None]  # None: all threads (acme_fast.max_threads())


def _tname(t):
    return "all" if t is None else str(t)


def _run(benchmark, kind, fn, *, metric, variant, threads=None, size=(N, L)):
    benchmark.extra_info.update(
        metric=metric, variant=variant, impl=kind,
        threads=(af.max_threads() if threads is None else threads) if kind == "kernel" else 1,
        threads_arg=_tname(threads) if kind == "kernel" else None,
        N=size[0], L=size[1],
    )
    return benchmark.pedantic(fn, rounds=ROUNDS[kind], warmup_rounds=WARMUP[kind], iterations=1)


# Kernel results of the timed data, for checking the numpy results against them.
_kernel_results: dict = {}


def _check_kld(key, got, kernel):
    """The numpy KLD of the timed data must match the kernel's to KLD_RTOL relative."""
    want = _kernel_results.get(key)
    if want is None:  # numpy selected alone (-k): compute the kernel result here
        want = _kernel_results[key] = kernel()
    rel = abs(got - want.kld) / abs(want.kld)
    assert rel < KLD_RTOL, f"{key}: numpy {got!r} vs kernel {want.kld!r} (rel {rel:.2e})"


# ----------------------------------------------------------------------------- k-mer KLD
KMER_CASES = (
    [("floor", "x=uint8", None), ("numpy", "x=uint8", None)]
    + [("kernel", "x=uint8", t) for t in THREADS]
    + [("floor", "x=float32", None)]
    + [("kernel", "x=float32", t) for t in THREADS]
)


@pytest.mark.benchmark(group="kmer_kld")
@pytest.mark.parametrize(
    "kind,variant,threads", KMER_CASES,
    ids=[f"{v}-{k}" + (f"-t{_tname(t)}" if k == "kernel" else "") for k, v, t in KMER_CASES],
)
def test_kmer_kld(benchmark, atac, kind, variant, threads):
    x = atac["x_u8"] if variant == "x=uint8" else atac["x_f32"]
    attr = atac["attr"]
    if kind == "floor":
        fn = lambda: (attr.sum(), x.sum())  # noqa: E731
    elif kind == "numpy":
        fn = lambda: ni.kmer_kld(x, attr)  # noqa: E731
    else:
        fn = lambda: af.kmer_kld(x, attr, n_threads=threads)  # noqa: E731
    out = _run(benchmark, kind, fn, metric="kmer_kld", variant=variant, threads=threads)
    if kind == "kernel":
        _kernel_results.setdefault("kmer", out)
        assert out.kld == _kernel_results["kmer"].kld  # any thread count, any x dtype: same number
    elif kind == "numpy":
        _check_kld("kmer", out["kld"], lambda: af.kmer_kld(x, attr))


# ----------------------------------------------------------------------------- k-attr-mean KLD
KATTR_CASES = [("floor", None), ("numpy", None)] + [("kernel", t) for t in THREADS]
KATTR_IDS = [k + (f"-t{_tname(t)}" if k == "kernel" else "") for k, t in KATTR_CASES]


def _kattr(benchmark, atac, preset, kind, threads):
    attr = atac["attr"]
    key = f"kattr_{preset}"
    if kind == "floor":
        fn = lambda: attr.sum()  # noqa: E731
    elif kind == "numpy":
        fn = lambda: (ni.kattr_kld_paper if preset == "paper" else ni.kattr_kld_acme)(attr)  # noqa: E731
    else:
        fn = lambda: af.kattr_kld(attr, preset=preset, n_threads=threads)  # noqa: E731
    out = _run(benchmark, kind, fn, metric=f"kattr_kld_{preset}", variant="", threads=threads)
    if kind == "kernel":
        _kernel_results.setdefault(key, out)
        assert out.kld == _kernel_results[key].kld
    elif kind == "numpy":
        _check_kld(key, out["kld"], lambda: af.kattr_kld(attr, preset=preset))


@pytest.mark.benchmark(group="kattr_kld_paper")
@pytest.mark.parametrize("kind,threads", KATTR_CASES, ids=KATTR_IDS)
def test_kattr_kld_paper(benchmark, atac, kind, threads):
    _kattr(benchmark, atac, "paper", kind, threads)


@pytest.mark.benchmark(group="kattr_kld_acme")
@pytest.mark.parametrize("kind,threads", KATTR_CASES, ids=KATTR_IDS)
def test_kattr_kld_acme(benchmark, atac, kind, threads):
    _kattr(benchmark, atac, "acme", kind, threads)


# ----------------------------------------------------------------------------- ground truth
@pytest.mark.benchmark(group="groundtruth")
@pytest.mark.parametrize("kind,threads", KATTR_CASES, ids=KATTR_IDS)
def test_groundtruth(benchmark, synthetic, kind, threads):
    x, attr, m = synthetic["x_u8"], synthetic["attr"], synthetic["x_model"]
    if kind == "floor":
        fn = lambda: (attr.sum(), x.sum(), m.sum())  # noqa: E731
    elif kind == "numpy":
        fn = lambda: ni.groundtruth_scores(x, attr, m)  # noqa: E731
    else:
        fn = lambda: af.groundtruth_scores(x, attr, m, n_threads=threads)  # noqa: E731
    out = _run(benchmark, kind, fn, metric="groundtruth", variant="", threads=threads, size=(GT_N, GT_L))
    if kind == "numpy":
        want = af.groundtruth_scores(x, attr, m)
        np.testing.assert_allclose(out["auroc"], want.auroc, rtol=1e-9, equal_nan=True)
        np.testing.assert_allclose(out["auprc"], want.auprc, rtol=1e-9, equal_nan=True)
