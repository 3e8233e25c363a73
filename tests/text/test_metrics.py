import json
import random
import re
import subprocess
import sys
import textwrap
import unicodedata

import editdistance
import jiwer
import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu

from lipnet_ko.app.cli import main
from lipnet_ko.text import metrics
from lipnet_ko.text.metrics import (
    align_characters, bleu, cer, jamo_cer, respace, score_corpus, swer, viseme_cer, viseme_classes, wer,
)
from lipnet_ko.text.normalize import normalize_for_metrics
from lipnet_ko.text.sentences import load_free_sentences
from respace_oracle import corrupt, quadratic_respace

REFS = [
    "오늘 날씨가 정말 좋네요",
    "지하철 이 호선을 타고 회사에 갑니다",
    "다람쥐 헌 쳇바퀴에 타고파",
    "내일 아침 일곱 시에 만나요",
    "밥 먹었어요",
]
HYPS = [
    "오늘 날씨가 정말 좋내요",
    "지하철 이호선을 타고 회사에 감니다",
    "다람쥐 헌 챗바퀴에 타고",
    "",
    "밥 먹었어요",
]


def random_korean(rng: random.Random, words: int) -> str:
    syllables = "가나다라마바사아자차카타파하각난닫랄맘밥삿앙잦찾캌탙팦핳의왜웨뭐"
    return " ".join("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(words))


@pytest.fixture(scope="module")
def random_corpus():
    rng = random.Random(7)
    refs = [random_korean(rng, rng.randint(1, 8)) for _ in range(60)]
    hyps = []
    for ref in refs:
        chars = list(ref)
        for _ in range(rng.randint(0, 4)):
            op = rng.random()
            pos = rng.randrange(len(chars) + 1)
            if op < 0.33 and chars:
                del chars[min(pos, len(chars) - 1)]
            elif op < 0.66:
                chars.insert(pos, rng.choice("가나 다"))
            elif chars:
                chars[min(pos, len(chars) - 1)] = rng.choice("라마바")
        hyps.append(" ".join("".join(chars).split()))
    return refs, hyps


def test_wer_matches_jiwer(random_corpus):
    refs, hyps = random_corpus
    assert wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps))
    assert wer(REFS[:3], HYPS[:3]) == pytest.approx(jiwer.wer(REFS[:3], HYPS[:3]))


def test_cer_matches_jiwer_on_space_stripped_text(random_corpus):
    refs, hyps = random_corpus
    strip = [r.replace(" ", "") for r in refs], [h.replace(" ", "") for h in hyps]
    assert cer(refs, hyps) == pytest.approx(jiwer.cer(*strip))


def test_jamo_cer_matches_editdistance_on_nfd(random_corpus):
    refs, hyps = random_corpus
    nfd = [unicodedata.normalize("NFD", r.replace(" ", "")) for r in refs]
    nfd_h = [unicodedata.normalize("NFD", h.replace(" ", "")) for h in hyps]
    expected = sum(editdistance.eval(r, h) for r, h in zip(nfd, nfd_h)) / sum(map(len, nfd))
    assert jamo_cer(refs, hyps) == pytest.approx(expected)


def test_jamo_cer_is_finer_than_syllable_cer():
    # one wrong vowel: one syllable of five, but one jamo of many
    assert cer("좋네요", "좋내요") == pytest.approx(1 / 3)
    assert jamo_cer("좋네요", "좋내요") == pytest.approx(1 / len(unicodedata.normalize("NFD", "좋네요")))


def test_corpus_is_sum_of_edits_not_mean_of_ratios():
    refs, hyps = ["가나다라마바사아자차", "가"], ["가나다라마바사아자차", "나"]
    assert cer(refs, hyps) == pytest.approx(1 / 11)
    assert cer(refs, hyps, average="utterance") == pytest.approx((0 + 1) / 2)


def test_empty_hypothesis_and_reference():
    assert cer("가나다", "") == 1.0
    assert wer("가나 다", "") == 1.0
    assert cer("", "") == 0.0
    assert cer("", "가나") == 2.0  # empty reference counts as length 1: every inserted syllable costs 1
    assert wer(["", "가 나"], ["가", "가 나"]) == pytest.approx(1 / 2)
    assert bleu("가 나 다 라", "") == 0.0
    refs, hyps = REFS, HYPS  # includes an empty hypothesis
    expected = sum(editdistance.eval(r.replace(" ", ""), h.replace(" ", "")) for r, h in zip(refs, hyps))
    assert cer(refs, hyps) == pytest.approx(expected / sum(len(r.replace(" ", "")) for r in refs))


