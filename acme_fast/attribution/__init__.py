"""Attribution maps of Keras/TensorFlow and PyTorch models: saliency, SmoothGrad, integrated gradients.

One backend per framework (:mod:`._tensorflow`, :mod:`._torch`) sits behind one small
interface (:class:`~acme_fast.attribution._backend.Backend`: a batch in, gradients out); this
module validates the arguments, reads the sequences one batch at a time, puts each batch in
the model's layout and hands it over, so the scoring code never asks which framework runs.
Neither TensorFlow nor PyTorch is imported by ``import acme_fast``: a framework is imported
when a model of it is used (``pip install "acme_fast[tf]"`` / ``"acme_fast[torch]"``).

Which framework runs
    A Keras model runs on its Keras backend: TensorFlow (``tf.function`` per batch shape, the
    last batch padded, the GPU when TensorFlow sees one) or PyTorch (``KERAS_BACKEND=torch``);
    Keras on JAX is refused with a message. A ``torch.nn.Module`` (TorchScript and
    ``torch.export`` modules included) runs on PyTorch. A plain callable runs on the framework
    that is loaded, or on ``backend=``.

Layouts
    ``model_layout`` is what the model takes: ``"NLC"`` ``(N, L, 4)`` for Keras models,
    ``"NCL"`` ``(N, 4, L)`` for PyTorch models (their convention), unless given. ``layout``
    is the layout of ``x`` and of the returned maps; default: the model's layout. Batches are
    transposed on the way in and out when the two differ.

PyTorch specifics
    ``device=None`` picks CUDA when available (a Keras model stays on Keras's device);
    ``dtype=None`` follows the model's parameters; each batch goes to the device on its own,
    in its host dtype (uint8 stays uint8 until it is there); the model runs in eval mode and
    its training flags and device are restored afterwards; gradients are taken with respect to
    the input only (``torch.autograd.grad``), so parameters' ``.grad`` and ``requires_grad``
    are untouched.

What is differentiated (``output``):

- ``None``: the mean over the model's outputs, per example (all output columns, of all
  outputs for a multi-output model), as tfomics does. Unlike tfomics the mean is not taken
  over the batch as well, so the maps do not depend on the batch size.
- an ``int`` ``i``: output column ``i`` (columns of a multi-output model are numbered in
  order, outputs flattened per example and concatenated; dict outputs in key order).
- a callable ``f(y) -> (N,)``: applied to the model's output tensor(s) ``y`` (tf or torch
  tensors); it must return one value per example (shape ``(N,)`` or ``(N, 1)``), e.g. the
  sum of a profile head, ``lambda y: y[0].sum(dim=(1, 2))``.

Examples
--------
>>> from acme_fast import attribution as at            # doctest: +SKIP
>>> model = at.load_model("model.keras")               # doctest: +SKIP
>>> sal = at.saliency(model, x, output=0)              # (N, L, 4) float32
>>> ig = at.integrated_gradients(model, x, baseline="shuffle", steps=50, seed=0)
>>> net = at.load_model("model.pt")                    # TorchScript; x as (N, 4, L)
>>> sal = at.saliency(net, x_ncl, device="cpu")
>>> for start, a in at.iter_attributions(model, x, method="smoothgrad", seed=1):
...     acc.update(x[start:start + len(a)], a)
"""

from __future__ import annotations

import numbers
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._validate import _as_3d, _shape_str, check_int, check_layout, check_real, first_bad
from ._backend import Backend
from ._tensorflow import _FUNCTIONS, _TRACE_COUNT, _tf, is_keras_model, keras_backend_name  # noqa: F401
from ._torch import SUFFIXES as _TORCH_SUFFIXES
from ._torch import is_torch_model

__all__ = [
    "load_model",
    "get_backend",
    "saliency",
    "smoothgrad",
    "integrated_gradients",
    "grad_times_input",
    "iter_attributions",
    "predict",
    "Backend",
    "METHODS",
    "FRAMEWORKS",
]

