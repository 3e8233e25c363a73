"""evaluation: logits per clip, decoding and scoring, and the `lipnet-ko evaluate` report."""

from __future__ import annotations

import json
from pathlib import Path
import re
import subprocess
import sys

import numpy as np
import pytest

import lipnet_ko  # noqa: F401
from lipnet_ko.data.batching import Example
from lipnet_ko.model.config import ModelConfig
from lipnet_ko.model.inference import Recognizer
from lipnet_ko.training.evaluation import decode_logits, evaluate, standard_decoders
from lipnet_ko.text.metrics import score_corpus
from lipnet_ko.text.tokenizer import JamoTokenizer
from lipnet_ko.video.extract import PreprocessConfig


def _examples(lengths, texts):
    rng = np.random.default_rng(0)
    tok = JamoTokenizer()
    return [Example(None, tuple(tok.encode(t)), n, text=t, crops=rng.integers(0, 256, (n, 4, 6, 1), dtype=np.uint8))
            for n, t in zip(lengths, texts)]


def _fake_recognizer(seen: list):
    """A Recognizer whose backend returns logits that encode each clip's own length, so a mix-up would show."""

    def backend(crops, lengths):
        seen.append(crops.shape)
        return np.repeat(lengths[:, None, None].astype(np.float32), crops.shape[1], axis=1) * np.ones((1, 1, 3), np.float32)

    config = ModelConfig(vocabulary_size=3, height=4, width=6, channels=1)
    return Recognizer(backend, config, JamoTokenizer(), PreprocessConfig(), Path("fake"), "keras")


def test_example_logits_strip_padding_keep_order_and_match_in_memory_clips():
    seen = []
    recognizer = _fake_recognizer(seen)
    examples = _examples([5, 9, 7], ["가", "나", "다"])
    out = recognizer.example_logits(examples, batch_size=2)
    assert [len(o) for o in out] == [5, 9, 7]
    assert [float(o[0, 0]) for o in out] == [5.0, 9.0, 7.0]
    assert [shape[1] for shape in seen] == [9, 5]  # length-sorted batches: the two longest together, then the last
    same = recognizer.logits([e.load() for e in examples], batch_size=2)
    assert all(np.array_equal(a, b) for a, b in zip(out, same))


def _peaked(text, frames_per_token=2):
    tok = JamoTokenizer()
    ids = tok.encode(text)
    logits = np.full((len(ids) * frames_per_token + 2, tok.vocab_size), -10.0, np.float32)
    logits[:, 0] = 0.0
    for k, token in enumerate(ids):
        logits[1 + k * frames_per_token, :] = -10.0
        logits[1 + k * frames_per_token, token] = 0.0
    return logits


def test_evaluate_scores_decoded_texts_like_the_metrics_module():
    texts = ["공을 위에 놓아", "책을 다시 밀어"]
    hyps = ["공을 위에 놓아", "책을 다시 말어"]
    examples = _examples([30, 30], texts)
    logits = [_peaked(h) for h in hyps]
    result = evaluate(_fake_recognizer([]), examples, standard_decoders(beam_width=8), logits=logits)
    assert result.hypotheses["greedy"] == hyps and result.hypotheses["beam"] == hyps
    expected = score_corpus(texts, hyps)
    assert result.scores["beam"].cer == pytest.approx(expected.cer)
    figures = result.to_dict()["greedy"]
    assert figures["syllable_cer"] == pytest.approx(round(expected.cer, 5)) and figures["utterances"] == 2
    assert decode_logits(logits, JamoTokenizer(), standard_decoders()["greedy"]) == hyps


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def _markdown_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """The table under each ``## heading`` of a Markdown report: one ``{column: cell}`` per row."""
    tables: dict[str, list[list[str]]] = {}
    heading = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:]
        elif line.startswith("|") and heading is not None:
            tables.setdefault(heading, []).append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return {name: [dict(zip(rows[0], row)) for row in rows[2:]] for name, rows in tables.items()}  # rows[1]: |---|


