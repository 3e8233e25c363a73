"""The project's sentence sets: well-formed, encodable, visually distinct grammar slots, full jamo coverage."""

from __future__ import annotations

import itertools
import json
import random
import unicodedata

import numpy as np
import pytest

from lipnet_ko.synth.articulation import distinct_frames
from lipnet_ko.text.sentences import (
    ALL_JAMO,
    MIN_DISTINCT_FRAMES,
    FREE_SENTENCES_PATH,
    GRAMMAR_PATH,
    Grammar,
    Slot,
    is_normalised,
    jamo_coverage,
    load_free_sentences,
    load_grammar,
    split_free_sentences,
)
from lipnet_ko.text.tokenizer import JamoTokenizer
from lipnet_ko.text.visemes import lookalike_groups

FPS = 25  # GRID clips: 3 s at 25 frames per second
CLIP_FRAMES = 3 * FPS  # 75 frames
MAX_GRAMMAR_TOKENS = 45  # CTC needs one frame per token plus a blank between repeats; keep well under 75


@pytest.fixture(scope="module")
def grammar() -> Grammar:
    return load_grammar()


@pytest.fixture(scope="module")
def free() -> list[str]:
    return load_free_sentences()


def test_data_files_are_where_the_package_looks():
    assert GRAMMAR_PATH.is_file() and FREE_SENTENCES_PATH.is_file()


def test_grammar_shape(grammar):
    assert [slot.name for slot in grammar.slots] == ["object", "letter", "number", "place", "adverb", "command"]
    for slot in grammar.slots:
        assert 4 <= len(slot.options) <= 10, slot.name
        assert len(slot.glosses) == len(slot.options) and all(slot.glosses), slot.name
    assert grammar.size == np.prod([len(slot.options) for slot in grammar.slots])
    assert grammar.size > 10_000


@pytest.mark.parametrize("slot_index", range(6))
def test_grammar_slot_options_look_different_on_the_lips(grammar, slot_index):
    slot = grammar.slots[slot_index]
    assert lookalike_groups(slot.options) == [], f"slot {slot.name!r} has options that render identically"


@pytest.mark.parametrize("slot_index", range(6))
def test_grammar_slot_options_differ_on_the_lips_for_long_enough(grammar, slot_index):
    slot = grammar.slots[slot_index]
    close = [
        (a, b, n)
        for a, b in itertools.combinations(slot.options, 2)
        if (n := distinct_frames(a, b)) < MIN_DISTINCT_FRAMES
    ]
    assert close == [], f"slot {slot.name!r}: these options differ on the lips for too few frames: {close}"


def test_distinct_frames_flags_the_pairs_models_confused():
    # The two pairs the grammar replaced (v2 -> v3): most of the errors of trained models were these.
    assert distinct_frames("뒤에", "위에") < MIN_DISTINCT_FRAMES
    assert distinct_frames("구", "육") < MIN_DISTINCT_FRAMES
    assert distinct_frames("켜 줘", "꺼 줘") == 0  # same viseme string: identical tracks
    assert distinct_frames("밖에", "안에") >= MIN_DISTINCT_FRAMES  # a bilabial and a velar against a coronal
    assert distinct_frames("구", "구구") > 0  # length alone is a difference once a syllable is added


def test_grammar_sentences_fit_a_grid_clip(grammar):
    tokenizer = JamoTokenizer()
    lengths = [len(tokenizer.encode(s)) for s in grammar.sentences()]
    longest = grammar.longest()
    assert max(lengths) == len(tokenizer.encode(longest))
    assert max(lengths) <= MAX_GRAMMAR_TOKENS < CLIP_FRAMES
    assert len(longest.replace(" ", "")) <= 14  # syllables
    assert all(len(s.split(" ")) == 6 for s in grammar.sample(random.Random(0), 50))


def test_grammar_enumeration_is_complete_and_distinct(grammar):
    all_sentences = list(grammar.sentences())
    assert len(all_sentences) == grammar.size == len(set(all_sentences))
    assert list(grammar.enumerate())[:3] == all_sentences[:3]


def test_grammar_sample_is_reproducible_for_both_rng_kinds(grammar):
    a = grammar.sample(np.random.default_rng(7), 20)
    assert a == grammar.sample(np.random.default_rng(7), 20)
    b = grammar.sample(random.Random(7), 20)
    assert b == grammar.sample(random.Random(7), 20)
    assert len(set(a)) > 1
    every = set(grammar.sentences())
    assert set(a) <= every and set(b) <= every
    with pytest.raises(TypeError):
        grammar.sample(7, 1)


def test_grammar_contains_its_sentences_and_nothing_else(grammar, free):
    rng = np.random.default_rng(4)
    for sentence in grammar.sample(rng, 50):
        assert grammar.contains(sentence)
        words = sentence.split(" ")
        assert not grammar.contains(" ".join(words[:-1]))  # a slot missing
        assert not grammar.contains(" ".join([words[1], words[0], *words[2:]]))  # slots out of order
        assert not grammar.contains(sentence + " " + words[-1])  # one word too many
    assert not any(grammar.contains(text) for text in free)
    assert not grammar.contains("")


def test_grammar_lexicon(grammar):
    lexicon = grammar.lexicon()
    assert lexicon == sorted(set(lexicon))
    assert "공을" in lexicon and "놓아" in lexicon
    assert all(" " not in word for word in lexicon)


