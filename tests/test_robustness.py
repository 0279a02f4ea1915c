"""Regression tests for the reliability findings (issue "No crash, no hang, no silent wrong
number, no silent data loss"): one test (or more) per numbered finding, each failing before
its fix. Calls that could crash or hang run in a subprocess with a timeout (run_isolated)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pytest
import reference as ref
from conftest import run_isolated

import acme_fast as af
from acme_fast import _core, compat

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture
def xa():
    """The issue's reproducer: x one-hot (8, 50, 4), a normal (8, 50, 4) float64."""
    rng = np.random.default_rng(0)
    x = np.eye(4)[rng.integers(0, 4, (8, 50))]
    a = rng.normal(size=(8, 50, 4))
    return x, a


# 1 -- buffer: no signed overflow; beyond L - 1 it means L - 1 -----------------------------
@pytest.mark.parametrize("buffer", [49, 50, 10**6, 2**62, 2**63 - 2, 2**63 - 1])
def test_buffer_beyond_length_is_length_minus_one(xa, buffer):
    x, a = xa
    got = af.kmer_kld(x, a, k=3, buffer=buffer)
    want = af.kmer_kld(x, a, k=3, buffer=49)
    assert got.kld == want.kld and got.n_nucleotides == want.n_nucleotides
    assert 0 < got.n_nucleotides <= x.shape[0] * x.shape[1]
    oracle = ref.kmer_kld(x, a, k=3, buffer=min(buffer, 10**6))  # python ints: no overflow there
    assert got.n_nucleotides == oracle["n_nucleotides"] and got.n_intervals == oracle["n_intervals"]
    np.testing.assert_allclose(got.kld, oracle["kld"], rtol=1e-12)


def test_buffer_clamped_in_the_interval_kernel(xa):
    # the kernel behind compat.collect_passing_subsequences (which keeps the published buffer of 2)
    _, a = xa
    big = _core.kmer_intervals(np.ascontiguousarray(a), 3, 0.9, 2**63 - 2, True, False, 1)
    full = _core.kmer_intervals(np.ascontiguousarray(a), 3, 0.9, 49, True, False, 1)
    assert big["error"] is None
    for key in ("seq", "begin", "end"):
        np.testing.assert_array_equal(big[key], full[key])
    assert big["end"].max() == 49


# 2 -- n_threads bounded ------------------------------------------------------------------
def test_n_threads_above_limit_is_refused(xa):
    x, a = xa
    hi = af._limits.thread_limit()
    for fn in (lambda nt: af.kattr_kld(a, n_threads=nt), lambda nt: af.kmer_kld(x, a, n_threads=nt),
               lambda nt: af.KattrAccumulator(n_threads=nt), lambda nt: af.kmer_prior(x, n_threads=nt)):
        for nt in (hi + 1, 40000, 100000):
            with pytest.raises(ValueError, match=rf"n_threads: expected None or an integer in 1\.\.{hi}.*got {nt}"):
                fn(nt)


