"""Korean viseme classes: which jamo look alike on the lips, and what mouth shape each class makes.

Owns the partition of the 67 position-specific jamo tokens of :class:`~lipnet_ko.text.tokenizer.JamoTokenizer`
(19 initials, 21 medials, 27 finals) into look-alike classes, and one :class:`MouthShape` target per
class for the synthetic face renderer. Jamo that share a class share a shape by construction, so the
synthetic corpus cannot separate 켜 from 꺼 by the lips alone, just as real video cannot, and a
decoder has to use context.

Class names carry their position as a prefix: ``"I:"`` initials, ``"M:"`` medials (vowels),
``"F:"`` finals. A syllable with no final simply has no ``F:`` entry. Pure Python, no numpy.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from lipnet_ko.text.hangul import FINALS, INITIALS, MEDIALS, is_syllable, to_jamo
from lipnet_ko.text.tokenizer import SPACE_TOKEN

WORD_BOUNDARY = SPACE_TOKEN  # how viseme_sequence marks a space between words


def _conjoining(position: str, letters: str) -> tuple[str, ...]:
    """Compatibility letters as typed (``"ㄱㅋ"``) -> conjoining jamo of one position (U+1100.. blocks).

    Goes through the Unicode character names ("HANGUL LETTER KIYEOK" -> "HANGUL JONGSEONG KIYEOK"),
    so the tables below stay readable and a typo fails at import time instead of silently
    naming the wrong code point.
    """
    prefix = {"initial": "HANGUL CHOSEONG ", "medial": "HANGUL JUNGSEONG ", "final": "HANGUL JONGSEONG "}[position]
    out = []
    for letter in letters:
        name = unicodedata.name(letter).removeprefix("HANGUL LETTER ")
        out.append(unicodedata.lookup(prefix + name))
    return tuple(out)


# Consonants at the start of a syllable, grouped by what the lips and front teeth show.
INITIAL_CLASSES: dict[str, tuple[str, ...]] = {
    # Articulated behind the teeth or in the throat: the lips only follow the vowel. The silent
    # ㅇ (a vowel with no consonant) belongs here because it shows nothing of its own either.
    "I:velar": _conjoining("initial", "ㄱㄲㅋㅎㅇ"),
    # Tongue tip on the ridge behind the upper teeth: a slightly open jaw, tongue tip sometimes visible.
    "I:coronal": _conjoining("initial", "ㄴㄷㄸㅌㄹ"),
    # Both lips close.
    "I:bilabial": _conjoining("initial", "ㅁㅂㅃㅍ"),
    # Teeth close together with a narrow gap; Korean ㅈ ㅉ ㅊ add slight lip rounding, ㅅ ㅆ share it.
    "I:sibilant": _conjoining("initial", "ㅅㅆㅈㅉㅊ"),
}

# Vowels. A y-onset (ㅑ ㅕ ㅛ ㅠ ㅒ ㅖ) is a tongue movement and barely shows on the lips, so each
# y-vowel joins its plain vowel; a w-onset is lip rounding and does show, so ㅘ ㅙ ㅚ ㅝ ㅞ form their
# own class, and ㅟ (rounded, then spread) its own again.
MEDIAL_CLASSES: dict[str, tuple[str, ...]] = {
    "M:i": _conjoining("medial", "ㅣㅡㅢ"),  # spread lips, nearly closed jaw; ㅡ differs from ㅣ only by the tongue
    "M:wi": _conjoining("medial", "ㅟ"),
    "M:o": _conjoining("medial", "ㅗㅛ"),
    "M:a": _conjoining("medial", "ㅏㅑ"),
    "M:u": _conjoining("medial", "ㅜㅠ"),
    "M:eo": _conjoining("medial", "ㅓㅕ"),
    "M:w": _conjoining("medial", "ㅘㅙㅚㅝㅞ"),
    "M:e": _conjoining("medial", "ㅐㅔㅒㅖ"),  # ㅐ and ㅔ have merged in present-day Seoul speech
}

# Consonants at the end of a syllable, grouped by how they are pronounced there, not how they are
# written. In final position Korean releases only seven sounds (ㄱ ㄴ ㄷ ㄹ ㅁ ㅂ ㅇ), so ㅅ ㅆ ㅈ ㅊ ㅌ ㅎ
# are pronounced as ㄷ and join the coronals, ㄲ ㅋ are pronounced as ㄱ, and ㅍ as ㅂ. A double final
# is pronounced as one of its members, and goes with that member, following the standard pronunciation
# rules (표준 발음법, articles 10 to 12) for a word said on its own: ㄳ→ㄱ (넋), ㄺ→ㄱ (닭), ㄵ ㄶ→ㄴ
# (앉다, 많다), ㄼ ㄽ ㄾ ㅀ→ㄹ (넓다, 외곬, 핥다, 싫다), ㄻ→ㅁ (삶), ㄿ→ㅂ (읊다), ㅄ→ㅂ (값). The
# exceptions of real speech (밟다 [밥따], 맑게 [말께]) are deliberately not modelled: one class per
# token keeps the mapping a pure function of the token.
FINAL_CLASSES: dict[str, tuple[str, ...]] = {
    "F:velar": _conjoining("final", "ㄱㄲㅋㅇㄳㄺ"),  # tongue back, lips stay with the vowel
    "F:coronal": _conjoining("final", "ㄴㄷㅅㅆㅈㅊㅌㅎㄵㄶ"),  # tongue tip up behind the teeth
    "F:liquid": _conjoining("final", "ㄹㄼㄽㄾㅀ"),  # tongue tip lifted and held, often visible
    "F:bilabial": _conjoining("final", "ㅁㅂㅍㄻㄿㅄ"),  # lips close
}

CLASSES: dict[str, tuple[str, ...]] = {**INITIAL_CLASSES, **MEDIAL_CLASSES, **FINAL_CLASSES}
CLASS_NAMES: tuple[str, ...] = tuple(CLASSES)  # fixed order: initials, medials, finals (for one-hot codes)

_CLASS_OF: dict[str, str] = {jamo: name for name, members in CLASSES.items() for jamo in members}


def _check_partition() -> None:
    """Every jamo token of each position lies in exactly one class of that position."""
    for position, jamo, classes in (
        ("initial", INITIALS, INITIAL_CLASSES),
        ("medial", MEDIALS, MEDIAL_CLASSES),
        ("final", FINALS, FINAL_CLASSES),
    ):
        members = [j for group in classes.values() for j in group]
        assert sorted(members) == sorted(jamo), f"{position} viseme classes do not partition the {position} jamo"


_check_partition()


@dataclass(frozen=True)
class MouthShape:
    """A target mouth posture, every field in [0, 1]; the renderer interpolates between targets.

    Fields are relative to a relaxed closed mouth (``REST_SHAPE``): 0 means none of it, 1 the most a
    speaker does in ordinary speech.
    """

    jaw_open: float  # vertical opening of the jaw / inner lip gap
    lip_width: float  # horizontal stretch of the lip corners (spread ㅣ high, rounded ㅜ low)
    lip_protrusion: float  # rounding and pushing the lips forward
    lip_closure: float  # 1 = lips pressed together (bilabials), overrides jaw_open for the lip gap
    teeth_visible: float  # how much of the upper and lower teeth shows
    tongue_visible: float  # how much of the tongue tip shows between the teeth

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"MouthShape.{field.name} must be in [0, 1], got {value}")

    def astuple(self) -> tuple[float, ...]:
        """The fields in declaration order, e.g. as a renderer's parameter vector."""
        return dataclasses.astuple(self)

    def lerp(self, other: MouthShape, t: float) -> MouthShape:
        """The shape a fraction ``t`` (0..1) of the way from ``self`` to ``other``."""
        return MouthShape(*(a + (b - a) * t for a, b in zip(self.astuple(), other.astuple())))


