"""pipeline(): the PyTorch half of the task pipelines.

All pre- and post-processing (tokens, truncation, windows, batching, id checks, scores, words,
spans) and the branch on the task's head live in mobilebert_common/pipeline_*.py and are shared
with the Keras pipelines; this file only loads the model, moves numpy batches onto its device,
makes the few framework calls a forward pass is made of and brings numpy back.

    pipe = pipeline("fill-mask", model="google/mobilebert-uncased", torch_dtype=torch.bfloat16, device=0)
    pipe("The capital of France is [MASK].")
"""

from __future__ import annotations

import contextlib
import os
from typing import Dict

import numpy as np
import torch

from mobilebert_common.pipelines.sentence_tasks import mask_grid
from mobilebert_common.pipelines.driver import PipelineBase, check_head, describe_device, load_tokenizer
from mobilebert_common.pipelines.registry import HEAD_CLASSES, normalize_task
from mobilebert_pt import modeling
from mobilebert_pt.pipeline_float16 import MIXED, Float16Matmuls, is_mixed
from mobilebert_pt.pretrained import resolve_device, resolve_dtype


def resolve_pipeline_device(device, cli: bool = False) -> torch.device:
    """None / -1 / "cpu" -> CPU; N -> cuda:N; "cuda", "cuda:N" or a torch.device as given.

    Checked here rather than by from_pretrained so that an error names the argument the user
    wrote (device=... or, from the CLI, --device ...), not from_pretrained's device_map.
    """
    said, cpu = describe_device(device, cli)
    return resolve_device(device, said=said, use_cpu=cpu)


def gathered_masked_logits(model, batch: Dict[str, torch.Tensor], positions: np.ndarray) -> torch.Tensor:
    """Vocabulary logits at the masked positions only: (N, V) for positions (N, 2) of (row, column).

    The model's masked-LM head runs at the masks only (mask_positions), so the (H x V) projection
    costs about N rows instead of B*T. Same numbers as model(**batch).logits[positions[:, 0], positions[:, 1]].
    """
    device = batch["attention_mask"].device
    grid, slots = mask_grid(positions, batch["attention_mask"].shape[0])
    out = model(**batch, mask_positions=torch.from_numpy(grid).to(device), return_dict=True)
    # (B, P, V); MobileBertForPreTraining (which fill-mask also takes) calls them prediction_logits
    logits = out["prediction_logits"] if "prediction_logits" in out else out["logits"]
    rows, slots = torch.from_numpy(positions[:, 0]).to(device), torch.from_numpy(slots).to(device)
    return logits[rows, slots]  # (N, V)


def padded_inputs(model, batch: Dict[str, np.ndarray], device) -> Dict[str, torch.Tensor]:
    """Model inputs for a right-padded batch, with the padding's word embeddings set to zero.

    The trigram embedding mixes each token with its neighbours, so the last real token would see
    the [PAD] embedding; alone in a batch it sees zeros. Zeroing the padding rows makes a batched
    row exactly the row run alone, whatever the checkpoint's [PAD] embedding holds. (The ids were
    checked against config.vocab_size before: driver.check_batch_ids.)
    """
    ids = torch.from_numpy(batch["input_ids"]).to(device)
    mask = torch.from_numpy(batch["attention_mask"]).to(device)
    embeds = model.get_input_embeddings()(ids)  # (B, T, E)
    embeds = embeds * mask[..., None].to(embeds.dtype)
    return {"inputs_embeds": embeds, "attention_mask": mask, "token_type_ids": torch.from_numpy(batch["token_type_ids"]).to(device)}


@contextlib.contextmanager
def eval_mode(model):
    """Dropout off for the call: every module in training mode set to eval, and exactly those set back after.

    Not model.eval() / model.train(): those set all ~1,000 modules of the released model (about 2.4 ms a
    pair here, against 0.7 ms for this walk, paid per batch), and train() would also switch on a submodule
    the caller had left in eval mode.
    """
    training = [m for m in model.modules() if m.training]  # usually none: a loaded model is in eval mode
    for m in training:
        m.training = False
    try:
        yield
    finally:
        for m in training:
            m.training = True


class PyTorchPipeline(PipelineBase):
    framework = "pt"

    def __init__(self, task, model, tokenizer, *, device: torch.device, mixed: bool = False, **kwargs):
        self.device = device
        self.mixed = Float16Matmuls() if mixed else None
        super().__init__(task, model, tokenizer, model.config, **kwargs)

    @property
    def dtype_name(self) -> str:
        return MIXED if self.mixed is not None else str(self.model.dtype).replace("torch.", "")

    def _to_tensor(self, array: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(array))

    @contextlib.contextmanager
    def _running(self):
        with torch.inference_mode(), eval_mode(self.model), (self.mixed or contextlib.nullcontext()):
            yield

    def _model_inputs(self, batch):
        return padded_inputs(self.model, batch, self.device)

    def _masked_logits(self, inputs, positions):
        return gathered_masked_logits(self.model, inputs, positions)  # float16-mixed: _running holds the mode

    def _hidden_states(self, inputs):
        backbone = getattr(self.model, "mobilebert", self.model)
        return backbone(**inputs, return_dict=True).last_hidden_state

    def _call_model(self, inputs):
        return self.model(**inputs, return_dict=True)

    def _numpy(self, value) -> np.ndarray:
        return value.float().cpu().numpy()  # float16/bfloat16 -> float32 for the numpy side


