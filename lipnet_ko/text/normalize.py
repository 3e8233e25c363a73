"""Korean transcript normalisation shared by labels and metrics.

``normalize_text`` turns a raw transcript (AIHub/OLKAVS style, or a user's own) into what the jamo
tokenizer accepts: precomposed Hangul syllables separated by single spaces. The steps, in order:

1. NFC, and NFKC for non-Hangul characters (full-width digits and letters become ASCII).
2. Dual transcriptions ``(철자)/(발음)`` keep one side: the pronounced form (second) by default.
3. Muted-word marks are removed: whitespace-separated tokens made only of ``x``/``X`` (``x``, ``xx``),
   and the noise tags ``b/ l/ o/ n/ u/`` of Korean speech transcripts.
4. Numbers are read out in Sino-Korean (``3%`` -> ``삼 퍼센트``, ``1,500`` -> ``천오백``, ``2.5`` -> ``이 점 오``).
5. Latin letters are spelled in Hangul letter names (``KTX`` -> ``케이티엑스``), or rejected, or kept.
6. Punctuation is removed (dashes, slashes and similar separators become spaces).
7. Whitespace is folded to single spaces and stripped.
8. Anything left that is not a Hangul syllable or a space raises ``ValueError`` (or is dropped with a
   logged warning, or kept, if asked): unknown characters never pass silently into labels.

Number reading is a simplification: every number is read digit-group-wise in Sino-Korean (``3개`` ->
``삼개``, not the native ``세 개``), which is how most Korean ASR normalisers treat unknown context.
"""

from __future__ import annotations

import logging
import re
import sys
import unicodedata
from typing import Literal

from lipnet_ko.text.hangul import is_syllable
from lipnet_ko.files import read_text

log = logging.getLogger(__name__)

DIGITS = "영일이삼사오육칠팔구"
SMALL_UNITS = ("", "십", "백", "천")
LARGE_UNITS = ("", "만", "억", "조", "경")  # every 10^4
MAX_NUMBER = 10 ** (4 * len(LARGE_UNITS)) - 1

LATIN_NAMES = {
    "a": "에이", "b": "비", "c": "씨", "d": "디", "e": "이", "f": "에프", "g": "지", "h": "에이치",
    "i": "아이", "j": "제이", "k": "케이", "l": "엘", "m": "엠", "n": "엔", "o": "오", "p": "피",
    "q": "큐", "r": "알", "s": "에스", "t": "티", "u": "유", "v": "브이", "w": "더블유", "x": "엑스",
    "y": "와이", "z": "제트",
}  # fmt: skip

_DUAL_FORM = re.compile(r"\(([^()/]*)\)\s*/\s*\(([^()/]*)\)")
_NOISE_TAG = re.compile(r"(?<!\S)[blonu]/")
_MUTED = re.compile(r"(?<!\S)[xX]+(?!\S)")
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_SEPARATORS = set("-‐‑‒–—―/\\|~_·•…")
_SPACES = re.compile(r"\s+")

DualChoice = Literal["pronounced", "spelled"]
LatinPolicy = Literal["spell", "error", "keep"]
UnknownPolicy = Literal["error", "drop", "keep"]


class NormalizationError(ValueError):
    """A transcript the chosen policy rejects. ``option=value`` is the keyword argument that would accept it.

    ``str(error)`` gives the fix in Python form (``pass unknown='drop'``) for API users;
    :meth:`message_for_cli` gives it as a command-line flag (``pass --unknown drop``).
    """

    def __init__(self, problem: str, fix: str, option: str, value: str):
        self.problem, self.fix, self.option, self.value = problem, fix, option, value
        super().__init__(f"{problem}; {fix}, or pass {option}={value!r}")

    def message_for_cli(self) -> str:
        return f"{self.problem}; {self.fix}, or pass --{self.option} {self.value}"


