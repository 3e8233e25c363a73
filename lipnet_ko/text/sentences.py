"""The project's Korean sentence sets: the GRID-like command grammar and the free sentences.

Owns reading and checking ``data/sentences/grammar.json`` and ``data/sentences/free.txt`` (both
written for this project, see ``data/sentences/README.md``), sampling and enumerating grammar
sentences, a reproducible train/test split of the free sentences, and jamo coverage. Every sentence
this module returns is normalised Korean: Hangul syllables separated by single spaces, which
``JamoTokenizer.encode`` accepts as it is. Pure Python; numpy generators are accepted but not needed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from lipnet_ko.text.hangul import FINALS, INITIALS, MEDIALS, to_jamo
from lipnet_ko.files import PROJECT_DATA_DIR

DATA_DIR = PROJECT_DATA_DIR
SENTENCES_DIR = DATA_DIR / "sentences"
GRAMMAR_PATH = SENTENCES_DIR / "grammar.json"
FREE_SENTENCES_PATH = SENTENCES_DIR / "free.txt"

ALL_JAMO: frozenset[str] = frozenset(INITIALS + MEDIALS + FINALS)  # the 67 jamo tokens, positions kept apart

# Two options of one grammar slot must differ visibly for at least this many frames (160 ms at 25 fps) of
# their aligned mouth motion (``articulation.distinct_frames``). Options whose tracks differ only for two or
# three frames (뒤에/위에: an initial ㄷ against a silent ㅇ while the lips round; 구/육: a final ㄱ) were
# confused by trained models far more than any other pair, an error floor the grammar itself set.
MIN_DISTINCT_FRAMES = 4

_NORMALISED = re.compile(r"[\uac00-\ud7a3]+(?: [\uac00-\ud7a3]+)*")  # syllables, single inner spaces


def is_normalised(text: str) -> bool:
    """True when ``text`` is Hangul syllables separated by single spaces, with no space at either end."""
    return _NORMALISED.fullmatch(text) is not None


def _why_not_normalised(text: str) -> str:
    if not text:
        return "it is empty"
    if text != text.strip(" "):
        return "it starts or ends with a space"
    if "  " in text:
        return "it has a double space"
    bad = next(ch for ch in text if not (ch == " " or 0xAC00 <= ord(ch) <= 0xD7A3))
    return f"{bad!r} (U+{ord(bad):04X}) is not a Hangul syllable; write numbers and names in Hangul, no punctuation"


@dataclass(frozen=True)
class Slot:
    """One position of the grammar: its name and its options, each with an English gloss."""

    name: str
    options: tuple[str, ...]  # normalised Korean, e.g. ("공을", "컵을", ...)
    glosses: tuple[str, ...]  # one English gloss per option, for readers only


@dataclass(frozen=True)
class Grammar:
    """A GRID-like grammar: a sentence is one option of every slot, in slot order, joined by spaces."""

    slots: tuple[Slot, ...]

    @property
    def size(self) -> int:
        """Number of distinct sentences (the product of the slot sizes)."""
        size = 1
        for slot in self.slots:
            size *= len(slot.options)
        return size

    def sentence(self, choice: Iterable[int]) -> str:
        """The sentence that takes option ``choice[k]`` from slot ``k``."""
        choice = tuple(choice)
        if len(choice) != len(self.slots):
            raise ValueError(f"choice has {len(choice)} indices for a grammar of {len(self.slots)} slots")
        return " ".join(slot.options[i] for slot, i in zip(self.slots, choice))

    def sample(self, rng, n: int) -> list[str]:
        """``n`` sentences drawn uniformly (with replacement) from the grammar.

        Args:
            rng: a ``numpy.random.Generator`` or a ``random.Random``; the same seed gives the same list.
            n: number of sentences.

        Returns:
            A list of ``n`` sentences.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if hasattr(rng, "integers"):  # numpy.random.Generator

            def pick(k: int) -> int:
                return int(rng.integers(k))

        elif hasattr(rng, "randrange"):  # random.Random

            def pick(k: int) -> int:
                return rng.randrange(k)

        else:
            raise TypeError(f"rng must be a numpy.random.Generator or a random.Random, got {type(rng).__name__}")
        return [self.sentence(pick(len(slot.options)) for slot in self.slots) for _ in range(n)]

    def contains(self, text: str) -> bool:
        """True when ``text`` (normalised) is a sentence of the grammar: one option per slot, in order."""

        def match(k: int, rest: str) -> bool:
            if k == len(self.slots) - 1:
                return rest in self.slots[k].options
            return any(rest.startswith(option + " ") and match(k + 1, rest[len(option) + 1 :])
                       for option in self.slots[k].options)

        return bool(self.slots) and match(0, text)

    def sentences(self) -> Iterator[str]:
        """Every sentence of the grammar once, in slot-option order (``size`` of them)."""
        for words in itertools.product(*(slot.options for slot in self.slots)):
            yield " ".join(words)

    enumerate = sentences  # the same iterator, under the name some callers expect

    def lexicon(self) -> list[str]:
        """Sorted distinct words (space-separated units) over all options of all slots."""
        return sorted({word for slot in self.slots for option in slot.options for word in option.split(" ")})

    def longest(self) -> str:
        """The sentence with the most jamo tokens (spaces included): each slot's longest option."""
        return " ".join(max(slot.options, key=lambda o: len(to_jamo(o))) for slot in self.slots)


