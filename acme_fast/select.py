"""Model selection: keep the models that generalise, rank them by consistency (SPEC section 5).

The paper's recipe: among the models whose generalisation score is good enough, prefer the
one whose attribution maps are the most consistent (highest KLD). :func:`select_models` does
that on a table with one row per model, and flags the Pareto front of performance against
consistency.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["select_models"]

#: Columns that :func:`select_models` adds (and overwrites when already present).
ADDED_COLUMNS = ("kept", "rank", "pareto")


def _as_table(table: Any) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a CSV/TSV/JSON path, a list of dict rows or a mapping."""
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, (str, os.PathLike)):
        path = Path(table)
        if not path.is_file():
            raise FileNotFoundError(f"table: no such file: {str(path)!r}")
        suffix = path.suffix.lower()
        if suffix == ".json":
            return pd.read_json(path, orient="records")
        if suffix in (".tsv", ".tab"):
            return pd.read_csv(path, sep="\t")
        return pd.read_csv(path)
    if isinstance(table, Mapping):
        if table and all(isinstance(v, Mapping) for v in table.values()):
            return pd.DataFrame.from_dict(table, orient="index")  # {model name: row}
        return pd.DataFrame(table)  # {column: values}
    if isinstance(table, Sequence) and not isinstance(table, (bytes, bytearray)):
        if not all(isinstance(r, Mapping) for r in table):
            raise TypeError("table: expected a list of dict rows (one per model)")
        return pd.DataFrame(list(table))
    raise TypeError(
        "table: expected a pandas DataFrame, a CSV/JSON path, a list of dict rows or a mapping, "
        f"got {type(table).__name__}"
    )


