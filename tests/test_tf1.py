"""Google's TF1 checkpoints: written here with the exact variable names, converted, and run."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

from conversion.convert import ConversionError, tf_to_pt  # noqa: E402
from conversion.tf1 import read_tf1_checkpoint, tf1_to_pt, tf1_to_tf  # noqa: E402
from mobilebert_common.weights import entries  # noqa: E402
from tests.harness.models import assert_close, random_inputs, tiny_config  # noqa: E402


def tf1_arrays(config, arch, seed=0, with_unused=True):
    """Random weights in TF1 layout, keyed by Google's variable names, as the table gives them
    (Entry.tf1_name, Entry.tf1_shape: kernels (in, out), extra_output_weights (V, H-E)).
    with_unused=False leaves out what Google's code does not build (Entry.unused)."""
    rng = np.random.default_rng(seed)
    out = {}
    for e in entries(config, arch):
        if e.transform == "tie" or (e.unused and not with_unused):
            continue
        scale = 1.0 if "LayerNorm" in e.tf1_name and e.tf1_name.endswith("gamma") else 0.2
        out[e.tf1_name] = (rng.standard_normal(e.tf1_shape) * scale).astype(np.float32)
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
    name = "bert/encoder/layer_1/attention/self/key/kernel"
    bad = {**arrays, name: arrays[name].astype(np.int32)}
    with pytest.raises(ConversionError, match=f"not floating point.*{name} \\(int32\\)"):
        tf1_to_pt(bad, config, "MobileBertModel")
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
    # no checkpoint at that path: exit 1, nothing written
    assert main(["tf1-to-pt", str(tmp_path / "nothing"), str(tmp_path / "x"), "--quiet"]) == 1
    assert not (tmp_path / "x").exists()


def write_lamb_checkpoint(prefix, arrays):
    """A checkpoint with the slots a TF1 tf.train optimizer named "LAMB" creates, as Google's LAMB does:
    <var>/LAMB and <var>/LAMB_1 (m, v), beta1_power, beta2_power, and global_step."""
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.Variable(a, name=n) for n, a in arrays.items()]
        step = tf.compat.v1.train.get_or_create_global_step()
        loss = tf.add_n([tf.reduce_sum(v) for v in variables[:3]])
        train = tf.compat.v1.train.AdamOptimizer(name="LAMB").minimize(loss, global_step=step, var_list=variables[:3])
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(train)  # one step: the slots hold values, the trained variables moved
            return saver.save(sess, str(prefix)), dict(zip(arrays, sess.run(variables)))


def test_lamb_slots_are_skipped(tmp_path):
    config = tiny_config()
    arrays = tf1_arrays(config, "MobileBertForPreTraining")
    prefix, saved = write_lamb_checkpoint(tmp_path / "model.ckpt", arrays)
    skipped = {}
    weights = read_tf1_checkpoint(prefix, skipped=skipped)
    first = list(arrays)[:3]
    assert set(skipped) == {f"{n}/LAMB" for n in first} | {f"{n}/LAMB_1" for n in first} | {
        "beta1_power", "beta2_power", "global_step"}
    assert set(weights) == set(arrays)
    pt = tf1_to_pt(weights, config)
    entry = {e.tf1_name: e for e in entries(config, "MobileBertForPreTraining")}[first[0]]
    np.testing.assert_array_equal(pt[entry.pt_name], saved[first[0]].T if entry.tf1_transform == "transpose" else saved[first[0]])


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # transformers' (H - E = 0, V) dense
def test_unused_tensors_absent_from_googles_checkpoint_are_filled_and_reported(tmp_path):
    """E == H without trigram: Google's code builds no embedding_transformation; the hub's layout (and ours) has one."""
    transformers = pytest.importorskip("transformers")
    config = tiny_config("no_trigram_no_pooler_act")
    arrays = tf1_arrays(config, "MobileBertForMaskedLM", with_unused=False)
    assert not any("embedding_transformation" in n for n in arrays)
    prefix = write_tf1_checkpoint(tmp_path / "model.ckpt", arrays, optimizer=False)
    filled = {}
    pt = tf1_to_pt(read_tf1_checkpoint(prefix), config, "MobileBertForMaskedLM", filled=filled)
    names = {"mobilebert.embeddings.embedding_transformation.weight", "mobilebert.embeddings.embedding_transformation.bias"}
    assert set(filled) == names and all("filled with zeros" in r for r in filled.values())
    assert all(not pt[n].any() and pt[n].dtype == np.float32 for n in names)
    # A tensor that forward reads is still required.
    del arrays["bert/embeddings/FakeLayerNorm/gamma"]
    with pytest.raises(ConversionError, match="missing 1 tensor.*bert/embeddings/FakeLayerNorm/gamma"):
        tf1_to_pt(arrays, config, "MobileBertForMaskedLM")

    ours = pt_model("MobileBertForMaskedLM", config, pt)
    ref_cfg = transformers.MobileBertConfig(**{k: v for k, v in config.to_dict().items() if k != "architectures"})
    ref = transformers.MobileBertForMaskedLM(ref_cfg).eval()
    transformers.load_tf_weights_in_mobilebert(ref, ref_cfg, prefix)
    inputs = {k: torch.from_numpy(v) for k, v in random_inputs(config).items()}
    with torch.no_grad():
        assert_close(ours(**inputs).logits.numpy(), ref(**inputs).logits.numpy(), what="MLM logits")


