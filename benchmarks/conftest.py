"""Shared fixtures of the acme_fast benchmarks (sizes: see bench_config.py)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # numpy_impl, datagen

import datagen  # noqa: E402
import numpy_impl  # noqa: E402
from bench_config import GT_L, GT_N, SEED, SHORT, L, N  # noqa: E402


@pytest.fixture(scope="session")
def atac():
    """ATAC-sized data: dict(x_u8, x_f32, attr) NLC, generated once per session."""
    return datagen.make_atac(N, L, seed=SEED)


@pytest.fixture(scope="session")
def synthetic():
    """Synthetic data with a ground truth: dict(x_u8, attr, x_model)."""
    return datagen.make_synthetic(GT_N, GT_L, seed=SEED + 1)


@pytest.fixture(scope="session", autouse=True)
def numpy_impl_agrees():
    """The numpy baselines must compute what the kernels compute (small input, every session)."""
    datagen.check_numpy_impl_agrees(numpy_impl)


# ----------------------------------------------------------------------------- machine noise
def _busy_s():
    """CPU seconds all processes spent busy since boot (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(v[:3]) + sum(v[5:8])  # user nice system . iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _own_s():
    t = os.times()
    return t.user + t.system


_START: dict = {}


@pytest.fixture(scope="session", autouse=True)
def _record_machine_noise():
    _START.update(wall=time.monotonic(), busy=_busy_s(), own=_own_s())
    yield


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Add the run's settings and how busy the rest of the machine was to the JSON."""
    import acme_fast

    info = {"mode": "short" if SHORT else "full", "N": N, "L": L, "GT_N": GT_N, "GT_L": GT_L, "seed": SEED,
            "max_threads": acme_fast.max_threads(), "has_openmp": acme_fast.has_openmp,
            "simd_level": acme_fast.simd_level()}
    busy = _busy_s()
    if _START.get("busy") is not None and busy is not None:
        wall = time.monotonic() - _START["wall"]
        other = (busy - _START["busy"]) - (_own_s() - _START["own"])
        info["other_cpu_fraction"] = round(max(other, 0.0) / (wall * (os.cpu_count() or 1)), 4)
    import genome_scale

    if genome_scale.WARM_INFO:  # test_stream.py ran: its file sizes
        info["stream"] = dict(genome_scale.WARM_INFO)
    output_json["acme_bench"] = info


def pytest_report_header(config):
    mode = "short" if SHORT else "full"
    return f"acme_fast benchmarks: {mode} mode, N={N} L={L}; ground truth N={GT_N} L={GT_L}; seed={SEED}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After test_stream.py: positions/s and the ratio of each scoring case to the read of its inputs."""
    import genome_scale as gs

    if not gs.WARM_RESULTS:
        return
    info = gs.WARM_INFO
    order = {n: i for i, n in enumerate(gs.CASES)}
    times = dict(sorted(gs.WARM_RESULTS.items(), key=lambda kv: order[kv[0]]))
    title = (f"genome-scale streaming, warm page cache: N = {info.get('N')}, L = {info.get('L')}, attr "
             f"{info.get('attr_bytes', 0) / 2**20:.0f} MiB float32 + x {info.get('x_bytes', 0) / 2**20:.0f} MiB "
             f"uint8 (min over rounds)\n")
    terminalreporter.write_sep("-", "genome scale (test_stream.py)")
    terminalreporter.write_line(gs.table(times, info["N"] * info["L"], gs.ref_map(), title))
