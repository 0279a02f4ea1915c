"""What the consistent models learned: motifs from the consistency statistics.

Both metrics of the package rest on intermediate representations that already say *what* is
consistent (Majdandzic, Rajesh et al. 2022, Fig. 2d-f): the attributed k-mers that are most
enriched over the prior (k-mer method), and the dense clusters of the angular embedding of
attribution windows (k-attr method). :func:`find_motifs` turns each into motifs:

k-mer method
    The attributed intervals are those of :func:`~acme_fast.kmer_kld` (same ``k``,
    ``quantile``, ``buffer``). The k-mers with the largest contribution ``p ln(p / q)`` to the
    k-mer KLD, enriched at least ``min_fold`` times over the prior and seen at least
    ``min_count`` times, are grouped with their reverse complements and with the k-mers that
    overlap them shifted by one base (an exact overlap of ``k - 1`` bases, as consecutive
    k-mers of one site do; chains of them span longer motifs); each group is aligned by those
    offsets. Every occurrence of a group's k-mers inside an attributed interval is a seqlet
    (sequence, start, strand) in the group's frame.

k-attr method
    The windows and angles are those of :func:`~acme_fast.kattr_kld` (same ``window``,
    ``bin_width``, preset), thresholded per sequence at ``quantile``. Bins whose mass exceeds
    ``min_fold`` times the local prior (the boxcar of the metric) form connected clusters
    (periodic in phi'); the densest ones (most mass) are kept. The kept windows whose points
    fall in a cluster (one per run of adjacent positions: the strongest) are seqlets; their
    gauge-corrected attributions are aligned to the cluster's mean over shifts of up to
    ``max_shift`` and trimmed to the columns that carry at least ``trim`` of the peak.

Every motif has its seqlets, a PWM (base frequencies over the seqlets, oriented), a CWM (mean
gauge-corrected attribution over the seqlets, oriented), its support (number of seqlets) and the
method(s) that found it. Duplicates are merged: motifs whose PWMs match (similarity >=
``merge_similarity``, either strand, as :func:`acme_fast.synthetic.motif_similarity` scores it),
or whose seqlets mostly (half or more) sit on another motif's seqlets while their PWMs are alike
(similarity >= 0.7: a fragment of it, or the same sites seen by the other method); a k-mer
motif is kept over a k-attr one, then the one with more support, with the union of methods.
:func:`match_motifs` matches motifs against JASPAR (pyjaspar's offline databases) or a MEME file
with Tomtom (the ``memelite`` package).

Diversity (the paper's limitation: a model that learns one motif well can out-score one that
learns many): ``n_motifs`` (motifs with at least ``min_support`` seqlets) and ``motif_entropy``
(Shannon entropy, nats, of their support fractions; ``exp`` of it is the effective number).

Both passes are streamed: :class:`MotifAccumulator` reads the data twice (pass 0: the k-mer
counts and the angular histogram, with the metrics' own accumulators; pass 1: the seqlets),
batch by batch, so it works on files larger than memory and inside :func:`~acme_fast.score_model`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _core
from ._validate import as_attr, as_onehot, check_int, check_layout, check_preset, check_real, raise_kernel_error
from .kattr import KattrAccumulator, gauge_correct
from .kmer import KmerAccumulator

__all__ = ["Motif", "MotifResult", "MotifAccumulator", "find_motifs", "find_motifs_in_files", "match_motifs",
           "jaspar_motifs",
           "read_meme", "write_meme", "diversity"]

_COMP = np.array([3, 2, 1, 0])  # A<->T, C<->G: a channel index's complement


# ------------------------------------------------------------------------------ containers
@dataclass
class Motif:
    """One motif.

    Attributes
    ----------
    name : str
        ``"motif_0"``, ``"motif_1"``, ... in order of support.
    methods : tuple of str
        ``("kmer",)``, ``("kattr",)`` or both.
    pwm : ndarray, shape (W, 4), float64
        Base frequencies of the seqlets (rows sum to 1; A, C, G, T).
    cwm : ndarray, shape (W, 4), float64
        Mean gauge-corrected attribution of the seqlets.
    support : int
        Number of seqlets.
    seqlets : ndarray, structured (``seq``, ``start``, ``strand``)
        Sequence index, leftmost position on the forward strand, strand (+1 / -1). At most
        ``max_seqlets`` are listed; ``support`` counts them all.
    score : float
        k-mer method: the motif's k-mers' share of the k-mer KLD; k-attr method: the cluster's
        share of the angular mass.
    consensus : str
        The most frequent base per column (lower case where it has under half of the seqlets).
    matches : list of dict
        Filled by :func:`match_motifs`: ``id``, ``name``, ``p_value``, ``q_value``, ``offset``,
        ``strand``, best first.
    merged : list of str
        Motifs found by the other method (or another cluster) that were merged into this one.
    """

    name: str
    methods: tuple
    pwm: np.ndarray = field(repr=False)
    cwm: np.ndarray = field(repr=False)
    support: int
    seqlets: np.ndarray = field(repr=False)
    score: float
    matches: list = field(default_factory=list, repr=False)
    merged: list = field(default_factory=list, repr=False)

    @property
    def width(self) -> int:
        return int(self.pwm.shape[0])

    @property
    def consensus(self) -> str:
        out = []
        for row in self.pwm:
            j = int(np.argmax(row))
            out.append("ACGT"[j] if row[j] >= 0.5 else "acgt"[j])
        return "".join(out)

    def reverse_complement(self) -> Motif:
        """The same motif on the other strand."""
        s = self.seqlets.copy()
        s["strand"] = -s["strand"]
        return Motif(self.name, self.methods, self.pwm[::-1, ::-1].copy(), self.cwm[::-1, ::-1].copy(), self.support,
                     s, self.score, list(self.matches), list(self.merged))


_SEQLET = np.dtype([("seq", np.int64), ("start", np.int64), ("strand", np.int8)])


@dataclass
class MotifResult:
    """Motifs of one attribution set, strongest first, with the diversity statistics."""

    motifs: list
    n_sequences: int
    params: dict = field(repr=False)

    def __len__(self) -> int:
        return len(self.motifs)

    def __iter__(self):
        return iter(self.motifs)

    def __getitem__(self, i: int) -> Motif:
        return self.motifs[i]

    @property
    def n_motifs(self) -> int:
        """Distinct consistent motifs (support >= min_support)."""
        return diversity(self)["n_motifs"]

    @property
    def entropy(self) -> float:
        """Shannon entropy (nats) of the support fractions of those motifs."""
        return diversity(self)["motif_entropy"]

    def to_frame(self):
        """One row per motif: name, methods, support, width, consensus, score, best JASPAR match."""
        import pandas as pd

        rows = []
        for m in self.motifs:
            best = m.matches[0] if m.matches else {}
            rows.append({"motif": m.name, "methods": "+".join(m.methods), "support": m.support, "width": m.width,
                         "consensus": m.consensus, "score": m.score, "merged": ";".join(m.merged),
                         "match": best.get("name"), "match_id": best.get("id"), "match_p": best.get("p_value"),
                         "match_q": best.get("q_value"), "match_strand": best.get("strand"),
                         "matches": "; ".join(f"{d['name']} ({d['id']}) q={d['q_value']:.2g}" for d in m.matches)})
        cols = ["motif", "methods", "support", "width", "consensus", "score", "merged", "match", "match_id",
                "match_p", "match_q", "match_strand", "matches"]
        return pd.DataFrame(rows, columns=cols)

    def seqlet_frame(self):
        """One row per listed seqlet: motif, seq, start, end (exclusive), strand."""
        import pandas as pd

        parts = []
        for m in self.motifs:
            s = m.seqlets
            parts.append(pd.DataFrame({"motif": m.name, "seq": s["seq"], "start": s["start"],
                                       "end": s["start"] + m.width, "strand": np.where(s["strand"] > 0, "+", "-")}))
        if not parts:
            return pd.DataFrame(columns=["motif", "seq", "start", "end", "strand"])
        return pd.concat(parts, ignore_index=True)


def diversity(result: MotifResult, min_support: int | None = None) -> dict[str, float]:
    """``n_motifs`` (support >= min_support), ``motif_entropy`` (nats over their support fractions)
    and ``motif_effective_number`` (exp of the entropy)."""
    ms = result.params.get("min_support", 20) if min_support is None else min_support
    sup = np.array([m.support for m in result.motifs if m.support >= ms], dtype=np.float64)
    if sup.size == 0:
        return {"n_motifs": 0, "motif_entropy": 0.0, "motif_effective_number": 0.0}
    f = sup / sup.sum()
    h = float(-(f * np.log(f)).sum())
    return {"n_motifs": int(sup.size), "motif_entropy": h, "motif_effective_number": float(math.exp(h))}


# ------------------------------------------------------------------------------ helpers
def _codes(x: np.ndarray) -> np.ndarray:
    """(n, L) int8 base codes of a checked one-hot (n, L, 4) array; 4 for an all-zero row (N)."""
    c = np.argmax(x, axis=2).astype(np.int8)
    c[~x.any(axis=2)] = 4
    return c


def _kmer_index(codes: np.ndarray, k: int) -> np.ndarray:
    """(n, L-k+1) int64 index of the k-mer starting at each position; -1 where it holds an N."""
    n, L = codes.shape
    P = L - k + 1
    idx = np.zeros((n, P), dtype=np.int64)
    bad = np.zeros((n, P), dtype=bool)
    for j in range(k):
        c = codes[:, j:j + P]
        idx = idx * 4 + np.minimum(c, 3)
        bad |= c == 4
    idx[bad] = -1
    return idx


def _rc_indices(k: int) -> np.ndarray:
    """Index of the reverse complement of every k-mer index 0..4**k-1."""
    idx = np.arange(4 ** k, dtype=np.int64)
    rc = np.zeros_like(idx)
    for j in range(k):
        rc = rc * 4 + (3 - ((idx >> (2 * j)) & 3))
    return rc


def _kmer_int(s: str) -> int:
    return int("".join("0123"["ACGT".index(c)] for c in s), 4)


def _kmer_str(i: int, k: int) -> str:
    return "".join("ACGT"[(i >> (2 * (k - 1 - j))) & 3] for j in range(k))


def _rc_index(i: int, k: int) -> int:
    out = 0
    for j in range(k):
        out = out * 4 + (3 - ((i >> (2 * j)) & 3))
    return out


def _overlap_shift(a: str, b: str) -> int | None:
    """Offset d of b relative to a (b[t] sits on a[t + d]) when b is a shifted by one base
    (an exact overlap of k - 1 bases: consecutive k-mers of one site), else None."""
    k = len(a)
    for d in (1, -1):
        lo, hi = max(0, d), min(k, k + d)
        if all(a[t] == b[t - d] for t in range(lo, hi)):
            return d
    return None


def _orient(win: np.ndarray, strand: np.ndarray) -> np.ndarray:
    """Windows (m, W, 4) read on their strand: reversed and complemented where strand < 0."""
    out = win.copy()
    neg = strand < 0
    out[neg] = win[neg][:, ::-1, ::-1]
    return out


def _windows(arr: np.ndarray, seq: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    """arr[seq, start:start + width] for each seqlet, shape (m, width, 4)."""
    cols = start[:, None] + np.arange(width)[None, :]
    return arr[seq[:, None], cols]


# ------------------------------------------------------------------------------ the accumulator
class MotifAccumulator:
    """Motif discovery over batches, in two passes (update / next_pass / update / result).

    Parameters
    ----------
    k, quantile, buffer, prior
        The k-mer method's attributed intervals and prior, as :func:`~acme_fast.kmer_kld`.
    window, bin_width, prior_bins
        The k-attr method's windows and histogram, as :func:`~acme_fast.kattr_kld` (the
        threshold is per sequence at ``quantile``).
    preset : {"paper", "acme"}
    layout : {"NLC", "NCL"}
    methods : sequence of {"kmer", "kattr"}
    max_kmers : int
        k-mers considered by the k-mer method (largest KLD contributions first).
    min_count, min_fold
        A k-mer needs at least ``min_count`` attributed occurrences and ``min_fold`` times its
        prior's share; a bin ``min_fold`` times its local prior's mass.
    max_clusters : int
        Angular clusters kept (most mass first).
    max_shift : int
        Largest shift in aligning k-attr seqlets to their cluster's mean.
    flank : int
        Columns kept on each side of a k-attr window before trimming.
    trim : float
        k-attr motifs keep the columns whose CWM norm is at least ``trim`` times the peak's.
    min_support : int
        Motifs with fewer seqlets are dropped (and do not count for diversity).
    merge_similarity : float
        Motifs whose PWMs are at least this similar (either strand) are merged.
    max_seqlets : int
        Seqlets listed (and aligned) per motif; ``support`` counts all of them.
    n_threads : int, optional
        Kernel threads.
    """

    n_passes = 2

    def __init__(self, *, k: int = 6, quantile: float = 0.9, buffer: int = 2, prior: Any = None, window: int = 3,
                 bin_width: float = 0.1, prior_bins: int | None = None, preset: str = "paper", layout: str = "NLC",
                 methods: Any = ("kmer", "kattr"), max_kmers: int = 200, min_count: int = 20, min_fold: float = 2.0,
                 max_clusters: int = 12, max_shift: int = 3, flank: int = 4, trim: float = 0.3,
                 min_support: int = 20, merge_similarity: float = 0.8, max_seqlets: int = 2000,
                 link: float = 0.3, min_corr: float = 0.5, n_threads: int | None = None) -> None:
        check_preset(preset)
        self.ncl = check_layout(layout)
        if isinstance(methods, str):
            methods = (methods,)
        methods = tuple(methods)
        if not methods or any(m not in ("kmer", "kattr") for m in methods):
            raise ValueError(f"methods: expected 'kmer', 'kattr' or both, got {methods!r}")
        self.methods = methods
        self.params = {
            "k": check_int("k", k, 2, 12), "quantile": quantile, "buffer": buffer, "window": window,
            "bin_width": bin_width, "prior_bins": prior_bins, "preset": preset, "layout": layout.upper(),
            "methods": methods, "max_kmers": check_int("max_kmers", max_kmers, 1),
            "min_count": check_int("min_count", min_count, 1), "min_fold": check_real("min_fold", min_fold, 1.0),
            "max_clusters": check_int("max_clusters", max_clusters, 1),
            "max_shift": check_int("max_shift", max_shift, 0, 20), "flank": check_int("flank", flank, 0, 50),
            "trim": check_real("trim", trim, 0.0), "min_support": check_int("min_support", min_support, 1),
            "merge_similarity": check_real("merge_similarity", merge_similarity, -1.0),
            "max_seqlets": check_int("max_seqlets", max_seqlets, 1),
            "link": check_real("link", link, 0.0),
            "min_corr": check_real("min_corr", min_corr, -1.0),
        }
        if self.params["trim"] > 1:
            raise ValueError(f"trim: expected a fraction in [0, 1], got {trim}")
        common = {"preset": preset, "layout": layout, "n_threads": n_threads}
        self._kmer = KmerAccumulator(k=k, quantile=quantile, buffer=buffer, prior=prior, **common) \
            if "kmer" in methods else None
        # (k+1)-mer counts of the attributed intervals: how often two k-mers sit one base apart
        self._kmer1 = KmerAccumulator(k=k + 1, quantile=quantile, buffer=buffer, **common) \
            if "kmer" in methods else None
        kw = {"prior_bins": prior_bins} if prior_bins is not None else {}
        self._kattr = KattrAccumulator(window=window, quantile=quantile, bin_width=bin_width,
                                       threshold_scope="sequence", **kw, **common) if "kattr" in methods else None
        self._n_threads = n_threads
        self.pass_index = 0
        self.n_sequences = 0
        self._seen = 0  # sequences of the current pass (seqlet indices are global)
        self._plan: dict = {}
        self._kmer_hits: dict = {}
        self._kattr_hits: dict = {}

    @property
    def n_threads(self) -> int | None:
        """Kernel threads (None: all cores)."""
        return self._n_threads

    @n_threads.setter
    def n_threads(self, value: int | None) -> None:
        for acc in (self._kmer, self._kmer1, self._kattr):
            if acc is not None:
                acc.n_threads = value
        self._n_threads = value

    # -------------------------------------------------------------------------- pass 0
    def update(self, x: Any, attr: Any) -> MotifAccumulator:
        """Add a batch: one-hot ``x`` and raw attributions ``attr`` (same shape, the layout)."""
        xa = as_onehot(x, self.ncl)
        aa = as_attr(attr, self.ncl)
        if xa.shape != aa.shape:
            raise ValueError(f"attr: expected the shape of x {xa.shape}, got {aa.shape}")
        if self.pass_index == 0:
            if self._kmer is not None:
                self._kmer.update(xa, aa)
                self._kmer1.update(xa, aa)
            if self._kattr is not None:
                self._kattr.update(aa)
            self.n_sequences += xa.shape[0]
        else:
            self._collect(xa, aa)
        self._seen += xa.shape[0]
        return self

    def next_pass(self) -> MotifAccumulator:
        """Decide which k-mers and bins make motifs; the next updates collect their seqlets."""
        if self.pass_index != 0:
            raise ValueError("next_pass: the accumulator is already in its second pass")
        if self.n_sequences == 0:
            raise ValueError("next_pass: no batch was added")
        if self._kmer is not None:
            self._plan["kmer"] = self._plan_kmers(self._kmer.result(), self._kmer1.result().counts)
        if self._kattr is not None:
            self._plan["kattr"] = self._plan_clusters(self._kattr.result())
        self.pass_index = 1
        self._seen = 0
        return self

    def _plan_kmers(self, res: Any, counts1: np.ndarray) -> dict:
        p = self.params
        k = p["k"]
        counts = res.counts.astype(np.float64)
        tot = counts.sum()
        lut = np.full(4 ** k, -1, dtype=np.int32)
        if tot == 0:
            return {"lut": lut, "off": np.zeros(0, np.int64), "strand": np.zeros(0, np.int8), "groups": []}
        pj = counts / tot
        q = res.prior
        with np.errstate(divide="ignore", invalid="ignore"):
            contrib = np.where(pj > 0, pj * np.log(pj / q), 0.0)
            fold = np.where(q > 0, pj / q, np.inf)
        ok = (counts >= p["min_count"]) & (fold >= p["min_fold"]) & (contrib > 0)
        cand = np.flatnonzero(ok)
        cand = cand[np.argsort(-contrib[cand], kind="stable")][: p["max_kmers"]]
        rc_all = _rc_indices(k)
        both = counts + np.where(rc_all != np.arange(rc_all.size), counts[rc_all], 0)  # either strand, once

        def linked(a: str, b: str, d: int) -> bool:
            """Whether k-mers a and b (b one base to the right of a when d == 1) occur together:
            their joint (k+1)-mer, on either strand, in at least a third of the rarer one's sites."""
            j = _kmer_int(a + b[-1] if d == 1 else b + a[-1])
            jr = _rc_index(j, k + 1)
            n = counts1[j] + (counts1[jr] if jr != j else 0)
            return n >= self.params["link"] * min(both[_kmer_int(a)], both[_kmer_int(b)])

        # groups: reverse complements and overlapping shifts, each k-mer placed in its seed's frame
        groups: list[dict] = []
        placed: dict[int, tuple[int, int, int]] = {}  # kmer -> (group, offset, strand)
        for i in (int(c) for c in cand):
            if i in placed:
                continue
            s = _kmer_str(i, k)
            rc = _rc_index(i, k)
            best = None
            for g, grp in enumerate(groups):
                for j, (o, st) in grp["members"].items():
                    sj = _kmer_str(j if st > 0 else _rc_index(j, k), k)  # the member as read in the frame
                    for strand, t in ((1, s), (-1, _kmer_str(rc, k))):
                        d = _overlap_shift(sj, t)
                        if d is not None and best is None and linked(sj, t, d):
                            best = (g, o + d, strand)
            if best is None:
                groups.append({"members": {i: (0, 1)}, "score": 0.0})
                placed[i] = (len(groups) - 1, 0, 1)
            else:
                g, off, strand = best
                groups[g]["members"][i] = (off, strand)
                placed[i] = (g, off, strand)
            if rc != i and rc not in placed:  # its reverse complement: the same motif on the other strand
                g, off, strand = placed[i]
                groups[g]["members"][rc] = (off, -strand)
                placed[rc] = (g, off, -strand)
        off = np.zeros(len(placed), dtype=np.int64)
        strand = np.zeros(len(placed), dtype=np.int8)
        frames = []
        for grp in groups:
            offs = [o for o, _ in grp["members"].values()]
            lo, hi = min(offs), max(offs) + k
            frames.append((lo, hi))
            grp["score"] = float(sum(contrib[j] for j in grp["members"]) / max(res.kld, 1e-300))
        for n, (i, (_g, o, st)) in enumerate(placed.items()):
            lut[i] = n
            off[n] = o
            strand[n] = st
        gid = np.array([placed[i][0] for i in placed], dtype=np.int64)
        lo = np.array([frames[g][0] for g in gid], dtype=np.int64)
        hi = np.array([frames[g][1] for g in gid], dtype=np.int64)
        return {"lut": lut, "off": off, "strand": strand, "gid": gid, "lo": lo, "hi": hi, "frames": frames,
                "groups": groups}

    def _plan_clusters(self, res: Any) -> dict:
        p = self.params
        mass, prior = np.asarray(res.mass, dtype=np.float64), np.asarray(res.prior, dtype=np.float64)
        nb = mass.shape[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            dense = (mass > 0) & (mass >= p["min_fold"] * prior)
        labels = -np.ones(mass.shape, dtype=np.int64)
        clusters = []
        for r0, c0 in zip(*np.nonzero(dense)):
            if labels[r0, c0] >= 0:
                continue
            lab = len(clusters)
            stack = [(r0, c0)]
            labels[r0, c0] = lab
            cells = []
            while stack:
                r, c = stack.pop()
                cells.append((r, c))
                for dr in (-1, 0, 1):
                    for dc in (-1, 0, 1):
                        rr, cc = (r + dr) % nb, c + dc  # periodic along phi' (rows)
                        if 0 <= cc < nb and dense[rr, cc] and labels[rr, cc] < 0:
                            labels[rr, cc] = lab
                            stack.append((rr, cc))
            clusters.append({"cells": cells, "mass": float(sum(mass[r, c] for r, c in cells))})
        order = sorted(range(len(clusters)), key=lambda i: -clusters[i]["mass"])[: p["max_clusters"]]
        lut = np.full(nb * nb, -1, dtype=np.int32)
        kept = []
        for new, old in enumerate(order):
            for r, c in clusters[old]["cells"]:
                lut[r * nb + c] = new
            kept.append(clusters[old])
        return {"lut": lut, "clusters": kept, "n_bins": nb}

    # -------------------------------------------------------------------------- pass 1
    def _collect(self, xa: np.ndarray, aa: np.ndarray) -> None:
        x = np.swapaxes(xa, 1, 2) if self.ncl else xa  # (n, L, 4) views
        a = np.swapaxes(aa, 1, 2) if self.ncl else aa
        codes = _codes(x)
        if "kmer" in self._plan:
            self._collect_kmers(x, a, aa, codes)
        if "kattr" in self._plan:
            self._collect_kattr(x, a, aa)

    def _collect_kmers(self, x: np.ndarray, a: np.ndarray, aa: np.ndarray, codes: np.ndarray) -> None:
        p, plan = self.params, self._plan["kmer"]
        if not plan["groups"]:
            return
        k = p["k"]
        n, L = codes.shape
        out = _core.kmer_intervals(np.ascontiguousarray(aa), k, p["quantile"], min(p["buffer"], L - 1), True,
                                   self.ncl, self.n_threads or 0)
        raise_kernel_error(out["error"])
        P = L - k + 1
        diff = np.zeros((n, P + 1), dtype=np.int32)  # k-mer starts inside kept intervals
        np.add.at(diff, (out["seq"], out["begin"]), 1)
        np.add.at(diff, (out["seq"], out["end"] - k + 2), -1)
        inside = np.cumsum(diff[:, :P], axis=1) > 0
        idx = _kmer_index(codes, k)
        member = np.where(idx >= 0, plan["lut"][np.maximum(idx, 0)], -1)
        member[~inside] = -1
        si, li = np.nonzero(member >= 0)
        if si.size == 0:
            return
        mi = member[si, li]
        st = plan["strand"][mi].astype(np.int64)
        off, lo, hi = plan["off"][mi], plan["lo"][mi], plan["hi"][mi]
        start = np.where(st > 0, li - (off - lo), li + off + k - hi)
        ok = (start >= 0) & (start + (hi - lo) <= L)
        hits = np.stack([plan["gid"][mi], si, start, st], axis=1)[ok]
        g_all = None
        for g in np.unique(hits[:, 0]):
            h = np.unique(hits[hits[:, 0] == g, 1:], axis=0)  # overlapping k-mers of one site: one seqlet
            _, first = np.unique(h[:, :2], axis=0, return_index=True)  # a palindrome on both strands: once
            h = h[np.sort(first)]
            lo_g, hi_g = plan["frames"][g]
            width = hi_g - lo_g
            if g_all is None:
                g_all = gauge_correct(a.astype(np.float64, copy=False))
            seq, st_, strand = h[:, 0], h[:, 1], h[:, 2]
            store = self._kmer_hits.setdefault(int(g), {"support": 0, "pwm": np.zeros((width, 4)),
                                                        "cwm": np.zeros((width, 4)), "seqlets": []})
            store["support"] += int(h.shape[0])
            store["pwm"] += _orient(_windows(x, seq, st_, width).astype(np.float64), strand).sum(axis=0)
            store["cwm"] += _orient(_windows(g_all, seq, st_, width), strand).sum(axis=0)
            room = self.params["max_seqlets"] - sum(len(v) for v in store["seqlets"])
            if room > 0:
                store["seqlets"].append(np.stack([seq[:room] + self._seen, st_[:room], strand[:room]], axis=1))

    def _collect_kattr(self, x: np.ndarray, a: np.ndarray, aa: np.ndarray) -> None:
        p, plan = self.params, self._plan["kattr"]
        if not plan["clusters"]:
            return
        kp = self._kattr._p
        r, b, err = _core.kattr_points(np.ascontiguousarray(aa), *kp.kernel_args(), self.ncl, self.n_threads or 0)
        raise_kernel_error(err)
        n, L = x.shape[0], x.shape[1]
        P = r.size // n
        r = r.reshape(n, P)
        b = b.reshape(n, P)
        cut = np.quantile(r, p["quantile"], axis=1, keepdims=True)
        lab = plan["lut"][b]
        lab[~(r > cut)] = -1
        h = p["window"] // 2  # point p covers positions p..p+window-1 (paper: centred on p + h; acme: wraps)
        si, pi = np.nonzero(lab >= 0)
        if si.size == 0:
            return
        li = lab[si, pi]
        # one seqlet per run of adjacent positions of the same cluster: the one with the largest r
        new_run = np.ones(si.size, dtype=bool)
        new_run[1:] = (si[1:] != si[:-1]) | (pi[1:] != pi[:-1] + 1) | (li[1:] != li[:-1])
        run = np.cumsum(new_run) - 1
        rr = r[si, pi]
        order = np.lexsort((-rr, run))
        first = np.ones(order.size, dtype=bool)
        first[1:] = run[order][1:] != run[order][:-1]
        pick = order[first]
        si, pi, li = si[pick], pi[pick], li[pick]
        centre = (pi + h) % L
        half = h + p["flank"] + p["max_shift"]
        s0 = centre - half
        ok = (s0 >= 0) & (s0 + 2 * half + 1 <= L)
        si, li, s0 = si[ok], li[ok], s0[ok]
        width = 2 * half + 1
        g = gauge_correct(a.astype(np.float64, copy=False))
        for c in np.unique(li):
            sel = li == c
            store = self._kattr_hits.setdefault(int(c), {"support": 0, "seq": [], "start": [], "x": [], "a": []})
            store["support"] += int(sel.sum())
            room = p["max_seqlets"] - sum(len(s) for s in store["seq"])
            if room <= 0:
                continue
            ss, st = si[sel][:room], s0[sel][:room]
            store["seq"].append(ss + self._seen)
            store["start"].append(st)
            store["x"].append(_windows(x, ss, st, width).astype(np.float32))
            store["a"].append(_windows(g, ss, st, width).astype(np.float32))

    # -------------------------------------------------------------------------- result
    def result(self) -> MotifResult:
        """The motifs (after both passes), strongest first, merged across methods."""
        if self.pass_index != 1:
            raise ValueError("result: call next_pass() and feed the data a second time first")
        motifs = []
        if "kmer" in self._plan:
            motifs += self._kmer_motifs()
        if "kattr" in self._plan:
            motifs += self._kattr_motifs()
        motifs = [m for m in motifs if m.support >= self.params["min_support"]]
        motifs = _merge(motifs, self.params["merge_similarity"])
        motifs.sort(key=lambda m: -m.support)
        for i, m in enumerate(motifs):
            m.name = f"motif_{i}"
        return MotifResult(motifs=motifs, n_sequences=self.n_sequences, params=dict(self.params))

    def _kmer_motifs(self) -> list:
        plan = self._plan["kmer"]
        out = []
        for g, store in sorted(self._kmer_hits.items()):
            support = store["support"]
            pwm = store["pwm"]
            tot = pwm.sum(axis=1, keepdims=True)
            pwm = np.where(tot > 0, pwm / np.maximum(tot, 1), 0.25)
            listed = np.concatenate(store["seqlets"]) if store["seqlets"] else np.zeros((0, 3), np.int64)
            sl = np.zeros(listed.shape[0], dtype=_SEQLET)
            sl["seq"], sl["start"], sl["strand"] = listed[:, 0], listed[:, 1], listed[:, 2]
            out.append(Motif("", ("kmer",), pwm, store["cwm"] / support, int(support), sl,
                             plan["groups"][g]["score"]))
        return out

    def _kattr_motifs(self) -> list:
        plan, p = self._plan["kattr"], self.params
        total = sum(c["mass"] for c in plan["clusters"]) or 1.0
        out = []
        for c, store in sorted(self._kattr_hits.items()):
            if not store["seq"]:
                continue
            seq = np.concatenate(store["seq"])
            start = np.concatenate(store["start"])
            xw = np.concatenate(store["x"]).astype(np.float64)
            aw = np.concatenate(store["a"]).astype(np.float64)
            S = p["max_shift"]
            W = xw.shape[1] - 2 * S
            shift = np.zeros(seq.size, dtype=np.int64)
            for _ in range(3):  # align each seqlet's attribution to the mean over shifts -S..S
                cons = np.mean([aw[i, S + shift[i]:S + shift[i] + W] for i in range(seq.size)], axis=0)
                best = np.full(seq.size, -np.inf)
                new = shift.copy()
                for d in range(-S, S + 1):
                    sc = np.einsum("mwc,wc->m", aw[:, S + d:S + d + W], cons)
                    better = sc > best
                    best[better] = sc[better]
                    new[better] = d
                if np.array_equal(new, shift):
                    break
                shift = new
            cols = (S + shift)[:, None] + np.arange(W)[None, :]
            rows = np.arange(seq.size)[:, None]
            xa, ga = xw[rows, cols], aw[rows, cols]
            # seqlets that do not resemble the aligned mean (a cluster of one direction can hold
            # windows of several motifs) are dropped; support is scaled by the fraction kept
            cons = ga.mean(axis=0)
            flat, cflat = ga.reshape(seq.size, -1), cons.ravel()
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = flat @ cflat / (np.linalg.norm(flat, axis=1) * np.linalg.norm(cflat))
            good = np.nan_to_num(corr) >= p["min_corr"]
            if not good.any():
                continue
            frac = good.mean()
            seq, start, shift, xa, ga = seq[good], start[good], shift[good], xa[good], ga[good]
            cwm = ga.mean(axis=0)
            norm = np.linalg.norm(cwm, axis=1)
            peak = int(np.argmax(norm))
            keep = norm >= p["trim"] * norm[peak]
            lo = peak
            while lo > 0 and keep[lo - 1]:
                lo -= 1
            hi = peak + 1
            while hi < W and keep[hi]:
                hi += 1
            pwm = xa[:, lo:hi].sum(axis=0)
            tot = pwm.sum(axis=1, keepdims=True)
            pwm = np.where(tot > 0, pwm / np.maximum(tot, 1), 0.25)
            sl = np.zeros(seq.size, dtype=_SEQLET)
            sl["seq"], sl["start"], sl["strand"] = seq, start + S + shift + lo, 1
            out.append(Motif("", ("kattr",), pwm, cwm[lo:hi], int(round(store["support"] * frac)), sl,
                             float(plan["clusters"][c]["mass"] / total)))
        return out


def _covered(m: Motif) -> np.ndarray:
    """Sorted keys seq * 2**32 + position of every position the motif's listed seqlets cover."""
    s = m.seqlets
    if s.size == 0:
        return np.zeros(0, dtype=np.int64)
    pos = s["start"][:, None] + np.arange(m.width)[None, :]
    return np.unique((s["seq"][:, None].astype(np.int64) << 32) + pos)


def _shared_sites(small: Motif, big_cover: np.ndarray) -> float:
    """Fraction of the smaller motif's seqlets whose centre lies inside one of the bigger motif's."""
    s = small.seqlets
    if s.size == 0 or big_cover.size == 0:
        return 0.0
    centre = (s["seq"].astype(np.int64) << 32) + s["start"] + small.width // 2
    return float(np.isin(centre, big_cover).mean())


def _merge(motifs: list, threshold: float, site_fraction: float = 0.5, site_similarity: float = 0.7) -> list:
    """Merge duplicates: motifs whose PWMs match (either strand, similarity >= threshold), or whose
    seqlets mostly sit on another motif's sites and whose PWMs are alike (>= site_similarity: a
    fragment, or the same sites seen by the other method; two motifs that merely share a k-mer
    overlap too, but their PWMs differ). A k-mer motif stays over a k-attr one, then the
    better-supported one."""
    from .synthetic import motif_similarity

    order = sorted(range(len(motifs)), key=lambda i: ("kmer" not in motifs[i].methods, -motifs[i].support))
    kept: list = []
    covers: list = []
    for i in order:
        m = motifs[i]
        target = None
        for km, cov in zip(kept, covers):
            sim = motif_similarity(km.pwm.T, m.pwm.T, min_overlap=3) if min(m.width, km.width) >= 3 else -1.0
            if sim >= threshold or (sim >= site_similarity and _shared_sites(m, cov) >= site_fraction):
                target = km
                break
        if target is None:
            kept.append(m)
            covers.append(_covered(m))
        else:
            target.methods = tuple(sorted(set(target.methods) | set(m.methods), key=("kmer", "kattr").index))
            target.merged.append(f"{'+'.join(m.methods)}:{m.consensus} ({m.support} seqlets)")
    return kept


# ------------------------------------------------------------------------------ one call
def find_motifs(x: Any, attr: Any, *, batch_size: int = 1024, **kwargs: Any) -> MotifResult:
    """Motifs of an attribution set (both passes of :class:`MotifAccumulator`).

    Parameters
    ----------
    x : array_like or path, shape (N, L, 4) or (N, 4, L)
        One-hot sequences (an array, memory map, h5py/Zarr dataset: read in batches; a path:
        ``.npy``, ``.npz``, ``.h5``, ``.zarr`` or FASTA, see :func:`find_motifs_in_files`).
    attr : array_like or path, same shape
        Raw attribution maps (gradient-like: saliency, SmoothGrad, IG, hypothetical scores).
    batch_size : int
        Sequences per batch.
    **kwargs
        Parameters of :class:`MotifAccumulator` (``k``, ``quantile``, ``window``, ``preset``,
        ``layout``, ``methods``, ``min_support``, ...).

    Returns
    -------
    MotifResult
        ``.motifs`` (strongest first), ``.n_motifs``, ``.entropy``, ``.to_frame()``.

    Examples
    --------
    >>> res = af.find_motifs(x, attr)                                   # doctest: +SKIP
    >>> af.match_motifs(res)        # JASPAR 2024 CORE vertebrates, Tomtom   # doctest: +SKIP
    >>> res.to_frame()[["motif", "support", "consensus", "match", "match_q"]]  # doctest: +SKIP
    """
    import os

    batch_size = check_int("batch_size", batch_size, 1)
    if isinstance(x, (str, os.PathLike)) or isinstance(attr, (str, os.PathLike)):  # files: read in batches
        return find_motifs_in_files(attr, x, batch_size=batch_size, **kwargs)
    acc = MotifAccumulator(**kwargs)
    if not hasattr(x, "shape"):
        x = np.asarray(x)
    if not hasattr(attr, "shape"):
        attr = np.asarray(attr)
    if tuple(x.shape) != tuple(attr.shape):
        raise ValueError(f"attr: expected the shape of x {tuple(x.shape)}, got {tuple(attr.shape)}")
    n = int(x.shape[0])
    for _ in range(2):
        for s in range(0, n, batch_size):
            acc.update(np.asarray(x[s:s + batch_size]), np.asarray(attr[s:s + batch_size]))
        if acc.pass_index == 0:
            acc.next_pass()
    return acc.result()


def find_motifs_in_files(attr: Any, x: Any, *, dataset: str | None = None, x_dataset: str | None = None,
                         layout: str = "NLC", batch_size: int | None = None, allow_missing_chunks: bool = False,
                         **kwargs: Any) -> MotifResult:
    """:func:`find_motifs` on files of any size (``.npy``, ``.npz``, ``.h5``, ``.zarr``, FASTA for
    ``x``), read batch by batch, twice; arguments as :func:`acme_fast.stream.score_stream`."""
    from .io import check_pair, default_batch_size, open_source

    with open_source(x, x_dataset, layout, name="seqs", allow_missing_chunks=allow_missing_chunks) as xs, \
            open_source(attr, dataset, layout, name="attr", allow_missing_chunks=allow_missing_chunks) as src:
        check_pair(xs, src)
        bs = check_int("batch_size", batch_size, 1) if batch_size is not None else default_batch_size(src, xs)
        acc = MotifAccumulator(layout=layout, **kwargs)
        n = src.n_sequences
        for _ in range(2):
            for s in range(0, n, bs):
                e = min(n, s + bs)
                acc.update(xs.read(s, e), src.read(s, e))
            if acc.pass_index == 0:
                acc.next_pass()
    return acc.result()


# ------------------------------------------------------------------------------ databases
def jaspar_motifs(release: str = "JASPAR2024", collection: str = "CORE",
                  tax_group: str | None = "vertebrates") -> dict[str, np.ndarray]:
    """JASPAR PWMs from pyjaspar's offline SQLite files: ``"MA0079.5 SP1"`` -> (4, W) frequencies.

    The latest version of each matrix of ``collection`` and ``tax_group`` (JASPAR's
    non-redundant set: one profile per matrix ID). Works offline.
    """
    from .synthetic import _jaspar_records

    out = {}
    for acc, name, counts in _jaspar_records(release, collection, tax_group):
        tot = counts.sum(axis=0, keepdims=True)
        if counts.shape[1] and np.all(tot > 0):
            out[f"{acc} {name}"] = counts / tot
    return out


def read_meme(path: str | Path) -> dict[str, np.ndarray]:
    """Motifs of a MEME file: name -> (4, W) letter probabilities (memelite's reader)."""
    from ._deps import need

    io = need("memelite.io", "acme_fast.motifs (MEME files)", "motifs")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"db: no such MEME file: {str(p)!r}")
    try:
        motifs = io.read_meme(str(p))
    except Exception as exc:  # noqa: BLE001 - name the file
        raise ValueError(f"db: {str(p)!r} is not a readable MEME file ({type(exc).__name__}: {exc})") from None
    if not motifs:
        raise ValueError(f"db: {str(p)!r} holds no motif")
    return {str(k): np.asarray(v, dtype=np.float64) for k, v in motifs.items()}


