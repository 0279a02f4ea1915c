"""Where score_model's time goes beside the model (not part of the pytest suite).

    python benchmarks/gpu_timeline.py [--n 2048] [--length 2048] [--batch-size 128] [--device cuda]

For the paper-like PyTorch CNN of ``torch_throughput.py`` (random weights) it times the
attribution alone (``iter_attributions`` drained), then ``score_model`` with timestamps taken
inside it: when each batch left the model (in the producer thread on a GPU), how long the metric
updates took (the consumer), and what came after the last batch (the acme preset's second pass
and the results). Per round it prints: start -> first batch produced, the producer's span and
the sum of its batch times, the consumer's busy time in the first pass, last batch -> first pass
done, first pass done -> return; and the median batch time of the model alone and inside
score_model. The package's functions are patched in this process only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--length", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    import torch
    from torch_throughput import paper_like_model

    from acme_fast import attribution as at
    from acme_fast import scoring
    from acme_fast.kattr import KattrAccumulator
    from acme_fast.kmer import KmerAccumulator

    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(a.n, a.length))]
    x = np.ascontiguousarray(onehot.transpose(0, 2, 1))
    model = paper_like_model().to(dev).eval()
    bs = a.batch_size
    produced: list[tuple[float, float]] = []  # (asked, got) per batch
    updates: list[tuple[str, float, float]] = []  # (accumulator, start, end) per update call

    real_iter = at.iter_attributions

    def timed_iter(*args, **kw):
        g = real_iter(*args, **kw)

        def gen():
            try:
                while True:
                    t0 = time.perf_counter()
                    try:
                        item = next(g)
                    except StopIteration:
                        return
                    produced.append((t0, time.perf_counter()))
                    yield item
            finally:
                g.close()

        return gen()

    at.iter_attributions = timed_iter  # score_model looks it up on the module at each call

    def timed_update(cls):
        real = cls.update

        def update(self, *args, **kw):
            t0 = time.perf_counter()
            r = real(self, *args, **kw)
            updates.append((cls.__name__, t0, time.perf_counter()))
            return r

        cls.update = update

    timed_update(KmerAccumulator)
    timed_update(KattrAccumulator)

    def attr_only():
        t0 = time.perf_counter()
        ts = []
        for _ in real_iter(model, x, method="saliency", batch_size=bs, device=dev):
            ts.append(time.perf_counter())
        return t0, ts

    ms = 1e3
    for preset in ("paper", "acme"):
        for r in range(a.repeats):
            sync()
            t0, ts = attr_only()
            alone = ts[-1] - t0
            produced.clear()
            updates.clear()
            sync()
            s0 = time.perf_counter()
            scoring.score_model(model, x, batch_size=bs, preset=preset, progress=False, device=dev)
            s1 = time.perf_counter()
            batch = [e - b for b, e in produced]
            first = updates[: 2 * len(produced)]  # pass 0: one k-mer and one k-attr update per batch
            busy = sum(e - b for _, b, e in first)
            pass0_done = max(e for _, _, e in first)
            print(f"{preset} round {r}: attribution alone {alone * ms:.1f} ms (its first batch "
                  f"{(ts[0] - t0) * ms:.1f}); score_model {(s1 - s0) * ms:.1f} ms = {(s1 - s0) / alone:.3f}x")
            print(f"   start -> first batch produced {(produced[0][1] - s0) * ms:.1f} ms; producer span "
                  f"{(produced[-1][1] - produced[0][0]) * ms:.1f} (sum of batches {sum(batch) * ms:.1f}); "
                  f"consumer busy {busy * ms:.1f}; last batch -> pass 0 done "
                  f"{(pass0_done - produced[-1][1]) * ms:.1f}; pass 0 done -> return {(s1 - pass0_done) * ms:.1f}")
            kmer = [(e - b) * ms for n, b, e in first if n == "KmerAccumulator"]
            kattr = [(e - b) * ms for n, b, e in first if n == "KattrAccumulator"]
            print(f"   median batch: model alone {np.median(np.diff([t0, *ts])) * ms:.2f} ms, inside score_model "
                  f"{np.median(batch) * ms:.2f} ms; updates k-mer {np.median(kmer):.2f} ms, "
                  f"k-attr {np.median(kattr):.2f} ms")


if __name__ == "__main__":
    main()