def _column(df: pd.DataFrame, arg: str, col: Any) -> np.ndarray:
    """Column ``col`` as float64 (NaN where missing); errors name the argument."""
    if not isinstance(col, str) and not isinstance(col, numbers.Integral):
        raise TypeError(f"{arg}: expected a column name, got {type(col).__name__} {col!r}")
    if col in ADDED_COLUMNS:
        raise ValueError(f"{arg}: {col!r} is a column that select_models adds; rename it")
    if col not in df.columns:
        avail = ", ".join(repr(c) for c in df.columns) or "none"
        raise KeyError(f"{arg}: column {col!r} not in the table; available columns: {avail}")
    s = df[col]
    if s.dtype == bool or not (pd.api.types.is_numeric_dtype(s) or s.dtype == object):
        raise TypeError(f"{arg}: column {col!r} must be numeric, got dtype {s.dtype}")
    try:
        v = pd.to_numeric(s, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise TypeError(f"{arg}: column {col!r} must be numeric, got non-numeric values") from None
    inf = np.isinf(v)
    if inf.any():  # best - tolerance, ranks and the front are meaningless with an infinite value
        j = int(np.argmax(inf))
        raise ValueError(f"{arg}: column {col!r} has {v[j]} in row {df.index[j]!r}; expected finite values "
                         "(NaN marks a missing value: that model is not kept)")
    return v


def _check_threshold(name: str, value: Any, nonneg: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name}: expected a finite number or None, got {value!r}")
    if nonneg and value < 0:
        raise ValueError(f"{name}: expected a number >= 0, got {value}")
    return float(value)


def pareto_front(performance: Any, consistency: Any, diversity: Any = None) -> np.ndarray:
    """Boolean mask of the Pareto front, every axis "higher is better".

    A point is on the front if no other point is at least as good on every axis and strictly
    better on one (identical points are all on the front). Points with a NaN on any axis are
    never on the front and never dominate. O(n log n) on two axes; with ``diversity`` (a third
    axis, e.g. the number of motifs) O(n**2).
    """
    p = np.asarray(performance, dtype=np.float64)
    c = np.asarray(consistency, dtype=np.float64)
    if diversity is not None:
        d = np.asarray(diversity, dtype=np.float64)
        pts = np.stack([p, c, d], axis=1)
        ok = ~np.isnan(pts).any(axis=1)
        front = np.zeros(p.shape[0], dtype=bool)
        idx = np.flatnonzero(ok)
        v = pts[idx]
        for j, i in enumerate(idx):
            ge = (v >= v[j]).all(axis=1) & (v > v[j]).any(axis=1)
            front[i] = not ge.any()
        return front
    front = np.zeros(p.shape[0], dtype=bool)
    valid = np.flatnonzero(~(np.isnan(p) | np.isnan(c)))
    if valid.size == 0:
        return front
    # best performance first; sweep groups of equal performance, tracking the best
    # consistency seen among strictly better performances
    order = valid[np.lexsort((-c[valid], -p[valid]))]
    best_c = -np.inf
    i = 0
    n = order.size
    while i < n:
        j = i
        while j < n and p[order[j]] == p[order[i]]:
            j += 1
        group = order[i:j]
        c_max = c[group[0]]  # sorted by consistency, descending, within the group
        if c_max > best_c:  # else dominated by a strictly better performance
            front[group[c[group] == c_max]] = True
        best_c = max(best_c, c_max)
        i = j
    return front


def _select(
    df: pd.DataFrame,
    performance: str,
    consistency: str | Sequence[str],
    min_performance: float | None,
    tolerance: float | None,
    higher_is_better: bool,
    diversity: str | None = None,
    min_diversity: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], float | None]:
    """Positional (kept, rank, pareto), the consistency columns and the performance cutoff."""
    if isinstance(consistency, str) or isinstance(consistency, numbers.Integral):
        cons_cols = [consistency]
    elif isinstance(consistency, Sequence) and len(consistency) > 0:
        cons_cols = list(consistency)
    else:
        raise TypeError(f"consistency: expected a column name or a non-empty list of names, got {consistency!r}")
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise TypeError(f"higher_is_better: expected True or False, got {higher_is_better!r}")
    min_performance = _check_threshold("min_performance", min_performance)
    tolerance = _check_threshold("tolerance", tolerance, nonneg=True)
    if min_performance is not None and tolerance is not None:
        raise ValueError("min_performance, tolerance: give one of them, not both")

    perf = _column(df, "performance", performance)
    cons = [_column(df, "consistency", c) for c in cons_cols]
    sign = 1.0 if higher_is_better else -1.0
    p = sign * perf  # internally, higher is better
    c = cons[0]
    valid = ~(np.isnan(p) | np.isnan(c))

    cutoff: float | None = None
    if min_performance is not None:
        cutoff = min_performance
    elif tolerance is not None and valid.any():
        cutoff = sign * (np.max(p[valid]) - tolerance)
    kept = valid.copy()
    if cutoff is not None:
        # tolerance: allow float round-off in ``best - tolerance`` (0.95 - 0.05 != 0.9)
        slack = 1e-12 * max(1.0, abs(cutoff)) if tolerance is not None else 0.0
        kept &= p >= sign * cutoff - slack

    div = None
    if diversity is not None:
        div = _column(df, "diversity", diversity)
    min_diversity = _check_threshold("min_diversity", min_diversity)
    if min_diversity is not None:
        if div is None:
            raise ValueError("min_diversity: needs diversity= (the column, e.g. 'n_motifs')")
        kept &= ~np.isnan(div) & (div >= min_diversity)

    rank = np.full(len(df), np.nan)
    if kept.any():
        rank[kept] = pd.Series(c[kept]).rank(method="min", ascending=False).to_numpy()
    return kept, rank, pareto_front(p, c, div), cons_cols, cutoff