#: Method names accepted by :func:`iter_attributions` (``"ig"`` is an alias).
METHODS = ("saliency", "smoothgrad", "integrated_gradients")
#: Frameworks accepted by ``backend=`` (``"tf"`` and ``"pytorch"`` are aliases).
FRAMEWORKS = ("tensorflow", "torch")
_ALIASES = {"ig": "integrated_gradients"}
_FRAMEWORK_ALIASES = {"tf": "tensorflow", "keras": "tensorflow", "pytorch": "torch"}
_METHOD_KWARGS = {
    "saliency": ("output",),
    "smoothgrad": ("n_samples", "stddev", "seed", "output"),
    "integrated_gradients": ("baseline", "steps", "seed", "output"),
}
_TORCH_KINDS = ("torchscript", "torch_export", "state_dict")

_is_keras_model = is_keras_model  # the name older code imports


# --------------------------------------------------------------------------------------------
# Loading models
# --------------------------------------------------------------------------------------------


def check_model_path(model: Any, builder: Any = None, builder_kwargs: dict[str, Any] | None = None
                     ) -> tuple[str, Path | None, Callable | None]:
    """Everything about a model argument that can be checked before a framework starts.

    Returns ``(kind, path, builder)``: kind is ``"object"`` (a model in memory), Keras kinds
    ``"savedmodel"``, ``"weights"`` (with the resolved builder), ``"shipped"`` (a weights file
    named like the paper's models: the architecture comes from its name), ``"full"`` (a
    whole-model file), or PyTorch kinds ``"torchscript"``, ``"torch_export"`` (``.pt2``),
    ``"state_dict"`` (``.pt``/``.pth`` with a builder). Raises the errors of :func:`load_model`.
    """
    from .._builder import ARCHITECTURES, resolve_builder, shipped_architecture
    from ._tensorflow import h5_is_full_model
    from ._torch import file_kind

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
                "expected a .keras file, an .h5 file, a SavedModel directory or a PyTorch file (.pt, .pth, .pt2)"
            )
        return "savedmodel", path, build
    name = path.name.lower()
    if name.endswith(_TORCH_SUFFIXES):
        return file_kind(path, build is not None), path, build
    is_weights = name.endswith(".weights.h5")
    is_h5 = name.endswith((".h5", ".hdf5"))
    is_keras = name.endswith(".keras")
    if not (is_h5 or is_keras):
        raise ValueError(
            f"model: unsupported file {str(path)!r}; expected a .keras file, a full-model .h5, "
            "a SavedModel directory, a weights file (.h5, .weights.h5) with a builder, or a PyTorch file: "
            "TorchScript (.pt, .pth), torch.export (.pt2), a state dict (.pt, .pth) with a builder"
        )
    if build is not None:
        return "weights", path, build
    if is_weights or (is_h5 and not h5_is_full_model(path)):
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
    """Load a Keras or PyTorch model from memory or disk.

    Parameters
    ----------
    model : keras.Model, torch.nn.Module, callable, str or os.PathLike
        A model in memory (returned as it is), or a path to:

        - a ``.keras`` file (``model.save("m.keras")``; it loads on Keras's current backend);
        - a legacy full-model ``.h5``/``.hdf5`` file (``model.save("m.h5")``, tf.keras 2);
        - a SavedModel directory (``model.export(dir)`` in Keras 3, ``model.save(dir)`` in
          tf.keras 2); its ``serve`` (or ``serving_default``) endpoint is wrapped in a Keras
          model with ``keras.layers.TFSMLayer``;
        - a weights-only file (``.weights.h5``, or an ``.h5`` without a model config) together
          with ``builder``; the paper's shipped files (``cnn_{deep,shallow}_{relu,exponential}_N.h5``)
          are recognised by their names and need no builder;
        - a TorchScript file (``.pt``/``.pth`` from ``torch.jit.script(m).save(path)`` or
          ``torch.jit.trace``), read with ``torch.jit.load``;
        - a ``torch.export`` program (``.pt2``, ``torch.export.save``), read with
          ``torch.export.load(path).module()``;
        - a state dict (``.pt``/``.pth``, ``torch.save(m.state_dict(), path)``; also a checkpoint
          dict holding one under ``"state_dict"``/``"model_state_dict"``/``"model"``) together
          with ``builder``, which returns the ``torch.nn.Module`` it is loaded into (read with
          ``weights_only=True``: no pickled code runs). PyTorch models load on the CPU.
    builder : callable or str, optional
        Builds the (uncompiled) architecture; the weights are then read into it. A callable,
        ``"MODULE:FUNCTION"``, ``"path/to/file.py:FUNCTION"``, or a package architecture by
        name (``"cnn_deep"``, ``"cnn_shallow"``, ``"base_cnn"``). When given, a
        ``.h5``/``.keras`` path is always read as weights into ``builder(**builder_kwargs)``
        and a ``.pt``/``.pth`` path as a state dict.
    builder_kwargs : dict, optional
        Keyword arguments of the builder (``{"activation": "exponential"}``).
    compile : bool
        Passed to ``keras.saving.load_model`` (the attributions never need a compiled model).

    Returns
    -------
    keras.Model, torch.nn.Module or the callable given

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        A weights-only file without ``builder``, an unknown file type, a directory that is not a
        SavedModel, a builder that cannot be found or imported, or a file the framework cannot read.
    TypeError
        ``model`` is neither a model, a callable nor a path, or ``builder`` returns no model.
    ImportError
        The framework the file needs is not installed (the message names the extra).
    """
    kind, path, build = check_model_path(model, builder, builder_kwargs)
    if kind == "object":
        if is_keras_model(model) or is_torch_model(model) or callable(model):
            return model
        raise TypeError(
            f"model: expected a keras.Model, a torch.nn.Module, a callable or a path (.keras, .h5, .weights.h5, "
            f"SavedModel directory, .pt, .pth, .pt2), got {type(model).__name__}"
        )
    if kind in _TORCH_KINDS:
        from . import _torch

        return _torch.load(kind, path, build)
    from . import _tensorflow

    return _tensorflow.load(kind, path, build, compile)


