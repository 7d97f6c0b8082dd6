"""Sentence-level tasks: fill-mask, text-classification, next-sentence-prediction, feature-extraction."""

from __future__ import annotations

import warnings

import numpy as np

from mobilebert_common.pipelines.encode import build_feature, encode_text, truncate
from mobilebert_common.pipelines.task import Task, TextOrPairTask, positive_int, sigmoid, softmax, top_k_indices


def encode_text_or_pair(pipe, text, pair, truncation: bool):
    a = encode_text(pipe.tokenizer, text, "text")
    b = None if pair is None else encode_text(pipe.tokenizer, pair, "text_pair")
    a, b = truncate(a, b, pipe.max_length, truncation)
    return build_feature(pipe.tokenizer, a, b)


def _vocab(tokenizer) -> dict:
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else getattr(tokenizer, "vocab", None)
    if vocab is None:
        raise ValueError("this tokenizer exposes no vocabulary (get_vocab()); targets cannot be resolved")
    return vocab


class FillMask(Task):
    name = "fill-mask"
    head = "masked_lm"
    defaults = {"top_k": 5, "targets": None, "truncation": True}

    def check_param(self, pipe, name, value):
        if name == "top_k":
            return positive_int("top_k", value)
        if name == "targets":
            return None if value is None else self.target_ids(pipe.tokenizer, value)
        return super().check_param(pipe, name, value)

    @staticmethod
    def target_ids(tokenizer, targets) -> np.ndarray:
        """Vocabulary ids of the target words; a word outside the vocabulary stands for its first word piece."""
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise ValueError(f"targets must be a string or a list of strings, got {targets!r:.80}")
        vocab = _vocab(tokenizer)
        ids = []
        for target in targets:
            if target in vocab:
                ids.append(vocab[target])
                continue
            pieces = tokenizer.tokenize(target)
            if not pieces:
                warnings.warn(f"target {target!r} gives no token; it is ignored", UserWarning, stacklevel=6)
                continue
            warnings.warn(
                f"target {target!r} is not in the vocabulary; using its first word piece {pieces[0]!r} instead",
                UserWarning,
                stacklevel=6,
            )
            ids.append(vocab[pieces[0]] if pieces[0] in vocab else tokenizer.convert_tokens_to_ids(pieces[0]))
        if not ids:
            raise ValueError("targets must hold at least one word that gives a token")
        return np.unique(np.asarray(ids, dtype=np.int64))

    def preprocess(self, pipe, text, params):
        tok = pipe.tokenizer
        enc = encode_text(tok, text)
        wanted = enc.ids.count(tok.mask_token_id)
        if wanted == 0:
            raise ValueError(
                f"no {tok.mask_token} token in the input {text!r:.80}; fill-mask predicts the word at each {tok.mask_token}"
            )
        enc, _ = truncate(enc, None, pipe.max_length, params["truncation"])
        kept = enc.ids.count(tok.mask_token_id)
        if kept < wanted:
            raise ValueError(
                f"{wanted - kept} of the {wanted} {tok.mask_token} tokens in the input lie past this model's maximum of "
                f"{pipe.max_length} tokens and were cut by truncation; shorten the text around the {tok.mask_token}"
            )
        return [build_feature(tok, enc)]

    def postprocess(self, pipe, text, rows, outputs, params):
        tok = pipe.tokenizer
        ids = rows[0].input_ids
        positions = [i for i, t in enumerate(ids) if t == tok.mask_token_id]
        probs = softmax(outputs[0]["masked_logits"])  # (masks, V): softmax over the whole vocabulary
        targets = params["targets"]
        # "sequence" drops the special tokens but keeps the OTHER [MASK]s of the input: with several
        # masks, each result shows its own word filled in and the rest still masked, as transformers
        # does (which, with several masks, also keeps [CLS]/[SEP]; we leave them out in every case).
        hidden = set(getattr(tok, "all_special_ids", ())) - {tok.mask_token_id}
        per_mask = []
        for m, pos in enumerate(positions):
            # (V,) scores of the whole vocabulary, or of the targets only (candidates[j] is the id of scores[j])
            candidates = np.arange(probs.shape[-1]) if targets is None else targets
            scores = probs[m] if targets is None else probs[m, candidates]
            order = top_k_indices(scores, min(params["top_k"], len(candidates)))
            results = []
            for j in order:
                token = int(candidates[j])
                filled = list(ids)
                filled[pos] = token
                results.append(
                    {
                        "score": float(scores[j]),
                        "token": token,
                        "token_str": tok.decode([token]),
                        "sequence": tok.decode([t for t in filled if t not in hidden]),
                    }
                )
            per_mask.append(results)
        # One [MASK]: a list of candidates; several: a list per [MASK], in order.
        return per_mask[0] if len(per_mask) == 1 else per_mask


