"""acme_fast.motifs: discovery on planted motifs, streaming invariance, matching, diversity, CLI, report."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from acme_fast import motifs as M
from acme_fast.select import pareto_front, select_models
from acme_fast.synthetic import motif_similarity

PLANT = "GATTACGTCC"  # not a palindrome: both strands are distinct k-mers
OTHER = "CCAATGGG"


def planted(n=400, L=120, seed=0, motifs=((PLANT, 0.8), (OTHER, 0.5))):
    """Random sequences with motifs planted on either strand; attributions = a bump on the motif's
    bases (on the observed base) plus noise everywhere. Returns x, attr, sites {motif: [(i, start, strand)]}."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, L))
    attr = rng.normal(0, 0.05, size=(n, L, 4))
    sites = {m: [] for m, _ in motifs}
    for i in range(n):
        used = np.zeros(L, bool)
        for m, frac in motifs:
            if rng.random() > frac:
                continue
            w = len(m)
            for _ in range(20):
                s = int(rng.integers(5, L - w - 5))
                if not used[s - 3:s + w + 3].any():
                    break
            else:
                continue
            strand = 1 if rng.random() < 0.5 else -1
            seq = m if strand > 0 else "".join("TGCA"["ACGT".index(c)] for c in reversed(m))
            codes[i, s:s + w] = ["ACGT".index(c) for c in seq]
            used[s:s + w] = True
            sites[m].append((i, s, strand))
            attr[i, np.arange(s, s + w), codes[i, s:s + w]] += 1.0
    x = np.eye(4, dtype=np.float32)[codes]
    return x, (attr * 1.0).astype(np.float32), sites


@pytest.fixture(scope="module")
def data():
    return planted()


def pwm_of(s: str) -> np.ndarray:
    return np.eye(4)[["ACGT".index(c) for c in s]].T  # (4, W)


def best_sim(motif, s):
    return motif_similarity(motif.pwm.T, pwm_of(s), min_overlap=min(6, motif.width))


# --------------------------------------------------------------------------- discovery
def test_planted_motifs_recovered(data):
    x, attr, sites = data
    res = M.find_motifs(x, attr, k=6, min_support=10)
    assert len(res) >= 2
    for m_str in (PLANT, OTHER):
        hits = [m for m in res if best_sim(m, m_str) > 0.9]
        assert hits, (m_str, [m.consensus for m in res])
        m = max(hits, key=lambda m: m.support)
        n_true = len(sites[m_str])
        # at quantile 0.9 only 12 of 120 positions are attributed: where both motifs (18 bumped bases) sit in a
        # sequence, part of one falls outside the attributed intervals
        assert 0.7 * n_true <= m.support <= 1.05 * n_true, (m_str, m.support, n_true)
        assert "kmer" in m.methods
        # seqlets point at the planted sites (the frame may extend the motif by a column or two)
        true = {(i, s) for i, s, _ in sites[m_str]}
        found = {(int(r["seq"]), int(r["start"]) + d) for r in m.seqlets for d in range(-3, 4)}
        assert len(true & found) >= 0.7 * n_true
        # the CWM carries the attribution bump on the consensus bases, the PWM is sharp there
        assert np.abs(m.cwm).sum(axis=1).max() > 0.5
        assert m.pwm.max(axis=1).mean() > 0.7
    assert res.n_motifs == len([m for m in res if m.support >= 10])


def test_kattr_method_alone_finds_the_motif(data):
    x, attr, _ = data
    res = M.find_motifs(x, attr, methods="kattr", min_support=10)
    assert len(res) >= 1 and all(m.methods == ("kattr",) for m in res)
    assert max(max(best_sim(m, PLANT), best_sim(m, OTHER)) for m in res) > 0.6


