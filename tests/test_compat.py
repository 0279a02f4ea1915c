"""acme_fast.compat: the reference code's entry points (SPEC section 6)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import reference as ref
from conftest import attribution, golden_params, onehot

import acme_fast
from acme_fast import compat as C

KMER = golden_params("kmer")
KATTR = golden_params("kattr")


def gauge(a):
    return a - a.mean(axis=-1, keepdims=True)


def method2(A, X, window, top_fraction, bin_width, prior_half_width, mask=1):
    maps = [C.process_attribution_map(A, k=window)]
    phi1, phi2, r = C.spherical_coordinates_process_2_trad(maps, X, mask, radius_count_cutoff=top_fraction)
    LIM, box_length, box_volume, n_bins, n_bins_half = C.initialize_integration_2(bin_width)
    kld = C.calculate_entropy_2(phi1, phi2, r, n_bins, box_length, box_volume, prior_half_width)
    return phi1, phi2, r, n_bins, kld


# --------------------------------------------------------------------------- golden
@pytest.mark.parametrize("e, d", KMER)
def test_kmer_golden(e, d):
    X, A, k = d["X"], d["A"], e["k"]
    prior = C.compute_kmer_spectra_testset(X, k)
    np.testing.assert_allclose(prior, d["prior"], rtol=0, atol=1e-12)
    seq_list, cut = C.collect_passing_subsequences(gauge(A), X, e["quantile"], k)
    assert len(seq_list) == e["n_intervals"]
    assert sum(len(s) for s in seq_list) == e["n_nucleotides"]
    assert cut.shape == (X.shape[0],) and cut.dtype == A.dtype
    r = np.linalg.norm(gauge(A), axis=-1)
    np.testing.assert_allclose(cut, np.quantile(r, e["quantile"], axis=-1), rtol=1e-6)
    entropy, obj, p, q, kmer_dict = C.calculate_kmer_entropy(X, seq_list, prior, k)
    assert entropy == e["kld_reference_rounded"]
    np.testing.assert_allclose(p, d["p"], rtol=0, atol=1e-12)
    assert q is prior
    assert obj.n == 4**k and len(kmer_dict) == 4**k
    assert kmer_dict[0] == "A" * k and kmer_dict[4**k - 1] == "T" * k


@pytest.mark.parametrize("e, d", KATTR)
def test_kattr_golden(e, d):
    X, A = d["X"], d["A"]
    phi1, phi2, r, n_bins, kld = method2(A, X, e["window"], e["top_fraction"], e["bin_width"],
                                         e["prior_half_width"])
    assert len(phi1) == len(phi2) == len(r) == len(kld) == 1
    assert len(phi1[0]) == len(phi2[0]) == len(r[0]) == e["n_points"]
    assert kld[0] == e["kld_reference_rounded"]
    # the reference's density, rebuilt from the returned angles
    bw = e["bin_width"]
    k = np.minimum((phi1[0] / bw).astype(int), n_bins - 1)
    l_ = np.minimum((phi2[0] / bw).astype(int), n_bins - 1)
    hist = np.zeros((n_bins, n_bins))
    np.add.at(hist, (k, l_), r[0] ** 2)
    np.testing.assert_allclose(hist / hist.sum() / bw**2, d["pdf"], rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- k-mer functions
def strings_oracle(X, A, quantile, k):
    """Attributed subsequences from the slow oracle (correct sequence assignment, N for zero rows)."""
    codes = ref.codes_of(X)
    s = np.sqrt((np.asarray(A, np.float64) ** 2).sum(-1))
    out = []
    for i in range(len(X)):
        for b, e in ref.attributed_intervals(s[i], quantile, 2, k):
            out.append("".join("ACGTN"[c] for c in codes[i, b : e + 1]))
    return out


def test_unknown_bases_and_unattributed_sequence(rng):
    X = onehot(rng, 12, 150, n_frac=0.05)
    A = attribution(rng, 12, 150)
    A[3] = attribution(rng, 1, 150, kind="const")[0]  # no attributed position after gauge correction
    Ac = gauge(A)
    seq_list, _ = C.collect_passing_subsequences(Ac, X, 0.85, 4)
    assert seq_list == strings_oracle(X, Ac, 0.85, 4)
    assert any("N" in s for s in seq_list)
    # k-mers with N are skipped; counts agree with the package's metric
    prior = C.compute_kmer_spectra_testset(X, 4)
    np.testing.assert_allclose(prior, ref.kmer_prior(X, 4), rtol=0, atol=1e-15)
    entropy, _, p, _, _ = C.calculate_kmer_entropy(X, seq_list, prior, 4)
    res = acme_fast.kmer_kld(X, A, k=4, quantile=0.85, preset="acme")
    np.testing.assert_allclose(p, res.counts / res.counts.sum(), rtol=0, atol=1e-15)
    assert entropy == np.round(res.kld, 3)


def test_buffer_size_warns(rng):
    X, A = onehot(rng, 4, 60), attribution(rng, 4, 60)
    with pytest.warns(UserWarning, match=r"kmer_kld\(buffer="):
        with_warn = C.collect_passing_subsequences(A, X, 0.9, 3, buffer_size=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = C.collect_passing_subsequences(A, X, 0.9, 3)
    assert with_warn[0] == default[0]  # ignored, as in the reference


def test_kmer_length_filter_and_dtypes(rng):
    X, A = onehot(rng, 6, 300), attribution(rng, 6, 300, dtype=np.float64)
    for k in (1, 3, 7, 15):
        seq_list, cut = C.collect_passing_subsequences(A, X.astype(np.uint8), 0.8, k)
        assert seq_list == strings_oracle(X, A, 0.8, k)
        assert cut.dtype == np.float64


def test_bad_inputs(rng):
    X, A = onehot(rng, 3, 40), attribution(rng, 3, 40)
    Xbad = X.copy()
    Xbad[1, 7] = [1, 1, 0, 0]
    with pytest.raises(ValueError, match="sequence 1, position 7"):
        C.collect_passing_subsequences(A, Xbad)
    with pytest.raises(ValueError, match="same shape"):
        C.collect_passing_subsequences(A[:, :30], X)
    with pytest.raises(ValueError, match="threshold"):
        C.collect_passing_subsequences(A, X, threshold=1.0)
    with pytest.raises(ValueError, match="kmer_prior"):
        C.calculate_kmer_entropy(X, ["ACGT"], np.ones(10) / 10, 3)
    with pytest.raises(ValueError, match="DNA letters"):
        C.calculate_kmer_entropy(X, ["ACGX"], np.ones(64) / 64, 3)


def test_entropy_formula(rng):
    seqs = ["".join(rng.choice(list("ACGT"), size=int(n))) for n in rng.integers(2, 40, size=30)]
    seqs += ["ACGNNTTA", "", "a"]
    q = rng.random(64)
    q /= q.sum()
    entropy, _, p, _, _ = C.calculate_kmer_entropy(None, seqs, q, 3)
    counts = np.zeros(64)
    for s in seqs:
        for j in range(len(s) - 2):
            km = s[j : j + 3].upper()
            if "N" not in km:
                counts[ref.kmer_index(["ACGT".index(c) for c in km], 3)] += 1
    np.testing.assert_allclose(p, counts / counts.sum(), rtol=0, atol=1e-15)
    m = p > 0
    assert entropy == np.round(np.sum(p[m] * np.log(p[m] / q[m])), 3)
    # a prior that is zero where p > 0 gives inf, as scipy's kl_div did
    q0 = q.copy()
    q0[np.argmax(p)] = 0
    assert np.isinf(C.calculate_kmer_entropy(None, seqs, q0, 3)[0])
    # and scipy's kl_div exactly, also for a prior that does not sum to 1
    special = pytest.importorskip("scipy.special")
    q2 = rng.random(64)
    assert C.calculate_kmer_entropy(None, seqs, q2, 3)[0] == np.round(np.sum(special.kl_div(p, q2)), 3)


def test_kmer_featurization(rng):
    obj = C.kmer_featurization(3)
    assert obj.k == 3 and obj.n == 64 and obj.letters == ["A", "C", "G", "T"]
    np.testing.assert_array_equal(obj.multiplyBy, [16, 4, 1])
    assert obj.kmer_numbering_for_one_kmer("ACG") == 6
    assert obj.kmer_numbering_for_one_kmer("TTT") == 63
    with pytest.raises(ValueError):
        obj.kmer_numbering_for_one_kmer("ANG")
    seqs = ["ACGTACGT", "aaaa", "AC", "TTTNTTT"]
    feats = obj.obtain_kmer_feature_for_a_list_of_sequences(seqs, write_number_of_occurrences=True)
    assert feats.shape == (4, 64)
    for s, f in zip(seqs, feats):
        exp = np.zeros(64)
        for j in range(len(s) - 2):
            km = s[j : j + 3].upper()
            if "N" not in km:
                exp[obj.kmer_numbering_for_one_kmer(km)] += 1
        np.testing.assert_array_equal(f, exp)
    fr = obj.obtain_kmer_feature_for_a_list_of_sequences(seqs)
    np.testing.assert_allclose(fr[0], feats[0] / 6)
    np.testing.assert_array_equal(fr[2], 0)
    np.testing.assert_array_equal(obj.obtain_kmer_feature_for_one_sequence("ACGTACGT", True), feats[0])


def test_dna_dict_permutation(rng):
    X = onehot(rng, 5, 80)
    perm = [2, 0, 3, 1]  # channel c holds letter "ACGT"[perm[c]]
    dna_dict = {c: "ACGT"[perm[c]] for c in range(4)}
    Xp = np.ascontiguousarray(X[..., perm])
    np.testing.assert_allclose(C.compute_kmer_spectra_testset(Xp, 3, dna_dict),
                               C.compute_kmer_spectra_testset(X, 3))
    with pytest.raises(ValueError, match="dna_dict"):
        C.compute_kmer_spectra_testset(X, 3, {0: "A", 1: "A", 2: "G", 3: "T"})


# --------------------------------------------------------------------------- method 2
def test_orthonormal_coordinates(rng):
    a = rng.normal(size=(3, 20, 4))
    x, y, z, w = np.moveaxis(a, -1, 0)
    out = C.orthonormal_coordinates(a.astype(np.float32))
    assert out.shape == (3, 20, 3) and out.dtype == np.float64
    exp = np.stack([(-x + y) / np.sqrt(2), np.sqrt(2 / 3) * (-x / 2 - y / 2),
                    np.sqrt(3 / 4) * (-x / 3 - y / 3 - z / 3 + w)], axis=-1)
    np.testing.assert_allclose(out, exp, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(C.orthonormal_coordinates(a), exp, rtol=1e-13, atol=1e-15)
    assert C.ortonormal_coordinates is C.orthonormal_coordinates


@pytest.mark.parametrize("k", [1, 2, 3, 6, 7])
def test_process_attribution_map(rng, k):
    A = attribution(rng, 4, 50, dtype=np.float64)
    out = C.process_attribution_map(A, k=k)
    e1, e2, e3 = ref.acme_coordinates(A, window=k)
    assert out.shape == (4, 50, 3)
    np.testing.assert_allclose(out, np.stack([e1, e2, e3], -1), rtol=1e-12, atol=1e-15)


def expected_points(A, window, top_fraction):
    e1, e2, e3 = (np.nan_to_num(v).ravel() for v in ref.acme_coordinates(A, window))
    r = np.sqrt(e1**2 + e2**2 + e3**2)
    m = int(top_fraction * A.size / 4)
    return int((r > np.sort(r)[-m]).sum())


def test_window6_matches_kattr_kld(rng):
    X, A = onehot(rng, 40, 200), attribution(rng, 40, 200)
    phi1, phi2, r, _, kld = method2(A, X, 6, 0.04, 0.1, 3)
    n_exp = expected_points(A, 6, 0.04)
    res = acme_fast.kattr_kld(A, window=6, quantile=0.96, preset="acme", bin_width=0.1, prior_bins=6)
    assert len(phi1[0]) == n_exp
    assert res.n_points == n_exp
    assert kld[0] == np.round(res.kld, 3)
    oracle = ref.kattr_acme(A, window=6, quantile=0.96, bin_width=0.1, prior_bins=6)
    assert oracle["n_points"] == n_exp
    assert kld[0] == np.round(oracle["kld"], 3)


def test_mask(rng):
    X, A = onehot(rng, 20, 100), attribution(rng, 20, 100)
    mask = (rng.random((20, 100)) < 0.7).astype(np.float32)
    maps = [C.process_attribution_map(A)]
    full = C.spherical_coordinates_process_2_trad(maps, X, 1, 0.1)
    masked = C.spherical_coordinates_process_2_trad(maps, X, mask, 0.1)
    # same cutoff (from the unmasked radius); masked positions drop out
    c = maps[0]
    r_all = np.sqrt((c**2).sum(-1)).ravel()
    kept = r_all > np.sort(r_all)[-int(0.1 * X.size / 4)]
    sel = mask.ravel()[kept] == 1
    assert 0 < sel.sum() < sel.size
    for a, b in zip(full, masked):
        np.testing.assert_array_equal(b[0], a[0][sel])
    # a mask per sequence broadcasts too
    per_seq = C.spherical_coordinates_process_2_trad(maps, X, np.ones((20, 1)), 0.1)
    np.testing.assert_array_equal(per_seq[2][0], full[2][0])
    with pytest.raises(ValueError, match="mask"):
        C.spherical_coordinates_process_2_trad(maps, X, np.ones((20, 100, 1)), 0.1)


def test_several_maps(rng):
    X = onehot(rng, 15, 120)
    As = [attribution(rng, 15, 120) for _ in range(3)]
    maps = [C.process_attribution_map(A) for A in As]
    phi1, phi2, r = C.spherical_coordinates_process_2_trad(maps, X, 1, radius_count_cutoff=0.1)
    assert len(phi1) == len(phi2) == len(r) == 3
    _, bl, bv, nb, _ = C.initialize_integration_2(0.1)
    klds = C.calculate_entropy_2(phi1, phi2, r, nb, bl, bv, 3)
    assert len(klds) == 3
    for A, kl in zip(As, klds):
        assert kl == method2(A, X, 3, 0.1, 0.1, 3)[4][0]
        oracle = ref.kattr_acme(A, window=3, quantile=0.9, bin_width=0.1, prior_bins=6)
        assert kl == np.round(oracle["kld"], 3)


def test_zero_sequence_and_edge_counts(rng):
    X, A = onehot(rng, 10, 80), attribution(rng, 10, 80, dtype=np.float64)
    A[2] = 0  # NaN after normalisation, as in the reference; becomes 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps = [C.process_attribution_map(A)]
        assert np.isnan(maps[0][2]).all()
        phi1, phi2, r = C.spherical_coordinates_process_2_trad(maps, X, 1, 0.05)
    assert len(phi1[0]) == expected_points(A, 3, 0.05)
    assert np.all((phi1[0] >= 0) & (phi1[0] <= C.PI)) and np.all((phi2[0] >= 0) & (phi2[0] <= np.pi))
    # radius_count == 0 keeps every point above the smallest radius, as sort(r)[-0] did
    rr = np.nan_to_num(np.sqrt((maps[0] ** 2).sum(-1))).ravel()
    assert len(C.spherical_coordinates_process_2_trad(maps, X, 1, 0.0)[0][0]) == int((rr > rr.min()).sum())
    with pytest.raises(ValueError, match="radius_count_cutoff"):
        C.spherical_coordinates_process_2_trad(maps, X, 1, 1.5)
    # no points: 0.0 as in the reference
    assert C.calculate_entropy_2([np.array([])], [np.array([])], [np.array([])], 31, 0.1, 0.01, 3) == [0.0]


def test_initialize_integration_2():
    assert C.initialize_integration_2(0.1) == (3.1416, 0.1, 0.1 * 0.1, 31, 15)
    assert C.initialize_integration_2(0.2) == (3.1416, 0.2, 0.2 * 0.2, 15, 7)
    with pytest.raises(ValueError):
        C.initialize_integration_2(0)


def test_calculate_entropy_2_oracle(rng):
    """Random angles and radii through the published binning and prior rules, written out."""
    for n_bins, bw, R in itertools.product([5, 15, 31], [0.1, 0.2], [1, 2, 3]):
        n = 300
        p1 = rng.uniform(0, C.PI, n)
        p2 = rng.uniform(0, C.PI, n)
        r = rng.uniform(0, 1, n)
        hist = np.zeros((n_bins, n_bins))
        for a, b, w in zip(p1, p2, r):
            hist[min(int(a / bw), n_bins - 1), min(int(b / bw), n_bins - 1)] += w * w
        P = hist / hist.sum()
        kl = 0.0
        for i in range(1, n_bins - 1):
            for j in range(1, n_bins - 1):
                if P[i, j] > 0:
                    acc, cnt = 0.0, 0
                    for a in range(-R, R):
                        for b in range(-R, R):
                            if 0 < i + a < n_bins and 0 < j + b < n_bins:
                                acc += P[i + a, j + b]
                                cnt += 1
                    if acc > 0:
                        kl += P[i, j] * np.log(P[i, j] * cnt / acc)
        got = C.calculate_entropy_2([p1], [list(p2)], [r], n_bins, bw, bw * bw, R)
        assert got == [np.round(kl, 3)]
