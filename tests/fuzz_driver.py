"""Property-based fuzzing of the public API (hypothesis), run by tests/test_fuzz.py in a
subprocess with a timeout: a crash (signal) or a hang fails that test instead of killing the run,
and the last input written to the log file names the call that did it.

Usage: python fuzz_driver.py TARGET MAX_EXAMPLES LOGFILE [--random]

Every example starts from a valid call and replaces up to two arguments with adversarial values
(wrong types, out-of-range numbers, NaN/Inf, huge/tiny magnitudes, empty/ragged/mis-shaped,
non-contiguous, big-endian or odd-dtype arrays). The call must then either return (valid
inputs: the numpy reference's answer, bit-identical across thread counts and layouts) or raise
ValueError / TypeError / MemoryError (KeyError for a missing table column) whose message starts
with the name of an argument.
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acme_fast as af
from acme_fast import compat

LOG = None
#: Fixed example sequence (the default suite: the same examples on every run); random with --random.
DERANDOMIZE = "--random" not in sys.argv
SETTINGS = dict(deadline=None, database=None, derandomize=DERANDOMIZE, suppress_health_check=list(HealthCheck))


def log(line: str) -> None:
    LOG.write(line + "\n")
    LOG.flush()


# ------------------------------------------------------------------ values -----------------
BAD_SCALARS = [None, True, False, -(2**63), -1, 0, 1, 2, 3, 2**31, 2**62, 2**63 - 1, 10**30, -0.0, 0.5, 1.5, 1e-320,
               1e308, math.nan, math.inf, -math.inf, "", "x", "NCL", b"1", [], [1], (1, 2), 1 + 1j, np.int8(-3),
               np.float32("nan"), np.uint64(2**64 - 1)]


def bad_arrays(shape: tuple) -> st.SearchStrategy:
    """Arrays that are wrong in one way for an argument of ``shape`` (N, L, 4)."""
    n, L, c = shape

    def f(kind: int, seed: int) -> object:
        rng = np.random.default_rng(seed)
        base = rng.normal(size=shape)
        return [
            lambda: base[0],                               # 2-D
            lambda: base[None],                            # 4-D
            lambda: base[..., :3],                         # 3 channels
            lambda: np.zeros((0, L, c)),                   # empty N
            lambda: np.zeros((n, 0, c)),                   # empty L
            lambda: base.astype(np.complex128),            # complex
            lambda: base.astype(object),                   # object
            lambda: base.astype(str),                      # strings
            lambda: np.where(rng.random(shape) < 0.1, np.nan, base),
            lambda: np.where(rng.random(shape) < 0.1, np.inf, base),
            lambda: base * 1e300,                          # huge, finite
            lambda: base * 1e-310,                         # subnormal
            lambda: base.astype(">f8"),                    # big-endian
            lambda: base.astype(np.float16),
            lambda: np.asfortranarray(base),               # not C-contiguous
            lambda: base[:, ::-1, :],                      # negative strides
            lambda: np.round(base * 2).astype(np.int64),   # integers (not one-hot for x)
            lambda: base.tolist(),                         # nested lists
            lambda: [r.tolist() for r in base][:-1] + [base[-1, :-1].tolist()] if n > 1 else [[]],  # ragged
            lambda: rng.normal(size=(n + 1, L, c)),        # N mismatch
            lambda: rng.normal(size=(n, L + 1, c)),        # L mismatch
            lambda: np.swapaxes(base, 1, 2),               # the other layout
            lambda: "not an array",
            lambda: None,
        ][kind % 24]()

    return st.builds(f, st.integers(0, 23), st.integers(0, 2**32 - 1))


@st.composite
def dna(draw, min_len: int = 1, max_len: int = 30):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 5))
    L = draw(st.integers(min_len, max(min_len, max_len)))
    x = np.eye(4)[rng.integers(0, 4, (n, L))]
    x[rng.random((n, L)) < draw(st.sampled_from([0.0, 0.0, 0.2]))] = 0
    x = x.astype(draw(st.sampled_from([np.float32, np.float64, np.uint8, np.bool_])))
    scale = draw(st.sampled_from([1.0, 1.0, 1.0, 2.0**-600, 2.0**600, 1e-3]))
    a = (rng.normal(size=(n, L, 4)) * scale).astype(draw(st.sampled_from([np.float32, np.float64])) if scale == 1.0
                                                   else np.float64)
    return x, a


def per_sequence_scaled(a: np.ndarray) -> np.ndarray:
    """Each sequence divided by a power of two that brings its largest value to [1, 2): the
    metrics do not change (they normalise each sequence), and the numpy reference's squares
    neither overflow nor underflow."""
    m = np.abs(a).max(axis=(1, 2))
    e = np.where(m > 0, np.frexp(np.where(m > 0, m, 1.0))[1] - 1, 0)
    return np.ldexp(a.astype(np.float64), -e[:, None, None])


def mutate(draw, valid: dict, specs: dict) -> tuple[dict, list]:
    """Replace up to two arguments of ``valid`` with adversarial values; specs[name] -> strategy."""
    names = draw(st.lists(st.sampled_from(sorted(specs)), max_size=2, unique=True))
    args = dict(valid)
    for name in names:
        args[name] = draw(specs[name])
    return args, names


def check_outcome(call, names: list, allowed: set, label: str):
    """Run call(); valid -> its result; invalid -> an exception naming an argument."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call()
        except (ValueError, TypeError, MemoryError, KeyError, FileNotFoundError) as exc:
            msg = str(exc).strip("'\"")
            head = msg.split(":")[0].strip()
            head = head.split("[")[0]
            if " file '" in head or " member '" in head or " dataset '" in head:  # "attr file 'a.npy': ..."
                head = head.split(" ")[0]
            assert head in allowed, f"{label}: message does not start with an argument name: {msg!r} (mutated {names})"
            if not names:
                # a valid start was refused: only for reasons that depend on the drawn data
                assert any(s in msg for s in ("no k-mer", "shorter than", "zero for k-mer", "no data")), \
                    f"{label}: valid call refused: {msg!r}"
            return None


