"""The Keras package's shape, as the PyTorch one's (test_pt_layout.py; what both share is in test_layout.py):
a generic loading base that knows no MobileBERT class (serving and training, its Keras-only
mixins, neither), widths read from the config's derived facts, and save_pretrained returning the paths
written, as in PyTorch.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import mobilebert_tf  # noqa: E402
from mobilebert_tf import modeling, pretrained  # noqa: E402
from tests.harness.models import VARIANTS, tiny_config  # noqa: E402
from tests.harness.imports import import_graph  # noqa: E402

def test_the_loading_base_and_the_keras_mixins_know_no_model_class():
    graph = import_graph()
    for module in ("mobilebert_tf.pretrained", "mobilebert_tf.serving", "mobilebert_tf.training",
                   "mobilebert_tf.checkpoints", "mobilebert_tf.inputs", "mobilebert_tf.losses"):
        assert "mobilebert_tf.modeling" not in graph[module], module
    assert not any("MobileBert" in name for name in vars(pretrained))
    assert issubclass(modeling.TFMobileBertPreTrainedModel, pretrained.TFPreTrainedModel)
    assert mobilebert_tf.TFMobileBertForMaskedLM is modeling.TFMobileBertForMaskedLM


@pytest.mark.parametrize("old", ["backbone", "heads"])
def test_merged_modules_are_gone_and_nothing_redirects(old):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"mobilebert_tf.{old}")
    assert not hasattr(modeling, "__getattr__")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_widths_come_from_the_config(variant):
    config = tiny_config(variant)
    model = modeling.TFMobileBertForPreTraining(config)
    model.build_with_dummies()
    embeddings, layer = model.mobilebert.embeddings, model.mobilebert.encoder.layer[0]
    assert embeddings.embedding_transformation.kernel.shape[0] == config.embedding_input_size
    attention = layer.attention.self
    assert attention.query.kernel.shape[0] == attention.key.kernel.shape[0] == config.query_key_input_size
    assert attention.value.kernel.shape[0] == config.value_input_size
    assert tuple(model.cls.predictions.dense.shape) == (config.mlm_dense_size, config.vocab_size)
    if config.use_bottleneck:
        assert layer.bottleneck.uses_shared_bottleneck == config.uses_shared_bottleneck
    if config.key_query_shared_bottleneck:
        # The shared bottleneck changes the output exactly when config.uses_shared_bottleneck says it runs.
        ids = np.array([[1, 2, 3, 4]])
        before = model.mobilebert(input_ids=ids).last_hidden_state.numpy()
        kernel = layer.bottleneck.attention.dense.kernel
        kernel.assign(kernel + 1.0)
        after = model.mobilebert(input_ids=ids).last_hidden_state.numpy()
        assert (not np.array_equal(before, after)) == config.uses_shared_bottleneck
    ids = np.array([[1, 2, 3, 4]])
    transformation = embeddings.embedding_transformation.kernel
    before = model.mobilebert(input_ids=ids).last_hidden_state.numpy()
    transformation.assign(transformation + 1.0)
    after = model.mobilebert(input_ids=ids).last_hidden_state.numpy()
    assert (not np.array_equal(before, after)) == config.transforms_input


def test_save_pretrained_returns_the_paths_it_wrote(tmp_path):
    model = modeling.TFMobileBertForMaskedLM(tiny_config())
    paths = model.save_pretrained(tmp_path)
    assert paths == [str(tmp_path / "tf_model.h5"), str(tmp_path / "config.json")]  # config.json last, as in PyTorch
    assert sorted(os.path.basename(p) for p in paths) == sorted(os.listdir(tmp_path))
