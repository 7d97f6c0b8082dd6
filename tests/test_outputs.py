import numpy as np
import pytest

from mobilebert_common import MaskedLMOutput, QuestionAnsweringModelOutput
from mobilebert_common import outputs


def test_none_fields_are_skipped_in_index_and_tuple():
    logits = np.arange(6.0).reshape(1, 2, 3)
    out = MaskedLMOutput(logits=logits)
    assert out[0] is logits and out["logits"] is logits and out.logits is logits
    assert out.keys() == ["logits"] and out.to_tuple() == (logits,) and len(out) == 1
    assert "loss" not in out and out.loss is None
    with pytest.raises(KeyError, match="'loss' is not set in this MaskedLMOutput"):
        out["loss"]


def test_loss_comes_first_when_given():
    out = QuestionAnsweringModelOutput(loss=1.5, start_logits=np.zeros(3), end_logits=np.ones(3), hidden_states=(1, 2))
    assert out[0] == 1.5
    loss, start, end, hidden = out.to_tuple()
    assert loss == 1.5 and end[0] == 1.0 and hidden == (1, 2)
    assert out[1:3][1] is out.end_logits
    assert dict(out.items())["start_logits"] is out.start_logits


def test_every_public_output_class_exists():
    for name in ["BaseModelOutputWithPooling", "MobileBertForPreTrainingOutput", "MaskedLMOutput",
                 "NextSentencePredictorOutput", "SequenceClassifierOutput", "MultipleChoiceModelOutput",
                 "TokenClassifierOutput", "QuestionAnsweringModelOutput"]:
        cls = getattr(outputs, name)
        assert issubclass(cls, outputs.ModelOutput)
        assert cls().to_tuple() == ()
