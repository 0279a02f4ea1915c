"""Model zoo and training strategies of the paper (Majdandzic, Rajesh et al., PMLR 2022, appendix B).

TensorFlow/Keras 3 are imported on first use of this module, never by ``import acme_fast``.

Architectures (Keras functional models, input ``(L, 4)`` one-hot, ``padding="same"``; all are
linear chains of layers):

- :func:`cnn_deep`, :func:`cnn_shallow`: the architectures of the 200 shipped weight files
  ``shared/models/synthetic_cnn/cnn_{deep,shallow}_{relu,exponential}_{0..49}.h5`` (Keras 2.2.4
  ``save_weights``; L2 1e-6, He-normal); :func:`load_shipped_model` builds the right one from the
  file name.
- :func:`base_cnn`: the paper's base CNN of Table 1 (4 conv layers + 1 dense layer, optional BN) as
  the authors' Table 1 training code builds it: kernel sizes 19/7/5/5, Glorot-uniform, no L2.
  :func:`base_cnn_shipped_layout` is the earlier variant with :func:`cnn_deep`'s layer sizes.

Training (:func:`train`): binary cross-entropy, Adam (rate 1e-3), minibatch 128, an optional
dropout-free burn-in, early stopping on the validation AUROC keeping the best weights
(:class:`AUROCEarlyStopping`, optionally only after a minimum number of epochs), and the strategies
``standard``, ``mixup``, ``manifold_mixup``, ``input_noise``, ``manifold_noise``, ``adversarial``
and ``spectral``. Building blocks: :func:`mixup_batch`, :func:`forward`, :func:`pgd_perturb`,
:func:`spectral_penalty`, :func:`power_iteration_norm`, :func:`injection_points`.

>>> from acme_fast import zoo                                        # doctest: +SKIP
>>> model = zoo.load_shipped_model("cnn_deep_exponential_7.h5")     # doctest: +SKIP
>>> model, history = zoo.train(lambda: zoo.base_cnn("exponential"), (xt, yt, xv, yv),
...                            strategy="manifold_mixup")            # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

STRATEGIES = ("standard", "mixup", "manifold_mixup", "input_noise", "manifold_noise", "adversarial", "spectral")

_L2 = 1e-6


_TF: Any = None


def _tf():
    """(tensorflow, keras), imported once. Cached so that functions traced by tf.function (which call
    this) run no import statement after the first call (AutoGraph warns about converting one)."""
    global _TF
    if _TF is None:
        from .attribution import _tf as tf_import

        _TF = tf_import()
    return _TF


def _first_activation(activation: str) -> str:
    """Keras activation name for the first layer. ``"exponential"`` is ``keras.ops.exp`` (= ``tf.exp``)."""
    if activation not in ("relu", "exponential"):
        raise ValueError(f"activation: expected 'relu' or 'exponential', got {activation!r}")
    return activation


def _init_kw(keras, table1: bool) -> dict:
    """Initialiser and regulariser of the conv/dense kernels: the shipped files' (He-normal, L2 1e-6)
    or Table 1's (Keras defaults: Glorot-uniform, no regulariser)."""
    if table1:
        return {"kernel_initializer": "glorot_uniform"}
    return {"kernel_initializer": "he_normal", "kernel_regularizer": keras.regularizers.l2(_L2)}


def _cnn(blocks: Any, activation: str, dense_units: int, n_outputs: int, batch_norm: bool, input_shape: tuple,
         name: str, table1: bool = False) -> Any:
    """Conv blocks Conv1D - [BN] - activation - Dropout - [MaxPool] (the first block's activation is
    ``activation``, the others ReLU), then Flatten - Dense - [BN] - ReLU - Dropout 0.5 - Dense -
    sigmoid. ``blocks``: (filters, kernel size, dropout rate, pool size or 0). The layers are created
    in the order of the shipped weight files, which load by that order."""
    _, keras = _tf()
    act = _first_activation(activation)
    L = keras.layers
    kw = _init_kw(keras, table1)
    inp = keras.Input(shape=tuple(input_shape))
    h = inp
    for i, (filters, size, rate, pool) in enumerate(blocks):
        h = L.Conv1D(filters, size, padding="same", **kw)(h)
        if batch_norm:
            h = L.BatchNormalization()(h)
        h = L.Activation(act if i == 0 else "relu")(h)
        h = L.Dropout(rate)(h)
        if pool:
            h = L.MaxPooling1D(pool)(h)
    h = L.Flatten()(h)
    h = L.Dense(dense_units, **kw)(h)
    if batch_norm:
        h = L.BatchNormalization()(h)
    h = L.Activation("relu")(h)
    h = L.Dropout(0.5)(h)
    h = L.Dense(n_outputs, **kw)(h)
    out = L.Activation("sigmoid")(h)
    return keras.Model(inp, out, name=name)


