"""Tiny MobileBERT configs that together cover every option of the config, and small utilities.

Each variant is small enough that a forward pass takes milliseconds, yet keeps MobileBERT's
shape relations (embedding_size < hidden_size, a bottleneck narrower than hidden_size).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mobilebert_common import MobileBertConfig

SHARED_VOCAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "vocab-uncased.txt"

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    embedding_size=16,
    intra_bottleneck_size=16,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=24,
    num_feedforward_networks=2,
    max_position_embeddings=40,
    type_vocab_size=2,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
)

# name -> overrides of TINY. Together: bottleneck on/off, shared / separate query-key bottleneck,
# bottleneck attention on/off (with and without the shared bottleneck, whose weights it then leaves
# unused), no_norm / layer_norm, trigram on/off, embedding_size == hidden_size (the embedding
# transformation unused), 1..4 FFNs, relu / gelu, classifier_activation on/off.
VARIANTS = {
    "default": {},  # bottleneck, shared q/k bottleneck, no_norm, trigram, 2 FFNs, relu, pooler tanh
    "layer_norm_gelu": dict(normalization_type="layer_norm", hidden_act="gelu", num_feedforward_networks=1,
                            use_bottleneck_attention=True),  # + the shared bottleneck, unused
    "bottleneck_attention": dict(use_bottleneck_attention=True, key_query_shared_bottleneck=False, num_feedforward_networks=3),
    "separate_qk_no_bottleneck": dict(use_bottleneck=False, key_query_shared_bottleneck=False, trigram_input=False, num_feedforward_networks=4),
    "no_trigram_no_pooler_act": dict(trigram_input=False, classifier_activation=False, num_feedforward_networks=4,
                                     embedding_size=32),  # E == H: the embedding transformation unused
}


def unused_parameters(config: MobileBertConfig, architecture: str) -> set:
    """PyTorch names of the weights the checkpoint layout holds but forward never reads (no gradient)."""
    from mobilebert_common.weights import entries

    return {e.pt_name for e in entries(config, architecture) if e.unused}


def tiny_config(variant: str = "default", **overrides) -> MobileBertConfig:
    return MobileBertConfig(**{**TINY, **VARIANTS[variant], **overrides})


def random_inputs(config: MobileBertConfig, batch: int = 2, seq: int = 7, seed: int = 0, pad_last: int = 2) -> dict:
    """input_ids, attention_mask (last row padded on the right by pad_last), token_type_ids as int64 numpy."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(1, config.vocab_size, size=(batch, seq), dtype=np.int64)
    attention_mask = np.ones((batch, seq), dtype=np.int64)
    if pad_last:
        attention_mask[-1, seq - pad_last:] = 0
        input_ids[-1, seq - pad_last:] = config.pad_token_id
    token_type_ids = np.zeros((batch, seq), dtype=np.int64)
    token_type_ids[:, seq // 2:] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def relative_error(actual, expected) -> float:
    """max|a-b| / max(1, max|b|): MobileBERT activations are large (DESIGN.md, Numerics)."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape mismatch: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))) if b.size else 0.0)


def assert_close(actual, expected, rtol: float = 1e-5, what: str = "values") -> None:
    err = relative_error(actual, expected)
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"
