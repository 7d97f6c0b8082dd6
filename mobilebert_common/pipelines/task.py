"""The base of every pipeline task: parameters, input shapes, small numeric helpers.

A task is a stateless object with five steps the driver (driver.PipelineBase) calls:
  sanitize(pipe, params)            check parameters, fill defaults
  collect(inputs, args, kwargs)     -> (items, mode): mode "single", "list" or "iter"
  preprocess(pipe, item, params)    -> list of Feature rows (one, or several QA windows)
  postprocess(pipe, item, rows, outputs, params) -> the item's result (plain Python values)
  single(result, item, params)      the result of a call made with one input
"""

from __future__ import annotations

import types
import numpy as np


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest of a 1-D array, largest first, ties to the lower index:
    np.argsort(-scores, kind="stable")[:k], without sorting all of it.

    Fill-mask ranks a 30,522-token vocabulary for a top 5: a full sort took about 2.5 ms per mask, more
    than twice the rest of its postprocessing. np.partition finds the k-th largest value in O(V); every index at or
    above it (ties included, in index order) is then sorted stably, so equal scores keep their index order.
    """
    scores = np.asarray(scores)
    if k >= scores.shape[0]:
        return np.argsort(-scores, kind="stable")[:k]
    threshold = np.partition(-scores, k - 1)[k - 1]  # the k-th smallest of -scores
    contenders = np.flatnonzero(-scores <= threshold)  # ascending indices, at least k of them
    return contenders[np.argsort(-scores[contenders], kind="stable")][:k]


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-x))


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def is_stream(value) -> bool:
    """A generator or other one-shot iterator: results come back lazily, as a generator."""
    return isinstance(value, (types.GeneratorType, map, filter, zip)) or (
        hasattr(value, "__next__") and hasattr(value, "__iter__")
    )


def is_pair(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value)


class Task:
    name = ""
    head = ""  # what the framework computes; see PipelineBase
    input_kwargs: tuple = ()  # call keywords that carry inputs rather than parameters
    defaults: dict = {}  # parameter -> default

    # -- parameters ---------------------------------------------------------------------------
    def sanitize(self, pipe, params: dict, with_defaults: bool) -> dict:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            allowed = ", ".join(sorted(self.defaults) + ["batch_size", "progress"])
            raise ValueError(f"{self.name} does not take {', '.join(unknown)}; it takes: {allowed}")
        out = dict(self.defaults) if with_defaults else {}
        for key, value in params.items():
            out[key] = self.check_param(pipe, key, value)
        return out

    def check_param(self, pipe, name: str, value):
        if name == "truncation" and not isinstance(value, bool):
            raise ValueError(f"truncation must be True or False, got {value!r}")
        return value

    # -- inputs -------------------------------------------------------------------------------
    def collect(self, inputs, args: tuple, input_kwargs: dict):
        """Texts: one string -> "single"; a list/tuple -> "list"; a generator -> "iter"."""
        if args:
            raise ValueError(f"{self.name} takes one input (a string, a list or a generator of them); got {1 + len(args)} positional arguments")
        if inputs is None:
            raise ValueError(f"{self.name} needs an input: a string, a list of strings or a generator of strings")
        return self.collect_items(inputs)

    def collect_items(self, inputs):
        if self.is_item(inputs):
            return [inputs], "single"
        if isinstance(inputs, (list, tuple)):
            if not inputs:
                raise ValueError(f"{self.name} got an empty list of inputs")
            return list(inputs), "list"
        if is_stream(inputs):
            return inputs, "iter"
        raise ValueError(self.describe_bad_input(inputs))

    def is_item(self, value) -> bool:
        return isinstance(value, str)

    def describe_bad_input(self, value) -> str:
        return f"{self.name} takes a string, a list of strings or a generator of strings; got {type(value).__name__}"

    def single(self, result, item, params: dict):
        return result


class TextOrPairTask(Task):
    """Tasks that read one text or a pair {"text": ..., "text_pair": ...} (or [text, text_pair])."""

    input_kwargs = ("text_pair",)
    needs_pair = False

    def collect(self, inputs, args, input_kwargs):
        if "text_pair" in input_kwargs:
            pair = input_kwargs["text_pair"]
            if isinstance(inputs, str) and isinstance(pair, str):
                inputs = {"text": inputs, "text_pair": pair}
            elif isinstance(inputs, (list, tuple)) and isinstance(pair, (list, tuple)) and len(inputs) == len(pair):
                inputs = [{"text": t, "text_pair": p} for t, p in zip(inputs, pair)]
            else:
                raise ValueError("text_pair must match the input: a string with a string, or two lists of the same length")
        return super().collect(inputs, args, {})

    def is_item(self, value) -> bool:
        # For a task that needs pairs, a bare [text, text_pair] can only mean one pair.
        return isinstance(value, (str, dict)) or (self.needs_pair and is_pair(value))

    def split(self, item):
        """(text, text_pair or None), with a clear error for anything else."""
        if isinstance(item, str):
            if self.needs_pair:
                raise ValueError(
                    f'{self.name} needs a pair of texts: {{"text": ..., "text_pair": ...}} or [text, text_pair]; got one string'
                )
            return item, None
        if is_pair(item):
            return item[0], item[1]
        if isinstance(item, dict):
            extra = sorted(set(item) - {"text", "text_pair"})
            if "text" not in item or extra:
                raise ValueError(f'{self.name} takes dicts with keys "text" and "text_pair"; got keys {sorted(item)}')
            pair = item.get("text_pair")
            if pair is None and self.needs_pair:
                raise ValueError(f'{self.name} needs "text_pair" as well as "text"')
            return item["text"], pair
        raise ValueError(self.describe_bad_input(item))

    def describe_bad_input(self, value) -> str:
        return (
            f'{self.name} takes a string, a dict {{"text": ..., "text_pair": ...}}, a [text, text_pair] pair, '
            f"or a list / generator of them; got {type(value).__name__}: {value!r:.80}"
        )
