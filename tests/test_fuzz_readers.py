"""The weight-file readers are memory-safe: a quick seeded fuzz run (tests/fuzz_readers.py) and the crafted
hostile files of issue 11, each refused with a clear error naming the file."""

import json

import numpy as np
import pytest

from conversion.convert import ConversionError, pt_to_tf, tf_to_pt
from conversion.formats import read_pytorch_bin, read_safetensors, read_sharded_safetensors, read_tf_h5, write_safetensors
from mobilebert_common.weights import entries
from mobilebert_common import MobileBertConfig, MobileBertTokenizer
from mobilebert_common.tokenization_files import load_vocab
from tests import fuzz_readers as fz
from tests.harness.models import tiny_config
from tests.harness.conversion import run

ARCH = "MobileBertForMaskedLM"
POSITIONS = "mobilebert.embeddings.position_embeddings.weight"  # (40, 32) in the tiny config


def test_quick_fuzz_run_has_no_crash_hang_or_unclear_error():
    report = fz.run_fuzz(iterations=420, seed=11, workers=1, timeout=30)
    assert not report.failures, report.text()
    assert report.cases == 420 and set(report.by_kind) == set(fz.KINDS)
    for kind, counts in report.by_kind.items():  # every reader both loaded files and refused some
        assert counts["loaded"] > 0 and counts["refused"] > 0, (kind, counts)


def test_the_harness_reports_crashes_and_hangs_and_restarts_its_worker(tmp_path):
    case = fz.Case("bin", "selftest", [tmp_path / "x"], tmp_path / "x", False, False, None)
    worker = fz.Worker(timeout=3)
    try:
        crash = worker.call("selftest-crash", tmp_path / "x")
        assert crash["status"] == "crash" and "signal 11" in crash["message"]
        assert fz.judge(case, crash).startswith("crash")
        hang = worker.call("selftest-hang", tmp_path / "x")
        assert hang["status"] == "hang" and fz.judge(case, hang).startswith("hang")
        (tmp_path / "x").write_bytes(b"junk")
        after = worker.call("bin", tmp_path / "x")  # a fresh worker answers
        assert after["status"] == "error" and fz.judge(case, after) is None and worker.starts == 3
        unclear = {"status": "error", "type": "ValueError", "message": "bad file", "allowed": True}
        assert "does not name the file" in fz.judge(case, unclear)
        wrong_type = {"status": "error", "type": "TypeError", "message": str(tmp_path / "x"), "allowed": False}
        assert "unexpected exception TypeError" in fz.judge(case, wrong_type)
    finally:
        worker.stop()


def test_generated_bin_is_what_torch_save_writes(tmp_path):
    torch = pytest.importorskip("torch")
    arrays = fz.tiny_arrays(fz.random.Random(0))
    spec = fz.bin_spec(arrays)
    spec.write(tmp_path / "m.bin")
    by_torch = torch.load(tmp_path / "m.bin", weights_only=True)
    ours = read_pytorch_bin(tmp_path / "m.bin")
    assert set(by_torch) == set(ours) == set(spec.tensors)
    for name, tensor in by_torch.items():
        assert np.array_equal(tensor.numpy(), ours[name]) and tensor.numpy().dtype == ours[name].dtype, name
    assert fz.bin_expected(spec) == {k: (v.dtype.name, v.shape, fz.hashlib.sha256(v.tobytes()).hexdigest())
                                     for k, v in ours.items()}


# ----------------------------------------------------------------------------- pytorch_model.bin
def one_view_bin(path, elements: int, size, stride=None, offset=0):
    """A pytorch_model.bin whose tensor "w" is a view (size, stride) of a float32 storage of ``elements``."""
    stride = stride or [int(np.prod(size[i + 1:])) for i in range(len(size))]
    raw = np.arange(elements, dtype=np.float32).tobytes()
    fz.BinSpec({"w": fz.BinTensor("0", "FloatStorage", elements, offset, list(size), stride)}, {"0": raw}).write(path)
    return path


def test_view_larger_than_its_storage_is_refused_naming_file_and_tensor(tmp_path):
    path = one_view_bin(tmp_path / "pytorch_model.bin", 4, (18, 32))
    with pytest.raises(ValueError, match=r"pytorch_model.bin is not a valid PyTorch .*tensor 'w': size \[18, 32\] has "
                                         r"576 elements but its storage '0' holds only 4"):
        read_pytorch_bin(path)


