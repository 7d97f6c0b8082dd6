"""Training data: one example per line, checked field by field; labels mapped to the model's class ids.

    read_examples(path, task) -> [Example]      JSON lines (text-classification: also .csv)
    plan_labels(id2label, examples, task) -> (id2label, new)   the classes a classifier trains
    class_id(value, label2id, where) -> int     one label -> its id

Fields follow the pipelines' input names:
    text-classification   {"text", "text_pair"?, "label"}
    token-classification  {"tokens": [words], "labels": [one per word]}
    question-answering    {"question", "context", "answers": {"text": [...], "answer_start": [...]}}
                          (empty lists: the question has no answer in the context)
    fill-mask             {"text"}
    multiple-choice       {"question"?, "choices": [...], "label"}  (label: index or the choice's text)
A "label" is a class name or an integer id. Other keys (an "id", a "title") are allowed and ignored.
Every error names the file and line, so a bad line in a large file can be found.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from mobilebert_common.training.options import CLASS_LABELS


@dataclass
class Example:
    source: str  # the file
    line: int  # 1-based line number in it
    data: dict  # the checked fields

    @property
    def where(self) -> str:
        return f"{self.source}, line {self.line}"


def read_examples(path: str, task: str) -> List[Example]:
    """Every example of the file, each checked for ``task``; ValueError naming file and line otherwise."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no data file at {path}")
    reader = _read_csv if path.lower().endswith(".csv") else _read_json_lines
    if reader is _read_csv and task != "text-classification":
        raise ValueError(f"{path}: CSV is read for text-classification only; write {task} data as JSON lines")
    examples = []
    for line, item in reader(path):
        where = f"{path}, line {line}"
        try:
            examples.append(Example(path, line, CHECKS[task](item)))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    if not examples:
        raise ValueError(f"{path} holds no examples (one {FORMATS[task]} per line)")
    if reader is _read_csv:
        _csv_label_ids(examples)
    return examples


FORMATS = {
    "text-classification": '{"text": ..., "text_pair": ... (optional), "label": ...}',
    "token-classification": '{"tokens": [...], "labels": [...]}',
    "question-answering": '{"question": ..., "context": ..., "answers": {"text": [...], "answer_start": [...]}}',
    "fill-mask": '{"text": ...}',
    "multiple-choice": '{"question": ... (optional), "choices": [...], "label": ...}',
}


