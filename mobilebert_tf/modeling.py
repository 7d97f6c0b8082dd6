"""MobileBERT in Keras (tf-keras), top to bottom: norms, embeddings, attention, bottleneck, FFNs, layer,
encoder, pooler, the backbone, the heads and the seven task models.

Mirrors mobilebert_pt/modeling.py class for class (a "TF" prefix) and attribute for attribute. Layer
names are the components of the hub's tf_model.h5 weight names
("mobilebert/encoder/layer_._0/ffn.0/output/LayerNorm/weight:0"): tf-keras names a variable by the
name scopes it is created in, so every layer builds its sublayers explicitly (from the config, not
from input shapes) inside ``tf.name_scope(sublayer.name)``. The hub's h5 puts the masked-LM head under
"predictions___cls/predictions/..." and the next-sentence head under
"seq_relationship___cls/seq_relationship/...": the heads are built in those scopes.

Keras forces a few names: a layer cannot have an attribute ``output`` or ``input`` (Keras' own
properties), so PyTorch's ``attention.output``, ``layer.output``, ``ffn[j].output`` and
``bottleneck.input`` are ``output_layer`` / ``input_layer`` here (their Keras names, and so the weight
names, are still "output" / "input"); a head's backbone is the Keras layer TFMobileBertMainLayer (a
Keras model inside a model would nest the h5 names).

Elsewhere: input checks and check_finite in inputs.py, losses and their label checks in losses.py,
generic loading and saving in pretrained.py. Widths and derived facts come from the config.
Shapes: B = batch, T = sequence, P = masked positions, H = hidden_size, E = embedding_size,
I = true_hidden_size, N = heads, D = head_dim, L = layers, V = vocab_size.
Mixed precision: layers compute in their compute dtype (float16 / bfloat16 under a mixed policy);
the attention softmax and all losses run in float32 (float64 stays float64: see inputs.wide_dtype).

Paper: MobileBERT: a Compact Task-Agnostic BERT for Resource-Limited Devices (Sun et al., 2020).
"""

from __future__ import annotations

import math
from typing import Dict

import numpy as np
import tensorflow as tf
import tf_keras as keras

from mobilebert_common import resizing
from mobilebert_common import weights as weight_table
from mobilebert_common import checks
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
from mobilebert_tf.inputs import (
    FLAGS,
    INPUT_NAMES,
    Checks,
    check_finite,
    check_mask_positions,
    flatten_choices,
    in_xla_context,
    unpack_inputs,
    validate_inputs,
    warn_if_unchecked_xla,
    wide_dtype,
)
from mobilebert_tf.losses import check_class_labels, check_positions, cross_entropy, sequence_classification_loss, span_loss
from mobilebert_tf.pretrained import TFPreTrainedModel, build_in_scope

serializable = keras.saving.register_keras_serializable(package="mobilebert")  # model.save("m.keras") / load_model


def _finish(out, return_dict, config: MobileBertConfig):
    """The output object, or its tuple; return_dict=None follows config.use_return_dict (as transformers)."""
    return out if (config.use_return_dict if return_dict is None else return_dict) else out.to_tuple()


def _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
            output_hidden_states, return_dict) -> dict:
    """The backbone's arguments that every model class takes, as one dict."""
    return dict(attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
                head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                output_hidden_states=output_hidden_states, return_dict=return_dict)


def _replace_variable(layer: keras.layers.Layer, attr: str, value: np.ndarray) -> None:
    """Swap the variable ``layer.<attr>`` for one holding ``value`` (another shape), under the same hub name."""
    old = getattr(layer, attr)
    scope, leaf = old.name.rsplit("/", 1)
    with tf.name_scope(scope + "/"):  # trailing "/": an absolute scope, so the name is the old one exactly
        new = layer.add_weight(name=leaf.split(":")[0], shape=value.shape, dtype=old.dtype, trainable=old.trainable,
                               initializer=keras.initializers.Constant(value))
    # Keras lists a layer's variables; the old one must leave it (model.weights, saving, the optimizer).
    for tracked in (layer._trainable_weights, layer._non_trainable_weights):
        tracked[:] = [v for v in tracked if v is not old]
    object.__setattr__(layer, attr, new)


