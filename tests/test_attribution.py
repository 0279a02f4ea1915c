"""Attribution maps (acme_fast.attribution) against plain tf.GradientTape computations."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_python

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from acme_fast import attribution as at  # noqa: E402

# Keras' own saving code triggers a numpy 2 DeprecationWarning; not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

L = 30


def onehot(n, seed=0, L=L):
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, L))]


def conv_model(n_out=1, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((L, 4)),
        keras.layers.Conv1D(8, 5, activation="relu"),
        keras.layers.GlobalMaxPooling1D(),
        keras.layers.Dense(n_out, activation="sigmoid"),
    ])


def smooth_model(seed=1):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((L, 4)),
        keras.layers.Conv1D(8, 5, activation="softplus"),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])


@pytest.fixture(scope="module")
def model1():
    return conv_model(1)


@pytest.fixture(scope="module")
def model2():
    return conv_model(2, seed=3)


@pytest.fixture(scope="module")
def x():
    return onehot(37)


def tape_grad(model, x, fn):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        t = tf.reduce_sum(fn(model(xt, training=False)))
    return tape.gradient(t, xt).numpy()


# ---- saliency --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "output, ref",
    [
        (None, lambda y: tf.reduce_mean(y, axis=1)),
        (0, lambda y: y[:, 0]),
        (1, lambda y: y[:, 1]),
        (lambda y: y[:, 1] - y[:, 0], lambda y: y[:, 1] - y[:, 0]),
    ],
    ids=["mean", "col0", "col1", "callable"],
)
def test_saliency_matches_gradient_tape(model2, x, output, ref):
    got = at.saliency(model2, x, output=output, batch_size=16)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, tape_grad(model2, x, ref), rtol=1e-5, atol=1e-7)


def test_saliency_single_output_and_callable_column(model1, x):
    ref = tape_grad(model1, x, lambda y: y[:, 0])
    np.testing.assert_allclose(at.saliency(model1, x), ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(at.saliency(model1, x, output=lambda y: y), ref, rtol=1e-5, atol=1e-7)


def test_padding_same_as_one_batch_and_no_retrace(model2, x):
    full = at.saliency(model2, x, batch_size=len(x))
    at._FUNCTIONS.pop(model2, None)  # start without cached functions
    before = at._TRACE_COUNT["n"]
    parts = list(at.iter_attributions(model2, x, batch_size=8))  # 37 = 4 * 8 + 5: padded last batch
    traced = at._TRACE_COUNT["n"] - before
    assert [s for s, _ in parts] == [0, 8, 16, 24, 32]
    assert [a.shape[0] for _, a in parts] == [8, 8, 8, 8, 5]
    np.testing.assert_allclose(np.concatenate([a for _, a in parts]), full, rtol=1e-5, atol=1e-7)
    assert traced == 1  # one trace for 5 batches
    # cached: a second run does not trace at all
    before = at._TRACE_COUNT["n"]
    at.saliency(model2, x, batch_size=8)
    assert at._TRACE_COUNT["n"] == before


def test_ncl_layout(model2, x):
    nlc = at.saliency(model2, x, batch_size=16)
    ncl = at.saliency(model2, np.swapaxes(x, 1, 2), batch_size=16, layout="NCL")
    assert ncl.shape == (len(x), 4, L)
    np.testing.assert_array_equal(ncl, np.swapaxes(nlc, 1, 2))
    sg = at.smoothgrad(model2, np.swapaxes(x, 1, 2), n_samples=3, seed=5, layout="NCL", batch_size=16)
    np.testing.assert_array_equal(sg, np.swapaxes(at.smoothgrad(model2, x, n_samples=3, seed=5, batch_size=16), 1, 2))


def test_input_dtypes_and_array_likes(model1, x):
    ref = at.saliency(model1, x)
    np.testing.assert_allclose(at.saliency(model1, x.astype(np.uint8)), ref, rtol=1e-6)
    np.testing.assert_allclose(at.saliency(model1, x.astype(np.float64).tolist()), ref, rtol=1e-6)

    class Lazy:  # only .shape and slicing, like an h5py dataset
        shape = x.shape

        def __getitem__(self, s):
            return x[s]

    np.testing.assert_allclose(at.saliency(model1, Lazy(), batch_size=10), ref, rtol=1e-5, atol=1e-7)


# ---- smoothgrad ----------------------------------------------------------------------------


def test_smoothgrad(model2, x):
    sal = at.saliency(model2, x, batch_size=16)
    sg0 = at.smoothgrad(model2, x, stddev=0.0, n_samples=4, batch_size=16)
    np.testing.assert_allclose(sg0, sal, rtol=1e-5, atol=1e-7)
    a = at.smoothgrad(model2, x, n_samples=5, stddev=0.2, seed=7, batch_size=16)
    b = at.smoothgrad(model2, x, n_samples=5, stddev=0.2, seed=7, batch_size=16)
    c = at.smoothgrad(model2, x, n_samples=5, stddev=0.2, seed=8, batch_size=16)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a, sal)


def test_smoothgrad_matches_manual_average(model1):
    """n_samples=1 with the same noise equals the gradient at x + noise."""
    x = onehot(4, seed=2)
    sg = at.smoothgrad(model1, x, n_samples=1, stddev=0.3, seed=0)
    # reproduce the noise: the same stateless draw as in the traced function
    seed = np.random.default_rng(0).integers(0, 2**62, size=2, dtype=np.int64)
    s = tf.random.experimental.stateless_fold_in(tf.constant(seed), tf.constant(0, tf.int64))
    eps = tf.random.stateless_normal(x.shape, seed=s, stddev=0.3).numpy()
    ref = tape_grad(model1, x + eps, lambda y: y[:, 0])
    np.testing.assert_allclose(sg, ref, rtol=1e-5, atol=1e-7)


# ---- integrated gradients ------------------------------------------------------------------


def test_ig_completeness():
    model = smooth_model()
    x = onehot(6, seed=4)
    f = lambda a: model(tf.constant(a, tf.float32), training=False).numpy()[:, 0]  # noqa: E731
    ig = at.integrated_gradients(model, x, steps=200)
    np.testing.assert_allclose(ig.sum(axis=(1, 2)), f(x) - f(np.zeros_like(x)), rtol=1e-2, atol=1e-5)

    base = np.full(4, 0.25, dtype=np.float32)  # broadcastable baseline
    ig = at.integrated_gradients(model, x, baseline=base, steps=200)
    np.testing.assert_allclose(ig.sum(axis=(1, 2)), f(x) - f(np.broadcast_to(base, x.shape)), rtol=1e-2, atol=1e-5)

    # in NCL the baseline is broadcast against (N, 4, L)
    ig_ncl = at.integrated_gradients(model, np.swapaxes(x, 1, 2), baseline=base[:, None], steps=200, layout="NCL")
    np.testing.assert_allclose(ig_ncl, np.swapaxes(ig, 1, 2), rtol=1e-5, atol=1e-7)


def test_ig_shuffle_baseline():
    model = smooth_model()
    x = onehot(5, seed=6)
    a = at.integrated_gradients(model, x, baseline="shuffle", steps=10, seed=3)
    b = at.integrated_gradients(model, x, baseline="shuffle", steps=10, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, at.integrated_gradients(model, x, steps=10))
    # the alias and iter_attributions give the same
    got = np.concatenate([g for _, g in at.iter_attributions(model, x, method="ig", baseline="shuffle",
                                                               steps=10, seed=3)])
    np.testing.assert_array_equal(got, a)


def test_dinuc_shuffle_preserves_dinucleotides():
    rng = np.random.default_rng(0)
    x = onehot(20, seed=9, L=50)
    x[3, 10] = 0  # an unknown base
    xs = at._shuffle_batch(x, rng)
    assert not np.array_equal(xs, x)
    for a, b in zip(x, xs):
        ta = np.where(a.any(1), a.argmax(1), 4)
        tb = np.where(b.any(1), b.argmax(1), 4)
        pairs = lambda t: sorted(zip(t[:-1].tolist(), t[1:].tolist()))  # noqa: E731
        assert pairs(ta) == pairs(tb) and ta[0] == tb[0]


def test_grad_times_input(x):
    a = np.random.default_rng(0).normal(size=x.shape)
    got = at.grad_times_input(x, a)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, x * a, rtol=1e-6)
    with pytest.raises(ValueError, match="attr: expected the same shape"):
        at.grad_times_input(x, a[:3])


# ---- loading models ------------------------------------------------------------------------


def test_load_model_paths(tmp_path, model2, x):
    ref = model2(x, training=False).numpy()
    sal = at.saliency(model2, x)
    assert at.load_model(model2) is model2

    model2.save(tmp_path / "m.keras")
    m = at.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(m(x).numpy(), ref, rtol=1e-6)

    model2.save(tmp_path / "m.h5")  # legacy HDF5, still supported by Keras 3 (with a warning)
    m = at.load_model(str(tmp_path / "m.h5"))
    np.testing.assert_allclose(m(x).numpy(), ref, rtol=1e-6)

    model2.export(tmp_path / "saved")  # SavedModel directory
    m = at.load_model(tmp_path / "saved")
    np.testing.assert_allclose(m(x).numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(at.saliency(m, x), sal, rtol=1e-5, atol=1e-7)

    model2.save_weights(tmp_path / "w.weights.h5")
    m = at.load_model(tmp_path / "w.weights.h5", builder=lambda: conv_model(2, seed=99))
    np.testing.assert_allclose(m(x).numpy(), ref, rtol=1e-6)

    # a path works directly as the model argument
    np.testing.assert_allclose(at.saliency(str(tmp_path / "m.keras"), x), sal, rtol=1e-5, atol=1e-7)


def test_load_model_signature_savedmodel(tmp_path, model2, x):
    """A SavedModel whose only endpoint is 'serving_default' returning a dict (tf.keras 2 style)."""

    class Wrapped(tf.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        @tf.function(input_signature=[tf.TensorSpec((None, L, 4), tf.float32)])
        def serve(self, a):
            return {"prob": self.net(a, training=False)}

    mod = Wrapped(model2)
    tf.saved_model.save(mod, str(tmp_path / "sm"), signatures={"serving_default": mod.serve})
    m = at.load_model(tmp_path / "sm")
    np.testing.assert_allclose(at.saliency(m, x, output=1), at.saliency(model2, x, output=1), rtol=1e-5, atol=1e-7)


def test_load_model_errors(tmp_path, model1):
    with pytest.raises(FileNotFoundError, match="no such file"):
        at.load_model(tmp_path / "missing.keras")
    model1.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match="weights only.*builder"):
        at.load_model(tmp_path / "w.weights.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a SavedModel"):
        at.load_model(tmp_path / "empty")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported file"):
        at.load_model(tmp_path / "m.txt")
    with pytest.raises(TypeError, match="model: expected a keras.Model, a torch.nn.Module, a callable or a path"):
        at.load_model(42)
    with pytest.raises(TypeError, match="builder: expected it to return a keras.Model"):
        at.load_model(tmp_path / "w.weights.h5", builder=lambda: None)
    with pytest.raises(ValueError, match="could not load the weights"):
        at.load_model(tmp_path / "w.weights.h5", builder=lambda: conv_model(3))
    (tmp_path / "bad.keras").write_text("not a zip")
    with pytest.raises(ValueError, match="Keras could not load"):
        at.load_model(tmp_path / "bad.keras")


# ---- bad inputs ----------------------------------------------------------------------------


def test_bad_inputs(model1, model2, x):
    with pytest.raises(ValueError, match=r"x: expected a 3-D array.*x\[None\]"):
        at.saliency(model1, x[0])
    with pytest.raises(ValueError, match="x: with layout='NLC' expected 4 channels.*layout='NCL'"):
        at.saliency(model1, np.swapaxes(x, 1, 2))
    with pytest.raises(ValueError, match="x: expected a non-empty array"):
        at.saliency(model1, x[:0])
    bad = x.copy()
    bad[20, 3, 1] = np.nan
    with pytest.raises(ValueError, match="x: expected finite values, found nan at sequence 20, position 3"):
        at.saliency(model1, bad, batch_size=8)
    with pytest.raises(ValueError, match="layout"):
        at.saliency(model1, x, layout="LNC")
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1"):
        at.saliency(model1, x, batch_size=0)
    with pytest.raises(ValueError, match=r"output: expected an output column in 0\.\.1, got 2"):
        at.saliency(model2, x, output=2)
    with pytest.raises(TypeError, match="output: expected None"):
        at.saliency(model2, x, output="first")
    with pytest.raises(ValueError, match="output: the callable must return one value per example"):
        at.saliency(model2, x, output=lambda y: y)
    with pytest.raises(ValueError, match="method: expected one of"):
        at.iter_attributions(model1, x, method="deeplift")
    with pytest.raises(TypeError, match="steps: not an argument of method='saliency'"):
        at.iter_attributions(model1, x, steps=3)
    with pytest.raises(ValueError, match="stddev: expected a finite number >= 0"):
        at.smoothgrad(model1, x, stddev=-1)
    with pytest.raises(ValueError, match="n_samples: expected an integer >= 1"):
        at.smoothgrad(model1, x, n_samples=0)
    with pytest.raises(TypeError, match="seed: expected None, an int"):
        at.smoothgrad(model1, x, seed=1.5)
    with pytest.raises(ValueError, match="baseline: expected 'zeros', 'shuffle' or an array, got 'random'"):
        at.integrated_gradients(model1, x, baseline="random")
    with pytest.raises(ValueError, match="baseline: expected an array broadcastable to x"):
        at.integrated_gradients(model1, x, baseline=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="steps: expected an integer >= 1"):
        at.integrated_gradients(model1, x, steps=0)
    with pytest.raises(TypeError, match="model: expected a keras.Model"):
        at.saliency(42, x)


def test_import_acme_fast_does_not_import_tensorflow():
    code = "import sys, acme_fast; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    run_python(code)


def test_missing_tensorflow_message():
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "import numpy as np; from acme_fast import attribution as at\n"
        "try:\n"
        "    at.saliency(lambda t: t, np.zeros((1, 5, 4)))\n"
        "except ImportError as e:\n"
        "    assert 'pip install \"acme_fast[tf]\"' in str(e), str(e)\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    run_python(code)