def test_batches_layouts_and_dtypes_give_the_same_motifs(data):
    x, attr, _ = data
    ref = M.find_motifs(x, attr, min_support=10)
    for kw, xx, aa in ((dict(batch_size=37), x, attr),
                       (dict(layout="NCL", batch_size=100), np.swapaxes(x, 1, 2), np.swapaxes(attr, 1, 2)),
                       (dict(batch_size=1000), x.astype(np.uint8), attr.astype(np.float64))):
        got = M.find_motifs(xx, aa, min_support=10, **kw)
        assert [m.support for m in got] == [m.support for m in ref]
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a.pwm, b.pwm)
            np.testing.assert_allclose(a.cwm, b.cwm, rtol=1e-6, atol=1e-9)
            assert (a.seqlets == b.seqlets).all()


def test_accumulator_streams_with_merge_of_passes(data):
    x, attr, _ = data
    acc = M.MotifAccumulator(min_support=10)
    for s in range(0, len(x), 64):
        acc.update(x[s:s + 64], attr[s:s + 64])
    acc.next_pass()
    for s in range(0, len(x), 50):
        acc.update(x[s:s + 50], attr[s:s + 50])
    got = acc.result()
    ref = M.find_motifs(x, attr, min_support=10)
    assert [m.consensus for m in got] == [m.consensus for m in ref]


def test_errors(data):
    x, attr, _ = data
    acc = M.MotifAccumulator()
    with pytest.raises(ValueError, match="result: call next_pass"):
        acc.result()
    with pytest.raises(ValueError, match="next_pass: no batch was added"):
        acc.next_pass()
    with pytest.raises(ValueError, match="attr: expected the shape of x"):
        acc.update(x[:3], attr[:4])
    with pytest.raises(ValueError, match="methods: expected 'kmer', 'kattr' or both"):
        M.MotifAccumulator(methods=("modisco",))
    with pytest.raises(ValueError, match="trim: expected a fraction"):
        M.MotifAccumulator(trim=2)
    bad = attr.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="attr"):
        M.find_motifs(x, bad)
    acc.update(x, attr).next_pass()
    with pytest.raises(ValueError, match="already in its second pass"):
        acc.next_pass()


def test_no_signal_gives_no_motif():
    rng = np.random.default_rng(3)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (200, 80))]
    a = rng.normal(size=x.shape).astype(np.float32)
    res = M.find_motifs(x, a, min_support=20)
    assert len(res) <= 2  # noise does not make a diverse motif set


# --------------------------------------------------------------------------- diversity and selection
def test_diversity_formula():
    def motif(n):
        return M.Motif("m", ("kmer",), np.full((4, 4), 0.25), np.zeros((4, 4)), n, np.zeros(0, M._SEQLET), 0.0)

    res = M.MotifResult([motif(60), motif(30), motif(10), motif(5)], 100, {"min_support": 10})
    d = M.diversity(res)
    f = np.array([60, 30, 10]) / 100
    assert d["n_motifs"] == 3
    assert d["motif_entropy"] == pytest.approx(-(f * np.log(f)).sum())
    assert d["motif_effective_number"] == pytest.approx(np.exp(d["motif_entropy"]))
    assert M.diversity(M.MotifResult([], 1, {"min_support": 10}))["n_motifs"] == 0


def test_select_with_diversity():
    t = pd.DataFrame({"model": list("abcd"), "auroc": [0.95, 0.95, 0.94, 0.90],
                      "kattr_kld": [2.0, 1.5, 1.0, 3.0], "n_motifs": [1, 5, 6, 2]})
    r = select_models(t, performance="auroc", consistency="kattr_kld", diversity="n_motifs", min_diversity=3,
                      tolerance=0.02).set_index("model")
    assert list(r.index[r["kept"]]) == ["b", "c"] and r.loc["b", "rank"] == 1
    # Pareto over three axes: c (most motifs) and a (consistent), b (a compromise), d (most consistent)
    assert r["pareto"].to_dict() == {"b": True, "c": True, "a": True, "d": True}
    assert pareto_front([1, 1], [1, 1], [2, 1]).tolist() == [True, False]
    with pytest.raises(ValueError, match="min_diversity: needs diversity="):
        select_models(t, performance="auroc", consistency="kattr_kld", min_diversity=2)