def _check_framework(backend: Any) -> str | None:
    if backend is None:
        return None
    name = _FRAMEWORK_ALIASES.get(backend, backend) if isinstance(backend, str) else backend
    if name not in FRAMEWORKS:
        raise ValueError(f"backend: expected None, 'tensorflow' or 'torch', got {backend!r}")
    return name


def framework_of(model: Any, backend: Any = None) -> tuple[str, bool]:
    """``(framework, is_keras)`` of a model object (or a path, by its kind), without loading it."""
    want = _check_framework(backend)
    if isinstance(model, Backend):
        return model.framework, False
    if isinstance(model, (str, os.PathLike)):  # by the file's suffix (check_model_path checks the rest)
        torch_file = Path(model).name.lower().endswith(_TORCH_SUFFIXES)
        return ("torch" if torch_file else "tensorflow"), not torch_file
    if is_keras_model(model):
        kb = keras_backend_name()
        if kb not in FRAMEWORKS:
            raise RuntimeError(
                f"model: a Keras model on the {kb!r} backend; acme_fast differentiates Keras models with TensorFlow "
                "or PyTorch: set KERAS_BACKEND=tensorflow or KERAS_BACKEND=torch before Python starts (a .keras "
                "file loads on either backend)"
            )
        if want is not None and want != kb:
            raise ValueError(f"backend: the model is a Keras model on the {kb!r} backend, got backend={backend!r}")
        return kb, True
    if is_torch_model(model):
        if want == "tensorflow":
            raise ValueError(f"backend: the model is a torch.nn.Module, got backend={backend!r}")
        return "torch", False
    if not callable(model):
        raise TypeError(f"model: expected a keras.Model, a torch.nn.Module, a callable or a path, got "
                        f"{type(model).__name__}")
    if want is not None:
        return want, False
    has_tf, has_torch = "tensorflow" in sys.modules, "torch" in sys.modules
    if has_tf and has_torch:
        raise ValueError("backend: the model is a plain callable and both TensorFlow and PyTorch are loaded; say "
                         "which one it runs on: backend='tensorflow' or backend='torch'")
    return ("torch" if has_torch else "tensorflow"), False


