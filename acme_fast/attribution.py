"""Attribution maps of Keras/TensorFlow models: saliency, SmoothGrad, integrated gradients.

TensorFlow is imported here, on first use of this module, never by ``import acme_fast``
(install it with ``pip install "acme_fast[tf]"``). Every method runs one ``tf.function``
per (model, method, output, batch shape), traced once for a fixed batch shape: the last
batch is padded with zero rows up to the batch size (the padding is dropped from the result)
instead of retracing, and the function runs on the GPU when TensorFlow sees one.

Models always take ``(N, L, 4)`` (channels last, as Keras models do); ``x`` and the returned
maps are in the caller's ``layout`` (``"NLC"`` ``(N, L, 4)`` or ``"NCL"`` ``(N, 4, L)``), and
are transposed on the way in and out.

What is differentiated (``output``):

- ``None``: the mean over the model's outputs, per example (all output columns, of all
  outputs for a multi-output model), as tfomics does. Unlike tfomics the mean is not taken
  over the batch as well, so the maps do not depend on the batch size.
- an ``int`` ``i``: output column ``i`` (columns of a multi-output model are numbered in
  order, outputs flattened per example and concatenated; dict outputs in key order).
- a callable ``f(y) -> (N,)``: applied to the model's output tensor(s) ``y``; it must
  return one value per example (shape ``(N,)`` or ``(N, 1)``).

Examples
--------
>>> from acme_fast import attribution as at            # doctest: +SKIP
>>> model = at.load_model("model.keras")               # doctest: +SKIP
>>> sal = at.saliency(model, x, output=0)              # (N, L, 4) float32
>>> ig = at.integrated_gradients(model, x, baseline="shuffle", steps=50, seed=0)
>>> for start, a in at.iter_attributions(model, x, method="smoothgrad", seed=1):
...     acc.update(x[start:start + len(a)], a)
"""

from __future__ import annotations

import numbers
import os
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._deps import need
from ._validate import _as_3d, _shape_str, check_int, check_layout, check_real, first_bad

__all__ = [
    "load_model",
    "saliency",
    "smoothgrad",
    "integrated_gradients",
    "grad_times_input",
    "iter_attributions",
    "METHODS",
]

#: Method names accepted by :func:`iter_attributions` (``"ig"`` is an alias).
METHODS = ("saliency", "smoothgrad", "integrated_gradients")
_ALIASES = {"ig": "integrated_gradients"}
_METHOD_KWARGS = {
    "saliency": ("output",),
    "smoothgrad": ("n_samples", "stddev", "seed", "output"),
    "integrated_gradients": ("baseline", "steps", "seed", "output"),
}

#: Number of times a method's function has been traced (a Python side effect of tracing;
#: the tests use it to check that batches do not retrace).
_TRACE_COUNT = {"n": 0}

_MAX_FUNCTIONS_PER_MODEL = 16


def _tf():
    """Import TensorFlow and Keras, or raise an ImportError that says how to install them."""
    tf = need("tensorflow", "acme_fast.attribution", "tf")
    try:
        import keras
    except ImportError:  # very old TensorFlow without a standalone keras package
        keras = tf.keras
    return tf, keras


# --------------------------------------------------------------------------------------------
# Loading models
# --------------------------------------------------------------------------------------------


def _is_keras_model(obj: Any) -> bool:
    _, keras = _tf()
    if isinstance(obj, keras.Model):
        return True
    try:  # Keras 2 models (tf_keras / tf.keras) when Keras 3 is the default
        import tf_keras

        return isinstance(obj, tf_keras.Model)
    except ImportError:
        return False


def _h5_is_full_model(path: Path) -> bool:
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


