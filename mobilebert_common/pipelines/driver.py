"""The framework-free half of every pipeline: inputs in, batches out, results back.

``PipelineBase`` takes the user's inputs (one, a list, or a generator), lets the task turn each
into one or more ``Feature`` rows, pads rows into batches on the right, checks the ids against the
model's tables, runs the task's head (``_forward``: the branch on the head is written once, here;
each framework supplies the few calls it is made of), refuses non-finite outputs, and lets the task
turn the numpy outputs into results.

A pipeline may be called from several threads at once: tokenization and post-processing run side
by side, the forward passes one at a time (a lock per pipeline). A forward pass sets the model's
mode (PyTorch: eval() for the call, the caller's train/eval state restored after), which is
shared state: two passes at once could restore train() under the other one and give it dropout.
"""

from __future__ import annotations

import contextlib
import threading
from itertools import islice
from typing import Any, Dict, List

import numpy as np

from mobilebert_common import checks
from mobilebert_common.checks import FLOAT16_OVERFLOW
from mobilebert_common.pipelines.encode import Feature
from mobilebert_common.pipelines.task import positive_int
from mobilebert_common.pipelines.registry import get_task


# A sized input (a list) is read this many batches at a time, and its rows sorted by length within that window:
# fill-mask on 128 sentences of 6-60 words at batch 8 pads about a third fewer tokens. Bounded, so a long list
# holds at most this many inputs' rows at once.
LENGTH_SORT_BATCHES = 16


def non_finite_error(dtype_name: str, where: str = "the model's outputs") -> ValueError:
    if dtype_name.startswith("float16"):
        return ValueError(f"{FLOAT16_OVERFLOW} (inf/NaN found in {where})")
    return ValueError(f"{where} hold inf/NaN (dtype {dtype_name}); the weights or inputs are broken")


def check_batch_ids(batch: Dict[str, np.ndarray], config, tokenizer) -> None:
    """The padded ids must index the model's tables: the pipelines look the word embeddings up
    themselves (to zero the padding), so the model's own id check never sees input_ids. A tokenizer
    whose vocabulary is larger than the model's would otherwise index past the table (IndexError on
    the CPU, a device-side assert or garbage on a GPU)."""
    ids = batch["input_ids"]
    try:
        checks.check_id_range("input_ids", int(ids.min()), int(ids.max()), config.vocab_size, "vocab_size")
    except ValueError as err:
        size = len(tokenizer) if hasattr(tokenizer, "__len__") else "?"
        raise ValueError(
            f"{err}. The tokenizer ({size} ids) does not match this model (config.vocab_size={config.vocab_size}): "
            "pass the tokenizer saved with the model"
        ) from None
    types = batch["token_type_ids"]
    try:
        checks.check_id_range("token_type_ids", int(types.min()), int(types.max()), config.type_vocab_size, "type_vocab_size")
    except ValueError as err:
        raise ValueError(f"{err}. This model has {config.type_vocab_size} segment type(s): it cannot read text pairs") from None


def describe_device(device, cli: bool = False):
    """How an error names the device argument the user wrote: ("device=0", "device='cpu' (or -1)")
    in Python, ("--device 0", "--device cpu") on the command line."""
    if cli:
        return f"--device {device}", "--device cpu"
    return f"device={device!r}", "device='cpu' (or -1)"


# What the model call returns for each head: (key of the numpy result, attribute names on the
# model's output, the first one present wins; MobileBertForPreTraining names its NSP logits
# seq_relationship_logits).
OUTPUT_FIELDS = {
    "sequence_classification": (("logits", ("logits",)),),
    "token_classification": (("logits", ("logits",)),),
    "next_sentence": (("logits", ("seq_relationship_logits", "logits")),),
    "question_answering": (("start_logits", ("start_logits",)), ("end_logits", ("end_logits",))),
}


def _field(result, names):
    for name in names:
        value = getattr(result, name, None)
        if value is not None:
            return value
    raise ValueError(f"the model's output has none of {', '.join(names)}")