def get_backend(model: Any, *, backend: Any = None, device: Any = None, dtype: Any = None,
                model_layout: str | None = None, builder: Any = None,
                builder_kwargs: dict[str, Any] | None = None) -> Backend:
    """The backend that differentiates ``model`` (loading it first when it is a path).

    Parameters
    ----------
    model : keras.Model, torch.nn.Module, callable, path or Backend
        A :class:`Backend` is returned as it is.
    backend : None, "tensorflow" or "torch"
        The framework of a plain callable (default: the one that is loaded); checked against
        the model's own framework otherwise.
    device, dtype
        See :mod:`acme_fast.attribution` (PyTorch) and the TensorFlow backend (a device name
        such as ``"/GPU:0"``; float32 only).
    model_layout : {"NLC", "NCL"}, optional
        The layout the model takes; default ``"NLC"`` for Keras models and TensorFlow
        callables, ``"NCL"`` for PyTorch.
    builder, builder_kwargs
        As :func:`load_model`.

    Returns
    -------
    Backend
    """
    if isinstance(model, Backend):
        return model
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model, builder=builder, builder_kwargs=builder_kwargs)
    framework, keras = framework_of(model, backend)
    if model_layout is None:
        model_layout = "NLC" if keras or framework == "tensorflow" else "NCL"
    else:
        model_layout = "NCL" if check_layout(model_layout, "model_layout") else "NLC"
    if framework == "torch":
        from ._torch import TorchBackend

        return TorchBackend(model, model_layout, device=device, dtype=dtype, keras=keras)
    from ._tensorflow import TensorFlowBackend

    return TensorFlowBackend(model, model_layout, device=device, dtype=dtype)


def default_layout(model: Any, backend: Any = None, model_layout: str | None = None) -> str:
    """The layout the model takes (``model_layout``, or its framework's convention), found
    without loading a model file."""
    if model_layout is not None:
        return "NCL" if check_layout(model_layout, "model_layout") else "NLC"
    if isinstance(model, Backend):
        return model.model_layout
    framework, keras = framework_of(model, backend)
    return "NLC" if keras or framework == "tensorflow" else "NCL"


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


def _read_batch(x: Any, start: int, stop: int, ncl: bool, float32: bool, name: str = "x") -> np.ndarray:
    """x[start:stop] in x's layout, checked finite; float32 when asked, else its own real dtype."""
    b = np.asarray(x[start:stop])
    if b.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {b.dtype}")
    if float32 or b.dtype.kind == "f" and b.dtype.itemsize < 4:
        b = b.astype(np.float32, copy=False)
    if b.dtype.kind == "f":
        bad = ~np.isfinite(b)
        if bad.any():
            i, p, c = first_bad(np.swapaxes(bad, 1, 2) if ncl else bad)
            value = b[i, c, p] if ncl else b[i, p, c]
            raise ValueError(
                f"{name}: expected finite values, found {value} at sequence {start + i}, position {p}, channel {c}"
            )
    return b


def _check_output(output: Any) -> Any:
    if output is None or callable(output):
        return output
    if isinstance(output, bool) or not isinstance(output, numbers.Integral):
        raise TypeError(
            "output: expected None (mean over outputs), an int (output column) or a callable "
            f"returning one value per example, got {type(output).__name__} {output!r}"
        )
    return check_int("output", output, 0)


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




