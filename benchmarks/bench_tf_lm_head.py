"""The Keras masked-LM head's vocabulary product, in the forms one could write it, side by side.

    python3 benchmarks/bench_tf_lm_head.py [--shapes 1x128,8x128] [--paths function,xla] [--rounds 7]

For x (B, T, H = 512) of the transformed hidden states, logits (B, T, V = 30,522) are
x[..., :E] @ word_embeddings^T + x[..., E:] @ dense + bias (E = 128; mobilebert_tf/modeling.py,
TFMobileBertLMPredictionHead). Forms:
  two_products  that, on the 3-D x (what the head does)
  rows_2d       x reshaped to (B*T, H) rows, the same two products, reshaped back
  one_product   x @ concat([word_embeddings^T, dense]) (H, V): one product, the (H, V) matrix built per call
  blocks_N      the two products in vocabulary blocks of N columns (N = 512, 1024), concatenated
                (what helps PyTorch on the CPU: mobilebert_pt/modeling.py, vocabulary_blocks)
each in a tf.function and in an XLA-compiled one. Random weights of the released sizes; every form is
checked against two_products (relative 1e-5). Rounds alternate the forms; each time is the best of 3
calls; the printed ratio is the median over rounds of two_products' time / the form's time (above 1:
faster than today's). Timings are noisy on a shared machine: only ratios from one run count.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import tensorflow as tf

V, E, H = 30522, 128, 512


def forms(words, dense, bias) -> dict:
    """Each form: x (B, T, H) -> (B, T, V)."""
    def two_products(x):
        return tf.matmul(x[..., :E], words, transpose_b=True) + tf.matmul(x[..., E:], dense) + bias

    def as_rows(f):  # (B, T, H) -> (B*T, H) -> f -> (B, T, V)
        return lambda x: tf.reshape(f(tf.reshape(x, [-1, H])), tf.concat([tf.shape(x)[:-1], [V]], 0))

    def one_product(x):
        return tf.matmul(x, tf.concat([tf.transpose(words), dense], axis=0)) + bias  # (H, V) built per call

    def blocks(size):
        def f(x):  # x (N, H)
            return tf.concat([tf.matmul(x[:, :E], words[s:s + size], transpose_b=True)
                              + tf.matmul(x[:, E:], dense[:, s:s + size]) + bias[s:s + size]
                              for s in range(0, V, size)], axis=-1)
        return as_rows(f)

    return {"two_products": two_products, "rows_2d": as_rows(two_products), "one_product": as_rows(one_product),
            "blocks_512": blocks(512), "blocks_1024": blocks(1024)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="1x128,8x128", help="comma-separated BxT (default: %(default)s)")
    parser.add_argument("--paths", default="function,xla", help="function and/or xla (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    words = tf.Variable(rng.standard_normal((V, E), dtype=np.float32) * 0.02)  # (V, E)
    dense = tf.Variable(rng.standard_normal((H - E, V), dtype=np.float32) * 0.02)  # (H - E, V)
    bias = tf.Variable(rng.standard_normal((V,), dtype=np.float32) * 0.02)
    paths = args.paths.split(",")
    for shape in args.shapes.split(","):
        b, t = (int(v) for v in shape.split("x"))
        x = tf.constant(rng.standard_normal((b, t, H), dtype=np.float32))
        fns = {(p, name): tf.function(f, jit_compile=(p == "xla")) for p in paths for name, f in forms(words, dense, bias).items()}
        ref = fns[(paths[0], "two_products")](x).numpy()
        for key, f in fns.items():
            err = np.abs(f(x).numpy() - ref).max() / np.abs(ref).max()
            if err > 1e-5:
                raise SystemExit(f"{key} differs from two_products by {err:.1e} (relative)")
        times = {key: [] for key in fns}
        for _ in range(args.rounds):
            for key, f in fns.items():
                best = float("inf")
                for _ in range(3):
                    start = time.perf_counter()
                    f(x).numpy()
                    best = min(best, time.perf_counter() - start)
                times[key].append(best)
        flop = 2 * b * t * H * V
        print(f"x ({b}, {t}, {H}) -> ({b}, {t}, {V}): {flop / 1e9:.1f} GFLOP; median of {args.rounds} rounds")
        for (p, name), ts in times.items():
            ratio = np.median(np.array(times[(p, "two_products")]) / np.array(ts))
            print(f"  {p:8s} {name:13s} {np.median(ts) * 1e3:8.2f} ms {flop / np.median(ts) / 1e9:6.1f} GFLOP/s"
                  f"  two_products/this {ratio:4.2f}", flush=True)


if __name__ == "__main__":
    main()
