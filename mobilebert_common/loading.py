"""Matching a checkpoint's tensors to a model's, shared by both frameworks.

Each framework renames checkpoint keys into its model's own key space (adding or stripping the
backbone prefix), then calls ``compare`` and ``apply_policy``: the rules (what is an error, what
is a warning, and the wording) live here once.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from mobilebert_common.config import CARRIED, CONFIG_NAME

Shape = Tuple[int, ...]


@dataclass
class LoadReport:
    missing: List[str] = field(default_factory=list)  # model keys the checkpoint lacks: newly initialised
    unexpected: List[str] = field(default_factory=list)  # checkpoint keys the model does not use
    mismatched: List[Tuple[str, Shape, Shape]] = field(default_factory=list)  # (key, checkpoint shape, model shape)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mismatched)


def compare(model_shapes: Dict[str, Shape], checkpoint_shapes: Dict[str, Shape]) -> LoadReport:
    report = LoadReport()
    for key, shape in model_shapes.items():
        if key not in checkpoint_shapes:
            report.missing.append(key)
        elif tuple(checkpoint_shapes[key]) != tuple(shape):
            report.mismatched.append((key, tuple(checkpoint_shapes[key]), tuple(shape)))
    report.unexpected = [key for key in checkpoint_shapes if key not in model_shapes]
    return report


def apply_policy(
    report: LoadReport,
    *,
    source: str,
    model_class: str,
    is_backbone: Callable[[str], bool],
    ignore_mismatched_sizes: bool = False,
) -> List[str]:
    """Raise for backbone problems; warn once about head weights. Returns the keys to initialise anew.

    A backbone tensor that is missing, left over or of another shape means the checkpoint is not
    this model (wrong architecture, or a config.json that does not match the weights: fewer layers
    or FFNs than the file holds would otherwise drop them silently): an error naming the file.
    Head tensors that are missing (loading a pre-training checkpoint into a classifier, say) are
    initialised anew and listed in one warning, as are another head's tensors the model does not
    use; a head of another shape (num_labels differs) is an error unless ``ignore_mismatched_sizes``.
    """
    backbone_unexpected = [k for k in report.unexpected if is_backbone(k)]
    if backbone_unexpected:
        shown = ", ".join(backbone_unexpected[:5]) + (
            f" and {len(backbone_unexpected) - 5} more" if len(backbone_unexpected) > 5 else "")
        raise ValueError(
            f"{source} does not match the config of {model_class}: the file holds {len(backbone_unexpected)} backbone "
            f"weights that the config does not build ({shown}). The config (num_hidden_layers, "
            "num_feedforward_networks, bottleneck and trigram options) does not match the weights."
        )
    backbone_missing = [k for k in report.missing if is_backbone(k)]
    backbone_mismatched = [m for m in report.mismatched if is_backbone(m[0])]
    head_mismatched = [m for m in report.mismatched if not is_backbone(m[0])]
    if backbone_missing:
        shown = ", ".join(backbone_missing[:5]) + (f" and {len(backbone_missing) - 5} more" if len(backbone_missing) > 5 else "")
        raise ValueError(
            f"{source} does not match {model_class}: {len(backbone_missing)} backbone weights are missing ({shown}). "
            "Is it a MobileBERT checkpoint, and does its config.json (layers, sizes, bottleneck and trigram options) "
            "match the weights?"
        )
    if backbone_mismatched:
        lines = "; ".join(f"{k}: checkpoint {c}, model {m}" for k, c, m in backbone_mismatched[:5])
        raise ValueError(f"{source} does not match the config of {model_class}: shape mismatch in {lines}")
    if head_mismatched and not ignore_mismatched_sizes:
        lines = "; ".join(f"{k}: checkpoint {c}, model {m}" for k, c, m in head_mismatched)
        raise ValueError(
            f"{source}: head weights of another shape ({lines}). Pass ignore_mismatched_sizes=True "
            "to initialise them anew (e.g. a different num_labels)."
        )
    reinit = list(report.missing) + [k for k, _, _ in head_mismatched]
    notes = []
    if reinit:
        notes.append(
            f"newly initialised (not in {source}), train before use: {', '.join(reinit)}"
        )
    if report.unexpected:
        notes.append(f"unused weights of {source} (another head's, which {model_class} does not have): "
                     f"{', '.join(report.unexpected)}")
    if notes:
        warnings.warn(f"{model_class}: " + "; ".join(notes), UserWarning, stacklevel=3)
    return reinit


# ---------------------------------------------------------------------------------------- from_pretrained's arguments
HUB_KEYWORDS = ("revision", "cache_dir", "token", "local_files_only", "force_download")


@dataclass
class PretrainedSource:
    """What from_pretrained's arguments resolve to, the same way in both frameworks."""

    source: str  # what the user passed: a directory, a weights file or a hub repo id
    weights_file: Optional[str]  # the source itself when it is a single weights file
    config: object  # the config the model is built from (the file's, with the keyword overrides)
    file_config: object  # the checkpoint's own config.json (None when config= was given and none is beside the weights)


def resolve_pretrained(config_class, source, config=None, overrides: Optional[dict] = None,
                       hub_kwargs: Optional[dict] = None, read_file_config: bool = False,
                       find_file: Optional[Callable] = None) -> PretrainedSource:
    """Resolve from_pretrained's source, config= and config keyword overrides (``num_labels=3``).

    ``read_file_config``: also read the checkpoint's own config when config= is given (a converter needs
    the file's shapes); ``find_file(source, name, required=False, **hub_kwargs)`` locates it (the hub's
    resolver). Unknown keywords are an error naming them; a weights file needs a config.json beside it
    or config=.
    """
    overrides, hub_kwargs = dict(overrides or {}), dict(hub_kwargs or {})
    known = set(config_class.__dataclass_fields__) | set(CARRIED) | {"torch_dtype"}
    unknown = [k for k in overrides if k not in known or k == "extra"]
    if unknown:
        raise ValueError(f"from_pretrained got unknown keyword(s) {unknown}: neither loading options nor config fields")
    source = os.fspath(source)
    weights_file = source if os.path.isfile(source) else None
    config_source = os.path.dirname(os.path.abspath(source)) if weights_file else source
    if weights_file and config is None and not os.path.isfile(os.path.join(config_source, CONFIG_NAME)):
        raise FileNotFoundError(f"{source} is a weights file without a {CONFIG_NAME} beside it; pass config=")
    if config is not None and not isinstance(config, config_class):
        raise ValueError(f"config must be a {config_class.__name__}, got {type(config).__name__}")
    file_config = None
    if config is None or (read_file_config and find_file is not None
                          and find_file(config_source, CONFIG_NAME, required=False, **hub_kwargs)):
        file_config = config_class.from_pretrained(config_source, **hub_kwargs)
    chosen = file_config if config is None else config
    if overrides:
        chosen = chosen.copy(**overrides)
    return PretrainedSource(source, weights_file, chosen, file_config)
