"""The one dtype-name table and the one device parser that both frameworks read.

    dtype_name(value)            "fp16", torch.float16, tf.float16, "torch.bfloat16"... -> "float16" / "bfloat16" / "float32"
    parse_device(value, said)    None / -1 / "cpu" -> ("cpu", None); N / "cuda:N" / "gpu:N" / "/GPU:N" -> ("gpu", N)

Each framework maps the result to its own objects (torch.device, "/GPU:N", a Keras policy) and checks
that the GPU exists; the wording of what is allowed lives here once.
"""

from __future__ import annotations

from typing import Optional, Tuple

DTYPES = ("float32", "float16", "bfloat16")
# Every spelling users write for the three dtypes, lower case, without a "torch." / "tf." prefix.
DTYPE_ALIASES = {
    "float32": "float32", "float": "float32", "fp32": "float32",
    "float16": "float16", "half": "float16", "fp16": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
}
DEVICE_CHOICES = "None, -1 or 'cpu' for the CPU; N, 'cuda:N' or 'gpu:N' for GPU N"


def dtype_name(value) -> Optional[str]:
    """The canonical name of a dtype given as a string, a torch dtype or a tf.DType; None for anything else.

    Callers decide what None means for them (the default, or an error naming their argument)."""
    if value is None:
        return None
    name = value if isinstance(value, str) else getattr(value, "name", None) or str(value)
    name = name.strip().lower()
    for prefix in ("torch.", "tf.", "tensorflow."):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return DTYPE_ALIASES.get(name)


def parse_device(value, said: str) -> Tuple[str, Optional[int]]:
    """("cpu", None) or ("gpu", index). ``said`` names the argument in errors ("device_map='x'", "--device x").

    Accepts None, -1, "cpu", "cpu:0", "/CPU:0", a non-negative int, "cuda", "cuda:N", "gpu", "gpu:N",
    "/GPU:N", and objects whose str() is one of these (torch.device)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value == -1):
        return "cpu", None
    if isinstance(value, bool):
        raise ValueError(f"{said} is not a device; allowed: {DEVICE_CHOICES}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{said} is not a device; allowed: {DEVICE_CHOICES}")
        return "gpu", value
    name = str(value).strip().lower().lstrip("/")
    kind, _, index = name.partition(":")
    if kind == "cpu" and index in ("", "0"):
        return "cpu", None
    if kind in ("cuda", "gpu") and (index == "" or index.isdigit()):
        return "gpu", int(index or 0)
    raise ValueError(f"{said} is not a device; allowed: {DEVICE_CHOICES}")
