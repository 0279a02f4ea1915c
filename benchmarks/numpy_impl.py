"""Vectorised numpy implementations of the acme_fast metrics (SPEC sections 2-4).

These are the "what a careful user would write with numpy" baselines the benchmarks
time the C++ kernels against. They are whole-array numpy (no Python loop over
sequences or positions), compute in float64 like the kernels, and follow
/work/shared/SPEC.md. They do not validate their inputs (one-hot check, finiteness):
the kernels do that in the same pass, so the comparison slightly favours numpy.

Arrays are NLC: (N, L, 4). ``x`` may be uint8/bool or float one-hot.
Only the defaults used by the benchmarks are implemented (no user prior, weight r**2).
"""

from __future__ import annotations

import math

import numpy as np

PI_ACME = 3.1416
_S2, _S6, _S12 = math.sqrt(2.0), math.sqrt(6.0), math.sqrt(12.0)


# ----------------------------------------------------------------------------- helpers
def _channels(a):
    """Gauge-corrected float64 channels (x, y, z, w), each (N, L) contiguous."""
    a = np.asarray(a)
    c = [a[..., j].astype(np.float64) for j in range(4)]
    m = (c[0] + c[1] + c[2] + c[3]) / 4.0
    for j in range(4):
        c[j] -= m
    return c


def _norm(c):
    return np.sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2] + c[3] * c[3])


def _codes(x):
    """(N, L) int8 base codes A=0 C=1 G=2 T=3, and a bool mask of unknown (all-zero) rows."""
    x = np.asarray(x)
    if x.dtype == np.bool_:
        x = x.view(np.uint8)
    x0, x1, x2, x3 = (x[..., j] for j in range(4))
    codes = (x1 + 2 * x2 + 3 * x3).astype(np.int8)
    unknown = (x0 + x1 + x2 + x3) == 0
    return codes, unknown


def _kld(p, q):
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))


# ----------------------------------------------------------------------------- k-mer KLD
def kmer_intervals(attr, *, k=6, quantile=0.9, buffer=2):
    """Kept intervals (seq, begin, end inclusive), sorted by (seq, begin) (SPEC 2.1-2.5)."""
    s = _norm(_channels(attr))
    N, L = s.shape
    cut = np.quantile(s, quantile, axis=1, keepdims=True)
    m = np.zeros((N, L + 2), dtype=np.int8)
    m[:, 1:-1] = s > cut
    d = np.diff(m, axis=1)  # (N, L + 1): +1 at a run's first position, -1 one past its last
    seq, b = np.nonzero(d == 1)  # row-major order: runs sorted by (seq, begin)
    _, e = np.nonzero(d == -1)
    e = np.minimum(e - 1 + buffer, L - 1)  # inclusive end, extended on the 3' end
    if seq.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    new = np.ones(seq.size, dtype=bool)
    new[1:] = (seq[1:] != seq[:-1]) | (b[1:] > e[:-1])
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, seq.size - 1]
    gs, gb, ge = seq[first], b[first], e[last]  # extended ends increase within a sequence
    keep = ge - gb + 1 >= k
    return gs[keep], gb[keep], ge[keep]


def kmer_index(x, k):
    """(N, L-k+1) base-4 k-mer index (first base most significant) and validity (no N)."""
    codes, unknown = _codes(x)
    N, L = codes.shape
    W = L - k + 1
    idx = np.zeros((N, W), dtype=np.int32)
    for j in range(k):
        idx <<= 2
        idx += codes[:, j : j + W]
    cu = np.zeros((N, L + 1), dtype=np.int32)
    np.cumsum(unknown, axis=1, out=cu[:, 1:])
    valid = cu[:, k:] == cu[:, :W]
    return idx, valid


def kmer_kld(x, attr, *, k=6, quantile=0.9, buffer=2):
    """k-mer KLD (SPEC section 2) with the prior computed from ``x``.

    Returns dict(kld, counts, prior, n_intervals, n_nucleotides).
    """
    seq, b, e = kmer_intervals(attr, k=k, quantile=quantile, buffer=buffer)
    idx, valid = kmer_index(x, k)
    N, W = idx.shape
    # k-mer starts covered by a kept interval: [b, e - k + 1]; intervals are disjoint.
    stride = W + 1
    n = N * stride
    cover = np.bincount(seq * stride + b, minlength=n) - np.bincount(seq * stride + e - k + 2, minlength=n)
    cover = np.cumsum(cover.reshape(N, stride)[:, :W], axis=1) > 0
    nk = 4**k
    prior_counts = np.bincount(idx[valid], minlength=nk)
    counts = np.bincount(idx[valid & cover], minlength=nk)
    q = prior_counts / prior_counts.sum()
    p = counts / counts.sum() if counts.sum() else counts.astype(np.float64)
    kld = _kld(p, q) if counts.sum() else float("nan")
    return dict(kld=kld, counts=counts, prior=q, n_intervals=int(seq.size),
                n_nucleotides=int((e - b + 1).sum()))


