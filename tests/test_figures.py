"""Figures for people: one house style (the same size from the API and the CLI), axes in words,
titles that say what and which file, labelled points and the cutoff line on the selection plot,
the prior visible and the top k-mers readable in the spectrum, logos that never crop silently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import acme_fast as af  # noqa: E402
from acme_fast import plot  # noqa: E402


@pytest.fixture
def table():
    return pd.DataFrame({"model": ["exp0", "relu0", "exp1", "relu1", "exp2"],
                         "auroc": [0.98, 0.97, 0.96, 0.95, 0.90], "kattr_kld": [0.6, 0.38, 0.55, 0.3, 0.7],
                         "activation": ["exponential", "relu", "exponential", "relu", "exponential"]})


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_selection_labels_cutoff_and_words(table):
    ranked = af.select_models(table, performance="auroc", consistency="kattr_kld", tolerance=0.025)
    fig = plot.plot_selection(ranked, performance="auroc", consistency="kattr_kld", color_by="activation")
    ax = fig.axes[0]
    # with at most 12 models every point is named; labels on the right half sit to the left of the point
    assert set(_texts(ax)) == set(table["model"])
    xs = {t.get_text(): t for t in ax.texts}
    assert xs["exp0"].get_ha() == "right" and xs["exp2"].get_ha() == "left"  # AUROC 0.98 (right), 0.90 (left)
    # the cutoff line, read from the ranked table: at the worst kept model
    vlines = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(vlines) == 1 and vlines[0].get_xdata()[0] == pytest.approx(0.96)
    assert ax.get_xlabel() == "test AUROC, performance" and ax.get_ylabel() == "k-attr-mean KLD, consistency"
    assert "3 of 5 models kept" in ax.get_title()
    # one colour per group
    faces = {tuple(np.round(c.get_facecolor()[0], 3)) for c in ax.collections if len(c.get_offsets())
             and c.get_facecolor().size}
    assert len(faces) >= 2
    plt.close(fig)
    # more models: only the Pareto front (exp0, exp2) and the top-ranked model (exp0) are named
    many = pd.concat([table] + [table.assign(kattr_kld=table["kattr_kld"] * 0.5, auroc=table["auroc"] - 0.001 * (j + 1),
                                             model=table["model"] + f"_{j}") for j in range(2)], ignore_index=True)
    ranked = af.select_models(many, performance="auroc", consistency="kattr_kld", tolerance=0.025)
    fig = plot.plot_selection(ranked, performance="auroc", consistency="kattr_kld")
    assert set(_texts(fig.axes[0])) == {"exp0", "exp2"}
    plt.close(fig)
    # fixed colours: ReLU blue, exponential red, whatever the order of the rows
    assert plot.category_colours(["exponential", "relu", "x"]) == {
        "exponential": plot.PALETTE[1], "relu": plot.PALETTE[0], "x": plot.PALETTE[2]}
    fig = plot.plot_selection(table, performance="auroc", consistency="kattr_kld", label="activation")
    assert sorted(_texts(fig.axes[0])) == sorted(table["activation"])
    plt.close(fig)


def test_kmer_spectrum_prior_visible_and_top_listed():
    rng = np.random.default_rng(0)
    x = np.eye(4)[rng.integers(0, 4, (200, 100))]
    a = rng.normal(size=x.shape)
    fig = plot.plot_kmer_spectrum(af.kmer_kld(x, a, k=3), top=5)
    ax = fig.axes[0]
    prior_line = [ln for ln in ax.lines if ln.get_label().startswith("prior")]
    bars = [c for c in ax.collections if c.get_label().startswith("attributed")]
    assert prior_line and bars and prior_line[0].get_zorder() > bars[0].get_zorder()  # drawn above the bars
    listing = [t for t in _texts(ax) if t.startswith("most attributed 3-mers")]
    assert listing and len(listing[0].splitlines()) == 6
    assert all(t in {"1", "2", "3", "4", "5"} for t in _texts(ax) if not t.startswith("most"))
    assert "k = 3" in ax.get_title()
    plt.close(fig)


def test_logo_never_crops_silently():
    pytest.importorskip("logomaker")
    rng = np.random.default_rng(1)
    x = np.eye(4)[rng.integers(0, 4, (2, 400))]
    a = rng.normal(size=x.shape) * 0.01
    a[1, 250] = 5.0
    fig = plot.plot_attribution_logo(x, a, 1, window=40)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert lo < 250 < hi and hi - lo == pytest.approx(40)
    assert "positions 230-269 of 0-399 shown" in ax.get_title()
    plt.close(fig)
    fig = plot.plot_attribution_logo(x[:, :50], a[:, :50], 0)
    assert "positions" not in fig.axes[0].get_title()  # the whole sequence: nothing to say
    plt.close(fig)
    with pytest.raises(ValueError, match="window: give either window or start/stop"):
        plot.plot_attribution_logo(x, a, 0, window=10, start=3)


def test_same_size_from_api_and_cli(tmp_path, table, capsys):
    from PIL import Image

    ranked = af.select_models(table, performance="auroc", consistency="kattr_kld", tolerance=0.025)
    ranked.to_csv(tmp_path / "ranked.csv", index=False)
    plot.plot_selection(ranked, performance="auroc", consistency="kattr_kld", save=tmp_path / "api.png",
                        title="a title of the same length as the other")
    rc, _, err = run_cli(["plot", "selection", tmp_path / "ranked.csv", "--performance", "auroc", "--consistency",
                          "kattr_kld", "--title", "a title of the same length as the other", "-o",
                          tmp_path / "cli.png", "-q"], capsys)
    assert rc == 0, err
    sizes = {Image.open(tmp_path / f).size for f in ("api.png", "cli.png")}
    assert len(sizes) == 1, sizes


def test_cli_titles_name_the_file(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(2)
    a = rng.normal(size=(30, 60, 4)).astype(np.float32)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (30, 60))]
    np.save(tmp_path / "model_a.npy", a)
    np.save(tmp_path / "x.npy", x)
    titles = []
    real = plot._write

    def capture(fig, path, dpi=150):
        if path is None:  # the plot functions' own (unsaved) call
            return real(fig, path, dpi)
        titles.append(" | ".join([fig.axes[0].get_title(), fig._suptitle.get_text() if fig._suptitle else ""]))
        real(fig, path, dpi)

    monkeypatch.setattr(plot, "_write", capture)
    for kind, extra in (("kattr", ["--preset", "acme"]), ("kmer", ["--seqs", tmp_path / "x.npy", "--k", "3"]),
                        ("logo", ["--seqs", tmp_path / "x.npy", "--index", "4", "--window", "20"])):
        rc, _, err = run_cli(["plot", kind, tmp_path / "model_a.npy", *extra, "-o", tmp_path / f"{kind}.png", "-q"],
                             capsys)
        assert rc == 0, err
    assert "model_a.npy" in titles[0] and "preset acme" in titles[0] and "KLD" in titles[0]
    assert "model_a.npy" in titles[1] and "k = 3" in titles[1]
    assert "model_a.npy: sequence 4" in titles[2] and "positions" in titles[2] and "of 0-59 shown" in titles[2]