def test_200mb_view_of_16_bytes_is_a_clear_error_not_a_crash(tmp_path):
    path = one_view_bin(tmp_path / "pytorch_model.bin", 4, (50_000_000,), stride=[1])
    result = fz.read_isolated("bin", path)
    assert result["status"] == "error" and result["allowed"], result
    assert str(path) in result["message"] and "holds only 4" in result["message"]


def test_pickle_memo_bomb_is_refused_before_unpickling(tmp_path):
    # LONG_BINPUT 2**31 in a 9-byte pickle: the C unpickler would grow its memo to 2**31 entries (16 GiB)
    path = tmp_path / "pytorch_model.bin"
    fz.BinSpec({}, {}).write(path, pkl=b"\x80\x02}r" + fz.struct.pack("<I", 2**31) + b".")
    result = fz.read_isolated("bin", path)
    assert result["status"] == "error" and result["allowed"], result
    assert str(path) in result["message"] and "memo entry 2147483648 after only 2 opcodes" in result["message"]


@pytest.mark.parametrize("size, stride, offset, why", [
    ((4,), [2], 0, "reaches element 6 of storage '0', which holds 4 float32"),  # strided past the end
    ((2, 2), [2, 1], 1, "reaches element 4"),  # offset pushes the last element out
    ((4, 4), [0, 1], 0, "has 16 elements but its storage '0' holds only 4"),  # a stride-0 expansion
    ((2,), [1], 4, "reaches element 5"),
    ((0, 2), [2, 1], 5, "offset 5 lies past the 4 elements"),
    ((2, -1), [1, 1], 0, "must hold integers >= 0"),
    ((2,), [-1], 1, "must be 1 integer(s) >= 0"),
    ((2, 2), [1], 0, "must be 2 integer(s) >= 0"),
    ((2**40, 2**40), [1, 1], 0, "absurdly large"),
    ((1,) * 40, [1] * 40, 0, "40 dimensions"),
])
def test_bad_views_are_refused(tmp_path, size, stride, offset, why):
    path = one_view_bin(tmp_path / "m.bin", 4, size, stride, offset)
    with pytest.raises(ValueError, match="m.bin is not a valid") as err:
        read_pytorch_bin(path)
    assert why in str(err.value)


def test_views_inside_their_storage_load_as_torch_would(tmp_path):
    # a size-1 dimension never steps, so its stride may be anything (torch writes such strides)
    got = read_pytorch_bin(one_view_bin(tmp_path / "a.bin", 6, (1, 3), stride=[10**12, 2]))["w"]
    assert np.array_equal(got, [[0, 2, 4]]) and got.flags.c_contiguous and got.flags.owndata
    assert np.array_equal(read_pytorch_bin(one_view_bin(tmp_path / "b.bin", 6, (3, 2), [1, 3]))["w"], [[0, 3], [1, 4], [2, 5]])
    assert read_pytorch_bin(one_view_bin(tmp_path / "c.bin", 6, (), [], offset=5))["w"] == 5
    assert read_pytorch_bin(one_view_bin(tmp_path / "d.bin", 0, (0, 7)))["w"].shape == (0, 7)


def test_byteorder_record_is_honoured(tmp_path):
    raw = np.arange(6, dtype=">f4").tobytes()  # torch.save on a big-endian machine
    tensors = {"w": fz.BinTensor("0", "FloatStorage", 6, 0, [2, 3], [3, 1])}
    fz.BinSpec(tensors, {"0": raw}, byteorder="big").write(tmp_path / "big.bin")
    got = read_pytorch_bin(tmp_path / "big.bin")["w"]
    assert np.array_equal(got, np.arange(6).reshape(2, 3)) and got.dtype == np.float32 and got.dtype.isnative
    fz.BinSpec(tensors, {"0": raw}, byteorder="middle").write(tmp_path / "odd.bin")
    with pytest.raises(ValueError, match="odd.bin is not a valid .*byteorder record says b'middle'"):
        read_pytorch_bin(tmp_path / "odd.bin")


