"""PyTorch models (and Keras 3 on the torch backend): attribution, scoring, files, CLI.

Every reference is a plain ``torch.autograd.grad`` computation written here. Skipped when
PyTorch is not installed (CI installs it in its own step).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402

import acme_fast  # noqa: E402
from acme_fast import attribution as at  # noqa: E402
from acme_fast.scoring import score_model, score_models  # noqa: E402

N, L = 24, 60


# --------------------------------------------------------------------------- tiny models
class ConvNet(torch.nn.Module):
    """(N, 4, L) -> (N, n_out), with batch norm and dropout (eval mode matters)."""

    def __init__(self, n_out: int = 1, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv1d(4, 8, 7, padding=3)
        self.bn = torch.nn.BatchNorm1d(8)
        self.drop = torch.nn.Dropout(0.5)
        self.head = torch.nn.Linear(8, n_out)

    def forward(self, x):
        h = torch.nn.functional.softplus(self.bn(self.conv(x)))
        return self.head(self.drop(h.mean(dim=2)))


class MultiTask(torch.nn.Module):
    """A profile head (N, 2, L) and a count head (N, 2), as bpnet-style models return."""

    def __init__(self, seed: int = 1) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv1d(4, 6, 5, padding=2)
        self.profile = torch.nn.Conv1d(6, 2, 3, padding=1)
        self.count = torch.nn.Linear(6, 2)

    def forward(self, x):
        h = torch.tanh(self.conv(x))
        return self.profile(h), self.count(h.mean(dim=2))


class ChannelsLast(torch.nn.Module):
    """Takes (N, L, 4) and permutes inside."""

    def __init__(self, seed: int = 2) -> None:
        super().__init__()
        self.net = ConvNet(1, seed)

    def forward(self, x):
        return self.net(x.permute(0, 2, 1))


def onehot(n=N, length=L, seed=0):
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))]  # (n, L, 4)


def ncl(x):
    return np.ascontiguousarray(np.swapaxes(x, 1, 2))


def autograd_grad(model, x, fn, model_layout="NCL"):
    """The reference: one torch.autograd.grad over the whole array, in eval mode."""
    was = model.training
    model.eval()
    xt = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(fn(model(xt)).sum(), xt)
    model.train(was)
    return g.numpy()


@pytest.fixture(scope="module")
def x():
    return onehot()


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("output, fn", [
    (None, lambda y: y.mean(dim=1)),
    (0, lambda y: y[:, 0]),
    (2, lambda y: y[:, 2]),
    (lambda y: y[:, 1] - y[:, 0], lambda y: y[:, 1] - y[:, 0]),
], ids=["mean", "col0", "col2", "callable"])
def test_saliency_equals_autograd(x, output, fn):
    model = ConvNet(3)
    ref = autograd_grad(model, ncl(x), fn)
    got = at.saliency(model, ncl(x), output=output, batch_size=7, device="cpu")  # NCL in, NCL out (the default)
    assert got.dtype == np.float32 and got.shape == ncl(x).shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)
    # x in (N, L, 4): transposed on the way in and out
    got_nlc = at.saliency(model, x, output=output, batch_size=7, device="cpu", layout="NLC")
    np.testing.assert_allclose(got_nlc, np.swapaxes(ref, 1, 2), rtol=1e-5, atol=1e-7)


def test_multitask_heads(x):
    model = MultiTask()
    xc = ncl(x)

    def both(y):
        return torch.cat([y[0].reshape(len(y[0]), -1), y[1]], dim=1)

    ref_mean = autograd_grad(model, xc, lambda y: both(y).mean(dim=1))
    np.testing.assert_allclose(at.saliency(model, xc, device="cpu"), ref_mean, rtol=1e-5, atol=1e-7)
    # columns: the profile head's 2 * L values first, then the counts
    ref_count = autograd_grad(model, xc, lambda y: y[1][:, 1])
    np.testing.assert_allclose(at.saliency(model, xc, output=2 * L + 1, device="cpu"), ref_count, rtol=1e-5,
                               atol=1e-7)
    profile_sum = lambda y: y[0].sum(dim=(1, 2))  # noqa: E731
    np.testing.assert_allclose(at.saliency(model, xc, output=profile_sum, device="cpu"),
                               autograd_grad(model, xc, profile_sum), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"output: expected an output column in 0\.\.121, got 500"):
        at.saliency(model, xc, output=500, device="cpu")
    with pytest.raises(ValueError, match="output: the callable must return one value per example"):
        at.saliency(model, xc, output=lambda y: y[0], device="cpu")
    pred = at.predict(model, xc, batch_size=5, device="cpu")
    with torch.no_grad():
        ref = both(model.eval()(torch.tensor(xc))).double().numpy()
    assert pred.shape == (N, 2 * L + 2)
    np.testing.assert_allclose(pred, ref, rtol=1e-6)


def test_channels_last_model(x):
    model = ChannelsLast()
    ref = autograd_grad(model, x, lambda y: y[:, 0])
    got = at.saliency(model, x, model_layout="NLC", device="cpu")  # x follows the model's layout
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)
    got_ncl = at.saliency(model, ncl(x), model_layout="NLC", layout="NCL", device="cpu")
    np.testing.assert_allclose(got_ncl, ncl(ref), rtol=1e-5, atol=1e-7)


def test_plain_callable_and_dtypes(x):
    model = ConvNet(1)
    model.eval()
    ref = autograd_grad(model, ncl(x), lambda y: y[:, 0])
    got = at.saliency(lambda t: model(t), ncl(x), device="cpu", backend="torch")
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)
    # uint8 one-hot stays uint8 on the host; the same maps
    np.testing.assert_array_equal(at.saliency(model, ncl(x).astype(np.uint8), device="cpu"),
                                  at.saliency(model, ncl(x), device="cpu"))
    # dtype follows the parameters: a float64 model is differentiated in float64
    m64 = ConvNet(1).double()
    ref64 = autograd_grad(m64, ncl(x).astype(np.float64), lambda y: y[:, 0])
    got64 = at.saliency(m64, ncl(x), device="cpu")
    assert got64.dtype == np.float32
    np.testing.assert_allclose(got64, ref64.astype(np.float32), rtol=1e-6, atol=1e-9)
    be = at.get_backend(m64, device="cpu")
    assert be.dtype == torch.float64 and be.model_layout == "NCL" and be.framework == "torch"
    assert at.get_backend(model, dtype="float64", device="cpu").dtype == torch.float64


def test_integrated_gradients_completeness(x):
    model = ConvNet(1, seed=3)
    xc = ncl(x)[:6]
    ig = at.integrated_gradients(model, xc, steps=400, device="cpu")
    with torch.no_grad():
        model.eval()
        fx = model(torch.tensor(xc))[:, 0].numpy()
        f0 = model(torch.zeros_like(torch.tensor(xc)))[:, 0].numpy()
    np.testing.assert_allclose(ig.sum(axis=(1, 2)), fx - f0, rtol=2e-3, atol=1e-5)
    # a shuffled baseline keeps completeness too, and is seeded
    ig_s = at.integrated_gradients(model, xc, steps=400, baseline="shuffle", seed=4, device="cpu")
    np.testing.assert_array_equal(ig_s, at.integrated_gradients(model, xc, steps=400, baseline="shuffle", seed=4,
                                                                device="cpu"))


def test_integrated_gradients_trapezoid_reference(x):
    model = ConvNet(1, seed=5)
    xc = ncl(x)[:4]
    base = np.full_like(xc, 0.25)
    steps = 8
    acc = 0
    for k in range(steps + 1):
        w = 0.5 if k in (0, steps) else 1.0
        acc = acc + w * autograd_grad(model, base + (k / steps) * (xc - base), lambda y: y[:, 0])
    ref = (xc - base) * acc / steps
    got = at.integrated_gradients(model, xc, baseline=base, steps=steps, device="cpu")
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)


def test_smoothgrad_seeded(x):
    model = ConvNet(1, seed=6)
    xc = ncl(x)
    a = at.smoothgrad(model, xc, n_samples=5, stddev=0.2, seed=11, batch_size=8, device="cpu")
    b = at.smoothgrad(model, xc, n_samples=5, stddev=0.2, seed=11, batch_size=8, device="cpu")
    c = at.smoothgrad(model, xc, n_samples=5, stddev=0.2, seed=12, batch_size=8, device="cpu")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_allclose(at.smoothgrad(model, xc, n_samples=3, stddev=0.0, seed=1, device="cpu"),
                               at.saliency(model, xc, device="cpu"), rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- model state
def test_state_restored_and_nothing_leaks(x):
    model = ConvNet(1)
    model.train()
    model.bn.eval()  # a frozen batch norm inside a training model stays frozen
    frozen = model.conv.bias
    frozen.requires_grad_(False)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    running = model.bn.running_mean.clone()
    with torch.no_grad():  # the caller's grad mode: gradients still work, and it is kept
        a = at.saliency(model, ncl(x), device="cpu")
        assert not torch.is_grad_enabled()
    with torch.inference_mode():
        b = at.saliency(model, ncl(x), device="cpu")
    np.testing.assert_array_equal(a, b)
    assert model.training and not model.bn.training and model.drop.training
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
    torch.testing.assert_close(model.bn.running_mean, running)  # eval mode: statistics untouched
    # a stream that stops early restores the state too
    it = at.iter_attributions(model, ncl(x), batch_size=4, device="cpu")
    next(it)
    assert not model.training
    it.close()
    assert model.training and not model.bn.training


def test_device_errors(x):
    model = ConvNet(1)
    with pytest.raises(ValueError, match="device: expected a PyTorch device"):
        at.saliency(model, ncl(x), device="gpu0")
    with pytest.raises(TypeError, match="device: expected None, a str or a torch.device"):
        at.saliency(model, ncl(x), device=1.5)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: 'cuda' was asked for, but PyTorch sees no CUDA device"):
            at.saliency(model, ncl(x), device="cuda")
    with pytest.raises(ValueError, match="dtype: expected a floating-point dtype"):
        at.saliency(model, ncl(x), dtype="int32")
    with pytest.raises(ValueError, match="backend: the model is a torch.nn.Module"):
        at.saliency(model, ncl(x), backend="tensorflow")
    with pytest.raises(ValueError, match="backend: expected None, 'tensorflow' or 'torch'"):
        at.saliency(model, ncl(x), backend="jax")
    with pytest.raises(ValueError, match="x: with layout='NCL' expected 4 channels.*pass layout='NLC'"):
        at.saliency(model, x, device="cpu")  # (N, L, 4) where the model's layout (N, 4, L) is expected
    bad = ncl(x).copy()
    bad[3, 2, 7] = np.nan
    with pytest.raises(ValueError, match="found nan at sequence 3, position 7, channel 2"):
        at.saliency(model, bad, device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_restored(x):  # pragma: no cover - runs where a GPU is
    model = ConvNet(1)
    got = at.saliency(model, ncl(x))  # device=None picks CUDA
    assert next(model.parameters()).device.type == "cpu"
    np.testing.assert_allclose(got, at.saliency(model, ncl(x), device="cpu"), rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- files
@pytest.fixture(scope="module")
def files(tmp_path_factory, x):
    d = tmp_path_factory.mktemp("torch_models")
    model = ConvNet(1, seed=7).eval()
    xc = torch.tensor(ncl(x))
    torch.jit.trace(model, xc[:2]).save(str(d / "traced.pt"))
    ep = torch.export.export(model, (xc[:2],), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, str(d / "exported.pt2"))
    torch.save(model.state_dict(), d / "weights.pth")
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, d / "ckpt.pt")
    (d / "arch.py").write_text(textwrap.dedent("""
        import torch

        def build(n_out=1):
            torch.manual_seed(99)
            conv = torch.nn.Conv1d(4, 8, 7, padding=3)
            class Net(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = conv
                    self.bn = torch.nn.BatchNorm1d(8)
                    self.drop = torch.nn.Dropout(0.5)
                    self.head = torch.nn.Linear(8, n_out)
                def forward(self, x):
                    h = torch.nn.functional.softplus(self.bn(self.conv(x)))
                    return self.head(self.drop(h.mean(dim=2)))
            return Net()
        """))
    return d, model


def test_model_files(files, x):
    d, model = files
    ref = at.saliency(model, ncl(x), device="cpu")
    for name, kw in (("traced.pt", {}), ("exported.pt2", {}),
                     ("weights.pth", {"builder": f"{d / 'arch.py'}:build"}),
                     ("ckpt.pt", {"builder": f"{d / 'arch.py'}:build", "builder_kwargs": {"n_out": 1}})):
        m = at.load_model(d / name, **kw)
        assert isinstance(m, torch.nn.Module), name
        np.testing.assert_allclose(at.saliency(m, ncl(x), device="cpu"), ref, rtol=1e-5, atol=1e-7, err_msg=name)
    kinds = {n: at.check_model_path(d / n, b)[0] for n, b in
             (("traced.pt", None), ("exported.pt2", None), ("weights.pth", f"{d / 'arch.py'}:build"))}
    assert kinds == {"traced.pt": "torchscript", "exported.pt2": "torch_export", "weights.pth": "state_dict"}


def test_model_file_errors(files, tmp_path):
    d, _ = files
    with pytest.raises(ValueError, match=r"weights\.pth' is a PyTorch file without code.*builder='MODULE:FUNCTION'"):
        at.load_model(d / "weights.pth")
    (tmp_path / "junk.pt2").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk\.pt2' is not a torch.export archive"):
        at.load_model(tmp_path / "junk.pt2")
    (tmp_path / "other.py").write_text("import torch\ndef build():\n    return torch.nn.Linear(3, 3)\n")
    with pytest.raises(ValueError, match=r"state dict in .*weights\.pth' does not fit the module from the builder"):
        at.load_model(d / "weights.pth", builder=f"{tmp_path / 'other.py'}:build")
    (tmp_path / "notmod.py").write_text("def build():\n    return 3\n")
    with pytest.raises(TypeError, match="builder: expected it to return a torch.nn.Module, it returned int"):
        at.load_model(d / "weights.pth", builder=f"{tmp_path / 'notmod.py'}:build")
    damaged = tmp_path / "damaged.pt"
    raw = (d / "traced.pt").read_bytes()
    damaged.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"damaged\.pt"):
        at.load_model(damaged)


# --------------------------------------------------------------------------- scoring
def test_score_model_equals_materialised(files, x):
    _, model = files
    xc = ncl(x)
    y = (np.arange(N) % 3 == 0).astype(np.int64)
    rec = score_model(model, xc, y=y, keep_attributions=True, batch_size=5, progress=False, device="cpu",
                      window=3, k=4)
    attr = at.saliency(model, xc, device="cpu")
    np.testing.assert_array_equal(rec["attributions"], attr)
    assert rec["layout"] == "NCL" and rec["framework"] == "torch"
    assert rec["kmer_kld"] == acme_fast.kmer_kld(xc, attr, k=4, layout="NCL").kld
    assert rec["kattr_kld"] == acme_fast.kattr_kld(attr, window=3, layout="NCL").kld
    with torch.no_grad():
        pred = model.eval()(torch.tensor(xc))[:, 0].numpy()
    from acme_fast.scoring import auroc

    assert rec["auroc"] == pytest.approx(auroc(y, pred), rel=1e-9)
    # the same sequences in (N, L, 4): the same numbers
    rec2 = score_model(model, x, layout="NLC", batch_size=8, progress=False, device="cpu", window=3, k=4)
    assert rec2["kmer_kld"] == rec["kmer_kld"] and rec2["kattr_kld"] == rec["kattr_kld"]


def test_score_models_files(files, x):
    d, model = files
    df = score_models({"traced": d / "traced.pt", "exported": d / "exported.pt2", "object": model}, ncl(x),
                      progress=False, device="cpu", batch_size=10, k=4)
    assert list(df["model"]) == ["traced", "exported", "object"]
    np.testing.assert_allclose(df["kattr_kld"], df["kattr_kld"].iloc[2], rtol=1e-5)
    np.testing.assert_allclose(df["kmer_kld"], df["kmer_kld"].iloc[2], rtol=1e-5)


# --------------------------------------------------------------------------- CLI
def test_cli_attribute_and_score_models(files, x, tmp_path, capsys):
    d, model = files
    np.save(tmp_path / "seqs.npy", x)  # (N, L, 4): the CLI's default layout
    out = tmp_path / "attr.npy"
    rc, _, err = run_cli(["attribute", d / "traced.pt", tmp_path / "seqs.npy", "-o", out, "--device", "cpu", "-q"],
                         capsys)
    assert rc == 0, err
    np.testing.assert_allclose(np.load(out), np.swapaxes(at.saliency(model, ncl(x), device="cpu"), 1, 2),
                               rtol=1e-5, atol=1e-7)
    table = tmp_path / "scores.csv"
    rc, _, err = run_cli(["score-models", d / "traced.pt", f"sd={d / 'weights.pth'}", "--builder",
                          f"{d / 'arch.py'}:build", "--seqs", tmp_path / "seqs.npy", "--device", "cpu", "-o", table,
                          "-q"], capsys)
    assert rc == 0, err
    import pandas as pd

    df = pd.read_csv(table)
    assert list(df["model"]) == ["traced", "sd"] and (df["framework"] == "torch").all()
    np.testing.assert_allclose(df["kattr_kld"], df["kattr_kld"].iloc[0], rtol=1e-5)
    rc, _, err = run_cli(["attribute", d / "weights.pth", tmp_path / "seqs.npy", "-o", tmp_path / "b.npy"], capsys)
    assert rc == 2 and "PyTorch file without code" in err and "--builder" in err
    rc, _, err = run_cli(["attribute", d / "traced.pt", tmp_path / "seqs.npy", "-o", tmp_path / "c.npy",
                          "--device", "tpu"], capsys)
    assert rc == 2 and "--device: expected a PyTorch device" in err, err
    assert not (tmp_path / "b.npy").exists() and not (tmp_path / "c.npy").exists()


# --------------------------------------------------------------------------- the drop-in pipelines
def test_captum_through_compat(files, x):
    """As the DNA-diffusion evaluation pipelines do: captum attributions of a torch oracle on (N, 4, L),
    transposed, through the method-2 functions with k=6 and radius_count_cutoff=0.04."""
    captum_attr = pytest.importorskip("captum.attr")
    from acme_fast import compat as C

    _, model = files
    model.eval()
    xc = torch.tensor(ncl(onehot(40, 200, seed=3)))
    sal = captum_attr.Saliency(model).attribute(xc, target=0, abs=False).detach().numpy()
    np.testing.assert_allclose(sal, at.saliency(model, xc.numpy(), output=0, device="cpu"), rtol=1e-5, atol=1e-7)
    # captum's Gauss-Legendre rule against our trapezoid rule: the same integral, to quadrature error
    ig = captum_attr.IntegratedGradients(model).attribute(xc[:8], target=0, n_steps=64)
    ours = at.integrated_gradients(model, xc[:8].numpy(), steps=256, output=0, device="cpu")
    np.testing.assert_allclose(ig.detach().numpy(), ours, rtol=2e-3, atol=2e-3 * np.abs(ours).max())
    attr = np.swapaxes(sal, 1, 2)  # the pipelines' (N, L, 4)
    X = np.swapaxes(xc.numpy(), 1, 2)
    maps = [C.process_attribution_map(attr, k=6)]
    phi1, phi2, r = C.spherical_coordinates_process_2_trad(maps, X, 1, radius_count_cutoff=0.04)
    _, box_length, box_volume, n_bins, _ = C.initialize_integration_2(0.1)
    kld = C.calculate_entropy_2(phi1, phi2, r, n_bins, box_length, box_volume, 3)
    res = acme_fast.kattr_kld(attr, window=6, quantile=0.96, preset="acme", bin_width=0.1, prior_bins=6)
    assert kld[0] == np.round(res.kld, 3)
    assert len(phi1[0]) == res.n_points


# --------------------------------------------------------------------------- Keras 3 on other backends
def _run(code: str, env_extra: dict, cwd) -> subprocess.CompletedProcess:
    """Python code in a fresh interpreter, outside the source tree (the installed package)."""
    env = dict(os.environ, **env_extra)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                          cwd=cwd, check=False)


def test_keras_on_torch_backend(tmp_path):
    pytest.importorskip("keras")
    code = textwrap.dedent(f"""
        import numpy as np, keras, torch
        from acme_fast import attribution as at
        assert keras.backend.backend() == "torch"
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((30, 4)), keras.layers.Conv1D(5, 7, activation="softplus"),
                              keras.layers.Dropout(0.5), keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
        x = np.eye(4, dtype=np.float32)[np.random.default_rng(0).integers(0, 4, (9, 30))]
        xt = torch.tensor(x, requires_grad=True)
        ref, = torch.autograd.grad(m(xt, training=False)[:, 1].sum(), xt)
        got = at.saliency(m, x, output=1, batch_size=4)
        assert at.get_backend(m).framework == "torch" and at.get_backend(m).model_layout == "NLC"
        np.testing.assert_allclose(got, ref.cpu().numpy(), rtol=1e-5, atol=1e-7)
        m.save(r"{tmp_path / 'k.keras'}")
        m2 = at.load_model(r"{tmp_path / 'k.keras'}")
        np.testing.assert_allclose(at.saliency(m2, x, output=1), got, rtol=1e-5, atol=1e-7)
        from acme_fast.scoring import score_model
        rec = score_model(m2, x, progress=False, window=3, k=3)
        assert rec["framework"] == "torch" and rec["layout"] == "NLC", rec
        print("ok")
    """)
    r = _run(code, {"KERAS_BACKEND": "torch"}, tmp_path)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]


def test_keras_on_jax_backend_is_refused(monkeypatch):
    keras = pytest.importorskip("keras")
    from acme_fast.attribution import _tensorflow

    m = keras.Sequential([keras.Input((10, 4)), keras.layers.Flatten(), keras.layers.Dense(1)])
    monkeypatch.setattr(at, "keras_backend_name", lambda: "jax")
    with pytest.raises(RuntimeError, match="Keras model on the 'jax' backend.*KERAS_BACKEND=tensorflow or "
                                           "KERAS_BACKEND=torch"):
        at.saliency(m, onehot(2, 10))
    assert _tensorflow.keras_backend_name() == keras.backend.backend()


# --------------------------------------------------------------------------- imports
def test_import_imports_no_framework_and_missing_torch_message(files, tmp_path):
    d, _ = files
    code = textwrap.dedent(f"""
        import sys
        import acme_fast, acme_fast.attribution, acme_fast.scoring
        assert "torch" not in sys.modules and "tensorflow" not in sys.modules, "framework imported"
        sys.modules["torch"] = None
        from acme_fast import attribution as at
        try:
            at.load_model(r"{d / 'traced.pt'}")
        except ImportError as e:
            assert 'pip install "acme_fast[torch]"' in str(e), str(e)
            print("ok")
    """)
    r = _run(code, {}, tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]
