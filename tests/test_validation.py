"""Bad inputs raise ValueError/TypeError naming the argument, what was expected and what
arrived. Never a crash."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from conftest import attribution, onehot, to_ncl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acme_fast as af

N, L = 3, 12


@pytest.fixture
def xa():
    rng = np.random.default_rng(7)
    return onehot(rng, N, L), attribution(rng, N, L)


def check_error(exc, name, fn, *args, arrived=(), says_expected=True, **kw):
    """fn(*args, **kw) raises exc; the message starts with / names `name`, says 'expected',
    and contains every string in `arrived` (what the caller passed)."""
    with pytest.raises(exc, match=rf"\b(?:{name})\b") as ei:
        fn(*args, **kw)
    msg = str(ei.value)
    if says_expected:
        assert "expected" in msg, msg
    for s in arrived:
        assert s in msg, f"{s!r} not in {msg!r}"
    return msg


# Every entry point that takes (x, attr), as f(x, attr, **kw).
def _kmer(x, a, **kw):
    return af.kmer_kld(x, a, k=3, **kw)


def _kmer_acc(x, a, **kw):
    return af.KmerAccumulator(k=3, **kw).update(x, a).result()


def _kattr(x, a, **kw):
    return af.kattr_kld(a, **kw)


def _kattr_acme(x, a, **kw):
    return af.kattr_kld(a, preset="acme", **kw)


def _kattr_global(x, a, **kw):
    return af.kattr_kld(a, threshold_scope="global", **kw)


def _kattr_acc(x, a, **kw):
    return af.KattrAccumulator(**kw).update(a).result()


def _kattr_acc_acme(x, a, **kw):
    return af.KattrAccumulator(preset="acme", **kw).update(a).result()


def _gt(x, a, **kw):
    return af.groundtruth_scores(x, a, np.full(np.shape(x), 0.25), **kw)


WITH_X = [_kmer, _kmer_acc, _gt]
WITH_A = [_kmer, _kmer_acc, _kattr, _kattr_acme, _kattr_global, _kattr_acc, _kattr_acc_acme, _gt]


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("fn", [_kmer, _kmer_acc, _gt])
def test_mismatched_shapes(xa, fn):
    x, a = xa
    check_error(ValueError, "attr", fn, x, a[:, :-1], arrived=["(3, 11, 4)", "(3, 12, 4)"])
    check_error(ValueError, "attr", fn, x, a[:-1], arrived=["(2, 12, 4)"])


def test_x_model_wrong_shape(xa):
    x, a = xa
    check_error(ValueError, "x_model", af.groundtruth_scores, x, a, np.full((N, L - 1, 4), 0.25),
                arrived=["(3, 11, 4)"])
    check_error(ValueError, "x_model", af.groundtruth_scores, x, a, np.full((N, 4, L), 0.25),
                arrived=["(3, 4, 12)"])


def test_x_model_not_probabilities(xa):
    x, a = xa
    m = np.full((N, L, 4), 0.25)
    m[1, 2, 3] = 1.5
    check_error(ValueError, "x_model", af.groundtruth_scores, x, a, m, arrived=["1.5"])
    check_error(TypeError, "x_model", af.groundtruth_scores, x, a, m.astype(str))


@pytest.mark.parametrize("fn", WITH_A)
def test_channel_axis_not_4(xa, fn):
    x, a = xa
    bad = np.concatenate([a, a[..., :1]], axis=-1)
    msg = check_error(ValueError, "attr" if fn not in WITH_X else "x|attr", fn,
                      np.concatenate([x, x[..., :1] * 0], axis=-1), bad, arrived=["5"])
    assert "4" in msg


@pytest.mark.parametrize("fn", WITH_A)
def test_swapped_layout_hint(xa, fn):
    x, a = xa
    name = "x|attr" if fn in WITH_X else "attr"
    # NCL arrays passed as NLC
    msg = check_error(ValueError, name, fn, to_ncl(x), to_ncl(a), arrived=["(3, 4, 12)"])
    assert "NCL" in msg
    # NLC arrays passed as NCL
    msg = check_error(ValueError, name, fn, x, a, layout="NCL", arrived=["(3, 12, 4)"])
    assert "NLC" in msg


@pytest.mark.parametrize("fn", WITH_A)
@pytest.mark.parametrize("shape", [(0, L, 4), (N, 0, 4), (0, 0, 4)])
def test_empty(fn, shape):
    x = np.zeros(shape, np.float32)
    name = "x|attr" if fn in WITH_X else "attr"
    check_error(ValueError, name, fn, x, x.copy(), arrived=[str(shape)])
    ncl = (shape[0], 4, shape[1])
    check_error(ValueError, name, fn, np.zeros(ncl, np.float32), np.zeros(ncl, np.float32), layout="NCL",
                arrived=[str(ncl)])


def test_empty_prior_and_gauge():
    check_error(ValueError, "x", af.kmer_prior, np.zeros((0, L, 4)), arrived=["(0, 12, 4)"])
    check_error(ValueError, "attr", af.gauge_correct, np.zeros((2, 0, 4)), arrived=["(2, 0, 4)"])


@pytest.mark.parametrize("fn", WITH_A)
def test_not_3d(xa, fn):
    x, a = xa
    name = "x|attr" if fn in WITH_X else "attr"
    check_error(ValueError, name, fn, x[0], a[0], arrived=["(12, 4)"])
    check_error(ValueError, name, fn, x[None], a[None], arrived=["(1, 3, 12, 4)"])


# --------------------------------------------------------------------------- layout
@pytest.mark.parametrize("layout", ["NHWC", "LNC", "", None, 3])
def test_bad_layout(xa, layout):
    x, a = xa
    for fn in (_kmer, _kattr, _gt):
        check_error(ValueError, "layout", fn, x, a, layout=layout, arrived=[repr(layout)])
    check_error(ValueError, "layout", af.kmer_prior, x, layout=layout)
    check_error(ValueError, "layout", af.gauge_correct, a, layout=layout)
    check_error(ValueError, "layout", af.KmerAccumulator, layout=layout)
    check_error(ValueError, "layout", af.KattrAccumulator, layout=layout)


# --------------------------------------------------------------------------- one-hot
def _bad_rows():
    return {
        "two": [2, 0, 0, 0],
        "two ones": [1, 1, 0, 0],
        "half": [0.5, 0, 0, 0],
        "negative": [0, -1, 0, 0],
        "nan": [np.nan, 0, 0, 0],
    }


def _representable(row, dtype):
    v = np.array(_bad_rows()[row])
    if np.dtype(dtype).kind == "f":
        return True
    return bool(np.all(np.isfinite(v)) and np.all(v == np.round(v)) and (dtype != np.uint8 or v.min() >= 0))


@pytest.mark.parametrize("row, dtype", [(r, d) for r in _bad_rows()
                                        for d in (np.float32, np.float64, np.uint8, np.int64)
                                        if _representable(r, d)])
@pytest.mark.parametrize("layout", ["NLC", "NCL"])
@pytest.mark.parametrize("fn", WITH_X + ["prior"])
def test_not_one_hot(xa, row, layout, dtype, fn):
    vals = _bad_rows()[row]
    x, a = xa
    x = x.astype(dtype)
    x[1, 5] = vals
    if layout == "NCL":
        x, a = to_ncl(x), to_ncl(a)
    if fn == "prior":
        msg = check_error(ValueError, "x", af.kmer_prior, x, k=3, layout=layout)
    else:
        msg = check_error(ValueError, "x", fn, x, a, layout=layout)
    assert "one-hot" in msg
    assert re.search(r"sequence 1\b", msg) and re.search(r"position 5\b", msg), msg


def test_all_zero_rows_are_unknown_bases(xa):
    x, a = xa
    x[0, 3] = 0
    x[2] = 0
    af.kmer_kld(x, a, k=3)
    af.kmer_prior(x, k=3)
    af.groundtruth_scores(x, a, np.full(x.shape, 0.25))


def test_bool_x_ok(xa):
    x, a = xa
    r1 = af.kmer_kld(x.astype(bool), a, k=3)
    r2 = af.kmer_kld(x, a, k=3)
    assert r1.kld == r2.kld


# --------------------------------------------------------------------------- finite attributions
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("layout", ["NLC", "NCL"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", WITH_A)
def test_not_finite(xa, value, layout, dtype, fn):
    x, a = xa
    a = a.astype(dtype)
    a[1, 7, 2] = value
    if layout == "NCL":
        x, a = to_ncl(x), to_ncl(a)
    msg = check_error(ValueError, "attr", fn, x, a, layout=layout, arrived=[str(value)])
    assert re.search(r"sequence 1\b", msg) and re.search(r"position 7\b", msg), msg


# --------------------------------------------------------------------------- lengths
def test_shorter_than_k(xa):
    x, a = xa
    check_error(ValueError, "k", af.kmer_kld, x[:, :4], a[:, :4], k=5, arrived=["4", "5"])
    check_error(ValueError, "k", af.kmer_prior, x[:, :4], k=5, arrived=["4", "5"])
    check_error(ValueError, "k", af.KmerAccumulator(k=5).update, x[:, :4], a[:, :4], arrived=["4", "5"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        af.kmer_kld(x[:, :5], a[:, :5], k=5)  # L == k is fine


@pytest.mark.parametrize("preset", ["paper", "acme"])
def test_shorter_than_window(xa, preset):
    _, a = xa
    check_error(ValueError, "window", af.kattr_kld, a[:, :4], window=5, preset=preset, arrived=["4", "5"])
    check_error(ValueError, "window", af.KattrAccumulator(window=5, preset=preset).update, a[:, :4],
                arrived=["4", "5"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        af.kattr_kld(a[:, :5], window=5, preset=preset)  # L == window is fine


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("k", [0, -1, 13, 100])
def test_k_out_of_range(xa, k):
    x, a = xa
    check_error(ValueError, "k", af.kmer_kld, x, a, k=k, arrived=[str(k)])
    check_error(ValueError, "k", af.kmer_prior, x, k=k, arrived=[str(k)])
    check_error(ValueError, "k", af.KmerAccumulator, k=k, arrived=[str(k)])


@pytest.mark.parametrize("k", [2.5, 3.0, "3", None, True])
def test_k_not_int(xa, k):
    x, a = xa
    check_error(TypeError, "k", af.kmer_kld, x, a, k=k, arrived=[repr(k)])


@pytest.mark.parametrize("q", [0, 1, -0.1, 1.5, 0.0, 1.0, math.nan, math.inf])
def test_quantile_out_of_range(xa, q):
    x, a = xa
    for fn in (_kmer, _kattr, _kattr_acme, _kmer_acc, _kattr_acc):
        check_error(ValueError, "quantile", fn, x, a, quantile=q, arrived=[repr(q)])


@pytest.mark.parametrize("q", ["0.5", None, [0.5]])
def test_quantile_wrong_type(xa, q):
    x, a = xa
    check_error(TypeError, "quantile", af.kmer_kld, x, a, k=3, quantile=q)
    check_error(TypeError, "quantile", af.kattr_kld, a, quantile=q)


def test_even_window(xa):
    _, a = xa
    check_error(ValueError, "window", af.kattr_kld, a, window=4, arrived=["4"])
    check_error(ValueError, "window", af.KattrAccumulator, window=2, arrived=["2"])
    af.kattr_kld(a, window=4, preset="acme")  # the published window is a forward sum: any width
    af.KattrAccumulator(window=2, preset="acme")


@pytest.mark.parametrize("window", [0, -3])
def test_window_out_of_range(xa, window):
    _, a = xa
    for preset in ("paper", "acme"):
        check_error(ValueError, "window", af.kattr_kld, a, window=window, preset=preset,
                    arrived=[str(window)])


@pytest.mark.parametrize("bw", [0, 0.0, math.pi, 4.0, -0.1, math.nan, math.inf])
def test_bin_width(xa, bw):
    _, a = xa
    for preset in ("paper", "acme"):
        check_error(ValueError, "bin_width", af.kattr_kld, a, bin_width=bw, preset=preset)
        check_error(ValueError, "bin_width", af.KattrAccumulator, bin_width=bw, preset=preset)


@pytest.mark.parametrize("bw", ["0.1", None])
def test_bin_width_type(xa, bw):
    _, a = xa
    check_error(TypeError, "bin_width", af.kattr_kld, a, bin_width=bw)


@pytest.mark.parametrize("pb", [0, -1])
def test_prior_bins(xa, pb):
    _, a = xa
    check_error(ValueError, "prior_bins", af.kattr_kld, a, prior_bins=pb, arrived=[str(pb)])
    check_error(TypeError, "prior_bins", af.kattr_kld, a, prior_bins=2.5)


def test_buffer(xa):
    x, a = xa
    check_error(ValueError, "buffer", af.kmer_kld, x, a, k=3, buffer=-1, arrived=["-1"])
    check_error(TypeError, "buffer", af.kmer_kld, x, a, k=3, buffer=1.5)


@pytest.mark.parametrize("pc", [-1, -1e-9, math.nan, math.inf, "a", None])
def test_pseudocount(xa, pc):
    x, a = xa
    with pytest.raises((ValueError, TypeError), match="pseudocount") as ei:
        af.kmer_kld(x, a, k=3, pseudocount=pc)
    assert "expected" in str(ei.value)


def test_prior_wrong_length(xa):
    x, a = xa
    check_error(ValueError, "prior", af.kmer_kld, x, a, k=3, prior=np.full(63, 1 / 63), arrived=["63", "64"])
    check_error(ValueError, "prior", af.kmer_kld, x, a, k=3, prior=np.full((8, 8), 1 / 64),
                arrived=["(8, 8)"])
    check_error(ValueError, "prior", af.KmerAccumulator, k=3, prior=np.full(16, 1 / 16), arrived=["16"])


def test_prior_not_normalised(xa):
    x, a = xa
    check_error(ValueError, "prior", af.kmer_kld, x, a, k=3, prior=np.full(64, 1 / 32), arrived=["2"])
    check_error(ValueError, "prior", af.kmer_kld, x, a, k=3, prior=np.zeros(64), arrived=["0"])


@pytest.mark.parametrize("bad", [-0.25, math.nan, math.inf])
def test_prior_bad_values(xa, bad):
    x, a = xa
    q = np.full(64, 1 / 64)
    q[3] = bad
    check_error(ValueError, "prior", af.kmer_kld, x, a, k=3, prior=q, arrived=[str(bad)])


def test_prior_zero_where_counted(xa):
    x, a = xa
    q = np.zeros(64)
    q[0] = 1.0  # only AAA: attributed k-mers are elsewhere
    msg = check_error(ValueError, "prior", af.kmer_kld, x, a, k=3, prior=q, says_expected=False)
    assert "pseudocount" in msg
    res = af.kmer_kld(x, a, k=3, prior=q, pseudocount=1e-3)
    assert np.isfinite(res.kld) and res.kld > 0
    np.testing.assert_allclose(res.prior.sum(), 1.0)
    assert np.all(res.prior > 0)
    # the same through an accumulator
    acc = af.KmerAccumulator(k=3, prior=q).update(x, a)
    with pytest.raises(ValueError, match="pseudocount"):
        acc.result()


@pytest.mark.parametrize("fn", [_kmer, _kmer_acc, _gt])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.complex128, object, str, bool])
def test_attr_wrong_dtype(xa, fn, dtype):
    x, a = xa
    bad = a.astype(dtype)
    check_error(TypeError, "attr", fn, x, bad, arrived=[str(bad.dtype)])


@pytest.mark.parametrize("dtype", [np.int64, np.complex64, object, str])
def test_attr_wrong_dtype_kattr(xa, dtype):
    _, a = xa
    for fn in (_kattr, _kattr_acme, _kattr_acc):
        check_error(TypeError, "attr", fn, None, a.astype(dtype))
    check_error(TypeError, "attr", af.gauge_correct, a.astype(dtype))


@pytest.mark.parametrize("dtype", [np.complex128, object, str])
def test_x_wrong_dtype(xa, dtype):
    x, a = xa
    for fn in WITH_X:
        check_error(TypeError, "x", fn, x.astype(dtype), a)
    check_error(TypeError, "x", af.kmer_prior, x.astype(dtype), k=3)


def test_x_other_numeric_dtypes_ok(xa):
    x, a = xa
    want = af.kmer_kld(x, a, k=3)
    for dt in (np.int8, np.int16, np.int64, np.float16, bool):
        got = af.kmer_kld(x.astype(dt), a, k=3)
        assert got.kld == want.kld, dt


def test_attr_float16_ok(xa):
    x, a = xa
    a16 = a.astype(np.float16)
    assert af.kmer_kld(x, a16, k=3).kld == af.kmer_kld(x, a16.astype(np.float32), k=3).kld


def test_attr_non_native_byte_order(xa):
    """Attributions read from big-endian files (e.g. some HDF5) are still float32/float64."""
    x, a = xa
    for dt in (">f4", ">f8"):
        ab = a.astype(dt)
        assert af.kmer_kld(x, ab, k=3).kld == af.kmer_kld(x, ab.astype("<" + dt[1:]), k=3).kld
        assert af.kattr_kld(ab).kld == af.kattr_kld(ab.astype("<" + dt[1:])).kld


def test_non_contiguous_and_readonly(xa):
    x, a = xa
    want = af.kmer_kld(x, a, k=3)
    big_x = np.repeat(x, 2, axis=1)[:, ::2]
    big_a = np.repeat(a, 2, axis=1)[:, ::2]
    assert af.kmer_kld(big_x, big_a, k=3).kld == want.kld
    x.flags.writeable = False
    a.flags.writeable = False
    assert af.kmer_kld(x, a, k=3).kld == want.kld
    assert af.kmer_kld(np.asfortranarray(x), np.asfortranarray(a), k=3).kld == want.kld
    assert af.kmer_kld(x.tolist(), a.tolist(), k=3).kld == want.kld


@pytest.mark.parametrize("nt", [0, -1, 1.5, "2", True])
def test_n_threads(xa, nt):
    x, a = xa
    for fn in (_kmer, _kattr, _gt):
        with pytest.raises((ValueError, TypeError), match="n_threads") as ei:
            fn(x, a, n_threads=nt)
        assert "expected" in str(ei.value) and repr(nt) in str(ei.value)
    with pytest.raises((ValueError, TypeError), match="n_threads"):
        af.kmer_prior(x, n_threads=nt)


@pytest.mark.parametrize("preset", ["Paper", "ACME", "fast", None, ""])
def test_unknown_preset(xa, preset):
    x, a = xa
    for fn in (af.kmer_kld,):
        check_error(ValueError, "preset", fn, x, a, k=3, preset=preset, arrived=[repr(preset)])
    check_error(ValueError, "preset", af.kattr_kld, a, preset=preset, arrived=[repr(preset)])
    check_error(ValueError, "preset", af.KmerAccumulator, preset=preset)
    check_error(ValueError, "preset", af.KattrAccumulator, preset=preset)


@pytest.mark.parametrize("weight", ["r", "R2", None, 2])
def test_unknown_weight(xa, weight):
    _, a = xa
    check_error(ValueError, "weight", af.kattr_kld, a, weight=weight, arrived=[repr(weight)])


@pytest.mark.parametrize("scope", ["local", "Sequence", "", 1])
def test_unknown_scope(xa, scope):
    _, a = xa
    check_error(ValueError, "threshold_scope", af.kattr_kld, a, threshold_scope=scope, arrived=[repr(scope)])


def test_groundtruth_parameters(xa):
    x, a = xa
    m = np.full(x.shape, 0.25)
    check_error(ValueError, "top_k", af.groundtruth_scores, x, a, m, top_k=0, arrived=["0"])
    check_error(TypeError, "top_k", af.groundtruth_scores, x, a, m, top_k=2.5)
    check_error(ValueError, "threshold", af.groundtruth_scores, x, a, m, threshold=math.nan, arrived=["nan"])


# --------------------------------------------------------------------------- accumulators
def test_accumulator_misuse(xa):
    x, a = xa
    with pytest.raises(ValueError, match="update"):
        af.KmerAccumulator(k=3).result()
    with pytest.raises(ValueError, match="update"):
        af.KattrAccumulator().result()
    check_error(ValueError, "other", af.KmerAccumulator(k=3).merge, af.KmerAccumulator(k=4),
                says_expected=False)
    check_error(TypeError, "other", af.KmerAccumulator(k=3).merge, af.KattrAccumulator(),
                arrived=["KattrAccumulator"])
    check_error(ValueError, "other", af.KattrAccumulator().merge, af.KattrAccumulator(window=5),
                says_expected=False)
    check_error(TypeError, "other", af.KattrAccumulator().merge, af.KmerAccumulator())


# --------------------------------------------------------------------------- never a crash
@st.composite
def garbage(draw):
    n, L = draw(st.integers(0, 4)), draw(st.integers(0, 8))
    shape = draw(st.one_of(st.just((n, L, 4)), st.just((n, 4, L)),
                           st.lists(st.integers(0, 6), min_size=0, max_size=4)))
    dtype = draw(st.sampled_from(["f4", "f8", "u1", "i8", "?", "f2", ">f8", "c8", "O", "U1"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    arr = rng.integers(-1, 3, size=shape)
    if dtype in ("O", "U1"):
        return arr.astype(dtype)
    arr = arr.astype(dtype)
    if dtype.endswith("f8") and arr.size and draw(st.booleans()):
        arr.flat[0] = draw(st.sampled_from([np.nan, np.inf, 1e308, -0.0, 5e-324]))
    return arr


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=garbage(), a=garbage(), layout=st.sampled_from(["NLC", "NCL"]),
       fn=st.sampled_from(["kmer", "kattr", "kattr_acme", "gt", "prior", "gauge"]),
       k=st.integers(-1, 13), window=st.integers(-1, 7))
def test_fuzz_never_crashes(x, a, layout, fn, k, window):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if fn == "kmer":
                af.kmer_kld(x, a, k=k, layout=layout, n_threads=2)
            elif fn == "kattr":
                af.kattr_kld(a, window=window, layout=layout, n_threads=2)
            elif fn == "kattr_acme":
                af.kattr_kld(a, window=window, layout=layout, preset="acme", n_threads=2)
            elif fn == "gt":
                af.groundtruth_scores(x, a, np.abs(a) if a.dtype.kind == "f" else a, layout=layout)
            elif fn == "prior":
                af.kmer_prior(x, k=k, layout=layout)
            else:
                af.gauge_correct(a, layout=layout)
        except (ValueError, TypeError) as e:
            assert str(e)


@pytest.mark.parametrize("layout", ["NLC", "NCL"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -0.25, 1.0000001])
def test_x_model_not_probabilities_index(xa, layout, bad):
    """The kernel finds the bad value; the message gives it and its index in the caller's layout."""
    x, a = xa
    m = np.full((N, L, 4), 0.25)
    m[2, 5, 1] = bad
    if layout == "NCL":
        x, a, m = (np.ascontiguousarray(np.swapaxes(v, 1, 2)) for v in (x, a, m))
        where = "(2, 1, 5)"
    else:
        where = "(2, 5, 1)"
    check_error(ValueError, "x_model", af.groundtruth_scores, x, a, m, layout=layout,
                arrived=[repr(np.float64(bad)), where])