# ---------------------------------------------------------------------------------------- activations and norms


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


def initializer(config: MobileBertConfig):
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


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


# ---------------------------------------------------------------------------------------- embeddings


def lookup(table: tf.Tensor, ids: tf.Tensor, nan_if_out_of_range: bool = False, batch_dims: int = 0) -> tf.Tensor:
    """Rows of table at ids: table (V, D), ids (...) -> (..., D); with batch_dims=1, table (B, T, D),
    ids (B, P) -> (B, P, D). With nan_if_out_of_range (inside XLA, where the checks cannot run) an
    out-of-range id gives a NaN row instead of the clamped edge row XLA would return."""
    rows = tf.gather(table, ids, batch_dims=batch_dims)
    if not nan_if_out_of_range:
        return rows
    valid = (ids >= 0) & (ids < tf.cast(tf.shape(table)[batch_dims], ids.dtype))
    return tf.where(valid[..., None], rows, tf.constant(float("nan"), rows.dtype))


class TFMobileBertEmbeddings(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.trigram_input = config.trigram_input
        self.padding_idx = config.pad_token_id  # PyTorch's nn.Embedding(padding_idx=...): no gradient for this row
        # Built always, as the hub's checkpoints hold it; runs only when config.transforms_input.
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
        build_in_scope(self.embedding_transformation, [None, None, c.embedding_input_size])
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
            # zeros past either end -> (B, T, 3E). Padded once and cut, as the PyTorch twin (for torch.export).
            padded = tf.pad(x, [[0, 0], [1, 1], [0, 0]])  # (B, T + 2, E): a zero row before and after
            following, preceding = padded[:, 2:], padded[:, :-2]  # (B, T, E) each
            x = tf.concat([following, x, preceding], axis=2)
        if self.config.transforms_input:
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


# ---------------------------------------------------------------------------------------- attention


class TFMobileBertSelfAttention(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        inner = config.true_hidden_size
        self.query = dense(config, inner, "query")
        self.key = dense(config, inner, "key")
        self.value = dense(config, inner, "value")
        self.dropout = keras.layers.Dropout(config.attention_probs_dropout_prob, name="dropout")

    def build(self, input_shape=None):
        c = self.config
        build_in_scope(self.query, [None, None, c.query_key_input_size])
        build_in_scope(self.key, [None, None, c.query_key_input_size])
        build_in_scope(self.value, [None, None, c.value_input_size])
        super().build(input_shape)

    def call(self, query_tensor, key_tensor, value_tensor, attention_mask=None, head_mask=None, training=False):
        """Returns (context (B, T, I), probabilities (B, N, T, T))."""
        batch, seq = tf.shape(query_tensor)[0], tf.shape(query_tensor)[1]

        def split(x):  # (B, T, I) -> (B, N, T, D)
            return tf.transpose(tf.reshape(x, [batch, -1, self.num_heads, self.head_dim]), [0, 2, 1, 3])

        # Two products even where query and key read the same tensor: PyTorch's fused [Wq, Wk] product
        # (MobileBertSelfAttention) measured no gain here (released size, 2-core CPU, one process, alternating;
        # separate / fused: tf.function 0.99-1.01 at (1, 128), 0.95-1.10 at (8, 128); XLA 0.99 and 1.00).
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


# ---------------------------------------------------------------------------------------- bottleneck


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
        self.uses_shared_bottleneck = config.uses_shared_bottleneck
        self.input_layer = TFBottleneckLayer(config, name="input")  # PT: bottleneck.input
        self.attention = None
        if config.key_query_shared_bottleneck:
            # Runs only when config.uses_shared_bottleneck, but the hub's checkpoints hold it
            # whenever key_query_shared_bottleneck: built for compatibility.
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
        if self.uses_shared_bottleneck:
            s = self.attention(h)  # (B, T, I): one extra bottleneck shared by query and key
            return s, s, h, b
        return h, h, h, b


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


# ---------------------------------------------------------------------------------------- feed-forward networks


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


# ---------------------------------------------------------------------------------------- layer and encoder


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


# ---------------------------------------------------------------------------------------- the backbone


class TFMobileBertPreTrainedModel(TFPreTrainedModel):
    """Base of the Keras MobileBERT classes: what pretrained.TFPreTrainedModel needs to know of MobileBERT
    (config, names, tied copies, initialisation, dummy inputs, input checks)."""

    config_class = MobileBertConfig
    base_model_prefix = "mobilebert"
    call_input_names = INPUT_NAMES

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.architecture_name is not None:
            weight_table.normalize_architecture(cls.architecture_name)  # one of weight_table.ARCHITECTURES

    @classmethod
    def keras_model_name(cls) -> str:
        return weight_table.tf_model_name(cls.architecture())  # "tf_mobile_bert_for_masked_lm"

    @property
    def dummy_inputs(self) -> Dict[str, tf.Tensor]:
        """Small inputs that build every weight: (3, 5) ids, or (3, 2, 5) for multiple choice."""
        ids = tf.constant([[7, 6, 0, 0, 1], [1, 2, 3, 0, 0], [0, 0, 0, 4, 5]], dtype=tf.int32) % self.config.vocab_size
        if self.architecture() == "MobileBertForMultipleChoice":
            ids = tf.stack([ids, ids], axis=1)  # (batch, choices, seq)
        return {"input_ids": ids}

    def tied_copies(self, every_head: bool = False) -> Dict[str, str]:
        """The masked-LM decoder: tf_model.h5 stores a copy of the word embeddings (the weight
        table's "tie" entries); the model computes with the embeddings themselves, as PyTorch ties them."""
        out = {}
        for arch in weight_table.ARCHITECTURES if every_head else [self.architecture()]:
            table = weight_table.entries(self.config, arch)
            by_pt = {e.pt_name: e for e in table}
            out.update({e.tf_name: by_pt[e.tied_to].tf_name for e in table if e.transform == "tie"})
        return out

    def is_backbone(self, name: str) -> bool:
        # The pooler belongs to the heads that use it: a masked-LM checkpoint has none, and loading it
        # into a classifier initialises a new pooler (as transformers does) instead of failing.
        return super().is_backbone(name) and not name.startswith("mobilebert/pooler/")

    def _init_weights(self, name: str, shape: tuple) -> np.ndarray:
        """A weight the checkpoint lacks: truncated normal(initializer_range) for matrices, ones for norm
        scales, zeros for biases (as the paper's TF code initialises)."""
        leaf = name.rsplit("/", 1)[-1]
        if len(shape) >= 2:
            return initializer(self.config)(shape).numpy()
        if leaf.startswith("gamma") or (leaf.startswith("weight") and "LayerNorm" in name):
            return np.ones(shape, np.float32)
        return np.zeros(shape, np.float32)

    def _validate_model_inputs(self, inputs: dict, found: Checks) -> None:
        validate_inputs(self.config, {k: v for k, v in inputs.items() if k in INPUT_NAMES}, found)
        if inputs.get("mask_positions") is not None:  # the masked-LM classes' call_input_names have it
            sequence = inputs["input_ids"] if inputs.get("input_ids") is not None else inputs["inputs_embeds"]
            check_mask_positions(inputs["mask_positions"], sequence, found)

    # ------------------------------------------------------------------ vocabulary (as transformers' TF classes)
    def get_input_embeddings(self) -> "TFMobileBertEmbeddings":
        """The embeddings layer; its ``weight`` (V, E) is the word-embedding table, also the masked-LM decoder."""
        self.build_with_dummies()
        return self.mobilebert.embeddings

    def _lm_head(self):
        """The masked-LM prediction head, or None for the classes without one."""
        head = getattr(self, "cls", None)
        return getattr(head, "predictions", None)

    def set_input_embeddings(self, value) -> None:
        """Replace the word-embedding table (V, E) (a variable, tensor or array); the tied decoder follows.

        As in PyTorch: a model with a masked-LM head takes only a table of the current vocabulary size
        (use resize_token_embeddings to change it); the others take any size > pad_token_id.
        """
        table = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        width = self.config.embedding_size
        if table.ndim != 2 or table.shape[1] != width:
            raise ValueError(f"input embeddings must be a (vocab_size, {width}) table (config.embedding_size), "
                             f"got shape {table.shape}")
        size = table.shape[0]
        if size != self.config.vocab_size and self._lm_head() is not None:
            raise ValueError(
                f"{type(self).__name__} has a masked-LM head over {self.config.vocab_size} tokens (config.vocab_size); "
                f"a table of {size} rows would not match it. Call model.resize_token_embeddings({size}) to change "
                "the vocabulary size (head resized with it), then set_input_embeddings with a table of that size")
        if size <= self.config.pad_token_id:
            raise ValueError(f"input embeddings of {size} rows would drop the padding id {self.config.pad_token_id}")
        _replace_variable(self.get_input_embeddings(), "weight", table)
        self.config.vocab_size = size
        self._reset_compile_cache()  # compiled predict / train functions hold the old variable

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing: bool = True):
        """Grow or shrink the vocabulary as the PyTorch classes do (mobilebert_common.resizing): old rows kept,
        added rows near the mean of the old rows (the head's dense columns alike), bias 0. Returns the
        embeddings layer. Draws from TensorFlow's RNG (tf.random.set_seed makes it repeatable)."""
        embeddings = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return embeddings
        size = resizing.new_vocab_size(self.config.vocab_size if new_num_tokens is None else new_num_tokens,
                                       pad_to_multiple_of, self.config.pad_token_id)
        rng = np.random.default_rng(int(tf.random.uniform((), maxval=2**62, dtype=tf.int64)))
        init = initializer(self.config)

        def resized(table: np.ndarray) -> np.ndarray:  # (V, D) -> (size, D)
            return resizing.resized_table(table, size, rng, mean_resizing, lambda shape: init(shape).numpy())

        _replace_variable(embeddings, "weight", resized(embeddings.weight.numpy()))
        head = self._lm_head()
        if head is not None:
            _replace_variable(head, "dense", resized(head.dense.numpy().T).T)  # (H - E, V): one column per token
            _replace_variable(head, "bias", resizing.resized_bias(head.bias.numpy(), size))
        self.config.vocab_size = size
        self._reset_compile_cache()
        return embeddings

    def _backbone(self, args: dict, training) -> BaseModelOutputWithPooling:
        return self.mobilebert(**{k: v for k, v in args.items() if k != "return_dict"}, return_dict=True,
                               training=training)


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
        given = unpack_inputs(input_ids, dict(attention_mask=attention_mask, token_type_ids=token_type_ids,
                                              position_ids=position_ids, head_mask=head_mask,
                                              inputs_embeds=inputs_embeds), INPUT_NAMES)
        warn_if_unchecked_xla()
        # None: the config's flags decide (model.config.output_attentions = True works, as in transformers).
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        v = validate_inputs(self.config, given)  # ids as int32/int64, head_mask as (L, N), checks attached
        reference = v["input_ids"] if v.get("input_ids") is not None else v["inputs_embeds"][:, :, 0]
        attention_mask = v.get("attention_mask")
        if attention_mask is None:
            attention_mask = tf.ones(tf.shape(reference), dtype=tf.int32)  # (B, T)
        # 1 = attend, 0 = padding -> additive (B, 1, 1, T) in the softmax's dtype: 0 or its most negative value.
        wide = wide_dtype(self.compute_dtype)
        additive_mask = (1.0 - tf.cast(attention_mask, wide))[:, None, None, :] * wide.min
        head_mask = v.get("head_mask")
        if head_mask is not None:
            head_mask = tf.cast(head_mask, self.compute_dtype)[:, None, :, None, None]  # (L, 1, N, 1, 1)
        embeddings = self.embeddings(v.get("input_ids"), v.get("token_type_ids"), v.get("position_ids"),
                                     v.get("inputs_embeds"), training=training)
        last, hidden_states, attentions = self.encoder(
            embeddings, additive_mask, head_mask, bool(output_attentions), bool(output_hidden_states), training=training
        )
        last = check_finite(last)
        pooled = self.pooler(last) if self.pooler is not None else None
        out = BaseModelOutputWithPooling(
            last_hidden_state=last, pooler_output=pooled, hidden_states=hidden_states, attentions=attentions
        )
        return _finish(out, return_dict, self.config)


@serializable
class TFMobileBertModel(TFMobileBertPreTrainedModel):
    """The backbone as a Keras model: outputs BaseModelOutputWithPooling."""

    architecture_name = "MobileBertModel"

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.mobilebert = TFMobileBertMainLayer(config, name="mobilebert")

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        args, _ = self._inputs(input_ids, _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                                                  output_attentions, output_hidden_states, return_dict))
        return _finish(self._backbone(args, training), args.get("return_dict"), self.config)