def read_integer(n: int) -> str:
    """Sino-Korean reading of a non-negative integer: 0 -> 영, 10 -> 십, 11000 -> 만천, 10**8 -> 일억."""
    if n < 0 or n > MAX_NUMBER:
        raise ValueError(f"cannot read {n}: only 0..{MAX_NUMBER} are supported")
    if n == 0:
        return DIGITS[0]
    groups = []
    group_index = 0
    while n:
        n, group = divmod(n, 10000)
        if group:
            words = []
            for pos in range(3, -1, -1):
                d = group // 10**pos % 10
                if d == 0:
                    continue
                # 일 is silent before 십/백/천 (십, 백, 천), and before 만 when it is the whole group (만, not 일만).
                digit = "" if d == 1 and (pos > 0 or (group == 1 and group_index == 1)) else DIGITS[d]
                words.append(digit + SMALL_UNITS[pos])
            groups.append("".join(words) + LARGE_UNITS[group_index])
        group_index += 1
    return "".join(reversed(groups))


def read_number(token: str) -> str:
    """Read a number token such as ``1,500`` or ``3.14``: integer part grouped, decimals digit by digit.

    Integers too long to read with units (past 경) are read digit by digit, as identifiers are.
    """
    whole, _, frac = token.replace(",", "").partition(".")
    value = int(whole)
    text = read_integer(value) if value <= MAX_NUMBER else "".join(DIGITS[int(d)] for d in whole)
    if frac:
        text += " 점 " + "".join(DIGITS[int(d)] for d in frac)
    return text


def _read_numbers(text: str) -> str:
    text = _NUMBER.sub(lambda m: read_number(m.group(0)), text)
    return text.replace("%", " 퍼센트 ")


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _fold(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def normalize_text(
    text: str,
    *,
    dual: DualChoice = "pronounced",
    latin: LatinPolicy = "spell",
    unknown: UnknownPolicy = "error",
    read_numbers: bool = True,
) -> str:
    """Normalise a Korean transcript for labels and metrics (see the module docstring for the steps).

    Args:
        text: raw transcript.
        dual: which side of ``(철자)/(발음)`` to keep: ``"pronounced"`` (second) or ``"spelled"`` (first).
        latin: ``"spell"`` Latin letters as Hangul letter names, ``"error"`` to reject them with a
            :class:`NormalizationError` (a ``ValueError``), or ``"keep"`` them lowercased (for metrics on mixed text).
        unknown: what to do with characters that remain after all rules (neither Hangul syllable nor
            space): ``"error"`` raises :class:`NormalizationError` naming them, ``"drop"`` removes them with a
            warning in the log, ``"keep"`` leaves them (metrics only; the tokenizer will refuse them).
        read_numbers: read digits out in Sino-Korean; when False, digits count as unknown characters.

    Returns:
        The normalised string: with the defaults, only Hangul syllables and single spaces.
    """
    if dual not in ("pronounced", "spelled"):
        raise ValueError(f"dual must be 'pronounced' or 'spelled', got {dual!r}")
    if latin not in ("spell", "error", "keep"):
        raise ValueError(f"latin must be 'spell', 'error' or 'keep', got {latin!r}")
    if unknown not in ("error", "drop", "keep"):
        raise ValueError(f"unknown must be 'error', 'drop' or 'keep', got {unknown!r}")
    original = text
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch if is_syllable(ch) else unicodedata.normalize("NFKC", ch) for ch in text)
    text = _DUAL_FORM.sub(lambda m: m.group(2) if dual == "pronounced" else m.group(1), text)
    text = _NOISE_TAG.sub(" ", text)
    text = _MUTED.sub(" ", text)
    if read_numbers:
        text = _read_numbers(text)
    out = []
    for ch in text:
        if is_syllable(ch) or ch.isspace():
            out.append(" " if ch.isspace() else ch)
        elif "a" <= ch.lower() <= "z" and ch.isascii():
            if latin == "error":
                raise NormalizationError(f"Latin letter {ch!r} in {original!r}", "spell it in Hangul", "latin", "spell")
            out.append(LATIN_NAMES[ch.lower()] if latin == "spell" else ch.lower())
        elif ch in _SEPARATORS:
            out.append(" ")
        elif _is_punctuation(ch):
            continue
        else:
            out.append(ch)
    def allowed(ch: str) -> bool:
        return is_syllable(ch) or ch == " " or (latin == "keep" and ch.isascii() and ch.isalpha())

    return _apply_unknown_policy(_fold("".join(out)), allowed, unknown, original)