MOUTH_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MouthShape))

REST_SHAPE = MouthShape(  # silence between words and before/after a sentence
    jaw_open=0.05, lip_width=0.45, lip_protrusion=0.1, lip_closure=0.8, teeth_visible=0.0, tongue_visible=0.0
)

# One target per class. Consonant targets describe only what the consonant itself imposes; the
# renderer blends them with the neighbouring vowels (coarticulation), so e.g. velar initials keep a
# mid, neutral posture that the vowel will mostly override.
MOUTH_SHAPES: dict[str, MouthShape] = {
    "I:velar": MouthShape(
        jaw_open=0.3, lip_width=0.5, lip_protrusion=0.2, lip_closure=0.0, teeth_visible=0.3, tongue_visible=0.0
    ),
    "I:coronal": MouthShape(
        jaw_open=0.2, lip_width=0.55, lip_protrusion=0.1, lip_closure=0.0, teeth_visible=0.6, tongue_visible=0.5
    ),
    "I:bilabial": MouthShape(
        jaw_open=0.05, lip_width=0.45, lip_protrusion=0.15, lip_closure=1.0, teeth_visible=0.0, tongue_visible=0.0
    ),
    "I:sibilant": MouthShape(
        jaw_open=0.1, lip_width=0.5, lip_protrusion=0.4, lip_closure=0.0, teeth_visible=0.9, tongue_visible=0.0
    ),
    "M:i": MouthShape(
        jaw_open=0.15, lip_width=0.95, lip_protrusion=0.0, lip_closure=0.0, teeth_visible=0.8, tongue_visible=0.1
    ),
    "M:wi": MouthShape(
        jaw_open=0.15, lip_width=0.55, lip_protrusion=0.6, lip_closure=0.0, teeth_visible=0.4, tongue_visible=0.0
    ),
    "M:o": MouthShape(
        jaw_open=0.45, lip_width=0.25, lip_protrusion=0.8, lip_closure=0.0, teeth_visible=0.15, tongue_visible=0.0
    ),
    "M:a": MouthShape(
        jaw_open=1.0, lip_width=0.65, lip_protrusion=0.1, lip_closure=0.0, teeth_visible=0.5, tongue_visible=0.3
    ),
    "M:u": MouthShape(
        jaw_open=0.2, lip_width=0.1, lip_protrusion=1.0, lip_closure=0.0, teeth_visible=0.05, tongue_visible=0.0
    ),
    "M:eo": MouthShape(
        jaw_open=0.65, lip_width=0.5, lip_protrusion=0.25, lip_closure=0.0, teeth_visible=0.35, tongue_visible=0.2
    ),
    "M:w": MouthShape(  # the vowel after the w-glide: a mid opening between ㅏ, ㅓ and ㅔ
        jaw_open=0.55, lip_width=0.65, lip_protrusion=0.4, lip_closure=0.0, teeth_visible=0.4, tongue_visible=0.15
    ),
    "M:e": MouthShape(
        jaw_open=0.5, lip_width=0.85, lip_protrusion=0.05, lip_closure=0.0, teeth_visible=0.7, tongue_visible=0.3
    ),
    "F:velar": MouthShape(
        jaw_open=0.3, lip_width=0.5, lip_protrusion=0.2, lip_closure=0.0, teeth_visible=0.25, tongue_visible=0.0
    ),
    "F:coronal": MouthShape(
        jaw_open=0.15, lip_width=0.55, lip_protrusion=0.1, lip_closure=0.0, teeth_visible=0.7, tongue_visible=0.4
    ),
    "F:liquid": MouthShape(
        jaw_open=0.35, lip_width=0.5, lip_protrusion=0.1, lip_closure=0.0, teeth_visible=0.55, tongue_visible=0.8
    ),
    "F:bilabial": MouthShape(
        jaw_open=0.05, lip_width=0.45, lip_protrusion=0.15, lip_closure=1.0, teeth_visible=0.0, tongue_visible=0.0
    ),
}