# ----------------------------------------------------------------------------- k-attr-mean KLD
def _normalised_channels(attr):
    c = _channels(attr)
    tot = _norm(c).sum(axis=1, keepdims=True)
    inv = np.divide(1.0, tot, out=np.zeros_like(tot), where=tot > 0)
    for j in range(4):
        c[j] *= inv
    return c


def _box(P, lo, hi, periodic_rows):
    """Sum of P[i + a, j + b] over a, b in [lo, hi]: rows periodic or zero-padded, columns zero-padded."""
    n = P.shape[0]
    if periodic_rows:
        R = sum(np.roll(P, -a, axis=0) for a in range(lo, hi + 1))
    else:
        Pp = np.pad(P, ((-lo, hi), (0, 0)))
        R = sum(Pp[a - lo : a - lo + n] for a in range(lo, hi + 1))
    Pp = np.pad(R, ((0, 0), (-lo, hi)))
    return sum(Pp[:, b - lo : b - lo + n] for b in range(lo, hi + 1))


def kattr_kld_paper(attr, *, window=3, quantile=0.9, bin_width=0.1, prior_bins=5):
    """k-attr-mean KLD, preset "paper", per-sequence threshold, weight r**2 (SPEC 3)."""
    x, y, z, w = _normalised_channels(attr)
    L = x.shape[1]
    h = window // 2
    P_ = L - 2 * h

    def wmean(c):
        acc = c[:, 0:P_].copy()
        for t in range(1, window):
            acc += c[:, t : t + P_]
        return acc / window

    x, y, z, w = wmean(x), wmean(y), wmean(z), wmean(w)
    e1 = (-x + y) / _S2
    e2 = (-x - y + 2.0 * z) / _S6
    e3 = (-x - y - z + 3.0 * w) / _S12
    del x, y, z, w
    r = np.sqrt(e1 * e1 + e2 * e2 + e3 * e3)
    keep = r > np.quantile(r, quantile, axis=1, keepdims=True)
    e1, e2, e3, r = e1[keep], e2[keep], e3[keep], r[keep]
    phi = np.arctan2(e3, e2)
    phi[phi <= -np.pi] = np.pi
    phi_p = phi / 2 + np.pi / 2
    theta = np.arccos(np.clip(e1 / r, -1.0, 1.0))
    n = int(np.pi / bin_width)
    bi = np.clip(np.floor(phi_p / bin_width).astype(np.int64), 0, n - 1)
    bj = np.clip(np.floor(theta / bin_width).astype(np.int64), 0, n - 1)
    hist = np.bincount(bi * n + bj, weights=r * r, minlength=n * n).reshape(n, n)
    P = hist / hist.sum()
    lo, hi = -(prior_bins // 2), (prior_bins - 1) // 2
    cnt = _box(np.ones((n, n)), lo, hi, True)  # in-range bins per box
    prior = _box(P, lo, hi, True) / cnt
    return dict(kld=_kld(P, prior), mass=P, prior=prior, n_points=int(keep.sum()))


def kattr_kld_acme(attr, *, window=3, quantile=0.9, bin_width=0.1, prior_bins=6):
    """k-attr-mean KLD, preset "acme" (the published code, global threshold) (SPEC 3)."""
    x, y, z, w = _normalised_channels(attr)

    def wsum(c):
        acc = c.copy()
        for t in range(1, window):
            acc += np.roll(c, -t, axis=1)
        return acc

    x, y, z, w = wsum(x), wsum(y), wsum(z), wsum(w)
    e1 = np.nan_to_num((-x + y) / _S2).ravel()
    e2 = np.nan_to_num((-x - y) / _S6).ravel()
    e3 = np.nan_to_num((-x - y - z + 3.0 * w) / _S12).ravel()
    del x, y, z, w
    r = np.nan_to_num(np.sqrt(e1 * e1 + e2 * e2 + e3 * e3))
    m = int(math.floor(r.size * (1 - quantile) + 1e-9))
    if m < 1:
        m = r.size  # the published sort(r)[-0]
    cutoff = np.partition(r, r.size - m)[r.size - m]
    keep = r > cutoff
    xp, yp, zp, r = e2[keep], e3[keep], e1[keep], r[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        at = np.arctan(yp / xp)
    phi = np.where(xp > 0, at, np.where(yp >= 0, at + PI_ACME, at - PI_ACME))
    phi = np.where(xp == 0, PI_ACME / 2, phi)
    phi_p = phi / 2 + PI_ACME / 2
    theta = np.arccos(np.clip(zp / r, -1.0, 1.0))
    n = int(PI_ACME / bin_width)
    bi = np.clip((phi_p / bin_width).astype(np.int64), 0, n - 1)
    bj = np.clip((theta / bin_width).astype(np.int64), 0, n - 1)
    hist = np.bincount(bi * n + bj, weights=r * r, minlength=n * n).reshape(n, n)
    P = hist / hist.sum()
    lo, hi = -(prior_bins // 2), (prior_bins - 1) // 2
    ind = np.ones((n, n))
    ind[0, :] = 0
    ind[:, 0] = 0
    cnt = _box(ind, lo, hi, False)
    prior = _box(P * ind, lo, hi, False) / np.where(cnt > 0, cnt, 1)
    interior = np.zeros((n, n), dtype=bool)
    interior[1 : n - 1, 1 : n - 1] = True
    sel = interior & (P > 0) & (prior > 0)
    kld = float(np.sum(P[sel] * np.log(P[sel] / prior[sel])))
    prior = np.where(interior, prior, np.nan)
    return dict(kld=kld, mass=P, prior=prior, n_points=int(keep.sum()))


# ----------------------------------------------------------------------------- ground truth
def groundtruth_scores(x, attr, x_model, *, threshold=0.1, top_k=10):
    """Per-sequence AUROC, AUPRC (scikit-learn's curves), signal, noise_topk, SNR (SPEC 4)."""
    attr = np.asarray(attr)
    dt = attr.dtype
    codes, _ = _codes(x)
    xs = np.asarray(x)
    # grad x input: one-hot, so the channel sum is the attribution of the present base (or 0).
    s = np.take_along_axis(attr, codes[..., None].astype(np.intp), axis=-1)[..., 0]
    s = np.where(xs.any(axis=-1), s, dt.type(0))
    m = np.asarray(x_model, dtype=np.float64)
    info = 2.0 + (m * np.log2(m + 1e-10)).sum(axis=-1)
    N, L = s.shape
    sig = info > threshold
    bg = info == info.min(axis=1, keepdims=True)
    ev = sig | bg
    # Curves: evaluated positions sorted by score, descending; others last (-inf).
    key = np.where(ev, s.astype(np.float64), -np.inf)
    order = np.argsort(-key, axis=1, kind="stable")
    ks = np.take_along_axis(key, order, axis=1)
    lab = np.take_along_axis(sig, order, axis=1)
    evs = np.take_along_axis(ev, order, axis=1)
    tps = np.cumsum(lab, axis=1, dtype=np.float64)
    fps = np.cumsum(evs & ~lab, axis=1, dtype=np.float64)
    # A threshold is the last position of a run of equal scores; give every position
    # the (fps, tps) of its run's threshold so ties form one trapezoid.
    end = np.ones((N, L), dtype=bool)
    end[:, :-1] = ks[:, :-1] != ks[:, 1:]
    j = np.where(end, np.arange(L), L)
    j = np.minimum.accumulate(j[:, ::-1], axis=1)[:, ::-1]
    tps = np.take_along_axis(tps, j, axis=1)
    fps = np.take_along_axis(fps, j, axis=1)
    P = tps[:, -1:]
    Nn = fps[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.concatenate([np.zeros((N, 1)), tps / P], axis=1)
        fpr = np.concatenate([np.zeros((N, 1)), fps / Nn], axis=1)
        auroc = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2.0, axis=1)
        rec = tpr
        prec = np.concatenate([np.ones((N, 1)), tps / (tps + fps)], axis=1)
        auprc = np.sum(np.diff(rec, axis=1) * (prec[:, 1:] + prec[:, :-1]) / 2.0, axis=1)
    one_class = (P[:, 0] == 0) | (Nn[:, 0] == 0)
    auroc[one_class] = np.nan
    auprc[one_class] = np.nan
    # Signal / noise in the attribution's precision.
    noise_mask = bg & (s > 0)
    n_noise = noise_mask.sum(axis=1)
    ok = n_noise >= top_k
    n_sig = sig.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        signal = (np.where(sig, s, 0).sum(axis=1, dtype=np.float64) / n_sig).astype(dt)
    noise = np.where(noise_mask, s, -np.inf).astype(dt)
    kk = min(top_k, L)
    top = np.partition(noise, L - kk, axis=1)[:, L - kk :]
    with np.errstate(invalid="ignore"):
        noise_topk = top.astype(np.float64).mean(axis=1).astype(dt)
    signal = np.where(ok, signal, dt.type(0))
    noise_topk = np.where(ok, noise_topk, dt.type(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.nan_to_num(signal / noise_topk, nan=0.0, posinf=0.0, neginf=0.0).astype(dt)
    snr = np.where(ok, snr, dt.type(0))
    return dict(auroc=auroc, auprc=auprc, signal=signal, noise_topk=noise_topk, snr=snr)