# --------------------------------------------------------------------------- matching and files
def random_pwms(n, rng):
    out = {}
    for j in range(n):
        w = int(rng.integers(6, 14))
        out[f"decoy_{j}"] = rng.dirichlet(np.full(4, 0.4), size=w).T
    return out


def test_match_against_a_database(data, tmp_path):
    pytest.importorskip("memelite")
    x, attr, _ = data
    res = M.find_motifs(x, attr, min_support=10)
    rng = np.random.default_rng(0)
    db = {"PLANTED": pwm_of(PLANT) * 0.9 + 0.025, "OTHER": pwm_of(OTHER) * 0.9 + 0.025, **random_pwms(40, rng)}
    M.match_motifs(res, db, max_q=1.0)
    top = {m.matches[0]["name"] for m in res if m.matches and m.matches[0]["q_value"] < 0.05}
    assert {"PLANTED", "OTHER"} <= top
    m = next(m for m in res if m.matches and m.matches[0]["name"] == "PLANTED")
    assert m.matches[0]["p_value"] <= m.matches[0]["q_value"] < 0.05
    # MEME round trip through memelite's reader; the database as a MEME file gives the same best match
    path = M.write_meme(res, tmp_path / "found.meme")
    back = M.read_meme(path)
    assert len(back) == len(res)
    np.testing.assert_allclose(next(iter(back.values())), res[0].pwm.T, atol=1e-6)
    M.write_meme(M.MotifResult([M.Motif(k, ("kmer",), v.T, v.T, 1, np.zeros(0, M._SEQLET), 0.0)
                                for k, v in db.items()], 0, {}), tmp_path / "db.meme")
    res2 = M.find_motifs(x, attr, min_support=10)
    M.match_motifs(res2, tmp_path / "db.meme", max_q=1.0)
    assert [m.matches[0]["id"] for m in res2] == [m.matches[0]["id"] for m in res]
    with pytest.raises(FileNotFoundError, match="db: no such MEME file"):
        M.match_motifs(res2, tmp_path / "missing.meme")
    (tmp_path / "bad.meme").write_text("not a meme file\n")
    with pytest.raises(ValueError, match="bad.meme"):
        M.match_motifs(res2, tmp_path / "bad.meme")


def test_jaspar_offline():
    pytest.importorskip("pyjaspar")
    db = M.jaspar_motifs()
    assert len(db) > 500
    name, pwm = next((k, v) for k, v in db.items() if k.endswith(" SP1"))
    assert name.startswith("MA0079") and pwm.shape[0] == 4
    np.testing.assert_allclose(pwm.sum(axis=0), 1.0)


# --------------------------------------------------------------------------- scoring, CLI, report
def test_score_model_diversity_columns(data):
    tf = pytest.importorskip("tensorflow")
    from acme_fast.attribution import saliency
    from acme_fast.scoring import score_model

    x, _, _ = data
    keras = tf.keras
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((x.shape[1], 4)), keras.layers.Conv1D(4, 9, activation="exponential"),
                          keras.layers.GlobalMaxPooling1D(), keras.layers.Dense(1)])
    rec = score_model(m, x, motifs=True, progress=False, batch_size=64, k=5)
    attr = saliency(m, x)
    ref = M.find_motifs(x, attr, k=5)
    assert rec["n_motifs"] == ref.n_motifs and rec["motif_entropy"] == pytest.approx(ref.entropy)
    assert [mm.support for mm in rec["motifs"]] == [mm.support for mm in ref]
    # the k-attr two-pass and the motifs share the second pass
    rec2 = score_model(m, x, motifs=True, progress=False, batch_size=64, k=5, preset="acme")
    assert np.isfinite(rec2["kattr_kld"]) and "n_motifs" in rec2