def scalars(*extra) -> st.SearchStrategy:
    return st.sampled_from(BAD_SCALARS + list(extra))


# ------------------------------------------------------------------ targets ----------------
def target_kmer(n: int) -> None:
    @settings(**SETTINGS, max_examples=n)
    @given(st.data())
    def run(data):
        x, a = data.draw(dna(min_len=1))
        k = data.draw(st.integers(1, 4))
        valid = dict(x=x, attr=a, k=k, quantile=0.9, buffer=2, prior=None, pseudocount=0.0, preset="paper",
                     layout="NLC", n_threads=None)
        specs = {"x": bad_arrays(x.shape), "attr": bad_arrays(a.shape), "k": scalars(13, 0, 12),
                 "quantile": scalars(1.0, 0.0, 0.999), "buffer": scalars(-5, 10**6),
                 "prior": st.sampled_from([np.ones(3), np.full(4**k, -1.0), np.full(4**k, np.nan), "p",
                                           np.zeros(4**k)]),
                 "pseudocount": scalars(), "preset": scalars("acme", "other"), "layout": scalars("ncl", "NLC "),
                 "n_threads": scalars(10**6, 65, 1024)}
        args, names = mutate(data.draw, valid, specs)
        log(f"kmer_kld mutated={names} " + repr({kk: (v.shape, v.dtype) if isinstance(v, np.ndarray) else v
                                                  for kk, v in args.items()}))
        res = check_outcome(lambda: af.kmer_kld(**args), names, set(valid) | {"other"}, "kmer_kld")
        if res is not None and not names and x.shape[1] >= k:
            want = ref.kmer_kld(np.asarray(x, dtype=np.float64), per_sequence_scaled(a), k=k)
            assert res.n_nucleotides == want["n_nucleotides"]
            np.testing.assert_array_equal(res.counts, want["counts"])
            for nt in (1, 3):
                r2 = af.kmer_kld(np.swapaxes(x, 1, 2), np.swapaxes(a, 1, 2), k=k, layout="NCL", n_threads=nt)
                assert (r2.kld == res.kld or (math.isnan(r2.kld) and math.isnan(res.kld)))
                np.testing.assert_array_equal(r2.counts, res.counts)

    run()


