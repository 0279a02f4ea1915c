// pybind11 bindings: check arrays, allocate outputs, release the GIL, call core.
//
// The Python layer (acme_fast/_validate.py) has already checked shapes, dtypes,
// layouts and parameters and made the arrays C-contiguous; the checks here are
// a second line of defence so that no call from Python can reach the kernels
// with a pointer that does not match its sizes. Nothing is copied here.
//
// GIL: every kernel is called inside py::gil_scoped_release. That is safe
// because the kernels only read and write raw buffers whose owners (py::array
// objects) are held by this C++ frame for the whole call, and they touch no
// Python object. Outputs are allocated before the GIL is released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <new>
#include <thread>
#include <type_traits>
#include <vector>

#include "acme/compat.hpp"
#include "acme/groundtruth.hpp"
#include "acme/kattr.hpp"
#include "acme/kmer.hpp"

#if defined(__linux__) || defined(__APPLE__)
#include <sys/mman.h>
#define ACME_OUTPUT_POOL 1
#else
#define ACME_OUTPUT_POOL 0
#endif

namespace py = pybind11;
using namespace acme::core;

namespace {

enum class XType { u8, f32, f64 };
enum class AType { f32, f64 };

// Ctrl-C while a kernel runs with the GIL released: the kernel's thread 0
// (this thread) polls at most every 50 ms; on the main thread the poll takes
// the GIL and runs Python's signal handlers. If one raises (KeyboardInterrupt)
// the kernel stops early, its partial results are dropped, and the exception
// is raised here. Other threads never take the GIL in the poll (only the main
// thread handles signals), so a kernel called from a worker thread cannot
// block on it.
unsigned long g_main_thread = 0;

bool poll_python_signals() {
    if (PyThread_get_thread_ident() != g_main_thread) return false;
    PyGILState_STATE st = PyGILState_Ensure();
    const bool stop = PyErr_CheckSignals() != 0;
    PyGILState_Release(st);
    return stop;
}

// Installed for the duration of a kernel call (before the GIL is released);
// check() after the GIL is back raises the pending exception if the kernel
// was interrupted.
class Interruptible {
public:
    Interruptible() : scope_(&poll_python_signals) {}
    void check() {
        if (scope_.stopped()) throw py::error_already_set();
    }

private:
    ScopedInterrupt scope_;
};

void require(bool ok, const std::string& msg) {
    if (!ok) throw py::value_error(msg);
}
// For literals: no std::string is built unless the check fails (the per-element
// checks of kattr_hist_from_points built two per point, most of its time).
void require(bool ok, const char* msg) {
    if (!ok) throw py::value_error(msg);
}

// (N, L, 4) or (N, 4, L), C-contiguous. Returns (N, L).
std::pair<i64, i64> check_3d(const py::array& arr, bool ncl, const char* name) {
    require(arr.ndim() == 3, std::string(name) + ": expected a 3-D array");
    require(arr.flags() & py::array::c_style, std::string(name) + ": expected a C-contiguous array");
    const i64 N = arr.shape(0);
    const i64 L = ncl ? arr.shape(2) : arr.shape(1);
    const i64 C = ncl ? arr.shape(1) : arr.shape(2);
    require(C == 4, std::string(name) + ": expected 4 channels");
    return {N, L};
}

XType xtype(const py::array& x) {
    if (py::isinstance<py::array_t<std::uint8_t>>(x)) return XType::u8;
    if (py::isinstance<py::array_t<float>>(x)) return XType::f32;
    if (py::isinstance<py::array_t<double>>(x)) return XType::f64;
    throw py::type_error("x: expected uint8, float32 or float64 data");
}

AType atype(const py::array& a) {
    if (py::isinstance<py::array_t<float>>(a)) return AType::f32;
    if (py::isinstance<py::array_t<double>>(a)) return AType::f64;
    throw py::type_error("attr: expected float32 or float64 data");
}

py::object error_tuple(const InputError& e) {
    if (e.ok()) return py::none();
    return py::make_tuple(e.kind, e.seq, e.pos, e.value);
}

// Calls f(TX{}, TA{}, std::bool_constant<NCL>{}) for the runtime types (C++17 tag dispatch).
template <class F>
void dispatch_x_a(XType xt, AType at, bool ncl, F&& f) {
    auto with_a = [&](auto tx) {
        using TX = decltype(tx);
        if (at == AType::f32) {
            if (ncl) f(TX{}, float{}, std::true_type{}); else f(TX{}, float{}, std::false_type{});
        } else {
            if (ncl) f(TX{}, double{}, std::true_type{}); else f(TX{}, double{}, std::false_type{});
        }
    };
    switch (xt) {
        case XType::u8: with_a(std::uint8_t{}); break;
        case XType::f32: with_a(float{}); break;
        case XType::f64: with_a(double{}); break;
    }
}

template <class F>
void dispatch_a(AType at, bool ncl, F&& f) {
    if (at == AType::f32) {
        if (ncl) f(float{}, std::true_type{}); else f(float{}, std::false_type{});
    } else {
        if (ncl) f(double{}, std::true_type{}); else f(double{}, std::false_type{});
    }
}

py::array_t<std::uint64_t> hist_to_array(const std::vector<FixedSum>& h) {
    py::array_t<std::uint64_t> out({static_cast<py::ssize_t>(h.size()), py::ssize_t(4)});
    auto* p = out.mutable_data();
    for (size_t j = 0; j < h.size(); ++j) std::memcpy(p + 4 * j, h[j].limb, sizeof(h[j].limb));
    return out;
}

std::vector<FixedSum> hist_from_array(const py::array_t<std::uint64_t, py::array::c_style>& a) {
    require(a.ndim() == 2 && a.shape(1) == 4, "hist: expected shape (n_bins**2, 4)");
    std::vector<FixedSum> h(static_cast<size_t>(a.shape(0)));
    const auto* p = a.data();
    for (size_t j = 0; j < h.size(); ++j) std::memcpy(h[j].limb, p + 4 * j, sizeof(h[j].limb));
    return h;
}

py::dict hist_dict(const std::vector<FixedSum>& hist, i64 n_points, double cutoff, const InputError& err) {
    py::dict d;
    d["hist"] = hist_to_array(hist);
    d["n_points"] = n_points;
    d["cutoff"] = cutoff;
    d["error"] = error_tuple(err);
    return d;
}

// (N, L) of attributions for the k-attr kernels: 3-D, 4 channels, at least one point per sequence.
std::pair<i64, i64> check_kattr_input(const py::array& attr, const KattrConfig& cfg, bool ncl);

KattrConfig make_cfg(bool acme, int window, double quantile, double bin_width, int n_bins, int weight) {
    require(window >= 1, "window: expected >= 1");
    require(quantile > 0 && quantile < 1, "quantile: expected a value in (0, 1)");
    require(bin_width > 0 && n_bins >= 1, "bin_width: expected a positive width");
    require(weight >= 0 && weight <= 2, "weight: unknown code");
    KattrConfig cfg;
    cfg.acme = acme;
    cfg.window = window;
    cfg.quantile = quantile;
    cfg.bin_width = bin_width;
    cfg.n_bins = n_bins;
    cfg.weight = static_cast<Weight>(weight);
    return cfg;
}

std::pair<i64, i64> check_kattr_input(const py::array& attr, const KattrConfig& cfg, bool ncl) {
    auto nl = check_3d(attr, ncl, "attr");
    require(kattr_points_per_seq(cfg, nl.second) >= 1, "attr: sequence length must be >= window");
    return nl;
}

// ---------------------------------------------------------------------------
py::dict kmer_count_py(const py::array& x, const py::object& attr_obj, int k, double quantile, i64 buffer,
                       bool want_prior, bool ncl, int n_threads) {
    require(k >= 1 && k <= 12, "k: expected an integer in 1..12");
    auto [N, L] = check_3d(x, ncl, "x");
    require(L >= k, "x: sequence length must be >= k");
    const bool has_attr = !attr_obj.is_none();
    py::array attr = has_attr ? py::array(attr_obj) : py::array(py::array_t<float>(std::vector<py::ssize_t>{0, 0, 4}));
    if (has_attr) {
        auto [Na, La] = check_3d(attr, ncl, "attr");
        require(Na == N && La == L, "attr: shape must match x");
        require(quantile > 0 && quantile < 1, "quantile: expected a value in (0, 1)");
        require(buffer >= 0, "buffer: expected >= 0");
    }
    const XType xt = xtype(x);
    const AType at = atype(attr);
    KmerCounts res;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        dispatch_x_a(xt, at, ncl, [&](auto tx, auto ta, auto ncl_tag) {
            using TX = decltype(tx);
            using TA = decltype(ta);
            constexpr bool NCL = decltype(ncl_tag)::value;
            res = kmer_count<TX, TA, NCL>(static_cast<const TX*>(x.data()),
                                          has_attr ? static_cast<const TA*>(attr.data()) : nullptr, N, L, k,
                                          quantile, buffer, want_prior, n_threads);
        });
    }
    intr.check();
    py::dict d;
    d["counts"] = py::array_t<i64>(res.counts.size(), res.counts.data());
    d["prior_counts"] = py::array_t<i64>(res.prior.size(), res.prior.data());
    d["n_intervals"] = res.n_intervals;
    d["n_nucleotides"] = res.n_nucleotides;
    d["error"] = error_tuple(res.error);
    return d;
}

