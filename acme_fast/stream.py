"""Score attribution sets larger than memory: stream batches from files into the accumulators.

:func:`score_stream` opens the inputs (:mod:`acme_fast.io`), checks them all before reading
any data, then feeds one batch at a time to :class:`~acme_fast.KmerAccumulator` and
:class:`~acme_fast.KattrAccumulator`. The results are exactly (``==``) those of
:func:`~acme_fast.kmer_kld` and :func:`~acme_fast.kattr_kld` on the whole arrays. With the
global threshold scope (preset "acme") the k-attr-mean metric reads the attributions twice
(bounded memory); the k-mer metric always reads them once.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ._results import KattrResult, KmerResult
from ._validate import check_int, check_preset
from .io import ArraySource, check_attr_dtype, check_onehot_dtype, check_pair, default_batch_size, open_in
from .kattr import KattrAccumulator
from .kmer import KmerAccumulator

__all__ = ["score_stream", "stream_threads", "score_row", "split_metric_kwargs", "ROW_KEYS", "METRICS"]

METRICS = ("kmer", "kattr")

#: Keyword arguments of each metric (besides preset, layout, n_threads).
KMER_KWARGS = ("k", "quantile", "buffer", "prior", "pseudocount")
KATTR_KWARGS = ("window", "quantile", "threshold_scope", "bin_width", "prior_bins", "weight", "two_pass")

#: Columns of a result table row (:func:`score_row`), in order.
ROW_KEYS = (
    "model", "attr", "n_sequences", "length", "kmer_kld", "kmer_n_intervals", "kmer_n_nucleotides", "kattr_kld",
    "kattr_n_points", "preset", "layout", "kmer_k", "kmer_quantile", "kmer_buffer", "kmer_pseudocount",
    "kmer_prior", "kattr_window", "kattr_quantile", "kattr_threshold_scope", "kattr_bin_width",
    "kattr_prior_bins", "kattr_weight",
)


def check_metrics(metrics: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    """The metric names asked for, validated, in a fixed order without duplicates."""
    if metrics is None and allow_empty:
        return ()
    if isinstance(metrics, str):
        metrics = (metrics,)
    try:
        ms = tuple(metrics)
    except TypeError:
        raise TypeError(f"metrics: expected a sequence of names from {METRICS}, got {metrics!r}") from None
    bad = [m for m in ms if m not in METRICS]
    if bad or (not ms and not allow_empty):
        raise ValueError(f"metrics: expected one or more of {METRICS}, got {metrics!r}")
    return tuple(m for m in METRICS if m in ms)


def split_metric_kwargs(metric_kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Route keyword arguments to the k-mer and k-attr metrics.

    A plain name goes to every metric that takes it (``quantile`` to both); a prefixed name
    (``kmer_quantile``, ``kattr_quantile``) to that metric only, and wins over the plain one.
    """
    kmer: dict[str, Any] = {}
    kattr: dict[str, Any] = {}
    prefixed: list[tuple[dict[str, Any], str, Any]] = []
    for key, val in metric_kwargs.items():
        if key.startswith("kmer_") and key[5:] in KMER_KWARGS:
            prefixed.append((kmer, key[5:], val))
        elif key.startswith("kattr_") and key[6:] in KATTR_KWARGS:
            prefixed.append((kattr, key[6:], val))
        elif key in KMER_KWARGS or key in KATTR_KWARGS:
            if key in KMER_KWARGS:
                kmer[key] = val
            if key in KATTR_KWARGS:
                kattr[key] = val
        else:
            names = sorted(set(KMER_KWARGS) | set(KATTR_KWARGS))
            raise TypeError(f"unexpected keyword argument {key!r}; expected one of {names} "
                            "(or one prefixed with 'kmer_' / 'kattr_')")
    for d, key, val in prefixed:
        d[key] = val
    return kmer, kattr


_SEQ_RE = re.compile(r"\b(sequence |index \()(\d+)")


def _in_file(exc: Exception, start: int, names: dict[str, str]) -> str:
    """Rewrite a batch error: global sequence index ("sequence 22", "index (22, 3, 1)"), and the
    file instead of 'x:'/'attr:'."""
    msg = _SEQ_RE.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + start}", str(exc))
    for short, label in names.items():
        if msg.startswith(short + ": ") and label != short:
            return f"{label}: {msg[len(short) + 2:]}"
    return msg


def stream_threads(n_threads: int | None = None) -> int | None:
    """Kernel threads of :func:`score_stream`: ``n_threads``, or by default all cores but one.

    The read-ahead thread (page faults, decompression, memcpy) needs a core of its own to
    overlap the reading with the kernels: on 2 cores, 1 kernel thread streams a cold 2 GiB file
    at 0.97-1.4x the time of the bare read, 2 kernel threads at 1.2-1.6x
    (``benchmarks/RESULTS.md``).
    """
    if n_threads is not None:
        return n_threads
    from . import max_threads

    return max(1, max_threads() - 1)


