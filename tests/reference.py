"""Slow, obvious numpy implementations of SPEC.md, used as the oracle in tests.

Everything here follows ``../shared/SPEC.md`` line by line, with Python loops
where that makes the rule easier to read. It is deliberately independent of
``acme_fast`` (no imports from the package) so that a bug in the package cannot
hide in its own oracle.

Arrays are NLC: (N, L, 4).
"""

from __future__ import annotations

import numpy as np

PI_ACME = 3.1416


# --------------------------------------------------------------------------
# section 1
def gauge(attr):
    a = np.asarray(attr, dtype=np.float64)
    return a - a.mean(axis=-1, keepdims=True)


# --------------------------------------------------------------------------
# section 2
def kmer_index(row_codes, k):
    """Base-4 index of a k-mer of codes (0..3), first base most significant."""
    v = 0
    for c in row_codes:
        v = v * 4 + int(c)
    return v


def codes_of(x):
    """(N, L) int codes, -1 for an all-zero (N) row."""
    x = np.asarray(x)
    codes = np.argmax(x, axis=-1).astype(np.int64)
    codes[x.sum(axis=-1) == 0] = -1
    return codes


def kmer_counts_of(codes_row, b, e, k, counts):
    for start in range(b, e - k + 2):
        kmer = codes_row[start : start + k]
        if np.any(kmer < 0):
            continue
        counts[kmer_index(kmer, k)] += 1


def kmer_prior(x, k):
    codes = codes_of(x)
    n, L = codes.shape
    counts = np.zeros(4**k, dtype=np.int64)
    for i in range(n):
        kmer_counts_of(codes[i], 0, L - 1, k, counts)
    return counts / counts.sum()


def attributed_intervals(score_row, quantile, buffer, k):
    L = len(score_row)
    c = np.quantile(score_row, quantile)
    pos = np.where(score_row > c)[0]
    runs = []
    for p in pos:
        if runs and runs[-1][1] == p - 1:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    ext = [[b, min(e + buffer, L - 1)] for b, e in runs]
    merged = []
    for b, e in ext:
        if merged and b <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([b, e])
    return [(b, e) for b, e in merged if e - b + 1 >= k]


def kmer_kld(x, attr, k=6, quantile=0.9, buffer=2, prior=None, pseudocount=0.0):
    a = gauge(attr)
    s = np.sqrt((a**2).sum(-1))
    codes = codes_of(x)
    n, L = codes.shape
    counts = np.zeros(4**k, dtype=np.int64)
    n_int = 0
    n_nuc = 0
    for i in range(n):
        for b, e in attributed_intervals(s[i], quantile, buffer, k):
            n_int += 1
            n_nuc += e - b + 1
            kmer_counts_of(codes[i], b, e, k, counts)
    if prior is None:
        prior = kmer_prior(x, k)
    q = np.asarray(prior, dtype=np.float64)
    if pseudocount > 0:
        q = (q + pseudocount) / (q + pseudocount).sum()
    total = counts.sum()
    kld = 0.0
    if total > 0:
        p = counts / total
        for j in range(len(p)):
            if p[j] > 0:
                kld += p[j] * np.log(p[j] / q[j])
    return dict(kld=kld, counts=counts, prior=q, n_intervals=n_int, n_nucleotides=n_nuc)


# --------------------------------------------------------------------------
# section 3
def normalise(a):
    tot = np.sqrt((a**2).sum(-1)).sum(-1, keepdims=True)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(tot > 0, a / np.where(tot > 0, tot, 1.0), 0.0)
    return out


