"""Evaluation report: figures equal the metrics, Markdown tables, jamo confusions, atomic files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import editdistance
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lipnet_ko.text import metrics
from lipnet_ko.app.report import (
    DELETION,
    EDIT_GROUP,
    INSERTION,
    NO_SPEAKER,
    Utterance,
    build_report,
    jamo_confusions,
    jamo_labels,
    label_groups,
    levenshtein_alignment,
    plot_confusions,
    to_markdown,
    viseme_confusions,
    write_report,
)
from lipnet_ko.text.sentences import load_free_sentences
from lipnet_ko.text.hangul import FINALS, INITIALS, MEDIALS, to_jamo
from lipnet_ko.text.tokenizer import CharTokenizer, JamoTokenizer
from lipnet_ko.text.visemes import CLASS_NAMES, viseme_class

TOKENIZER = JamoTokenizer()
SENTENCES = load_free_sentences()
INI = dict(zip("ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ", INITIALS))  # typed letter -> initial jamo
MED = dict(zip("ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ", MEDIALS))
FIN = {"ㄱ": FINALS[0], "ㅂ": FINALS[16]}  # only the finals used below

UTTERANCES = [
    Utterance(
        "c1",
        "다람쥐 헌 쳇바퀴에 타고파",
        {"greedy": "다람쥐 헌 체바퀴에 타고 파", "beam": "다람쥐 헌 쳇바퀴에 타고파"},
        speaker="s1",
        split="test",
    ),
    Utterance("c2", "창문 좀 열어 주세요", {"greedy": "창문 좀 열어 | 주세요", "beam": "창문 좀 여러 주세요"}, "s2", "test"),
    Utterance("c3", "물 한 잔 마시고 싶어요", {"greedy": "물 한 잔 바시고", "beam": "물 한 잔 마시고 싶어요"}, "s1", "test"),
    Utterance("c4", "바다", {"greedy": "", "beam": "마다"}, "s2", "test"),
]


@pytest.fixture(scope="module")
def report() -> dict:
    return build_report(UTTERANCES, title="Synthetic | test", meta={"model": Path("runs/a/model.keras"), "data": "synth:test"})


def test_corpus_and_utterance_figures_equal_the_metrics(report):
    assert list(report["decoders"]) == ["greedy", "beam"]
    assert report["num_utterances"] == len(UTTERANCES)
    refs = [u.reference for u in UTTERANCES]
    for name, block in report["decoders"].items():
        hyps = [u.hypotheses[name] for u in UTTERANCES]
        corpus = block["corpus"]
        assert corpus == metrics.score_corpus(refs, hyps).to_dict()
        assert corpus["cer"] == metrics.cer(refs, hyps)
        assert corpus["jamo_cer"] == metrics.jamo_cer(refs, hyps)
        assert corpus["wer"] == metrics.wer(refs, hyps)
        assert corpus["swer"] == metrics.swer(refs, hyps)
        assert corpus["bleu"] == metrics.bleu(refs, hyps)
        for utt, row in zip(UTTERANCES, block["utterances"]):
            assert (row["clip_id"], row["reference"], row["hypothesis"]) == (utt.clip_id, utt.reference, utt.hypotheses[name])
            assert (row["speaker"], row["split"]) == (utt.speaker, utt.split)
            assert row["cer"] == metrics.cer(utt.reference, utt.hypotheses[name])
            assert row["wer"] == metrics.wer(utt.reference, utt.hypotheses[name])
        for speaker in ("s1", "s2"):
            mine = [u for u in UTTERANCES if u.speaker == speaker]
            figures = block["speakers"][speaker]
            assert figures["utterances"] == len(mine)
            assert figures["cer"] == metrics.cer([u.reference for u in mine], [u.hypotheses[name] for u in mine])
    # the beam decoder got c1 and c3 exactly right
    beam_rows = {row["clip_id"]: row for row in report["decoders"]["beam"]["utterances"]}
    assert beam_rows["c1"]["cer"] == beam_rows["c3"]["cer"] == 0.0


def test_report_is_json_ready(report):
    assert json.loads(json.dumps(report, ensure_ascii=False)) == report
    assert report["meta"] == {"model": "runs/a/model.keras", "data": "synth:test"}  # the Path became a str


def test_speakers_only_when_given_and_missing_ones_grouped():
    plain = [Utterance(u.clip_id, u.reference, u.hypotheses) for u in UTTERANCES]
    assert build_report(plain, title="t", meta={})["decoders"]["beam"]["speakers"] == {}
    mixed = [Utterance("a", "바다", {"g": "마다"}, speaker="s1"), Utterance("b", "바다", {"g": "바다"})]
    assert set(build_report(mixed, title="t", meta={})["decoders"]["g"]["speakers"]) == {"s1", NO_SPEAKER}


@pytest.mark.parametrize(
    "utterances, message",
    [
        ([], "no utterances"),
        ([Utterance("a", "바다", {"g": "바다"}), Utterance("a", "바다", {"g": "바다"})], "listed twice"),
        ([Utterance("a", "바다", {"g": "바다"}), Utterance("b", "바다", {"beam": "바다"})], "same decoders"),
    ],
)
def test_build_report_rejects_inconsistent_input(utterances, message):
    with pytest.raises(ValueError, match=message):
        build_report(utterances, title="t", meta={})


def test_utterance_needs_texts():
    with pytest.raises(ValueError, match="no hypotheses"):
        Utterance("a", "바다", {})
    with pytest.raises(TypeError, match="must be a str"):
        Utterance("a", "바다", {"g": None})


def _cells(line: str) -> list[str]:
    """Split a Markdown table row on unescaped pipes."""
    cells, current, k = [], "", 0
    body = line.strip()[1:-1]
    while k < len(body):
        if body[k] == "\\" and k + 1 < len(body):
            current += body[k : k + 2]
            k += 2
            continue
        if body[k] == "|":
            cells.append(current.strip())
            current = ""
        else:
            current += body[k]
        k += 1
    return cells + [current.strip()]


def test_markdown_tables(report):
    md = to_markdown(report)
    lines = md.splitlines()
    assert lines[0] == "# Synthetic \\| test"
    assert "- **model**: runs/a/model.keras" in lines
    assert "- **data**: synth:test" in lines
    assert "- **decoders**: greedy, beam" in lines
    beam = report["decoders"]["beam"]["corpus"]
    rates = " | ".join(f"{100 * beam[k]:.2f}%" for k in ("cer", "jamo_cer", "viseme_cer", "wer", "swer"))
    assert f"| beam | {rates} | {beam['bleu']:.2f} |" in lines
    s1_greedy = report["decoders"]["greedy"]["speakers"]["s1"]["cer"]
    s1_beam = report["decoders"]["beam"]["speakers"]["s1"]["cer"]
    assert f"| s1 | 2 | {100 * s1_greedy:.2f}% | {100 * s1_beam:.2f}% |" in lines
    assert "| c3 | s1 | test | 물 한 잔 마시고 싶어요 | greedy | 물 한 잔 바시고 | 44.44% | 40.00% |" in lines
    assert "| c4 | s2 | test | 바다 | greedy |  | 100.00% | 100.00% |" in lines
    # the pipe in c2's greedy hypothesis is escaped and does not add a column
    row = next(line for line in lines if line.startswith("| c2 |") and "| greedy |" in line)
    assert "열어 \\| 주세요" in row
    tables = [line for line in lines if line.startswith("|")]
    header = next(k for k, line in enumerate(lines) if line.startswith("| clip |"))
    width = len(_cells(lines[header]))
    utterance_rows = [line for line in lines[header + 2 :] if line.startswith("|")]
    assert len(utterance_rows) == len(UTTERANCES) * 2
    assert all(len(_cells(line)) == width for line in utterance_rows)
    assert all(line.endswith("|") for line in tables)


def test_markdown_lists_the_decoders_once_even_when_meta_names_them():
    # lipnet-ko evaluate used to put "decoders" into meta as well: report.md then listed them twice.
    report = build_report(UTTERANCES, title="t", meta={"data": "x", "decoders": ["greedy", "beam"], "utterances": 4})
    lines = to_markdown(report).splitlines()
    assert [line for line in lines if line.startswith("- **decoders**")] == ["- **decoders**: greedy, beam"]
    assert [line for line in lines if line.startswith("- **utterances**")] == ["- **utterances**: 4"]
    assert report["meta"]["decoders"] == ["greedy", "beam"]  # report.json keeps meta as given


def test_skipped_clips_are_listed_in_the_json_and_the_markdown():
    skipped = [{"clip_id": "c9", "split": "test", "reason": "NoFaceError: no face | in 80% of frames"},
               {"clip_id": "label/x.json sentence 2", "reason": "sentence ends past the video"}]
    report = build_report(UTTERANCES, title="t", meta={}, skipped=skipped)
    assert report["num_utterances"] == len(UTTERANCES) and report["num_skipped"] == 2
    assert report["skipped"] == [{**skipped[0]}, {**skipped[1], "split": None}]
    assert json.loads(json.dumps(report)) == report
    plain = build_report(UTTERANCES, title="t", meta={})
    assert report["decoders"] == plain["decoders"]  # the figures are those of the scored clips
    assert plain["skipped"] == [] and plain["num_skipped"] == 0 and "## Skipped" not in to_markdown(plain)
    assert "- **skipped**: 0" in to_markdown(plain).splitlines()
    lines = to_markdown(report).splitlines()
    assert "- **skipped**: 2 (listed under Skipped)" in lines
    table = lines[lines.index("## Skipped") :]
    assert "| clip | split | reason |" in table
    assert "| c9 | test | NoFaceError: no face \\| in 80% of frames |" in table
    assert "| label/x.json sentence 2 |  | sentence ends past the video |" in table
    with pytest.raises(ValueError, match="skipped entry 0 .* needs a clip_id and a reason"):
        build_report(UTTERANCES, title="t", meta={}, skipped=[{"clip_id": "c9"}])


def test_markdown_escapes_backslashes_and_newlines():
    report = build_report([Utterance("a\\b", "바다", {"g": "마\n다 | \\|"})], title="t", meta={"note": "x|y"})
    md = to_markdown(report)
    assert "- **note**: x\\|y" in md
    assert "| a\\\\b | 바다 | g | 마 다 \\| \\\\\\| |" in md


@pytest.mark.parametrize(
    "ref, hyp, edits",
    [("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3), ("abc", "abc", 0), ("ab", "ba", 2)],
)
def test_alignment_on_hand_made_sequences(ref, hyp, edits):
    pairs = levenshtein_alignment(list(ref), list(hyp))
    assert sum(r != h for r, h in pairs) == edits == editdistance.eval(ref, hyp)
    assert "".join(r for r, _ in pairs if r is not None) == ref
    assert "".join(h for _, h in pairs if h is not None) == hyp
    assert all(r is not None or h is not None for r, h in pairs)


def test_alignment_marks_each_edit_kind():
    assert levenshtein_alignment(["a", "b"], ["a", "c"]) == [("a", "a"), ("b", "c")]
    assert levenshtein_alignment(["a", "b"], ["a"]) == [("a", "a"), ("b", None)]
    assert levenshtein_alignment(["a"], ["x", "a"]) == [(None, "x"), ("a", "a")]


def _index(labels):
    return {label: k for k, label in enumerate(labels)}


def test_labels_are_grouped_by_viseme_class():
    labels = jamo_labels(TOKENIZER)
    assert len(labels) == 67 + 2 and labels[-2:] == [INSERTION, DELETION]
    assert sorted(labels[:-2]) == sorted(INITIALS + MEDIALS + FINALS)
    classes = [viseme_class(label) for label in labels[:-2]]
    order = [CLASS_NAMES.index(c) for c in classes]
    assert order == sorted(order)  # each class is one contiguous block, in CLASS_NAMES order
    assert label_groups(labels) == classes + [EDIT_GROUP, EDIT_GROUP]
    assert label_groups(CLASS_NAMES[:2]) == ["I", "I"]


def test_substitution_counts_once():
    labels, m = jamo_confusions([("바다", "마다")], TOKENIZER)
    i = _index(labels)
    assert m[i[INI["ㅂ"]], i[INI["ㅁ"]]] == 1
    assert m[i[MED["ㅏ"]], i[MED["ㅏ"]]] == 2
    assert m[i[INI["ㄷ"]], i[INI["ㄷ"]]] == 1
    assert m.sum() == 4 and np.trace(m) == 3
    class_labels, cm = viseme_confusions(labels, m)
    c = _index(class_labels)
    assert cm[c["I:bilabial"], c["I:bilabial"]] == 1  # ㅂ -> ㅁ stays inside its viseme class


def test_insertion_and_deletion():
    labels, m = jamo_confusions([("바다", "바다가"), ("밥", "바")], TOKENIZER)
    i = _index(labels)
    assert m[i[INSERTION], i[INI["ㄱ"]]] == 1
    assert m[i[INSERTION], i[MED["ㅏ"]]] == 1
    assert m[i[FIN["ㅂ"]], i[DELETION]] == 1
    assert m[i[DELETION]].sum() == 0 and m[:, i[INSERTION]].sum() == 0
    assert m.sum() - np.trace(m) == 3


def test_spaces_and_normalisation_are_ignored_like_jamo_cer():
    labels, m = jamo_confusions([("바 다", "바다"), ("바다!", "  바다 ")], TOKENIZER)
    assert m.sum() == np.trace(m) == 8  # ᄇ ᅡ ᄃ ᅡ twice, all matched


def test_confusions_reject_bad_input():
    with pytest.raises(ValueError, match="pair 1"):
        jamo_confusions([("바다", "바다"), ("바다", "abc")], TOKENIZER)
    with pytest.raises(ValueError, match="only for the 'jamo' tokenizer"):
        jamo_confusions([("a", "b")], CharTokenizer())
    labels, m = jamo_confusions([("바다", "마다")], TOKENIZER)
    with pytest.raises(ValueError, match="must be"):
        viseme_confusions(labels, m[:-1])
    class_labels, cm = viseme_confusions(labels, m)
    with pytest.raises(ValueError, match="not a conjoining Hangul jamo"):
        viseme_confusions(class_labels, cm)


def _mutate(text: str, rng: random.Random) -> str:
    """A recognisable corruption of ``text``: a few syllables swapped, dropped, inserted, or a space moved."""
    chars = list(text)
    for _ in range(rng.randint(0, 4)):
        k = rng.randrange(len(chars) + 1)
        op = rng.choice("sdi ")
        syllable = rng.choice(rng.choice(SENTENCES).replace(" ", ""))
        if op == "s" and k < len(chars):
            chars[k] = syllable
        elif op == "d" and k < len(chars):
            del chars[k]
        elif op == "i":
            chars.insert(k, syllable)
        else:
            chars.insert(k, " ")
    return " ".join("".join(chars).split())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(SENTENCES), st.sampled_from(SENTENCES), st.integers(0, 2**32 - 1), st.booleans()),
        min_size=1,
        max_size=6,
    )
)
def test_edit_counts_equal_editdistance(samples):
    """Per pair and over the corpus: edits counted in the matrix == editdistance == jamo_cer's numerator."""
    pairs = []
    for ref, other, seed, unrelated in samples:
        pairs.append((ref, other if unrelated else _mutate(ref, random.Random(seed))))
    total_edits = 0
    for ref, hyp in pairs:
        labels, m = jamo_confusions([(ref, hyp)], TOKENIZER)
        ref_tokens, hyp_tokens = to_jamo(ref.replace(" ", "")), to_jamo(hyp.replace(" ", ""))
        edits = int(m.sum() - np.trace(m))
        assert edits == editdistance.eval(ref_tokens, hyp_tokens)
        assert m.sum() - m[labels.index(INSERTION)].sum() == len(ref_tokens)  # each reference token once
        total_edits += edits
    labels, m = jamo_confusions(pairs, TOKENIZER)
    assert int(m.sum() - np.trace(m)) == total_edits
    ref_total = sum(len(to_jamo(r.replace(" ", ""))) for r, _ in pairs)
    assert total_edits / ref_total == pytest.approx(metrics.jamo_cer([r for r, _ in pairs], [h for _, h in pairs]))