def _check_baseline(baseline: Any, shape: tuple) -> Any:
    """'zeros', 'shuffle' or a finite float32 array broadcast to x's shape (x's layout)."""
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
    return b


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _seed_rng(seed: Any) -> np.random.Generator:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.random.Generator))):
        raise TypeError(f"seed: expected None, an int or a numpy Generator, got {type(seed).__name__} {seed!r}")
    if isinstance(seed, numbers.Integral) and seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed}")
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _resolve_layouts(be: Backend, layout: str | None) -> tuple[bool, bool]:
    """(x is NCL, model takes NCL)."""
    model_ncl = be.model_layout == "NCL"
    return (model_ncl if layout is None else check_layout(layout)), model_ncl


def iter_attributions(
    model: Any,
    x: Any,
    *,
    method: str = "saliency",
    batch_size: int = 256,
    layout: str | None = None,
    model_layout: str | None = None,
    device: Any = None,
    dtype: Any = None,
    backend: Any = None,
    **method_kwargs: Any,
) -> Iterator[tuple[int, np.ndarray]]:
    """Attribution maps one batch at a time (for streaming into accumulators).

    Parameters
    ----------
    model : keras.Model, torch.nn.Module, callable or path
        A path is read with :func:`load_model`; see the module's notes for which framework runs.
    x : array_like, shape (N, L, 4) or (N, 4, L)
        One-hot sequences; a numpy array or anything with ``.shape`` and slicing (``h5py``
        dataset, Zarr array, memory map): only one batch is read at a time.
    method : {"saliency", "smoothgrad", "integrated_gradients", "ig"}
    batch_size : int
        Sequences per call of the model (TensorFlow pads the last batch up to it).
    layout : {"NLC", "NCL"}, optional
        Layout of ``x`` and of the yielded maps; default: the model's layout.
    model_layout : {"NLC", "NCL"}, optional
        Layout the model takes; default ``"NLC"`` for Keras models, ``"NCL"`` for PyTorch.
    device : optional
        PyTorch: None (CUDA when available), ``"cpu"``, ``"cuda:1"``, a ``torch.device``;
        TensorFlow: None (its placement) or a device name such as ``"/GPU:0"``.
    dtype : optional
        PyTorch: the model's input dtype (default: its parameters' dtype). TensorFlow: float32.
    backend : {None, "tensorflow", "torch"}
        The framework of a plain callable (default: the one that is loaded).
    **method_kwargs
        The keyword arguments of the method: ``output`` (all); ``n_samples``, ``stddev``,
        ``seed`` (:func:`smoothgrad`); ``baseline``, ``steps``, ``seed``
        (:func:`integrated_gradients`).

    Yields
    ------
    start : int
        Index of the batch's first sequence in ``x``.
    attr : ndarray, shape (n, L, 4) or (n, 4, L), float32
        Maps of ``x[start:start + n]``, in order, in ``layout``.

    Notes
    -----
    The arguments are checked when this function is called, before the first batch. A PyTorch
    model is put in eval mode (and on ``device``) when the first batch is asked for, and its
    state is restored when the iterator is exhausted or closed.
    """
    if not isinstance(method, str) or _ALIASES.get(method, method) not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)} or 'ig', got {method!r}")
    method = _ALIASES.get(method, method)
    unknown = sorted(set(method_kwargs) - set(_METHOD_KWARGS[method]))
    if unknown:
        raise TypeError(
            f"{unknown[0]}: not an argument of method={method!r}; expected {', '.join(_METHOD_KWARGS[method])}"
        )
    if layout is not None:
        check_layout(layout)
    batch_size = check_int("batch_size", batch_size, 1)
    output = _check_output(method_kwargs.get("output"))
    be = get_backend(model, backend=backend, device=device, dtype=dtype, model_layout=model_layout)
    ncl, model_ncl = _resolve_layouts(be, layout)
    x, shape = _check_x_shape(x, ncl)
    n = shape[0]
    batch = min(batch_size, n)

    extra: dict = {}
    if method == "smoothgrad":
        extra["n_samples"] = check_int("n_samples", method_kwargs.get("n_samples", 50), 1)
        extra["stddev"] = check_real("stddev", method_kwargs.get("stddev", 0.1), 0.0)
        extra["rng"] = _seed_rng(method_kwargs.get("seed"))
    elif method == "integrated_gradients":
        extra["steps"] = check_int("steps", method_kwargs.get("steps", 25), 1)
        extra["baseline"] = _check_baseline(method_kwargs.get("baseline", "zeros"), shape)
        extra["rng"] = _seed_rng(method_kwargs.get("seed"))
    return _generate(be, method, output, x, n, batch, ncl, model_ncl, extra)