def cnn_deep(activation: str = "relu", input_shape: tuple = (200, 4)) -> Any:
    """The deep CNN of the shipped weight files.

    Conv1D(24, 11)-BN-``activation``-Dropout 0.1; Conv1D(32, 7)-BN-ReLU-Dropout 0.2-MaxPool 4;
    Conv1D(48, 7)-BN-ReLU-Dropout 0.3-MaxPool 4; Conv1D(64, 3)-BN-ReLU-Dropout 0.4-MaxPool 3;
    Flatten-Dense(96)-BN-ReLU-Dropout 0.5; Dense(1)-sigmoid.
    """
    blocks = ((24, 11, 0.1, 0), (32, 7, 0.2, 4), (48, 7, 0.3, 4), (64, 3, 0.4, 3))
    return _cnn(blocks, activation, 96, 1, True, input_shape, f"cnn_deep_{activation}")


def cnn_shallow(activation: str = "relu", input_shape: tuple = (200, 4)) -> Any:
    """The shallow CNN of the shipped weight files.

    Conv1D(24, 19)-BN-``activation``-Dropout 0.1-MaxPool 50; Conv1D(48, 3)-BN-ReLU-Dropout 0.2-MaxPool 2;
    Flatten-Dense(96)-BN-ReLU-Dropout 0.5; Dense(1)-sigmoid.
    """
    blocks = ((24, 19, 0.1, 50), (48, 3, 0.2, 2))
    return _cnn(blocks, activation, 96, 1, True, input_shape, f"cnn_shallow_{activation}")


#: (filters, kernel size, max-pool size after the block) of the base CNN's conv layers at width 1, as
#: the paper's Table 1 code builds them (first layer 24 x 19, then 32 x 7, 48 x 5, 64 x 5; max-pool 4,
#: 4, 3 after conv 2-4); dense layer of 96 units.
BASE_CNN_CONV = ((24, 19, None), (32, 7, 4), (48, 5, 4), (64, 5, 3))
#: The same for :func:`base_cnn_shipped_layout`: the layer sizes of :func:`cnn_deep`.
BASE_CNN_SHIPPED_CONV = ((24, 11, None), (32, 7, 4), (48, 7, 4), (64, 3, 3))
BASE_CNN_DENSE = 96


def _base(conv: Any, activation: str, batch_norm: bool, width: float, n_outputs: int, input_shape: tuple,
          name: str, table1: bool) -> Any:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"width: expected a positive number, got {width!r}")
    if isinstance(n_outputs, bool) or int(n_outputs) != n_outputs or int(n_outputs) < 1:
        raise ValueError(f"n_outputs: expected a positive integer, got {n_outputs!r}")
    blocks = tuple((max(1, int(round(f * width))), size, 0.1, pool) for f, size, pool in conv)
    bn = "bn" if batch_norm else "nobn"
    return _cnn(blocks, activation, max(1, int(round(BASE_CNN_DENSE * width))), int(n_outputs), bool(batch_norm),
                input_shape, f"{name}_{activation}_{bn}", table1)


def base_cnn(
    activation: str = "relu",
    batch_norm: bool = True,
    width: float = 1.0,
    n_outputs: int = 1,
    input_shape: tuple = (200, 4),
) -> Any:
    """The paper's base CNN of Table 1, as the authors' training code builds it.

    Conv1D(24, 19) - [BN] - ``activation`` - Dropout 0.1; Conv1D(32, 7) - [BN] - ReLU - Dropout 0.1
    - MaxPool 4; Conv1D(48, 5) - ... - MaxPool 4; Conv1D(64, 5) - ... - MaxPool 3; Flatten -
    Dense(96) - [BN] - ReLU - Dropout 0.5 - Dense(``n_outputs``) - sigmoid (:data:`BASE_CNN_CONV`).
    Kernels Glorot-uniform (Keras's default), no weight penalty; train with Adam 1e-3, minibatch 128
    (:func:`train`'s defaults).

    Parameters
    ----------
    activation : {"relu", "exponential"}
        The first layer's activation; the others are ReLU.
    batch_norm : bool
        A BN layer before each hidden activation.
    width : float
        Scales every filter count and the dense units (rounded, at least 1); the paper's
        ``factor`` (1, 4, 8) is ``width``.
    n_outputs : int
    input_shape : tuple
        ``(L, 4)``.
    """
    return _base(BASE_CNN_CONV, activation, batch_norm, width, n_outputs, input_shape, "base_cnn", True)


