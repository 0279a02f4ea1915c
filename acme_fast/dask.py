"""Distributed scoring with Dask: one accumulator per block (map), exact merges (tree reduce).

:func:`score_array` scores ``dask.array`` inputs, :func:`score_files` a list of attribution
files whose slices the tasks read themselves (nothing but accumulators passes through the
scheduler). Both run on any scheduler: a ``dask.distributed`` client (a laptop's
``LocalCluster`` or a SLURM cluster through ``dask-jobqueue``), or Dask's default (threads).

The accumulators merge exactly (integer and fixed-point state), so the results equal, bit for
bit, the single-process :func:`acme_fast.kmer_kld` and :func:`acme_fast.kattr_kld` for any
chunking, number of workers or reduction tree. With the global threshold scope (preset
``"acme"``, or ``threshold_scope="global"``) the k-attr-mean accumulator runs in two passes
with bounded memory: pass 0 finds the cutoff plan, which is broadcast to the workers, and
pass 1 reads the data again.

Dask is an optional dependency (``pip install "acme_fast[dask]"``); it is imported when a
function here is called, so ``import acme_fast`` and ``import acme_fast.dask`` never need it.
See ``docs/cluster.md`` for running on a cluster.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ._deps import need
from ._validate import check_int, check_layout, check_preset
from .kattr import KattrAccumulator
from .kmer import KmerAccumulator
from .stream import check_metrics, score_row, split_metric_kwargs

__all__ = ["score_array", "score_files"]

_METRICS = ("kmer", "kattr")
_ACCUMULATORS = {"kmer": KmerAccumulator, "kattr": KattrAccumulator}


# ----------------------------------------------------------------------------- imports


def _import_dask() -> Any:
    need("dask.array", "acme_fast.dask", "dask")
    return need("dask", "acme_fast.dask", "dask")


def _import_distributed() -> Any:
    _import_dask()
    return need("distributed", "connecting to a scheduler", "dask")


# ----------------------------------------------------------------------------- parameters


def _metric_kwargs(metrics: tuple, preset: str, layout: str, n_threads: int | None,
                   kwargs: dict) -> dict:
    """Keyword arguments of each requested metric's accumulator (routed as in
    :func:`acme_fast.stream.split_metric_kwargs`), validated here, on the client, by building
    each accumulator once."""
    check_preset(preset)
    check_layout(layout)
    if n_threads is not None:
        check_int("n_threads", n_threads, 1)
    routed = dict(zip(_METRICS, split_metric_kwargs(kwargs)))
    specs = {}
    for m in metrics:
        kw = {**routed[m], "preset": preset, "layout": layout, "n_threads": n_threads}
        if m == "kattr":
            kw.setdefault("two_pass", True)  # bounded memory with the global threshold scope
        _ACCUMULATORS[m](**kw)  # raises the metric's own errors for bad parameters
        specs[m] = kw
    return specs


def _check_length(L: int, specs: dict, label: str) -> None:
    """Sequences must be at least k (and window) long: say so before any task runs."""
    need = {}
    if "kmer" in specs:
        need["k"] = KmerAccumulator(**specs["kmer"]).k
    if "kattr" in specs:
        need["window"] = KattrAccumulator(**specs["kattr"]).params.window
    for key, n in need.items():
        if L < n:
            raise ValueError(f"{label}: sequence length L={L} is shorter than {key}={n}; expected L >= {key}")


# ----------------------------------------------------------------------------- tasks (run on workers)


def _start(name: str, start: Any) -> Any:
    """A fresh accumulator: from keyword arguments (pass 0) or from a pass plan (later passes)."""
    if isinstance(start, dict):
        return _ACCUMULATORS[name](**start)
    return start.empty_like()


_SEQ_RE = re.compile(r"\bsequence (\d+)")


def _arrays(x: Any, attr: Any, start: int) -> tuple:
    return x, attr, start, {}


def _score_block(load: Callable, args: tuple, names: tuple, *starts: Any) -> dict:
    """Map task: load one block, feed it to one new accumulator per metric.

    A data error names the sequence's index in the whole array (not in the block) and the file."""
    x, attr, offset, labels = load(*args)
    accs = {}
    try:
        for name, start in zip(names, starts):
            acc = _start(name, start)
            if name == "kmer":
                acc.update(x, attr)
            else:
                acc.update(attr)
            accs[name] = acc
    except ValueError as exc:
        msg = _SEQ_RE.sub(lambda m: f"sequence {int(m.group(1)) + offset}", str(exc))
        for short, label in labels.items():
            if msg.startswith(short + ": "):
                msg = f"{label}: {msg[len(short) + 2:]}"
        raise ValueError(msg) from None
    return accs