def _pad(b: np.ndarray, batch: int) -> np.ndarray:
    if b.shape[0] == batch:
        return b
    out = np.zeros((batch,) + b.shape[1:], dtype=b.dtype)
    out[: b.shape[0]] = b
    return out


def _to_layout(a: np.ndarray, swap: bool) -> np.ndarray:
    return np.ascontiguousarray(np.swapaxes(a, 1, 2) if swap else a)


def _generate(be: Backend, method: str, output: Any, x: Any, n: int, batch: int, ncl: bool, model_ncl: bool,
              extra: dict) -> Iterator[tuple[int, np.ndarray]]:
    swap = ncl != model_ncl
    with be:  # the model's state (eval mode, device) for the whole run, restored at the end
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            xb = _read_batch(x, start, stop, ncl, be.host_float32)
            m = xb.shape[0]
            xin = _to_layout(xb, swap)
            kw: dict = {}
            if method == "smoothgrad":
                kw = {"n_samples": extra["n_samples"], "stddev": extra["stddev"],
                      "seed": extra["rng"].integers(0, 2**62, size=2, dtype=np.int64)}
            elif method == "integrated_gradients":
                base = extra["baseline"]
                if isinstance(base, str):
                    if base == "zeros":
                        bb = None
                    else:  # the shuffle works on (n, L, 4) rows
                        nlc = np.swapaxes(xb, 1, 2) if ncl else xb
                        bb = _to_layout(_shuffle_batch(np.asarray(nlc, dtype=np.float32), extra["rng"]), model_ncl)
                else:
                    bb = _to_layout(np.asarray(base[start:stop], dtype=np.float32), swap)
                kw = {"baseline": bb, "steps": extra["steps"]}
            if be.pad_batches:
                xin = _pad(xin, batch)
                if kw.get("baseline") is not None:
                    kw["baseline"] = _pad(kw["baseline"], batch)
            a = be.attribute(method, xin, output, **kw)[:m]
            yield start, _to_layout(np.asarray(a, dtype=np.float32), swap)


def predict(model: Any, x: Any, *, batch_size: int = 256, layout: str | None = None,
            model_layout: str | None = None, device: Any = None, dtype: Any = None,
            backend: Any = None) -> np.ndarray:
    """The model's outputs, flattened per example (columns numbered as ``output=i`` numbers them).

    Parameters
    ----------
    model, x, batch_size, layout, model_layout, device, dtype, backend
        As :func:`iter_attributions`.

    Returns
    -------
    ndarray, shape (N, n_outputs), float64
    """
    batch_size = check_int("batch_size", batch_size, 1)
    if layout is not None:
        check_layout(layout)
    be = get_backend(model, backend=backend, device=device, dtype=dtype, model_layout=model_layout)
    ncl, model_ncl = _resolve_layouts(be, layout)
    x, shape = _check_x_shape(x, ncl)
    n = shape[0]
    batch = min(batch_size, n)
    parts = []
    with be:
        for start in range(0, n, batch):
            xb = _read_batch(x, start, min(start + batch, n), ncl, be.host_float32)
            xin = _to_layout(xb, ncl != model_ncl)
            parts.append(be.predict(_pad(xin, batch) if be.pad_batches else xin)[: xb.shape[0]])
    return np.concatenate(parts, axis=0)


def _collect(model: Any, x: Any, method: str, batch_size: int, layout: str | None, **kwargs: Any) -> np.ndarray:
    if not hasattr(x, "shape") or not hasattr(x, "__getitem__"):
        x = np.asarray(x)
    it = iter_attributions(model, x, method=method, batch_size=batch_size, layout=layout, **kwargs)
    out = np.empty(tuple(int(s) for s in x.shape), dtype=np.float32)
    for start, a in it:
        out[start : start + a.shape[0]] = a
    return out


