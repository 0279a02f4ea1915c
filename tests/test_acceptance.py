"""Acceptance: attributions focused on planted motifs score as more consistent (higher KLD)
than diffuse ones, for both metrics and both presets."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import onehot

import acme_fast

MOTIFS = ["TGACTCA", "GGGGCGGGG", "CACGTG"]


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(99)
    n, L = 1000, 200
    x = onehot(rng, n, L)
    motif_mask = np.zeros((n, L), bool)
    for i in range(n):
        m = MOTIFS[i % len(MOTIFS)]
        b = int(rng.integers(0, L - len(m)))
        x[i, b : b + len(m)] = np.eye(4, dtype=x.dtype)[["ACGT".index(c) for c in m]]
        motif_mask[i, b : b + len(m)] = True
    noise = rng.normal(scale=0.1, size=x.shape)
    # focused: saliency-like maps, strong on the observed base at motif positions
    focused = (noise + 2.0 * x * motif_mask[..., None]).astype(np.float32)
    # diffuse: random noise, no preferred position or base
    diffuse = rng.normal(size=x.shape).astype(np.float32)
    return x, focused, diffuse


@pytest.mark.parametrize("preset", ["paper", "acme"])
@pytest.mark.parametrize("k", [3, 4, 6])
def test_kmer_focused_beats_diffuse(planted, preset, k):
    x, focused, diffuse = planted
    f = acme_fast.kmer_kld(x, focused, k=k, preset=preset)
    d = acme_fast.kmer_kld(x, diffuse, k=k, preset=preset)
    assert f.kld > 1.25 * d.kld + 0.05, (f.kld, d.kld)


@pytest.mark.parametrize("preset", ["paper", "acme"])
def test_kattr_focused_beats_diffuse(planted, preset):
    _, focused, diffuse = planted
    f = acme_fast.kattr_kld(focused, preset=preset)
    d = acme_fast.kattr_kld(diffuse, preset=preset)
    assert f.kld > 1.25 * d.kld + 0.05, (f.kld, d.kld)
