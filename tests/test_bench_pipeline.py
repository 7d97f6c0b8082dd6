"""benchmarks/bench_pipeline.py: its sentences, its agreement check, its errors, and one tiny run end to end.

No timing is asserted (the machine is shared): only that each pipeline ran and the check passed.
"""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_pipeline as bench


def answers(ids_and_scores):
    """[[(token, score), ...] per sentence] -> a fill-mask pipeline's answers."""
    return [[{"token": t, "score": s, "token_str": str(t), "sequence": ""} for t, s in sentence]
            for sentence in ids_and_scores]


THEIRS = [[(7, 4e-4), (3, 3e-4), (9, 2e-4), (1, 1.5e-4), (2, 1e-4)],
          [(5, 2e-4), (6, 1e-4), (8, 9e-5), (4, 8e-5), (0, 7e-5)]]


def test_sentences_are_seeded_varied_and_have_one_mask_each(vocab_path):
    words = bench.read_words(vocab_path, 30522)
    assert "the" in words and "[MASK]" not in words and not any(w.startswith("##") or not w.isalpha() for w in words)
    sentences = bench.make_sentences(words, 64, seed=3)
    assert sentences == bench.make_sentences(words, 64, seed=3)
    assert sentences != bench.make_sentences(words, 64, seed=4)
    vocabulary = set(words)
    lengths = []
    for sentence in sentences:
        tokens = sentence.split()
        assert tokens.count("[MASK]") == 1 and tokens[-1] == "."
        assert all(t.lower() in vocabulary for t in tokens[:-1] if t != "[MASK]")
        lengths.append(len(tokens) - 1)
    assert min(lengths) >= bench.WORDS[0] and max(lengths) <= bench.WORDS[1]
    assert len(set(lengths)) > 20  # varied lengths: padding within a batch is part of what is timed


def test_compare_passes_equal_answers_and_counts_ties():
    assert bench.compare(answers(THEIRS), answers(THEIRS)) == dict(differ=0, max_score_diff=0.0, agree=True)
    tied = [list(s) for s in THEIRS]
    tied[1][2:4] = [(4, 9e-5), (8, 9e-5 * (1 + 1e-7))]  # two tokens tied at ranks 3 and 4: the order may flip
    theirs = [list(s) for s in THEIRS]
    theirs[1][2:4] = [(8, 9e-5), (4, 9e-5)]
    check = bench.compare(answers(tied), answers(theirs))
    assert check["differ"] == 1 and check["agree"] and check["max_score_diff"] == pytest.approx(9e-12 / 2e-4)


def test_compare_fails_other_tokens_other_scores_and_nan():
    other_tokens = [list(s) for s in THEIRS]
    other_tokens[0][0] = (11, 3.5e-4)  # a different top-1 whose score is 12.5% of the top score off
    check = bench.compare(answers(other_tokens), answers(THEIRS))
    assert check == dict(differ=1, max_score_diff=pytest.approx(0.125), agree=False)
    # Near-uniform scores (random weights, about 1e-4): an absolute difference of 2e-6 is small, yet 1% of the top.
    shifted = [[(t, s + 2e-6) for t, s in sentence] for sentence in THEIRS]
    check = bench.compare(answers(shifted), answers(THEIRS))
    assert check["differ"] == 0 and not check["agree"] and check["max_score_diff"] == pytest.approx(0.01)
    nan = [list(s) for s in THEIRS]
    nan[1][4] = (0, float("nan"))
    assert bench.compare(answers(nan), answers(THEIRS))["agree"] is False
    with pytest.raises(ValueError, match="different numbers of answers"):
        bench.compare(answers([THEIRS[0][:4], THEIRS[1]]), answers(THEIRS))


def fake_pipeline(table):
    """A callable answering like a fill-mask pipeline from `table` (THEIRS-like, one entry per sentence), and like
    transformers' for a list of one sentence: that sentence's answers, not a list of them."""
    def fill(sentences, top_k):
        assert top_k == bench.TOP_K
        out = answers(table[:len(sentences)])
        return out[0] if len(sentences) == 1 else out

    return fill


