"""Viseme classes: a partition of the jamo tokens, look-alikes share a class, plausible mouth shapes."""

from __future__ import annotations

import dataclasses
import itertools
import math
import unicodedata

import pytest

from lipnet_ko.text.hangul import FINALS, INITIALS, MEDIALS, to_jamo
from lipnet_ko.text.tokenizer import CharTokenizer, JamoTokenizer
from lipnet_ko.text.visemes import (
    CLASS_NAMES,
    CLASSES,
    FINAL_CLASSES,
    GLIDE_ONSETS,
    INITIAL_CLASSES,
    MEDIAL_CLASSES,
    MOUTH_SHAPES,
    REST_SHAPE,
    WORD_BOUNDARY,
    MouthShape,
    lookalike_groups,
    token_viseme_classes,
    viseme_class,
    viseme_sequence,
    viseme_string,
)


def compat(jamo: str) -> str:
    """Conjoining jamo -> the compatibility letter people type (initial ᄏ -> ㅋ), by Unicode name."""
    name = unicodedata.name(jamo).split(" ", 2)[2]  # "HANGUL CHOSEONG KHIEUKH" -> "KHIEUKH"
    return unicodedata.lookup("HANGUL LETTER " + name)


def classes_of(letters: str, position: str) -> set[str]:
    """The classes of the typed letters at one position; fails if a letter has no jamo there."""
    jamo = {"initial": INITIALS, "medial": MEDIALS, "final": FINALS}[position]
    found = [j for j in jamo if compat(j) in letters]
    assert len(found) == len(set(letters)), f"not all of {letters} are {position}s"
    return {viseme_class(j) for j in found}


def test_compat_helper_maps_every_jamo():
    assert compat(INITIALS[15]) == "ㅋ" and compat(MEDIALS[0]) == "ㅏ" and compat(FINALS[-1]) == "ㅎ"
    assert len({compat(j) for j in FINALS}) == 27


@pytest.mark.parametrize(
    "classes, jamo, prefix",
    [(INITIAL_CLASSES, INITIALS, "I:"), (MEDIAL_CLASSES, MEDIALS, "M:"), (FINAL_CLASSES, FINALS, "F:")],
)
def test_each_position_is_partitioned(classes, jamo, prefix):
    members = [j for group in classes.values() for j in group]
    assert len(members) == len(set(members)), "a jamo sits in two classes"
    assert set(members) == set(jamo)
    assert all(name.startswith(prefix) for name in classes)
    assert all(classes.values()), "empty class"


def test_every_tokenizer_jamo_has_exactly_one_class():
    tokenizer = JamoTokenizer()
    jamo_tokens = [t for i, t in enumerate(tokenizer.tokens) if tokenizer.kind(i) in ("initial", "medial", "final")]
    assert len(jamo_tokens) == 19 + 21 + 27
    for token in jamo_tokens:
        assert sum(token in members for members in CLASSES.values()) == 1, repr(token)


def test_class_position_matches_token_kind():
    tokenizer = JamoTokenizer()
    prefix = {"initial": "I:", "medial": "M:", "final": "F:"}
    for token_id, cls in enumerate(token_viseme_classes(tokenizer)):
        kind = tokenizer.kind(token_id)
        if kind in ("blank", "space"):
            assert cls is None
        else:
            assert cls.startswith(prefix[kind]), (kind, cls)


def test_token_viseme_classes_has_one_entry_per_id():
    tokenizer = JamoTokenizer()
    classes = token_viseme_classes(tokenizer)
    assert len(classes) == tokenizer.vocab_size
    assert classes[tokenizer.blank_id] is None and classes[tokenizer.space_id] is None
    ids = tokenizer.encode("꽃")
    assert [classes[i] for i in ids] == ["I:velar", "M:o", "F:coronal"]


def test_token_viseme_classes_rejects_the_english_tokenizer():
    with pytest.raises(ValueError, match="jamo"):
        token_viseme_classes(CharTokenizer())


@pytest.mark.parametrize(
    "group, position",
    [
        ("ㄱㄲㅋㅎㅇ", "initial"),
        ("ㄴㄷㄸㅌㄹ", "initial"),
        ("ㅁㅂㅃㅍ", "initial"),
        ("ㅅㅆㅈㅉㅊ", "initial"),
        ("ㅣㅡㅢ", "medial"),
        ("ㅗㅛ", "medial"),
        ("ㅏㅑ", "medial"),
        ("ㅜㅠ", "medial"),
        ("ㅓㅕ", "medial"),
        ("ㅘㅚㅙㅝㅞ", "medial"),
        ("ㅐㅔㅒㅖ", "medial"),
        ("ㄱㄲㅋㅇㄳㄺ", "final"),
        ("ㄴㄷㅅㅆㅈㅊㅌㅎㄵㄶ", "final"),
        ("ㄹㄼㄽㄾㅀ", "final"),
        ("ㅁㅂㅍㄻㄿㅄ", "final"),
    ],
)
def test_issue_lookalike_groups_share_one_class(group, position):
    assert len(classes_of(group, position)) == 1


@pytest.mark.parametrize(
    "a, b",
    [("ㄱ", "ㄴ"), ("ㄴ", "ㅁ"), ("ㅁ", "ㅅ"), ("ㅅ", "ㄱ")],
)
def test_different_initial_groups_differ(a, b):
    assert classes_of(a, "initial") != classes_of(b, "initial")


