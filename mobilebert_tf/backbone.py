"""The backbone: the encoder stack (TFFFNLayer, TFMobileBertLayer, TFMobileBertEncoder, TFMobileBertPooler), the
"mobilebert" main layer every Keras model holds (masks, head mask, embeddings -> encoder -> pooler),
and TFMobileBertModel.

Mirrors mobilebert_pt/backbone.py (MobileBertModel) plus the encoder-level blocks that PyTorch
keeps in modeling.py: with their explicit Keras builds, modeling.py would pass 400 lines. The input
checks are in inputs.py. Shapes: B = batch, T = sequence, H = hidden_size, I = true_hidden_size,
N = heads, L = layers.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from mobilebert_common.config import MobileBertConfig
from mobilebert_common.outputs import BaseModelOutputWithPooling
from mobilebert_tf.inputs import INPUT_NAMES, unpack_inputs, validate_inputs, warn_if_unchecked_xla
from mobilebert_tf.modeling import (
    TFBottleneck,
    TFMobileBertAttention,
    TFMobileBertEmbeddings,
    TFMobileBertIntermediate,
    TFMobileBertOutput,
    build_in_scope,
    check_finite,
    dense,
    make_norm,
    wide_dtype,
)
from mobilebert_tf.pretrained import TFMobileBertPreTrainedModel


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
        given = unpack_inputs(input_ids, dict(attention_mask=attention_mask, token_type_ids=token_type_ids,
                                              position_ids=position_ids, head_mask=head_mask,
                                              inputs_embeds=inputs_embeds), INPUT_NAMES)
        warn_if_unchecked_xla()
        v = validate_inputs(config, given)  # ids as int32/int64, head_mask as (L, N), checks attached
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
        return out if return_dict is None or return_dict else out.to_tuple()


@keras.saving.register_keras_serializable(package="mobilebert")
class TFMobileBertModel(TFMobileBertPreTrainedModel):
    """The backbone as a Keras model: outputs BaseModelOutputWithPooling."""

    architecture_name = "MobileBertModel"

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.mobilebert = TFMobileBertMainLayer(config, name="mobilebert")

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        args, _ = self._inputs(input_ids, dict(
            attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict))
        out = self._backbone(args, training)
        return out if args.get("return_dict") is None or args["return_dict"] else out.to_tuple()