def _png_pixels(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG", path
        return np.asarray(image.convert("RGB"))


@pytest.mark.dlib
def test_evaluate_command_writes_report_with_figures_matching_its_rows(tmp_path):
    from runs import write_run

    from lipnet_ko.app.report import DELETION, INSERTION, jamo_confusions, label_groups, plot_confusions, viseme_confusions
    from lipnet_ko.model.config import model_config
    from lipnet_ko.synth.corpus import SynthConfig, generate_corpus

    corpus = tmp_path / "corpus"
    generate_corpus(corpus, SynthConfig(speakers=1, sentences=3, sentences_per_session=3, held_out_speakers=0, seed=2))
    run = tmp_path / "run"
    tok = JamoTokenizer()
    write_run(run, model_config("tiny", vocabulary_size=tok.vocab_size), tok)
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, "-m", "lipnet_ko", "evaluate", "--model", str(run), "--data", f"synthetic:{corpus}",
                             "--report", str(out), "--beam", "4", "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert list(report["decoders"]) == ["greedy", "beam", "beam_lm"] and report["num_utterances"] == 3
    references = [r["reference"] for r in report["decoders"]["greedy"]["utterances"]]
    for name, block in report["decoders"].items():
        rows = block["utterances"]
        assert [r["reference"] for r in rows] == references and all(references)
        hypotheses = [r["hypothesis"] for r in rows]
        assert block["corpus"]["cer"] == pytest.approx(score_corpus(references, hypotheses).cer)

    # report.md shows the figures of report.json: corpus table, then one row per clip and decoder
    markdown = (out / "report.md").read_text(encoding="utf-8")
    tables = _markdown_tables(markdown)
    assert [row["decoder"] for row in tables["Corpus"]] == list(report["decoders"])
    for row in tables["Corpus"]:
        figures = report["decoders"][row["decoder"]]["corpus"]
        assert [row["CER"], row["jamo CER"], row["WER"], row["sWER"]] == [
            _percent(figures[k]) for k in ("cer", "jamo_cer", "wer", "swer")
        ]
        assert row["BLEU"] == f"{figures['bleu']:.2f}"
    expected = [
        (r["clip_id"], r["reference"], name, r["hypothesis"], _percent(r["cer"]), _percent(r["wer"]))
        for k in range(3)
        for name, block in report["decoders"].items()
        for r in [block["utterances"][k]]
    ]
    columns = ("clip", "reference", "decoder", "hypothesis", "CER", "WER")
    assert [tuple(row[c] for c in columns) for row in tables["Utterances"]] == expected
    assert "- **utterances**: 3" in markdown.splitlines()
    for stem in ("jamo_confusions_beam_lm", "viseme_confusions_beam_lm"):
        assert f"![{stem}]({stem}.png)" in markdown

    # the heatmaps draw the confusions of the last decoder's rows, and those agree with its jamo CER
    rows = report["decoders"]["beam_lm"]["utterances"]
    labels, matrix = jamo_confusions([(r["reference"], r["hypothesis"]) for r in rows], tok)
    insertions, deletions = labels.index(INSERTION), labels.index(DELETION)
    assert matrix[deletions].sum() == 0 and matrix[:, insertions].sum() == 0
    reference_jamo = matrix.sum() - matrix[insertions].sum()
    edits = matrix.sum() - np.trace(matrix)
    assert edits > 0 and edits / reference_jamo == pytest.approx(report["decoders"]["beam_lm"]["corpus"]["jamo_cer"])
    class_labels, class_matrix = viseme_confusions(labels, matrix)
    assert class_matrix.sum() == matrix.sum() and np.trace(class_matrix) >= np.trace(matrix)
    sizes = {}
    for stem, (names, counts) in {"jamo_confusions_beam_lm": (labels, matrix),
                                  "viseme_confusions_beam_lm": (class_labels, class_matrix)}.items():
        drawn = _png_pixels(out / f"{stem}.png")
        height, width, _ = drawn.shape
        assert 500 <= height < width <= 4000, drawn.shape  # a square heatmap with the colour bar to its right
        assert len(np.unique(drawn.reshape(-1, 3), axis=0)) > 50  # not blank: cells, tick labels, colour bar
        groups = label_groups(names)
        redrawn = _png_pixels(plot_confusions(names, counts, tmp_path / f"{stem}.png", groups=groups, title=stem))
        assert np.array_equal(drawn, redrawn), f"{stem}.png is not the confusion matrix of the reported rows"
        empty = _png_pixels(plot_confusions(names, np.zeros_like(counts), tmp_path / "empty.png", groups=groups, title=stem))
        assert not np.array_equal(drawn, empty), f"{stem}.png does not show its counts"
        sizes[stem] = drawn.shape
    assert sizes["jamo_confusions_beam_lm"] > sizes["viseme_confusions_beam_lm"]  # 69 jamo labels vs a few classes


def test_evaluate_command_without_data_or_run_is_a_clear_error(tmp_path):
    from lipnet_ko.app.evaluate import examples_for

    missing = tmp_path / "none"
    command = [sys.executable, "-m", "lipnet_ko", "evaluate", "--model", str(missing), "--report", str(tmp_path / "r")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2
    assert f"error: {missing} does not exist" in result.stderr and "python train.py" in result.stderr
    assert not (tmp_path / "r").exists()
    # a model without a training run beside it has no test splits of its own: --data must name a corpus
    with pytest.raises(ValueError, match="--data SPEC is needed"):
        examples_for(_fake_recognizer([]), None, None)