def test_cli_motifs_and_report(data, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("logomaker")
    x, attr, _ = data
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "a.npy", attr)
    np.save(tmp_path / "b.npy", np.random.default_rng(1).normal(size=attr.shape).astype(np.float32))
    rc, _, err = run_cli(["motifs", tmp_path / "a.npy", "--seqs", tmp_path / "x.npy", "-o", tmp_path / "m.csv",
                          "--meme", tmp_path / "m.meme", "--seqlets", tmp_path / "s.csv", "--no-match",
                          "--min-support", "10"], capsys)
    assert rc == 0, err
    t = pd.read_csv(tmp_path / "m.csv")
    assert {"motif", "methods", "support", "consensus", "match_q"} <= set(t.columns) and len(t) >= 2
    s = pd.read_csv(tmp_path / "s.csv")
    assert set(s["motif"]) == set(t["motif"]) and (s["end"] > s["start"]).all()
    assert (tmp_path / "m.meme").read_text().startswith("MEME version 4")
    rc, _, err = run_cli(["motifs", tmp_path / "a.npy", "--seqs", tmp_path / "x.npy", "-o", tmp_path / "m.csv"],
                         capsys)
    assert rc == 2 and "exists" in err
    rc, _, err = run_cli(["motifs", tmp_path / "a.npy", "--seqs", tmp_path / "x.npy", "-o", tmp_path / "m2.csv",
                          "--db", tmp_path / "nope.meme"], capsys)
    assert rc == 2 and "--db: no such MEME file" in err
    scores = pd.DataFrame({"model": ["planted", "noise"], "auroc": [0.9, 0.91]})
    scores.to_csv(tmp_path / "scores.csv", index=False)
    rc, _, err = run_cli(["report", f"planted={tmp_path / 'a.npy'}", f"noise={tmp_path / 'b.npy'}", "--seqs",
                          tmp_path / "x.npy", "--scores", tmp_path / "scores.csv", "--performance", "auroc",
                          "--no-match", "--min-support", "10", "-o", tmp_path / "report.html"], capsys)
    assert rc == 0, err
    page = (tmp_path / "report.html").read_text()
    for sec in ("selection", "selection-plot", "models", "model-planted", "spectrum-planted", "density-planted",
                "motifs-planted", "examples-planted", "model-noise"):
        assert f'id="{sec}"' in page, sec
    assert "http://" not in page and "https://" not in page  # self-contained
    assert page.count("data:image/png;base64,") >= 6


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


