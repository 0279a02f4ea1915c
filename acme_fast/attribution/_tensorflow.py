"""TensorFlow / Keras (TensorFlow backend): loading Keras files and gradients by ``tf.function``.

Every method runs one ``tf.function`` per (model, method, output, batch shape), traced once
for a fixed batch shape: the last batch is padded with zero rows up to the batch size (the
padding is dropped) instead of retracing, and the function runs on the GPU when TensorFlow
sees one.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._deps import need
from ._backend import Backend

#: Number of times a method's function has been traced (a Python side effect of tracing;
#: the tests use it to check that batches do not retrace).
_TRACE_COUNT = {"n": 0}

_MAX_FUNCTIONS_PER_MODEL = 16

# model -> OrderedDict[key -> tf.function]; weak so that a deleted model frees its functions
_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FUNCTIONS_BY_ID: dict = {}  # for models that cannot be weakly referenced


def _tf():
    """Import TensorFlow and Keras, or raise an ImportError that says how to install them."""
    tf = need("tensorflow", "acme_fast.attribution (Keras models)", "tf")
    try:
        import keras
    except ImportError:  # very old TensorFlow without a standalone keras package
        keras = tf.keras
    return tf, keras


def is_keras_model(obj: Any) -> bool:
    """True for a Keras 3 model (any backend) or a tf_keras 2 model, without importing either."""
    import sys

    for mod in ("keras", "tf_keras"):
        k = sys.modules.get(mod)
        if k is not None:
            cls = getattr(k, "Model", None)
            if isinstance(cls, type) and isinstance(obj, cls):
                return True
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        cls = getattr(getattr(tf, "keras", None), "Model", None)
        try:
            return isinstance(cls, type) and isinstance(obj, cls)
        except Exception:  # noqa: BLE001 - lazy-loader proxies
            return False
    return False


def keras_backend_name() -> str:
    """The running Keras backend ("tensorflow", "torch", "jax", ...); "tensorflow" for tf_keras."""
    import sys

    k = sys.modules.get("keras")
    fn = getattr(getattr(k, "backend", None), "backend", None)
    return str(fn()) if callable(fn) else "tensorflow"


# --------------------------------------------------------------------------------------------
# Loading Keras files
# --------------------------------------------------------------------------------------------


def h5_is_full_model(path: Path) -> bool:
    """True when an HDF5 file holds a whole model (legacy ``model.save("m.h5")``)."""
    try:
        import h5py
    except ImportError:  # h5py is a Keras dependency; if it is missing let Keras decide
        return True
    try:
        with h5py.File(path, "r") as f:
            return "model_config" in f.attrs
    except OSError as exc:
        raise ValueError(f"model: {str(path)!r} is not a readable HDF5 file ({exc})") from exc


def _wrap_saved_model(path: Path) -> Any:
    """A SavedModel directory as a Keras model callable on a batch (N, L, 4)."""
    tf, keras = _tf()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # noqa: BLE001 - re-raised with the path
        raise ValueError(f"model: could not load the SavedModel directory {str(path)!r} ({exc})") from exc
    endpoint = fn = None
    for name in ("serve", "serving_default"):  # signatures first: their input specs are explicit
        if name in loaded.signatures:
            endpoint, fn = name, loaded.signatures[name]
            break
    if fn is None:
        for name in ("serve", "serving_default"):
            if callable(getattr(loaded, name, None)):
                endpoint, fn = name, getattr(loaded, name)
                break
    if fn is None:
        raise ValueError(
            f"model: the SavedModel {str(path)!r} has no 'serve' or 'serving_default' endpoint "
            f"(it has signatures {sorted(loaded.signatures)}); export it with keras model.export(dir)"
        )
    sig = getattr(fn, "structured_input_signature", None)
    if sig is None:
        sig = getattr(fn, "input_signature", None)
    if sig is None and getattr(fn, "concrete_functions", None):
        sig = fn.concrete_functions[0].structured_input_signature
    specs = [s for s in tf.nest.flatten(sig) if isinstance(s, tf.TensorSpec)]
    if len(specs) != 1 or specs[0].shape.rank != 3:
        raise ValueError(
            f"model: the SavedModel {str(path)!r} endpoint {endpoint!r} should take one (N, L, 4) tensor, "
            f"it takes {specs}"
        )
    layer = keras.layers.TFSMLayer(str(path), call_endpoint=endpoint)
    inp = keras.Input(shape=tuple(specs[0].shape[1:]), dtype=specs[0].dtype)
    return keras.Model(inp, layer(inp), name=f"saved_model_{path.name}")


def _keras():
    """Keras for loading files: the installed Keras 3 on whatever backend it runs (a ``.keras``
    file loads on TensorFlow, PyTorch or JAX), else TensorFlow's."""
    try:
        import keras

        return keras
    except ImportError:
        return _tf()[1]