FUNCTIONS = ("softmax", "sigmoid", "none")
_LEGACY = ""  # top_k not given: one {"label", "score"} per input, as MobileBERT users expect


class TextClassification(TextOrPairTask):
    name = "text-classification"
    head = "sequence_classification"
    defaults = {"top_k": _LEGACY, "function_to_apply": None, "truncation": True}

    def check_param(self, pipe, name, value):
        if name == "top_k":
            return value if value is None or value == _LEGACY else positive_int("top_k", value)
        if name == "function_to_apply":
            if value is None:
                return None
            name_ = str(getattr(value, "value", value)).lower()
            if name_ not in FUNCTIONS:
                raise ValueError(f"function_to_apply must be one of {', '.join(FUNCTIONS)}; got {value!r}")
            return name_
        return super().check_param(pipe, name, value)

    @staticmethod
    def default_function(config) -> str:
        """Transformers' rule: regression -> none; multi-label or one label -> sigmoid; else softmax."""
        if config.problem_type == "regression":
            return "none"
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return "sigmoid"
        return "softmax"

    def preprocess(self, pipe, item, params):
        text, pair = self.split(item)
        return [encode_text_or_pair(pipe, text, pair, params["truncation"])]

    def postprocess(self, pipe, item, rows, outputs, params):
        logits = outputs[0]["logits"]  # (num_labels,)
        function = params["function_to_apply"] or self.default_function(pipe.config)
        scores = {"softmax": softmax, "sigmoid": sigmoid, "none": lambda x: np.asarray(x, np.float64)}[function](logits)
        id2label = pipe.config.id2label
        ranked = [{"label": id2label[int(i)], "score": float(scores[i])} for i in np.argsort(-scores, kind="stable")]
        top_k = params["top_k"]
        if top_k == _LEGACY:
            return ranked[0]
        return ranked if top_k is None else ranked[:top_k]

    def single(self, result, item, params):
        # As in transformers: one string without top_k gives [{"label", "score"}].
        return [result] if isinstance(item, str) and params["top_k"] == _LEGACY else result


class NextSentencePrediction(TextOrPairTask):
    name = "next-sentence-prediction"
    head = "next_sentence"
    needs_pair = True
    defaults = {"truncation": True}

    def preprocess(self, pipe, item, params):
        text, pair = self.split(item)
        return [encode_text_or_pair(pipe, text, pair, params["truncation"])]

    def postprocess(self, pipe, item, rows, outputs, params):
        probs = softmax(outputs[0]["logits"])  # index 0: text_pair follows text
        return {"is_next": bool(probs[0] >= probs[1]), "score": float(probs[0])}


class FeatureExtraction(TextOrPairTask):
    name = "feature-extraction"
    head = "features"
    defaults = {"return_tensors": False, "truncation": True}

    def check_param(self, pipe, name, value):
        if name == "return_tensors" and not isinstance(value, bool):
            raise ValueError(f"return_tensors must be True or False, got {value!r}")
        return super().check_param(pipe, name, value)

    def preprocess(self, pipe, item, params):
        text, pair = self.split(item)
        return [encode_text_or_pair(pipe, text, pair, params["truncation"])]

    def postprocess(self, pipe, item, rows, outputs, params):
        hidden = outputs[0]["last_hidden_state"][: outputs[0]["length"]][None]  # (1, T, H): padding cut off
        return pipe._to_tensor(hidden) if params["return_tensors"] else hidden.tolist()


def mask_grid(positions: np.ndarray, batch_size: int):
    """Positions (N, 2) of (row, column), row-major, as the model's mask_positions (B, P), P the most
    masks in a row; a shorter row's spare slots point at column 0 (computed, then dropped).
    Returns (grid (B, P), slots (N,)): mask i is at grid[positions[i, 0], slots[i]]."""
    rows = positions[:, 0]
    counts = np.bincount(rows, minlength=batch_size)  # (B,) masks per row
    first = np.cumsum(counts) - counts  # (B,) index of each row's first mask in positions
    slots = np.arange(len(rows)) - first[rows]  # (N,) place of each mask within its row
    grid = np.zeros((batch_size, int(counts.max(initial=0))), dtype=np.int64)
    grid[rows, slots] = positions[:, 1]
    return grid, slots
