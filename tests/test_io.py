"""Out-of-core readers (acme_fast.io) and streaming scores (acme_fast.stream).

Every format and layout reads back exactly; bad files fail with one clear message before
any data is read; streamed scores equal (==) the in-memory ones."""

from __future__ import annotations

import gzip
import pickle
import sys
import tracemalloc

import numpy as np
import pytest
from conftest import attribution, onehot, to_ncl

import acme_fast as af
from acme_fast import io as afio
from acme_fast.io import ArraySource, check_pair, default_batch_size, open_source, read_fasta
from acme_fast.stream import ROW_KEYS, score_row, score_stream

N, L = 23, 40
BS = 7  # does not divide N


@pytest.fixture
def data():
    rng = np.random.default_rng(2024)
    x = onehot(rng, N, L, n_frac=0.02)
    a = attribution(rng, N, L)
    return x, a


def _lay(arr, layout):
    return np.ascontiguousarray(to_ncl(arr)) if layout == "NCL" else arr


def write(fmt, path, arr, name="attr"):
    """Write arr in format fmt; return (path, dataset to pass)."""
    if fmt == "npy":
        p = path.with_suffix(".npy")
        np.save(p, arr)
        return p, None
    if fmt == "npz":  # compressed, arr_0, as tfmodisco-lite writes
        p = path.with_suffix(".npz")
        np.savez_compressed(p, arr)
        return p, None
    if fmt == "npz_stored":  # uncompressed, named member next to another array
        p = path.with_suffix(".npz")
        np.savez(p, **{name: arr, "labels": np.zeros(len(arr))})
        return p, name
    if fmt == "h5":
        h5py = pytest.importorskip("h5py")
        p = path.with_suffix(".h5")
        with h5py.File(p, "w") as f:
            f.create_dataset(f"grp/{name}", data=arr, chunks=(5,) + arr.shape[1:])
            f.create_dataset("meta", data=np.arange(3))
        return p, None
    if fmt == "zarr":
        zarr = pytest.importorskip("zarr")
        p = path.with_suffix(".zarr")
        z = zarr.open(str(p), mode="w", shape=arr.shape, chunks=(6,) + arr.shape[1:], dtype=arr.dtype)
        z[:] = arr
        return p, None
    if fmt == "zarr_group":
        zarr = pytest.importorskip("zarr")
        p = path.with_suffix(".zarr")
        g = zarr.open_group(str(p), mode="w")
        z = g.create_array(name, shape=arr.shape, chunks=(6,) + arr.shape[1:], dtype=arr.dtype) \
            if hasattr(g, "create_array") else g.create_dataset(name, shape=arr.shape, chunks=(6,) + arr.shape[1:],
                                                                 dtype=arr.dtype)
        z[:] = arr
        g.create_group("other")
        return p, name
    raise ValueError(fmt)


FORMATS = ["npy", "npz", "npz_stored", "h5", "zarr", "zarr_group"]


# ------------------------------------------------------------------ readers


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("layout", ["NLC", "NCL"])
def test_reader_roundtrip(tmp_path, data, fmt, layout):
    _, a = data
    arr = _lay(a, layout)
    p, ds = write(fmt, tmp_path / "attr", arr)
    with ArraySource(p, dataset=ds, layout=layout) as src:
        assert src.shape == arr.shape and src.dtype == arr.dtype
        assert (src.n_sequences, src.length) == (N, L)
        batches = list(src.iter_batches(BS))
        assert [len(b) for b in batches] == [7, 7, 7, 2]
        for b in batches:
            assert type(b) is np.ndarray and b.flags.c_contiguous and b.dtype == arr.dtype
        np.testing.assert_array_equal(np.concatenate(batches), arr)
        np.testing.assert_array_equal(src.read(5, 12), arr[5:12])
        # a second pass reads the same data (compressed .npz restarts its stream)
        np.testing.assert_array_equal(np.concatenate(list(src.iter_batches(10))), arr)
        np.testing.assert_array_equal(np.concatenate(list(src.iter_batches(4, start=3, stop=17))), arr[3:17])


