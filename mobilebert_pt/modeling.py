"""MobileBERT in PyTorch, top to bottom: norms, embeddings, attention, bottlenecks, FFNs, layer, encoder,
pooler, the backbone (MobileBertModel), the head modules and the task models.

Attribute names are the components of the hub checkpoint's keys (``encoder.layer.0.ffn.1.output.
LayerNorm.weight``), so ``state_dict()`` keys are the file's keys. Shapes in comments use
B = batch, T = sequence, H = hidden_size, E = embedding_size, I = true_hidden_size (the width inside
a layer: intra_bottleneck_size with a bottleneck, else H), N = heads, D = head_dim, V = vocab_size,
P = masked positions per row. Widths that follow from several config fields are the config's
properties (mobilebert_common/config.py), never recomputed here. Input checks: inputs.py; losses:
losses.py; loading and saving: pretrained.py (generic) and checkpoints.py.

Paper: MobileBERT: a Compact Task-Agnostic BERT for Resource-Limited Devices (Sun et al., 2020).
"""

from __future__ import annotations

import math
import re
import warnings
from functools import partial
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as module_hooks
from torch.utils.checkpoint import checkpoint

from mobilebert_common import resizing
from mobilebert_common.config import MobileBertConfig
from mobilebert_common.outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    MobileBertForPreTrainingOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from mobilebert_pt.inputs import (
    INPUT_NAMES,
    check_finite,
    check_mask_positions,
    flatten_choices,
    tensors,
    tracing,
    validate_inputs,
)
from mobilebert_pt.losses import cross_entropy, sequence_classification_loss, span_loss
from mobilebert_pt.pretrained import PreTrainedModel, truncated_normal_

# What forward returns must be a pytree node for torch.export (and so for ExecuTorch and torch.onnx's default,
# dynamo-based exporter), as transformers registers its ModelOutput: flattened to its fields, rebuilt as the class.
OUTPUT_CLASSES = (BaseModelOutputWithPooling, MaskedLMOutput, MobileBertForPreTrainingOutput,
                  MultipleChoiceModelOutput, NextSentencePredictorOutput, QuestionAnsweringModelOutput,
                  SequenceClassifierOutput, TokenClassifierOutput)
for _output in OUTPUT_CLASSES:
    torch.export.register_dataclass(_output, serialized_type_name=f"mobilebert_common.outputs.{_output.__name__}")

# ---------------------------------------------------------------------------------------- activations and norms


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

    def forward(self, x: torch.Tensor, fresh: bool = False) -> torch.Tensor:
        """x * weight + bias. fresh=True (norm_fresh): x is a temporary its caller holds alone, overwritten
        with the result when no gradient is recorded (the same two roundings, no new buffer)."""
        if fresh and not torch.is_grad_enabled() and x.dtype == self.weight.dtype == self.bias.dtype:
            return x.mul_(self.weight).add_(self.bias)
        return x * self.weight + self.bias


# Inference without autograd (no_grad / inference_mode) runs the layers' element-wise steps in place, on
# the temporaries the layer itself just made (a product's output, a residual sum): the same operations in
# the same order, so the same bits, without a new (B, T, width) buffer per step. At 8 x 128 tokens every
# such buffer is 0.25-2 MB that the allocator would hand out and the kernel fault in afresh; in place, a
# forward was 3-7% faster here at 8 x 40 and 8 x 128 (nothing measurable at 1 x 128). With autograd on
# the out-of-place forms run (backward needs their inputs). Only a layer's own temporaries are written: the
# output of its Linear (nn.Linear, and the int8 / adapter modules that replace it, return a new tensor) or
# a sum it made; never a tensor the caller passed in, nor a layer output that hidden_states returns. And
# only while no forward hook is registered on the modules that made or read it (nor a global one): a hook
# that keeps an output (activation capture) must see it as it was returned.


def unobserved(*modules: nn.Module) -> bool:
    """No forward (pre-)hook on these modules, nor a global one: no reference to their inputs or outputs can
    have been kept outside the layer."""
    if module_hooks._global_forward_hooks or module_hooks._global_forward_pre_hooks:
        return False
    return not any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def add_fresh(x: torch.Tensor, other: torch.Tensor, *made_by: nn.Module) -> torch.Tensor:
    """x + other, written into x when no gradient is recorded and no hook watched made_by (the modules whose
    output x is); x: a temporary of the caller's, same shape. Out of place when the dtypes differ
    (autocast's float16 product + the float32 residual is float32)."""
    if not torch.is_grad_enabled() and x.dtype == other.dtype and unobserved(*made_by):
        return x.add_(other)
    return x + other


def norm_fresh(norm: nn.Module, x: torch.Tensor, *made_by: nn.Module) -> torch.Tensor:
    """norm(x) for a temporary x (made by made_by, or a sum): NoNorm works in place (NoNorm.forward) unless a
    hook watches it or made_by; a LayerNorm as usual. Still a module call, so hooks on the norm run."""
    if isinstance(norm, NoNorm):
        return norm(x, fresh=unobserved(norm, *made_by))
    return norm(x)


