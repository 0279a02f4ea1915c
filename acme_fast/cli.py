"""Command line: ``acme-fast``."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ._deps import need
from ._files import atomic_output, check_new_file, publish


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal (a log file gets the one-line summaries instead)."""
    return not quiet and sys.stderr.isatty()


def _quiet_tensorflow(quiet: bool) -> None:
    """Before TensorFlow is imported: its C++ start-up lines (oneDNN, CPU features, absl) off, and
    with -q its Python warnings too (AutoGraph's 'could not transform', retracing). A value the
    user set in the environment wins."""
    import logging
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if quiet else "2")
    os.environ.setdefault("AUTOGRAPH_VERBOSITY", "0")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3" if quiet else "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    if quiet:
        warnings.filterwarnings("ignore", module=r"(tensorflow|keras)(\.|$)")


def _cli_need(module: str, purpose: str, extra: str) -> Any:
    """need(), with the missing-package error as a CLI error (one line, exit 2)."""
    try:
        return need(module, purpose, extra)
    except ImportError as exc:
        raise CLIError(str(exc)) from None


def _demo(args: argparse.Namespace) -> int:
    if args.kernels_only:
        return _demo_kernels(args)
    for opt in ("length", "k", "threads"):
        if getattr(args, opt) is not None:
            raise CLIError(f"--{opt} applies to --kernels-only only")
    try:
        import logomaker  # noqa: F401
        import matplotlib  # noqa: F401
        import pyjaspar  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError as exc:
        raise CLIError(f"the demo trains small Keras models on a generated benchmark and draws figures: "
                       f"pip install 'acme_fast[demo]' ({exc.name} is missing), or run "
                       f"'acme-fast demo --kernels-only' (no TensorFlow)") from exc
    from acme_fast.demo import MINIATURE, demo_verdict, model_name, next_free_dir, paper_in_miniature
    from acme_fast.reproduce import spearman

    n = MINIATURE["n"] if args.n is None else args.n
    epochs = MINIATURE["epochs"] if args.epochs is None else args.epochs
    _check_pos("--n", n, 100)
    _check_pos("--epochs", epochs)
    _check_pos("--seed", args.seed, 0)
    if args.out is None:
        out = next_free_dir("acme_demo")
    else:
        out = Path(args.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise CLIError(f"--out: {args.out!r} exists and is not an empty directory")
    say = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    names = [model_name(*m) for m in MINIATURE["models"]]
    say(f"acme_fast demo: the paper in miniature. {n} synthetic sequences with known motifs (seed {args.seed}); "
        f"{len(names)} small CNNs ({', '.join(names)}; first-layer activation / batch norm / training), "
        f"{MINIATURE['burn_in']} dropout-free + up to {epochs} epochs each; saliency maps of the positive test "
        "sequences scored without ground truth (the KLDs) and with it (GT SNR, GT AUROC).")
    res = paper_in_miniature(out, n=n, epochs=epochs, seed=args.seed, progress=_show_progress(args.quiet), log=say)
    sel = res.selection
    cols = [("auroc", "test AUROC"), ("kattr_kld_paper", "k-attr KLD"), ("kmer_kld_paper", "k-mer KLD"),
            ("gt_snr", "GT SNR"), ("gt_auroc", "GT AUROC")]
    print("\nModel selection (AUROC within 0.02 of the best, ranked by k-attr-mean KLD; ground truth beside it):")
    print(f"{'rank':>4}  {'model':<28}" + "".join(f"{h:>12}" for _, h in cols) + "  pareto")
    for name, row in sel.iterrows():
        rank = "-" if not row["kept"] else f"{int(row['rank'])}"
        print(f"{rank:>4}  {str(name):<28}" + "".join(f"{row[c]:>12.3f}" for c, _ in cols)
              + ("  *" if row["pareto"] else ""))
    t = res.table.set_index("model")
    print(f"Spearman with the ground-truth SNR over {len(t)} models: k-attr KLD "
          f"{spearman(t['gt_snr'], t['kattr_kld_paper']):.2f}, "
          f"k-mer KLD {spearman(t['gt_snr'], t['kmer_kld_paper']):.2f}, "
          f"test AUROC {spearman(t['gt_snr'], t['auroc']):.2f}")
    for line in demo_verdict(t, sel):
        print(line)
    print(f"table and figures written to {out}/ ({', '.join(p.name for p in res.files)})")
    if not args.quiet:
        print(f"({res.seconds:.0f} s)")
    return 0


def _demo_kernels(args: argparse.Namespace) -> int:
    import acme_fast as af
    from acme_fast.demo import make_demo_data

    if args.epochs is not None or args.out is not None:
        raise CLIError("--epochs and --out do not apply with --kernels-only")
    n = 1000 if args.n is None else args.n
    length = 200 if args.length is None else args.length
    k = 4 if args.k is None else args.k
    _check_pos("--n", n)
    _check_pos("--length", length, 75)  # three planted motifs, 25 bp each
    _check_pos("--k", k)
    if k > min(12, length):
        raise CLIError(f"--k: expected an integer in 1..{min(12, length)} (at most 12 and the sequence length), "
                       f"got {k}")
    _check_threads(args.threads)
    t0 = time.perf_counter()
    data = make_demo_data(n=n, length=length, seed=args.seed)
    sets = {"focused": data.focused, "diffuse": data.diffuse}
    jobs = [(name, metric) for name in sets for metric in ("kmer", "kattr", "kattr_acme", "groundtruth")]
    rows: dict[str, dict[str, float]] = {name: {} for name in sets}
    for name, metric in tqdm(jobs, desc="scoring", disable=not _show_progress(args.quiet), leave=False):
        attr = sets[name]
        nt = args.threads
        if metric == "kmer":
            rows[name]["kmer_kld"] = af.kmer_kld(data.x, attr, k=k, n_threads=nt).kld
        elif metric == "kattr":
            rows[name]["kattr_kld"] = af.kattr_kld(attr, n_threads=nt).kld
        elif metric == "kattr_acme":
            rows[name]["kattr_kld_acme"] = af.kattr_kld(attr, preset="acme", n_threads=nt).kld
        else:
            gt = af.groundtruth_scores(data.x, attr, data.x_model, n_threads=nt)
            rows[name]["gt_auroc"] = gt.mean_auroc
            rows[name]["gt_snr"] = gt.mean_snr
    cols = ["kmer_kld", "kattr_kld", "kattr_kld_acme", "gt_auroc", "gt_snr"]
    print(f"acme_fast demo --kernels-only: {n} sequences of {length} bp with planted motifs "
          f"(seed {args.seed}), two attribution sets")
    print(f"{'attribution':<12}" + "".join(f"{c:>16}" for c in cols))
    for name, row in rows.items():
        print(f"{name:<12}" + "".join(f"{row[c]:>16.4f}" for c in cols))
    better = all(rows["focused"][c] > rows["diffuse"][c] for c in cols)
    print("consistency metrics (KLD, higher = more consistent) rank the focused set first: "
          + ("yes" if better else "NO"))
    if not args.quiet:
        print(f"({time.perf_counter() - t0:.2f} s, OpenMP: {af.has_openmp}, threads: {af.max_threads()})")
    return 0 if better else 1


_OUTPUTS = (".csv", ".json")


def _check_output(path: str, force: bool) -> Path:
    """The output table path, checked before any work: .csv/.json, existing directory, no overwrite."""
    return _check_out(path, force, _OUTPUTS)


def _table_columns(rows: list[dict[str, Any]]) -> list[str]:
    from acme_fast.stream import ROW_KEYS

    present = {k for row in rows for k in row}
    cols = [k for k in ROW_KEYS if k in present]
    for row in rows:  # keys we do not know about (from another implementation) go last, in order
        cols += [k for k in row if k not in cols]
    return cols


def _json_value(v: Any) -> Any:
    if v is None or (type(v).__name__ == "NAType"):  # pandas' missing value (an Int64 rank)
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/Inf
    if hasattr(v, "item"):
        return _json_value(v.item())
    return v


def _write_table(rows: list[dict[str, Any]], out: Path) -> None:
    """Write rows as CSV or JSON (by extension), atomically: a temporary file, then os.replace."""
    cols = _table_columns(rows)
    with atomic_output(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        if out.suffix.lower() == ".json":
            json.dump([{c: _json_value(row.get(c)) for c in cols} for row in rows], f, indent=2)
            f.write("\n")
        else:
            w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
            w.writeheader()
            for row in rows:
                w.writerow({c: "" if row.get(c) is None else row.get(c) for c in cols})


def _score(args: argparse.Namespace) -> int:
    from acme_fast.io import check_attr_dtype, check_onehot_dtype, check_pair, open_source
    from acme_fast.stream import score_row, score_stream

    t0 = time.perf_counter()
    out = _check_output(args.output, args.force)
    for name, v, lo in (("--k", args.k, 1), ("--window", args.window, 1), ("--batch-size", args.batch_size, 1)):
        if v is not None and v < lo:
            raise CLIError(f"{name}: expected an integer >= {lo}, got {v}")
    _check_threads(args.threads)
    metrics = ("kmer", "kattr") if args.seqs is not None else ("kattr",)
    kw: dict[str, Any] = {"window": args.window}
    if args.seqs is not None:
        kw["k"] = args.k
    if args.quantile is not None:
        kw["quantile"] = args.quantile
    from acme_fast.scoring import model_name

    named = [model_name(a) for a in args.attr]  # NAME=PATH or PATH (named by the file name)
    args.attr = [p for _, p in named]
    if len(set(args.attr)) != len(args.attr):
        dup = next(a for a in args.attr if args.attr.count(a) > 1)
        raise CLIError(f"ATTR: '{dup}' is given more than once")
    if args.ground_truth is not None and args.seqs is None:
        raise CLIError("--ground-truth: needs --seqs (the one-hot sequences the attributions belong to)")
    if args.motifs and args.seqs is None:
        raise CLIError("--motifs: needs --seqs (motifs are read off the attributed sequences)")
    if args.motifs and args.scheduler is not None:
        raise CLIError("--motifs: not supported with --scheduler")

    # Check every input before scoring any: a bad last file must not cost the first file's run.
    amc = args.allow_missing_chunks
    for flag, on in (("--allow-missing-chunks", amc), ("--class", args.class_index is not None),
                     ("--projected", args.projected)):
        if on and args.scheduler is not None:
            raise CLIError(f"{flag}: not supported with --scheduler")
    if args.projected and args.seqs is None:
        raise CLIError("--projected: multiplying by the one-hot sequences needs --seqs")
    if args.ground_truth is not None and (args.projected or args.class_index is not None):
        raise CLIError("--ground-truth: not supported with --projected or --class")
    with ExitStack() as stack:
        x_src = None
        if args.seqs is not None:
            x_src = stack.enter_context(open_source(args.seqs, args.seqs_dataset, args.layout, name="seqs",
                                                    allow_missing_chunks=amc))
            check_onehot_dtype(x_src)
        if args.ground_truth is not None:
            with open_source(args.ground_truth, args.ground_truth_dataset, args.layout, name="ground truth",
                             allow_missing_chunks=amc) as m_src:
                check_pair(x_src, m_src)
        shapes = []
        for path in args.attr:
            with open_source(path, args.dataset, args.layout, name="attr", allow_missing_chunks=amc,
                             class_index=args.class_index) as a_src:
                check_attr_dtype(a_src)
                if x_src is not None:
                    check_pair(x_src, a_src)
                shapes.append(a_src.shape)

        if args.scheduler is not None:
            from acme_fast import dask as af_dask  # imports Dask itself only when called

            extra = {} if args.threads is None else {"n_threads": args.threads}
            try:
                rows = af_dask.score_files(
                    list(args.attr), args.seqs, scheduler=args.scheduler, metrics=metrics, preset=args.preset,
                    dataset=args.dataset, seqs_dataset=args.seqs_dataset, layout=args.layout,
                    batch_size=args.batch_size, **extra, **kw,
                )
            except ImportError as exc:
                raise CLIError(f"--scheduler needs Dask and dask.distributed: pip install 'acme_fast[dask]' "
                               f"({exc})") from None
        else:
            rows = []
            for path, shape in zip(args.attr, shapes):
                res = score_stream(path, x_src, metrics=metrics, preset=args.preset, batch_size=args.batch_size,
                                   progress=_show_progress(args.quiet), dataset=args.dataset, layout=args.layout,
                                   n_threads=args.threads, allow_missing_chunks=amc, class_index=args.class_index,
                                   projected=args.projected, **kw)
                rows.append(score_row(path, shape, res, preset=args.preset, layout=args.layout,
                                      model=dict((p, n) for n, p in named)[path], **kw))
        for (name, _), row in zip(named, rows):
            row["model"] = name
        if args.motifs:
            from acme_fast.motifs import diversity, find_motifs_in_files

            for path, row in zip(args.attr, rows):
                mkw = {key: kw[key] for key in ("k", "window", "quantile") if key in kw}
                row.update(diversity(find_motifs_in_files(path, args.seqs, dataset=args.dataset,
                                                          x_dataset=args.seqs_dataset, layout=args.layout,
                                                          batch_size=args.batch_size, preset=args.preset,
                                                          n_threads=args.threads, allow_missing_chunks=amc, **mkw)))
        if args.ground_truth is not None:
            from acme_fast.scoring import groundtruth_stream

            for path, row in zip(args.attr, rows):
                row.update(groundtruth_stream(path, x_src, args.ground_truth, batch_size=args.batch_size,
                                              layout=args.layout, dataset=args.dataset,
                                              x_model_dataset=args.ground_truth_dataset, n_threads=args.threads,
                                              allow_missing_chunks=amc,
                                              progress=_show_progress(args.quiet)))
    _write_table(rows, out)
    if not args.quiet:
        print(f"acme-fast score: {len(rows)} row(s) written to {out} ({time.perf_counter() - t0:.1f} s)",
              file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="acme-fast",
        description="Consistency of attribution maps for genomic deep networks (acme_fast).",
    )
    from acme_fast import __version__

    p.add_argument("--version", action="version", version=f"acme-fast {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser(
        "demo", help="the paper in miniature: generate, train small CNNs, attribute, score, rank (a few minutes)",
        description="Generate a small synthetic benchmark with known motifs, train four small CNNs (ReLU vs "
                    "exponential first layer, standard vs manifold-mixup training), compute saliency maps, score "
                    "them with both consistency metrics and against the ground truth, and print the ranked model "
                    "selection table; figures go to a new folder (acme_demo/, or acme_demo_2/, ... if taken). Needs "
                    "pip install 'acme_fast[demo]'. --kernels-only scores two built-in attribution sets instead "
                    "(no TensorFlow, seconds).",
    )
    d.add_argument("--kernels-only", action="store_true",
                   help="score a focused and a diffuse built-in attribution set with the kernels only")
    d.add_argument("--n", type=int, default=None,
                   help="number of sequences (default 6000; 1000 with --kernels-only)")
    d.add_argument("--epochs", type=int, default=None, help="training epochs per model (default 20)")
    d.add_argument("--out", metavar="DIR", default=None,
                   help="folder for the table and figures (new or empty; default acme_demo, or the next free "
                        "acme_demo_N); not with --kernels-only, which writes no files")
    d.add_argument("--length", type=int, default=None,
                   help="--kernels-only: sequence length, at least 75 (three 25-bp motif slots; default 200)")
    d.add_argument("--k", type=int, default=None,
                   help="--kernels-only: k-mer length (default 4: with 1000 sequences, longer k-mers are too sparse)")
    # --out is refused with --kernels-only: that mode writes no files (it prints its table)
    d.add_argument("--seed", type=int, default=0,
                   help="random seed of the generated sequences, the models' initial weights and training (default 0)")
    d.add_argument("--threads", type=int, default=None, help="--kernels-only: threads (default: all cores)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress bars or timing line")
    d.set_defaults(func=_demo)

    s = sub.add_parser(
        "score", help="score attribution files (any size: streamed in batches), one table row per file",
        description="Score attribution maps streamed from disk (.npy, .npz, .h5/.hdf5, .zarr), one row per "
                    "file, written to a .csv or .json table. Files larger than memory are read in batches.",
    )
    s.add_argument("attr", nargs="+", metavar="ATTR",
                   help="attribution files (one per model), shape (N, L, 4) or (N, 4, L) with --layout NCL")
    s.add_argument("--seqs", metavar="SEQS",
                   help="one-hot sequences of the same shape (.npy, .npz, .h5, .zarr) or a FASTA file; needed "
                        "for the k-mer KLD (without it only the k-attr-mean KLD is computed)")
    s.add_argument("-o", "--output", required=True, metavar="TABLE", help="output table: .csv or .json")
    s.add_argument("--dataset", metavar="NAME",
                   help="dataset / .npz member / Zarr array of the attributions (default: the only 3-D one)")
    s.add_argument("--seqs-dataset", metavar="NAME", help="dataset / member / array of --seqs")
    s.add_argument("--layout", choices=("NLC", "NCL"), default="NLC", type=str.upper,
                   help="NLC: (N, L, 4), TensorFlow; NCL: (N, 4, L), PyTorch, tfmodisco-lite (default NLC)")
    s.add_argument("--preset", choices=("paper", "acme"), default="paper",
                   help="paper: the method as published in the paper (default); acme: the reference code's numbers")
    s.add_argument("--k", type=int, default=6, help="k-mer length (default 6)")
    s.add_argument("--quantile", type=float, default=None,
                   help="attribution quantile above which positions/points are kept, both metrics (default 0.9)")
    s.add_argument("--window", type=int, default=3, help="k-attr window (default 3)")
    s.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="sequences per batch (default: about 64 MiB of data)")
    s.add_argument("--threads", type=int, default=None, metavar="N",
                   help="kernel threads (default: all cores but one, which reads ahead)")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary line")
    s.add_argument("--force", "-f", action="store_true", help="overwrite the output table if it exists")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="score on a Dask cluster (e.g. tcp://host:8786); needs pip install 'acme_fast[dask]'")
    s.add_argument("--ground-truth", metavar="X_MODEL",
                   help="per-position base probabilities the sequences were sampled from (synthetic data; same "
                        "shape as --seqs): adds the ground-truth columns gt_auroc, gt_auprc, gt_snr")
    s.add_argument("--ground-truth-dataset", metavar="NAME", help="dataset / member / array of --ground-truth")
    s.add_argument("--class", dest="class_index", type=int, metavar="C",
                   help="attributions with a class axis, (N, C, L, 4) (CREsted *_contrib.npz): score class C")
    s.add_argument("--projected", action="store_true",
                   help="multiply the attributions by the one-hot sequences first (hypothetical scores such as "
                        "chromBPNet's shap/seq projected on the observed bases); off by default, since the metrics "
                        "are meant for gradient-like maps (see the README)")
    s.add_argument("--motifs", action="store_true",
                   help="also find each file's motifs (needs --seqs) and add the diversity columns n_motifs, "
                        "motif_entropy, motif_effective_number (a second read of each file)")
    s.add_argument("--allow-missing-chunks", action="store_true",
                   help="Zarr stores: read chunks missing from the store as the fill value (default: a missing "
                        "chunk is an error, since zarr would silently return the fill value)")
    s.set_defaults(func=_score)
    _add_model_commands(sub)
    _add_motif_commands(sub)
    _add_sensitivity_command(sub)
    _add_synth_command(sub)
    _add_reproduce_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    # TensorFlow's start-up chatter (oneDNN, CPU-feature and absl lines, AutoGraph warnings)
    # drowns the output of the model commands; errors still show. A value the user set wins.
    _quiet_tensorflow(bool(getattr(args, "quiet", False)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except (CLIError, ValueError, TypeError, OSError, ImportError) as exc:
        print(f"acme-fast {args.command}: error: {exc}", file=sys.stderr)
        return 2



# ----------------------------------------------------------------------------- model commands
def _check_out(path: str, force: bool, suffixes: tuple[str, ...], opt: str = "-o/--output") -> Path:
    """An output file checked before any work (suffix, directory, no overwrite without --force)."""
    try:
        return check_new_file(path, name=opt, overwrite=force, suffixes=suffixes,
                              overwrite_hint="pass --force to overwrite it")
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from None


def _tmp_name(out: Path, suffix: str | None = None) -> Path:
    """A fresh temporary name next to ``out`` (same directory, so os.replace is atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=(suffix if suffix is not None else out.suffix),
                               dir=out.parent if str(out.parent) else ".")
    os.close(fd)
    return Path(tmp)


def _unlink(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def _check_threads(v: int | None, opt: str = "--threads") -> None:
    """--threads: None (default) or 1..thread_limit(), checked before any work."""
    if v is None:
        return
    from ._limits import thread_limit

    hi = thread_limit()
    if not 1 <= v <= hi:
        raise CLIError(f"{opt}: expected an integer in 1..{hi} (at most 4 per core, at least 64), got {v}")


def _check_pos(name: str, v: int | None, lo: int = 1) -> None:
    if v is not None and v < lo:
        raise CLIError(f"{name}: expected an integer >= {lo}, got {v}")


_METHODS = {"saliency": "saliency", "smoothgrad": "smoothgrad", "ig": "integrated_gradients",
            "integrated_gradients": "integrated_gradients"}


def _attribute(args: argparse.Namespace) -> int:
    import numpy as np

    from acme_fast.io import check_onehot_dtype, open_source

    t0 = time.perf_counter()
    out = _check_out(args.output, args.force, (".npy", ".npz", ".h5", ".hdf5"))
    _check_pos("--batch-size", args.batch_size)
    with open_source(args.seqs, args.seqs_dataset, args.layout, name="seqs") as src:
        check_onehot_dtype(src)
        x = src.read(0, src.n_sequences)
    from acme_fast import attribution as af_attr
    from acme_fast._builder import parse_builder_kwargs

    try:
        bkw = parse_builder_kwargs(args.builder_kwargs)
        af_attr.check_model_path(args.model, args.builder, bkw)
        model = af_attr.get_backend(args.model, builder=args.builder, builder_kwargs=bkw, device=args.device,
                                    model_layout=args.model_layout)
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        raise CLIError(_cli_message(str(exc))) from None
    method = _METHODS[args.method]
    method_kwargs = {} if args.output_index is None else {"output": args.output_index}
    name = args.dataset or args.method
    kind = out.suffix.lower()
    tmp = _tmp_name(out, ".npy" if kind == ".npz" else None)
    tmp_zip = None
    try:
        h5 = dset = arr = None
        if kind in (".h5", ".hdf5"):
            h5py = _cli_need("h5py", "-o: writing .h5", "io")
            h5 = h5py.File(tmp, "w")
            dset = h5.create_dataset(name, shape=x.shape, dtype="float32",
                                     chunks=(min(args.batch_size, x.shape[0]),) + x.shape[1:])
            dset.attrs["method"] = method
            dset.attrs["layout"] = args.layout
            dset.attrs["model"] = str(args.model)
            dset.attrs["framework"] = model.framework
        else:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=x.shape)
        try:
            with tqdm(total=x.shape[0], desc="attributions", unit="seq", disable=not _show_progress(args.quiet),
                      leave=False) as bar:
                for start, ab in af_attr.iter_attributions(model, x, method=method, batch_size=args.batch_size,
                                                           layout=args.layout, **method_kwargs):
                    n = ab.shape[0]
                    (dset if dset is not None else arr)[start:start + n] = ab
                    bar.update(n)
        finally:
            if h5 is not None:
                h5.close()
            if arr is not None:
                arr.flush()
                mm = getattr(arr, "_mmap", None)
                del arr
                if mm is not None:
                    mm.close()
        if kind == ".npz":
            import zipfile

            tmp_zip = _tmp_name(out)
            with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                zf.write(tmp, arcname=f"{name}.npy")
            _unlink(tmp)
            tmp, tmp_zip = tmp_zip, None
        publish(tmp, out)
    except BaseException:
        _unlink(tmp)
        if tmp_zip is not None:
            _unlink(tmp_zip)
        raise
    if not args.quiet:
        print(f"acme-fast attribute: {x.shape[0]} attribution maps ({method}) written to {out} "
              f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


def _write_frame(df: Any, out: Path) -> None:
    """A DataFrame as CSV or JSON (records), atomically."""
    with atomic_output(out) as tmp:
        if out.suffix.lower() == ".json":
            rows = [{k: _json_value(v) for k, v in r.items()} for r in df.to_dict(orient="records")]
            tmp.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        else:
            df.to_csv(tmp, index=False, lineterminator="\n")


def _select(args: argparse.Namespace) -> int:
    from acme_fast.select import select_models

    out = _check_output(args.output, args.force)
    if not Path(args.table).is_file():
        raise CLIError(f"TABLE: no such file: '{args.table}'")
    cols = [c.strip() for v in args.consistency for c in v.split(",") if c.strip()]
    cons = cols[0] if len(cols) == 1 else cols
    try:
        df = select_models(args.table, performance=args.performance, consistency=cons,
                           min_performance=args.min_performance, tolerance=args.tolerance,
                           higher_is_better=not args.lower_is_better, diversity=args.diversity,
                           min_diversity=args.min_diversity)
    except KeyError as exc:  # a missing column
        raise CLIError(str(exc.args[0]) if exc.args else str(exc)) from None
    except ValueError as exc:
        msg = str(exc).replace("min_diversity:", "--min-diversity:").replace("diversity=", "--diversity")
        raise CLIError(msg) from None
    _write_frame(df, out)
    if not args.quiet:
        print(f"acme-fast select: {int(df['kept'].sum())} of {len(df)} model(s) kept; table written to {out}",
              file=sys.stderr)
    return 0


def _save_figure(fig: Any, out: Path) -> None:
    from acme_fast.plot import _write  # the house resolution, atomically

    try:
        _write(fig, out)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def _plot(args: argparse.Namespace) -> int:
    out = _check_out(args.output, args.force, (".png", ".pdf", ".svg"))
    try:
        import matplotlib

        matplotlib.use("Agg")
        from acme_fast import plot as af_plot
    except ImportError as exc:
        raise CLIError(f"plot needs matplotlib: pip install 'acme_fast[plot]' ({exc})") from None
    from acme_fast.io import open_source
    from acme_fast.stream import score_stream

    kind = args.kind
    if kind in ("kmer", "kattr"):
        _check_pos("--k", getattr(args, "k", None))
        if kind == "kmer":
            res = score_stream(args.attr, args.seqs, metrics=("kmer",), k=args.k, preset=args.preset,
                               dataset=args.dataset, x_dataset=args.seqs_dataset, layout=args.layout,
                               progress=_show_progress(args.quiet))["kmer"]
            fig = af_plot.plot_kmer_spectrum(
                res, top=args.top, title=f"{Path(args.attr).name}: k-mer spectrum of the attributed intervals "
                                         f"(k = {args.k}, preset {args.preset})")
        else:
            res = score_stream(args.attr, metrics=("kattr",), preset=args.preset, dataset=args.dataset,
                               layout=args.layout, progress=_show_progress(args.quiet))["kattr"]
            kld = f", KLD = {res.kld:.3g}" if math.isfinite(res.kld) else ""
            fig = af_plot.plot_kattr_density(
                res, log=args.log, title=f"{Path(args.attr).name}: angular density\npreset {args.preset}{kld}")
    elif kind == "logo":
        _check_pos("--index", args.index, 0)
        with open_source(args.seqs, args.seqs_dataset, args.layout, name="seqs") as xs, \
                open_source(args.attr, args.dataset, args.layout, name="attr") as as_:
            if not args.index < xs.n_sequences:
                raise CLIError(f"--index: expected an index < {xs.n_sequences} (the number of sequences), "
                               f"got {args.index}")
            if xs.shape != as_.shape:
                raise CLIError(f"ATTR: shape {as_.shape} differs from SEQS shape {xs.shape}")
            i = args.index
            x, a = xs.read(i, i + 1), as_.read(i, i + 1)
        xm = None
        if args.ground_truth is not None:
            with open_source(args.ground_truth, args.ground_truth_dataset, args.layout, name="ground truth") as ms:
                if ms.shape != xs.shape:
                    raise CLIError(f"--ground-truth: shape {ms.shape} differs from SEQS shape {xs.shape}")
                xm = ms.read(i, i + 1)
        L = xs.length
        window = args.window
        if window is None and args.start is None and args.stop is None and L > 100:
            window = 100  # a readable width; the title says which positions are drawn
        try:
            fig = af_plot.plot_attribution_logo(x, a, 0, x_model=xm, layout=args.layout, start=args.start,
                                                stop=args.stop, window=window,
                                                title=f"{Path(args.attr).name}: sequence {i}")
        except (ValueError, TypeError) as exc:
            msg = str(exc)
            for api, flag in (("window:", "--window:"), ("start, stop:", "--start, --stop:"), ("start:", "--start:"),
                              ("stop:", "--stop:")):
                if msg.startswith(api):
                    msg = flag + msg[len(api):]
                    break
            raise CLIError(msg) from None
    else:
        if not Path(args.table).is_file():
            raise CLIError(f"TABLE: no such file: '{args.table}'")
        from acme_fast.select import _as_table

        try:
            fig = af_plot.plot_selection(_as_table(args.table), performance=args.performance,
                                         consistency=args.consistency, color_by=args.color_by, label=args.label,
                                         tolerance=args.tolerance, min_performance=args.min_performance,
                                         title=args.title or f"{Path(args.table).name}: model selection")
        except KeyError as exc:  # a missing column
            raise CLIError(str(exc.args[0]) if exc.args else str(exc)) from None
    _save_figure(fig, out)
    if not args.quiet:
        print(f"acme-fast plot {kind}: written to {out}", file=sys.stderr)
    return 0


def _read_vector(path: str, dataset: str | None, opt: str) -> Any:
    """A 1-D or 2-D array from .npy, .npz, .h5 or a text table (.txt/.csv/.tsv, one row per sequence)."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise CLIError(f"{opt}: no such file: '{path}'")
    ext = p.suffix.lower()
    try:
        if ext == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif ext == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.files)
                key = dataset or (keys[0] if len(keys) == 1 else None)
                if key not in keys:
                    raise CLIError(f"{opt}: '{path}' has arrays {keys}; name one with {opt}-dataset")
                arr = z[key]
        elif ext in (".h5", ".hdf5"):
            h5py = _cli_need("h5py", f"{opt}: reading .h5", "io")
            with h5py.File(p, "r") as f:
                names: list[str] = []
                f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
                key = dataset or (names[0] if len(names) == 1 else None)
                if key not in names:
                    raise CLIError(f"{opt}: '{path}' has datasets {names}; name one with {opt}-dataset")
                arr = f[key][()]
        else:
            delim = "," if ext == ".csv" else None
            try:
                arr = np.loadtxt(p, delimiter=delim, ndmin=1)
            except ValueError:  # a header line
                arr = np.loadtxt(p, delimiter=delim, ndmin=1, skiprows=1)
    except CLIError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line naming the file
        raise CLIError(f"{opt}: could not read '{path}' ({type(exc).__name__}: {exc})") from None
    arr = np.asarray(arr)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (1, 2):
        raise CLIError(f"{opt}: expected one value (or one row) per sequence, got shape {arr.shape} in '{path}'")
    return arr


def _score_models(args: argparse.Namespace) -> int:
    import numpy as np

    from acme_fast._builder import parse_builder_kwargs, resolve_builder
    from acme_fast.io import check_onehot_dtype, open_source
    from acme_fast.scoring import attribution_rows, model_name

    t0 = time.perf_counter()
    out = _check_output(args.output, args.force)
    _check_pos("--batch-size", args.batch_size)
    _check_pos("--k", args.k)
    _check_pos("--window", args.window)
    _check_threads(args.threads)
    named = [model_name(m) for m in args.models]
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise CLIError(f"MODEL: two models are named '{dup}'; name them with NAME=PATH")
    # Everything about the models that can be checked before TensorFlow starts.
    try:
        bkw = parse_builder_kwargs(args.builder_kwargs)
        resolve_builder(args.builder, bkw, name="--builder")
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None
    for _, path in named:
        if not Path(path).exists():
            raise CLIError(f"MODEL: no such file or directory: '{path}'")
    with open_source(args.seqs, args.seqs_dataset, args.layout, name="seqs") as src:
        check_onehot_dtype(src)
        x = src.read(0, src.n_sequences)
    N = x.shape[0]
    y = None
    if args.labels is not None:
        y = _read_vector(args.labels, args.labels_dataset, "--labels")
        if y.shape[0] != N:
            raise CLIError(f"--labels: expected {N} labels (one per sequence of SEQS), got {y.shape[0]} in "
                           f"'{args.labels}'")
    xm = None
    if args.ground_truth is not None:
        with open_source(args.ground_truth, args.ground_truth_dataset, args.layout, name="ground truth") as ms:
            if ms.shape != x.shape:
                raise CLIError(f"--ground-truth: shape {ms.shape} differs from SEQS shape {x.shape}")
            xm = ms.read(0, ms.n_sequences)
    on: Any = args.attribute_on
    if on not in (None, "all", "positives"):
        on = _read_vector(on, None, "--attribute-on")
        if on.dtype.kind == "f" and np.isin(on, (0, 1)).all() and on.shape == (N,):
            on = on.astype(bool)
        elif on.dtype.kind == "f" and (on == np.round(on)).all():
            on = on.astype(np.int64)
    method_kwargs = {} if args.output_index is None else {"output": args.output_index}
    try:
        attribution_rows(on, N, y, method_kwargs.get("output"))
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc).replace("attribute_on:", "--attribute-on:")) from None
    metrics = tuple(m for m in ("kmer", "kattr"))
    kw: dict[str, Any] = {"k": args.k, "window": args.window}
    if args.quantile is not None:
        kw["quantile"] = args.quantile
    _quiet_tensorflow(args.quiet)
    from acme_fast.scoring import score_model

    rows = []
    show = _show_progress(args.quiet)
    for i, (name, path) in enumerate(named):
        if not args.quiet and not show:
            print(f"acme-fast score-models: {i + 1}/{len(named)} {name}", file=sys.stderr, flush=True)
        try:
            rec = score_model(path, x, method=_METHODS[args.method], metrics=metrics, x_model=xm, y=y,
                              batch_size=args.batch_size, preset=args.preset, layout=args.layout,
                              builder=args.builder, builder_kwargs=bkw, attribute_on=on, progress=show,
                              n_threads=args.threads, method_kwargs=method_kwargs, device=args.device,
                              model_layout=args.model_layout, motifs=args.motifs, **kw)
            rec.pop("motifs", None)
        except ImportError as exc:
            raise CLIError(f"{name}: {exc}") from None
        except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
            raise CLIError(f"{name}: {_cli_message(str(exc))}") from None
        rows.append({"model": name, "path": path, **rec})
    _write_table(rows, out)
    if not args.quiet:
        print(f"acme-fast score-models: {len(rows)} model(s) scored, table written to {out} "
              f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


_API_TO_FLAG = (("builder:", "--builder:"), ("attribute_on:", "--attribute-on:"), ("y:", "--labels:"),
                ("device:", "--device:"), ("model_layout:", "--model-layout:"), ("output:", "--output-index:"))


def _cli_message(msg: str) -> str:
    """An API error message with the argument named as the command line names it."""
    for api, flag in _API_TO_FLAG:
        if msg.startswith(api):
            return flag + msg[len(api):]
    return msg


def framework_args(q: argparse.ArgumentParser) -> None:
    """--device / --model-layout / --output-index (the model side of attribute and score-models)."""
    q.add_argument("--device", metavar="DEVICE",
                   help="where the model runs: PyTorch 'cpu', 'cuda', 'cuda:1' (default: CUDA when available); "
                        "TensorFlow '/GPU:0', '/CPU:0' (default: TensorFlow's choice)")
    q.add_argument("--model-layout", choices=("NLC", "NCL"), type=str.upper, default=None,
                   help="the input layout the model takes (default: NLC (N, L, 4) for Keras, NCL (N, 4, L) for "
                        "PyTorch); SEQS are transposed for it when --layout differs")


def _read_pairs(args: argparse.Namespace, attr_path: str) -> tuple[Any, Any]:
    """(x, attr) arrays of SEQS and one attribution file, checked as a pair."""
    from acme_fast.io import check_attr_dtype, check_onehot_dtype, check_pair, open_source

    with open_source(args.seqs, args.seqs_dataset, args.layout, name="seqs") as xs, \
            open_source(attr_path, args.dataset, args.layout, name="attr") as as_:
        check_onehot_dtype(xs)
        check_attr_dtype(as_)
        check_pair(xs, as_)
        return xs.read(0, xs.n_sequences), as_.read(0, as_.n_sequences)


def _motif_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    _check_pos("--k", args.k)
    _check_pos("--window", args.window)
    _check_pos("--min-support", args.min_support)
    kw: dict[str, Any] = {"k": args.k, "window": args.window, "preset": args.preset, "layout": args.layout,
                          "min_support": args.min_support,
                          "methods": tuple(m for part in (args.methods or ["kmer,kattr"])
                                           for m in part.split(",") if m)}
    if args.quantile is not None:
        kw["quantile"] = args.quantile
    return kw


def _motif_db(args: argparse.Namespace) -> dict[str, Any]:
    return {"db": args.db, "release": args.jaspar, "collection": args.jaspar_collection,
            "tax_group": None if args.tax_group in ("", "all") else args.tax_group}


def _motifs(args: argparse.Namespace) -> int:
    from acme_fast import motifs as M

    t0 = time.perf_counter()
    out = _check_out(args.output, args.force, (".csv", ".tsv", ".json"))
    meme = _check_out(args.meme, args.force, (".meme", ".txt"), "--meme") if args.meme else None
    seqlets = _check_out(args.seqlets, args.force, (".csv", ".tsv"), "--seqlets") if args.seqlets else None
    if args.db is not None and not Path(args.db).is_file():
        raise CLIError(f"--db: no such MEME file: '{args.db}'")
    try:
        kw = _motif_kwargs(args)
        res = M.find_motifs_in_files(args.attr, args.seqs, dataset=args.dataset, x_dataset=args.seqs_dataset, **kw)
        if not args.no_match and len(res):
            _cli_need("memelite", "matching motifs (--no-match skips it)", "motifs")
            M.match_motifs(res, **_motif_db(args))
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise CLIError(_cli_message(str(exc)).replace("db:", "--db:")) from None
    _write_frame(res.to_frame(), out)
    if meme is not None:
        M.write_meme(res, meme, overwrite=args.force)
    if seqlets is not None:
        with atomic_output(seqlets) as tmp:
            res.seqlet_frame().to_csv(tmp, index=False, sep="\t" if seqlets.suffix == ".tsv" else ",",
                                      lineterminator="\n")
    if not args.quiet:
        d = M.diversity(res)
        print(f"acme-fast motifs: {len(res)} motif(s) ({d['n_motifs']} with >= {kw['min_support']} seqlets, "
              f"entropy {d['motif_entropy']:.2f} nats) written to {out} ({time.perf_counter() - t0:.1f} s)",
              file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    from acme_fast.report import write_report
    from acme_fast.scoring import model_name

    t0 = time.perf_counter()
    out = _check_out(args.output, args.force, (".html", ".htm"))
    _cli_need("matplotlib", "acme-fast report", "plot")
    _cli_need("logomaker", "acme-fast report", "plot")
    if not args.no_match:
        _cli_need("memelite", "matching motifs (--no-match skips it)", "motifs")
    named = [model_name(a) for a in args.attr]
    if len({n for n, _ in named}) != len(named):
        raise CLIError("ATTR: two attribution files have the same name; name them with NAME=PATH")
    if args.scores is not None and not Path(args.scores).is_file():
        raise CLIError(f"--scores: no such file: '{args.scores}'")
    try:
        kw = _motif_kwargs(args)
        arrays, x = {}, None
        for name, path in named:
            x, arrays[name] = _read_pairs(args, path)
        write_report(arrays, x, out, scores=args.scores, performance=args.performance,
                     consistency=args.consistency, tolerance=args.tolerance, layout=args.layout,
                     preset=args.preset, k=kw["k"], window=kw["window"], match=not args.no_match,
                     db=args.db, overwrite=args.force, title=args.title or "acme_fast report")
    except KeyError as exc:
        raise CLIError(str(exc).strip("'\"")) from None
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise CLIError(_cli_message(str(exc))) from None
    if not args.quiet:
        print(f"acme-fast report: {len(named)} model(s), written to {out} ({time.perf_counter() - t0:.1f} s)",
              file=sys.stderr)
    return 0


def _floats(text: str | None, opt: str, kind: type = float) -> tuple | None:
    if text is None:
        return None
    try:
        vals = tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise CLIError(f"{opt}: expected comma-separated {'integers' if kind is int else 'numbers'}, got "
                       f"'{text}'") from None
    if not vals:
        raise CLIError(f"{opt}: expected at least one value")
    return vals


def _sensitivity(args: argparse.Namespace) -> int:
    import pandas as pd

    from acme_fast._sensitivity import sensitivity
    from acme_fast.scoring import model_name

    t0 = time.perf_counter()
    out = _check_out(args.output, args.force, (".csv", ".tsv", ".json"))
    fig = _check_out(args.plot, args.force, (".png", ".pdf", ".svg"), "--plot") if args.plot else None
    grid = {}
    for opt, key, kind in (("--k", "k", int), ("--quantile", "quantile", float), ("--window", "window", int)):
        v = _floats(getattr(args, key), opt, kind)
        if v is not None:
            grid[key] = v
    named = [model_name(a) for a in args.attr]
    if len({n for n, _ in named}) != len(named):
        raise CLIError("ATTR: two attribution files have the same name; name them with NAME=PATH")
    meta = None
    if args.meta is not None:
        if not Path(args.meta).is_file():
            raise CLIError(f"--meta: no such file: '{args.meta}'")
        meta = pd.read_csv(args.meta, sep="\t" if args.meta.endswith(".tsv") else ",")
        if "model" not in meta.columns:
            raise CLIError(f"--meta: '{args.meta}' has no 'model' column")
    metrics = ("kmer", "kattr") if args.seqs is not None else ("kattr",)
    try:
        table = sensitivity(dict(named), args.seqs, design="grid" if args.grid else "one_at_a_time",
                            metrics=metrics, preset=args.preset, layout=args.layout, batch_size=args.batch_size,
                            dataset=args.dataset, x_dataset=args.seqs_dataset, n_threads=args.threads, **grid)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None
    if meta is not None:
        table = table.merge(meta.rename(columns={"model": "set"}), on="set", how="left")
    _write_frame(table, out)
    if fig is not None:
        from acme_fast.plot import plot_sensitivity

        try:
            plot_sensitivity(table, group=args.group, panel=args.panel, save=fig, overwrite=args.force)
        except (KeyError, ValueError) as exc:
            raise CLIError(str(exc).strip("'\"")) from None
    if not args.quiet:
        print(f"acme-fast sensitivity: {len(named)} set(s) x {len(table) // max(len(named), 1)} setting(s) written "
              f"to {out} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


def _add_sensitivity_command(sub: Any) -> None:
    se = sub.add_parser(
        "sensitivity", help="the metrics over grids of k, window and quantile (the paper's Figure 6)",
        description="Score every ATTR file over the hyperparameters (one at a time around k 6, quantile 0.9, "
                    "window 3, or --grid for every combination), reading each file once for all settings. Writes a "
                    "tidy table (one row per file x metric x setting) and, with --plot, the figure.",
    )
    se.add_argument("attr", nargs="+", metavar="ATTR", help="attribution files (NAME=PATH names one)")
    se.add_argument("--seqs", metavar="SEQS", help="one-hot sequences (needed for the k-mer KLD)")
    se.add_argument("--seqs-dataset", metavar="NAME", help="dataset / member / array of --seqs")
    se.add_argument("--dataset", metavar="NAME", help="dataset / member / array of the ATTR files")
    se.add_argument("--k", metavar="LIST", help="k-mer lengths (default 4,5,6,7,8)")
    se.add_argument("--quantile", metavar="LIST", help="attribution quantiles (default 0.8,0.85,0.9,0.95)")
    se.add_argument("--window", metavar="LIST", help="k-attr windows (default 1,3,5,7,9)")
    se.add_argument("--grid", action="store_true", help="every combination instead of one parameter at a time")
    se.add_argument("--preset", choices=("paper", "acme"), default="paper", help="metric preset (default paper)")
    se.add_argument("--layout", choices=("NLC", "NCL"), default="NLC", type=str.upper,
                    help="layout of the files: NLC (N, L, 4) or NCL (N, 4, L) (default NLC)")
    se.add_argument("--batch-size", type=int, default=None, metavar="N", help="sequences per batch")
    se.add_argument("--threads", type=int, default=None, metavar="N", help="kernel threads (default all)")
    se.add_argument("--meta", metavar="TABLE", help="a CSV with a model column (the ATTR names) and columns such as "
                                                    "group or activation, merged into the table")
    se.add_argument("--plot", metavar="FIG", help="also draw the figure (.png, .pdf, .svg)")
    se.add_argument("--group", metavar="COL", help="colour the figure's lines by this column (from --meta)")
    se.add_argument("--panel", metavar="COL", help="one row of panels per value of this column (from --meta)")
    se.add_argument("-o", "--output", required=True, metavar="TABLE", help="output table: .csv, .tsv or .json")
    se.add_argument("--quiet", "-q", action="store_true", help="no summary line")
    se.add_argument("--force", "-f", action="store_true", help="overwrite outputs that exist")
    se.set_defaults(func=_sensitivity)


def _motif_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("--seqs", required=True, metavar="SEQS", help="one-hot sequences (.npy, .npz, .h5, .zarr) or FASTA")
    q.add_argument("--seqs-dataset", metavar="NAME", help="dataset / member / array of --seqs")
    q.add_argument("--dataset", metavar="NAME", help="dataset / member / array of the attribution file(s)")
    q.add_argument("--layout", choices=("NLC", "NCL"), default="NLC", type=str.upper,
                   help="layout of SEQS and the attributions: NLC (N, L, 4) or NCL (N, 4, L) (default NLC)")
    q.add_argument("--preset", choices=("paper", "acme"), default="paper", help="metric preset (default paper)")
    q.add_argument("--k", type=int, default=6, help="k-mer length of the k-mer method (default 6)")
    q.add_argument("--window", type=int, default=3, help="window of the k-attr method (default 3)")
    q.add_argument("--quantile", type=float, default=None, help="attribution quantile (default 0.9)")
    q.add_argument("--methods", action="append", default=None, metavar="kmer,kattr",
                   help="which methods find motifs (default both)")
    q.add_argument("--min-support", type=int, default=20, metavar="N",
                   help="seqlets a motif needs to count (default 20)")
    q.add_argument("--no-match", action="store_true", help="do not match motifs against a database")
    q.add_argument("--db", metavar="MEME", help="match against this MEME file instead of JASPAR")
    q.add_argument("--jaspar", default="JASPAR2024", metavar="RELEASE",
                   help="JASPAR release of pyjaspar's offline files (default JASPAR2024)")
    q.add_argument("--jaspar-collection", default="CORE", metavar="NAME", help="JASPAR collection (default CORE)")
    q.add_argument("--tax-group", default="vertebrates", metavar="GROUP",
                   help="JASPAR taxonomic group (default vertebrates; 'all' for every group)")
    q.add_argument("--quiet", "-q", action="store_true", help="no summary line")
    q.add_argument("--force", "-f", action="store_true", help="overwrite outputs that exist")


def _add_motif_commands(sub: Any) -> None:
    mo = sub.add_parser(
        "motifs", help="motifs of an attribution set: k-mer and k-attr methods, matched to JASPAR",
        description="Find the motifs behind the consistency metrics of ATTR (the attributed k-mers most enriched "
                    "over the prior, grouped with reverse complements and shifts; the densest clusters of the "
                    "angular embedding), merge those both methods find, and match them against JASPAR (pyjaspar's "
                    "offline files, Tomtom from memelite). Writes a table (one row per motif), optionally a MEME "
                    "file and the seqlets.",
    )
    mo.add_argument("attr", metavar="ATTR", help="attribution file (.npy, .npz, .h5, .zarr)")
    mo.add_argument("-o", "--output", required=True, metavar="TABLE", help="motif table: .csv, .tsv or .json")
    mo.add_argument("--meme", metavar="FILE", help="also write the motifs' PWMs as a MEME file")
    mo.add_argument("--seqlets", metavar="FILE", help="also write the seqlets (motif, seq, start, end, strand)")
    _motif_args(mo)
    mo.set_defaults(func=_motifs, methods=None)

    rp = sub.add_parser(
        "report", help="one self-contained HTML page for a set of models (selection, spectra, motifs)",
        description="Score each attribution file (one per model), find and match its motifs, and write one HTML "
                    "page that works offline: the selection table (sortable), the selection plot, and per model the "
                    "k-mer spectrum, the angular density, the motifs as logos with their JASPAR matches and "
                    "q-values, and example attribution logos.",
    )
    rp.add_argument("attr", nargs="+", metavar="ATTR", help="attribution files, one per model (NAME=PATH names one)")
    rp.add_argument("-o", "--output", required=True, metavar="HTML", help="the report (.html)")
    rp.add_argument("--scores", metavar="TABLE", help="a score table with a model column (acme-fast score-models): "
                                                      "its performance column joins by model name")
    rp.add_argument("--performance", metavar="COL",
                    help="performance column for the selection (from --scores); without it models are ranked by "
                         "consistency and plotted against their number of motifs")
    rp.add_argument("--consistency", default="kattr_kld", metavar="COL",
                    help="consistency column (default kattr_kld)")
    rp.add_argument("--tolerance", type=float, default=None, help="keep models within this of the best performance")
    rp.add_argument("--title", metavar="TEXT", help="the page's title")
    _motif_args(rp)
    rp.set_defaults(func=_report, methods=None)


def builder_args(q: argparse.ArgumentParser) -> None:
    """--builder / --builder-kwargs, for weights-only model files."""
    from acme_fast._builder import ARCHITECTURES

    names = "; ".join(f"{k}: {v}" for k, v in ARCHITECTURES.items())
    q.add_argument("--builder", metavar="MODULE:FUNCTION",
                   help="for weights-only model files: the function that builds the architecture, as "
                        "MODULE:FUNCTION (a module on the Python path or in the working directory), "
                        f"path/to/file.py:FUNCTION, or one of the package's architectures by name ({names}). The "
                        "paper's shipped files (cnn_{deep,shallow}_{relu,exponential}_N.h5) need none. For a PyTorch "
                        "state dict (.pt, .pth): the function that returns the torch.nn.Module it is loaded into")
    q.add_argument("--builder-kwargs", metavar="JSON",
                   help="keyword arguments of the builder as a JSON object, e.g. '{\"activation\": \"exponential\"}'")


def _add_model_commands(sub: Any) -> None:
    layout_kw = {"choices": ("NLC", "NCL"), "default": "NLC", "type": str.upper,
                 "help": "layout of SEQS and of the attributions: NLC (N, L, 4) or NCL (N, 4, L) (default NLC)"}

    a = sub.add_parser(
        "attribute", help="compute attribution maps of a Keras or PyTorch model, streamed into a .npy/.npz/.h5 file",
        description="Attribution maps of MODEL on SEQS, computed batch by batch and written to OUT as they come (the "
                    "whole array is never in memory). Keras models (.keras, .h5, SavedModel) need TensorFlow "
                    "(pip install 'acme_fast[tf]'), PyTorch models (TorchScript .pt/.pth, torch.export .pt2, a state "
                    "dict with --builder) need PyTorch (pip install 'acme_fast[torch]').",
    )
    a.add_argument("model", metavar="MODEL",
                   help="saved model: Keras (.keras, .h5, .weights.h5 with --builder, SavedModel directory) or PyTorch "
                        "(TorchScript .pt/.pth, torch.export .pt2, state dict .pt/.pth with --builder); the framework "
                        "is chosen by the file's suffix")
    a.add_argument("seqs", metavar="SEQS", help="one-hot sequences (.npy, .npz, .h5, .zarr) or FASTA")
    a.add_argument("-o", "--output", required=True, metavar="OUT", help="output: .npy, .npz or .h5")
    a.add_argument("--method", choices=("saliency", "smoothgrad", "ig"), default="saliency",
                   help="attribution method (default saliency; ig: integrated gradients)")
    builder_args(a)
    framework_args(a)
    a.add_argument("--output-index", type=int, metavar="I",
                   help="model output (task) to attribute (default: the mean over outputs)")
    a.add_argument("--batch-size", type=int, default=256, metavar="N", help="sequences per batch (default 256)")
    a.add_argument("--layout", **layout_kw)
    a.add_argument("--dataset", metavar="NAME",
                   help="dataset name in an .h5 output / member name in an .npz output (default: the method)")
    a.add_argument("--seqs-dataset", metavar="NAME", help="dataset / member / array of SEQS")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary line")
    a.add_argument("--force", "-f", action="store_true", help="overwrite OUT if it exists")
    a.set_defaults(func=_attribute)

    m = sub.add_parser(
        "score-models", help="score trained models: performance, consistency (and ground truth), one row per model",
        description="For each MODEL: predictions on SEQS give the performance (AUROC and AUPR for binary --labels, "
                    "Pearson r for continuous ones); attribution maps (--method) of the sequences chosen by "
                    "--attribute-on are scored with the k-mer and k-attr-mean KLDs (and, with --ground-truth, "
                    "against the true motifs). The table (one row per model, column 'model') feeds 'acme-fast "
                    "select' directly. Keras models need TensorFlow (pip install 'acme_fast[tf]'), PyTorch models "
                    "PyTorch (pip install 'acme_fast[torch]').",
    )
    m.add_argument("models", nargs="+", metavar="MODEL",
                   help="model files, Keras (.keras, .h5, .weights.h5 with --builder, SavedModel directory) or "
                        "PyTorch (TorchScript .pt/.pth, torch.export .pt2, state dict with --builder), named by their "
                        "file names, or NAME=PATH")
    m.add_argument("--seqs", required=True, metavar="SEQS", help="one-hot sequences (.npy, .npz, .h5, .zarr) or FASTA")
    m.add_argument("--seqs-dataset", metavar="NAME", help="dataset / member / array of --seqs")
    m.add_argument("--labels", metavar="LABELS",
                   help="labels of SEQS, one per sequence (or one row per sequence for multi-task models): .npy, "
                        ".npz, .h5, or a text/CSV column; without it no performance column is written")
    m.add_argument("--labels-dataset", metavar="NAME", help="dataset / member of --labels")
    m.add_argument("--output-index", type=int, metavar="I",
                   help="model output (task) to attribute and evaluate (default: the mean over outputs; labels "
                        "with several columns use column I)")
    m.add_argument("--attribute-on", metavar="WHICH", default="all",
                   help="sequences to attribute and score: all (default), positives (label 1: as in the paper, "
                        "performance still uses all), or a file of indices or a 0/1 mask")
    m.add_argument("--ground-truth", metavar="X_MODEL",
                   help="per-position base probabilities (synthetic data): adds gt_auroc, gt_auprc, gt_snr")
    m.add_argument("--ground-truth-dataset", metavar="NAME", help="dataset / member / array of --ground-truth")
    m.add_argument("--motifs", action="store_true",
                   help="also find each model's motifs and add the diversity columns n_motifs, motif_entropy, "
                        "motif_effective_number (usable by select --diversity)")
    m.add_argument("--method", choices=("saliency", "smoothgrad", "ig"), default="saliency",
                   help="attribution method (default saliency; ig: integrated gradients)")
    builder_args(m)
    framework_args(m)
    m.add_argument("--preset", choices=("paper", "acme"), default="paper",
                   help="paper: the method as the paper describes it (default); acme: the published code's numbers")
    m.add_argument("--k", type=int, default=6, help="k-mer length (default 6)")
    m.add_argument("--window", type=int, default=3, help="k-attr window (default 3)")
    m.add_argument("--quantile", type=float, default=None,
                   help="attribution quantile above which positions/points are kept, both metrics (default 0.9)")
    m.add_argument("--batch-size", type=int, default=256, metavar="N", help="sequences per batch (default 256)")
    m.add_argument("--threads", type=int, default=None, metavar="N", help="kernel threads (default: chosen for the "
                                                                             "model's device)")
    m.add_argument("--layout", **layout_kw)
    m.add_argument("-o", "--output", required=True, metavar="TABLE", help="output table: .csv or .json")
    m.add_argument("--quiet", "-q", action="store_true",
                   help="no progress, no summary line, no TensorFlow start-up output")
    m.add_argument("--force", "-f", action="store_true", help="overwrite TABLE if it exists")
    m.set_defaults(func=_score_models)

    s = sub.add_parser(
        "select", help="select models from a score table: keep the good performers, rank by consistency",
        description="Read a table (one row per model: .csv or .json, e.g. from 'acme-fast score'), keep the "
                    "models whose performance passes --min-performance / --tolerance, rank them by consistency "
                    "and flag the Pareto front. Adds the columns kept, rank and pareto.",
    )
    s.add_argument("table", metavar="TABLE", help="table with one row per model (.csv or .json)")
    s.add_argument("--performance", required=True, metavar="COL", help="column of the performance score")
    s.add_argument("--consistency", required=True, action="append", metavar="COL",
                   help="consistency column that ranks the kept models (e.g. kattr_kld); repeat the option, or give "
                        "a comma-separated list, for tie-breakers (--consistency kattr_kld,kmer_kld)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--min-performance", type=float, metavar="X", help="keep models with performance >= X")
    g.add_argument("--tolerance", type=float, metavar="X",
                   help="keep models with performance within X of the best")
    s.add_argument("--lower-is-better", action="store_true", help="performance is a loss (lower is better)")
    s.add_argument("--diversity", metavar="COL",
                   help="a motif-diversity column (n_motifs or motif_entropy, from --motifs): the Pareto front is then "
                        "over performance, consistency and diversity")
    s.add_argument("--min-diversity", type=float, metavar="X",
                   help="keep only models with diversity >= X (e.g. rank by KLD among models with >= 3 motifs)")
    s.add_argument("-o", "--output", required=True, metavar="OUT", help="output table: .csv or .json")
    s.add_argument("--quiet", "-q", action="store_true", help="no summary line")
    s.add_argument("--force", "-f", action="store_true", help="overwrite OUT if it exists")
    s.set_defaults(func=_select)

    p = sub.add_parser("plot", help="figures: k-mer spectrum, k-attr density, attribution logo, selection",
                       description="Write a figure (.png, .pdf or .svg). Needs matplotlib (pip install "
                                   "'acme_fast[plot]').")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("-o", "--output", required=True, metavar="FIG", help="output figure: .png, .pdf or .svg")
        q.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary line")
        q.add_argument("--force", "-f", action="store_true", help="overwrite FIG if it exists")
        q.set_defaults(func=_plot)

    def attr_args(q: argparse.ArgumentParser, seqs: bool) -> None:
        q.add_argument("attr", metavar="ATTR", help="attribution file (.npy, .npz, .h5, .zarr)")
        if seqs:
            q.add_argument("--seqs", required=True, metavar="SEQS", help="one-hot sequences (or FASTA)")
            q.add_argument("--seqs-dataset", metavar="NAME", help="dataset / member / array of --seqs")
        q.add_argument("--dataset", metavar="NAME", help="dataset / member / array of ATTR")
        q.add_argument("--layout", **layout_kw)

    k = kinds.add_parser("kmer", help="k-mer spectrum of the attributed intervals against the prior",
                         description="Frequency of every k-mer inside the attributed intervals of ATTR (bars), the "
                                     "prior of all k-mers of SEQS over them (line), and the most attributed k-mers "
                                     "listed beside the plot (Fig. 2d of the paper).")
    attr_args(k, True)
    k.add_argument("--k", type=int, default=6, help="k-mer length (default 6)")
    k.add_argument("--top", type=int, default=10, help="k-mers to label (default 10)")
    k.add_argument("--preset", choices=("paper", "acme"), default="paper",
                   help="paper: the method as the paper describes it (default); acme: the published code's numbers")
    common(k)
    t = kinds.add_parser("kattr", help="angular density of the k-attr-mean metric",
                         description="Density of the directions of the strongest attribution windows of ATTR over the "
                                     "two angles of the k-attr-mean metric (Fig. 2e/f of the paper); dense spots are "
                                     "recurring patterns.")
    attr_args(t, False)
    t.add_argument("--preset", choices=("paper", "acme"), default="paper",
                   help="paper: the method as the paper describes it (default); acme: the published code's numbers")
    t.add_argument("--log", action="store_true", help="logarithmic colour scale")
    common(t)
    lg = kinds.add_parser("logo", help="attribution logo of one sequence (grad x input)",
                          description="Sequence logo of the attribution (grad x input) of sequence --index, with the "
                                      "ground truth above it when given (Fig. 2g of the paper). Long sequences are "
                                      "drawn in a window around the most attributed position; the title says which "
                                      "positions are shown.")
    attr_args(lg, True)
    lg.add_argument("--index", type=int, required=True, metavar="I", help="index of the sequence")
    lg.add_argument("--ground-truth", metavar="X_MODEL", help="per-position base probabilities (synthetic data)")
    lg.add_argument("--ground-truth-dataset", metavar="NAME", help="dataset / member / array of --ground-truth")
    lg.add_argument("--window", type=int, metavar="W",
                    help="draw W positions centred on the most attributed one (default: 100 for sequences longer "
                         "than 100; the title always says which positions are drawn)")
    lg.add_argument("--start", type=int, metavar="S", help="first position to draw (0-based; with --stop)")
    lg.add_argument("--stop", type=int, metavar="E", help="end of the drawn positions (exclusive)")
    common(lg)
    sel = kinds.add_parser("selection", help="performance against consistency, one point per model",
                           description="One point per model of TABLE: performance against consistency, kept models "
                                       "filled, the Pareto front joined and named, the performance cutoff dashed "
                                       "(Fig. 3a/b of the paper).")
    sel.add_argument("table", metavar="TABLE", help="table with one row per model (.csv or .json)")
    sel.add_argument("--performance", required=True, metavar="COL",
                     help="column of the performance score (x axis), e.g. auroc")
    sel.add_argument("--consistency", required=True, metavar="COL",
                     help="column of the consistency score (y axis), e.g. kattr_kld")
    sel.add_argument("--color-by", metavar="COL", help="column that colours the points (one colour per group)")
    sel.add_argument("--label", metavar="COL",
                     help="annotate every point with this column (default: the Pareto front and the top-ranked model, "
                          "by the 'model' column)")
    g = sel.add_mutually_exclusive_group()
    g.add_argument("--tolerance", type=float, metavar="X",
                   help="draw the cutoff of models within X of the best performance (default: from the table's "
                        "'kept' column, if it has one)")
    g.add_argument("--min-performance", type=float, metavar="X", help="draw the cutoff at performance X")
    sel.add_argument("--title", metavar="TEXT", help="figure title (default: the table's file name)")
    common(sel)


# ----------------------------------------------------------------------------- synthetic data
def _synth(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = _check_out(args.output, args.force, (".h5", ".hdf5"))
    _check_pos("--n", args.n, 2)
    _check_pos("--length", args.length)
    _check_pos("--seed", args.seed, 0)
    _cli_need("h5py", "-o: writing .h5", "io")
    from acme_fast.synthetic import make_dataset

    data = make_dataset(n=args.n, length=args.length, seed=args.seed, jaspar_release=args.jaspar_release,
                        progress=_show_progress(args.quiet))
    data.save(out, overwrite=args.force)
    if not args.quiet:
        sizes = " / ".join(str(getattr(data, f"X_{s}").shape[0]) for s in ("train", "valid", "test"))
        print(f"acme-fast synth: {args.n} sequences of {args.length} bp (train / valid / test {sizes}, "
              f"seed {args.seed}, {args.jaspar_release}) written to {out} ({time.perf_counter() - t0:.1f} s)",
              file=sys.stderr)
    return 0


def _add_synth_command(sub: Any) -> None:
    y = sub.add_parser(
        "synth", help="generate the synthetic regulatory-code benchmark (Koo & Ploenzke 2021) as one .h5 file",
        description="Generate the synthetic benchmark of the paper from JASPAR motifs (needs pyjaspar: pip install "
                    "'acme_fast[synth]'): positives hold core motifs (SP1, Gabpa, CEBPB, MAX, YY1), negatives "
                    "also background motifs. Writes X_{train,valid,test} (one-hot), Y_* (labels), model_* (the "
                    "sequence models, ground truth for attributions), all (N, L, 4), and the motif annotations.",
    )
    y.add_argument("-o", "--output", required=True, metavar="OUT", help="output file: .h5 or .hdf5")
    y.add_argument("--n", type=int, default=20000, help="number of sequences, half positive (default 20000)")
    y.add_argument("--length", type=int, default=200, help="sequence length (default 200)")
    y.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    y.add_argument("--jaspar-release", default="JASPAR2016", metavar="NAME",
                   help="JASPAR database shipped in pyjaspar (default JASPAR2016)")
    y.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary line")
    y.add_argument("--force", "-f", action="store_true", help="overwrite OUT if it exists")
    y.set_defaults(func=_synth)


# ----------------------------------------------------------------------------- reproduce
def _reproduce(args: argparse.Namespace) -> int:
    if args.sweep:
        if args.method != "saliency" or args.n_samples is not None or args.steps is not None:
            raise CLIError("--method/--n-samples/--steps apply to the shipped models (without --sweep)")
        return _reproduce_sweep(args)
    if args.models is None:
        raise CLIError("--models is required (or use --sweep)")
    for opt in ("epochs", "trials", "width"):
        if getattr(args, opt) is not None:
            raise CLIError(f"--{opt} only applies with --sweep")
    if args.full:
        raise CLIError("--full only applies with --sweep")
    for opt, default in (("strategies", None), ("start_trial", 0), ("save_attributions", False)):
        if getattr(args, opt) != default:
            raise CLIError(f"--{opt.replace('_', '-')} only applies with --sweep")
    if args.n is None:
        args.n = 20000
    t0 = time.perf_counter()
    models = Path(args.models)
    if not models.is_dir():
        raise CLIError(f"--models: no such directory: {args.models!r}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out: {args.out!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise CLIError(f"--out: {args.out!r} is not empty (use --force to write into it)")
    _check_pos("--n", args.n, 2)
    _check_pos("--seed", args.seed, 0)
    if args.limit is not None:
        _check_pos("--limit", args.limit)
    from acme_fast.reproduce import figures, score_shipped, summarise

    dataset = args.dataset
    mkw: dict[str, Any] = {}
    if args.n_samples is not None:
        if args.method != "smoothgrad":
            raise CLIError("--n-samples only applies with --method smoothgrad")
        _check_pos("--n-samples", args.n_samples)
        mkw["n_samples"] = args.n_samples
    if args.steps is not None:
        if args.method != "ig":
            raise CLIError("--steps only applies with --method ig")
        _check_pos("--steps", args.steps)
        mkw["steps"] = args.steps
    if args.method != "saliency":
        mkw["seed"] = args.seed
    table = score_shipped(models, dataset=dataset, n=args.n, seed=args.seed, limit=args.limit,
                          progress=_show_progress(args.quiet), method=_METHODS[args.method], method_kwargs=mkw)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "scores.csv", index=False)
    summary = summarise(table)
    summary.update(n_sequences=args.n if dataset is None else None, seed=args.seed, limit=args.limit,
                   dataset=dataset, method=_METHODS[args.method], method_kwargs=mkw,
                   seconds=time.perf_counter() - t0)
    with open(out / "summary.json", "w") as fh:
        json.dump(summary, fh, indent=2, default=float)
    figures(table, out)
    if not args.quiet:
        o = summary["overall"]
        print(f"acme-fast reproduce: {len(table)} models scored in {time.perf_counter() - t0:.0f} s; Spearman with "
              "GT SNR: " + ", ".join(f"{k} {v:.2f}" for k, v in o.items()) + f"; written to {out}", file=sys.stderr)
    return 0


def _reproduce_sweep(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if args.models is not None:
        raise CLIError("--models does not apply with --sweep")
    if args.limit is not None:
        raise CLIError("--limit does not apply with --sweep")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out: {args.out!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise CLIError(f"--out: {args.out!r} is not empty (use --force to write into it)")
    from acme_fast.reproduce import SWEEP_FULL, SWEEP_REDUCED, figures, run_sweep, summarise

    cfg = dict(SWEEP_FULL if args.full else SWEEP_REDUCED)
    for opt in ("epochs", "trials", "width", "n", "learning_rate"):
        if getattr(args, opt) is not None:
            cfg[opt] = getattr(args, opt)
    _check_pos("--n", cfg["n"], 2)
    _check_pos("--epochs", cfg["epochs"])
    _check_pos("--trials", cfg["trials"])
    _check_pos("--seed", args.seed, 0)
    for opt in ("width", "learning_rate"):
        if not cfg[opt] > 0:
            raise CLIError(f"--{opt.replace('_', '-')}: expected a positive number, got {cfg[opt]!r}")
    _check_pos("--start-trial", args.start_trial, 0)
    groups = None
    if args.strategies is not None:
        from acme_fast.reproduce import sweep_groups
        from acme_fast.zoo import STRATEGIES

        wanted = [w.strip() for w in args.strategies.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in STRATEGIES]
        if unknown or not wanted:
            raise CLIError(f"--strategies: expected a comma-separated list among {', '.join(STRATEGIES)}, "
                           f"got {args.strategies!r}")
        groups = [g for g in sweep_groups() if g[0] in wanted]
    from acme_fast.synthetic import make_dataset

    dataset = args.dataset
    if dataset is None:
        dataset = make_dataset(n=cfg["n"], seed=args.seed, progress=_show_progress(args.quiet))
    table = run_sweep(dataset, groups=groups, trials=cfg["trials"], epochs=cfg["epochs"], width=cfg["width"],
                      learning_rate=cfg["learning_rate"], seed=args.seed, progress=_show_progress(args.quiet),
                      out_dir=out, full=bool(args.full), save_attributions=bool(args.save_attributions),
                      start_trial=args.start_trial)
    table.to_csv(out / "scores.csv", index=False)
    summary = summarise(table)
    summary.update(sweep=True, full=bool(args.full), epochs=cfg["epochs"], trials=cfg["trials"], width=cfg["width"],
                   learning_rate=cfg["learning_rate"], n_sequences=cfg["n"] if args.dataset is None else None,
                   seed=args.seed, dataset=args.dataset,
                   seconds=time.perf_counter() - t0)
    with open(out / "summary.json", "w") as fh:
        json.dump(summary, fh, indent=2, default=float)
    figures(table, out)
    if not args.quiet:
        o = summary["group_mean_spearman_trained"]
        f = summary["by_min_auroc"]["0.97"]
        print(f"acme-fast reproduce --sweep: {len(table)} models trained and scored in "
              f"{time.perf_counter() - t0:.0f} s; {summary['n_groups_trained']} of {summary['n_groups']} groups "
              f"reached mean test AUROC {summary['min_group_auroc']:g}; "
              "Spearman with GT SNR across their group means: " + ", ".join(f"{k} {v:.2f}" for k, v in o.items())
              + f"; over the {f['n_models']} models with AUROC >= 0.97: "
              + ", ".join(f"{k} {v:.2f}" for k, v in f.items() if k != "n_models")
              + f"; written to {out}", file=sys.stderr)
    return 0


def _add_reproduce_command(sub: Any) -> None:
    r = sub.add_parser(
        "reproduce", help="score the shipped synthetic-task CNNs (or, with --sweep, train the regulariser sweep) and "
                          "correlate with ground truth",
        description="Score every shipped model cnn_{deep,shallow}_{relu,exponential}_N.h5 on the synthetic "
                    "benchmark: test AUROC/AUPR, saliency ground-truth SNR/AUROC/AUPRC and both KLDs under both "
                    "presets on the positive test sequences. Writes scores.csv, summary.json (Spearman "
                    "correlations with the ground-truth SNR) and PNG figures into --out. With --sweep, trains the "
                    "paper's base CNN for every strategy x batch-norm x first-activation group instead and scores "
                    "each model the same way.",
    )
    r.add_argument("--models", metavar="DIR", help="folder of the shipped .h5 model files (required without --sweep)")
    r.add_argument("--sweep", action="store_true",
                   help="instead: train and score the regulariser sweep (7 strategies x BN on/off x relu/"
                        "exponential Table 1 base CNNs); default reduced CPU setting: 2 dropout-free burn-in epochs "
                        "+ up to 20, width 0.5, learning rate 0.003, batch 128, 1 trial, n 10000 (about 50 min on "
                        "2 cores)")
    r.add_argument("--epochs", type=int, default=None,
                   help="--sweep: training epochs after the burn-in (default 20; 100 with --full)")
    r.add_argument("--trials", type=int, default=None, help="--sweep: trials per group (default 1; 5 with --full)")
    r.add_argument("--width", type=float, default=None,
                   help="--sweep: filter width factor (default 0.5; 1 with --full)")
    r.add_argument("--learning-rate", type=float, default=None,
                   help="--sweep: Adam learning rate (default 0.003; 0.001, Adam's default, with --full)")
    r.add_argument("--full", action="store_true",
                   help="--sweep at the paper's scale: 100 epochs (early stopping only picks the best), width 1, "
                        "learning rate 0.001, 5 trials, n 20000 (for a GPU)")
    r.add_argument("--strategies", metavar="LIST", default=None,
                   help="--sweep: only these strategies (comma-separated; default all 7)")
    r.add_argument("--start-trial", type=int, default=0, metavar="T",
                   help="--sweep: number of the first trial (seed + trial; to add trials to an earlier run)")
    r.add_argument("--save-attributions", action="store_true",
                   help="--sweep: also save each model's saliency maps of the positive test sequences to "
                        "OUT/attributions/NAME.npy (input of acme-fast sensitivity)")
    r.add_argument("--out", required=True, metavar="DIR", help="output folder (must be empty unless --force)")
    r.add_argument("--n", type=int, default=None,
                   help="sequences of the generated dataset (default 20000; 10000 with --sweep unless --full)")
    r.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    r.add_argument("--dataset", metavar="H5", default=None,
                   help="use a saved synthetic dataset (acme-fast synth) instead of generating one")
    r.add_argument("--limit", type=int, default=None, metavar="K", help="only the first K models of each group")
    r.add_argument("--method", choices=("saliency", "smoothgrad", "ig"), default="saliency",
                   help="attribution method of the shipped models' maps (default saliency; the paper's Figure 5 uses "
                        "smoothgrad and ig)")
    r.add_argument("--n-samples", type=int, default=None, metavar="N", help="--method smoothgrad: noisy copies "
                                                                             "(default 50)")
    r.add_argument("--steps", type=int, default=None, metavar="N", help="--method ig: integration steps (default 25)")
    r.add_argument("--force", "-f", action="store_true", help="write into a non-empty --out")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bars or summary line")
    r.set_defaults(func=_reproduce)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