@pytest.mark.parametrize("what, why", [
    ("short_record", "storage '0' holds 12 bytes, but 4 float32 elements take 16"),
    ("no_record", "storage '9' has no record data/9"),
    ("two_dtypes", "storage '0' is described as 4 float32 and as 4 int32"),
    ("bad_pid", "persistent id"),
    ("build_storage", "sets the state of a StorageType"),
    ("tensor_as_storage", "its storage is a _Tensor"),
    ("int_key", "key 1 is not a string"),
    ("code", "builtins.eval, which is not a tensor"),
])
def test_malformed_storages_and_pickles_are_refused(tmp_path, what, why):
    good = fz.BinTensor("0", "FloatStorage", 4, 0, [4], [1])
    records = {"0": np.zeros(4, np.float32).tobytes()}
    tensors, state = {"w": good}, None
    if what == "short_record":
        records["0"] = records["0"][:12]
    elif what == "no_record":
        tensors["w"] = fz.BinTensor("9", "FloatStorage", 4, 0, [4], [1])
    elif what == "two_dtypes":
        tensors["v"] = fz.BinTensor("0", "IntStorage", 4, 0, [4], [1])
    elif what == "bad_pid":
        state = {"w": fz.Call(fz.Global("torch._utils", "_rebuild_tensor_v2"), (fz.PersId(("storage", "0")), 0, (4,), (1,)))}
    elif what == "build_storage":
        state = {"w": fz.Build(fz.Global("torch", "FloatStorage"), {"name": "DoubleStorage"})}
    elif what == "tensor_as_storage":
        state = {"w": fz.Call(fz.Global("torch._utils", "_rebuild_tensor_v2"), (good.pickled(), 0, (4,), (1,)))}
    elif what == "int_key":
        state = {1: good.pickled()}
    else:
        state = {"w": fz.Call(fz.Global("builtins", "eval"), ("1",))}
    fz.BinSpec(tensors, records, state).write(tmp_path / "m.bin")
    with pytest.raises(ValueError, match="m.bin") as err:
        read_pytorch_bin(tmp_path / "m.bin")
    assert why in str(err.value)


def tiny_source(tmp_path, config=None):
    """A directory as users hold it: config.json + a pytorch_model.bin of the tiny masked-LM (BinSpec, all valid)."""
    config = config or tiny_config().copy(architectures=[ARCH])
    rng = np.random.default_rng(0)
    weights = {e.pt_name: rng.standard_normal(e.shape).astype(np.float32) for e in entries(config, ARCH) if e.transform != "tie"}
    src = tmp_path / "src"
    config.save_pretrained(src)
    spec = fz.bin_spec(weights)
    for extra in [k for k in spec.tensors if k not in weights]:  # only the model's tensors
        del spec.tensors[extra]
    return src, spec, weights


def crafted_source(tmp_path):
    """The tiny masked-LM, but its position embeddings (40 x 32) described over a storage of 4 floats."""
    src, spec, _ = tiny_source(tmp_path)
    t = spec.tensors[POSITIONS]
    spec.records[t.key] = np.arange(4, dtype=np.float32).tobytes()
    t.numel = 4
    spec.write(src / "pytorch_model.bin")
    return src


def test_valid_tiny_source_converts(tmp_path):
    src, spec, weights = tiny_source(tmp_path)
    spec.write(src / "pytorch_model.bin")
    r = run("pt-to-tf", src, tmp_path / "out", "--quiet")
    assert r.returncode == 0, r.stderr
    tf = read_tf_h5(tmp_path / "out" / "tf_model.h5")
    assert np.array_equal(tf["mobilebert/embeddings/position_embeddings/embeddings:0"], weights[POSITIONS])


def test_pt_to_tf_cli_refuses_the_crafted_bin_and_writes_nothing(tmp_path):
    src = crafted_source(tmp_path)
    r = run("pt-to-tf", src, tmp_path / "out", "--quiet")
    assert r.returncode == 1 and str(src / "pytorch_model.bin") in r.stderr and "holds only 4" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_pytorch_from_pretrained_refuses_the_crafted_bin(tmp_path):
    pytest.importorskip("torch")
    from mobilebert_pt import MobileBertForMaskedLM

    src = crafted_source(tmp_path)
    with pytest.raises(ValueError, match=r"pytorch_model.bin"):
        MobileBertForMaskedLM.from_pretrained(src)


def test_keras_from_pt_refuses_the_crafted_bin(tmp_path):
    pytest.importorskip("tensorflow")
    from mobilebert_tf import TFMobileBertForMaskedLM

    src = crafted_source(tmp_path)
    with pytest.raises(ValueError, match=r"pytorch_model.bin is not a valid PyTorch .*holds only 4"):
        TFMobileBertForMaskedLM.from_pretrained(src, from_pt=True)


