"""MobileBertConfig as a drop-in for transformers' MobileBertConfig (4.57.6, test-only reference).

The options every transformers PretrainedConfig takes are accepted with the same defaults and
values, config.json holds what transformers' save_pretrained writes (use_diff=True), each side reads
the other's files, from_pretrained takes overrides and return_unused_kwargs, options for behaviour
MobileBERT cannot have are refused by name, and attention's width rule is the one the models need.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mobilebert_common import MobileBertConfig
from tests.harness.models import TINY, assert_close, random_inputs

transformers = pytest.importorskip("transformers")

# Keyword sets a transformers user passes; each is built by both classes and compared.
OPTIONS = [
    {},
    dict(output_hidden_states=True, output_attentions=True, return_dict=False),
    dict(torchscript=True),
    dict(tie_word_embeddings=False),
    dict(chunk_size_feed_forward=4),
    dict(finetuning_task="sst2", task_specific_params={"summarize": {"x": 1}}, tokenizer_class="MobileBertTokenizerFast",
         prefix="go: "),
    dict(bos_token_id=101, eos_token_id=102, sep_token_id=102, decoder_start_token_id=101),
    dict(problem_type="regression", num_labels=1),
    dict(id2label={0: "neg", 1: "pos", 2: "mixed"}, label2id={"neg": 0, "pos": 1, "mixed": 2}),
    dict(architectures=["MobileBertForMaskedLM"]),
    dict(torch_dtype="bfloat16"),
    dict(dtype="float16"),
    dict(name_or_path="some/where"),
    dict(is_decoder=False, add_cross_attention=False, is_encoder_decoder=False, tie_encoder_decoder=False,
         pruned_heads={}),
    dict(my_own_key=[1, {"deep": None}], hidden_act="gelu"),
]
ATTRIBUTES = [
    "output_hidden_states", "output_attentions", "return_dict", "use_return_dict", "torchscript", "tie_word_embeddings",
    "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder", "cross_attention_hidden_size", "add_cross_attention",
    "tie_encoder_decoder", "architectures", "finetuning_task", "id2label", "label2id", "num_labels", "task_specific_params",
    "problem_type", "tokenizer_class", "prefix", "bos_token_id", "pad_token_id", "eos_token_id", "sep_token_id",
    "decoder_start_token_id", "name_or_path", "pruned_heads", "true_hidden_size",
]


def _theirs_written(config) -> dict:
    """transformers' config.json content, without the version stamp it adds (we are not transformers)."""
    written = json.loads(config.to_json_string(use_diff=True))
    written.pop("transformers_version")
    return written


def _dtype(value):
    return None if value is None else str(value).replace("torch.", "")


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_pretrained_config_options_equal_transformers(options):
    ours = MobileBertConfig(**options)
    theirs = transformers.MobileBertConfig(**options)
    for name in ATTRIBUTES + list(options):
        name = "dtype" if name == "torch_dtype" else name
        expected = getattr(theirs, name)
        assert (_dtype(getattr(ours, name)) if name == "dtype" else getattr(ours, name)) == (
            _dtype(expected) if name == "dtype" else expected), name
    assert json.loads(ours.to_json_string()) == _theirs_written(theirs)
    assert ours.to_dict()["_name_or_path"] == theirs.to_dict()["_name_or_path"]
    full_keys = set(theirs.to_dict()) - set(theirs._get_global_generation_defaults())  # generation keys: MobileBERT does not generate
    assert full_keys - {"_attn_implementation_autoset"} <= set(ours.to_dict())


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_config_json_round_trips_both_ways(options, tmp_path):  # noqa: D103
    ours = MobileBertConfig(**options)
    ours.save_pretrained(tmp_path / "ours")
    theirs = transformers.MobileBertConfig.from_pretrained(tmp_path / "ours")
    assert _theirs_written(theirs) == json.loads(ours.to_json_string())
    assert MobileBertConfig.from_pretrained(tmp_path / "ours") == ours.copy(name_or_path="")  # a path is not written
    transformers.MobileBertConfig(**options).save_pretrained(tmp_path / "theirs")
    back = MobileBertConfig.from_pretrained(tmp_path / "theirs")
    assert back.transformers_version == transformers.__version__  # kept, and written back unchanged
    assert back.copy(transformers_version=None) == ours.copy(name_or_path="")


