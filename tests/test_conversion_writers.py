"""Writers (sharded safetensors, pytorch_model.bin), the legacy .bin reader, and the one weight-file locator.

Every written file is read back bit-exact by our readers and by the loaders users have:
safetensors.safe_open, transformers' from_pretrained, torch.load(weights_only=True).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conversion.formats import (read_pytorch_bin, read_sharded_safetensors, read_weights,
                                write_pytorch_bin, write_safetensors, write_sharded_safetensors)
from mobilebert_common.weight_files import (WeightFiles, index_json, locate_weights, parse_size, plan_shards, read_index,
                                            shard_name, weights_format)
from tests.harness.models import tiny_config
from tests.harness.conversion import assert_same, random_pt

ROOT = Path(__file__).resolve().parents[1]
ARCH = "MobileBertForMaskedLM"


def pt_weights(config=None, dtype=np.float32, seed=0):
    return random_pt(config or tiny_config(), ARCH, seed=seed, dtype=dtype)


def checkpoint_dir(path: Path, config=None) -> Path:
    config = (config or tiny_config()).copy(architectures=[ARCH])
    config.save_pretrained(path)
    return path


# ----------------------------------------------------------------------------- sharded safetensors
def test_sharded_writer_layout_and_readers(tmp_path):
    weights = pt_weights()
    total = sum(v.nbytes for v in weights.values())
    paths = write_sharded_safetensors(tmp_path, weights, max_shard_size="20KB", metadata={"format": "pt"})
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert set(index) == {"metadata", "weight_map"} and index["metadata"] == {"total_size": total}
    shards = sorted(set(index["weight_map"].values()))
    n = len(shards)
    assert n > 2 and shards == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    assert [Path(p).name for p in paths] == shards + ["model.safetensors.index.json"]
    assert sorted(os.listdir(tmp_path)) == sorted(shards + ["model.safetensors.index.json"])  # no temp files
    for shard in shards:  # each at most 20 kB, unless one tensor alone is larger
        held = [k for k, v in index["weight_map"].items() if v == shard]
        assert sum(weights[k].nbytes for k in held) <= 20_000 or len(held) == 1
    assert_same(read_sharded_safetensors(tmp_path / "model.safetensors.index.json"), weights)

    from safetensors import safe_open

    seen = {}
    for shard in shards:
        with safe_open(str(tmp_path / shard), framework="np") as f:
            assert f.metadata() == {"format": "pt"}
            seen.update({k: f.get_tensor(k) for k in f.keys()})
    assert_same(seen, weights)


def test_sharded_writer_replaces_an_earlier_save(tmp_path):
    write_safetensors(tmp_path / "model.safetensors", pt_weights(seed=1))
    write_sharded_safetensors(tmp_path, pt_weights(seed=2), max_shard_size="10KB")
    many = sorted(os.listdir(tmp_path))
    weights = pt_weights(seed=3)
    write_sharded_safetensors(tmp_path, weights, max_shard_size="40KB")
    names = sorted(os.listdir(tmp_path))
    assert "model.safetensors" not in names and len(names) < len(many)  # stale shards and the single file are gone
    assert names == sorted(set(read_index(tmp_path / "model.safetensors.index.json").values()) | {"model.safetensors.index.json"})
    assert_same(read_sharded_safetensors(tmp_path / "model.safetensors.index.json"), weights)


def test_sharded_writer_interrupted_leaves_the_directory_as_it_was(tmp_path, monkeypatch):
    import conversion.formats as formats

    write_sharded_safetensors(tmp_path, pt_weights(seed=1), max_shard_size="20KB")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    calls = []

    def failing(path, tensors, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return write_safetensors(path, tensors, metadata)

    monkeypatch.setattr(formats, "write_safetensors", failing)
    with pytest.raises(KeyboardInterrupt):
        formats.write_sharded_safetensors(tmp_path, pt_weights(seed=2), max_shard_size="20KB")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_transformers_loads_our_sharded_directory(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    weights = pt_weights()
    write_sharded_safetensors(checkpoint_dir(tmp_path), weights, max_shard_size="20KB", metadata={"format": "pt"})
    model, info = transformers.MobileBertForMaskedLM.from_pretrained(str(tmp_path), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    state = model.state_dict()
    for name, value in weights.items():
        assert torch.equal(state[name], torch.from_numpy(value)), name


def test_size_parsing_and_shard_plan():
    assert parse_size("50MB") == 50_000_000 and parse_size("2GiB") == 2 * 2**30 and parse_size(1234) == 1234
    assert parse_size("0.5kb") == 500
    for bad in ("fifty", "10 parsecs", 0, -3, "0MB"):
        with pytest.raises(ValueError, match="max_shard_size"):
            parse_size(bad)
    assert plan_shards([("a", 6), ("b", 5), ("c", 20), ("d", 1)], 10) == [["a"], ["b"], ["c"], ["d"]]
    assert plan_shards([("a", 3), ("b", 3), ("c", 3), ("d", 3)], 7) == [["a", "b"], ["c", "d"]]
    assert shard_name(2, 11) == "model-00002-of-00011.safetensors"
    assert json.loads(index_json({"b": "s2", "a": "s1"}, 7)) == {"metadata": {"total_size": 7},
                                                                  "weight_map": {"a": "s1", "b": "s2"}}


def test_index_cannot_point_outside_its_directory(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../../etc/passwd"}}))
    with pytest.raises(ValueError, match="outside its directory"):
        read_sharded_safetensors(tmp_path / "model.safetensors.index.json")
    (tmp_path / "model.safetensors.index.json").write_text("{}")
    with pytest.raises(ValueError, match="model.safetensors.index.json is not a valid safetensors index.*weight_map"):
        read_sharded_safetensors(tmp_path / "model.safetensors.index.json")


# ----------------------------------------------------------------------------- pytorch_model.bin
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_bin_writer_reads_back_with_torch_and_ours(tmp_path, dtype):
    torch = pytest.importorskip("torch")
    from conversion.arrays import cast_floats

    weights = cast_floats(pt_weights(), dtype)
    write_pytorch_bin(tmp_path / "pytorch_model.bin", weights)
    assert os.listdir(tmp_path) == ["pytorch_model.bin"]
    assert_same(read_pytorch_bin(tmp_path / "pytorch_model.bin"), weights)
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True, map_location="cpu")
    assert list(state) == list(weights)
    for name, value in weights.items():
        tensor = state[name]
        assert tensor.dtype == getattr(torch, dtype) and tuple(tensor.shape) == value.shape
        np.testing.assert_array_equal(tensor.float().numpy(), value.astype(np.float32), err_msg=name)


def test_transformers_loads_our_bin(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    weights = pt_weights()
    write_pytorch_bin(checkpoint_dir(tmp_path) / "pytorch_model.bin", weights)
    model, info = transformers.MobileBertForMaskedLM.from_pretrained(str(tmp_path), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    state = model.state_dict()
    assert all(torch.equal(state[k], torch.from_numpy(v)) for k, v in weights.items())


def test_legacy_bin_is_read_through_torch(tmp_path):
    torch = pytest.importorskip("torch")
    state = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(4, dtype=torch.bfloat16),
             "c": torch.tensor([1.5], dtype=torch.float16)}
    torch.save(state, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    assert not (tmp_path / "legacy.bin").read_bytes().startswith(b"PK")  # really the pre-1.6 format
    got = read_pytorch_bin(tmp_path / "legacy.bin")
    assert got["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and got["a"].dtype == np.float32
    assert str(got["b"].dtype) == "bfloat16" and got["b"].astype(np.float32).tolist() == [1, 1, 1, 1]
    assert got["c"].dtype == np.float16 and got["c"].tolist() == [1.5]

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"a": torch.zeros(1), "evil": Evil()}, tmp_path / "evil.bin", _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="weights_only=True"):
        read_pytorch_bin(tmp_path / "evil.bin")


def test_legacy_bin_without_torch_says_torch_is_needed(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"a": torch.zeros(2)}, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    torch.save({"a": torch.ones(2)}, tmp_path / "zip.bin")
    code = ("import sys; sys.modules['torch'] = None\n"  # import torch now fails, as where it is not installed
            "from conversion.formats import read_pytorch_bin\n"
            f"print(read_pytorch_bin({str(tmp_path / 'zip.bin')!r})['a'].tolist())\n"
            f"read_pytorch_bin({str(tmp_path / 'legacy.bin')!r})\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout.strip() == "[1.0, 1.0]"
    assert "ImportError" in r.stderr and "legacy (pre-1.6, non-zip)" in r.stderr and "needs torch" in r.stderr


def test_damaged_bin_is_named_not_mistaken_for_legacy(tmp_path):
    (tmp_path / "cut.bin").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="cut.bin is not a valid PyTorch .*not a zip archive"):
        read_pytorch_bin(tmp_path / "cut.bin")


def test_bin_writer_without_torch_says_so(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "import numpy as np\nfrom conversion.formats import write_pytorch_bin\n"
            f"write_pytorch_bin({str(tmp_path / 'x.bin')!r}, {{'a': np.zeros(2, np.float32)}})\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "writing pytorch_model.bin needs torch" in r.stderr
    assert not os.listdir(tmp_path)


# ----------------------------------------------------------------------------- the locator
def test_locator_search_order_single_files_and_hints(tmp_path):
    d = checkpoint_dir(tmp_path / "d")
    with pytest.raises(FileNotFoundError, match=r"no PyTorch weights \(looked for model.safetensors, "
                                                r"model.safetensors.index.json and pytorch_model.bin\) in .*d\.$"):
        locate_weights(d, "pt", other_hint="pass from_tf=True.")
    (d / "tf_model.h5").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="It has tf_model.h5: pass from_tf=True."):
        locate_weights(d, "pt", other_hint="pass from_tf=True.")
    assert locate_weights(d, "tf") == WeightFiles("h5", str(d / "tf_model.h5"))
    (d / "pytorch_model.bin").write_bytes(b"x")  # located, not read
    assert locate_weights(d, "pt").format == "bin"
    write_sharded_safetensors(d, {"a": np.zeros(3, np.float32), "b": np.ones(3, np.float32)}, max_shard_size=12)
    files = locate_weights(d, "pt")
    assert files.format == "sharded" and [Path(p).name for p in files.shards] == [shard_name(1, 2), shard_name(2, 2)]
    write_safetensors(d / "model.safetensors", {"a": np.zeros(1, np.float32)})
    assert locate_weights(d, "pt") == WeightFiles("safetensors", str(d / "model.safetensors"))  # preferred
    os.remove(d / "tf_model.h5")
    with pytest.raises(FileNotFoundError, match="It has PyTorch weights: pass from_pt=True"):
        locate_weights(d, "tf", other_hint="pass from_pt=True.")
    # A file given directly: by its name.
    assert weights_format("x/model-00001-of-00002.safetensors") == "safetensors"
    assert locate_weights(d / "model.safetensors.index.json", "pt").format == "sharded"
    with pytest.raises(ValueError, match="is a PyTorch weights file; expected a Keras .h5"):
        locate_weights(d / "model.safetensors", "tf")
    (d / "weights.npz").write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown weights format"):
        locate_weights(d / "weights.npz", "pt")


def hub_snapshot(cache: Path, repo_id: str, files: dict) -> None:
    """A huggingface_hub cache entry for repo_id (refs/main -> snapshots/<commit>/files), as a download leaves it."""
    commit = "0" * 40
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name, data in files.items():
        (repo / "snapshots" / commit / name).write_bytes(data)


def test_sharded_checkpoint_of_a_hub_repo_loads_in_both_frameworks(tmp_path):
    """One locator: sharded hub repos work for PyTorch, for Keras from_pt (refused before) and for the CLI."""
    weights = pt_weights()
    src = checkpoint_dir(tmp_path / "src")
    write_sharded_safetensors(src, weights, max_shard_size="20KB")
    hub_snapshot(tmp_path / "hub", "someone/sharded", {p.name: p.read_bytes() for p in src.iterdir()})
    assert read_weights(locate_weights("someone/sharded", "pt", {"cache_dir": str(tmp_path / "hub"),
                                                                  "local_files_only": True})).keys() == weights.keys()
    hub = dict(cache_dir=str(tmp_path / "hub"), local_files_only=True)
    inputs = {"input_ids": np.array([[2, 5, 7, 1]])}
    logits = {}
    torch = pytest.importorskip("torch")
    import mobilebert_pt

    pt_model = mobilebert_pt.MobileBertForMaskedLM.from_pretrained("someone/sharded", **hub)
    with torch.no_grad():
        logits["pt"] = pt_model(input_ids=torch.from_numpy(inputs["input_ids"])).logits.numpy()
    pytest.importorskip("tensorflow")
    import mobilebert_tf

    tf_model = mobilebert_tf.TFMobileBertForMaskedLM.from_pretrained("someone/sharded", from_pt=True, **hub)
    logits["tf"] = tf_model(inputs, training=False).logits.numpy()
    from tests.harness.models import assert_close

    assert_close(logits["tf"], logits["pt"], 1e-5, what="from_pt of a sharded hub repo vs PyTorch")