_COMMON_DOC = """model : keras.Model, torch.nn.Module, callable or path
        A path is read with :func:`load_model`.
    x : array_like, shape (N, L, 4) or (N, 4, L)
        One-hot sequences (must be finite).
    output : None, int or callable
        What is differentiated: None, the per-example mean over the model's outputs; an int,
        that output column; a callable ``f(y)`` returning one value per example.
    batch_size : int
        Sequences per call of the model.
    layout : {"NLC", "NCL"}, optional
        Layout of ``x`` and of the result; default: the model's layout.
    model_layout, device, dtype, backend
        As :func:`iter_attributions` (``model_layout`` default: NLC for Keras, NCL for PyTorch)."""


def saliency(
    model: Any, x: Any, *, output: Any = None, batch_size: int = 256, layout: str | None = None,
    model_layout: str | None = None, device: Any = None, dtype: Any = None, backend: Any = None,
) -> np.ndarray:
    return _collect(model, x, "saliency", batch_size, layout, output=output, model_layout=model_layout,
                    device=device, dtype=dtype, backend=backend)


saliency.__doc__ = f"""Saliency maps: the gradient of the model's output with respect to the input.

    Parameters
    ----------
    {_COMMON_DOC}

    Returns
    -------
    ndarray, same shape as ``x``, float32
    """


def smoothgrad(
    model: Any,
    x: Any,
    *,
    n_samples: int = 50,
    stddev: float = 0.1,
    seed: Any = None,
    output: Any = None,
    batch_size: int = 256,
    layout: str | None = None,
    model_layout: str | None = None,
    device: Any = None,
    dtype: Any = None,
    backend: Any = None,
) -> np.ndarray:
    return _collect(
        model, x, "smoothgrad", batch_size, layout, n_samples=n_samples, stddev=stddev, seed=seed, output=output,
        model_layout=model_layout, device=device, dtype=dtype, backend=backend,
    )


smoothgrad.__doc__ = f"""SmoothGrad: saliency averaged over ``n_samples`` noisy copies ``x + N(0, stddev**2)``.

    Parameters
    ----------
    {_COMMON_DOC}
    n_samples : int >= 1
        Noisy copies per sequence.
    stddev : float >= 0
        Standard deviation of the Gaussian noise (in units of the one-hot encoding);
        ``stddev=0`` gives the saliency map.
    seed : int, numpy Generator or None
        Seeds the noise (TensorFlow stateless random numbers; a ``torch.Generator`` on the
        device for PyTorch); the same seed and ``batch_size`` give the same maps on the same
        device.

    Returns
    -------
    ndarray, same shape as ``x``, float32
    """


def integrated_gradients(
    model: Any,
    x: Any,
    *,
    baseline: Any = "zeros",
    steps: int = 25,
    seed: Any = None,
    output: Any = None,
    batch_size: int = 256,
    layout: str | None = None,
    model_layout: str | None = None,
    device: Any = None,
    dtype: Any = None,
    backend: Any = None,
) -> np.ndarray:
    return _collect(
        model, x, "integrated_gradients", batch_size, layout, baseline=baseline, steps=steps, seed=seed,
        output=output, model_layout=model_layout, device=device, dtype=dtype, backend=backend,
    )


integrated_gradients.__doc__ = f"""Integrated gradients ``(x - b) * integral_0^1 grad f(b + a (x - b)) da``.

    The integral is the trapezoid rule on ``steps + 1`` equally spaced points (``steps + 1``
    gradient evaluations per sequence, as in tfomics), so ``IG.sum()`` approaches
    ``f(x) - f(b)`` per sequence (completeness) as ``steps`` grows.

    Parameters
    ----------
    {_COMMON_DOC}
    baseline : {{"zeros", "shuffle"}} or array_like
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
