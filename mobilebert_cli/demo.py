"""The main job: one MobileBERT in PyTorch and in Keras, weights converted, logits compared.

1. Load google/mobilebert-uncased (or --model DIR_OR_ID) as a PyTorch masked-LM. Only when the
   model is a hub repo id that cannot be had (the hub offline or unreachable, and nothing cached)
   fall back to a deterministic random-weight checkpoint built from a named preset (--preset),
   and say plainly that its weights are random. A local directory that is missing or incomplete
   is an error (exit status 1), never a reason for random weights.
2. Save it (model.safetensors), convert the file to the Keras layout (tf_model.h5) with
   `conversion`, and load that into the Keras model.
3. Run the same sentence through both and print the largest relative difference of the logits,
   plus the top predictions for [MASK] from each framework.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from mobilebert_cli.interrupt import handled, raise_if_interrupted
from mobilebert_common import MobileBertConfig
from mobilebert_common.hub import HubUnavailableError

HUB_MODEL = "google/mobilebert-uncased"
SENTENCE = "The capital of France is [MASK]."
TOLERANCE = 1e-5  # max|pt - tf| / max(1, max|pt|)

# Named presets for the offline fallback. "mobilebert-uncased" is the released architecture.
PRESETS = {
    "mobilebert-uncased": {},
    "mobilebert-tiny": dict(hidden_size=128, embedding_size=64, intra_bottleneck_size=64, num_hidden_layers=4,
                            intermediate_size=128, num_feedforward_networks=2),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="mobilebert demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=HUB_MODEL, help="local directory or hub repo id (default: %(default)s)")
    parser.add_argument("--preset", default="mobilebert-uncased", choices=sorted(PRESETS),
                        help="architecture of the random-weight fallback (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-weight fallback")
    parser.add_argument("--text", default=SENTENCE, help="sentence with one [MASK] (default: %(default)r)")
    return parser.parse_args(argv)


def load_pytorch_model(args):
    """(model, tokenizer or None, description). Random weights only when a hub repo id cannot be had."""
    try:
        # config.json first, without torch: a bad local directory or an unreachable hub shows at once.
        MobileBertConfig.from_pretrained(args.model)
        from mobilebert_common import MobileBertTokenizer
        from mobilebert_pt import MobileBertForMaskedLM

        model = MobileBertForMaskedLM.from_pretrained(args.model)
        tokenizer = MobileBertTokenizer.from_pretrained(args.model)
        return model, tokenizer, f"the weights of {args.model}"
    except HubUnavailableError as err:  # raised for hub repo ids only, never for a local path
        why = err.reason or str(err)
    import torch

    from mobilebert_pt import MobileBertForMaskedLM

    torch.manual_seed(args.seed)
    config = MobileBertConfig(**PRESETS[args.preset])
    model = MobileBertForMaskedLM(config).eval()
    not_local = "" if "/" in args.model else f"{args.model!r} is not a local directory, and "
    return model, None, (
        f"RANDOM weights (preset {args.preset!r}, seed {args.seed}): {not_local}hub repo {args.model!r} cannot be "
        f"had ({why}; not in the local cache), so the predictions below are meaningless; the demo still shows that "
        "both frameworks agree. Pass --model DIR to use a checkpoint on disk."
    )


def encode(text, tokenizer, config, seed):
    if tokenizer is not None:
        batch = tokenizer(text, return_tensors="np")
        if not (batch["input_ids"] == tokenizer.mask_token_id).any():
            raise ValueError(f"--text must hold {tokenizer.mask_token}, got {text!r}")
        return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    # No vocabulary with random weights: a fixed pseudo-sentence of ids, with a "[MASK]" at position 6.
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, config.vocab_size, size=(1, 9))
    ids[0, 0], ids[0, 6], ids[0, -1] = 101, 103, 102
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


def run(args) -> int:
    started = time.perf_counter()
    pt_model, tokenizer, what = load_pytorch_model(args)
    config = pt_model.config
    print(f"PyTorch: MobileBertForMaskedLM with {what}", flush=True)
    inputs = encode(args.text, tokenizer, config, args.seed)

    # TensorFlow only now: its import is the slowest (~7 s) and a bad --model fails before it.
    # Its C++ start-up log (no CUDA driver, CPU features) says nothing about this job.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import torch

    from conversion.convert import pt_to_tf
    from conversion.formats import read_safetensors, write_tf_h5
    from mobilebert_tf import TFMobileBertForMaskedLM

    with tempfile.TemporaryDirectory() as tmp:
        pt_dir, tf_dir = os.path.join(tmp, "pt"), os.path.join(tmp, "tf")
        pt_model.save_pretrained(pt_dir)
        convert_start = time.perf_counter()
        tf_weights = pt_to_tf(read_safetensors(os.path.join(pt_dir, "model.safetensors")), config)
        write_tf_h5(os.path.join(tf_dir, "tf_model.h5"), tf_weights, model_name="tf_mobile_bert_for_masked_lm")
        config.save_pretrained(tf_dir)
        print(f"converted model.safetensors -> tf_model.h5 ({len(tf_weights)} tensors) in "
              f"{time.perf_counter() - convert_start:.2f} s")
        tf_model = TFMobileBertForMaskedLM.from_pretrained(tf_dir)

    with torch.no_grad():
        pt_logits = pt_model(**{k: torch.as_tensor(v) for k, v in inputs.items()}).logits.numpy()
    tf_logits = tf_model(inputs).logits.numpy()
    error = float(np.abs(pt_logits - tf_logits).max() / max(1.0, float(np.abs(pt_logits).max())))
    print(f"logits {pt_logits.shape}: max relative difference PyTorch vs Keras = {error:.2e} "
          f"({'agree' if error <= TOLERANCE else 'DISAGREE'} at {TOLERANCE:g})")

    mask_id = tokenizer.mask_token_id if tokenizer is not None else 103
    for name, logits in (("PyTorch", pt_logits), ("Keras", tf_logits)):
        for pos in np.flatnonzero(inputs["input_ids"][0] == mask_id):
            top = np.argsort(-logits[0, pos], kind="stable")[:5]
            tokens = tokenizer.convert_ids_to_tokens(top.tolist()) if tokenizer is not None else top.tolist()
            print(f"{name:8s} top-5 for [MASK] at position {pos}: {tokens}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0 if error <= TOLERANCE else 1


def main(argv=None) -> int:
    args = parse_args(argv)
    with handled("mobilebert demo"):  # Ctrl-C: the temporary directory is removed, then exit status 130
        try:
            return run(args)
        except (FileNotFoundError, ValueError, OSError, ImportError) as err:
            raise_if_interrupted()
            print(f"mobilebert demo: error: {err}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
