#!/usr/bin/env python
"""Streaming throughput with a cold page cache (and warm, for comparison): a printed table.

    python benchmarks/stream_cold.py                 # 2 GiB of float32 attributions (+ 512 MiB x)
    python benchmarks/stream_cold.py --mb 256 --repeats 3

Writes the inputs of benchmarks/test_stream.py (genome_scale.write_inputs) to a temporary
directory (``--dir``; deleted afterwards), then times every case of ``genome_scale.CASES``
(the read alone, score_stream k-attr paper / acme / k-mer ...) ``--repeats`` times:

* cold: ``sync; echo 3 > /proc/sys/vm/drop_caches`` before each timed call (needs root; if
  it is refused, the script says so and prints warm numbers only). The acme k-attr reads
  the file twice; its second pass finds the file in the page cache whenever it fits in RAM
  (only a file larger than free memory makes both passes cold).
* warm: after one untimed call, so the inputs are in the page cache.

Reported: the minimum time, positions/s (N × L / time), GB/s read from the files, and the
ratio to the read of the same inputs in the same state (cold / cold, warm / warm).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import genome_scale as gs  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--mb", type=float, default=2048, help="MiB of float32 attributions (default 2048)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per case and state (default 3)")
    ap.add_argument("--dir", default=None, help="where to write the files (default: $TMPDIR or /tmp)")
    ap.add_argument("--threads", type=int, default=None,
                    help="kernel threads (default: score_stream's, all cores but one)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import acme_fast

    n = gs.n_for_bytes(args.mb * 2**20)
    positions = n * gs.L_DEFAULT
    with tempfile.TemporaryDirectory(prefix="acme_cold_", dir=args.dir) as d:
        a, x = gs.write_inputs(d, n, seed=args.seed)
        print(f"N = {n}, L = {gs.L_DEFAULT}: attr {os.path.getsize(a) / 2**20:.0f} MiB float32, "
              f"x {os.path.getsize(x) / 2**20:.0f} MiB uint8, in {d}; acme_fast threads "
              f"{acme_fast.stream.stream_threads(args.threads)}, {os.cpu_count()} cpus", flush=True)
        why = gs.drop_caches()
        if why is not None:
            print(f"cannot drop the page cache ({why}): cold numbers not measured", flush=True)
        res: dict = {"warm": {}, "cold": {}}
        for name in gs.CASES:
            nbytes = gs.case_bytes(name, a, x)
            gs.run_case(name, a, x, args.threads)  # warm-up: loads the cache, starts the thread pool
            tw = [gs.timed(lambda name=name: gs.run_case(name, a, x, args.threads)) for _ in range(args.repeats)]
            res["warm"][name] = (min(tw), nbytes, statistics.median(tw))
            if why is None:
                tc = []
                for _ in range(args.repeats):
                    gs.drop_caches()
                    tc.append(gs.timed(lambda name=name: gs.run_case(name, a, x, args.threads)))
                res["cold"][name] = (min(tc), nbytes, statistics.median(tc))
            c = res["cold"].get(name)
            print(f"  {name}: warm min {min(tw):.3f} s" + ("" if c is None else f", cold min {c[0]:.3f} s"),
                  flush=True)

    ref = gs.ref_map()
    print(f"\nmin of {args.repeats} calls each; ratio = time / time of the read of the same inputs, same cache state\n")
    print("| case | warm s | warm M pos/s | warm ratio | cold s | cold M pos/s | cold GB/s | cold ratio |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for name in gs.CASES:
        w = res["warm"][name]
        c = res["cold"].get(name)
        r = ref[name]
        wr = "—" if r == name else f"{w[0] / res['warm'][r][0]:.2f}"
        if c is None:
            cs = "— | — | — | —"
        else:
            cr = "—" if r == name else f"{c[0] / res['cold'][r][0]:.2f}"
            cs = f"{c[0]:.3f} | {positions / c[0] / 1e6:.1f} | {c[1] / c[0] / 1e9:.2f} | {cr}"
        print(f"| {name} | {w[0]:.3f} | {positions / w[0] / 1e6:.1f} | {wr} | {cs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
