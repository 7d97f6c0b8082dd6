"""On-device export, the framework-free half: what to export, the probe batch, parity, the report.

    plan = plan_export("onnx", "google/mobilebert-uncased", "fill-mask", "model.onnx", seq_len=128)
    result = run_export(plan, backend)     # backend: mobilebert_pt.export (ONNX) or mobilebert_tf.export (TFLite)

The flow is written once here: check every argument before anything heavy, load the source model
(refusing a head the checkpoint does not hold), build a probe batch with the checkpoint's own
tokenizer, convert into a temporary file, run the export and the source on the probe, print the
max relative difference of each output (max|a-b| / max(1, max|b|): MobileBERT's activations reach
1e7) and, for classifier-like outputs, how often the top-1 / top-5 answers agree. A float32 export
must agree within PARITY_TOLERANCE, or nothing is written; quantized exports report their drift and
claim no parity; NaN or inf outputs always fail. The file is renamed into place only at the end.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Protocol, Tuple

import numpy as np

from mobilebert_common.config import MobileBertConfig
from mobilebert_common.files import atomic_path
from mobilebert_common.pipelines.registry import ALIASES, HEAD_CLASSES
from mobilebert_common.quantization import FLOAT16, NONE, check_quantization
from mobilebert_common.tokenization import MobileBertTokenizer
from mobilebert_common.weight_files import locate_weights

FORMATS = {"tflite": "TensorFlow Lite / LiteRT, converted from the Keras model",
           "onnx": "ONNX, exported from the PyTorch model"}
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
EXTRA = "export"  # pip install "mobilebert-suite[export]"
PARITY_TOLERANCE = 1e-4
DEFAULT_SEQ_LEN = 128
MIN_SEQ_LEN = 8  # room for a probe pair: [CLS] a [SEP] b [SEP] and a few words

# The eight heads: the pipeline tasks' classes and the two heads no pipeline serves.
EXPORT_CLASSES = {**HEAD_CLASSES, "multiple-choice": "MobileBertForMultipleChoice", "pretraining": "MobileBertForPreTraining"}
# Output names of each class (the models' own) and the meaning of each output's axes: "batch",
# "choices", "sequence" (the exported axes that may vary) or None (fixed by the model).
_TOKENS, _ROWS = ("batch", "sequence", None), ("batch", None)
OUTPUTS = {
    "MobileBertForMaskedLM": {"logits": _TOKENS},
    "MobileBertForSequenceClassification": {"logits": _ROWS},
    "MobileBertForTokenClassification": {"logits": _TOKENS},
    "MobileBertForQuestionAnswering": {"start_logits": ("batch", "sequence"), "end_logits": ("batch", "sequence")},
    "MobileBertForNextSentencePrediction": {"logits": _ROWS},
    "MobileBertModel": {"last_hidden_state": _TOKENS, "pooler_output": _ROWS},
    "MobileBertForMultipleChoice": {"logits": ("batch", "choices")},
    "MobileBertForPreTraining": {"prediction_logits": _TOKENS, "seq_relationship_logits": _ROWS},
}
PAIR_TASKS = ("next-sentence-prediction", "question-answering", "multiple-choice", "pretraining")
# The masked-LM output of each class that has one: its top-k agreement is read at the [MASK]s.
MASKED_LM_OUTPUT = {"MobileBertForMaskedLM": "logits", "MobileBertForPreTraining": "prediction_logits"}

PROBE_TEXTS = (
    "The capital of France is [MASK].",
    "MobileBERT is a compact [MASK] model that runs on mobile phones and answers questions quickly.",
    "A short one.",
    "The quick [MASK] fox jumps over the lazy dog near the river [MASK].",
)
PROBE_PAIRS = (
    "Paris is its largest city.",
    "It was distilled from a larger teacher network.",
    "Yes.",
    "The dog did not move at all.",
)


# ---------------------------------------------------------------------------------------- the plan


def export_tasks() -> List[str]:
    return list(EXPORT_CLASSES)


def normalize_export_task(task) -> str:
    key = task.strip().lower().replace("_", "-") if isinstance(task, str) else None
    key = ALIASES.get(key, key)
    if key not in EXPORT_CLASSES:
        raise ValueError(f"unknown task {task!r}; export takes one of: {', '.join(EXPORT_CLASSES)}")
    return key


def check_format(fmt) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return fmt


@dataclass
class ExportPlan:
    format: str
    source: str  # the checkpoint: a directory or a hub repo id
    task: str
    class_name: str  # PyTorch name; Keras adds "TF"
    out: str
    config: MobileBertConfig
    seq_len: Optional[int]  # None: any length (dynamic)
    quantize: str = NONE
    force: bool = False

    @property
    def output_names(self) -> Tuple[str, ...]:
        return tuple(OUTPUTS[self.class_name])

    @property
    def input_layout(self) -> Tuple[str, ...]:
        """Axes of each input: (batch, [choices,] sequence)."""
        return ("batch", "choices", "sequence") if self.class_name == "MobileBertForMultipleChoice" else ("batch", "sequence")

    def varying_axes(self, layout) -> Dict[int, str]:
        """{axis: name} of the axes of ``layout`` that the export leaves open (sequence only when dynamic)."""
        return {i: name for i, name in enumerate(layout) if name and (name != "sequence" or self.seq_len is None)}

    def describe(self) -> str:
        length = "any sequence length (dynamic)" if self.seq_len is None else f"sequence length {self.seq_len}"
        choices = ", any number of choices" if self.class_name == "MobileBertForMultipleChoice" else ""
        return (f"{self.format} export of {self.source}: {self.task} ({self.class_name}), quantization {self.quantize}, "
                f"any batch size{choices}, {length}")


def plan_export(fmt, model, task, out, seq_len: Optional[int] = None, dynamic: bool = False, quantize: str = NONE,
                force: bool = False, hub_kwargs: Optional[dict] = None) -> ExportPlan:
    """Check every argument (cheap ones first, then config.json) and return the plan; ValueError /
    FileExistsError / FileNotFoundError saying what is wrong. Nothing is written."""
    check_format(fmt)
    task = normalize_export_task(task)
    check_quantization(quantize)
    if not isinstance(model, (str, os.PathLike)) or not os.fspath(model):
        raise ValueError(f"model must be a checkpoint directory or a hub repo id, got {model!r}")
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise ValueError(f"the output path must be a file name, got {out!r}")
    source, out = os.fspath(model), os.fspath(out)
    if dynamic and seq_len is not None:
        raise ValueError("give a fixed sequence length (--seq-len N) or --dynamic, not both")
    check_output_path(out, source, force)
    config = MobileBertConfig.from_pretrained(source, **(hub_kwargs or {}))
    if not dynamic:
        seq_len = check_seq_len(DEFAULT_SEQ_LEN if seq_len is None else seq_len, config, given=seq_len is not None)
    return ExportPlan(fmt, source, task, EXPORT_CLASSES[task], out, config, None if dynamic else seq_len, quantize, force)


def check_seq_len(seq_len, config: MobileBertConfig, given: bool = True) -> int:
    limit = config.max_position_embeddings
    if not given:  # the default, within what the model takes
        return min(seq_len, limit)
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)):
        raise ValueError(f"the sequence length must be an integer, got {seq_len!r}")
    if seq_len > limit:
        raise ValueError(f"sequence length {seq_len} is more than this model takes (config.max_position_embeddings = "
                         f"{limit}); choose {MIN_SEQ_LEN} to {limit}, or --dynamic")
    if seq_len < MIN_SEQ_LEN:
        raise ValueError(f"sequence length {seq_len} is too short for the parity probe; choose {MIN_SEQ_LEN} to {limit}")
    return int(seq_len)


def check_output_path(out: str, source: str, force: bool) -> None:
    """The output is a new file, or (with force) replaces a file that is not part of the source checkpoint."""
    if os.path.isdir(out):
        raise IsADirectoryError(f"{out} is a directory; give the path of the file to write (e.g. {os.path.join(out, 'model.onnx')})")
    if not os.path.lexists(out):
        return
    if not force:
        raise FileExistsError(f"{out} exists; pass --force (force=True) to replace it")
    if os.path.isdir(source) and os.path.commonpath([os.path.realpath(out), os.path.realpath(source)]) == os.path.realpath(source):
        raise ValueError(f"{out} is a file of the source checkpoint {source}; an export never replaces its source: "
                         "write it elsewhere")


def require(module: str, package: str, what: str):
    """Import an optional dependency, or an ImportError that names the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{what} needs the Python package {package}, which is not installed ({err}). Install it "
                          f"with `pip install {package}`, or all export tools with `pip install \"mobilebert-suite[{EXTRA}]\"`") from None


