"""Hangul syllable arithmetic: the Unicode tables of initials, medials and finals, (de)composition.

Korean tokens are the conjoining jamo exactly as ``unicodedata.normalize("NFD", syllable)`` yields
them: 19 initials (U+1100..U+1112), 21 medials (U+1161..U+1175) and 27 finals (U+11A8..U+11C2), so
ㄱ as an initial and ㄱ as a final are different characters. Pure Python; no policy lives here.
"""

from __future__ import annotations



SYLLABLE_BASE = 0xAC00  # 가


NUM_INITIALS = 19


NUM_MEDIALS = 21


NUM_FINALS = 27  # without the "no final" slot


SYLLABLE_COUNT = NUM_INITIALS * NUM_MEDIALS * (NUM_FINALS + 1)  # 11172 syllables U+AC00..U+D7A3


INITIAL_BASE = 0x1100


MEDIAL_BASE = 0x1161


FINAL_BASE = 0x11A8


SILENT_INITIAL = chr(0x110B)  # ㅇ as an initial: carries a vowel that has no consonant


INITIALS = tuple(chr(INITIAL_BASE + i) for i in range(NUM_INITIALS))


MEDIALS = tuple(chr(MEDIAL_BASE + i) for i in range(NUM_MEDIALS))


FINALS = tuple(chr(FINAL_BASE + i) for i in range(NUM_FINALS))


def is_syllable(ch: str) -> bool:
    """True for a precomposed Hangul syllable (U+AC00..U+D7A3)."""
    return len(ch) == 1 and 0 <= ord(ch) - SYLLABLE_BASE < SYLLABLE_COUNT


def decompose_syllable(ch: str) -> tuple[int, int, int]:
    """Split a syllable into (initial, medial, final) indices; final is -1 when there is none."""
    if not is_syllable(ch):
        raise ValueError(f"not a Hangul syllable: {ch!r} (U+{ord(ch):04X})")
    offset = ord(ch) - SYLLABLE_BASE
    initial, rest = divmod(offset, NUM_MEDIALS * (NUM_FINALS + 1))
    medial, final = divmod(rest, NUM_FINALS + 1)
    return initial, medial, final - 1


def compose_syllable(initial: int, medial: int, final: int = -1) -> str:
    """Inverse of :func:`decompose_syllable`."""
    if not (0 <= initial < NUM_INITIALS and 0 <= medial < NUM_MEDIALS and -1 <= final < NUM_FINALS):
        raise ValueError(f"jamo indices out of range: initial={initial} medial={medial} final={final}")
    return chr(SYLLABLE_BASE + (initial * NUM_MEDIALS + medial) * (NUM_FINALS + 1) + final + 1)


def to_jamo(text: str) -> str:
    """Hangul syllables -> conjoining jamo (the NFD form); other characters are kept as they are."""
    out = []
    for ch in text:
        if is_syllable(ch):
            i, m, f = decompose_syllable(ch)
            out.append(INITIALS[i] + MEDIALS[m] + (FINALS[f] if f >= 0 else ""))
        else:
            out.append(ch)
    return "".join(out)


