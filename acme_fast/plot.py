"""Figures of the paper: k-mer spectrum, angular density, attribution logos, model selection.

Needs matplotlib (and logomaker for the logos): ``pip install "acme_fast[plot]"``. Every
function returns the matplotlib Figure; ``save="fig.png"`` (or ``.pdf``, ``.svg``) writes it
atomically (a temporary file, then ``os.replace``) and refuses to overwrite an existing file
unless ``overwrite=True``. Without a display, matplotlib falls back to a non-interactive
backend by itself; nothing here calls ``plt.show()``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import matplotlib
    import matplotlib.axes
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    from matplotlib.lines import Line2D
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f'acme_fast.plot needs matplotlib ({exc}); install it with: pip install "acme_fast[plot]"'
    ) from exc

from ._deps import need
from ._files import atomic_output, check_new_file
from ._validate import check_int, check_layout
from .kmer import kmer_names

__all__ = ["plot_kmer_spectrum", "plot_kattr_density", "plot_attribution_logo", "plot_selection"]

_FORMATS = ("png", "pdf", "svg")


# ---------------------------------------------------------------------------- helpers


#: The house style of every figure: one font family and size scale, no top/right spines, the
#: same resolution; sizes from FIGSIZE (wide plots and square plots).
HOUSE_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 150,
    "figure.dpi": 100,
}
FIGSIZE = {"wide": (8.0, 3.6), "square": (5.6, 4.6)}
#: Colours of the groups (one per category, in order of appearance).
PALETTE = ("#1b6ca8", "#d1495b", "#66a182", "#edae49", "#8d6a9f", "#00798c", "#7a5c3c", "#2e4057")
#: Fixed colours of categories that recur across figures (the first-layer activation: ReLU blue,
#: exponential red, in every figure).
FIXED_COLOURS = {"relu": PALETTE[0], "exponential": PALETTE[1]}


def category_colours(cats: Any) -> dict:
    """A colour per category: :data:`FIXED_COLOURS` where one is fixed, the palette in order of
    appearance for the others (skipping the fixed colours while both fixed ones are in use)."""
    cats = list(cats)
    used = {FIXED_COLOURS[c] for c in cats if c in FIXED_COLOURS}
    free = [c for c in PALETTE if c not in used] or list(PALETTE)
    out, j = {}, 0
    for c in cats:
        if c in FIXED_COLOURS:
            out[c] = FIXED_COLOURS[c]
        else:
            out[c] = free[j % len(free)]
            j += 1
    return out

#: Column names in words, for axis labels and legends.
_WORDS = {
    "auroc": "test AUROC", "aupr": "test AUPR", "pearson_r": "Pearson r", "kattr_kld": "k-attr-mean KLD",
    "kmer_kld": "k-mer KLD", "kattr_kld_paper": "k-attr-mean KLD (paper)", "kattr_kld_acme": "k-attr-mean KLD (acme)",
    "kmer_kld_paper": "k-mer KLD (paper)", "kmer_kld_acme": "k-mer KLD (acme)", "gt_snr": "ground-truth SNR",
    "gt_auroc": "ground-truth AUROC", "gt_auprc": "ground-truth AUPRC",
}


def words(column: str) -> str:
    """A table column in words (``"kattr_kld"`` -> ``"k-attr-mean KLD"``), for labels."""
    return _WORDS.get(str(column), str(column).replace("_", " "))


def _styled(fn: Any) -> Any:
    """Draw under the house style (matplotlib's rc settings restored afterwards)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with plt.rc_context(HOUSE_STYLE):
            return fn(*args, **kwargs)

    return wrapper


def _check_save(save: Any, overwrite: bool) -> Path | None:
    """Validate ``save`` before any drawing, so that a bad path fails fast."""
    if save is None:
        return None
    if not isinstance(save, (str, os.PathLike)):
        raise TypeError(f"save: expected a file path or None, got {type(save).__name__}")
    return check_new_file(save, name="save", overwrite=overwrite, suffixes=tuple(f".{f}" for f in _FORMATS))


def _write(fig: Any, path: Path | None, dpi: int = 150) -> None:
    """Save ``fig`` to ``path`` atomically (temporary file in the same directory + os.replace)."""
    if path is None:
        return
    fmt = path.suffix.lower().lstrip(".")
    with atomic_output(path, suffix=f".tmp.{fmt}") as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")


def _new_axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    if not isinstance(ax, matplotlib.axes.Axes):
        raise TypeError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")
    return ax.figure, ax


def _check_title(title: Any) -> str | None:
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title: expected a string or None, got {type(title).__name__}")
    return title


def _radian_ticks(axis: Any, hi: float) -> None:
    ticks = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4, np.pi]
    labels = ["0", r"$\pi/4$", r"$\pi/2$", r"$3\pi/4$", r"$\pi$"]
    keep = [i for i, t in enumerate(ticks) if t <= hi + 1e-9]
    axis.set_ticks([ticks[i] for i in keep])
    axis.set_ticklabels([labels[i] for i in keep])


