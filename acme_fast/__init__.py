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


def simd_level() -> str:
    """The vector instructions the k-attr kernels use on this CPU: ``"avx512"`` or ``"scalar"``.

    Chosen at run time (one wheel runs everywhere). Both paths give bit-identical results; the
    AVX-512 one is faster.
    """
    return str(_core.simd_level())


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
    "score_model",
    "score_models",
    "select_models",
    "score_stream",
    "find_motifs",
    "match_motifs",
    "MotifAccumulator",
    "sensitivity",
]
