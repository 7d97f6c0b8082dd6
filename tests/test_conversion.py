"""conversion.formats and conversion.convert: round trips, the reference's files, strictness, bad files."""

import json
import shutil

import numpy as np
import pytest

from conversion.convert import ConversionError, pt_to_tf, tf_to_pt
from conversion.formats import (read_pytorch_bin, read_safetensors, read_sharded_safetensors, read_tf_h5,
                                write_safetensors, write_tf_h5)
from mobilebert_common.weights import ARCHITECTURES, entries, tf_model_name
from mobilebert_common import MobileBertConfig
from tests.harness.models import VARIANTS, tiny_config
from tests.harness.conversion import assert_same, random_pt
from tests.harness.reference import reference_dir

HEADS = [a[len("MobileBert"):] for a in ARCHITECTURES]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_round_trips_are_bit_exact_through_files(tmp_path, arch, variant):
    config = tiny_config(variant)
    pt = random_pt(config, arch)
    tf = pt_to_tf(pt, config, arch)
    assert set(tf) == {e.tf_name for e in entries(config, arch)}
    write_tf_h5(tmp_path / "tf_model.h5", tf, model_name=tf_model_name(arch))
    tf_read = read_tf_h5(tmp_path / "tf_model.h5")
    assert_same(tf_read, tf)
    back = tf_to_pt(tf_read, config, arch)
    assert_same(back, pt)
    write_safetensors(tmp_path / "model.safetensors", back, {"format": "pt"})
    assert_same(read_safetensors(tmp_path / "model.safetensors"), pt)
    # tf -> pt -> tf
    assert_same(pt_to_tf(tf_to_pt(tf, config, arch), config, arch), tf)


def test_transforms_are_the_right_ones():
    config = tiny_config()
    pt = random_pt(config, "MobileBertForPreTraining")
    tf = pt_to_tf(pt, config)  # architecture detected from the names
    q = "encoder.layer.0.attention.self.query"
    np.testing.assert_array_equal(tf[f"mobilebert/{q.replace('.', '/').replace('layer/0', 'layer_._0')}/kernel:0"],
                                  pt[f"mobilebert.{q}.weight"].T)
    np.testing.assert_array_equal(tf["predictions___cls/predictions/decoder/weight:0"],
                                  pt["mobilebert.embeddings.word_embeddings.weight"])
    np.testing.assert_array_equal(tf["predictions___cls/predictions/dense/weight:0"], pt["cls.predictions.dense.weight"])
    np.testing.assert_array_equal(tf["seq_relationship___cls/seq_relationship/kernel:0"], pt["cls.seq_relationship.weight"].T)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_dtype_is_kept(tmp_path, dtype):
    config = tiny_config()
    pt = random_pt(config, "MobileBertForMaskedLM", dtype=dtype)
    tf = pt_to_tf(pt, config, "MobileBertForMaskedLM")
    assert {a.dtype for a in tf.values()} == {np.dtype(dtype)}
    write_tf_h5(tmp_path / "w.h5", tf, model_name="m")
    assert_same(tf_to_pt(read_tf_h5(tmp_path / "w.h5"), config, "MobileBertForMaskedLM"), pt)