class _Worker:
    """A daemon thread that runs jobs one after another, for :class:`_Prefetch`."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="acme_fast-prefetch")
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # a job hands its own exceptions to its consumer
                pass
            job = None  # an idle worker holds nothing of the last job (its iterator, files, model)

    def submit(self, job: Any) -> None:
        self._jobs.put(job)

    def stop(self) -> None:
        self._jobs.put(None)


# Idle workers, kept for the next _Prefetch. PyTorch sets up per-thread GPU library state on a
# thread's first model call: on the H200 the paper-like CNN's first forward took 8-11 ms in a
# fresh thread against 1.5 ms in one that had run it before, so a new thread per score_model
# call delayed its first batch by about 10 ms (benchmarks/RESULTS.md). Concurrent prefetches
# take different workers; at most _MAX_IDLE wait between them.
_MAX_IDLE = 2
_idle: list[_Worker] = []
_idle_lock = threading.Lock()


def _take_worker() -> _Worker:
    with _idle_lock:
        if _idle:
            return _idle.pop()
    return _Worker()


def _return_worker(w: _Worker) -> None:
    with _idle_lock:
        if len(_idle) < _MAX_IDLE:
            _idle.append(w)
            return
    w.stop()


def _forget_workers_after_fork() -> None:
    # A forked child has none of the parent's threads: the idle list would hand it workers
    # that never run their jobs.
    global _idle_lock
    _idle.clear()
    _idle_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers_after_fork)


class _Prefetch:
    """Runs an iterator in a background thread, one item ahead, so that reading batch i+1
    from disk (or the model computing it on a GPU) overlaps the kernels on batch i (they
    release the GIL). Exceptions are re-raised in the consumer; :meth:`close` stops the reader
    before files are closed. The thread is a pooled :class:`_Worker`, reused by the next
    prefetch once this one's iterator has finished.

    The hand-over uses ``queue.SimpleQueue`` (items, free slots for backpressure, and the
    job's end), whose get/put are C calls that hold no Python-level lock. With ``queue.Queue``
    a Ctrl-C landing in the consumer's ``get`` between acquiring the queue's mutex and the
    ``with`` block could leave the mutex locked, and ``close`` then waited on it forever (seen
    once in about 40 interrupted streams)."""

    _DONE = object()

    def __init__(self, it: Iterator[Any], depth: int = 1) -> None:
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._slots: queue.SimpleQueue = queue.SimpleQueue()
        self._ended: queue.SimpleQueue = queue.SimpleQueue()  # one token when the job has ended
        self._finished = False
        for _ in range(depth):
            self._slots.put(None)
        self._stopped = False  # a plain flag: threading.Event.set takes a Python-level lock
        worker = _take_worker()
        worker.submit(lambda: self._job(worker, it))

    def _job(self, worker: _Worker, it: Iterator[Any]) -> None:
        try:
            self._run(it)
        finally:
            self._ended.put(None)
            _return_worker(worker)

    def _take_slot(self) -> bool:
        while not self._stopped:
            try:
                self._slots.get(timeout=0.1)
                return True
            except queue.Empty:
                continue
        return False

    def _run(self, it: Iterator[Any]) -> None:
        try:
            for item in it:
                if not self._take_slot():
                    return
                self._items.put(item)
            self._items.put(self._DONE)
        except BaseException as exc:  # handed to the consumer
            self._items.put(exc)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._items.get()
            self._slots.put(None)
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stopped = True
        self._slots.put(None)  # wakes a reader waiting for a slot
        while not self._finished:  # the job has returned (its worker may take another)
            try:
                self._ended.get(timeout=0.05)
                self._finished = True
            except queue.Empty:
                continue
        while True:  # drop what was read ahead
            try:
                self._items.get_nowait()
            except queue.Empty:
                break


def _batches(a_src: ArraySource, x_src: ArraySource | None, bs: int) -> Iterator[tuple]:
    """(start, attr batch, x batch or None) for consecutive batches."""
    start = 0
    for ab in a_src.iter_batches(bs):
        n = ab.shape[0]
        yield start, ab, (x_src.read(start, start + n) if x_src is not None else None)
        start += n


def score_stream(attr: Any, x: Any = None, *, metrics: Any = METRICS, preset: str = "paper",
                 batch_size: int | None = None, progress: bool = True, dataset: str | None = None,
                 x_dataset: str | None = None, layout: str = "NLC", n_threads: int | None = None,
                 allow_missing_chunks: bool = False, class_index: int | None = None, projected: bool = False,
                 **metric_kwargs: Any) -> dict[str, KmerResult | KattrResult]:
    """Consistency metrics of an attribution set streamed from disk, one batch at a time.

    Peak memory is about one batch (``batch_size`` sequences of ``attr`` and ``x``), not the
    file: batches are never concatenated. The results equal (``==``) those of
    :func:`~acme_fast.kmer_kld` / :func:`~acme_fast.kattr_kld` on the whole arrays.

    Parameters
    ----------
    attr : str, path, ndarray or ArraySource, shape (N, L, 4) or (N, 4, L)
        Raw attribution maps, float32 or float64: a ``.npy``, ``.npz``, ``.h5``/``.hdf5``
        file, a ``.zarr`` store, or an array (see :class:`acme_fast.io.ArraySource`).
    x : str, path, ndarray or ArraySource, same shape, optional
        One-hot sequences (also a FASTA file); needed for the k-mer KLD.
    metrics : sequence of {"kmer", "kattr"}
        Which metrics to compute (default both).
    preset : {"paper", "acme"}
    batch_size : int, optional
        Sequences per batch; default: about 64 MiB of ``attr`` and ``x`` together.
    progress : bool
        Show a progress bar (tqdm); with two passes it counts both.
    dataset, x_dataset : str, optional
        Dataset / member / Zarr array of ``attr`` and ``x`` in their files (default: the only
        3-D one).
    layout : {"NLC", "NCL"}
        Layout of both inputs.
    n_threads : int, optional
        Kernel threads (default: all cores but one, which the read-ahead thread gets; see
        :func:`stream_threads`); results do not depend on it.
    allow_missing_chunks : bool
        Zarr stores: read missing chunks as the fill value instead of refusing the store.
    class_index : int, optional
        For attributions with a class axis, (N, C, L, 4) or (N, C, 4, L) (CREsted ``*_contrib.npz``):
        the class to score.
    projected : bool
        Multiply the attributions by the one-hot sequences first (hypothetical scores, such as
        chromBPNet's ``shap/seq``, projected on the observed bases); needs ``x``. Off by default:
        the metrics are defined on gradient-like maps (saliency, hypothetical scores), and a
        projected map keeps one non-zero channel per position, whose gauge-corrected direction is
        fixed by the base, so its k-attr-mean KLD measures sequence composition as much as the
        attributions.
    **metric_kwargs
        Parameters of the metrics: ``k``, ``buffer``, ``prior``, ``pseudocount`` (k-mer),
        ``window``, ``threshold_scope``, ``bin_width``, ``prior_bins``, ``weight``,
        ``two_pass`` (k-attr; default True: with the global threshold scope, two passes over
        ``attr`` in bounded memory instead of 12 bytes per position),
        ``quantile`` (both). Prefix with ``kmer_`` / ``kattr_`` to set one metric only
        (``kmer_quantile=0.95``).

    Returns
    -------
    dict
        ``{"kmer": KmerResult, "kattr": KattrResult}``, the metrics asked for.

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        Before any data is read: missing or bad files, wrong shapes, mismatched ``x`` and
        ``attr``, bad parameters. While streaming: values that are not one-hot or not finite
        (the message names the file and the sequence's index in it).

    Examples
    --------
    >>> res = score_stream("attr.h5", "seqs.npy", dataset="saliency", layout="NCL")  # doctest: +SKIP
    >>> res["kmer"].kld, res["kattr"].kld                                             # doctest: +SKIP
    """
    ms = check_metrics(metrics)
    check_preset(preset)
    if "kmer" in ms and x is None:
        raise ValueError("x: the k-mer KLD needs the one-hot sequences; pass x (--seqs) or metrics=('kattr',)")
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)
    kmer_kw, kattr_kw = split_metric_kwargs(metric_kwargs)

    with ExitStack() as stack:
        def _open(src: Any, ds: str | None, name: str, **kw: Any) -> ArraySource:
            return open_in(stack, src, ds, layout, name, allow_missing_chunks=allow_missing_chunks, **kw)

        a_src = _open(attr, dataset, "attr", class_index=class_index)
        check_attr_dtype(a_src)
        x_src = None
        if projected and x is None:
            raise ValueError("projected: multiplying by the one-hot sequences needs x (--seqs)")
        if "kmer" in ms or projected:
            x_src = _open(x, x_dataset, "x")
            check_onehot_dtype(x_src)
            check_pair(x_src, a_src)

        common = {"preset": preset, "layout": layout, "n_threads": stream_threads(n_threads)}
        kmer_acc = KmerAccumulator(**kmer_kw, **common) if "kmer" in ms else None
        kattr_kw.setdefault("two_pass", True)  # bounded memory with the global threshold scope
        kattr_acc = KattrAccumulator(**kattr_kw, **common) if "kattr" in ms else None
        L = a_src.length
        if kmer_acc is not None and L < kmer_acc.k:
            raise ValueError(f"{a_src.label}: sequence length L={L} is shorter than k={kmer_acc.k}; expected L >= k")
        if kattr_acc is not None and L < kattr_acc.params.window:
            raise ValueError(f"{a_src.label}: sequence length L={L} is shorter than window="
                             f"{kattr_acc.params.window}; expected L >= window")

        bs = batch_size or default_batch_size(a_src, x_src)
        n_passes = kattr_acc.n_passes if kattr_acc is not None else 1
        N = a_src.n_sequences
        names = {"attr": a_src.label, "x": x_src.label if x_src is not None else "x"}
        desc = a_src.path.name if a_src.path is not None else "attr"
        with tqdm(total=N * n_passes, desc=desc, unit="seq", disable=not progress, leave=False,
                  dynamic_ncols=True) as bar:
            for p in range(n_passes):
                if p > 0:
                    kattr_acc.next_pass()
                if n_passes > 1:
                    bar.set_description(f"{desc} (pass {p + 1}/{n_passes})")
                feed_kmer = kmer_acc is not None and p == 0
                feed_kattr = kattr_acc is not None
                reader = _Prefetch(_batches(a_src, x_src if (feed_kmer or projected) else None, bs))
                try:
                    for start, ab, xb in reader:
                        n = ab.shape[0]
                        if projected:  # hypothetical scores on the observed bases (float16 widened first)
                            ab = np.multiply(ab, xb, dtype=np.float64 if ab.dtype == np.float64 else np.float32)
                        try:
                            if feed_kmer:
                                kmer_acc.update(xb, ab)
                            if feed_kattr:
                                kattr_acc.update(ab)
                        except ValueError as exc:
                            raise ValueError(_in_file(exc, start, names)) from None
                        del ab, xb
                        bar.update(n)
                finally:
                    reader.close()
        out: dict[str, KmerResult | KattrResult] = {}
        if kmer_acc is not None:
            out["kmer"] = kmer_acc.result()
        if kattr_acc is not None:
            out["kattr"] = kattr_acc.result()
        return out


def score_row(attr: Any, shape: tuple, results: dict[str, Any], *, preset: str = "paper",
              layout: str = "NLC", model: str | None = None, **metric_kwargs: Any) -> dict[str, Any]:
    """One table row for the results of :func:`score_stream` (the row of ``acme_fast.dask.score_files``).

    Parameters
    ----------
    attr : str or path
        The attribution file, as given.
    shape : tuple of int
        Shape of the attributions, ``(N, L, 4)`` or ``(N, 4, L)`` per ``layout``.
    results : dict
        ``{"kmer": KmerResult, "kattr": KattrResult}``, either or both.
    preset, layout, **metric_kwargs
        As passed to :func:`score_stream`.

    Returns
    -------
    dict
        Keys in the order of :data:`ROW_KEYS`: ``model`` (``model``, or the file name without
        its suffix), ``attr``, ``n_sequences``, ``length``, the
        scores of the metrics in ``results`` (``kmer_kld``, ``kmer_n_intervals``,
        ``kmer_n_nucleotides``, ``kattr_kld``, ``kattr_n_points``), ``preset``, ``layout`` and
        the resolved parameters of those metrics, prefixed (``kmer_k``, ``kattr_window``, ...).
    """
    kmer_kw, kattr_kw = split_metric_kwargs(metric_kwargs)
    kattr_kw.pop("two_pass", None)
    L = shape[2] if layout.upper() == "NCL" else shape[1]
    if model is None:
        from .scoring import model_name

        model = model_name(str(attr))[0] if str(attr) else ""
    row: dict[str, Any] = {"model": str(model), "attr": str(attr), "n_sequences": int(shape[0]), "length": int(L)}
    params: dict[str, Any] = {}
    common = {"preset": preset, "layout": layout}
    if "kmer" in results:
        km = results["kmer"]
        row.update(kmer_kld=float(km.kld), kmer_n_intervals=int(km.n_intervals),
                   kmer_n_nucleotides=int(km.n_nucleotides))
        acc = KmerAccumulator(**kmer_kw, **common)
        params.update(kmer_k=acc.k, kmer_quantile=acc.quantile, kmer_buffer=acc.buffer,
                      kmer_pseudocount=acc.pseudocount, kmer_prior="x" if acc.prior is None else "user")
    if "kattr" in results:
        ka = results["kattr"]
        row.update(kattr_kld=float(ka.kld), kattr_n_points=int(ka.n_points))
        p = KattrAccumulator(**kattr_kw, **common).params
        params.update(kattr_window=p.window, kattr_quantile=p.quantile, kattr_threshold_scope=p.threshold_scope,
                      kattr_bin_width=p.bin_width, kattr_prior_bins=p.prior_bins, kattr_weight=p.weight)
    row.update(preset=preset, layout=layout.upper(), **params)
    return row