class PipelineBase:
    """Subclasses set ``framework`` and provide the framework calls ``_forward`` is made of.

    ``batch`` holds int64 arrays input_ids, attention_mask, token_type_ids, each (B, T), and for
    fill-mask ``mask_positions`` (N, 2) of (row, column). ``_forward`` returns, per task head:
      masked_lm:                {"masked_logits": (N, V)}  (rows of mask_positions, in order)
      sequence_classification:  {"logits": (B, num_labels)}
      next_sentence:            {"logits": (B, 2)}
      token_classification:     {"logits": (B, T, num_labels)}
      question_answering:       {"start_logits": (B, T), "end_logits": (B, T)}
      features:                 {"last_hidden_state": (B, T, H)}
    """

    framework = ""

    def __init__(self, task: str, model, tokenizer, config, *, batch_size: int = 1, progress: bool = False, **params):
        self.task = get_task(task)
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.batch_size = positive_int("batch_size", batch_size)
        self.progress = bool(progress)
        self.params = self.task.sanitize(self, params, with_defaults=True)
        self._forward_lock = threading.Lock()  # one forward pass at a time (module docstring)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task.name!r}, framework={self.framework!r}, device={self.device!s})"

    # -- what subclasses provide ---------------------------------------------------------------
    device: Any = "cpu"

    @property
    def dtype_name(self) -> str:
        return "float32"

    def _running(self):
        """Context for one forward pass (no gradients, the device, eval mode...)."""
        return contextlib.nullcontext()

    def _model_inputs(self, batch: Dict[str, np.ndarray]) -> dict:
        """Framework tensors for the model call (inputs_embeds, attention_mask, token_type_ids)."""
        raise NotImplementedError

    def _masked_logits(self, inputs: dict, positions: np.ndarray):
        """(N, V) vocabulary logits at positions (N, 2), the head applied at those rows only."""
        raise NotImplementedError

    def _hidden_states(self, inputs: dict):
        """(B, T, H): the backbone's last hidden state."""
        raise NotImplementedError

    def _call_model(self, inputs: dict):
        """The whole model's output object."""
        raise NotImplementedError

    def _numpy(self, value) -> np.ndarray:
        """A framework tensor -> float32 numpy on the host."""
        raise NotImplementedError

    def _to_tensor(self, array: np.ndarray):
        raise NotImplementedError

    def _forward(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        head = self.task.head
        with self._running():
            inputs = self._model_inputs(batch)
            if head == "masked_lm":
                out = {"masked_logits": self._masked_logits(inputs, batch["mask_positions"])}
            elif head == "features":
                out = {"last_hidden_state": self._hidden_states(inputs)}
            else:
                result = self._call_model(inputs)
                out = {key: _field(result, names) for key, names in OUTPUT_FIELDS[head]}
            return {name: self._numpy(value) for name, value in out.items()}

    # -- shared ----------------------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        """Longest row the model takes: the config's positions, or less if the tokenizer says so."""
        limit = self.config.max_position_embeddings
        tok_limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tok_limit, int) and 0 < tok_limit < limit:
            limit = tok_limit
        return limit

    def __call__(self, inputs=None, *args, **kwargs):
        batch_size = positive_int("batch_size", kwargs.pop("batch_size", self.batch_size))
        progress = bool(kwargs.pop("progress", self.progress))
        input_kwargs = {k: kwargs.pop(k) for k in self.task.input_kwargs if k in kwargs}
        params = {**self.params, **self.task.sanitize(self, kwargs, with_defaults=False)}
        items, mode = self.task.collect(inputs, args, input_kwargs)
        results = self._iterate(items, params, batch_size, progress)
        if mode == "iter":
            return results
        results = list(results)
        if mode == "single":
            return self.task.single(results[0], items[0], params)
        return results

    def _iterate(self, items, params: dict, batch_size: int, progress: bool):
        """Results in input order. A list (any sized input) is read a window of LENGTH_SORT_BATCHES batches at a
        time and its rows run in batches of similar length (less padding, the same results); an iterator is
        run batch by batch as it comes, so each result arrives as soon as its batch is done (streaming)."""
        total = len(items) if hasattr(items, "__len__") else None
        window = batch_size * (LENGTH_SORT_BATCHES if total is not None else 1)
        items = iter(items)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=self.task.name, unit="input")
        try:
            while True:
                chunk = list(islice(items, window))
                if not chunk:
                    return
                prepared = [(item, self.task.preprocess(self, item, params)) for item in chunk]
                rows = [f for _, feats in prepared for f in feats]
                outputs = self._run_sorted(rows, batch_size)
                k = 0
                for item, feats in prepared:
                    yield self.task.postprocess(self, item, feats, outputs[k : k + len(feats)], params)
                    k += len(feats)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()

    def _run_sorted(self, rows: List[Feature], batch_size: int) -> List[dict]:
        """Each row's outputs, in the order of rows; the batches group rows of similar length (stable order)."""
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        outputs: List[dict] = [None] * len(rows)
        for start in range(0, len(order), batch_size):
            picked = order[start : start + batch_size]
            for i, out in zip(picked, self._run_rows([rows[i] for i in picked])):
                outputs[i] = out
        return outputs

    def pad(self, rows: List[Feature]) -> Dict[str, np.ndarray]:
        """Right-padded int64 arrays (B, T): positions are absolute, so padding goes after the text."""
        width = max(len(r) for r in rows)
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.config.pad_token_id
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r.input_ids
            mask[i, : len(r)] = 1
            types[i, : len(r)] = r.token_type_ids
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def _run_rows(self, rows: List[Feature]) -> List[dict]:
        batch = self.pad(rows)
        counts = None
        if self.task.head == "masked_lm":
            positions = np.argwhere(batch["input_ids"] == self.tokenizer.mask_token_id)  # (N, 2) row-major
            batch["mask_positions"] = positions.astype(np.int64)
            counts = np.bincount(positions[:, 0], minlength=len(rows))
        check_batch_ids(batch, self.config, self.tokenizer)
        with self._forward_lock:
            outputs = self._forward(batch)
        for name, value in outputs.items():  # the one inf/NaN check, for both frameworks
            if not np.all(np.isfinite(value)):
                raise non_finite_error(self.dtype_name, f"the model's {name}")
        per_row = []
        starts = None if counts is None else np.concatenate([[0], np.cumsum(counts)])
        for i, r in enumerate(rows):
            out = {}
            for name, value in outputs.items():
                if name == "masked_logits":
                    out[name] = value[starts[i] : starts[i + 1]]
                else:
                    out[name] = value[i]
            out["length"] = len(r)
            per_row.append(out)
        return per_row