# ---------------------------------------------------------------------------------------- heads


class TFMobileBertPredictionHeadTransform(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = dense(config, config.hidden_size, "dense")
        self.act = ACT2FN[config.hidden_act]
        # Always a real LayerNorm, whatever normalization_type (as in the released checkpoints).
        self.LayerNorm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="LayerNorm")

    def build(self, input_shape=None):
        build_in_scope(self.dense, [None, None, self.config.hidden_size])
        build_in_scope(self.LayerNorm, [None, None, self.config.hidden_size])
        super().build(input_shape)

    def call(self, x):
        return self.LayerNorm(self.act(self.dense(x)))


class TFMobileBertLMPredictionHead(keras.layers.Layer):
    """logits = transform(h) @ [E^T (E x V) ; dense (H-E x V)] + bias, with E the tied word embeddings.

    Computed as two products on slices of the transformed rows, x[..., :E] @ E^T + x[..., E:] @ dense,
    never building the (H, V) matrix. With mask_positions (B, P) only those rows of h are transformed
    and projected: (B, P, V) instead of (B, T, V). The word-embedding variable is passed to call()
    rather than stored here, so Keras does not track it twice (it belongs to mobilebert/embeddings);
    tf_model.h5 stores a copy of it as predictions/decoder/weight (see tied_copies).
    """

    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        resizing.require_tied_decoder(config)
        self.config = config
        self.transform = TFMobileBertPredictionHeadTransform(config, name="transform")

    def build(self, input_shape=None):
        c = self.config
        self.bias = self.add_weight(name="bias", shape=[c.vocab_size], initializer="zeros")
        with tf.name_scope("dense"):
            # (H - E, V): the rows of the output projection beyond the embedding width.
            self.dense = self.add_weight(name="weight", shape=[c.mlm_dense_size, c.vocab_size], initializer=initializer(c))
        build_in_scope(self.transform, None)
        super().build(input_shape)

    def call(self, hidden_states, word_embeddings, mask_positions=None):
        if mask_positions is not None:  # (B, P), checked by the model (check_mask_positions)
            hidden_states = lookup(hidden_states, mask_positions, in_xla_context(), batch_dims=1)  # (B, P, H)
        x = self.transform(hidden_states)  # (B, T or P, H)
        e = self.config.embedding_size
        # Two products, on purpose (benchmarks/bench_tf_lm_head.py, tf.function, 2-core CPU, interleaved;
        # this form's time / the other's): vocabulary blocks of 512 or 1024 columns (PyTorch's CPU win)
        # 0.81-1.09, under XLA 0.71-0.96. One product over concat([E^T, dense]) (H, V) is 0.54-0.85 at
        # 8-32 rows (the 62 MB copy per call) and 1.02-1.15 at 128-1024 rows, but in the whole model
        # (switched at 128 rows) 0.98-1.01 at (1, 128) and 1.01-1.09 at (8, 128), and TFLite folds the
        # concatenation into a stored copy of both matrices (the exported file grows by 62 MB).
        # On rows (B*T, H), not (B, T, H): a 3-D x @ 2-D weight is a BatchMatMul of B products of T rows each,
        # the 2-D form one MatMul of B*T rows with the bias fused into it (tf.function, same process,
        # alternating: 4-7% less per forward at (1, 128) and (8, 128), equal logits there; XLA did this already).
        # tf.split, not two slices: its two outputs share the unknown row count, so with None shapes (an
        # input_signature, the pipelines) Grappler can prove the sum's operands alike and fuse the second
        # product's bias and the sum into it (fused_ops BiasAdd, Add: the first product's output is accumulated,
        # as PyTorch's addmm_), which it did only for static shapes: the head 20-22% faster at (1, 128), (8, 40)
        # and (8, 128) in such a tf.function, static shapes unchanged.
        rows = tf.reshape(x, [-1, x.shape[-1]])  # (B*T or B*P, H)
        words_in, extra_in = tf.split(rows, [e, x.shape[-1] - e], axis=1)  # (rows, E), (rows, H - E)
        logits = (tf.matmul(words_in, tf.cast(word_embeddings, x.dtype), transpose_b=True)  # (rows, E) @ (E, V)
                  + tf.nn.bias_add(tf.matmul(extra_in, tf.cast(self.dense, x.dtype)), tf.cast(self.bias, x.dtype)))
        return tf.reshape(logits, tf.concat([tf.shape(x)[:-1], tf.shape(logits)[-1:]], 0))  # (B, T or P, V)