def test_normalisation_applies_to_both_sides():
    assert cer("3% 올랐다.", "삼 퍼센트 올랐다") == 0.0
    assert wer("안녕,  하세요!", "안녕 하세요") == 0.0
    assert cer("가나", "가다", normalizer=None) == 0.5


def test_space_normalised_wer_forgives_spacing_only():
    ref, hyp = "지하철 이 호선을 타고", "지하철이 호선을타고"
    assert wer(ref, hyp) == 1.0
    assert swer(ref, hyp) == 0.0
    assert respace(ref, hyp) == ref
    assert swer("오늘 날씨가 좋다", "오늘날씨가 좋나") == pytest.approx(1 / 3)  # one real error remains
    assert respace("가나 다라", "가나다라마") == "가나 다라마"  # an insertion joins the previous word


def test_respace_keeps_characters(random_corpus):
    for ref, hyp in zip(*random_corpus):
        assert respace(ref, hyp).replace(" ", "") == hyp.replace(" ", "")
        if ref.replace(" ", "") == hyp.replace(" ", ""):
            assert respace(ref, hyp) == ref


def test_corpus_bleu_matches_sacrebleu(random_corpus):
    refs, hyps = random_corpus
    for smooth in ("exp", "none"):
        ours = bleu(refs, hyps, smooth=smooth)
        theirs = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none", smooth_method=smooth).score
        assert ours == pytest.approx(theirs, abs=1e-9)
    assert bleu(REFS, HYPS) == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="none").score)


def test_corpus_bleu_matches_nltk_without_smoothing(random_corpus):
    # nltk counts a hypothesis with no n-grams of some order as 1 in that order's denominator,
    # sacrebleu (and we) as 0; they agree when every hypothesis has at least 4 words.
    pairs = [(r, h) for r, h in zip(*random_corpus) if len(h.split()) >= 4]
    assert len(pairs) > 20
    refs, hyps = map(list, zip(*pairs))
    theirs = nltk_corpus_bleu([[r.split()] for r in refs], [h.split() for h in hyps])
    assert bleu(refs, hyps, smooth="none") / 100 == pytest.approx(theirs)


@pytest.mark.parametrize("i", range(len(REFS)))
def test_sentence_bleu_matches_sacrebleu(i):
    ours = bleu(REFS[i], HYPS[i])
    theirs = sacrebleu.sentence_bleu(HYPS[i], [REFS[i]], tokenize="none").score
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_short_sentence_bleu_is_not_zeroed():
    assert bleu("밥 먹었어요", "밥 먹었어요") == pytest.approx(100.0)
    assert bleu(["밥 먹었어요"], ["밥 먹었어요"]) == 0.0  # corpus BLEU-4 has no 4-grams here


def test_score_corpus_bundles_everything():
    scores = score_corpus(REFS, HYPS)
    assert scores.utterances == 5
    assert scores.cer == pytest.approx(cer(REFS, HYPS))
    assert scores.swer <= scores.wer
    assert set(scores.to_dict()) >= {"cer", "jamo_cer", "viseme_cer", "wer", "swer", "bleu", "cer_utterance_mean"}


def test_bad_arguments():
    with pytest.raises(ValueError, match="2 references but 1"):
        cer(["가", "나"], ["가"])
    with pytest.raises(TypeError):
        cer("가", ["가"])
    with pytest.raises(ValueError, match="average"):
        metrics.wer("가", "가", average="median")


# ---------------------------------------------------------------- respace: the banded, checkpointed alignment


# Both ways of computing a band's rows: plain Python (narrow bands) and numpy (wide ones).
BOTH_ROW_KERNELS = pytest.mark.parametrize("numpy_min_width", [0, 10**9], ids=["numpy", "python"])

texts = st.text(alphabet=st.sampled_from(list("ab 가나다")), max_size=60)
korean = st.text(alphabet=st.sampled_from(list("가나다라마바사아자차카타파하 ")), max_size=80)


