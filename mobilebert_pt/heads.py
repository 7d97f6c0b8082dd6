"""The task heads and the public model classes built on the MobileBertModel backbone.

Each class holds the backbone as ``self.mobilebert`` (so its keys carry the hub's "mobilebert."
prefix) and a small head. Losses follow ARCH.md; labels outside the allowed range are a ValueError
before any kernel runs (a CUDA device-side assert cannot be recovered from).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

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
from mobilebert_pt.modeling import ACT2FN, MobileBertModel, check_finite
from mobilebert_pt.pretrained import MobileBertPreTrainedModel

IGNORE_INDEX = -100  # label value that contributes no loss (padding, unmasked tokens)


# ---------------------------------------------------------------------------------------- head modules


class MobileBertPredictionHeadTransform(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT2FN[config.hidden_act]
        # Always a real LayerNorm, whatever normalization_type (as in the released checkpoints).
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x):
        return self.LayerNorm(self.act(self.dense(x)))


class MobileBertLMPredictionHead(nn.Module):
    """logits = transform(h) @ [E^T (E x V) ; dense.weight (H-E x V)] + bias, with E the tied word embeddings."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.transform = MobileBertPredictionHeadTransform(config)
        # nn.Linear(V, H - E) only to get a (H - E, V) weight named like the checkpoint's; never called.
        self.dense = nn.Linear(config.vocab_size, config.hidden_size - config.embedding_size, bias=False)
        # Its weight IS the word-embedding table (tied by MobileBertPreTrainedModel.tie_weights); not saved.
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states):
        x = self.transform(hidden_states)  # (B, T, H)
        weight = torch.cat([self.decoder.weight.t(), self.dense.weight], dim=0)  # (H, V)
        return torch.matmul(x, weight) + self.bias  # (B, T, V)


class MobileBertOnlyMLMHead(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.predictions = MobileBertLMPredictionHead(config)

    def forward(self, sequence_output):
        return self.predictions(sequence_output)


class MobileBertPreTrainingHeads(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.predictions = MobileBertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, sequence_output, pooled_output):
        return self.predictions(sequence_output), self.seq_relationship(pooled_output)


class MobileBertOnlyNSPHead(nn.Module):
    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled_output):
        return self.seq_relationship(pooled_output)  # (B, 2): index 0 = "B follows A"


# ---------------------------------------------------------------------------------------- helpers


def _check_class_labels(name: str, labels: torch.Tensor, num_classes: int, allow_ignore: bool = True) -> None:
    """Class ids must be in [0, num_classes) (or -100 = ignored); checked on the host before the loss kernel."""
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class ids, got dtype {labels.dtype}")
    valid = (labels >= 0) & (labels < num_classes)
    if allow_ignore:
        valid |= labels == IGNORE_INDEX
    if not bool(valid.all()):
        bad = int(labels[~valid].flatten()[0])
        allowed = f"[0, {num_classes})" + (f" or {IGNORE_INDEX} (ignored)" if allow_ignore else "")
        raise ValueError(f"{name} must hold class ids in {allowed}; got {bad}")


def _finish(out, return_dict):
    return out if return_dict is None or return_dict else out.to_tuple()


# ---------------------------------------------------------------------------------------- public classes


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
                output_hidden_states=None, return_dict=None):
        out = self.mobilebert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                              output_attentions, output_hidden_states, return_dict=True)
        prediction_logits, seq_logits = self.cls(out.last_hidden_state, out.pooler_output)
        check_finite(prediction_logits)
        loss = None
        if labels is not None and next_sentence_label is not None:
            _check_class_labels("labels", labels, self.config.vocab_size)
            _check_class_labels("next_sentence_label", next_sentence_label, 2)
            mlm = F.cross_entropy(prediction_logits.reshape(-1, self.config.vocab_size).float(), labels.reshape(-1))
            nsp = F.cross_entropy(seq_logits.reshape(-1, 2).float(), next_sentence_label.reshape(-1))
            loss = mlm + nsp
        result = MobileBertForPreTrainingOutput(loss, prediction_logits, seq_logits, out.hidden_states, out.attentions)
        return _finish(result, return_dict)