# Vowel classes that begin with a rounded w-glide: the renderer can start the vowel from this shape
# and move to the MOUTH_SHAPES target, which is what makes 와 look different from 아 on video.
GLIDE_ONSETS: dict[str, MouthShape] = {
    "M:w": MouthShape(
        jaw_open=0.2, lip_width=0.15, lip_protrusion=0.9, lip_closure=0.0, teeth_visible=0.05, tongue_visible=0.0
    ),
    "M:wi": MouthShape(
        jaw_open=0.15, lip_width=0.15, lip_protrusion=0.95, lip_closure=0.0, teeth_visible=0.05, tongue_visible=0.0
    ),
}


def viseme_class(jamo_char: str) -> str:
    """The viseme class of one conjoining jamo, e.g. ``"\\u110f"`` (initial ㅋ) -> ``"I:velar"``.

    Args:
        jamo_char: one conjoining jamo from U+1100..U+1112 (initials), U+1161..U+1175 (medials)
            or U+11A8..U+11C2 (finals), as ``tokenizer.to_jamo`` and NFD produce them.

    Returns:
        The class name, prefixed by position (``"I:"``, ``"M:"`` or ``"F:"``).

    Raises:
        ValueError: for anything else, including compatibility jamo such as ``"ㅋ"`` (U+314B),
            which do not say whether they are an initial or a final.
    """
    name = _CLASS_OF.get(jamo_char) if isinstance(jamo_char, str) else None
    if name is None:
        shown = repr(jamo_char)
        if isinstance(jamo_char, str) and len(jamo_char) == 1:
            shown += f" (U+{ord(jamo_char):04X})"
        raise ValueError(
            f"{shown} is not a conjoining Hangul jamo (initial U+1100..U+1112, medial U+1161..U+1175, "
            "final U+11A8..U+11C2); split syllables with lipnet_ko.text.hangul.to_jamo first"
        )
    return name