py::dict kmer_intervals_py(const py::array& attr, int k, double quantile, i64 buffer, bool gauge, bool ncl,
                           int n_threads) {
    require(k >= 1 && k <= 12, "k: expected an integer in 1..12");
    require(quantile > 0 && quantile < 1, "quantile: expected a value in (0, 1)");
    require(buffer >= 0, "buffer: expected >= 0");
    auto [N, L] = check_3d(attr, ncl, "attr");
    require(L >= 1, "attr: empty sequences");
    const AType at = atype(attr);
    KmerIntervals res;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        dispatch_a(at, ncl, [&](auto ta, auto ncl_tag) {
            using TA = decltype(ta);
            constexpr bool NCL = decltype(ncl_tag)::value;
            res = kmer_intervals<TA, NCL>(static_cast<const TA*>(attr.data()), N, L, k, quantile, buffer, gauge,
                                          n_threads);
        });
    }
    intr.check();
    py::dict d;
    d["seq"] = py::array_t<i64>(res.seq.size(), res.seq.data());
    d["begin"] = py::array_t<i64>(res.begin.size(), res.begin.data());
    d["end"] = py::array_t<i64>(res.end.size(), res.end.data());
    d["cutoff"] = py::array_t<double>(res.cutoff.size(), res.cutoff.data());
    d["error"] = error_tuple(res.error);
    return d;
}

py::array_t<std::uint64_t> hist_from_bins_py(const py::array_t<std::int64_t, py::array::c_style>& bin,
                                             const py::array_t<double, py::array::c_style>& weight, int n_bins) {
    require(bin.ndim() == 1 && weight.ndim() == 1 && bin.shape(0) == weight.shape(0),
            "bin and weight: expected 1-D arrays of the same length");
    require(n_bins >= 1, "n_bins: expected >= 1");
    const i64 n = bin.shape(0), nb2 = static_cast<i64>(n_bins) * n_bins;
    std::vector<FixedSum> hist(static_cast<size_t>(nb2));
    const auto* b = bin.data();
    const auto* w = weight.data();
    for (i64 j = 0; j < n; ++j) {
        require(b[j] >= 0 && b[j] < nb2, "bin: index out of range");
        require(hist[static_cast<size_t>(b[j])].add(w[j]), "weight: expected finite values in [0, 2**96)");
    }
    return hist_to_array(hist);
}