def base_cnn_shipped_layout(
    activation: str = "relu",
    batch_norm: bool = True,
    width: float = 1.0,
    n_outputs: int = 1,
    input_shape: tuple = (200, 4),
) -> Any:
    """The earlier base CNN: :func:`base_cnn` with :func:`cnn_deep`'s layer sizes and initialisation.

    Kernel sizes 11/7/7/3 (:data:`BASE_CNN_SHIPPED_CONV`), He-normal, L2 1e-6 on the kernels; kept for
    results made with it. Without BN it trains badly (dense units die under Dropout 0.5; see
    :func:`train`'s ``burn_in``).
    """
    return _base(BASE_CNN_SHIPPED_CONV, activation, batch_norm, width, n_outputs, input_shape,
                 "base_cnn_shipped", False)


# --------------------------------------------------------------------------------------------
# Shipped weights (Keras 2.2.4 save_weights)
# --------------------------------------------------------------------------------------------


def _weighted_layers(model: Any) -> list:
    return [layer for layer in model.layers if layer.weights]


def _legacy_h5_weights(path: Any) -> list[tuple[str, list[np.ndarray]]]:
    """[(layer name, [arrays in weight_names order])] for the layers with weights of a Keras 2 h5."""
    import h5py

    out = []
    with h5py.File(str(path), "r") as f:
        g = f["model_weights"] if "model_weights" in f else f
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs["layer_names"]]
        for name in names:
            grp = g[name]
            wnames = [n.decode() if isinstance(n, bytes) else str(n) for n in grp.attrs.get("weight_names", [])]
            if wnames:
                out.append((name, [np.asarray(grp[w]) for w in wnames]))
    return out


def load_legacy_weights(model: Any, path: Any) -> Any:
    """Assign the weights of a Keras 2 (``save_weights``) h5 file to ``model``, layer by layer.

    The file's layers with weights, in its ``layer_names`` order, go to the model's layers with
    weights in order; each pair must have the same type (conv/BN/dense, judged from the file's
    layer name) and the same weight shapes (conv kernel/bias; BN gamma/beta/moving_mean/
    moving_variance; dense kernel/bias). Returns ``model``.
    """
    stored = _legacy_h5_weights(path)
    layers = _weighted_layers(model)
    if len(stored) != len(layers):
        raise ValueError(
            f"{str(path)!r} has {len(stored)} layers with weights, the model {model.name!r} has {len(layers)}"
        )
    kinds = {"conv1d": "Conv1D", "batch_normalization": "BatchNormalization", "dense": "Dense"}
    for (name, arrays), layer in zip(stored, layers):
        base = re.sub(r"_\d+$", "", name)
        want = kinds.get(base)
        if want is not None and type(layer).__name__ != want:
            raise ValueError(f"{str(path)!r}: layer {name!r} does not match the model's {type(layer).__name__}")
        shapes = [tuple(w.shape) for w in layer.get_weights()]
        if shapes != [a.shape for a in arrays]:
            raise ValueError(
                f"{str(path)!r}: layer {name!r} has weight shapes {[a.shape for a in arrays]}, "
                f"the model's {layer.name!r} has {shapes}"
            )
        layer.set_weights(arrays)
    return model


_SHIPPED = re.compile(r"cnn_(deep|shallow)_(relu|exponential)_\d+(?:\.weights)?\.h5$")


