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


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _demo(args: argparse.Namespace) -> int:
    import acme_fast as af
    from acme_fast.demo import make_demo_data

    t0 = time.perf_counter()
    data = make_demo_data(n=args.n, length=args.length, seed=args.seed)
    sets = {"focused": data.focused, "diffuse": data.diffuse}
    jobs = [(name, metric) for name in sets for metric in ("kmer", "kattr", "kattr_acme", "groundtruth")]
    rows: dict[str, dict[str, float]] = {name: {} for name in sets}
    for name, metric in tqdm(jobs, desc="scoring", disable=args.quiet, leave=False):
        attr = sets[name]
        nt = args.threads
        if metric == "kmer":
            rows[name]["kmer_kld"] = af.kmer_kld(data.x, attr, k=args.k, n_threads=nt).kld
        elif metric == "kattr":
            rows[name]["kattr_kld"] = af.kattr_kld(attr, n_threads=nt).kld
        elif metric == "kattr_acme":
            rows[name]["kattr_kld_acme"] = af.kattr_kld(attr, preset="acme", n_threads=nt).kld
        else:
            gt = af.groundtruth_scores(data.x, attr, data.x_model, n_threads=nt)
            rows[name]["gt_auroc"] = gt.mean_auroc
            rows[name]["gt_snr"] = gt.mean_snr
    cols = ["kmer_kld", "kattr_kld", "kattr_kld_acme", "gt_auroc", "gt_snr"]
    print(f"acme_fast demo: {args.n} sequences of {args.length} bp with planted motifs "
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
    """The output path, checked before any work: known extension, existing directory, no overwrite."""
    out = Path(path)
    if out.suffix.lower() not in _OUTPUTS:
        raise CLIError(f"-o/--output: expected a file name ending in .csv or .json, got '{path}'")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"-o/--output: directory '{parent}' does not exist")
    if out.is_dir():
        raise CLIError(f"-o/--output: '{path}' is a directory")
    if out.exists() and not force:
        raise CLIError(f"-o/--output: '{path}' exists; pass --force to overwrite it")
    return out


def _table_columns(rows: list[dict[str, Any]]) -> list[str]:
    from acme_fast.stream import ROW_KEYS

    present = {k for row in rows for k in row}
    cols = [k for k in ROW_KEYS if k in present]
    for row in rows:  # keys we do not know about (from another implementation) go last, in order
        cols += [k for k in row if k not in cols]
    return cols


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/Inf
    if hasattr(v, "item"):
        return _json_value(v.item())
    return v


def _write_table(rows: list[dict[str, Any]], out: Path) -> None:
    """Write rows as CSV or JSON (by extension), atomically: a temporary file, then os.replace."""
    cols = _table_columns(rows)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent if str(out.parent) else ".")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            if out.suffix.lower() == ".json":
                json.dump([{c: _json_value(row.get(c)) for c in cols} for row in rows], f, indent=2)
                f.write("\n")
            else:
                w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
                w.writeheader()
                for row in rows:
                    w.writerow({c: "" if row.get(c) is None else row.get(c) for c in cols})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _score(args: argparse.Namespace) -> int:
    from acme_fast.io import check_attr_dtype, check_onehot_dtype, check_pair, open_source
    from acme_fast.stream import score_row, score_stream

    t0 = time.perf_counter()
    out = _check_output(args.output, args.force)
    for name, v, lo in (("--k", args.k, 1), ("--window", args.window, 1), ("--batch-size", args.batch_size, 1),
                        ("--threads", args.threads, 1)):
        if v is not None and v < lo:
            raise CLIError(f"{name}: expected an integer >= {lo}, got {v}")
    metrics = ("kmer", "kattr") if args.seqs is not None else ("kattr",)
    kw: dict[str, Any] = {"window": args.window}
    if args.seqs is not None:
        kw["k"] = args.k
    if args.quantile is not None:
        kw["quantile"] = args.quantile
    if len(set(args.attr)) != len(args.attr):
        dup = next(a for a in args.attr if args.attr.count(a) > 1)
        raise CLIError(f"ATTR: '{dup}' is given more than once")

    # Check every input before scoring any: a bad last file must not cost the first file's run.
    with ExitStack() as stack:
        x_src = None
        if args.seqs is not None:
            x_src = stack.enter_context(open_source(args.seqs, args.seqs_dataset, args.layout, name="seqs"))
            check_onehot_dtype(x_src)
        shapes = []
        for path in args.attr:
            with open_source(path, args.dataset, args.layout, name="attr") as a_src:
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
                                   progress=not args.quiet, dataset=args.dataset, layout=args.layout,
                                   n_threads=args.threads, **kw)
                rows.append(score_row(path, shape, res, preset=args.preset, layout=args.layout, **kw))
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
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="score a focused and a diffuse attribution set on built-in data")
    d.add_argument("--n", type=int, default=1000, help="number of sequences (default 1000)")
    d.add_argument("--length", type=int, default=200, help="sequence length (default 200)")
    d.add_argument("--k", type=int, default=4,
                   help="k-mer length (default 4: with 1000 sequences, longer k-mers are too sparse)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress bar or timing line")
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
    s.add_argument("--threads", type=int, default=None, metavar="N", help="threads (default: all cores)")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary line")
    s.add_argument("--force", "-f", action="store_true", help="overwrite the output table if it exists")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="score on a Dask cluster (e.g. tcp://host:8786); needs pip install 'acme_fast[dask]'")
    s.set_defaults(func=_score)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except (CLIError, ValueError, TypeError, OSError, ImportError) as exc:
        print(f"acme-fast {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