@pytest.mark.skipif(_chromium() is None, reason="needs a headless Chromium (Debian: apt install chromium)")
def test_report_in_headless_chromium(data, tmp_path):
    pytest.importorskip("logomaker")
    from acme_fast.report import write_report

    x, attr, _ = data
    noise = np.random.default_rng(1).normal(size=attr.shape).astype(np.float32)
    page = write_report({"planted": attr, "noise": noise}, x, tmp_path / "r.html", match=False)
    # The DOM after the scripts ran, and the console: no error may be logged while the page loads.
    js_check = tmp_path / "check.html"
    js_check.write_text(
        "<!DOCTYPE html><html><body><iframe id=f src='r.html' style='width:1200px;height:900px'></iframe><script>"
        "document.getElementById('f').onload=function(){const d=this.contentDocument;"
        "const ids=['selection','selection-plot','models','model-planted','model-noise'];"
        "const missing=ids.filter(i=>!d.getElementById(i));"
        "const imgs=[...d.images].filter(im=>!(im.complete&&im.naturalWidth>0)).length;"
        "const th=d.querySelector('table.sortable th');th.click();"
        "document.title='CHECK missing='+missing.join(',')+' broken_images='+imgs+' n_images='+d.images.length;};"
        "</script></body></html>")
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", js_check.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "CHECK missing= broken_images=0" in r.stdout, r.stdout[-2000:]
    console = [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not [ln for ln in console if "error" in ln.lower() or "Uncaught" in ln], console
    shot = Path(os.environ.get("ACME_REPORT_SCREENSHOT", tmp_path / "shot.png"))
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,2400", page.as_uri()], capture_output=True, timeout=120, check=False)
    assert shot.exists() and shot.stat().st_size > 10000


def test_cli_score_motifs_and_select_diversity(data, tmp_path, capsys):
    x, attr, _ = data
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "a.npy", attr)
    np.save(tmp_path / "b.npy", np.random.default_rng(1).normal(size=attr.shape).astype(np.float32))
    rc, _, err = run_cli(["score", f"planted={tmp_path / 'a.npy'}", f"noise={tmp_path / 'b.npy'}", "--seqs",
                          tmp_path / "x.npy", "--motifs", "-o", tmp_path / "s.csv"], capsys)
    assert rc == 0, err
    t = pd.read_csv(tmp_path / "s.csv").set_index("model")
    ref = M.find_motifs(x, attr)
    assert t.loc["planted", "n_motifs"] == ref.n_motifs
    assert t.loc["planted", "motif_entropy"] == pytest.approx(ref.entropy)
    assert t.loc["planted", "n_motifs"] > t.loc["noise", "n_motifs"]
    t["auroc"] = [0.9, 0.9]
    t.reset_index().to_csv(tmp_path / "s2.csv", index=False)
    rc, _, err = run_cli(["select", tmp_path / "s2.csv", "--performance", "auroc", "--consistency", "kattr_kld",
                          "--diversity", "n_motifs", "--min-diversity", "2", "-o", tmp_path / "r.csv"], capsys)
    assert rc == 0, err
    r = pd.read_csv(tmp_path / "r.csv").set_index("model")
    assert bool(r.loc["planted", "kept"]) and not bool(r.loc["noise", "kept"])
    rc, _, err = run_cli(["select", tmp_path / "s2.csv", "--performance", "auroc", "--consistency", "kattr_kld",
                          "--min-diversity", "2", "-o", tmp_path / "r2.csv"], capsys)
    assert rc == 2 and "--min-diversity: needs --diversity" in err
    rc, _, err = run_cli(["score", tmp_path / "a.npy", "--motifs", "-o", tmp_path / "s3.csv"], capsys)
    assert rc == 2 and "--motifs: needs --seqs" in err


SHARED = Path(__file__).resolve().parents[2] / "shared" / "models" / "synthetic_cnn"


@pytest.mark.skipif(not (SHARED / "cnn_deep_exponential_0.h5").exists(), reason="needs ../shared/models")
def test_shipped_models_recover_the_planted_motifs():
    """The paper's shipped deep exponential model: its motifs recover all five planted core motifs
    (Tomtom q < 0.05 against the planted PWMs, the dataset's background PWMs as decoys)."""
    pytest.importorskip("memelite")
    pytest.importorskip("tensorflow")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from motif_validation import recovered

    from acme_fast.attribution import saliency
    from acme_fast.synthetic import CORE_MOTIFS, load_jaspar_pwms, make_dataset
    from acme_fast.zoo import load_shipped_model

    data = make_dataset(n=6000, seed=0, progress=False)
    x, _ = data.positives("test")
    jaspar = load_jaspar_pwms("JASPAR2016")
    db = {f"core:{n}": jaspar[n] for n in CORE_MOTIFS}
    db.update({f"bg:{n}": jaspar[n] for n in data.params["background_motifs"]})
    attr = saliency(load_shipped_model(SHARED / "cnn_deep_exponential_0.h5"), x)
    res = M.find_motifs(x, attr)
    found, _ = recovered([m.pwm for m in res], db)
    assert found == set(CORE_MOTIFS), [m.consensus for m in res]


def test_files_give_the_same_motifs(data, tmp_path):
    x, attr, _ = data
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "a.npy", attr)
    ref = M.find_motifs(x, attr, min_support=10)
    for xx, aa in ((tmp_path / "x.npy", tmp_path / "a.npy"), (x, str(tmp_path / "a.npy"))):
        got = M.find_motifs(xx, aa, min_support=10, batch_size=64)
        assert [m.support for m in got] == [m.support for m in ref]
        assert all((g.seqlets == r.seqlets).all() for g, r in zip(got, ref))
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        M.find_motifs(tmp_path / "missing.npy", attr)
