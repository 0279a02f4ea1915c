"""Optional dependencies: import one, or say what needs it and which extra installs it."""

from __future__ import annotations

import importlib
from types import ModuleType


def need(module: str, purpose: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an ImportError naming ``purpose`` and ``pip install "acme_fast[extra]"``.

    Parameters
    ----------
    module : str
        Module to import (``"h5py"``, ``"dask.array"``).
    purpose : str
        What needs it, the start of the message (``"acme_fast.dask"``).
    extra : str
        The package extra that installs it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs '{module.split('.')[0]}', which is not installed ({exc}); "
            f'install it with: pip install "acme_fast[{extra}]"'
        ) from None