def select_models(
    table: Any,
    *,
    performance: str,
    consistency: str | Sequence[str],
    min_performance: float | None = None,
    tolerance: float | None = None,
    higher_is_better: bool = True,
    diversity: str | None = None,
    min_diversity: float | None = None,
) -> pd.DataFrame:
    """Keep the models that generalise, rank them by consistency, flag the Pareto front.

    Parameters
    ----------
    table : DataFrame, str, path, list of dict or mapping
        One row per model: a DataFrame, a CSV (``.tsv``: tab-separated) or JSON (a list of
        records, as ``acme-fast score -o scores.json`` writes) file, a list of dict rows,
        a mapping ``{column: values}`` or a mapping ``{model name: row dict}`` (the names
        become the index).
    performance : str
        Column of the generalisation score (AUROC, AUPR, Pearson r, ...).
    consistency : str or list of str
        Column(s) of consistency scores (a KLD: higher is more consistent). With a list,
        models are ranked and the Pareto front is computed on the first; the others only
        break ties in the order of the returned rows.
    min_performance : float, optional
        Keep the models with ``performance >= min_performance`` (``<=`` when
        ``higher_is_better=False``).
    tolerance : float, optional
        Keep the models within ``tolerance`` of the best performance (``>= best - tolerance``,
        or ``<= best + tolerance`` when ``higher_is_better=False``; up to float round-off). At most one of
        ``min_performance`` and ``tolerance``; with neither, every model is kept.
    higher_is_better : bool
        Whether a higher ``performance`` is better (False for a loss or an error, e.g. MSE).
        Consistency is always "higher is better".
    diversity : str, optional
        A column of motif diversity (``"n_motifs"`` or ``"motif_entropy"`` from
        ``score_model(..., motifs=True)`` / ``--motifs``; higher is better). With it the Pareto
        front is over performance, consistency and diversity.
    min_diversity : float, optional
        Keep only models with ``diversity >= min_diversity`` (e.g. rank by KLD among the models
        that recover at least 3 motifs).

    Returns
    -------
    DataFrame
        A copy of the table (original columns and index) with three columns added (or
        replaced): ``kept`` (bool; passed the performance filter), ``rank`` (pandas ``Int64``; 1 =
        most consistent kept model, ties share the lowest rank (``method="min"``), ``<NA>`` for
        dropped models) and ``pareto`` (bool; on the Pareto front of performance against
        consistency over *all* models, whatever the filter: no other model is at least as
        good on both and strictly better on one). Rows are sorted by rank, kept models
        first; dropped models follow by decreasing consistency.

    Raises
    ------
    KeyError
        ``performance`` or a ``consistency`` column is not in the table (the message lists
        the available columns).
    TypeError, ValueError
        A non-numeric column, a bad threshold, or both ``min_performance`` and ``tolerance``.

    Notes
    -----
    A model whose performance or (first) consistency is NaN (e.g. a k-mer KLD with no
    attributed interval) is never kept, gets rank <NA>, is not on the Pareto front and does
    not dominate any model; it is not used to find the best performance for ``tolerance``.

    Examples
    --------
    >>> import pandas as pd
    >>> from acme_fast.select import select_models
    >>> scores = pd.DataFrame({
    ...     "model": ["relu", "exp", "relu_bn", "exp_bn"],
    ...     "auroc": [0.91, 0.92, 0.80, 0.90],
    ...     "kmer_kld": [1.2, 2.5, 3.0, 2.0],
    ... })
    >>> sel = select_models(scores, performance="auroc", consistency="kmer_kld", tolerance=0.02)
    >>> sel[["model", "kept", "rank", "pareto"]]
         model   kept  rank  pareto
    1      exp   True   1.0    True
    3   exp_bn   True   2.0   False
    0     relu   True   3.0   False
    2  relu_bn  False   NaN    True
    """
    df = _as_table(table)
    kept, rank, pareto, cons_cols, _ = _select(
        df, performance, consistency, min_performance, tolerance, higher_is_better, diversity, min_diversity
    )
    out = df.copy()
    out["kept"] = kept
    # an integer rank, missing (blank in a CSV) for the models that were not kept
    out["rank"] = pd.array(np.where(np.isnan(rank), 0, rank).astype(np.int64), dtype="Int64")
    out.loc[np.isnan(rank), "rank"] = pd.NA
    out["pareto"] = pareto

    # order: rank (NaN last), then the consistency columns (descending), then performance
    keys = [rank]
    for col in cons_cols:
        v = _column(df, "consistency", col)
        keys.append(np.where(np.isnan(v), np.inf, -v))
    perf = _column(df, "performance", performance) * (1.0 if higher_is_better else -1.0)
    keys.append(np.where(np.isnan(perf), np.inf, -perf))
    keys[0] = np.where(np.isnan(rank), np.inf, rank)
    order = np.lexsort(tuple(reversed(keys)))  # lexsort: last key is the primary one
    return out.iloc[order]
