"""Genome-scale streaming throughput: ``score_stream`` from a .npy on disk against reading the file alone.

Groups ``stream_attr`` (inputs: attributions only) and ``stream_attr_x`` (attributions and
one-hot sequences). Every benchmark's ``extra_info`` has ``stream`` (the case), ``positions``
(N × L), ``bytes`` (read from disk, both passes for the acme k-attr) and ``ref`` (the read
it is compared with); it has no ``metric``/``impl`` keys, so ``compare.py`` ignores these.

The files are written once per session into a temporary directory (deleted afterwards):
float32 NLC attributions, N(0, 1), L = 2048, about 256 MiB in short mode
(``ACME_BENCH_SHORT=1``) and 2 GiB in full mode (``ACME_BENCH_STREAM_MB`` overrides), plus
uint8 one-hot sequences (a quarter of that). They are in the page cache while timed (warm);
``benchmarks/stream_cold.py`` measures the same cases with the cache dropped.

    python -m pytest benchmarks/test_stream.py --benchmark-only -p no:cacheprovider

A table of positions/s and ratios to the read is printed at the end of the run.
"""

from __future__ import annotations

import os
import tempfile

import genome_scale as gs
import pytest
from bench_config import SEED, SHORT

STREAM_MB = float(os.environ.get("ACME_BENCH_STREAM_MB", 256 if SHORT else 2048))
N_STREAM = gs.n_for_bytes(STREAM_MB * 2**20)
ROUNDS = 3
WARMUP = 1  # the first call of a process is slower (thread pool, allocator); the files are cached already


@pytest.fixture(scope="session")
def stream_files(request):
    cfg = request.config
    if cfg.getoption("benchmark_skip", False) and not cfg.getoption("benchmark_only", False):
        pytest.skip("benchmarks skipped (--benchmark-skip): no files written")
    with tempfile.TemporaryDirectory(prefix="acme_stream_") as d:
        a, x = gs.write_inputs(d, N_STREAM, gs.L_DEFAULT, seed=SEED)
        gs.WARM_INFO.update(N=N_STREAM, L=gs.L_DEFAULT, attr_bytes=os.path.getsize(a), x_bytes=os.path.getsize(x))
        yield a, x


def _bench(benchmark, files, name):
    a, x = files
    kind, inputs, _ = gs.CASES[name]
    nbytes = gs.case_bytes(name, a, x)
    benchmark.extra_info.update(stream=name, positions=N_STREAM * gs.L_DEFAULT, bytes=nbytes,
                                ref=gs.REF[inputs], N=N_STREAM, L=gs.L_DEFAULT)
    out = benchmark.pedantic(gs.run_case, args=(name, a, x), rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    if kind == "read":
        assert out == N_STREAM
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        gs.WARM_RESULTS[name] = (stats.stats.min, nbytes)


ATTR_CASES = [n for n, (k, i, _) in gs.CASES.items() if i == "attr"]
ATTR_X_CASES = [n for n, (k, i, _) in gs.CASES.items() if i == "attr+x"]


def _id(name):
    return name.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "_")


@pytest.mark.benchmark(group="stream_attr")
@pytest.mark.parametrize("name", ATTR_CASES, ids=[_id(n) for n in ATTR_CASES])
def test_stream_attr(benchmark, stream_files, name):
    _bench(benchmark, stream_files, name)


@pytest.mark.benchmark(group="stream_attr_x")
@pytest.mark.parametrize("name", ATTR_X_CASES, ids=[_id(n) for n in ATTR_X_CASES])
def test_stream_attr_x(benchmark, stream_files, name):
    _bench(benchmark, stream_files, name)
