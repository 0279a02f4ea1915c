"""How the consistency metrics depend on their hyperparameters (the paper's Figure 6).

:func:`acme_fast.sensitivity` scores many attribution sets over grids of ``k`` (k-mer KLD), ``window``
(k-attr-mean KLD) and the attribution ``quantile`` (both), reading each set once for all
settings: the metrics' accumulators for every setting sit side by side and see the same batches
(twice for the acme preset's global threshold). The result is a tidy table, one row per set x
metric x setting; :func:`acme_fast.plot.plot_sensitivity` draws the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import numpy as np

from ._validate import check_layout, check_preset

__all__ = ["sensitivity", "settings"]

DEFAULTS = {"k": 6, "quantile": 0.9, "window": 3}


def _values(name: str, v: Any, kind: type) -> tuple:
    vals = (v,) if np.isscalar(v) else tuple(v)
    if not vals:
        raise ValueError(f"{name}: expected at least one value")
    out = []
    for x in vals:
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: expected numbers, got {type(x).__name__} {x!r}")
        if kind is int and float(x) != int(x):
            raise ValueError(f"{name}: expected integers, got {x!r}")
        out.append(kind(x))
    return tuple(dict.fromkeys(out))


def settings(k: Any = (4, 5, 6, 7, 8), quantile: Any = (0.8, 0.85, 0.9, 0.95), window: Any = (1, 3, 5, 7, 9), *,
             design: str = "one_at_a_time", defaults: Mapping[str, Any] | None = None,
             metrics: Sequence[str] = ("kmer", "kattr")) -> list[dict[str, Any]]:
    """The settings a sensitivity run scores: dicts ``metric``, ``varied``, ``k``/``window``, ``quantile``.

    ``design="one_at_a_time"`` (the paper's figure): each hyperparameter over its values with the
    others at ``defaults`` (k 6, quantile 0.9, window 3); ``"grid"``: every combination.
    """
    k, quantile, window = _values("k", k, int), _values("quantile", quantile, float), _values("window", window, int)
    d = dict(DEFAULTS, **(defaults or {}))
    if design not in ("one_at_a_time", "grid"):
        raise ValueError(f"design: expected 'one_at_a_time' or 'grid', got {design!r}")
    out: list[dict[str, Any]] = []
    seen = set()  # a setting appears once per sweep (the defaults lie on every sweep)

    def add(row: dict) -> None:
        key = (row["metric"], row["varied"], row.get("k"), row.get("window"), row["quantile"])
        if key not in seen:
            seen.add(key)
            out.append(row)

    # each metric: its own hyperparameter (k or window) and the shared quantile
    for metric, name, own in (("kmer", "k", k), ("kattr", "window", window)):
        if metric not in metrics:
            continue
        m = f"{metric}_kld"
        if design == "grid":
            for v in own:
                for q in quantile:
                    add({"metric": m, "varied": "grid", name: v, "quantile": q})
        else:
            for v in own:
                add({"metric": m, "varied": name, name: v, "quantile": d["quantile"]})
            for q in quantile:
                add({"metric": m, "varied": "quantile", name: d[name], "quantile": q})
    return out


def sensitivity(sets: Mapping[str, Any], x: Any = None, *, k: Any = (4, 5, 6, 7, 8),
                quantile: Any = (0.8, 0.85, 0.9, 0.95), window: Any = (1, 3, 5, 7, 9),
                design: str = "one_at_a_time", defaults: Mapping[str, Any] | None = None,
                metrics: Sequence[str] = ("kmer", "kattr"), preset: str = "paper", layout: str = "NLC",
                batch_size: int | None = None, dataset: str | None = None, x_dataset: str | None = None,
                n_threads: int | None = None, progress: bool = False, models: Mapping[str, Any] | None = None,
                method: str = "saliency", method_kwargs: Mapping[str, Any] | None = None):
    """Score attribution sets (arrays, files or models) over grids of the metrics' hyperparameters.

    Parameters
    ----------
    sets : mapping name -> array or path
        Attribution sets, each ``(N, L, 4)`` / ``(N, 4, L)`` (``.npy``, ``.npz``, ``.h5``,
        ``.zarr``, or an array), all of the same sequences ``x``.
    x : array or path, optional
        The one-hot sequences (needed for the k-mer KLD and for ``models``).
    k, quantile, window : sequences
        The values of each hyperparameter (see :func:`settings` for ``design`` and
        ``defaults``).
    metrics : sequence of {"kmer", "kattr"}
    preset, layout, batch_size, dataset, x_dataset, n_threads
        As :func:`acme_fast.stream.score_stream`.
    models : mapping name -> model, optional
        Models (Keras, PyTorch, or paths) whose attributions of ``x`` (``method``,
        ``method_kwargs``) are computed once and scored like the sets.

    Returns
    -------
    pandas.DataFrame
        One row per set x setting: ``set``, ``metric`` (``kmer_kld``/``kattr_kld``), ``varied``
        (``k``, ``window``, ``quantile`` or ``grid``), ``k``, ``window``, ``quantile``, ``kld``,
        ``n`` (attributed intervals or points), ``preset``.

    Examples
    --------
    >>> t = af.sensitivity({"exp": "exp_sal.npy", "relu": "relu_sal.npy"}, "x.npy")   # doctest: +SKIP
    >>> t.pivot_table(index="k", columns="set", values="kld").loc[:, ...]              # doctest: +SKIP
    """
    import pandas as pd

    from .io import check_pair, default_batch_size, open_in
    from .kattr import KattrAccumulator
    from .kmer import KmerAccumulator

    check_preset(preset)
    check_layout(layout)
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if not metrics or any(m not in ("kmer", "kattr") for m in metrics):
        raise ValueError(f"metrics: expected 'kmer', 'kattr' or both, got {metrics!r}")
    plan = settings(k, quantile, window, design=design, defaults=defaults, metrics=metrics)
    sets = dict(sets or {})
    if models:
        if x is None:
            raise ValueError("models: computing attributions needs x")
        from . import attribution as at

        xa = np.asarray(x) if not isinstance(x, (str,)) and not hasattr(x, "__fspath__") else None
        if xa is None:
            from .io import open_source

            with open_source(x, x_dataset, layout, name="seqs") as xs:
                xa = xs.read(0, xs.n_sequences)
        for name, mdl in models.items():
            if name in sets:
                raise ValueError(f"models: {name!r} is also the name of an attribution set")
            sets[name] = at._collect(mdl, xa, at._ALIASES.get(method, method), batch_size or 256, layout,
                                     **dict(method_kwargs or {}))
        x = xa
    if not sets:
        raise ValueError("sets: expected at least one attribution set (or models)")
    if "kmer" in metrics and x is None:
        raise ValueError("x: the k-mer KLD needs the one-hot sequences (or metrics=('kattr',))")

    rows = []
    for name, src in sets.items():
        with ExitStack() as stack:
            a_src = open_in(stack, src, dataset, layout, "attr")
            x_src = open_in(stack, x, x_dataset, layout, "seqs") if x is not None else None
            if x_src is not None:
                check_pair(x_src, a_src)
            accs = []
            for s in plan:
                common = {"preset": preset, "layout": layout, "n_threads": n_threads, "quantile": s["quantile"]}
                if s["metric"] == "kmer_kld":
                    accs.append((s, KmerAccumulator(k=s["k"], **common)))
                else:
                    accs.append((s, KattrAccumulator(window=s["window"], **common)))
            n_passes = max(getattr(acc, "n_passes", 1) for _, acc in accs)
            bs = batch_size or (default_batch_size(a_src, x_src) if x_src is not None else default_batch_size(a_src))
            N = a_src.n_sequences
            for p in range(n_passes):
                for s0 in range(0, N, bs):
                    e = min(N, s0 + bs)
                    ab = a_src.read(s0, e)
                    xb = x_src.read(s0, e) if (x_src is not None and p == 0) else None
                    for st, acc in accs:
                        if p >= getattr(acc, "n_passes", 1):
                            continue
                        if st["metric"] == "kmer_kld":
                            acc.update(xb, ab)
                        else:
                            acc.update(ab)
                if p + 1 < n_passes:
                    for _, acc in accs:
                        if getattr(acc, "n_passes", 1) > p + 1:
                            acc.next_pass()
                if progress:
                    print(f"sensitivity: {name} pass {p + 1}/{n_passes}", flush=True)
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # NaN KLDs are rows, not warnings
                for st, acc in accs:
                    r = acc.result()
                    n = r.n_intervals if st["metric"] == "kmer_kld" else r.n_points
                    rows.append({"set": str(name), "metric": st["metric"], "varied": st["varied"],
                                 "k": st.get("k"), "window": st.get("window"), "quantile": st["quantile"],
                                 "kld": float(r.kld), "n": int(n), "preset": preset})
    df = pd.DataFrame(rows, columns=["set", "metric", "varied", "k", "window", "quantile", "kld", "n", "preset"])
    df["k"] = df["k"].astype("Int64")
    df["window"] = df["window"].astype("Int64")
    return df