def load_shipped_model(path: Any) -> Any:
    """Build the architecture named by a shipped file (``cnn_deep_exponential_7.h5`` ->
    ``cnn_deep("exponential")``) and load its weights.

    Tries ``model.load_weights(path)`` and checks every array against the file; on failure or
    mismatch the weights are assigned by :func:`load_legacy_weights`.
    """
    path = Path(path)
    m = _SHIPPED.search(path.name)
    if m is None:
        raise ValueError(
            f"path: {path.name!r} is not a shipped model file name (cnn_{{deep,shallow}}_{{relu,exponential}}_N.h5)"
        )
    if not path.exists():
        raise FileNotFoundError(f"path: no such file: {str(path)!r}")
    model = (cnn_deep if m.group(1) == "deep" else cnn_shallow)(m.group(2))
    try:
        model.load_weights(str(path))
        ok = weights_match(model, path)
    except Exception:  # noqa: BLE001 - fall back on the explicit reader
        ok = False
    if not ok:
        load_legacy_weights(model, path)
    return model


def weights_match(model: Any, path: Any, atol: float = 0.0) -> bool:
    """True when every weight of every conv/dense/BN layer of ``model`` equals the h5 file's array."""
    stored = _legacy_h5_weights(path)
    layers = _weighted_layers(model)
    if len(stored) != len(layers):
        return False
    for (_, arrays), layer in zip(stored, layers):
        current = layer.get_weights()
        if len(current) != len(arrays):
            return False
        for a, b in zip(current, arrays):
            if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=atol):
                return False
    return True


# --------------------------------------------------------------------------------------------
# Building blocks of the strategies
# --------------------------------------------------------------------------------------------