class MobileBertForMaskedLM(MobileBertPreTrainedModel):
    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.mobilebert = MobileBertModel(config, add_pooling_layer=False)
        self.cls = MobileBertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.mobilebert(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                              output_attentions, output_hidden_states, return_dict=True)
        logits = self.cls(out.last_hidden_state)  # (B, T, V)
        check_finite(logits)
        loss = None
        if labels is not None:
            _check_class_labels("labels", labels, self.config.vocab_size)
            loss = F.cross_entropy(logits.reshape(-1, self.config.vocab_size).float(), labels.reshape(-1))
        return _finish(MaskedLMOutput(loss, logits, out.hidden_states, out.attentions), return_dict)


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
            _check_class_labels("labels", labels, 2)
            loss = F.cross_entropy(logits.reshape(-1, 2).float(), labels.reshape(-1))
        return _finish(NextSentencePredictorOutput(loss, logits, out.hidden_states, out.attentions), return_dict)


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
        loss = None if labels is None else self._loss(logits, labels)
        return _finish(SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions), return_dict)

    def _loss(self, logits, labels):
        n = self.num_labels
        is_int = not (labels.is_floating_point() or labels.dtype == torch.bool)
        problem = checks.infer_problem_type(self.config.problem_type, n, is_int)
        logits = logits.float()
        if problem == "regression":
            labels = labels.to(logits.dtype)
            return F.mse_loss(logits.squeeze(), labels.squeeze()) if n == 1 else F.mse_loss(logits, labels)
        if problem == "single_label_classification":
            _check_class_labels("labels", labels, n)
            return F.cross_entropy(logits.reshape(-1, n), labels.reshape(-1))
        checks.check_same_shape("labels", labels.shape, logits.shape, of="logits (multi-label: one 0/1 column per label)")
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


class MobileBertForMultipleChoice(MobileBertPreTrainedModel):
    def __init__(self, config: MobileBertConfig):
        super().__init__(config)
        self.mobilebert = MobileBertModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        checks.check_inputs_choice(input_ids is not None, inputs_embeds is not None)
        if input_ids is not None:
            checks.check_rank("input_ids", input_ids.shape, 3, "(batch, num_choices, seq)")
            shape = tuple(input_ids.shape)
        else:
            checks.check_rank("inputs_embeds", inputs_embeds.shape, 4, "(batch, num_choices, seq, embedding_size)")
            shape = tuple(inputs_embeds.shape[:3])
        num_choices = shape[1]

        def flat(name, t):  # (B, C, T) -> (B*C, T), after checking it lines up with the input
            if t is None:
                return None
            checks.check_same_shape(name, t.shape, shape, of="the choices input (batch, num_choices, seq)")
            return t.reshape(-1, shape[2])

        out = self.mobilebert(
            flat("input_ids", input_ids), flat("attention_mask", attention_mask), flat("token_type_ids", token_type_ids),
            flat("position_ids", position_ids), head_mask,
            None if inputs_embeds is None else inputs_embeds.reshape(-1, shape[2], inputs_embeds.shape[-1]),
            output_attentions, output_hidden_states, return_dict=True,
        )
        logits = self.classifier(self.dropout(out.pooler_output)).view(-1, num_choices)  # (B, C)
        check_finite(logits)
        loss = None
        if labels is not None:
            _check_class_labels("labels", labels, num_choices)
            loss = F.cross_entropy(logits.float(), labels.reshape(-1))
        return _finish(MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions), return_dict)


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
            _check_class_labels("labels", labels, self.num_labels)
            loss = F.cross_entropy(logits.reshape(-1, self.num_labels).float(), labels.reshape(-1))
        return _finish(TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions), return_dict)


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
            seq = start_logits.shape[1]
            # Answers outside the (truncated) window: clamp to T and ignore, as BERT's SQuAD recipe does.
            start = start_positions.reshape(-1).long().clamp(0, seq)
            end = end_positions.reshape(-1).long().clamp(0, seq)
            loss = (
                F.cross_entropy(start_logits.float(), start, ignore_index=seq)
                + F.cross_entropy(end_logits.float(), end, ignore_index=seq)
            ) / 2
        result = QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
        return _finish(result, return_dict)