def check_model_path(model: Any, builder: Any = None, builder_kwargs: dict[str, Any] | None = None
                     ) -> tuple[str, Path | None, Callable | None]:
    """Everything about a model argument that can be checked before TensorFlow starts.

    Returns ``(kind, path, builder)``: kind is ``"object"`` (a model in memory), ``"savedmodel"``,
    ``"weights"`` (with the resolved builder), ``"shipped"`` (a weights file named like the paper's
    models: the architecture comes from its name) or ``"full"`` (a whole-model file).
    Raises the errors of :func:`load_model`.
    """
    from ._builder import ARCHITECTURES, resolve_builder, shipped_architecture

    build = resolve_builder(builder, builder_kwargs, name="builder")
    if not isinstance(model, (str, os.PathLike)):
        return "object", None, build
    path = Path(model).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"model: no such file or directory: {str(path)!r}")
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise ValueError(
                f"model: the directory {str(path)!r} is not a SavedModel (no saved_model.pb in it); "
                "expected a .keras file, an .h5 file or a SavedModel directory"
            )
        return "savedmodel", path, build
    name = path.name.lower()
    is_weights = name.endswith(".weights.h5")
    is_h5 = name.endswith((".h5", ".hdf5"))
    is_keras = name.endswith(".keras")
    if not (is_h5 or is_keras):
        raise ValueError(
            f"model: unsupported file {str(path)!r}; expected a .keras file, a full-model .h5, "
            "a SavedModel directory, or a weights file (.h5, .weights.h5) with a builder"
        )
    if build is not None:
        return "weights", path, build
    if is_weights or (is_h5 and not _h5_is_full_model(path)):
        if shipped_architecture(path) is not None:
            return "shipped", path, None
        raise ValueError(
            f"model: {str(path)!r} holds weights only (no model architecture); name the function that builds "
            f"the architecture: builder='MODULE:FUNCTION', 'path/to/file.py:FUNCTION', a callable, or one of the "
            f"package's architectures ({', '.join(ARCHITECTURES)}) with builder_kwargs "
            f"(CLI: --builder, --builder-kwargs)"
        )
    return "full", path, None


def load_model(model: Any, *, builder: Any = None, builder_kwargs: dict[str, Any] | None = None,
               compile: bool = False) -> Any:
    """Load a Keras model from memory or disk.

    Parameters
    ----------
    model : keras.Model, str or os.PathLike
        A model in memory (returned as it is), or a path to:

        - a ``.keras`` file (``model.save("m.keras")``);
        - a legacy full-model ``.h5``/``.hdf5`` file (``model.save("m.h5")``, tf.keras 2);
        - a SavedModel directory (``model.export(dir)`` in Keras 3, ``model.save(dir)`` in
          tf.keras 2); its ``serve`` (or ``serving_default``) endpoint is wrapped in a Keras
          model with ``keras.layers.TFSMLayer``;
        - a weights-only file (``.weights.h5``, or an ``.h5`` without a model config) together
          with ``builder``; the paper's shipped files (``cnn_{deep,shallow}_{relu,exponential}_N.h5``)
          are recognised by their names and need no builder.
    builder : callable or str, optional
        Builds the (uncompiled) architecture; the weights are then read with
        ``model.load_weights(path)``. A callable, ``"MODULE:FUNCTION"``,
        ``"path/to/file.py:FUNCTION"``, or a package architecture by name (``"cnn_deep"``,
        ``"cnn_shallow"``, ``"base_cnn"``). When given, a ``.h5``/``.keras`` path is always
        read as weights into ``builder(**builder_kwargs)``.
    builder_kwargs : dict, optional
        Keyword arguments of the builder (``{"activation": "exponential"}``).
    compile : bool
        Passed to ``keras.saving.load_model`` (the attributions never need a compiled model).

    Returns
    -------
    keras.Model

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        A weights-only file without ``builder``, an unknown file type, a directory that is not a
        SavedModel, a builder that cannot be found or imported, or a file Keras cannot read.
    TypeError
        ``model`` is neither a model nor a path, or ``builder`` is not callable / returns no model.
    """
    kind, path, build = check_model_path(model, builder, builder_kwargs)
    tf, keras = _tf()
    if kind == "object":
        if _is_keras_model(model):
            return model
        raise TypeError(
            f"model: expected a keras.Model or a path (.keras, .h5, .weights.h5, SavedModel directory), "
            f"got {type(model).__name__}"
        )
    if kind == "savedmodel":
        return _wrap_saved_model(path)
    if kind == "shipped":
        from .zoo import load_shipped_model

        return load_shipped_model(path)
    if kind == "weights":
        try:
            net = build()
        except Exception as exc:  # noqa: BLE001 - the user's builder: say so
            raise ValueError(f"builder: calling it failed ({type(exc).__name__}: {exc})") from None
        if not _is_keras_model(net):
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
# Validation helpers
# --------------------------------------------------------------------------------------------


