import json
import warnings

import pytest

from mobilebert_common import MobileBertConfig

# google/mobilebert-uncased's config.json, as users hold it.
HUB_CONFIG = {
    "attention_probs_dropout_prob": 0.1, "classifier_activation": True, "embedding_size": 128, "hidden_act": "relu",
    "hidden_dropout_prob": 0.0, "hidden_size": 512, "initializer_range": 0.02, "intermediate_size": 512,
    "intra_bottleneck_size": 128, "key_query_shared_bottleneck": True, "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512, "model_type": "mobilebert", "normalization_type": "no_norm",
    "num_attention_heads": 4, "num_feedforward_networks": 4, "num_hidden_layers": 24, "pad_token_id": 0,
    "trigram_input": True, "true_hidden_size": 128, "type_vocab_size": 2, "use_bottleneck": True,
    "use_bottleneck_attention": False, "vocab_size": 30522,
}


def test_defaults_are_google_mobilebert_uncased():
    config = MobileBertConfig()
    for key, value in HUB_CONFIG.items():
        assert getattr(config, key) == value, key
    assert config.classifier_dropout is None and config.classifier_dropout_prob == 0.0
    assert config.num_labels == 2 and config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    assert config.head_dim == 32


def test_true_hidden_size_follows_bottleneck():
    assert MobileBertConfig(use_bottleneck=False).true_hidden_size == 512
    assert MobileBertConfig(intra_bottleneck_size=64).true_hidden_size == 64


def test_json_round_trip_keeps_unknown_keys_and_int_label_keys(tmp_path):
    values = dict(HUB_CONFIG, transformers_version="4.57.6", dtype="float32", my_note={"a": 1},
                  id2label={"0": "neg", "1": "pos", "2": "mixed"}, label2id={"neg": 0, "pos": 1, "mixed": 2},
                  architectures=["MobileBertForSequenceClassification"])
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    config = MobileBertConfig.from_json_file(path)
    assert config.id2label == {0: "neg", 1: "pos", 2: "mixed"} and config.num_labels == 3
    assert config.extra == {"transformers_version": "4.57.6", "dtype": "float32", "my_note": {"a": 1}}
    config.save_pretrained(tmp_path / "out")
    written = json.loads((tmp_path / "out" / "config.json").read_text())
    assert written["id2label"] == {"0": "neg", "1": "pos", "2": "mixed"}  # string keys in JSON, as users' files have
    for key, value in values.items():
        assert written[key] == value, key
    assert MobileBertConfig.from_pretrained(tmp_path / "out") == config


def test_from_pretrained_overrides_fields(tmp_path):
    MobileBertConfig(hidden_size=64, num_attention_heads=2, intra_bottleneck_size=32, embedding_size=32).save_pretrained(tmp_path)
    config = MobileBertConfig.from_pretrained(tmp_path, num_labels=5)
    assert config.hidden_size == 64 and config.num_labels == 5 and len(config.id2label) == 5


def test_reference_config_reads_ours(tmp_path):
    transformers = pytest.importorskip("transformers")
    MobileBertConfig(num_labels=3, hidden_act="gelu").save_pretrained(tmp_path)
    theirs = transformers.MobileBertConfig.from_pretrained(tmp_path)
    assert theirs.num_labels == 3 and theirs.hidden_act == "gelu" and theirs.true_hidden_size == 128
    theirs.save_pretrained(tmp_path / "back")
    ours = MobileBertConfig.from_pretrained(tmp_path / "back")
    assert ours.num_labels == 3 and ours.hidden_act == "gelu"


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(hidden_size=510, use_bottleneck=False), "hidden_size (510) must be divisible by num_attention_heads (4)"),
        (dict(intra_bottleneck_size=126), "intra_bottleneck_size (126) must be divisible by num_attention_heads (4)"),
        (dict(normalization_type="batch_norm"), "normalization_type 'batch_norm' is not supported; allowed: no_norm, layer_norm"),
        (dict(hidden_act="mish"), "hidden_act 'mish' is not supported; allowed: relu, gelu"),
        (dict(num_feedforward_networks=0), "num_feedforward_networks must be at least 1, got 0"),
        (dict(vocab_size=0), "vocab_size must be a positive integer, got 0"),
        (dict(hidden_size=-8), "hidden_size must be a positive integer, got -8"),
        (dict(hidden_size="512"), "hidden_size must be an integer, got '512' (str)"),
        (dict(layer_norm_eps="tiny"), "layer_norm_eps must be a number, got 'tiny' (str)"),
        (dict(hidden_dropout_prob=1.5), "hidden_dropout_prob must be in [0, 1), got 1.5"),
        (dict(trigram_input="yes"), "trigram_input must be true or false, got 'yes'"),
        (dict(problem_type="ranking"), "problem_type 'ranking' is not supported"),
        (dict(embedding_size=1024), "embedding_size (1024) must not exceed hidden_size (512)"),
        (dict(num_labels="3"), "num_labels must be an integer, got '3' (str)"),
        (dict(num_labels=0), "num_labels must be a positive integer, got 0"),
        (dict(initializer_range=float("inf")), "initializer_range must be a positive finite number, got inf"),
        (dict(layer_norm_eps=float("nan")), "layer_norm_eps must be a positive finite number, got nan"),
        (dict(architectures="MobileBertForMaskedLM"), "architectures must be a list of class names"),
        (dict(architectures=[3]), "architectures must be a list of class names"),
        (dict(label2id={"a": "0", "b": 1}), "label2id values must be integer class ids, got {'a': '0'}"),
        (dict(label2id={"a": 0.0}), "label2id values must be integer class ids"),
        (dict(id2label={"zero": "a"}), "id2label keys must be integers (or their strings), got ['zero']"),
        (dict(id2label={1: "a", 2: "b"}), "id2label keys must be the class ids 0..1, each once, got [1, 2]"),
        (dict(id2label=["a", "b"]), "id2label must be a dict"),
    ],
)
def test_invalid_values_name_the_field(changes, message):
    with pytest.raises(ValueError) as err:
        MobileBertConfig(**changes)
    assert message in str(err.value)