class TFMobileBertOnlyMLMHead(keras.layers.Layer):
    """Keras name "predictions___cls" (the hub's h5 group); PyTorch: MobileBertOnlyMLMHead at ``cls``."""

    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.predictions = TFMobileBertLMPredictionHead(config, name="predictions")

    def build(self, input_shape=None):
        build_in_scope(self.predictions, None)
        super().build(input_shape)

    def call(self, sequence_output, word_embeddings, mask_positions=None):
        return self.predictions(sequence_output, word_embeddings, mask_positions)  # (B, T or P, V)


class TFMobileBertPreTrainingHeads(keras.layers.Layer):
    """PyTorch: MobileBertPreTrainingHeads at ``cls``. One Keras layer holding both heads, whose variables
    the hub's h5 keeps in two groups: predictions___cls/predictions/... and seq_relationship___cls/seq_relationship/..."""

    names_its_own_scopes = True  # built in the hub's scopes, not under its own name "cls"

    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.predictions = TFMobileBertLMPredictionHead(config, name="predictions")
        self.seq_relationship = dense(config, 2, "seq_relationship")

    def build(self, input_shape=None):
        with tf.name_scope("predictions___cls"):
            build_in_scope(self.predictions, None)
        with tf.name_scope("seq_relationship___cls"):
            build_in_scope(self.seq_relationship, [None, self.config.hidden_size])
        super().build(input_shape)

    def call(self, sequence_output, pooled_output, word_embeddings, mask_positions=None):
        return self.predictions(sequence_output, word_embeddings, mask_positions), self.seq_relationship(pooled_output)


