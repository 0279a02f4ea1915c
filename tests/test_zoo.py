"""Model zoo and training strategies (acme_fast.zoo): architectures, shipped weights, strategy blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_python

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from acme_fast import zoo  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[2] / "shared" / "models" / "synthetic_cnn"


def _onehot(rng, n, L=200):
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, L))]


def _names(model):
    return [type(layer).__name__ for layer in model.layers]


@pytest.fixture(scope="module")
def tiny_data():
    """A learnable toy task: positives carry a planted 8-mer."""
    rng = np.random.default_rng(0)

    def make(n):
        x = _onehot(rng, n)
        y = (np.arange(n) % 2).astype(np.float32)
        rng.shuffle(y)
        pos = rng.integers(0, 192, size=n)
        for i in np.flatnonzero(y):
            x[i, pos[i] : pos[i] + 8] = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 3, 2, 1, 0]]
        return x, y

    xt, yt = make(200)
    xv, yv = make(100)
    return xt, yt, xv, yv


def _small():
    return zoo.base_cnn("exponential", width=0.25)


# ------------------------------------------------------------------ architectures


def test_import_acme_fast_does_not_import_tensorflow():
    code = "import sys, acme_fast; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    run_python(code)


def test_cnn_deep_layers():
    m = zoo.cnn_deep("exponential")
    block = ["Conv1D", "BatchNormalization", "Activation", "Dropout"]
    assert _names(m) == (
        ["InputLayer"] + block + (block + ["MaxPooling1D"]) * 3
        + ["Flatten", "Dense", "BatchNormalization", "Activation", "Dropout", "Dense", "Activation"]
    )
    convs = [layer for layer in m.layers if type(layer).__name__ == "Conv1D"]
    assert [(c.filters, c.kernel_size[0], c.padding) for c in convs] == [
        (24, 11, "same"), (32, 7, "same"), (48, 7, "same"), (64, 3, "same")
    ]
    assert [layer.rate for layer in m.layers if type(layer).__name__ == "Dropout"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert [layer.pool_size[0] for layer in m.layers if type(layer).__name__ == "MaxPooling1D"] == [4, 4, 3]
    acts = [layer.activation.__name__ for layer in m.layers if type(layer).__name__ == "Activation"]
    assert acts == ["exponential", "relu", "relu", "relu", "relu", "sigmoid"]
    assert m.output_shape == (None, 1)
    x = tf.constant(np.linspace(-2, 2, 8, dtype=np.float32))
    np.testing.assert_allclose(m.layers[3].activation(x).numpy(), tf.exp(x).numpy(), rtol=1e-6)
    k = convs[0]
    assert type(k.kernel_initializer).__name__ == "HeNormal"
    assert float(k.kernel_regularizer.l2) == pytest.approx(1e-6)


def test_cnn_shallow_layers():
    m = zoo.cnn_shallow("relu")
    assert _names(m) == [
        "InputLayer", "Conv1D", "BatchNormalization", "Activation", "Dropout", "MaxPooling1D",
        "Conv1D", "BatchNormalization", "Activation", "Dropout", "MaxPooling1D",
        "Flatten", "Dense", "BatchNormalization", "Activation", "Dropout", "Dense", "Activation",
    ]
    convs = [layer for layer in m.layers if type(layer).__name__ == "Conv1D"]
    assert [(c.filters, c.kernel_size[0]) for c in convs] == [(24, 19), (48, 3)]
    assert [layer.pool_size[0] for layer in m.layers if type(layer).__name__ == "MaxPooling1D"] == [50, 2]
    assert m.output_shape == (None, 1)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_base_cnn(batch_norm):
    m = zoo.base_cnn("relu", batch_norm=batch_norm, width=0.5, n_outputs=3)
    names = _names(m)
    assert names.count("Conv1D") == 4 and names.count("Dense") == 2
    assert names.count("BatchNormalization") == (5 if batch_norm else 0)
    drops = [layer.rate for layer in m.layers if type(layer).__name__ == "Dropout"]
    assert drops == [0.1, 0.1, 0.1, 0.1, 0.5]
    convs = [layer for layer in m.layers if type(layer).__name__ == "Conv1D"]
    assert [c.filters for c in convs] == [12, 16, 24, 32]
    # the paper's Table 1 code: kernel sizes 19/7/5/5, pools 4/4/3, Glorot-uniform, no weight penalty
    assert [c.kernel_size[0] for c in convs] == [19, 7, 5, 5]
    assert [layer.pool_size[0] for layer in m.layers if type(layer).__name__ == "MaxPooling1D"] == [4, 4, 3]
    dense = [layer for layer in m.layers if type(layer).__name__ == "Dense"]
    assert dense[0].units == 48
    for layer in convs + dense:
        assert type(layer.kernel_initializer).__name__ == "GlorotUniform"
        assert layer.kernel_regularizer is None
    assert not m.losses
    if batch_norm:  # BN right before each hidden activation
        for i, n in enumerate(names):
            if n == "BatchNormalization":
                assert names[i + 1] == "Activation"
    assert m.output_shape == (None, 3)
    with pytest.raises(ValueError):
        zoo.base_cnn("tanh")


def test_base_cnn_shipped_layout_keeps_the_earlier_variant():
    m = zoo.base_cnn_shipped_layout("exponential", batch_norm=False)
    convs = [layer for layer in m.layers if type(layer).__name__ == "Conv1D"]
    assert [c.kernel_size[0] for c in convs] == [11, 7, 7, 3]
    assert [c.filters for c in convs] == [24, 32, 48, 64]
    assert all(type(c.kernel_initializer).__name__ == "HeNormal" for c in convs)
    assert len(m.losses) == 6  # L2 on the 4 conv and 2 dense kernels
    for bad in (0, -1.0, True, "1"):
        with pytest.raises(ValueError, match="width"):
            zoo.base_cnn("relu", width=bad)
    with pytest.raises(ValueError, match="n_outputs"):
        zoo.base_cnn("relu", n_outputs=0)


# ------------------------------------------------------------------ shipped weights


@pytest.mark.skipif(not SHIPPED.is_dir(), reason="shared/models/synthetic_cnn is not present")
@pytest.mark.parametrize(
    "name",
    ["cnn_deep_relu_0.h5", "cnn_deep_exponential_7.h5", "cnn_shallow_relu_3.h5", "cnn_shallow_exponential_49.h5"],
)
def test_shipped_weights_load_exactly(name):
    import h5py

    path = SHIPPED / name
    if not path.exists():
        pytest.skip(f"{name} is not present")
    model = zoo.load_shipped_model(path)
    arch, act = name.split("_")[1:3]
    assert model.name == f"cnn_{arch}_{act}"
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        stored = []
        for n in names:
            wn = [w.decode() for w in f[n].attrs["weight_names"]]
            if wn:
                stored.append([np.asarray(f[n][w]) for w in wn])
    layers = [layer for layer in model.layers if layer.weights]
    assert len(layers) == len(stored)
    for layer, arrays in zip(layers, stored):
        assert type(layer).__name__ in ("Conv1D", "Dense", "BatchNormalization")
        for got, want in zip(layer.get_weights(), arrays):
            np.testing.assert_array_equal(got, want)
    # direct Keras 3 load_weights and the explicit reader give the same model
    direct = (zoo.cnn_deep if arch == "deep" else zoo.cnn_shallow)(act)
    direct.load_weights(str(path))
    legacy = zoo.load_legacy_weights((zoo.cnn_deep if arch == "deep" else zoo.cnn_shallow)(act), path)
    assert zoo.weights_match(direct, path) and zoo.weights_match(legacy, path)
    x = _onehot(np.random.default_rng(1), 64)
    p = zoo.predict(model, x)
    assert p.shape == (64, 1) and np.all(np.isfinite(p)) and p.std() > 1e-3
    np.testing.assert_array_equal(p, zoo.predict(legacy, x))


def test_load_legacy_weights_rejects_wrong_architecture(tmp_path):
    if not SHIPPED.is_dir():
        pytest.skip("shared/models/synthetic_cnn is not present")
    with pytest.raises(ValueError):
        zoo.load_legacy_weights(zoo.cnn_shallow("relu"), SHIPPED / "cnn_deep_relu_0.h5")
    with pytest.raises(ValueError):
        zoo.load_shipped_model(tmp_path / "model.h5")


# ------------------------------------------------------------------ strategy building blocks


def test_mixup_batch_is_convex_combination_of_pairs():
    rng = np.random.default_rng(3)
    x = _onehot(rng, 16, 20)
    y = rng.integers(0, 2, size=(16, 1)).astype(np.float32)
    xm, ym, lam, perm = zoo.mixup_batch(x, y, np.random.default_rng(5), return_params=True)
    assert 0.0 <= lam <= 1.0 and sorted(perm) == list(range(16))
    np.testing.assert_allclose(xm, lam * x + (1 - lam) * x[perm], atol=1e-6)
    np.testing.assert_allclose(ym, lam * y + (1 - lam) * y[perm], atol=1e-6)
    # same seed, same batch; rows stay convex (sum to 1, in [0, 1])
    xm2, ym2 = zoo.mixup_batch(x, y, np.random.default_rng(5))
    np.testing.assert_array_equal(xm, xm2)
    np.testing.assert_allclose(xm.sum(-1), 1.0, atol=1e-6)
    assert xm.min() >= 0 and xm.max() <= 1
    lams = [zoo.mixup_batch(x, y, np.random.default_rng(s), return_params=True)[2] for s in range(200)]
    assert 0.35 < np.mean(lams) < 0.65  # Beta(1, 1): uniform


def test_pgd_stays_in_ball_and_increases_loss():
    keras.utils.set_random_seed(0)
    m = _small()
    rng = np.random.default_rng(2)
    x = _onehot(rng, 32)
    y = rng.integers(0, 2, size=(32, 1)).astype(np.float32)
    x_adv = zoo.pgd_perturb(m, x, y, steps=15, step_size=0.005, radius=0.05).numpy()
    delta = x_adv - x
    assert np.abs(delta).max() <= 0.05 + 1e-7
    assert np.abs(delta).max() > 0.04  # 15 steps of 0.005 reach the boundary
    bce = keras.losses.BinaryCrossentropy()
    assert float(bce(y, m(x_adv, training=False))) > float(bce(y, m(x, training=False)))


def test_spectral_penalty_matches_svd():
    keras.utils.set_random_seed(1)
    m = _small()
    kernels = [layer.kernel.numpy() for layer in m.layers if type(layer).__name__ in ("Conv1D", "Dense")]
    mats = [k.reshape(-1, k.shape[-1]) for k in kernels]
    assert mats[0].shape == (19 * 4, 6)  # conv kernels flattened to (k * C_in) x C_out
    sv = [np.linalg.svd(w, compute_uv=False)[0] for w in mats]
    want = 0.5 * 0.01 * sum(s**2 for s in sv)
    got = float(zoo.spectral_penalty(m, lam=0.01, n_iter=300))
    assert got == pytest.approx(want, rel=1e-4)
    # power_iteration_norm equals a numpy power iteration from the same start, any n_iter
    for w, k in zip(mats, kernels):
        v = np.ones(w.shape[1]) / np.sqrt(w.shape[1])
        for _ in range(3):
            u = w @ v
            u /= np.linalg.norm(u)
            v = w.T @ u
            v /= np.linalg.norm(v)
        assert float(zoo.power_iteration_norm(k, n_iter=3)) == pytest.approx(np.linalg.norm(w @ v), rel=1e-5)
    # gradient flows to the kernels
    with tf.GradientTape() as tape:
        pen = zoo.spectral_penalty(m, n_iter=5)
    grads = tape.gradient(pen, [layer.kernel for layer in m.layers if type(layer).__name__ == "Conv1D"])
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def _chain_without_dropout():
    L = keras.layers
    inp = keras.Input((50, 4))
    h = L.Conv1D(8, 5, padding="same")(inp)
    h = L.BatchNormalization()(h)
    h = L.Activation("relu")(h)
    h = L.MaxPooling1D(5)(h)
    h = L.Conv1D(8, 3, padding="same")(h)
    h = L.Activation("relu")(h)
    h = L.Flatten()(h)
    h = L.Dense(1)(h)
    return keras.Model(inp, L.Activation("sigmoid")(h))


@pytest.mark.parametrize("point", [0, 1, 2])
def test_noise_only_in_training_mode(point):
    keras.utils.set_random_seed(2)
    m = _chain_without_dropout()
    assert zoo.injection_points(m) == [0, 4, 7]
    x = _onehot(np.random.default_rng(4), 16, 50)
    kw = {"point": point, "noise_std": 0.15, "seed": (3, 4)}
    infer = m(x, training=False).numpy()
    np.testing.assert_allclose(zoo.forward(m, x, training=False, **kw).numpy(), infer, atol=1e-6)
    clean_train = zoo.forward(m, x, training=True).numpy()
    np.testing.assert_allclose(clean_train, m(x, training=True).numpy(), atol=1e-6)
    noisy = zoo.forward(m, x, training=True, **kw).numpy()
    assert np.abs(noisy - clean_train).max() > 1e-4
    # deterministic given the seed; a tensor point gives the same result
    again = zoo.forward(m, x, training=True, **{**kw, "point": tf.constant(point)}).numpy()
    np.testing.assert_allclose(noisy, again, atol=1e-6)


def test_manifold_mixup_forward_mixes_hidden_layer():
    keras.utils.set_random_seed(2)
    m = _chain_without_dropout()
    x = _onehot(np.random.default_rng(4), 8, 50)
    perm = np.arange(8)[::-1].copy()
    # at the input, forward with lam equals the model on mixed inputs
    got = zoo.forward(m, x, training=True, point=0, lam=0.3, perm=perm).numpy()
    np.testing.assert_allclose(got, m(0.3 * x + 0.7 * x[perm], training=True).numpy(), atol=1e-5)
    assert np.abs(zoo.forward(m, x, training=False, point=0, lam=0.3, perm=perm).numpy()
                  - m(x, training=False).numpy()).max() < 1e-6


# ------------------------------------------------------------------ training


def test_early_stopping_callback_restores_best_weights():
    m = _small()
    rng = np.random.default_rng(0)
    xv = _onehot(rng, 40)
    yv = rng.integers(0, 2, size=40).astype(np.float32)
    cb = zoo.AUROCEarlyStopping(xv, yv, patience=2)
    cb.set_model(m)
    cb.on_train_begin()
    scores, weights = [], []
    for epoch in range(3):
        keras.utils.set_random_seed(epoch + 10)
        m.set_weights(_small().get_weights())
        weights.append(m.get_weights())
        logs = {}
        cb.on_epoch_end(epoch, logs)
        scores.append(logs["val_auroc"])
    cb.on_train_end()
    best = int(np.argmax(scores))
    assert cb.best_epoch == best
    for a, b in zip(m.get_weights(), weights[best]):
        np.testing.assert_array_equal(a, b)


def test_train_keeps_best_auroc_weights_and_stops_early():
    rng = np.random.default_rng(7)
    x = _onehot(rng, 100)
    y = rng.integers(0, 2, size=100).astype(np.float32)  # pure noise: the AUROC wanders, stops improving
    xv, yv = x[:50], y[:50]
    model, hist = zoo.train(_small, (x, y, xv, yv), epochs=30, patience=2, learning_rate=3e-2, seed=0)
    n = len(hist["val_auroc"])
    assert hist["stopped_epoch"] == n - 1 and n < 30
    assert hist["best_epoch"] == int(np.argmax(hist["val_auroc"])) and hist["best_epoch"] == n - 3
    assert hist["best_val_auroc"] == max(hist["val_auroc"])
    # the returned model holds the best epoch's weights, not the last epoch's
    assert zoo.auroc(yv, zoo.predict(model, xv)) == pytest.approx(hist["best_val_auroc"], abs=1e-9)


def test_forward_without_dropout_is_the_inference_pass_without_bn():
    """The burn-in's forward pass: Dropout skipped in training mode. Without BN nothing else differs
    between training and inference, so it equals model(x, training=False); with dropout it does not."""
    m = zoo.base_cnn("relu", batch_norm=False, width=0.25)
    x = _onehot(np.random.default_rng(3), 16)
    ref = np.asarray(m(x, training=False))
    np.testing.assert_allclose(np.asarray(zoo.forward(m, x, training=True, dropout=False)), ref, rtol=1e-6, atol=1e-7)
    keras.utils.set_random_seed(0)
    assert not np.allclose(np.asarray(zoo.forward(m, x, training=True)), ref, rtol=1e-4, atol=1e-6)


def test_early_stopping_ignores_epochs_before_min_epochs():
    m = _small()
    rng = np.random.default_rng(0)
    xv = _onehot(rng, 40)
    yv = rng.integers(0, 2, size=40).astype(np.float32)
    cb = zoo.AUROCEarlyStopping(xv, yv, patience=1, min_epochs=2)
    cb.set_model(m)
    m.stop_training = False
    cb.on_train_begin()
    scores = []
    for epoch in range(4):
        keras.utils.set_random_seed(epoch + 10)
        m.set_weights(_small().get_weights())
        logs = {}
        cb.on_epoch_end(epoch, logs)
        scores.append(logs["val_auroc"])  # computed for every epoch
        assert not m.stop_training or epoch == 3  # patience counts only from epoch 2
    assert len(set(scores)) == 4
    assert cb.best_epoch == 2 + int(np.argmax(scores[2:]))  # epochs 0 and 1 are never the best
    assert cb.best == max(scores[2:])


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "exponential"])
def test_no_bn_models_leave_the_ln2_plateau_with_burn_in(activation):
    """Without BN, the dense ReLUs die under Dropout(0.5) in the first epoch (constant output, loss ln 2
    for good). With the dropout-free burn-in, the Table 1 base CNN without BN learns the synthetic task
    (half width, the reduced sweep's data and rate)."""
    from acme_fast.synthetic import make_dataset

    d = make_dataset(n=10000, seed=0, progress=False)
    data = (d.X_train, d.Y_train, d.X_valid, d.Y_valid)

    def build():
        return zoo.base_cnn(activation, batch_norm=False, width=0.5)

    model, hist = zoo.train(build, data, epochs=10, burn_in=2, min_epochs=1, learning_rate=3e-3, seed=0)
    assert hist["burn_in"] == 2 and len(hist["loss"]) <= 12
    assert hist["best_epoch"] >= 3  # the burn-in epochs and the first epoch after are not candidates
    assert min(hist["loss"]) < np.log(2) - 0.08, hist["loss"]
    p = zoo.predict(model, d.X_valid)
    assert np.std(p) > 0.05  # not a constant output
    assert zoo.auroc(d.Y_valid, p) > 0.75


def test_train_validates_epoch_arguments(tiny_data):
    for kw, msg in (({"burn_in": -1}, "burn_in"), ({"min_epochs": 1.5}, "min_epochs"), ({"epochs": 0}, "epochs"),
                    ({"batch_size": 0}, "batch_size")):
        with pytest.raises((ValueError, TypeError), match=msg):
            zoo.train(_small, tiny_data, **kw)


@pytest.mark.parametrize("strategy", zoo.STRATEGIES)
def test_each_strategy_runs(strategy, tiny_data):
    kw = {}
    epochs = 1
    if strategy == "adversarial":  # exercise the clean+adversarial and the purely adversarial phases
        kw = {"adv_standard_epochs": 0, "adv_mixed_epochs": 1, "pgd_steps": 3}
        epochs = 2
    model, hist = zoo.train(_small, tiny_data, strategy=strategy, epochs=epochs, seed=0, **kw)
    assert hist["strategy"] == strategy and len(hist["loss"]) == epochs
    assert all(np.isfinite(hist["loss"])) and all(np.isfinite(hist["val_auroc"]))
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_train_rejects_unknown_strategy(tiny_data):
    with pytest.raises(ValueError):
        zoo.train(_small, tiny_data, strategy="dropout")


def test_auroc_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, size=300)
    p = np.round(rng.random(300) + 0.3 * y, 2)  # with ties
    assert zoo.auroc(y, p) == pytest.approx(metrics.roc_auc_score(y, p), abs=1e-12)
