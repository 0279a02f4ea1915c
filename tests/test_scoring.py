"""score_model / score_models: attributions streamed from a Keras model into the metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import onehot, to_ncl

import acme_fast as af
from acme_fast.scoring import auroc, average_precision, label_metrics, score_model, score_models

tf = pytest.importorskip("tensorflow")
keras = tf.keras

N, L = 37, 40


def _model(seed, outputs=1):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((L, 4))
    h = keras.layers.Conv1D(8, 5, activation="relu")(inp)
    h = keras.layers.MaxPooling1D(2)(h)
    h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(outputs, activation="sigmoid")(h)
    return keras.Model(inp, out, name=f"tiny{seed}")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    paths = []
    for seed in (1, 2):
        m = _model(seed)
        p = d / f"m{seed}.keras"
        m.save(p)
        paths.append(p)
    rng = np.random.default_rng(5)
    x = onehot(rng, N, L)
    xm = rng.dirichlet(np.ones(4), size=(N, L)).astype(np.float32)
    xm[:, 10:16] = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1]]  # a planted motif (signal)
    return d, paths, x, xm


def _materialised(path, x, layout="NLC", batch_size=8):
    from acme_fast import attribution as af_attr

    return np.asarray(af_attr.saliency(af_attr.load_model(path), x, batch_size=batch_size, layout=layout))


@pytest.mark.parametrize("preset", ["paper", "acme"])
def test_stream_equals_materialised(data, preset):
    d, paths, x, xm = data
    rec = score_model(paths[0], x, x_model=xm, batch_size=8, preset=preset, progress=False, k=3)
    a = _materialised(paths[0], x)
    km = af.kmer_kld(x, a, k=3, preset=preset)
    ka = af.kattr_kld(a, preset=preset)
    gt = af.groundtruth_scores(x, a, xm)
    assert rec["kmer_kld"] == km.kld and rec["kmer_n_intervals"] == km.n_intervals
    assert rec["kattr_kld"] == ka.kld and rec["kattr_n_points"] == ka.n_points
    assert (rec["gt_auroc"], rec["gt_auprc"], rec["gt_snr"]) == (gt.mean_auroc, gt.mean_auprc, gt.mean_snr)
    assert rec["n_sequences"] == N and rec["length"] == L and rec["preset"] == preset
    assert "attributions" not in rec
    if preset == "acme":
        assert rec["kattr_threshold_scope"] == "global"  # two passes: the batches kept for the second
    kept = score_model(paths[0], x, x_model=xm, batch_size=8, preset=preset, progress=False, k=3,
                       keep_attributions=True)
    np.testing.assert_array_equal(kept["attributions"], a)
    assert kept["kattr_kld"] == rec["kattr_kld"] and kept["kmer_kld"] == rec["kmer_kld"]


@pytest.mark.parametrize(("limit", "chunk"), [(None, None), (0, None), (None, 1)])
def test_spool_memory_or_file(data, monkeypatch, limit, chunk):
    """The two-pass metrics keep the first pass's batches in memory when small (the default here),
    in a temporary .npy file above SPOOL_IN_MEMORY_BYTES; the file is removed afterwards. The
    second pass reads them in chunks of PASS2_CHUNK_VALUES values (here: all 37 sequences in one
    call; with 1, the model's batches of 8). The scores are the same every way."""
    from acme_fast import scoring

    d, paths, x, xm = data
    if limit is not None:
        monkeypatch.setattr(scoring, "SPOOL_IN_MEMORY_BYTES", limit)
    if chunk is not None:
        monkeypatch.setattr(scoring, "PASS2_CHUNK_VALUES", chunk)
    calls = []
    real_update = af.KattrAccumulator.update

    def update(self, a, *args, **kw):
        calls.append((self.pass_index, len(a)))
        return real_update(self, a, *args, **kw)

    monkeypatch.setattr(af.KattrAccumulator, "update", update)
    made = []
    real = scoring._Spool

    def spy(*args, **kwargs):
        sp = real(*args, **kwargs)
        made.append((sp, sp.on_disk, None if sp._dir is None else Path(sp._dir.name)))
        return sp

    monkeypatch.setattr(scoring, "_Spool", spy)
    rec = score_model(paths[0], x, batch_size=8, preset="acme", progress=False, k=3)
    assert len(made) == 1
    sp, on_disk, where = made[0]
    assert on_disk == (limit == 0)
    assert sp.arr is None  # closed
    if on_disk:
        assert where is not None and not where.exists()
    ka = af.kattr_kld(_materialised(paths[0], x), preset="acme")
    assert rec["kattr_kld"] == ka.kld and rec["kattr_n_points"] == ka.n_points
    first = [n for p, n in calls if p == 0]
    second = [n for p, n in calls if p == 1]
    assert first == [8, 8, 8, 8, 5]
    assert second == ([N] if chunk is None else first)


@pytest.mark.parametrize("preset", ["paper", "acme"])
def test_accelerator_path(data, preset, monkeypatch):
    """The path score_model takes when the model runs on a GPU: a producer thread one batch ahead
    and the GPU's kernel threads (all cores in the second pass). CI has no GPU, so the test says
    the model is on one; the scores must be those of the CPU path."""
    from acme_fast import scoring

    d, paths, x, xm = data
    cpu = score_model(paths[0], x, x_model=xm, batch_size=8, preset=preset, progress=False, k=3, motifs=True)
    monkeypatch.setattr(scoring, "_on_accelerator", lambda be: True)
    seen = []
    real = scoring._Prefetch
    monkeypatch.setattr(scoring, "_Prefetch", lambda *a, **k: seen.append(1) or real(*a, **k))
    acc = score_model(paths[0], x, x_model=xm, batch_size=8, preset=preset, progress=False, k=3, motifs=True)
    assert seen, "the producer thread did not run"
    t = scoring._default_threads(None)  # the kernels leave a core to the thread that feeds the GPU
    assert isinstance(t, int) and 1 <= t <= max(1, af.max_threads() - 1)
    for key in ("kmer_kld", "kattr_kld", "gt_auroc", "gt_auprc", "gt_snr", "kmer_n_intervals", "kattr_n_points"):
        assert acc[key] == cpu[key], key


def test_accumulator_threads_setter():
    """n_threads may change between batches (None: all cores); it is checked like the argument."""
    rng = np.random.default_rng(3)
    x = onehot(rng, 20, 30)
    a = rng.normal(size=x.shape).astype(np.float32)
    for acc in (af.KmerAccumulator(k=3, n_threads=1), af.KattrAccumulator(n_threads=1)):
        args = (x, a) if isinstance(acc, af.KmerAccumulator) else (a,)
        acc.update(*(v[:10] for v in args))
        acc.n_threads = None
        assert acc.n_threads is None
        acc.update(*(v[10:] for v in args))
        one = type(acc)(**({"k": 3} if isinstance(acc, af.KmerAccumulator) else {})).update(*args)
        assert acc.result().kld == one.result().kld
        with pytest.raises(TypeError, match="n_threads"):
            acc.n_threads = "all"
        with pytest.raises(ValueError, match="n_threads"):
            acc.n_threads = 0


def test_stream_ncl(data):
    d, paths, x, _ = data
    xn = np.ascontiguousarray(to_ncl(x))
    rec = score_model(paths[1], xn, layout="NCL", batch_size=16, preset="acme", progress=False, k=4,
                      keep_attributions=True)
    a = rec["attributions"]
    assert a.shape == xn.shape
    np.testing.assert_allclose(a, to_ncl(_materialised(paths[1], x, batch_size=16)), rtol=1e-5, atol=1e-6)
    assert rec["kmer_kld"] == af.kmer_kld(xn, a, k=4, layout="NCL", preset="acme").kld
    assert rec["kattr_kld"] == af.kattr_kld(a, layout="NCL", preset="acme").kld


def test_label_metrics_vs_sklearn(data):
    skm = pytest.importorskip("sklearn.metrics")
    d, paths, x, _ = data
    rng = np.random.default_rng(0)
    y = (rng.random(N) < 0.4).astype(np.int64)
    rec = score_model(paths[0], x, y=y, metrics=(), batch_size=16, progress=False)
    pred = keras.models.load_model(paths[0]).predict(x, verbose=0)[:, 0]
    assert rec["auroc"] == pytest.approx(skm.roc_auc_score(y, pred), rel=1e-12)
    assert rec["aupr"] == pytest.approx(skm.average_precision_score(y, pred), rel=1e-12)
    assert "kmer_kld" not in rec
    # ties and multi-task
    s = rng.integers(0, 5, size=200).astype(float)
    yy = (rng.random(200) < 0.3).astype(float)
    assert auroc(yy, s) == pytest.approx(skm.roc_auc_score(yy, s), rel=1e-12)
    assert average_precision(yy, s) == pytest.approx(skm.average_precision_score(yy, s), rel=1e-12)
    Y = np.stack([yy, 1 - yy], 1)
    S = np.stack([s, rng.normal(size=200)], 1)
    m = label_metrics(Y, S)
    assert m["auroc"] == pytest.approx(np.mean([skm.roc_auc_score(Y[:, t], S[:, t]) for t in range(2)]))
    yc = rng.normal(size=N)
    rec = score_model(paths[0], x, y=yc, metrics=("kattr",), batch_size=16, progress=False)
    # float32 predictions may differ in the last bit with the batch shape (padded batches of 16 here)
    assert rec["pearson_r"] == pytest.approx(np.corrcoef(yc, pred)[0, 1], rel=1e-6)
    assert np.isfinite(rec["kattr_kld"])


def test_score_models(data):
    pd = pytest.importorskip("pandas")
    d, paths, x, xm = data
    df = score_models(paths, x, x_model=xm, batch_size=16, progress=False, k=3)
    assert isinstance(df, pd.DataFrame)
    assert list(df["model"]) == ["m1", "m2"]
    for col in ("kmer_kld", "kattr_kld", "gt_auroc", "n_sequences", "preset"):
        assert col in df.columns
    one = score_model(paths[1], x, x_model=xm, batch_size=16, progress=False, k=3)
    assert df.loc[1, "kmer_kld"] == one["kmer_kld"] and df.loc[1, "gt_snr"] == one["gt_snr"]
    df2 = score_models({"a": keras.models.load_model(paths[0])}, x, metrics=("kattr",), progress=False)
    assert list(df2["model"]) == ["a"] and "kmer_kld" not in df2.columns


def test_errors(data):
    d, paths, x, _ = data
    with pytest.raises(ValueError, match="metrics"):
        score_model(paths[0], x, metrics=(), progress=False)
    with pytest.raises(ValueError, match="metrics"):
        score_model(paths[0], x, metrics=("bogus",), progress=False)
    with pytest.raises(TypeError, match="unexpected keyword"):
        score_model(paths[0], x, progress=False, kk=3)
    with pytest.raises(ValueError, match="x_model"):
        score_model(paths[0], x, x_model=np.zeros((2, L, 4)), progress=False)
