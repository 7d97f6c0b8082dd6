"""Google's TF1 checkpoints: written here with the exact variable names, converted, and run."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

from conversion.convert import ConversionError, tf_to_pt  # noqa: E402
from conversion.tf1 import read_tf1_checkpoint, tf1_to_pt, tf1_to_tf  # noqa: E402
from conversion.weight_map import entries  # noqa: E402
from tests.helpers import assert_close, random_inputs, tiny_config  # noqa: E402


def tf1_arrays(config, arch, seed=0):
    """Random weights in TF1 layout, keyed by Google's variable names (kernels (in, out), extra_output_weights (V, H-E))."""
    rng = np.random.default_rng(seed)
    out = {}
    for e in entries(config, arch):
        if e.transform == "tie":
            continue
        name = e.tf1_name or {"classifier.weight": "output_weights", "classifier.bias": "output_bias"}[e.pt_name]
        shape = e.shape[::-1] if name.endswith("/kernel") or name.endswith("extra_output_weights") else e.shape
        scale = 1.0 if "LayerNorm" in name and name.endswith("gamma") else 0.2
        out[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return out


def write_tf1_checkpoint(prefix, arrays, optimizer=True):
    """A checkpoint as Google's run_pretraining writes it: plain variables plus Adam slots and global_step."""
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.Variable(a, name=n) for n, a in arrays.items()]
        if optimizer:
            name = next(iter(arrays))
            variables.append(tf.compat.v1.Variable(np.zeros_like(arrays[name]), name=name + "/adam_m"))
            variables.append(tf.compat.v1.Variable(np.zeros_like(arrays[name]), name=name + "/adam_v"))
            variables.append(tf.compat.v1.Variable(np.int64(7), name="global_step"))
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, str(prefix))


def pt_model(cls_name, config, state):
    import mobilebert_pt

    model = getattr(mobilebert_pt, cls_name)(config).eval()
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=False)
    assert not unexpected and all(k.endswith("decoder.weight") or "position_ids" in k for k in missing), (missing, unexpected)
    return model