def target_kattr(n: int) -> None:
    @settings(**SETTINGS, max_examples=n)
    @given(st.data())
    def run(data):
        _, a = data.draw(dna(min_len=3))
        preset = data.draw(st.sampled_from(["paper", "acme"]))
        valid = dict(attr=a, window=3, quantile=0.9, threshold_scope=None, bin_width=0.1, prior_bins=None,
                     weight="r2", preset=preset, layout="NLC", n_threads=None)
        specs = {"attr": bad_arrays(a.shape), "window": scalars(2, 10**9), "quantile": scalars(1.0),
                 "threshold_scope": scalars("sequence", "global", "all"),
                 "bin_width": scalars(1e-5, 5e-4, 3.0, math.pi, 1e-300), "prior_bins": scalars(10**5, 3000, 63, 64),
                 "weight": scalars("none", "inv_r2", "r3"), "preset": scalars("acme"), "layout": scalars("NCL"),
                 "n_threads": scalars(10**5, 40000)}
        args, names = mutate(data.draw, valid, specs)
        log(f"kattr_kld mutated={names} " + repr({kk: (v.shape, v.dtype) if isinstance(v, np.ndarray) else v
                                                   for kk, v in args.items()}))
        res = check_outcome(lambda: af.kattr_kld(**args), names, set(valid), "kattr_kld")
        if res is not None and not names:
            for nt in (1, 2, 3):
                r2 = af.kattr_kld(np.swapaxes(a, 1, 2), preset=preset, layout="NCL", n_threads=nt)
                assert (r2.kld == res.kld or (math.isnan(r2.kld) and math.isnan(res.kld)))
                assert r2.n_points == res.n_points
            # The normalisation makes each sequence's scale irrelevant: far out-of-range float64
            # input (rescaled inside by a power of two) gives the bits of the in-range input. The
            # numpy reference comparison, with its rounding-tie rules, is in test_properties.py.
            scaled = per_sequence_scaled(a)
            r3 = af.kattr_kld(scaled, preset=preset)
            assert r3.n_points == res.n_points and np.array_equal(r3.mass, res.mass)
            assert r3.kld == res.kld or (math.isnan(r3.kld) and math.isnan(res.kld))

    run()


