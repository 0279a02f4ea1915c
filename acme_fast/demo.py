"""``acme-fast demo``: the paper in miniature, and built-in data for the kernels alone.

:func:`paper_in_miniature` is the main job: generate a small synthetic benchmark, train a few small
CNNs that predict about equally well (ReLU vs exponential first layer, with and without batch norm
and input noise), attribute, score, rank, draw; :func:`demo_verdict` says in words which model test
AUROC alone would pick and which the consistency ranking picks.

:func:`make_demo_data` is built-in data for the kernels alone (``acme-fast demo --kernels-only``,
no TensorFlow needed): a small, dependency-free stand-in for real data. Random DNA with a few
transcription-factor consensus motifs planted in it, a "focused" attribution set (signal on the
motif bases, little noise: what a model with consistent attributions gives) and a "diffuse" one
(the same signal drowned in noise spread over every position).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    from ._validate import check_int

    n = check_int("n", n, 1)
    motifs_per_seq = check_int("motifs_per_seq", motifs_per_seq, 1)
    # each motif gets a slot of 25 bp
    length = check_int("length", length, 25 * motifs_per_seq)
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


# ------------------------------------------------------------------------------------------------
# The paper in miniature (``acme-fast demo``)
# ------------------------------------------------------------------------------------------------

#: Settings of :func:`paper_in_miniature`: small enough for a few minutes on a 2-core laptop CPU.
MINIATURE = {
    "n": 6000,
    "epochs": 20,
    "width": 0.5,
    "learning_rate": 4e-3,
    "burn_in": 2,
    # (first-layer activation, batch norm, strategy): models that predict about equally well but
    # explain themselves differently. In the reduced sweep (docs/reproduction.md, part 2) these
    # ReLU models reached a test AUROC at or above the exponential model's in both trials, with
    # clearly worse saliency maps (GT SNR 0.7-1.1 against 1.3-1.4).
    "models": (("relu", True, "standard"), ("relu", False, "standard"), ("relu", False, "input_noise"),
               ("exponential", False, "standard")),
}


def model_name(activation: str, batch_norm: bool, strategy: str) -> str:
    """``"exponential/BN/standard"``: the demo's name of a model spec."""
    return f"{activation}/{'BN' if batch_norm else 'noBN'}/{strategy}"


@dataclass
class MiniatureResult:
    """What :func:`paper_in_miniature` produced.

    ``table``: one row per model (``model``, ``strategy``, ``activation``, ``batch_norm``,
    ``epochs_trained``, ``best_epoch``, then the :func:`acme_fast.reproduce.score_one` columns);
    ``selection``: :func:`acme_fast.select.select_models` of it (ranked, ``kept``, ``rank``,
    ``pareto``); ``files``: what was written into ``out_dir``; ``seconds``.
    """

    table: Any
    selection: Any
    files: list
    seconds: float


def next_free_dir(base: Any) -> Path:
    """``base`` if it does not exist or is an empty directory, else ``base_2``, ``base_3``, ..."""
    base = Path(base)
    i = 1
    while True:
        p = base if i == 1 else base.with_name(f"{base.name}_{i}")
        if not p.exists() or (p.is_dir() and not any(p.iterdir())):
            return p
        i += 1


