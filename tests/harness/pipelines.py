"""Shared pieces of the pipeline tests: a tiny vocabulary, a tokenizer, and one adapter per framework
that builds tiny models, plants weights and calls the model directly (the independent reference).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.harness.models import tiny_config

WORDS = (
    "the capital of france is paris london city hello world john lives in new york where does live "
    "a an ##s ##ing play . ? , sentence next"
).split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS


def write_vocab(directory) -> str:
    path = directory / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return str(path)


def have_own_tokenizer() -> bool:
    try:
        from mobilebert_common.tokenization_fast import MobileBertTokenizerFast  # noqa: F401
    except ImportError:
        return False
    return True


def make_tokenizer(directory):
    """The suite's fast tokenizer on the tiny vocabulary; until it lands, transformers' BERT
    tokenizer (test-only) stands in, with the same WordPiece ids and offsets."""
    write_vocab(directory)
    if have_own_tokenizer():
        from mobilebert_common.tokenization_fast import MobileBertTokenizerFast

        return MobileBertTokenizerFast.from_pretrained(str(directory))
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizerFast(vocab_file=str(directory / "vocab.txt"))


def config(**overrides):
    return tiny_config(vocab_size=len(VOCAB), max_position_embeddings=40, **overrides)


def encode(tok, text, pair=None) -> dict:
    """[CLS] a [SEP] (b [SEP]) built from tokenize() + convert_tokens_to_ids: not the pipeline's path."""
    a = tok.convert_tokens_to_ids(tok.tokenize(text))
    ids = [tok.cls_token_id] + a + [tok.sep_token_id]
    types = [0] * len(ids)
    if pair is not None:
        b = tok.convert_tokens_to_ids(tok.tokenize(pair))
        ids += b + [tok.sep_token_id]
        types += [1] * (len(b) + 1)
    arr = lambda x: np.asarray([x], dtype=np.int64)  # noqa: E731
    return {"input_ids": arr(ids), "attention_mask": arr([1] * len(ids)), "token_type_ids": arr(types)}


class PT:
    name = "pt"

    def __init__(self):
        import torch

        import mobilebert_pt
        from mobilebert_pt.pipelines import pipeline

        self.torch, self.lib, self.pipeline = torch, mobilebert_pt, pipeline

    def model(self, cls_name, cfg, seed=0):
        self.torch.manual_seed(seed)
        return getattr(self.lib, cls_name)(cfg).eval()

    def set(self, param, values):
        with self.torch.no_grad():
            param.copy_(self.torch.as_tensor(np.asarray(values), dtype=param.dtype))

    def mlm_bias(self, m):
        return m.cls.predictions.bias

    def linear(self, layer):  # (weight, bias) with weight as (out, in)
        return layer.weight, layer.bias

    def zero_weight(self, layer):
        self.set(layer.weight, np.zeros(tuple(layer.weight.shape)))

    def call(self, m, inputs) -> object:
        with self.torch.no_grad():
            return m(**{k: self.torch.from_numpy(v) for k, v in inputs.items()}, return_dict=True)

    def numpy(self, t):
        return t.detach().float().cpu().numpy()


class TF:
    name = "tf"

    def __init__(self):
        tf = pytest.importorskip("tensorflow")
        import mobilebert_tf
        from mobilebert_tf.pipelines import pipeline

        self.tf, self.lib, self.pipeline = tf, mobilebert_tf, pipeline

    def model(self, cls_name, cfg, seed=0):
        self.tf.random.set_seed(seed)
        m = getattr(self.lib, "TF" + cls_name)(cfg)
        m(input_ids=np.array([[2, 5, 3]], dtype=np.int64), training=False)  # build the variables
        return m

    def set(self, var, values):
        var.assign(np.asarray(values, dtype=var.dtype.as_numpy_dtype))

    def mlm_bias(self, m):
        return m.cls.predictions.bias

    def zero_weight(self, layer):
        layer.kernel.assign(np.zeros(layer.kernel.shape, dtype=np.float32))

    def call(self, m, inputs):
        return m(**{k: self.tf.constant(v) for k, v in inputs.items()}, return_dict=True, training=False)

    def numpy(self, t):
        return np.asarray(self.tf.cast(t, self.tf.float32))


def adapter(name: str):
    """The framework adapter for a test parametrized over ("pt", "tf")."""
    return PT() if name == "pt" else TF()


def real_vocab_tokenizer(directory):
    """The fast tokenizer on the released 30,522-word vocabulary (far larger than the tiny models')."""
    import shutil

    from tests.harness.models import SHARED_VOCAB

    if not SHARED_VOCAB.is_file():
        pytest.skip(f"needs the real vocabulary at {SHARED_VOCAB}")
    shutil.copy(SHARED_VOCAB, directory / "vocab.txt")
    from mobilebert_common.tokenization_fast import MobileBertTokenizerFast

    return MobileBertTokenizerFast.from_pretrained(str(directory))


def classifier_layer(fw, m):
    """The dense layer of a sequence / token classifier, QA or NSP head."""
    for name in ("classifier", "qa_outputs"):
        if hasattr(m, name):
            return getattr(m, name)
    return m.cls.seq_relationship