def _merge(*parts: dict) -> dict:
    """Reduce task: merge accumulators (into fresh ones: task inputs are never modified)."""
    out = {}
    for name, acc in parts[0].items():
        merged = acc.empty_like()
        for part in parts:
            merged.merge(part[name])
        out[name] = merged
    return out


# ----------------------------------------------------------------------------- files


def _file_meta(attr_path: str, dataset: str | None, seqs_path: str | None, seqs_dataset: str | None,
               layout: str, batch_size: int | None, specs: dict) -> tuple:
    """Open and check one attribution file (and the sequences): ``(shape, batch_size)``.

    Runs as a task, where the files are (a worker on the shared filesystem)."""
    from .io import check_attr_dtype, check_onehot_dtype, check_pair, default_batch_size, open_source

    with open_source(attr_path, dataset, layout, name="attr") as a:
        check_attr_dtype(a)
        _check_length(a.length, specs, a.label)
        if seqs_path is None:
            return a.shape, batch_size or default_batch_size(a)
        with open_source(seqs_path, seqs_dataset, layout, name="x") as x:
            check_onehot_dtype(x)
            check_pair(x, a)
            return a.shape, batch_size or default_batch_size(x, a)


def _read_block(attr_path: str, dataset: str | None, seqs_path: str | None, seqs_dataset: str | None,
                layout: str, start: int, stop: int) -> tuple:
    """Load task body: rows start..stop of the attribution file (and of the sequences if needed)."""
    from .io import open_source

    with open_source(attr_path, dataset, layout, name="attr") as a:
        attr = a.read(start, stop)
        labels = {"attr": a.label}
    if seqs_path is None:
        return None, attr, start, labels
    with open_source(seqs_path, seqs_dataset, layout, name="x") as x:
        labels["x"] = x.label
        return x.read(start, stop), attr, start, labels


# ----------------------------------------------------------------------------- driver


def _tree(dask: Any, items: list, split_every: int) -> Any:
    """Tree reduction of delayed accumulator dicts with fan-in ``split_every``."""
    merge = dask.delayed(_merge, pure=False)
    while len(items) > 1:
        items = [items[i] if len(items[i:i + split_every]) == 1 else merge(*items[i:i + split_every])
                 for i in range(0, len(items), split_every)]
    return items[0]


def _runner(dask: Any, client: Any) -> tuple:
    """(run, broadcast): compute a list of delayed objects; share one object with every task."""
    if client is not None:
        def run(objs: list) -> list:
            return list(client.gather(client.compute(objs)))

        def broadcast(obj: Any) -> Any:
            return client.scatter(obj, broadcast=True, hash=False)
    else:
        def run(objs: list) -> list:
            return list(dask.compute(*objs))

        def broadcast(obj: Any) -> Any:
            return dask.delayed(obj, pure=False)
    return run, broadcast


def _score_jobs(dask: Any, jobs: list, specs: dict, split_every: int, client: Any) -> list:
    """Score several data sets; returns one {metric: result} per job.

    A job is a list of blocks ``(load, args_with_x, args_without_x)``: ``load(*args)`` returns
    ``(x, attr, offset, labels)`` (``x`` only where the k-mer metric needs it; ``offset``, the
    block's first sequence, and ``labels``, the inputs' names, for error messages). Pass 0
    builds accumulators from ``specs``; a metric that needs another pass ends it on the
    client (``next_pass``) and its plan (``empty_like``) is broadcast to the next pass's
    tasks. All jobs share each pass's graph, so the cluster works on every data set at once.
    """
    run, broadcast = _runner(dask, client)
    task = dask.delayed(_score_block, pure=False)
    names = tuple(specs)
    pending = [{n: specs[n] for n in names} for _ in jobs]  # per job: metric -> kwargs or plan
    results: list = [{} for _ in jobs]
    done_passes = 0
    while any(pending):
        graphs, active = [], []
        for j, (blocks, starts) in enumerate(zip(jobs, pending)):
            if not starts:
                continue
            ns = tuple(starts)
            st = [starts[n] if done_passes == 0 else broadcast(starts[n]) for n in ns]
            items = [task(load, ax if "kmer" in ns else a, ns, *st) for load, ax, a in blocks]
            graphs.append(_tree(dask, items, split_every))
            active.append(j)
        merged = run(graphs)
        done_passes += 1
        for j, accs in zip(active, merged):
            nxt = {}
            for name, acc in accs.items():
                if getattr(acc, "n_passes", 1) > done_passes:
                    acc.next_pass()
                    nxt[name] = acc.empty_like()  # the plan: parameters, pass, cutoffs; no data
                else:
                    results[j][name] = acc.result()
            pending[j] = nxt
    return results