def load_options(source: str, framework: str, hub_kwargs: Optional[dict] = None) -> dict:
    """from_pretrained keywords for ``framework`` ("pt" / "tf"): convert from the other framework's
    weights when the checkpoint has none of its own (a PyTorch-only directory exported to TFLite)."""
    try:
        locate_weights(source, framework, hub_kwargs)
        return {}
    except FileNotFoundError:
        other = "tf" if framework == "pt" else "pt"
        locate_weights(source, other, hub_kwargs)  # neither: this FileNotFoundError says what was looked for
        return {"from_tf": True} if framework == "pt" else {"from_pt": True}


def check_head_weights(plan: ExportPlan, missing_keys) -> None:
    """A head that the checkpoint lacks would be exported with random weights: refuse it."""
    missing = list(missing_keys or ())
    if not missing:
        return
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    saved = ", ".join(plan.config.architectures or ()) or "an unknown class"
    raise ValueError(
        f"{plan.source} cannot serve {plan.task}: its weights (saved from {saved}) lack {len(missing)} weights of "
        f"{plan.class_name} ({shown}), which would be exported random. Export a task whose head the checkpoint "
        "holds, or fine-tune this head and save it first"
    )


@contextlib.contextmanager
def quiet_loading():
    """Loading warnings (another head's unused weights) say nothing about the export: missing ones are errors."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(newly initialised|unused weights).*")
        yield


# ---------------------------------------------------------------------------------------- the probe


@dataclass
class Probe:
    inputs: Dict[str, np.ndarray]  # int64, (B, T) or (B, C, T)
    positions: np.ndarray  # bool, inputs' shape: where token-level outputs are compared for agreement
    description: str


def load_probe_tokenizer(source: str, hub_kwargs: Optional[dict] = None):
    """The checkpoint's tokenizer, or None when it ships no vocabulary."""
    try:
        return MobileBertTokenizer.from_pretrained(source, **(hub_kwargs or {}))
    except FileNotFoundError:
        return None


