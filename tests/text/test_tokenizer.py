import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lipnet_ko.text.tokenizer import BLANK_ID, CharTokenizer, JamoTokenizer, get_tokenizer, load_tokenizer
from lipnet_ko.text.hangul import compose_syllable, decompose_syllable, to_jamo

ALL_SYLLABLES = [chr(c) for c in range(0xAC00, 0xD7A4)]
PANGRAM = "다람쥐 헌 쳇바퀴에 타고파"


@pytest.fixture(scope="module")
def tok():
    return JamoTokenizer()


def test_inventory(tok):
    assert tok.blank_id == BLANK_ID == 0
    assert tok.vocab_size == 1 + 1 + 19 + 21 + 27 == len(set(tok.tokens))
    assert [tok.tokens[i] for i in tok.initial_ids] == [chr(c) for c in range(0x1100, 0x1113)]
    assert [tok.tokens[i] for i in tok.medial_ids] == [chr(c) for c in range(0x1161, 0x1176)]
    assert [tok.tokens[i] for i in tok.final_ids] == [chr(c) for c in range(0x11A8, 0x11C3)]
    assert tok.kind(0) == "blank" and tok.kind(tok.space_id) == "space"


def test_every_syllable_round_trips_and_matches_nfd(tok):
    assert len(ALL_SYLLABLES) == 11172
    for syllable in ALL_SYLLABLES:
        ids = tok.encode(syllable)
        assert "".join(tok.tokens[i] for i in ids) == unicodedata.normalize("NFD", syllable)
        assert tok.decode(ids) == syllable
        assert compose_syllable(*decompose_syllable(syllable)) == syllable
    assert to_jamo("".join(ALL_SYLLABLES)) == unicodedata.normalize("NFD", "".join(ALL_SYLLABLES))


def test_pangram_round_trip(tok):
    ids = tok.encode(PANGRAM)
    assert tok.decode(ids) == PANGRAM
    assert ids.count(tok.space_id) == 3
    assert tok.encode(unicodedata.normalize("NFD", PANGRAM)) == ids  # NFD input gives the same ids


def ids_of(tok, jamo: str) -> list[int]:
    return [tok.tokens.index(ch) for ch in jamo]


@pytest.mark.parametrize(
    "jamo, expected",
    [
        ("\u1100", ""),  # initial with no medial: dropped
        ("\u1161", "아"),  # medial with no initial: silent ㅇ attached
        ("\u1100\u1161\u1161", "가아"),  # second medial starts a new ㅇ syllable
        ("\u1100\u1102\u1161", "나"),  # first initial orphaned by the second: dropped
        ("\u11a8\u1100\u1161", "가"),  # final with no open syllable: dropped
        ("\u1100\u1161\u11a8\u11ab", "각"),  # second final: dropped
        ("\u1100\u1161\u11a8\u1161", "각아"),  # medial after a closed syllable
        ("  \u1100\u1161   \u1102\u1161  ", "가 나"),  # spaces folded and stripped
        ("\u1100 \u1161", "아"),  # space between initial and medial breaks the syllable
    ],
)
def test_decode_policy(tok, jamo, expected):
    assert tok.decode(ids_of(tok, jamo)) == expected


def test_decode_ignores_blank_but_collapse_merges(tok):
    ids = tok.encode("가가")
    path = [0, ids[0], ids[0], 0, ids[1], 0, 0, ids[2], ids[3], ids[3], 0]
    # decode does not merge repeats: the first ㄱ is orphaned by the second, the repeated ㅏ becomes 아
    assert tok.decode(path) == "가가아"
    assert tok.collapse(path) == ids
    assert tok.decode(tok.collapse(path)) == "가가"


def well_formed(text: str) -> bool:
    return text == text.strip() and "  " not in text and all(ch == " " or 0xAC00 <= ord(ch) <= 0xD7A3 for ch in text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=68), max_size=60))
def test_decode_always_well_formed(ids):
    tok = JamoTokenizer()
    text = tok.decode(ids)
    assert well_formed(text)
    assert unicodedata.normalize("NFC", text) == text
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("text", ["hello", "가1", "ㄱ", "가!"])
def test_encode_rejects_unnormalised_text(tok, text):
    with pytest.raises(ValueError, match="normalize_text"):
        tok.encode(text)


def test_char_tokenizer_round_trip():
    tok = CharTokenizer()
    text = "place white in j three please"
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode("Bin") == tok.encode("bin")
    assert tok.vocab_size == 29 and tok.tokens[0] == "<blank>"
    with pytest.raises(ValueError, match="position 3"):
        tok.encode("bin7")


def test_get_tokenizer_by_name():
    assert isinstance(get_tokenizer("jamo"), JamoTokenizer)
    assert isinstance(get_tokenizer("char"), CharTokenizer)
    with pytest.raises(ValueError, match="choose from"):
        get_tokenizer("bpe")


def test_save_and_load(tmp_path, tok):
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    assert load_tokenizer(path) == tok
    CharTokenizer().save(path)
    assert load_tokenizer(path) == CharTokenizer()
    path.write_text('{"name": "jamo", "tokens": ["<blank>", " "]}', encoding="utf-8")
    with pytest.raises(ValueError, match="another vocabulary"):
        load_tokenizer(path)