py::tuple kld_counts_py(const py::array_t<i64, py::array::c_style>& counts,
                        const py::array_t<double, py::array::c_style>& q) {
    require(counts.ndim() == 1 && q.ndim() == 1 && counts.shape(0) == q.shape(0),
            "counts and prior: expected 1-D arrays of the same length");
    i64 zero = -1;
    double kl;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        kl = kld_counts(counts.data(), q.data(), static_cast<size_t>(counts.shape(0)), zero);
    }
    intr.check();
    return py::make_tuple(kl, zero);
}

py::dict kattr_hist_py(const py::array& attr, bool acme, int window, double quantile, double bin_width, int n_bins,
                       int weight, bool global_scope, bool ncl, int n_threads) {
    const KattrConfig cfg = make_cfg(acme, window, quantile, bin_width, n_bins, weight);
    auto [N, L] = check_kattr_input(attr, cfg, ncl);
    const AType at = atype(attr);
    std::vector<FixedSum> hist(static_cast<size_t>(n_bins) * n_bins);
    i64 n_points = 0;
    double cutoff = std::numeric_limits<double>::quiet_NaN();
    InputError err;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        dispatch_a(at, ncl, [&](auto ta, auto ncl_tag) {
            using TA = decltype(ta);
            constexpr bool NCL = decltype(ncl_tag)::value;
            const TA* a = static_cast<const TA*>(attr.data());
            if (global_scope)
                kattr_global_scope<TA, NCL>(a, N, L, cfg, n_threads, hist.data(), n_points, cutoff, err);
            else
                kattr_sequence_scope<TA, NCL>(a, N, L, cfg, n_threads, hist.data(), n_points, err);
        });
    }
    intr.check();
    return hist_dict(hist, n_points, cutoff, err);
}

py::tuple kattr_points_py(const py::array& attr, bool acme, int window, double quantile, double bin_width,
                          int n_bins, int weight, bool ncl, int n_threads) {
    const KattrConfig cfg = make_cfg(acme, window, quantile, bin_width, n_bins, weight);
    auto [N, L] = check_3d(attr, ncl, "attr");
    const i64 P = kattr_points_per_seq(cfg, L);
    require(P >= 1, "attr: sequence length must be >= window");
    const AType at = atype(attr);
    py::array_t<double> r(N * P);
    py::array_t<std::int32_t> bin(N * P);
    double* rp = r.mutable_data();
    std::int32_t* bp = bin.mutable_data();
    InputError err;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        dispatch_a(at, ncl, [&](auto ta, auto ncl_tag) {
            using TA = decltype(ta);
            constexpr bool NCL = decltype(ncl_tag)::value;
            kattr_all_points<TA, NCL>(static_cast<const TA*>(attr.data()), N, L, cfg, n_threads, rp, bp, err);
        });
    }
    intr.check();
    return py::make_tuple(r, bin, error_tuple(err));
}

py::dict kattr_hist_from_points_py(const py::array_t<double, py::array::c_style>& r,
                                   const py::array_t<std::int32_t, py::array::c_style>& bin, bool acme,
                                   double quantile, int n_bins, int weight, int n_threads) {
    require(r.ndim() == 1 && bin.ndim() == 1 && r.shape(0) == bin.shape(0), "r and bin: expected equal 1-D arrays");
    const KattrConfig cfg = make_cfg(acme, 1, quantile, 1.0, n_bins, weight);
    const i64 n = r.shape(0);
    const std::int32_t* bp = bin.data();
    const double* rp = r.data();
    for (i64 j = 0; j < n; ++j) {
        require(bp[j] >= 0 && bp[j] < n_bins * n_bins, "bin: index out of range");
        require(rp[j] >= 0.0, "r: expected radii >= 0");  // the radix keys need r >= 0 (not NaN)
    }
    std::vector<FixedSum> hist(static_cast<size_t>(n_bins) * n_bins);
    i64 n_points = 0;
    double cutoff;
    InputError err;
    Interruptible intr;
    {
        // The GIL is released: the kernel reads r and bin (held by this call) and writes
        // only hist, n_points and err, locals of this call.
        py::gil_scoped_release nogil;
        cutoff = kattr_hist_stored(rp, bp, n, cfg, n_threads, hist.data(), n_points, err);
    }
    intr.check();
    return hist_dict(hist, n_points, cutoff, err);
}

py::tuple kattr_stream_keys_py(const py::array& attr, bool acme, int window, double quantile, double bin_width,
                                      int n_bins, int weight, bool ncl, int n_threads,
                                      py::array_t<i64, py::array::c_style> keys) {
    const KattrConfig cfg = make_cfg(acme, window, quantile, bin_width, n_bins, weight);
    auto [N, L] = check_kattr_input(attr, cfg, ncl);
    require(keys.ndim() == 1 && keys.shape(0) == static_cast<py::ssize_t>(kStreamKeys), "keys: expected 2**20 counts");
    const AType at = atype(attr);
    i64* kp = keys.mutable_data();
    InputError err;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        dispatch_a(at, ncl, [&](auto ta, auto ncl_tag) {
            using TA = decltype(ta);
            constexpr bool NCL = decltype(ncl_tag)::value;
            kattr_stream_keys<TA, NCL>(static_cast<const TA*>(attr.data()), N, L, cfg, n_threads, kp, err);
        });
    }
    intr.check();
    return py::make_tuple(error_tuple(err));
}

py::tuple kattr_stream_plan_py(const py::array_t<i64, py::array::c_style>& keys, double quantile, bool acme) {
    require(keys.ndim() == 1 && keys.shape(0) == static_cast<py::ssize_t>(kStreamKeys), "keys: expected 2**20 counts");
    i64 B, need;
    kattr_stream_plan(keys.data(), quantile, acme, B, need);
    return py::make_tuple(B, need);
}