def probe_batch(plan: ExportPlan, tokenizer=None) -> Probe:
    """A few sentences (pairs for pair tasks) padded on the right to one length (seq_len, or the
    longest row when dynamic), padded rows included; [MASK]s for the masked-LM heads. Without a
    tokenizer: random ids of the same layout."""
    config, pairs = plan.config, plan.task in PAIR_TASKS
    if plan.class_name == "MobileBertForMultipleChoice":  # 2 examples x 2 choices: (text, choice) pairs
        firsts, seconds = [PROBE_TEXTS[0]] * 2 + [PROBE_TEXTS[2]] * 2, list(PROBE_PAIRS)
    else:
        firsts, seconds = list(PROBE_TEXTS), list(PROBE_PAIRS) if pairs else None
    if tokenizer is not None:
        limit = plan.seq_len or config.max_position_embeddings
        enc = tokenizer(firsts, seconds, padding="max_length" if plan.seq_len else "longest", truncation=True,
                        max_length=limit, return_tensors="np")
        inputs = {name: np.asarray(enc[name], dtype=np.int64) for name in INPUT_NAMES}
        where = "the checkpoint's tokenizer"
    else:
        inputs = _random_rows(config, len(firsts), plan.seq_len or min(16, config.max_position_embeddings), pairs)
        where = "random ids (the checkpoint has no vocabulary)"
    real = inputs["attention_mask"].astype(bool)
    positions = real
    masked = plan.class_name in MASKED_LM_OUTPUT and tokenizer is not None
    if masked:
        positions = inputs["input_ids"] == tokenizer.mask_token_id
        if not positions.any():  # every [MASK] truncated away: read every real token
            positions, masked = real, False
    if plan.class_name == "MobileBertForMultipleChoice":
        inputs = {k: v.reshape(2, 2, -1) for k, v in inputs.items()}  # (B, C, T)
        positions = positions.reshape(2, 2, -1)
    padded = int((~real).any(axis=-1).sum())
    kind = "pairs" if pairs else "texts"
    text = (f"probe: {len(firsts)} {kind} from {where}, {inputs['input_ids'].shape[-1]} tokens a row, {padded} rows padded"
            + (f", {int(positions.sum())} [MASK] positions" if masked else ""))
    return Probe(inputs, positions, text)


