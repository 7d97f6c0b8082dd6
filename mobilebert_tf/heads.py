"""The task heads and the public Keras model classes built on TFMobileBertMainLayer.

Mirrors mobilebert_pt/heads.py. Each class holds the backbone as ``self.mobilebert`` (layer name
"mobilebert") and a small head whose layer names are the hub's: the masked-LM head under
"predictions___cls", the next-sentence head under "seq_relationship___cls", "classifier",
"qa_outputs". Losses follow ARCH.md and are computed in float32 (float64 with a float64 policy); labels outside the allowed range
are a ValueError eagerly and a tf.debugging assertion in graph mode (on GPU, TF's cross-entropy
returns NaN for them instead of failing).
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
from mobilebert_tf.modeling import (
    ACT2FN,
    FLAGS,
    TFMobileBertBase,
    build_in_scope,
    check_finite,
    dense,
    initializer,
    wide_dtype,
)

IGNORE_INDEX = -100  # label value that contributes no loss (padding, unmasked tokens)


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
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.predictions = TFMobileBertLMPredictionHead(config, name="predictions")

    def build(self, input_shape=None):
        build_in_scope(self.predictions, None)
        super().build(input_shape)

    def call(self, sequence_output, word_embeddings):
        return self.predictions(sequence_output, word_embeddings)


class TFMobileBertOnlyNSPHead(keras.layers.Layer):
    def __init__(self, config: MobileBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.seq_relationship = dense(config, 2, "seq_relationship")

    def build(self, input_shape=None):
        build_in_scope(self.seq_relationship, [None, self.config.hidden_size])
        super().build(input_shape)

    def call(self, pooled_output):
        return self.seq_relationship(pooled_output)  # (B, 2): index 0 = "B follows A"


# ---------------------------------------------------------------------------------------- losses


def check_class_labels(name: str, labels: tf.Tensor, num_classes, allow_ignore: bool = True) -> tf.Tensor:
    """Class ids must be in [0, num_classes) (or -100 = ignored). Returns labels (with the graph-mode assertion attached)."""
    if not labels.dtype.is_integer:
        raise ValueError(f"{name} must hold integer class ids, got dtype {labels.dtype.name}")
    valid = (labels >= 0) & (labels < tf.cast(num_classes, labels.dtype))
    if allow_ignore:
        valid = valid | (labels == IGNORE_INDEX)
    upper = num_classes if isinstance(num_classes, int) else "num_choices"  # a tensor: choices unknown until run time
    allowed = f"[0, {upper})" + (f" or {IGNORE_INDEX} (ignored)" if allow_ignore else "")
    if tf.executing_eagerly():
        if not bool(tf.reduce_all(valid)):
            bad = int(tf.boolean_mask(labels, tf.logical_not(valid))[0])
            raise ValueError(f"{name} must hold class ids in {allowed}; got {bad}")
        return labels
    with tf.control_dependencies([tf.debugging.assert_equal(tf.reduce_all(valid), True,
                                                            message=f"{name} must hold class ids in {allowed}")]):
        return tf.identity(labels)


def cross_entropy(logits: tf.Tensor, labels: tf.Tensor, ignore_index=IGNORE_INDEX) -> tf.Tensor:
    """Mean cross-entropy in float32 (or float64) over the labels != ignore_index (as torch's F.cross_entropy);
    0 when every label is ignored (torch gives NaN, which would poison a training run)."""
    num_classes = tf.shape(logits)[-1]
    logits = tf.reshape(tf.cast(logits, wide_dtype(logits.dtype)), [-1, num_classes])
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    keep = labels != tf.cast(ignore_index, tf.int32)
    safe = tf.where(keep, labels, tf.zeros_like(labels))
    per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    keep = tf.cast(keep, logits.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(per_token * keep), tf.reduce_sum(keep))


def _finish(out, return_dict):
    return out if return_dict is None or return_dict else out.to_tuple()


def _tensor(value):
    return None if value is None else tf.convert_to_tensor(value)


# ---------------------------------------------------------------------------------------- public classes


class _TFHeadModel(TFMobileBertBase):
    """A backbone and a task head; labels are call arguments (or keys of the input dict)."""

    label_names: tuple = ("labels",)


def _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
            output_hidden_states, return_dict) -> dict:
    return dict(attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
                head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                output_hidden_states=output_hidden_states, return_dict=return_dict)


class TFMobileBertForPreTraining(_TFHeadModel):
    architecture_name = "MobileBertForPreTraining"
    label_names = ("labels", "next_sentence_label")

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.predictions = TFMobileBertOnlyMLMHead(config, name="predictions___cls")
        self.seq_relationship = TFMobileBertOnlyNSPHead(config, name="seq_relationship___cls")

    def head_layers(self):
        return [(self.predictions, None), (self.seq_relationship, None)]

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             next_sentence_label=None, training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels, next_sentence_label=next_sentence_label))
        out = self._backbone(args, training)
        prediction_logits = check_finite(
            self.predictions(out.last_hidden_state, self.mobilebert.embeddings.word_embeddings))  # (B, T, V)
        seq_logits = self.seq_relationship(out.pooler_output)  # (B, 2)
        loss = None
        if y["labels"] is not None and y["next_sentence_label"] is not None:
            mlm_labels = check_class_labels("labels", y["labels"], self.config.vocab_size)
            nsp_labels = check_class_labels("next_sentence_label", y["next_sentence_label"], 2)
            loss = cross_entropy(prediction_logits, mlm_labels) + cross_entropy(seq_logits, nsp_labels)
        result = MobileBertForPreTrainingOutput(loss, prediction_logits, seq_logits, out.hidden_states, out.attentions)
        return _finish(result, args.get("return_dict"))


class TFMobileBertForMaskedLM(_TFHeadModel):
    architecture_name = "MobileBertForMaskedLM"
    add_pooling_layer = False

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.predictions = TFMobileBertOnlyMLMHead(config, name="predictions___cls")

    def head_layers(self):
        return [(self.predictions, None)]

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels))
        out = self._backbone(args, training)
        logits = check_finite(self.predictions(out.last_hidden_state, self.mobilebert.embeddings.word_embeddings))
        loss = None
        if y["labels"] is not None:
            loss = cross_entropy(logits, check_class_labels("labels", y["labels"], self.config.vocab_size))
        return _finish(MaskedLMOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"))


class TFMobileBertForNextSentencePrediction(_TFHeadModel):
    architecture_name = "MobileBertForNextSentencePrediction"
    label_names = ("labels", "next_sentence_label")

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.cls = TFMobileBertOnlyNSPHead(config, name="seq_relationship___cls")

    def head_layers(self):
        return [(self.cls, None)]

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             next_sentence_label=None, training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels, next_sentence_label=next_sentence_label))
        labels = y["labels"] if y["labels"] is not None else y["next_sentence_label"]  # the older name of the same labels
        out = self._backbone(args, training)
        logits = check_finite(self.cls(out.pooler_output))  # (B, 2)
        loss = None if labels is None else cross_entropy(logits, check_class_labels("labels", labels, 2))
        return _finish(NextSentencePredictorOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"))


class TFMobileBertForSequenceClassification(_TFHeadModel):
    architecture_name = "MobileBertForSequenceClassification"

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = config.num_labels
        self.dropout = keras.layers.Dropout(config.classifier_dropout_prob, name="dropout")
        self.classifier = dense(config, config.num_labels, "classifier")

    def head_layers(self):
        return [(self.classifier, [None, self.config.hidden_size])]

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels))
        out = self._backbone(args, training)
        logits = check_finite(self.classifier(self.dropout(out.pooler_output, training=training)))  # (B, num_labels)
        loss = None if y["labels"] is None else self._loss(logits, y["labels"])
        return _finish(SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"))

    def _loss(self, logits, labels):
        n = self.num_labels
        problem = checks.infer_problem_type(self.config.problem_type, n, labels.dtype.is_integer)  # bool: multi-label, as in PyTorch
        logits = tf.cast(logits, wide_dtype(logits.dtype))
        if problem == "regression":
            labels = tf.cast(labels, logits.dtype)
            if n == 1:  # torch's squeeze(): (B, 1) logits against (B,) or (B, 1) labels
                return tf.reduce_mean(tf.square(tf.reshape(logits, [-1]) - tf.reshape(labels, [-1])))
            return tf.reduce_mean(tf.square(logits - labels))
        if problem == "single_label_classification":
            return cross_entropy(logits, check_class_labels("labels", labels, n))
        if labels.shape.rank is not None and logits.shape.rank is not None and None not in labels.shape.as_list():
            checks.check_same_shape("labels", labels.shape.as_list(), logits.shape.as_list(),
                                    of="logits (multi-label: one 0/1 column per label)")
        labels = tf.cast(labels, logits.dtype)
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


class TFMobileBertForMultipleChoice(_TFHeadModel):
    architecture_name = "MobileBertForMultipleChoice"

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.dropout = keras.layers.Dropout(config.classifier_dropout_prob, name="dropout")
        self.classifier = dense(config, 1, "classifier")

    def head_layers(self):
        return [(self.classifier, [None, self.config.hidden_size])]

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels))
        ids, embeds = _tensor(args.get("input_ids")), _tensor(args.get("inputs_embeds"))
        checks.check_inputs_choice(ids is not None, embeds is not None)
        if ids is not None:
            checks.check_rank("input_ids", ids.shape, 3, "(batch, num_choices, seq)")
            reference = ids
        else:
            checks.check_rank("inputs_embeds", embeds.shape, 4, "(batch, num_choices, seq, embedding_size)")
            reference = embeds[..., 0]
        dims = tf.shape(reference)  # (B, C, T)
        static = reference.shape.as_list()

        def flat(name, t):  # (B, C, T) -> (B*C, T), after checking it lines up with the input
            if t is None:
                return None
            t = tf.convert_to_tensor(t)
            if t.shape.rank is not None and (t.shape.rank != 3 or (t.shape.is_fully_defined() and None not in static)):
                checks.check_same_shape(name, t.shape.as_list(), static, of="the choices input (batch, num_choices, seq)")
            return tf.reshape(t, [-1, dims[2]])

        flat_args = {k: args.get(k) for k in FLAGS}
        for name in ("input_ids", "attention_mask", "token_type_ids", "position_ids"):
            flat_args[name] = flat(name, args.get(name))
        flat_args["head_mask"] = args.get("head_mask")
        flat_args["inputs_embeds"] = None if embeds is None else tf.reshape(embeds, [-1, dims[2], tf.shape(embeds)[3]])
        out = self._backbone(flat_args, training)
        logits = self.classifier(self.dropout(out.pooler_output, training=training))  # (B*C, 1)
        logits = check_finite(tf.reshape(logits, [-1, dims[1]]))  # (B, C)
        loss = None
        if y["labels"] is not None:
            loss = cross_entropy(logits, check_class_labels("labels", y["labels"], dims[1] if static[1] is None else static[1]))
        return _finish(MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"))


class TFMobileBertForTokenClassification(_TFHeadModel):
    architecture_name = "MobileBertForTokenClassification"
    add_pooling_layer = False

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = config.num_labels
        self.dropout = keras.layers.Dropout(config.classifier_dropout_prob, name="dropout")
        self.classifier = dense(config, config.num_labels, "classifier")

    def head_layers(self):
        return [(self.classifier, [None, None, self.config.hidden_size])]

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        args, y = self._inputs(input_ids, dict(
            _common(attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions,
                    output_hidden_states, return_dict), labels=labels))
        out = self._backbone(args, training)
        logits = check_finite(self.classifier(self.dropout(out.last_hidden_state, training=training)))  # (B, T, num_labels)
        loss = None
        if y["labels"] is not None:
            loss = cross_entropy(logits, check_class_labels("labels", y["labels"], self.num_labels))
        return _finish(TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions), args.get("return_dict"))


class TFMobileBertForQuestionAnswering(_TFHeadModel):
    architecture_name = "MobileBertForQuestionAnswering"
    add_pooling_layer = False
    label_names = ("start_positions", "end_positions")

    def __init__(self, config: MobileBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.qa_outputs = dense(config, 2, "qa_outputs")

    def head_layers(self):
        return [(self.qa_outputs, [None, None, self.config.hidden_size])]

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
            for name in ("start_positions", "end_positions"):
                if not y[name].dtype.is_integer:
                    raise ValueError(f"{name} must hold integer token positions, got dtype {y[name].dtype.name}")
            seq = tf.shape(start_logits)[1]
            # Answers outside the (truncated) window: clamp to T and ignore, as BERT's SQuAD recipe does.
            start = tf.clip_by_value(tf.reshape(tf.cast(y["start_positions"], tf.int32), [-1]), 0, seq)
            end = tf.clip_by_value(tf.reshape(tf.cast(y["end_positions"], tf.int32), [-1]), 0, seq)
            loss = (cross_entropy(start_logits, start, ignore_index=seq) + cross_entropy(end_logits, end, ignore_index=seq)) / 2
        result = QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
        return _finish(result, args.get("return_dict"))