def _check_x_shape(x: Any, ncl: bool, name: str = "x") -> tuple:
    """Validate an array-like's shape and dtype without reading its data; return (x, shape)."""
    if x is None:
        raise TypeError(f"{name}: expected an array, got None")
    if not hasattr(x, "shape") or not hasattr(x, "__getitem__"):
        x = np.asarray(x)
    dtype = getattr(x, "dtype", None)
    if dtype is not None:
        kind = np.dtype(dtype).kind
        if kind not in "biuf":
            raise TypeError(f"{name}: expected a real numeric array, got dtype {dtype}")
    shape = tuple(int(s) for s in x.shape)
    # _as_3d checks ndim, channel axis and emptiness; a broadcast scalar reads no data
    _as_3d(np.broadcast_to(np.float32(0), shape), name, ncl)
    return x, shape


def _batch_nlc(x: Any, start: int, stop: int, ncl: bool, name: str = "x") -> np.ndarray:
    """x[start:stop] as a finite float32 (n, L, 4) array."""
    b = np.asarray(x[start:stop])
    if b.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {b.dtype}")
    b = b.astype(np.float32, copy=False)
    if ncl:
        b = np.swapaxes(b, 1, 2)
    bad = ~np.isfinite(b)
    if bad.any():
        i, pos, ch = first_bad(bad)
        raise ValueError(
            f"{name}: expected finite values, found {b[i, pos, ch]} at sequence {start + i}, "
            f"position {pos}, channel {ch}"
        )
    return np.ascontiguousarray(b)


def _check_output(output: Any) -> Any:
    if output is None or callable(output):
        return output
    if isinstance(output, bool) or not isinstance(output, numbers.Integral):
        raise TypeError(
            "output: expected None (mean over outputs), an int (output column) or a callable "
            f"returning one value per example, got {type(output).__name__} {output!r}"
        )
    return check_int("output", output, 0)


def _check_model(model: Any) -> Any:
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    if not callable(model):
        raise TypeError(f"model: expected a keras.Model (or a path to one), got {type(model).__name__}")
    _, keras = _tf()
    backend = getattr(getattr(keras, "backend", None), "backend", lambda: "tensorflow")()
    if backend != "tensorflow":
        raise RuntimeError(
            f"model: the Keras backend is {backend!r}; acme_fast.attribution needs the TensorFlow backend "
            "(set KERAS_BACKEND=tensorflow before importing keras)"
        )
    return model


# --------------------------------------------------------------------------------------------
# Traced functions
# --------------------------------------------------------------------------------------------

# model -> OrderedDict[key -> tf.function]; weak so that a deleted model frees its functions
_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FUNCTIONS_BY_ID: dict = {}  # for models that cannot be weakly referenced


def _target(model: Any, output: Any, xb: Any) -> Any:
    """One scalar per example: the quantity whose gradient is the attribution."""
    tf, _ = _tf()
    if _is_keras_model(model):
        y = model(xb, training=False)
    else:
        y = model(xb)
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
    if isinstance(y, dict):
        parts = [y[k] for k in sorted(y)]
    else:
        parts = tf.nest.flatten(y)
    flat = tf.concat([tf.reshape(tf.cast(p, tf.float32), (n, -1)) for p in parts], axis=1)
    if output is None:
        return tf.reduce_mean(flat, axis=1)
    n_out = flat.shape[1]
    if n_out is not None and output >= n_out:
        raise ValueError(f"output: expected an output column in 0..{n_out - 1}, got {output}")
    return flat[:, output]


def _build_function(model: Any, method: str, output: Any, batch: int, length: int) -> Any:
    tf, _ = _tf()
    x_spec = tf.TensorSpec((batch, length, 4), tf.float32)

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


def _get_function(model: Any, method: str, output: Any, batch: int, length: int) -> Any:
    key = (method, ("col", output) if not callable(output) else ("fn", output), batch, length)
    try:
        table = _FUNCTIONS.get(model)
        if table is None:
            table = _FUNCTIONS.setdefault(model, OrderedDict())
    except TypeError:  # not weak-referenceable
        table = _FUNCTIONS_BY_ID.setdefault(id(model), OrderedDict())
    fn = table.get(key)
    if fn is None:
        fn = _build_function(model, method, output, batch, length)
        table[key] = fn
        while len(table) > _MAX_FUNCTIONS_PER_MODEL:
            table.popitem(last=False)
    else:
        table.move_to_end(key)
    return fn


