"""The numpy baselines agree with acme_fast (KLD to 1e-9 relative) on small inputs.

Runs without --benchmark-only: ``python -m pytest benchmarks/test_numpy_impl.py``.
(Benchmark runs perform the same check in an autouse fixture, and check every numpy
result of the timed data against the kernel's.)
"""

import numpy_impl
from datagen import check_numpy_impl_agrees


def test_numpy_impl_agrees_with_acme_fast():
    check_numpy_impl_agrees(numpy_impl)