def _get_client(client: Any, scheduler: str | None) -> tuple:
    """(client to use or None, client we opened and must close or None)."""
    if scheduler is None:
        return client, None
    if client is not None:
        raise ValueError("scheduler, client: pass one of them, not both")
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler: expected an address string such as 'tcp://host:8786', got {scheduler!r}")
    distributed = _import_distributed()
    own = distributed.Client(scheduler)
    return own, own


def _check_split_every(split_every: Any) -> int:
    return check_int("split_every", split_every, 2)


def score_array(attr: Any, x: Any = None, *, metrics: Sequence[str] = ("kmer", "kattr"), client: Any = None,
                preset: str = "paper", layout: str = "NLC", split_every: int = 8, n_threads: int | None = 1,
                **metric_kwargs: Any) -> dict:
    """Score attribution maps held in a Dask array: one accumulator per block, merged in a tree.

    Parameters
    ----------
    attr : dask.array.Array, shape (N, L, 4) or (N, 4, L), float32 or float64
        Raw attribution maps. Chunked along axis 0 (other axes are rechunked to one chunk);
        a NumPy array is wrapped with ``dask.array.asarray``.
    x : dask.array.Array, same shape, optional
        One-hot sequences; needed for the k-mer metric. Rechunked to ``attr``'s chunks.
    metrics : sequence of {"kmer", "kattr"}
    client : distributed.Client, optional
        Where to compute; default: Dask's current default scheduler (a default distributed
        client if one exists, else threads).
    preset : {"paper", "acme"}
    layout : {"NLC", "NCL"}
    split_every : int >= 2
        Fan-in of the merge tree.
    n_threads : int, optional
        Kernel threads inside each task (default 1: the workers are the parallelism; None =
        all cores of the worker's machine). The result does not depend on it.
    **metric_kwargs
        Parameters of :class:`~acme_fast.KmerAccumulator` (``k``, ``quantile``, ``buffer``,
        ``prior``, ``pseudocount``) and :class:`~acme_fast.KattrAccumulator` (``window``,
        ``quantile``, ``threshold_scope``, ``bin_width``, ``prior_bins``, ``weight``,
        ``two_pass``; default ``two_pass=True``). A plain name goes to every metric that takes
        it; prefix it with ``kmer_`` or ``kattr_`` for one metric (``kattr_quantile=0.95``).

    Returns
    -------
    dict
        ``{"kmer": KmerResult, "kattr": KattrResult}`` (the requested metrics), exactly equal
        to :func:`acme_fast.kmer_kld` / :func:`acme_fast.kattr_kld` on the whole array.

    Examples
    --------
    >>> import dask.array as da                                   # doctest: +SKIP
    >>> from distributed import Client                            # doctest: +SKIP
    >>> client = Client("tcp://scheduler:8786")                   # doctest: +SKIP
    >>> attr = da.from_zarr("attr.zarr")                          # doctest: +SKIP
    >>> x = da.from_zarr("x.zarr")                                # doctest: +SKIP
    >>> res = score_array(attr, x, client=client, preset="acme")  # doctest: +SKIP
    >>> res["kmer"].kld, res["kattr"].kld                         # doctest: +SKIP
    """
    dask = _import_dask()
    import dask.array as da

    metrics = check_metrics(metrics)
    split_every = _check_split_every(split_every)
    specs = _metric_kwargs(metrics, preset, layout, n_threads, metric_kwargs)
    attr = _as_dask(da, attr, "attr")
    if "kmer" in metrics:
        if x is None:
            raise ValueError("x: the k-mer metric needs the one-hot sequences; pass x or metrics=('kattr',)")
        x = _as_dask(da, x, "x")
        if x.shape != attr.shape:
            raise ValueError(f"x: expected the same shape as attr {attr.shape}, got {x.shape}")
        if x.chunks != attr.chunks:
            x = x.rechunk(attr.chunks)
    sizes = attr.chunks[0]
    if sum(sizes) == 0:
        raise ValueError(f"attr: expected a non-empty array, got shape {attr.shape}")
    _check_length(attr.shape[2] if check_layout(layout) else attr.shape[1], specs, "attr")
    a_blocks = attr.to_delayed().ravel()
    x_blocks = x.to_delayed().ravel() if "kmer" in metrics else [None] * len(a_blocks)
    offsets = np.cumsum((0,) + sizes[:-1]).tolist()
    blocks = [(_arrays, (xb, ab, s), (None, ab, s)) for n, s, xb, ab in zip(sizes, offsets, x_blocks, a_blocks)
              if n > 0]
    return _score_jobs(dask, [blocks], specs, split_every, client)[0]


def _as_dask(da: Any, a: Any, name: str) -> Any:
    if not isinstance(a, da.Array):
        a = da.asarray(a)
    if a.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D array (N, L, 4) or (N, 4, L), got shape {a.shape}")
    if any(math.isnan(c) for c in a.chunks[0]):
        raise ValueError(f"{name}: chunk sizes along axis 0 are unknown; call {name}.compute_chunk_sizes() first")
    if a.numblocks[1] != 1 or a.numblocks[2] != 1:
        a = a.rechunk({1: -1, 2: -1})
    return a


