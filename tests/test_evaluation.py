"""evaluation: logits per clip, decoding and scoring, and the `lipnet-ko evaluate` report."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import lipnet_ko  # noqa: F401
from lipnet_ko.data import Example
from lipnet_ko.evaluation import decode_logits, evaluate, predict_logits, standard_decoders
from lipnet_ko.metrics import score_corpus
from lipnet_ko.tokenizer import JamoTokenizer


def _examples(lengths, texts):
    rng = np.random.default_rng(0)
    tok = JamoTokenizer()
    return [Example(None, tuple(tok.encode(t)), n, text=t, crops=rng.integers(0, 256, (n, 4, 6, 1), dtype=np.uint8))
            for n, t in zip(lengths, texts)]


def test_predict_logits_strips_padding_and_keeps_order():
    seen = []

    def fake(batch):
        crops, lengths = batch
        seen.append(crops.shape)
        # logits that encode each clip's own length, so a mix-up would show
        return np.repeat(lengths[:, None, None].astype(np.float32), crops.shape[1], axis=1) * np.ones((1, 1, 3), np.float32)

    examples = _examples([5, 9, 7], ["가", "나", "다"])
    out = predict_logits(fake, examples, batch_size=2)
    assert [len(o) for o in out] == [5, 9, 7]
    assert [float(o[0, 0]) for o in out] == [5.0, 9.0, 7.0]
    assert seen[0][1] == 7  # length-sorted batches: the two shortest together


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
    result = evaluate(None, examples, JamoTokenizer(), standard_decoders(beam_width=8), logits=logits)
    assert result.hypotheses["greedy"] == hyps and result.hypotheses["beam"] == hyps
    expected = score_corpus(texts, hyps)
    assert result.scores["beam"].cer == pytest.approx(expected.cer)
    figures = result.to_dict()["greedy"]
    assert figures["syllable_cer"] == pytest.approx(round(expected.cer, 5)) and figures["utterances"] == 2
    assert decode_logits(logits, JamoTokenizer(), standard_decoders()["greedy"]) == hyps


@pytest.mark.dlib
def test_evaluate_command_writes_report_with_figures_matching_its_rows(tmp_path):
    from runs import write_run

    from lipnet_ko.model import model_config
    from lipnet_ko.synth import SynthConfig, generate_corpus

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
    assert set(report["decoders"]) == {"greedy", "beam", "beam_lm"}
    for name, block in report["decoders"].items():
        rows = block["utterances"]
        assert len(rows) == 3
        assert block["corpus"]["cer"] == pytest.approx(score_corpus([r["reference"] for r in rows], [r["hypothesis"] for r in rows]).cer)
    assert (out / "report.md").read_text(encoding="utf-8").count("|") > 10
    assert (out / "jamo_confusions_beam_lm.png").stat().st_size > 1000
    assert (out / "viseme_confusions_beam_lm.png").exists()


def test_evaluate_command_without_data_or_run_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lipnet_ko", "evaluate", "--model", str(tmp_path / "none"), "--report", str(tmp_path / "r")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "error:" in result.stderr
