"""Score models end to end: attributions computed batch by batch and streamed into the metrics.

:func:`score_model` runs :func:`acme_fast.attribution.iter_attributions` (on a GPU in a
producer thread, one batch ahead: the model computes batch i+1 while the C++ kernels score
batch i; both release the GIL; on the CPU inline, since the model's thread pool has the cores)
and feeds each batch to :class:`~acme_fast.KmerAccumulator`,
:class:`~acme_fast.KattrAccumulator` and, with ``x_model``, the ground-truth scores. The whole
attribution array is never held in memory unless ``keep_attributions=True`` or a two-pass
metric needs it again: the two-pass k-attr metric (global threshold scope, preset "acme") keeps
the batches for its second pass, in memory up to ``SPOOL_IN_MEMORY_BYTES`` (1 GiB, and at most
a quarter of the memory available), else in a temporary ``.npy`` file. The results equal
(``==``) those of :func:`~acme_fast.kmer_kld`, :func:`~acme_fast.kattr_kld` and
:func:`~acme_fast.groundtruth_scores` on the materialised attributions.

Importing this module imports no framework; :func:`score_model` imports the model's own (TensorFlow or PyTorch).
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ._limits import available_memory
from ._validate import check_int, check_layout, check_preset, effective_threads
from .groundtruth import groundtruth_scores
from .io import open_in, open_source
from .kattr import KattrAccumulator
from .kmer import KmerAccumulator
from .stream import METRICS as _METRICS
from .stream import _Prefetch, check_metrics, score_row, split_metric_kwargs

__all__ = ["score_model", "score_models", "label_metrics", "auroc", "average_precision", "groundtruth_stream"]



# ------------------------------------------------------------------------------ label metrics
def _binary_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest first (sklearn's rule)."""
    order = np.argsort(s, kind="mergesort")[::-1]
    s = s[order]
    y = y[order]
    distinct = np.where(np.diff(s))[0]
    idx = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y, dtype=np.float64)[idx]
    fps = 1.0 + idx - tps
    return tps, fps


