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


def test_outputs_are_mappings_that_tensorflow_can_rebuild():
    """A MutableMapping over the set fields (what TF's nest and SavedModel encoding understand), with a
    constructor that also takes (name, value) pairs, as dict does: TF rebuilds mappings that way."""
    from collections.abc import Mapping, MutableMapping

    logits = np.ones((1, 3))
    out = outputs.SequenceClassifierOutput(loss=0.5, logits=logits)
    assert isinstance(out, MutableMapping) and isinstance(out, Mapping)
    assert dict(out) == {"loss": 0.5, "logits": logits}
    for rebuilt in (outputs.SequenceClassifierOutput([("logits", logits), ("loss", 0.5)]),
                    outputs.SequenceClassifierOutput((k, v) for k, v in out.items()),
                    outputs.SequenceClassifierOutput({"loss": 0.5, "logits": logits}),
                    outputs.SequenceClassifierOutput(**dict(out))):
        assert rebuilt.loss == 0.5 and rebuilt.logits is logits and rebuilt.keys() == ["loss", "logits"]
    # One positional value that is not pairs is the first field, as before.
    assert outputs.SequenceClassifierOutput(0.25).loss == 0.25
    empty = outputs.SequenceClassifierOutput()
    empty["logits"] = logits  # how TF's nest fills a rebuilt mutable mapping
    assert empty[0] is logits and empty.to_tuple() == (logits,)
    del empty["logits"]
    assert empty.keys() == [] and empty.logits is None
    with pytest.raises(KeyError, match="has no field 'logitz'"):
        empty["logitz"] = logits
    with pytest.raises(KeyError):
        del empty["loss"]


def test_tensorflow_nest_and_tf_function_keep_the_output_class():
    tf = pytest.importorskip("tensorflow")
    out = outputs.QuestionAnsweringModelOutput(start_logits=tf.ones(2), end_logits=tf.zeros(2), hidden_states=(tf.ones(1),))
    doubled = tf.nest.map_structure(lambda t: t * 2, out)
    assert type(doubled) is outputs.QuestionAnsweringModelOutput and doubled.keys() == out.keys()
    np.testing.assert_array_equal(doubled.start_logits.numpy(), [2.0, 2.0])
    traced = tf.function(lambda x: outputs.MaskedLMOutput(loss=tf.reduce_sum(x), logits=x * 3))(tf.ones(2))
    assert type(traced) is outputs.MaskedLMOutput and traced.keys() == ["loss", "logits"]
    np.testing.assert_array_equal(traced.logits.numpy(), [3.0, 3.0])
    assert float(traced[0]) == 2.0
