"""Model selection (SPEC section 5): filters, ranks, Pareto front, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import acme_fast
from acme_fast.select import pareto_front, select_models


def brute_front(p, c):
    """O(n^2) definition: not dominated by any other model (NaN rows never on the front)."""
    n = len(p)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        if np.isnan(p[i]) or np.isnan(c[i]):
            continue
        dominated = False
        for j in range(n):
            if j == i or np.isnan(p[j]) or np.isnan(c[j]):
                continue
            if p[j] >= p[i] and c[j] >= c[i] and (p[j] > p[i] or c[j] > c[i]):
                dominated = True
                break
        out[i] = not dominated
    return out


def table():
    return pd.DataFrame(
        {
            "model": ["relu", "exp", "relu_bn", "exp_bn", "tiny"],
            "auroc": [0.91, 0.92, 0.80, 0.90, 0.70],
            "kmer_kld": [1.2, 2.5, 3.0, 2.0, 0.1],
            "kattr_kld": [0.5, 0.7, 0.9, 0.8, 0.2],
        }
    )


def by_model(sel):
    return sel.set_index("model")


def test_lazy_attribute():
    assert acme_fast.select_models is select_models


def test_no_filter_keeps_all_and_ranks_by_consistency():
    sel = select_models(table(), performance="auroc", consistency="kmer_kld")
    assert list(sel["model"]) == ["relu_bn", "exp", "exp_bn", "relu", "tiny"]
    assert list(sel["rank"]) == [1, 2, 3, 4, 5]
    assert sel["kept"].all()
    assert set(sel.loc[sel["pareto"], "model"]) == {"relu_bn", "exp"}
    # original columns, index and row data preserved; input untouched
    assert list(sel.columns[:4]) == ["model", "auroc", "kmer_kld", "kattr_kld"]
    assert list(sel.index) == [2, 1, 3, 0, 4]
    assert "kept" not in table().columns


def test_input_not_modified():
    df = table()
    before = df.copy()
    select_models(df, performance="auroc", consistency="kmer_kld", tolerance=0.01)
    pd.testing.assert_frame_equal(df, before)


def test_min_performance():
    sel = by_model(select_models(table(), performance="auroc", consistency="kmer_kld", min_performance=0.9))
    assert sel["kept"].to_dict() == {"relu_bn": False, "exp": True, "exp_bn": True, "relu": True, "tiny": False}
    assert sel.loc["exp", "rank"] == 1 and sel.loc["exp_bn", "rank"] == 2 and sel.loc["relu", "rank"] == 3
    assert pd.isna(sel.loc["relu_bn", "rank"]) and pd.isna(sel.loc["tiny", "rank"])
    assert str(sel["rank"].dtype) == "Int64"
    # Pareto is over all models, whatever the filter
    assert bool(sel.loc["relu_bn", "pareto"])


def test_kept_first_then_dropped_by_consistency():
    sel = select_models(table(), performance="auroc", consistency="kmer_kld", min_performance=0.9)
    assert list(sel["model"]) == ["exp", "exp_bn", "relu", "relu_bn", "tiny"]


def test_tolerance_and_round_off():
    sel = by_model(select_models(table(), performance="auroc", consistency="kmer_kld", tolerance=0.02))
    assert sel["kept"].to_dict() == {"relu_bn": False, "exp": True, "exp_bn": True, "relu": True, "tiny": False}
    df = pd.DataFrame({"p": [0.95, 0.9, 0.89], "c": [1.0, 2.0, 3.0]})
    sel = select_models(df, performance="p", consistency="c", tolerance=0.05)  # 0.95 - 0.05 = 0.8999999...
    assert sel.sort_index()["kept"].tolist() == [True, True, False]
    sel = select_models(df, performance="p", consistency="c", tolerance=0)
    assert sel.sort_index()["kept"].tolist() == [True, False, False]


def test_lower_is_better():
    df = pd.DataFrame({"mse": [0.10, 0.12, 0.30], "kld": [1.0, 2.0, 3.0]})
    sel = select_models(df, performance="mse", consistency="kld", higher_is_better=False, tolerance=0.05)
    s = sel.sort_index()
    assert s["kept"].tolist() == [True, True, False]
    assert s["pareto"].tolist() == [True, True, True]
    sel = select_models(df, performance="mse", consistency="kld", higher_is_better=False, min_performance=0.11)
    assert sel.sort_index()["kept"].tolist() == [True, False, False]
    df2 = pd.DataFrame({"mse": [0.10, 0.12], "kld": [2.0, 1.0]})
    s2 = select_models(df2, performance="mse", consistency="kld", higher_is_better=False).sort_index()
    assert s2["pareto"].tolist() == [True, False]


def test_rank_ties_min():
    df = pd.DataFrame({"p": [0.9, 0.8, 0.7, 0.6], "c": [2.0, 3.0, 2.0, 1.0]})
    s = select_models(df, performance="p", consistency="c").sort_index()
    assert s["rank"].tolist() == [2, 1, 2, 4]
    # identical points are all on the front; a tie in c with lower p is dominated
    assert s["pareto"].tolist() == [True, True, False, False]
    df = pd.DataFrame({"p": [0.9, 0.9, 0.5], "c": [2.0, 2.0, 1.0]})
    assert select_models(df, performance="p", consistency="c").sort_index()["pareto"].tolist() == [True, True, False]


def test_consistency_list():
    sel = select_models(table(), performance="auroc", consistency=["kmer_kld", "kattr_kld"])
    assert list(sel["model"]) == ["relu_bn", "exp", "exp_bn", "relu", "tiny"]
    # ties on the first column are ordered by the second
    df = pd.DataFrame({"m": list("abc"), "p": [0.9, 0.8, 0.7], "k1": [1.0, 1.0, 0.5], "k2": [0.1, 0.9, 0.5]})
    sel = select_models(df, performance="p", consistency=["k1", "k2"])
    assert list(sel["m"]) == ["b", "a", "c"]
    assert sel["rank"].tolist() == [1, 1, 3]


def test_nan_rows():
    df = pd.DataFrame({"p": [0.9, np.nan, 0.99, 0.5], "c": [1.0, 5.0, np.nan, 0.5]})
    sel = select_models(df, performance="p", consistency="c", tolerance=0.1)
    s = sel.sort_index()
    # best performance for the tolerance ignores the NaN-consistency row (0.99)
    assert s["kept"].tolist() == [True, False, False, False]
    assert s["pareto"].tolist() == [True, False, False, False]
    assert s["rank"].iloc[[1, 2, 3]].isna().all()
    assert list(sel.index[:1]) == [0]
    allnan = pd.DataFrame({"p": [np.nan], "c": [np.nan]})
    out = select_models(allnan, performance="p", consistency="c", tolerance=0.1)
    assert not out["kept"].any() and not out["pareto"].any()


@pytest.mark.parametrize("seed", range(40))
def test_pareto_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    # few distinct values, so that ties are common
    p = rng.integers(0, 6, n).astype(float) / 5
    c = rng.integers(0, 6, n).astype(float)
    p[rng.random(n) < 0.1] = np.nan
    c[rng.random(n) < 0.1] = np.nan
    np.testing.assert_array_equal(pareto_front(p, c), brute_front(p, c))
    sel = select_models(pd.DataFrame({"p": p, "c": c}), performance="p", consistency="c").sort_index()
    np.testing.assert_array_equal(sel["pareto"].to_numpy(), brute_front(p, c))
    sel = select_models(pd.DataFrame({"p": p, "c": c}), performance="p", consistency="c",
                        higher_is_better=False).sort_index()
    np.testing.assert_array_equal(sel["pareto"].to_numpy(), brute_front(-p, c))


def test_table_inputs(tmp_path):
    rows = table().to_dict("records")
    ref = select_models(rows, performance="auroc", consistency="kmer_kld")
    assert list(ref["model"]) == ["relu_bn", "exp", "exp_bn", "relu", "tiny"]
    cols = table().to_dict("list")
    assert list(select_models(cols, performance="auroc", consistency="kmer_kld")["model"]) == list(ref["model"])
    named = {r["model"]: {k: v for k, v in r.items() if k != "model"} for r in rows}
    assert list(select_models(named, performance="auroc", consistency="kmer_kld").index) == list(ref["model"])
    csv = tmp_path / "scores.csv"
    table().to_csv(csv, index=False)
    assert list(select_models(csv, performance="auroc", consistency="kmer_kld")["model"]) == list(ref["model"])
    assert list(select_models(str(csv), performance="auroc", consistency="kmer_kld")["model"]) == list(ref["model"])
    js = tmp_path / "scores.json"
    table().to_json(js, orient="records")
    assert list(select_models(js, performance="auroc", consistency="kmer_kld")["model"]) == list(ref["model"])
    # the output can be selected again (the added columns are replaced)
    again = select_models(ref, performance="auroc", consistency="kmer_kld", min_performance=0.9)
    assert list(again.columns) == list(ref.columns)


def test_errors(tmp_path):
    df = table()
    with pytest.raises(KeyError, match=r"performance: column 'aupr' not in the table; available columns: 'model'"):
        select_models(df, performance="aupr", consistency="kmer_kld")
    with pytest.raises(KeyError, match=r"consistency: column 'kld'"):
        select_models(df, performance="auroc", consistency=["kmer_kld", "kld"])
    with pytest.raises(ValueError, match="min_performance, tolerance: give one of them"):
        select_models(df, performance="auroc", consistency="kmer_kld", min_performance=0.5, tolerance=0.1)
    with pytest.raises(ValueError, match="tolerance: expected a number >= 0"):
        select_models(df, performance="auroc", consistency="kmer_kld", tolerance=-0.1)
    with pytest.raises(TypeError, match="min_performance: expected a finite number"):
        select_models(df, performance="auroc", consistency="kmer_kld", min_performance=float("nan"))
    with pytest.raises(TypeError, match="performance: column 'model' must be numeric"):
        select_models(df, performance="model", consistency="kmer_kld")
    with pytest.raises(TypeError, match="consistency: expected a column name or a non-empty list"):
        select_models(df, performance="auroc", consistency=[])
    with pytest.raises(TypeError, match="higher_is_better"):
        select_models(df, performance="auroc", consistency="kmer_kld", higher_is_better="yes")
    with pytest.raises(TypeError, match="table: expected a pandas DataFrame"):
        select_models(42, performance="auroc", consistency="kmer_kld")
    with pytest.raises(FileNotFoundError, match="table: no such file"):
        select_models(tmp_path / "missing.csv", performance="auroc", consistency="kmer_kld")
    with pytest.raises(ValueError, match="'rank' is a column that select_models adds"):
        select_models(df.assign(rank=1.0), performance="rank", consistency="kmer_kld")