def test_hub_file_with_torch_dtype_and_name_or_path_reads_as_transformers(tmp_path):
    values = {"hidden_size": 64, "embedding_size": 32, "intra_bottleneck_size": 32, "torch_dtype": "float32",
              "_name_or_path": "google/mobilebert-uncased", "transformers_version": "4.30.0", "is_decoder": False}
    (tmp_path / "config.json").write_text(json.dumps(values))
    ours = MobileBertConfig.from_pretrained(tmp_path)
    theirs = transformers.MobileBertConfig.from_pretrained(tmp_path)
    assert ours.dtype == ours.torch_dtype == _dtype(theirs.dtype) == "float32"
    assert ours.name_or_path == theirs.name_or_path == "google/mobilebert-uncased"
    assert ours.transformers_version == "4.30.0"
    assert json.loads(ours.to_json_string()) == _theirs_written(theirs) | {"transformers_version": "4.30.0"}


def test_from_pretrained_overrides_and_unused_kwargs_as_transformers(tmp_path):
    MobileBertConfig().save_pretrained(tmp_path)
    kwargs = dict(output_attentions=True, return_dict=False, chunk_size_feed_forward=2, foo=False)
    ours, unused = MobileBertConfig.from_pretrained(tmp_path, return_unused_kwargs=True, **kwargs)
    theirs, their_unused = transformers.MobileBertConfig.from_pretrained(tmp_path, return_unused_kwargs=True, **kwargs)
    assert unused == their_unused == {"foo": False}
    assert (ours.output_attentions, ours.return_dict, ours.chunk_size_feed_forward) == (True, False, 2)
    assert (theirs.output_attentions, theirs.return_dict, theirs.chunk_size_feed_forward) == (True, False, 2)
    assert not hasattr(ours, "foo")
    plain = MobileBertConfig.from_pretrained(tmp_path, output_hidden_states=True, num_labels=4)
    assert plain.output_hidden_states is True and plain.num_labels == 4 and len(plain.id2label) == 4
    with pytest.raises(ValueError, match="is_decoder=True is not supported"):
        MobileBertConfig.from_pretrained(tmp_path, is_decoder=True)


@pytest.mark.parametrize("option, value", [("is_decoder", True), ("add_cross_attention", True), ("is_encoder_decoder", True),
                                           ("tie_encoder_decoder", True), ("cross_attention_hidden_size", 64)])
def test_encoder_decoder_options_are_refused_by_name(option, value):
    with pytest.raises(ValueError) as err:
        MobileBertConfig(**{option: value})
    message = str(err.value)
    assert f"{option}={value!r} is not supported" in message and f"Leave {option} at" in message
    if option == "is_decoder":
        assert "causal attention mask" in message and "do not implement" in message
    else:
        assert "MobileBERT is an encoder" in message and "transformers' MobileBERT accepts" in message and "ignores it" in message
    config = MobileBertConfig()
    with pytest.raises(ValueError, match=f"{option}="):
        setattr(config, option, value)
    with pytest.raises(ValueError, match=f"{option}="):
        MobileBertConfig.from_dict({option: value})


