"""Fine-tuning in one process: data errors, labels, metrics, learning in both frameworks, checkpoints and
resume, conversion of the result, the `mobilebert train` command. (Many processes: test_train_distributed.py.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mobilebert_common.training import data as training_data
from mobilebert_common.training import metrics
from mobilebert_common.training.features import MaskedLM, collate, encode
from mobilebert_common.training.options import FLOAT16_REFUSED
from mobilebert_common.training.schedule import StepPlan, linear_schedule, shard
from mobilebert_pt import MobileBertForMultipleChoice, MobileBertForSequenceClassification, pipeline, train
from mobilebert_pt.finetune import TorchBackend
from tests.harness.models import unused_parameters
from tests.harness.train import data_file, examples, model_dir, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
QUIET = dict(progress=False)
LEARN = dict(epochs=5, lr=1e-2, batch_size=4, warmup_ratio=0.1, **QUIET)  # 8 steps per epoch on 32 examples


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: one torch thread is several times faster than two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = model_dir(root / "model", num_hidden_layers=1)
    return root, model


@pytest.fixture(autouse=True)
def quiet_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "newly initialised" head weights, truncation counts
        yield


def state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------------------- bad data


BAD_FILES = {
    # name: (task, lines of the file, line the error names, what it says)
    "missing field": ("text-classification", ['{"text": "paris is a city", "label": "pos"}', '{"text": "hello"}'], 2,
                      'missing field "label"'),
    "non-JSON line": ("text-classification", ['{"text": "paris", "label": "pos"}', "", '{"text": "hello", label: 1}'], 3,
                      "not valid JSON"),
    "wrong type": ("token-classification", ['{"tokens": ["john", "lives"], "labels": ["B-PER"]}'], 1,
                   "one label per word"),
    "answer not in context": ("question-answering",
                              ['{"question": "where ?", "context": "john lives in paris", '
                               '"answers": {"text": ["paris"], "answer_start": [3]}}'], 1, "is not at answer_start 3"),
    "label outside choices": ("multiple-choice", ['{"choices": ["a city", "a river"], "label": 2}'], 1,
                              "not a choice index"),
    "names and ids mixed": ("text-classification", ['{"text": "paris", "label": "pos"}', '{"text": "hello", "label": 0}'], 2,
                            "is an id, but"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_line_is_an_error_naming_file_and_line_and_nothing_is_written(work, tmp_path, case):
    root, model = work
    task, lines, line, what = BAD_FILES[case]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line {line}: ") + ".*" + re.escape(what)):
        train(task, model, str(path), str(tmp_path / "out"), **QUIET)
    assert not (tmp_path / "out").exists()


def test_unknown_label_in_the_eval_file_and_an_empty_file(work, tmp_path):
    root, model = work
    train_file = write_jsonl(tmp_path / "train.jsonl", [{"text": "paris", "label": "pos"}, {"text": "hi", "label": "neg"}])
    eval_file = write_jsonl(tmp_path / "eval.jsonl", [{"text": "paris", "label": "pos"}, {"text": "hi", "label": "neutral"}])
    with pytest.raises(ValueError, match=re.escape(f"{eval_file}, line 2: unknown label 'neutral'; this model's labels "
                                                   "are ['neg', 'pos']")):
        train("text-classification", model, train_file, str(tmp_path / "out"), eval_file=eval_file, **QUIET)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{empty} holds no examples")):
        train("text-classification", model, str(empty), str(tmp_path / "out"), **QUIET)
    with pytest.raises(FileNotFoundError, match=re.escape(f"no data file at {tmp_path / 'nope.jsonl'}")):
        train("text-classification", model, str(tmp_path / "nope.jsonl"), str(tmp_path / "out"), **QUIET)
    assert not (tmp_path / "out").exists()


def test_csv_for_text_classification(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\nparis is a city,1\nhello world,0\n", encoding="utf-8")
    rows = training_data.read_examples(str(path), "text-classification")
    assert [(r.line, r.data) for r in rows] == [(2, {"text": "paris is a city", "label": 1}), (3, {"text": "hello world", "label": 0})]
    path.write_text("sentence,label\nparis,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 1: the CSV header ['sentence', 'label'] lacks the column(s) ['text']")):
        training_data.read_examples(str(path), "text-classification")
    with pytest.raises(ValueError, match="CSV is read for text-classification only"):
        training_data.read_examples(str(path), "fill-mask")


# ------------------------------------------------------------------------------------------ labels


def ex(label, line=1):
    return training_data.Example("f.jsonl", line, {"label": label})


def test_labels_come_from_the_model_or_the_training_file():
    placeholder = {0: "LABEL_0", 1: "LABEL_1"}
    # no labels yet: the sorted names of the file become the classes
    assert training_data.plan_labels(placeholder, [ex("pos"), ex("neg"), ex("mid")], "text-classification") == (
        {0: "mid", 1: "neg", 2: "pos"}, True)
    # ids: as many classes as the largest id needs, at least the config's
    assert training_data.plan_labels(placeholder, [ex(0), ex(4)], "text-classification") == (
        {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2", 3: "LABEL_3", 4: "LABEL_4"}, True)
    assert training_data.plan_labels(placeholder, [ex(1)], "text-classification") == (placeholder, False)
    # a model with named labels keeps them; the data must use them
    named = {0: "negative", 1: "positive"}
    assert training_data.plan_labels(named, [ex("pos")], "text-classification") == (named, False)
    with pytest.raises(ValueError, match=r"f.jsonl, line 3: unknown label 'pos'; this model's labels are \['negative', 'positive'\]"):
        training_data.class_id("pos", {"negative": 0, "positive": 1}, "f.jsonl, line 3")
    with pytest.raises(ValueError, match="label id 2 is outside this model's 2 classes"):
        training_data.class_id(2, {"negative": 0, "positive": 1}, "f.jsonl, line 3")


def test_token_labels_sit_on_the_first_piece_of_each_word(work):
    from mobilebert_common import MobileBertTokenizerFast

    tok = MobileBertTokenizerFast.from_pretrained(work[1])
    rows = [training_data.Example("f", 1, {"tokens": ["john", "plays", "in", "paris"], "labels": ["B-PER", "O", "O", "B-LOC"]})]
    feature = encode("token-classification", rows, tok, 40, {"B-LOC": 0, "B-PER": 1, "O": 2}).features[0]
    pieces = tok.convert_ids_to_tokens(feature["input_ids"])
    assert pieces == ["[CLS]", "john", "play", "##s", "in", "paris", "[SEP]"]
    assert feature["labels"] == [-100, 1, 2, -100, 2, 0, -100]


def test_question_answering_labels_the_answer_tokens_or_cls(work):
    from mobilebert_common import MobileBertTokenizerFast

    tok = MobileBertTokenizerFast.from_pretrained(work[1])
    context = "hello world john lives in new york city"
    rows = [training_data.Example("f", 1, {"question": "where ?", "context": context,
                                           "answers": {"text": ["new york"], "answer_start": [context.index("new")]}}),
            training_data.Example("f", 2, {"question": "where ?", "context": context, "answers": {"text": [], "answer_start": []}})]
    encoded = encode("question-answering", rows, tok, 12, doc_stride=2)  # 12 tokens: windows of 7 context tokens
    answered = [f for f in encoded.features if f["example"] == 0]
    assert len(answered) == 2
    spans = [tok.convert_ids_to_tokens(f["input_ids"][f["start_positions"]:f["end_positions"] + 1]) for f in answered]
    assert spans == [["new", "york"], ["new", "york"]]
    assert all((f["start_positions"], f["end_positions"]) == (0, 0) for f in encoded.features if f["example"] == 1)


def test_masking_is_bert_s_and_depends_only_on_seed_epoch_and_example(work):
    from mobilebert_common import MobileBertTokenizerFast

    tok = MobileBertTokenizerFast.from_pretrained(work[1])
    masker = MaskedLM(tok, seed=5, vocab_size=len(tok))
    ids = [tok.cls_token_id] + [6 + i % 20 for i in range(4000)] + [tok.sep_token_id]
    masked, labels = masker.mask(ids, (0, 1, 7))
    assert (masked, labels) == masker.mask(ids, (0, 1, 7))
    assert masker.mask(ids, (0, 2, 7)) != (masked, labels)
    chosen = np.asarray(labels) != -100
    assert labels[0] == labels[-1] == -100 and not chosen[[0, -1]].any()
    assert 0.13 < chosen.mean() < 0.17
    masked = np.asarray(masked)
    share_masked = (masked[chosen] == tok.mask_token_id).mean()
    share_kept = (masked[chosen] == np.asarray(ids)[chosen]).mean()
    assert 0.75 < share_masked < 0.85 and 0.05 < share_kept < 0.16
    batch = collate("fill-mask", [{"input_ids": ids[:10], "token_type_ids": [0] * 10, "example": 3}], 0, 40, (masker, (0, 0)))
    assert batch["input_ids"].shape == (1, 16) and batch["attention_mask"][0].tolist() == [1] * 10 + [0] * 6


# ----------------------------------------------------------------------------------------- metrics


def test_entity_spans_and_f1_follow_conlleval():
    assert metrics.iob2_entities(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG", "I-ORG"]) == {
        ("PER", 0, 1), ("LOC", 3, 3), ("LOC", 4, 4), ("ORG", 5, 6)}
    assert metrics.iob2_entities(["O", "I-PER", "I-LOC"]) == {("PER", 1, 1), ("LOC", 2, 2)}  # I- starts an entity
    counts = metrics.entity_counts([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-LOC"]])
    assert counts.tolist() == [1, 2, 2]
    assert metrics.entity_scores(*counts)["f1"] == pytest.approx(0.5)


def test_squad_metrics_and_classification_scores():
    assert metrics.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert metrics.squad_exact("the Paris", ["Paris", "city of light"]) == 1.0
    assert metrics.squad_f1("in paris france", ["paris"]) == pytest.approx(2 * (1 / 3) / (1 + 1 / 3))
    assert metrics.squad_f1("", [""]) == 1.0 and metrics.squad_f1("paris", [""]) == 0.0
    counts = metrics.confusion([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 4)
    scores = metrics.classification_scores(counts)
    assert scores["accuracy"] == pytest.approx(0.6)
    # F1 per class: 0 -> 2*1/(2+2)=0.5, 1 -> 2*2/(2+3)=0.8, 2 -> 0; class 3 never occurs
    assert scores["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert metrics.perplexity(2 * np.log(3.0), 2) == pytest.approx(3.0)


def test_schedule_steps_and_shards():
    plan = StepPlan.make(num_features=10, num_replicas=2, batch_size=2, grad_accum=2, epochs=3, warmup_ratio=0.2)
    assert (plan.per_replica, plan.steps_per_epoch, plan.total_steps, plan.warmup_steps) == (5, 2, 6, 2)
    assert [linear_schedule(s, 2, 6) for s in range(7)] == [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]
    shards = [shard(5, 2, r, seed=1, epoch=0) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 3 and sorted(set(shards[0] + shards[1])) == [0, 1, 2, 3, 4]
    assert shard(5, 2, 0, seed=1, epoch=0) == shards[0] != shard(5, 2, 0, seed=1, epoch=1)


# ------------------------------------------------------------------------------- training, PyTorch


@pytest.fixture(scope="module")
def classifier(work):
    """A text classifier fine-tuned on a rule it can learn (the class is the first word)."""
    root, model = work
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train("text-classification", model, data_file(root, "text-classification", 32),
                       str(root / "classifier"), eval_file=data_file(root, "text-classification", 16, seed=1), **LEARN)
    return result


def test_pytorch_training_learns_and_the_pipeline_reads_the_result(classifier):
    out = Path(classifier.output_dir)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines == classifier.metrics and [r["epoch"] for r in lines] == [1, 2, 3, 4, 5]
    assert lines[-1]["eval_accuracy"] >= 0.95 and lines[-1]["eval_macro_f1"] >= 0.95
    assert lines[-1]["train_loss"] < lines[0]["train_loss"] / 5
    assert {"config.json", "model.safetensors", "vocab.txt", "checkpoint-40"} <= set(os.listdir(out))
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"} and config["architectures"] == ["MobileBertForSequenceClassification"]
    assert {"optimizer.pt", "scheduler.pt", "progress.json", "model.safetensors"} <= set(os.listdir(out / "checkpoint-8"))
    classify = pipeline("text-classification", model=str(out))
    assert [r["label"] for r in classify(["paris is a city", "hello john", "london world"])] == ["pos", "neg", "pos"]


def test_other_tasks_train_and_their_pipelines_read_the_result(work):
    root, model = work
    results = {}
    for task in ("token-classification", "question-answering", "fill-mask", "multiple-choice"):
        learn = task == "token-classification"  # the one whose metric is checked: the tag is the word
        result = train(task, model, data_file(root, task, 24), str(root / task), eval_file=data_file(root, task, 8, seed=2),
                       **{**LEARN, "epochs": 6, "lr": 2e-2} if learn else {**LEARN, "epochs": 1}, save_every_epoch=False)
        results[task] = result.metrics[-1]
        assert all(np.isfinite(v) for v in results[task].values())
    assert results["token-classification"]["eval_f1"] >= 0.9
    assert {"eval_exact_match", "eval_f1"} <= set(results["question-answering"])
    assert results["fill-mask"]["eval_perplexity"] == pytest.approx(np.exp(results["fill-mask"]["eval_loss"]))
    assert {"eval_accuracy", "eval_macro_f1"} <= set(results["multiple-choice"])
    entities = pipeline("token-classification", model=str(root / "token-classification"), aggregation_strategy="simple")
    assert [(e["entity_group"], e["word"]) for e in entities("john lives in new york")] == [("PER", "john"), ("LOC", "new york")]
    answer = pipeline("question-answering", model=str(root / "question-answering"))(
        question="where does john live ?", context="hello john lives in paris")
    assert set(answer) == {"score", "start", "end", "answer"}
    assert len(pipeline("fill-mask", model=str(root / "fill-mask"))("john lives in [MASK] .", top_k=2)) == 2
    MobileBertForMultipleChoice.from_pretrained(str(root / "multiple-choice"))


def test_weights_a_config_never_reads_are_frozen(tmp_path):
    """layer_norm_gelu keeps the shared bottleneck that use_bottleneck_attention never reads: frozen, unchanged."""
    model = model_dir(tmp_path / "model", "layer_norm_gelu", num_hidden_layers=1)
    result = train("text-classification", model, data_file(tmp_path, "text-classification", 8), str(tmp_path / "out"),
                   epochs=1, lr=1e-2, batch_size=4, save_every_epoch=False, **QUIET)
    unused = unused_parameters(result.model.config, "MobileBertForSequenceClassification")
    assert unused and all(not p.requires_grad for n, p in result.model.named_parameters() if n in unused)
    before = MobileBertForSequenceClassification.from_pretrained(model, num_labels=2).state_dict()
    after = result.model.state_dict()
    assert all(torch.equal(before[n], after[n]) for n in unused)
    assert not torch.equal(before["mobilebert.encoder.layer.0.attention.self.query.weight"],
                           after["mobilebert.encoder.layer.0.attention.self.query.weight"])


def test_bf16_autocast_trains_and_saves_float32_with_a_progress_bar(work, tmp_path, capsys):
    root, model = work
    result = train("text-classification", model, data_file(root, "text-classification", 8), str(tmp_path / "out"),
                   epochs=1, batch_size=4, bf16=True, save_every_epoch=False)
    assert np.isfinite(result.metrics[-1]["train_loss"])
    assert json.loads((tmp_path / "out" / "config.json").read_text())["torch_dtype"] == "float32"
    bar = capsys.readouterr().err
    assert "mobilebert train text-classification" in bar and "2/2" in bar and "examples_per_s=" in bar and "loss=" in bar


def test_bf16_autocast_trains_the_masked_lm_on_the_cpu(work, tmp_path):
    """The CPU head's vocabulary blocks accumulate with an in-place addmm_, which autocast does not cast: under
    bf16 the head takes the two F.linear products instead (was: 'self and mat2 must have the same dtype')."""
    root, model = work
    result = train("fill-mask", model, data_file(root, "fill-mask", 8), str(tmp_path / "out"),
                   epochs=1, batch_size=4, bf16=True, save_every_epoch=False, progress=False)
    assert np.isfinite(result.metrics[-1]["train_loss"])


def test_a_tokenizer_larger_than_the_model_is_an_error(work, tmp_path):
    import shutil

    root, model = work
    shutil.copytree(model, tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    (tmp_path / "model" / "config.json").write_text(json.dumps({**config, "vocab_size": 12}))
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "the capital", "label": "a"}, {"text": "john lives in paris", "label": "b"}])
    with pytest.raises(ValueError, match=re.escape(f"{data}, line 2: the tokenizer gives id 17, but the model has only 12 "
                                                   "word embeddings")):
        train("text-classification", str(tmp_path / "model"), data, str(tmp_path / "out"), **QUIET)


def test_float16_is_refused_with_the_reason(work, tmp_path):
    from mobilebert_tf import train as tf_train

    root, model = work
    for run in (train, tf_train):
        with pytest.raises(ValueError, match=re.escape(FLOAT16_REFUSED)):
            run("text-classification", model, "x.jsonl", str(tmp_path / "out"), fp16=True)
    assert "65504" in FLOAT16_REFUSED and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ checkpoints, resume


class Interrupt(Exception):
    pass


def test_resume_after_an_interruption_ends_with_the_weights_of_an_uninterrupted_run(work, tmp_path, monkeypatch):
    """fill-mask with dropout: data order, masks, dropout and the optimizer all have to continue exactly."""
    root, model = work
    data = data_file(root, "fill-mask", 24)
    options = dict(epochs=2, lr=3e-3, batch_size=4, grad_accum=2, save_steps=2, save_every_epoch=False, warmup_ratio=0.3,
                   weight_decay=0.01, **QUIET)  # 3 steps per epoch, checkpoints at steps 2 and 4
    whole = train("fill-mask", model, data, str(tmp_path / "whole"), **options)
    assert whole.global_step == 6

    out = tmp_path / "cut"
    real_step, real_save = TorchBackend.train_step, TorchBackend.save_state
    calls = []

    def dies_at_step_5(self, *args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(self, *args)

    monkeypatch.setattr(TorchBackend, "train_step", dies_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train("fill-mask", model, data, str(out), **options)
    assert sorted(p for p in os.listdir(out) if p.startswith("checkpoint")) == ["checkpoint-2", "checkpoint-4"]

    # Killed while writing checkpoint-4 (after restarting from checkpoint-2): checkpoint-4 stays the old one,
    # nothing half-written is left.
    (out / "checkpoint-4" / "progress.json").unlink()  # as if checkpoint-4 had never been completed
    os.rename(out / "checkpoint-4", out / ".checkpoint-4.host-1.x.partial")
    monkeypatch.setattr(TorchBackend, "train_step", real_step)

    def dies_while_saving(self, directory):
        real_save(self, directory)
        raise Interrupt

    monkeypatch.setattr(TorchBackend, "save_state", dies_while_saving)
    with pytest.raises(Interrupt):
        train("fill-mask", model, data, str(out), resume=True, **options)
    assert sorted(os.listdir(out)) == ["checkpoint-2", "metrics.jsonl"]  # no checkpoint-4, no staging left

    monkeypatch.setattr(TorchBackend, "save_state", real_save)
    resumed = train("fill-mask", model, data, str(out), resume=True, **options)
    assert resumed.global_step == 6
    a, b = state(whole.model), state(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    timeless = lambda records: [{k: v for k, v in r.items() if k != "train_examples_per_second"} for r in records]  # noqa: E731
    assert timeless(resumed.metrics) == timeless(whole.metrics)  # the epoch losses too: the unfinished epoch's sum was saved


def test_keras_resume_continues_optimizer_data_and_dropout(work, tmp_path, monkeypatch):
    """Keras: AdamW's moments and step count come back from optimizer.npz; dropout restarts from (seed, step)."""
    from mobilebert_tf import train as tf_train
    from mobilebert_tf import weights_by_name
    from mobilebert_tf.finetune import KerasBackend

    root, model = work
    data = data_file(root, "text-classification", 16)
    options = dict(epochs=1, lr=1e-2, batch_size=8, save_steps=1, save_every_epoch=False, **QUIET)  # 2 steps
    whole = tf_train("text-classification", model, data, str(tmp_path / "whole"), **options)
    real_step, calls = KerasBackend.train_step, []

    def dies_at_step_2(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_step(self, *args)

    monkeypatch.setattr(KerasBackend, "train_step", dies_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        tf_train("text-classification", model, data, str(tmp_path / "cut"), **options)
    monkeypatch.setattr(KerasBackend, "train_step", real_step)
    assert "optimizer.npz" in os.listdir(tmp_path / "cut" / "checkpoint-1")
    resumed = tf_train("text-classification", model, data, str(tmp_path / "cut"), resume=True, **options)
    a, b = weights_by_name(whole.model), weights_by_name(resumed.model)
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_an_output_directory_holding_a_run_is_not_overwritten_nor_resumed_with_other_settings(classifier, work):
    root, model = work
    data = data_file(root, "text-classification", 32)
    with pytest.raises(ValueError, match=re.escape(f"output_dir {classifier.output_dir} already holds a training run "
                                                   "(checkpoint-40, config.json); pass resume=True")):
        train("text-classification", model, data, classifier.output_dir, **QUIET)
    with pytest.raises(ValueError, match="holds a model \\(config.json\\) but no checkpoint to resume from"):
        train("text-classification", model, data, str(root / "token-classification"), resume=True, **QUIET)
    with pytest.raises(ValueError, match=r"checkpoint-40 cannot be resumed with other settings \(lr: 0.01 then, 0.001 now"):
        train("text-classification", model, data, classifier.output_dir, resume=True, **{**LEARN, "lr": 1e-3})


# ----------------------------------------------------------------------- conversion, Keras, the CLI


def test_a_fine_tuned_checkpoint_converts_to_keras_and_back_with_equal_logits(classifier, tmp_path):
    import tensorflow as tf

    from mobilebert_tf import TFMobileBertForSequenceClassification

    for args in (("pt-to-tf", classifier.output_dir, str(tmp_path / "tf")), ("tf-to-pt", str(tmp_path / "tf"), str(tmp_path / "pt"))):
        done = subprocess.run([sys.executable, "-m", "conversion", *args], capture_output=True, text=True, env=ENV,
                              cwd=ROOT, timeout=300)
        assert done.returncode == 0, done.stderr
    inputs = {"input_ids": np.array([[2, 10, 11, 12, 3], [2, 16, 17, 3, 0]]), "attention_mask": np.array([[1] * 5, [1] * 4 + [0]])}
    original = MobileBertForSequenceClassification.from_pretrained(classifier.output_dir)
    back = MobileBertForSequenceClassification.from_pretrained(str(tmp_path / "pt"))
    keras_model = TFMobileBertForSequenceClassification.from_pretrained(str(tmp_path / "tf"))
    with torch.no_grad():
        expected = original(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
        again = back(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
    keras = keras_model({k: tf.constant(v) for k, v in inputs.items()}).logits.numpy()
    np.testing.assert_array_equal(again, expected)
    np.testing.assert_allclose(keras, expected, rtol=1e-5, atol=1e-5)
    assert keras_model.config.id2label == {0: "neg", 1: "pos"}


def test_keras_training_learns_and_the_pipeline_reads_the_result(work):
    from mobilebert_tf import pipeline as tf_pipeline
    from mobilebert_tf import train as tf_train

    root, model = work
    result = tf_train("text-classification", model, data_file(root, "text-classification", 32), str(root / "keras"),
                      eval_file=data_file(root, "text-classification", 16, seed=1), save_every_epoch=False, **LEARN)
    assert result.metrics[-1]["eval_accuracy"] >= 0.95
    assert {"config.json", "tf_model.h5", "vocab.txt", "metrics.jsonl"} <= set(os.listdir(root / "keras"))
    classify = tf_pipeline("text-classification", model=str(root / "keras"))
    assert [r["label"] for r in classify(["paris is a city", "hello john"])] == ["pos", "neg"]


def test_the_command_line(work, tmp_path, capsys):
    from mobilebert_cli.main import main

    root, model = work
    data = data_file(root, "text-classification", 8)
    status = main(["train", "--task", "text-classification", "--model", model, "--train", data, "--output",
                   str(tmp_path / "out"), "--eval", data, "--epochs", "1", "--batch-size", "4", "--no-progress"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["step"] == 2 and summary["output_dir"] == str(tmp_path / "out") and "eval_accuracy" in summary
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "paris", "label": "pos"}\n{"txt": "x", "label": "neg"}\n', encoding="utf-8")
    status = main(["train", "--task", "text-classification", "--model", model, "--train", str(bad), "--output",
                   str(tmp_path / "out2"), "--no-progress"])
    assert status == 1
    assert f'mobilebert train: error: {bad}, line 2: missing field "text"' in capsys.readouterr().err
    assert main(["train", "--task", "fill-mask", "--model", model, "--train", data, "--output", str(tmp_path / "o"), "--fp16"]) == 1
    assert "65504" in capsys.readouterr().err
