#!/usr/bin/env python
"""Peak resident memory of scoring a file on disk, for several file sizes: it must not grow with the file.

    python benchmarks/memory_peak.py --gib 1 8

For each size, writes (in 64 MiB chunks, never the whole array in memory) a float32 NLC
attribution .npy of that many GiB (L = 2048, N(0, 1)) and a uint8 one-hot .npy of the same
shape (a quarter of the size) into a temporary directory (``--dir``), then runs in a
subprocess, for preset paper and preset acme:

    python -m acme_fast score ATTR [--seqs X] -o OUT.csv --preset P -q -f

(``acme-fast score``: ``score_stream`` with the default batch of about 64 MiB, all
threads), with ``--seqs`` (metrics k-mer + k-attr) and without (k-attr only). The child's
peak RSS is its own ``ru_maxrss`` from ``os.wait4`` (per child, not the running maximum of
RUSAGE_CHILDREN). A row "python + import acme_fast" gives the interpreter's own share.
The files are deleted afterwards. RSS counts the file pages mapped in the process, not the
kernel's page cache (shared and reclaimable), which holds whatever of the file fits in RAM.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import genome_scale as gs  # noqa: E402


def run_child(cmd: list) -> tuple:
    """(peak RSS MiB, wall s, return code) of one child process."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    p.stderr.close()
    if p.returncode != 0:
        print(f"command failed ({p.returncode}): {' '.join(cmd)}\n{err}", file=sys.stderr)
    return ru.ru_maxrss / 1024, wall, p.returncode  # Linux: KiB


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--gib", type=float, nargs="+", default=[1.0, 8.0], help="attribution sizes in GiB (default 1 8)")
    ap.add_argument("--presets", nargs="+", default=["paper", "acme"], choices=["paper", "acme"])
    ap.add_argument("--dir", default=None, help="where to write the files (default: $TMPDIR or /tmp)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    py = sys.executable
    rows = []
    rss, wall, _ = run_child([py, "-c", "import acme_fast, acme_fast.stream, acme_fast.cli"])
    rows.append(("—", "—", "python + import acme_fast", rss, wall, 0))
    for gib in args.gib:
        n = gs.n_for_bytes(gib * 2**30)
        with tempfile.TemporaryDirectory(prefix="acme_mem_", dir=args.dir) as d:
            t = time.perf_counter()
            a, x = gs.write_inputs(d, n, seed=args.seed)
            size = f"{os.path.getsize(a) / 2**30:.2f} GiB attr + {os.path.getsize(x) / 2**30:.2f} GiB x (N = {n})"
            print(f"wrote {size} in {time.perf_counter() - t:.1f} s to {d}", flush=True)
            out = os.path.join(d, "out.csv")
            for preset in args.presets:
                for metrics, extra in (("kmer + kattr", ["--seqs", str(x)]), ("kattr", [])):
                    cmd = [py, "-m", "acme_fast", "score", str(a), *extra, "-o", out, "--preset", preset, "-q", "-f"]
                    rss, wall, rc = run_child(cmd)
                    rows.append((size, preset, metrics, rss, wall, rc))
                    print(f"  {preset:5s} {metrics:12s} peak RSS {rss:7.1f} MiB  wall {wall:6.1f} s"
                          + ("" if rc == 0 else f"  FAILED rc={rc}"), flush=True)
    print("\n| input | preset | metrics | peak RSS MiB | wall s |")
    print("|---|---|---|--:|--:|")
    for size, preset, metrics, rss, wall, rc in rows:
        print(f"| {size} | {preset} | {metrics} | {rss:.0f} | {wall:.1f}{'' if rc == 0 else ' (failed)'} |")
    return 1 if any(r[5] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
