"""mobilebert_common.weights: the table equals the reference checkpoints' names and shapes, every head."""

import pytest

from mobilebert_common.weights import (ARCHITECTURES, detect_architecture, entries, normalize_architecture,
                                   resolve_architecture, tf_model_name, unused_by_design)
from mobilebert_common import MobileBertConfig
from tests.harness.models import VARIANTS, tiny_config
from tests.harness.reference import reference_dir

HEADS = [a[len("MobileBert"):] for a in ARCHITECTURES]


def _h5_datasets(path):
    h5py = pytest.importorskip("h5py")
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj.shape) if isinstance(obj, h5py.Dataset) else None)
    return out


# Every head on the default config, every config on the pre-training head (and the bare model).
REFERENCE_CASES = [(head, "default") for head in HEADS] + [
    (head, variant) for variant in VARIANTS if variant != "default" for head in ("ForPreTraining", "Model")]


@pytest.mark.parametrize("head,variant", REFERENCE_CASES)
def test_table_equals_reference_files(head, variant, tmp_path_factory):
    # Files saved by transformers now (PT safetensors, and the TF h5 its from_pt route writes) for a tiny config.
    from safetensors.numpy import load_file

    pt_dir = reference_dir(tmp_path_factory, "pt", head, variant)
    tf_dir = reference_dir(tmp_path_factory, "tf", head, variant)
    config = MobileBertConfig.from_pretrained(str(pt_dir))
    arch = "MobileBert" + head
    table = entries(config, arch)
    pt_file = load_file(str(pt_dir / "model.safetensors"))
    assert {e.pt_name: e.shape for e in table if e.transform != "tie"} == {k: v.shape for k, v in pt_file.items()}
    model = tf_model_name(arch)
    expected = {f"{e.tf_name.split('/')[0]}/{model}/{e.tf_name}": e.tf_shape for e in table}
    assert expected == _h5_datasets(tf_dir / "tf_model.h5")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_names_are_unique_and_tf1_names_cover_the_backbone(variant):
    config = tiny_config(variant)
    for arch in ARCHITECTURES:
        table = entries(config, arch)
        for attr in ("pt_name", "tf_name"):
            names = [getattr(e, attr) for e in table]
            assert len(names) == len(set(names)), (arch, attr)
        tf1 = [e.tf1_name for e in table if e.tf1_name]
        assert len(tf1) == len(set(tf1))
        # Every tensor but the tied decoder has a TF1 name, and its TF1 layout is the table's to say.
        assert all(bool(e.tf1_name) == (e.transform != "tie") for e in table)
        assert all(e.tf1_transform in ("none", "transpose") for e in table)
        assert all(e.tf1_transform == "transpose" for e in table if e.tf1_name and e.tf1_name.endswith("/kernel"))


def test_optional_modules_follow_the_config():
    names = lambda c: {e.pt_name for e in entries(c, "MobileBertModel")}  # noqa: E731
    default = names(tiny_config())
    assert "embeddings.embedding_transformation.weight" in default
    assert "encoder.layer.1.bottleneck.attention.dense.weight" in default
    assert "encoder.layer.1.ffn.0.output.LayerNorm.weight" in default and not any(".ffn.1." in n for n in default)
    no_bn = names(tiny_config("separate_qk_no_bottleneck"))
    assert not any("bottleneck" in n for n in no_bn) and "encoder.layer.0.ffn.2.output.dense.bias" in no_bn
    # Separate q/k bottlenecks: no bottleneck.attention at all.
    assert not any("bottleneck.attention" in n for n in names(tiny_config("bottleneck_attention")))
    assert "pooler.dense.weight" not in names(tiny_config("no_trigram_no_pooler_act"))
    # Built as the hub's checkpoints hold them, but never read by forward: marked unused.
    unused = lambda c: {e.pt_name for e in entries(c, "MobileBertModel") if e.unused}  # noqa: E731
    c = tiny_config(embedding_size=32, trigram_input=False)
    assert unused(c) == {"embeddings.embedding_transformation.weight", "embeddings.embedding_transformation.bias"}
    c = tiny_config(use_bottleneck_attention=True, key_query_shared_bottleneck=True)
    assert unused(c) == {f"encoder.layer.{i}.bottleneck.attention.{w}" for i in range(2)
                         for w in ("dense.weight", "dense.bias", "LayerNorm.weight", "LayerNorm.bias")}
    assert not unused(tiny_config())
    assert set(unused_by_design(c, "MobileBertModel", "pt")) == {"embeddings.position_ids"}
    ln = {e.tf_name for e in entries(tiny_config("layer_norm_gelu"), "MobileBertModel")}
    assert "mobilebert/embeddings/LayerNorm/gamma:0" in ln and "mobilebert/embeddings/LayerNorm/weight:0" not in ln


