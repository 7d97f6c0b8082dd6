"""THE table: every MobileBERT tensor under its PyTorch, TF (Keras h5) and TF1 (Google's checkpoint) name.

API (others call these):

    entries(config, architecture) -> list[Entry]   # ordered; one Entry per tensor of the model
    Entry(pt_name, tf_name, transform, tf1_name, shape, tied_to, unused, tf1_transform)
        transform: "none"      same array in both frameworks (embeddings, biases, norms, predictions dense)
                   "transpose" TF Dense kernel (in, out) = PT Linear weight (out, in) transposed
                   "tie"       TF-only copy of another tensor (the masked-LM decoder = word embeddings);
                               the PT model ties it, so PT files never hold it
        tf1_name:  the variable in Google's TF1 checkpoints (None: TF1 has no such tensor, the decoder)
        tf1_transform: "none" or "transpose", TF1 array -> PT array: TF1 dense kernels are (in, out),
                   extra_output_weights is (vocab, hidden - embedding); the output_weights of the
                   NSP, SQuAD and run_classifier heads already have PT's (out, in)
        shape:     the PT-layout shape the config implies
        unused:    built and stored (the hub's checkpoints hold it) but never read by forward for this config
    ARCHITECTURES, normalize_architecture(name), detect_architecture(names, kind), resolve_architecture(...)
    unused_by_design(config, architecture, kind) -> {name: reason}  # tensors a source may hold that we skip
    tf_model_name(architecture) -> "tf_mobile_bert_for_pre_training" (the h5's model-name prefix)

Which tensors exist depends on the config, exactly as the model classes (ours and the hub's)
build them: embedding_transformation always (unused when neither trigram_input nor
embedding_size != hidden_size); bottleneck.* only with use_bottleneck (bottleneck.attention when
key_query_shared_bottleneck, unused when use_bottleneck_attention); ffn.0 ..
ffn.(num_feedforward_networks - 2); pooler.dense only when classifier_activation and the head
has a pooler.

Names: PT heads prefix the backbone with "mobilebert." (a bare MobileBertModel file has no
prefix); TF always nests the backbone under "mobilebert/" and drops the h5's model-name
component; TF1 uses "bert/..." and "cls/...", and run_classifier.py fine-tunes keep their
classifier as the top-level output_weights / output_bias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional

from mobilebert_common.config import MobileBertConfig

# architecture -> (has_pooler, head modules). TF classes are the same names with a "TF" prefix.
ARCHITECTURES = {
    "MobileBertModel": (True, ()),
    "MobileBertForPreTraining": (True, ("predictions", "seq_relationship")),
    "MobileBertForMaskedLM": (False, ("predictions",)),
    "MobileBertForNextSentencePrediction": (True, ("seq_relationship",)),
    "MobileBertForSequenceClassification": (True, ("classifier",)),
    "MobileBertForMultipleChoice": (True, ("classifier",)),
    "MobileBertForTokenClassification": (False, ("classifier",)),
    "MobileBertForQuestionAnswering": (False, ("qa_outputs",)),
}

TRANSFORMS = ("none", "transpose", "tie")
TF1_TRANSFORMS = ("none", "transpose")


@dataclass(frozen=True)
class Entry:
    pt_name: str  # PyTorch state-dict key, e.g. "mobilebert.encoder.layer.0.ffn.0.output.dense.weight"
    tf_name: str  # Keras weight name without the model prefix, e.g. "mobilebert/encoder/layer_._0/ffn.0/output/dense/kernel:0"
    transform: str  # "none" | "transpose" | "tie"
    tf1_name: Optional[str] = None  # Google's TF1 checkpoint variable, e.g. "bert/encoder/layer_0/ffn_layer_0/output/dense/kernel"
    shape: tuple = ()  # PT-layout shape implied by the config
    tied_to: Optional[str] = None  # for "tie": pt_name of the tensor this one copies
    unused: bool = False  # in the checkpoint layout, but forward never reads it for this config
    tf1_transform: str = "none"  # TF1 array -> PT array: "none" | "transpose"

    @property
    def tf_shape(self) -> tuple:
        return tuple(reversed(self.shape)) if self.transform == "transpose" else tuple(self.shape)

    @property
    def tf1_shape(self) -> tuple:
        return tuple(reversed(self.shape)) if self.tf1_transform == "transpose" else tuple(self.shape)


def normalize_architecture(name: str) -> str:
    """'TFMobileBertForMaskedLM' or 'MobileBertForMaskedLM' -> 'MobileBertForMaskedLM'; ValueError otherwise."""
    if isinstance(name, str) and name.startswith("TFMobileBert"):
        name = name[2:]
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; allowed: {', '.join(ARCHITECTURES)} (or the same with a TF prefix)")
    return name


def tf_model_name(architecture: str) -> str:
    """Keras name of the TF model, the first component of every h5 weight name: 'tf_mobile_bert_for_masked_lm'."""
    cls = "TF" + normalize_architecture(architecture)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls).lower()


class _Builder:
    """Accumulates entries; knows how each kind of module is named in the three schemes."""

    def __init__(self, config: MobileBertConfig):
        self.config = config
        self.out: list[Entry] = []

    def dense(self, pt: str, tf: str, tf1: str, out_features: int, in_features: int, bias: bool = True,
              unused: bool = False):
        self.out.append(Entry(f"{pt}.weight", f"{tf}/kernel:0", "transpose", f"{tf1}/kernel", (out_features, in_features),
                              unused=unused, tf1_transform="transpose"))
        if bias:
            self.out.append(Entry(f"{pt}.bias", f"{tf}/bias:0", "none", f"{tf1}/bias", (out_features,), unused=unused))

    def norm(self, pt: str, tf: str, tf1: str, size: int, real: Optional[bool] = None, unused: bool = False):
        """A backbone norm: NoNorm (weight/bias; TF1 FakeLayerNorm) or a real LayerNorm (gamma/beta)."""
        real = self.config.normalization_type == "layer_norm" if real is None else real
        w, b = ("gamma", "beta") if real else ("weight", "bias")
        tf1_scope = tf1 + ("/LayerNorm" if real else "/FakeLayerNorm")
        self.out.append(Entry(f"{pt}.LayerNorm.weight", f"{tf}/LayerNorm/{w}:0", "none", f"{tf1_scope}/gamma", (size,),
                              unused=unused))
        self.out.append(Entry(f"{pt}.LayerNorm.bias", f"{tf}/LayerNorm/{b}:0", "none", f"{tf1_scope}/beta", (size,),
                              unused=unused))

    def plain(self, pt: str, tf: str, tf1: str, shape: tuple):
        self.out.append(Entry(pt, tf, "none", tf1, tuple(shape)))


def _backbone(b: _Builder, pt: str, with_pooler: bool) -> None:
    """pt: "" for a bare MobileBertModel, "mobilebert." for heads."""
    c = b.config
    E, H, T, I = c.embedding_size, c.hidden_size, c.true_hidden_size, c.intermediate_size
    e_pt, e_tf, e_tf1 = pt + "embeddings", "mobilebert/embeddings", "bert/embeddings"
    b.plain(f"{e_pt}.word_embeddings.weight", f"{e_tf}/word_embeddings/weight:0", f"{e_tf1}/word_embeddings", (c.vocab_size, E))
    b.plain(f"{e_pt}.token_type_embeddings.weight", f"{e_tf}/token_type_embeddings/embeddings:0",
            f"{e_tf1}/token_type_embeddings", (c.type_vocab_size, H))
    b.plain(f"{e_pt}.position_embeddings.weight", f"{e_tf}/position_embeddings/embeddings:0",
            f"{e_tf1}/position_embeddings", (c.max_position_embeddings, H))
    b.dense(f"{e_pt}.embedding_transformation", f"{e_tf}/embedding_transformation", f"{e_tf1}/embedding_transformation",
            H, c.embedding_input_size, unused=not c.transforms_input)
    b.norm(e_pt, e_tf, e_tf1, H)

    qk_in, v_in = c.query_key_input_size, c.value_input_size
    for i in range(c.num_hidden_layers):
        l_pt, l_tf, l_tf1 = f"{pt}encoder.layer.{i}", f"mobilebert/encoder/layer_._{i}", f"bert/encoder/layer_{i}"

        def sub(path: str, i_pt=l_pt, i_tf=l_tf, i_tf1=l_tf1):
            # one sub-module path in the three schemes: "attention.self.query" -> (pt, tf, tf1)
            tf_path = path.replace(".", "/")
            tf1_path = re.sub(r"^ffn/(\d+)", r"ffn_layer_\1", tf_path)
            tf_path = re.sub(r"^ffn/(\d+)", r"ffn.\1", tf_path)
            return f"{i_pt}.{path}", f"{i_tf}/{tf_path}", f"{i_tf1}/{tf1_path}"

        b.dense(*sub("attention.self.query"), T, qk_in)
        b.dense(*sub("attention.self.key"), T, qk_in)
        b.dense(*sub("attention.self.value"), T, v_in)
        b.dense(*sub("attention.output.dense"), T, T)
        b.norm(*sub("attention.output"), T)
        b.dense(*sub("intermediate.dense"), I, T)
        b.dense(*sub("output.dense"), T, I)
        b.norm(*sub("output"), T)
        if c.use_bottleneck:
            b.dense(*sub("output.bottleneck.dense"), H, T)
            b.norm(*sub("output.bottleneck"), H)
            b.dense(*sub("bottleneck.input.dense"), T, H)
            b.norm(*sub("bottleneck.input"), T)
            if c.key_query_shared_bottleneck:
                b.dense(*sub("bottleneck.attention.dense"), T, H, unused=not c.uses_shared_bottleneck)
                b.norm(*sub("bottleneck.attention"), T, unused=not c.uses_shared_bottleneck)
        for j in range(c.num_feedforward_networks - 1):
            b.dense(*sub(f"ffn.{j}.intermediate.dense"), I, T)
            b.dense(*sub(f"ffn.{j}.output.dense"), T, I)
            b.norm(*sub(f"ffn.{j}.output"), T)
    if with_pooler and c.classifier_activation:
        b.dense(f"{pt}pooler.dense", "mobilebert/pooler/dense", "bert/pooler/dense", H, H)


def _predictions(b: _Builder, word_embeddings_pt: str) -> None:
    c = b.config
    p_tf = "predictions___cls/predictions"
    b.dense("cls.predictions.transform.dense", f"{p_tf}/transform/dense", "cls/predictions/transform/dense", c.hidden_size, c.hidden_size)
    # The transform's norm is always a real LayerNorm, whatever normalization_type.
    b.norm("cls.predictions.transform", f"{p_tf}/transform", "cls/predictions/transform", c.hidden_size, real=True)
    # (hidden - embedding, vocab) in PT and TF alike; TF1 stores it (vocab, hidden - embedding).
    b.out.append(Entry("cls.predictions.dense.weight", f"{p_tf}/dense/weight:0", "none",
                       "cls/predictions/extra_output_weights", (c.mlm_dense_size, c.vocab_size),
                       tf1_transform="transpose"))
    b.plain("cls.predictions.bias", f"{p_tf}/bias:0", "cls/predictions/output_bias", (c.vocab_size,))
    b.out.append(Entry("cls.predictions.decoder.weight", f"{p_tf}/decoder/weight:0", "tie", None,
                       (c.vocab_size, c.embedding_size), tied_to=word_embeddings_pt))


def entries(config: MobileBertConfig, architecture: str) -> list[Entry]:
    """Every tensor of `architecture` built from `config`, in the order the TF model creates them."""
    arch = normalize_architecture(architecture)
    has_pooler, heads = ARCHITECTURES[arch]
    pt = "" if arch == "MobileBertModel" else "mobilebert."
    b = _Builder(config)
    _backbone(b, pt, has_pooler)
    H = config.hidden_size
    if "predictions" in heads:
        _predictions(b, f"{pt}embeddings.word_embeddings.weight")
    if "seq_relationship" in heads:
        # TF1 keeps BERT's layout: output_weights (2, hidden) = the PT weight, not transposed.
        b.out.append(Entry("cls.seq_relationship.weight", "seq_relationship___cls/seq_relationship/kernel:0", "transpose",
                           "cls/seq_relationship/output_weights", (2, H)))
        b.out.append(Entry("cls.seq_relationship.bias", "seq_relationship___cls/seq_relationship/bias:0", "none",
                           "cls/seq_relationship/output_bias", (2,)))
    if "classifier" in heads:
        n = 1 if arch == "MobileBertForMultipleChoice" else config.num_labels
        # run_classifier.py's top-level output_weights (num_labels, H) / output_bias, PT's layout.
        b.out.append(Entry("classifier.weight", "classifier/kernel:0", "transpose", "output_weights", (n, H)))
        b.out.append(Entry("classifier.bias", "classifier/bias:0", "none", "output_bias", (n,)))
    if "qa_outputs" in heads:
        b.out.append(Entry("qa_outputs.weight", "qa_outputs/kernel:0", "transpose", "cls/squad/output_weights", (2, H)))
        b.out.append(Entry("qa_outputs.bias", "qa_outputs/bias:0", "none", "cls/squad/output_bias", (2,)))
    return b.out


def unused_by_design(config: MobileBertConfig, architecture: str, kind: str) -> dict:
    """Tensors a source file may hold that no model builds: {name: reason}. Skipped, and reported.

    kind: "pt" or "tf". Only older PyTorch files hold such a tensor (the position_ids buffer).
    """
    arch = normalize_architecture(architecture)
    if kind != "pt":
        return {}
    pt = "" if arch == "MobileBertModel" else "mobilebert."
    return {f"{pt}embeddings.position_ids": "position_ids is a buffer (arange), not a weight; older files saved it"}


# Head tensors that identify an architecture, by naming scheme.
_HEAD_MARKERS = {
    "pt": {"predictions": "cls.predictions.", "seq_relationship": "cls.seq_relationship.", "classifier": "classifier.",
           "qa_outputs": "qa_outputs.", "pooler": "pooler.dense."},
    "tf": {"predictions": "predictions___cls/", "seq_relationship": "seq_relationship___cls/", "classifier": "classifier/",
           "qa_outputs": "qa_outputs/", "pooler": "mobilebert/pooler/"},
    "tf1": {"predictions": "cls/predictions/", "seq_relationship": "cls/seq_relationship/", "classifier": "output_weights",
            "qa_outputs": "cls/squad/", "pooler": "bert/pooler/"},
}


def detect_architecture(names: Iterable[str], kind: str) -> str:
    """The architecture whose head tensors `names` hold (kind: "pt", "tf" or "tf1").

    Sequence classification, multiple choice and token classification share the "classifier"
    head and cannot be told apart by names alone: ValueError asking for the architecture
    (callers prefer config.architectures anyway).
    """
    if kind not in _HEAD_MARKERS:
        raise ValueError(f"kind must be one of {', '.join(_HEAD_MARKERS)}, got {kind!r}")
    markers = _HEAD_MARKERS[kind]
    names = list(names)

    def has(head):
        m = markers[head]
        return any(n.startswith(m) or (kind == "pt" and n.startswith("mobilebert." + m)) for n in names)

    if kind == "tf1":
        heads = {h for h in ("predictions", "seq_relationship", "qa_outputs", "pooler") if has(h)}
        heads |= {"classifier"} if any(n in ("output_weights", "output_bias") for n in names) else set()
    else:
        heads = {h for h in markers if has(h)}
    pred, nsp = "predictions" in heads, "seq_relationship" in heads
    if pred and nsp:
        return "MobileBertForPreTraining"
    if pred:
        return "MobileBertForMaskedLM"
    if nsp:
        return "MobileBertForNextSentencePrediction"
    if "qa_outputs" in heads:
        return "MobileBertForQuestionAnswering"
    if "classifier" in heads:
        raise ValueError(
            "the weights hold a 'classifier' head, which MobileBertForSequenceClassification, "
            "MobileBertForMultipleChoice and MobileBertForTokenClassification share: set config.architectures "
            "or pass the architecture explicitly"
        )
    return "MobileBertModel"


def resolve_architecture(names: Iterable[str], kind: str, config: MobileBertConfig, architecture: Optional[str] = None) -> str:
    """An explicit architecture, else the one config.architectures names, else the one the tensors show."""
    if architecture is not None:
        return normalize_architecture(architecture)
    for name in config.architectures or ():
        try:
            return normalize_architecture(name)
        except ValueError:
            continue
    return detect_architecture(names, kind)
