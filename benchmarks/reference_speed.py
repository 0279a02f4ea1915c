"""Time the published reference code (github.com/crajesh6/acme) beside acme_fast, in one run.

    python benchmarks/reference_speed.py --reference /path/to/acme [--n 4000 --length 2048]

The reference code is not part of this repository and never copied into it: give the path of a
checkout. Its k-mer pipeline (method 1) is imported from ``acme/utils.py``
(``compute_kmer_spectra_testset`` -> ``collect_passing_subsequences`` -> ``calculate_kmer_entropy``;
the modules that file imports but these functions never call, such as ``tfomics``, are stubbed when
missing); its k-attr pipeline (method 2: ``process_attribution_map`` ->
``spherical_coordinates_process_2_trad`` -> ``initialize_integration_2`` -> ``calculate_entropy_2``)
lives in ``notebooks/method_2_analysis.ipynb`` and is taken from the notebook's cell that defines
those functions. Each pipeline runs on the same data as ``acme_fast.kmer_kld`` /
``acme_fast.kattr_kld`` (``preset="acme"``, the reference's numbers) and as ``acme_fast.compat``'s
drop-ins; the KLDs are checked to agree (the reference rounds them to 3 decimals) before
the times are printed. ``--mask notebook`` passes method 2 the mask the published notebooks pass,
an (N, L) array of ones, instead of the scalar 1. The reference runs ``--ref-repeats`` times
(default 1: it takes minutes at the default size), ours ``--repeats`` times; the best time of each
is reported, with the ratios.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import types
from pathlib import Path

import numpy as np

_FUNCS_M2 = ("process_attribution_map", "spherical_coordinates_process_2_trad", "initialize_integration_2",
             "calculate_entropy_2")


def _stub_missing(names):
    """Empty stand-ins for modules the reference imports at the top of a file but the timed functions
    never use (so that a plain environment can import it)."""
    import importlib.util

    for name in names:
        if importlib.util.find_spec(name.split(".")[0]) is None:
            mod = types.ModuleType(name)

            def missing(attr, _n=name):
                if attr.startswith("__"):
                    raise AttributeError(attr)

                def stub(*args, **kwargs):
                    raise RuntimeError(f"{_n}.{attr} is a stub (module not installed)")

                return stub

            mod.__getattr__ = missing
            sys.modules[name] = mod


def load_reference(path: Path) -> tuple[types.ModuleType, dict]:
    """The reference's ``acme.utils`` module and a namespace with its method-2 functions."""
    if not (path / "acme" / "utils.py").is_file():
        raise SystemExit(f"--reference: {str(path)!r} is not a checkout of crajesh6/acme (no acme/utils.py)")
    nb_path = path / "notebooks" / "method_2_analysis.ipynb"
    if not nb_path.is_file():
        raise SystemExit(f"--reference: {str(nb_path)!r} not found")
    _stub_missing(["tfomics", "filelock", "multiprocess", "logomaker", "six", "six.moves"])
    if "six.moves" in sys.modules and not hasattr(sys.modules["six.moves"], "cPickle"):
        import pickle

        sys.modules["six.moves"].cPickle = pickle
        sys.modules["six"].moves = sys.modules["six.moves"]
    sys.path.insert(0, str(path))
    import acme.utils as ref_utils  # noqa: E402 - from the checkout given

    nb = json.loads(nb_path.read_text())
    ns: dict = {}
    exec("import numpy as np\nfrom scipy.special import kl_div, rel_entr\n", ns)  # noqa: S102
    for cell in nb["cells"]:
        src = "".join(cell.get("source", []))
        if cell.get("cell_type") == "code" and all(f"def {f}(" in src for f in _FUNCS_M2):
            exec(compile(src, f"{nb_path}:method-2 cell", "exec"), ns)  # noqa: S102 - the given checkout
            break
    missing = [f for f in _FUNCS_M2 if f not in ns]
    if missing:
        raise SystemExit(f"--reference: the notebook defines no cell with {missing}")
    return ref_utils, ns