py::dict kattr_stream_bin_py(const py::array& attr, bool acme, int window, double quantile, double bin_width,
                             int n_bins, int weight, bool ncl, int n_threads, i64 B) {
    const KattrConfig cfg = make_cfg(acme, window, quantile, bin_width, n_bins, weight);
    auto [N, L] = check_kattr_input(attr, cfg, ncl);
    const AType at = atype(attr);
    std::vector<FixedSum> hist(static_cast<size_t>(n_bins) * n_bins);
    i64 n_points = 0;
    std::vector<double> cand_r;
    std::vector<std::int32_t> cand_bin;
    InputError err;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        dispatch_a(at, ncl, [&](auto ta, auto ncl_tag) {
            using TA = decltype(ta);
            constexpr bool NCL = decltype(ncl_tag)::value;
            kattr_stream_bin<TA, NCL>(static_cast<const TA*>(attr.data()), N, L, cfg, n_threads, B, hist.data(),
                                      n_points, cand_r, cand_bin, err);
        });
    }
    intr.check();
    py::dict d = hist_dict(hist, n_points, std::numeric_limits<double>::quiet_NaN(), err);
    d["cand_r"] = py::array_t<double>(cand_r.size(), cand_r.data());
    d["cand_bin"] = py::array_t<std::int32_t>(cand_bin.size(), cand_bin.data());
    return d;
}

py::dict kattr_stream_finish_py(const py::array_t<std::uint64_t, py::array::c_style>& h,
                                const py::array_t<double, py::array::c_style>& cand_r,
                                const py::array_t<std::int32_t, py::array::c_style>& cand_bin, i64 need, int n_bins,
                                int weight) {
    auto hist = hist_from_array(h);
    require(static_cast<i64>(hist.size()) == static_cast<i64>(n_bins) * n_bins, "hist: expected n_bins**2 rows");
    require(cand_r.ndim() == 1 && cand_bin.ndim() == 1 && cand_r.shape(0) == cand_bin.shape(0),
            "cand_r and cand_bin: expected 1-D arrays of the same length");
    const i64 n = cand_r.shape(0);
    for (i64 j = 0; j < n; ++j)
        require(cand_bin.data()[j] >= 0 && cand_bin.data()[j] < n_bins * n_bins, "cand_bin: index out of range");
    const KattrConfig cfg = make_cfg(false, 1, 0.5, 1.0, n_bins, weight);
    i64 n_points = 0;
    double cutoff;
    InputError err;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        kattr_stream_finish(cand_r.data(), cand_bin.data(), n, need, cfg, hist.data(), n_points, cutoff, err);
    }
    intr.check();
    return hist_dict(hist, n_points, cutoff, err);
}

py::array_t<std::uint64_t> hist_merge_py(const py::array_t<std::uint64_t, py::array::c_style>& a,
                                         const py::array_t<std::uint64_t, py::array::c_style>& b) {
    auto ha = hist_from_array(a);
    auto hb = hist_from_array(b);
    require(ha.size() == hb.size(), "hist: shapes differ");
    for (size_t j = 0; j < ha.size(); ++j) ha[j].merge(hb[j]);
    return hist_to_array(ha);
}

py::tuple kattr_finish_py(const py::array_t<std::uint64_t, py::array::c_style>& h, bool acme, int n_bins,
                          int prior_bins) {
    auto hist = hist_from_array(h);
    require(static_cast<i64>(hist.size()) == static_cast<i64>(n_bins) * n_bins, "hist: expected n_bins**2 rows");
    // The Python layer bounds prior_bins by 2 n_bins + 1; the running sums cost O(n_bins * prior_bins).
    require(prior_bins >= 1 && prior_bins <= 2 * n_bins + 1, "prior_bins: expected 1..2*n_bins+1");
    KattrConfig cfg;
    cfg.acme = acme;
    cfg.n_bins = n_bins;
    py::array_t<double> mass({n_bins, n_bins}), prior({n_bins, n_bins});
    double* mp = mass.mutable_data();
    double* pp = prior.mutable_data();
    double kl;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        kl = kattr_finish(hist.data(), cfg, prior_bins, mp, pp);
    }
    intr.check();
    return py::make_tuple(kl, mass, prior);
}

py::dict groundtruth_py(const py::array& x, const py::array& attr, const py::array_t<double, py::array::c_style>& model,
                        double threshold, i64 top_k, bool ncl, int n_threads) {
    auto [N, L] = check_3d(x, ncl, "x");
    auto [Na, La] = check_3d(attr, ncl, "attr");
    auto [Nm, Lm] = check_3d(model, ncl, "x_model");
    require(Na == N && La == L && Nm == N && Lm == L, "x, attr, x_model: shapes must match");
    require(top_k >= 1, "top_k: expected >= 1");
    const XType xt = xtype(x);
    const AType at = atype(attr);
    py::dict d;
    InputError err;
    auto run = [&](auto ta) {
        using TA = decltype(ta);
        std::vector<GroundTruthRow<TA>> rows(static_cast<size_t>(N));
        Interruptible intr;
        {
            py::gil_scoped_release nogil;
            dispatch_x_a(xt, at, ncl, [&](auto tx, auto ta2, auto ncl_tag) {
                using TX = decltype(tx);
                using TA2 = decltype(ta2);
                constexpr bool NCL = decltype(ncl_tag)::value;
                if constexpr (std::is_same_v<TA, TA2>)
                    groundtruth<TX, TA, NCL>(static_cast<const TX*>(x.data()), static_cast<const TA*>(attr.data()),
                                             model.data(), N, L, threshold, top_k, n_threads, rows.data(), err);
            });
        }
        intr.check();
        py::array_t<double> auroc(N), auprc(N);
        py::array_t<TA> signal(N), noise(N), snr(N);
        for (i64 i = 0; i < N; ++i) {
            auroc.mutable_data()[i] = rows[i].auroc;
            auprc.mutable_data()[i] = rows[i].auprc;
            signal.mutable_data()[i] = rows[i].signal;
            noise.mutable_data()[i] = rows[i].noise_topk;
            snr.mutable_data()[i] = rows[i].snr;
        }
        d["auroc"] = auroc;
        d["auprc"] = auprc;
        d["signal"] = signal;
        d["noise_topk"] = noise;
        d["snr"] = snr;
    };
    if (at == AType::f32) run(float{}); else run(double{});
    d["error"] = error_tuple(err);
    return d;
}