def test_n_threads_at_limit_runs():
    # The largest accepted value runs (the kernels start at most one thread per sequence).
    p = run_isolated(textwrap.dedent("""
        import numpy as np, acme_fast as af
        from acme_fast._limits import thread_limit
        rng = np.random.default_rng(0)
        x = np.eye(4)[rng.integers(0, 4, (8, 50))]; a = rng.normal(size=(8, 50, 4))
        hi = thread_limit()
        assert af.kattr_kld(a, n_threads=hi).kld == af.kattr_kld(a, n_threads=1).kld
        assert af.kmer_kld(x, a, k=3, n_threads=hi).kld == af.kmer_kld(x, a, k=3, n_threads=1).kld
        print("ok")
    """), timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_cli_threads_above_limit(tmp_path, xa):
    _, a = xa
    np.save(tmp_path / "a.npy", a.astype(np.float32))
    p = subprocess.run([sys.executable, "-m", "acme_fast", "score", str(tmp_path / "a.npy"), "--threads", "100000",
                        "-o", str(tmp_path / "o.csv")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 2 and "--threads: expected an integer in 1.." in p.stderr
    assert not (tmp_path / "o.csv").exists()


# 3 -- allocation failures are MemoryError, never an abort; memory estimated first -------
def test_exception_inside_parallel_region_is_memory_error():
    for nt in (1, 2, 4):
        with pytest.raises(MemoryError):
            _core._parallel_probe(64, 0.0, nt, 5)
    assert _core._parallel_probe(64, 0.0, 2, -1) == 64  # and the next call is unaffected


def test_huge_histogram_refused_before_allocating(xa):
    _, a = xa
    with pytest.raises(MemoryError, match=r"^bin_width: bin_width=0.0001 gives 31415x31415 angular bins.*larger "
                                           r"bin_width"):
        af.kattr_kld(a, bin_width=1e-4)
    with pytest.raises(MemoryError, match="^bin_width"):
        af.KattrAccumulator(bin_width=1e-4)
    with pytest.raises(ValueError, match=r"^bin_width: expected a width of at least 6.78e-05 radians"):
        af.kattr_kld(a, bin_width=1e-5)


@pytest.mark.parametrize("call", [
    "af.kmer_kld(x, a, k=12, n_threads=32)",
    "af.kattr_kld(a, bin_width=5e-4)",
    "af.kattr_kld(a, bin_width=5e-4, preset='acme')",
    "af.kmer_prior(x, k=12)",
])
def test_address_space_limit_gives_memory_error_or_result(call):
    """Under a 1.5 GiB address-space limit (beyond what Python and numpy take at start-up) each
    call either returns or raises MemoryError naming k / bin_width: never SIGABRT."""
    code = textwrap.dedent(f"""
        import resource, numpy as np, acme_fast as af
        rng = np.random.default_rng(0)
        x = np.eye(4)[rng.integers(0, 4, (8, 50))]; a = rng.normal(size=(8, 50, 4))
        used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + 1536 * 2**20, resource.RLIM_INFINITY))
        try:
            r = {call}
            print("result", np.asarray(r if isinstance(r, np.ndarray) else r.kld).ravel()[0])
        except MemoryError as e:
            print("MemoryError", e)
    """)
    p = run_isolated(code, timeout=180)
    assert p.returncode == 0, p.stderr
    out = p.stdout.strip()
    assert out.startswith("result") or out.startswith("MemoryError k:") or out.startswith("MemoryError bin_width:"), out


def test_k12_is_quick_for_few_sequences(xa):
    # Shared count tables above k = 8: no per-thread table of 4**12 counters to zero and merge.
    rng = np.random.default_rng(3)
    x = np.eye(4)[rng.integers(0, 4, (3, 300))]
    a = rng.normal(size=x.shape)
    r1 = af.kmer_kld(x, a, k=12, quantile=0.5, n_threads=1)
    r2 = af.kmer_kld(x, a, k=12, quantile=0.5, n_threads=2)
    assert r1.n_nucleotides > 0 and r1.counts.sum() > 0
    assert r1.kld == r2.kld and np.array_equal(r1.counts, r2.counts)
    oracle = ref.kmer_kld(x, a, k=12, quantile=0.5)
    assert r1.n_nucleotides == oracle["n_nucleotides"]
    np.testing.assert_array_equal(r1.counts, oracle["counts"])


# 4 -- the prior in O(n_bins**2); prior_bins bounded by the bins; Ctrl-C ---------------------
def test_prior_bins_bounded(xa):
    _, a = xa
    for pb in (10**5, 3000, 64):
        with pytest.raises(ValueError, match=r"prior_bins: expected an integer in 1\.\.63 \(2 n_bins \+ 1"):
            af.kattr_kld(a, prior_bins=pb)
    af.kattr_kld(a, prior_bins=63)  # the largest accepted (the running sums make it cheap)
    af.kattr_kld(a, prior_bins=63, preset="acme")


@pytest.mark.parametrize("preset", ["paper", "acme"])
@pytest.mark.parametrize("bin_width,prior_bins", [(0.5, 1), (0.5, 6), (0.5, 13), (1.0, 7), (0.3, 11)])
def test_prior_running_sums_equal_the_direct_sums(xa, preset, bin_width, prior_bins):
    _, a = xa
    res = af.kattr_kld(a, preset=preset, bin_width=bin_width, prior_bins=prior_bins)
    fn = ref.kattr_acme if preset == "acme" else ref.kattr_paper
    kw = {} if preset == "acme" else {"threshold_scope": "sequence"}
    want = fn(a, bin_width=bin_width, prior_bins=prior_bins, **kw)
    got_prior, want_prior = res.prior, want["prior"]
    if preset == "acme":  # the published code leaves the border bins out (NaN here, 0 in the oracle)
        got_prior, want_prior = got_prior[1:-1, 1:-1], want_prior[1:-1, 1:-1]
    np.testing.assert_allclose(got_prior, want_prior, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.kld, want["kld"], rtol=1e-10)


def _interrupt(code: str, after: float = 1.0, timeout: float = 30.0) -> tuple[subprocess.CompletedProcess, float]:
    """Start code, send SIGINT once it printed 'go', return the process and the seconds it took to stop."""
    # The child restores Python's Ctrl-C handler first: a shell starts background jobs with SIGINT
    # ignored, and Python keeps an ignored SIGINT ignored, so `pytest &` would see every child hang.
    code = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n" + code
    # outside the repository: from its root the uncompiled source tree would be imported
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=tempfile.gettempdir())
    try:
        assert p.stdout.readline().strip() == "go"
        time.sleep(after)
        t0 = time.perf_counter()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail("Ctrl-C was ignored: the process did not stop")
    return subprocess.CompletedProcess(p.args, p.returncode, out, err), time.perf_counter() - t0


@pytest.mark.parametrize("n_threads", [1, 2])
def test_ctrl_c_stops_a_kernel(n_threads):
    # A parallel loop of 10**6 iterations of 1 ms, run like every kernel (parallel_for): hours
    # if Ctrl-C were ignored.
    code = textwrap.dedent(f"""
        import acme_fast
        from acme_fast import _core
        print("go", flush=True)
        try:
            _core._parallel_probe(10**6, 1.0, {n_threads})
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    p, _ = _interrupt(code)  # a process that ignores Ctrl-C fails in _interrupt's timeout
    assert p.returncode == 0 and p.stdout.strip() == "interrupted", p.stderr


def test_ctrl_c_stops_python_parts_on_the_team():
    # _core.run_parts runs Python callables (compat's numpy angles) on the OpenMP threads: Ctrl-C
    # reaches the part on the calling thread, or the loop between calls, and stops it.
    code = textwrap.dedent("""
        import numpy as np
        from acme_fast import _core
        x = np.random.default_rng(0).uniform(-1, 1, 200_000)
        def part(i):
            for _ in range(20):
                np.arccos(x)
        print("go", flush=True)
        try:
            for _ in range(10**6):
                _core.run_parts(part, 2, 2)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    p, took = _interrupt(code)
    assert p.returncode == 0 and p.stdout.strip() == "interrupted", p.stderr
    assert took < 10, took


def test_ctrl_c_stops_a_stream(tmp_path):
    np.save(tmp_path / "a.npy", np.random.default_rng(0).normal(size=(20000, 200, 4)).astype(np.float32))
    code = textwrap.dedent(f"""
        from acme_fast.stream import score_stream
        print("go", flush=True)
        try:
            for _ in range(100):
                score_stream({str(tmp_path / "a.npy")!r}, metrics=("kattr",), batch_size=1, progress=False)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    p, _ = _interrupt(code, after=2.0)
    assert p.returncode == 0 and p.stdout.strip() == "interrupted", p.stderr


# 5 -- damaged files are errors (see test_corrupt_files.py for the whole matrix) -------------
def test_zarr_missing_chunk_is_an_error_unless_allowed(tmp_path, xa):
    zarr = pytest.importorskip("zarr")
    from acme_fast.stream import score_stream

    _, a = xa
    a = np.concatenate([a] * 25).astype(np.float32)  # (200, 50, 4)
    z = zarr.open(str(tmp_path / "a.zarr"), mode="w", shape=a.shape, chunks=(50, 50, 4), dtype="float32")
    z[:] = a
    full = score_stream(str(tmp_path / "a.zarr"), metrics=("kattr",), progress=False)["kattr"]
    chunks = sorted(os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "a.zarr") for f in fs
                    if not f.startswith(("zarr.json", ".z")))
    os.remove(chunks[1])
    with pytest.raises(ValueError, match=r"a\.zarr'.*1 of its 4 chunks are missing.*allow_missing_chunks"):
        score_stream(str(tmp_path / "a.zarr"), metrics=("kattr",), progress=False)
    part = score_stream(str(tmp_path / "a.zarr"), metrics=("kattr",), progress=False,
                        allow_missing_chunks=True)["kattr"]
    assert part.n_points < full.n_points  # the missing chunk read as zeros, as asked


def test_npz_flipped_bytes_fail_the_crc(tmp_path, xa):
    from acme_fast.stream import score_stream

    _, a = xa
    np.savez(tmp_path / "a.npz", saliency=a)
    b = bytearray((tmp_path / "a.npz").read_bytes())
    mid = len(b) // 2
    b[mid:mid + 8] = bytes(v ^ 0xFF for v in b[mid:mid + 8])
    (tmp_path / "a.npz").write_bytes(bytes(b))
    with pytest.raises(ValueError, match=r"a\.npz' member 'saliency': damaged: the CRC-32"):
        score_stream(str(tmp_path / "a.npz"), metrics=("kattr",), progress=False, batch_size=3)


def test_npy_header_with_fewer_rows_than_the_file(tmp_path, xa):
    from acme_fast.io import ArraySource

    _, a = xa
    np.save(tmp_path / "a.npy", a)
    b = (tmp_path / "a.npy").read_bytes().replace(b"(8, 50, 4)", b"(7, 50, 4)")
    (tmp_path / "a.npy").write_bytes(b)
    with pytest.raises(ValueError, match=r"a\.npy'.*header says shape \(7, 50, 4\).*the header does not describe"):
        ArraySource(str(tmp_path / "a.npy"))


def test_npy_header_syntax_error_is_one_line(tmp_path, xa):
    from acme_fast.io import ArraySource

    _, a = xa
    np.save(tmp_path / "a.npy", a)
    b = (tmp_path / "a.npy").read_bytes().replace(b"'shape': (8,", b"'shape': (8(", 1)
    (tmp_path / "a.npy").write_bytes(b)
    with pytest.raises(ValueError, match=r"a\.npy': not a readable \.npy file, its header is damaged") as ei:
        ArraySource(str(tmp_path / "a.npy"))
    assert "\n" not in str(ei.value)


# 7 -- outputs checked before the work, messages name the user's path ------------------------
def test_cli_unwritable_output_fails_before_work(tmp_path, xa):
    _, a = xa
    np.save(tmp_path / "a.npy", np.concatenate([a] * 500).astype(np.float32))
    p = subprocess.run([sys.executable, "-m", "acme_fast", "score", str(tmp_path / "a.npy"), "-o", "/proc/out.csv"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 2
    assert "-o/--output: cannot write '/proc/out.csv'" in p.stderr and ".tmp" not in p.stderr


def test_check_new_file_probes_the_directory(tmp_path, monkeypatch):
    import tempfile

    from acme_fast._files import atomic_output, check_new_file

    def refuse(*args, **kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match=r"^save: cannot write '.*out\.png' \(directory .*Permission denied"):
        check_new_file(tmp_path / "out.png", name="save", overwrite=False)
    with pytest.raises(OSError, match=r"cannot write '.*out\.csv'"), atomic_output(tmp_path / "out.csv"):
        pass


def test_atomic_output_error_names_the_users_path(tmp_path, monkeypatch):
    from acme_fast import _files

    def fail(src, dst):
        raise OSError(28, "No space left on device", str(src))

    monkeypatch.setattr(_files.os, "replace", fail)
    with pytest.raises(OSError) as ei, _files.atomic_output(tmp_path / "out.csv") as tmp:
        tmp.write_text("x")
    assert str(tmp_path / "out.csv") in str(ei.value) and ".tmp" not in str(ei.value)
    assert not list(tmp_path.iterdir())  # the temporary file is gone


def test_attribute_style_outputs_get_default_permissions(tmp_path):
    from acme_fast._files import publish

    tmp = tmp_path / ".x.tmp"
    tmp.write_text("x")
    os.chmod(tmp, 0o600)
    umask = os.umask(0o022)
    try:
        publish(tmp, tmp_path / "x.npy")
    finally:
        os.umask(umask)
    assert (os.stat(tmp_path / "x.npy").st_mode & 0o777) == 0o644


# 8 -- errors name the sequence's index in the files, not in the batch ------------------------
def test_groundtruth_stream_reports_the_global_index(tmp_path):
    from acme_fast.scoring import groundtruth_stream

    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (200, 30))]
    a = rng.normal(size=x.shape).astype(np.float32)
    m = np.full(x.shape, 0.25)
    m[150, 3, 1] = 1.5
    with pytest.raises(ValueError, match=r"index \(150, 3, 1\)"):
        groundtruth_stream(a, x, m, batch_size=64)


# 9 -- gauge_correct refuses NaN/Inf ------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("layout", ["NLC", "NCL"])
def test_gauge_correct_refuses_non_finite(xa, bad, layout):
    _, a = xa
    a = a.copy()
    a[3, 7, 2] = bad
    arr = a if layout == "NLC" else np.swapaxes(a, 1, 2)
    with pytest.raises(ValueError, match=rf"attr: expected finite values, found {bad} at sequence 3, position 7"):
        af.gauge_correct(arr, layout=layout)


def test_gauge_correct_huge_values_do_not_overflow():
    a = np.array([[[1e308, 1e308, -1e308, 0.0]]])
    g = af.gauge_correct(a)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, a - a.mean(axis=-1, keepdims=True) if np.isfinite(a.mean()) else g)


# 10 -- any finite input: norms never overflow or vanish, the same answer for both metrics ----
@pytest.mark.parametrize("scale", [2.0**600, 2.0**-600, 2.0**1000, 2.0**-1000])
@pytest.mark.parametrize("preset", ["paper", "acme"])
def test_power_of_two_scaled_sequences_give_the_same_bits(xa, scale, preset):
    x, a = xa
    a2 = a.copy()
    a2[1] *= scale  # one sequence far out of range: the per-sequence normalisation makes it the same
    a2[5] *= scale
    assert af.kattr_kld(a2, preset=preset).kld == af.kattr_kld(a, preset=preset).kld
    r1, r2 = af.kmer_kld(x, a2, k=3), af.kmer_kld(x, a, k=3)
    assert r1.kld == r2.kld and np.array_equal(r1.counts, r2.counts)


def test_one_huge_value_is_accepted_by_both_metrics(xa):
    x, a = xa
    a2 = a.copy()
    a2[1, 0, 2] = 1e160
    a3 = a.copy()
    a3[1] *= 1e-160
    a3[1, 0, 2] = 1.0  # the same sequence divided by 1e160 (to rounding of the other values)
    for preset in ("paper", "acme"):
        k2 = af.kattr_kld(a2, preset=preset)
        assert np.isfinite(k2.kld) and k2.n_points > 0
        np.testing.assert_allclose(k2.kld, af.kattr_kld(a3, preset=preset).kld, rtol=1e-9)
    assert af.kmer_kld(x, a2, k=3).kld == af.kmer_kld(x, a3, k=3).kld


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_both_metrics_name_the_true_position(xa, bad):
    x, a = xa
    a = a.copy()
    a[1, 17, 3] = bad
    for fn in (lambda: af.kattr_kld(a), lambda: af.kattr_kld(a, preset="acme"), lambda: af.kmer_kld(x, a)):
        with pytest.raises(ValueError, match=rf"found {bad} at sequence 1, position 17"):
            fn()


# 11 -- accumulators refuse to count data twice ------------------------------------------------
def test_merge_self_and_twice_is_refused(xa):
    import copy

    x, a = xa
    for make, feed in ((lambda: af.KmerAccumulator(k=3), lambda acc, s: acc.update(x[s], a[s])),
                       (lambda: af.KattrAccumulator(), lambda acc, s: acc.update(a[s])),
                       (lambda: af.KattrAccumulator(preset="acme"), lambda acc, s: acc.update(a[s]))):
        acc, other = make(), make()
        feed(acc, slice(0, 4))
        feed(other, slice(4, 8))
        with pytest.raises(ValueError, match="other: holds data that this accumulator already holds"):
            acc.merge(acc)
        with pytest.raises(ValueError, match="already holds"):
            acc.merge(copy.deepcopy(acc))
        acc.merge(other)
        with pytest.raises(ValueError, match="already holds"):
            acc.merge(other)
        whole = make()
        feed(whole, slice(0, 8))
        assert acc.result().kld == whole.result().kld
        fresh = make()
        fresh.merge(acc.empty_like())  # empty accumulators hold nothing: always fine


def test_two_pass_with_other_data_in_pass_one_is_refused(xa):
    _, a = xa
    rng = np.random.default_rng(1)
    b = rng.normal(size=a.shape)
    acc = af.KattrAccumulator(preset="acme", two_pass=True)
    acc.update(a)
    acc.next_pass()
    acc.update(b)  # same N, other data
    with pytest.raises(ValueError, match="pass 1 saw different data from pass 0"):
        acc.result()
    acc = af.KattrAccumulator(preset="acme", two_pass=True)
    acc.update(a)
    acc.next_pass()
    acc.update(a[4:])
    acc.update(a[:4])  # the same data in another order: fine (the metric does not depend on order)
    assert acc.result().kld == af.kattr_kld(a, preset="acme").kld


# 12 -- compat -------------------------------------------------------------------------------------
def test_compat_radius_count_cutoff_inf(xa):
    x, a = xa
    m = compat.process_attribution_map(a)
    for bad in (np.inf, float("nan"), -1.0):
        with pytest.raises(ValueError, match="radius_count_cutoff: expected a finite number >= 0"):
            compat.spherical_coordinates_process_2_trad([m], x, 1, radius_count_cutoff=bad)


def test_compat_tiny_attributions(xa):
    x, a = xa
    tiny = compat.process_attribution_map(a * 1e-310)
    assert np.isfinite(tiny).all()
    np.testing.assert_allclose(tiny, compat.process_attribution_map(a), rtol=1e-6, atol=1e-12)
    assert np.array_equal(compat.process_attribution_map(a * 2.0**-1000), compat.process_attribution_map(a))
    phi1, phi2, r = compat.spherical_coordinates_process_2_trad([tiny], x, 1, radius_count_cutoff=0.1)
    assert len(r[0]) > 0 and np.isfinite(phi1[0]).all()


def test_compat_messages_name_X(xa):
    x, a = xa
    bad = x.copy()
    bad[0, 0] = [0, 0, 0, 2]
    with pytest.raises(ValueError, match="^X: expected one-hot rows"):
        compat.compute_kmer_spectra_testset(bad, kmer_length=3)
    with pytest.raises(ValueError, match="^X: expected one-hot rows"):
        compat.collect_passing_subsequences(a, bad, 0.9, 3)


# 13 -- small ones -------------------------------------------------------------------------------
def test_select_models_refuses_infinite_values():
    import pandas as pd

    t = pd.DataFrame({"model": ["a", "b", "c"], "auroc": [np.inf, 0.9, 0.8], "kld": [1.0, 2.0, 3.0]}).set_index("model")
    with pytest.raises(ValueError, match=r"performance: column 'auroc' has inf in row 'a'"):
        af.select_models(t, performance="auroc", consistency="kld", tolerance=0.05)
    t2 = t.assign(auroc=[0.95, 0.9, np.nan], kld=[1.0, -np.inf, 3.0])
    with pytest.raises(ValueError, match=r"consistency: column 'kld' has -inf in row 'b'"):
        af.select_models(t2, performance="auroc", consistency="kld", tolerance=0.05)


@pytest.mark.parametrize("fn", [lambda v: af.kmer_prior(v, k=1), lambda v: af.kattr_kld(v),
                                lambda v: af.gauge_correct(v), lambda v: af.kmer_kld(v, v, k=1)])
def test_ragged_lists_name_the_argument(fn):
    ragged = [[[0, 1, 0, 0]], [[1, 0, 0, 0], [0, 1, 0, 0]]]
    with pytest.raises(ValueError, match=r"^(x|attr): expected a regular 3-D array .* unequal lengths"):
        fn(ragged)


@pytest.mark.parametrize("args,msg", [(["--length", "1"], "--length: expected an integer >= 75"),
                                      (["--length", "74"], "--length: expected an integer >= 75"),
                                      (["--k", "13"], "--k: expected an integer in 1..12"),
                                      (["--n", "0"], "--n: expected an integer >= 1"),
                                      (["--threads", "100000"], "--threads: expected an integer in 1..")])
def test_demo_kernels_only_bad_options(tmp_path, args, msg):
    p = subprocess.run([sys.executable, "-m", "acme_fast", "demo", "--kernels-only", *args], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 2 and msg in p.stderr and "Traceback" not in p.stderr, p.stderr


# --------------------------------------------------------------------------- prefetch workers
def _recording(n, seen):
    """Yields 0..n-1, adding the running thread's Thread object to `seen` (objects, not
    idents: the system reuses the ident of a thread that has ended)."""
    import threading

    for i in range(n):
        seen.add(threading.current_thread())
        yield i


def test_prefetch_reuses_its_worker_thread():
    """Consecutive prefetches run on one pooled thread (a GPU model's per-thread set-up is paid
    once, not per score_model call), never on the consumer's."""
    import threading

    from acme_fast.stream import _Prefetch

    a, b = set(), set()
    for seen in (a, b):
        p = _Prefetch(_recording(5, seen))
        assert list(p) == list(range(5))
        p.close()
    assert a == b and len(a) == 1
    assert threading.current_thread() not in a


def test_prefetch_concurrent_errors_and_double_close():
    """Two prefetches at once take different threads (sharing one would queue the second behind
    the first, which waits for its consumer: a hang, so this runs isolated with a timeout); an
    exception reaches the consumer and the worker serves the next prefetch; close() twice
    returns."""
    code = textwrap.dedent("""
        import threading
        from acme_fast.stream import _Prefetch

        def recording(n, seen):
            for i in range(n):
                seen.add(threading.current_thread())
                yield i

        a, b = set(), set()
        p1, p2 = _Prefetch(recording(50, a)), _Prefetch(recording(50, b))
        i1, i2 = iter(p1), iter(p2)
        assert next(i1) == 0 and next(i2) == 0
        assert a and b and a.isdisjoint(b)
        p1.close()
        p2.close()
        p1.close()

        def failing():
            yield 1
            raise OSError("disk gone")

        p = _Prefetch(failing())
        try:
            list(p)
            raise SystemExit("no error")
        except OSError as exc:
            assert "disk gone" in str(exc)
        p.close()
        p = _Prefetch(recording(3, set()))
        assert list(p) == [0, 1, 2]
        p.close()
        print("ok")
    """)
    r = run_isolated(code, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_prefetch_worker_keeps_nothing_of_its_last_job():
    """An idle worker drops the iterator it ran (open files, a model on the GPU)."""
    import gc
    import weakref

    from acme_fast.stream import _Prefetch

    g = _recording(3, set())
    ref_g = weakref.ref(g)
    p = _Prefetch(g)
    del g
    assert list(p) == [0, 1, 2]
    p.close()
    del p
    deadline = time.monotonic() + 5
    while ref_g() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert ref_g() is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_prefetch_in_a_forked_child():
    """A child forked while a worker is idle has no such thread: it must start its own, not
    queue work for one that does not exist (that hung)."""
    code = textwrap.dedent("""
        import os, sys, warnings
        warnings.simplefilter("ignore")
        from acme_fast.stream import _Prefetch
        p = _Prefetch(iter(range(3)))
        assert list(p) == [0, 1, 2]
        p.close()  # a worker is idle now
        pid = os.fork()
        if pid == 0:
            q = _Prefetch(iter(range(3)))
            ok = list(q) == [0, 1, 2]
            q.close()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """)
    r = run_isolated(code, timeout=60)  # outside the repository: the installed package
    assert r.returncode == 0, r.stderr