def test_squad_checkpoint_through_tf1_to_tf_and_the_cli(tmp_path):
    from conversion.__main__ import main
    from conversion.formats import read_safetensors, read_tf_h5

    config = tiny_config("layer_norm_gelu", layer_norm_eps=1e-5)
    arrays = tf1_arrays(config, "MobileBertForQuestionAnswering", with_unused=False)
    src = tmp_path / "squad"
    src.mkdir()
    write_tf1_checkpoint(src / "model.ckpt-300", arrays)
    (src / "bert_config.json").write_text(config.to_json_string())
    tf_weights = tf1_to_tf(arrays, config)  # the head found from cls/squad/*
    np.testing.assert_array_equal(tf_weights["qa_outputs/kernel:0"], arrays["cls/squad/output_weights"].T)
    np.testing.assert_array_equal(tf_weights["qa_outputs/bias:0"], arrays["cls/squad/output_bias"])

    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["tf1-to-tf", str(src), str(tmp_path / "tf"), "--quiet"]) == 0
    assert "MobileBertForQuestionAnswering" in out.getvalue() and "filled mobilebert." in out.getvalue()
    written = read_tf_h5(tmp_path / "tf" / "tf_model.h5")
    assert set(written) == set(tf_weights) and all(np.array_equal(written[k], tf_weights[k]) for k in written)
    assert main(["tf1-to-pt", str(src / "model.ckpt-300"), str(tmp_path / "pt"), "--quiet"]) == 0
    pt = read_safetensors(tmp_path / "pt" / "model.safetensors")
    np.testing.assert_array_equal(pt["qa_outputs.weight"], arrays["cls/squad/output_weights"])
    import mobilebert_pt
    import mobilebert_tf

    x = random_inputs(config)
    tf_out = mobilebert_tf.TFMobileBertForQuestionAnswering.from_pretrained(str(tmp_path / "tf"))(x, training=False)
    pt_out = mobilebert_pt.MobileBertForQuestionAnswering.from_pretrained(str(tmp_path / "pt"))
    with torch.no_grad():
        pt_out = pt_out(**{k: torch.from_numpy(v) for k, v in x.items()})
    assert_close(tf_out.start_logits.numpy(), pt_out.start_logits.numpy(), what="start logits tf1-to-tf vs tf1-to-pt")
    assert_close(tf_out.end_logits.numpy(), pt_out.end_logits.numpy(), what="end logits")


def test_run_classifier_layout_through_the_cli(tmp_path):
    """run_classifier.py fine-tunes: a top-level output_weights (num_labels, H) / output_bias over the pooler."""
    transformers = pytest.importorskip("transformers")
    from conversion.__main__ import main

    config = tiny_config(num_labels=3)
    arrays = tf1_arrays(config, "MobileBertForSequenceClassification")
    assert arrays["output_weights"].shape == (3, 32) and arrays["output_bias"].shape == (3,)
    src = tmp_path / "glue"
    src.mkdir()
    write_tf1_checkpoint(src / "model.ckpt-50", arrays)
    (src / "bert_config.json").write_text(config.to_json_string())
    # The classifier head is shared by three classes: the CLI asks which (or config.architectures says).
    assert main(["tf1-to-pt", str(src), str(tmp_path / "x"), "--quiet"]) == 1 and not (tmp_path / "x").exists()
    assert main(["tf1-to-pt", str(src), str(tmp_path / "pt"), "--quiet",
                 "--architecture", "MobileBertForSequenceClassification"]) == 0
    import mobilebert_pt

    ours = mobilebert_pt.MobileBertForSequenceClassification.from_pretrained(str(tmp_path / "pt"))
    np.testing.assert_array_equal(ours.classifier.weight.detach().numpy(), arrays["output_weights"])  # PT's layout already

    # Reference: backbone and pooler through transformers' TF1 loader, the classifier by hand.
    ref_cfg = transformers.MobileBertConfig(**{k: v for k, v in config.to_dict().items() if k != "architectures"})
    ref = transformers.MobileBertModel(ref_cfg).eval()
    backbone = {k: v for k, v in arrays.items() if not k.startswith("output_")}
    write_tf1_checkpoint(tmp_path / "backbone.ckpt", backbone, optimizer=False)
    transformers.load_tf_weights_in_mobilebert(ref, ref_cfg, str(tmp_path / "backbone.ckpt"))
    inputs = {k: torch.from_numpy(v) for k, v in random_inputs(config).items()}
    with torch.no_grad():
        pooled = ref(**inputs).pooler_output.numpy()
        logits = ours(**inputs).logits.numpy()
    assert_close(logits, pooled @ arrays["output_weights"].T + arrays["output_bias"], what="classifier logits")