def make_norm(config: MobileBertConfig, size: int) -> nn.Module:
    """NoNorm or a real LayerNorm per config.normalization_type; every LayerNorm uses config.layer_norm_eps."""
    if config.normalization_type == "no_norm":
        return NoNorm(size)
    return nn.LayerNorm(size, eps=config.layer_norm_eps)


# ---------------------------------------------------------------------------------------- embeddings


def lookup(gather, ids: torch.Tensor, size: int) -> torch.Tensor:
    """gather(ids) for ids that must lie in [0, size): rows of an embedding, or positions along T of (B, T, H).

    Eagerly the ids were checked before any kernel (inputs.py): a plain gather. While torch compiles or vmaps
    the value checks cannot run (inputs.tracing), so an out-of-range id is clamped for the gather (no device-side
    assert) and its row made NaN (never a plausible wrong number), as the Keras lookup does inside XLA.
    """
    if not tracing():
        return gather(ids)
    rows = gather(ids.clamp(0, size - 1))  # (..., D)
    valid = (ids >= 0) & (ids < size)
    return torch.where(valid[..., None], rows, float("nan"))


class MobileBertEmbeddings(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.trigram_input = config.trigram_input
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        # Built always, as the hub's checkpoints hold it; run only when config.transforms_input.
        self.transforms_input = config.transforms_input
        self.embedding_transformation = nn.Linear(config.embedding_input_size, config.hidden_size)
        self.LayerNorm = make_norm(config, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = lookup(self.word_embeddings, input_ids, self.word_embeddings.num_embeddings)  # (B, T, E)
        x = inputs_embeds.to(self.position_embeddings.weight.dtype)
        batch, seq = x.shape[:2]
        if self.trigram_input:
            # The paper's kernel-3 convolution over tokens: [next token, this token, previous token],
            # zeros past either end -> (B, T, 3E). Padded once to T + 2 and cut to T (not cut to T - 1 and
            # padded): the same values, and torch.export with a symbolic T then needs no T != 2 guard.
            padded = F.pad(x, (0, 0, 1, 1))  # (B, T + 2, E): a zero row before and after
            following, preceding = padded[:, 2:], padded[:, :-2]  # (B, T, E) each
            x = torch.cat([following, x, preceding], dim=2)
        if self.transforms_input:
            x = self.embedding_transformation(x)  # (B, T, H)
        if position_ids is None:
            position_ids = torch.arange(seq, device=x.device).unsqueeze(0)  # (1, T): padding is on the right
        if token_type_ids is None:
            token_type_ids = torch.zeros((batch, seq), dtype=torch.long, device=x.device)
        positions = lookup(self.position_embeddings, position_ids, self.position_embeddings.num_embeddings)
        types = lookup(self.token_type_embeddings, token_type_ids, self.token_type_embeddings.num_embeddings)
        x = x + positions + types  # (B, T, H)
        return self.dropout(self.LayerNorm(x))


# ---------------------------------------------------------------------------------------- attention


class MobileBertSelfAttention(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        inner = config.true_hidden_size
        self.query = nn.Linear(config.query_key_input_size, inner)
        self.key = nn.Linear(config.query_key_input_size, inner)
        self.value = nn.Linear(config.value_input_size, inner)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def fusable_query_key(self, query_tensor, key_tensor) -> bool:
        """One product for query and key only when it is the same as calling the two modules: the same input,
        plain float Linears (not int8 ones, which hold no float weight, nor a subclass with its own forward),
        and no hook on them (a hook must run and see its module's own output; pruning's pre-hook rebuilds
        the weight), nor a global one. Nor under a torch-function mode (pipeline_float16's float16-mixed): it
        keeps a float16 copy per weight parameter, and a weight concatenated per call would be copied, and
        its bound read back from the device, on every call."""
        return (key_tensor is query_tensor and type(self.query) is nn.Linear and type(self.key) is nn.Linear
                and unobserved(self.query, self.key) and not torch.overrides.has_torch_function_variadic(query_tensor))

    def forward(self, query_tensor, key_tensor, value_tensor, attention_mask=None, head_mask=None, output_attentions=False):
        batch, seq, _ = query_tensor.shape

        def split(x):  # (B, T, I) -> (B, N, T, D)
            return x.view(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)

        if self.fusable_query_key(query_tensor, key_tensor):
            # Query and key read the same tensor (the shared bottleneck, bottleneck attention, or none): one
            # product with weight [Wq; Wk] (2I, in), concatenated per call (the files keep query / key apart).
            weight = torch.cat([self.query.weight, self.key.weight])
            bias = torch.cat([self.query.bias, self.key.bias])
            q, k = (split(t) for t in F.linear(query_tensor, weight, bias).chunk(2, dim=-1))  # (B, T, I) each
        else:  # separate inputs, int8 Linears, hooks on query / key (fusable_query_key)
            q, k = split(self.query(query_tensor)), split(self.key(key_tensor))
        v = split(self.value(value_tensor))
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
        made_by = (self.dense,) if self.dropout is None else (self.dense, self.dropout)
        return norm_fresh(self.LayerNorm, add_fresh(x, residual, *made_by), *made_by)


class MobileBertAttention(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.self = MobileBertSelfAttention(config)
        self.output = MobileBertSelfOutput(config)

    def forward(self, query, key, value, layer_input, attention_mask=None, head_mask=None, output_attentions=False):
        context, probs = self.self(query, key, value, attention_mask, head_mask, output_attentions)
        return self.output(context, layer_input), probs  # residual around attention is the bottlenecked input


# ---------------------------------------------------------------------------------------- bottleneck


class BottleneckLayer(nn.Module):
    """Dense H -> intra_bottleneck_size then norm: the way into the bottleneck."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intra_bottleneck_size)
        self.LayerNorm = make_norm(config, config.intra_bottleneck_size)

    def forward(self, x):
        return norm_fresh(self.LayerNorm, self.dense(x), self.dense)


class Bottleneck(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.use_bottleneck_attention = config.use_bottleneck_attention
        self.uses_shared_bottleneck = config.uses_shared_bottleneck
        self.input = BottleneckLayer(config)
        if config.key_query_shared_bottleneck:
            # Built whenever key_query_shared_bottleneck, as the hub's checkpoints hold it; it runs only
            # when config.uses_shared_bottleneck (bottleneck attention feeds query/key from self.input).
            self.attention = BottleneckLayer(config)

    def forward(self, h) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(query input, key input, value input, layer input) for the attention block."""
        b = self.input(h)  # (B, T, I)
        if self.use_bottleneck_attention:
            return b, b, b, b
        if self.uses_shared_bottleneck:
            s = self.attention(h)  # (B, T, I): one extra bottleneck shared by query and key
            return s, s, h, b
        return h, h, h, b


class OutputBottleneck(nn.Module):
    """Back from the bottleneck to the residual stream: dense I -> H, residual = the layer's input."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.true_hidden_size, config.hidden_size)
        self.LayerNorm = make_norm(config, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, residual):
        made_by = (self.dense, self.dropout)
        x = add_fresh(self.dropout(self.dense(hidden_states)), residual, *made_by)
        return norm_fresh(self.LayerNorm, x, *made_by)  # (B, T, H)


# ---------------------------------------------------------------------------------------- feed-forward networks


class MobileBertIntermediate(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.true_hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.relu = config.hidden_act == "relu"  # the released models' activation: in place without autograd

    def forward(self, x):
        y = self.dense(x)  # (B, T, intermediate)
        in_place = self.relu and not torch.is_grad_enabled() and unobserved(self.dense)
        return torch.relu_(y) if in_place else self.act(y)


class FFNOutput(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.true_hidden_size)
        self.LayerNorm = make_norm(config, config.true_hidden_size)

    def forward(self, hidden_states, residual):
        return norm_fresh(self.LayerNorm, add_fresh(self.dense(hidden_states), residual, self.dense), self.dense)


class FFNLayer(nn.Module):
    """One of the stacked feed-forward networks (all but the last, which is intermediate + output)."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.intermediate = MobileBertIntermediate(config)
        self.output = FFNOutput(config)

    def forward(self, x):
        return self.output(self.intermediate(x), x)


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
            made_by = (self.dense, self.dropout)
            return norm_fresh(self.LayerNorm, add_fresh(self.dropout(x), residual, *made_by), *made_by)
        x = norm_fresh(self.LayerNorm, add_fresh(x, residual, self.dense), self.dense)
        return self.bottleneck(x, layer_input_hidden)  # (B, T, H)


# ---------------------------------------------------------------------------------------- layer and encoder


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


# ---------------------------------------------------------------------------------------- the backbone


class MobileBertPreTrainedModel(PreTrainedModel):
    """The base of every MobileBERT class: what the generic PreTrainedModel needs to know of MobileBERT
    (names, keys, init), the decoder tie and the vocabulary-size rules."""

    config_class = MobileBertConfig
    base_model_prefix = "mobilebert"
    supports_gradient_checkpointing = True
    tied_keys = ("cls.predictions.decoder.weight",)  # the decoder IS the word-embedding table: never in files
    # Keys that old pytorch_model.bin files carry and that hold no weights of ours.
    ignored_checkpoint_keys = re.compile(r"(^|\.)(embeddings\.position_ids|cls\.predictions\.decoder\.(weight|bias))$")
    # The pooler is not among backbone_keys: a masked-LM checkpoint has none, and a classifier loaded
    # from it gets a new pooler rather than an error.
    backbone_keys = ("embeddings.", "encoder.")
    base_model_keys = ("embeddings.", "encoder.", "pooler.")

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Truncated normal(0, initializer_range) at +-2 std for weights, zero biases, norms at identity,
        as the paper's TF code initialises. The masked-LM output bias (a parameter of the head) starts at 0."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            truncated_normal_(module.weight, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            truncated_normal_(module.weight, std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, (nn.LayerNorm, NoNorm)):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, MobileBertLMPredictionHead):
            module.bias.zero_()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.base_model.embeddings.word_embeddings

    def validate_inputs(self, inputs: Optional[dict] = None, **kwargs) -> dict:
        """The value checks forward makes, run now: a ValueError for a bad input; else the inputs with lists /
        numpy arrays made tensors on the model's device, other keys (labels, flags) passed through.

        Call it outside a torch.compile'd function, where forward cannot raise (inputs.py):
        ``compiled(**model.validate_inputs(batch))``. Takes a dict or keywords, as forward's names.
        """
        given = {**(inputs or {}), **kwargs}
        x = tensors(self.device, self.dtype, **{k: v for k, v in given.items() if k in INPUT_NAMES})
        if isinstance(self, MobileBertForMultipleChoice):
            flat = flatten_choices(**{k: x.get(k) for k in INPUT_NAMES if k != "head_mask"})[1]  # (B*C, T)
            checked = validate_inputs(self.config, {**flat, "head_mask": x.get("head_mask")})
        else:
            checked = validate_inputs(self.config, x)
        if given.get("mask_positions") is not None:
            reference = checked["input_ids"] if checked["input_ids"] is not None else checked["inputs_embeds"]
            x["mask_positions"] = check_mask_positions(  # against (B, T, 0): only the shape is read
                given["mask_positions"], reference.new_empty(tuple(reference.shape[:2]) + (0,), dtype=self.dtype))
        return {**given, **x}

    def get_output_embeddings(self) -> Optional[nn.Linear]:
        return None  # the masked-LM task models return their decoder

    def cache_vocabulary_projection(self, enabled: bool = True):
        """Keep the masked-LM head's two products as one (V, H) matrix for inference (enabled=False drops it).

        Without autograd (torch.no_grad / inference_mode) the head then runs one product over the kept copy
        [E | dense.weight^T], on the CPU in float32 through oneDNN: a masked-LM forward at 8x128 about 6%
        faster, 2% at 2x128 (up to ONEDNN_HEAD_ROWS rows the head is oneDNN's without it; path "cached" of
        benchmarks/bench_speed.py). The price is the copy: vocab_size x hidden_size floats (62.5 MB for the
        released model) while enabled. The copy is rebuilt when those weights change in place (an optimizer
        step, load_state_dict) or are replaced (.to(), resize_token_embeddings); a change through ``.data``
        is not seen: call this again after one. Training, torch.compile, torch.export, torch.jit.trace and
        vmap run the usual two products. Returns the model.
        """
        heads = [m for m in self.modules() if isinstance(m, MobileBertLMPredictionHead)]
        if not heads:
            raise ValueError(f"{type(self).__name__} has no masked-LM head; cache_vocabulary_projection is for "
                             "MobileBertForMaskedLM and MobileBertForPreTraining")
        for head in heads:
            head.keep_stacked_weight, head.stacked_cache = bool(enabled), None
        return self

    def tie_weights(self) -> None:
        """The masked-LM decoder shares the word-embedding table (one Parameter, saved once)."""
        decoder = self.get_output_embeddings()
        if decoder is not None:
            embeddings = self.get_input_embeddings()
            decoder.weight = embeddings.weight
            decoder.out_features = embeddings.num_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        """Replace the word-embedding table (the masked-LM decoder is re-tied to it).

        A model with a masked-LM head takes only a table of the current vocabulary size: its output
        bias and dense rows (one per token) would otherwise no longer line up with the table, and
        making them up silently is not what a user asks for here; resize_token_embeddings(n) does
        that consistently (old rows kept, new rows initialised). Other models take any size >
        pad_token_id, and config.vocab_size follows.
        """
        if not isinstance(value, nn.Embedding) or value.embedding_dim != self.config.embedding_size:
            raise ValueError(f"input embeddings must be an nn.Embedding of width {self.config.embedding_size} (config.embedding_size)")
        size = value.num_embeddings
        if size != self.config.vocab_size and self.get_output_embeddings() is not None:
            raise ValueError(
                f"{type(self).__name__} has a masked-LM head over {self.config.vocab_size} tokens (config.vocab_size); "
                f"a table of {size} rows would not match it. Call model.resize_token_embeddings({size}) to change "
                "the vocabulary size (head resized with it), then set_input_embeddings with a table of that size"
            )
        if size <= self.config.pad_token_id:
            raise ValueError(f"input embeddings of {size} rows would drop the padding id {self.config.pad_token_id}")
        self.base_model.embeddings.word_embeddings = value
        self.config.vocab_size = value.num_embeddings
        self.tie_weights()

    def resize_token_embeddings(self, new_num_tokens: Optional[int] = None, pad_to_multiple_of: Optional[int] = None,
                                mean_resizing: bool = True) -> nn.Embedding:
        """Grow or shrink the vocabulary: old rows kept; the masked-LM head follows (dense columns, bias).

        Added rows as transformers adds them (mobilebert_common.resizing): near the mean of the old rows
        (the input table and the head's dense columns; the bias gets 0), or with mean_resizing=False drawn
        as at initialisation. Draws from torch's RNG (torch.manual_seed makes it repeatable).
        """
        old = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return old
        size = resizing.new_vocab_size(old.num_embeddings if new_num_tokens is None else new_num_tokens,
                                       pad_to_multiple_of, self.config.pad_token_id)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        std = self.config.initializer_range

        def draw(shape):  # the model's own init (truncated normal), for mean_resizing=False
            return truncated_normal_(torch.empty(shape), std).numpy()

        def resized(weight: torch.Tensor) -> torch.Tensor:  # (V, D) -> (size, D), on the weight's device and dtype
            table = resizing.resized_table(weight.detach().float().cpu().numpy(), size, rng, mean_resizing, draw)
            return torch.from_numpy(table).to(device=weight.device, dtype=weight.dtype)

        new = nn.Embedding(size, old.embedding_dim, padding_idx=old.padding_idx, device=old.weight.device,
                           dtype=old.weight.dtype, _weight=resized(old.weight))
        new.weight.requires_grad_(old.weight.requires_grad)
        new.train(old.training)
        self.base_model.embeddings.word_embeddings = new
        if self.get_output_embeddings() is not None:
            head = self.cls.predictions
            dense = weight_only_linear(size, head.dense.out_features, device=head.dense.weight.device,
                                       dtype=head.dense.weight.dtype)  # weight (H - E, V): one column per token
            with torch.no_grad():
                dense.weight.copy_(resized(head.dense.weight.t()).t())
            bias = resizing.resized_bias(head.bias.detach().float().cpu().numpy(), size)
            head.dense = dense
            head.bias = nn.Parameter(torch.from_numpy(bias).to(device=head.bias.device, dtype=head.bias.dtype))
        self.config.vocab_size = size
        self.tie_weights()
        return new


def _finish(out, return_dict, config: MobileBertConfig):
    """The output object, or its tuple; return_dict=None follows config.use_return_dict (as transformers)."""
    return out if (config.use_return_dict if return_dict is None else return_dict) else out.to_tuple()


class MobileBertModel(MobileBertPreTrainedModel):
    """The backbone: embeddings -> encoder -> (optional) pooler. Saved without the "mobilebert." prefix."""

    def __init__(self, config: MobileBertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = MobileBertEmbeddings(config)
        self.encoder = MobileBertEncoder(config)
        self.pooler = MobileBertPooler(config) if add_pooling_layer else None
        self.post_init()

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
    ):
        config = self.config
        # None: the config's flags decide (model.config.output_attentions = True works, as in transformers).
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        dtype, device = self.dtype, self.device
        # Lists / numpy arrays become tensors on the model's device; tensors pass as they are. Then the checks.
        x = validate_inputs(config, tensors(
            device, dtype, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
            position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds))
        attention_mask, head_mask = x["attention_mask"], x["head_mask"]
        if attention_mask is None:
            shape = (x["input_ids"] if x["input_ids"] is not None else x["inputs_embeds"]).shape[:2]  # (B, T)
            attention_mask = torch.ones(shape, device=device)
        # 1 = attend, 0 = padding -> additive (B, 1, 1, T): 0 or the dtype's most negative value.
        additive_mask = (1.0 - attention_mask.to(device=device, dtype=dtype))[:, None, None, :] * torch.finfo(dtype).min
        if head_mask is not None:
            head_mask = head_mask.to(device=device, dtype=dtype)
            if head_mask.dim() == 1:
                head_mask = head_mask.expand(config.num_hidden_layers, -1)
            head_mask = head_mask[:, None, :, None, None]  # (L, 1, N, 1, 1): per layer, broadcast over B, T, T
        try:
            embeddings = self.embeddings(x["input_ids"], x["token_type_ids"], x["position_ids"], x["inputs_embeds"])
            last, hidden_states, attentions = self.encoder(
                embeddings, additive_mask, head_mask, bool(output_attentions), bool(output_hidden_states)
            )
        except (RuntimeError, NotImplementedError) as err:
            if device.type == "cpu" and dtype in (torch.float16, torch.bfloat16) and "not implemented for" in str(err):
                raise ValueError(
                    f"this torch build cannot run MobileBERT in {dtype} on the CPU ({err}). "
                    "Load with torch_dtype=torch.float32 on the CPU, or use a GPU for float16/bfloat16."
                ) from err
            raise
        check_finite(last)
        pooled = self.pooler(last) if self.pooler is not None else None
        out = BaseModelOutputWithPooling(
            last_hidden_state=last, pooler_output=pooled, hidden_states=hidden_states, attentions=attentions
        )
        return _finish(out, return_dict, self.config)


# ---------------------------------------------------------------------------------------- heads


class MobileBertPredictionHeadTransform(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT2FN[config.hidden_act]
        # Always a real LayerNorm, whatever normalization_type (as in the released checkpoints).
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x):
        return self.LayerNorm(self.act(self.dense(x)))


def weight_only_linear(in_features: int, out_features: int, device=None, dtype=None) -> nn.Linear:
    """nn.Linear(in, out, bias=False) held for its weight only (never called), possibly empty.

    Empty (0 rows) when embedding_size == hidden_size, or for the decoder until it is tied; torch's default
    init would warn "Initializing zero-element tensors is a no-op" at every model construction, which says
    nothing to users.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Initializing zero-element tensors is a no-op")
        return nn.Linear(in_features, out_features, bias=False, device=device, dtype=dtype)


class MobileBertLMPredictionHead(nn.Module):
    """logits = transform(h) @ [E^T (E x V) ; dense.weight (H-E x V)] + bias, with E the tied word embeddings.

    Computed as two products on slices of transform(h), never building the (H, V) matrix (for the
    released model a 62 MB copy per call). With mask_positions (B, P) only those rows are gathered,
    before the transform: (B, P, V) logits for P rows instead of T. With keep_stacked_weight (the
    model's cache_vocabulary_projection) inference runs one product over a kept (V, H) copy instead.
    """

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        resizing.require_tied_decoder(config)
        self.embedding_size = config.embedding_size
        self.transform = MobileBertPredictionHeadTransform(config)
        self.dense = weight_only_linear(config.vocab_size, config.mlm_dense_size)  # weight (H - E, V)
        # Its weight IS the word-embedding table (V, E), set by MobileBertPreTrainedModel.tie_weights in post_init;
        # not saved. Built empty: a table of its own would be allocated (and drawn) only to be dropped at the tie.
        self.decoder = weight_only_linear(config.embedding_size, 0)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        # None, or one Linear H -> V with weight [E | dense.weight^T] (V, H): set by single_projection for
        # mobilebert_pt.quantization (an int8 Linear needs the products as one module), then used instead.
        self.projection = None
        # cache_vocabulary_projection's opt-in: inference runs one product over a kept copy of stacked_weight().
        # The copy is a plain attribute, not a buffer (never saved, not moved by .to(): rebuilt instead), held
        # with the identity and version of the weights it was built from (stacked_cache_key).
        self.keep_stacked_weight = False
        self.stacked_cache = None  # None, or (stacked_cache_key(), the (V, H) copy)

    def single_projection(self) -> Tuple[str, ...]:
        """Set self.projection: the head's two products as one float Linear H -> V, weight [E | dense.weight^T]
        (V, H), bias the output bias, for int8 quantization. Returns the names of the weight holders that then
        never run (dense, decoder): they keep the tie and get_output_embeddings, and are not quantized."""
        weight = self.stacked_weight()  # (V, H)
        linear = nn.Linear(weight.shape[1], weight.shape[0], device=weight.device)
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(self.bias)
        self.projection = linear
        self.keep_stacked_weight, self.stacked_cache = False, None  # the projection is the one copy now
        return ("dense", "decoder")

    def stacked_weight(self) -> torch.Tensor:
        """[E | dense.weight^T] (V, H): the head's two products as one matrix (a new tensor, no gradient)."""
        with torch.no_grad():
            return torch.cat([self.decoder.weight, self.dense.weight.t()], dim=1)

    def stacked_cache_key(self) -> tuple:
        """What the kept copy depends on: each weight's storage and version (an in-place change, an optimizer
        step or load_state_dict bumps the version; .to(), resizing or re-tying replaces the tensor). An
        inference tensor has no version counter: its storage alone. A change through .data is not seen."""
        return tuple((w.data_ptr(), w.device, w.dtype, w.shape, None if w.is_inference() else w._version)
                     for w in (self.decoder.weight, self.dense.weight))

    def kept_stacked_weight(self) -> torch.Tensor:
        """stacked_weight(), built once and again only when the weights changed (stacked_cache_key)."""
        key = self.stacked_cache_key()
        if self.stacked_cache is None or self.stacked_cache[0] != key:
            self.stacked_cache = None  # the old copy is freed before the new one is made
            self.stacked_cache = (key, self.stacked_weight())
        return self.stacked_cache[1]

    def forward(self, hidden_states, mask_positions=None):
        if mask_positions is not None:
            positions = check_mask_positions(mask_positions, hidden_states)  # (B, P)
            rows = partial(torch.take_along_dim, hidden_states, dim=1)  # (B, P, 1) -> (B, P, H)
            hidden_states = lookup(lambda p: rows(p[..., None]), positions, hidden_states.shape[1])  # (B, P, H)
        x = self.transform(hidden_states)  # (B, T or P, H)
        if self.projection is not None:
            return self.projection(x)  # (B, T or P, V)
        if (self.keep_stacked_weight and eager_inference()
                and not torch.overrides.has_torch_function_variadic(x)):  # (pipeline_float16: parameters only)
            return stacked_product(x, self.kept_stacked_weight(), self.bias)  # (B, T or P, V)
        e = self.embedding_size
        words_in, extra_in = x[..., :e], x[..., e:]  # (B, T or P, E), (B, T or P, H - E)
        if (eager_inference() and x[..., 0].numel() <= ONEDNN_HEAD_ROWS and extra_in.shape[-1]
                and onednn_float32(x)):
            return onednn_products(words_in, extra_in, self.decoder.weight, self.dense.weight, self.bias)
        if x.device.type == "cpu" and not torch.is_autocast_enabled("cpu") and not torch.overrides.has_torch_function_variadic(x):
            # (Autocast casts F.linear, not the blocks' in-place addmm_: under it the two products below.)
            return vocabulary_blocks(words_in, extra_in, self.decoder.weight, self.dense.weight, self.bias)
        # F.linear for both products: pipeline_float16's mode runs them in float16 (dense.weight.t() is a
        # view of the parameter, which the mode recognises and caches); on a GPU one product is fastest.
        words = F.linear(words_in, self.decoder.weight)  # (B, T or P, V): x[..., :E] @ E^T
        extra = F.linear(extra_in, self.dense.weight.t(), self.bias)  # (B, T or P, V): x[..., E:] @ dense.weight + bias
        return words + extra


def eager_inference() -> bool:
    """No autograd and no tracer: torch.compile / torch.export / vmap (inputs.tracing) nor torch.jit.trace, whose
    graph (and so torch.onnx.export's TorchScript one) cannot hold oneDNN's op nor the blocks' writes into a
    buffer. The head's inference paths (onednn_products, the kept copy, the buffered blocks) run only then."""
    return not torch.is_grad_enabled() and not tracing() and not torch.jit.is_tracing()


def onednn_float32(x: torch.Tensor) -> bool:
    """x may go through oneDNN's product (torch.ops.mkldnn._linear_pointwise, the kernel torch.compile's CPU
    freezing emits): float32 on the CPU, oneDNN built and enabled (torch.backends.mkldnn), no torch-function
    mode (pipeline_float16 sees F.linear only), no autocast (which casts F.linear only). It has no backward
    formula: callers also require eager_inference()."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled and not torch.is_autocast_enabled("cpu")
            and not torch.overrides.has_torch_function_variadic(x))


def stacked_product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x @ weight^T + bias, (..., H) @ (V, H) -> (..., V), for inference: through oneDNN where it may run
    (onednn_float32), which on this head's (H x V) shape reached 186-206 GFLOP/s here where torch's
    default CPU product (MKL) reached 91-109 and the vocabulary blocks 122-131 (2-core AMD EPYC, 128
    rows); elsewhere F.linear (cuBLAS on a GPU)."""
    if onednn_float32(x) and weight.dtype == torch.float32:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


# Up to this many rows (B*T or B*P) the CPU head runs onednn_products in inference, above them
# vocabulary_blocks. Head alone, 2-core AMD EPYC, interleaved (blocks / oneDNN ms): 1 row 6.95 / 3.62,
# 8 rows 12.3 / 5.4, 64 rows 25.7 / 14.5, 128 rows 32.7 / 24.9, 256 rows 52.8 / 43.5, 384 rows
# 92.5 / 98.8, 512 rows 102 / 104: few rows stream the 62 MB of weights, which oneDNN does in two calls
# and the blocks in 120; many rows are bound by the products, where the blocks keep each output in cache.
ONEDNN_HEAD_ROWS = 256


def onednn_products(words_in, extra_in, embeddings, dense_weight, bias) -> torch.Tensor:
    """words_in @ embeddings^T + bias + extra_in @ dense_weight, (..., E), (..., H-E) -> (..., V), as two
    oneDNN products, the first one's output added in the second's epilogue (a binary post-op): no third
    pass over the (..., V) logits. For inference (onednn_float32); H - E must not be 0."""
    words = torch.ops.mkldnn._linear_pointwise(words_in, embeddings, bias, "none", [], "")  # (..., V)
    return torch.ops.mkldnn._linear_pointwise.binary(extra_in, words, dense_weight.t(), None, "add")  # (..., V)


# Vocabulary columns per block of the CPU head product: a (512 x H) weight block is 1 MB at H = 512, the
# L2 cache of a core here, so each block's output is finished while it is in cache.
VOCAB_BLOCK = 512


def vocabulary_blocks(words_in, extra_in, embeddings, dense_weight, bias) -> torch.Tensor:
    """words_in @ embeddings^T + extra_in @ dense_weight + bias, (..., E), (..., H-E) -> (..., V), in blocks of
    VOCAB_BLOCK vocabulary columns.

    One (rows x H) @ (H x 30522) product streams a 62 MB weight and a rows x 30522 output past the caches:
    torch's CPU product reaches about 85-105 GFLOP/s on it here, the blocks about 130-145 (the second
    product accumulates into the block's output while it is cached). Same sums as the two full products.

    Under eager_inference() every block is computed in one reused (rows, VOCAB_BLOCK) buffer and
    copied to its columns of the output: 60 fresh 2 MB blocks at 1024 rows were freed after the
    concatenation and handed back to the system, to be faulted in again by the next call (30,000 page
    faults per forward at 8x128); the buffer stays in cache. 3-4% less per masked-LM forward at 4x128 and
    8x128, the same bits. Otherwise (autograd, a tracer) the blocks are concatenated, as autograd records them.
    """
    shape, vocab = words_in.shape[:-1], embeddings.shape[0]
    words_in, extra_in = words_in.flatten(0, -2), extra_in.flatten(0, -2)  # (rows, E), (rows, H-E); H-E may be 0
    columns = [slice(start, start + VOCAB_BLOCK) for start in range(0, vocab, VOCAB_BLOCK)]
    if not eager_inference():
        blocks = [torch.addmm(bias[cols], words_in, embeddings[cols].t()).addmm_(extra_in, dense_weight[:, cols])
                  for cols in columns]  # (rows, block) each
        return torch.cat(blocks, dim=-1).view(*shape, vocab)  # (..., V)
    out = words_in.new_empty(words_in.shape[0], vocab)  # (rows, V)
    buffer = words_in.new_empty(words_in.shape[0], VOCAB_BLOCK)  # (rows, block), reused
    for cols in columns:
        block = buffer[:, : min(VOCAB_BLOCK, vocab - cols.start)]  # the last block may be narrower
        torch.addmm(bias[cols], words_in, embeddings[cols].t(), out=block)
        out[:, cols].copy_(block.addmm_(extra_in, dense_weight[:, cols]))
    return out.view(*shape, vocab)  # (..., V)


class MobileBertOnlyMLMHead(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.predictions = MobileBertLMPredictionHead(config)

    def forward(self, sequence_output, mask_positions=None):
        return self.predictions(sequence_output, mask_positions)


class MobileBertPreTrainingHeads(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.predictions = MobileBertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, sequence_output, pooled_output, mask_positions=None):
        return self.predictions(sequence_output, mask_positions), self.seq_relationship(pooled_output)


class MobileBertOnlyNSPHead(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled_output):
        return self.seq_relationship(pooled_output)  # (B, 2): index 0 = "B follows A"


# ---------------------------------------------------------------------------------------- task models
# Each holds the backbone as ``self.mobilebert`` (so its keys carry the hub's "mobilebert." prefix) and a
# small head. Labels are checked by the losses (losses.py) before any kernel runs: a CUDA device-side
# assert cannot be recovered from.


class MobileBertForPreTraining(MobileBertPreTrainedModel):
    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.mobilebert = MobileBertModel(config)
        self.cls = MobileBertPreTrainingHeads(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, next_sentence_label=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, mask_positions=None):
        """mask_positions (B, P): prediction_logits at those positions only, (B, P, V); labels then (B, P)."""
        out = self.mobilebert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                              output_attentions, output_hidden_states, return_dict=True)
        prediction_logits, seq_logits = self.cls(out.last_hidden_state, out.pooler_output, mask_positions)
        check_finite(prediction_logits)
        loss = None
        if labels is not None and next_sentence_label is not None:
            loss = cross_entropy("labels", prediction_logits, labels) + cross_entropy(
                "next_sentence_label", seq_logits, next_sentence_label)
        result = MobileBertForPreTrainingOutput(loss, prediction_logits, seq_logits, out.hidden_states, out.attentions)
        return _finish(result, return_dict, self.config)


class MobileBertForMaskedLM(MobileBertPreTrainedModel):
    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.mobilebert = MobileBertModel(config, add_pooling_layer=False)
        self.cls = MobileBertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                mask_positions=None):
        """mask_positions (B, P): logits at those positions only, (B, P, V); labels then (B, P)."""
        out = self.mobilebert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                              output_attentions, output_hidden_states, return_dict=True)
        logits = self.cls(out.last_hidden_state, mask_positions)  # (B, T, V), or (B, P, V)
        check_finite(logits)
        loss = None
        if labels is not None:
            loss = cross_entropy("labels", logits, labels)
        return _finish(MaskedLMOutput(loss, logits, out.hidden_states, out.attentions), return_dict, self.config)


class MobileBertForNextSentencePrediction(MobileBertPreTrainedModel):
    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.mobilebert = MobileBertModel(config)
        self.cls = MobileBertOnlyNSPHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                next_sentence_label=None):
        if labels is None:
            labels = next_sentence_label  # the older name of the same labels
        out = self.mobilebert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                              output_attentions, output_hidden_states, return_dict=True)
        logits = self.cls(out.pooler_output)  # (B, 2)
        check_finite(logits)
        loss = None
        if labels is not None:
            loss = cross_entropy("labels", logits, labels)
        return _finish(NextSentencePredictorOutput(loss, logits, out.hidden_states, out.attentions), return_dict, self.config)


class MobileBertForSequenceClassification(MobileBertPreTrainedModel):
    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mobilebert = MobileBertModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.mobilebert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                              output_attentions, output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, num_labels)
        check_finite(logits)
        loss = None if labels is None else sequence_classification_loss(logits, labels, self.config.problem_type)
        return _finish(SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions), return_dict, self.config)


