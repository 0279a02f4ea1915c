"""Builders for weights-only model files: ``MODULE:FUNCTION``, ``path/to/file.py:FUNCTION``, a
callable, or one of the package's own architectures by name.

Everything here is checked before TensorFlow starts where it can (the spec's form, the file, the
module's import, the function's existence), so that a wrong ``--builder`` costs no start-up time
and the message speaks in command-line terms.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ARCHITECTURES", "resolve_builder", "parse_builder_kwargs", "shipped_architecture"]

#: The package's architectures, usable as ``--builder NAME`` (acme_fast.zoo builds them).
ARCHITECTURES = {
    "cnn_deep": "the paper's deep CNN (activation='relu'|'exponential', input_shape=(200, 4))",
    "cnn_shallow": "the paper's shallow CNN (activation='relu'|'exponential', input_shape=(200, 4))",
    "base_cnn": "the paper's Table 1 base CNN (activation, batch_norm, width, input_shape)",
    "base_cnn_shipped_layout": "the earlier base CNN with cnn_deep's layer sizes (same arguments as base_cnn)",
}

# The shipped weight files: cnn_{deep,shallow}_{relu,exponential}_N.h5
_SHIPPED = re.compile(r"cnn_(deep|shallow)_(relu|exponential)_\d+(?:\.weights)?\.h5$")


def shipped_architecture(path: str | Path) -> tuple[str, str] | None:
    """``("deep", "exponential")`` for a file named like the paper's shipped models, else None."""
    m = _SHIPPED.search(Path(path).name)
    return (m.group(1), m.group(2)) if m else None


def parse_builder_kwargs(text: str | None, name: str = "--builder-kwargs") -> dict[str, Any]:
    """A JSON object of keyword arguments for the builder (``'{"activation": "exponential"}'``)."""
    if text is None or text == "":
        return {}
    try:
        kw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: expected a JSON object such as '{{\"activation\": \"exponential\"}}', got "
                         f"{text!r} ({exc.msg})") from None
    if not isinstance(kw, dict):
        raise ValueError(f"{name}: expected a JSON object (keyword arguments), got {type(kw).__name__} {text!r}")
    for k, v in kw.items():  # JSON has no tuples: a list for input_shape means a tuple
        if isinstance(v, list):
            kw[k] = tuple(v)
    return kw


def _load_file_module(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"_acme_builder_{abs(hash(str(path)))}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{name}: cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's code: say where it failed
        raise ValueError(f"{name}: importing {str(path)!r} failed ({type(exc).__name__}: {exc})") from None
    return module


def resolve_builder(spec: Any, kwargs: dict[str, Any] | None = None, *, name: str = "builder") -> Callable | None:
    """A callable ``builder() -> keras.Model`` from ``spec``.

    Parameters
    ----------
    spec : None, callable or str
        ``None``; a callable; ``"MODULE:FUNCTION"`` (importable; the working directory is
        searched too); ``"path/to/file.py:FUNCTION"``; or a name of :data:`ARCHITECTURES`
        (``"cnn_deep"``) or ``"acme_fast.zoo:cnn_deep"``.
    kwargs : dict, optional
        Keyword arguments the builder is called with (``{"activation": "exponential"}``).
    name : str
        How messages name the argument (``"builder"``, ``"--builder"``).

    Raises
    ------
    ValueError
        A malformed spec, a file or module that does not exist or fails to import, a missing
        function.
    TypeError
        The target is not callable.
    """
    kwargs = dict(kwargs or {})
    if spec is None:
        if kwargs:
            raise ValueError(f"{name}: keyword arguments were given but no builder")
        return None
    if callable(spec):
        return functools.partial(spec, **kwargs) if kwargs else spec
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"{name}: expected a callable, 'MODULE:FUNCTION', 'path/to/file.py:FUNCTION' or one of "
                        f"{', '.join(ARCHITECTURES)}, got {type(spec).__name__} {spec!r}")
    spec = spec.strip()
    if spec in ARCHITECTURES:
        spec = f"acme_fast.zoo:{spec}"
    if ":" not in spec:
        raise ValueError(f"{name}: expected 'MODULE:FUNCTION', 'path/to/file.py:FUNCTION' or one of "
                         f"{', '.join(ARCHITECTURES)}, got {spec!r}")
    target, _, func = spec.rpartition(":")
    if not func.isidentifier():
        raise ValueError(f"{name}: {func!r} in {spec!r} is not a function name")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser()
        if not path.is_file():
            raise ValueError(f"{name}: no such file {str(path)!r} (from {spec!r})")
        module = _load_file_module(path, name)
    else:
        if not all(part.isidentifier() for part in target.split(".")):
            raise ValueError(f"{name}: {target!r} in {spec!r} is not a module name")
        added = False
        if "" not in sys.path and str(Path.cwd()) not in sys.path:  # a module beside the user's data
            sys.path.insert(0, str(Path.cwd()))
            added = True
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ValueError(f"{name}: cannot import module {target!r} ({exc}); give a module on the Python path "
                             "or in the working directory, or 'path/to/file.py:FUNCTION'") from None
        except Exception as exc:  # noqa: BLE001 - the user's module raised
            raise ValueError(f"{name}: importing module {target!r} failed ({type(exc).__name__}: {exc})") from None
        finally:
            if added:
                sys.path.remove(str(Path.cwd()))
    fn = getattr(module, func, None)
    if fn is None:
        public = sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))
        raise ValueError(f"{name}: {target!r} has no function {func!r}; it has: {', '.join(public[:20]) or 'none'}")
    if not callable(fn):
        raise TypeError(f"{name}: {spec!r} is a {type(fn).__name__}, not a function")
    return functools.partial(fn, **kwargs) if kwargs else fn