def test_source_of_arrays(data):
    _, a = data
    src = open_source(a)
    assert src.shape == a.shape and src.label == "attr"
    b = next(src.iter_batches(BS))
    assert np.shares_memory(b, a)  # a contiguous in-memory array is not copied
    assert open_source(src) is src
    with pytest.raises(ValueError, match="layout"):
        open_source(src, layout="NCL")
    ncl = open_source(to_ncl(a), layout="NCL")  # a transposed view: batches are made contiguous
    assert all(b.flags.c_contiguous for b in ncl.iter_batches(BS))


def test_h5_dataset_object(tmp_path, data):
    h5py = pytest.importorskip("h5py")
    _, a = data
    p, _ = write("h5", tmp_path / "a", a)
    with h5py.File(p, "r") as f:
        src = open_source(f["grp/attr"])
        np.testing.assert_array_equal(np.concatenate(list(src.iter_batches(BS))), a)


def test_default_batch_size_is_about_64mb():
    a = np.zeros((10_000, 2000, 4), dtype=np.float32)
    src = open_source(a)
    bs = src.default_batch_size()
    assert 60 * 2**20 <= bs * 2000 * 4 * 4 <= 64 * 2**20
    assert default_batch_size(src, open_source(a)) == bs // 2  # x and attr together
    assert open_source(a[:10]).default_batch_size() == 10


def test_pickle_reopens(tmp_path, data):
    _, a = data
    p, _ = write("h5", tmp_path / "a", a)
    with ArraySource(p) as src:
        src2 = pickle.loads(pickle.dumps(src))
    with src2:
        np.testing.assert_array_equal(src2.read(0, N), a)
        assert src2.dataset == "grp/attr"


# ------------------------------------------------------------------ bad files


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"attr file '.*nope\.npy': no such file"):
        ArraySource(tmp_path / "nope.npy")


def test_truncated_npy(tmp_path, data):
    _, a = data
    p = tmp_path / "a.npy"
    np.save(p, a)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"a\.npy'.*truncated.*\(23, 40, 4\) float32.*bytes") as ei:
        ArraySource(p)
    assert "\n" not in str(ei.value)
    p.write_bytes(raw[:5])  # not even a header
    with pytest.raises(ValueError, match=r"a\.npy': not a readable \.npy file"):
        ArraySource(p)


def test_garbage_files(tmp_path):
    pytest.importorskip("h5py")
    for name in ("a.h5", "a.npy", "a.npz"):
        p = tmp_path / name
        p.write_bytes(b"this is not what it claims to be" * 10)
        with pytest.raises(ValueError, match=rf"'.*{name}': not a readable") as ei:
            ArraySource(p)
        assert "\n" not in str(ei.value)
    (tmp_path / "a.txt").write_bytes(b"1 2 3")
    with pytest.raises(ValueError, match=r"unknown file type '\.txt'; expected \.npy"):
        ArraySource(tmp_path / "a.txt")
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="is a directory, not a Zarr store"):
        ArraySource(tmp_path / "d")


def test_truncated_npz(tmp_path, data):
    _, a = data
    p = tmp_path / "a.npz"
    np.savez(p, a)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) - 200])
    with pytest.raises(ValueError, match=r"a\.npz'.*not a readable \.npz"):
        ArraySource(p)


def test_zarr_not_a_store(tmp_path):
    pytest.importorskip("zarr")
    p = tmp_path / "empty.zarr"
    p.mkdir()
    with pytest.raises(ValueError, match=r"empty\.zarr': not a readable Zarr store"):
        ArraySource(p)


@pytest.mark.parametrize("fmt", ["h5", "zarr_group", "npz_stored"])
def test_missing_dataset_lists_candidates(tmp_path, data, fmt):
    _, a = data
    p, ds = write(fmt, tmp_path / "a", a)
    with pytest.raises(ValueError, match=r"expected a \w+ named 'saliency'; the file has \w+s: .*attr' \(23, 40, 4\)"):
        ArraySource(p, dataset="saliency")