def test_tf1_names_follow_googles_checkpoint():
    table = {e.pt_name: e for e in entries(tiny_config(), "MobileBertForPreTraining")}
    assert table["mobilebert.encoder.layer.1.ffn.0.output.LayerNorm.weight"].tf1_name == \
        "bert/encoder/layer_1/ffn_layer_0/output/FakeLayerNorm/gamma"
    assert table["mobilebert.encoder.layer.0.attention.self.query.weight"].tf1_name == \
        "bert/encoder/layer_0/attention/self/query/kernel"
    assert table["cls.predictions.dense.weight"].tf1_name == "cls/predictions/extra_output_weights"
    assert table["cls.predictions.transform.LayerNorm.bias"].tf1_name == "cls/predictions/transform/LayerNorm/beta"
    assert table["cls.seq_relationship.weight"].tf1_name == "cls/seq_relationship/output_weights"
    qa = {e.pt_name: e for e in entries(tiny_config(), "MobileBertForQuestionAnswering")}
    assert qa["qa_outputs.weight"].tf1_name == "cls/squad/output_weights"
    # Layouts: TF1 kernels are (in, out) and extra_output_weights (V, H - E): transposed into PT's;
    # the output_weights of the NSP, SQuAD and run_classifier heads already are PT's (out, in).
    assert table["mobilebert.encoder.layer.0.attention.self.query.weight"].tf1_transform == "transpose"
    assert table["cls.predictions.dense.weight"].tf1_transform == "transpose"
    assert table["cls.predictions.dense.weight"].tf1_shape == (99, 16)
    assert table["cls.seq_relationship.weight"].tf1_transform == "none"
    assert qa["qa_outputs.weight"].tf1_transform == "none" and qa["qa_outputs.weight"].tf1_shape == (2, 32)
    # run_classifier.py fine-tunes: top-level output_weights (num_labels, H) / output_bias.
    for arch in ("MobileBertForSequenceClassification", "MobileBertForTokenClassification"):
        head = {e.pt_name: e for e in entries(tiny_config(num_labels=3), arch)}
        assert (head["classifier.weight"].tf1_name, head["classifier.weight"].tf1_shape) == ("output_weights", (3, 32))
        assert head["classifier.bias"].tf1_name == "output_bias"


def test_names_and_detection():
    assert tf_model_name("MobileBertForPreTraining") == "tf_mobile_bert_for_pre_training"
    assert tf_model_name("TFMobileBertForMaskedLM") == "tf_mobile_bert_for_masked_lm"
    assert tf_model_name("MobileBertModel") == "tf_mobile_bert_model"
    with pytest.raises(ValueError, match="unknown architecture 'Bert'"):
        normalize_architecture("Bert")
    config = tiny_config()
    for arch in ("MobileBertModel", "MobileBertForPreTraining", "MobileBertForMaskedLM",
                 "MobileBertForNextSentencePrediction", "MobileBertForQuestionAnswering"):
        table = entries(config, arch)
        assert detect_architecture([e.pt_name for e in table], "pt") == arch
        assert detect_architecture([e.tf_name for e in table], "tf") == arch
        assert detect_architecture([e.tf1_name for e in table if e.tf1_name], "tf1") == arch
    with pytest.raises(ValueError, match="classifier"):
        detect_architecture([e.pt_name for e in entries(config, "MobileBertForTokenClassification")], "pt")
    names = [e.pt_name for e in entries(config, "MobileBertForTokenClassification")]
    assert resolve_architecture(names, "pt", config.copy(architectures=["TFMobileBertForTokenClassification"])) == \
        "MobileBertForTokenClassification"
    assert resolve_architecture(names, "pt", config, "MobileBertForMultipleChoice") == "MobileBertForMultipleChoice"