def test_viseme_confused_decoding_stays_inside_classes():
    from lipnet_ko.decoding.search import DecodingOptions, decode
    from synthetic_logits import confused_utterances

    sentences = SENTENCES[:30]
    logits = confused_utterances(sentences, TOKENIZER, np.random.default_rng(0))
    hyps = [decode(x[None], None, TOKENIZER, DecodingOptions(beam_width=1))[0].text for x in logits]
    labels, m = jamo_confusions(zip(sentences, hyps), TOKENIZER)
    class_labels, cm = viseme_confusions(labels, m)
    assert cm.sum() == m.sum()
    jamo = slice(0, len(labels) - 2)
    classes = slice(0, len(class_labels) - 2)
    substitutions = m[jamo, jamo].sum() - np.trace(m[jamo, jamo])
    across_classes = cm[classes, classes].sum() - np.trace(cm[classes, classes])
    assert substitutions > 50
    assert across_classes / substitutions < 0.2  # look-alike jamo are confused with each other


@pytest.fixture(scope="module")
def confusions():
    pairs = [(s, _mutate(s, random.Random(k))) for k, s in enumerate(SENTENCES[:40])]
    return jamo_confusions(pairs, TOKENIZER)


def _assert_png(path: Path) -> None:
    assert path.stat().st_size > 10_000
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_plot_confusions_writes_a_png(tmp_path, confusions):
    labels, m = confusions
    out = plot_confusions(labels, m, tmp_path / "jamo.png", groups=label_groups(labels), title="자모 혼동")
    assert out == tmp_path / "jamo.png"
    _assert_png(out)
    class_labels, cm = viseme_confusions(labels, m)
    _assert_png(plot_confusions(class_labels, cm, str(tmp_path / "viseme.png"), groups=label_groups(class_labels)))


