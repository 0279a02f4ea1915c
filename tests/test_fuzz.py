"""Property-based fuzzing of every public function (tests/fuzz_driver.py), each target in its
own interpreter with a timeout: a segfault, an abort or a hang fails the test (with the last
input the driver logged) instead of killing the test run. The default suite runs a bounded
number of examples per target, the same on every run (about half a minute in all); ``pytest -m
slow`` runs many more, drawn afresh each time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("fuzz_driver.py")
TARGETS = ["kmer", "kattr", "misc", "compat", "select", "stream", "files"]


def _run(target: str, examples: int, timeout: float, tmp_path: Path, random: bool = False) -> None:
    log = tmp_path / f"fuzz_{target}.log"
    try:
        p = subprocess.run([sys.executable, str(DRIVER), target, str(examples), str(log)]
                           + (["--random"] if random else []), capture_output=True,
                           text=True, timeout=timeout, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        last = log.read_text().splitlines()[-1:] if log.exists() else []
        pytest.fail(f"fuzz target {target!r} hung (over {timeout} s); last input: {last}")
    last = log.read_text().splitlines()[-1:] if log.exists() else []
    if p.returncode < 0:
        pytest.fail(f"fuzz target {target!r} was killed by signal {-p.returncode}; last input: {last}\n"
                    f"{p.stderr[-4000:]}")
    assert p.returncode == 0 and p.stdout.strip().endswith("ok"), \
        f"fuzz target {target!r} failed; last input: {last}\n{p.stderr[-6000:]}"


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz(target, tmp_path):
    _run(target, 250, 240, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_long(target, tmp_path):
    _run(target, 3000, 1800, tmp_path, random=True)
