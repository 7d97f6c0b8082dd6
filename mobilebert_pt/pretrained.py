"""PreTrainedModel: the generic base of the PyTorch models: initialisation once per module, from_pretrained /
save_pretrained, device and dtype.

It knows no model class: a model's base class (MobileBertPreTrainedModel in modeling.py) derives from
it and supplies the class attributes listed at the top of the class, and ``_init_weights``.
Checkpoints are read and written through ``mobilebert_pt.checkpoints`` and matched to the model with
``mobilebert_common.loading`` (the missing / unexpected / shape rules shared with the Keras side).

Initialisation is not paid twice: from_pretrained builds the model inside ``no_init()`` (post_init
draws nothing), copies the checkpoint in one tensor at a time, then initialises only the weights the
checkpoint did not provide (``init_parameters``).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from typing import Dict, Iterable, List, Optional, Tuple, Union

import torch
from torch import nn

from mobilebert_common.devices import dtype_name, parse_device
from mobilebert_common.loading import apply_policy, compare, resolve_pretrained
from mobilebert_pt import checkpoints
from mobilebert_pt.quantization import check_loading_quantization, quantize_dynamic

# mobilebert_common.devices names the dtypes; these are torch's.
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(torch_dtype, config, checkpoint: Optional[checkpoints.Checkpoint]) -> torch.dtype:
    """None -> float32; "auto" -> config.json's dtype (torch_dtype), else the file's float dtype, else float32."""
    if torch_dtype is None:
        return torch.float32
    if isinstance(torch_dtype, str) and torch_dtype == "auto":
        named = dtype_name(getattr(config, "dtype", None) or config.extra.get("torch_dtype") or config.extra.get("dtype"))
        if named is not None:
            return TORCH_DTYPES[named]
        stored = checkpoint.float_dtype if checkpoint is not None else None
        return stored if stored in TORCH_DTYPES.values() else torch.float32
    named = dtype_name(torch_dtype)
    if named is None:
        raise ValueError(
            f"torch_dtype={torch_dtype!r} is not supported; allowed: None, 'auto', torch.float32, torch.float16, torch.bfloat16"
        )
    return TORCH_DTYPES[named]


def resolve_device(device_map, said: Optional[str] = None, use_cpu: str = "device_map='cpu' or 'auto'") -> torch.device:
    """The one device the whole model goes to. MobileBERT is small: no splitting across devices.

    None / "cpu" / -1 -> CPU; "auto" -> cuda:0 when there is one; N, "cuda", "cuda:N" (parsed by
    mobilebert_common.devices) -> that GPU, checked to exist.
    said / use_cpu: how errors name the argument and the CPU choice (the pipeline says "device=0").
    """
    said = said or f"device_map={device_map!r}"
    if isinstance(device_map, dict):
        devices = set(device_map.values())
        if len(devices) != 1:
            raise ValueError(f"{said}: this model loads onto one device; pass 'cpu', 'cuda', 'cuda:0' or 'auto'")
        device_map = devices.pop()
    if device_map == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    kind, index = parse_device(device_map, said)
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(
            f"{said} asks for a CUDA GPU, but torch.cuda.is_available() is False (torch {torch.__version__}). "
            f"Use {use_cpu}, or install a CUDA build of torch."
        )
    if index >= torch.cuda.device_count():
        raise ValueError(f"{said} asks for GPU {index}, but there are only {torch.cuda.device_count()} CUDA device(s)")
    return torch.device("cuda", index)


# ---------------------------------------------------------------------------------------- initialisation

_state = threading.local()


@contextlib.contextmanager
def no_init():
    """post_init() inside this block ties weights but draws nothing (the caller fills every weight)."""
    previous = getattr(_state, "skip", False)
    _state.skip = True
    try:
        yield
    finally:
        _state.skip = previous


@torch.no_grad()
def truncated_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """Normal(0, std) cut at +-2 std, in place by inverse CDF: exact, no loop, no extra buffer (torch's
    trunc_normal_ resamples with full-size float temporaries: seconds and hundreds of MB on a 30k vocabulary)."""
    if tensor.numel() == 0:
        return tensor
    edge = math.erf(2.0 / math.sqrt(2.0))  # erf's value at 2 std: uniform on (-edge, edge) -> within +-2 std
    tensor.uniform_(-edge, edge)
    tensor.erfinv_().mul_(std * math.sqrt(2.0)).clamp_(-2 * std, 2 * std)  # clamp: float rounding only
    return tensor


@torch.no_grad()
def init_parameters(model: "PreTrainedModel", names: Iterable[str]) -> None:
    """Initialise the named parameters only (the rest keep their loaded values), module by module."""
    owners = {}
    for name in names:
        module_name, _, param_name = name.rpartition(".")
        owners.setdefault(module_name, set()).add(param_name)
    for module_name, params in owners.items():
        module = model.get_submodule(module_name)
        keep = {k: p.detach().clone() for k, p in module.named_parameters(recurse=False) if k not in params}
        model._init_weights(module)
        for k, value in keep.items():  # a loaded sibling (e.g. a bias of the right shape) stays
            getattr(module, k).copy_(value)


# ---------------------------------------------------------------------------------------- the base class


class PreTrainedModel(nn.Module):
    # What a model's base class supplies (MobileBertPreTrainedModel in modeling.py):
    config_class: type = None  # the config dataclass: Cls(config) checks it, from_pretrained reads config.json into it
    base_model_prefix: str = ""  # attribute holding the backbone in a task model, and its keys' prefix in files
    main_input_name: str = "input_ids"  # the batch key transformers' Trainer reads as the model's main input
    supports_gradient_checkpointing: bool = False
    tied_keys: Tuple[str, ...] = ()  # state_dict keys that share another key's tensor: never written to files
    ignored_checkpoint_keys = None  # compiled regex: keys that old files carry and that hold no weights
    backbone_keys: Tuple[str, ...] = ()  # key prefixes (under the base model) a checkpoint must match exactly
    base_model_keys: Tuple[str, ...] = ()  # key prefixes a bare base model's file holds, without base_model_prefix

    def __init__(self, config):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ValueError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}; "
                f"use {type(self).__name__}.from_pretrained(path) to load a checkpoint"
            )
        self.config = config

    # ------------------------------------------------------------------ initialisation and tying
    def post_init(self) -> None:
        """Initialise every module not initialised yet (a task model's backbone was, when it was built), then tie.
        Inside no_init() nothing is drawn: from_pretrained fills the weights itself."""
        if not getattr(_state, "skip", False):
            self.apply(self._init_once)
        self.tie_weights()

    def _init_once(self, module: nn.Module) -> None:
        if not getattr(module, "_weights_initialized", False):
            self._init_weights(module)
            module._weights_initialized = True

    def _init_weights(self, module: nn.Module) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _init_weights(module)")

    def tie_weights(self) -> None:
        """Re-share the parameters that tied_keys name (after init and after loading); none here."""

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

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
        for module in self.modules():  # the modules that run layers (an encoder) hold the flag
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = value

    def _weight_shapes(self) -> Dict[str, Tuple[int, ...]]:
        """The model's key space as files hold it: the tied keys left out."""
        return {k: tuple(v.shape) for k, v in self.state_dict().items() if k not in self.tied_keys}

    # ------------------------------------------------------------------ saving
    def save_pretrained(
        self,
        save_directory: Union[str, os.PathLike],
        safe_serialization: bool = True,
        max_shard_size: Optional[Union[int, str]] = None,
    ) -> List[str]:
        """config.json (with architectures) + model.safetensors (or shards + index), hub key names, written
        atomically. Returns the paths written, config.json last."""
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_pretrained needs a directory, and {save_directory} is a file")
        os.makedirs(save_directory, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items() if k not in self.tied_keys}
        config = self.config.copy(architectures=[type(self).__name__])
        config.extra["torch_dtype"] = str(self.dtype).replace("torch.", "")
        config.extra.pop("dtype", None)
        checkpoints.remove_stale_weights(save_directory)
        if not safe_serialization:
            written = checkpoints.write_pickle(os.path.join(save_directory, checkpoints.BIN_WEIGHTS_NAME), state)
        elif max_shard_size is None:
            written = checkpoints.write_safetensors(os.path.join(save_directory, checkpoints.SAFE_WEIGHTS_NAME), state)
        else:
            written = checkpoints.write_shards(save_directory, state, max_shard_size)
        return written + [config.save_pretrained(save_directory)]  # last: a directory with config.json is complete

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: Optional[Union[str, os.PathLike]],
        *,
        config=None,
        state_dict: Optional[Dict[str, torch.Tensor]] = None,
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
        quantize: Optional[str] = None,
        **config_overrides,
    ):
        """Load a directory, a weights file or a hub repo id (config.json + weights). Config fields may be
        overridden by keyword (``num_labels=3``). Returns the model in eval mode.

        ``state_dict`` ({key: tensor}, as ``model.state_dict()`` gives): the weights, instead of the source's
        files; the config then comes from the source, or with ``pretrained_model_name_or_path=None`` from
        ``config=`` (as transformers: ``from_pretrained(None, config=config, state_dict=sd)``).

        ``quantize="dynamic-int8"``: CPU inference with int8 Linear layers (mobilebert_pt.quantization), the
        loaded float32 model converted in place.
        """
        int8 = check_loading_quantization(quantize)
        hub_kwargs = dict(revision=revision, cache_dir=cache_dir, token=token,
                          local_files_only=local_files_only, force_download=force_download)
        if pretrained_model_name_or_path is None:
            if config is None or state_dict is None:
                raise ValueError("from_pretrained(None, ...) needs both config= and state_dict= (the weights); "
                                 "otherwise pass a directory, a weights file or a hub repo id")
            if not isinstance(config, cls.config_class):
                raise ValueError(f"config must be a {cls.config_class.__name__}, got {type(config).__name__}")
            if config_overrides:
                raise ValueError(f"from_pretrained(None, config=...) takes no config keywords ({sorted(config_overrides)}); "
                                 "set them on the config")
            source = None
        else:
            resolved = resolve_pretrained(cls.config_class, pretrained_model_name_or_path, config, config_overrides, hub_kwargs)
            source, config = resolved.source, resolved.config
        if state_dict is not None and from_tf:
            raise ValueError("pass state_dict= or from_tf=True, not both: state_dict holds PyTorch weights")
        if dtype is not None and torch_dtype is not None:
            raise ValueError("pass torch_dtype or dtype, not both")
        torch_dtype = dtype if torch_dtype is None else torch_dtype
        device = resolve_device(device_map)

        if state_dict is not None:
            checkpoint = checkpoints._from_state_dict(state_dict, "state_dict=")  # same package: the reader of .bin files
        else:
            checkpoint = checkpoints.open_checkpoint(
                # architecture=None: a tf_model.h5 is converted as the head it holds (found from its names),
                # then matched to this class like any other checkpoint (head-to-head rules apply).
                source, from_tf=from_tf, hub_kwargs=hub_kwargs, device=device, config=config, architecture=None
            )
        model_dtype = resolve_dtype(torch_dtype, config, checkpoint)
        # Built on the target device without init (the checkpoint overwrites it; only what the file lacks
        # is initialised after loading). Not on the "meta" device: torch's default init of meta tensors
        # imports torch._dynamo, seconds and ~90 MB per process. .to(dtype) converts one tensor at a time.
        with no_init(), torch.device(device):
            model = cls(config)
        model = model.to(dtype=model_dtype)
        info = model._load_checkpoint(checkpoint, ignore_mismatched_sizes)
        model.eval()
        if int8:
            model = quantize_dynamic(model, in_place=True)
        return (model, info) if output_loading_info else model

    def _load_checkpoint(self, checkpoint: checkpoints.Checkpoint, ignore_mismatched_sizes: bool) -> dict:
        """Copy each checkpoint tensor into its parameter, one at a time (no second full copy)."""
        model_shapes = self._weight_shapes()
        ignored = self.ignored_checkpoint_keys
        wanted = [k for k in checkpoint.shapes if ignored is None or not ignored.search(k)]
        to_model = self._key_mapping(wanted)
        report = compare(model_shapes, {to_model[k]: s for k, s in checkpoint.shapes.items() if k in to_model})
        bare = not hasattr(self, self.base_model_prefix)
        prefix = self.base_model_prefix + "."

        def is_backbone(key: str) -> bool:
            key = key if bare else key[len(prefix):] if key.startswith(prefix) else ""
            return key.startswith(self.backbone_keys)

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
        # Everything the file did not fill (new head weights; reshaped ones with ignore_mismatched_sizes) is
        # initialised now: from_pretrained built the model without it.
        init_parameters(self, sorted(set(model_shapes) - loaded))
        self.tie_weights()
        return {"missing_keys": report.missing, "unexpected_keys": report.unexpected,
                "mismatched_keys": report.mismatched}

    def _key_mapping(self, checkpoint_keys) -> Dict[str, str]:
        """checkpoint key -> model key: add or strip base_model_prefix as the two sides need.

        A bare base model's file has no prefix (as the hub saves it); a task model's has it. Loading a
        task model's file into the bare model strips it (its head weights are unexpected); loading a bare
        model's file into a task model adds it (the head is new).
        """
        bare = not hasattr(self, self.base_model_prefix)
        prefix = self.base_model_prefix + "."
        has_prefix = any(k.startswith(prefix) for k in checkpoint_keys)
        mapping = {}
        for key in checkpoint_keys:
            if bare and has_prefix:
                mapping[key] = key[len(prefix):] if key.startswith(prefix) else key
            elif not bare and not has_prefix and key.startswith(self.base_model_keys):
                mapping[key] = prefix + key
            else:
                mapping[key] = key
        return mapping
