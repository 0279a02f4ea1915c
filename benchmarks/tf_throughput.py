"""Attribution throughput and end-to-end scoring time (TensorFlow; not part of the pytest suite).

    python benchmarks/tf_throughput.py [--n 4096] [--batch-size 256] [--repeats 3] [--json out.json]

1. Saliency throughput (sequences/s) of ``acme_fast.attribution.saliency`` against a bare
   hand-written ``tf.function`` GradientTape loop with the same batch size (target >= 95 %).
2. End-to-end ``acme_fast.score_model`` (k-mer + k-attr KLD, both presets) against the
   attribution time alone (target <= 1.15x: the scoring hidden behind the model).

The model resembles the paper's: 4 convolutional layers and a dense head on (200, 4) inputs,
random weights. Times are the best of ``--repeats`` runs after one warm-up (tracing) run.
The file name does not start with ``test_``, so ``pytest benchmarks`` does not collect it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def paper_like_model(L: int = 200, n_out: int = 12):
    import tensorflow as tf

    keras = tf.keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((L, 4))
    h = inp
    for filters, width, pool in ((32, 19, 4), (48, 7, 4), (96, 5, 2), (128, 3, 0)):
        h = keras.layers.Conv1D(filters, width, padding="same")(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.Activation("relu")(h)
        if pool:
            h = keras.layers.MaxPooling1D(pool)(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    h = keras.layers.Dense(256, activation="relu")(h)
    out = keras.layers.Dense(n_out, activation="sigmoid")(h)
    return keras.Model(inp, out, name="paper_like")


def bare_grad_fn(model, batch_size: int, length: int):
    """The hand-written baseline's tf.function (one fixed batch shape), traced once."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((batch_size, length, 4), tf.float32)])
    def grad(xb):
        with tf.GradientTape() as tape:
            tape.watch(xb)
            t = tf.reduce_mean(model(xb, training=False), axis=1)
        return tape.gradient(t, xb)

    return grad


def bare_saliency(grad, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The hand-written baseline loop: padded last batch, results copied to one array."""
    import tensorflow as tf

    out = np.empty(x.shape, dtype=np.float32)
    for s in range(0, x.shape[0], batch_size):
        xb = x[s:s + batch_size]
        m = xb.shape[0]
        if m < batch_size:
            xb = np.concatenate([xb, np.zeros((batch_size - m,) + x.shape[1:], np.float32)])
        out[s:s + m] = grad(tf.constant(xb)).numpy()[:m]
    return out


def interleaved_min(fns: dict, repeats: int, sync=None) -> dict:
    """Best time of each callable; one warm-up (tracing) call each, then the callables take turns
    in every round, so that load from other processes hits them alike. ``sync`` (e.g.
    ``torch.cuda.synchronize``) is called before and after each timed call."""
    sync = sync or (lambda: None)
    for fn in fns.values():
        fn()
    ts: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            ts[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in ts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="kernel threads of score_model (default all)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    import tensorflow as tf

    import acme_fast as af
    from acme_fast import attribution as at
    from acme_fast.scoring import _default_threads, score_model

    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(a.n, a.length))]
    model = paper_like_model(a.length)
    bs = a.batch_size

    grad = bare_grad_fn(model, bs, a.length)
    ref = bare_saliency(grad, x[: 2 * bs + 3], bs)
    np.testing.assert_allclose(at.saliency(model, x[: 2 * bs + 3], batch_size=bs), ref, rtol=1e-4, atol=1e-7)

    def attr_only():  # attribution time alone, as score_model computes it: the generator, drained
        for _ in at.iter_attributions(model, x, method="saliency", batch_size=bs):
            pass

    def scoring_only(preset):  # the metrics on the materialised attributions, the same threads as score_model
        af.kmer_kld(x, full, n_threads=threads)
        af.kattr_kld(full, preset=preset, n_threads=threads)

    full = at.saliency(model, x, batch_size=bs)
    threads = a.threads if a.threads is not None else _default_threads(at.get_backend(model))
    t = interleaved_min({
        "bare": lambda: bare_saliency(grad, x, bs),
        "acme_fast": lambda: at.saliency(model, x, batch_size=bs),
        "attr_only": attr_only,
        "score_paper": lambda: score_model(model, x, batch_size=bs, preset="paper", progress=False,
                                           n_threads=a.threads),
        "score_acme": lambda: score_model(model, x, batch_size=bs, preset="acme", progress=False,
                                          n_threads=a.threads),
        "scoring_only_paper": lambda: scoring_only("paper"),
        "scoring_only_acme": lambda: scoring_only("acme"),
    }, a.repeats)
    res = {"n": a.n, "length": a.length, "batch_size": bs, "repeats": a.repeats, "times_s": t,
           "bare_seq_per_s": a.n / t["bare"], "acme_fast_seq_per_s": a.n / t["acme_fast"],
           "throughput_ratio": t["bare"] / t["acme_fast"]}
    print(f"saliency  bare tf.function loop: {a.n / t['bare']:9.0f} seq/s ({t['bare']:.3f} s)")
    print(f"saliency  acme_fast.attribution: {a.n / t['acme_fast']:9.0f} seq/s ({t['acme_fast']:.3f} s)  "
          f"ratio {t['bare'] / t['acme_fast']:.3f} (target >= 0.95)")
    print(f"attribution alone (iter_attributions): {t['attr_only']:.3f} s; kernel threads {threads}")
    for preset in ("paper", "acme"):
        te, ts_ = t[f"score_{preset}"], t[f"scoring_only_{preset}"]
        res[f"e2e_ratio_{preset}"] = te / t["attr_only"]
        print(f"score_model preset={preset}: {te:.3f} s = {te / t['attr_only']:.3f}x attribution alone "
              f"(target <= 1.15); metrics alone on the materialised array {ts_:.3f} s "
              f"(attribution + metrics run one after the other: {(t['attr_only'] + ts_) / t['attr_only']:.3f}x)")
    res.update(tf=tf.__version__, gpus=[d.name for d in tf.config.list_physical_devices("GPU")],
               cpus=os.cpu_count(), python=platform.python_version(), acme_fast=af.__version__,
               kernel_threads=threads)
    print(f"TensorFlow {tf.__version__}, GPUs: {res['gpus'] or 'none'}, CPUs: {os.cpu_count()}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
