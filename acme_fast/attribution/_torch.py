"""PyTorch: ``torch.nn.Module`` objects, callables on torch tensors, Keras 3 models on the torch
backend, TorchScript files, ``torch.export`` programs and state dicts.

Conventions (tangermeme's): the model takes ``(N, 4, L)`` unless told otherwise; ``device=None``
picks CUDA when PyTorch sees it; ``dtype=None`` follows the model's parameters; each batch is
moved to the device on its own, in the dtype it has on the host (uint8 one-hot stays uint8 until
it is on the device); the model is put in eval mode and on the device for the run, and every
submodule's training flag and the model's device are restored afterwards. Gradients are taken
with ``torch.autograd.grad`` with respect to the input only: nothing accumulates in the
parameters' ``.grad`` and their ``requires_grad`` flags are untouched.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._deps import need
from ._backend import Backend

#: Model file suffixes read with PyTorch.
SUFFIXES = (".pt", ".pth", ".pt2")


def _torch():
    return need("torch", "acme_fast.attribution (PyTorch models)", "torch")


def is_torch_model(obj: Any) -> bool:
    """True for a ``torch.nn.Module`` (TorchScript and exported modules included), without
    importing torch when nothing imported it."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def file_kind(path: Path, has_builder: bool) -> str:
    """``"torch_export"`` (.pt2), ``"torchscript"`` (an archive with code) or ``"state_dict"`` (with
    a builder), checked without importing torch; ValueError for a state dict without a builder."""
    name = path.name.lower()
    if name.endswith(".pt2"):
        if not zipfile.is_zipfile(path):
            raise ValueError(f"model: {str(path)!r} is not a torch.export archive (not a zip file)")
        return "torch_export"
    script = False
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                script = any("/code/" in n for n in zf.namelist())
        except (zipfile.BadZipFile, OSError) as exc:
            raise ValueError(f"model: {str(path)!r} is not a readable PyTorch file ({exc})") from None
    if has_builder and not script:  # a TorchScript archive carries its code: no builder needed
        return "state_dict"
    if script:
        return "torchscript"
    raise ValueError(
        f"model: {str(path)!r} is a PyTorch file without code (a state dict, or a pickled module): name the "
        "function that builds the module, builder='MODULE:FUNCTION' or 'path/to/file.py:FUNCTION' (CLI: "
        "--builder), whose result receives the state dict; or save the model as TorchScript "
        "(torch.jit.script(model).save(path)) or with torch.export (.pt2)"
    )


def _state_dict_of(obj: Any, path: Path) -> dict:
    """The tensors of a saved state dict; checkpoints wrapping one ({"state_dict": ...},
    {"model_state_dict": ...}, {"model": ...}) and DataParallel's "module." prefixes are unwrapped."""
    torch = _torch()
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"model: {str(path)!r} does not hold a state dict (a dict of tensors); got "
                         f"{type(obj).__name__}")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load(kind: str, path: Path, build: Callable | None) -> Any:
    """Load a PyTorch model file of a kind found by :func:`file_kind` (on the CPU)."""
    torch = _torch()
    if kind == "torchscript":
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - re-raised with the path
            raise ValueError(f"model: PyTorch could not load the TorchScript file {str(path)!r} "
                             f"({type(exc).__name__}: {exc})") from None
    if kind == "torch_export":
        try:
            return torch.export.load(str(path)).module()
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"model: PyTorch could not load the torch.export program {str(path)!r} "
                             f"({type(exc).__name__}: {exc})") from None
    try:  # a state dict into the builder's module; weights_only: never run pickled code
        saved = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"model: PyTorch could not read the state dict {str(path)!r} "
                         f"({type(exc).__name__}: {exc})") from None
    sd = _state_dict_of(saved, path)
    try:
        net = build()
    except Exception as exc:  # noqa: BLE001 - the user's builder: say so
        raise ValueError(f"builder: calling it failed ({type(exc).__name__}: {exc})") from None
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"builder: expected it to return a torch.nn.Module, it returned {type(net).__name__}")
    try:
        net.load_state_dict(sd)
    except Exception as exc:  # noqa: BLE001 - missing/unexpected keys, shape mismatches
        raise ValueError(f"model: the state dict in {str(path)!r} does not fit the module from the builder "
                         f"({exc})") from None
    return net


