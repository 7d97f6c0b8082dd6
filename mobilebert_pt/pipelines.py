"""pipeline(): the PyTorch half of the task pipelines.

All pre- and post-processing (tokens, truncation, windows, batching, scores, words, spans) lives in
mobilebert_common/pipeline_*.py and is shared with the Keras pipelines; this file only loads the
model, moves numpy batches onto its device, runs the forward pass and brings numpy back.

    pipe = pipeline("fill-mask", model="google/mobilebert-uncased", torch_dtype=torch.bfloat16, device=0)
    pipe("The capital of France is [MASK].")
"""

from __future__ import annotations

import os
from typing import Dict

import numpy as np
import torch

from mobilebert_common.pipeline_base import PipelineBase, check_head, load_tokenizer, non_finite_error
from mobilebert_common.pipeline_tasks import HEAD_CLASSES, normalize_task
from mobilebert_pt.pretrained import resolve_device, resolve_dtype


def resolve_pipeline_device(device) -> torch.device:
    """None / -1 / "cpu" -> CPU; N -> cuda:N; "cuda", "cuda:N" or a torch.device as given."""
    if device is None or (isinstance(device, int) and not isinstance(device, bool) and device == -1):
        return torch.device("cpu")
    if isinstance(device, bool) or (isinstance(device, int) and device < -1):
        raise ValueError(f"device={device!r}: pass -1 or 'cpu' for the CPU, N or 'cuda:N' for a GPU")
    if isinstance(device, torch.device):
        device = str(device)
    return resolve_device(device)