@BOTH_ROW_KERNELS
@settings(max_examples=300, deadline=None)
@given(st.one_of(st.tuples(texts, texts), st.tuples(korean, korean)))
def test_respace_equals_the_full_table_implementation(numpy_min_width, pair):
    ref, hyp = pair
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "_NUMPY_MIN_WIDTH", numpy_min_width)
        assert respace(ref, hyp) == quadratic_respace(ref, hyp)


@BOTH_ROW_KERNELS
@settings(max_examples=300, deadline=None)
@given(texts, texts)
def test_alignment_is_optimal_and_monotone(numpy_min_width, ref, hyp):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "_NUMPY_MIN_WIDTH", numpy_min_width)
        owner = align_characters(ref, hyp)
    assert len(owner) == len(hyp)
    aligned = [i for i in owner if i >= 0]
    assert aligned == sorted(set(aligned))  # each reference character used once, in order
    substitutions = sum(ref[i] != h for i, h in zip(owner, hyp) if i >= 0)
    cost = (len(ref) - len(aligned)) + (len(hyp) - len(aligned)) + substitutions
    assert cost == editdistance.eval(ref, hyp)  # editdistance as the oracle of the alignment's cost


@BOTH_ROW_KERNELS
def test_respace_and_swer_unchanged_on_real_korean_sentences(numpy_min_width, monkeypatch):
    monkeypatch.setattr(metrics, "_NUMPY_MIN_WIDTH", numpy_min_width)
    rng = random.Random(11)
    sentences = load_free_sentences()
    refs = sentences + [" ".join(rng.sample(sentences, 4)) for _ in range(40)]  # up to ~100 syllables
    hyps = [corrupt(rng, r, rng.randint(0, max(1, len(r) // 3))) for r in refs]
    for r, h in zip(refs, hyps):
        assert respace(r, h) == quadratic_respace(r, h)
    oracle = jiwer.wer(refs, [quadratic_respace(r, h) for r, h in zip(refs, hyps)])
    assert swer(refs, hyps) == pytest.approx(oracle)


def test_alignment_recovers_when_the_distance_is_underestimated(monkeypatch):
    ref, hyp = "가나다라마바사아자차", "가다라마사바아자카차"
    expected = quadratic_respace(ref, hyp)
    monkeypatch.setattr(metrics.editdistance, "eval", lambda a, b: 0)  # a band of width one: too narrow
    assert respace(ref, hyp) == expected


def test_alignment_edge_cases():
    assert align_characters("", "가나") == [-1, -1]
    assert align_characters("가나", "") == []
    assert align_characters("가나", "가나") == [0, 1]
    assert respace("가나 다", "") == ""
    assert respace("", "가나") == "가나"


LONG_LINE_CHILD = textwrap.dedent("""
    import json, random, resource, sys
    from lipnet_ko.app.cli import main
    vm_size = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
    limit = vm_size + {extra}  # address space: what the imports took, plus this much for scoring
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = main(["score", sys.argv[1], sys.argv[2], "--json"])
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    print(json.dumps({{"code": code, "grown": grown}}), file=sys.stderr)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_score_of_one_very_long_line_stays_within_memory(tmp_path):
    rng = random.Random(3)
    sentences = load_free_sentences()
    ref = ""
    while len(ref) < 30_000:
        ref += rng.choice(sentences) + " "
    ref = ref.strip()
    hyp = corrupt(rng, ref, len(ref) // 10)
    (tmp_path / "ref.txt").write_text(ref + "\n", encoding="utf-8")
    (tmp_path / "hyp.txt").write_text(hyp + "\n", encoding="utf-8")
    # The full table would need 30,000 x 30,000 cells (about 7 GB of list slots): it would fail at once.
    limit = 1 << 30
    proc = subprocess.run(
        [sys.executable, "-c", LONG_LINE_CHILD.format(extra=limit), str(tmp_path / "ref.txt"), str(tmp_path / "hyp.txt")],
        capture_output=True, text=True, timeout=300,  # a few seconds on the standard machine; generous for CI
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["grown"] < 300 * 2**20, report  # resident memory grown by scoring, bytes
    scores = json.loads(proc.stdout)
    ref_chars, hyp_chars = ref.replace(" ", ""), hyp.replace(" ", "")
    assert scores["cer"] == pytest.approx(editdistance.eval(ref_chars, hyp_chars) / len(ref_chars))
    assert scores["swer"] <= scores["wer"]


# ---------------------------------------------------------------- lipnet-ko score: bad inputs


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "ref_text, hyp_text, message",
    [
        ("가나\n", None, r"cannot read the hypotheses file .*hyp\.txt: no such file"),
        ("", "가나\n", r"ref\.txt is empty: .*ref\.txt has 0 reference lines but .*hyp\.txt has 1 hypothesis lines"),
        ("가나\n다라\n", "", r"hyp\.txt is empty: .*ref\.txt has 2 reference lines but .*hyp\.txt has 0 hypothesis lines"),
        ("", "", r"ref\.txt and .*hyp\.txt are both empty: no utterance to score"),
        ("가\n나\n다\n", "가\n나\n", r"ref\.txt has 3 reference lines but .*hyp\.txt has 2 hypothesis lines"),
    ],
)
def test_score_bad_inputs_give_one_error_line(tmp_path, capsys, ref_text, hyp_text, message):
    ref = write(tmp_path / "ref.txt", ref_text)
    hyp = str(tmp_path / "hyp.txt") if hyp_text is None else write(tmp_path / "hyp.txt", hyp_text)
    assert main(["score", ref, hyp]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no figures
    (line,) = captured.err.splitlines()
    assert line.startswith("error: ")
    assert re.search(message, line), line


def test_score_rejects_folders_and_non_utf8(tmp_path, capsys):
    ref = write(tmp_path / "ref.txt", "가나\n")
    assert main(["score", str(tmp_path), ref]) == 2
    err = capsys.readouterr().err
    assert "references file" in err and "is a folder" in err
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    assert main(["score", ref, str(tmp_path / "latin1.txt")]) == 2
    assert "not UTF-8 text (byte 0xe9 at offset 3)" in capsys.readouterr().err


# ---------------------------------------------------------------- viseme CER


def test_viseme_cer_on_a_hand_worked_example():
    # 밥 먹어 -> 맙 벅어: the initials ㅂ<->ㅁ swap (both bilabial: 2 jamo errors, 0 viseme errors);
    # 어 -> 아 changes a vowel class (1 error of each). Reference: 밥 먹어 = ㅂㅏㅂ ㅁㅓㄱ ㅇㅓ = 8 jamo.
    assert jamo_cer("밥 먹어", "맙 벅아") == pytest.approx(3 / 8)
    assert viseme_cer("밥 먹어", "맙 벅아") == pytest.approx(1 / 8)
    assert viseme_cer("밥 먹어", "밥 먹어") == 0.0
    # 가 -> 바: velar -> bilabial, a viseme error as well as a jamo error
    assert viseme_cer("가", "바") == pytest.approx(1 / 2) == jamo_cer("가", "바")


def test_viseme_cer_equals_editdistance_on_the_class_strings():
    from lipnet_ko.text.visemes import viseme_sequence

    rng = random.Random(3)
    sentences = load_free_sentences()[:120]
    refs = [normalize_for_metrics(s) for s in sentences]
    hyps = [corrupt(rng, r, rng.randint(0, 5)) for r in refs]
    edits = total = 0
    for r, h in zip(refs, hyps):
        # the independent path: the visemes module's own sequence, spaces dropped, as one symbol per class
        ref_classes = [c for c in viseme_sequence(r) if c != " "]
        hyp_classes = [c for c in viseme_sequence(h) if c != " "]
        assert viseme_classes(r) == ref_classes
        edits += editdistance.eval(ref_classes, hyp_classes)
        total += len(ref_classes)
    assert viseme_cer(refs, hyps) == pytest.approx(edits / total)
    assert viseme_cer(refs, hyps) <= jamo_cer(refs, hyps)  # merging classes can only remove errors


def test_viseme_cer_treats_characters_without_a_viseme_class_as_their_own():
    assert viseme_classes("bin blue") == list("binblue")
    assert viseme_cer("bin blue at f two now", "bin blue at f two now") == 0.0
    assert viseme_cer("bin", "pin") == pytest.approx(1 / 3)