def write_meme(result: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the motifs' PWMs as a MEME (version 4) file, with their support as nsites (atomically)."""
    from ._files import atomic_output, check_new_file

    motifs = list(result)
    out = check_new_file(path, name="path", overwrite=overwrite, suffixes=(".meme", ".txt"))
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for m in motifs:
        best = f" {m.matches[0]['name']}" if m.matches else ""
        lines.append(f"MOTIF {m.name} {m.consensus}{best}".rstrip())
        lines.append(f"letter-probability matrix: alength= 4 w= {m.width} nsites= {m.support} E= 0")
        lines += [" ".join(f"{v:.6f}" for v in row) for row in m.pwm]
        lines.append("")
    with atomic_output(out) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return out


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values of one row of p-values."""
    n = p.size
    order = np.argsort(p)
    q = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def match_motifs(result: Any, db: Any = None, *, top: int = 3, max_q: float = 0.5, release: str = "JASPAR2024",
                 collection: str = "CORE", tax_group: str | None = "vertebrates", n_jobs: int = -1) -> Any:
    """Match motifs against a database with Tomtom (memelite); fills each motif's ``matches``.

    Parameters
    ----------
    result : MotifResult or list of Motif
    db : None, dict name -> (4, W) PWM, or path to a MEME file
        None: JASPAR (``release``, ``collection``, ``tax_group``; default JASPAR 2024 CORE
        vertebrates, the latest version of each matrix), from pyjaspar's offline files.
    top : int
        Matches kept per motif (best p-value first) among those with q <= ``max_q``.
    max_q : float
        Largest q-value kept (Benjamini-Hochberg over the database, per motif).

    Returns
    -------
    the same ``result``
    """
    from ._deps import need

    tomtom = need("memelite", "acme_fast.match_motifs (Tomtom)", "motifs").tomtom
    motifs = list(result)
    if not motifs:
        return result
    if db is None:
        targets = jaspar_motifs(release, collection, tax_group)
    elif isinstance(db, (str, Path)):
        targets = read_meme(db)
    elif isinstance(db, dict):
        targets = {str(k): np.asarray(v, dtype=np.float64) for k, v in db.items()}
    else:
        raise TypeError(f"db: expected None (JASPAR), a MEME file path or a dict name -> (4, W) PWM, got "
                        f"{type(db).__name__}")
    for name, t in targets.items():
        if t.ndim != 2 or t.shape[0] != 4 or t.shape[1] < 1:
            raise ValueError(f"db: motif {name!r} should have shape (4, width), got {t.shape}")
    names = list(targets)
    Qs = [np.asfortranarray(np.clip(m.pwm.T, 1e-3, None) / np.clip(m.pwm.T, 1e-3, None).sum(0)) for m in motifs]
    Ts = [np.asfortranarray(targets[n]) for n in names]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # memelite warns about small target sets; the user chose the db
        pvals, _, offsets, _, strands = tomtom(Qs, Ts, n_jobs=n_jobs)
    for i, m in enumerate(motifs):
        p = np.asarray(pvals[i], dtype=np.float64)
        q = _bh(p)
        order = np.argsort(p, kind="stable")
        m.matches = []
        for j in order[:max(top, 0) * 4]:
            if q[j] > max_q or len(m.matches) >= top:
                break
            ident, _, label = names[j].partition(" ")  # "MA0079.5 SP1"; a MEME file's "ID ALT_NAME"
            m.matches.append({"id": ident, "name": label or ident, "p_value": float(p[j]), "q_value": float(q[j]),
                              "offset": int(offsets[i, j]), "strand": "+" if int(strands[i, j]) == 0 else "-"})
    return result
