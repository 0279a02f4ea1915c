"""Built-in demonstration data: planted motifs and two attribution sets.

A small, dependency-free stand-in for real data so that ``acme-fast demo`` runs anywhere:
random DNA with a few transcription-factor consensus motifs planted in it, a "focused"
attribution set (signal on the motif bases, little noise: what a model with consistent
attributions gives) and a "diffuse" one (the same signal drowned in noise spread over every
position). The full synthetic benchmark of the paper is a separate module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Consensus sites of the paper's core motifs (JASPAR SP1, GABPA, CEBPB, MAX, YY1).
MOTIFS: dict[str, str] = {
    "SP1": "GGGGCGGGGC",
    "GABPA": "CCGGAAGTG",
    "CEBPB": "ATTGCGCAAT",
    "MAX": "CCACGTGG",
    "YY1": "AAGATGGCGGC",
}

_CODE = {c: i for i, c in enumerate("ACGT")}


@dataclass
class DemoData:
    """One-hot sequences, their ground-truth sequence model and two attribution sets.

    Arrays are (N, L, 4): ``x`` float32 one-hot, ``x_model`` per-position base
    probabilities, ``focused`` and ``diffuse`` float32 attributions.
    """

    x: np.ndarray
    x_model: np.ndarray
    focused: np.ndarray
    diffuse: np.ndarray
    motif_mask: np.ndarray  # (N, L) bool


def make_demo_data(n: int = 1000, length: int = 200, motifs_per_seq: int = 3, seed: int = 0) -> DemoData:
    """Random sequences with planted motifs, and a focused and a diffuse attribution set.

    Parameters
    ----------
    n, length : int
        Number and length of sequences.
    motifs_per_seq : int
        Motifs planted in each sequence (non-overlapping, random positions and strands).
    seed : int

    Returns
    -------
    DemoData
    """
    rng = np.random.default_rng(seed)
    names: list[str] = list(MOTIFS)
    model = np.full((n, length, 4), 0.25)
    mask = np.zeros((n, length), dtype=bool)
    for i in range(n):
        pos = 0
        slots = np.sort(rng.choice(length // 25, size=motifs_per_seq, replace=False)) * 25
        for start in slots:
            site = MOTIFS[names[rng.integers(len(names))]]
            if rng.random() < 0.5:  # reverse complement
                site = site[::-1].translate(str.maketrans("ACGT", "TGCA"))
            start = max(int(start) + int(rng.integers(0, 25 - len(site) + 1)), pos)
            if start + len(site) > length:
                break
            for j, base in enumerate(site):  # a sharp PWM column around the consensus base
                model[i, start + j] = 0.02
                model[i, start + j, _CODE[base]] = 0.94
            mask[i, start : start + len(site)] = True
            pos = start + len(site)
    cum = model.cumsum(axis=-1)
    u = rng.random((n, length, 1))
    codes = np.minimum((u > cum).sum(axis=-1), 3)
    x = np.zeros((n, length, 4), dtype=np.float32)
    np.put_along_axis(x, codes[..., None], 1.0, axis=-1)

    signal = x * mask[..., None]  # the observed base at motif positions
    focused = (signal + 0.05 * rng.standard_normal(x.shape)).astype(np.float32)
    diffuse = (0.3 * signal + 0.5 * rng.standard_normal(x.shape)).astype(np.float32)
    return DemoData(x=x, x_model=model.astype(np.float32), focused=focused, diffuse=diffuse, motif_mask=mask)