# --------------------------------------------------------------------------------------------
# Baselines for integrated gradients
# --------------------------------------------------------------------------------------------


def _dinuc_shuffle_perm(tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions of a dinucleotide-preserving shuffle of ``tokens`` (a permutation of 0..L-1).

    The Altschul-Erickson scheme as in DeepLIFT's ``dinuc_shuffle``: the out-edges of every
    symbol are shuffled except the last one, which keeps the walk Eulerian. The first
    position stays first; every dinucleotide count is kept.
    """
    L = tokens.shape[0]
    nxt = {}
    for t in np.unique(tokens[:-1]):
        inds = np.flatnonzero(tokens[:-1] == t) + 1
        order = np.arange(inds.size)
        order[:-1] = rng.permutation(inds.size - 1)
        nxt[int(t)] = inds[order].tolist()
    counters = dict.fromkeys(nxt, 0)
    tok = tokens.tolist()
    perm = np.empty(L, dtype=np.int64)
    ind = 0
    perm[0] = 0
    for j in range(1, L):
        t = tok[ind]
        ind = nxt[t][counters[t]]
        counters[t] += 1
        perm[j] = ind
    return perm


def _shuffle_batch(xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dinucleotide-shuffled copy of a (n, L, 4) batch (rows are moved whole)."""
    # symbol per row: argmax of a one-hot row, 4 for an all-zero row (N)
    tokens = np.where(xb.any(axis=2), xb.argmax(axis=2), 4)
    out = np.empty_like(xb)
    for i in range(xb.shape[0]):
        out[i] = xb[i, _dinuc_shuffle_perm(tokens[i], rng)]
    return out


def _check_baseline(baseline: Any, shape: tuple, ncl: bool) -> Any:
    if isinstance(baseline, str):
        if baseline not in ("zeros", "shuffle"):
            raise ValueError(f"baseline: expected 'zeros', 'shuffle' or an array, got {baseline!r}")
        return baseline
    if baseline is None:
        raise TypeError("baseline: expected 'zeros', 'shuffle' or an array broadcastable to x, got None")
    try:
        b = np.asarray(baseline, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"baseline: expected 'zeros', 'shuffle' or a numeric array ({exc})") from None
    try:
        b = np.broadcast_to(b, shape)
    except ValueError:
        raise ValueError(
            f"baseline: expected an array broadcastable to x {_shape_str(np.broadcast_to(0, shape))}, "
            f"got shape {_shape_str(b)}"
        ) from None
    if not np.isfinite(b).all():
        raise ValueError("baseline: expected finite values, found NaN or Inf")
    return np.swapaxes(b, 1, 2) if ncl else b


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _seed_rng(seed: Any) -> np.random.Generator:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.random.Generator))):
        raise TypeError(f"seed: expected None, an int or a numpy Generator, got {type(seed).__name__} {seed!r}")
    if isinstance(seed, numbers.Integral) and seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed}")
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def iter_attributions(
    model: Any,
    x: Any,
    *,
    method: str = "saliency",
    batch_size: int = 256,
    layout: str = "NLC",
    **method_kwargs: Any,
) -> Iterator[tuple[int, np.ndarray]]:
    """Attribution maps one batch at a time (for streaming into accumulators).

    Parameters
    ----------
    model : keras.Model or path
        Takes ``(N, L, 4)`` float32; a path is read with :func:`load_model`.
    x : array_like, shape (N, L, 4) or (N, 4, L)
        One-hot sequences; a numpy array or anything with ``.shape`` and slicing (``h5py``
        dataset, Zarr array, memory map): only one batch is read at a time.
    method : {"saliency", "smoothgrad", "integrated_gradients", "ig"}
    batch_size : int
        Sequences per call of the model; the last batch is padded up to it.
    layout : {"NLC", "NCL"}
        Layout of ``x`` and of the yielded maps.
    **method_kwargs
        The keyword arguments of the method: ``output`` (all); ``n_samples``, ``stddev``,
        ``seed`` (:func:`smoothgrad`); ``baseline``, ``steps``, ``seed``
        (:func:`integrated_gradients`).

    Yields
    ------
    start : int
        Index of the batch's first sequence in ``x``.
    attr : ndarray, shape (n, L, 4) or (n, 4, L), float32
        Maps of ``x[start:start + n]``, in order.

    Notes
    -----
    The arguments are checked when this function is called, before the first batch.
    """
    _tf()  # a clear ImportError first when TensorFlow is missing
    if not isinstance(method, str) or _ALIASES.get(method, method) not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)} or 'ig', got {method!r}")
    method = _ALIASES.get(method, method)
    unknown = sorted(set(method_kwargs) - set(_METHOD_KWARGS[method]))
    if unknown:
        raise TypeError(
            f"{unknown[0]}: not an argument of method={method!r}; expected {', '.join(_METHOD_KWARGS[method])}"
        )
    ncl = check_layout(layout)
    batch_size = check_int("batch_size", batch_size, 1)
    x, shape = _check_x_shape(x, ncl)
    output = _check_output(method_kwargs.get("output"))
    model = _check_model(model)
    n, length = shape[0], shape[2] if ncl else shape[1]
    batch = min(batch_size, n)

    extra: dict = {}
    if method == "smoothgrad":
        extra["n_samples"] = check_int("n_samples", method_kwargs.get("n_samples", 50), 1)
        extra["stddev"] = check_real("stddev", method_kwargs.get("stddev", 0.1), 0.0)
        extra["rng"] = _seed_rng(method_kwargs.get("seed"))
    elif method == "integrated_gradients":
        extra["steps"] = check_int("steps", method_kwargs.get("steps", 25), 1)
        extra["baseline"] = _check_baseline(method_kwargs.get("baseline", "zeros"), shape, ncl)
        extra["rng"] = _seed_rng(method_kwargs.get("seed"))

    fn = _get_function(model, method, output, batch, length)
    return _generate(fn, method, x, n, batch, ncl, extra)