def score_files(attr_paths: str | os.PathLike | Iterable[str | os.PathLike], seqs_path: str | os.PathLike | None = None,
                *, scheduler: str | None = None, client: Any = None, metrics: Sequence[str] = ("kmer", "kattr"),
                preset: str = "paper", dataset: str | None = None, seqs_dataset: str | None = None,
                layout: str = "NLC", batch_size: int | None = None, split_every: int = 8,
                n_threads: int | None = 1, **metric_kwargs: Any) -> list:
    """Score attribution files (one model each) on a cluster; tasks read their own slices.

    Each file is split into blocks of ``batch_size`` sequences; a task opens the file, reads
    its rows (and the same rows of ``seqs_path``), and returns accumulators, which are merged
    in a tree. Only file names and accumulators pass through the scheduler, so the files
    must be readable at the same path on every worker (a shared filesystem). All files are
    scored in the same graph.

    Parameters
    ----------
    attr_paths : path or list of paths
        Attribution maps, shape (N, L, 4) or (N, 4, L), in any format of
        :func:`acme_fast.io.open_source` (``.npy``, ``.npz``, HDF5, Zarr).
    seqs_path : path, optional
        One-hot sequences of the same shape, shared by all attribution files; needed for the
        k-mer metric. (A FASTA file works, but every task parses all of it: convert it to
        ``.npy`` or HDF5 for large sets.)
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (``"tcp://host:8786"``); a client is
        connected for this call and closed after it.
    client : distributed.Client, optional
        An existing client (not together with ``scheduler``). With neither, Dask's default
        scheduler is used.
    metrics : sequence of {"kmer", "kattr"}
    preset : {"paper", "acme"}
    dataset, seqs_dataset : str, optional
        HDF5 dataset / ``.npz`` member / Zarr array (default: the only 3-D one).
    layout : {"NLC", "NCL"}
    batch_size : int, optional
        Sequences per task (default: about 64 MiB of attributions and sequences together,
        :func:`acme_fast.io.default_batch_size`). A worker running one task holds about two
        such blocks (the read and the kernels' contiguous copies) plus the accumulators.
    split_every : int >= 2
        Fan-in of the merge tree.
    n_threads : int, optional
        Kernel threads inside each task (default 1).
    **metric_kwargs
        Metric parameters, as for :func:`score_array`.

    Returns
    -------
    list of dict
        One row per attribution file: ``attr`` (the path as given), ``n_sequences``,
        ``length``, ``kmer_kld``, ``kmer_n_intervals``, ``kmer_n_nucleotides``, ``kattr_kld``,
        ``kattr_n_points`` (for the requested metrics), ``preset``, ``layout`` and the
        resolved parameters prefixed with the metric (``kmer_k``, ``kattr_window``, ...).
    """
    dask = _import_dask()
    metrics = check_metrics(metrics)
    split_every = _check_split_every(split_every)
    specs = _metric_kwargs(metrics, preset, layout, n_threads, metric_kwargs)
    check_layout(layout)
    layout = layout.upper()
    if isinstance(attr_paths, (str, os.PathLike)):
        attr_paths = [attr_paths]
    given = [os.fspath(p) for p in attr_paths]
    if not given:
        raise ValueError("attr_paths: expected at least one file, got none")
    paths = [os.path.abspath(p) for p in given]
    if "kmer" in metrics and seqs_path is None:
        raise ValueError("seqs_path: the k-mer metric needs the one-hot sequences; pass seqs_path or "
                         "metrics=('kattr',)")
    seqs = None if "kmer" not in metrics else os.path.abspath(os.fspath(seqs_path))
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)

    use, own = _get_client(client, scheduler)
    try:
        run, _ = _runner(dask, use)
        meta = dask.delayed(_file_meta, pure=True)
        metas = run([meta(p, dataset, seqs, seqs_dataset, layout, batch_size, specs) for p in paths])
        jobs, shapes = [], []
        for p, (shape, bs) in zip(paths, metas):
            n = shape[0]
            blocks = [(_read_block, (p, dataset, seqs, seqs_dataset, layout, s, min(n, s + bs)),
                       (p, dataset, None, None, layout, s, min(n, s + bs))) for s in range(0, n, bs)]
            jobs.append(blocks)
            shapes.append(shape)
        results = _score_jobs(dask, jobs, specs, split_every, use)
    finally:
        if own is not None:
            own.close()

    return [score_row(g, shape, res, preset=preset, layout=layout, **metric_kwargs)
            for g, shape, res in zip(given, shapes, results)]
