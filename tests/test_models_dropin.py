"""Drop-in for transformers users (issue 15, the model half): code written for transformers'
MobileBertFor* / TFMobileBertFor* runs unchanged with ours. A model tester over tiny configs, both
frameworks: the config's output flags, main_input_name, from_pretrained(None, state_dict=...),
resize_token_embeddings, positional Keras inputs, tie_word_embeddings, and transformers' Trainer."""

from __future__ import annotations

import numpy as np
import pytest

from tests.harness.models import ARCHITECTURES, model_inputs, tiny_config

HEADS = ARCHITECTURES  # "MobileBertModel", "MobileBertForPreTraining", ...


def _fields(out) -> dict:
    return {k: v for k, v in out.items() if v is not None}


# ---------------------------------------------------------------------------------------- 1. config flags

@pytest.mark.parametrize("architecture", HEADS)
def test_config_output_flags_are_the_defaults(framework, architecture):
    """model.config.output_attentions / output_hidden_states / return_dict decide when the call passes None."""
    config = tiny_config()
    model = getattr(framework.module(), framework.prefix + architecture)(config)
    x = {k: framework.tensor(v) for k, v in model_inputs(config, architecture).items()}
    plain = model(**x)
    assert plain.attentions is None and plain.hidden_states is None

    model.config.output_attentions = True
    model.config.output_hidden_states = True
    out = model(**x)
    assert len(out.attentions) == config.num_hidden_layers
    assert len(out.hidden_states) == config.num_hidden_layers + 1
    assert model(**x, output_attentions=False).attentions is None  # an explicit argument still wins

    model.config.return_dict = False
    as_tuple = model(**x)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(_fields(out))
    assert not isinstance(model(**x, return_dict=True), tuple)
    model.config.return_dict = True
    model.config.torchscript = True  # transformers: torchscript means tuples (config.use_return_dict)
    assert isinstance(model(**x), tuple)


# ---------------------------------------------------------------------------------------- 2. main_input_name

@pytest.mark.parametrize("architecture", HEADS)
def test_main_input_name(framework, architecture):
    cls = getattr(framework.module(), framework.prefix + architecture)
    assert cls.main_input_name == "input_ids"


# ---------------------------------------------------------------------------------------- 3. state_dict=

