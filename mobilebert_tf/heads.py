"""The task heads and the public Keras model classes built on TFMobileBertMainLayer.

Mirrors mobilebert_pt/heads.py class for class and attribute for attribute: each class holds the
backbone as ``self.mobilebert`` (layer name "mobilebert") and its head as PyTorch does
(``cls.predictions``, ``cls.seq_relationship``, ``classifier``, ``qa_outputs``). Keras names the
variables by the name scopes they are built in, and the hub's tf_model.h5 puts the masked-LM head
under "predictions___cls/predictions/..." and the next-sentence head under
"seq_relationship___cls/seq_relationship/...": the heads are built in those scopes (the pre-training
heads, one Keras layer "cls" holding both, open them itself). The losses and their label checks are
in losses.py; labels outside the allowed range are a ValueError eagerly and an assertion in a graph.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from mobilebert_common import checks
from mobilebert_common.config import MobileBertConfig
from mobilebert_common.outputs import (
    MaskedLMOutput,
    MobileBertForPreTrainingOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from mobilebert_tf.backbone import TFMobileBertMainLayer, check_finite
from mobilebert_tf.inputs import FLAGS, Checks, flatten_choices, validate_inputs
from mobilebert_tf.losses import check_class_labels, check_positions, cross_entropy, sequence_classification_loss, span_loss
from mobilebert_tf.modeling import ACT2FN, build_in_scope, dense, initializer
from mobilebert_tf.pretrained import TFMobileBertPreTrainedModel

serializable = keras.saving.register_keras_serializable(package="mobilebert")  # model.save("m.keras") / load_model


# ---------------------------------------------------------------------------------------- head layers


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

    The word-embedding variable is passed to call() rather than stored here, so Keras does not
    track it twice (it belongs to mobilebert/embeddings). tf_model.h5 stores a copy of it as
    predictions/decoder/weight (written and checked by pretrained.py).
    """

    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.transform = TFMobileBertPredictionHeadTransform(config, name="transform")

    def build(self, input_shape=None):
        c = self.config
        self.bias = self.add_weight(name="bias", shape=[c.vocab_size], initializer="zeros")
        with tf.name_scope("dense"):
            # (H - E, V): the rows of the output projection beyond the embedding width.
            self.dense = self.add_weight(name="weight", shape=[c.hidden_size - c.embedding_size, c.vocab_size],
                                         initializer=initializer(c))
        build_in_scope(self.transform, None)
        super().build(input_shape)

    def call(self, hidden_states, word_embeddings):
        x = self.transform(hidden_states)  # (B, T, H)
        weight = tf.concat([tf.transpose(tf.cast(word_embeddings, x.dtype)), tf.cast(self.dense, x.dtype)], axis=0)  # (H, V)
        return tf.matmul(x, weight) + tf.cast(self.bias, x.dtype)  # (B, T, V)


class TFMobileBertOnlyMLMHead(keras.layers.Layer):
    """Keras name "predictions___cls" (the hub's h5 group); PyTorch: MobileBertOnlyMLMHead at ``cls``."""

    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.predictions = TFMobileBertLMPredictionHead(config, name="predictions")

    def build(self, input_shape=None):
        build_in_scope(self.predictions, None)
        super().build(input_shape)

    def call(self, sequence_output, word_embeddings):
        return self.predictions(sequence_output, word_embeddings)  # (B, T, V)


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

    def call(self, sequence_output, pooled_output, word_embeddings):
        return self.predictions(sequence_output, word_embeddings), self.seq_relationship(pooled_output)


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


# ---------------------------------------------------------------------------------------- helpers


def _finish(out, return_dict):
    return out if return_dict is None or return_dict else out.to_tuple()


def _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
            output_hidden_states, return_dict) -> dict:
    return dict(attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
                head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                output_hidden_states=output_hidden_states, return_dict=return_dict)


def _check(found: Checks, args: dict, name: str, num_classes) -> None:
    if args.get(name) is not None:
        check_class_labels(name, args[name], num_classes, found)


# ---------------------------------------------------------------------------------------- public classes


@serializable
class TFMobileBertForPreTraining(TFMobileBertPreTrainedModel):
    architecture_name = "MobileBertForPreTraining"
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
             next_sentence_label=None, training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels, next_sentence_label=next_sentence_label))
        out = self._backbone(args, training)
        prediction_logits, seq_logits = self.cls(out.last_hidden_state, out.pooler_output,
                                                 self.mobilebert.embeddings.word_embeddings)  # (B, T, V), (B, 2)
        prediction_logits = check_finite(prediction_logits)
        loss = None
        if y["labels"] is not None and y["next_sentence_label"] is not None:
            loss = (cross_entropy("labels", prediction_logits, y["labels"])
                    + cross_entropy("next_sentence_label", seq_logits, y["next_sentence_label"]))
        result = MobileBertForPreTrainingOutput(loss, prediction_logits, seq_logits, out.hidden_states, out.attentions)
        return _finish(result, args.get("return_dict"))


@serializable
class TFMobileBertForMaskedLM(TFMobileBertPreTrainedModel):
    architecture_name = "MobileBertForMaskedLM"
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
             training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels))
        out = self._backbone(args, training)
        logits = check_finite(self.cls(out.last_hidden_state, self.mobilebert.embeddings.word_embeddings))  # (B, T, V)
        loss = None if y["labels"] is None else cross_entropy("labels", logits, y["labels"])
        return _finish(MaskedLMOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"))


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
        return _finish(NextSentencePredictorOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"))


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
        return _finish(SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"))


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
        return _finish(MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"))


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
        return _finish(TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"))


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
        return _finish(result, args.get("return_dict"))
