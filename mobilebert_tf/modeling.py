"""MobileBERT building blocks and the backbone (TFMobileBertModel) as Keras layers on tf-keras.

Mirrors mobilebert_pt/modeling.py class for class and attribute for attribute. Layer names are the
components of the hub's tf_model.h5 weight names, e.g.
"mobilebert/encoder/layer_._0/ffn.0/output/LayerNorm/weight:0": every layer builds its sublayers
explicitly (from the config, not from input shapes) inside ``tf.name_scope(sublayer.name)``, because
tf-keras names a variable by the name-scope path it is created under. Shapes in comments use
B = batch, T = sequence, H = hidden_size, E = embedding_size, I = true_hidden_size, N = heads,
D = head_dim.

Mixed precision: layers compute in their compute dtype (float16 / bfloat16 under a mixed policy);
the attention softmax and all losses run in float32 (float64 stays float64: see wide_dtype).
"""

from __future__ import annotations

import math
import re

import numpy as np
import tensorflow as tf
import tf_keras as keras

from mobilebert_common import checks
from mobilebert_common.config import MobileBertConfig
from mobilebert_common.outputs import BaseModelOutputWithPooling
from mobilebert_tf.pretrained import TFMobileBertPreTrainedModel, weights_by_name  # noqa: F401 (re-exported)