def _apply_unknown_policy(text: str, allowed, unknown: UnknownPolicy, original: str) -> str:
    """Raise on, drop (with a warning) or keep the characters of ``text`` that ``allowed`` rejects."""
    bad = sorted({ch for ch in text if not allowed(ch)})
    if not bad or unknown == "keep":
        return text
    names = ", ".join(f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')})" for ch in bad)
    if unknown == "error":
        raise NormalizationError(f"unsupported characters {names} in {original!r}", "fix the transcript", "unknown", "drop")
    log.warning("dropping unsupported characters %s from %r", names, original)
    return _fold("".join(" " if ch in bad else ch for ch in text))


def normalize_for_metrics(text: str) -> str:
    """The normalisation CER/WER/BLEU apply to both sides: labels' rules, but Latin and unknowns kept.

    Keeping them (rather than raising) lets a metric score any hypothesis; Korean conventions
    (dual forms, muted marks, numbers, punctuation, spacing) still apply, so ``3%`` and ``삼 퍼센트``
    score as equal.
    """
    return normalize_text(text, latin="keep", unknown="keep")


def normalize_english(text: str, *, unknown: UnknownPolicy = "error") -> str:
    """GRID-style English normalisation: lowercase, punctuation removed (apostrophes kept), spaces folded.

    Other characters (digits, say) follow ``unknown`` as in :func:`normalize_text`.
    """
    original = text
    text = unicodedata.normalize("NFKC", text).lower()
    out = []
    for ch in text:
        if ("a" <= ch <= "z") or ch == "'":
            out.append(ch)
        elif ch.isspace() or ch in _SEPARATORS:
            out.append(" ")
        elif _is_punctuation(ch):
            continue
        else:
            out.append(ch)
    return _apply_unknown_policy(_fold("".join(out)), lambda ch: "a" <= ch <= "z" or ch in " '", unknown, original)


def configure_parser(parser) -> None:
    parser.add_argument("files", nargs="*", help="text files, one transcript a line ('-' or none: standard input)")
    parser.add_argument("--dual", choices=["pronounced", "spelled"], default="pronounced",
                        help="which side of (spelled)/(pronounced) to keep")
    parser.add_argument("--latin", choices=["spell", "error", "keep"], default="spell", help="how to treat Latin letters")
    parser.add_argument("--unknown", choices=["error", "drop", "keep"], default="error", help="what to do with other characters")


def run(args) -> int:
    """``lipnet-ko normalize``: print each input line normalised; report bad lines and go on.

    Every input is read first: a file that cannot be read (missing, a folder, not UTF-8) stops the command
    before anything is printed (exit 2). A line that cannot be normalised is printed as an empty line, so
    the output stays line-aligned with the input, and reported on standard error with its file and line
    number; the command then goes on and ends with a count (exit 1).
    """
    inputs = []
    for path in args.files or ["-"]:
        try:
            inputs.append(("<stdin>", sys.stdin.read()) if path == "-" else (path, read_text(path)))
        except (OSError, ValueError) as error:
            print(f"error: cannot read {path}: {error}", file=sys.stderr)
            return 2
    failures = total = 0
    for name, text in inputs:
        for lineno, line in enumerate(text.splitlines(), 1):
            total += 1
            try:
                print(normalize_text(line, dual=args.dual, latin=args.latin, unknown=args.unknown))
            except ValueError as error:
                failures += 1
                print("", flush=True)
                message = error.message_for_cli() if isinstance(error, NormalizationError) else str(error)
                print(f"error: {name}:{lineno}: {message}", file=sys.stderr, flush=True)
    if failures:
        print(f"error: {failures} of {total} lines could not be normalised (printed as empty lines)", file=sys.stderr)
        return 1
    return 0