# ---------------------------------------------------------------------------- k-mer spectrum


@_styled
def plot_kmer_spectrum(
    result: Any,
    *,
    top: int = 10,
    ax: Any = None,
    save: str | os.PathLike | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> Any:
    """Frequency of the attributed k-mers against the prior (Fig. 2d of the paper).

    Parameters
    ----------
    result : KmerResult
        From :func:`acme_fast.kmer_kld` (uses ``counts``, ``prior``, ``k`` and ``kld``).
    top : int
        Number the ``top`` most frequent attributed k-mers on the plot and list them, with their
        frequency and prior, beside it (0: none).
    ax : matplotlib Axes, optional
        Draw into this Axes (default: a new figure).
    save : path, optional
        Write the figure (``.png``, ``.pdf`` or ``.svg``), atomically.
    title : str, optional
    overwrite : bool
        Replace an existing ``save`` file.

    Returns
    -------
    matplotlib.figure.Figure
    """
    for name in ("counts", "prior", "k"):
        if not hasattr(result, name):
            raise TypeError(f"result: expected a KmerResult (from kmer_kld), got {type(result).__name__}")
    top = check_int("top", top, 0)
    title = _check_title(title)
    path = _check_save(save, overwrite)
    k = int(result.k)
    counts = np.asarray(result.counts, dtype=np.float64)
    prior = np.asarray(result.prior, dtype=np.float64)
    if counts.shape != (4**k,) or prior.shape != (4**k,):
        raise ValueError(f"result: counts and prior must have shape (4**k,) = ({4**k},)")
    total = counts.sum()
    if total <= 0:
        raise ValueError("result: no attributed k-mer (n_intervals = 0); nothing to plot")
    freq = counts / total

    fig, ax = _new_axes(ax, FIGSIZE["wide"])
    idx = np.arange(4**k)
    kld = getattr(result, "kld", np.nan)
    lab = "attributed k-mers" + (f" (KLD = {kld:.3g})" if np.isfinite(kld) else "")
    ax.vlines(idx, 0, freq, color=PALETTE[1], lw=1.0 if k <= 4 else 0.6, label=lab, zorder=2)
    # the prior on top of the bars, as a line: visible wherever it is
    ax.step(idx, prior, where="mid", color="0.15", lw=0.9, alpha=0.85, label="prior (all k-mers of the sequences)",
            zorder=3)
    if top > 0:
        names = kmer_names(k)
        best = np.argsort(-freq, kind="stable")[:top]
        best = best[freq[best] > 0]
        ax.plot(idx[best], freq[best], "o", color=PALETTE[1], ms=3, zorder=4)
        for r, i in enumerate(best, 1):  # numbers at the points, the k-mers listed in a box
            ax.annotate(str(r), (idx[i], freq[i]), xytext=(0, 3), textcoords="offset points", fontsize=7,
                        ha="center", va="bottom")
        listing = "\n".join(f"{r:>2}. {names[i]}  {100 * freq[i]:.2f}% (prior {100 * prior[i]:.2f}%)"
                             for r, i in enumerate(best, 1))
        ax.text(1.01, 1.0, f"most attributed {k}-mers\n{listing}", transform=ax.transAxes, va="top", ha="left",
                family="monospace", fontsize=7)
    ymax = max(freq.max(), prior.max())
    ax.set_ylim(0, ymax * 1.15)
    ax.set_xlim(-0.5, 4**k - 0.5)
    first, last = "A" * k, "T" * k
    ax.set_xlabel(f"{k}-mer, in index order ({first} ... {last})")
    ax.set_ylabel("frequency among the k-mers")
    ax.legend(loc="upper left", frameon=False)
    if title is None:
        title = f"k-mer spectrum of the attributed intervals (k = {k})"
    ax.set_title(title)
    _write(fig, path)
    return fig


# ---------------------------------------------------------------------------- angular density


@_styled
def plot_kattr_density(
    result: Any,
    *,
    ax: Any = None,
    save: str | os.PathLike | None = None,
    title: str | None = None,
    log: bool = False,
    overwrite: bool = False,
) -> Any:
    """The angular density of the k-attr-mean points, phi' against theta (Fig. 2e/f).

    Parameters
    ----------
    result : KattrResult
        From :func:`acme_fast.kattr_kld`; plots ``result.density`` (mass per rad**2), rows
        phi' on the vertical axis, columns theta on the horizontal axis, in radians.
    ax : matplotlib Axes, optional
        Draw into this Axes (default: a new figure); the colorbar takes room from it.
    save : path, optional
        Write the figure (``.png``, ``.pdf`` or ``.svg``), atomically.
    title : str, optional
    log : bool
        Logarithmic colour scale (empty bins left blank).
    overwrite : bool
        Replace an existing ``save`` file.

    Returns
    -------
    matplotlib.figure.Figure
    """
    for name in ("mass", "bin_width"):
        if not hasattr(result, name):
            raise TypeError(f"result: expected a KattrResult (from kattr_kld), got {type(result).__name__}")
    if not isinstance(log, (bool, np.bool_)):
        raise TypeError(f"log: expected True or False, got {log!r}")
    title = _check_title(title)
    path = _check_save(save, overwrite)
    bw = float(result.bin_width)
    mass = np.asarray(result.mass, dtype=np.float64)
    if mass.ndim != 2 or mass.shape[0] != mass.shape[1]:
        raise ValueError(f"result: mass must be a square 2-D array, got shape {mass.shape}")
    if not (np.isfinite(mass).all() and mass.sum() > 0):
        raise ValueError("result: no kept point (n_points = 0); nothing to plot")
    dens = mass / bw**2
    n = mass.shape[0]
    # bin i covers [i*bw, (i+1)*bw); the last bin also takes everything up to pi
    edges = bw * np.arange(n + 1)
    edges[-1] = max(edges[-1], np.pi)

    fig, ax = _new_axes(ax, FIGSIZE["square"])
    if log:
        pos = dens[dens > 0]
        norm = LogNorm(vmin=pos.min(), vmax=pos.max())
        data = np.ma.masked_less_equal(dens, 0)
    else:
        norm = None
        data = dens
    mesh = ax.pcolormesh(edges, edges, data, cmap="viridis", norm=norm, shading="flat", rasterized=True)
    cb = fig.colorbar(mesh, ax=ax)
    cb.set_label(r"density (mass / rad$^2$)")
    ax.set_xlim(0, edges[-1])
    ax.set_ylim(0, edges[-1])
    ax.set_aspect("equal")
    _radian_ticks(ax.xaxis, edges[-1])
    _radian_ticks(ax.yaxis, edges[-1])
    ax.set_xlabel(r"polar angle $\theta$ (rad)")
    ax.set_ylabel(r"azimuth $\phi'$ (rad)")
    kld = getattr(result, "kld", np.nan)
    if title is None:
        preset = getattr(result, "preset", None)
        title = "angular density of the strongest attribution windows"
        title += f"\npreset {preset}" if preset else "\n"
        title += f", k-attr-mean KLD = {kld:.3g}" if np.isfinite(kld) else ""
    ax.set_title(title)
    _write(fig, path)
    return fig


# ---------------------------------------------------------------------------- logos


def _as_nlc(arr: Any, name: str, ncl: bool) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if a.ndim == 2:
        raise ValueError(f"{name}: expected a 3-D array, got shape {a.shape}; for one sequence use {name}[None]")
    c_axis = 1 if ncl else 2
    if a.ndim != 3 or a.shape[c_axis] != 4:
        want = "(N, 4, L)" if ncl else "(N, L, 4)"
        raise ValueError(f"{name}: with layout={'NCL' if ncl else 'NLC'!r} expected shape {want}, got {a.shape}")
    a = a.astype(np.float64)
    return a.transpose(0, 2, 1) if ncl else a


def _logo(mat: np.ndarray, ax: Any, start: int) -> None:
    import pandas as pd

    logomaker = _need_logomaker()
    df = pd.DataFrame(mat, columns=list("ACGT"), index=np.arange(start, start + mat.shape[0]))
    logomaker.Logo(df, ax=ax, color_scheme="classic", vpad=0.0, show_spines=False)
    ax.axhline(0, color="0.3", lw=0.5)


def _need_logomaker() -> Any:
    return need("logomaker", "plot_attribution_logo", "plot")


@_styled
def plot_attribution_logo(
    x: Any,
    attr: Any,
    index: int = 0,
    *,
    x_model: Any = None,
    layout: str = "NLC",
    start: int | None = None,
    stop: int | None = None,
    window: int | None = None,
    save: str | os.PathLike | None = None,
    title: str | None = None,
    kind: str = "grad_x_input",
    ax: Any = None,
    overwrite: bool = False,
) -> Any:
    """Sequence logo of one attribution map, with the ground truth above it (Fig. 2g).

    Parameters
    ----------
    x : array_like, shape (N, L, 4) or (N, 4, L)
        One-hot sequences.
    attr : array_like, same shape as ``x``
        Attribution maps (raw, as the model gave them).
    index : int
        Which sequence to draw.
    x_model : array_like, same shape as ``x``, optional
        Ground-truth base probabilities of the sequence model (SPEC section 4); when given,
        its information logo (bits, ``2 + sum p log2 p`` per position) is drawn above.
    layout : {"NLC", "NCL"}
    start, stop : int, optional
        Positions to draw, ``[start, stop)`` (default: the whole sequence).
    window : int, optional
        Draw ``window`` positions centred on the most attributed one (largest ``|attr x input|``)
        instead of ``start``/``stop``. Whenever part of the sequence is drawn, the title says
        which positions (0-based, as on the axis) of how many.
    save : path, optional
        Write the figure (``.png``, ``.pdf`` or ``.svg``), atomically.
    title : str, optional
        Default ``"sequence INDEX"``; the drawn positions are added when part of the sequence is
        drawn. ``""``: no title (the caller titles the axes, and says what is drawn).
    kind : {"grad_x_input", "corrected"}
        ``"grad_x_input"``: the attribution times the one-hot input (one letter per
        position, height = the score of the observed base). ``"corrected"``: the
        gauge-corrected attribution (``attr`` minus its mean over the 4 channels), all four
        letters.
    ax : Axes, or a pair of Axes (ground truth, attribution) when ``x_model`` is given
        Draw into these (default: a new figure).
    overwrite : bool
        Replace an existing ``save`` file.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _need_logomaker()
    ncl = check_layout(layout)
    title = _check_title(title)
    if kind not in ("grad_x_input", "corrected"):
        raise ValueError(f"kind: expected 'grad_x_input' or 'corrected', got {kind!r}")
    xa = _as_nlc(x, "x", ncl)
    aa = _as_nlc(attr, "attr", ncl)
    if xa.shape != aa.shape:
        raise ValueError(f"x, attr: shapes differ, {np.shape(x)} and {np.shape(attr)}")
    n, L = xa.shape[:2]
    index = check_int("index", index, -n, n - 1)
    if window is not None:
        if start is not None or stop is not None:
            raise ValueError("window: give either window or start/stop, not both")
        window = check_int("window", window, 1)
        ai = aa[index] if -n <= index < n else aa[0]
        if not np.isfinite(ai).all():
            raise ValueError(f"attr: sequence {index} has NaN or Inf values")
        centre = int(np.argmax(np.abs((ai * xa[index]).sum(axis=1))))
        w = min(window, L)
        lo = min(max(0, centre - w // 2), L - w)
        hi = lo + w
    else:
        lo = 0 if start is None else check_int("start", start, 0, L - 1)
        hi = L if stop is None else check_int("stop", stop, 1, L)
    if hi <= lo:
        raise ValueError(f"start, stop: expected start < stop, got start={lo}, stop={hi}")
    m = None
    if x_model is not None:
        m = _as_nlc(x_model, "x_model", ncl)
        if m.shape != xa.shape:
            raise ValueError(f"x_model: expected the shape of x {np.shape(x)}, got {np.shape(x_model)}")
    if not np.isfinite(aa[index]).all():
        raise ValueError(f"attr: sequence {index} has NaN or Inf values")
    path = _check_save(save, overwrite)

    a = aa[index, lo:hi]
    if kind == "grad_x_input":
        mat = a * xa[index, lo:hi]
        label = "grad x input"
    else:
        mat = a - a.mean(axis=1, keepdims=True)
        label = "corrected attribution"

    nrows = 2 if m is not None else 1
    if ax is None:
        width = min(max(4.0, 0.12 * (hi - lo) + 1.5), 24.0)
        fig, axes = plt.subplots(nrows, 1, figsize=(width, 1.6 * nrows + 0.4), sharex=True, squeeze=False)
        axes = list(axes[:, 0])
    else:
        if isinstance(ax, matplotlib.axes.Axes):
            axes = [ax]
        elif isinstance(ax, (Sequence, np.ndarray)):
            axes = list(np.ravel(np.asarray(ax, dtype=object)))
        else:
            axes = None
        if axes is None or len(axes) != nrows or not all(isinstance(a_, matplotlib.axes.Axes) for a_ in axes):
            want = "a pair of Axes (ground truth, attribution)" if nrows == 2 else "one Axes"
            raise TypeError(f"ax: expected {want}, got {ax!r}")
        fig = axes[0].figure

    if m is not None:
        p = m[index, lo:hi]
        info = np.clip(2.0 + np.sum(p * np.log2(p + 1e-10), axis=1), 0.0, None)
        _logo(p * info[:, None], axes[0], lo)
        axes[0].set_ylabel("bits")
        axes[0].set_ylim(0, 2)
        axes[0].set_title("ground truth (information of the planted motifs)", fontsize=8, loc="left")
    _logo(mat, axes[-1], lo)
    axes[-1].set_ylabel(label)
    axes[-1].set_xlabel("position in the sequence")
    for a_ in axes:
        a_.set_xlim(lo - 0.5, hi - 0.5)
    if title is None:
        title = f"sequence {index}"
    if title != "" and (lo, hi) != (0, L):  # never crop without saying so ("": no title, the caller's)
        title += f", positions {lo}-{hi - 1} of 0-{L - 1} shown"
    if title == "":
        pass
    elif m is None:
        axes[0].set_title(title)
    else:
        fig.suptitle(title, fontsize=HOUSE_STYLE["axes.titlesize"])
    _write(fig, path)
    return fig


# ---------------------------------------------------------------------------- model selection


@_styled
def plot_selection(
    table: Any,
    *,
    performance: str,
    consistency: str | Sequence[str],
    ax: Any = None,
    save: str | os.PathLike | None = None,
    color_by: str | None = None,
    label: str | None = None,
    min_performance: float | None = None,
    tolerance: float | None = None,
    higher_is_better: bool = True,
    title: str | None = None,
    overwrite: bool = False,
) -> Any:
    """Performance against consistency for every model, Pareto front marked (Fig. 3a/b).

    Parameters
    ----------
    table : DataFrame, path, list of dict or mapping
        One row per model, as :func:`acme_fast.select.select_models` takes it, or its
        output. When the table already has a ``kept`` column and neither ``min_performance``
        nor ``tolerance`` is given, that column says which models were kept; otherwise the
        filter is applied here. The Pareto front is always recomputed.
    performance, consistency : str
        Columns for the horizontal (performance) and vertical (consistency) axes; with a
        list of consistency columns, the first.
    ax : matplotlib Axes, optional
        Draw into this Axes (default: a new figure).
    save : path, optional
        Write the figure (``.png``, ``.pdf`` or ``.svg``), atomically.
    color_by : str, optional
        Colour the points by this column: one colour per category (e.g. the activation),
        or a colour map with a colorbar for a numeric column with more than 8 values.
    label : str, optional
        Annotate every point with this column's value. Default: the Pareto-optimal and the
        top-ranked models are annotated with their name (column ``model``, else the index); all
        models when there are at most 12.
    min_performance, tolerance, higher_is_better
        The performance filter, as in :func:`~acme_fast.select.select_models` (a dashed
        line marks the cutoff).
    title : str, optional
    overwrite : bool
        Replace an existing ``save`` file.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Kept models are filled circles, dropped models hollow grey-edged circles; Pareto-optimal
    models have a black edge and are joined by a line. Models with a NaN score are not drawn.
    """
    from .select import _as_table, _select

    title = _check_title(title)
    df = _as_table(table)
    kept, _, pareto, cons_cols, cutoff = _select(
        df, performance, consistency, min_performance, tolerance, higher_is_better
    )
    if min_performance is None and tolerance is None and "kept" in df.columns:
        given = df["kept"].to_numpy()
        if given.dtype != bool:
            raise TypeError(f"table: column 'kept' must be boolean, got dtype {df['kept'].dtype}")
        kept = given & kept
    for arg, col in (("color_by", color_by), ("label", label)):
        if col is not None and col not in df.columns:
            avail = ", ".join(repr(c) for c in df.columns)
            raise KeyError(f"{arg}: column {col!r} not in the table; available columns: {avail}")
    path = _check_save(save, overwrite)

    import pandas as pd

    p = pd.to_numeric(df[performance]).to_numpy(dtype=np.float64, na_value=np.nan)
    c = pd.to_numeric(df[cons_cols[0]]).to_numpy(dtype=np.float64, na_value=np.nan)
    ok = ~(np.isnan(p) | np.isnan(c))
    if not ok.any():
        raise ValueError(f"table: no model with both {performance!r} and {cons_cols[0]!r} defined; nothing to plot")

    fig, ax = _new_axes(ax, FIGSIZE["square"])
    handles: list[Any] = []

    # colours
    colors = np.array([PALETTE[0]] * len(df), dtype=object)
    mappable = None
    if color_by is not None:
        vals = df[color_by]
        numeric = pd.api.types.is_numeric_dtype(vals) and vals.dtype != bool and vals.nunique() > 8
        if numeric:
            v = vals.to_numpy(dtype=np.float64, na_value=np.nan)
            finite = v[np.isfinite(v)]
            norm = matplotlib.colors.Normalize(*(finite.min(), finite.max()) if finite.size else (0, 1))
            cmap = matplotlib.colormaps["viridis"]
            colors = np.array([cmap(norm(t)) if np.isfinite(t) else (0.6, 0.6, 0.6, 1.0) for t in v], dtype=object)
            mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
        else:
            cats = pd.unique(vals.astype(str))
            cmap_ = category_colours(cats)
            colors = np.array([cmap_[str(t)] for t in vals], dtype=object)
            handles += [
                Line2D([], [], ls="", marker="o", color=cmap_[cat], label=f"{color_by} = {cat}") for cat in cats
            ]

    # Pareto front: connect in order of performance
    front = np.flatnonzero(pareto & ok)
    front = front[np.argsort(p[front])]
    if front.size > 1:
        ax.plot(p[front], c[front], "-", color="0.2", lw=1.0, zorder=1)
    for i in np.flatnonzero(ok):
        col = colors[i]
        edge = "black" if pareto[i] else (col if kept[i] or color_by is not None else "0.5")
        ax.scatter(
            p[i], c[i], s=60 if pareto[i] else 36, facecolors=col if kept[i] else "none",
            edgecolors=edge, linewidths=1.6 if pareto[i] else 1.0, alpha=1.0 if kept[i] else 0.7, zorder=2,
        )
    cut_label = f"{words(performance)} cutoff"
    if cutoff is None and "kept" in df.columns and kept.any() and (~kept & ok).any():
        # a ranked table from select_models: the cutoff lies at the worst kept model
        cutoff = float(np.min(p[kept & ok])) if higher_is_better else float(np.max(p[kept & ok]))
        cut_label = "worst kept model"
    if cutoff is not None:
        ax.axvline(cutoff, color="0.4", ls="--", lw=0.8, zorder=0)
        handles.append(Line2D([], [], color="0.4", ls="--", lw=0.8, label=cut_label))
    # labelled points: every model with label=COL, or when there are at most 12; else (from a
    # 'model' column or the index) the Pareto front and the top-ranked model. Labels of points in
    # the right part of the axes go to their left, so that they stay inside the figure.
    if label is not None:
        names, show = df[label].astype(str).to_numpy(), ok
    else:
        names = (df["model"] if "model" in df.columns else pd.Series(df.index)).astype(str).to_numpy()
        show = ok if ok.sum() <= 12 else ok & (pareto | (kept & (c == np.max(np.where(kept & ok, c, -np.inf)))))
    lo, hi = (float(np.min(p[ok])), float(np.max(p[ok]))) if ok.any() else (0.0, 0.0)
    for i in np.flatnonzero(show):
        right = hi > lo and p[i] > lo + 0.6 * (hi - lo)
        ax.annotate(names[i], (p[i], c[i]), xytext=(-5 if right else 5, 3), textcoords="offset points", fontsize=7,
                    ha="right" if right else "left")
    base = PALETTE[0] if color_by is None else "0.5"
    handles = [
        Line2D([], [], ls="", marker="o", color=base, label="kept"),
        Line2D([], [], ls="", marker="o", markerfacecolor="none", markeredgecolor="0.5", label="dropped"),
        Line2D([], [], ls="-", marker="o", color="0.2", markerfacecolor="white", markeredgecolor="black",
               markeredgewidth=1.6, label="Pareto front"),
    ] + handles
    if not (~kept & ok).any():
        handles.pop(1)
    ax.legend(handles=handles, fontsize=8, frameon=False, loc="best")
    if mappable is not None:
        fig.colorbar(mappable, ax=ax).set_label(color_by)
    ax.set_xlabel(f"{words(performance)}, performance" + ("" if higher_is_better else " (lower is better)"))
    ax.set_ylabel(f"{words(cons_cols[0])}, consistency")
    if title is None:
        title = (f"Model selection: {int((kept & ok).sum())} of {int(ok.sum())} models kept,\n"
                 f"ranked by {words(cons_cols[0])}")
    ax.set_title(title)
    _write(fig, path)
    return fig


# ---------------------------------------------------------------------------- motifs


@_styled
def plot_motif(
    motif: Any,
    *,
    save: str | os.PathLike | None = None,
    title: str | None = None,
    source: str | None = None,
    overwrite: bool = False,
) -> Any:
    """A discovered motif: its PWM as an information logo (bits) above its CWM (attribution).

    Parameters
    ----------
    motif : acme_fast.motifs.Motif
    save : path, optional
        ``.png``, ``.pdf`` or ``.svg``, written atomically.
    title : str, optional
        Default: the motif's name, consensus, support, method(s) and best database match.
    source : str, optional
        Which model or file the motif comes from, added to the default title.
    overwrite : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .motifs import Motif

    if not isinstance(motif, Motif):
        raise TypeError(f"motif: expected an acme_fast.motifs.Motif, got {type(motif).__name__}")
    path = _check_save(save, overwrite)
    title = _check_title(title)
    pwm = np.asarray(motif.pwm, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ic = 2.0 + np.nansum(np.where(pwm > 0, pwm * np.log2(pwm), 0.0), axis=1, keepdims=True)
    width = max(3.0, 0.42 * motif.width + 1.4)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(width, 3.4), sharex=True)
    _logo(pwm * ic, a1, 0)
    a1.set_ylabel("bits")
    a1.set_ylim(0, 2)
    _logo(np.asarray(motif.cwm, dtype=np.float64), a2, 0)
    a2.set_ylabel("attribution")
    a2.set_xlabel("position in motif")
    if title is None:
        best = motif.matches[0] if motif.matches else None
        match = f"; best match {best['name']} (q = {best['q_value']:.2g})" if best else ""
        where = f" of {source}" if source else ""
        found = " and ".join({"kmer": "k-mer", "kattr": "k-attr"}[m] for m in motif.methods)
        title = (f"{motif.name}{where}: {motif.consensus}\n{motif.support} seqlets, found by the {found} "
                 f"method{'s' if len(motif.methods) > 1 else ''}{match}")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _write(fig, path)
    return fig


# ---------------------------------------------------------------------------- sensitivity


@_styled
def plot_sensitivity(
    table: Any,
    *,
    group: str | None = None,
    panel: str | None = None,
    save: str | os.PathLike | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> Any:
    """KLD against each hyperparameter (the paper's Figure 6), from :func:`acme_fast.sensitivity`.

    One column of panels per (metric, hyperparameter varied): k-mer KLD against k and against
    the quantile, k-attr-mean KLD against the window and against the quantile; one row per value
    of ``panel`` (e.g. the first-layer activation). Within a panel one line per value of
    ``group`` (e.g. the regularisation), the mean over its sets with the standard error as a band,
    coloured in the house palette.

    Parameters
    ----------
    table : DataFrame
        The table of :func:`acme_fast.sensitivity`, with the ``group``/``panel`` columns merged in.
    group, panel : str, optional
        Columns that colour lines and split rows of panels (default: one line per set, one row).
    save, title, overwrite
        As the other plots.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import pandas as pd

    path = _check_save(save, overwrite)
    title = _check_title(title)
    t = pd.DataFrame(table).copy()
    need = {"set", "metric", "varied", "kld", "quantile"}
    if not need <= set(t.columns):
        raise ValueError(f"table: expected the columns of acme_fast.sensitivity ({', '.join(sorted(need))}), "
                         f"got {', '.join(map(str, t.columns))}")
    for nm, col in (("group", group), ("panel", panel)):
        if col is not None and col not in t.columns:
            raise KeyError(f"{nm}: column {col!r} not in the table; available: {', '.join(map(str, t.columns))}")
    gcol = group or "set"
    t["_panel"] = t[panel].astype(str) if panel else ""
    combos = [(m, v) for m, v in (("kmer_kld", "k"), ("kmer_kld", "quantile"), ("kattr_kld", "window"),
                                  ("kattr_kld", "quantile")) if ((t["metric"] == m) & (t["varied"] == v)).any()]
    if not combos:
        raise ValueError("table: no one-at-a-time rows (design='grid' tables have no single hyperparameter axis)")
    rows = sorted(t["_panel"].unique())
    groups = list(dict.fromkeys(t[gcol].astype(str)))
    colour = category_colours(groups)
    fig, axes = plt.subplots(len(rows), len(combos), figsize=(3.0 * len(combos) + 0.6, 2.6 * len(rows) + 0.6),
                             squeeze=False)
    for r, pv in enumerate(rows):
        for c, (metric, varied) in enumerate(combos):
            ax = axes[r, c]
            sub = t[(t["_panel"] == pv) & (t["metric"] == metric) & (t["varied"] == varied)]
            for g in groups:
                sg = sub[sub[gcol].astype(str) == g]
                if sg.empty:
                    continue
                stats = sg.groupby(varied)["kld"].agg(["mean", "std", "count"]).sort_index()
                xs = stats.index.to_numpy(dtype=float)
                se = (stats["std"].fillna(0) / np.sqrt(stats["count"])).to_numpy()
                ax.plot(xs, stats["mean"], marker="o", ms=3.5, lw=1.4, color=colour[g], label=g)
                ax.fill_between(xs, stats["mean"] - se, stats["mean"] + se, color=colour[g], alpha=0.18, lw=0)
            ax.set_xlabel({"k": "k-mer length k", "window": "window (positions)",
                           "quantile": "attribution quantile"}[varied])
            ax.set_ylabel(f"{panel} {pv}\n{words(metric)}" if panel and c == 0 else words(metric))
            if r == 0:
                ax.set_title(f"{words(metric)} against {varied}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 7), frameon=False,
                   title=words(gcol), bbox_to_anchor=(0.5, -0.02))
    n_sets = t["set"].nunique()
    fig.suptitle(title or f"Sensitivity of the consistency metrics to their hyperparameters ({n_sets} attribution "
                 f"sets; mean and standard error per {words(gcol)})", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    _write(fig, path)
    return fig