def test_several_3d_datasets(tmp_path, data):
    h5py = pytest.importorskip("h5py")
    _, a = data
    p = tmp_path / "two.h5"
    with h5py.File(p, "w") as f:
        f["saliency"] = a
        f["ism"] = a
    with pytest.raises(ValueError, match=r"several 3-D datasets, name one with dataset= \(CLI: --dataset\): "
                                         r"'ism'.*'saliency'"):
        ArraySource(p)
    with ArraySource(p, dataset="ism") as src:
        assert src.dataset == "ism"
    with h5py.File(tmp_path / "none.h5", "w") as f:
        f["flat"] = a.reshape(N, -1)
    with pytest.raises(ValueError, match=r"expected a 3-D dataset .* found none; datasets: 'flat' \(23, 160\)"):
        ArraySource(tmp_path / "none.h5")


def test_not_3d_and_wrong_channels(tmp_path, data):
    _, a = data
    np.save(tmp_path / "flat.npy", a.reshape(N, -1))
    with pytest.raises(ValueError, match=r"flat\.npy': expected a 3-D array \(N, L, 4\), got shape \(23, 160\)"):
        ArraySource(tmp_path / "flat.npy")
    np.save(tmp_path / "ncl.npy", np.ascontiguousarray(to_ncl(a)))
    with pytest.raises(ValueError, match=r"ncl\.npy': with layout='NLC' expected 4 channels .* got shape "
                                         r"\(23, 4, 40\); it looks like layout='NCL'"):
        ArraySource(tmp_path / "ncl.npy")
    with pytest.raises(ValueError, match=r"layout='NCL' .* got shape \(23, 40, 4\); it looks like layout='NLC'"):
        ArraySource(_save(tmp_path / "nlc.npy", a), layout="NCL")
    np.save(tmp_path / "c5.npy", np.zeros((3, 10, 5), np.float32))
    with pytest.raises(ValueError, match=r"expected 4 channels .* got shape \(3, 10, 5\)$"):
        ArraySource(tmp_path / "c5.npy")
    np.save(tmp_path / "obj.npy", np.array([[["a"] * 4]]))
    with pytest.raises(ValueError, match="expected a numeric array, got dtype <U1"):
        ArraySource(tmp_path / "obj.npy")


def _save(p, arr):
    np.save(p, arr)
    return p


def test_pair_mismatch_names_both_files(tmp_path, data):
    x, a = data
    px = _save(tmp_path / "seqs.npy", x)
    pa = _save(tmp_path / "attr.npy", a[:20])
    pl = _save(tmp_path / "short.npy", a[:, :30])
    with ArraySource(px, name="x") as sx, ArraySource(pa) as sa, ArraySource(pl) as sl:
        with pytest.raises(ValueError, match=r"attr file '.*attr\.npy': has shape \(20, 40, 4\) but x file "
                                             r"'.*seqs\.npy' has shape \(23, 40, 4\).*N: 23 vs 20"):
            check_pair(sx, sa)
        with pytest.raises(ValueError, match=r"short\.npy': has shape \(23, 30, 4\).*L: 40 vs 30"):
            check_pair(sx, sl)


