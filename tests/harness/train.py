"""Tiny checkpoints and learnable toy data for the fine-tuning tests (tests/test_train*.py, tests/train_workers.py).

Every task's data follows a rule a tiny MobileBERT learns in a few epochs: the class of a text is
its first word (the trigram embedding puts it into [CLS]'s input), a word's tag is the word ("john",
"new york"), the
answer is the word after "in", a choice is right when it starts with "paris".
"""

from __future__ import annotations

import json
import os
import random

from tests.harness.models import tiny_config
from tests.harness.pipelines import VOCAB

WORDS = "the capital of france is paris london city hello world john lives in new york".split()
PLACES = ["paris", "london", "france"]


def model_dir(path, variant: str = "default", **overrides) -> str:
    """A MobileBertForMaskedLM checkpoint with random weights, its vocab and tokenizer files."""
    import torch

    from mobilebert_common import MobileBertTokenizerFast
    from mobilebert_pt import MobileBertForMaskedLM

    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")
    config = tiny_config(variant, vocab_size=len(VOCAB), **overrides)
    torch.manual_seed(0)
    MobileBertForMaskedLM(config).save_pretrained(path)
    MobileBertTokenizerFast.from_pretrained(path).save_pretrained(path)
    return path


def _words(rng, low=2, high=6):
    return [rng.choice(WORDS) for _ in range(rng.randint(low, high))]


def examples(task: str, n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if task == "text-classification":
            positive = i % 2 == 0
            first = rng.choice(["paris", "london"] if positive else ["hello", "world", "john", "city"])
            out.append({"text": " ".join([first] + _words(rng)), "label": "pos" if positive else "neg"})
        elif task == "token-classification":
            tokens = [w for w in _words(rng, 3, 7) if w not in ("john", "new", "york")]
            for entity in (["john"], ["new", "york"])[: 1 + i % 2]:
                at = rng.randint(0, len(tokens))
                tokens[at:at] = entity
            tags = {"john": "B-PER", "new": "B-LOC", "york": "I-LOC"}
            out.append({"tokens": tokens, "labels": [tags.get(w, "O") for w in tokens]})
        elif task == "question-answering":
            place = rng.choice(PLACES)
            before, after = " ".join(_words(rng, 1, 4)), " ".join(_words(rng, 1, 4))
            context = f"{before} john lives in {place} {after}"
            answers = {"text": [place], "answer_start": [len(before) + len(" john lives in ")]}
            if i % 4 == 3:
                context, answers = " ".join(_words(rng, 3, 8)), {"text": [], "answer_start": []}
            out.append({"question": "where does john live ?", "context": context, "answers": answers})
        elif task == "fill-mask":
            out.append({"text": " ".join(_words(rng, 4, 10))})
        elif task == "multiple-choice":
            right = rng.randrange(3)
            choices = [" ".join([("paris" if c == right else rng.choice(["hello", "world"]))] + _words(rng, 1, 3))
                       for c in range(3)]
            out.append({"question": "the capital of france ?", "choices": choices, "label": right})
        else:
            raise ValueError(task)
    return out


def write_jsonl(path, rows) -> str:
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return path


def data_file(directory, task: str, n: int, seed: int = 0) -> str:
    return write_jsonl(os.path.join(os.fspath(directory), f"{task}-{n}-{seed}.jsonl"), examples(task, n, seed))