def _chain(model: Any) -> list:
    """The model's layers after the input, checking that they form a linear chain."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError("model: the strategies need a single-input, single-output chain of layers")
    prev = model.inputs[0]
    for layer in layers:
        try:
            node_in = layer._inbound_nodes[0].input_tensors
        except (AttributeError, IndexError):
            return layers
        if len(node_in) != 1 or node_in[0] is not prev:
            raise ValueError(f"model: layer {layer.name!r} does not follow the previous layer (not a chain)")
        prev = layer.output
    return layers


def injection_points(model: Any) -> list[int]:
    """Indices into the layer chain before which mixup/noise can be injected.

    Point 0 is the input; the others are the inputs of the later Conv1D/Dense layers (the hidden
    representations after each block, after Flatten for the first dense layer).
    """
    layers = _chain(model)
    points = [0]
    for i, layer in enumerate(layers):
        if i > 0 and type(layer).__name__ in ("Conv1D", "Conv2D", "Dense"):
            points.append(i)
    return points


def forward(
    model: Any,
    x: Any,
    *,
    training: bool = False,
    point: Any = None,
    lam: Any = None,
    perm: Any = None,
    noise_std: float = 0.0,
    seed: Any = (0, 0),
    dropout: bool = True,
) -> Any:
    """Run ``model`` layer by layer, optionally mixing or adding noise at one injection point.

    ``point`` is an index into :func:`injection_points` (int or scalar tensor, so one traced
    function serves every point). In training mode only: with ``lam`` and ``perm`` the
    representation ``h`` there becomes ``lam * h + (1 - lam) * h[perm]``; with ``noise_std > 0``
    Gaussian noise N(0, noise_std^2) (stateless, from ``seed``, two ints) is added. In inference
    mode this equals ``model(x, training=False)``. ``dropout=False`` skips the Dropout layers (in
    training mode too: the burn-in of :func:`train`); batch normalisation still follows ``training``.
    """
    tf, _ = _tf()
    layers = _chain(model)
    points = injection_points(model)
    h = tf.convert_to_tensor(x, dtype=tf.float32)
    active = bool(training) and point is not None and (lam is not None or noise_std > 0)
    if active:
        point = tf.convert_to_tensor(point, dtype=tf.int32)
        seed = tf.convert_to_tensor(seed, dtype=tf.int32)
    for i, layer in enumerate(layers):
        if active and i in points:
            j = points.index(i)

            def inject(h=h):
                out = h
                if lam is not None:
                    lam_ = tf.cast(lam, h.dtype)
                    out = lam_ * out + (1.0 - lam_) * tf.gather(out, perm)
                if noise_std > 0:
                    out = out + tf.random.stateless_normal(tf.shape(out), seed, stddev=noise_std, dtype=out.dtype)
                return out

            h = tf.cond(tf.equal(point, j), inject, lambda h=h: h)
        if not dropout and type(layer).__name__ in ("Dropout", "SpatialDropout1D"):
            continue
        h = layer(h, training=training)
    return h


def mixup_batch(x: Any, y: Any, rng: Any, *, alpha: float = 1.0, return_params: bool = False):
    """Input mixup of a minibatch with its random permutation (Zhang et al. 2018).

    ``lam ~ Beta(alpha, alpha)`` (one value per batch; Beta(1, 1) = uniform), ``perm`` a random
    permutation: ``x_mix = lam * x + (1 - lam) * x[perm]``, ``y_mix`` likewise with the same
    ``lam``. ``rng`` is a ``numpy.random.Generator`` (or a seed). Returns ``(x_mix, y_mix)``,
    plus ``(lam, perm)`` with ``return_params=True``.
    """
    rng = np.random.default_rng(rng)
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(len(x))
    x_mix = (lam * x + (1.0 - lam) * x[perm]).astype(np.float32)
    y_mix = (lam * y + (1.0 - lam) * y[perm]).astype(np.float32)
    if return_params:
        return x_mix, y_mix, lam, perm
    return x_mix, y_mix


def _bce(y, p):
    tf, keras = _tf()
    y = tf.reshape(tf.cast(y, p.dtype), tf.shape(p))
    return tf.reduce_mean(keras.losses.binary_crossentropy(y, p))


def pgd_perturb(
    model: Any,
    x: Any,
    y: Any,
    steps: int = 15,
    step_size: float = 0.005,
    radius: float = 0.05,
    *,
    random_start: bool = False,
    seed: Any = (0, 0),
) -> Any:
    """Projected gradient descent (Madry et al. 2018) on the binary cross-entropy, L-inf ball.

    ``delta`` starts at zero (or uniform in the ball with ``random_start``); each of ``steps``
    steps adds ``step_size * sign(grad)`` and projects by clipping to ``[-radius, radius]``.
    The model runs in inference mode. Returns ``x + delta`` (a tf.Tensor).
    """
    tf, _ = _tf()
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    y = tf.convert_to_tensor(y, dtype=tf.float32)
    if random_start:
        delta = tf.random.stateless_uniform(tf.shape(x), tf.convert_to_tensor(seed, tf.int32), -radius, radius)
    else:
        delta = tf.zeros_like(x)
    for _ in range(int(steps)):
        with tf.GradientTape() as tape:
            tape.watch(delta)
            loss = _bce(y, model(x + delta, training=False))
        g = tape.gradient(loss, delta)
        delta = tf.clip_by_value(delta + step_size * tf.sign(g), -radius, radius)
    return tf.stop_gradient(x + delta)


def _kernel_matrix(w: Any) -> Any:
    """A kernel as a matrix: Conv (k, C_in, C_out) -> (k * C_in, C_out); Dense (in, out) as it is."""
    tf, _ = _tf()
    return tf.reshape(w, (-1, tf.shape(w)[-1]))


def _power_iteration(w2: Any, u: Any, n_iter: int):
    """``n_iter`` power iterations on ``w2`` (m x n) from ``u`` (n,): (sigma, new u).

    sigma = ||w2 v|| with v the normalised iterate, differentiable in ``w2`` (the vector is
    held constant, as in Yoshida & Miyato 2017).
    """
    tf, _ = _tf()
    v = tf.math.l2_normalize(u)
    for _ in range(max(1, int(n_iter))):
        left = tf.math.l2_normalize(tf.linalg.matvec(w2, v))
        v = tf.math.l2_normalize(tf.linalg.matvec(w2, left, transpose_a=True))
    v = tf.stop_gradient(v)
    sigma = tf.norm(tf.linalg.matvec(w2, v))
    return sigma, v


def power_iteration_norm(w: Any, n_iter: int = 20, u: Any = None) -> Any:
    """Spectral norm (largest singular value) of a weight, estimated by ``n_iter`` power iterations.

    ``w`` is a Dense kernel (in, out) or a Conv kernel (k, C_in, C_out), flattened to
    (k * C_in) x C_out. ``u`` is the start vector (length C_out; default all ones).
    """
    tf, _ = _tf()
    w2 = _kernel_matrix(tf.convert_to_tensor(w, dtype=tf.float32))
    if u is None:
        u = tf.ones((w2.shape[-1],), dtype=w2.dtype)
    return _power_iteration(w2, tf.convert_to_tensor(u, dtype=w2.dtype), n_iter)[0]


def _spectral_kernels(model: Any) -> list:
    return [
        layer.kernel
        for layer in model.layers
        if type(layer).__name__ in ("Conv1D", "Conv2D", "Dense") and getattr(layer, "kernel", None) is not None
    ]


def spectral_penalty(model: Any, lam: float = 0.01, n_iter: int = 20, vectors: Any = None) -> Any:
    """``(lam / 2) * sum_W sigma(W)^2`` over the Conv/Dense kernels (conv flattened to (k*C_in) x C_out).

    sigma by :func:`power_iteration_norm`. ``vectors``, a list of tf.Variables (one per kernel,
    length C_out), makes the iteration persistent: it starts from them and stores the new
    iterate, so that one iteration per training step suffices (``n_iter=1``).
    """
    tf, _ = _tf()
    kernels = _spectral_kernels(model)
    total = tf.constant(0.0)
    for i, k in enumerate(kernels):
        w2 = _kernel_matrix(tf.convert_to_tensor(k, dtype=tf.float32))
        u = vectors[i] if vectors is not None else tf.ones((w2.shape[-1],), dtype=w2.dtype)
        sigma, v = _power_iteration(w2, tf.convert_to_tensor(u), n_iter)
        if vectors is not None:
            vectors[i].assign(v)
        total = total + tf.square(sigma)
    return 0.5 * lam * total


# --------------------------------------------------------------------------------------------
# Early stopping on the validation AUROC
# --------------------------------------------------------------------------------------------


def auroc(y: Any, p: Any) -> float:
    """Area under the ROC curve (ties counted half, as scikit-learn); mean over output columns
    that have both classes (NaN if none)."""
    from .scoring import auroc as _auroc

    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    y = y.reshape(len(y), -1)
    p = p.reshape(len(p), -1)
    vals = [v for j in range(p.shape[1]) if np.isfinite(v := _auroc(y[:, j] > 0.5, p[:, j]))]
    return float(np.mean(vals)) if vals else float("nan")


def predict(model: Any, x: Any, batch_size: int = 512) -> np.ndarray:
    """``model(x, training=False)`` in batches, as a numpy array."""
    outs = [np.asarray(model(np.asarray(x[i : i + batch_size], np.float32), training=False))
            for i in range(0, len(x), batch_size)]
    return np.concatenate(outs, axis=0)


def _make_auroc_callback():
    _, keras = _tf()

    class AUROCEarlyStopping(keras.callbacks.Callback):
        """Compute the validation AUROC at each epoch end (into ``logs["val_auroc"]``), stop after
        ``patience`` epochs without improvement, and restore the best weights at the end of training.
        Epochs before ``min_epochs`` (0-based index < ``min_epochs``) are neither candidates for the
        best epoch nor counted by the patience.
        """

        def __init__(self, x_valid, y_valid, patience: int = 10, batch_size: int = 512, min_delta: float = 0.0,
                     min_epochs: int = 0):
            super().__init__()
            self.x_valid, self.y_valid = x_valid, y_valid
            self.patience, self.batch_size, self.min_delta = int(patience), int(batch_size), float(min_delta)
            self.min_epochs = int(min_epochs)

        def on_train_begin(self, logs=None):
            self.best, self.best_epoch, self.best_weights, self.wait = -np.inf, -1, None, 0
            self.stopped_epoch = None

        def on_epoch_end(self, epoch, logs=None):
            score = auroc(self.y_valid, predict(self.model, self.x_valid, self.batch_size))
            if logs is not None:
                logs["val_auroc"] = score
            if epoch < self.min_epochs:
                return
            if np.isfinite(score) and score > self.best + self.min_delta:
                self.best, self.best_epoch, self.wait = score, epoch, 0
                self.best_weights = self.model.get_weights()
            else:
                self.wait += 1
                if self.wait >= self.patience:
                    self.stopped_epoch = epoch
                    self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return AUROCEarlyStopping


def AUROCEarlyStopping(x_valid, y_valid, patience: int = 10, batch_size: int = 512, min_delta: float = 0.0,
                       min_epochs: int = 0):
    """A Keras callback: early stopping on the validation AUROC, restoring the best weights.

    The best epoch is chosen among epochs ``min_epochs`` (0-based) and later; earlier epochs do not
    count towards ``patience``. Usable with ``model.fit(..., callbacks=[...])`` as well as in
    :func:`train`.
    """
    return _make_auroc_callback()(x_valid, y_valid, patience=patience, batch_size=batch_size, min_delta=min_delta,
                                  min_epochs=min_epochs)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def train(
    model_builder: Callable[[], Any],
    data: tuple,
    *,
    strategy: str = "standard",
    epochs: int = 100,
    batch_size: int = 128,
    patience: int = 10,
    burn_in: int = 0,
    min_epochs: int = 0,
    seed: int = 0,
    verbose: int = 0,
    noise_std: float = 0.15,
    manifold_noise_std: float = 0.15,
    mixup_alpha: float = 1.0,
    pgd_steps: int = 15,
    pgd_step_size: float = 0.005,
    pgd_radius: float = 0.05,
    adv_standard_epochs: int = 5,
    adv_mixed_epochs: int = 20,
    spectral_lambda: float = 0.01,
    spectral_iters: int = 1,
    learning_rate: float = 1e-3,
):
    """Train ``model_builder()`` on ``data = (x_train, y_train, x_valid, y_valid)`` with a strategy.

    Binary cross-entropy (+ the model's weight penalties, if any), Adam (``learning_rate``, 1e-3 as in
    the paper), minibatches of ``batch_size`` (128 as in the paper; reshuffled each epoch), custom
    training loop (one tf.function step), early stopping on the validation AUROC after each epoch
    with ``patience`` epochs, keeping the best weights (:func:`AUROCEarlyStopping`).

    ``burn_in`` epochs come first, with every Dropout layer switched off (BN still in training
    mode, the strategy applied as usual); they are not counted by early stopping and are not
    candidates for the best epoch. Without batch normalisation, Dropout(0.5) before the output can
    kill the dense layer's ReLUs in the first epoch (constant output, loss ln 2 for good); a
    dropout-free start avoids it. ``min_epochs``: the best epoch is chosen, and patience counted,
    only from that many epochs after the burn-in. At most ``burn_in + epochs`` epochs run.

    Strategies:

    - ``"standard"``.
    - ``"mixup"``: input mixup, ``lam ~ Beta(mixup_alpha, mixup_alpha)`` per batch, the batch mixed
      with its permutation, labels mixed with the same ``lam``.
    - ``"manifold_mixup"``: the same at a point drawn uniformly among the input and the hidden
      layers (:func:`injection_points`) each step.
    - ``"input_noise"``: N(0, ``noise_std``^2) added to the inputs (0.15).
    - ``"manifold_noise"``: N(0, ``manifold_noise_std``^2) added at a hidden point drawn uniformly
      each step (not the input).
    - ``"adversarial"``: PGD (:func:`pgd_perturb`, 15 steps of 0.005, radius 0.05). Epochs
      1..``adv_standard_epochs`` standard, then up to epoch ``adv_mixed_epochs`` each batch is the
      clean batch concatenated with its adversarial copy, then adversarial examples only.
    - ``"spectral"``: loss + :func:`spectral_penalty` (``spectral_lambda`` 0.01), persistent power
      iteration (``spectral_iters`` per step).

    Returns ``(model, history)``: the model holds the best-validation-AUROC weights; ``history``
    is a dict of per-epoch lists ``loss``, ``val_auroc`` (burn-in epochs included) plus
    ``best_epoch`` (0-based, in those lists), ``best_val_auroc``, ``stopped_epoch``, ``burn_in``
    and ``strategy``.
    """
    from ._validate import check_int

    tf, keras = _tf()
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {STRATEGIES}, got {strategy!r}")
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    burn_in = check_int("burn_in", burn_in, 0)
    min_epochs = check_int("min_epochs", min_epochs, 0)
    if len(data) != 4:
        raise ValueError("data: expected (x_train, y_train, x_valid, y_valid)")
    x_train, y_train, x_valid, y_valid = data
    x_train = np.asarray(x_train, dtype=np.float32)
    y_train = np.asarray(y_train, dtype=np.float32)
    if y_train.ndim == 1:
        y_train = y_train[:, None]
    x_valid = np.asarray(x_valid, dtype=np.float32)
    y_valid = np.asarray(y_valid, dtype=np.float32)

    keras.utils.set_random_seed(int(seed))
    rng = np.random.default_rng(int(seed))
    model = model_builder()
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    points = injection_points(model) if strategy in ("manifold_mixup", "manifold_noise") else [0]
    vectors = None
    if strategy == "spectral":
        vectors = [
            tf.Variable(tf.math.l2_normalize(tf.ones((int(k.shape[-1]),))), trainable=False)
            for k in _spectral_kernels(model)
        ]

    def loss_of(xb, yb, point, lam, perm, seed_t, dropout):
        kw: dict = {}
        if strategy in ("mixup", "manifold_mixup"):
            kw = {"point": point, "lam": lam, "perm": perm}
        elif strategy == "input_noise":
            kw = {"point": 0, "noise_std": noise_std, "seed": seed_t}
        elif strategy == "manifold_noise":
            kw = {"point": point, "noise_std": manifold_noise_std, "seed": seed_t}
        if kw or not dropout:
            p = forward(model, xb, training=True, dropout=dropout, **kw)
            if "lam" in kw:
                yb = lam * yb + (1.0 - lam) * tf.gather(yb, perm)
        else:
            p = model(xb, training=True)
        loss = _bce(yb, p)
        reg = tf.add_n(model.losses) if model.losses else 0.0
        total = loss + reg
        if strategy == "spectral":
            total = total + spectral_penalty(model, spectral_lambda, spectral_iters, vectors)
        return loss, total

    def make_step(adv_mode: int, dropout: bool):
        def step(xb, yb, point, lam, perm, seed_t):
            if adv_mode:
                x_adv = pgd_perturb(model, xb, yb, pgd_steps, pgd_step_size, pgd_radius)
                if adv_mode == 1:
                    xb, yb = tf.concat([xb, x_adv], 0), tf.concat([yb, yb], 0)
                else:
                    xb = x_adv
            with tf.GradientTape() as tape:
                loss, total = loss_of(xb, yb, point, lam, perm, seed_t, dropout)
            grads = tape.gradient(total, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        return tf.function(step, reduce_retracing=True)

    steps: dict = {}
    cb = AUROCEarlyStopping(x_valid, y_valid, patience=patience, min_epochs=burn_in + min_epochs)
    cb.set_model(model)
    model.stop_training = False
    cb.on_train_begin()
    history: dict = {"loss": [], "val_auroc": []}
    n = len(x_train)
    total_epochs = burn_in + epochs
    for epoch in range(total_epochs):
        adv_mode = 0
        if strategy == "adversarial":
            e1 = epoch + 1
            adv_mode = 0 if e1 <= adv_standard_epochs else (1 if e1 <= adv_mixed_epochs else 2)
        key = (adv_mode, epoch >= burn_in)
        if key not in steps:
            steps[key] = make_step(*key)
        step = steps[key]
        order = rng.permutation(n)
        losses, weights = [], []
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            m = len(idx)
            lam = np.float32(rng.beta(mixup_alpha, mixup_alpha))
            perm = rng.permutation(m).astype(np.int32)
            if strategy == "manifold_noise" and len(points) > 1:
                point = int(rng.integers(1, len(points)))
            else:
                point = int(rng.integers(0, len(points)))
            seed_t = rng.integers(0, 2**31 - 1, size=2).astype(np.int32)
            loss = step(
                tf.constant(x_train[idx]), tf.constant(y_train[idx]), tf.constant(point, tf.int32),
                tf.constant(lam), tf.constant(perm), tf.constant(seed_t),
            )
            losses.append(float(loss))
            weights.append(m)
        logs = {"loss": float(np.average(losses, weights=weights))}
        cb.on_epoch_end(epoch, logs)
        history["loss"].append(logs["loss"])
        history["val_auroc"].append(logs["val_auroc"])
        if verbose:
            phase = " burn-in" if epoch < burn_in else ""
            print(f"epoch {epoch + 1}/{total_epochs} [{strategy}{phase}] loss {logs['loss']:.4f} "
                  f"val_auroc {logs['val_auroc']:.4f}")
        if model.stop_training:
            break
    cb.on_train_end()
    history.update(
        best_epoch=int(cb.best_epoch), best_val_auroc=float(cb.best), stopped_epoch=cb.stopped_epoch, strategy=strategy,
        burn_in=burn_in,
    )
    return model, history


__all__ = [
    "STRATEGIES",
    "cnn_deep",
    "cnn_shallow",
    "base_cnn",
    "base_cnn_shipped_layout",
    "load_legacy_weights",
    "load_shipped_model",
    "weights_match",
    "injection_points",
    "forward",
    "mixup_batch",
    "pgd_perturb",
    "power_iteration_norm",
    "spectral_penalty",
    "auroc",
    "predict",
    "AUROCEarlyStopping",
    "train",
]