def _gelu_fast(x):
    return 0.5 * x * (1.0 + tf.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


# config.hidden_act -> function; "gelu" is the exact erf form, the others the tanh approximation.
ACT2FN = {
    "relu": tf.nn.relu,
    "gelu": lambda x: tf.nn.gelu(x, approximate=False),
    "gelu_new": lambda x: tf.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: tf.nn.gelu(x, approximate=True),
    "gelu_fast": _gelu_fast,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
    "tanh": tf.tanh,
}


def wide_dtype(dtype) -> tf.DType:
    """The dtype of softmax and losses: float32 for 16-bit compute dtypes (mixed precision), else the dtype itself."""
    dtype = tf.as_dtype(dtype)
    return tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype


def initializer(config: MobileBertConfig):
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def build_in_scope(layer: keras.layers.Layer, input_shape) -> None:
    """Build ``layer`` now under its own name, so its variables get the hub's name path."""
    with tf.name_scope(layer.name):
        layer.build(input_shape)


def dense(config: MobileBertConfig, units: int, name: str) -> keras.layers.Dense:
    return keras.layers.Dense(units, kernel_initializer=initializer(config), name=name)


class TFNoNorm(keras.layers.Layer):
    """The paper's replacement for LayerNorm: an element-wise affine map, no statistics (faster on phones)."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def build(self, input_shape=None):
        # "weight"/"bias" (not gamma/beta): the hub's names for NoNorm.
        self.bias = self.add_weight(name="bias", shape=[self.size], initializer="zeros")
        self.weight = self.add_weight(name="weight", shape=[self.size], initializer="ones")
        super().build(input_shape)

    def call(self, x):
        return x * tf.cast(self.weight, x.dtype) + tf.cast(self.bias, x.dtype)


def make_norm(config: MobileBertConfig, size: int, name: str = "LayerNorm") -> keras.layers.Layer:
    """TFNoNorm or a real LayerNorm per config.normalization_type; every LayerNorm uses config.layer_norm_eps."""
    if config.normalization_type == "no_norm":
        return TFNoNorm(size, name=name)
    return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name=name)


class TFMobileBertEmbeddings(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.trigram_input = config.trigram_input
        # Built always, as the hub's checkpoints hold it; used only when trigram_input or E != H
        # (with E == H and no trigram the words go in as they are).
        self.transforms_input = config.trigram_input or config.embedding_size != config.hidden_size
        self.embedding_transformation = dense(config, config.hidden_size, "embedding_transformation")
        self.LayerNorm = make_norm(config, config.hidden_size)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob, name="dropout")

    def build(self, input_shape=None):
        c = self.config
        # The three tables are plain variables named like the hub's (word_embeddings/weight,
        # token_type_embeddings/embeddings, position_embeddings/embeddings).
        with tf.name_scope("word_embeddings"):
            self.weight = self.add_weight(name="weight", shape=[c.vocab_size, c.embedding_size], initializer=initializer(c))
        with tf.name_scope("token_type_embeddings"):
            self.token_type_embeddings = self.add_weight(
                name="embeddings", shape=[c.type_vocab_size, c.hidden_size], initializer=initializer(c)
            )
        with tf.name_scope("position_embeddings"):
            self.position_embeddings = self.add_weight(
                name="embeddings", shape=[c.max_position_embeddings, c.hidden_size], initializer=initializer(c)
            )
        width = c.embedding_size * (3 if c.trigram_input else 1)
        build_in_scope(self.embedding_transformation, [None, None, width])
        build_in_scope(self.LayerNorm, [None, None, c.hidden_size])
        super().build(input_shape)

    @property
    def word_embeddings(self) -> tf.Variable:
        return self.weight  # (V, E); also the masked-LM decoder (tied)

    def call(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None, training=False):
        dtype = self.compute_dtype
        if inputs_embeds is None:
            inputs_embeds = tf.gather(self.weight, input_ids)  # (B, T, E)
        x = tf.cast(inputs_embeds, dtype)
        if self.trigram_input:
            # The paper's kernel-3 convolution over tokens: [next token, this token, previous token],
            # zeros past either end -> (B, T, 3E).
            following = tf.pad(x[:, 1:], [[0, 0], [0, 1], [0, 0]])
            preceding = tf.pad(x[:, :-1], [[0, 0], [1, 0], [0, 0]])
            x = tf.concat([following, x, preceding], axis=2)
        if self.transforms_input:
            x = self.embedding_transformation(x)  # (B, T, H)
        shape = tf.shape(x)
        if position_ids is None:
            position_ids = tf.range(shape[1])[None, :]  # (1, T): padding is on the right
        if token_type_ids is None:
            token_type_ids = tf.zeros(shape[:2], dtype=tf.int32)
        x = (
            x
            + tf.cast(tf.gather(self.position_embeddings, position_ids), dtype)
            + tf.cast(tf.gather(self.token_type_embeddings, token_type_ids), dtype)
        )
        return self.dropout(self.LayerNorm(x), training=training)


class TFMobileBertSelfAttention(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        inner = config.true_hidden_size
        # Query/key read the bottlenecked input (width I) except with a bottleneck but neither a shared
        # q/k bottleneck nor bottleneck attention: then they read the layer's input h (width H). The
        # reference implementation sizes them I there and crashes; we size them to what they read.
        reads_inner = config.use_bottleneck_attention or config.key_query_shared_bottleneck or not config.use_bottleneck
        self.qk_width = inner if reads_inner else config.hidden_size
        self.value_width = inner if config.use_bottleneck_attention else config.hidden_size
        self.query = dense(config, inner, "query")
        self.key = dense(config, inner, "key")
        self.value = dense(config, inner, "value")
        self.dropout = keras.layers.Dropout(config.attention_probs_dropout_prob, name="dropout")

    def build(self, input_shape=None):
        build_in_scope(self.query, [None, None, self.qk_width])
        build_in_scope(self.key, [None, None, self.qk_width])
        build_in_scope(self.value, [None, None, self.value_width])
        super().build(input_shape)

    def call(self, query_tensor, key_tensor, value_tensor, attention_mask=None, head_mask=None, training=False):
        """Returns (context (B, T, I), probabilities (B, N, T, T))."""
        batch, seq = tf.shape(query_tensor)[0], tf.shape(query_tensor)[1]

        def split(x):  # (B, T, I) -> (B, N, T, D)
            return tf.transpose(tf.reshape(x, [batch, -1, self.num_heads, self.head_dim]), [0, 2, 1, 3])

        q, k, v = split(self.query(query_tensor)), split(self.key(key_tensor)), split(self.value(value_tensor))
        scores = tf.matmul(q, k, transpose_b=True) / tf.cast(math.sqrt(self.head_dim), q.dtype)  # (B, N, T, T)
        scores = tf.cast(scores, wide_dtype(q.dtype))  # softmax in float32 under mixed precision
        if attention_mask is not None:
            scores = scores + tf.cast(attention_mask, scores.dtype)  # (B, 1, 1, T) additive: 0 keep, dtype-min drop
        probs = tf.cast(tf.nn.softmax(scores, axis=-1), v.dtype)
        probs = self.dropout(probs, training=training)
        if head_mask is not None:
            probs = probs * tf.cast(head_mask, probs.dtype)  # (1, N, 1, 1)
        context = tf.matmul(probs, v)  # (B, N, T, D)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, seq, self.num_heads * self.head_dim])
        return context, probs


class TFMobileBertSelfOutput(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = dense(config, config.true_hidden_size, "dense")
        self.LayerNorm = make_norm(config, config.true_hidden_size)
        # With a bottleneck the dropout happens once, in TFOutputBottleneck.
        self.dropout = None if config.use_bottleneck else keras.layers.Dropout(config.hidden_dropout_prob, name="dropout")

    def build(self, input_shape=None):
        inner = self.config.true_hidden_size
        build_in_scope(self.dense, [None, None, inner])
        build_in_scope(self.LayerNorm, [None, None, inner])
        super().build(input_shape)

    def call(self, hidden_states, residual, training=False):
        x = self.dense(hidden_states)
        if self.dropout is not None:
            x = self.dropout(x, training=training)
        return self.LayerNorm(x + residual)


class TFMobileBertAttention(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.self = TFMobileBertSelfAttention(config, name="self")
        self.output_layer = TFMobileBertSelfOutput(config, name="output")  # PT: attention.output

    def build(self, input_shape=None):
        build_in_scope(self.self, None)
        build_in_scope(self.output_layer, None)
        super().build(input_shape)

    def call(self, query, key, value, layer_input, attention_mask=None, head_mask=None, training=False):
        context, probs = self.self(query, key, value, attention_mask, head_mask, training=training)
        # The residual around attention is the bottlenecked input.
        return self.output_layer(context, layer_input, training=training), probs


class TFMobileBertIntermediate(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = dense(config, config.intermediate_size, "dense")
        self.act = ACT2FN[config.hidden_act]

    def build(self, input_shape=None):
        build_in_scope(self.dense, [None, None, self.config.true_hidden_size])
        super().build(input_shape)

    def call(self, x):
        return self.act(self.dense(x))  # (B, T, intermediate)


class TFOutputBottleneck(keras.layers.Layer):
    """Back from the bottleneck to the residual stream: dense I -> H, residual = the layer's input."""

    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = dense(config, config.hidden_size, "dense")
        self.LayerNorm = make_norm(config, config.hidden_size)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob, name="dropout")

    def build(self, input_shape=None):
        build_in_scope(self.dense, [None, None, self.config.true_hidden_size])
        build_in_scope(self.LayerNorm, [None, None, self.config.hidden_size])
        super().build(input_shape)

    def call(self, hidden_states, residual, training=False):
        return self.LayerNorm(self.dropout(self.dense(hidden_states), training=training) + residual)  # (B, T, H)