@pytest.mark.parametrize("count", [1, 2])
def test_run_checks_the_warm_up_answers_then_times_rounds(count):
    other = [list(s) for s in THEIRS]
    other[count - 1][0] = (11, 3.5e-4)
    pipelines = {"pt": fake_pipeline(THEIRS), "tf": fake_pipeline(other), "transformers": fake_pipeline(THEIRS)}
    lines = []
    result = bench.run(pipelines, ["a [MASK] .", "b [MASK] ."][:count], runs=3, report=lines.append)
    assert result["agreement"]["pt"] == dict(differ=0, max_score_diff=0.0, agree=True)
    assert result["agreement"]["tf"]["differ"] == 1 and result["agreement"]["tf"]["agree"] is False
    assert [len(result["sentences_per_s"][name]) for name in bench.PIPELINES] == [3, 3, 3]
    assert all(r > 0 for rates in result["sentences_per_s"].values() for r in rates)
    assert set(result["first_s"]) == set(bench.PIPELINES)
    assert "(ok," in lines[0] and "DIFFER" in lines[1] and [line.split(":")[0] for line in lines[2:]] == [
        "round 1", "round 2", "round 3"]


def test_missing_vocabulary_is_a_clear_error_naming_the_file(tmp_path, capsys):
    absent, results = tmp_path / "absent-vocab.txt", tmp_path / "out.json"
    assert bench.main(["--preset", "tiny", "--vocab", str(absent), "--json", str(results)]) == 1
    err = capsys.readouterr().err
    assert str(absent) in err and "No such file" in err and "--vocab PATH" in err
    assert not results.exists()


@pytest.mark.parametrize("content, problem", [("[PAD]\nthe\nof\n", "has 3 lines; the model's vocab_size is 30522"),
                                              (b"the\n\xff\xfe\n", "is not UTF-8 text"),
                                              ("1\n" * 30522, "has no whole words")])
def test_unusable_vocabulary_is_a_clear_error_naming_the_file(tmp_path, capsys, content, problem):
    vocab = tmp_path / "vocab.txt"
    vocab.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert bench.main(["--preset", "tiny", "--vocab", str(vocab), "--json", str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err
    assert f"the vocabulary {vocab} {problem}" in err and "--vocab PATH" in err
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("option, value", [("--runs", "0"), ("--sentences", "0"), ("--batch-size", "0"),
                                           ("--layers", "0"), ("--threads", "-1")])
def test_bad_counts_are_refused(option, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.parse_args([option, value])
    assert exit_.value.code == 2
    assert f"{option} must be at least" in capsys.readouterr().err


def test_tiny_run_agrees_and_times_every_pipeline(vocab_path, tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("tf_keras")
    pytest.importorskip("transformers")
    results = tmp_path / "results" / "pipeline.json"
    argv = ["--preset", "tiny", "--sentences", "5", "--batch-size", "2", "--runs", "2", "--vocab", vocab_path,
            "--json", str(results)]
    assert bench.main(argv) == 0
    data = json.loads(results.read_text())
    assert data["config"]["preset"] == "tiny" and data["config"]["num_hidden_layers"] == 4
    assert data["inputs"]["sentences"] == 5 and data["inputs"]["batch_size"] == 2
    assert data["machine"]["cpus"] >= 1 and data["machine"]["versions"]["transformers"]
    for name in ("pt", "tf"):
        check = data["agreement"][name]
        assert check["agree"] is True and check["differ"] == 0, check
        assert 0 <= check["max_score_diff"] <= bench.SCORE_TOLERANCE
        assert data["ratio_vs_transformers"][name] > 0
    for name in bench.PIPELINES:
        rates = data["sentences_per_s"][name]
        assert len(rates) == 2 and all(r > 0 for r in rates)
        assert data["median_sentences_per_s"][name] == pytest.approx(sorted(rates)[0] / 2 + sorted(rates)[1] / 2)
        assert data["first_s"][name] > 0
    out = capsys.readouterr().out
    assert "round 2:" in out and "ours / transformers" in out and str(results) in out