def load(kind: str, path: Path, build: Callable | None, compile: bool) -> Any:
    """Load a Keras model file of a kind found by ``check_model_path``."""
    if kind == "savedmodel":
        return _wrap_saved_model(path)
    if kind == "shipped":
        from ..zoo import load_shipped_model

        return load_shipped_model(path)
    keras = _keras()
    if kind == "weights":
        try:
            net = build()
        except Exception as exc:  # noqa: BLE001 - the user's builder: say so
            raise ValueError(f"builder: calling it failed ({type(exc).__name__}: {exc})") from None
        if not is_keras_model(net):
            raise TypeError(f"builder: expected it to return a keras.Model, it returned {type(net).__name__}")
        try:
            net.load_weights(str(path))
        except Exception as exc:  # noqa: BLE001 - re-raised with the path
            raise ValueError(
                f"model: could not load the weights in {str(path)!r} into the model from the builder ({exc}); "
                "the builder must build the same architecture (call it on an input or give it keras.Input)"
            ) from exc
        return net
    try:
        return keras.saving.load_model(str(path), compile=compile)
    except Exception as exc:  # noqa: BLE001 - re-raised with the path
        raise ValueError(
            f"model: Keras could not load {str(path)!r} ({type(exc).__name__}: {exc}); for custom layers "
            "load it yourself (keras.saving.load_model(path, custom_objects=...)) and pass the model"
        ) from exc


# --------------------------------------------------------------------------------------------
# Traced functions
# --------------------------------------------------------------------------------------------


def _target(model: Any, output: Any, xb: Any) -> Any:
    """One scalar per example: the quantity whose gradient is the attribution."""
    tf, _ = _tf()
    y = model(xb, training=False) if is_keras_model(model) else model(xb)
    n = xb.shape[0]
    if callable(output):
        t = tf.cast(output(y), tf.float32)
        if t.shape.rank == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.shape.rank != 1 or t.shape[0] != n:
            raise ValueError(
                f"output: the callable must return one value per example, shape ({n},) or ({n}, 1); "
                f"it returned shape {tuple(t.shape)}"
            )
        return t
    flat = _flatten(y, n)
    if output is None:
        return tf.reduce_mean(flat, axis=1)
    n_out = flat.shape[1]
    if n_out is not None and output >= n_out:
        raise ValueError(f"output: expected an output column in 0..{n_out - 1}, got {output}")
    return flat[:, output]


def _flatten(y: Any, n: int) -> Any:
    tf, _ = _tf()
    parts = [y[k] for k in sorted(y)] if isinstance(y, dict) else tf.nest.flatten(y)
    return tf.concat([tf.reshape(tf.cast(p, tf.float32), (n, -1)) for p in parts], axis=1)


def _build_function(model: Any, method: str, output: Any, shape: tuple) -> Any:
    tf, _ = _tf()
    x_spec = tf.TensorSpec(shape, tf.float32)

    def grad(xb):
        with tf.GradientTape() as tape:
            tape.watch(xb)
            t = _target(model, output, xb)
            total = tf.reduce_sum(t)
        g = tape.gradient(total, xb)
        if g is None:
            raise ValueError("model: the output does not depend on the input (gradient is None)")
        return g

    if method == "saliency":

        @tf.function(input_signature=[x_spec], reduce_retracing=False)
        def fn(xb):
            _TRACE_COUNT["n"] += 1
            return grad(xb)

    elif method == "smoothgrad":

        @tf.function(
            input_signature=[
                x_spec,
                tf.TensorSpec((2,), tf.int64),
                tf.TensorSpec((), tf.float32),
                tf.TensorSpec((), tf.int32),
            ]
        )
        def fn(xb, seed, stddev, n_samples):
            _TRACE_COUNT["n"] += 1
            acc = tf.zeros_like(xb)
            for i in tf.range(n_samples):
                s = tf.random.experimental.stateless_fold_in(seed, tf.cast(i, tf.int64))
                noise = tf.random.stateless_normal(tf.shape(xb), seed=s, stddev=stddev, dtype=tf.float32)
                acc += grad(xb + noise)
            return acc / tf.cast(n_samples, tf.float32)

    else:  # integrated gradients, trapezoid rule with steps + 1 points

        @tf.function(input_signature=[x_spec, x_spec, tf.TensorSpec((), tf.int32)])
        def fn(xb, base, steps):
            _TRACE_COUNT["n"] += 1
            delta = xb - base
            acc = tf.zeros_like(xb)
            fsteps = tf.cast(steps, tf.float32)
            for k in tf.range(steps + 1):
                alpha = tf.cast(k, tf.float32) / fsteps
                w = tf.where(tf.logical_or(tf.equal(k, 0), tf.equal(k, steps)), 0.5, 1.0)
                acc += w * grad(base + alpha * delta)
            return delta * acc / fsteps

    return fn