def paper_in_miniature(
    out_dir: Any,
    *,
    n: int = MINIATURE["n"],
    epochs: int = MINIATURE["epochs"],
    width: float = MINIATURE["width"],
    learning_rate: float = MINIATURE["learning_rate"],
    burn_in: int = MINIATURE["burn_in"],
    models: Sequence[tuple[str, bool, str]] = MINIATURE["models"],
    tolerance: float = 0.02,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> MiniatureResult:
    """The paper's synthetic study in miniature: generate, train, attribute, score, select.

    1. :func:`acme_fast.synthetic.make_dataset` (``n`` sequences, ``seed``).
    2. One :func:`acme_fast.zoo.base_cnn` (``width``) per entry of ``models`` (first-layer
       activation, batch norm, strategy), trained by :func:`acme_fast.zoo.train` for ``burn_in``
       dropout-free epochs and up to ``epochs`` more (Adam ``learning_rate``, early stopping on the
       validation AUROC).
    3. Saliency maps of the positive test sequences scored by both consistency metrics (both
       presets) and against the ground truth (:func:`acme_fast.reproduce.score_one`).
    4. :func:`acme_fast.select.select_models`: models within ``tolerance`` of the best test AUROC,
       ranked by the k-attr-mean KLD (paper preset), ties broken by the k-mer KLD.

    Writes into ``out_dir`` (created; refused if it holds anything): ``scores.csv`` (the ranked
    selection table), ``selection.png``, ``snr_vs_<column>.png`` and ``logos.png`` (saliency maps of
    the first-ranked and of the least consistent model on one positive test sequence, beside its
    ground truth).

    Parameters
    ----------
    out_dir : path
    n, epochs, burn_in : int
    width, learning_rate : float
    models : sequence of (activation, batch_norm, strategy)
        ``activation`` "relu" or "exponential", ``batch_norm`` bool, ``strategy`` one of
        :data:`acme_fast.zoo.STRATEGIES`. Named by :func:`model_name`.
    tolerance : float
        AUROC tolerance of the selection.
    seed : int
        Dataset seed; model ``i`` is trained with seed ``seed + i``.
    progress : bool
        Progress bars (tqdm).
    log : callable, optional
        Receives one line per trained model (e.g. ``print``).

    Returns
    -------
    MiniatureResult
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from ._files import atomic_output
    from .reproduce import _clear_session, figures, score_one
    from .select import select_models
    from .synthetic import make_dataset
    from .zoo import STRATEGIES, base_cnn, train

    t0 = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"out_dir: {str(out)!r} exists and is not an empty directory")
    specs = []
    for m in models:
        if not isinstance(m, (tuple, list)) or len(m) != 3:
            raise ValueError(f"models: expected (activation, batch_norm, strategy) tuples, got {m!r}")
        act, bn, strat = m
        if act not in ("relu", "exponential"):
            raise ValueError(f"models: activation expected 'relu' or 'exponential', got {act!r}")
        if not isinstance(bn, (bool, np.bool_)):
            raise ValueError(f"models: batch_norm expected True or False, got {bn!r}")
        if strat not in STRATEGIES:
            raise ValueError(f"models: strategy expected one of {STRATEGIES}, got {strat!r}")
        specs.append((str(act), bool(bn), str(strat)))
    if not specs:
        raise ValueError("models: expected at least one model")
    if len({model_name(*m) for m in specs}) != len(specs):
        raise ValueError("models: the same model is listed twice")

    data = make_dataset(n=n, seed=seed, progress=progress)
    xy = (data.X_train, data.Y_train, data.X_valid, data.Y_valid)
    x_pos, xm_pos = data.positives("test")
    input_shape = tuple(np.asarray(data.X_train).shape[1:])
    rows, trained = [], {}
    for i, (act, bn, strat) in enumerate(tqdm(specs, desc="train + score", unit="model", disable=not progress)):
        name = model_name(act, bn, strat)
        t1 = time.perf_counter()

        def builder(act=act, bn=bn):
            return base_cnn(act, batch_norm=bn, width=width, input_shape=input_shape)

        model, hist = train(builder, xy, strategy=strat, epochs=epochs, learning_rate=learning_rate,
                            burn_in=burn_in, seed=seed + i)
        row = {"model": name, "strategy": strat, "activation": act, "batch_norm": bn,
               "epochs_trained": len(hist["loss"]), "best_epoch": hist["best_epoch"]}
        row.update(score_one(model, data.X_test, data.Y_test, x_pos, xm_pos))
        rows.append(row)
        trained[name] = model
        if log is not None:
            log(f"  {name:<28} test AUROC {row['auroc']:.3f}  k-attr KLD {row['kattr_kld_paper']:.3f}  "
                f"k-mer KLD {row['kmer_kld_paper']:.3f}  GT SNR {row['gt_snr']:.3f}  "
                f"({time.perf_counter() - t1:.0f} s)")
    table = pd.DataFrame(rows)
    sel = select_models(table.set_index("model"), performance="auroc",
                        consistency=["kattr_kld_paper", "kmer_kld_paper"], tolerance=tolerance)

    out.mkdir(parents=True, exist_ok=True)
    files = []
    with atomic_output(out / "scores.csv") as tmp:
        sel.to_csv(tmp)
    files.append(out / "scores.csv")
    files += figures(table, out, overwrite=False, tolerance=tolerance)
    best, worst = sel.index[0], sel.index[-1]  # rank 1, and the least consistent model
    files.append(_logo_figure(trained[best], trained[worst], best, worst, x_pos, xm_pos, out / "logos.png"))
    del trained
    _clear_session()
    return MiniatureResult(table=table, selection=sel, files=files, seconds=time.perf_counter() - t0)


def demo_verdict(table: Any, selection: Any) -> list[str]:
    """What the demo's table shows, in words: the model test AUROC alone would pick against the
    selection's first-ranked model, with their ground-truth SNRs.

    ``table``: :attr:`MiniatureResult.table` indexed by ``model``; ``selection``: its selection.
    """
    by_auroc = table["auroc"].idxmax()
    kept = [m for m in selection.index if selection.loc[m, "kept"]]
    top = kept[0] if kept else by_auroc
    best_snr = table["gt_snr"].idxmax()
    a, b = table.loc[by_auroc], table.loc[top]
    lines = [f"Test AUROC alone picks {by_auroc} (AUROC {a['auroc']:.3f}, GT SNR {a['gt_snr']:.2f}); the "
             f"k-attr KLD, among the models within 0.02 AUROC of the best, picks {top} (AUROC {b['auroc']:.3f}, "
             f"GT SNR {b['gt_snr']:.2f}). Best GT SNR: {best_snr}."]
    if top != by_auroc and b["gt_snr"] > a["gt_snr"]:
        lines.append(f"What to see: the two picks predict about equally well (AUROC {a['auroc'] - b['auroc']:.3f} "
                     f"apart), but the consistent model's saliency maps are closer to the true motifs "
                     f"(GT SNR {b['gt_snr']:.2f} against {a['gt_snr']:.2f}); AUROC cannot tell them apart, the "
                     "KLD needs no ground truth to do it.")
    elif top == by_auroc:
        lines.append("Here the most accurate model is also the most consistent one, so both criteria agree; "
                     "the KLD column still orders the others by how consistent their maps are.")
    else:
        lines.append("Here the consistency ranking did not improve on AUROC's pick: training on a CPU is not "
                     "bit-reproducible, and with 4 small models the margins are small; see docs/reproduction.md.")
    return lines


def _logo_figure(best: Any, worst: Any, best_name: str, worst_name: str, x: np.ndarray, x_model: np.ndarray,
                 path: Path) -> Path:
    """Ground truth and the saliency maps (grad x input) of two models on the positive test sequence
    with the most motif information, cropped to its motif-bearing stretch (at most 120 bp)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .attribution import saliency
    from .plot import plot_attribution_logo
    from .reproduce import _save_png

    info = np.clip(2.0 + np.sum(x_model * np.log2(x_model + 1e-10), axis=2), 0.0, None)  # (N, L) bits
    i = int(np.argmax(info.sum(axis=1)))
    hot = np.flatnonzero(info[i] > 0.5)
    lo = max(0, int(hot[0]) - 5) if hot.size else 0
    hi = min(x.shape[1], (int(hot[-1]) + 6) if hot.size else x.shape[1])
    lo, hi = (lo, hi) if hi - lo <= 120 else (lo, lo + 120)
    from .plot import HOUSE_STYLE

    with plt.rc_context(HOUSE_STYLE):
        fig, axes = plt.subplots(3, 1, figsize=(min(0.12 * (hi - lo) + 1.5, 16.0), 5.6), sharex=True)
        plot_attribution_logo(x[i:i + 1], saliency(best, x[i:i + 1]), 0, x_model=x_model[i:i + 1], start=lo,
                              stop=hi, ax=axes[:2], title=f"positive test sequence {i} (the most motif information)")
        axes[1].set_title(f"saliency x input of the model ranked first: {best_name}", fontsize=8, loc="left")
        axes[1].set_xlabel("")
        plot_attribution_logo(x[i:i + 1], saliency(worst, x[i:i + 1]), 0, start=lo, stop=hi, ax=axes[2], title="")
        axes[2].set_title(f"saliency x input of the least consistent model: {worst_name}", fontsize=8, loc="left")
        fig.tight_layout()
    return _save_png(fig, path, False, 150)
