"""One pipeline object called from 4 threads at once gives what serial calls give, in both frameworks.

The threads start together (a barrier) and each makes several calls, so the forward passes overlap
unless the pipeline keeps them apart. What used to go wrong: a PyTorch model in train mode (the
pipeline runs it in eval mode for each call and restores train mode after) was switched back to
train mode by one call while another ran, which then ran with dropout; a Keras model object that had
never been called had no variables yet, and every call failed.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness.pipelines import adapter, config, have_own_tokenizer, make_tokenizer

pytestmark = pytest.mark.skipif(not have_own_tokenizer(), reason="needs mobilebert_common.tokenization_fast")

THREADS, ROUNDS, ROWS = 4, 6, 4
CONTEXT = "john lives in new york city . " * 6  # 42 tokens: several windows of the tiny model's 40
INPUTS = {
    "fill-mask": (
        "MobileBertForMaskedLM",
        ["the capital of [MASK] is paris .", "john lives in [MASK] york", "hello [MASK] world", "[MASK] is a [MASK] city ."],
        dict(top_k=3),
    ),
    "question-answering": (
        "MobileBertForQuestionAnswering",
        [{"question": q, "context": CONTEXT} for q in ("where does john live ?", "who lives in new york ?", "what city ?")],
        dict(top_k=2, doc_stride=8),
    ),
}


def run_threads(call, inputs):
    """call(input) from THREADS threads at once, ROUNDS calls each: [(input index, result)]."""
    start = threading.Barrier(THREADS)

    def work(thread):
        start.wait()
        picks = [(thread + k) % len(inputs) for k in range(ROUNDS)]
        return [(i, call(inputs[i])) for i in picks]

    with ThreadPoolExecutor(THREADS) as pool:
        return [pair for done in pool.map(work, range(THREADS)) for pair in done]


@pytest.mark.parametrize("task", sorted(INPUTS))
@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_four_threads_give_the_serial_results(framework, task, tmp_path):
    fw = adapter(framework)
    cls_name, inputs, params = INPUTS[task]
    if framework == "pt":
        model = fw.model(cls_name, config()).train()  # the caller's train mode, to be restored after each call
    else:
        fw.tf.random.set_seed(0)
        model = getattr(fw.lib, "TF" + cls_name)(config())  # never called: no variables yet
    pipe = fw.pipeline(task, model=model, tokenizer=make_tokenizer(tmp_path), batch_size=ROWS, **params)

    # Threads first: also the first calls of the pipeline, then serial calls on the same object.
    concurrent = run_threads(lambda x: pipe([x] * ROWS), inputs)  # ROWS rows per forward pass
    serial = [pipe([x] * ROWS) for x in inputs]
    assert len(concurrent) == THREADS * ROUNDS
    for i, result in concurrent:
        assert result == serial[i], f"input {i}: {result} != {serial[i]}"  # scores equal to the last bit
    if framework == "pt":
        assert model.training, "the caller's train mode was not restored"