// ---------------------------------------------------------------------------
// One large output block kept for the next call (process_attribution_map's
// (N, L, 3) float64 output: 196 MB at N = 4000, L = 2048). The compat users call
// it once per model on maps of one size; every fresh block costs the OS mapping
// and zeroing it page by page (12-16 ms of a 2-thread call of 50 ms here). When the
// array that owns a block dies, the block is kept (one at most) and marked
// MADV_FREE: the kernel may take its pages back whenever it needs memory
// (they then come back zeroed), so keeping it holds no memory anyone else
// needs; a later call of the same or a smaller size reuses it. The outputs'
// values never depend on the block's old contents: every value is written.
class OutputPool {
public:
    static constexpr size_t kAlign = size_t(2) << 20;     // sizes in whole huge pages
    static constexpr size_t kMinBytes = size_t(16) << 20;  // smaller outputs: numpy's allocation
    struct Block {
        void* p = nullptr;
        size_t size = 0;
    };
    // A block of at least `bytes`, or nullptr (then the caller lets numpy allocate).
    static void* take(size_t bytes, size_t& size) {
#if ACME_OUTPUT_POOL
        size = round_up(bytes);
        {
            std::lock_guard<std::mutex> lock(mu());
            Block& k = kept();
            if (k.p != nullptr && k.size >= size && k.size <= 2 * size) {
                void* p = k.p;
                size = k.size;
                k = Block{};
                return p;
            }
        }
        void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
        madvise(p, size, MADV_HUGEPAGE);
#endif
        return p;
#else
        (void)bytes;
        size = 0;
        return nullptr;
#endif
    }
    static void give(void* p, size_t size) {
#if ACME_OUTPUT_POOL
#ifdef MADV_FREE
        if (madvise(p, size, MADV_FREE) != 0) {  // a kernel without it (Linux < 4.5): keep nothing
            munmap(p, size);
            return;
        }
        Block old{};
        {
            std::lock_guard<std::mutex> lock(mu());
            std::swap(old, kept());
            kept() = Block{p, size};
        }
        if (old.p != nullptr) munmap(old.p, old.size);
#else
        munmap(p, size);
#endif
#else
        (void)p;
        (void)size;
#endif
    }

private:
    static size_t round_up(size_t b) { return (b + kAlign - 1) / kAlign * kAlign; }
    static std::mutex& mu() {
        static std::mutex m;
        return m;
    }
    static Block& kept() {
        static Block k;
        return k;
    }
};

// A C-contiguous float64 array of this shape on a pooled block when it is large
// (numpy's own allocation otherwise, or when no block can be mapped). The array's
// base is a capsule that gives the block back when the array and its views die.
py::array_t<double> pooled_array(const std::vector<py::ssize_t>& shape) {
    size_t n = 1;
    for (auto d : shape) n *= static_cast<size_t>(d);
    if (n * sizeof(double) < OutputPool::kMinBytes) return py::array_t<double>(shape);
    size_t size = 0;
    void* p = OutputPool::take(n * sizeof(double), size);
    if (p == nullptr) return py::array_t<double>(shape);
    struct Give {
        void operator()(OutputPool::Block* b) const {
            OutputPool::give(b->p, b->size);
            delete b;
        }
    };
    std::unique_ptr<OutputPool::Block, Give> block;
    try {
        block.reset(new OutputPool::Block{p, size});
    } catch (...) {
        OutputPool::give(p, size);
        throw;
    }
    // the capsule owns the block from here (its destructor gives it back)
    py::capsule owner(block.get(), [](void* q) { Give{}(static_cast<OutputPool::Block*>(q)); });
    block.release();
    return py::array_t<double>(shape, static_cast<double*>(p), owner);
}

// ---------------------------------------------------------------------------
// acme_fast.compat's per-point passes (compat.hpp); the Python layer validates
// the arguments and raises the errors. The GIL is released while the C++ runs:
// it reads and writes only the arrays created or held here.
py::tuple compat_process_map_py(const py::array& attr, int k, int n_threads) {
    auto [N, L] = check_3d(attr, false, "saliency_map_raw");
    require(k >= 1 && k <= L, "k: expected 1..L");
    const AType at = atype(attr);
    py::array_t<double> out = pooled_array({N, L, i64(3)});
    double* o = out.mutable_data();
    i64 bad = -1;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        if (at == AType::f32)
            bad = compat_process_map(static_cast<const float*>(attr.data()), N, L, k, n_threads, o);
        else
            bad = compat_process_map(static_cast<const double*>(attr.data()), N, L, k, n_threads, o);
    }
    intr.check();
    return py::make_tuple(out, bad);
}

// phi' from numpy's arctan of the ratios, written over `at` (a contiguous float64
// array, often a slice of the caller's output). The GIL is released: the loop
// touches only these two arrays, held by this call.
void compat_phi_py(py::array at, const py::array_t<std::int8_t, py::array::c_style>& branch) {
    require(py::array_t<double, py::array::c_style>::check_(at) && at.ndim() == 1 && branch.ndim() == 1 &&
                at.size() == branch.size(),
            "at, branch: expected contiguous 1-D float64 and int8 arrays of the same length");
    double* a = static_cast<double*>(at.mutable_data());  // raises if not writeable
    const std::int8_t* b = branch.data();
    const i64 n = at.size();
    py::gil_scoped_release nogil;
    compat_phi(a, b, n);
}