def test_bad_json_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="config.json is not a valid JSON config file"):
        MobileBertConfig.from_json_file(path)
    path.write_text(json.dumps({"hidden_size": "wide"}))
    with pytest.raises(ValueError, match=r"config.json: hidden_size must be an integer"):
        MobileBertConfig.from_json_file(path)
    with pytest.raises(FileNotFoundError, match="config.json not found in directory"):
        MobileBertConfig.from_pretrained(tmp_path / "..")


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    MobileBertConfig().to_json_file(path)
    before = path.read_text()
    config = MobileBertConfig(hidden_size=256)
    config.extra["unserialisable"] = object()
    with pytest.raises(TypeError):
        config.to_json_file(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_id2label_decides_num_labels_with_a_warning():
    with pytest.warns(UserWarning, match=r"num_labels=3 contradicts id2label, which names 2 labels; keeping id2label"):
        config = MobileBertConfig(num_labels=3, id2label={0: "a", 1: "b"})
    assert config.num_labels == 2 and config.id2label == {0: "a", 1: "b"} and config.label2id == {"a": 0, "b": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # agreeing values: no warning
        assert MobileBertConfig(num_labels=2, id2label={"1": "b", "0": "a"}).id2label == {0: "a", 1: "b"}


def test_label2id_alone_gives_id2label():
    config = MobileBertConfig(label2id={"neg": 0, "pos": 1, "mixed": 2})
    assert config.num_labels == 3 and config.id2label == {0: "neg", 1: "pos", 2: "mixed"}


def test_num_labels_override_replaces_saved_labels(tmp_path):
    MobileBertConfig(id2label={0: "neg", 1: "pos"}).save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        three = MobileBertConfig.from_pretrained(tmp_path, num_labels=3)
        same = MobileBertConfig.from_pretrained(tmp_path, num_labels=2)
    assert three.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    assert same.id2label == {0: "neg", 1: "pos"}
    assert MobileBertConfig(id2label={0: "neg", 1: "pos"}).copy(num_labels=4).num_labels == 4


@pytest.mark.parametrize("unknown", [{"extra": {"bar": 2}}, {"extra": 5}, {"extra": None, "foo": [1, {"extra": 3}]}])
def test_unknown_keys_round_trip_whatever_their_names(unknown, tmp_path):
    config = MobileBertConfig.from_dict({**HUB_CONFIG, **unknown})
    written = config.to_dict()
    for key, value in unknown.items():
        assert written[key] == value
    assert "bar" not in written
    path = tmp_path / "config.json"
    config.to_json_file(path)
    again = json.loads(path.read_text())
    assert {k: again[k] for k in unknown} == unknown
    assert MobileBertConfig.from_json_file(path) == config


def test_problem_types_live_once():
    from mobilebert_common import checks, config

    assert checks.PROBLEM_TYPES is config.PROBLEM_TYPES
    assert checks.infer_problem_type("regression", 3, True) == "regression"
    with pytest.raises(ValueError, match="problem_type 'ranking' is not supported; allowed: None, regression"):
        checks.infer_problem_type("ranking", 3, True)


@pytest.mark.parametrize("label2id", [{"a": 1, "b": 0}, {"LABEL_0": 0, "LABEL_1": 1}])
def test_label2id_contradicting_id2label_loads_with_a_warning(label2id, tmp_path):
    """Hub configs where only id2label was edited are common: they load, named through id2label."""
    with pytest.warns(UserWarning, match=r"contradicts id2label .*; predictions use id2label"):
        config = MobileBertConfig(id2label={0: "a", 1: "b"}, label2id=label2id)
    assert config.id2label == {0: "a", 1: "b"} and config.num_labels == 2
    config.save_pretrained(str(tmp_path))
    with pytest.warns(UserWarning, match="contradicts"):
        assert MobileBertConfig.from_pretrained(str(tmp_path)).label2id == label2id  # round-trips as given