# ----------------------------------------------------------------------------- converter dtypes
def test_converter_refuses_integer_weights_naming_them(tmp_path):
    config = tiny_config()
    rng = np.random.default_rng(0)
    pt = {e.pt_name: rng.standard_normal(e.shape).astype(np.float32) for e in entries(config, ARCH) if e.transform != "tie"}
    pt[POSITIONS] = pt[POSITIONS].astype(np.int32)
    with pytest.raises(ConversionError, match=rf"1 tensor\(s\) not floating point.*{POSITIONS} \(int32\)"):
        pt_to_tf(pt, config, ARCH)
    pt[POSITIONS] = pt[POSITIONS].astype(np.float16)  # floats of another width are fine
    tf = pt_to_tf(pt, config, ARCH)
    tf["mobilebert/embeddings/position_embeddings/embeddings:0"] = np.ones((40, 32), bool)
    with pytest.raises(ConversionError, match=r"position_embeddings/embeddings:0 \(bool\)"):
        tf_to_pt(tf, config, ARCH)
    # through the CLI: exit 1, nothing written
    src, _, weights = tiny_source(tmp_path)
    weights[POSITIONS] = weights[POSITIONS].astype(np.int32)
    write_safetensors(src / "model.safetensors", weights, {"format": "pt"})
    r = run("pt-to-tf", src, tmp_path / "out", "--quiet")
    assert r.returncode == 1 and f"{POSITIONS} (int32)" in r.stderr and not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- safetensors and the index
def safetensors_file(path, edit):
    write_safetensors(path, {"a": np.arange(4, dtype=np.float32), "b": np.arange(6, dtype=np.int64).reshape(2, 3)})
    header, data = fz.split_safetensors(path.read_bytes())
    edited = edit(header, data)
    data = edited if isinstance(edited, bytes) else data
    path.write_bytes(fz.safetensors_bytes(header, data))
    return path


@pytest.mark.parametrize("edit, why", [
    (lambda h, d: h["b"].update(data_offsets=[8, 56]), "overlaps the tensor before it"),
    (lambda h, d: d + b"\0" * 8, "the tensors cover 64 bytes of the 72-byte data section"),
    (lambda h, d: h["b"].update(shape=[2**32, 2**32]), "absurdly large"),  # wraps to 0 in int64
    (lambda h, d: h["b"].update(shape=[2**31, 0]), "takes 0 bytes, but its data_offsets [16, 64] span 48"),
    (lambda h, d: h["a"].update(data_offsets=[16, 0]), "must be [begin, end]"),
    (lambda h, d: h["a"].update(data_offsets=[0.0, 16.0]), "must be [begin, end]"),
    (lambda h, d: h["a"].update(shape=[True, 4]), "must hold integers >= 0"),
    (lambda h, d: h["a"].update(dtype=["F32"]), "unsupported dtype"),
    (lambda h, d: h.update(__metadata__=[1]), "__metadata__ is not a JSON object"),
    (lambda h, d: h.update(c=3), "tensor 'c' is described by a int"),
    (lambda h, d: h["a"].pop("shape"), "shape None is not a list"),
])
def test_bad_safetensors_headers_are_refused(tmp_path, edit, why):
    path = safetensors_file(tmp_path / "m.safetensors", edit)
    with pytest.raises(ValueError, match="m.safetensors is not a valid safetensors file") as err:
        read_safetensors(path)
    assert why in str(err.value)


