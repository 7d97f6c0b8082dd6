"""MobileBERT's building blocks in PyTorch: norms, embeddings, attention, bottlenecks, FFNs, layer, encoder, pooler.

The backbone that assembles them (MobileBertModel) is in backbone.py, the input checks in inputs.py.

Attribute names are the components of the hub checkpoint's keys (``encoder.layer.0.ffn.1.output.
LayerNorm.weight``), so ``state_dict()`` keys are the file's keys. Shapes in comments use
B = batch, T = sequence, H = hidden_size, E = embedding_size, I = true_hidden_size (the width inside
a layer: intra_bottleneck_size with a bottleneck, else H), N = heads, D = head_dim.

Paper: MobileBERT: a Compact Task-Agnostic BERT for Resource-Limited Devices (Sun et al., 2020).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mobilebert_common.config import MobileBertConfig


def _gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


# config.hidden_act -> function; "gelu" is the exact erf form, the others the tanh approximation.
ACT2FN = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": partial(F.gelu, approximate="tanh"),
    "gelu_pytorch_tanh": partial(F.gelu, approximate="tanh"),
    "gelu_fast": _gelu_fast,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
}


class NoNorm(nn.Module):
    """The paper's replacement for LayerNorm: an element-wise affine map, no statistics (faster on phones)."""

    def __init__(self, size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.bias


def make_norm(config: MobileBertConfig, size: int) -> nn.Module:
    """NoNorm or a real LayerNorm per config.normalization_type; every LayerNorm uses config.layer_norm_eps."""
    if config.normalization_type == "no_norm":
        return NoNorm(size)
    return nn.LayerNorm(size, eps=config.layer_norm_eps)


class MobileBertEmbeddings(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.trigram_input = config.trigram_input
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        # Built always, as the hub's checkpoints hold it; used only when trigram_input or E != H
        # (with E == H and no trigram the words go in as they are).
        self.transforms_input = config.trigram_input or config.embedding_size != config.hidden_size
        width = config.embedding_size * (3 if config.trigram_input else 1)
        self.embedding_transformation = nn.Linear(width, config.hidden_size)
        self.LayerNorm = make_norm(config, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # (B, T, E)
        x = inputs_embeds.to(self.position_embeddings.weight.dtype)
        batch, seq = x.shape[:2]
        if self.trigram_input:
            # The paper's kernel-3 convolution over tokens: [next token, this token, previous token],
            # zeros past either end -> (B, T, 3E).
            following = F.pad(x[:, 1:], (0, 0, 0, 1))
            preceding = F.pad(x[:, :-1], (0, 0, 1, 0))
            x = torch.cat([following, x, preceding], dim=2)
        if self.transforms_input:
            x = self.embedding_transformation(x)  # (B, T, H)
        if position_ids is None:
            position_ids = torch.arange(seq, device=x.device).unsqueeze(0)  # (1, T): padding is on the right
        if token_type_ids is None:
            token_type_ids = torch.zeros((batch, seq), dtype=torch.long, device=x.device)
        x = x + self.position_embeddings(position_ids) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class MobileBertSelfAttention(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        inner = config.true_hidden_size
        # Query/key read the bottlenecked input (width I) except with a bottleneck but neither a shared
        # q/k bottleneck nor bottleneck attention: then they read the layer's input h (width H). The
        # reference implementation sizes them I there and crashes; we size them to what they read.
        reads_inner = config.use_bottleneck_attention or config.key_query_shared_bottleneck or not config.use_bottleneck
        qk_width = inner if reads_inner else config.hidden_size
        value_width = inner if config.use_bottleneck_attention else config.hidden_size
        self.query = nn.Linear(qk_width, inner)
        self.key = nn.Linear(qk_width, inner)
        self.value = nn.Linear(value_width, inner)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, query_tensor, key_tensor, value_tensor, attention_mask=None, head_mask=None, output_attentions=False):
        batch, seq, _ = query_tensor.shape

        def split(x):  # (B, T, I) -> (B, N, T, D)
            return x.view(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.query(query_tensor)), split(self.key(key_tensor)), split(self.value(value_tensor))
        if output_attentions or head_mask is not None:
            # Explicit path: the probabilities are returned or multiplied by the head mask.
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)  # (B, N, T, T)
            if attention_mask is not None:
                scores = scores + attention_mask  # (B, 1, 1, T) additive: 0 keep, dtype-min drop
            probs = self.dropout(torch.softmax(scores, dim=-1))
            if head_mask is not None:
                probs = probs * head_mask  # (1, N, 1, 1)
            context = torch.matmul(probs, v)  # (B, N, T, D)
        else:
            probs = None
            context = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attention_mask, dropout_p=self.dropout.p if self.training else 0.0
            )
        context = context.transpose(1, 2).reshape(batch, seq, self.num_heads * self.head_dim)  # (B, T, I)
        return context, probs


class MobileBertSelfOutput(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.use_bottleneck = config.use_bottleneck
        self.dense = nn.Linear(config.true_hidden_size, config.true_hidden_size)
        self.LayerNorm = make_norm(config, config.true_hidden_size)
        # With a bottleneck the dropout happens once, in OutputBottleneck.
        self.dropout = None if config.use_bottleneck else nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, residual):
        x = self.dense(hidden_states)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.LayerNorm(x + residual)


class MobileBertAttention(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.self = MobileBertSelfAttention(config)
        self.output = MobileBertSelfOutput(config)

    def forward(self, query, key, value, layer_input, attention_mask=None, head_mask=None, output_attentions=False):
        context, probs = self.self(query, key, value, attention_mask, head_mask, output_attentions)
        return self.output(context, layer_input), probs  # residual around attention is the bottlenecked input


class MobileBertIntermediate(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.true_hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, x):
        return self.act(self.dense(x))  # (B, T, intermediate)


class OutputBottleneck(nn.Module):
    """Back from the bottleneck to the residual stream: dense I -> H, residual = the layer's input."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.true_hidden_size, config.hidden_size)
        self.LayerNorm = make_norm(config, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)  # (B, T, H)


class MobileBertOutput(nn.Module):
    """The last FFN's output; with a bottleneck it also leaves the bottleneck (OutputBottleneck)."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.use_bottleneck = config.use_bottleneck
        self.dense = nn.Linear(config.intermediate_size, config.true_hidden_size)
        self.LayerNorm = make_norm(config, config.true_hidden_size)
        if config.use_bottleneck:
            self.bottleneck = OutputBottleneck(config)
        else:
            self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, intermediate_states, residual, layer_input_hidden):
        x = self.dense(intermediate_states)  # (B, T, I)
        if not self.use_bottleneck:
            return self.LayerNorm(self.dropout(x) + residual)
        x = self.LayerNorm(x + residual)
        return self.bottleneck(x, layer_input_hidden)  # (B, T, H)


class BottleneckLayer(nn.Module):
    """Dense H -> intra_bottleneck_size then norm: the way into the bottleneck."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intra_bottleneck_size)
        self.LayerNorm = make_norm(config, config.intra_bottleneck_size)

    def forward(self, x):
        return self.LayerNorm(self.dense(x))


class Bottleneck(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.use_bottleneck_attention = config.use_bottleneck_attention
        self.key_query_shared_bottleneck = config.key_query_shared_bottleneck
        self.input = BottleneckLayer(config)
        if config.key_query_shared_bottleneck:
            # Unused when use_bottleneck_attention (query/key then read self.input), but the hub's
            # checkpoints hold it whenever key_query_shared_bottleneck: built for compatibility.
            self.attention = BottleneckLayer(config)

    def forward(self, h) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(query input, key input, value input, layer input) for the attention block."""
        b = self.input(h)  # (B, T, I)
        if self.use_bottleneck_attention:
            return b, b, b, b
        if self.key_query_shared_bottleneck:
            s = self.attention(h)  # (B, T, I): one extra bottleneck shared by query and key
            return s, s, h, b
        return h, h, h, b


class FFNOutput(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.true_hidden_size)
        self.LayerNorm = make_norm(config, config.true_hidden_size)

    def forward(self, hidden_states, residual):
        return self.LayerNorm(self.dense(hidden_states) + residual)


class FFNLayer(nn.Module):
    """One of the stacked feed-forward networks (all but the last, which is intermediate + output)."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.intermediate = MobileBertIntermediate(config)
        self.output = FFNOutput(config)

    def forward(self, x):
        return self.output(self.intermediate(x), x)


class MobileBertLayer(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.use_bottleneck = config.use_bottleneck
        self.attention = MobileBertAttention(config)
        self.intermediate = MobileBertIntermediate(config)
        self.output = MobileBertOutput(config)
        if config.use_bottleneck:
            self.bottleneck = Bottleneck(config)
        self.ffn = nn.ModuleList(FFNLayer(config) for _ in range(config.num_feedforward_networks - 1))

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False):
        if self.use_bottleneck:
            query, key, value, layer_input = self.bottleneck(hidden_states)
        else:
            query = key = value = layer_input = hidden_states
        x, probs = self.attention(query, key, value, layer_input, attention_mask, head_mask, output_attentions)
        for ffn in self.ffn:
            x = ffn(x)  # (B, T, I)
        x = self.output(self.intermediate(x), x, hidden_states)  # (B, T, H)
        return x, probs


class MobileBertEncoder(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.layer = nn.ModuleList(MobileBertLayer(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False, output_hidden_states=False):
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for i, layer in enumerate(self.layer):
            layer_head_mask = None if head_mask is None else head_mask[i]
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                # Recompute the layer in backward instead of keeping its activations (dropout RNG is replayed).
                hidden_states, probs = checkpoint(
                    layer, hidden_states, attention_mask, layer_head_mask, output_attentions, use_reentrant=False
                )
            else:
                hidden_states, probs = layer(hidden_states, attention_mask, layer_head_mask, output_attentions)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
        return hidden_states, all_hidden, all_attentions


class MobileBertPooler(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.do_activate = config.classifier_activation
        if self.do_activate:
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states):
        first = hidden_states[:, 0]  # (B, H): the [CLS] token
        return torch.tanh(self.dense(first)) if self.do_activate else first


# Names that moved to backbone.py / inputs.py, still importable from here (``from mobilebert_pt.modeling
# import MobileBertModel``). Resolved on first use: backbone.py imports this module.
_MOVED = {"MobileBertModel": "backbone", "check_finite": "backbone", "validate_inputs": "inputs"}


def __getattr__(name):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"mobilebert_pt.{_MOVED[name]}"), name)
    raise AttributeError(f"module 'mobilebert_pt.modeling' has no attribute {name!r}")