def test_pretraining_checkpoint_matches_the_reference_loader(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = tiny_config()  # no_norm, bottleneck, shared q/k bottleneck, trigram, 2 FFNs
    arrays = tf1_arrays(config, "MobileBertForPreTraining")
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt", arrays)
    skipped = {}
    weights = read_tf1_checkpoint(tmp_path, skipped=skipped)  # the directory: its latest checkpoint
    assert skipped == {n: "optimizer state" for n in ("global_step", "bert/embeddings/word_embeddings/adam_m",
                                                      "bert/embeddings/word_embeddings/adam_v")}
    assert set(weights) == set(arrays)
    pt = tf1_to_pt(weights, config)  # architecture from the names: cls/predictions + cls/seq_relationship
    ours = pt_model("MobileBertForPreTraining", config, pt)

    ref_cfg = transformers.MobileBertConfig(**{k: v for k, v in config.to_dict().items() if k != "architectures"})
    ref = transformers.MobileBertForPreTraining(ref_cfg).eval()
    transformers.load_tf_weights_in_mobilebert(ref, ref_cfg, prefix)
    inputs = {k: torch.from_numpy(v) for k, v in random_inputs(config).items()}
    with torch.no_grad():
        a, b = ours(**inputs), ref(**inputs)
    assert_close(a.prediction_logits.numpy(), b.prediction_logits.numpy(), what="MLM logits")
    assert_close(a.seq_relationship_logits.numpy(), b.seq_relationship_logits.numpy(), what="NSP logits")

    # tf1 -> tf equals tf1 -> pt -> tf, and maps back to the same PT weights
    tf_weights = tf1_to_tf(weights, config)
    back = tf_to_pt(tf_weights, config, "MobileBertForPreTraining")
    assert set(back) == set(pt) and all(np.array_equal(back[k], pt[k]) for k in pt)
    np.testing.assert_array_equal(tf_weights["predictions___cls/predictions/dense/weight:0"],
                                  arrays["cls/predictions/extra_output_weights"].T)


def test_squad_checkpoint_becomes_the_question_answering_head(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = tiny_config("layer_norm_gelu", layer_norm_eps=1e-5)  # real LayerNorm: LayerNorm/{gamma,beta}
    arrays = tf1_arrays(config, "MobileBertForQuestionAnswering")
    # A SQuAD fine-tune keeps the pre-training pooler, which the QA head does not use.
    arrays["bert/pooler/dense/kernel"] = np.ones((32, 32), np.float32)
    arrays["bert/pooler/dense/bias"] = np.ones((32,), np.float32)
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt-12", arrays, optimizer=False)
    skipped = {}
    pt = tf1_to_pt(read_tf1_checkpoint(prefix + ".index"), config, skipped=skipped)
    assert "bert/pooler/dense/kernel" in skipped and "qa_outputs.weight" in pt
    ours = pt_model("MobileBertForQuestionAnswering", config, pt)

    # Reference: the backbone through transformers' TF1 loader, the span head by hand.
    ref_cfg = transformers.MobileBertConfig(**{k: v for k, v in config.to_dict().items() if k != "architectures"})
    backbone = transformers.MobileBertForPreTraining(ref_cfg).eval()
    del arrays["cls/squad/output_weights"], arrays["cls/squad/output_bias"]
    write_tf1_checkpoint(tmp_path / "backbone.ckpt", arrays, optimizer=False)
    transformers.load_tf_weights_in_mobilebert(backbone, ref_cfg, str(tmp_path / "backbone.ckpt"))
    inputs = {k: torch.from_numpy(v) for k, v in random_inputs(config).items()}
    squad = read_tf1_checkpoint(prefix)
    with torch.no_grad():
        out = ours(**inputs)
        seq = backbone.mobilebert(**inputs)[0].numpy()
    logits = seq @ squad["cls/squad/output_weights"].T + squad["cls/squad/output_bias"]
    assert_close(out.start_logits.numpy(), logits[..., 0], what="start logits")
    assert_close(out.end_logits.numpy(), logits[..., 1], what="end logits")


def test_tf1_strictness_and_bad_paths(tmp_path):
    config = tiny_config("separate_qk_no_bottleneck")
    arrays = tf1_arrays(config, "MobileBertModel")
    pt = tf1_to_pt(arrays, config, "MobileBertModel")
    assert "encoder.layer.0.ffn.2.output.LayerNorm.weight" in pt
    np.testing.assert_array_equal(pt["encoder.layer.1.attention.self.key.weight"],
                                  arrays["bert/encoder/layer_1/attention/self/key/kernel"].T)
    np.testing.assert_array_equal(pt["encoder.layer.0.ffn.1.output.LayerNorm.bias"],
                                  arrays["bert/encoder/layer_0/ffn_layer_1/output/FakeLayerNorm/beta"])
    bad = dict(arrays)
    del bad["bert/encoder/layer_0/ffn_layer_1/output/FakeLayerNorm/beta"]
    with pytest.raises(ConversionError, match="missing 1 tensor.*ffn_layer_1/output/FakeLayerNorm/beta"):
        tf1_to_pt(bad, config, "MobileBertModel")
    bad = {**arrays, "bert/encoder/layer_0/attention/self/key/kernel": np.zeros((3, 3), np.float32)}
    with pytest.raises(ConversionError, match="attention/self/key/kernel has shape"):
        tf1_to_pt(bad, config, "MobileBertModel")
    with pytest.raises(ConversionError, match="unexpected.*bert/encoder/layer_9/extra"):
        tf1_to_pt({**arrays, "bert/encoder/layer_9/extra": np.zeros(2)}, config, "MobileBertModel")
    with pytest.raises(FileNotFoundError, match="no TF1 checkpoint"):
        read_tf1_checkpoint(tmp_path / "nothing")
    (tmp_path / "junk.index").write_bytes(b"not a checkpoint index")
    with pytest.raises(ValueError, match="junk is not a readable TF1 checkpoint"):
        read_tf1_checkpoint(tmp_path / "junk")


def test_cli_tf1_to_pt_and_tf(tmp_path):
    from conversion.__main__ import main
    from conversion.formats import read_safetensors, read_tf_h5
    from mobilebert_common import MobileBertConfig

    config = tiny_config()
    arrays = tf1_arrays(config, "MobileBertForPreTraining")
    src = tmp_path / "google"
    src.mkdir()
    write_tf1_checkpoint(src / "mobilebert_variables.ckpt", arrays)
    # Google ships bert_config.json (no `architectures`) and vocab.txt next to the checkpoint.
    (src / "bert_config.json").write_text(config.to_json_string())
    (src / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in src.iterdir())

    assert main(["tf1-to-pt", str(src / "mobilebert_variables.ckpt"), str(tmp_path / "pt"), "--quiet"]) == 0
    pt = read_safetensors(tmp_path / "pt" / "model.safetensors")
    expected = tf1_to_pt(arrays, config)
    assert set(pt) == set(expected) and all(np.array_equal(pt[k], expected[k]) for k in pt)
    saved = MobileBertConfig.from_pretrained(str(tmp_path / "pt"))
    assert saved.architectures == ["MobileBertForPreTraining"] and (tmp_path / "pt" / "vocab.txt").exists()

    assert main(["tf1-to-tf", str(src), str(tmp_path / "tf"), "--quiet", "--dtype", "float16"]) == 0
    tf_weights = read_tf_h5(tmp_path / "tf" / "tf_model.h5")
    expected = tf1_to_tf(arrays, config)
    assert set(tf_weights) == set(expected)
    assert all(np.array_equal(tf_weights[k], expected[k].astype(np.float16)) for k in expected)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in src.iterdir()) == before
    # a missing variable: exit 1, nothing written
    assert main(["tf1-to-pt", str(tmp_path / "nothing"), str(tmp_path / "x"), "--quiet"]) == 1
    assert not (tmp_path / "x").exists()