def test_safetensors_header_length_and_nesting_limits(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(fz.struct.pack("<Q", 2**63) + b"{}")
    with pytest.raises(ValueError, match="m.safetensors is not a valid .*over the 100000000-byte limit"):
        read_safetensors(path)
    path.write_bytes(fz.struct.pack("<Q", 200000) + b"[" * 200000)
    with pytest.raises(ValueError, match="m.safetensors is not a valid .*nests too deeply"):
        read_safetensors(path)


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/abs/model.safetensors", "a\x00b.safetensors", "..", ""])
def test_index_cannot_point_outside_its_directory(tmp_path, shard):
    (tmp_path / "outside.safetensors").write_bytes(safetensors_file(tmp_path / "x.safetensors", lambda h, d: None).read_bytes())
    (tmp_path / "d").mkdir()
    index = tmp_path / "d" / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": shard}}))
    with pytest.raises(ValueError, match="model.safetensors.index.json names shard files outside its directory"):
        read_sharded_safetensors(index)


@pytest.mark.parametrize("text, why", [
    ('{"weight_map": {"a": 3}}', "no 'weight_map' object"),
    ('["weight_map"]', "no 'weight_map' object"),
    ("[" * 100000, "safetensors index"),
    ('{"weight_map": {"a": "missing.safetensors"}}', "lists the shard missing.safetensors, which is not in"),
])
def test_malformed_index_names_it(tmp_path, text, why):
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(text)
    with pytest.raises((ValueError, FileNotFoundError), match="model.safetensors.index.json") as err:
        read_sharded_safetensors(index)
    assert why in str(err.value)


# ----------------------------------------------------------------------------- tf_model.h5
H5_CASES = {
    "external_link_layer": "is a ExternalLink to",
    "external_link_weight": "is a ExternalLink to",
    "soft_link": "is a SoftLink to '/predictions___cls'",
    "soft_link_layer": "'mobilebert' is a SoftLink to '/moved'",
    "virtual_dataset": "is a virtual dataset, whose data lies in other files",
    "external_storage": "is a external-storage dataset",
    "string_dataset": "not a numeric array",
    "compound": "not a numeric array",
    "null_dataspace": "not a numeric array",
    "group_not_dataset": "is a Group, not a Dataset",
    "missing_layer": "'nowhere', listed in the file's names, is not in the file",
    "missing_weight": "listed in the file's names, is not in the file",
    "unwritten_huge": "4398046511104 bytes are declared but 0 stored",
    "dot_path": "not a plain HDF5 path",
}


@pytest.mark.parametrize("what", sorted(H5_CASES))
def test_hostile_h5_files_are_refused(tmp_path, what):
    from conversion.formats import write_tf_h5

    path = tmp_path / "files" / "tf_model.h5"
    path.parent.mkdir()
    arrays = fz.tf_names(fz.tiny_arrays(fz.random.Random(0)))
    write_tf_h5(path, arrays, model_name="tf_mobile_bert_for_masked_lm")
    assert set(read_tf_h5(path)) == set(arrays)
    fz.craft_h5(path, what)
    with pytest.raises(ValueError, match="tf_model.h5 is not a valid Keras HDF5") as err:
        read_tf_h5(path)
    assert H5_CASES[what] in str(err.value)


# ----------------------------------------------------------------------------- config.json and vocab.txt
@pytest.mark.parametrize("raw, why", [
    (b"[" * 100000, "not a valid JSON config file"),
    (b'{"vocab_size": ' + b"9" * 5000 + b"}", "not a valid JSON config file"),
    (b"\xff\xfe{}", "not a valid JSON config file"),
    (b'"text"', "must hold a JSON object, got str"),
    (b'{"hidden_size": "32"}', "hidden_size must be an integer"),
])
def test_config_json_errors_name_the_file(tmp_path, raw, why):
    (tmp_path / "config.json").write_bytes(raw)
    with pytest.raises(ValueError, match="config.json") as err:
        MobileBertConfig.from_json_file(tmp_path / "config.json")
    assert why in str(err.value)


def test_config_with_a_huge_num_labels_is_refused_not_a_hang(tmp_path):
    # num_labels alone names every class: 2**32 labels would fill memory, so it is bounded
    (tmp_path / "config.json").write_text('{"num_labels": 4294967296}')
    result = fz.read_isolated("config", tmp_path / "config.json", timeout=30)
    assert result["status"] == "error" and result["allowed"], result
    assert str(tmp_path / "config.json") in result["message"] and "num_labels must be at most 1000000" in result["message"]


@pytest.mark.parametrize("raw, why", [
    (b"", "is empty"),
    (b"\n", "lacks the special token"),
    (b"[PAD]\n\x00\x00\n", "holds NUL characters"),
    (bytes(range(256)), "is not UTF-8 text"),
    (b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n", "lacks the special token(s) ['[MASK]']"),
])
def test_vocab_errors_name_the_file(tmp_path, raw, why):
    (tmp_path / "vocab.txt").write_bytes(raw)
    with pytest.raises(ValueError, match="vocab.txt") as err:
        MobileBertTokenizer(vocab_file=tmp_path / "vocab.txt")
    assert why in str(err.value)
    if why != "lacks the special token" and "lacks" not in why:
        with pytest.raises(ValueError, match="vocab.txt"):
            load_vocab(tmp_path / "vocab.txt")
