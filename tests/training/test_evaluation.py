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
from lipnet_ko.decoding.lm import DEFAULT_LM_PATHS


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
    generate_corpus(corpus, SynthConfig(speakers=1, sentences=3, val_sentences=0, unseen_sentences=0, held_out_speakers=0,
                                        sentences_per_session=3, seed=2, output="video"))
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
        assert [row["CER"], row["jamo CER"], row["viseme CER"], row["WER"], row["sWER"]] == [
            _percent(figures[k]) for k in ("cer", "jamo_cer", "viseme_cer", "wer", "swer")
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


# ---------------------------------------------------------------------------------------------------
# `lipnet-ko evaluate` on a corpus whose label files carry mouth boxes (AIHub layout), so that cropping
# needs no face detector: flat grey videos, cropped where the labels say.

SHIPPED_LM = DEFAULT_LM_PATHS["jamo"]
CLIP_FRAMES = 24


def _aihub_label(stem: str, text: str, fps: int = 25, boxes: int = CLIP_FRAMES) -> list[dict]:
    return [{"Video_info": {"video_Name": f"{stem}.mp4", "FPS": fps, "Resolution": "640*360"},
             "Sentence_info": [{"ID": 1, "sentence_text": text, "start_time": 0.0, "end_time": boxes / fps}],
             "Bounding_box_info": {"Lip_bounding_box": {"xtl_ytl_xbr_ybr": [[278, 223, 358, 263]] * boxes}}}]


def write_aihub_corpus(root: Path, good: dict[str, str], no_face: tuple[str, ...] = (), bad_labels: tuple[str, ...] = ()):
    """An AIHub-layout corpus: ``good`` stem -> text crops cleanly; each ``no_face`` clip's label claims 5 fps
    for a 25 fps video, so its boxes cover a fifth of its frames and cropping fails (NoFaceError); each
    ``bad_labels`` label file is cut short, so the scan skips it."""
    from videos import write_video

    (root / "label").mkdir(parents=True)
    (root / "video").mkdir()
    frames = np.broadcast_to((np.arange(CLIP_FRAMES, dtype=np.uint8) * 10)[:, None, None, None], (CLIP_FRAMES, 360, 640, 3))
    for stem in [*good, *no_face, *bad_labels]:
        write_video(root / "video" / f"{stem}.mp4", np.ascontiguousarray(frames), 25.0, fourcc="mp4v")
        if stem in good:
            label = _aihub_label(stem, good[stem])
        elif stem in no_face:
            label = _aihub_label(stem, "문을 열어", fps=5, boxes=CLIP_FRAMES // 5)
        else:
            label = _aihub_label(stem, "문을 열어")
        text = json.dumps(label, ensure_ascii=False)
        (root / "label" / f"{stem}.json").write_text(text[: len(text) // 2] if stem in bad_labels else text, encoding="utf-8")
    return root


GOOD = {"lip_J_1_F_30_C101_A_001": "공을 위에 놓아", "lip_J_1_F_30_C102_A_001": "책을 다시 밀어"}
NO_FACE = "lip_J_1_F_30_C103_A_001"
BAD_LABEL = "lip_J_1_F_30_C104_A_001"


@pytest.fixture(scope="module")
def jamo_run(tmp_path_factory):
    """A run folder with a random tiny jamo model (no config.json: it evaluates whole corpora given by --data)."""
    from runs import write_run

    from lipnet_ko.model.config import model_config

    run = tmp_path_factory.mktemp("evaluate") / "run"
    write_run(run, model_config("tiny", vocabulary_size=JamoTokenizer().vocab_size), JamoTokenizer())
    return run


def _evaluate(*args) -> int:
    from lipnet_ko.app.cli import main

    return main(["evaluate", *map(str, args), "--beam", "4", "--quiet"])


def test_evaluate_lm_flag_reads_an_arpa_file_and_decodes_with_it(jamo_run, tmp_path, capsys):
    corpus = write_aihub_corpus(tmp_path / "corpus", GOOD)
    out = tmp_path / "report"
    assert _evaluate("--model", jamo_run, "--data", f"aihub:{corpus}", "--lm", SHIPPED_LM, "--report", out) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert list(report["decoders"]) == ["greedy", "beam", "beam_lm"] and report["meta"]["lm"] == str(SHIPPED_LM)
    assert report["num_utterances"] == 2 and report["skipped"] == []
    assert "all: 2 clips" in printed and "  beam_lm " in printed and "2 clips scored, 0 skipped" in printed
    markdown = (out / "report.md").read_text(encoding="utf-8").splitlines()
    assert [line for line in markdown if line.startswith("- **decoders**")] == ["- **decoders**: greedy, beam, beam_lm"]
    assert "## Skipped" not in markdown


@pytest.mark.parametrize("lm", ["missing.arpa", "corrupt.arpa.gz", "truncated.arpa.gz"])
def test_evaluate_lm_that_cannot_be_read_is_an_error_before_the_model_loads(tmp_path, monkeypatch, capsys, lm):
    from lipnet_ko.model import inference

    (tmp_path / "corrupt.arpa.gz").write_bytes(b"\x1f\x8b" + b"\x00not gzip data" * 10)
    (tmp_path / "truncated.arpa.gz").write_bytes(SHIPPED_LM.read_bytes()[:2000])  # a download that stopped early

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the --lm file was read")

    monkeypatch.setattr(inference, "load_recognizer", no_model)
    out = tmp_path / "report"
    assert _evaluate("--model", tmp_path / "run", "--lm", tmp_path / lm, "--report", out) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: cannot read the language model given by --lm: "), err
    assert str(tmp_path / lm) in err[0]
    assert {"missing.arpa": "no ARPA file", "corrupt.arpa.gz": "corrupt gzip data",
            "truncated.arpa.gz": "truncated gzip file"}[lm] in err[0]
    assert not out.exists()


def test_evaluate_lm_over_other_units_than_the_model_is_refused(jamo_run, tmp_path, capsys):
    char_lm = tmp_path / "char.arpa"
    char_lm.write_text("\\data\\\nngram 1=4\n\n\\1-grams:\n-1.0\t</s>\n-99\t<s>\t0\n-1.0\ta\n-1.0\t<unk>\n\n\\end\\\n",
                       encoding="utf-8")
    out = tmp_path / "report"
    assert _evaluate("--model", jamo_run, "--data", f"aihub:{tmp_path / 'no-corpus'}", "--lm", char_lm, "--report", out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --lm {char_lm} does not fit the model: this LM is over char units") and "\n" not in err
    assert not out.exists()


def test_evaluate_lists_skipped_clips_in_the_report_and_exits_1(jamo_run, tmp_path, capsys):
    corpus = write_aihub_corpus(tmp_path / "corpus", GOOD, no_face=(NO_FACE,), bad_labels=(BAD_LABEL,))
    out = tmp_path / "report"
    assert _evaluate("--model", jamo_run, "--data", f"aihub:{corpus}", "--report", out) == 1
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["num_utterances"] == 2 and report["num_skipped"] == 2
    assert sorted(r["clip_id"] for r in report["decoders"]["greedy"]["utterances"]) == sorted(f"{s}_1" for s in GOOD)
    skipped = {item["clip_id"]: item for item in report["skipped"]}
    label = str(corpus / "label" / f"{BAD_LABEL}.json")
    assert set(skipped) == {f"{NO_FACE}_1", label}
    assert skipped[f"{NO_FACE}_1"]["reason"].startswith("NoFaceError") and skipped[f"{NO_FACE}_1"]["split"] == "all"
    assert "malformed JSON" in skipped[label]["reason"]
    in_order = ", ".join(item["clip_id"] for item in report["skipped"])  # as they happened: the scan, then cropping
    assert f"2 clips scored, 2 skipped: {in_order} (reasons below and in the report)" in printed
    assert f"  skipped {NO_FACE}_1: NoFaceError" in printed

    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "- **skipped**: 2 (listed under Skipped)" in markdown.splitlines()
    assert [line for line in markdown.splitlines() if line.startswith("- **decoders**")] == [
        "- **decoders**: greedy, beam, beam_lm"]
    rows = _markdown_tables(markdown)["Skipped"]
    assert {row["clip"]: row["reason"] for row in rows} == {item["clip_id"]: item["reason"] for item in report["skipped"]}
    assert (out / "jamo_confusions_beam_lm.png").is_file()  # the figures of the scored clips are still written


def test_evaluate_with_every_clip_skipped_writes_nothing_and_exits_2(jamo_run, tmp_path, capsys):
    corpus = write_aihub_corpus(tmp_path / "corpus", {}, no_face=(NO_FACE,))
    out = tmp_path / "report"
    assert _evaluate("--model", jamo_run, "--data", f"aihub:{corpus}", "--report", out) == 2
    err = capsys.readouterr().err
    assert f"  skipped {NO_FACE}_1: NoFaceError" in err
    assert "error: no test clip could be scored (1 skipped, listed above)" in err
    assert not out.exists()


def test_evaluate_a_damaged_model_says_it_cannot_be_read(jamo_run, tmp_path, capsys):
    import shutil

    run = shutil.copytree(jamo_run, tmp_path / "run")
    (run / "model.keras").write_bytes(b"")
    assert _evaluate("--model", run, "--data", "aihub:x", "--report", tmp_path / "r") == 2
    err = capsys.readouterr().err.strip()
    model_file = run / "model.keras"
    assert err == f"error: cannot read the model {model_file}: not a Keras archive: the file is empty (was it copied whole?)"


def test_evaluate_on_a_runs_own_splits_lists_the_skipped_clips_of_those_splits_only(monkeypatch):
    from lipnet_ko.app import evaluate as evaluate_module
    from lipnet_ko.training.config import TrainConfig
    from lipnet_ko.training.run_data import RunData

    seen = _examples([8], ["공을 위에 놓아"])
    skipped = [
        {"clip_id": "train_clip", "reason": "NoFaceError: a", "split": "train"},  # not a test clip
        {"path": "/corpus/broken.json", "reason": "malformed JSON"},  # the scan's, before the corpus was split
        {"clip_id": "seen_clip", "reason": "NoFaceError: b", "split": "seen"},
        {"clip_id": "unseen_clip", "path": "/cache/unseen_clip.npz", "reason": "unreadable", "split": "unseen"},
    ]
    data = RunData({"train": seen, "seen": seen, "unseen": []}, {}, skipped, "synthetic:/corpus")
    monkeypatch.setattr(evaluate_module, "prepare_data", lambda *args, **kwargs: data)
    splits, left_out = evaluate_module.examples_for(_fake_recognizer([]), TrainConfig(), None, progress=False)
    assert splits == {"seen": seen}
    assert left_out == [{"clip_id": "seen_clip", "split": "seen", "reason": "NoFaceError: b"},
                        {"clip_id": "unseen_clip", "split": "unseen", "reason": "unreadable"}]
