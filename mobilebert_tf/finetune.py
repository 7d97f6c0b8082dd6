"""Fine-tuning in Keras, on one device or many (a tf.distribute strategy).

    from mobilebert_tf import train
    result = train("text-classification", "google/mobilebert-uncased", "train.jsonl", "out",
                   eval_file="dev.jsonl", epochs=3, lr=5e-5, batch_size=16, bf16=True)

The loop, the data, the metrics and the checkpoints are framework-free and shared with PyTorch
(mobilebert_common/training); this file holds what only Keras does: the model under a strategy,
AdamW from tf_keras.optimizers with the linear schedule as a LearningRateSchedule and global-norm
clipping (global_clipnorm: the norm over all gradients, as torch's clip_grad_norm_; Keras'
clipnorm would clip each tensor on its own), the mixed_bfloat16 policy, the optimizer file.

Strategy: MirroredStrategy over the local devices (every GPU, else the CPU), or
MultiWorkerMirroredStrategy when TF_CONFIG is set; or pass your own (strategy=). Each replica reads
its shard (torch's DistributedSampler scheme: mobilebert_common.training.schedule.shard), the
gradients are summed across replicas by the optimizer. Weights that the config never reads are
frozen (their layers are not trainable) and left out of the optimizer.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf
import tf_keras as keras

from mobilebert_common.training.loop import TrainResult, run_training
from mobilebert_common.training.options import EVAL_OUTPUTS, HEAD_CLASSES, make_options
from mobilebert_common.training.schedule import linear_schedule, shard
from mobilebert_common.weight_files import PT_WEIGHTS_NAMES, TF_WEIGHTS_NAME
from mobilebert_common.weights import entries
from mobilebert_tf import modeling  # the task classes; not through the package, whose train() is this module's
from mobilebert_tf.pretrained import weights_by_name

OPTIMIZER_NAME = "optimizer.npz"
ADAM_EPSILON = 1e-8


def train(task: str, model: str, train_file: str, output_dir: str, eval_file: str = None, *, strategy=None,
          **options) -> TrainResult:
    """Fine-tune ``model`` (a directory or hub repo id) for ``task`` on ``train_file``; the result lands
    in ``output_dir`` (hub layout: config.json, tokenizer files, tf_model.h5), checkpoints in
    output_dir/checkpoint-<step>/, per-epoch metrics in output_dir/metrics.jsonl.

    options: as mobilebert_pt.train (mobilebert_common.training.options.TrainOptions); batch_size is
    per replica. strategy: None (MultiWorkerMirroredStrategy when TF_CONFIG is set, else
    MirroredStrategy over the local devices) or a tf.distribute.Strategy.
    Returns a TrainResult: output_dir, global_step, metrics (one dict per epoch), model.
    """
    opts = make_options(task, model, train_file, output_dir, eval_file, **options)
    return run_training(opts, KerasBackend(strategy))


def default_strategy() -> tf.distribute.Strategy:
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy()


def unused_weight_names(config, architecture: str) -> set:
    """The weights the checkpoint layout holds but this config's call never reads (no gradient)."""
    return {e.tf_name for e in entries(config, architecture) if e.unused}


def model_inputs(model, batch: dict) -> dict:
    """The model called as the pipelines call it: padded positions get zero word embeddings (the trigram
    embedding would mix the [PAD] row into the last real token)."""
    table = model.mobilebert.embeddings.word_embeddings  # (V, E)
    mask = tf.cast(batch["attention_mask"], table.dtype)[..., None]
    embeds = tf.gather(table, batch["input_ids"]) * mask  # (B, [C,] T, E)
    return {"inputs_embeds": embeds, **{k: v for k, v in batch.items() if k != "input_ids"}}


class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """learning_rate * linear_schedule(step): the factors of the shared schedule, one per step."""

    def __init__(self, learning_rate: float, warmup_steps: int, total_steps: int):
        self.learning_rate, self.warmup_steps, self.total_steps = learning_rate, warmup_steps, total_steps
        self.factors = tf.constant([linear_schedule(s, warmup_steps, total_steps) for s in range(total_steps + 1)],
                                   tf.float32)

    def __call__(self, step):
        return self.learning_rate * tf.gather(self.factors, tf.minimum(tf.cast(step, tf.int32), self.total_steps))

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