def test_medial_groups_are_all_distinct():
    groups = ["ㅣㅡㅢ", "ㅟ", "ㅗㅛ", "ㅏㅑ", "ㅜㅠ", "ㅓㅕ", "ㅘㅚㅙㅝㅞ", "ㅐㅔㅒㅖ"]
    assert len({classes_of(g, "medial").pop() for g in groups}) == len(groups)


@pytest.mark.parametrize(
    "double, single",
    [("ㄺ", "ㄱ"), ("ㄻ", "ㅁ"), ("ㄼ", "ㄹ"), ("ㄿ", "ㅂ"), ("ㄳ", "ㄱ"), ("ㄵ", "ㄴ"), ("ㄶ", "ㄴ"), ("ㄽ", "ㄹ"),
     ("ㄾ", "ㄹ"), ("ㅀ", "ㄹ"), ("ㅄ", "ㅂ")],
)
def test_double_finals_follow_their_pronounced_member(double, single):
    assert classes_of(double, "final") == classes_of(single, "final")


def test_same_letter_in_different_positions_gets_different_classes():
    assert viseme_class(to_jamo("각")[0]) == "I:velar"
    assert viseme_class(to_jamo("각")[2]) == "F:velar"


@pytest.mark.parametrize("bad", ["ㅋ", "a", "가", " ", "", "ᄀᄀ", "\u1113", "\u11c3"])
def test_viseme_class_rejects_non_conjoining_jamo(bad):
    with pytest.raises(ValueError, match="conjoining"):
        viseme_class(bad)


def test_lookalike_commands_render_the_same():
    assert viseme_string("켜 줘") == viseme_string("꺼 줘")
    assert viseme_string("켜 줘") == "I:velar+M:eo I:sibilant+M:w"
    assert viseme_string("밤") == viseme_string("팜") == viseme_string("맙")
    assert viseme_string("닭") == viseme_string("닥")


def test_visibly_different_words_differ():
    assert viseme_string("켜 줘") != viseme_string("꺼 주")  # ㅝ vs ㅜ
    assert viseme_string("가") != viseme_string("마")
    assert viseme_string("가") != viseme_string("각")  # a final is visible
    assert viseme_string("가 나") != viseme_string("가나")  # word boundary kept


def test_viseme_sequence_marks_word_boundaries():
    seq = viseme_sequence("공 위")
    assert seq == ("I:velar", "M:o", "F:velar", WORD_BOUNDARY, "I:velar", "M:wi")
    assert len(seq) == len(JamoTokenizer().encode("공 위"))


def test_viseme_sequence_accepts_nfd_and_rejects_other_text():
    assert viseme_sequence(unicodedata.normalize("NFD", "닭")) == viseme_sequence("닭")
    with pytest.raises(ValueError, match="'A'"):
        viseme_sequence("가A")
    with pytest.raises(ValueError):
        viseme_string("가\t나")


def test_lookalike_groups_finds_only_real_collisions():
    assert lookalike_groups(["켜", "꺼", "둬", "켜"]) == [["켜", "꺼"]]
    assert lookalike_groups(["가", "나", "마", "사"]) == []


def test_every_class_has_a_mouth_shape():
    assert set(MOUTH_SHAPES) == set(CLASS_NAMES)
    assert set(GLIDE_ONSETS) <= set(MEDIAL_CLASSES)


def test_mouth_shape_fields_are_bounded():
    with pytest.raises(ValueError, match="jaw_open"):
        MouthShape(jaw_open=1.5, lip_width=0, lip_protrusion=0, lip_closure=0, teeth_visible=0, tongue_visible=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        REST_SHAPE.jaw_open = 0.5


def test_mouth_shape_lerp_endpoints():
    a, b = MOUTH_SHAPES["M:a"], MOUTH_SHAPES["M:u"]
    assert a.lerp(b, 0.0) == a
    assert a.lerp(b, 1.0).astuple() == pytest.approx(b.astuple())
    mid = a.lerp(b, 0.5)
    assert mid.jaw_open == pytest.approx((a.jaw_open + b.jaw_open) / 2)


def test_mouth_shapes_are_articulatorily_plausible():
    shapes = MOUTH_SHAPES
    vowels = [name for name in CLASS_NAMES if name.startswith("M:")]
    assert shapes["I:bilabial"].lip_closure == 1.0 and shapes["F:bilabial"].lip_closure == 1.0
    non_bilabial = [n for n in CLASS_NAMES if not n.endswith(":bilabial")]
    assert all(shapes[n].lip_closure < 0.5 for n in non_bilabial)
    assert max(vowels, key=lambda n: shapes[n].jaw_open) == "M:a"
    assert max(vowels, key=lambda n: shapes[n].lip_width) == "M:i"
    assert max(vowels, key=lambda n: shapes[n].lip_protrusion) == "M:u"
    assert shapes["M:o"].lip_protrusion > shapes["M:eo"].lip_protrusion > shapes["M:e"].lip_protrusion
    assert shapes["M:o"].lip_width < shapes["M:a"].lip_width
    assert shapes["F:liquid"].tongue_visible == max(s.tongue_visible for s in shapes.values())
    for onset in GLIDE_ONSETS.values():
        assert onset.lip_protrusion >= 0.8  # a w-glide starts rounded


@pytest.mark.parametrize("prefix", ["I:", "M:", "F:"])
def test_classes_of_one_position_look_different(prefix):
    names = [n for n in CLASS_NAMES if n.startswith(prefix)]
    for a, b in itertools.combinations(names, 2):
        distance = math.dist(MOUTH_SHAPES[a].astuple(), MOUTH_SHAPES[b].astuple())
        assert distance > 0.2, f"{a} and {b} would render almost alike ({distance:.2f})"