def gathered_masked_logits(model, batch: Dict[str, torch.Tensor], positions: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits at the masked positions only: (N, V) for positions (N, 2) of (row, column).

    The backbone runs on the whole batch; its hidden states at the [MASK]s, (N, H), go through the
    masked-LM head, so the (H x V) projection costs N rows instead of B*T. Same numbers as
    model(**batch).logits[positions[:, 0], positions[:, 1]].
    """
    hidden = model.mobilebert(**batch, return_dict=True).last_hidden_state  # (B, T, H)
    picked = hidden[positions[:, 0], positions[:, 1]]  # (N, H)
    return project(model.cls.predictions, picked)  # (N, V)


def project(head, hidden: torch.Tensor) -> torch.Tensor:
    """The masked-LM head on (N, H) rows without building its (H, V) weight: the head's own forward
    concatenates [E^T ; dense] on every call (a 62 MB copy for the released model), which would
    cost more than the N-row product itself. Two products, summed: the same logits."""
    x = head.transform(hidden)  # (N, H)
    words = head.decoder.weight  # (V, E): the tied word embeddings
    e = words.shape[1]
    return x[:, :e] @ words.t() + x[:, e:] @ head.dense.weight + head.bias  # (N, V)


def padded_inputs(model, batch: Dict[str, np.ndarray], device) -> Dict[str, torch.Tensor]:
    """Model inputs for a right-padded batch, with the padding's word embeddings set to zero.

    The trigram embedding mixes each token with its neighbours, so the last real token would see
    the [PAD] embedding; alone in a batch it sees zeros. Zeroing the padding rows makes a batched
    row exactly the row run alone, whatever the checkpoint's [PAD] embedding holds.
    """
    ids = torch.from_numpy(batch["input_ids"]).to(device)
    mask = torch.from_numpy(batch["attention_mask"]).to(device)
    embeds = model.get_input_embeddings()(ids)  # (B, T, E)
    embeds = embeds * mask[..., None].to(embeds.dtype)
    return {"inputs_embeds": embeds, "attention_mask": mask, "token_type_ids": torch.from_numpy(batch["token_type_ids"]).to(device)}


class PyTorchPipeline(PipelineBase):
    framework = "pt"

    def __init__(self, task, model, tokenizer, *, device: torch.device, **kwargs):
        self.device = device
        super().__init__(task, model, tokenizer, model.config, **kwargs)

    @property
    def dtype_name(self) -> str:
        return str(self.model.dtype).replace("torch.", "")

    def _to_tensor(self, array: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(array))

    @torch.inference_mode()
    def _forward(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        head = self.task.head
        model = self.model
        inputs = padded_inputs(model, batch, self.device)
        if head == "masked_lm":
            positions = torch.from_numpy(batch["mask_positions"]).to(self.device)
            out = {"masked_logits": gathered_masked_logits(model, inputs, positions)}
        elif head == "features":
            backbone = model if not hasattr(model, "mobilebert") else model.mobilebert
            out = {"last_hidden_state": backbone(**inputs, return_dict=True).last_hidden_state}
        elif head == "question_answering":
            result = model(**inputs, return_dict=True)
            out = {"start_logits": result.start_logits, "end_logits": result.end_logits}
        elif head == "next_sentence" and type(model).__name__ == "MobileBertForPreTraining":
            out = {"logits": model(**inputs, return_dict=True).seq_relationship_logits}
        else:
            out = {"logits": model(**inputs, return_dict=True).logits}
        arrays = {}
        for name, value in out.items():
            if not bool(torch.isfinite(value).all()):
                raise non_finite_error(self.dtype_name, f"the model's {name}")
            arrays[name] = value.float().cpu().numpy()  # float16/bfloat16 -> float32 for the numpy side
        return arrays


def pipeline(task: str, model=None, tokenizer=None, device=None, torch_dtype=None, batch_size: int = 1,
             progress: bool = False, model_kwargs: dict = None, **kwargs) -> PyTorchPipeline:
    """A pipeline for ``task`` on a PyTorch MobileBERT.

    task:        fill-mask, text-classification (sentiment-analysis), token-classification (ner),
                 question-answering, next-sentence-prediction, feature-extraction
    model:       a directory, a hub repo id, or a model object of the task's class
    tokenizer:   None (the model's directory / repo id), a directory / repo id, or a tokenizer object
    device:      None or -1 or "cpu"; N or "cuda:N" for a GPU
    torch_dtype: None (float32), "auto", torch.float32 / bfloat16 / float16 (see FLOAT16 below)
    batch_size:  inputs per forward pass (padded on the right)
    progress:    show a tqdm bar while iterating
    kwargs:      the task's parameters (top_k, targets, aggregation_strategy, doc_stride, ...)

    FLOAT16: released MobileBERT activations reach 1e7-1e8, beyond float16's 65504; an overflowing
    run raises ValueError naming bfloat16 / float32 rather than returning NaN scores.
    """
    name = normalize_task(task)
    if model is None:
        raise ValueError(f"pipeline({name!r}) needs model=: a directory, a hub repo id or a model object")
    dev = resolve_pipeline_device(device)
    source = None
    if isinstance(model, (str, os.PathLike)):
        import mobilebert_pt

        source = os.fspath(model)
        cls = getattr(mobilebert_pt, HEAD_CLASSES[name])
        model = cls.from_pretrained(source, torch_dtype=torch_dtype, device_map=str(dev), **(model_kwargs or {}))
    elif isinstance(model, torch.nn.Module):
        check_head(name, model)
        if device is None:
            dev = model.device  # a model object stays where the caller put it
        if model_kwargs:
            raise ValueError("model_kwargs applies only when model is a directory or repo id")
        if torch_dtype is not None:
            model = model.to(dtype=resolve_dtype(torch_dtype, model.config, None))
        if device is not None or model.device != dev:
            model = model.to(dev)
        model.eval()
    else:
        raise ValueError(f"model must be a directory, a hub repo id or a MobileBERT model object, got {type(model).__name__}")
    tokenizer = load_tokenizer(tokenizer, source)
    return PyTorchPipeline(name, model, tokenizer, device=dev, batch_size=batch_size, progress=progress, **kwargs)