def target_misc(n: int) -> None:
    @settings(**SETTINGS, max_examples=n)
    @given(st.data())
    def run(data):
        x, a = data.draw(dna(min_len=1))
        which = data.draw(st.sampled_from(["prior", "gauge", "groundtruth", "names", "acc_kmer", "acc_kattr"]))
        if which == "prior":
            valid = dict(x=x, k=1, layout="NLC", n_threads=None)
            specs = {"x": bad_arrays(x.shape), "k": scalars(13), "layout": scalars(), "n_threads": scalars(10**5)}
            fn = af.kmer_prior
        elif which == "gauge":
            valid = dict(attr=a, layout="NLC")
            specs = {"attr": bad_arrays(a.shape), "layout": scalars()}
            fn = af.gauge_correct
        elif which == "groundtruth":
            m = np.full(x.shape, 0.25)
            valid = dict(x=x, attr=a, x_model=m, threshold=0.1, top_k=2, layout="NLC", n_threads=None)
            specs = {"x": bad_arrays(x.shape), "attr": bad_arrays(a.shape),
                     "x_model": st.sampled_from([m * 5, m - 1, np.full(x.shape, np.nan), m[:, :1], "m", m.tolist()]),
                     "threshold": scalars(), "top_k": scalars(10**9), "layout": scalars(), "n_threads": scalars()}
            fn = af.groundtruth_scores
        elif which == "names":
            valid = dict(k=2)
            specs = {"k": scalars(13, 12)}
            fn = af.kmer_names
        elif which == "acc_kmer":
            valid = dict(k=1, quantile=0.9, buffer=2, preset="paper", layout="NLC", n_threads=None)
            specs = {"k": scalars(), "quantile": scalars(), "buffer": scalars(), "preset": scalars(),
                     "layout": scalars(), "n_threads": scalars()}

            def fn(**kw):
                acc = af.KmerAccumulator(**kw)
                half = max(1, x.shape[0] // 2)
                acc.update(x[:half], a[:half])
                other = acc.empty_like()
                if x.shape[0] > half:
                    other.update(x[half:], a[half:])
                return acc.merge(other).result()
        else:
            valid = dict(window=1, quantile=0.9, preset="acme", two_pass=True, n_threads=None)
            specs = {"window": scalars(), "quantile": scalars(), "preset": scalars(), "two_pass": scalars(),
                     "n_threads": scalars()}

            def fn(**kw):
                acc = af.KattrAccumulator(**kw)
                for p in range(acc.n_passes):
                    acc.update(a)
                    if p + 1 < acc.n_passes:
                        acc.next_pass()
                return acc.result()
        args, names = mutate(data.draw, valid, specs)
        log(f"{which} mutated={names} " + repr({kk: (v.shape, v.dtype) if isinstance(v, np.ndarray) else v
                                                 for kk, v in args.items()}))
        check_outcome(lambda: fn(**args), names, set(valid) | {"other", "x", "attr"}, which)

    run()


def target_compat(n: int) -> None:
    @settings(**SETTINGS, max_examples=n)
    @given(st.data())
    def run(data):
        x, a = data.draw(dna(min_len=3))
        x = np.asarray(x, dtype=np.float64)
        which = data.draw(st.sampled_from(["spectra", "passing", "process", "spherical", "spherical_big", "entropy",
                                           "init"]))
        if which == "spectra":
            valid = dict(X=x, kmer_length=1)
            specs = {"X": bad_arrays(x.shape), "kmer_length": scalars(13)}
            fn = compat.compute_kmer_spectra_testset
        elif which == "passing":
            valid = dict(attr_map=a, X=x, threshold=0.9, kmer_length=1)
            specs = {"attr_map": bad_arrays(a.shape), "X": bad_arrays(x.shape), "threshold": scalars(),
                     "kmer_length": scalars()}
            fn = compat.collect_passing_subsequences
        elif which == "process":
            valid = dict(saliency_map_raw=a, k=3)
            specs = {"saliency_map_raw": bad_arrays(a.shape), "k": scalars(10**7)}
            fn = compat.process_attribution_map
        elif which == "spherical":
            m = compat.process_attribution_map(a)
            valid = dict(saliency_map_raw_s=[m], X=x, mask=1, radius_count_cutoff=0.1)
            specs = {"saliency_map_raw_s": st.sampled_from([[m * np.nan], [m[:, :1]], "s", [m * 1e300], [m * 1e-310]]),
                     "X": bad_arrays(x.shape), "mask": scalars(), "radius_count_cutoff": scalars(1e9)}
            fn = compat.spherical_coordinates_process_2_trad
        elif which == "spherical_big":
            # 2**14 points or more: the sampled bracket of the cutoff (compat.hpp, SphericalPass)
            reps = -(-(1 << 14) // (a.shape[0] * a.shape[1]))
            big = np.tile(a, (reps, 1, 1))
            big = big * np.linspace(0.5, 2.0, big.shape[0])[:, None, None]
            m = compat.process_attribution_map(big)
            xb = np.zeros(big.shape)
            mask = data.draw(st.sampled_from([1, 0.5, "array"]))
            if mask == "array":
                mask = np.linspace(0, 2, big.shape[0] * big.shape[1]).reshape(big.shape[:2])
            valid = dict(saliency_map_raw_s=[m], X=xb, mask=mask,
                         radius_count_cutoff=data.draw(st.sampled_from([0.0, 0.04, 0.1, 0.5, 0.99, 1.0])))
            specs = {"saliency_map_raw_s": st.sampled_from([[m * np.nan], [m[:, :1]], [m * 1e300], [m * 1e-310]]),
                     "mask": scalars(), "radius_count_cutoff": scalars(1e9)}
            fn = compat.spherical_coordinates_process_2_trad
        elif which == "entropy":
            m = compat.process_attribution_map(a)
            p1, p2, r = compat.spherical_coordinates_process_2_trad([m], x, 1, radius_count_cutoff=0.1)
            valid = dict(phi_1_s=p1, phi_2_s=p2, r_s=r, n_bins=31, box_length=0.1, box_volume=0.01, prior_range=3)
            specs = {"phi_1_s": st.sampled_from([[p1[0] * np.nan], [-p1[0] - 1], [p1[0][:1]], "p"]),
                     "r_s": st.sampled_from([[r[0] * 1e300], [r[0] * np.inf]]),
                     "n_bins": scalars(10**5), "box_length": scalars(), "prior_range": scalars(10**9)}
            fn = compat.calculate_entropy_2
        else:
            valid = dict(box_length=0.1)
            specs = {"box_length": scalars(1e-7)}
            fn = compat.initialize_integration_2
        args, names = mutate(data.draw, valid, specs)
        log(f"compat.{which} mutated={names} " + repr({kk: (v.shape, v.dtype) if isinstance(v, np.ndarray) else
                                                        (type(v).__name__ if isinstance(v, list) else v)
                                                        for kk, v in args.items()}))
        check_outcome(lambda: fn(**args), names, set(valid), f"compat.{which}")

    run()


def target_select(n: int) -> None:
    import pandas as pd

    @settings(**SETTINGS, max_examples=n)
    @given(st.data())
    def run(data):
        m = data.draw(st.integers(1, 6))
        vals = st.sampled_from([0.5, 0.9, 0.95, 1.0, math.nan, math.inf, -math.inf, 0.0, 1e308])
        t = pd.DataFrame({"model": [f"m{i}" for i in range(m)],
                          "auroc": data.draw(st.lists(vals, min_size=m, max_size=m)),
                          "kld": data.draw(st.lists(vals, min_size=m, max_size=m))})
        valid = dict(table=t, performance="auroc", consistency="kld", tolerance=0.05)
        specs = {"performance": scalars("kld", "nope"), "consistency": scalars("auroc", "rank"),
                 "tolerance": scalars(-1.0)}
        args, names = mutate(data.draw, valid, specs)
        table = args.pop("table")
        if np.isinf(t[["auroc", "kld"]].to_numpy()).any():
            names = names + ["table"]  # an infinite value is invalid input
        log(f"select mutated={names} {args} {t.to_dict('list')}")
        res = check_outcome(lambda: af.select_models(table, **args), names,
                            set(valid) | {"min_performance, tolerance"}, "select_models")
        if res is not None:
            # rows come sorted by rank
            kept = res.set_index("model").loc[t["model"], "kept"].to_numpy(dtype=bool)
            used = [args["performance"], args["consistency"]]  # the columns this call ranked by
            finite = np.isfinite(t[used].to_numpy(dtype=float)).all(axis=1)
            assert not (kept & ~finite).any()  # a model with a missing value is never kept
            if not names and finite.any():
                assert kept.any()  # the best model is within any tolerance of itself

    run()


def target_stream(n: int) -> None:
    from acme_fast.stream import score_stream

    @settings(**SETTINGS, max_examples=n)
    @given(st.data())
    def run(data):
        x, a = data.draw(dna(min_len=3))
        valid = dict(attr=a, x=x, metrics=("kmer", "kattr"), preset="paper", batch_size=2, progress=False,
                     layout="NLC", n_threads=None, k=2)
        specs = {"attr": bad_arrays(a.shape), "x": bad_arrays(x.shape), "metrics": scalars(("kmer",), ("nope",)),
                 "preset": scalars("acme"), "batch_size": scalars(10**9), "layout": scalars(), "n_threads": scalars(),
                 "k": scalars()}
        args, names = mutate(data.draw, valid, specs)
        log(f"score_stream mutated={names} " + repr({kk: (v.shape, v.dtype) if isinstance(v, np.ndarray) else v
                                                      for kk, v in args.items()}))
        res = check_outcome(lambda: score_stream(**args), names, set(valid) | {"seqs", "other"}, "score_stream")
        if res is not None and not names:
            assert res["kmer"].kld == af.kmer_kld(x, a, k=2).kld or math.isnan(res["kmer"].kld)

    run()


def target_files(n: int) -> None:
    """Random byte flips and truncations in every reader format: a result or one line naming the file."""
    import os
    import tempfile

    from acme_fast.stream import score_stream

    tmp = tempfile.mkdtemp()
    rng0 = np.random.default_rng(0)
    a0 = rng0.normal(size=(40, 20, 4)).astype(np.float32)
    x0 = np.eye(4, dtype=np.uint8)[rng0.integers(0, 4, (40, 20))]

    def write(fmt: str, path: str) -> list[str]:
        """Write the attributions in fmt; returns the files that can be damaged."""
        if fmt == "npy":
            np.save(path, a0)
        elif fmt == "npz":
            np.savez(path, saliency=a0)
        elif fmt == "npzc":
            np.savez_compressed(path, saliency=a0)
        elif fmt == "h5":
            import h5py
            with h5py.File(path, "w") as f:
                f.create_dataset("saliency", data=a0, chunks=(10, 20, 4), compression="gzip")
        else:
            import zarr
            z = zarr.open(path, mode="w", shape=a0.shape, chunks=(10, 20, 4), dtype="float32")
            z[:] = a0
            return sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)
        return [path]

    @settings(**SETTINGS, max_examples=n)
    @given(st.data())
    def run(data):
        fmt = data.draw(st.sampled_from(["npy", "npz", "npzc", "h5", "zarr"]))
        ext = {"npzc": ".npz", "zarr": ".zarr"}.get(fmt, "." + fmt)
        path = os.path.join(tmp, f"a{data.draw(st.integers(0, 10**9))}{ext}")
        files = write(fmt, path)
        victim = data.draw(st.sampled_from(files))
        size = os.path.getsize(victim)
        b = bytearray(open(victim, "rb").read())
        for _ in range(data.draw(st.integers(1, 4))):
            if data.draw(st.booleans()) and len(b) > 1:
                b = b[: data.draw(st.integers(0, len(b) - 1))]
            elif b:
                i = data.draw(st.integers(0, len(b) - 1))
                b[i] ^= data.draw(st.integers(1, 255))
        open(victim, "wb").write(bytes(b))
        log(f"files {fmt} victim={victim} size={size}->{len(b)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                score_stream(path, x0, dataset="saliency" if fmt in ("npz", "npzc", "h5") else None, k=2,
                             batch_size=7, progress=False)
            except (ValueError, OSError, TypeError) as exc:
                msg = str(exc)
                assert path in msg and "\n" not in msg, f"files: {msg!r}"

    run()


TARGETS = {"stream": target_stream, "files": target_files, "kmer": target_kmer, "kattr": target_kattr,
           "misc": target_misc, "compat": target_compat,
           "select": target_select}

if __name__ == "__main__":
    target, n, logfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(logfile, "w") as LOG:  # noqa: F841 (module global used by log())
        globals()["LOG"] = LOG
        TARGETS[target](n)
    print("ok")