def best_time(f, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", required=True, type=Path, help="a checkout of github.com/crajesh6/acme")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--length", type=int, default=2048)
    ap.add_argument("--k", type=int, default=6, help="k-mer length (default 6)")
    ap.add_argument("--threads", type=int, default=None, help="acme_fast threads (default all)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ref-repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mask", choices=("one", "notebook"), default="one",
                    help="the mask passed to spherical_coordinates_process_2_trad: the scalar 1 (default), or the "
                         "published notebooks' unit_mask, np.sum(np.ones(X.shape), axis=-1) / 4, an (N, L) array of "
                         "ones (built once, outside the timings)")
    a = ap.parse_args()

    import acme_fast as af
    from acme_fast import compat as C

    ref, m2 = load_reference(a.reference.resolve())
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from datagen import make_atac  # the benchmarks' data: one-hot x, float32 maps peaking on planted motifs

    d = make_atac(a.n, a.length, seed=a.seed)
    x, attr = d["x_f32"], d["attr"]
    ac = attr - attr.mean(axis=-1, keepdims=True)  # method 1 takes gauge-corrected maps
    k, q = a.k, 0.9
    quiet = contextlib.redirect_stderr(io.StringIO())  # the reference's tqdm bars
    mask = 1 if a.mask == "one" else np.sum(np.ones(x.shape), axis=-1) / 4

    def ref_kmer():
        with quiet:
            prior = ref.compute_kmer_spectra_testset(x, k)
            seq_list, _ = ref.collect_passing_subsequences(ac, x, q, k)
            return ref.calculate_kmer_entropy(x, seq_list, prior, k)[0]

    def compat_kmer():
        prior = C.compute_kmer_spectra_testset(x, k)
        seq_list, _ = C.collect_passing_subsequences(ac, x, q, k)
        return C.calculate_kmer_entropy(x, seq_list, prior, k)[0]

    def ref_kattr():
        maps = m2["process_attribution_map"](attr)
        p1, p2, r = m2["spherical_coordinates_process_2_trad"]([maps], x, mask, 0.1)
        _, bl, bv, nb, _ = m2["initialize_integration_2"](0.1)
        return m2["calculate_entropy_2"](p1, p2, r, nb, bl, bv, 3)[0]

    def compat_kattr():
        maps = C.process_attribution_map(attr, k=3)
        p1, p2, r = C.spherical_coordinates_process_2_trad([maps], x, mask, radius_count_cutoff=0.1)
        _, bl, bv, nb, _ = C.initialize_integration_2(0.1)
        return C.calculate_entropy_2(p1, p2, r, nb, bl, bv, 3)[0]

    kw = {"n_threads": a.threads}
    runs = {
        "k-mer KLD": (ref_kmer, compat_kmer, lambda: af.kmer_kld(x, attr, k=k, quantile=q, preset="acme", **kw).kld),
        "k-attr-mean KLD": (ref_kattr, compat_kattr,
                            lambda: af.kattr_kld(attr, window=3, quantile=0.9, preset="acme", **kw).kld),
    }
    print(f"N = {a.n}, L = {a.length}, k = {k}; acme_fast {af.__version__}, SIMD {af.simd_level()}, "
          f"threads {af.max_threads() if a.threads is None else a.threads}; method-2 mask {a.mask}; "
          f"reference {a.reference}")
    print("\n| metric | reference | acme_fast.compat | acme_fast kernel | reference / kernel | compat / kernel |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, (f_ref, f_compat, f_kernel) in runs.items():
        t_kernel, v_kernel = best_time(f_kernel, a.repeats)
        t_compat, v_compat = best_time(f_compat, a.repeats)
        t_ref, v_ref = best_time(f_ref, a.ref_repeats)
        tol = 5e-4  # both reference pipelines round the KLD to 3 decimals
        if not (abs(float(v_ref) - float(v_kernel)) <= tol and abs(float(v_compat) - float(v_kernel)) <= tol):
            raise SystemExit(f"{name}: the results differ: reference {v_ref}, compat {v_compat}, kernel {v_kernel}")
        print(f"| {name} | {t_ref:.2f} s | {1e3 * t_compat:.0f} ms | {1e3 * t_kernel:.1f} ms | "
              f"{t_ref / t_kernel:.0f}x | {t_compat / t_kernel:.1f}x |")


if __name__ == "__main__":
    main()