def _line_of(raw: str, needle: str) -> int:
    """1-based line of the first occurrence of ``needle`` in ``raw``, or 0 when absent."""
    at = raw.find(needle)
    return raw.count("\n", 0, at) + 1 if at >= 0 else 0


def load_grammar(path: str | Path | None = None) -> Grammar:
    """Read and check a grammar JSON file (default: ``data/sentences/grammar.json``).

    The file holds ``{"slots": [{"name": ..., "options": [{"text": ..., "gloss": ...}, ...]}, ...]}``
    in sentence order.

    Raises:
        ValueError: naming the file and line of the first problem: invalid JSON, a missing key, a
            slot with fewer than two options, an option that is not normalised Hangul, or a
            duplicate slot name or option.
    """
    path = Path(path) if path is not None else GRAMMAR_PATH
    raw = path.read_text(encoding="utf-8")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(config, dict) or not isinstance(config.get("slots"), list) or not config["slots"]:
        raise ValueError(f"{path}: expected an object with a non-empty 'slots' list")

    slots = []
    for k, entry in enumerate(config["slots"]):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise ValueError(f"{path}: slot {k} has no 'name'")
        where = f"{path}:{_line_of(raw, json.dumps(name, ensure_ascii=False))}: slot {name!r}"
        if any(s.name == name for s in slots):
            raise ValueError(f"{where}: duplicate slot name")
        options = entry.get("options")
        if not isinstance(options, list) or len(options) < 2:
            raise ValueError(f"{where}: needs an 'options' list of at least two entries")
        texts, glosses = [], []
        for j, option in enumerate(options):
            text = option.get("text") if isinstance(option, dict) else None
            if not isinstance(text, str):
                raise ValueError(f"{where}: option {j} has no 'text' string")
            line = _line_of(raw, json.dumps(text, ensure_ascii=False))
            if not is_normalised(text):
                raise ValueError(f"{path}:{line}: slot {name!r} option {text!r}: {_why_not_normalised(text)}")
            if text in texts:
                raise ValueError(f"{path}:{line}: slot {name!r} option {text!r} is listed twice")
            texts.append(text)
            glosses.append(str(option.get("gloss", "")))
        slots.append(Slot(name=name, options=tuple(texts), glosses=tuple(glosses)))
    return Grammar(slots=tuple(slots))


def load_free_sentences(path: str | Path | None = None) -> list[str]:
    """Read the free sentences, one normalised sentence per line (default: ``data/sentences/free.txt``).

    Returns:
        The sentences in file order.

    Raises:
        ValueError: naming the file and line of an empty line, a line that is not normalised
            Hangul, or a sentence already given on an earlier line.
    """
    path = Path(path) if path is not None else FREE_SENTENCES_PATH
    sentences: list[str] = []
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not is_normalised(line):
            raise ValueError(f"{path}:{lineno}: {line!r} is not a normalised sentence: {_why_not_normalised(line)}")
        if line in first_line:
            raise ValueError(f"{path}:{lineno}: duplicate of line {first_line[line]}: {line!r}")
        first_line[line] = lineno
        sentences.append(line)
    return sentences


def split_free_sentences(
    sentences: Iterable[str], held_out_share: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split sentences into (train, test), reproducibly and independently of their order.

    Each sentence gets a key from a hash of ``seed`` and its text; the ``round(n * held_out_share)``
    sentences with the smallest keys are held out. The same sentences and seed always give the same
    split, and adding a sentence moves at most one existing sentence between the parts.

    Args:
        sentences: distinct sentences.
        held_out_share: fraction held out for testing, in [0, 1).
        seed: selects a different, equally reproducible split.

    Returns:
        ``(train, test)``, each keeping the input order.

    Raises:
        ValueError: for a share outside [0, 1) or a repeated sentence (it would land in both parts).
    """
    sentences = list(sentences)
    if not 0.0 <= held_out_share < 1.0:
        raise ValueError(f"held_out_share must be in [0, 1), got {held_out_share}")
    if len(set(sentences)) != len(sentences):
        repeated = next(s for s in sentences if sentences.count(s) > 1)
        raise ValueError(f"sentences must be distinct; {repeated!r} is repeated")

    def key(sentence: str) -> bytes:
        return hashlib.sha256(f"{seed}\n{sentence}".encode("utf-8")).digest()

    n_test = round(len(sentences) * held_out_share)
    held_out = set(sorted(sentences, key=key)[:n_test])
    train = [s for s in sentences if s not in held_out]
    test = [s for s in sentences if s in held_out]
    return train, test


def jamo_coverage(sentences: Iterable[str]) -> tuple[set[str], set[str]]:
    """Which of the 67 position-specific jamo tokens the sentences use.

    Returns:
        ``(covered, missing)``: sets of conjoining jamo (U+1100.. initials, U+1161.. medials,
        U+11A8.. finals); ``covered | missing == ALL_JAMO``.
    """
    covered = {ch for sentence in sentences for ch in to_jamo(sentence) if ch in ALL_JAMO}
    return covered, set(ALL_JAMO - covered)
