"""MobileBertPreTrainedModel: initialisation, tying, from_pretrained / save_pretrained, embedding utilities.

Every public model class derives from it. Checkpoints are read through ``mobilebert_pt.checkpoints``
(safetensors, sharded safetensors, pytorch_model.bin with weights_only, tf_model.h5 via ``conversion``)
and matched to the model with ``mobilebert_common.loading`` (the missing / unexpected / shape rules
shared with the Keras side). ``save_pretrained`` writes config.json and model.safetensors under the
hub's key names, atomically (the writers are in saving.py).
"""

from __future__ import annotations

import os
import re
from typing import Dict, Optional, Tuple, Union

import torch
from torch import nn

from mobilebert_common.config import CONFIG_NAME, MobileBertConfig
from mobilebert_common.loading import compare, apply_policy
from mobilebert_pt import checkpoints, initialization, saving

BACKBONE_PREFIX = "mobilebert."
TIED_KEYS = ("cls.predictions.decoder.weight",)  # the decoder IS the word-embedding table: never in files
# Keys that old pytorch_model.bin files carry and that hold no weights of ours.
_IGNORED_CHECKPOINT_KEYS = re.compile(r"(^|\.)(embeddings\.position_ids|cls\.predictions\.decoder\.(weight|bias))$")

DTYPES = {
    "float32": torch.float32, "float": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "half": torch.float16, "fp16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def resolve_dtype(torch_dtype, config: MobileBertConfig, checkpoint: Optional[checkpoints.Checkpoint]) -> torch.dtype:
    """None -> float32; "auto" -> config.json's torch_dtype/dtype, else the file's float dtype, else float32."""
    if torch_dtype is None:
        return torch.float32
    if isinstance(torch_dtype, str) and torch_dtype == "auto":
        named = config.extra.get("torch_dtype") or config.extra.get("dtype")
        if isinstance(named, str) and named in DTYPES:
            return DTYPES[named]
        stored = checkpoint.float_dtype if checkpoint is not None else None
        return stored if stored in (torch.float32, torch.float16, torch.bfloat16) else torch.float32
    if isinstance(torch_dtype, str):
        torch_dtype = DTYPES.get(torch_dtype.replace("torch.", ""), torch_dtype)
    if torch_dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(
            f"torch_dtype={torch_dtype!r} is not supported; allowed: None, 'auto', torch.float32, torch.float16, torch.bfloat16"
        )
    return torch_dtype


def resolve_device(device_map, said: Optional[str] = None, use_cpu: str = "device_map='cpu' or 'auto'") -> torch.device:
    """The one device the whole model goes to. MobileBERT is small: no splitting across devices.

    None / "cpu" / -1 -> CPU; "auto" -> cuda:0 when there is one; N -> cuda:N; "cuda", "cuda:N".
    said / use_cpu: how errors name the argument and the CPU choice (the pipeline says "device=0").
    """
    said = said or f"device_map={device_map!r}"
    if isinstance(device_map, dict):
        devices = set(device_map.values())
        if len(devices) != 1:
            raise ValueError(f"{said}: this model loads onto one device; pass 'cpu', 'cuda', 'cuda:0' or 'auto'")
        device_map = devices.pop()
    if device_map is None or device_map == "cpu" or (isinstance(device_map, int) and device_map == -1):
        return torch.device("cpu")
    if device_map == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if isinstance(device_map, bool) or (isinstance(device_map, int) and device_map < -1):
        raise ValueError(f"{said}: pass -1 or 'cpu' for the CPU, N or 'cuda:N' for a GPU")
    try:
        device = torch.device("cuda", device_map) if isinstance(device_map, int) else torch.device(device_map)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{said} is not a device; allowed: None, 'auto', 'cpu' (or -1), N, 'cuda', 'cuda:N'") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ValueError(f"{said}: only the CPU and CUDA GPUs are supported")
    if not torch.cuda.is_available():
        raise ValueError(
            f"{said} asks for a CUDA GPU, but torch.cuda.is_available() is False (torch {torch.__version__}). "
            f"Use {use_cpu}, or install a CUDA build of torch."
        )
    index = device.index or 0
    if index >= torch.cuda.device_count():
        raise ValueError(f"{said} asks for GPU {index}, but there are only {torch.cuda.device_count()} CUDA device(s)")
    return torch.device("cuda", index)


class MobileBertPreTrainedModel(nn.Module):
    config_class = MobileBertConfig
    base_model_prefix = "mobilebert"
    supports_gradient_checkpointing = True

    def __init__(self, config: MobileBertConfig):
        super().__init__()
        if not isinstance(config, MobileBertConfig):
            raise ValueError(
                f"{type(self).__name__} takes a MobileBertConfig, got {type(config).__name__}; "
                f"use {type(self).__name__}.from_pretrained(path) to load a checkpoint"
            )
        self.config = config

    # ------------------------------------------------------------------ initialisation and tying
    def post_init(self) -> None:
        """Initialise every module not initialised yet (a head's backbone was, when it was built), then tie.
        Inside initialization.no_init() nothing is drawn: from_pretrained fills the weights itself."""
        if not initialization.init_skipped():
            self.apply(self._init_once)
        self.tie_weights()

    def _init_once(self, module: nn.Module) -> None:
        if not getattr(module, "_mobilebert_initialized", False):
            self._init_weights(module)
            module._mobilebert_initialized = True

    def _init_weights(self, module: nn.Module) -> None:
        """Truncated normal(0, initializer_range) at +-2 std, as the paper's TF code initialises."""
        initialization.init_module(module, self.config.initializer_range)

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.base_model.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        """Replace the word-embedding table (the masked-LM decoder is re-tied to it).

        A model with a masked-LM head takes only a table of the current vocabulary size: its output
        bias and dense rows (one per token) would otherwise no longer line up with the table, and
        making them up silently is not what a user asks for here; resize_token_embeddings(n) does
        that consistently (old rows kept, new rows initialised). Other models take any size >
        pad_token_id, and config.vocab_size follows.
        """
        if not isinstance(value, nn.Embedding) or value.embedding_dim != self.config.embedding_size:
            raise ValueError(f"input embeddings must be an nn.Embedding of width {self.config.embedding_size} (config.embedding_size)")
        size = value.num_embeddings
        if size != self.config.vocab_size and self.get_output_embeddings() is not None:
            raise ValueError(
                f"{type(self).__name__} has a masked-LM head over {self.config.vocab_size} tokens (config.vocab_size); "
                f"a table of {size} rows would not match it. Call model.resize_token_embeddings({size}) to change "
                "the vocabulary size (head resized with it), then set_input_embeddings with a table of that size"
            )
        if size <= self.config.pad_token_id:
            raise ValueError(f"input embeddings of {size} rows would drop the padding id {self.config.pad_token_id}")
        self.base_model.embeddings.word_embeddings = value
        self.config.vocab_size = value.num_embeddings
        self.tie_weights()

    def get_output_embeddings(self) -> Optional[nn.Linear]:
        return None  # the masked-LM heads return their decoder

    def tie_weights(self) -> None:
        """The masked-LM decoder shares the word-embedding table (one Parameter, saved once)."""
        decoder = self.get_output_embeddings()
        if decoder is not None:
            embeddings = self.get_input_embeddings()
            decoder.weight = embeddings.weight
            decoder.out_features = embeddings.num_embeddings

    def resize_token_embeddings(self, new_num_tokens: Optional[int] = None) -> nn.Embedding:
        """Grow or shrink the vocabulary: old rows kept, new rows initialised; the masked-LM head follows."""
        old = self.get_input_embeddings()
        if new_num_tokens is None:
            return old
        if isinstance(new_num_tokens, bool) or not isinstance(new_num_tokens, int) or new_num_tokens < 1:
            raise ValueError(f"new_num_tokens must be a positive integer, got {new_num_tokens!r}")
        if new_num_tokens <= self.config.pad_token_id:
            raise ValueError(f"new_num_tokens={new_num_tokens} would drop the padding id {self.config.pad_token_id}")
        keep = min(old.num_embeddings, new_num_tokens)
        new = nn.Embedding(new_num_tokens, old.embedding_dim, padding_idx=old.padding_idx,
                           device=old.weight.device, dtype=old.weight.dtype)
        self._init_weights(new)
        with torch.no_grad():
            new.weight[:keep] = old.weight[:keep]
        new.train(old.training)
        self.base_model.embeddings.word_embeddings = new
        decoder = self.get_output_embeddings()
        if decoder is not None:
            from mobilebert_pt.heads import weight_only_linear

            head = self.cls.predictions
            dense = weight_only_linear(new_num_tokens, head.dense.out_features,
                                      device=head.dense.weight.device, dtype=head.dense.weight.dtype)  # weight (H - E, V)
            self._init_weights(dense)
            bias = torch.zeros(new_num_tokens, device=head.bias.device, dtype=head.bias.dtype)
            with torch.no_grad():
                dense.weight[:, :keep] = head.dense.weight[:, :keep]
                bias[:keep] = head.bias[:keep]
            head.dense = dense
            head.bias = nn.Parameter(bias)
        self.config.vocab_size = new_num_tokens
        self.tie_weights()
        return new

    # ------------------------------------------------------------------ misc
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    def num_parameters(self, only_trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Optional[dict] = None) -> None:
        """Recompute each layer in backward instead of storing its activations (training only)."""
        self._set_gradient_checkpointing(True)

    def gradient_checkpointing_disable(self) -> None:
        self._set_gradient_checkpointing(False)

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules())

    def _set_gradient_checkpointing(self, value: bool) -> None:
        from mobilebert_pt.modeling import MobileBertEncoder

        for module in self.modules():
            if isinstance(module, MobileBertEncoder):
                module.gradient_checkpointing = value

    def _weight_shapes(self) -> Dict[str, Tuple[int, ...]]:
        """The model's key space as files hold it: the tied decoder left out."""
        return {k: tuple(v.shape) for k, v in self.state_dict().items() if k not in TIED_KEYS}

    # ------------------------------------------------------------------ saving
    def save_pretrained(
        self,
        save_directory: Union[str, os.PathLike],
        safe_serialization: bool = True,
        max_shard_size: Optional[Union[int, str]] = None,
    ) -> None:
        """config.json (with architectures) + model.safetensors (or shards + index), hub key names, written atomically."""
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_pretrained needs a directory, and {save_directory} is a file")
        os.makedirs(save_directory, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items() if k not in TIED_KEYS}
        config = self.config.copy(architectures=[type(self).__name__])
        config.extra["torch_dtype"] = str(self.dtype).replace("torch.", "")
        config.extra.pop("dtype", None)
        saving.remove_stale_weights(save_directory)
        if not safe_serialization:
            saving.write_pickle(os.path.join(save_directory, checkpoints.BIN_WEIGHTS_NAME), state)
        elif max_shard_size is None:
            saving.write_safetensors(os.path.join(save_directory, checkpoints.SAFE_WEIGHTS_NAME), state)
        else:
            saving.write_shards(save_directory, state, max_shard_size)
        config.save_pretrained(save_directory)  # last: a directory with config.json is complete

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: Union[str, os.PathLike],
        *,
        config: Optional[MobileBertConfig] = None,
        torch_dtype=None,
        dtype=None,
        device_map=None,
        from_tf: bool = False,
        ignore_mismatched_sizes: bool = False,
        output_loading_info: bool = False,
        revision: Optional[str] = None,
        cache_dir: Optional[str] = None,
        token: Optional[Union[str, bool]] = None,
        local_files_only: bool = False,
        force_download: bool = False,
        **config_overrides,
    ):
        """Load a directory, a weights file or a hub repo id (config.json + weights). Config fields may be
        overridden by keyword (``num_labels=3``). Returns the model in eval mode."""
        source = os.fspath(pretrained_model_name_or_path)
        hub_kwargs = dict(revision=revision, cache_dir=cache_dir, token=token,
                          local_files_only=local_files_only, force_download=force_download)
        unknown = [k for k in config_overrides if k not in MobileBertConfig.__dataclass_fields__]
        if unknown:
            raise ValueError(f"from_pretrained got unknown keyword(s) {unknown}: neither loading options nor config fields")
        if config is None:
            config_source = (os.path.dirname(source) or ".") if os.path.isfile(source) else source
            if os.path.isfile(source) and not os.path.isfile(os.path.join(config_source, CONFIG_NAME)):
                raise FileNotFoundError(f"{source} is a weights file without a config.json beside it; pass config=")
            config = MobileBertConfig.from_pretrained(config_source, **hub_kwargs, **config_overrides)
        elif not isinstance(config, MobileBertConfig):
            raise ValueError(f"config must be a MobileBertConfig, got {type(config).__name__}")
        elif config_overrides:
            config = config.copy(**config_overrides)
        if dtype is not None and torch_dtype is not None:
            raise ValueError("pass torch_dtype or dtype, not both")
        torch_dtype = dtype if torch_dtype is None else torch_dtype
        device = resolve_device(device_map)

        checkpoint = checkpoints.open_checkpoint(
            # architecture=None: a tf_model.h5 is converted as the head it holds (found from its names),
            # then matched to this class like any other checkpoint (head-to-head rules apply).
            source, from_tf=from_tf, hub_kwargs=hub_kwargs, device=device, config=config, architecture=None
        )
        model_dtype = resolve_dtype(torch_dtype, config, checkpoint)
        # Built on the target device without the paper's init (the checkpoint overwrites it; only what the
        # file lacks is initialised after loading). Not on the "meta" device: torch's default init of meta
        # tensors imports torch._dynamo, seconds and ~90 MB per process. .to(dtype) converts one tensor at a time.
        with initialization.no_init(), torch.device(device):
            model = cls(config)
        model = model.to(dtype=model_dtype)
        info = model._load_checkpoint(checkpoint, ignore_mismatched_sizes)
        model.eval()
        return (model, info) if output_loading_info else model

    def _load_checkpoint(self, checkpoint: checkpoints.Checkpoint, ignore_mismatched_sizes: bool) -> dict:
        """Copy each checkpoint tensor into its parameter, one at a time (no second full copy)."""
        model_shapes = self._weight_shapes()
        to_model = _key_mapping(self, [k for k in checkpoint.shapes if not _IGNORED_CHECKPOINT_KEYS.search(k)], model_shapes)
        report = compare(model_shapes, {to_model[k]: s for k, s in checkpoint.shapes.items() if k in to_model})
        bare = not hasattr(self, self.base_model_prefix)

        def is_backbone(key: str) -> bool:
            key = key if bare else key[len(BACKBONE_PREFIX):] if key.startswith(BACKBONE_PREFIX) else ""
            return key.startswith(("embeddings.", "encoder."))

        reinit = apply_policy(report, source=checkpoint.source, model_class=type(self).__name__,
                              is_backbone=is_backbone, ignore_mismatched_sizes=ignore_mismatched_sizes)
        state = self.state_dict(keep_vars=True)
        skip, loaded = set(reinit), set()
        with torch.no_grad():
            for ckpt_key, model_key in to_model.items():
                if model_key in skip or model_key not in model_shapes:
                    continue
                tensor = checkpoint.get(ckpt_key)  # one tensor at a time: the weights are never held twice
                if not tensor.is_floating_point():
                    raise ValueError(f"{checkpoint.source}: {ckpt_key} holds {tensor.dtype}, not floating-point weights")
                state[model_key].copy_(tensor)
                loaded.add(model_key)
                del tensor
        # Everything the file did not fill (new head weights; reshaped ones with ignore_mismatched_sizes) gets
        # the paper's init now: from_pretrained built the model without it.
        initialization.init_parameters(self, sorted(set(model_shapes) - loaded), self.config.initializer_range)
        self.tie_weights()
        return {"missing_keys": report.missing, "unexpected_keys": report.unexpected,
                "mismatched_keys": report.mismatched}


def _key_mapping(model: MobileBertPreTrainedModel, checkpoint_keys, model_shapes) -> Dict[str, str]:
    """checkpoint key -> model key: add or strip the "mobilebert." prefix as the two sides need.

    A bare MobileBertModel's file has no prefix (as the hub saves it); a head's has it. Loading a
    head's file into the bare model strips it (its head weights are unexpected); loading a bare
    model's file into a head adds it (the head is new).
    """
    bare = not hasattr(model, model.base_model_prefix)
    has_prefix = any(k.startswith(BACKBONE_PREFIX) for k in checkpoint_keys)
    mapping = {}
    for key in checkpoint_keys:
        if bare and has_prefix:
            mapping[key] = key[len(BACKBONE_PREFIX):] if key.startswith(BACKBONE_PREFIX) else key
        elif not bare and not has_prefix and key.startswith(("embeddings.", "encoder.", "pooler.")):
            mapping[key] = BACKBONE_PREFIX + key
        else:
            mapping[key] = key
    return mapping
