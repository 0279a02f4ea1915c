"""Distributed scoring (acme_fast.dask): on a local multi-process cluster, every preset, chunking
and file split must give exactly (==) the single-process result."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import attribution, onehot, run_python, to_ncl

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import acme_fast as af  # noqa: E402
from acme_fast import dask as afd  # noqa: E402

N, L = 61, 40
CHUNKS = (7, 13, 0, 1, 20, 20)  # uneven, with an empty and a one-sequence block
PRESETS = [
    pytest.param(dict(preset="paper"), id="paper-sequence"),
    pytest.param(dict(preset="paper", threshold_scope="global"), id="paper-global"),
    pytest.param(dict(preset="acme"), id="acme"),
]
KW = dict(k=3, quantile=0.9, window=3)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=None)
    cl = distributed.Client(cluster, set_as_default=False)
    yield cl
    cl.close()
    cluster.close()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2024)
    x = onehot(rng, N, L, n_frac=0.02)
    attr = attribution(rng, N, L)
    return x, attr


def _reference(x, attr, preset, layout="NLC", threshold_scope=None, **kw):
    kattr_kw = {} if threshold_scope is None else {"threshold_scope": threshold_scope}
    km = af.kmer_kld(x, attr, k=kw["k"], quantile=kw["quantile"], preset=preset, layout=layout)
    ka = af.kattr_kld(attr, window=kw["window"], quantile=kw["quantile"], preset=preset, layout=layout,
                      **kattr_kw)
    return km, ka


def _assert_same(res, km, ka):
    assert set(res) == {"kmer", "kattr"}
    assert res["kmer"].kld == km.kld
    np.testing.assert_array_equal(res["kmer"].counts, km.counts)
    np.testing.assert_array_equal(res["kmer"].prior, km.prior)
    assert (res["kmer"].n_intervals, res["kmer"].n_nucleotides) == (km.n_intervals, km.n_nucleotides)
    assert res["kattr"].kld == ka.kld
    assert res["kattr"].n_points == ka.n_points
    np.testing.assert_array_equal(res["kattr"].mass, ka.mass)


@pytest.mark.parametrize("params", PRESETS)
def test_array_on_cluster_equals_one_shot(client, data, params):
    x, attr = data
    km, ka = _reference(x, attr, **params, **KW)
    # uneven chunks on axis 0, split channels (rechunked), x chunked differently from attr
    a = da.from_array(attr, chunks=(CHUNKS, L // 2, 2))
    xd = da.from_array(x, chunks=(16, L, 4))
    res = afd.score_array(a, xd, client=client, split_every=2, **params, **KW)
    _assert_same(res, km, ka)


@pytest.mark.parametrize("params", PRESETS)
def test_files_on_cluster_equal_one_shot(client, data, tmp_path, params):
    x, attr = data
    np.save(tmp_path / "x.npy", x)
    attrs = [attr, attr[::-1].copy() * 2, attribution(np.random.default_rng(1), N, L, dtype=np.float64)]
    paths = []
    for i, a in enumerate(attrs):
        paths.append(str(tmp_path / f"model{i}.npy"))
        np.save(paths[-1], a)
    rows = afd.score_files(paths, tmp_path / "x.npy", client=client, batch_size=16, split_every=3,
                           **params, **KW)
    assert [r["attr"] for r in rows] == paths
    for row, a in zip(rows, attrs):
        km, ka = _reference(x, a, **params, **KW)
        assert (row["n_sequences"], row["length"]) == (N, L)
        assert row["kmer_kld"] == km.kld and row["kmer_n_intervals"] == km.n_intervals
        assert row["kattr_kld"] == ka.kld and row["kattr_n_points"] == ka.n_points
        assert row["preset"] == params["preset"]
        assert row["kmer_k"] == 3 and row["kattr_window"] == 3
        scope = params.get("threshold_scope", "global" if params["preset"] == "acme" else "sequence")
        assert row["kattr_threshold_scope"] == scope


def test_files_via_scheduler_address_ncl_and_hdf5(client, data, tmp_path):
    h5py = pytest.importorskip("h5py")
    x, attr = data
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"] = to_ncl(x)
        f["attr"] = to_ncl(attr)
    rows = afd.score_files([tmp_path / "d.h5"], tmp_path / "d.h5", dataset="attr", seqs_dataset="x",
                           scheduler=client.scheduler.address, layout="NCL", batch_size=25, preset="acme",
                           **KW)
    km, ka = _reference(x, attr, "acme", **KW)
    assert rows[0]["kmer_kld"] == km.kld and rows[0]["kattr_kld"] == ka.kld
    assert rows[0]["layout"] == "NCL" and rows[0]["length"] == L


@pytest.mark.parametrize("params", PRESETS)
def test_threaded_default_scheduler(data, params, monkeypatch):
    x, attr = data
    km, ka = _reference(x, attr, **params, **KW)
    calls = []
    next_pass = af.KattrAccumulator.next_pass
    monkeypatch.setattr(af.KattrAccumulator, "next_pass", lambda self: calls.append(1) or next_pass(self))
    with dask.config.set(scheduler="threads"):
        res = afd.score_array(da.from_array(attr, chunks=(CHUNKS, L, 4)),
                              da.from_array(x, chunks=(CHUNKS, L, 4)), **params, **KW)
    _assert_same(res, km, ka)
    two_pass = params["preset"] == "acme" or params.get("threshold_scope") == "global"
    assert len(calls) == (1 if two_pass else 0)  # one plan for the whole array, made on the client


def test_numpy_input_one_metric_and_prefixed_kwargs(data):
    x, attr = data
    ka = af.kattr_kld(attr, quantile=0.8, preset="acme")
    with dask.config.set(scheduler="sync"):
        res = afd.score_array(attr, metrics="kattr", preset="acme", kattr_quantile=0.8, kmer_quantile=0.5)
    assert set(res) == {"kattr"}
    assert res["kattr"].kld == ka.kld


def test_one_pass_global_accumulator(data):
    x, attr = data
    ka = af.kattr_kld(attr, preset="acme")
    with dask.config.set(scheduler="threads"):
        res = afd.score_array(da.from_array(attr, chunks=(CHUNKS, L, 4)), metrics=("kattr",), preset="acme",
                              two_pass=False)
    assert res["kattr"].kld == ka.kld and res["kattr"].n_points == ka.n_points


def test_errors(data, tmp_path):
    x, attr = data
    a = da.from_array(attr, chunks=(20, L, 4))
    with pytest.raises(ValueError, match="x: the k-mer metric needs"):
        afd.score_array(a)
    with pytest.raises(ValueError, match="x: expected the same shape"):
        afd.score_array(a, da.from_array(x[:10]))
    with pytest.raises(TypeError, match="unexpected keyword argument 'kk'"):
        afd.score_array(a, metrics="kattr", kk=3)
    with pytest.raises(ValueError, match="metrics"):
        afd.score_array(a, metrics=("kmers",))
    with pytest.raises(ValueError, match="split_every"):
        afd.score_array(a, metrics="kattr", split_every=1)
    with pytest.raises(ValueError, match="window"):
        afd.score_array(a, metrics="kattr", window=4)
    with pytest.raises(ValueError, match="not both"):
        afd.score_files(["a.npy"], metrics="kattr", scheduler="tcp://127.0.0.1:1", client=object())
    with pytest.raises(ValueError, match="seqs_path"):
        afd.score_files(["a.npy"])
    np.save(tmp_path / "bad.npy", attr[:, :, :3])
    with dask.config.set(scheduler="sync"), pytest.raises(ValueError, match=r"bad.npy.: with layout=.NLC. expected 4"):
        afd.score_files([tmp_path / "bad.npy"], metrics="kattr")


def test_data_errors_name_the_global_sequence_and_file(data, tmp_path):
    x, attr = data
    bad = attr.copy()
    bad[45, 3, 1] = np.nan
    with dask.config.set(scheduler="sync"):
        with pytest.raises(ValueError, match=r"^attr: expected finite values, found nan at sequence 45, position 3"):
            afd.score_array(da.from_array(bad, chunks=(CHUNKS, L, 4)), metrics="kattr")
        np.save(tmp_path / "bad.npy", bad)
        with pytest.raises(ValueError, match=r"bad.npy.: expected finite values, found nan at sequence 45,"):
            afd.score_files([tmp_path / "bad.npy"], metrics="kattr", batch_size=10)
        np.save(tmp_path / "x.npy", x[:, :8])
        np.save(tmp_path / "short.npy", attr[:, :8])
        with pytest.raises(ValueError, match=r"short.npy.: sequence length L=8 is shorter than k=10"):
            afd.score_files([tmp_path / "short.npy"], tmp_path / "x.npy", k=10)
    with pytest.raises(ValueError, match=r"attr: sequence length L=40 is shorter than window=41"):
        afd.score_array(da.from_array(attr), metrics="kattr", window=41)


def test_missing_dask_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r'pip install "acme_fast\[dask\]"'):
        afd._import_dask()


def test_import_acme_fast_does_not_import_dask():
    code = "import sys, acme_fast, acme_fast.dask; assert 'dask' not in sys.modules, 'dask imported'"
    run_python(code)