def _pad(b: np.ndarray, batch: int) -> np.ndarray:
    if b.shape[0] == batch:
        return b
    out = np.zeros((batch,) + b.shape[1:], dtype=np.float32)
    out[: b.shape[0]] = b
    return out


def _generate(fn: Any, method: str, x: Any, n: int, batch: int, ncl: bool, extra: dict):
    tf, _ = _tf()
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        xb = _batch_nlc(x, start, stop, ncl)
        m = xb.shape[0]
        if method == "saliency":
            g = fn(tf.constant(_pad(xb, batch)))
        elif method == "smoothgrad":
            seed = extra["rng"].integers(0, 2**62, size=2, dtype=np.int64)
            g = fn(
                tf.constant(_pad(xb, batch)),
                tf.constant(seed),
                tf.constant(extra["stddev"], tf.float32),
                tf.constant(extra["n_samples"], tf.int32),
            )
        else:
            base = extra["baseline"]
            if isinstance(base, str):
                bb = np.zeros_like(xb) if base == "zeros" else _shuffle_batch(xb, extra["rng"])
            else:
                bb = np.ascontiguousarray(base[start:stop], dtype=np.float32)
            g = fn(tf.constant(_pad(xb, batch)), tf.constant(_pad(bb, batch)), tf.constant(extra["steps"], tf.int32))
        a = np.asarray(g.numpy()[:m], dtype=np.float32)
        if ncl:
            a = np.swapaxes(a, 1, 2)
        yield start, np.ascontiguousarray(a)


def _collect(model: Any, x: Any, method: str, batch_size: int, layout: str, **kwargs: Any) -> np.ndarray:
    if not hasattr(x, "shape") or not hasattr(x, "__getitem__"):
        x = np.asarray(x)
    it = iter_attributions(model, x, method=method, batch_size=batch_size, layout=layout, **kwargs)
    out = np.empty(tuple(int(s) for s in x.shape), dtype=np.float32)
    for start, a in it:
        out[start : start + a.shape[0]] = a
    return out


