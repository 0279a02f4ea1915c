"""Slow tests (``pytest -m slow``): real sequences from ../shared/data and larger random sets
against the numpy reference. They skip cleanly when ../shared or h5py is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import reference as ref
from conftest import attribution, onehot, to_ncl

import acme_fast as af

pytestmark = pytest.mark.slow

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FASTA = SHARED / "data" / "fasta" / "janggu_sample.fa"
CHIPSEQ = SHARED / "data" / "chipseq" / "IRF1_400_h3k27ac.h5"


def read_fasta_onehot(path, n_max=None):
    """One-hot (N, L, 4) float32 of equal-length records; lower case (soft-masked) kept."""
    seqs, cur = [], []
    for line in Path(path).read_text().splitlines():
        if line.startswith(">"):
            if cur:
                seqs.append("".join(cur))
            cur = []
        else:
            cur.append(line.strip().upper())
    if cur:
        seqs.append("".join(cur))
    L = max(len(s) for s in seqs)
    seqs = [s for s in seqs if len(s) == L][:n_max]
    lut = np.full(256, 4, dtype=np.int64)
    for i, c in enumerate(b"ACGT"):
        lut[c] = i
    codes = lut[np.frombuffer("".join(seqs).encode(), dtype=np.uint8)].reshape(len(seqs), L)
    return np.eye(5, 4, dtype=np.float32)[codes]  # N (code 4) -> all-zero row


def focused_attr(x, rng, strength=1.0):
    """Attribution on CG dinucleotides (a sequence-dependent, consistent signal) plus noise."""
    c, g = x[..., 1], x[..., 2]
    cg = np.zeros(x.shape[:2], dtype=np.float32)
    cg[:, :-1] = c[:, :-1] * g[:, 1:]
    cg[:, 1:] += cg[:, :-1]
    return (strength * x * cg[..., None] + 0.2 * rng.standard_normal(x.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def genomic():
    if not FASTA.exists():
        pytest.skip(f"{FASTA} not found (../shared is not beside the project)")
    return read_fasta_onehot(FASTA, n_max=1500)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_real_fasta_kmer_prior(genomic, k):
    expected = ref.kmer_prior(genomic, k)
    np.testing.assert_allclose(af.kmer_prior(genomic, k=k), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(af.kmer_prior(to_ncl(genomic), k=k, layout="NCL"), expected, rtol=0, atol=1e-15)


def test_real_fasta_kmer_kld_against_reference(genomic):
    rng = np.random.default_rng(3)
    x = genomic[:400]
    attr = focused_attr(x, rng)
    got = af.kmer_kld(x, attr, k=4)
    want = ref.kmer_kld(x, attr, k=4)
    assert got.n_intervals == want["n_intervals"] and got.n_nucleotides == want["n_nucleotides"]
    np.testing.assert_array_equal(got.counts, want["counts"])
    assert got.kld == pytest.approx(want["kld"], rel=1e-12)


def test_real_fasta_consistent_attribution_scores_higher(genomic):
    rng = np.random.default_rng(4)
    # k-mer KLD: attribution on CpG dinucleotides vs the same noise alone
    focused, diffuse = focused_attr(genomic, rng), focused_attr(genomic, rng, strength=0.0)
    assert af.kmer_kld(genomic, focused, k=4).kld > 10 * af.kmer_kld(genomic, diffuse, k=4).kld
    # k-attr KLD: attribution on every C (one direction) vs noise. The published method
    # (preset acme) scores pure noise high (about 0.42 here), so it separates less.
    c_only = genomic * (genomic[..., 1:2] > 0)
    noise = 0.2 * rng.standard_normal(genomic.shape).astype(np.float32)
    assert af.kattr_kld(c_only + noise).kld > 5 * af.kattr_kld(noise).kld
    assert af.kattr_kld(c_only + noise, preset="acme").kld > 1.2 * af.kattr_kld(noise, preset="acme").kld


def test_real_chipseq_ncl_layout():
    h5py = pytest.importorskip("h5py")
    if not CHIPSEQ.exists():
        pytest.skip(f"{CHIPSEQ} not found")
    with h5py.File(CHIPSEQ, "r") as f:
        key = next(k for k in f if k.startswith("X_"))
        x_ncl = np.asarray(f[key][:300], dtype=np.float32)  # (N, 4, 400), as stored
    assert x_ncl.shape[1] == 4
    rng = np.random.default_rng(5)
    a_ncl = rng.standard_normal(x_ncl.shape).astype(np.float32)
    x_nlc, a_nlc = np.swapaxes(x_ncl, 1, 2), np.swapaxes(a_ncl, 1, 2)
    np.testing.assert_array_equal(af.kmer_prior(x_ncl, k=5, layout="NCL"), af.kmer_prior(x_nlc, k=5))
    r_ncl = af.kmer_kld(x_ncl, a_ncl, k=5, layout="NCL")
    r_nlc = af.kmer_kld(x_nlc, a_nlc, k=5)
    assert r_ncl.kld == r_nlc.kld
    assert af.kattr_kld(a_ncl, layout="NCL").kld == af.kattr_kld(a_nlc).kld
    want = ref.kmer_kld(np.ascontiguousarray(x_nlc[:60]), np.ascontiguousarray(a_nlc[:60]), k=5)
    assert af.kmer_kld(x_ncl[:60], a_ncl[:60], k=5, layout="NCL").kld == pytest.approx(want["kld"], rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_larger_random_sets_against_reference(seed):
    rng = np.random.default_rng(100 + seed)
    n, L = 40, 300
    x = onehot(rng, n, L, n_frac=0.02)
    a = attribution(rng, n, L, np.float32)
    km, want = af.kmer_kld(x, a, k=5), ref.kmer_kld(x, a, k=5)
    np.testing.assert_array_equal(km.counts, want["counts"])
    assert km.kld == pytest.approx(want["kld"], rel=1e-12)
    for scope in ("sequence", "global"):
        got, exp = af.kattr_kld(a, threshold_scope=scope), ref.kattr_paper(a, threshold_scope=scope)
        assert got.n_points == exp["n_points"]
        assert got.kld == pytest.approx(exp["kld"], rel=1e-9)
    got, exp = af.kattr_kld(a, preset="acme"), ref.kattr_acme(a)
    assert got.n_points == exp["n_points"]
    assert got.kld == pytest.approx(exp["kld"], rel=1e-9)