def auroc(y: Any, score: Any) -> float:
    """Area under the ROC curve, trapezoid rule over distinct scores (as ``sklearn.metrics.roc_auc_score``).

    NaN when ``y`` has only one class.
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    tps, fps = _binary_curve(y, s)
    if tps[-1] == 0 or fps[-1] == 0:
        return float("nan")
    tpr = np.r_[0.0, tps] / tps[-1]
    fpr = np.r_[0.0, fps] / fps[-1]
    return float(np.trapezoid(tpr, fpr) if hasattr(np, "trapezoid") else np.trapz(tpr, fpr))


def average_precision(y: Any, score: Any) -> float:
    """Area under the precision-recall curve as ``sklearn.metrics.average_precision_score``:
    ``sum_n (R_n - R_{n-1}) P_n`` over distinct scores. NaN without positives."""
    y = np.asarray(y, dtype=np.float64).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    tps, fps = _binary_curve(y, s)
    if tps[-1] == 0:
        return float("nan")
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _nanmean(v: Any) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(v)) if len(v) else float("nan")


def label_metrics(y: Any, pred: Any) -> dict[str, float]:
    """Model performance on labels ``y``: binary -> ``auroc``, ``aupr``; continuous -> ``pearson_r``.

    ``y`` and ``pred`` have shape (N,) or (N, T); with several tasks the metric is the mean over
    tasks (NaN tasks, with one class only, are skipped). Labels are binary when every value
    is 0 or 1.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim > 2:
        p = p.reshape(p.shape[0], -1)
    if y.shape != p.shape:
        raise ValueError(f"y: expected labels of the predictions' shape {p.shape}, got {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("y: expected finite labels")
    if np.isin(y, (0.0, 1.0)).all():
        return {"auroc": _nanmean([auroc(y[:, t], p[:, t]) for t in range(y.shape[1])]),
                "aupr": _nanmean([average_precision(y[:, t], p[:, t]) for t in range(y.shape[1])])}
    rs = []
    for t in range(y.shape[1]):
        a, b = y[:, t] - y[:, t].mean(), p[:, t] - p[:, t].mean()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        rs.append(float((a * b).sum() / den) if den > 0 else float("nan"))
    return {"pearson_r": _nanmean(rs)}


# ------------------------------------------------------------------------------ helpers
def _as_array(x: Any, layout: str, name: str, dataset: str | None = None) -> np.ndarray:
    """An in-memory array from an array or a file (one-hot sequences / x_model are small)."""
    if isinstance(x, (str, os.PathLike)):
        with open_source(x, dataset, layout, name=name) as src:
            return src.read(0, src.n_sequences)
    return np.asarray(x)


#: Pass-0 attributions of the two-pass metrics are kept in memory for pass 1 when they take at most
#: this many bytes and at most a quarter of the memory available; larger ones go to a temporary
#: ``.npy`` file. On the H200 machine a file spool of 2048 x 2048 attributions cost about 20 ms more
#: than memory (page-cache writes, unlink of dirty pages), as much as the metrics themselves.
SPOOL_IN_MEMORY_BYTES = 1 << 30


#: Values per call of the second pass over kept attributions: the model is done by then, so
#: the kernels get fewer, larger calls than the model's batches (each call has a cost per
#: thread: on the 16-core H200 machine pass 2 and the result took 16-17 ms after 32 batches of
#: 256 x 200 and 5-7 ms in chunks of this size; 12-16 and 9-10 ms for 16 batches of 128 x 2048).
PASS2_CHUNK_VALUES = 1 << 22


class _Spool:
    """Attribution batches kept for pass 1: in memory when small, else in a temporary .npy file."""

    def __init__(self, shape: tuple, dtype: np.dtype) -> None:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        avail = available_memory()
        self._dir: tempfile.TemporaryDirectory | None = None
        if nbytes <= SPOOL_IN_MEMORY_BYTES and (avail is None or 4 * nbytes <= avail):
            self.arr: np.ndarray | None = np.empty(shape, dtype=dtype)
            return
        self._dir = tempfile.TemporaryDirectory(prefix="acme_fast_spool_")
        self.arr = np.lib.format.open_memmap(Path(self._dir.name) / "attr.npy", mode="w+", dtype=dtype,
                                             shape=shape)

    @property
    def on_disk(self) -> bool:
        return self._dir is not None

    def close(self) -> None:
        if self.arr is not None:
            mm = getattr(self.arr, "_mmap", None)
            self.arr = None
            if mm is not None:
                mm.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def _batches_of(arr: np.ndarray, bs: int) -> Iterator[tuple[int, np.ndarray]]:
    for s in range(0, arr.shape[0], bs):
        yield s, np.ascontiguousarray(arr[s:s + bs])


# ------------------------------------------------------------------------------ score_model
def _on_accelerator(be: Any) -> bool:
    """True when the backend's model runs on a GPU (or another non-CPU device)."""
    if be.framework == "torch":
        return be.device.type != "cpu"
    if be.device:
        return "GPU" in str(be.device).upper()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


#: Kernel threads while a model runs on a GPU (at most the cores less one; see _default_threads).
GPU_KERNEL_THREADS = 4


def _default_threads(be: Any) -> int:
    """Kernel threads while a model runs: one when it runs on the CPU, a few on a GPU.

    On a CPU the model already uses every core; OpenMP threads of the kernels (which
    spin-wait between batches) would then slow the model down more than they gain, while one
    thread scores a batch in a small fraction of the model's time. On a GPU a producer thread
    feeds the model while the kernels score the previous batch. Measured on an H200 machine
    with 16 cores (PyTorch, ``benchmarks/RESULTS.md``): with all 16 cores the kernels' spinning
    threads starved that producer (``score_model``, paper preset, 1.73x / 2.07x the attribution
    time); with 4 threads it was 1.27x / 1.35x, and 4 threads scored faster than the GPU
    attributed. So ``GPU_KERNEL_THREADS``, never more than the cores less one. Results do not
    depend on the thread count.
    """
    if not _on_accelerator(be):
        return 1
    return max(1, min(GPU_KERNEL_THREADS, effective_threads(0) - 1))


def score_model(model: Any, x: Any, *, method: str = "saliency", metrics: Any = _METRICS, x_model: Any = None,
                y: Any = None, batch_size: int = 256, keep_attributions: bool = False, preset: str = "paper",
                layout: str | None = None, builder: Any = None, builder_kwargs: dict[str, Any] | None = None,
                attribute_on: Any = None, progress: bool = True, n_threads: int | None = None,
                model_layout: str | None = None, device: Any = None, dtype: Any = None, backend: Any = None,
                motifs: bool = False, method_kwargs: dict[str, Any] | None = None, gt_threshold: float = 0.1,
                gt_top_k: int = 10,
                **metric_kwargs: Any) -> dict[str, Any]:
    """Consistency (and optionally ground-truth and label) scores of one model, streamed.

    Parameters
    ----------
    model : keras.Model, torch.nn.Module, callable, str or path
        A model or a saved model (``.keras``, ``.h5``, SavedModel, TorchScript ``.pt``/``.pth``,
        ``torch.export`` ``.pt2``, a state dict with ``builder``); see
        :func:`acme_fast.attribution.load_model` (``builder`` rebuilds an architecture for
        weights-only files and state dicts).
    x : array_like or path, shape (N, L, 4) or (N, 4, L)
        One-hot sequences (held in memory; an array file or FASTA is read whole).
    method : {"saliency", "smoothgrad", "integrated_gradients"/"ig"}
        Attribution method of :func:`acme_fast.attribution.iter_attributions`.
    metrics : sequence of {"kmer", "kattr"}
        Consistency metrics (default both; may be empty when ``x_model`` or ``y`` is given).
    x_model : array_like or path, same shape as ``x``, optional
        Ground-truth base probabilities: adds ``gt_auroc``, ``gt_auprc``, ``gt_snr``
        (nan-means over the sequences of :func:`~acme_fast.groundtruth_scores`).
    y : array_like, shape (N,) or (N, T), optional
        Labels: adds ``auroc`` and ``aupr`` (binary 0/1 labels; sklearn's
        ``roc_auc_score`` / ``average_precision_score``) or ``pearson_r`` (continuous) of the
        model's predictions on ``x``. The predictions come from a separate forward pass
        (``model.predict``, same ``batch_size``) before the attributions; with
        ``method_kwargs={"output": i}`` column ``i`` is used.
    batch_size : int
        Sequences per attribution batch (the metrics see the same batches).
    keep_attributions : bool
        Also return the whole attribution array (``"attributions"``, float32, caller's layout).
    preset : {"paper", "acme"}
    layout : {"NLC", "NCL"}, optional
        Layout of ``x``, ``x_model`` and the attributions; default: the layout the model
        takes (``"NLC"`` for Keras models, ``"NCL"`` for PyTorch models).
    builder : callable or str, optional
        For weights-only files: a callable, ``"MODULE:FUNCTION"``, ``"path/to/file.py:FUNCTION"``
        or a package architecture (``"cnn_deep"``, ``"cnn_shallow"``, ``"base_cnn"``); see
        :func:`acme_fast.attribution.load_model`.
    builder_kwargs : dict, optional
        Keyword arguments of the builder (``{"activation": "exponential"}``).
    attribute_on : None, "all", "positives", index array or boolean mask, optional
        The sequences whose attributions are computed and scored (KLDs, ground truth), as in the
        paper (attributions of the positive test sequences); performance (``y``) always uses
        all of ``x``. ``"positives"`` needs binary ``y`` (the column ``method_kwargs["output"]``
        of a multi-task ``y``). Default: all.
    progress : bool
        tqdm progress bar over sequences (both passes when there are two).
    n_threads : int, optional
        Kernel threads while the model runs. Default: one when the model runs on the CPU (the
        model's own thread pool has the cores), ``GPU_KERNEL_THREADS`` (4, at most the cores less
        one) when it runs on a GPU (see ``benchmarks/RESULTS.md``); a second pass over stored
        attributions uses every core. Results do not depend on it.
    motifs : bool
        Also discover the motifs of the attributions (:class:`acme_fast.motifs.MotifAccumulator`,
        with the metrics' ``k``, ``window``, ``quantile``, ``preset``; a second pass over the
        spooled attributions) and add the diversity columns ``n_motifs``, ``motif_entropy``,
        ``motif_effective_number``; the :class:`~acme_fast.motifs.MotifResult` is returned
        under ``"motifs"``.
    model_layout, device, dtype, backend : optional
        As :func:`acme_fast.attribution.iter_attributions` (PyTorch: ``device=None`` picks
        CUDA when available, ``dtype=None`` follows the parameters; the model's mode and
        device are restored afterwards).
    method_kwargs : dict, optional
        Extra keyword arguments of the attribution method (``output``, ``n_samples``, ...).
    gt_threshold, gt_top_k :
        ``threshold`` and ``top_k`` of :func:`~acme_fast.groundtruth_scores`.
    **metric_kwargs
        Metric parameters, as in :func:`acme_fast.stream.score_stream` (``k``, ``quantile``,
        ``window``, ``kmer_quantile``, ...).

    Returns
    -------
    dict
        ``n_sequences``, ``length``, ``method``, ``n_attributed`` (sequences attributed, see
        ``attribute_on``), ``kmer_kld``, ``kmer_n_intervals``,
        ``kmer_n_nucleotides``, ``kattr_kld``, ``kattr_n_points`` (metrics asked for),
        ``gt_auroc``, ``gt_auprc``, ``gt_snr`` (with ``x_model``), ``auroc``, ``aupr`` or
        ``pearson_r`` (with ``y``), ``preset``, ``layout``, the resolved metric parameters
        (``kmer_k``, ``kattr_window``, ...), ``seconds`` and, with ``keep_attributions``,
        ``attributions``.
    """
    from . import attribution as af_attr  # imports no framework; the model's own is imported below

    t0 = time.perf_counter()
    ms = check_metrics(metrics, allow_empty=True)
    check_preset(preset)
    af_attr.check_model_path(model, builder, builder_kwargs)  # before a framework starts
    if layout is None:
        layout = af_attr.default_layout(model, backend, model_layout)
    ncl = check_layout(layout)
    batch_size = check_int("batch_size", batch_size, 1)
    if not ms and x_model is None and y is None and not motifs:
        raise ValueError("metrics: nothing to compute; ask for 'kmer'/'kattr' or pass x_model or y")
    kmer_kw, kattr_kw = split_metric_kwargs(metric_kwargs)
    method_kwargs = dict(method_kwargs or {})

    xa = _as_array(x, layout, "x")
    if xa.ndim != 3 or xa.shape[1 if ncl else 2] != 4:
        want = "(N, 4, L)" if ncl else "(N, L, 4)"
        raise ValueError(f"x: expected one-hot sequences of shape {want} (layout {layout.upper()}), "
                         f"got shape {xa.shape}")
    N = xa.shape[0]
    L = xa.shape[2] if ncl else xa.shape[1]
    xm = None
    if x_model is not None:
        xm = _as_array(x_model, layout, "x_model")
        if xm.shape != xa.shape:
            raise ValueError(f"x_model: expected the shape of x {xa.shape}, got {xm.shape}")
    threads_given = n_threads is not None
    common = {"preset": preset, "layout": layout, "n_threads": n_threads}
    kmer_acc = KmerAccumulator(**kmer_kw, **common) if "kmer" in ms else None
    kattr_kw.setdefault("two_pass", True)
    kattr_acc = KattrAccumulator(**kattr_kw, **common) if "kattr" in ms else None
    motif_acc = None
    if motifs:
        from .motifs import MotifAccumulator

        mkw = {key: kmer_kw[key] for key in ("k", "quantile", "buffer", "prior") if key in kmer_kw}
        mkw.update({key: kattr_kw[key] for key in ("window", "bin_width", "prior_bins") if key in kattr_kw})
        motif_acc = MotifAccumulator(**mkw, **common)
    if kmer_acc is not None and L < kmer_acc.k:
        raise ValueError(f"x: sequence length L={L} is shorter than k={kmer_acc.k}; expected L >= k")
    if kattr_acc is not None and L < kattr_acc.params.window:
        raise ValueError(f"x: sequence length L={L} is shorter than window={kattr_acc.params.window}")
    yl = None
    if y is not None:
        yl = np.asarray(y)
        if yl.ndim == 0 or yl.shape[0] != N:
            raise ValueError(f"y: expected {N} labels (one per sequence), got shape {yl.shape}")
    sel = attribution_rows(attribute_on, N, yl, method_kwargs.get("output"))

    be = af_attr.get_backend(model, backend=backend, device=device, dtype=dtype, model_layout=model_layout,
                             builder=builder, builder_kwargs=builder_kwargs)
    if n_threads is None:
        n_threads = _default_threads(be)
        if kmer_acc is not None:
            kmer_acc.n_threads = n_threads
        if kattr_acc is not None:
            kattr_acc.n_threads = n_threads
        if motif_acc is not None:
            motif_acc.n_threads = n_threads
    rec: dict[str, Any] = {"n_sequences": int(N), "length": int(L), "method": method, "framework": be.framework}

    if yl is not None:  # separate forward pass: iter_attributions yields attributions only
        pred = af_attr.predict(be, xa, batch_size=batch_size, layout=layout)
        out = method_kwargs.get("output")
        if out is not None:
            if out >= pred.shape[1]:
                raise ValueError(f"output: expected an output column in 0..{pred.shape[1] - 1}, got {out}")
            pred = pred[:, out]
        elif yl.ndim == 1 and pred.shape[1] == 1:
            pred = pred[:, 0]
        rec.update(label_metrics(yl, pred))
    if sel is not None:  # the attributions (and everything scored on them) use these rows only
        xa = np.ascontiguousarray(xa[sel])
        if xm is not None:
            xm = np.ascontiguousarray(xm[sel])
        N = xa.shape[0]
    rec["n_attributed"] = int(N)

    kattr_two = kattr_acc is not None and kattr_acc.n_passes == 2
    n_passes = 2 if (kattr_two or motif_acc is not None) else 1
    need_attr = bool(ms) or xm is not None or keep_attributions or motif_acc is not None
    kept = spool = None
    if keep_attributions:
        kept = np.empty(xa.shape, dtype=np.float32)
    gt_parts: dict[str, list[np.ndarray]] = {"auroc": [], "auprc": [], "snr": []}
    try:
        if need_attr:
            with tqdm(total=N * n_passes, desc=be.name, unit="seq",
                      disable=not progress,
                      leave=False, dynamic_ncols=True) as bar:
                gen = af_attr.iter_attributions(be, xa, method=method, batch_size=batch_size, layout=layout,
                                                **method_kwargs)
                # On an accelerator the model computes batch i+1 in a producer thread while the
                # kernels score batch i. On the CPU the model's own thread pool has every core:
                # a producer thread beside it oversubscribes them (PyTorch's pool measured 1.29x
                # the attribution time that way against 1.07x inline), so batches are scored inline.
                producer = _Prefetch(gen, depth=2) if _on_accelerator(be) else None
                try:
                    for start, ab in (producer if producer is not None else gen):
                        ab = np.asarray(ab)
                        n = ab.shape[0]
                        if kept is not None:
                            kept[start:start + n] = ab
                        elif n_passes == 2:
                            if spool is None:
                                spool = _Spool(xa.shape, ab.dtype)
                            spool.arr[start:start + n] = ab
                        xb = xa[start:start + n]
                        if kmer_acc is not None:
                            kmer_acc.update(xb, ab)
                        if kattr_acc is not None:
                            kattr_acc.update(ab)
                        if motif_acc is not None:
                            motif_acc.update(xb, ab)
                        if xm is not None:
                            g = groundtruth_scores(xb, ab, xm[start:start + n], threshold=gt_threshold,
                                                   top_k=gt_top_k, layout=layout, n_threads=n_threads)
                            for k in gt_parts:
                                gt_parts[k].append(getattr(g, k))
                        bar.update(n)
                finally:
                    if producer is not None:
                        producer.close()
                    gen.close()  # the model's state (mode, device) is restored now, not at collection
                if n_passes == 2:
                    for acc in (kattr_acc if kattr_two else None, motif_acc):
                        if acc is not None:
                            acc.next_pass()
                            if not threads_given:  # the model is done: the second pass may use every core
                                acc.n_threads = None
                    bar.set_description(f"{be.name} (pass 2/2)")
                    src = kept if kept is not None else spool.arr
                    per_seq = max(1, int(np.prod(src.shape[1:])))
                    chunk = max(batch_size, -(-PASS2_CHUNK_VALUES // per_seq))
                    for s0, ab in _batches_of(src, chunk):
                        if kattr_two:
                            kattr_acc.update(ab)
                        if motif_acc is not None:
                            motif_acc.update(xa[s0:s0 + ab.shape[0]], ab)
                        bar.update(ab.shape[0])
    finally:
        if spool is not None:
            spool.close()

    results: dict[str, Any] = {}
    if kmer_acc is not None:
        results["kmer"] = kmer_acc.result()
    if kattr_acc is not None:
        results["kattr"] = kattr_acc.result()
    row = score_row("", xa.shape, results, preset=preset, layout=layout, **metric_kwargs)
    for k in ("model", "attr", "n_sequences", "length"):
        row.pop(k)
    scores = {k: v for k, v in row.items() if k.endswith(("_kld", "_n_intervals", "_n_nucleotides", "_n_points"))}
    params = {k: v for k, v in row.items() if k not in scores}
    rec.update(scores)
    if xm is not None:
        rec.update(gt_auroc=_nanmean(np.concatenate(gt_parts["auroc"])),
                   gt_auprc=_nanmean(np.concatenate(gt_parts["auprc"])),
                   gt_snr=_nanmean(np.concatenate(gt_parts["snr"])))
    rec.update(params)
    if motif_acc is not None:
        from .motifs import diversity

        mres = motif_acc.result()
        rec.update(diversity(mres))
        rec["motifs"] = mres
    rec["seconds"] = time.perf_counter() - t0
    if keep_attributions:
        rec["attributions"] = kept
    return rec


def model_name(spec: str | os.PathLike) -> tuple[str, str]:
    """``(name, path)`` of ``"NAME=PATH"`` or of a path (named by its file name without the model
    suffixes: ``runs/cnn_deep_relu_3.h5`` -> ``cnn_deep_relu_3``)."""
    text = os.fspath(spec)
    if "=" in text and not Path(text).exists():
        name, _, path = text.partition("=")
        if name and path:
            return name, path
    name = Path(text).name
    for suffix in (".weights.h5", ".keras", ".hdf5", ".h5", ".pt2", ".pth", ".pt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name or text, text


def attribution_rows(attribute_on: Any, n: int, y: np.ndarray | None, output: Any = None) -> np.ndarray | None:
    """Row indices of the sequences to attribute (None: all of them); see :func:`score_model`."""
    if attribute_on is None or (isinstance(attribute_on, str) and attribute_on == "all"):
        return None
    if isinstance(attribute_on, str):
        if attribute_on != "positives":
            raise ValueError(f"attribute_on: expected 'all', 'positives', an index array or a boolean mask, got "
                             f"{attribute_on!r}")
        if y is None:
            raise ValueError("attribute_on: 'positives' needs the labels y (--labels)")
        lab = y
        if lab.ndim == 2:
            if lab.shape[1] == 1:
                lab = lab[:, 0]
            elif output is None:
                raise ValueError(f"attribute_on: 'positives' with {lab.shape[1]} label columns needs the output index "
                                 "(method_kwargs={'output': i}, --output-index)")
            else:
                lab = lab[:, output]
        if lab.ndim != 1 or not np.isin(lab, (0, 1)).all():
            raise ValueError("attribute_on: 'positives' needs binary 0/1 labels; pass an index array or mask instead")
        rows = np.flatnonzero(lab == 1)
    else:
        arr = np.asarray(attribute_on)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise ValueError(f"attribute_on: a boolean mask must have shape ({n},), got {arr.shape}")
            rows = np.flatnonzero(arr)
        elif arr.dtype.kind in "iu" and arr.ndim == 1:
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise ValueError(f"attribute_on: indices must be in 0..{n - 1}, got {arr.min()}..{arr.max()}")
            rows = np.unique(arr)
        else:
            raise TypeError(f"attribute_on: expected 'all', 'positives', a 1-D integer index array or a boolean "
                            f"mask, got {arr.dtype} array of shape {arr.shape}")
    if rows.size == 0:
        raise ValueError("attribute_on: selects no sequence")
    return rows


def score_models(models: Any, x: Any, *, builder: Any = None, progress: bool = True, **kwargs: Any):
    """:func:`score_model` for several models: a DataFrame, one row per model.

    Parameters
    ----------
    models : mapping name -> model or path, or a sequence of paths (named by file stem, or
        ``"NAME=PATH"``)
    x : array_like or path
        One-hot sequences, shared by all models (read once).
    builder, progress, **kwargs
        As :func:`score_model` (``progress`` also shows a bar over the models).

    Returns
    -------
    pandas.DataFrame
        Columns ``model`` and the keys of :func:`score_model`'s records (without
        ``attributions``, which a table cannot hold: use :func:`score_model` for those).
    """
    import pandas as pd

    if isinstance(models, Mapping):
        items = list(models.items())
    elif isinstance(models, (str, os.PathLike)):
        items = [model_name(models)]
    else:
        items = []
        for mdl in models:
            if not isinstance(mdl, (str, os.PathLike)):
                raise TypeError("models: a list must hold paths; pass a dict name -> model for model objects")
            items.append(model_name(mdl))
        names = [n for n, _ in items]
        if len(set(names)) != len(names):
            raise ValueError(f"models: file stems are not unique ({names}); pass a dict name -> path")
    if not items:
        raise ValueError("models: expected at least one model")
    kwargs.pop("keep_attributions", None)
    layout = kwargs.get("layout", "NLC")
    xa = _as_array(x, layout, "x")
    if kwargs.get("x_model") is not None:
        kwargs["x_model"] = _as_array(kwargs["x_model"], layout, "x_model")
    rows = []
    for name, mdl in tqdm(items, desc="models", unit="model", disable=not progress, leave=False):
        rec = score_model(mdl, xa, builder=builder, progress=progress, **kwargs)
        rec.pop("motifs", None)  # a table holds the diversity columns, not the motifs
        rows.append({"model": str(name), **rec})
    return pd.DataFrame(rows)


def groundtruth_stream(attr: Any, x: Any, x_model: Any, *, batch_size: int | None = None, layout: str = "NLC",
                       dataset: str | None = None, x_dataset: str | None = None, x_model_dataset: str | None = None,
                       threshold: float = 0.1, top_k: int = 10, n_threads: int | None = None,
                       progress: bool = False, allow_missing_chunks: bool = False) -> dict[str, float]:
    """Ground-truth means (``gt_auroc``, ``gt_auprc``, ``gt_snr``) of attributions streamed from files.

    Equal to the means of :func:`~acme_fast.groundtruth_scores` on the whole arrays.
    """
    from .io import check_pair, default_batch_size
    from .stream import _in_file

    with ExitStack() as stack:
        def _open(src: Any, ds: str | None, name: str) -> Any:
            return open_in(stack, src, ds, layout, name, allow_missing_chunks=allow_missing_chunks)

        a_src = _open(attr, dataset, "attr")
        x_src = _open(x, x_dataset, "seqs")
        m_src = _open(x_model, x_model_dataset, "ground truth")
        check_pair(x_src, a_src)
        check_pair(x_src, m_src)
        names = {"x": x_src.label, "attr": a_src.label, "x_model": m_src.label}
        bs = batch_size or default_batch_size(a_src, x_src, m_src)
        parts: dict[str, list[np.ndarray]] = {"auroc": [], "auprc": [], "snr": []}
        N = a_src.n_sequences
        with tqdm(total=N, desc="ground truth", unit="seq", disable=not progress, leave=False) as bar:
            for s in range(0, N, bs):
                e = min(N, s + bs)
                try:
                    g = groundtruth_scores(x_src.read(s, e), a_src.read(s, e), m_src.read(s, e),
                                           threshold=threshold, top_k=top_k, layout=layout, n_threads=n_threads)
                except ValueError as exc:  # batch-local sequence indices -> indices in the files
                    raise ValueError(_in_file(exc, s, names)) from None
                for k in parts:
                    parts[k].append(getattr(g, k))
                bar.update(e - s)
    return {"gt_auroc": _nanmean(np.concatenate(parts["auroc"])),
            "gt_auprc": _nanmean(np.concatenate(parts["auprc"])),
            "gt_snr": _nanmean(np.concatenate(parts["snr"]))}