def _workers(strategy) -> tuple:
    """(this worker's index, number of workers): from the cluster of a multi-worker strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return 0, 1
    spec = resolver.cluster_spec().as_dict()
    roles = [r for r in ("chief", "worker") if r in spec]
    ranks = [(role, i) for role in roles for i in range(len(spec[role]))]
    return ranks.index((resolver.task_type, resolver.task_id)), len(ranks)


class KerasBackend:
    framework = "tf"

    def __init__(self, strategy=None):
        self.strategy = strategy if strategy is not None else default_strategy()
        if not isinstance(self.strategy, tf.distribute.Strategy):
            raise ValueError(f"strategy must be a tf.distribute.Strategy, got {type(self.strategy).__name__}")
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.process_index, self.process_count = _workers(self.strategy)
        local = self.num_replicas // self.process_count
        self.local_replicas = list(range(self.process_index * local, (self.process_index + 1) * local))
        self.is_main = self.process_index == 0
        self._train_fn = self._predict_fn = None

    # ---------------------------------------------------------------- model and optimiser
    def load(self, source: str, task: str, overrides: dict, options):
        architecture = HEAD_CLASSES[task]
        cls = getattr(modeling, "TF" + architecture)
        kwargs = dict(overrides)
        if os.path.isdir(source) and not os.path.isfile(os.path.join(source, TF_WEIGHTS_NAME)) and any(
                os.path.isfile(os.path.join(source, name)) for name in PT_WEIGHTS_NAMES):
            kwargs["from_pt"] = True  # a PyTorch checkpoint: converted on load
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if options.bf16 else "float32")
        try:
            keras.utils.set_random_seed(options.seed)  # a new head starts the same on every worker
            with self.strategy.scope():
                self.model = cls.from_pretrained(source, **kwargs)
        finally:
            keras.mixed_precision.set_global_policy(previous)
        self._freeze(unused_weight_names(self.model.config, architecture))
        config = self.model.config
        self.dropout = max(config.hidden_dropout_prob, config.attention_probs_dropout_prob, config.classifier_dropout_prob) > 0
        self.task = task
        return self.model

    def _freeze(self, unused: set) -> None:
        """Layers all of whose weights are unused become non-trainable."""
        names = {id(v): n for n, v in weights_by_name(self.model).items()}
        for layer in self.model.submodules:
            if isinstance(layer, keras.layers.Layer) and layer.weights and all(names.get(id(w)) in unused for w in layer.weights):
                layer.trainable = False
        left = sorted(names[id(v)] for v in self.model.trainable_variables if names.get(id(v)) in unused)
        if left:
            raise ValueError(f"weights {left} are never read by this config but could not be frozen: their layers "
                             "hold used weights too")

    def setup_optimizer(self, options, plan) -> None:
        with self.strategy.scope():
            self.schedule = LinearWarmupDecay(options.lr, plan.warmup_steps, plan.total_steps)
            self.optimizer = keras.optimizers.AdamW(learning_rate=self.schedule, weight_decay=options.weight_decay,
                                                    epsilon=ADAM_EPSILON, global_clipnorm=options.max_grad_norm or None)
            self.variables = self.model.trainable_variables
            self.optimizer.exclude_from_weight_decay(var_list=[v for v in self.variables if len(v.shape) < 2])
            self.optimizer.build(self.variables)  # the slots exist now, so a checkpoint can fill them

    def learning_rate(self) -> float:
        return float(self.schedule(self.optimizer.iterations))

    def reseed(self, seed: int) -> None:
        """Dropout draws come from stateful ops whose state lives in the traced step: a fresh trace after
        set_seed restarts them from the seed (only needed when the model has dropout)."""
        tf.random.set_seed(seed)
        if self.dropout:
            self._train_fn = None

    def replica_orders(self, n: int, epoch: int, seed: int):
        return [shard(n, self.num_replicas, r, seed, epoch) for r in self.local_replicas]

    # ---------------------------------------------------------------- steps
    def _make_train_fn(self):
        model, variables, optimizer = self.model, self.variables, self.optimizer

        def replica_step(batches, counts):
            """Each micro-batch's mean loss weighted by its share of all targets of the step on every
            replica; the optimizer sums the replicas' gradients: one process with the whole batch."""
            local = tf.reduce_sum(tf.stack(counts))  # a new tensor: all_reduce cannot place a bare input
            total = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local)
            grads, loss_sum = None, 0.0
            for batch, count in zip(batches, counts):
                with tf.GradientTape() as tape:
                    loss = tf.cast(model(**model_inputs(model, batch), training=True, return_dict=True).loss, tf.float32)
                    scaled = loss * count / tf.maximum(total, 1.0)
                step = tape.gradient(scaled, variables)
                missing = [v.name for v, g in zip(variables, step) if g is None]
                if missing:
                    raise ValueError(f"no gradient reaches {missing}: the config does not read them")
                step = [tf.convert_to_tensor(g) for g in step]  # embedding gradients come as IndexedSlices
                grads = step if grads is None else [a + b for a, b in zip(grads, step)]
                loss_sum += loss * count
            optimizer.apply_gradients(zip(grads, variables))
            return loss_sum

        @tf.function(reduce_retracing=True)
        def train_fn(batches, counts):
            return self.strategy.run(replica_step, args=(batches, counts))

        return train_fn

    def _per_replica(self, values: list):
        by_replica = dict(zip(self.local_replicas, values))
        return self.strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.nest.map_structure(tf.constant, by_replica[ctx.replica_id_in_sync_group]))

    def train_step(self, batches, counts):
        if self._train_fn is None:
            self._train_fn = self._make_train_fn()
        counts_f = [tuple(np.float32(c) for c in replica) for replica in counts]
        losses = self._train_fn(self._per_replica([tuple(b) for b in batches]), self._per_replica(counts_f))
        return sum(float(x) for x in self.strategy.experimental_local_results(losses)), sum(map(sum, counts))

    def predict(self, batch: dict) -> dict:
        if self._predict_fn is None:
            model, keys = self.model, EVAL_OUTPUTS[self.task]

            @tf.function(reduce_retracing=True)
            def predict_fn(batch):
                out = model(**model_inputs(model, batch), training=False, return_dict=True)
                return {"loss": out.loss, **{k: tf.cast(out[k], tf.float32) for k in keys}}

            self._predict_fn = predict_fn
        out = self._predict_fn({k: tf.constant(v) for k, v in batch.items()})
        return {k: float(v) if k == "loss" else v.numpy() for k, v in out.items()}

    # ---------------------------------------------------------------- processes
    def all_sum(self, array) -> np.ndarray:
        array = np.asarray(array, dtype=np.float64)
        if self.process_count == 1:
            return array
        first = self.local_replicas[0]  # one replica per worker carries the worker's value
        value = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(array if ctx.replica_id_in_sync_group == first else np.zeros_like(array)))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None).numpy()

    def barrier(self) -> None:
        self.all_sum(np.zeros(1))

    # ---------------------------------------------------------------- files
    def save_model(self, directory: str) -> None:
        self.model.save_pretrained(directory)

    def save_state(self, directory: str) -> None:
        """The optimizer's variables (iteration count, AdamW's moments), by name."""
        variables = self.optimizer.variables
        np.savez(os.path.join(directory, OPTIMIZER_NAME), names=json.dumps([v.name for v in variables]),
                 **{f"v{i}": v.numpy() for i, v in enumerate(variables)})

    def load_state(self, directory: str) -> None:
        path = os.path.join(directory, OPTIMIZER_NAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} is missing: the checkpoint cannot be resumed (was it written by PyTorch?)")
        with np.load(path, allow_pickle=False) as saved:
            names = json.loads(str(saved["names"]))
            variables = self.optimizer.variables
            if names != [v.name for v in variables]:
                raise ValueError(f"{path} holds the state of another optimizer or model ({len(names)} variables, "
                                 f"this one has {len(variables)})")
            for i, var in enumerate(variables):
                var.assign(saved[f"v{i}"])
