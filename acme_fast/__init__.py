"""acme_fast: which of your DNA-sequence models give consistent attribution maps?

Fast C++ implementations of the consistency metrics of Majdandzic, Rajesh et al. (PMLR
2022), "Selecting deep neural networks that yield consistent attribution-based
interpretations for genomics": the k-mer KLD and the k-attr-mean KLD, plus ground-truth
attribution quality for synthetic data.
"""

from . import _core
from ._results import GroundTruthResult, KattrResult, KmerResult
from .groundtruth import groundtruth_scores
from .kattr import KattrAccumulator, gauge_correct, kattr_kld
from .kmer import KmerAccumulator, kmer_kld, kmer_names, kmer_prior

__version__ = "0.1.0"

#: True when the kernels were compiled with OpenMP (parallel over sequences).
has_openmp: bool = bool(_core.has_openmp)


# Heavier parts load on first use, so that ``import acme_fast`` needs neither TensorFlow,
# matplotlib nor Dask: ``acme_fast.score_model`` imports TensorFlow when first touched.
_LAZY_ATTRS = {
    "score_model": ("scoring", "score_model"),
    "score_models": ("scoring", "score_models"),
    "select_models": ("select", "select_models"),
    "score_stream": ("stream", "score_stream"),
    "find_motifs": ("motifs", "find_motifs"),
    "match_motifs": ("motifs", "match_motifs"),
    "MotifAccumulator": ("motifs", "MotifAccumulator"),
    "sensitivity": ("_sensitivity", "sensitivity"),
}
_LAZY_MODULES = (
    "attribution", "compat", "dask", "demo", "io", "motifs", "plot", "report", "scoring", "select", "stream",
    "synthetic", "zoo",
)


def __getattr__(name: str):
    import importlib

    if name in _LAZY_ATTRS:
        module, attr = _LAZY_ATTRS[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'acme_fast' has no attribute {name!r}")


def __dir__() -> list[str]:
    # the lazily loaded names too (score_model, score_models, ...), for tab completion and help
    return sorted(set(globals()) | set(_LAZY_ATTRS) | set(_LAZY_MODULES))


def max_threads() -> int:
    """Threads the kernels use when ``n_threads=None``."""
    return int(_core.max_threads(0))


#: Instruction-set tiers of the kernels: x86-64 has scalar < avx2 < avx512, arm64 scalar < neon.
SIMD_LEVELS = ("scalar", "avx2", "avx512", "neon")


def simd_level() -> str:
    """The vector instructions the kernels use now: ``"avx512"``, ``"avx2"``, ``"neon"`` or ``"scalar"``.

    Chosen once at import from the CPU (one wheel runs on every CPU of its architecture), or forced
    to a tier this CPU has by the environment variable ``ACME_FAST_SIMD`` (read at import) or
    :func:`set_simd_level`. Every tier gives bit-identical results; the vector ones are faster.
    """
    return str(_core.simd_level())


def set_simd_level(level: str | None) -> str:
    """Run the kernels on one instruction-set tier (one of :data:`SIMD_LEVELS`; ``None``: the CPU's best).

    For tests and benchmarks: results do not depend on it. A tier this CPU lacks is refused.
    Returns the tier that runs now (:func:`simd_level`).
    """
    if level is None:
        level = str(_core.cpu_simd_level())
    if level not in SIMD_LEVELS:
        raise ValueError(f"level: expected one of {SIMD_LEVELS} or None, got {level!r}")
    have = list(_core.simd_levels())
    if level not in have or not _core.set_simd_tier(level):
        raise ValueError(f"level: this CPU runs {', '.join(have)}; {level!r} is not available")
    return simd_level()


def _simd_from_env() -> None:
    import os
    import warnings

    level = os.environ.get("ACME_FAST_SIMD", "").strip().lower()
    if not level:
        return
    try:
        set_simd_level(level)
    except ValueError as exc:
        warnings.warn(f"ACME_FAST_SIMD={level!r} ignored: {str(exc).removeprefix('level: ')}", stacklevel=2)


_simd_from_env()


__all__ = [
    "gauge_correct",
    "kmer_prior",
    "kmer_kld",
    "kmer_names",
    "kattr_kld",
    "groundtruth_scores",
    "KmerAccumulator",
    "KattrAccumulator",
    "KmerResult",
    "KattrResult",
    "GroundTruthResult",
    "has_openmp",
    "max_threads",
    "simd_level",
    "set_simd_level",
    "SIMD_LEVELS",
    "score_model",
    "score_models",
    "select_models",
    "score_stream",
    "find_motifs",
    "match_motifs",
    "MotifAccumulator",
    "sensitivity",
]
