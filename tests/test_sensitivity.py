"""acme_fast.sensitivity: every row equals the metric called directly; files, presets, models, CLI, figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

import acme_fast as af
from acme_fast._sensitivity import settings


def data(n=60, L=90, seed=0):
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, L))]
    a = (rng.normal(size=x.shape) * (1 + 3 * (rng.random((n, L, 1)) < 0.1))).astype(np.float32)
    return x, a


def test_settings_one_at_a_time_and_grid():
    s = settings(k=(4, 6), quantile=(0.8, 0.9), window=(1, 3))
    kmer = [(r["varied"], r["k"], r["quantile"]) for r in s if r["metric"] == "kmer_kld"]
    assert kmer == [("k", 4, 0.9), ("k", 6, 0.9), ("quantile", 6, 0.8), ("quantile", 6, 0.9)]  # defaults on both
    g = settings(k=(4, 6), quantile=(0.8, 0.9), window=(1, 3), design="grid")
    assert len(g) == 8 and {r["varied"] for r in g} == {"grid"}
    with pytest.raises(ValueError, match="design: expected"):
        settings(design="random")
    with pytest.raises(ValueError, match="k: expected integers"):
        settings(k=(4.5,))


@pytest.mark.parametrize("preset", ["paper", "acme"])
def test_rows_equal_direct_calls(preset, tmp_path):
    x, a = data()
    _, b = data(seed=1)
    np.save(tmp_path / "b.npy", b)
    t = af.sensitivity({"a": a, "b": tmp_path / "b.npy"}, x, k=(3, 5), quantile=(0.8, 0.95), window=(1, 5),
                       preset=preset, batch_size=17)
    assert len(t) == 2 * (4 + 4)
    for _, r in t.iterrows():
        attr = a if r["set"] == "a" else b
        if r["metric"] == "kmer_kld":
            ref = af.kmer_kld(x, attr, k=int(r["k"]), quantile=r["quantile"], preset=preset)
            assert r["n"] == ref.n_intervals
        else:
            ref = af.kattr_kld(attr, window=int(r["window"]), quantile=r["quantile"], preset=preset)
            assert r["n"] == ref.n_points
        assert r["kld"] == ref.kld or (np.isnan(r["kld"]) and np.isnan(ref.kld)), r.to_dict()


def test_models_and_errors():
    torch = pytest.importorskip("torch")
    x, _ = data()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(4, 3, 5), torch.nn.Flatten(), torch.nn.LazyLinear(1))
    net(torch.zeros(1, 4, x.shape[1]))
    t = af.sensitivity({}, x, models={"net": net}, k=(4,), quantile=(0.9,), window=(3,), layout="NLC")
    from acme_fast.attribution import saliency

    attr = saliency(net, x, layout="NLC", device="cpu")
    assert t.loc[t.metric == "kattr_kld", "kld"].iloc[0] == af.kattr_kld(attr, window=3).kld
    with pytest.raises(ValueError, match="x: the k-mer KLD needs"):
        af.sensitivity({"a": attr})
    with pytest.raises(ValueError, match="sets: expected at least one"):
        af.sensitivity({}, x)


def test_cli_and_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    x, a = data()
    _, b = data(seed=2)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    pd.DataFrame({"model": ["a", "b"], "group": ["g1", "g2"], "activation": ["exp", "relu"]}).to_csv(
        tmp_path / "meta.csv", index=False)
    rc, _, err = run_cli(["sensitivity", f"a={tmp_path / 'a.npy'}", f"b={tmp_path / 'b.npy'}", "--seqs",
                          tmp_path / "x.npy", "--k", "3,4", "--window", "1,3", "--quantile", "0.85,0.9",
                          "--meta", tmp_path / "meta.csv", "--plot", tmp_path / "s.png", "--group", "group",
                          "--panel", "activation", "-o", tmp_path / "s.csv"], capsys)
    assert rc == 0, err
    t = pd.read_csv(tmp_path / "s.csv")
    assert set(t["group"]) == {"g1", "g2"} and len(t) == 2 * 8
    assert (tmp_path / "s.png").stat().st_size > 10000
    rc, _, err = run_cli(["sensitivity", tmp_path / "a.npy", "--k", "3,x", "-o", tmp_path / "t.csv"], capsys)
    assert rc == 2 and "--k: expected comma-separated integers" in err
    rc, _, err = run_cli(["sensitivity", tmp_path / "a.npy", "--plot", tmp_path / "t.png", "--group", "nope",
                          "-o", tmp_path / "t2.csv"], capsys)
    assert rc == 2 and "group: column 'nope' not in the table" in err
