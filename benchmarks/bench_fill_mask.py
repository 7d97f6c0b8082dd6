"""fill-mask: vocabulary projection at the masked positions only vs. full logits, side by side.

The masked-LM head maps every hidden state (H = 512) to the 30,522-word vocabulary. A fill-mask
call needs it at the [MASK] positions only: N rows instead of B*T. This script times, on random
weights of the released architecture (or --preset tiny), for each (batch, length):

  head  full:     the masked-LM head on hidden (B, T, H) -> (B, T, V), then pick the masked rows
  head  gathered: the head with mask_positions (B, P) -> (B, P, V)           (what the pipeline runs)
  model full:     model(**inputs).logits at the masks (as a plain forward does)
  model gathered: model(**inputs, mask_positions=...) via the pipeline's gathered_masked_logits

and checks that both give the same softmax scores at the masks (max |difference|).

With --mixed (PyTorch), also the pipeline's forward under dtype="float16-mixed" (float16 products,
float32 weights and residual stream: mobilebert_pt/pipeline_float16.py) against float32: its time
and its max |score difference| from float32. Random weights do not have the released model's large
activations; the difference shows float16 rounding, not the overflow handling.

    python benchmarks/bench_fill_mask.py [--framework pt|tf] [--device cpu|cuda] [--preset released|tiny] [--mixed]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mobilebert_common import MobileBertConfig  # noqa: E402

PRESETS = {
    "released": {},  # google/mobilebert-uncased: 24 layers, H=512, V=30522
    "tiny": dict(hidden_size=128, embedding_size=64, intra_bottleneck_size=64, num_hidden_layers=4, intermediate_size=128),
}


def timeit(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, kernels, tracing)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def batch_for(config, batch: int, length: int, masks_per_row: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, config.vocab_size, size=(batch, length), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    cols = np.stack([rng.choice(np.arange(1, length - 1), masks_per_row, replace=False) for _ in range(batch)])
    rows = np.repeat(np.arange(batch), masks_per_row)
    ids[rows, cols.ravel()] = 103  # [MASK]
    positions = np.argwhere(ids == 103).astype(np.int64)  # (N, 2)
    return ids, np.ones_like(ids), np.zeros_like(ids), positions


def softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def bench_pt(config, shapes, args):
    import torch

    from mobilebert_pt import MobileBertForMaskedLM
    from mobilebert_pt.pipeline_float16 import Float16Matmuls
    from mobilebert_common.pipelines.sentence_tasks import mask_grid
    from mobilebert_pt.pipelines import gathered_masked_logits

    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    device = torch.device(args.device)
    model = MobileBertForMaskedLM(config).eval().to(device)
    head = model.cls.predictions
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for batch, length in shapes:
        ids, mask, types, positions = batch_for(config, batch, length, args.masks)
        inputs = {k: torch.from_numpy(v).to(device) for k, v in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types))}
        pos = torch.from_numpy(positions).to(device)
        grid, slots = (torch.from_numpy(a).to(device) for a in mask_grid(positions, batch))
        hidden = model.mobilebert(**inputs).last_hidden_state

        def head_full():
            out = head(hidden)[pos[:, 0], pos[:, 1]]
            sync()
            return out

        def head_gathered():
            out = head(hidden, grid)[pos[:, 0], slots]
            sync()
            return out

        def model_full():
            out = model(**inputs).logits[pos[:, 0], pos[:, 1]]
            sync()
            return out

        def model_gathered():
            out = gathered_masked_logits(model, inputs, positions)
            sync()
            return out

        diff = np.abs(softmax(model_full().float().cpu().numpy()) - softmax(model_gathered().float().cpu().numpy())).max()
        report(batch, length, len(positions), diff, [timeit(f, args.repeats) for f in (head_full, head_gathered, model_full, model_gathered)])
        if args.mixed:
            mode = Float16Matmuls()

            def model_mixed():
                with mode:
                    out = gathered_masked_logits(model, inputs, positions)
                sync()
                return out

            mixed_diff = np.abs(softmax(model_gathered().float().cpu().numpy()) - softmax(model_mixed().float().cpu().numpy())).max()
            t32, t16 = timeit(model_gathered, args.repeats), timeit(model_mixed, args.repeats)
            print(f"{'':40} float16-mixed: {t16 * 1e3:8.2f} ms vs float32 {t32 * 1e3:8.2f} ms  x{t32 / t16:4.2f} "
                  f"| max |score diff| vs float32 {mixed_diff:.1e}", flush=True)


def bench_tf(config, shapes, args):
    import tensorflow as tf

    from mobilebert_tf import TFMobileBertForMaskedLM
    from mobilebert_common.pipelines.sentence_tasks import mask_grid
    from mobilebert_tf.pipelines import gathered_masked_logits

    tf.random.set_seed(0)
    model = TFMobileBertForMaskedLM(config)
    model.build_with_dummies()
    head, words = model.cls.predictions, model.mobilebert.embeddings.word_embeddings
    for batch, length in shapes:
        ids, mask, types, positions = batch_for(config, batch, length, args.masks)
        inputs = {"input_ids": tf.constant(ids), "attention_mask": tf.constant(mask), "token_type_ids": tf.constant(types)}
        grid, slots = mask_grid(positions, batch)
        grid, at = tf.constant(grid), np.stack([positions[:, 0], slots], axis=1)  # (B, P); (N, 2) into (B, P, V)
        model(**inputs, training=False)
        hidden = model.mobilebert(**inputs, training=False).last_hidden_state
        head_full = lambda: tf.gather_nd(head(hidden, words), positions).numpy()  # noqa: E731
        head_gathered = lambda: tf.gather_nd(head(hidden, words, grid), at).numpy()  # noqa: E731
        model_full = lambda: tf.gather_nd(model(**inputs, training=False).logits, positions).numpy()  # noqa: E731
        model_gathered = lambda: gathered_masked_logits(model, inputs, positions).numpy()  # noqa: E731
        diff = np.abs(softmax(model_full()) - softmax(model_gathered())).max()
        report(batch, length, len(positions), diff, [timeit(f, args.repeats) for f in (head_full, head_gathered, model_full, model_gathered)])


def report(batch, length, n, diff, t):
    head_full, head_gathered, model_full, model_gathered = t
    print(
        f"B={batch:<3} T={length:<4} masks={n:<4} | head: full {head_full * 1e3:8.2f} ms  gathered {head_gathered * 1e3:7.2f} ms "
        f"x{head_full / head_gathered:5.1f} | model: full {model_full * 1e3:8.2f} ms  gathered {model_gathered * 1e3:8.2f} ms "
        f"x{model_full / model_gathered:4.2f} | max |score diff| {diff:.1e}",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=("pt", "tf"), default="pt")
    parser.add_argument("--device", default="cpu", help="pt: cpu or cuda[:N] (tf places ops itself)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="released")
    parser.add_argument("--shapes", default="1x32,8x64,8x128", help="comma-separated BxT (default: %(default)s)")
    parser.add_argument("--masks", type=int, default=1, help="[MASK]s per row (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mixed", action="store_true", help="pt: also time dtype='float16-mixed' against float32")
    args = parser.parse_args(argv)
    if args.mixed and args.framework != "pt":
        parser.error("--mixed applies to --framework pt only")
    config = MobileBertConfig(**PRESETS[args.preset])
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    print(f"fill-mask projection, {args.framework} on {args.device}, preset {args.preset} "
          f"(V={config.vocab_size}, H={config.hidden_size}, layers={config.num_hidden_layers}); median of {args.repeats}")
    (bench_pt if args.framework == "pt" else bench_tf)(config, shapes, args)


if __name__ == "__main__":
    main()