class MobileBertForMultipleChoice(MobileBertPreTrainedModel):
    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.mobilebert = MobileBertModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        x = tensors(self.device, self.dtype, input_ids=input_ids, attention_mask=attention_mask,
                    token_type_ids=token_type_ids, position_ids=position_ids, inputs_embeds=inputs_embeds)
        num_choices, flat = flatten_choices(**x)  # (B, C, T) -> (B*C, T)
        out = self.mobilebert(**flat, head_mask=head_mask, output_attentions=output_attentions,
                              output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(out.pooler_output)).view(-1, num_choices)  # (B, C)
        check_finite(logits)
        loss = None
        if labels is not None:
            loss = cross_entropy("labels", logits, labels)
        return _finish(MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions), return_dict, self.config)


class MobileBertForTokenClassification(MobileBertPreTrainedModel):
    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.mobilebert = MobileBertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.mobilebert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                              output_attentions, output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, num_labels)
        check_finite(logits)
        loss = None
        if labels is not None:
            loss = cross_entropy("labels", logits, labels)
        return _finish(TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions), return_dict, self.config)


class MobileBertForQuestionAnswering(MobileBertPreTrainedModel):
    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.mobilebert = MobileBertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        out = self.mobilebert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                              output_attentions, output_hidden_states, return_dict=True)
        logits = self.qa_outputs(out.last_hidden_state)  # (B, T, 2)
        check_finite(logits)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))  # (B, T) each
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        result = QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
        return _finish(result, return_dict, self.config)
