"""Fine-tuning, framework-free: what PyTorch and Keras training share (imports neither framework).

    options     TrainOptions (the run's settings, checked once), the task table, float16's refusal
    data        JSON lines / CSV -> checked examples, errors naming file and line; labels -> class ids
    features    examples -> model rows through the pipelines' encoders; padding; fill-mask's masking
    schedule    step counts, the linear warm-up / decay schedule, each replica's shard of the data
    metrics     accuracy, macro-F1, IOB2 entity F1, SQuAD exact match / F1, perplexity
    evaluation  model outputs -> sums that add up across processes -> the task's metrics
    loop        run_training(options, backend): the loop, checkpoints, resume, metrics.jsonl

The frameworks' halves: mobilebert_pt.finetune (DDP under torchrun) and mobilebert_tf.finetune
(tf.distribute); both are exposed as train(...) and as `mobilebert train`.
"""

from mobilebert_common.training.options import TASKS, TrainOptions

__all__ = ["TASKS", "TrainOptions"]