class TFMobileBertOutput(keras.layers.Layer):
    """The last FFN's output; with a bottleneck it also leaves the bottleneck (TFOutputBottleneck)."""

    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.use_bottleneck = config.use_bottleneck
        self.dense = dense(config, config.true_hidden_size, "dense")
        self.LayerNorm = make_norm(config, config.true_hidden_size)
        if config.use_bottleneck:
            self.bottleneck = TFOutputBottleneck(config, name="bottleneck")
        else:
            self.dropout = keras.layers.Dropout(config.hidden_dropout_prob, name="dropout")

    def build(self, input_shape=None):
        build_in_scope(self.dense, [None, None, self.config.intermediate_size])
        build_in_scope(self.LayerNorm, [None, None, self.config.true_hidden_size])
        if self.use_bottleneck:
            build_in_scope(self.bottleneck, None)
        super().build(input_shape)

    def call(self, intermediate_states, residual, layer_input_hidden, training=False):
        x = self.dense(intermediate_states)  # (B, T, I)
        if not self.use_bottleneck:
            return self.LayerNorm(self.dropout(x, training=training) + residual)
        x = self.LayerNorm(x + residual)
        return self.bottleneck(x, layer_input_hidden, training=training)  # (B, T, H)


class TFBottleneckLayer(keras.layers.Layer):
    """Dense H -> intra_bottleneck_size then norm: the way into the bottleneck."""

    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = dense(config, config.intra_bottleneck_size, "dense")
        self.LayerNorm = make_norm(config, config.intra_bottleneck_size)

    def build(self, input_shape=None):
        build_in_scope(self.dense, [None, None, self.config.hidden_size])
        build_in_scope(self.LayerNorm, [None, None, self.config.intra_bottleneck_size])
        super().build(input_shape)

    def call(self, x):
        return self.LayerNorm(self.dense(x))