def _read_json_lines(path: str):
    with open(path, encoding="utf-8") as f:
        try:
            for number, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    item = json.loads(text)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}, line {number}: not valid JSON ({err.msg} at column {err.colno})") from None
                if not isinstance(item, dict):
                    raise ValueError(f"{path}, line {number}: expected a JSON object per line, got {type(item).__name__}")
                yield number, item
        except UnicodeDecodeError as err:
            raise ValueError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def _read_csv(path: str):
    """Rows of a CSV file with a header naming text, label and optionally text_pair."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        try:
            header = reader.fieldnames
            if not header:
                return
            missing = [c for c in ("text", "label") if c not in header]
            if missing:
                raise ValueError(f"{path}, line 1: the CSV header {header} lacks the column(s) {missing}; "
                                 "text-classification reads text, label and (optionally) text_pair")
            for row in reader:
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue
                item = {k: v for k, v in row.items() if k is not None}
                if item.get("text_pair") in ("", None):
                    item.pop("text_pair", None)
                yield reader.line_num, item
        except csv.Error as err:
            raise ValueError(f"{path}, line {reader.line_num}: {err}") from None
        except UnicodeDecodeError as err:
            raise ValueError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def _csv_label_ids(examples: List[Example]) -> None:
    """CSV cells are text: a label column of whole numbers holds class ids, anything else names."""
    if all(ex.data["label"].strip().lstrip("-").isdigit() for ex in examples):
        for ex in examples:
            ex.data["label"] = int(ex.data["label"])


# ------------------------------------------------------------------------------------- field checks


def _text(item: dict, key: str, required: bool = True):
    if key not in item or item[key] is None:
        if required:
            raise ValueError(f'missing field "{key}" (keys: {sorted(item)})')
        return None
    value = item[key]
    if not isinstance(value, str):
        raise ValueError(f'"{key}" must be a string, got {type(value).__name__}: {value!r:.60}')
    if not value.strip():
        raise ValueError(f'"{key}" is empty')
    return value


def _label(value, what: str = '"label"'):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{what} must be a class name (string) or id (integer), got {type(value).__name__}: {value!r:.60}")
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"{what} is empty")
    return value


def _require(item: dict, key: str):
    if key not in item or item[key] is None:
        raise ValueError(f'missing field "{key}" (keys: {sorted(item)})')
    return item[key]


def check_text_classification(item: dict) -> dict:
    out = {"text": _text(item, "text"), "label": _label(_require(item, "label"))}
    pair = _text(item, "text_pair", required=False)
    if pair is not None:
        out["text_pair"] = pair
    return out


def check_token_classification(item: dict) -> dict:
    tokens, labels = _require(item, "tokens"), _require(item, "labels")
    if not isinstance(tokens, list) or not tokens:
        raise ValueError(f'"tokens" must be a non-empty list of words, got {tokens!r:.60}')
    for i, word in enumerate(tokens):
        if not isinstance(word, str) or not word.strip():
            raise ValueError(f'"tokens"[{i}] must be a non-empty string (a word), got {word!r:.60}')
    if not isinstance(labels, list) or len(labels) != len(tokens):
        got = f"{len(labels)} labels" if isinstance(labels, list) else type(labels).__name__
        raise ValueError(f'"labels" must be a list with one label per word ({len(tokens)}), got {got}')
    return {"tokens": tokens, "labels": [_label(v, f'"labels"[{i}]') for i, v in enumerate(labels)]}


def check_question_answering(item: dict) -> dict:
    out = {"question": _text(item, "question"), "context": _text(item, "context")}
    answers = _require(item, "answers")
    if not isinstance(answers, dict) or "text" not in answers or "answer_start" not in answers:
        raise ValueError('"answers" must be {"text": [...], "answer_start": [...]} (empty lists: no answer)')
    texts, starts = answers["text"], answers["answer_start"]
    if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
        raise ValueError('"answers" must hold two lists of the same length: "text" and "answer_start"')
    context = out["context"]
    for text, start in zip(texts, starts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f'an answer "text" must be a non-empty string, got {text!r:.60}')
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= len(context) - len(text):
            raise ValueError(f'answer_start {start!r} of {text!r:.40} is not a character index of the context '
                             f"(0..{len(context) - len(text)})")
        if context[start:start + len(text)] != text:
            raise ValueError(f"the answer {text!r:.40} is not at answer_start {start} of the context, which reads "
                             f"{context[start:start + len(text)]!r:.40} there")
    out["answers"] = {"text": list(texts), "answer_start": list(starts)}
    return out


def check_fill_mask(item: dict) -> dict:
    return {"text": _text(item, "text")}


def check_multiple_choice(item: dict) -> dict:
    choices = _require(item, "choices")
    if not isinstance(choices, list) or len(choices) < 2:
        raise ValueError(f'"choices" must be a list of at least two strings, got {choices!r:.60}')
    for i, choice in enumerate(choices):
        if not isinstance(choice, str) or not choice.strip():
            raise ValueError(f'"choices"[{i}] must be a non-empty string, got {choice!r:.60}')
    label = _label(_require(item, "label"))
    if isinstance(label, str):
        if label not in choices:
            raise ValueError(f'"label" {label!r:.40} is none of the choices; give the index of the right choice '
                             f"(0..{len(choices) - 1}) or its exact text")
        label = choices.index(label)
    elif not 0 <= label < len(choices):
        raise ValueError(f'"label" {label} is not a choice index (0..{len(choices) - 1})')
    out = {"choices": choices, "label": label}
    question = _text(item, "question", required=False)
    if question is not None:
        out["question"] = question
    return out


CHECKS = {
    "text-classification": check_text_classification,
    "token-classification": check_token_classification,
    "question-answering": check_question_answering,
    "fill-mask": check_fill_mask,
    "multiple-choice": check_multiple_choice,
}


def check_same_choice_count(examples: Sequence[Example]) -> None:
    """Multiple choice batches (B, choices, T): every example needs the same number of choices."""
    first = examples[0]
    for ex in examples:
        if len(ex.data["choices"]) != len(first.data["choices"]):
            raise ValueError(f"{ex.where}: {len(ex.data['choices'])} choices, but {first.where} has "
                             f"{len(first.data['choices'])}; every example needs the same number of choices")


# ------------------------------------------------------------------------------------------ labels


def has_labels(id2label: Dict[int, str]) -> bool:
    """False for the placeholder labels a config gets when none were named (LABEL_0, LABEL_1, ...)."""
    return any(name != f"LABEL_{i}" for i, name in id2label.items())


def _label_values(example: Example, task: str) -> list:
    return example.data["labels"] if task == "token-classification" else [example.data["label"]]


def plan_labels(id2label: Dict[int, str], examples: Sequence[Example], task: str) -> Tuple[Dict[int, str], bool]:
    """The classes to train: (id2label, new).

    A model that names its labels keeps them (the data must use those names, or ids). A model
    without labels yet (LABEL_0, ...) takes the sorted set of names in the training file, or, when
    the file gives ids, max(id) + 1 classes (at least the config's count); new is then True.
    """
    if task not in CLASS_LABELS:
        raise ValueError(f"{task} has no class labels")
    if has_labels(id2label):
        return dict(id2label), False
    names, first_name, first_id = set(), None, None
    largest = -1
    for ex in examples:
        for value in _label_values(ex, task):
            if isinstance(value, str):
                names.add(value)
                first_name = first_name or (ex, value)
            else:
                largest = max(largest, value)
                first_id = first_id or (ex, value)
    if names and first_id is not None:
        (ex, value), (named, name) = first_id, first_name
        raise ValueError(f"{ex.where}: label {value} is an id, but {named.where} names its label ({name!r:.40}); "
                         "use class names or ids throughout the file")
    if names:
        return dict(enumerate(sorted(names))), True
    if first_id is not None and min(v for ex in examples for v in _label_values(ex, task)) < 0:
        ex = next(ex for ex in examples if min(_label_values(ex, task)) < 0)
        raise ValueError(f"{ex.where}: class ids must be >= 0, got {min(_label_values(ex, task))}")
    count = max(len(id2label), largest + 1)
    return {i: id2label.get(i, f"LABEL_{i}") for i in range(count)}, count != len(id2label)


def class_id(value, label2id: Dict[str, int], where: str) -> int:
    """A class name or id -> the id; ValueError naming the place and the model's labels otherwise."""
    if isinstance(value, str):
        if value not in label2id:
            raise ValueError(f"{where}: unknown label {value!r:.40}; this model's labels are {sorted(label2id)}")
        return label2id[value]
    if not 0 <= value < len(label2id):
        raise ValueError(f"{where}: label id {value} is outside this model's {len(label2id)} classes (0..{len(label2id) - 1})")
    return value
