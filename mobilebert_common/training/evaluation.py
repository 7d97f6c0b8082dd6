"""Evaluation: model outputs on the eval features -> sums (added up across processes) -> the task's metric.

    ev = Evaluator(task, encoded, id2label)
    ev.add(features, batch, outputs)   # per batch; outputs: {"loss": float, "logits": array, ...} as numpy
    sums = all_sum(ev.sums())          # every process's sums added
    ev.scores(sums) -> {"eval_loss": ..., "eval_accuracy": ..., ...}

Metrics: accuracy and macro-F1 (text-classification, multiple-choice), entity precision / recall / F1
on IOB2 spans plus token accuracy (token-classification), SQuAD exact match and F1 with the
question-answering pipeline's span decoding (question-answering), perplexity (fill-mask).
"""

from __future__ import annotations


import numpy as np

from mobilebert_common.labels import IGNORE_INDEX
from mobilebert_common.pipelines.question_answering import QuestionAnswering
from mobilebert_common.training import metrics
from mobilebert_common.training.features import Encoded, target_count


class Evaluator:
    def __init__(self, task: str, encoded: Encoded, id2label: dict = None):
        self.task, self.encoded = task, encoded
        self.id2label = id2label or {}
        self.loss = np.zeros(2)  # [sum of loss * targets, targets]
        if task == "text-classification":
            self.counts = np.zeros((len(self.id2label),) * 2)
        elif task == "multiple-choice":
            n = len(encoded.features[0]["input_ids"])
            self.counts = np.zeros((n, n))
        elif task == "token-classification":
            self.counts = np.zeros(5)  # entities: true positives, predicted, gold; tokens: right, labelled
        elif task == "question-answering":
            self.counts = np.zeros(3)  # exact-match sum, F1 sum, questions
            self.outputs = {}  # example index -> [(row position, {"start_logits", "end_logits"})]
        else:
            self.counts = np.zeros(0)

    def add(self, features, batch, outputs) -> None:
        count = target_count(self.task, batch)
        self.loss += (float(outputs["loss"]) * count, count)
        if self.task in ("text-classification", "multiple-choice"):
            pred = np.asarray(outputs["logits"]).argmax(-1)
            self.counts += metrics.confusion(batch["labels"], pred, len(self.counts))
        elif self.task == "token-classification":
            self._add_tags(batch["labels"], np.asarray(outputs["logits"]).argmax(-1))
        elif self.task == "question-answering":
            for i, feature in enumerate(features):
                row = {k: np.asarray(outputs[k][i]) for k in ("start_logits", "end_logits")}
                self.outputs.setdefault(feature["example"], []).append(row)

    def _add_tags(self, labels, pred) -> None:
        """Word tags at the labelled positions (each word's first piece), per sentence."""
        names = self.id2label
        for gold_row, pred_row in zip(labels, pred):
            kept = gold_row != IGNORE_INDEX
            gold_tags = [names[int(t)] for t in gold_row[kept]]
            pred_tags = [names[int(t)] for t in pred_row[kept]]
            self.counts[:3] += metrics.entity_counts([gold_tags], [pred_tags])
            self.counts[3:] += (int((gold_row[kept] == pred_row[kept]).sum()), int(kept.sum()))

    def sums(self) -> np.ndarray:
        """This process's sums, flat (the loss first)."""
        if self.task == "question-answering":
            self._decode_answers()
        return np.concatenate([self.loss, self.counts.ravel()])

    def _decode_answers(self) -> None:
        """The pipeline's answer for each question seen, scored against every gold answer."""
        task = QuestionAnswering()
        examples = self.encoded.examples
        no_answer = any(not ex.data["answers"]["text"] for ex in examples)
        params = {**task.defaults, "handle_impossible_answer": no_answer}
        self.counts[:] = 0
        for index, outputs in self.outputs.items():
            item = examples[index].data
            rows = self.encoded.rows[index]
            answer = task.postprocess(None, item, rows, outputs, params)["answer"]
            golds = item["answers"]["text"] or [""]
            self.counts += (metrics.squad_exact(answer, golds), metrics.squad_f1(answer, golds), 1)

    def scores(self, sums: np.ndarray) -> dict:
        """The metrics from the sums of every process."""
        loss_sum, count = sums[:2]
        counts = sums[2:].reshape(self.counts.shape)
        out = {"eval_loss": float(loss_sum / count) if count else float("nan")}
        if self.task in ("text-classification", "multiple-choice"):
            out.update({f"eval_{k}": v for k, v in metrics.classification_scores(counts).items()})
        elif self.task == "token-classification":
            out.update({f"eval_{k}": v for k, v in metrics.entity_scores(*counts[:3]).items()})
            out["eval_accuracy"] = float(counts[3] / counts[4]) if counts[4] else 0.0
        elif self.task == "question-answering":
            n = counts[2]
            out.update(eval_exact_match=float(100 * counts[0] / n) if n else 0.0,
                       eval_f1=float(100 * counts[1] / n) if n else 0.0)
        else:
            out["eval_perplexity"] = metrics.perplexity(loss_sum, count)
        return out


