"""MobileBertModel, the backbone every head holds as ``self.mobilebert``: embeddings -> encoder -> pooler.

The blocks are in modeling.py; the checks that run before any kernel in inputs.py.
"""

from __future__ import annotations

from typing import Optional

import torch

from mobilebert_common import checks
from mobilebert_common.config import MobileBertConfig
from mobilebert_common.outputs import BaseModelOutputWithPooling
from mobilebert_pt.inputs import tensors, validate_inputs
from mobilebert_pt.modeling import MobileBertEmbeddings, MobileBertEncoder, MobileBertPooler
from mobilebert_pt.pretrained import MobileBertPreTrainedModel


def check_finite(tensor: torch.Tensor) -> None:
    """float16 tops out at 65504 and released MobileBERT activations reach 1e7-1e8: never return inf/NaN silently."""
    if tensor.dtype == torch.float16 and not bool(torch.isfinite(tensor).all()):
        raise ValueError(checks.FLOAT16_OVERFLOW)



class MobileBertModel(MobileBertPreTrainedModel):
    """The backbone: embeddings -> encoder -> (optional) pooler. Saved without the "mobilebert." prefix."""

    def __init__(self, config: MobileBertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = MobileBertEmbeddings(config)
        self.encoder = MobileBertEncoder(config)
        self.pooler = MobileBertPooler(config) if add_pooling_layer else None
        self.post_init()

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
    ):
        config = self.config
        dtype, device = self.dtype, self.device
        # Lists / numpy arrays become tensors on the model's device (inputs.py); tensors pass as they are.
        x = tensors(device, dtype, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                    position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds)
        input_ids, attention_mask, token_type_ids = x["input_ids"], x["attention_mask"], x["token_type_ids"]
        position_ids, head_mask, inputs_embeds = x["position_ids"], x["head_mask"], x["inputs_embeds"]
        batch, seq = validate_inputs(config, input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds)
        if attention_mask is None:
            attention_mask = torch.ones((batch, seq), device=device)
        # 1 = attend, 0 = padding -> additive (B, 1, 1, T): 0 or the dtype's most negative value.
        additive_mask = (1.0 - attention_mask.to(device=device, dtype=dtype))[:, None, None, :] * torch.finfo(dtype).min
        if head_mask is not None:
            head_mask = head_mask.to(device=device, dtype=dtype)
            if head_mask.dim() == 1:
                head_mask = head_mask.expand(config.num_hidden_layers, -1)
            head_mask = head_mask[:, None, :, None, None]  # (L, 1, N, 1, 1): per layer, broadcast over B, T, T
        try:
            embeddings = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
            last, hidden_states, attentions = self.encoder(
                embeddings, additive_mask, head_mask, bool(output_attentions), bool(output_hidden_states)
            )
        except (RuntimeError, NotImplementedError) as err:
            if device.type == "cpu" and dtype in (torch.float16, torch.bfloat16) and "not implemented for" in str(err):
                raise ValueError(
                    f"this torch build cannot run MobileBERT in {dtype} on the CPU ({err}). "
                    "Load with torch_dtype=torch.float32 on the CPU, or use a GPU for float16/bfloat16."
                ) from err
            raise
        check_finite(last)
        pooled = self.pooler(last) if self.pooler is not None else None
        out = BaseModelOutputWithPooling(
            last_hidden_state=last, pooler_output=pooled, hidden_states=hidden_states, attentions=attentions
        )
        return out if return_dict is None or return_dict else out.to_tuple()