def _random_rows(config: MobileBertConfig, rows: int, length: int, pairs: bool) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, config.vocab_size, size=(rows, length), dtype=np.int64)
    mask = np.ones((rows, length), dtype=np.int64)
    types = np.zeros((rows, length), dtype=np.int64)
    for row, used in enumerate([length, length - 3, max(2, length // 2), length - 1][:rows]):
        mask[row, used:] = 0
        ids[row, used:] = config.pad_token_id
        if pairs and config.type_vocab_size > 1:
            types[row, used // 2:used] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


# ---------------------------------------------------------------------------------------- parity


def relative_difference(actual, expected) -> float:
    """max|a-b| / max(1, max|b|) (DESIGN.md, Numerics)."""
    a, b = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"the export's output has shape {a.shape}, the source's {b.shape}")
    if not b.size:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def top_k_agreement(actual, expected, k: int) -> float:
    """Rows (..., N): the share of the source's top-k classes that are among the export's top-k, averaged
    over rows; for k=1, how often the best class is the same."""
    a, b = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    k = min(k, a.shape[-1])
    top_a = np.argsort(-a, axis=-1, kind="stable")[..., :k].reshape(-1, k)
    top_b = np.argsort(-b, axis=-1, kind="stable")[..., :k].reshape(-1, k)
    if not len(top_b):
        return 1.0
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(top_a, top_b)]))


@dataclass
class OutputParity:
    name: str
    relative_difference: float
    top1: Optional[float] = None  # agreement of the best class (None: hidden states, no classes)
    top5: Optional[float] = None
    rows: int = 0  # how many rows (positions) the agreement was read at


def measure_parity(plan: ExportPlan, probe: Probe, exported: Dict[str, np.ndarray],
                   source: Dict[str, np.ndarray]) -> List[OutputParity]:
    """One OutputParity per output; ValueError when the export's outputs hold NaN or inf."""
    results = []
    for name, layout in OUTPUTS[plan.class_name].items():
        out = np.asarray(exported[name])
        if not np.isfinite(out).all():
            raise ValueError(non_finite_message(plan, name, out))
        out, ref = out.astype(np.float32), np.asarray(source[name], dtype=np.float32)
        row = OutputParity(name, relative_difference(out, ref))
        if plan.class_name != "MobileBertModel":  # hidden states have no classes to agree on
            if layout[-1] is None and "sequence" in layout:  # token level (B, T, X): the probe's positions
                out, ref = out[probe.positions], ref[probe.positions]
            elif layout[-1] is None:  # (B, X)
                pass
            else:  # (B, T) span logits, (B, C) choices: the best position / choice of each row
                out, ref = out.reshape(-1, out.shape[-1]), ref.reshape(-1, ref.shape[-1])
            row.top1, row.rows = top_k_agreement(out, ref, 1), int(np.prod(ref.shape[:-1]))
            if ref.shape[-1] > 5:
                row.top5 = top_k_agreement(out, ref, 5)
        results.append(row)
    return results


def non_finite_message(plan: ExportPlan, name: str, values: np.ndarray) -> str:
    where = f"the {plan.format} export's {name} holds {'NaN' if np.isnan(values).any() else 'inf'}"
    if plan.quantize == FLOAT16:
        return (f"{where}: MobileBERT's activations pass float16's largest value (65504), as the released weights' "
                "reach 1e7-1e8. Export float32 (--quantize none) or dynamic-int8 instead; nothing written")
    return f"{where} on the probe batch; nothing written"


