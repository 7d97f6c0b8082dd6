"""Floating-point operations of one MobileBERT forward pass, counted analytically from the config.

What is counted: every matrix product, at 2*m*n*k (one multiply and one add per term), with m the rows
it runs on (B*T tokens, or B for the pooler):

  embeddings   embedding_transformation: (B*T, 3E or E) @ (3E or E, H), when it runs
  per layer    input bottleneck (H -> h) and the shared query/key bottleneck (H -> h), when they run;
               query and key (query_key_input_size -> h), value (value_input_size -> h);
               attention scores Q @ K^T and context P @ V: 2 * B*T*T*h each (all heads together);
               attention output dense (h -> h); each of the num_feedforward_networks FFNs (h -> I -> h);
               output bottleneck (h -> H), when use_bottleneck
  pooler       dense on [CLS] (H -> H), backbone only, when classifier_activation
  masked-LM    transform dense (H -> H) and the vocabulary projection (H -> V), on every token

with H = hidden_size, h = true_hidden_size, E = embedding_size, I = intermediate_size, V = vocab_size.
Not counted (each a small fraction): bias adds, activations, norms, softmax, residual adds, lookups.
For google/mobilebert-uncased at (1, 128): 5.4 GFLOP in the backbone, 4.1 more in the full masked-LM head.
"""

from __future__ import annotations

from typing import Dict

HEADS = ("masked_lm", "backbone")


def forward_flops(config, batch: int, seq: int, head: str = "masked_lm") -> Dict[str, int]:
    """FLOPs by part ("embeddings", "layers", "pooler", "mlm_head") and their "total", for inputs (batch, seq)."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
    if batch < 1 or seq < 1:
        raise ValueError(f"batch and seq must be at least 1, got ({batch}, {seq})")
    tokens, c = batch * seq, config
    h, hidden = c.true_hidden_size, c.hidden_size

    def dense(rows: int, n_in: int, n_out: int) -> int:
        return 2 * rows * n_in * n_out

    layer = (
        (dense(tokens, hidden, h) if c.use_bottleneck else 0)  # input bottleneck
        + (dense(tokens, hidden, h) if c.uses_shared_bottleneck else 0)  # shared query/key bottleneck
        + 2 * dense(tokens, c.query_key_input_size, h)  # query, key
        + dense(tokens, c.value_input_size, h)  # value
        + 2 * (2 * batch * seq * seq * h)  # scores (B, N, T, T) and context (B, N, T, d), all heads
        + dense(tokens, h, h)  # attention output
        + c.num_feedforward_networks * (dense(tokens, h, c.intermediate_size) + dense(tokens, c.intermediate_size, h))
        + (dense(tokens, h, hidden) if c.use_bottleneck else 0)  # output bottleneck
    )
    parts = {
        "embeddings": dense(tokens, c.embedding_input_size, hidden) if c.transforms_input else 0,
        "layers": c.num_hidden_layers * layer,
        "pooler": dense(batch, hidden, hidden) if head == "backbone" and c.classifier_activation else 0,
        "mlm_head": dense(tokens, hidden, hidden) + dense(tokens, hidden, c.vocab_size) if head == "masked_lm" else 0,
    }
    parts["total"] = sum(parts.values())
    return parts