def load_tokenizer(tokenizer, model_source, hub_kwargs=None):
    """The tokenizer a pipeline uses: an object as given, or loaded from a directory / repo id.

    ``tokenizer=None`` reads the model's own directory or repo id (its vocab.txt). The fast
    tokenizer (``tokenizers`` library) is preferred: it gives the character offsets that
    token-classification and question-answering report.
    """
    if tokenizer is not None and not isinstance(tokenizer, (str, bytes)) and not hasattr(tokenizer, "__fspath__"):
        return tokenizer
    source = tokenizer if tokenizer is not None else model_source
    if source is None:
        raise ValueError("pass tokenizer= (a MobileBertTokenizer(Fast), a directory or a repo id) when model is a model object")
    try:
        from mobilebert_common.tokenization_fast import MobileBertTokenizerFast as cls
    except ImportError:
        from mobilebert_common.tokenization import MobileBertTokenizer as cls
    return cls.from_pretrained(str(source) if not isinstance(source, str) else source, **(hub_kwargs or {}))


def check_head(task_name: str, model, framework_prefix: str = "") -> None:
    """A model object must be the head the task reads (or one that carries it)."""
    from mobilebert_common.pipelines.registry import ACCEPTED_CLASSES

    accepted = [framework_prefix + name for name in ACCEPTED_CLASSES[task_name]]
    names = {c.__name__ for c in type(model).__mro__}
    if not names & set(accepted):
        raise ValueError(f"task {task_name!r} needs a model of class {' or '.join(accepted)}, got {type(model).__name__}")