def check_parity(plan: ExportPlan, results: List[OutputParity]) -> None:
    """float32 exports must reproduce the source; quantized ones are only reported."""
    if plan.quantize != NONE:
        return
    bad = [r for r in results if not r.relative_difference <= PARITY_TOLERANCE]
    if bad:
        what = "; ".join(f"{r.name}: {r.relative_difference:.3g}" for r in bad)
        raise ValueError(f"the float32 {plan.format} export does not reproduce the source model (max relative "
                         f"difference {what} > {PARITY_TOLERANCE:g}); nothing written")


def parity_lines(plan: ExportPlan, results: List[OutputParity]) -> List[str]:
    lines = [f"  {'output':<24} {'max rel. diff':>13}  {'top-1 agree':>11}  {'top-5 agree':>11}"]
    for r in results:
        top1 = "-" if r.top1 is None else f"{r.top1:.3f}"
        top5 = "-" if r.top5 is None else f"{r.top5:.3f}"
        lines.append(f"  {r.name:<24} {r.relative_difference:>13.3g}  {top1:>11}  {top5:>11}")
    if plan.quantize == NONE:
        lines.append(f"parity: float32 export within relative {PARITY_TOLERANCE:g} of the source model on every output")
    else:
        lines.append(f"drift of the {plan.quantize} export from the float32 source (quantized: reported, no parity claimed)")
    return lines


def host_checks_note(plan: ExportPlan) -> str:
    """The exported graphs hold no input checks: say what the caller must validate."""
    c = plan.config
    return (f"input checks: the exported graph has none (the model's checks run on the host); validate before calling it: "
            f"0 <= input_ids < {c.vocab_size}, 0 <= token_type_ids < {c.type_vocab_size}, "
            f"at most {c.max_position_embeddings} tokens, attention_mask 1 for tokens and 0 for right padding")


# ---------------------------------------------------------------------------------------- the run


class ExportBackend(Protocol):
    """What a framework supplies (mobilebert_pt.export, mobilebert_tf.export); run_export does the rest."""

    def load(self, plan: ExportPlan):
        """The float32 source model; check_head_weights on the weights the checkpoint lacked."""

    def run_source(self, model, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """{output name: array} of the source model on int64 inputs."""

    def convert(self, model, plan: ExportPlan, path: str, log: Callable[[str], None]) -> None:
        """Write the export to ``path`` (a temporary file that run_export renames into place)."""

    def run_exported(self, path: str, plan: ExportPlan, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """{output name: array} of the exported file on the same inputs."""


@dataclass
class ExportResult:
    path: str
    plan: ExportPlan
    parity: List[OutputParity]
    size_bytes: int


def run_export(plan: ExportPlan, backend: ExportBackend, log: Callable[[str], None] = print,
               hub_kwargs: Optional[dict] = None) -> ExportResult:
    log(plan.describe())
    model = backend.load(plan)
    probe = probe_batch(plan, load_probe_tokenizer(plan.source, hub_kwargs))
    log(probe.description)
    source = backend.run_source(model, probe.inputs)  # also validates the probe: a bad vocabulary fails here
    created = _missing_parents(plan.out)
    try:
        with atomic_path(plan.out) as tmp:
            backend.convert(model, plan, tmp, log)
            exported = backend.run_exported(tmp, plan, probe.inputs)
            results = measure_parity(plan, probe, exported, source)
            for line in parity_lines(plan, results):
                log(line)
            check_parity(plan, results)
            size = os.path.getsize(tmp)
    except BaseException:
        for directory in reversed(created):  # a failed export leaves no trace, folders included
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        raise
    log(host_checks_note(plan))
    log(f"wrote {plan.out} ({size / 1e6:.1f} MB)")
    return ExportResult(plan.out, plan, results, size)


def _missing_parents(path: str) -> List[str]:
    """The folders above ``path`` that do not exist yet, outermost first (atomic_path creates them)."""
    missing, directory = [], os.path.dirname(os.path.abspath(path))
    while directory and not os.path.exists(directory):
        missing.insert(0, directory)
        directory = os.path.dirname(directory)
    return missing