def test_bfloat16_safetensors_round_trip(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    save_file({"a": torch.arange(6, dtype=torch.bfloat16).reshape(2, 3)}, str(tmp_path / "x.safetensors"))
    a = read_safetensors(tmp_path / "x.safetensors")["a"]
    assert a.dtype == ml_dtypes.bfloat16 and a.astype(np.float32).tolist() == [[0, 1, 2], [3, 4, 5]]
    write_safetensors(tmp_path / "y.safetensors", {"a": a}, {"format": "pt"})
    assert load_file(str(tmp_path / "y.safetensors"))["a"].dtype == torch.bfloat16
    with pytest.raises(ValueError, match="bfloat16"):
        write_tf_h5(tmp_path / "z.h5", {"m/a:0": a}, model_name="x")
    assert not (tmp_path / "z.h5").exists()


@pytest.mark.parametrize("head", HEADS)
def test_reference_files_convert_to_each_other(head, tmp_path_factory):
    # One model saved by transformers in both layouts (its TF file through its own from_pt converter).
    pt_dir = reference_dir(tmp_path_factory, "pt", head)
    tf_dir = reference_dir(tmp_path_factory, "tf", head)
    config = MobileBertConfig.from_pretrained(str(pt_dir))
    pt = read_safetensors(pt_dir / "model.safetensors")
    tf = read_tf_h5(tf_dir / "tf_model.h5")
    assert_same(pt_to_tf(pt, config), tf)  # architecture from config.architectures
    assert_same(tf_to_pt(tf, config), pt)


def test_reference_model_built_now_reads_back(tmp_path):
    # transformers builds and saves both files now (torch + safetensors, TF + h5): our readers agree.
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    cfg = transformers.MobileBertConfig(vocab_size=30, hidden_size=32, embedding_size=16, intra_bottleneck_size=16,
                                        num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                                        num_feedforward_networks=3, max_position_embeddings=16)
    torch.manual_seed(0)
    model = transformers.MobileBertForPreTraining(cfg).eval()
    model.save_pretrained(tmp_path / "st")
    model.save_pretrained(tmp_path / "bin", safe_serialization=False)
    state = {k: v.numpy() for k, v in model.state_dict().items() if k != "cls.predictions.decoder.weight"}
    st = read_safetensors(tmp_path / "st" / "model.safetensors")
    assert set(st) <= set(state) and all(np.array_equal(st[k], state[k]) for k in st)
    binary = read_pytorch_bin(tmp_path / "bin" / "pytorch_model.bin")
    assert all(np.array_equal(binary[k], state[k]) for k in st)
    config = MobileBertConfig.from_pretrained(str(tmp_path / "st"))
    assert_same(tf_to_pt(pt_to_tf(binary, config), config), st)  # bin may hold the tied decoder: dropped


@pytest.mark.parametrize("head", ["ForPreTraining", "ForSequenceClassification"])
def test_written_h5_loads_in_transformers_tf(head, tmp_path, tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("tensorflow")
    ref = reference_dir(tmp_path_factory, "pt", head)
    config = MobileBertConfig.from_pretrained(str(ref))
    shutil.copy(ref / "config.json", tmp_path / "config.json")
    pt = read_safetensors(ref / "model.safetensors")
    write_tf_h5(tmp_path / "tf_model.h5", pt_to_tf(pt, config), model_name=tf_model_name("MobileBert" + head))
    model, info = getattr(transformers, "TFMobileBert" + head).from_pretrained(str(tmp_path), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    loaded = {w.name.split("/", 1)[1]: w.numpy() for w in model.weights}
    expected = pt_to_tf(pt, config)
    assert set(loaded) == set(expected) - {"predictions___cls/predictions/decoder/weight:0"} or set(loaded) == set(expected)
    for name, value in loaded.items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_large_weight_name_attributes_are_split_and_read_back(tmp_path):
    # Keras splits attributes over 64 KiB (a full 24-layer model's weight_names) into weight_names0, 1, ...
    weights = {f"mobilebert/layer_{i}/a_rather_long_weight_name_for_padding/kernel:0": np.full((1,), i, np.float32)
               for i in range(2000)}
    write_tf_h5(tmp_path / "w.h5", weights, model_name="tf_mobile_bert_model")
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "w.h5") as f:
        assert "weight_names0" in f["mobilebert"].attrs
    assert_same(read_tf_h5(tmp_path / "w.h5"), weights)


def test_sharded_safetensors(tmp_path):
    config = tiny_config()
    pt = random_pt(config, "MobileBertModel")
    names = sorted(pt)
    half = len(names) // 2
    write_safetensors(tmp_path / "a.safetensors", {k: pt[k] for k in names[:half]})
    write_safetensors(tmp_path / "b.safetensors", {k: pt[k] for k in names[half:]})
    index = {"metadata": {}, "weight_map": {k: ("a" if i < half else "b") + ".safetensors" for i, k in enumerate(names)}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert_same(read_sharded_safetensors(tmp_path / "model.safetensors.index.json"), pt)
    index["weight_map"]["extra.weight"] = "b.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="extra.weight"):
        read_sharded_safetensors(tmp_path / "model.safetensors.index.json")


# ----------------------------------------------------------------------------- strictness
def test_missing_unexpected_and_mismatched_tensors_are_named():
    config = tiny_config()
    arch = "MobileBertForSequenceClassification"
    pt = random_pt(config, arch)
    bad = dict(pt)
    del bad["classifier.bias"]
    with pytest.raises(ConversionError, match=r"missing 1 tensor\(s\): classifier.bias"):
        pt_to_tf(bad, config, arch)
    with pytest.raises(ConversionError, match="unexpected 1 tensor.*mobilebert.extra.weight"):
        pt_to_tf({**pt, "mobilebert.extra.weight": np.zeros(3, np.float32)}, config, arch)
    bad = {**pt, "classifier.weight": np.zeros((5, 32), np.float32)}
    with pytest.raises(ConversionError, match=r"classifier.weight has shape \(5, 32\), the config implies \(2, 32\)"):
        pt_to_tf(bad, config, arch)
    tf = pt_to_tf(pt, config, arch)
    with pytest.raises(ConversionError, match="classifier/kernel:0 has shape"):
        tf_to_pt({**tf, "classifier/kernel:0": tf["classifier/kernel:0"].T}, config, arch)
    assert isinstance(ConversionError("x"), ValueError)


def test_untied_decoder_is_refused_and_tied_one_dropped():
    config = tiny_config()
    arch = "MobileBertForMaskedLM"
    tf = pt_to_tf(random_pt(config, arch), config, arch)
    skipped = {}
    pt = tf_to_pt(tf, config, arch, skipped=skipped)
    assert "cls.predictions.decoder.weight" not in pt and "predictions___cls/predictions/decoder/weight:0" in skipped
    untied = {**tf, "predictions___cls/predictions/decoder/weight:0": tf["mobilebert/embeddings/word_embeddings/weight:0"] + 1}
    with pytest.raises(ConversionError, match="decoder/weight:0 differs from the word embeddings"):
        tf_to_pt(untied, config, arch)
    # Older PT files hold the tied decoder too: accepted when equal, refused otherwise.
    pt_tied = {**pt, "cls.predictions.decoder.weight": pt["mobilebert.embeddings.word_embeddings.weight"]}
    assert set(pt_to_tf(pt_tied, config, arch)) == set(tf)
    pt_tied["cls.predictions.decoder.weight"] = pt_tied["cls.predictions.decoder.weight"] * 2
    with pytest.raises(ConversionError, match="cls.predictions.decoder.weight differs"):
        pt_to_tf(pt_tied, config, arch)


def test_unused_by_design_tensors_are_skipped_and_reported():
    config = tiny_config()
    pt = random_pt(config, "MobileBertModel")
    skipped = {}
    tf = pt_to_tf({**pt, "embeddings.position_ids": np.arange(40)[None]}, config, "MobileBertModel", skipped=skipped)
    assert "embeddings.position_ids" in skipped and len(tf) == len(pt)


# ----------------------------------------------------------------------------- bad files
def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        read_safetensors(tmp_path / "nope.safetensors")
    config = tiny_config()
    pt = random_pt(config, "MobileBertModel")
    write_safetensors(tmp_path / "m.safetensors", pt)
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.safetensors is not a valid safetensors file"):
        read_safetensors(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 40)
    with pytest.raises(ValueError, match="junk.safetensors"):
        read_safetensors(tmp_path / "junk.safetensors")
    write_tf_h5(tmp_path / "m.h5", pt_to_tf(pt, config, "MobileBertModel"), model_name="tf_mobile_bert_model")
    data = (tmp_path / "m.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.h5 is not a valid Keras HDF5"):
        read_tf_h5(tmp_path / "cut.h5")
    (tmp_path / "cut.bin").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="cut.bin"):
        read_pytorch_bin(tmp_path / "cut.bin")


def test_pytorch_bin_refuses_code(tmp_path):
    torch = pytest.importorskip("torch")
    state = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(), "b": torch.tensor(3.0, dtype=torch.float16)}
    torch.save(state, tmp_path / "ok.bin")
    got = read_pytorch_bin(tmp_path / "ok.bin")
    assert np.array_equal(got["a"], state["a"].numpy()) and got["b"].dtype == np.float16 and float(got["b"]) == 3.0

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"a": torch.zeros(2), "evil": Evil()}, tmp_path / "evil.bin")
    with pytest.raises(ValueError, match=r"print, which is not a tensor"):
        read_pytorch_bin(tmp_path / "evil.bin")