// fn(i) for i in [0, n) on the OpenMP team (at most n_threads threads), each call
// holding the GIL while it runs Python code; for numpy work on parts of arrays,
// which releases the GIL inside its loops, so that the parts run at the same
// time. Why the team rather than Python threads: a team thread that has just
// finished a parallel region spins for some milliseconds before it sleeps, and
// Python threads started meanwhile compete with it for the cores (compat's
// arctan/arccos of 819k points, 2 cores: 25 ms median right after
// compat_spherical, 18 ms otherwise). Releasing the GIL is safe: every call
// takes it back before it touches Python objects. fn should not raise (the
// caller's parts record their exceptions); if it does, the first exception is
// re-raised here after the team has finished.
void run_parts_py(const py::function& fn, i64 n, int n_threads) {
    require(n >= 0, "n: expected a count >= 0");
    const int nt = resolve_threads(n_threads, std::max<i64>(n, 1));
    py::gil_scoped_release nogil;
    parallel_for(nt, n, 1, [](int) {}, [&](int, i64 i) {
        py::gil_scoped_acquire gil;
        fn(i);
    });
}

py::tuple compat_spherical_py(const py::array_t<double, py::array::c_style>& s, double mask,
                              const py::object& mask_arr_obj, i64 radius_count, int n_threads, int force) {
    require(force >= 0 && force <= 2, "force: expected 0, 1 or 2");
    require(s.ndim() == 3 && s.shape(2) == 3, "saliency_map_raw_s: expected shape (N, L, 3)");
    const i64 N = s.shape(0), L = s.shape(1);
    require(radius_count >= 0 && radius_count <= N * L, "radius_count: expected 0..N*L");
    py::array_t<double, py::array::c_style> mask_arr;
    const double* mp = nullptr;
    if (!mask_arr_obj.is_none()) {
        mask_arr = py::array_t<double, py::array::c_style>(mask_arr_obj);
        require(mask_arr.size() == N * L, "mask: expected N*L values");
        mp = mask_arr.data();
    }
    std::unique_ptr<SphericalPass> pass;
    i64 n = 0;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        pass = std::make_unique<SphericalPass>(s.data(), N, L, mask, mp, n_threads, force);
        n = pass->select(radius_count);
    }
    intr.check();
    py::array_t<double> ratio(n), cosine(n), r(n);
    py::array_t<std::int8_t> branch(n);
    double* rp = ratio.mutable_data();
    double* cp = cosine.mutable_data();
    double* rr = r.mutable_data();
    std::int8_t* bp = branch.mutable_data();
    {
        py::gil_scoped_release nogil;
        pass->write(rp, bp, cp, rr);
    }
    intr.check();
    return py::make_tuple(ratio, branch, cosine, r, pass->cutoff(), pass->one_pass());
}

// For tests: the points SphericalPass samples in a map of `size` (>= 2^14) points.
py::array_t<i64> compat_sample_points_py(i64 size) {
    require(size >= (i64(1) << 14), "size: expected at least 2**14 points");
    constexpr int S = 1 << SphericalPass::kLogSample;
    py::array_t<i64> out(S);
    for (int j = 0; j < S; ++j) out.mutable_data()[j] = SphericalPass::sample_point(size, j);
    return out;
}

// One-hot rows to codes 0..3 (A, C, G, T), -1 for an all-zero row (N), checked:
// (codes (N, L) int8, error tuple as kmer_count's).
py::tuple onehot_codes_py(const py::array& x, bool ncl, int n_threads) {
    auto [N, L] = check_3d(x, ncl, "x");
    const XType xt = xtype(x);
    py::array_t<std::int8_t> codes({N, L});
    std::int8_t* cp = codes.mutable_data();
    InputError err;
    Interruptible intr;
    {
        py::gil_scoped_release nogil;
        const int nt = resolve_threads(n_threads, N);
        std::vector<InputError> t_err(static_cast<size_t>(nt));
        auto run = [&](auto tx, auto ncl_tag) {
            using TX = decltype(tx);
            constexpr bool NCL = decltype(ncl_tag)::value;
            const TX* xp = static_cast<const TX*>(x.data());
            parallel_for(nt, N, 16, [](int) {}, [&](int tid, i64 i) {
                i64 bad = 0;
                if (!load_codes<TX, NCL>(xp + i * L * 4, L, cp + i * L, bad))
                    t_err[tid].record(InputError::not_one_hot, i, bad, 0.0);
            });
        };
        auto with_layout = [&](auto tx) {
            if (ncl) run(tx, std::true_type{}); else run(tx, std::false_type{});
        };
        switch (xt) {
            case XType::u8: with_layout(std::uint8_t{}); break;
            case XType::f32: with_layout(float{}); break;
            case XType::f64: with_layout(double{}); break;
        }
        for (const auto& e : t_err) err.merge(e);
    }
    intr.check();
    return py::make_tuple(codes, error_tuple(err));
}

// The letters of codes[seq[j], begin[j] .. end[j]] (inclusive) for each j, as str
// (codes from onehot_codes: -1 is N). Bounds are checked.
py::list compat_strings_py(const py::array_t<std::int8_t, py::array::c_style>& codes,
                           const py::array_t<i64, py::array::c_style>& seq,
                           const py::array_t<i64, py::array::c_style>& begin,
                           const py::array_t<i64, py::array::c_style>& end) {
    require(codes.ndim() == 2, "codes: expected (N, L)");
    const i64 N = codes.shape(0), L = codes.shape(1), n = seq.size();
    require(begin.size() == n && end.size() == n, "seq, begin, end: expected the same length");
    static constexpr char kLetter[5] = {'N', 'A', 'C', 'G', 'T'};
    const std::int8_t* c = codes.data();
    py::list out(n);
    std::string buf;
    for (i64 j = 0; j < n; ++j) {
        const i64 i = seq.data()[j], b = begin.data()[j], e = end.data()[j];
        require(i >= 0 && i < N && b >= 0 && b <= e + 1 && e < L, "seq, begin, end: interval out of range");
        buf.resize(static_cast<size_t>(e - b + 1));
        for (i64 l = b; l <= e; ++l) buf[static_cast<size_t>(l - b)] = kLetter[c[i * L + l] + 1];
        out[static_cast<size_t>(j)] = py::str(buf);
    }
    return out;
}

