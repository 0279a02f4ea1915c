"""Limits of one call: threads, and memory estimated before anything is allocated.

The kernels keep per-thread tables (k-mer counts, angular histograms), so the memory a call
needs follows from its parameters (``k``, ``bin_width``, ``n_threads``) more than from the
data. It is estimated here, before the kernels allocate, and a call that would not fit in the
memory available to this process (free memory, cgroup limit and address-space limit, the
smallest) is refused with a :class:`MemoryError` that names the parameter that drives it. An
allocation that fails anyway inside a kernel arrives as ``MemoryError`` too (never an abort).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import _core

__all__ = ["thread_limit", "available_memory", "check_memory", "kmer_table_bytes", "kattr_hist_bytes"]


def thread_limit() -> int:
    """The largest ``n_threads`` a call accepts: 4 threads per core, at least 64, at most 1024.

    More threads than that only add per-thread tables and thread start-up; the OpenMP runtime
    fails outright (or crashes) when it cannot create the threads it is asked for.
    """
    cores = os.cpu_count() or 1
    return int(min(int(_core.thread_limit), max(64, 4 * cores)))


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def _address_space_available() -> int | None:
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    try:
        vm_pages = int(Path("/proc/self/statm").read_text().split()[0])
        used = vm_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        used = 0
    return max(0, int(soft) - used)


def available_memory() -> int | None:
    """Bytes this process can still allocate (the smallest of free memory, the cgroup limit and
    the address-space limit), or None when none of them can be read."""
    vals = [v for v in (_meminfo_available(), _cgroup_available(), _address_space_available()) if v is not None]
    return min(vals) if vals else None


def _gib(n: float) -> str:
    if n >= 2**80:
        return f"{int(n) >> 30:.3g} GiB"
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


def check_memory(nbytes: float, param: str, what: str, fix: str) -> None:
    """Raise MemoryError if ``nbytes`` exceed the memory available now.

    The message names ``param`` (the argument that drives the need), says ``what`` needs it and
    how to ``fix`` it.
    """
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise MemoryError(f"{param}: {what} need about {_gib(nbytes)}, more than the {_gib(avail)} available to this "
                          f"process; {fix}")


def kmer_table_bytes(k: int, n_threads: int, prior: bool) -> int:
    """Bytes of the k-mer count tables of one call (per-thread tables for k <= 8, shared above),
    their copies to numpy and the prior."""
    nk = 4**k
    tables = 2 if prior else 1
    per_thread = n_threads if nk <= 2**16 else 1
    return 8 * nk * (tables * per_thread + tables + 2)


def kattr_hist_bytes(n_bins: int, n_threads: int) -> int:
    """Bytes of the angular histograms of one call: per thread 64 bytes a bin (exact sum and two
    fast copies), plus the merged histogram, its copies and the prior's window sums."""
    nb2 = n_bins * n_bins
    return nb2 * (64 * n_threads + 7 * 32 + 3 * 8)


class out_of_memory:  # noqa: N801  (used as a context manager: ``with out_of_memory(...)``)
    """Re-raise a MemoryError from a kernel (a failed allocation inside C++) with a message that
    names the parameter that drives the memory and how to need less."""

    def __init__(self, param: str, fix: str) -> None:
        self.param, self.fix = param, fix

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc_type is not None and issubclass(exc_type, MemoryError) and not str(exc).startswith(self.param):
            raise MemoryError(f"{self.param}: the kernel ran out of memory ({exc}); {self.fix}") from None
        return False