class TFBottleneck(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.use_bottleneck_attention = config.use_bottleneck_attention
        self.key_query_shared_bottleneck = config.key_query_shared_bottleneck
        self.input_layer = TFBottleneckLayer(config, name="input")  # PT: bottleneck.input
        self.attention = None
        if config.key_query_shared_bottleneck:
            # Unused when use_bottleneck_attention (query/key then read input_layer), but the hub's
            # checkpoints hold it whenever key_query_shared_bottleneck: built for compatibility.
            self.attention = TFBottleneckLayer(config, name="attention")

    def build(self, input_shape=None):
        build_in_scope(self.input_layer, None)
        if self.attention is not None:
            build_in_scope(self.attention, None)
        super().build(input_shape)

    def call(self, h):
        """(query input, key input, value input, layer input) for the attention block."""
        b = self.input_layer(h)  # (B, T, I)
        if self.use_bottleneck_attention:
            return b, b, b, b
        if self.key_query_shared_bottleneck:
            s = self.attention(h)  # (B, T, I): one extra bottleneck shared by query and key
            return s, s, h, b
        return h, h, h, b


class TFFFNOutput(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = dense(config, config.true_hidden_size, "dense")
        self.LayerNorm = make_norm(config, config.true_hidden_size)

    def build(self, input_shape=None):
        build_in_scope(self.dense, [None, None, self.config.intermediate_size])
        build_in_scope(self.LayerNorm, [None, None, self.config.true_hidden_size])
        super().build(input_shape)

    def call(self, hidden_states, residual):
        return self.LayerNorm(self.dense(hidden_states) + residual)


class TFFFNLayer(keras.layers.Layer):
    """One of the stacked feed-forward networks (all but the last, which is intermediate + output)."""

    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.intermediate = TFMobileBertIntermediate(config, name="intermediate")
        self.output_layer = TFFFNOutput(config, name="output")  # PT: ffn[j].output

    def build(self, input_shape=None):
        build_in_scope(self.intermediate, None)
        build_in_scope(self.output_layer, None)
        super().build(input_shape)

    def call(self, x):
        return self.output_layer(self.intermediate(x), x)


class TFMobileBertLayer(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.use_bottleneck = config.use_bottleneck
        self.attention = TFMobileBertAttention(config, name="attention")
        self.intermediate = TFMobileBertIntermediate(config, name="intermediate")
        self.output_layer = TFMobileBertOutput(config, name="output")  # PT: layer.output
        self.bottleneck = TFBottleneck(config, name="bottleneck") if config.use_bottleneck else None
        self.ffn = [TFFFNLayer(config, name=f"ffn.{j}") for j in range(config.num_feedforward_networks - 1)]

    def build(self, input_shape=None):
        for layer in [self.attention, self.intermediate, self.output_layer, self.bottleneck, *self.ffn]:
            if layer is not None:
                build_in_scope(layer, None)
        super().build(input_shape)

    def call(self, hidden_states, attention_mask=None, head_mask=None, training=False):
        if self.use_bottleneck:
            query, key, value, layer_input = self.bottleneck(hidden_states)
        else:
            query = key = value = layer_input = hidden_states
        x, probs = self.attention(query, key, value, layer_input, attention_mask, head_mask, training=training)
        for ffn in self.ffn:
            x = ffn(x)  # (B, T, I)
        x = self.output_layer(self.intermediate(x), x, hidden_states, training=training)  # (B, T, H)
        return x, probs


class TFMobileBertEncoder(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.layer = [TFMobileBertLayer(config, name=f"layer_._{i}") for i in range(config.num_hidden_layers)]

    def build(self, input_shape=None):
        for layer in self.layer:
            build_in_scope(layer, None)
        super().build(input_shape)

    def call(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False,
             output_hidden_states=False, training=False):
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for i, layer in enumerate(self.layer):
            layer_head_mask = None if head_mask is None else head_mask[i]
            hidden_states, probs = layer(hidden_states, attention_mask, layer_head_mask, training=training)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden_states,)
            if output_attentions:
                all_attentions = all_attentions + (probs,)
        return hidden_states, all_hidden, all_attentions


class TFMobileBertPooler(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.do_activate = config.classifier_activation
        if self.do_activate:
            self.dense = dense(config, config.hidden_size, "dense")

    def build(self, input_shape=None):
        if self.do_activate:
            build_in_scope(self.dense, [None, self.config.hidden_size])
        super().build(input_shape)

    def call(self, hidden_states):
        first = hidden_states[:, 0]  # (B, H): the [CLS] token
        return tf.tanh(self.dense(first)) if self.do_activate else first


# ---------------------------------------------------------------------------------------- inputs

FLAGS = ("output_attentions", "output_hidden_states", "return_dict")
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask", "inputs_embeds") + FLAGS


def unpack_inputs(input_ids, kwargs: dict, allowed: tuple) -> dict:
    """The call's arguments as one dict: a dict first argument (as model.fit passes it) is spread out."""
    if isinstance(input_ids, dict):
        given = dict(input_ids)
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            raise ValueError(f"unexpected input names {unknown}; allowed: {', '.join(allowed)}")
        clash = sorted(k for k in given if kwargs.get(k) is not None)
        if clash:
            raise ValueError(f"{clash} given both in the input dict and as arguments; give each once")
        kwargs = {**kwargs, **{k: v for k, v in given.items() if v is not None}}
    else:
        kwargs = {**kwargs, "input_ids": input_ids}
    # Tensor-valued inputs may come as numpy arrays or lists; flags stay Python values.
    return {k: (tf.convert_to_tensor(v) if isinstance(v, (np.ndarray, list, tuple)) and k not in FLAGS else v)
            for k, v in kwargs.items()}


def _require_integer(name: str, t: tf.Tensor) -> None:
    if not t.dtype.is_integer:
        raise ValueError(f"{name} must hold integer ids (int32 or int64), got dtype {t.dtype.name}")


def check_ids(name: str, ids: tf.Tensor, limit: int, field: str) -> tf.Tensor:
    """Ids must be in [0, limit): TF's gather returns zeros for out-of-range ids on GPU instead of failing.

    Eagerly a ValueError (the same wording as PyTorch); in a graph (tf.function, SavedModel) a
    tf.debugging assertion with a readable message. Returns ``ids`` (with the assertion attached).
    """
    _require_integer(name, ids)
    if ids.dtype not in (tf.int32, tf.int64):  # gather takes int32/int64 indices; uint8, int16 ... are widened
        ids = tf.cast(ids, tf.int64)
    if tf.executing_eagerly():
        if tf.size(ids) > 0:
            checks.check_id_range(name, int(tf.reduce_min(ids)), int(tf.reduce_max(ids)), limit, field)
        return ids
    message = checks.range_message(name, limit, field)
    asserts = [
        tf.debugging.assert_non_negative(ids, message=message),
        tf.debugging.assert_less(ids, tf.cast(limit, ids.dtype), message=message),
    ]
    with tf.control_dependencies(asserts):
        return tf.identity(ids)


def _same_shape(name: str, t: tf.Tensor, reference: tf.Tensor, of: str = "input_ids"):
    """Static shapes that differ: ValueError now; unknown dims: an assertion at run time."""
    if t.shape.rank is not None and reference.shape.rank is not None and t.shape.rank != reference.shape.rank:
        checks.check_same_shape(name, t.shape.as_list(), reference.shape.as_list(), of=of)
    if t.shape.is_fully_defined() and reference.shape.is_fully_defined():
        checks.check_same_shape(name, t.shape.as_list(), reference.shape.as_list(), of=of)
        return t
    if tf.executing_eagerly():
        return t
    message = f"{name} must have the same shape as {of}"
    with tf.control_dependencies([tf.debugging.assert_equal(tf.shape(t), tf.shape(reference), message=message)]):
        return tf.identity(t)


def validate_inputs(config: MobileBertConfig, inputs: dict) -> dict:
    """Raise ValueError for inputs that would index past a table or misalign (graph mode: assertions).
    Returns the inputs with checks attached."""
    input_ids, inputs_embeds = inputs.get("input_ids"), inputs.get("inputs_embeds")
    checks.check_inputs_choice(input_ids is not None, inputs_embeds is not None)
    out = dict(inputs)
    if input_ids is not None:
        checks.check_rank("input_ids", input_ids.shape, 2, "(batch, seq)")
        reference = input_ids
    else:
        checks.check_rank("inputs_embeds", inputs_embeds.shape, 3, "(batch, seq, embedding_size)")
        if inputs_embeds.shape[-1] is not None:
            checks.check_embeds_width(inputs_embeds.shape[-1], config)
        if not inputs_embeds.dtype.is_floating:
            raise ValueError(f"inputs_embeds must be floating point, got dtype {inputs_embeds.dtype.name}")
        reference = inputs_embeds[:, :, 0]
    seq = reference.shape[1]
    if seq is not None:
        checks.check_sequence_length(seq, config)
    elif not tf.executing_eagerly():
        limit = config.max_position_embeddings
        message = (f"input has more than {limit} tokens; this model takes at most {limit} "
                   "(config.max_position_embeddings). Truncate the input (tokenizer(..., truncation=True))")
        check = tf.debugging.assert_less_equal(tf.shape(reference)[1], config.max_position_embeddings, message=message)
        with tf.control_dependencies([check]):
            reference = tf.identity(reference)
            if input_ids is not None:
                out["input_ids"] = input_ids = tf.identity(input_ids)
            else:
                out["inputs_embeds"] = tf.identity(inputs_embeds)
    if input_ids is not None:
        out["input_ids"] = check_ids("input_ids", input_ids, config.vocab_size, "vocab_size")
    mask = inputs.get("attention_mask")
    if mask is not None:
        out["attention_mask"] = _same_shape("attention_mask", mask, reference)
    token_type_ids = inputs.get("token_type_ids")
    if token_type_ids is not None:
        token_type_ids = _same_shape("token_type_ids", token_type_ids, reference)
        out["token_type_ids"] = check_ids("token_type_ids", token_type_ids, config.type_vocab_size, "type_vocab_size")
    position_ids = inputs.get("position_ids")
    if position_ids is not None:
        static = tuple(position_ids.shape.as_list()) if position_ids.shape.rank is not None else None
        ref = tuple(reference.shape.as_list())
        if static is not None and static not in (ref, (1, ref[1]), (ref[1],)) and None not in static + ref:
            checks.check_same_shape("position_ids", static, ref)
        out["position_ids"] = check_ids("position_ids", position_ids, config.max_position_embeddings,
                                        "max_position_embeddings")
    head_mask = inputs.get("head_mask")
    if head_mask is not None:
        checks.check_head_mask(tuple(head_mask.shape.as_list()), config)
    return out


def check_finite(tensor: tf.Tensor) -> tf.Tensor:
    """float16 tops out at 65504 and released MobileBERT activations reach 1e7-1e8: never return inf/NaN silently."""
    if tensor.dtype != tf.float16:
        return tensor
    if tf.executing_eagerly():
        if not bool(tf.reduce_all(tf.math.is_finite(tensor))):
            raise ValueError(checks.FLOAT16_OVERFLOW)
        return tensor
    return tf.debugging.assert_all_finite(tensor, checks.FLOAT16_OVERFLOW)


# ---------------------------------------------------------------------------------------- backbone


class TFMobileBertMainLayer(keras.layers.Layer):
    """embeddings -> encoder -> (optional) pooler; named "mobilebert" in every model (the hub's h5 group)."""

    def __init__(self, config: MobileBertConfig, add_pooling_layer: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.embeddings = TFMobileBertEmbeddings(config, name="embeddings")
        self.encoder = TFMobileBertEncoder(config, name="encoder")
        self.pooler = TFMobileBertPooler(config, name="pooler") if add_pooling_layer else None

    def build(self, input_shape=None):
        build_in_scope(self.embeddings, None)
        build_in_scope(self.encoder, None)
        if self.pooler is not None:
            build_in_scope(self.pooler, None)
        super().build(input_shape)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        config = self.config
        given = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                     position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds)
        given = {k: (None if v is None else tf.convert_to_tensor(v)) for k, v in given.items()}
        v = validate_inputs(config, given)
        reference = v["input_ids"] if v["input_ids"] is not None else v["inputs_embeds"][:, :, 0]
        shape = tf.shape(reference)  # (B, T)
        attention_mask = v["attention_mask"]
        if attention_mask is None:
            attention_mask = tf.ones(shape, dtype=tf.int32)
        # 1 = attend, 0 = padding -> additive (B, 1, 1, T) in the softmax's dtype: 0 or its most negative value.
        wide = wide_dtype(self.compute_dtype)
        additive_mask = (1.0 - tf.cast(attention_mask, wide))[:, None, None, :] * wide.min
        head_mask = v["head_mask"]
        if head_mask is not None:
            head_mask = tf.cast(head_mask, self.compute_dtype)
            if head_mask.shape.rank == 1:
                head_mask = tf.broadcast_to(head_mask[None, :], [config.num_hidden_layers, config.num_attention_heads])
            head_mask = head_mask[:, None, :, None, None]  # (L, 1, N, 1, 1): per layer, broadcast over B, T, T
        embeddings = self.embeddings(v["input_ids"], v["token_type_ids"], v["position_ids"], v["inputs_embeds"],
                                     training=training)
        last, hidden_states, attentions = self.encoder(
            embeddings, additive_mask, head_mask, bool(output_attentions), bool(output_hidden_states), training=training
        )
        last = check_finite(last)
        pooled = self.pooler(last) if self.pooler is not None else None
        out = BaseModelOutputWithPooling(
            last_hidden_state=last, pooler_output=pooled, hidden_states=hidden_states, attentions=attentions
        )
        return out if return_dict is None or return_dict else out.to_tuple()


def model_name(architecture: str) -> str:
    """The Keras model name, the first component of the hub's h5 names: "MobileBertForMaskedLM" ->
    "tf_mobile_bert_for_masked_lm" (Keras' snake_case of the TF class name, as transformers gets it)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", "TF" + architecture).lower()


class TFMobileBertBase(TFMobileBertPreTrainedModel):
    """What the nine Keras models share: the hub's model name, the "mobilebert" backbone, an explicit
    build that names every variable as the hub does, and input unpacking (dict / numpy / keywords)."""

    architecture_name = "MobileBertModel"
    add_pooling_layer = True
    label_names: tuple = ()

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        kwargs.setdefault("name", model_name(self.architecture_name))
        super().__init__(config, *inputs, **kwargs)
        self.mobilebert = TFMobileBertMainLayer(config, add_pooling_layer=self.add_pooling_layer, name="mobilebert")

    def __call__(self, *args, **kwargs):
        # Keras wants call()'s first argument (input_ids) present; inputs_embeds alone must work too.
        if not args and "input_ids" not in kwargs:
            kwargs["input_ids"] = None
        return super().__call__(*args, **kwargs)

    def head_layers(self) -> list:
        """[(layer, input shape)] of the head, built after the backbone."""
        return []

    def build(self, input_shape=None):
        # Called by the first __call__ inside the model's name scope: every variable gets its hub name.
        build_in_scope(self.mobilebert, None)
        for layer, shape in self.head_layers():
            build_in_scope(layer, shape)
        self.built = True

    def _inputs(self, input_ids, kwargs: dict):
        """(model inputs, {label name: tensor or None})."""
        args = unpack_inputs(input_ids, kwargs, INPUT_NAMES + self.label_names)
        labels = {k: (None if args.get(k) is None else tf.convert_to_tensor(args[k])) for k in self.label_names}
        return {k: v for k, v in args.items() if k not in self.label_names}, labels

    def _backbone(self, args: dict, training):
        return self.mobilebert(**{k: v for k, v in args.items() if k != "return_dict"}, return_dict=True,
                               training=training)


class TFMobileBertModel(TFMobileBertBase):
    """The backbone as a Keras model: outputs BaseModelOutputWithPooling."""

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        args, _ = self._inputs(input_ids, dict(
            attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict))
        out = self._backbone(args, training)
        return out if args.get("return_dict") is None or args["return_dict"] else out.to_tuple()