py::tuple compat_angle_hist_py(const py::array_t<double, py::array::c_style>& p1,
                               const py::array_t<double, py::array::c_style>& p2,
                               const py::array_t<double, py::array::c_style>& r, double box_length, int n_bins,
                               int n_threads) {
    const i64 n = p1.size();
    require(p2.size() == n && r.size() == n, "phi_1_s, phi_2_s, r_s: expected the same length");
    require(n_bins >= 1 && n_bins <= 46340 && box_length > 0,
            "n_bins, box_length: expected 1 <= n_bins <= 46340 and box_length > 0");
    std::vector<FixedSum> hist(static_cast<size_t>(n_bins) * n_bins);
    i64 bad = -1;
    int code;
    {
        py::gil_scoped_release nogil;
        code = compat_angle_hist(p1.data(), p2.data(), r.data(), n, box_length, n_bins, hist.data(), bad, n_threads);
    }
    return py::make_tuple(hist_to_array(hist), code, bad);
}

// For tests: the fast and the exact bin of points e (n, 3) (r = ||e||).
py::tuple kattr_bins_py(const py::array_t<double, py::array::c_style>& e, bool acme, double bin_width, int n_bins) {
    require(e.ndim() == 2 && e.shape(1) == 3, "e: expected shape (n, 3)");
    const KattrConfig cfg = make_cfg(acme, 1, 0.5, bin_width, n_bins, 0);
    const i64 n = e.shape(0);
    py::array_t<i64> fast(n), exact(n);
    const double* p = e.data();
    SeqPoints sp(n);
    sp.P = n;
    sp.scale = 1.0;
    i64 m = 0;
    for (i64 j = 0; j < n; ++j) {
        sp.e1[j] = p[3 * j];
        sp.e2[j] = p[3 * j + 1];
        sp.e3[j] = p[3 * j + 2];
        sp.s[j] = sp.e1[j] * sp.e1[j] + sp.e2[j] * sp.e2[j] + sp.e3[j] * sp.e3[j];
        fast.mutable_data()[j] = -1;
        sp.idx[m] = j;
        m += sp.s[j] > 0;
    }
    sp.bin_points(cfg, m);
    for (i64 j = 0; j < m; ++j) fast.mutable_data()[sp.idx[j]] = sp.bins[j];
    for (i64 j = 0; j < n; ++j) {
        const double* v = p + 3 * j;
        const double r = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        exact.mutable_data()[j] = r > 0 ? kattr_bin_exact(cfg, v[0], v[1], v[2], r) : -1;
    }
    return py::make_tuple(fast, exact);
}

template <class T>
T pairwise_mean_py(const py::array_t<T, py::array::c_style>& a) {
    require(a.ndim() == 1, "a: expected a 1-D array");
    return numpy_mean(a.data(), a.shape(0));
}

double quantile_py(py::array_t<double, py::array::c_style> a, double q) {
    require(a.ndim() == 1 && a.shape(0) >= 1, "a: expected a non-empty 1-D array");
    std::vector<double> buf(a.data(), a.data() + a.shape(0));
    return quantile_linear(buf.data(), static_cast<i64>(buf.size()), q);
}

// For the tests: v / d by compat's exact division on this tier (a new array).
py::array_t<double> divide_exact_py(const py::array_t<double, py::array::c_style | py::array::forcecast>& v,
                                    double d) {
    require(v.ndim() == 1, "v: expected a 1-D array");
    require(divide_exact_in_range(d), "d: expected a divisor in [2^-400, 2^400]");
    const double* in = v.data();
    for (i64 j = 0; j < v.size(); ++j)
        require(in[j] == 0.0 || (std::fabs(in[j]) >= d * 0x1p-400 && std::fabs(in[j]) <= d * 0x1p+400),
                "v: expected 0 or |v| in [d 2^-400, d 2^400]");
    py::array_t<double> out(v.size());
    std::memcpy(out.mutable_data(), in, sizeof(double) * static_cast<size_t>(v.size()));
    divide_exact(out.mutable_data(), v.size(), d);
    return out;
}