def test_free_sentences_count_and_uniqueness(free):
    assert len(free) >= 300
    assert len(set(free)) == len(free)


def test_free_sentences_are_short_enough(free):
    syllables = [len(s.replace(" ", "")) for s in free]
    assert min(syllables) >= 3 and max(syllables) <= 25


def test_all_sentences_are_normalised_and_round_trip(grammar, free):
    tokenizer = JamoTokenizer()
    for sentence in free + grammar.sample(random.Random(1), 200) + grammar.lexicon():
        assert is_normalised(sentence), sentence
        assert unicodedata.normalize("NFC", sentence) == sentence
        assert tokenizer.decode(tokenizer.encode(sentence)) == sentence


def test_free_sentences_alone_cover_every_jamo(free):
    _, missing = jamo_coverage(free)
    assert not missing, sorted(unicodedata.name(j) for j in missing)


def test_grammar_and_free_sentences_cover_every_jamo(grammar, free):
    covered, missing = jamo_coverage(grammar.lexicon() + free)
    assert covered == set(ALL_JAMO) and not missing
    assert len(ALL_JAMO) == 19 + 21 + 27


def test_jamo_coverage_reports_what_is_missing():
    covered, missing = jamo_coverage(["가"])
    assert covered == {"\u1100", "\u1161"}
    assert len(missing) == 65 and covered.isdisjoint(missing)
    assert "\u11a8" in jamo_coverage(["각"])[0] and "\u11a8" not in covered  # final ㄱ is its own token


def test_split_is_reproducible_disjoint_and_complete(free):
    train, test = split_free_sentences(free, 0.1, seed=3)
    assert (train, test) == split_free_sentences(free, 0.1, seed=3)
    assert set(train).isdisjoint(test)
    assert sorted(train + test) == sorted(free)
    assert len(test) == round(len(free) * 0.1)
    assert test == [s for s in free if s in set(test)]  # input order kept


def test_split_depends_on_seed_not_on_order(free):
    _, test = split_free_sentences(free, 0.2, seed=0)
    _, test_reversed = split_free_sentences(list(reversed(free)), 0.2, seed=0)
    assert set(test) == set(test_reversed)
    _, other = split_free_sentences(free, 0.2, seed=1)
    assert set(other) != set(test)


def test_split_rejects_bad_input():
    with pytest.raises(ValueError, match="held_out_share"):
        split_free_sentences(["가"], 1.0, seed=0)
    with pytest.raises(ValueError, match="repeated"):
        split_free_sentences(["가", "나", "가"], 0.5, seed=0)
    assert split_free_sentences(["가", "나"], 0.0, seed=0) == (["가", "나"], [])


def test_is_normalised():
    assert is_normalised("공을 갑 삼")
    for text in ["", " 공", "공 ", "공  갑", "공,", "공1", "ㄱ", "공\t갑", unicodedata.normalize("NFD", "공")]:
        assert not is_normalised(text), repr(text)


def _write_grammar(tmp_path, slots):
    path = tmp_path / "grammar.json"
    path.write_text(json.dumps({"slots": slots}, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def test_load_grammar_reads_a_small_file(tmp_path):
    path = _write_grammar(
        tmp_path,
        [{"name": "a", "options": [{"text": "가", "gloss": "x"}, {"text": "무", "gloss": "y"}]},
         {"name": "b", "options": [{"text": "켜 줘"}, {"text": "열어"}]}],
    )
    grammar = load_grammar(path)
    assert grammar.slots[1] == Slot("b", ("켜 줘", "열어"), ("", ""))
    assert sorted(grammar.sentences()) == sorted(["가 켜 줘", "가 열어", "무 켜 줘", "무 열어"])
    assert grammar.lexicon() == sorted(["가", "무", "켜", "줘", "열어"])


@pytest.mark.parametrize(
    "options, message",
    [
        ([{"text": "가"}, {"text": "A"}], "'A'"),
        ([{"text": "가"}, {"text": ""}], "empty"),
        ([{"text": "가"}, {"text": "가"}], "twice"),
        ([{"text": "가"}, {"text": "나 "}], "space"),
        ([{"text": "가"}], "at least two"),
    ],
)
def test_load_grammar_names_file_and_line_of_bad_options(tmp_path, options, message):
    path = _write_grammar(tmp_path, [{"name": "slot", "options": options}])
    with pytest.raises(ValueError, match=message) as info:
        load_grammar(path)
    assert str(path) in str(info.value)
    if message != "at least two":
        assert f"{path}:" in str(info.value) and f"{path}:0" not in str(info.value)


def test_load_grammar_reports_json_syntax_line(tmp_path):
    path = tmp_path / "grammar.json"
    path.write_text('{"slots": [\n  {"name": "a",,}\n]}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"grammar\.json:2: invalid JSON"):
        load_grammar(path)


@pytest.mark.parametrize(
    "lines, line_no, message",
    [
        (["가나다", "라마 바사", "숫자 3"], 3, "'3'"),
        (["가나다", "", "라마"], 2, "empty"),
        (["가나다", "라마", "가나다"], 3, "duplicate of line 1"),
        (["가나다,"], 1, "','"),
        (["가나다 "], 1, "space"),
    ],
)
def test_load_free_sentences_names_file_and_line(tmp_path, lines, line_no, message):
    path = tmp_path / "free.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message) as info:
        load_free_sentences(path)
    assert f"{path}:{line_no}:" in str(info.value)