def _reference_hidden(torch, flags, last_token):
    small = {**TINY, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    torch.manual_seed(0)
    model = transformers.MobileBertModel(transformers.MobileBertConfig(**small, **flags)).eval()
    with torch.no_grad():
        return model(torch.tensor([[5, 6, 7, 8, last_token]])).last_hidden_state[0].numpy()


def test_what_transformers_mobilebert_does_with_the_refused_options():
    """The messages' claims: is_decoder=True makes the reference's attention causal (the first token no longer
    sees the last); each other option alone changes nothing at all."""
    torch = pytest.importorskip("torch")
    plain = _reference_hidden(torch, {}, 9)
    assert not np.array_equal(plain[0], _reference_hidden(torch, {}, 10)[0])  # bidirectional: token 0 sees token 4
    causal = _reference_hidden(torch, {"is_decoder": True}, 9)
    np.testing.assert_array_equal(causal[0], _reference_hidden(torch, {"is_decoder": True}, 10)[0])
    assert not np.array_equal(causal, plain)
    for ignored in ({"add_cross_attention": True}, {"is_encoder_decoder": True}, {"tie_encoder_decoder": True},
                    {"cross_attention_hidden_size": 64}):
        np.testing.assert_array_equal(_reference_hidden(torch, ignored, 9), plain)


def test_pruned_heads_are_refused_and_bad_carried_values_named():
    with pytest.raises(ValueError, match=r"pruned_heads=\{1: \[0\]\} is not supported: this suite's models keep every"):
        MobileBertConfig(pruned_heads={1: [0]})
    for kwargs, message in [
        (dict(torch_dtype="int8"), "dtype (torch_dtype) must be None or one of float32, float16, bfloat16, got 'int8'"),
        (dict(chunk_size_feed_forward=-1), "chunk_size_feed_forward must be an integer >= 0"),
        (dict(bos_token_id="101"), "bos_token_id must be None or a token id"),
        (dict(eos_token_id=[102, -1]), "eos_token_id must be None or a token id"),
        (dict(finetuning_task=3), "finetuning_task must be a str or None"),
        (dict(output_attentions="yes"), "output_attentions must be true or false, got 'yes'"),
        (dict(return_dict=None), "return_dict must be true or false, got None"),
    ]:
        with pytest.raises(ValueError) as err:
            MobileBertConfig(**kwargs)
        assert message in str(err.value), kwargs


def test_attributes_behave_as_transformers_configs(tmp_path):
    ours, theirs = MobileBertConfig(), transformers.MobileBertConfig()
    for config in (ours, theirs):
        config.num_labels = 3  # replaces the labels
        config.my_key = {"a": 1}  # any attribute is a config key
        config.torch_dtype = "float16"
    assert ours.id2label == theirs.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    assert ours.label2id == theirs.label2id and ours.num_labels == theirs.num_labels == 3
    assert ours.dtype == "float16" and ours.my_key == {"a": 1}
    ours.id2label = {"0": "a", "1": "b"}
    assert ours.num_labels == 2 and ours.id2label == {0: "a", 1: "b"}
    ours.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["my_key"] == {"a": 1} and written["dtype"] == "float16" and written["id2label"] == {"0": "a", "1": "b"}
    assert MobileBertConfig(my_key=5).my_key == 5 and MobileBertConfig(my_key=5).extra == {"my_key": 5}
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        ours.nothing_here
    assert MobileBertConfig(output_attentions=True, torchscript=True).use_return_dict is False


# ---- attention width: which sizes must divide by the heads ---------------------------------------------------

# (config overrides of TINY, the field an error must name or None when valid). heads = 4.
WIDTHS = [
    (dict(hidden_size=30), None),  # bottleneck: attention runs at intra_bottleneck_size 16
    (dict(hidden_size=30, key_query_shared_bottleneck=False), None),  # q/k read the 30-wide input, project to 16
    (dict(hidden_size=30, use_bottleneck_attention=True, key_query_shared_bottleneck=False), None),
    (dict(hidden_size=30, use_bottleneck_attention=True), None),
    (dict(use_bottleneck=False, intra_bottleneck_size=18), None),  # the bottleneck width is unused without one
    (dict(intra_bottleneck_size=18), "intra_bottleneck_size (18) must be divisible by num_attention_heads (4)"),
    (dict(use_bottleneck=False, hidden_size=30), "hidden_size (30) must be divisible by num_attention_heads (4)"),
]


@pytest.mark.parametrize("overrides, error", WIDTHS, ids=[str(o) for o, _ in WIDTHS])
def test_attention_width_rule_matches_transformers(overrides, error):
    options = {**TINY, **overrides}
    if error:
        with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
            MobileBertConfig(**options)
        return
    config = MobileBertConfig(**options)
    assert config.true_hidden_size % config.num_attention_heads == 0
    transformers.MobileBertModel(transformers.MobileBertConfig(**options))  # the reference builds it too


@pytest.mark.parametrize("overrides", [o for o, e in WIDTHS if e is None and "hidden_size" in o],
                         ids=[str(o) for o, e in WIDTHS if e is None and "hidden_size" in o])
def test_models_run_where_hidden_size_does_not_divide_by_the_heads(overrides):
    """hidden_size 30 with 4 heads: PyTorch equals the reference with the same weights, Keras equals PyTorch."""
    torch = pytest.importorskip("torch")
    from tests.harness.models import build_pt, random_weights, run_pt

    config = MobileBertConfig(**{**TINY, **overrides})
    weights = random_weights(config, "MobileBertModel", "pt")
    ours = build_pt("MobileBertModel", config, weights)
    inputs = random_inputs(config)
    got = run_pt(ours, inputs)
    assert got["last_hidden_state"].shape == (2, 7, 30) and np.all(np.isfinite(got["last_hidden_state"]))
    if config.query_key_input_size == config.true_hidden_size:
        # (the reference sizes the query/key inputs true_hidden_size whatever the config: with a bottleneck but
        # neither shared nor attention bottleneck it cannot load these weights, see config.query_key_input_size)
        reference = transformers.MobileBertModel(transformers.MobileBertConfig.from_dict(config.to_dict())).eval()
        missing, unexpected = reference.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
        assert [k for k in missing if "position_ids" not in k] == [] and unexpected == []
        with torch.no_grad():
            expected = reference(**{k: torch.from_numpy(v) for k, v in inputs.items()})
        assert_close(got["last_hidden_state"], expected.last_hidden_state.numpy(), what="PyTorch vs transformers")
    pytest.importorskip("tensorflow")
    from tests.harness.models import build_tf, run_tf

    keras = build_tf("MobileBertModel", config, random_weights(config, "MobileBertModel", "tf"))
    assert_close(run_tf(keras, inputs)["last_hidden_state"], got["last_hidden_state"], what="Keras vs PyTorch")
