import random
import unicodedata

import editdistance
import jiwer
import pytest
import sacrebleu
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu

from lipnet_ko.text import metrics
from lipnet_ko.text.metrics import bleu, cer, jamo_cer, respace, score_corpus, swer, wer

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
    assert set(scores.to_dict()) >= {"cer", "jamo_cer", "wer", "swer", "bleu", "cer_utterance_mean"}


def test_bad_arguments():
    with pytest.raises(ValueError, match="2 references but 1"):
        cer(["가", "나"], ["가"])
    with pytest.raises(TypeError):
        cer("가", ["가"])
    with pytest.raises(ValueError, match="average"):
        metrics.wer("가", "가", average="median")
