"""Attribution throughput and end-to-end scoring time for PyTorch models (not part of the pytest suite).

    python benchmarks/torch_throughput.py [--n 4096] [--length 200] [--batch-size 256] [--repeats 3]
                                          [--device cpu|cuda] [--json out.json]

1. Saliency throughput (sequences/s) of ``acme_fast.attribution.saliency`` on a torch module
   against a bare hand-written ``torch.autograd.grad`` loop with the same batch size, the same
   device and the same host arrays (target >= 95 %).
2. End-to-end ``acme_fast.score_model`` (k-mer + k-attr KLD, both presets) against the
   attribution time alone (target <= 1.15x on the CPU, <= 1.05x on a GPU: the scoring hidden
   behind the model).

The model resembles the paper's CNN (4 Conv1d layers with batch norm, ReLU and max pooling,
global average pooling, a dense head) on (N, 4, L) inputs, random weights; ``--length 2048``
gives an ATAC-sized input. Times are the best of ``--repeats`` rounds after one warm-up; the
contenders take turns in every round so that background load hits them alike. The file name
does not start with ``test_``, so ``pytest benchmarks`` does not collect it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from tf_throughput import interleaved_min  # noqa: E402  (the same interleaved timing; imports no TensorFlow)


def paper_like_model(n_out: int = 12):
    import torch

    torch.manual_seed(0)
    layers = []
    c_in = 4
    for filters, width, pool in ((32, 19, 4), (48, 7, 4), (96, 5, 2), (128, 3, 0)):
        layers += [torch.nn.Conv1d(c_in, filters, width, padding=width // 2), torch.nn.BatchNorm1d(filters),
                   torch.nn.ReLU()]
        if pool:
            layers.append(torch.nn.MaxPool1d(pool))
        c_in = filters
    layers += [torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(), torch.nn.Linear(c_in, 256), torch.nn.ReLU(),
               torch.nn.Linear(256, n_out), torch.nn.Sigmoid()]
    return torch.nn.Sequential(*layers)


def bare_saliency(model, x: np.ndarray, batch_size: int, device) -> np.ndarray:
    """The hand-written baseline: each batch to the device, autograd.grad of the mean output."""
    import torch

    out = np.empty(x.shape, dtype=np.float32)
    for s in range(0, x.shape[0], batch_size):
        xb = torch.from_numpy(x[s:s + batch_size]).to(device).requires_grad_(True)
        (g,) = torch.autograd.grad(model(xb).mean(dim=1).sum(), xb)
        out[s:s + xb.shape[0]] = g.cpu().numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--threads", type=int, default=None, help="kernel threads of score_model (default: by device)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    import torch

    import acme_fast as af
    from acme_fast import attribution as at
    from acme_fast.scoring import _default_threads, score_model

    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    x = np.ascontiguousarray(np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(a.n, a.length))].transpose(0, 2, 1))
    model = paper_like_model().to(device).eval()
    bs = a.batch_size

    ref = bare_saliency(model, x[: 2 * bs + 3], bs, device)
    np.testing.assert_allclose(at.saliency(model, x[: 2 * bs + 3], batch_size=bs, device=device), ref,
                               rtol=1e-4, atol=1e-7)

    def attr_only():  # attribution time alone, as score_model computes it: the generator, drained
        for _ in at.iter_attributions(model, x, method="saliency", batch_size=bs, device=device):
            pass

    full = at.saliency(model, x, batch_size=bs, device=device)
    threads = a.threads if a.threads is not None else _default_threads(at.get_backend(model, device=device))

    def scoring_only(preset):  # the metrics on the materialised attributions, the same threads as score_model
        af.kmer_kld(x, full, n_threads=threads, layout="NCL")
        af.kattr_kld(full, preset=preset, n_threads=threads, layout="NCL")

    t = interleaved_min({
        "bare": lambda: bare_saliency(model, x, bs, device),
        "acme_fast": lambda: at.saliency(model, x, batch_size=bs, device=device),
        "attr_only": attr_only,
        "score_paper": lambda: score_model(model, x, batch_size=bs, preset="paper", progress=False,
                                           n_threads=a.threads, device=device),
        "score_acme": lambda: score_model(model, x, batch_size=bs, preset="acme", progress=False,
                                          n_threads=a.threads, device=device),
        "scoring_only_paper": lambda: scoring_only("paper"),
        "scoring_only_acme": lambda: scoring_only("acme"),
    }, a.repeats, sync)
    res = {"n": a.n, "length": a.length, "batch_size": bs, "repeats": a.repeats, "device": str(device),
           "times_s": t, "bare_seq_per_s": a.n / t["bare"], "acme_fast_seq_per_s": a.n / t["acme_fast"],
           "throughput_ratio": t["bare"] / t["acme_fast"]}
    print(f"(N, 4, L) = ({a.n}, 4, {a.length}), batch {bs}, device {device}")
    print(f"saliency  bare torch.autograd loop: {a.n / t['bare']:9.0f} seq/s ({t['bare']:.3f} s)")
    print(f"saliency  acme_fast.attribution:    {a.n / t['acme_fast']:9.0f} seq/s ({t['acme_fast']:.3f} s)  "
          f"ratio {t['bare'] / t['acme_fast']:.3f} (target >= 0.95)")
    print(f"attribution alone (iter_attributions): {t['attr_only']:.3f} s; kernel threads {threads}")
    target = 1.05 if device.type == "cuda" else 1.15
    for preset in ("paper", "acme"):
        te, ts_ = t[f"score_{preset}"], t[f"scoring_only_{preset}"]
        res[f"e2e_ratio_{preset}"] = te / t["attr_only"]
        print(f"score_model preset={preset}: {te:.3f} s = {te / t['attr_only']:.3f}x attribution alone "
              f"(target <= {target}); metrics alone on the materialised array {ts_:.3f} s "
              f"(attribution + metrics one after the other: {(t['attr_only'] + ts_) / t['attr_only']:.3f}x)")
    res.update(torch=torch.__version__, torch_threads=torch.get_num_threads(), cpus=os.cpu_count(),
               gpu=torch.cuda.get_device_name(0) if device.type == "cuda" else None,
               python=platform.python_version(), acme_fast=af.__version__, kernel_threads=threads)
    print(f"PyTorch {torch.__version__} ({torch.get_num_threads()} intra-op threads), CPUs: {os.cpu_count()}, "
          f"GPU: {res['gpu'] or 'none'}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