def test_errors_come_before_any_work(tmp_path, data, monkeypatch):
    x, a = data
    px = _save(tmp_path / "seqs.npy", x)
    pa = _save(tmp_path / "attr.npy", a[:20])

    def no_read(*args, **kw):
        raise AssertionError("data was read before the inputs were checked")

    monkeypatch.setattr(ArraySource, "read", no_read)
    with pytest.raises(ValueError, match="N: 23 vs 20"):
        score_stream(pa, px, progress=False)
    with pytest.raises(ValueError, match="k: expected an integer in 1..12, got 13"):
        score_stream(_save(tmp_path / "a.npy", a), px, progress=False, k=13)
    with pytest.raises(ValueError, match=r"a10\.npy': sequence length L=10 is shorter than k=12"):
        score_stream(_save(tmp_path / "a10.npy", a[:, :10]), _save(tmp_path / "x10.npy", x[:, :10]),
                     progress=False, k=12)
    with pytest.raises(ValueError, match="x: the k-mer KLD needs the one-hot sequences"):
        score_stream(pa, progress=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'kk'"):
        score_stream(pa, px, progress=False, kk=3)
    with pytest.raises(TypeError, match=r"attr file .* expected float32 or float64 attributions, got dtype int64"):
        score_stream(_save(tmp_path / "i.npy", np.ones((N, L, 4), np.int64)), progress=False, metrics="kattr")


def test_missing_optional_dependency(tmp_path, data, monkeypatch):
    _, a = data
    p, _ = write("h5", tmp_path / "a", a)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"acme_fast\[io\]"):
        ArraySource(p)


# ------------------------------------------------------------------ FASTA


def test_read_fasta(tmp_path):
    p = tmp_path / "s.fa"
    p.write_text(">r1 some description\nACGTN\nacgtn\n>r2\nTTTTT\nGGGGG\n\n")
    x = read_fasta(p)
    assert x.shape == (2, 10, 4) and x.dtype == np.uint8
    assert x[0].argmax(1).tolist()[:4] == [0, 1, 2, 3] and x[0, 4].sum() == 0 and x[0, 9].sum() == 0
    assert x[0, 5:9].argmax(1).tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(read_fasta(p, layout="NCL"), np.swapaxes(x, 1, 2))
    gz = tmp_path / "s.fa.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    np.testing.assert_array_equal(read_fasta(gz), x)
    with open_source(p, name="seqs") as src:
        assert src.format == "fasta" and src.shape == (2, 10, 4)


@pytest.mark.parametrize("text, match", [
    (">r1\nACGT\n>r2\nACXT\n", r"record 'r2' \(record 2\) has 'X' at position 3; expected A, C, G, T or N"),
    (">r1\nACGT\n>r2\nACGTA\n", r"record 'r2' \(record 2\) has length 5, expected 4 like the first record 'r1'"),
    ("ACGT\n", r"expected a FASTA file starting with a '>' header line"),
    (">r1\n>r2\nACGT\n", r"record 'r1' \(record 1\) has no sequence"),
    ("", r"expected a FASTA file"),
])
def test_fasta_errors(tmp_path, text, match):
    p = tmp_path / "s.fasta"
    p.write_text(text)
    with pytest.raises(ValueError, match=r"seqs file '.*s\.fasta': " + match):
        read_fasta(p)


# ------------------------------------------------------------------ streaming == in memory


def _same(res, x, a, preset, layout, **kw):
    km = af.kmer_kld(x, a, preset=preset, layout=layout, k=kw.get("k", 6))
    ka = af.kattr_kld(a, preset=preset, layout=layout)
    r, s = res["kmer"], res["kattr"]
    assert r.kld == km.kld and r.n_intervals == km.n_intervals and r.n_nucleotides == km.n_nucleotides
    np.testing.assert_array_equal(r.counts, km.counts)
    np.testing.assert_array_equal(r.prior, km.prior)
    assert s.kld == ka.kld and s.n_points == ka.n_points
    np.testing.assert_array_equal(s.mass, ka.mass)


