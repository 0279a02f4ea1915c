#!/usr/bin/env python
"""Summarise a pytest-benchmark JSON of benchmarks/test_bench.py as ratios; gate regressions.

    python benchmarks/compare.py bench.json                          # markdown table
    python benchmarks/compare.py bench.json --baseline benchmarks/baselines        # the run's SIMD tier
    python benchmarks/compare.py bench.json --write-baseline benchmarks/baselines/avx2.json

Per metric (and x dtype for the k-mer KLD) it reports, from the ``--stat`` time of each
benchmark (default ``min``, the least noisy estimate of the attainable time; ``median`` also
possible):

    kernel/floor   kernel with all threads (n_threads=None) / one numpy pass over the inputs
    kernel/numpy   kernel with all threads / vectorised numpy (benchmarks/numpy_impl.py)
    speedup 1->2   kernel n_threads=1 / kernel n_threads=2

Only ratios are compared with the baseline, never absolute times: the run fails (exit 1)
when the 1-thread kernel/floor ratio is more than ``--max-regression`` (default 2) times its
baseline value (1 thread: robust to other processes on a shared machine). Targets
(kernel/floor <= 4, speedup 1->2 >= 1.6) are reported, not enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone

TARGET_FLOOR = 4.0
TARGET_SPEEDUP = 1.6
# The gate uses the 1-thread kernel: on a shared 2-core machine another process can take a
# core and wreck the 2-thread time (seen: 2 threads slower than 1), while a regression in
# the kernel itself shows in the 1-thread time just as well. All ratios are still printed.
GATED = "kernel1_over_floor"
NOISY = 0.15  # warn when other processes used more than this fraction of the CPUs


def load_rows(path: str, stat: str) -> tuple:
    """{row key: {"floor", "numpy", "k1", "k2", "kall", "threads_all", "N", "L"}} and the JSON."""
    with open(path) as f:
        data = json.load(f)
    rows: dict = {}
    for b in data.get("benchmarks", []):
        info = b.get("extra_info") or {}
        if "metric" not in info or "impl" not in info:
            continue  # not one of ours
        key = info["metric"] + (f"[{info['variant']}]" if info.get("variant") else "")
        row = rows.setdefault(key, {"N": info.get("N"), "L": info.get("L")})
        t = float(b["stats"][stat])
        impl = info["impl"]
        if impl == "kernel":
            arg = info.get("threads_arg")
            if arg == "all":
                row["kall"] = t
                row["threads_all"] = info.get("threads")
            else:
                row[f"k{arg}"] = t
        else:
            row[impl] = t
    return rows, data


def ratios(row: dict) -> dict:
    def div(a, b):
        return row[a] / row[b] if a in row and b in row and row[b] > 0 else None

    return {
        "kernel1_over_floor": div("k1", "floor"),
        "kernel_over_floor": div("kall", "floor"),
        "kernel_over_numpy": div("kall", "numpy"),
        "speedup_1_to_2": div("k1", "k2"),
    }


def _ms(v) -> str:
    return "—" if v is None else (f"{v * 1e3:.1f}" if v * 1e3 >= 10 else f"{v * 1e3:.2f}")


def _r(v, fmt="{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def table(rows: dict, stat: str) -> str:
    out = [
        f"Times in ms ({stat} over rounds). kernel all = n_threads=None (threads in brackets).",
        "",
        "| metric | N × L | floor | numpy | kernel 1t | kernel 2t | kernel all | kernel/floor "
        f"(≤{TARGET_FLOOR:g}) | kernel/numpy | speedup 1→2 (≥{TARGET_SPEEDUP:g}) |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key, row in rows.items():
        r = ratios(row)
        f, s = r["kernel_over_floor"], r["speedup_1_to_2"]
        ok_f = "" if f is None else (" ✓" if f <= TARGET_FLOOR else " ✗")
        ok_s = "" if s is None else (" ✓" if s >= TARGET_SPEEDUP else " ✗")
        kall = _ms(row.get("kall")) + (f" ({row['threads_all']})" if row.get("threads_all") else "")
        kn = r["kernel_over_numpy"]
        kn_s = "—" if kn is None else f"{kn:.3f} ({1 / kn:.1f}× faster)"
        out.append(
            f"| {key} | {row['N']} × {row['L']} | {_ms(row.get('floor'))} | {_ms(row.get('numpy'))} | "
            f"{_ms(row.get('k1'))} | {_ms(row.get('k2'))} | {kall} | {_r(f)}{ok_f} | {kn_s} | {_r(s)}{ok_s} |"
        )
    return "\n".join(out)


def check_baseline(rows: dict, baseline: dict, factor: float, stat: str) -> list:
    """Messages for every kernel/floor ratio that regressed by more than ``factor``."""
    if baseline.get("stat", stat) != stat:
        print(f"warning: baseline uses stat {baseline.get('stat')!r}, this comparison {stat!r}", file=sys.stderr)
    bad = []
    print(f"\n| metric | baseline kernel(1 thread)/floor | now | now / baseline (fail > {factor:g}) |")
    print("|---|--:|--:|--:|")
    for key, base in baseline.get("ratios", {}).items():
        b = base.get(GATED)
        if key not in rows:
            bad.append(f"{key}: in the baseline but not measured in this run")
            continue
        cur = ratios(rows[key])[GATED]
        if b is None or cur is None:
            bad.append(f"{key}: {GATED} missing in the baseline or this run (regenerate the baseline "
                       "with --write-baseline if the benchmarks changed)")
            continue
        rel = cur / b
        flag = " **REGRESSION**" if rel > factor else ""
        print(f"| {key} | {b:.2f} | {cur:.2f} | {rel:.2f}{flag} |")
        if rel > factor:
            bad.append(f"{key}: 1-thread kernel/floor {cur:.2f} vs baseline {b:.2f} ({rel:.2f}x > {factor:g}x)")
    for key in rows:
        if key not in baseline.get("ratios", {}):
            print(f"note: {key} has no baseline entry", file=sys.stderr)
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("json", help="pytest-benchmark JSON (--benchmark-json=...)")
    ap.add_argument("--stat", default="min", choices=["min", "median", "mean"], help="time statistic (default min)")
    ap.add_argument("--baseline", help="baseline JSON to gate against (kernel/floor ratios only), or a folder "
                                       "of them named by SIMD tier (<tier>.json; the run's tier is used)")
    ap.add_argument("--max-regression", type=float, default=2.0,
                    help="fail when kernel/floor exceeds this many times its baseline (default 2)")
    ap.add_argument("--write-baseline", metavar="PATH", help="write the current ratios as a baseline")
    args = ap.parse_args(argv)

    rows, data = load_rows(args.json, args.stat)
    if not rows:
        print(f"error: no acme_fast benchmarks (with extra_info) in {args.json}", file=sys.stderr)
        return 2
    mi = data.get("machine_info", {})
    print(f"{args.json}: {mi.get('cpu', {}).get('brand_raw', '?')}, "
          f"{mi.get('cpu', {}).get('count', '?')} cpus, python {mi.get('python_version', '?')}, "
          f"{data.get('datetime', '?')}\n")
    ab = data.get("acme_bench") or {}
    if ab:
        print(f"mode {ab.get('mode')}, acme_fast max_threads {ab.get('max_threads')}, "
              f"openmp {ab.get('has_openmp')}, simd {ab.get('simd_level', '?')}, "
              "other processes' CPU use during the run "
              f"{100 * ab.get('other_cpu_fraction', float('nan')):.1f}%\n")
        if ab.get("other_cpu_fraction", 0.0) > NOISY:
            print(f"WARNING: other processes used more than {100 * NOISY:g}% of the CPUs during this run; "
                  "timings (thread speedups above all) are unreliable\n", file=sys.stderr)
    print(table(rows, args.stat))
    if ab.get("mode") == "short":
        print("note: the targets (kernel/floor <= 4, speedup >= 1.6) are stated for the full-size run "
              "(N = 4000; benchmarks/RESULTS.md). At N = 1000 the global scope's fixed costs (its "
              "sample of about 64 sequences, 2^16-bucket histograms) weigh 4x more.\n")

    if args.write_baseline:
        out = {
            "stat": args.stat,
            "note": "ratios only (kernel all threads / floor, / numpy; kernel 1 thread / 2 threads); "
                    "written by benchmarks/compare.py --write-baseline",
            "source": {
                "json": os.path.basename(args.json),
                "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "run_datetime": data.get("datetime"),
                "commit": (data.get("commit_info") or {}).get("id"),
                "cpu": mi.get("cpu", {}).get("brand_raw"),
                "cpus": mi.get("cpu", {}).get("count"),
                **{k: v for k, v in ab.items()
                   if k in ("mode", "N", "L", "GT_N", "GT_L", "other_cpu_fraction", "simd_level")},
            },
            "ratios": {
                k: {"N": row["N"], "L": row["L"], **{n: (None if v is None else round(v, 4))
                                                     for n, v in ratios(row).items()}}
                for k, row in rows.items()
            },
        }
        with open(args.write_baseline, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
        print(f"\nwrote baseline {args.write_baseline}")

    if args.baseline:
        path = args.baseline
        if os.path.isdir(path):
            # one baseline per SIMD tier (benchmarks/baselines/<tier>.json): compare like with like
            tier = ab.get("simd_level")
            path = os.path.join(path, f"{tier}.json")
            if not os.path.exists(path):
                have = sorted(n[:-5] for n in os.listdir(args.baseline) if n.endswith(".json"))
                print(f"\nnote: no baseline for SIMD tier {tier!r} in {args.baseline} (have {', '.join(have)}); "
                      f"not gated. Write one with --write-baseline {os.path.join(args.baseline, f'{tier}.json')}",
                      file=sys.stderr)
                return 0
            print(f"\nbaseline for SIMD tier {tier!r}: {path}")
        with open(path) as f:
            baseline = json.load(f)
        src = baseline.get("source", {})
        if src.get("mode") and ab.get("mode") and src["mode"] != ab["mode"]:
            print(f"note: baseline is from a {src['mode']}-mode run, this is {ab['mode']} mode; "
                  "ratios to the floor depend somewhat on size", file=sys.stderr)
        bad = check_baseline(rows, baseline, args.max_regression, args.stat)
        if bad and src.get("simd_level") and ab.get("simd_level") and src["simd_level"] != ab["simd_level"]:
            # The scalar fallback is about 2x slower than AVX-512 by design: not a regression.
            print(f"note: baseline measured with SIMD {src['simd_level']!r}, this run {ab['simd_level']!r}; "
                  "ratio differences are expected, reported but not gated:", file=sys.stderr)
            for m in bad:
                print("  " + m, file=sys.stderr)
            bad = []
        if bad:
            print("\nFAIL: kernel/floor regressed more than "
                  f"{args.max_regression:g}x against {path}:", file=sys.stderr)
            for m in bad:
                print("  " + m, file=sys.stderr)
            return 1
        print(f"\nOK: no kernel/floor ratio regressed more than {args.max_regression:g}x against {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