def test_plot_confusions_leaves_nothing_on_failure(tmp_path, monkeypatch, confusions):
    labels, m = confusions
    with pytest.raises(ValueError, match="one group per label"):
        plot_confusions(labels, m, tmp_path / "a.png", groups=["x"])
    with pytest.raises(ValueError, match="must be"):
        plot_confusions(labels, m[:3], tmp_path / "a.png", groups=label_groups(labels))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        plot_confusions(labels[:3], m[:3, :3], blocker / "a.png", groups=["a", "a", "b"])

    import matplotlib.figure

    def half_written(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_written)
    with pytest.raises(OSError, match="disk full"):
        plot_confusions(labels[:3], m[:3, :3], tmp_path / "a.png", groups=["a", "a", "b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_write_report(tmp_path, report, confusions):
    labels, m = confusions
    class_labels, cm = viseme_confusions(labels, m)
    paths = write_report(report, tmp_path / "out", confusions={"viseme_confusions_beam": (class_labels, cm)})
    assert set(paths) == {"json", "markdown", "viseme_confusions_beam"}
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == report
    md = paths["markdown"].read_text(encoding="utf-8")
    assert md == to_markdown(report, figures=["viseme_confusions_beam.png"])
    assert "![viseme_confusions_beam](viseme_confusions_beam.png)" in md
    _assert_png(paths["viseme_confusions_beam"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json", "report.md", "viseme_confusions_beam.png"]


def test_write_report_leaves_nothing_on_failure(tmp_path, report):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("old", encoding="utf-8")
    bad = {"broken": (["I:velar", "M:a"], np.zeros((3, 3)))}  # fails after report.json and report.md were staged
    with pytest.raises(ValueError, match="must be"):
        write_report(report, out, confusions=bad)
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text(encoding="utf-8") == "old"
    for stem in ("../x", "json", ".hidden"):
        with pytest.raises(ValueError, match="plain file stem"):
            write_report(report, tmp_path / "never", confusions={stem: (["I:velar"], np.zeros((1, 1)))})
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        write_report(report, blocker / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "out"]
