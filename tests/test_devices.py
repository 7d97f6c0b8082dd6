"""The shared dtype table and device parser (mobilebert_common.devices), and the config's derived facts."""

import pytest

from mobilebert_common import MobileBertConfig
from mobilebert_common.devices import dtype_name, parse_device


@pytest.mark.parametrize("value, name", [
    ("float32", "float32"), ("fp32", "float32"), ("float", "float32"), ("torch.float32", "float32"),
    ("half", "float16"), ("FP16", "float16"), ("torch.float16", "float16"), ("tf.float16", "float16"),
    ("bf16", "bfloat16"), ("bfloat16", "bfloat16"), ("int8", None), ("float16-mixed", None), ("", None),
])
def test_dtype_names(value, name):
    assert dtype_name(value) == name


def test_dtype_objects_of_both_frameworks():
    torch = pytest.importorskip("torch")
    assert [dtype_name(d) for d in (torch.float32, torch.float16, torch.bfloat16, torch.int64)] == [
        "float32", "float16", "bfloat16", None]
    tf = pytest.importorskip("tensorflow")
    assert [dtype_name(d) for d in (tf.float32, tf.float16, tf.bfloat16, tf.int32)] == [
        "float32", "float16", "bfloat16", None]


@pytest.mark.parametrize("value, parsed", [
    (None, ("cpu", None)), (-1, ("cpu", None)), ("cpu", ("cpu", None)), ("/CPU:0", ("cpu", None)),
    (0, ("gpu", 0)), (3, ("gpu", 3)), ("cuda", ("gpu", 0)), ("cuda:1", ("gpu", 1)), ("gpu:2", ("gpu", 2)),
    ("/GPU:0", ("gpu", 0)),
])
def test_devices(value, parsed):
    assert parse_device(value, said=f"device={value!r}") == parsed


@pytest.mark.parametrize("value", [True, -2, "tpu", "cuda:x", "cpu:1", "mps", 1.5])
def test_bad_devices_name_the_argument(value):
    with pytest.raises(ValueError, match=r"--device .* is not a device; allowed: None, -1 or 'cpu'"):
        parse_device(value, said=f"--device {value}")


@pytest.mark.parametrize("changes, facts", [
    # (transforms_input, embedding_input_size, query_key_input_size, value_input_size, uses_shared_bottleneck)
    ({}, (True, 384, 128, 512, True)),  # the released config: trigram, shared q/k bottleneck
    (dict(trigram_input=False, embedding_size=512), (False, 512, 128, 512, True)),
    (dict(trigram_input=False), (True, 128, 128, 512, True)),
    (dict(use_bottleneck_attention=True), (True, 384, 128, 128, False)),
    (dict(key_query_shared_bottleneck=False), (True, 384, 512, 512, False)),
    (dict(use_bottleneck=False, key_query_shared_bottleneck=False), (True, 384, 512, 512, False)),
])
def test_config_derived_facts(changes, facts):
    c = MobileBertConfig(**changes)
    assert (c.transforms_input, c.embedding_input_size, c.query_key_input_size, c.value_input_size,
            c.uses_shared_bottleneck) == facts
    assert c.mlm_dense_size == c.hidden_size - c.embedding_size