class TFMobileBertOnlyNSPHead(keras.layers.Layer):
    """Keras name "seq_relationship___cls" (the hub's h5 group); PyTorch: MobileBertOnlyNSPHead at ``cls``."""

    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.seq_relationship = dense(config, 2, "seq_relationship")

    def build(self, input_shape=None):
        build_in_scope(self.seq_relationship, [None, self.config.hidden_size])
        super().build(input_shape)

    def call(self, pooled_output):
        return self.seq_relationship(pooled_output)  # (B, 2): index 0 = "B follows A"


# ---------------------------------------------------------------------------------------- task models
# Each holds the backbone as ``self.mobilebert`` (layer name "mobilebert") and its head as PyTorch
# does (``cls.predictions``, ``cls.seq_relationship``, ``classifier``, ``qa_outputs``). Labels outside
# the allowed range are a ValueError eagerly and an assertion in a graph (losses.py).


def _check(found: Checks, args: dict, name: str, num_classes) -> None:
    if args.get(name) is not None:
        check_class_labels(name, args[name], num_classes, found)


@serializable
class TFMobileBertForPreTraining(TFMobileBertPreTrainedModel):
    """With mask_positions (B, P), prediction_logits (and labels) are (B, P, V) ((B, P)), as in the masked LM."""

    architecture_name = "MobileBertForPreTraining"
    call_input_names = INPUT_NAMES + ("mask_positions",)
    label_names = ("labels", "next_sentence_label")

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.mobilebert = TFMobileBertMainLayer(config, name="mobilebert")
        self.cls = TFMobileBertPreTrainingHeads(config, name="cls")

    def head_layers(self):
        return [(self.cls, None)]

    def _check_labels(self, args, found):
        _check(found, args, "labels", self.config.vocab_size)
        _check(found, args, "next_sentence_label", 2)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             next_sentence_label=None, mask_positions=None, training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels, next_sentence_label=next_sentence_label,
            mask_positions=mask_positions))
        positions = args.pop("mask_positions")
        out = self._backbone(args, training)
        if positions is not None:
            positions = check_mask_positions(positions, out.last_hidden_state)  # (B, P)
        prediction_logits, seq_logits = self.cls(out.last_hidden_state, out.pooler_output,
                                                 self.mobilebert.embeddings.word_embeddings, positions)  # (B, T or P, V), (B, 2)
        prediction_logits = check_finite(prediction_logits)
        loss = None
        if y["labels"] is not None and y["next_sentence_label"] is not None:
            loss = (cross_entropy("labels", prediction_logits, y["labels"])
                    + cross_entropy("next_sentence_label", seq_logits, y["next_sentence_label"]))
        result = MobileBertForPreTrainingOutput(loss, prediction_logits, seq_logits, out.hidden_states, out.attentions)
        return _finish(result, args.get("return_dict"), self.config)