@pytest.mark.parametrize("architecture", ["MobileBertForMaskedLM", "MobileBertForSequenceClassification"])
def test_pt_from_pretrained_state_dict(tmp_path, architecture):
    torch = pytest.importorskip("torch")
    import mobilebert_pt

    from tests.harness.models import make_pt, pt_inputs

    model = make_pt(architecture)
    cls = type(model)
    x = pt_inputs(model.config, architecture)
    with torch.no_grad():
        expected = model(**x).logits

    loaded = cls.from_pretrained(None, config=model.config, state_dict=model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(loaded(**x).logits, expected)
    assert not loaded.training

    # A path gives the config; state_dict gives the weights (the file's weights are not read).
    other = getattr(mobilebert_pt, architecture)(model.config)
    other.save_pretrained(tmp_path)
    from_path = cls.from_pretrained(tmp_path, state_dict=model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(from_path(**x).logits, expected)


def test_pt_from_pretrained_state_dict_errors():
    pytest.importorskip("torch")
    from tests.harness.models import make_pt

    model = make_pt("MobileBertForMaskedLM")
    cls = type(model)
    with pytest.raises(ValueError, match="needs both config= and state_dict="):
        cls.from_pretrained(None, config=model.config)
    with pytest.raises(ValueError, match="needs both config= and state_dict="):
        cls.from_pretrained(None, state_dict=model.state_dict())
    with pytest.raises(ValueError, match="state_dict= does not hold a flat dict of named tensors"):
        cls.from_pretrained(None, config=model.config, state_dict={"a": [1.0]})
    state = model.state_dict()
    state.pop("mobilebert.encoder.layer.0.attention.self.query.weight")
    with pytest.raises(ValueError, match="state_dict= does not match MobileBertForMaskedLM: 1 backbone weights are missing"):
        cls.from_pretrained(None, config=model.config, state_dict=state)


# ---------------------------------------------------------------------------------------- 4. resize (PyTorch)

@pytest.mark.parametrize("architecture", ["MobileBertForMaskedLM", "MobileBertForPreTraining"])
def test_pt_resize_follows_transformers(architecture):
    """Added rows near the mean of the old rows (embeddings, head dense columns), bias 0: as transformers 4.57."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tests.harness.models import make_pt

    ours = make_pt(architecture)
    theirs = getattr(transformers, architecture)(transformers.MobileBertConfig(**ours.config.to_dict())).eval()
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and set(missing) <= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    old_table = ours.get_input_embeddings().weight.detach().clone()  # (99, 16)
    old_dense = ours.cls.predictions.dense.weight.detach().clone()  # (16, 99)

    torch.manual_seed(1)
    ours.resize_token_embeddings(105)
    theirs.resize_token_embeddings(105)
    for model in (ours, theirs):
        table = model.get_input_embeddings().weight.detach()
        dense = model.cls.predictions.dense.weight.detach()
        assert table.shape == (105, 16) and dense.shape == (16, 105) and model.config.vocab_size == 105
        assert torch.equal(table[:99], old_table) and torch.equal(dense[:, :99], old_dense)
        # Rows, drawn from N(mean, 1e-9 * covariance): the mean to within ~1e-5 of the weights' scale, distinct.
        torch.testing.assert_close(table[99:], old_table.mean(0).expand(6, -1), atol=1e-4, rtol=0)
        torch.testing.assert_close(dense[:, 99:], old_dense.mean(1, keepdim=True).expand(-1, 6), atol=1e-4, rtol=0)
        assert not torch.equal(table[99], table[100])
        torch.testing.assert_close(model.cls.predictions.bias.detach()[99:], torch.zeros(6))
        assert model.cls.predictions.decoder.weight is model.get_input_embeddings().weight
    x = {"input_ids": torch.tensor([[1, 100, 104, 3]])}
    with torch.no_grad():
        expected = theirs(**x)[0]
        torch.testing.assert_close(ours(**x)[0], expected, atol=1e-3 * float(expected.abs().max()), rtol=0)


def test_pt_resize_options_and_errors():
    torch = pytest.importorskip("torch")
    from tests.harness.models import make_pt

    model = make_pt("MobileBertForMaskedLM")
    assert model.resize_token_embeddings(100, pad_to_multiple_of=8).num_embeddings == 104
    assert model.cls.predictions.bias.shape == (104,)
    assert model.resize_token_embeddings(pad_to_multiple_of=32).num_embeddings == 128  # the current size, rounded up
    table = model.get_input_embeddings().weight.detach().clone()
    grown = model.resize_token_embeddings(160, mean_resizing=False).weight.detach()
    assert torch.equal(grown[:128], table)
    spread = float(grown[128:].std())  # drawn as at init: truncated normal(initializer_range), not the mean
    assert 0.5 * model.config.initializer_range < spread < 1.5 * model.config.initializer_range
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="new_num_tokens must be a positive integer or None"):
            model.resize_token_embeddings(bad)
    with pytest.raises(ValueError, match="pad_to_multiple_of must be a positive integer or None"):
        model.resize_token_embeddings(120, pad_to_multiple_of=0)
    model.config.pad_token_id = 5
    with pytest.raises(ValueError, match=r"new_num_tokens=5 would drop the padding id 5 \(config.pad_token_id\)"):
        model.resize_token_embeddings(5)


# ---------------------------------------------------------------------------------------- 4/5. Keras: vocabulary

@pytest.mark.parametrize("architecture", ["MobileBertForMaskedLM", "MobileBertForPreTraining", "MobileBertModel"])
def test_tf_resize_token_embeddings(tmp_path, architecture):
    tf = pytest.importorskip("tensorflow")
    import mobilebert_tf
    from mobilebert_tf.pretrained import weights_by_name

    config = tiny_config()
    cls = getattr(mobilebert_tf, "TF" + architecture)
    model = cls(config)
    x = model_inputs(config, architecture)
    before = model(**x)[0].numpy()
    layer = model.get_input_embeddings()
    old_table = layer.weight.numpy().copy()  # (99, 16)
    head = model._lm_head()
    old_dense = None if head is None else head.dense.numpy().copy()  # (16, 99)

    tf.random.set_seed(3)
    assert model.resize_token_embeddings(105) is layer
    assert model.config.vocab_size == 105 and layer.weight.shape == (105, 16)
    table = layer.weight.numpy()
    np.testing.assert_array_equal(table[:99], old_table)
    np.testing.assert_allclose(table[99:], np.broadcast_to(old_table.mean(0), (6, 16)), atol=1e-4)
    assert not np.array_equal(table[99], table[100])
    names = weights_by_name(model)
    assert len(names) == len(model.weights)  # the old variables are gone, the new ones carry the hub's names
    assert names["mobilebert/embeddings/word_embeddings/weight:0"].shape == (105, 16)
    after = model(**x)[0].numpy()
    if head is not None:
        np.testing.assert_array_equal(head.dense.numpy()[:, :99], old_dense)
        np.testing.assert_allclose(head.dense.numpy()[:, 99:], np.broadcast_to(old_dense.mean(1, keepdims=True), (16, 6)),
                                   atol=1e-4)
        np.testing.assert_array_equal(head.bias.numpy()[99:], np.zeros(6))
        assert after.shape[-1] == 105
        np.testing.assert_allclose(after[..., :99], before, rtol=1e-5, atol=1e-5)
        assert model.predict(x, verbose=0)[list(model.predict(x, verbose=0))[0]].shape[-1] == 105  # no stale graph
    else:
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)  # ids < 99 read the same rows
    model.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(tmp_path)
    assert loaded.config.vocab_size == 105
    np.testing.assert_allclose(loaded(**x)[0].numpy(), after, rtol=1e-6, atol=1e-6)


def test_tf_set_input_embeddings_and_errors():
    pytest.importorskip("tensorflow")
    import mobilebert_tf

    config = tiny_config()
    mlm = mobilebert_tf.TFMobileBertForMaskedLM(config)
    x = model_inputs(config, "MobileBertForMaskedLM")
    x["input_ids"][x["input_ids"] == 5] = 7  # token 5 only as an output: its row then moves its logits alone
    table = np.random.default_rng(0).normal(size=(99, 16)).astype(np.float32)
    mlm.set_input_embeddings(table)
    np.testing.assert_array_equal(mlm.get_input_embeddings().weight.numpy(), table)
    # The tied decoder reads the new table: logits for token 5 move with row 5.
    base = mlm(**x).logits.numpy()
    table[5] += 1.0
    mlm.set_input_embeddings(table)
    changed = mlm(**x).logits.numpy()
    assert not np.allclose(changed[..., 5], base[..., 5]) and np.allclose(changed[..., 6], base[..., 6], atol=1e-5)
    with pytest.raises(ValueError, match=r"masked-LM head over 99 tokens.*resize_token_embeddings\(120\)"):
        mlm.set_input_embeddings(np.zeros((120, 16), np.float32))
    with pytest.raises(ValueError, match=r"must be a \(vocab_size, 16\) table \(config.embedding_size\), got shape \(99, 8\)"):
        mlm.set_input_embeddings(np.zeros((99, 8), np.float32))
    with pytest.raises(ValueError, match="new_num_tokens must be a positive integer or None"):
        mlm.resize_token_embeddings(0)
    assert mlm.resize_token_embeddings(100, pad_to_multiple_of=8).weight.shape == (104, 16)
    backbone = mobilebert_tf.TFMobileBertModel(tiny_config())
    backbone.set_input_embeddings(np.zeros((120, 16), np.float32))  # no head: any size, the config follows
    assert backbone.config.vocab_size == 120


# ---------------------------------------------------------------------------------------- 5. Keras: calls, building, saving

def test_tf_positional_inputs():
    tf = pytest.importorskip("tensorflow")
    import mobilebert_tf

    config = tiny_config()
    model = mobilebert_tf.TFMobileBertForSequenceClassification(config)
    x = model_inputs(config, "MobileBertForSequenceClassification")
    expected = model(**x).logits.numpy()
    ids, mask, types = (tf.constant(x[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    np.testing.assert_allclose(model([ids, mask, types]).logits.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(model((x["input_ids"], x["attention_mask"], x["token_type_ids"])).logits.numpy(),
                               expected, rtol=1e-6)
    assert not np.allclose(model([ids]).logits.numpy(), expected)  # the mask and types were really read
    assert model(x["input_ids"].tolist()).logits.shape == (2, 2)  # a nested list of ints is still input_ids
    with pytest.raises(ValueError, match="got 7 positional inputs in a list; at most 6"):
        model([ids] * 7)


@pytest.mark.parametrize("architecture", HEADS)
def test_tf_from_config_every_class(architecture):
    pytest.importorskip("tensorflow")
    import mobilebert_tf

    cls = getattr(mobilebert_tf, "TF" + architecture)
    config = tiny_config()
    model = cls.from_config(config)
    assert type(model) is cls and model.config is config
    out = model(**model_inputs(config, architecture))
    assert out[0] is not None
    again = cls.from_config(model.get_config())  # Keras' own dict still works
    assert again.config.to_dict() == config.to_dict()
    with pytest.raises(ValueError, match="from_config takes a MobileBertConfig or the dict of get_config"):
        cls.from_config("config.json")


def test_tf_save_pretrained_saved_model(tmp_path):
    tf = pytest.importorskip("tensorflow")
    import mobilebert_tf

    config = tiny_config()
    model = mobilebert_tf.TFMobileBertForSequenceClassification(config)
    x = model_inputs(config, "MobileBertForSequenceClassification")
    paths = model.save_pretrained(tmp_path, saved_model=False)
    assert not (tmp_path / "saved_model").exists() and paths[-1].endswith("config.json")
    paths = model.save_pretrained(tmp_path, saved_model=True)
    target = tmp_path / "saved_model" / "1"
    assert paths[0] == str(target) and (target / "saved_model.pb").is_file()
    assert sorted(p.name for p in (tmp_path / "saved_model").iterdir()) == ["1"]  # no staging directory left
    served = tf.saved_model.load(str(target)).signatures["serving_default"]
    logits = served(**{k: tf.constant(v) for k, v in x.items()})["logits"].numpy()
    np.testing.assert_allclose(logits, model(**x).logits.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="version .* must be a non-negative integer"):
        model.save_pretrained(tmp_path, saved_model=True, version="v1")


class _Rows:
    """A datasets.Dataset-like object: __len__ and __getitem__ returning dicts (and a column the model ignores)."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return {**self.rows[i], "text": "ignored"}


def test_tf_prepare_tf_dataset_and_fit():
    tf = pytest.importorskip("tensorflow")
    import tf_keras as keras

    import mobilebert_tf

    config = tiny_config(num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = mobilebert_tf.TFMobileBertForSequenceClassification(config)
    rng = np.random.default_rng(0)
    ragged = [{"input_ids": [2] + list(rng.integers(5, 99, size=n)) + [3], "label": int(n % 2)} for n in range(3, 13)]
    with pytest.raises(ValueError, match="column 'input_ids' has rows of different lengths"):
        list(model.prepare_tf_dataset(_Rows(ragged), batch_size=4, shuffle=False))

    # The label is readable from the first token: a few epochs must lower the loss.
    same = [{"input_ids": [5 + 80 * (i % 2)] + list(rng.integers(5, 99, size=5)), "attention_mask": [1] * 6,
             "label": i % 2} for i in range(10)]
    data = model.prepare_tf_dataset(_Rows(same), batch_size=4, shuffle=True, seed=0)
    batches = list(data)
    assert len(batches) == 2  # drop_remainder follows shuffle: 10 rows -> two batches of 4
    assert sorted(batches[0]) == ["attention_mask", "input_ids", "labels"] and batches[0]["input_ids"].shape == (4, 6)
    kept = list(model.prepare_tf_dataset(same, batch_size=4, shuffle=False))  # a plain list of dicts too
    assert [b["input_ids"].shape[0] for b in kept] == [4, 4, 2]
    np.testing.assert_array_equal(kept[0]["labels"].numpy(), [0, 1, 0, 1])

    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(model.prepare_tf_dataset(same, batch_size=5, shuffle=False), epochs=8, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 8 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="dataset must be a sequence of row dicts"):
        model.prepare_tf_dataset(42)
    with pytest.raises(ValueError, match=r"dataset\[0\] is a int; each row must be a dict"):
        model.prepare_tf_dataset([1, 2, 3], batch_size=1, shuffle=False)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.prepare_tf_dataset(same, batch_size=0)


def test_tf_prepare_tf_dataset_pads_with_the_tokenizer(vocab_path):
    pytest.importorskip("tensorflow")
    import mobilebert_tf
    from mobilebert_common import MobileBertTokenizer

    tokenizer = MobileBertTokenizer(vocab_path)
    rows = [dict(tokenizer(text), label=i % 2) for i, text in enumerate(["a short one", "a much longer sentence here", "x"])]
    model = mobilebert_tf.TFMobileBertForSequenceClassification(tiny_config(vocab_size=tokenizer.vocab_size))
    (batch,) = list(model.prepare_tf_dataset(rows, batch_size=3, shuffle=False, tokenizer=tokenizer))
    lengths = [len(r["input_ids"]) for r in rows]
    assert batch["input_ids"].shape == (3, max(lengths))
    np.testing.assert_array_equal(batch["attention_mask"].numpy().sum(1), lengths)
    assert model(batch).logits.shape == (3, 2)


# ---------------------------------------------------------------------------------------- 6. tie_word_embeddings

@pytest.mark.parametrize("architecture", HEADS)
def test_untied_word_embeddings_refused_by_masked_lm_heads(framework, architecture):
    """tie_word_embeddings=False: a clear error at build for the masked-LM heads; the other classes have no decoder."""
    cls = getattr(framework.module(), framework.prefix + architecture)
    config = tiny_config(tie_word_embeddings=False)
    if architecture in ("MobileBertForMaskedLM", "MobileBertForPreTraining"):
        with pytest.raises(ValueError, match="tie_word_embeddings=False is not supported by the masked-LM heads"):
            cls(config)
    else:
        model = cls(config)
        assert model(**{k: framework.tensor(v) for k, v in model_inputs(config, architecture).items()})[0] is not None


def test_untied_config_file_refused_at_load(tmp_path):
    torch = pytest.importorskip("torch")
    from tests.harness.models import make_pt

    model = make_pt("MobileBertForMaskedLM")
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="tie_word_embeddings=False is not supported"):
        type(model).from_pretrained(tmp_path, tie_word_embeddings=False)
    assert torch.is_tensor(type(model).from_pretrained(tmp_path).cls.predictions.bias)


# ---------------------------------------------------------------------------------------- 7. transformers' Trainer

def test_transformers_trainer_fine_tunes_our_model(tmp_path):
    """transformers' Trainer trains, evaluates and saves our PyTorch classifier; our from_pretrained reloads it."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate (pip install accelerate)")
    import mobilebert_pt

    torch.manual_seed(0)
    config = tiny_config(num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = mobilebert_pt.MobileBertForSequenceClassification(config)
    # The label is readable from the first token.
    rng = np.random.default_rng(0)
    rows = [{"input_ids": [5 + 80 * (i % 2)] + rng.integers(5, 99, size=5).tolist(), "attention_mask": [1] * 6,
             "labels": i % 2} for i in range(16)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "run"), per_device_train_batch_size=8, per_device_eval_batch_size=8,
        num_train_epochs=6, learning_rate=3e-3, logging_steps=1, save_strategy="no", report_to=[],
        use_cpu=True, seed=0, disable_tqdm=True)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=rows, eval_dataset=rows)
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert np.isfinite(after) and after < before
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 12  # 2 steps per epoch, 6 epochs: every step really ran

    # Trainer writes only model.safetensors for a model that is not a transformers PreTrainedModel (no
    # config.json): our from_pretrained reads that file with config=.
    trainer.save_model(str(tmp_path / "saved"))
    weights = tmp_path / "saved" / "model.safetensors"
    reloaded = mobilebert_pt.MobileBertForSequenceClassification.from_pretrained(weights, config=model.config)
    batch = {k: torch.tensor([r[k] for r in rows]) for k in ("input_ids", "attention_mask")}
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits)
