"""One self-contained HTML page for a set of models: selection, spectra, densities, motifs.

:func:`write_report` scores each model's attribution set (k-mer and k-attr-mean KLD), finds its
motifs (:func:`acme_fast.motifs.find_motifs`), matches them against JASPAR (Tomtom) and writes
one HTML file with every figure embedded as a PNG (``data:`` URIs): it opens offline and can be
mailed. Sections: the selection table (click a header to sort), the selection plot, and per
model the k-mer spectrum, the angular density, its motifs as logos with their matches and
q-values, and attribution logos of the sequences with the strongest attributions.
"""

from __future__ import annotations

import base64
import html
import io
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_report", "SECTIONS"]

#: The ids of the page's sections (a model's sections are suffixed with its slug).
SECTIONS = ("selection", "selection-plot", "models")

_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;font-size:14px;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px} h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin-top:20px} table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f2f2f2;cursor:pointer}
td.t,th.t{text-align:left} img{max-width:100%;height:auto} .note{color:#555;font-size:12px}
nav a{margin-right:12px} .motif{display:inline-block;vertical-align:top;margin:6px 12px 12px 0}
"""

_JS = """
function sortTable(th){const t=th.closest('table'),i=[...th.parentNode.children].indexOf(th);
const rows=[...t.tBodies[0].rows],asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
const key=r=>{const v=r.cells[i].dataset.v??r.cells[i].textContent;const n=parseFloat(v);return isNaN(n)?v:n};
rows.sort((a,b)=>{const x=key(a),y=key(b);return (x>y?1:x<y?-1:0)*(asc?1:-1)});
rows.forEach(r=>t.tBodies[0].appendChild(r));}
document.querySelectorAll('table.sortable th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
"""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "model"


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(fig: Any, alt: str) -> str:
    return f'<img src="{_png(fig)}" alt="{html.escape(alt)}">'


def _fmt(v: Any) -> tuple[str, str]:
    """(display text, sort value) of a table cell."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "", ""
    if isinstance(v, (bool, np.bool_)):
        return ("yes" if v else "no"), ("1" if v else "0")
    if isinstance(v, (int, np.integer)):
        return str(int(v)), str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}", repr(float(v))
    return str(v), str(v)


def _table(df: Any, cols: list[str]) -> str:
    import pandas as pd

    is_text = {c: not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])) for c in cols}
    head = "".join(f'<th class="{"t" if is_text[c] else ""}">{html.escape(c)}</th>' for c in cols)
    body = []
    for _, row in df[cols].iterrows():
        cells = []
        for c in cols:
            text, key = _fmt(row[c])
            cls = ' class="t"' if is_text[c] else ""
            cells.append(f'<td{cls} data-v="{html.escape(key)}">{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def write_report(attributions: dict, x: Any, path: Any, *, scores: Any = None, performance: str | None = None,
                 consistency: str = "kattr_kld", tolerance: float | None = None, layout: str = "NLC",
                 preset: str = "paper", k: int = 6, window: int = 3, match: bool = True, db: Any = None,
                 n_examples: int = 2, overwrite: bool = False, progress: bool = False,
                 title: str = "acme_fast report") -> Path:
    """Write the HTML report of several models' attribution sets.

    Parameters
    ----------
    attributions : dict name -> array_like
        Each model's attribution maps of ``x`` (same shape as ``x``).
    x : array_like, shape (N, L, 4) or (N, 4, L)
        The one-hot sequences.
    path : path
        The ``.html`` file (written atomically; an existing file only with ``overwrite``).
    scores : DataFrame or path, optional
        A score table with a ``model`` column (``acme-fast score-models``): its columns (e.g.
        the performance) join the computed ones by model name.
    performance : str, optional
        The performance column for :func:`~acme_fast.select_models` and the selection plot;
        without one, models are ranked by ``consistency`` and the plot shows consistency
        against the number of motifs.
    consistency, tolerance
        As :func:`~acme_fast.select_models`.
    layout, preset, k, window
        As the metrics.
    match : bool
        Match motifs against ``db`` (default JASPAR 2024 CORE vertebrates) with Tomtom.
    n_examples : int
        Attribution logos per model (the sequences with the largest attribution).

    Returns
    -------
    Path
    """
    import pandas as pd

    from . import kattr_kld, kmer_kld
    from . import plot as P
    from ._files import atomic_output, check_new_file
    from ._validate import check_layout
    from .motifs import diversity, find_motifs, match_motifs
    from .select import _as_table, select_models

    t0 = time.perf_counter()
    out = check_new_file(path, name="path", overwrite=overwrite, suffixes=(".html", ".htm"))
    if not isinstance(attributions, dict) or not attributions:
        raise ValueError("attributions: expected a non-empty dict name -> attribution array")
    ncl = check_layout(layout)
    xa = np.asarray(x)
    rows, per_model = [], {}
    for name, attr in attributions.items():
        a = np.asarray(attr)
        if a.shape != xa.shape:
            raise ValueError(f"attributions[{name!r}]: expected the shape of x {xa.shape}, got {a.shape}")
        km = kmer_kld(xa, a, k=k, layout=layout, preset=preset)
        ka = kattr_kld(a, window=window, layout=layout, preset=preset)
        mot = find_motifs(xa, a, k=k, window=window, layout=layout, preset=preset)
        if match and len(mot):
            match_motifs(mot, db)
        per_model[name] = (a, km, ka, mot)
        rows.append({"model": str(name), "kmer_kld": km.kld, "kattr_kld": ka.kld, **diversity(mot)})
        if progress:
            print(f"report: {name} scored ({len(mot)} motifs)", flush=True)
    table = pd.DataFrame(rows)
    if scores is not None:
        sc = _as_table(scores)
        if "model" not in sc.columns:
            raise ValueError("scores: the table has no 'model' column")
        extra = [c for c in sc.columns if c == "model" or c not in table.columns]
        table = table.merge(sc[extra], on="model", how="left")
    if performance is not None:
        ranked = select_models(table, performance=performance, consistency=consistency, tolerance=tolerance,
                               diversity="n_motifs")
        fig = P.plot_selection(table, performance=performance, consistency=consistency, tolerance=tolerance,
                               label="model")
    else:
        ranked = table.sort_values(consistency, ascending=False, na_position="last")
        fig = _consistency_vs_motifs(ranked, consistency)
    sel_img = _img(fig, "selection plot")

    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">{len(attributions)} model(s), {xa.shape[0]} sequences of length '
             f'{xa.shape[2] if ncl else xa.shape[1]}; preset {preset}, k = {k}, window = {window}. '
             "Click a column header to sort.</p>",
             '<nav><a href="#selection">selection</a><a href="#selection-plot">plot</a><a href="#models">models</a>'
             + "".join(f'<a href="#model-{_slug(str(n))}">{html.escape(str(n))}</a>' for n in attributions)
             + "</nav>",
             '<section id="selection"><h2>Selection table</h2>',
             _table(ranked, [c for c in ranked.columns if c not in ("path",)]), "</section>",
             '<section id="selection-plot"><h2>Selection plot</h2>', sel_img, "</section>",
             '<section id="models"><h2>Models</h2>']
    for name, (a, km, ka, mot) in per_model.items():
        s = _slug(str(name))
        parts.append(f'<section id="model-{s}"><h2>{html.escape(str(name))}</h2>')
        parts.append(f'<h3 id="spectrum-{s}">k-mer spectrum (KLD {km.kld:.3f})</h3>')
        parts.append(_img(P.plot_kmer_spectrum(km, title=f"Attributed {k}-mers of {name} against the prior"),
                          f"k-mer spectrum of {name}"))
        parts.append(f'<h3 id="density-{s}">Angular density (k-attr-mean KLD {ka.kld:.3f})</h3>')
        parts.append(_img(P.plot_kattr_density(ka, title=f"Angular density of {name}"), f"density of {name}"))
        parts.append(f'<h3 id="motifs-{s}">Motifs ({len(mot)}; diversity: {diversity(mot)["n_motifs"]} motifs, '
                     f'entropy {diversity(mot)["motif_entropy"]:.2f} nats)</h3>')
        if len(mot):
            mf = mot.to_frame()
            parts.append(_table(mf, ["motif", "methods", "support", "width", "consensus", "match", "match_id",
                                     "match_q", "matches"]))
            for m in mot:
                parts.append(f'<div class="motif">{_img(P.plot_motif(m, source=str(name)), m.name)}</div>')
        else:
            parts.append('<p class="note">No motif reached the minimum support.</p>')
        parts.append(f'<h3 id="examples-{s}">Example attribution logos</h3>')
        strength = np.abs(a).reshape(a.shape[0], -1).max(axis=1)
        for i in np.argsort(-strength, kind="stable")[:n_examples]:
            parts.append(_img(P.plot_attribution_logo(xa, a, int(i), layout=layout, window=60,
                                                      title=f"{name}: sequence {int(i)}"),
                              f"attribution logo of sequence {int(i)}"))
        parts.append("</section>")
    parts.append("</section>")
    parts.append(f'<p class="note">Made by acme_fast in {time.perf_counter() - t0:.1f} s.</p>')
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + f"<script>{_JS}</script></body></html>\n")
    with atomic_output(out) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return out


def _consistency_vs_motifs(table: Any, consistency: str) -> Any:
    import matplotlib.pyplot as plt

    from . import plot as P

    with plt.rc_context(P.HOUSE_STYLE):
        fig, ax = plt.subplots(figsize=P.FIGSIZE["square"])
        ax.scatter(table["n_motifs"], table[consistency], color=P.PALETTE[0], s=28, zorder=3)
        for _, r in table.iterrows():
            ax.annotate(str(r["model"]), (r["n_motifs"], r[consistency]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
        ax.set_xlabel("number of consistent motifs")
        ax.set_ylabel(P.words(consistency))
        ax.set_title(f"{P.words(consistency)} against motif diversity, one point per model")
        fig.tight_layout()
    return fig
