"""Figures (acme_fast.plot): each returns a Figure, saves PNG/PDF atomically, honours ax."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_python

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import acme_fast as af  # noqa: E402
from acme_fast import plot  # noqa: E402
from acme_fast.demo import make_demo_data  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    return make_demo_data(n=40, length=100, seed=1)


@pytest.fixture(scope="module")
def kmer(data):
    return af.kmer_kld(data.x, data.focused, k=3)


@pytest.fixture(scope="module")
def kattr(data):
    return af.kattr_kld(data.focused)


def scores():
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "model": [f"m{i}" for i in range(10)],
            "auroc": rng.uniform(0.8, 0.95, 10),
            "kld": rng.uniform(0.5, 3.0, 10),
            "activation": ["relu", "exp"] * 5,
            "depth": np.arange(10.0) + 100 * np.arange(10) % 7,
        }
    )


def check_saved(path, png):
    assert path.is_file() and path.stat().st_size > 0
    head = path.read_bytes()[:8]
    assert head == PNG_MAGIC if png else head.startswith(b"%PDF")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left


CALLS = {
    "kmer": lambda d, r: plot.plot_kmer_spectrum(r["kmer"], top=5, title="k-mers"),
    "kattr": lambda d, r: plot.plot_kattr_density(r["kattr"]),
    "kattr_log": lambda d, r: plot.plot_kattr_density(r["kattr"], log=True, title="log"),
    "logo": lambda d, r: plot.plot_attribution_logo(d.x, d.focused, 1, x_model=d.x_model, start=5, stop=20),
    "logo_corrected": lambda d, r: plot.plot_attribution_logo(d.x, d.diffuse, kind="corrected", start=10, stop=25),
    "selection": lambda d, r: plot.plot_selection(
        scores(), performance="auroc", consistency="kld", color_by="activation", label="model", tolerance=0.05
    ),
}


@pytest.fixture(scope="module")
def results(kmer, kattr):
    return {"kmer": kmer, "kattr": kattr}


@pytest.mark.parametrize("name", list(CALLS))
def test_returns_figure_and_saves(name, data, results, tmp_path, monkeypatch):
    pytest.importorskip("logomaker")
    fig = CALLS[name](data, results)
    assert isinstance(fig, Figure)
    # the same call with save=..., PNG then PDF, then refuse to overwrite
    call = CALLS[name]
    for ext in ("png", "pdf"):
        out = tmp_path / f"{name}.{ext}"
        _save_via(monkeypatch, out, lambda: call(data, results))
        check_saved(out, ext == "png")
    size = (tmp_path / f"{name}.png").stat().st_size
    with pytest.raises(FileExistsError, match="save: .* exists; pass overwrite=True"):
        _save_via(monkeypatch, tmp_path / f"{name}.png", lambda: call(data, results))
    assert (tmp_path / f"{name}.png").stat().st_size == size
    _save_via(monkeypatch, tmp_path / f"{name}.png", lambda: call(data, results), overwrite=True)
    check_saved(tmp_path / f"{name}.png", True)


def _save_via(monkeypatch, path, call, overwrite=False):
    """Run ``call`` with save=path (and overwrite) injected into the plot function."""
    for fname in plot.__all__:
        orig = getattr(plot, fname)

        def wrapped(*a, _orig=orig, **kw):
            kw.setdefault("save", path)
            kw.setdefault("overwrite", overwrite)
            return _orig(*a, **kw)

        monkeypatch.setattr(plot, fname, wrapped)
    try:
        return call()
    finally:
        monkeypatch.undo()


def test_given_ax(data, kmer, kattr):
    fig, axes = plt.subplots(2, 2)
    assert plot.plot_kmer_spectrum(kmer, ax=axes[0, 0]) is fig
    assert plot.plot_kattr_density(kattr, ax=axes[0, 1]) is fig
    assert plot.plot_selection(scores(), performance="auroc", consistency="kld", ax=axes[1, 0]) is fig
    assert axes[0, 0].get_xlabel().startswith("3-mer")
    assert "theta" in axes[0, 1].get_xlabel()
    assert axes[1, 0].get_xlabel() == "test AUROC, performance"  # in words
    assert len(fig.axes) == 5  # + the density colorbar


def test_logo_given_ax(data):
    pytest.importorskip("logomaker")
    fig, axes = plt.subplots(2, 1)
    assert plot.plot_attribution_logo(data.x, data.focused, x_model=data.x_model, ax=axes, stop=10) is fig
    fig1, ax1 = plt.subplots()
    assert plot.plot_attribution_logo(data.x, data.focused, ax=ax1, start=3, stop=10) is fig1
    assert ax1.get_xlim() == (2.5, 9.5)
    with pytest.raises(TypeError, match="ax: expected a pair of Axes"):
        plot.plot_attribution_logo(data.x, data.focused, x_model=data.x_model, ax=ax1)


def test_logo_layouts_agree(data):
    pytest.importorskip("logomaker")
    ncl = np.swapaxes(data.x, 1, 2), np.swapaxes(data.focused, 1, 2)
    fig = plot.plot_attribution_logo(*ncl, 2, layout="NCL", stop=8)
    assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="x: with layout='NLC' expected shape"):
        plot.plot_attribution_logo(*ncl, 2)
    with pytest.raises(ValueError, match="index: expected an integer in"):
        plot.plot_attribution_logo(data.x, data.focused, 40)
    with pytest.raises(ValueError, match="start, stop: expected start < stop"):
        plot.plot_attribution_logo(data.x, data.focused, start=50, stop=50)
    with pytest.raises(ValueError, match="kind: expected"):
        plot.plot_attribution_logo(data.x, data.focused, kind="saliency")
    with pytest.raises(ValueError, match="x_model: expected the shape of x"):
        plot.plot_attribution_logo(data.x, data.focused, x_model=data.x_model[:, :50])


def test_selection_accepts_select_output_and_numeric_colour():
    from acme_fast.select import select_models

    sel = select_models(scores(), performance="auroc", consistency="kld", min_performance=0.9)
    fig = plot.plot_selection(sel, performance="auroc", consistency="kld", color_by="depth")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # numeric colour with many values: a colorbar
    # the kept column of the select output is used: hollow markers for dropped models
    ax = fig.axes[0]
    n_hollow = sum(
        1 for coll in ax.collections if len(coll.get_facecolors()) == 0 or coll.get_facecolors()[0][3] == 0
    )
    assert n_hollow == int((~sel["kept"]).sum())
    with pytest.raises(KeyError, match="color_by: column 'act'"):
        plot.plot_selection(sel, performance="auroc", consistency="kld", color_by="act")


def test_errors(kmer, kattr, tmp_path):
    with pytest.raises(ValueError, match=r"save: expected a file name ending in .png or .pdf or .svg"):
        plot.plot_kmer_spectrum(kmer, save=tmp_path / "fig.jpg")
    with pytest.raises(FileNotFoundError, match="save: directory"):
        plot.plot_kmer_spectrum(kmer, save=tmp_path / "nope" / "fig.png")
    with pytest.raises(TypeError, match="result: expected a KmerResult"):
        plot.plot_kmer_spectrum(kattr)
    with pytest.raises(TypeError, match="result: expected a KattrResult"):
        plot.plot_kattr_density(kmer)
    with pytest.raises(ValueError, match="top: expected an integer >= 0"):
        plot.plot_kmer_spectrum(kmer, top=-1)
    with pytest.raises(TypeError, match="ax: expected a matplotlib Axes"):
        plot.plot_kattr_density(kattr, ax="left")
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (3, 20))]
    with pytest.warns(RuntimeWarning, match="no attributed interval"):
        empty = af.kmer_kld(x, np.zeros((3, 20, 4), np.float32), k=3)
    with pytest.raises(ValueError, match="result: no attributed k-mer"):
        plot.plot_kmer_spectrum(empty)
    assert not list(tmp_path.iterdir())


def test_import_acme_fast_does_not_import_matplotlib():
    code = "import sys, acme_fast; acme_fast.select_models; assert 'matplotlib' not in sys.modules, 'mpl'"
    run_python(code)