def kattr_paper(attr, window=3, quantile=0.9, threshold_scope="sequence",
                bin_width=0.1, prior_bins=5, weight="r2"):
    an = normalise(gauge(attr))
    n, L, _ = an.shape
    h = window // 2
    pts = []  # (seq, e1, e2, e3)
    for i in range(n):
        for l in range(h, L - h):
            w = an[i, l - h : l + h + 1].mean(axis=0)
            x, y, z, ww = w
            e1 = (-x + y) / np.sqrt(2)
            e2 = (-x - y + 2 * z) / np.sqrt(6)
            e3 = (-x - y - z + 3 * ww) / np.sqrt(12)
            pts.append((i, e1, e2, e3))
    pts = np.array(pts).reshape(-1, 4)
    r = np.sqrt(pts[:, 1] ** 2 + pts[:, 2] ** 2 + pts[:, 3] ** 2)
    cut = np.zeros(len(r))  # the cutoff each point was compared with
    if threshold_scope == "sequence":
        for i in range(n):
            m = pts[:, 0] == i
            cut[m] = np.quantile(r[m], quantile)
    else:
        cut[:] = global_cutoff(r, quantile)
    keep = r > cut
    e1, e2, e3, rk = pts[keep, 1], pts[keep, 2], pts[keep, 3], r[keep]
    xp, yp, zp = e2, e3, e1
    phi = np.arctan2(yp, xp)
    phi = np.where(phi == -np.pi, np.pi, phi)  # (-pi, pi]
    phi_p = phi / 2 + np.pi / 2
    theta = np.arccos(np.clip(zp / rk, -1, 1))
    nb = int(np.pi / bin_width)
    hist = np.zeros((nb, nb))
    wts = {"r2": rk**2, "none": np.ones_like(rk), "inv_r2": rk ** -2.0}[weight]
    for a_, t_, w_ in zip(phi_p, theta, wts):
        hist[min(int(np.floor(a_ / bin_width)), nb - 1), min(int(np.floor(t_ / bin_width)), nb - 1)] += w_
    P = hist / hist.sum() if hist.sum() > 0 else hist
    lo, hi = -(prior_bins // 2), (prior_bins - 1) // 2
    prior = np.zeros_like(P)
    for i in range(nb):
        for j in range(nb):
            acc, cnt = 0.0, 0
            for a in range(lo, hi + 1):
                for b in range(lo, hi + 1):
                    jj = j + b
                    if 0 <= jj < nb:
                        acc += P[(i + a) % nb, jj]
                        cnt += 1
            prior[i, j] = acc / cnt
    kld = 0.0
    for i in range(nb):
        for j in range(nb):
            if P[i, j] > 0:
                kld += P[i, j] * np.log(P[i, j] / prior[i, j])
    return dict(kld=kld, mass=P, prior=prior, n_points=int(keep.sum()),
                r=r, cut=cut, kept=dict(x=xp, y=yp, z=zp, r=rk, phi_p=phi_p, theta=theta))


def global_cutoff(r, quantile, acme=False):
    """Cutoff of the global rank rule: the m-th largest radius.

    When m < 1 the paper preset keeps nothing (+inf); the published code (acme)
    evaluates ``sort(r)[-0]``, the smallest radius.
    """
    m = int(np.floor(r.size * (1 - quantile) + 1e-9))
    if m < 1:
        return np.sort(r)[0] if acme else np.inf
    return np.sort(r)[-m]


def acme_coordinates(attr, window=3):
    an = normalise(gauge(attr))
    wsum = sum(np.roll(an, -t, axis=1) for t in range(window))
    x, y, z, w = (wsum[..., c] for c in range(4))
    e1 = (-x + y) / np.sqrt(2)
    e2 = (-x - y) / np.sqrt(6)
    e3 = (-x - y - z + 3 * w) / np.sqrt(12)
    return e1, e2, e3


def kattr_acme(attr, window=3, quantile=0.9, bin_width=0.1, prior_bins=6):
    e1, e2, e3 = (np.nan_to_num(v).ravel() for v in acme_coordinates(attr, window))
    r = np.nan_to_num(np.sqrt(e1**2 + e2**2 + e3**2))
    cut = global_cutoff(r, quantile, acme=True)
    keep = r > cut
    xp, yp, zp, rk = e2[keep], e3[keep], e1[keep], r[keep]
    PI = PI_ACME
    phis = []
    for xv, yv in zip(xp, yp):
        if xv > 0:
            ph = np.arctan(yv / xv)
        elif xv < 0 and yv >= 0:
            ph = np.arctan(yv / xv) + PI
        elif xv < 0:
            ph = np.arctan(yv / xv) - PI
        else:
            ph = PI / 2
        phis.append(ph / 2 + PI / 2)
    theta = np.arccos(np.clip(zp / rk, -1, 1))
    nb = int(PI / bin_width)
    hist = np.zeros((nb, nb))
    for a_, t_, rv in zip(phis, theta, rk):
        hist[min(int(a_ / bin_width), nb - 1), min(int(t_ / bin_width), nb - 1)] += rv * rv
    P = hist / hist.sum() if hist.sum() > 0 else hist
    lo, hi = -(prior_bins // 2), (prior_bins - 1) // 2
    prior = np.zeros_like(P)
    kld = 0.0
    for i in range(1, nb - 1):
        for j in range(1, nb - 1):
            acc, cnt = 0.0, 0
            for a in range(lo, hi + 1):
                for b in range(lo, hi + 1):
                    if 0 < i + a < nb and 0 < j + b < nb:
                        acc += P[i + a, j + b]
                        cnt += 1
            prior[i, j] = acc / cnt
            if P[i, j] > 0 and prior[i, j] > 0:
                kld += P[i, j] * np.log(P[i, j] / prior[i, j])
    return dict(kld=kld, mass=P, prior=prior, n_points=int(keep.sum()),
                r=r, cut=np.full(r.shape, cut),
                kept=dict(x=xp, y=yp, z=zp, r=rk, phi_p=np.array(phis), theta=theta))


# --------------------------------------------------------------------------
# section 4 (scikit-learn's curves, written out)
def _binary_clf_curve(y, s):
    order = np.argsort(s, kind="mergesort")[::-1]
    s, y = s[order], y[order]
    distinct = np.where(np.diff(s))[0]
    thr = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y)[thr]
    fps = 1 + thr - tps
    return fps, tps


def roc_auc(y, s):
    if y.min() == y.max():
        return np.nan
    fps, tps = _binary_clf_curve(y, s)
    fpr = np.r_[0, fps] / fps[-1]
    tpr = np.r_[0, tps] / tps[-1]
    return float(np.trapezoid(tpr, fpr))


def pr_auc(y, s):
    if y.min() == y.max():
        return np.nan
    fps, tps = _binary_clf_curve(y, s)
    prec = tps / (tps + fps)
    rec = tps / tps[-1]
    prec = np.r_[prec[::-1], 1]
    rec = np.r_[rec[::-1], 0]
    return float(-np.trapezoid(prec, rec))


def groundtruth(x, attr, x_model, threshold=0.1, top_k=10):
    """Per-sequence metrics. Scores keep the attribution dtype (as tfomics did)."""
    dt = np.asarray(attr).dtype
    s = (np.asarray(x).astype(dt) * np.asarray(attr)).sum(-1)
    m = np.asarray(x_model, dtype=np.float64)
    info = 2 + np.sum(m * np.log2(m + 1e-10), axis=-1)
    out = {k: [] for k in ("auroc", "auprc", "signal", "noise_topk", "snr")}
    for i in range(len(s)):
        gi, sc = info[i], s[i]
        sig = gi > threshold
        bg = gi == gi.min()
        idx = np.where(sig | bg)[0]
        lab = sig[idx].astype(np.float64)
        out["auroc"].append(roc_auc(lab, sc[idx]))
        out["auprc"].append(pr_auc(lab, sc[idx]))
        noise = sc[bg & (sc > 0)]
        if len(noise) < top_k:
            out["signal"].append(dt.type(0))
            out["noise_topk"].append(dt.type(0))
        else:
            out["signal"].append(np.mean(sc[sig]))
            out["noise_topk"].append(np.mean(np.sort(noise)[::-1][:top_k]))
    res = {k: np.array(v) for k, v in out.items()}
    res["signal"] = res["signal"].astype(dt)
    res["noise_topk"] = res["noise_topk"].astype(dt)
    with np.errstate(invalid="ignore", divide="ignore"):
        res["snr"] = np.nan_to_num(res["signal"] / res["noise_topk"], nan=0.0, posinf=0.0, neginf=0.0)
    return res
