"""Tests for lipnet_ko.decoding.oracle: perfect-viseme logits and the oracle floor.

Oracles: the viseme classes of lipnet_ko.text.visemes (the truth's class sequence), the tokenizer's own
encoding, and the identity partition (every jamo its own class), under which the perfect logits must give the
text back exactly."""

from __future__ import annotations

import numpy as np
import pytest

from lipnet_ko.decoding.oracle import OFF_LOGIT, ON_LOGIT, oracle_floor, perfect_viseme_logits
from lipnet_ko.decoding.search import DecodingOptions, decode, log_softmax
from lipnet_ko.text.metrics import viseme_classes
from lipnet_ko.text.tokenizer import BLANK_ID, JamoTokenizer
from lipnet_ko.text.visemes import token_viseme_classes

TOK = JamoTokenizer()
SENTENCES = ["다람쥐 헌 쳇바퀴에 타고파", "창문 좀 열어 주세요", "밥 먹었어", "괜찮아요"]
GREEDY = DecodingOptions(beam_width=1)


def _greedy(logits: np.ndarray) -> str:
    return decode(logits[None], None, TOK, GREEDY)[0].text


@pytest.mark.parametrize("spaces", ["hidden", "given"])
@pytest.mark.parametrize("text", SENTENCES)
def test_greedy_decodes_to_the_truths_viseme_sequence(text, spaces):
    assert viseme_classes(_greedy(perfect_viseme_logits(text, TOK, spaces=spaces))) == viseme_classes(text)


@pytest.mark.parametrize("text", SENTENCES)
def test_scores_are_exactly_equal_within_the_true_class_and_off_elsewhere(text):
    classes = token_viseme_classes(TOK)
    logits = perfect_viseme_logits(text, TOK, spaces="given")
    jamo = [tid for tid in TOK.encode(text) if tid != TOK.space_id]
    token_frames = [row for row in logits if row[BLANK_ID] != ON_LOGIT and row[TOK.space_id] != ON_LOGIT]
    assert len(token_frames) == len(jamo)
    for row, tid in zip(token_frames, jamo):
        on = set(np.flatnonzero(row == ON_LOGIT).tolist())
        assert on == {i for i, c in enumerate(classes) if c == classes[tid]}
        assert set(np.unique(row[[i for i in range(TOK.vocab_size) if i not in on]]).tolist()) == {OFF_LOGIT}
    # and after log-softmax the class members are still bit-for-bit equal
    logp = log_softmax(logits)
    for t in range(len(logp)):
        on = np.flatnonzero(logits[t] == ON_LOGIT)
        assert np.unique(logp[t, on]).size == 1


@pytest.mark.parametrize("text", SENTENCES)
def test_unambiguous_jamo_decode_exactly(text):
    identity = [None if i in (BLANK_ID, TOK.space_id) else f"own:{i}" for i in range(TOK.vocab_size)]
    assert _greedy(perfect_viseme_logits(text, TOK, spaces="given", classes=identity)) == text
    hidden = _greedy(perfect_viseme_logits(text, TOK, spaces="hidden", classes=identity))
    assert hidden == text.replace(" ", "")  # greedy takes the blank on a blank-or-space tie


def test_hidden_spaces_offer_a_space_at_every_syllable_gap_and_only_there():
    text = "밥 먹었어"
    logits = perfect_viseme_logits(text, TOK, spaces="hidden")
    either = [t for t in range(len(logits)) if logits[t, BLANK_ID] == ON_LOGIT and logits[t, TOK.space_id] == ON_LOGIT]
    assert len(either) == len(text.replace(" ", "")) - 1  # one gap between each pair of syllables
    assert not (logits[:, TOK.space_id] == ON_LOGIT).sum() > len(either)  # no other frame allows a space
    given = perfect_viseme_logits(text, TOK, spaces="given")
    assert (given[:, TOK.space_id] == ON_LOGIT).sum() == text.count(" ")


def test_frames_per_token_holds_each_jamo():
    text = "밥 먹었어"
    jamo = len([t for t in TOK.encode(text) if t != TOK.space_id])
    assert perfect_viseme_logits(text, TOK, frames_per_token=2).shape == (1 + 3 * jamo, TOK.vocab_size)
    assert viseme_classes(_greedy(perfect_viseme_logits(text, TOK, frames_per_token=2))) == viseme_classes(text)


@pytest.mark.parametrize("kwargs", [{"spaces": "shown"}, {"frames_per_token": 0}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        perfect_viseme_logits("밥", TOK, **kwargs)


def test_oracle_floor_scores_each_decoder():
    floor = oracle_floor(SENTENCES, TOK, {"greedy": GREEDY, "beam": DecodingOptions(beam_width=8)})
    assert set(floor) == {"greedy", "beam"}
    for scores in floor.values():
        assert scores.utterances == len(SENTENCES)
        assert scores.viseme_cer == 0.0  # every decoder keeps the classes it is shown
    with pytest.raises(ValueError, match="at least one sentence"):
        oracle_floor([], TOK, {"greedy": GREEDY})
