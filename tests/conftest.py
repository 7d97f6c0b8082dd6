"""Fixtures that several test modules share; the helpers they use live in tests/harness/."""

from __future__ import annotations

import pytest

from tests.harness.cli import write_cli_dirs
from tests.harness.conversion import write_pt_dir
from tests.harness.models import FRAMEWORKS, SHARED_VOCAB
from tests.harness.tokenization import CLASSES


@pytest.fixture(params=list(FRAMEWORKS))
def framework(request):
    """Each framework's adapter (tests.harness.models.Framework), for a contract written once for both."""
    return FRAMEWORKS[request.param]


# The framework-only tests of a module that holds both frameworks' tests: the library, or a skip without it.


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture
def keras():
    return pytest.importorskip("tf_keras")


@pytest.fixture
def pt_dir(tmp_path):
    """A tiny masked-LM checkpoint in PyTorch layout (tests.harness.conversion.write_pt_dir)."""
    return write_pt_dir(tmp_path)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """The CLI tests' tiny PyTorch checkpoints, {mlm, qa, ner, cls, nsp, base: directory}."""
    return write_cli_dirs(tmp_path_factory)


# ---- the tokenizer tests: the released vocabulary, both classes on it, transformers' classes on it


@pytest.fixture(scope="module")
def vocab_path():
    if not SHARED_VOCAB.is_file():
        pytest.skip(f"the real vocabulary {SHARED_VOCAB} is absent (it sits in ../shared/data next to the repository)")
    return str(SHARED_VOCAB)


@pytest.fixture(scope="module")
def toks(vocab_path):
    return {cls: cls(vocab_path) for cls in CLASSES}


@pytest.fixture(scope="module")
def refs(vocab_path):
    transformers = pytest.importorskip("transformers")
    return {
        CLASSES[0]: transformers.BertTokenizer(vocab_path),  # MobileBertTokenizer
        CLASSES[1]: transformers.BertTokenizerFast(vocab_path),  # MobileBertTokenizerFast
    }