def saliency(
    model: Any, x: Any, *, output: Any = None, batch_size: int = 256, layout: str = "NLC"
) -> np.ndarray:
    """Saliency maps: the gradient of the model's output with respect to the input.

    Parameters
    ----------
    model : keras.Model or path
        Takes ``(N, L, 4)`` float32 (a path is read with :func:`load_model`).
    x : array_like, shape (N, L, 4) or (N, 4, L)
        One-hot sequences (cast to float32; must be finite).
    output : None, int or callable
        What is differentiated: None, the per-example mean over the model's outputs; an int,
        that output column; a callable ``f(y)`` returning one value per example.
    batch_size : int
        Sequences per call of the model.
    layout : {"NLC", "NCL"}
        Layout of ``x`` and of the result.

    Returns
    -------
    ndarray, same shape as ``x``, float32
    """
    return _collect(model, x, "saliency", batch_size, layout, output=output)


def smoothgrad(
    model: Any,
    x: Any,
    *,
    n_samples: int = 50,
    stddev: float = 0.1,
    seed: Any = None,
    output: Any = None,
    batch_size: int = 256,
    layout: str = "NLC",
) -> np.ndarray:
    """SmoothGrad: saliency averaged over ``n_samples`` noisy copies ``x + N(0, stddev**2)``.

    Parameters
    ----------
    model, x, output, batch_size, layout
        As for :func:`saliency`.
    n_samples : int >= 1
        Noisy copies per sequence.
    stddev : float >= 0
        Standard deviation of the Gaussian noise (in units of the one-hot encoding);
        ``stddev=0`` gives the saliency map.
    seed : int, numpy Generator or None
        Seeds the noise (TensorFlow stateless random numbers); the same seed and
        ``batch_size`` give the same maps on the same device.

    Returns
    -------
    ndarray, same shape as ``x``, float32
    """
    return _collect(
        model, x, "smoothgrad", batch_size, layout, n_samples=n_samples, stddev=stddev, seed=seed, output=output
    )


def integrated_gradients(
    model: Any,
    x: Any,
    *,
    baseline: Any = "zeros",
    steps: int = 25,
    seed: Any = None,
    output: Any = None,
    batch_size: int = 256,
    layout: str = "NLC",
) -> np.ndarray:
    """Integrated gradients ``(x - b) * integral_0^1 grad f(b + a (x - b)) da``.

    The integral is the trapezoid rule on ``steps + 1`` equally spaced points (``steps + 1``
    gradient evaluations per sequence, as in tfomics), so ``IG.sum()`` approaches
    ``f(x) - f(b)`` per sequence (completeness) as ``steps`` grows.

    Parameters
    ----------
    model, x, output, batch_size, layout
        As for :func:`saliency`.
    baseline : {"zeros", "shuffle"} or array_like
        ``"zeros"``: all-zero input; ``"shuffle"``: a dinucleotide-preserving shuffle of
        each sequence (Altschul-Erickson, as DeepLIFT's ``dinuc_shuffle``; one shuffle per
        sequence, computed on the CPU, seeded by ``seed``); or an array broadcastable to
        ``x`` in the caller's ``layout`` (e.g. ``np.full(4, 0.25)`` for a uniform baseline).
    steps : int >= 1
        Intervals of the trapezoid rule.
    seed : int, numpy Generator or None
        Seeds the ``"shuffle"`` baseline.

    Returns
    -------
    ndarray, same shape as ``x``, float32
    """
    return _collect(
        model, x, "integrated_gradients", batch_size, layout, baseline=baseline, steps=steps, seed=seed,
        output=output,
    )


def grad_times_input(x: Any, attr: Any) -> np.ndarray:
    """Gradient times input: ``x * attr`` elementwise (any layout, as long as both agree).

    Parameters
    ----------
    x : array_like, shape (N, L, 4) or (N, 4, L)
        One-hot sequences.
    attr : array_like, same shape as ``x``
        Gradients (e.g. from :func:`saliency`).

    Returns
    -------
    ndarray, same shape as ``x``, float32
    """
    xa = np.asarray(x)
    aa = np.asarray(attr)
    for name, a in (("x", xa), ("attr", aa)):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
        if a.ndim != 3 or 4 not in a.shape[1:]:
            raise ValueError(f"{name}: expected a 3-D array (N, L, 4) or (N, 4, L), got shape {_shape_str(a)}")
    if xa.shape != aa.shape:
        raise ValueError(f"attr: expected the same shape as x {_shape_str(xa)}, got {_shape_str(aa)}")
    return np.multiply(xa, aa, dtype=np.float32)