@pytest.mark.parametrize("fmt", ["npy", "h5", "zarr", "npz"])
@pytest.mark.parametrize("layout", ["NLC", "NCL"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("preset", ["paper", "acme"])
def test_stream_equals_in_memory(tmp_path, data, fmt, layout, dtype, preset):
    x, a = data
    a = a.astype(dtype)
    xs, as_ = _lay(x, layout), _lay(a, layout)
    px, dx = write(fmt, tmp_path / "seqs", xs, name="x")
    pa, da = write(fmt, tmp_path / "attr", as_)
    res = score_stream(pa, px, preset=preset, batch_size=BS, progress=False, dataset=da, x_dataset=dx,
                       layout=layout, k=4)
    _same(res, xs, as_, preset, layout, k=4)


def test_stream_defaults_and_arrays(tmp_path, data):
    x, a = data
    # in-memory arrays, default batch size (one batch), one metric
    res = score_stream(a, metrics=("kattr",), progress=False, preset="acme")
    assert set(res) == {"kattr"} and res["kattr"].kld == af.kattr_kld(a, preset="acme").kld
    # batch of 1, file + array mix
    res = score_stream(_save(tmp_path / "a.npy", a), x, batch_size=1, progress=False, k=3)
    _same(res, x, a, "paper", "NLC", k=3)


def test_two_passes_read_attr_twice(tmp_path, data, monkeypatch, capsys):
    x, a = data
    pa = _save(tmp_path / "a.npy", a)
    calls = []
    orig = ArraySource.read

    def counting(self, start, stop):
        calls.append((self.name, start, stop))
        return orig(self, start, stop)

    monkeypatch.setattr(ArraySource, "read", counting)
    score_stream(pa, x, preset="acme", batch_size=10, progress=True)
    attr_reads = [c for c in calls if c[0] == "attr"]
    assert attr_reads == [("attr", 0, 10), ("attr", 10, 20), ("attr", 20, 23)] * 2
    assert len([c for c in calls if c[0] == "x"]) == 3  # the k-mer metric reads once
    assert "pass 2/2" in capsys.readouterr().err
    calls.clear()
    score_stream(pa, x, preset="paper", batch_size=10, progress=False)
    assert len([c for c in calls if c[0] == "attr"]) == 3


def test_value_error_names_file_and_global_sequence(tmp_path, data):
    x, a = data
    a = a.copy()
    a[15, 3, 1] = np.nan
    pa = _save(tmp_path / "a.npy", a)
    with pytest.raises(ValueError, match=r"attr file '.*a\.npy': expected finite values, found nan at sequence 15, "
                                         r"position 3"):
        score_stream(pa, x, batch_size=BS, progress=False)
    x = x.copy()
    x[9, 2] = [1, 1, 0, 0]
    with pytest.raises(ValueError, match=r"x file '.*x\.npy': expected one-hot rows .* sequence 9, position 2"):
        score_stream(_save(tmp_path / "b.npy", data[1]), _save(tmp_path / "x.npy", x), batch_size=BS,
                     progress=False)


def test_memory_is_one_batch(tmp_path):
    rng = np.random.default_rng(1)
    n, length = 1500, 500  # 12 MB of attributions, 12 MB of sequences
    px = _save(tmp_path / "x.npy", onehot(rng, n, length))
    pa = _save(tmp_path / "a.npy", attribution(rng, n, length))
    score_stream(pa, px, batch_size=50, progress=False, k=4)  # warm up (imports, kernels)
    tracemalloc.start()
    try:
        score_stream(pa, px, batch_size=50, progress=False, k=4)  # a batch pair is 0.8 MB
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * 2**20, peak


def test_score_row_keys(data):
    x, a = data
    res = score_stream(a, x, progress=False, k=3, kattr_quantile=0.8)
    row = score_row("a.npy", a.shape, res, k=3, kattr_quantile=0.8)
    assert list(row) == list(ROW_KEYS)
    assert row["kmer_k"] == 3 and row["kattr_quantile"] == 0.8 and row["kmer_quantile"] == 0.9
    assert row["kattr_kld"] == af.kattr_kld(a, quantile=0.8).kld
    assert row["n_sequences"] == N and row["length"] == L


def test_io_module_all():
    for name in afio.__all__:
        assert hasattr(afio, name)


def test_stream_threads_leave_a_core_to_the_reader():
    from acme_fast.stream import stream_threads

    assert stream_threads(3) == 3 and stream_threads(1) == 1
    assert stream_threads(None) == max(1, af.max_threads() - 1)
