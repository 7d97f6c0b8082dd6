"""The quantization choices of an on-device export, named and explained once.

`mobilebert export --quantize`, its documentation and the benchmarks all use these names and
meanings. Framework-free.
"""

from __future__ import annotations

NONE, DYNAMIC_INT8, FLOAT16 = "none", "dynamic-int8", "float16"

# name -> one-line meaning
QUANTIZATIONS = {
    NONE: "float32 weights and activations; the export must reproduce the source model (relative difference <= 1e-4)",
    DYNAMIC_INT8: "the weights of the Linear/Dense layers stored as int8 (per output channel where the runtime "
                  "supports it), activations quantized dynamically at run time, everything else float32 "
                  "(LiteRT's converter also stores the larger embedding tables as int8)",
    FLOAT16: "weights stored as float16 (half the file); ONNX computes in float16, LiteRT in float32 on the CPU and "
             "float16 on GPU delegates. Released MobileBERT activations pass float16's 65504",
}


def check_quantization(name) -> str:
    """The choice as given, or a ValueError listing the choices."""
    if name not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {name!r}; choose one of: {', '.join(QUANTIZATIONS)}")
    return name


def describe() -> str:
    """'none: ...; dynamic-int8: ...; float16: ...' for help texts."""
    return "; ".join(f"{name}: {meaning}" for name, meaning in QUANTIZATIONS.items())