def head_class(task: str):
    """The class a task loads, by the name in mobilebert_common.pipelines.registry.HEAD_CLASSES."""
    return getattr(modeling, HEAD_CLASSES[task])


def check_model_dtype(model, wanted) -> None:
    """A model object keeps its dtype: torch_dtype may only confirm it (or ask for float16-mixed,
    which leaves a float32 model's weights as they are)."""
    if wanted is None or (isinstance(wanted, str) and wanted == "auto"):
        return
    if is_mixed(wanted):
        if model.dtype != torch.float32:
            raise ValueError(f"torch_dtype={MIXED!r} needs a float32 model (its float16 products read float32 weights); this one is {model.dtype}")
        return
    target = resolve_dtype(wanted, model.config, None)
    if target != model.dtype:
        raise ValueError(
            f"torch_dtype={wanted!r} but the model object is {model.dtype}: the pipeline does not change the dtype of a "
            f"model you pass (that would change your object too). Convert it yourself (model.to({target})), "
            "or pass a directory / repo id with torch_dtype"
        )


def pipeline(task: str, model=None, tokenizer=None, device=None, torch_dtype=None, batch_size: int = 1,
             progress: bool = False, model_kwargs: dict = None, dtype=None, **kwargs) -> PyTorchPipeline:
    """A pipeline for ``task`` on a PyTorch MobileBERT.

    task:        fill-mask, text-classification (sentiment-analysis), token-classification (ner),
                 question-answering, next-sentence-prediction, feature-extraction
    model:       a directory, a hub repo id, or a model object of the task's class
    tokenizer:   None (the model's directory / repo id), a directory / repo id, or a tokenizer object
    device:      None or -1 or "cpu"; N or "cuda:N" for a GPU
    torch_dtype: None (float32), "auto", torch.float32 / bfloat16 / float16 (see FLOAT16 below), or
                 "float16-mixed" (see below); dtype= is a synonym (as in mobilebert_tf.pipeline)
    batch_size:  inputs per forward pass (padded on the right)
    progress:    show a tqdm bar while iterating
    kwargs:      the task's parameters (top_k, targets, aggregation_strategy, doc_stride, ...)

    A MODEL OBJECT is used as it is: it is moved to ``device`` in place when a device is given (as
    transformers does; without one it stays where it is), but its dtype is never changed:
    torch_dtype must then be None, "auto", its own dtype or "float16-mixed", else ValueError. The
    pipeline runs it in eval mode and restores its train/eval state after each call.

    FLOAT16: released MobileBERT activations reach 1e7-1e8, beyond float16's 65504; an overflowing
    run raises ValueError naming bfloat16 / float32 rather than returning NaN scores.
    "float16-mixed" keeps float32 weights and runs the linear layers' products in float16, with
    the channels too large for float16 in float32 (mobilebert_pt/pipeline_float16.py): it does not
    overflow where float16 does, and gives float32's scores to float16 precision.
    """
    name = normalize_task(task)
    if model is None:
        raise ValueError(f"pipeline({name!r}) needs model=: a directory, a hub repo id or a model object")
    if dtype is not None and torch_dtype is not None:
        raise ValueError("pass dtype or torch_dtype, not both")
    wanted = torch_dtype if torch_dtype is not None else dtype
    mixed = is_mixed(wanted)
    dev = resolve_pipeline_device(device)
    source = None
    if isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        cls = head_class(name)
        load_dtype = torch.float32 if mixed else wanted
        model = cls.from_pretrained(source, torch_dtype=load_dtype, device_map=str(dev), **(model_kwargs or {}))
    elif isinstance(model, torch.nn.Module):
        check_head(name, model)
        if model_kwargs:
            raise ValueError("model_kwargs applies only when model is a directory or repo id")
        check_model_dtype(model, wanted)
        if device is None:
            dev = model.device  # a model object stays where the caller put it
        elif model.device != dev:
            model.to(dev)  # in place, as transformers' pipeline does with a device
    else:
        raise ValueError(f"model must be a directory, a hub repo id or a MobileBERT model object, got {type(model).__name__}")
    tokenizer = load_tokenizer(tokenizer, source)
    return PyTorchPipeline(name, model, tokenizer, device=dev, mixed=mixed, batch_size=batch_size, progress=progress, **kwargs)