# --------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------


def _resolve_device(torch: Any, device: Any) -> Any:
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, (str, int)) and not isinstance(device, bool):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"device: expected a PyTorch device such as 'cpu', 'cuda' or 'cuda:1', got "
                             f"{device!r} ({exc})") from None
    else:
        raise TypeError(f"device: expected None, a str or a torch.device, got {type(device).__name__} {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} was asked for, but PyTorch sees no CUDA device")
    return dev


def _resolve_dtype(torch: Any, dtype: Any) -> Any:
    if isinstance(dtype, torch.dtype):
        dt = dtype
    else:
        try:
            dt = getattr(torch, np.dtype(dtype).name)
        except (TypeError, AttributeError):
            dt = None
    if not isinstance(dt, torch.dtype) or not dt.is_floating_point:
        raise ValueError(f"dtype: expected a floating-point dtype (torch.float32, 'float64', ...), got {dtype!r}")
    return dt


class TorchBackend(Backend):
    """PyTorch modules and callables, and Keras 3 models on the torch backend.

    Parameters
    ----------
    model : torch.nn.Module or callable on torch tensors
    model_layout : {"NLC", "NCL"}
    device : None, str or torch.device
        None: the model's own device for Keras models and for modules spread over several
        devices; otherwise CUDA when available, else the CPU. The model is moved there for the
        run and moved back afterwards.
    dtype : None or a floating dtype
        The dtype of the model's input; None: the dtype of its first floating parameter
        (float32 for a callable or a module without parameters).
    keras : bool
        A Keras 3 model on the torch backend: called with ``training=False``, never moved.
    """

    framework = "torch"
    pad_batches = False
    host_float32 = False

    def __init__(self, model: Any, model_layout: str, device: Any = None, dtype: Any = None,
                 keras: bool = False) -> None:
        super().__init__(model, model_layout)
        torch = _torch()
        self.torch = torch
        self.keras = keras
        self.is_module = isinstance(model, torch.nn.Module)
        tensors = []
        if self.is_module:
            tensors = list(model.parameters()) + list(model.buffers())
        own = {t.device for t in tensors}
        if device is None:
            if keras or len(own) > 1:
                dev = tensors[0].device if tensors else torch.device("cpu")
            else:
                dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            dev = _resolve_device(torch, device)
            if keras and tensors and dev != tensors[0].device:
                raise ValueError(f"device: a Keras model on the torch backend stays on Keras's device "
                                 f"({tensors[0].device}); got {device!r} (leave device=None)")
        self.device = dev
        self._move = self.is_module and not keras and len(own) <= 1 and own != {dev}
        if dtype is None:
            floats = [p.dtype for p in tensors if p.dtype.is_floating_point]
            self.dtype = floats[0] if floats else torch.float32
        else:
            self.dtype = _resolve_dtype(torch, dtype)
        self._saved: list | None = None
        self._depth = 0

    # -------------------------------------------------------------------------- model state
    def __enter__(self) -> TorchBackend:
        self._depth += 1  # nested entries (a run, then each batch) change and restore the state once
        if self.is_module and self._depth == 1:
            mods = list(self.model.modules())
            modes = [(m, m.training) for m in mods]
            origin = next(iter({t.device for t in list(self.model.parameters()) + list(self.model.buffers())}),
                          None)
            self._saved = [modes, origin]
            if not self.keras:
                try:
                    self.model.eval()
                except (NotImplementedError, RuntimeError):  # torch.export modules are fixed in eval mode
                    pass
            if self._move:
                self.model.to(self.device)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth > 0 or self._saved is None:
            return
        modes, origin = self._saved
        self._saved = None
        if self._move and origin is not None:
            self.model.to(origin)
        for m, mode in modes:  # one flag per submodule: a frozen batch-norm stays frozen
            if m.training != mode:
                try:
                    m.training = mode
                except (AttributeError, RuntimeError):  # pragma: no cover - read-only flags
                    pass

    # -------------------------------------------------------------------------- gradients
    def _call(self, x: Any) -> Any:
        return self.model(x, training=False) if self.keras else self.model(x)

    def _flatten(self, y: Any, n: int) -> Any:
        torch = self.torch
        if isinstance(y, torch.Tensor):
            parts = [y]
        elif isinstance(y, dict):
            parts = [y[k] for k in sorted(y)]
        elif isinstance(y, (tuple, list)):
            parts = list(y)
        else:
            raise TypeError(f"model: expected the model to return a tensor, a tuple/list or a dict of tensors, got "
                            f"{type(y).__name__}")
        flat = []
        for p in parts:
            if isinstance(p, (dict, tuple, list)):
                flat.append(self._flatten(p, n))
            elif isinstance(p, torch.Tensor):
                flat.append(p.reshape(n, -1))
            else:
                raise TypeError(f"model: expected tensors in the model's output, got {type(p).__name__}")
        return torch.cat([f.to(flat[0].dtype) for f in flat], dim=1) if len(flat) > 1 else flat[0]

    def _target(self, y: Any, output: Any, n: int) -> Any:
        torch = self.torch
        if callable(output):
            t = output(y)
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"output: the callable must return a tensor, it returned {type(t).__name__}")
            if t.ndim == 2 and t.shape[1] == 1:
                t = t[:, 0]
            if t.ndim != 1 or t.shape[0] != n:
                raise ValueError(f"output: the callable must return one value per example, shape ({n},) or ({n}, 1); "
                                 f"it returned shape {tuple(t.shape)}")
            return t
        flat = self._flatten(y, n)
        if output is None:
            return flat.mean(dim=1)
        if output >= flat.shape[1]:
            raise ValueError(f"output: expected an output column in 0..{flat.shape[1] - 1}, got {output}")
        return flat[:, output]

    def _grad(self, x: Any, output: Any) -> Any:
        torch = self.torch
        # enable_grad(): gradients even when the caller disabled them (torch.no_grad())
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            t = self._target(self._call(xg), output, xg.shape[0])
            if not t.requires_grad:
                raise ValueError("model: the output does not depend on the input (no gradient)")
            (g,) = torch.autograd.grad(t.sum(), xg, allow_unused=True)
        if g is None:
            raise ValueError("model: the output does not depend on the input (gradient is None)")
        return g.detach()

    def _to_device(self, a: np.ndarray) -> Any:
        a = np.ascontiguousarray(a)
        if not a.flags.writeable:  # torch.from_numpy wants a writable buffer (it never writes here)
            a = a.copy()
        t = self.torch.from_numpy(a)
        return t.to(self.device).to(self.dtype)

    def attribute(self, method: str, xb: np.ndarray, output: Any, *, n_samples: int = 0, stddev: float = 0.0,
                  seed: Any = None, baseline: np.ndarray | None = None, steps: int = 0) -> np.ndarray:
        torch = self.torch
        # inference_mode(False): tensors made here can require gradients even inside the caller's
        # torch.inference_mode(); the caller's grad mode is back when this returns
        with self, torch.inference_mode(False):
            x = self._to_device(xb)
            if method == "saliency":
                g = self._grad(x, output)
            elif method == "smoothgrad":
                gen = torch.Generator(device=self.device)
                gen.manual_seed(int(np.asarray(seed, dtype=np.int64).ravel()[0]))
                acc = torch.zeros_like(x)
                for _ in range(n_samples):
                    noise = torch.randn(x.shape, generator=gen, device=self.device, dtype=self.dtype)
                    acc += self._grad(x + noise * stddev, output)
                g = acc / n_samples
            else:  # integrated gradients, trapezoid rule with steps + 1 points
                base = torch.zeros_like(x) if baseline is None else self._to_device(baseline)
                delta = x - base
                acc = torch.zeros_like(x)
                for k in range(steps + 1):
                    w = 0.5 if k in (0, steps) else 1.0
                    acc += w * self._grad(base + (k / steps) * delta, output)
                g = delta * acc / steps
            return g.to(torch.float32).cpu().numpy()

    def predict(self, xb: np.ndarray) -> np.ndarray:
        torch = self.torch
        with self, torch.no_grad():
            y = self._flatten(self._call(self._to_device(xb)), xb.shape[0])
            return y.to(torch.float64).cpu().numpy()