def _get_function(model: Any, method: str, output: Any, shape: tuple) -> Any:
    key = (method, ("col", output) if not callable(output) else ("fn", output), shape)
    try:
        table = _FUNCTIONS.get(model)
        if table is None:
            table = _FUNCTIONS.setdefault(model, OrderedDict())
    except TypeError:  # not weak-referenceable
        table = _FUNCTIONS_BY_ID.setdefault(id(model), OrderedDict())
    fn = table.get(key)
    if fn is None:
        fn = _build_function(model, method, output, shape)
        table[key] = fn
        while len(table) > _MAX_FUNCTIONS_PER_MODEL:
            table.popitem(last=False)
    else:
        table.move_to_end(key)
    return fn


class TensorFlowBackend(Backend):
    """Keras models on the TensorFlow backend, tf_keras models, SavedModels and TF callables.

    Parameters
    ----------
    model : keras.Model or callable on tf tensors
    model_layout : {"NLC", "NCL"}
    device : str, optional
        A TensorFlow device (``"/GPU:0"``, ``"/CPU:0"``); default: TensorFlow's placement
        (the GPU when it sees one).
    dtype : None or float32
        TensorFlow models are differentiated in float32.
    """

    framework = "tensorflow"
    pad_batches = True
    host_float32 = True

    def __init__(self, model: Any, model_layout: str, device: Any = None, dtype: Any = None) -> None:
        super().__init__(model, model_layout)
        tf, _ = _tf()
        if dtype is not None and np.dtype(getattr(dtype, "as_numpy_dtype", dtype)) != np.float32:
            raise ValueError(f"dtype: the TensorFlow backend differentiates in float32; got {dtype!r} "
                             "(leave dtype=None)")
        if device is not None and not isinstance(device, str):
            raise TypeError(f"device: expected a TensorFlow device name such as '/GPU:0', got "
                            f"{type(device).__name__} {device!r}")
        self.device = device
        self._tf = tf

    def _on_device(self):
        import contextlib

        return self._tf.device(self.device) if self.device else contextlib.nullcontext()

    def attribute(self, method: str, xb: np.ndarray, output: Any, *, n_samples: int = 0, stddev: float = 0.0,
                  seed: Any = None, baseline: np.ndarray | None = None, steps: int = 0) -> np.ndarray:
        tf = self._tf
        fn = _get_function(self.model, method, output, tuple(xb.shape))
        with self._on_device():
            if method == "saliency":
                g = fn(tf.constant(xb))
            elif method == "smoothgrad":
                g = fn(tf.constant(xb), tf.constant(np.asarray(seed, dtype=np.int64)),
                       tf.constant(stddev, tf.float32), tf.constant(n_samples, tf.int32))
            else:
                base = np.zeros_like(xb) if baseline is None else baseline
                g = fn(tf.constant(xb), tf.constant(base), tf.constant(steps, tf.int32))
        return np.asarray(g.numpy(), dtype=np.float32)

    def predict(self, xb: np.ndarray) -> np.ndarray:
        tf = self._tf
        with self._on_device():
            if is_keras_model(self.model) and hasattr(self.model, "predict_on_batch"):
                y = self.model.predict_on_batch(xb)
            else:
                y = self.model(tf.constant(xb))
        return np.asarray(_flatten(y, xb.shape[0]).numpy(), dtype=np.float64)