@serializable
class TFMobileBertForMaskedLM(TFMobileBertPreTrainedModel):
    """With mask_positions (B, P) of token indices, logits (and labels) are (B, P, V) ((B, P)): the
    vocabulary projection runs at those positions only, as keras-hub's masked-LM head."""

    architecture_name = "MobileBertForMaskedLM"
    call_input_names = INPUT_NAMES + ("mask_positions",)
    label_names = ("labels",)

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.mobilebert = TFMobileBertMainLayer(config, add_pooling_layer=False, name="mobilebert")
        self.cls = TFMobileBertOnlyMLMHead(config, name="predictions___cls")

    def head_layers(self):
        return [(self.cls, None)]

    def _check_labels(self, args, found):
        _check(found, args, "labels", self.config.vocab_size)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             mask_positions=None, training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels, mask_positions=mask_positions))
        positions = args.pop("mask_positions")
        out = self._backbone(args, training)
        if positions is not None:  # checked here, not in the head: Keras would print the head's arguments, the table too
            positions = check_mask_positions(positions, out.last_hidden_state)  # (B, P)
        logits = self.cls(out.last_hidden_state, self.mobilebert.embeddings.word_embeddings, positions)
        logits = check_finite(logits)  # (B, T, V), or (B, P, V)
        loss = None if y["labels"] is None else cross_entropy("labels", logits, y["labels"])
        return _finish(MaskedLMOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"), self.config)


@serializable
class TFMobileBertForNextSentencePrediction(TFMobileBertPreTrainedModel):
    architecture_name = "MobileBertForNextSentencePrediction"
    label_names = ("labels", "next_sentence_label")  # next_sentence_label: the older name of the same labels

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.mobilebert = TFMobileBertMainLayer(config, name="mobilebert")
        self.cls = TFMobileBertOnlyNSPHead(config, name="seq_relationship___cls")

    def head_layers(self):
        return [(self.cls, None)]

    def _check_labels(self, args, found):
        _check(found, args, "labels", 2)
        _check(found, args, "next_sentence_label", 2)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             next_sentence_label=None, training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels, next_sentence_label=next_sentence_label))
        labels = y["labels"] if y["labels"] is not None else y["next_sentence_label"]
        out = self._backbone(args, training)
        logits = check_finite(self.cls(out.pooler_output))  # (B, 2)
        loss = None if labels is None else cross_entropy("labels", logits, labels)
        return _finish(NextSentencePredictorOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"), self.config)


@serializable
class TFMobileBertForSequenceClassification(TFMobileBertPreTrainedModel):
    architecture_name = "MobileBertForSequenceClassification"
    label_names = ("labels",)

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = config.num_labels
        self.mobilebert = TFMobileBertMainLayer(config, name="mobilebert")
        self.dropout = keras.layers.Dropout(config.classifier_dropout_prob, name="dropout")
        self.classifier = dense(config, config.num_labels, "classifier")

    def head_layers(self):
        return [(self.classifier, [None, self.config.hidden_size])]

    def _check_labels(self, args, found):
        labels = args.get("labels")
        if labels is not None and checks.infer_problem_type(
                self.config.problem_type, self.num_labels, labels.dtype.is_integer) == "single_label_classification":
            _check(found, args, "labels", self.num_labels)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels))
        out = self._backbone(args, training)
        logits = check_finite(self.classifier(self.dropout(out.pooler_output, training=training)))  # (B, num_labels)
        loss = None if y["labels"] is None else sequence_classification_loss(logits, y["labels"], self.config.problem_type)
        return _finish(SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"), self.config)


@serializable
class TFMobileBertForMultipleChoice(TFMobileBertPreTrainedModel):
    architecture_name = "MobileBertForMultipleChoice"
    label_names = ("labels",)

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.mobilebert = TFMobileBertMainLayer(config, name="mobilebert")
        self.dropout = keras.layers.Dropout(config.classifier_dropout_prob, name="dropout")
        self.classifier = dense(config, 1, "classifier")

    def head_layers(self):
        return [(self.classifier, [None, self.config.hidden_size])]

    def _validate_model_inputs(self, inputs, found):
        _, flat = flatten_choices(inputs, found)
        validate_inputs(self.config, flat, found)

    def _check_labels(self, args, found):
        reference = args["input_ids"] if args.get("input_ids") is not None else args["inputs_embeds"][..., 0]
        num_choices = reference.shape[1] if reference.shape[1] is not None else tf.shape(reference)[1]
        _check(found, args, "labels", num_choices)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels))
        found = Checks()
        num_choices, flat = flatten_choices(args, found)  # (B, C, T) -> (B*C, T)
        flat = found.attach({**flat, "head_mask": args.get("head_mask"), **{k: args.get(k) for k in FLAGS}})
        out = self._backbone(flat, training)
        logits = self.classifier(self.dropout(out.pooler_output, training=training))  # (B*C, 1)
        logits = check_finite(tf.reshape(logits, [-1, num_choices]))  # (B, C)
        loss = None if y["labels"] is None else cross_entropy("labels", logits, y["labels"])
        return _finish(MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"), self.config)


@serializable
class TFMobileBertForTokenClassification(TFMobileBertPreTrainedModel):
    architecture_name = "MobileBertForTokenClassification"
    label_names = ("labels",)

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = config.num_labels
        self.mobilebert = TFMobileBertMainLayer(config, add_pooling_layer=False, name="mobilebert")
        self.dropout = keras.layers.Dropout(config.classifier_dropout_prob, name="dropout")
        self.classifier = dense(config, config.num_labels, "classifier")

    def head_layers(self):
        return [(self.classifier, [None, None, self.config.hidden_size])]

    def _check_labels(self, args, found):
        _check(found, args, "labels", self.num_labels)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels))
        out = self._backbone(args, training)
        logits = check_finite(self.classifier(self.dropout(out.last_hidden_state, training=training)))  # (B, T, num_labels)
        loss = None if y["labels"] is None else cross_entropy("labels", logits, y["labels"])
        return _finish(TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"), self.config)


@serializable
class TFMobileBertForQuestionAnswering(TFMobileBertPreTrainedModel):
    architecture_name = "MobileBertForQuestionAnswering"
    label_names = ("start_positions", "end_positions")

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.mobilebert = TFMobileBertMainLayer(config, add_pooling_layer=False, name="mobilebert")
        self.qa_outputs = dense(config, 2, "qa_outputs")

    def head_layers(self):
        return [(self.qa_outputs, [None, None, self.config.hidden_size])]

    def _check_labels(self, args, found):
        for name in self.label_names:  # integers >= 0; positions past the window are ignored by the loss
            if args.get(name) is not None:
                check_positions(name, args[name], found)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None,
             start_positions=None, end_positions=None, training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), start_positions=start_positions, end_positions=end_positions))
        out = self._backbone(args, training)
        logits = check_finite(self.qa_outputs(out.last_hidden_state))  # (B, T, 2)
        start_logits, end_logits = logits[..., 0], logits[..., 1]  # (B, T) each
        loss = None
        if y["start_positions"] is not None and y["end_positions"] is not None:
            loss = span_loss(start_logits, end_logits, y["start_positions"], y["end_positions"])
        result = QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
        return _finish(result, args.get("return_dict"), self.config)
