"""The one interface every framework implements: a batch in, gradients out.

A backend wraps one model. :mod:`acme_fast.attribution` validates the arguments, reads the
sequences batch by batch, puts each batch in the model's layout and hands it to
:meth:`Backend.attribute`; the scoring code only ever sees the numpy maps that come back, so
it never asks which framework runs. One module per framework implements it
(:mod:`._tensorflow`, :mod:`._torch`).
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np


class Backend(abc.ABC):
    """Gradients of one model, batch by batch.

    Attributes
    ----------
    framework : str
        ``"tensorflow"`` or ``"torch"``.
    model : object
        The wrapped model (or callable).
    model_layout : {"NLC", "NCL"}
        The layout the model takes: batches arrive in it, maps leave in it.
    pad_batches : bool
        Batches are padded with zero rows to one fixed size (a traced function per shape).
    host_float32 : bool
        Batches are cast to float32 on the host; otherwise they keep their dtype (uint8
        one-hot stays uint8) and the backend casts them on the device.
    """

    framework: str = ""
    pad_batches: bool = False
    host_float32: bool = True

    def __init__(self, model: Any, model_layout: str) -> None:
        self.model = model
        self.model_layout = model_layout

    @property
    def name(self) -> str:
        """A short name for progress bars (the Keras model name, or the class name)."""
        n = getattr(self.model, "name", None)
        if isinstance(n, str) and n:
            return n
        return type(self.model).__name__

    # The model's state (training mode, device) is set on entry and restored on exit.
    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    @abc.abstractmethod
    def attribute(self, method: str, xb: np.ndarray, output: Any, *, n_samples: int = 0, stddev: float = 0.0,
                  seed: Any = None, baseline: np.ndarray | None = None, steps: int = 0) -> np.ndarray:
        """Attribution maps of one batch.

        Parameters
        ----------
        method : {"saliency", "smoothgrad", "integrated_gradients"}
        xb : ndarray, shape (n, L, 4) or (n, 4, L) (the model's layout)
            Finite values (float32 when ``host_float32``, else any real dtype).
        output : None, int or callable
            What is differentiated (see :mod:`acme_fast.attribution`).
        n_samples, stddev, seed
            SmoothGrad: noisy copies, noise standard deviation, a seed: two int64 in [0, 2**62).
        baseline, steps
            Integrated gradients: the baseline batch in the model's layout (None: zeros) and
            the number of trapezoid intervals.

        Returns
        -------
        ndarray, float32, the shape of ``xb``
        """

    @abc.abstractmethod
    def predict(self, xb: np.ndarray) -> np.ndarray:
        """The model's outputs on one batch, flattened per example: shape (n, n_outputs), float64.

        Columns are numbered as ``output=i`` numbers them.
        """
