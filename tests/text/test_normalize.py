import io
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lipnet_ko.app.cli import main
from lipnet_ko.text.normalize import NormalizationError, normalize_english, normalize_for_metrics, normalize_text, read_integer
from lipnet_ko.text.tokenizer import JamoTokenizer


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("3%", "삼 퍼센트"),
        ("(3%)/(삼 퍼센트) 올랐습니다.", "삼 퍼센트 올랐습니다"),
        ("안녕,  하세요!\t반갑습니다?", "안녕 하세요 반갑습니다"),
        ("KTX 타고 가요", "케이티엑스 타고 가요"),
        ("x 그리고 xx 먹었다 X", "그리고 먹었다"),
        ("b/ 음 n/ 네 알겠습니다", "음 네 알겠습니다"),
        ("1,500원입니다", "천오백원입니다"),
        ("2.5배", "이 점 오배"),
        ("２０２６년", "이천이십육년"),
        ("서울-부산", "서울 부산"),
        ("\u1100\u1161\u11a8", "각"),  # NFD input is recomposed
        ("", ""),
    ],
)
def test_normalize_text_examples(raw, expected):
    assert normalize_text(raw) == expected


def test_dual_form_choice():
    raw = "(2시)/(두 시)에 만나"
    assert normalize_text(raw) == "두 시에 만나"
    assert normalize_text(raw, dual="spelled") == "이시에 만나"


def test_latin_policies():
    with pytest.raises(ValueError, match="Latin letter 'K'"):
        normalize_text("KTX 타요", latin="error")
    assert normalize_text("KTX 타요", latin="keep", unknown="keep") == "ktx 타요"


def test_unknown_characters_never_pass_silently(caplog):
    with pytest.raises(ValueError, match="U\\+002B"):
        normalize_text("가+나")
    with pytest.raises(ValueError, match="unsupported"):
        normalize_text("ㄱㄴ 자음")  # compatibility jamo are not syllables
    assert normalize_text("가+나", unknown="drop") == "가 나"
    assert "dropping" in caplog.text
    with pytest.raises(ValueError, match="dual must be"):
        normalize_text("가", dual="both")


@pytest.mark.parametrize(
    "n, reading",
    [(0, "영"), (1, "일"), (10, "십"), (11, "십일"), (20, "이십"), (100, "백"), (105, "백오"), (1000, "천"),
     (10000, "만"), (11000, "만천"), (20000, "이만"), (100000, "십만"), (100000000, "일억"),
     (120034005, "일억이천삼만사천오"), (10**12, "일조")],
)  # fmt: skip
def test_read_integer(n, reading):
    assert read_integer(n) == reading


def test_number_readings_are_distinct():
    readings = [read_integer(n) for n in range(20001)]
    assert len(set(readings)) == len(readings)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40))
def test_random_text_never_crashes_encode_after_normalisation(raw):
    tok = JamoTokenizer()
    text = normalize_text(raw, unknown="drop")
    assert text == unicodedata.normalize("NFC", text)
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("가나다 각힣") + ["\u1100", "\u1161", "x", "3", "%", ".", ","]), max_size=30))
def test_normalisation_is_idempotent(raw):
    once = normalize_text(raw, unknown="drop")
    assert normalize_text(once) == once


def test_metrics_normaliser_keeps_what_labels_reject():
    assert normalize_for_metrics("OK, 3% 올랐다!") == "ok 삼 퍼센트 올랐다"


def test_normalize_english():
    assert normalize_english("Bin BLUE at F, two -- now!") == "bin blue at f two now"
    with pytest.raises(ValueError, match="unsupported"):
        normalize_english("bin 2 now")


def test_library_errors_name_the_keyword_argument():
    with pytest.raises(NormalizationError, match=r"or pass unknown='drop'$") as caught:
        normalize_text("가+나")
    assert caught.value.message_for_cli().endswith("or pass --unknown drop")
    with pytest.raises(NormalizationError, match=r"spell it in Hangul, or pass latin='spell'$") as caught:
        normalize_text("KTX", latin="error")
    assert caught.value.message_for_cli().endswith("or pass --latin spell")


def test_normalize_command_reports_each_bad_line_and_exits_1(tmp_path, capsys):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("(3%)/(삼 퍼센트) 올랐다.\n가+나\n", encoding="utf-8")
    second.write_text("KTX 타요\n좋아요\n", encoding="utf-8")
    assert main(["normalize", "--latin", "error", str(first), str(second)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == ["삼 퍼센트 올랐다", "", "", "좋아요"]  # failed lines stay as empty lines: aligned output
    assert err.splitlines() == [
        f"error: {first}:2: unsupported characters '+' (U+002B PLUS SIGN) in '가+나'; fix the transcript, or pass --unknown drop",
        f"error: {second}:1: Latin letter 'K' in 'KTX 타요'; spell it in Hangul, or pass --latin spell",
        "error: 2 of 4 lines could not be normalised (printed as empty lines)",
    ]
    assert "unknown='drop'" not in err


def test_normalize_command_every_line_bad_is_still_exit_1(tmp_path, capsys):
    (tmp_path / "bad.txt").write_text("가+나\n", encoding="utf-8")
    assert main(["normalize", str(tmp_path / "bad.txt")]) == 1
    assert "1 of 1 lines" in capsys.readouterr().err


def test_normalize_command_clean_input_and_stdin(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("3% 올랐다\n"))
    assert main(["normalize"]) == 0
    out, err = capsys.readouterr()
    assert out == "삼 퍼센트 올랐다\n" and err == ""


@pytest.mark.parametrize("make, reason", [("missing", "no such file"), ("folder", "is a folder"), ("latin-1", "not UTF-8 text")])
def test_normalize_command_unreadable_file_is_exit_2_before_any_output(tmp_path, capsys, make, reason):
    good = tmp_path / "good.txt"
    good.write_text("가나\n", encoding="utf-8")
    bad = tmp_path / "bad"
    if make == "folder":
        bad.mkdir()
    elif make == "latin-1":
        bad.write_bytes("café\n".encode("latin-1"))
    assert main(["normalize", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # nothing done: not even the readable file's lines
    (line,) = err.splitlines()
    assert line.startswith(f"error: cannot read {bad}: {reason}")