// For tests: the edge sqrt_above(cut) of the k-mer mask.
double sqrt_above_py(double cut) {
    require(cut >= 0.0, "cut: expected a number >= 0");
    return sqrt_above(cut);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "acme_fast C++ kernels (internal; use the acme_fast package API)";
#ifdef _OPENMP
    m.attr("has_openmp") = true;
#else
    m.attr("has_openmp") = false;
#endif
    g_main_thread = py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
    m.def("max_threads", [](int n) { return resolve_threads(n); }, py::arg("n_threads") = 0);
    m.attr("thread_limit") = py::int_(kMaxThreads);
    // For the tests: a parallel loop of n_iter iterations of sleep_ms each, run the
    // way every kernel runs its loops (parallel_for, interrupt polling, exceptions
    // caught inside the region). Returns the iterations done; raises
    // KeyboardInterrupt when interrupted and MemoryError when fail_at >= 0
    // (a std::bad_alloc thrown in iteration fail_at, inside the region).
    m.def(
        "_parallel_probe",
        [](i64 n_iter, double sleep_ms, int n_threads, i64 fail_at) {
            std::atomic<i64> done{0};
            const int nt = resolve_threads(n_threads, n_iter);
            Interruptible intr;
            {
                py::gil_scoped_release nogil;
                parallel_for(nt, n_iter, 1, [](int) {}, [&](int, i64 i) {
                    if (i == fail_at) throw std::bad_alloc();
                    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(sleep_ms));
                    done.fetch_add(1, std::memory_order_relaxed);
                });
            }
            intr.check();
            return done.load();
        },
        py::arg("n_iter"), py::arg("sleep_ms"), py::arg("n_threads") = 0, py::arg("fail_at") = -1);
    // SIMD tiers (simd/dispatch.hpp): the one in use, the CPU's best, the ones
    // this CPU runs (lowest first), and the switch the tests use to compare
    // every tier with the scalar one (validated in Python: set_simd_level).
    m.def("simd_level", []() { return std::string(kTierNames[simd_tier()]); });
    m.def("cpu_simd_level", []() { return std::string(kTierNames[cpu_tier()]); });
    m.def("simd_levels", []() {
        std::vector<std::string> out;
        for (int t : {kScalar, kNeon, kAvx2, kAvx512})
            if (tier_available(t) && kernels_of(t) != nullptr) out.emplace_back(kTierNames[t]);
        return out;
    }, "the tiers this CPU can run, lowest first");
    m.def("cpu_has_avx512", []() { return cpu_has_avx512(); });
    m.def("set_simd", [](bool on) { set_tier(on ? cpu_tier() : kScalar); }, py::arg("enabled"));
    m.def("set_simd_tier", [](const std::string& name) {
        for (int t = 0; t < kNumTiers; ++t)
            if (name == kTierNames[t]) return set_tier(t);
        return false;
    }, py::arg("name"), "switch to a tier by name; False (nothing changed) when this CPU lacks it");
    m.def("kmer_count", &kmer_count_py, py::arg("x"), py::arg("attr"), py::arg("k"), py::arg("quantile"),
          py::arg("buffer"), py::arg("want_prior"), py::arg("ncl"), py::arg("n_threads"));
    m.def("kmer_intervals", &kmer_intervals_py, py::arg("attr"), py::arg("k"), py::arg("quantile"),
          py::arg("buffer"), py::arg("gauge"), py::arg("ncl"), py::arg("n_threads"));
    m.def("hist_from_bins", &hist_from_bins_py, py::arg("bin"), py::arg("weight"), py::arg("n_bins"));
    m.def("kld_counts", &kld_counts_py, py::arg("counts"), py::arg("prior"));
    m.def("kattr_hist", &kattr_hist_py, py::arg("attr"), py::arg("acme"), py::arg("window"), py::arg("quantile"),
          py::arg("bin_width"), py::arg("n_bins"), py::arg("weight"), py::arg("global_scope"), py::arg("ncl"),
          py::arg("n_threads"));
    m.def("kattr_points", &kattr_points_py, py::arg("attr"), py::arg("acme"), py::arg("window"),
          py::arg("quantile"), py::arg("bin_width"), py::arg("n_bins"), py::arg("weight"), py::arg("ncl"),
          py::arg("n_threads"));
    m.def("kattr_hist_from_points", &kattr_hist_from_points_py, py::arg("r"), py::arg("bin"), py::arg("acme"),
          py::arg("quantile"), py::arg("n_bins"), py::arg("weight"), py::arg("n_threads") = 0);
    m.def("kattr_stream_keys", &kattr_stream_keys_py, py::arg("attr"), py::arg("acme"), py::arg("window"),
          py::arg("quantile"), py::arg("bin_width"), py::arg("n_bins"), py::arg("weight"), py::arg("ncl"),
          py::arg("n_threads"), py::arg("keys"));
    m.def("kattr_stream_plan", &kattr_stream_plan_py, py::arg("keys"), py::arg("quantile"), py::arg("acme"));
    m.def("kattr_stream_bin", &kattr_stream_bin_py, py::arg("attr"), py::arg("acme"), py::arg("window"),
          py::arg("quantile"), py::arg("bin_width"), py::arg("n_bins"), py::arg("weight"), py::arg("ncl"),
          py::arg("n_threads"), py::arg("bucket"));
    m.def("kattr_stream_finish", &kattr_stream_finish_py, py::arg("hist"), py::arg("cand_r"), py::arg("cand_bin"),
          py::arg("need"), py::arg("n_bins"), py::arg("weight"));
    m.attr("stream_keys") = py::int_(kStreamKeys);
    m.def("hist_merge", &hist_merge_py, py::arg("a"), py::arg("b"));
    m.def("kattr_finish", &kattr_finish_py, py::arg("hist"), py::arg("acme"), py::arg("n_bins"),
          py::arg("prior_bins"));
    m.def("groundtruth", &groundtruth_py, py::arg("x"), py::arg("attr"), py::arg("x_model"), py::arg("threshold"),
          py::arg("top_k"), py::arg("ncl"), py::arg("n_threads"));
    m.def("onehot_codes", &onehot_codes_py, py::arg("x"), py::arg("ncl"), py::arg("n_threads"));
    m.def("compat_strings", &compat_strings_py, py::arg("codes"), py::arg("seq"), py::arg("begin"),
          py::arg("end"));
    m.def("compat_process_map", &compat_process_map_py, py::arg("attr"), py::arg("k"), py::arg("n_threads"));
    m.def("compat_spherical", &compat_spherical_py, py::arg("s"), py::arg("mask"), py::arg("mask_arr"),
          py::arg("radius_count"), py::arg("n_threads"), py::arg("force") = 0);
    m.def("compat_phi", &compat_phi_py, py::arg("at"), py::arg("branch"));
    m.def("run_parts", &run_parts_py, py::arg("fn"), py::arg("n"), py::arg("n_threads"));
    m.def("compat_sample_points", &compat_sample_points_py, py::arg("size"));
    m.def("compat_angle_hist", &compat_angle_hist_py, py::arg("p1"), py::arg("p2"), py::arg("r"),
          py::arg("box_length"), py::arg("n_bins"), py::arg("n_threads") = 0);
    m.def("kattr_bins", &kattr_bins_py, py::arg("e"), py::arg("acme"), py::arg("bin_width"), py::arg("n_bins"));
    m.def("pairwise_mean_f32", &pairwise_mean_py<float>, py::arg("a"));
    m.def("pairwise_mean_f64", &pairwise_mean_py<double>, py::arg("a"));
    m.def("quantile_linear", &quantile_py, py::arg("a"), py::arg("q"));
    m.def("sqrt_above", &sqrt_above_py, py::arg("cut"));
    m.def("divide_exact", &divide_exact_py, py::arg("v"), py::arg("d"));
}
