"""Benchmark data (fixed seed) and the numpy-vs-kernel agreement check."""

from __future__ import annotations

import numpy as np

KLD_RTOL = 1e-9


def _onehot(codes: np.ndarray) -> np.ndarray:
    return (codes[..., None] == np.arange(4, dtype=codes.dtype)).view(np.uint8)


def make_atac(N: int, L: int, seed: int = 0, n_sites: int = 6, motif_len: int = 10, n_motifs: int = 20):
    """ATAC-like data: GC-poor background with planted motifs; attributions peak on them.

    ``attr`` = small N(0, 0.05) noise everywhere + a per-site amplitude times
    ``(x - 0.25)`` over each planted motif (grad x input-like, so the gauge-corrected
    attribution points at the present base). float32, NLC. ``x`` is returned as
    uint8 and as float32 (the same sequences).
    """
    rng = np.random.default_rng(seed)
    codes = rng.choice(4, size=(N, L), p=[0.3, 0.2, 0.2, 0.3]).astype(np.int8)
    motifs = rng.integers(0, 4, size=(n_motifs, motif_len), dtype=np.int8)
    starts = rng.integers(0, L - motif_len, size=(N, n_sites))
    which = rng.integers(0, n_motifs, size=(N, n_sites))
    rows = np.repeat(np.arange(N), n_sites)
    env = np.zeros((N, L), dtype=np.float32)
    amp = rng.lognormal(0.0, 0.5, size=N * n_sites).astype(np.float32)
    for j in range(motif_len):
        pos = starts.ravel() + j
        codes[rows, pos] = motifs[which.ravel(), j]
        env[rows, pos] = amp
    x = _onehot(codes)
    attr = rng.standard_normal((N, L, 4), dtype=np.float32)
    attr *= np.float32(0.05)
    attr += env[..., None] * (x - np.float32(0.25))
    return {"x_u8": x, "x_f32": x.astype(np.float32), "attr": attr}


def make_synthetic(N: int, L: int, seed: int = 1, n_motifs: int = 3, motif_len: int = 12, n_pwms: int = 10):
    """Synthetic sequences with a known sequence model (tfomics-style).

    ``x_model`` is 0.25 in the background and a PWM column where a motif is embedded;
    ``x`` is sampled from it; ``attr`` = (x_model - 0.25) * 2 + N(0, 0.15) noise, float32.
    """
    rng = np.random.default_rng(seed)
    pwms = rng.dirichlet(np.full(4, 0.3), size=(n_pwms, motif_len))
    model = np.full((N, L, 4), 0.25)
    starts = rng.integers(0, L - motif_len, size=(N, n_motifs))
    which = rng.integers(0, n_pwms, size=(N, n_motifs))
    rows = np.repeat(np.arange(N), n_motifs)
    for j in range(motif_len):
        model[rows, starts.ravel() + j] = pwms[which.ravel(), j]
    u = rng.random((N, L, 1))
    codes = (u > np.cumsum(model, axis=-1)).sum(axis=-1).clip(0, 3).astype(np.int8)
    x = _onehot(codes)
    attr = ((model - 0.25) * 2.0 + rng.normal(0.0, 0.15, size=model.shape)).astype(np.float32)
    return {"x_u8": x, "attr": attr, "x_model": model}


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def check_numpy_impl_agrees(ni, kld_rtol: float = KLD_RTOL) -> None:
    """Assert that numpy_impl ``ni`` agrees with acme_fast on small inputs.

    KLDs to ``kld_rtol`` relative; k-mer counts, interval and point counts exactly;
    AUROC/AUPRC to 1e-9; float32 signal/noise/SNR to 1e-5 relative (summation order).
    Inputs include unknown (N) bases and float32 x.
    """
    import acme_fast as af

    for seed, (n, L) in enumerate([(16, 300), (9, 1001)]):
        d = make_atac(n, L, seed=100 + seed)
        x, attr = d["x_u8"], d["attr"]
        x[1, 40:47] = 0  # unknown bases
        for xx in (x, x.astype(np.float32)):
            got, want = ni.kmer_kld(xx, attr), af.kmer_kld(xx, attr)
            assert _rel(got["kld"], want.kld) < kld_rtol, ("kmer", got["kld"], want.kld)
            assert np.array_equal(got["counts"], want.counts)
            assert (got["n_intervals"], got["n_nucleotides"]) == (want.n_intervals, want.n_nucleotides)
        for preset, f in (("paper", ni.kattr_kld_paper), ("acme", ni.kattr_kld_acme)):
            got, want = f(attr), af.kattr_kld(attr, preset=preset)
            assert _rel(got["kld"], want.kld) < kld_rtol, (preset, got["kld"], want.kld)
            assert got["n_points"] == want.n_points, (preset, got["n_points"], want.n_points)
            np.testing.assert_allclose(got["mass"], want.mass, rtol=0, atol=1e-12)
    s = make_synthetic(40, 200, seed=7)
    got = ni.groundtruth_scores(s["x_u8"], s["attr"], s["x_model"])
    want = af.groundtruth_scores(s["x_u8"], s["attr"], s["x_model"])
    for k in ("auroc", "auprc"):
        np.testing.assert_allclose(got[k], getattr(want, k), rtol=1e-9, atol=0, equal_nan=True)
    for k in ("signal", "noise_topk", "snr"):
        np.testing.assert_allclose(got[k], getattr(want, k), rtol=1e-5, atol=1e-7, equal_nan=True)