def token_viseme_classes(tokenizer) -> list[str | None]:
    """The viseme class of every token id of a jamo tokenizer: ``classes[id]``.

    Args:
        tokenizer: a :class:`~lipnet_ko.text.tokenizer.JamoTokenizer` (anything whose ``tokens`` are the
            blank, the space and conjoining jamo).

    Returns:
        A list of length ``tokenizer.vocab_size``: the class name for each jamo token, ``None`` for
        the blank and the space, which have no mouth shape of their own.

    Raises:
        ValueError: for a tokenizer with any other token, e.g. the English ``CharTokenizer``: viseme
            classes are defined for Korean jamo only, and a list of ``None`` would silently make every
            viseme-level metric meaningless.
    """
    classes: list[str | None] = []
    for token_id, token in enumerate(tokenizer.tokens):
        if token_id == tokenizer.blank_id or token_id == tokenizer.space_id:
            classes.append(None)
        elif token in _CLASS_OF:
            classes.append(_CLASS_OF[token])
        else:
            raise ValueError(
                f"token {token!r} (id {token_id}) of the {getattr(tokenizer, 'name', type(tokenizer).__name__)!r} "
                "tokenizer is not a Korean jamo; viseme classes exist only for the 'jamo' tokenizer"
            )
    return classes


def _jamo_of(text: str) -> str:
    """Syllables -> conjoining jamo, rejecting anything that is neither Hangul nor a space."""
    for pos, ch in enumerate(text):
        if not (is_syllable(ch) or ch == WORD_BOUNDARY or ch in _CLASS_OF):
            raise ValueError(
                f"cannot map {ch!r} (U+{ord(ch):04X}) at position {pos} of {text!r} to visemes: only Hangul "
                "syllables, conjoining jamo and spaces are allowed; normalise the text first"
            )
    return to_jamo(unicodedata.normalize("NFC", text))


def viseme_sequence(text: str) -> tuple[str, ...]:
    """Korean text -> one viseme class per jamo, with ``WORD_BOUNDARY`` (a space) between words.

    Args:
        text: normalised Korean (Hangul syllables and single spaces); conjoining jamo are accepted too.

    Returns:
        E.g. ``viseme_sequence("켜 줘") == ("I:velar", "M:eo", " ", "I:sibilant", "M:w")``, the same
        as for ``"꺼 줘"``.

    Raises:
        ValueError: naming the first character that is not Hangul or a space.
    """
    return tuple(ch if ch == WORD_BOUNDARY else _CLASS_OF[ch] for ch in _jamo_of(text))


def viseme_string(text: str) -> str:
    """Korean text -> its viseme classes as one comparable string.

    Classes within a word are joined by ``"+"`` and words by a space, e.g.
    ``viseme_string("켜 줘") == "I:velar+M:eo I:sibilant+M:w"``. Two texts render the same mouth
    motion exactly when their viseme strings are equal. Spaces are compared as written: runs of
    spaces fold and ends are stripped, so pass normalised text.
    """
    words = [word for word in text.split(WORD_BOUNDARY) if word]
    return " ".join("+".join(viseme_sequence(word)) for word in words)


def lookalike_groups(texts: Iterable[str]) -> list[list[str]]:
    """Groups of distinct texts that share a viseme string (look identical on the lips).

    Returns:
        Only the groups with two or more members, each in input order; empty when every text is
        visually distinct.
    """
    by_string: dict[str, list[str]] = {}
    for text in texts:
        group = by_string.setdefault(viseme_string(text), [])
        if text not in group:
            group.append(text)
    return [group for group in by_string.values() if len(group) > 1]
