"""The task heads and the public model classes built on the MobileBertModel backbone.

Each class holds the backbone as ``self.mobilebert`` (so its keys carry the hub's "mobilebert."
prefix) and a small head. The losses and their label checks are in losses.py (the loss of each class
is the one in DESIGN.md); labels outside the allowed range are a ValueError before any kernel runs
(a CUDA device-side assert cannot be recovered from).
"""

from __future__ import annotations

import warnings
import torch
from torch import nn

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
from mobilebert_pt.backbone import MobileBertModel, check_finite
from mobilebert_pt.inputs import flatten_choices, tensors
from mobilebert_pt.losses import cross_entropy, sequence_classification_loss, span_loss
from mobilebert_pt.modeling import ACT2FN
from mobilebert_pt.pretrained import MobileBertPreTrainedModel


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
    """logits = transform(h) @ [E^T (E x V) ; dense.weight (H-E x V)] + bias, with E the tied word embeddings."""

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        self.transform = MobileBertPredictionHeadTransform(config)
        self.dense = weight_only_linear(config.vocab_size, config.hidden_size - config.embedding_size)  # (H - E, V)
        # Its weight IS the word-embedding table (V, E), set by MobileBertPreTrainedModel.tie_weights in post_init;
        # not saved. Built empty: a table of its own would be allocated (and drawn) only to be dropped at the tie.
        self.decoder = weight_only_linear(config.embedding_size, 0)
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
            loss = cross_entropy("labels", prediction_logits, labels) + cross_entropy(
                "next_sentence_label", seq_logits, next_sentence_label)
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
            loss = cross_entropy("labels", logits, labels)
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
            loss = cross_entropy("labels", logits, labels)
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
        loss = None if labels is None else sequence_classification_loss(logits, labels, self.config.problem_type)
        return _finish(SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions), return_dict)


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
            loss = cross_entropy("labels", logits, labels)
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
            loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        result = QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
        return _finish(result, return_dict)
