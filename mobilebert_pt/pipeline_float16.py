"""dtype="float16-mixed": the linear layers' matrix products in float16, everything else in float32.

Why not plain float16: released MobileBERT activations reach 1e7-1e8 (its NoNorm layers do not
rescale the residual stream), beyond float16's largest value 65504, so a float16 model returns inf.
Why not torch.autocast(dtype=float16): it casts each linear layer's input and output to float16,
so a residual stream of 3e7 entering a bottleneck layer becomes inf before the product, and an
output of 3.5e6 overflows after it (measured on a tiny model with such activations planted:
tests/test_pipelines_float16.py).

What this does instead, for every F.linear call while the mode is active (weights stay float32,
the model object is not changed):
  * the input's channels whose largest magnitude in this call exceeds a bound T go through a
    float32 product (MobileBERT's large activations sit in a few channels);
  * the other channels go through a float16 product: T is chosen per weight so that
    T * max_row_sum|W| <= 32768, hence that product cannot overflow whatever the input;
  * the two partial products and the bias are summed in float32.
Residual adds, NoNorm / LayerNorm, softmax and the attention products run in float32 as usual.
Accuracy is float16's (relative 2^-11 on the float16 part); the float32 part is exact. Speed:
float16 products pay off on GPUs with float16 tensor cores; on a CPU without float16 units this is
slower than float32 (benchmarks/bench_fill_mask.py --dtype float16-mixed measures it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

MIXED = "float16-mixed"
FLOAT16_SAFE_SUM = 32768.0  # half of float16's largest value 65504: headroom for rounding


class Float16Matmuls(TorchFunctionMode):
    """Runs F.linear as described in the module docstring; float16 weight copies are cached per
    weight (and refreshed if the weight is changed in place)."""

    def __init__(self):
        super().__init__()
        self._cache = {}  # (id(weight), transposed) -> (weight, version, float16 copy (out, in), bound T)

    def half_weight(self, weight: torch.Tensor, transposed: bool = False):
        key = (id(weight), transposed)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is weight and hit[1] == weight._version:
            return hit[2], hit[3]
        w = weight.detach().t() if transposed else weight.detach()  # (out, in)
        w16 = w.to(torch.float16).contiguous()
        row_sum = float(w.abs().sum(dim=1).max()) if w.numel() else 0.0
        bound = min(65504.0, FLOAT16_SAFE_SUM / max(row_sum, 1e-30))
        if isinstance(weight, torch.nn.Parameter):  # transient tensors are not cached (their id is reused)
            self._cache[key] = (weight, weight._version, w16, bound)
        return w16, bound

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias=None, transposed: bool = False) -> torch.Tensor:
        """x @ weight.T + bias (x @ weight + bias with transposed=True, weight then (in, out))."""
        if x.numel() == 0:  # no rows, or no input channels (embedding_size == hidden_size: the head's empty dense)
            return F.linear(x, weight.t() if transposed else weight, bias)
        w16, bound = self.half_weight(weight, transposed)
        channels = x.detach().abs().reshape(-1, x.shape[-1]).amax(dim=0)  # (in,): largest |x| per channel
        large = channels > bound  # NaN compares False: it then flows through the float16 part, reported later
        if bool(large.any()):
            idx = large.nonzero().squeeze(1)
            small = x.masked_fill(large, 0.0)
            picked = weight.index_select(0, idx).t() if transposed else weight.index_select(1, idx)  # (out, k)
            out = F.linear(small.to(torch.float16), w16).float() + F.linear(x.index_select(-1, idx), picked)
        else:
            out = F.linear(x.to(torch.float16), w16).float()
        return out if bias is None else out + bias

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear and args and args[0].dtype == torch.float32:
            x, weight = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if weight.dtype == torch.float32 and weight.dim() == 2:
                base = weight._base
                if isinstance(base, torch.nn.Parameter) and weight.shape == base.shape[::-1] and weight.stride() == base.stride()[::-1]:
                    # A transposed parameter (the masked-LM head's dense.weight.t()): cached as that parameter.
                    return self.linear(x, base, bias, transposed=True)
                return self.linear(x, weight, bias)
        return func(*args, **kwargs)


def is_mixed(dtype) -> bool:
    return isinstance(dtype, str) and dtype.strip().lower() == MIXED
