"""from_pretrained / save_pretrained: formats, dtypes, devices, head-to-head loading, broken files."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import mobilebert_pt
from mobilebert_pt import checkpoints
from tests.harness.models import build_pt, random_weights
from tests.harness.models import VARIANTS, assert_close, random_inputs, tiny_config


class NotATensor:
    pass


def inputs(config):
    return {k: torch.from_numpy(v) for k, v in random_inputs(config).items()}


def make(cls_name="MobileBertForMaskedLM", variant="default", seed=0, noise=0.3, **overrides):
    torch.manual_seed(seed)
    config = tiny_config(variant, **overrides)
    model = getattr(mobilebert_pt, cls_name)(config).eval()
    with torch.no_grad():  # order-one weights, so that equal logits mean equal weights
        for p in model.parameters():
            p.add_(torch.randn_like(p) * noise)
    return model


def logits(model, config=None):
    config = config or model.config
    with torch.no_grad():
        return model(**inputs(config))[0]


def load_quietly(cls, path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls.from_pretrained(path, **kwargs)


# ------------------------------------------------------------------ round trips and the file layout


HEADS = ["MobileBertModel", "MobileBertForPreTraining", "MobileBertForMaskedLM", "MobileBertForNextSentencePrediction",
         "MobileBertForSequenceClassification", "MobileBertForMultipleChoice", "MobileBertForTokenClassification",
         "MobileBertForQuestionAnswering"]


def head_inputs(config, cls_name):
    x = inputs(config)
    if cls_name == "MobileBertForMultipleChoice":
        x = {k: torch.stack([v, v.flip(1)], dim=1) for k, v in x.items()}  # (B, C=2, T)
    return x


@pytest.mark.parametrize("cls_name", HEADS)
def test_save_load_round_trip(tmp_path, cls_name):
    model = make(cls_name)
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]  # no temp files left
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == [cls_name] and config["torch_dtype"] == "float32"
    with safe_open(tmp_path / "model.safetensors", framework="pt") as f:
        keys = set(f.keys())
    expected = {k for k in model.state_dict() if k != "cls.predictions.decoder.weight"}
    assert keys == expected  # the hub's names; the tied decoder is not stored
    assert all(not k.startswith("mobilebert.") for k in keys) == (cls_name == "MobileBertModel")
    loaded = getattr(mobilebert_pt, cls_name).from_pretrained(tmp_path)
    assert not loaded.training
    x = head_inputs(model.config, cls_name)
    with torch.no_grad():
        expected, actual = model(**x)[0], loaded(**x)[0]
    assert_close(actual.numpy(), expected.numpy(), 0.0)
    assert float(expected.std()) > 1e-3


def test_sharded_safetensors_and_stale_files(tmp_path):
    model = make()
    model.save_pretrained(tmp_path, max_shard_size=20_000)
    names = sorted(os.listdir(tmp_path))
    shards = [n for n in names if n.startswith("model-")]
    assert len(shards) > 2 and "model.safetensors.index.json" in names and "model.safetensors" not in names
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    assert_close(logits(mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path)).numpy(), logits(model).numpy(), 0.0)
    # The index can also be given directly, and a later single-file save removes the old shards.
    direct = mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path / "model.safetensors.index.json")
    assert_close(logits(direct).numpy(), logits(model).numpy(), 0.0)
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
    # A limit the whole model fits in writes one model.safetensors, as the hub does (no index).
    model.save_pretrained(tmp_path, max_shard_size="1GB")
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
    assert_close(logits(mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path)).numpy(), logits(model).numpy(), 0.0)


def test_pytorch_model_bin(tmp_path):
    model = make()
    model.save_pretrained(tmp_path, safe_serialization=False)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "pytorch_model.bin"]
    assert_close(logits(mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path)).numpy(), logits(model).numpy(), 0.0)


def test_pytorch_model_bin_with_code_is_refused(tmp_path):
    make().config.save_pretrained(tmp_path)
    # An object of an arbitrary class: unpickling it could run code, weights_only refuses it.
    torch.save({"weights": torch.zeros(2), "extra": NotATensor()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="pytorch_model.bin.*weights_only"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path)


# ------------------------------------------------------------------ dtype and device


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, "bfloat16", torch.float32])
def test_torch_dtype(tmp_path, dtype):
    model = make(noise=0.1)  # at 0.3 rounding to 8 mantissa bits compounds past any useful bound
    model.save_pretrained(tmp_path)
    loaded = mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, torch_dtype=dtype)
    want = {"bfloat16": torch.bfloat16}.get(dtype, dtype)
    assert loaded.dtype == want and all(p.dtype == want for p in loaded.parameters())
    out = logits(loaded)
    assert out.dtype == want
    # Low precision stays near float32 on these small activations (float16 matmul runs on the CPU in torch 2.13).
    tolerance = {torch.float32: 0.0, torch.float16: 2e-2, torch.bfloat16: 1e-1}[want]
    assert_close(out.float().numpy(), logits(model).numpy(), tolerance, what=str(want))


def test_torch_dtype_auto(tmp_path):
    model = make().to(torch.bfloat16)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["torch_dtype"] == "bfloat16"
    assert mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path).dtype == torch.float32  # None: float32
    assert mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, torch_dtype="auto").dtype == torch.bfloat16
    # Without the config entry, "auto" takes the dtype the file stores.
    config = json.loads((tmp_path / "config.json").read_text())
    del config["torch_dtype"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, torch_dtype="auto").dtype == torch.bfloat16
    with pytest.raises(ValueError, match="torch_dtype=.*allowed"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, torch_dtype=torch.int8)


def test_device_map(tmp_path):
    model = make()
    model.save_pretrained(tmp_path)
    for device_map in (None, "cpu", {"": "cpu"}):
        assert mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, device_map=device_map).device.type == "cpu"
    auto = mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, device_map="auto")
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device_map"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, device_map="tpu")
    if not torch.cuda.is_available():
        for device_map in ("cuda", "cuda:0", 0):
            with pytest.raises(ValueError, match="CUDA GPU.*torch.cuda.is_available"):
                mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, device_map=device_map)


def test_hub_keywords_reach_resolve_file(tmp_path, monkeypatch):
    import mobilebert_common.hub as hub

    make().save_pretrained(tmp_path)
    calls = []

    def fake_resolve(source, filename, *, required=True, **kwargs):
        calls.append((source, filename, kwargs))
        path = tmp_path / filename
        if path.is_file():
            return str(path)
        if required:
            raise FileNotFoundError(filename)
        return None

    monkeypatch.setattr(hub, "resolve_file", fake_resolve)
    monkeypatch.setattr(checkpoints, "resolve_file", fake_resolve)
    hub_kwargs = dict(revision="v1", cache_dir=str(tmp_path / "cache"), token="t", local_files_only=True)
    mobilebert_pt.MobileBertForMaskedLM.from_pretrained("someone/tiny-mobilebert", **hub_kwargs)
    assert {c[1] for c in calls} >= {"config.json", "model.safetensors"}
    for source, _, kwargs in calls:
        assert source == "someone/tiny-mobilebert"
        assert {k: kwargs[k] for k in hub_kwargs} == hub_kwargs


# ------------------------------------------------------------------ one head's checkpoint into another


def test_head_to_head_shares_backbone_and_warns_once(tmp_path):
    source = make("MobileBertForPreTraining", initializer_range=0.5)
    source.save_pretrained(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = mobilebert_pt.MobileBertForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    messages = [str(w.message) for w in caught if "newly initialised" in str(w.message)]
    assert len(messages) == 1
    assert "classifier.weight" in messages[0] and "classifier.bias" in messages[0]
    assert "cls.predictions.bias" in messages[0]  # the unused pre-training head is listed too
    state, src = model.state_dict(), source.state_dict()
    for key in src:
        if key.startswith("mobilebert."):
            assert torch.equal(state[key], src[key]), key
    weight = model.classifier.weight.detach()  # initialised anew: truncated normal, std initializer_range, cut at 2 std
    assert weight.shape == (3, 32) and 0.25 < float(weight.std()) < 0.6 and float(weight.abs().max()) <= 1.0
    assert float(model.classifier.bias.detach().abs().max()) == 0.0
    # pooled output -> classifier: the pooler came from the checkpoint, so the logits are determined by it.
    with torch.no_grad():
        pooled = source.mobilebert(**inputs(source.config)).pooler_output
        assert_close(logits(model).numpy(), (pooled @ weight.T).numpy(), 1e-6)


def test_bare_backbone_into_head_and_back(tmp_path):
    backbone = make("MobileBertModel")
    backbone.save_pretrained(tmp_path / "bare")
    mlm = load_quietly(mobilebert_pt.MobileBertForMaskedLM, tmp_path / "bare")
    assert torch.equal(mlm.mobilebert.embeddings.word_embeddings.weight, backbone.embeddings.word_embeddings.weight)
    assert mlm.cls.predictions.decoder.weight is mlm.mobilebert.embeddings.word_embeddings.weight
    pretraining = make("MobileBertForPreTraining", seed=3)
    pretraining.save_pretrained(tmp_path / "head")
    bare = load_quietly(mobilebert_pt.MobileBertModel, tmp_path / "head")
    with torch.no_grad():
        expected = pretraining.mobilebert(**inputs(bare.config))
        actual = bare(**inputs(bare.config))
    assert_close(actual.last_hidden_state.numpy(), expected.last_hidden_state.numpy(), 0.0)
    assert_close(actual.pooler_output.numpy(), expected.pooler_output.numpy(), 0.0)


def test_head_shape_mismatch(tmp_path):
    make("MobileBertForSequenceClassification", num_labels=3).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="classifier.weight.*ignore_mismatched_sizes"):
        mobilebert_pt.MobileBertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    with pytest.warns(UserWarning, match="newly initialised.*classifier.weight"):
        model = mobilebert_pt.MobileBertForSequenceClassification.from_pretrained(
            tmp_path, num_labels=5, ignore_mismatched_sizes=True
        )
    assert model.classifier.weight.shape == (5, 32) and logits(model).shape == (2, 5)


def test_backbone_mismatch_names_the_file(tmp_path):
    make().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"model\.safetensors does not match the config.*intermediate"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, intermediate_size=20)
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_hidden_layers"] = 3  # a config.json that does not match the weights
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"model\.safetensors does not match MobileBertForMaskedLM.*layer\.2"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="ignore_mismatched_sizes|does not match"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, num_hidden_layers=2, ignore_mismatched_sizes=True,
                                                            intermediate_size=20)


def test_wrong_architecture_checkpoint(tmp_path):
    make().config.save_pretrained(tmp_path)
    save_file({"bert.embeddings.word_embeddings.weight": torch.zeros(99, 16)}, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"model\.safetensors does not match.*backbone weights are missing"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 99}))
    with pytest.raises(ValueError, match="config.json.*model_type"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_safetensors_names_the_file(tmp_path, damage):
    make().save_pretrained(tmp_path)
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00\x01not safetensors" * 10, "empty": b""}[damage])
    with pytest.raises(ValueError, match=r"model\.safetensors is not a valid safetensors file"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path)


def test_missing_weights_and_bad_arguments(tmp_path):
    make().config.save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no PyTorch weights.*model.safetensors"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown keyword"):
        mobilebert_pt.MobileBertForMaskedLM.from_pretrained(tmp_path, not_an_option=1)
    with pytest.raises(ValueError, match="MobileBertConfig"):
        mobilebert_pt.MobileBertForMaskedLM({"vocab_size": 10})


# ------------------------------------------------------------------ the loaders users already have


@pytest.mark.reference
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("cls_name", HEADS)
def test_transformers_reads_ours_and_we_read_theirs(tmp_path, cls_name, variant):
    """Every head x every variant, including the tensors the hub's layout holds but some configs never read
    (embedding_transformation with E == H, the shared q/k bottleneck under bottleneck attention)."""
    transformers = pytest.importorskip("transformers")
    # The reference PyTorch code uses eps 1e-5 in two LayerNorms whatever layer_norm_eps says; with 1e-5
    # both agree (the default 1e-12 is compared against the reference's TF model in test_pt_reference).
    # Order-one weights with O(1) softmax inputs (tests/harness/models.py), so equal logits mean equal weights.
    config = tiny_config(variant, layer_norm_eps=1e-5)
    model = build_pt(cls_name, config, random_weights(config, cls_name, "pt"))
    model.save_pretrained(tmp_path / "ours")
    theirs, info = getattr(transformers, cls_name).from_pretrained(
        tmp_path / "ours", output_loading_info=True, attn_implementation="eager")
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    theirs.eval()
    x = head_inputs(model.config, cls_name)
    with torch.no_grad():
        expected = model(**x)[0]
        # Both on the explicit softmax path.
        assert_close(theirs(**x)[0].numpy(), model(**x, output_attentions=True)[0].numpy(), 1e-5)
    assert float(expected.std()) > 1e-3
    theirs.save_pretrained(tmp_path / "theirs")
    names = ["theirs"]
    if variant == "default":  # their sharded and pickle formats too
        theirs.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
        assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
        theirs.save_pretrained(tmp_path / "bin", safe_serialization=False)
        names += ["sharded", "bin"]
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing missing, nothing unexpected: no warning either
            back, info = getattr(mobilebert_pt, cls_name).from_pretrained(tmp_path / name, output_loading_info=True)
        assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
        with torch.no_grad():
            assert_close(back(**x)[0].numpy(), expected.numpy(), 0.0)
