"""MobileBERT's building blocks as Keras layers on tf-keras: embeddings, attention, bottlenecks, FFNs.

Mirrors mobilebert_pt/modeling.py class for class and attribute for attribute (the encoder stack and
the backbone are in backbone.py, the input checks in inputs.py). Layer names are the components of
the hub's tf_model.h5 weight names ("mobilebert/encoder/layer_._0/ffn.0/output/LayerNorm/weight:0"):
tf-keras names a variable by the name scopes it is created in, so every layer builds its sublayers
explicitly (from the config, not from input shapes) inside ``tf.name_scope(sublayer.name)``.
Shapes: B = batch, T = sequence, H = hidden_size, E = embedding_size, I = true_hidden_size, N = heads.

Keras forces two names: a layer cannot have an attribute ``output`` or ``input`` (Keras' own
properties), so PyTorch's ``attention.output``, ``layer.output``, ``ffn[j].output`` and
``bottleneck.input`` are ``output_layer`` / ``input_layer`` here; their Keras names (and so the
weight names) are still "output" / "input".

Mixed precision: layers compute in their compute dtype (float16 / bfloat16 under a mixed policy);
the attention softmax and all losses run in float32 (float64 stays float64: see wide_dtype).
"""

from __future__ import annotations

import math

import tensorflow as tf
import tf_keras as keras

from mobilebert_common import checks
from mobilebert_common.config import MobileBertConfig
from mobilebert_tf.inputs import in_xla_context


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


def check_finite(tensor: tf.Tensor) -> tf.Tensor:
    """float16 tops out at 65504 and released MobileBERT activations reach 1e7-1e8: never return inf/NaN silently."""
    if tensor.dtype != tf.float16:
        return tensor
    if tf.executing_eagerly():
        if not bool(tf.reduce_all(tf.math.is_finite(tensor))):
            raise ValueError(checks.FLOAT16_OVERFLOW)
        return tensor
    return tf.debugging.assert_all_finite(tensor, checks.FLOAT16_OVERFLOW)


def initializer(config: MobileBertConfig):
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def build_in_scope(layer: keras.layers.Layer, input_shape) -> None:
    """Build ``layer`` now under its own name, so its variables get the hub's name path (a layer with
    ``names_its_own_scopes``, as the pre-training heads, opens the hub's scopes itself)."""
    if getattr(layer, "names_its_own_scopes", False):
        layer.build(input_shape)
        return
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
        self.padding_idx = config.pad_token_id  # PyTorch's nn.Embedding(padding_idx=...): no gradient for this row
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
        guard = in_xla_context()  # XLA clamps out-of-range ids silently: make them NaN instead (inputs.py)
        if inputs_embeds is None:
            words = lookup(self.weight, input_ids, guard)  # (B, T, E)
            # As PyTorch's nn.Embedding(padding_idx=pad_token_id): the pad row gets no gradient, so
            # fine-tuning moves the same weights in both frameworks.
            is_pad = (input_ids == tf.cast(self.padding_idx, input_ids.dtype))[..., None]
            inputs_embeds = tf.where(is_pad, tf.stop_gradient(words), words)
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
            + tf.cast(lookup(self.position_embeddings, position_ids, guard), dtype)
            + tf.cast(lookup(self.token_type_embeddings, token_type_ids, guard), dtype)
        )
        return self.dropout(self.LayerNorm(x), training=training)


def lookup(table: tf.Variable, ids: tf.Tensor, nan_if_out_of_range: bool = False) -> tf.Tensor:
    """table (V, D) rows at ids (...) -> (..., D). With nan_if_out_of_range (inside XLA, where the id checks
    cannot run) an out-of-range id gives a NaN row instead of the clamped edge row XLA would return."""
    rows = tf.gather(table, ids)
    if not nan_if_out_of_range:
        return rows
    valid = (ids >= 0) & (ids < tf.cast(tf.shape(table)[0], ids.dtype))
    return tf.where(valid[..., None], rows, tf.constant(float("nan"), rows.dtype))


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
        self.use_bottleneck = config.use_bottleneck
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


def __getattr__(name):
    # Older imports: `from mobilebert_tf.modeling import weights_by_name` (now in pretrained.py).
    if name == "weights_by_name":
        from mobilebert_tf.pretrained import weights_by_name

        return weights_by_name
    raise AttributeError(f"module 'mobilebert_tf.modeling' has no attribute {name!r}")
