"""N-gram language models for decoding: interpolated modified Kneser-Ney training, the ARPA format,
and the dense state tables the beam search gathers from.

Units: an LM is over *words* in the ARPA sense, and lipnet-ko writes text as a sequence of units:

* ``jamo``: conjoining jamo, one per unit (initial ㄱ and final ㄱ are different units), what
  :class:`~lipnet_ko.text.tokenizer.JamoTokenizer` emits; the beam search fuses these token by token.
* ``char``: letters, for the English :class:`~lipnet_ko.text.tokenizer.CharTokenizer` (GRID).
* ``syllable``: Hangul syllables, for scoring text (``lipnet-ko lm score``).

A space between words is the unit ``|``. Sentences are wrapped in ``<s>`` ... ``</s>``; ``<unk>``
stands for any unit not seen in training. Probabilities in ARPA files and in :meth:`NGramLM.logprob`
are log10, as in ARPA and KenLM; the decoder tables are natural logs.

A KenLM model loads too: write the training text with ``lipnet-ko lm corpus``/:func:`text_to_units`
(units separated by spaces), run ``lmplz -o 5 < text > model.arpa``, and pass the ``.arpa`` file.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import logging
import math
import os
import sys
import unicodedata
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from lipnet_ko.text.tokenizer import BLANK_ID, CharTokenizer, JamoTokenizer
from lipnet_ko.text.hangul import is_syllable, to_jamo
from lipnet_ko.files import PROJECT_DATA_DIR

log = logging.getLogger(__name__)

BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
SPACE_UNIT = "|"  # a space between words, as an LM unit (ARPA words cannot contain whitespace)
UNITS = ("jamo", "syllable", "char")
LOG10_ZERO = -99.0  # ARPA's "probability zero" (the unigram <s> is never predicted)
LN10 = math.log(10.0)
GZIP_MAGIC = b"\x1f\x8b"

DATA_DIR = PROJECT_DATA_DIR
LM_DIR = DATA_DIR / "lm"
# The default jamo LM (issue 18, open Korean): trained on lipnet_ko.text.sentence_pool.lm_text() with this recipe by
# build_default_lm() / `lipnet-ko lm build-default`; data/lm/README.md has the measurements behind the choice.
DEFAULT_LM_ORDER = 6
DEFAULT_LM_MIN_COUNTS: tuple[int, ...] | None = None  # None = no pruning
# GRID's grammar as letters (issue 19): every sentence of the six-slot grammar, equally weighted, in an 8-gram that
# spans a word and its neighbours' edges; the default LM of the char tokenizer (GRID's). build_grid_lm() writes it.
GRID_LM_ORDER = 8
DEFAULT_LM_PATHS = {  # the shipped models, by unit
    "jamo": LM_DIR / f"ko_open_jamo_{DEFAULT_LM_ORDER}gram.arpa.gz",
    "char": LM_DIR / f"grid_char_{GRID_LM_ORDER}gram.arpa.gz",
}
LEGACY_LM_PATH = LM_DIR / "ko_jamo_5gram.arpa.gz"  # the closed-vocabulary 5-gram (project_corpus()), no longer a default


def text_to_units(text: str, units: str = "jamo") -> list[str]:
    """Normalised text -> LM units (no ``<s>``/``</s>``).

    Args:
        text: one sentence, already normalised (Hangul syllables and single spaces for Korean).
        units: ``"jamo"``, ``"syllable"`` or ``"char"``.

    Returns:
        The units, with ``|`` for each space, e.g. ``"가 나"`` -> ``["ᄀ", "ᅡ", "|", "ᄂ", "ᅡ"]`` for jamo.
    """
    if units not in UNITS:
        raise ValueError(f"unknown units {units!r}; choose from {', '.join(UNITS)}")
    words = text.split()
    out: list[str] = []
    for i, word in enumerate(words):
        if i:
            out.append(SPACE_UNIT)
        out.extend(to_jamo(word) if units == "jamo" else word.lower() if units == "char" else word)
    return out


@functools.lru_cache(maxsize=None)
def _unit_checker(units: str) -> Callable[[str], bool]:
    """Whether a unit belongs to an LM over ``units``: a jamo or a letter the matching tokenizer has an id for
    (the LM is fused with its ids), or a Hangul syllable."""
    if units == "syllable":
        return is_syllable
    if units not in UNITS:
        raise ValueError(f"unknown units {units!r}; choose from {', '.join(UNITS)}")
    tokenizer = JamoTokenizer() if units == "jamo" else CharTokenizer()
    allowed = frozenset(t for i, t in enumerate(tokenizer.tokens) if i not in (BLANK_ID, tokenizer.space_id))
    return allowed.__contains__


def unsupported_characters(text: str, units: str = "jamo") -> list[str]:
    """The characters of ``text`` that an LM over ``units`` has no unit for, in order of first appearance.

    :func:`text_to_units` keeps such characters as units of their own (an emoji stays an emoji), and an LM
    trained on them is no longer a jamo (or char) LM; ``lipnet-ko lm build`` uses this to refuse them.

    Args:
        text: one sentence.
        units: ``"jamo"`` (Hangul syllables and the jamo :class:`~lipnet_ko.text.tokenizer.JamoTokenizer`
            has ids for), ``"syllable"`` (Hangul syllables) or ``"char"`` (the letters of
            :class:`~lipnet_ko.text.tokenizer.CharTokenizer`, any case).

    Returns:
        The offending characters, each once; whitespace separates words and is never one of them, and ``|``
        always is (it would read back as the space unit).
    """
    ok = _unit_checker(units)
    return [
        ch for ch in dict.fromkeys(text)
        if not ch.isspace() and (ch == SPACE_UNIT or not all(ok(u) for u in text_to_units(ch, units)))
    ]  # fmt: skip


def _describe_characters(chars: Sequence[str], limit: int = 5) -> str:
    """``'😀' (U+1F600 GRINNING FACE), ...``: characters as a message names them, the first ``limit`` of them."""
    named = ", ".join(f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'no name')})" for ch in chars[:limit])
    return named + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


def units_for_tokenizer(tokenizer) -> str:
    """The LM units that match a tokenizer's ids: ``"jamo"`` or ``"char"``."""
    if isinstance(tokenizer, JamoTokenizer):
        return "jamo"
    if isinstance(tokenizer, CharTokenizer):
        return "char"
    raise ValueError(f"no LM units for tokenizer {tokenizer!r}")


@dataclass(frozen=True)
class TokenTable:
    """An LM as dense tables over a tokenizer's ids, for the beam search.

    A state is the longest suffix of the history that the model can still extend (KenLM's state
    minimisation). ``rows[s, tid]`` is ``ln P(token | state)`` and ``next[s, tid]`` the state after it;
    ``end[s]`` is ``ln P(</s> | state)``; ``start`` is the state after ``<s>``. Column ``BLANK_ID`` is unused.
    """

    rows: np.ndarray  # float64 [num_states, vocab_size]
    next: np.ndarray  # int32 [num_states, vocab_size]
    end: np.ndarray  # float64 [num_states]
    start: int
    contexts: tuple[tuple[str, ...], ...]  # the history each state stands for, for tests and debugging


class ARPAError(ValueError):
    """A file that is not a readable ARPA model: not ARPA text, a malformed entry, a truncated file or corrupt
    gzip data. The message starts with the file's path (and line, where there is one)."""


class NGramLM:
    """A backoff n-gram model (ARPA semantics), with log10 probabilities.

    Args:
        ngrams: ``ngrams[n - 1]`` maps each n-gram (a tuple of n units) to ``(log10 prob, log10 backoff)``,
            for n = 1..order. The unigrams must include ``</s>``; ``<s>`` and ``<unk>`` should be there too.

    The decoder's :class:`TokenTable` for the tokenizer that matches the units (jamo or char) is built
    here, when the model is created or loaded, so the first decode pays nothing for it.
    """

    def __init__(self, ngrams: Sequence[dict[tuple[str, ...], tuple[float, float]]]) -> None:
        if not ngrams or not ngrams[0]:
            raise ValueError("an n-gram model needs at least unigrams")
        self.ngrams = [dict(level) for level in ngrams]
        self.order = len(self.ngrams)
        for n, level in enumerate(self.ngrams, start=1):
            bad = next((g for g in level if len(g) != n), None)
            if bad is not None:
                raise ValueError(f"{bad!r} is listed among the {n}-grams")
        if (EOS,) not in self.ngrams[0]:
            raise ValueError(f"the unigrams must include {EOS}")
        self.vocab = tuple(sorted(g[0] for g in self.ngrams[0]))
        known = set(self.vocab)
        for level in self.ngrams[1:]:
            bad = next((g for g in level if not known.issuperset(g)), None)
            if bad is not None:
                word = next(w for w in bad if w not in known)
                raise ValueError(f"the {len(bad)}-gram {' '.join(bad)!r} uses {word!r}, which is not among the 1-grams")
        self.units = self._infer_units()
        self._tables: dict[object, TokenTable] = {}
        if self.units in ("jamo", "char"):
            tokenizer = JamoTokenizer() if self.units == "jamo" else CharTokenizer()
            self.token_table(tokenizer)

    def _infer_units(self) -> str:
        words = [w for w in self.vocab if w not in (BOS, EOS, UNK, SPACE_UNIT)]
        if words and all(len(w) == 1 and (0x1100 <= ord(w) <= 0x11FF) for w in words):
            return "jamo"
        if words and all(len(w) == 1 and is_syllable(w) for w in words):
            return "syllable"
        if words and all(len(w) == 1 for w in words):
            return "char"
        return "word"

    def __repr__(self) -> str:
        counts = ", ".join(f"{n + 1}-grams={len(level)}" for n, level in enumerate(self.ngrams))
        return f"NGramLM(order={self.order}, units={self.units!r}, {counts})"

    # -- queries -----------------------------------------------------------------------------

    def logprob(self, word: str, context: Sequence[str] = ()) -> float:
        """log10 P(word | context) with ARPA backoff; unknown words score as ``<unk>``.

        Args:
            word: the unit to predict.
            context: the preceding units, oldest first (``<s>`` included if wanted); only the last
                ``order - 1`` matter.
        """
        known = self.ngrams[0]
        if (word,) not in known:
            word = UNK
        context = tuple(c if (c,) in known else UNK for c in context)
        context = context[len(context) - (self.order - 1) :] if len(context) >= self.order else context
        backoff = 0.0
        for start in range(len(context) + 1):
            h = context[start:]
            entry = self.ngrams[len(h)].get(h + (word,))
            if entry is not None:
                return backoff + entry[0]
            if h:
                hist = self.ngrams[len(h) - 1].get(h)
                if hist is not None:
                    backoff += hist[1]
        return LOG10_ZERO  # only when <unk> is missing from the model

    def score(self, units: Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """log10 probability of a unit sequence, wrapped in ``<s>``/``</s>`` by default."""
        history = [BOS] if bos else []
        total = 0.0
        for word in list(units) + ([EOS] if eos else []):
            total += self.logprob(word, history)
            history.append(word)
        return total

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """Per-unit perplexity over unit sequences (``</s>`` counted as a unit, as KenLM does)."""
        total, count = 0.0, 0
        for units in sentences:
            total += self.score(units)
            count += len(units) + 1
        return 10.0 ** (-total / max(count, 1))

    # -- decoder tables ----------------------------------------------------------------------

    def check_tokenizer(self, tokenizer) -> None:
        """Raise ValueError unless this LM can be fused token by token with ``tokenizer``'s ids."""
        want = units_for_tokenizer(tokenizer)
        if self.units != want:
            raise ValueError(
                f"this LM is over {self.units} units but the {tokenizer.name!r} tokenizer needs a {want}-level LM "
                f"for beam search fusion; build one with 'lipnet-ko lm build ... --units {want}'"
            )

    def token_table(self, tokenizer) -> TokenTable:
        """The decoder's dense tables for ``tokenizer`` (built once, then cached)."""
        key = (tokenizer.name, tokenizer.tokens)
        table = self._tables.get(key)
        if table is None:
            self.check_tokenizer(tokenizer)
            table = self._build_table(tokenizer)
            self._tables[key] = table
        return table

    def _build_table(self, tokenizer) -> TokenTable:
        # States: the empty history plus every n-gram (n < order) that the model extends or that has a
        # backoff weight; any other history behaves exactly like its longest suffix that is a state.
        states: list[tuple[str, ...]] = [()]
        for n in range(1, self.order):
            higher = self.ngrams[n]
            extended = {g[:-1] for g in higher}
            for g, (_, bo) in self.ngrams[n - 1].items():
                if g in extended or bo != 0.0:
                    states.append(g)
        state_id = {g: i for i, g in enumerate(states)}
        words = self.vocab
        word_id = {w: i for i, w in enumerate(words)}
        num_states, num_words = len(states), len(words)
        rows = np.full((num_states, num_words), LOG10_ZERO)
        nxt = np.zeros((num_states, num_words), dtype=np.int32)
        for g, (p, _) in self.ngrams[0].items():
            rows[0, word_id[g[0]]] = p
            nxt[0, word_id[g[0]]] = state_id.get(g, 0)
        by_order: dict[int, list[int]] = defaultdict(list)
        for i, g in enumerate(states[1:], start=1):
            by_order[len(g)].append(i)
        for n in range(1, self.order):
            ids = np.array(by_order.get(n, []), dtype=np.int64)
            if ids.size == 0:
                continue
            suffix = np.array([self._suffix_state(states[i], state_id) for i in ids.tolist()], dtype=np.int64)
            backoff = np.array([self.ngrams[n - 1][states[i]][1] for i in ids.tolist()])
            rows[ids] = backoff[:, None] + rows[suffix]
            nxt[ids] = nxt[suffix]
            # Explicit (n+1)-grams override the backed-off values.
            hs, ws, ps, targets = [], [], [], []
            for g, (p, _) in self.ngrams[n].items():
                h = state_id.get(g[:-1])
                if h is None:
                    continue
                hs.append(h)
                ws.append(word_id[g[-1]])
                ps.append(p)
                targets.append(state_id.get(g, -1) if n + 1 < self.order else -1)
            if hs:
                hs_a, ws_a, t_a = np.array(hs), np.array(ws), np.array(targets)
                rows[hs_a, ws_a] = ps
                own = t_a >= 0
                nxt[hs_a[own], ws_a[own]] = t_a[own]
                # an order-N n-gram (or one that is not a state) leads to the state of its longest
                # suffix that is one: the suffix's own transition, already in nxt (the suffix's row)
        # Map LM words onto token ids.
        unk = word_id.get(UNK)
        cols = np.full(tokenizer.vocab_size, -1, dtype=np.int64)
        for tid, tok in enumerate(tokenizer.tokens):
            if tid == BLANK_ID:
                continue
            unit = SPACE_UNIT if tid == tokenizer.space_id else tok
            cols[tid] = word_id.get(unit, -1 if unk is None else unk)
        tok_rows = np.full((num_states, tokenizer.vocab_size), LOG10_ZERO * LN10)
        tok_next = np.zeros((num_states, tokenizer.vocab_size), dtype=np.int32)
        have = cols >= 0
        tok_rows[:, have] = rows[:, cols[have]] * LN10
        tok_next[:, have] = nxt[:, cols[have]]
        tok_rows[:, BLANK_ID] = 0.0
        end = rows[:, word_id[EOS]] * LN10
        start = state_id.get((BOS,), 0)
        log.debug("LM token table: %d states x %d tokens", num_states, tokenizer.vocab_size)
        return TokenTable(tok_rows, tok_next, end, start, tuple(states))

    @staticmethod
    def _suffix_state(g: tuple[str, ...], state_id: dict) -> int:
        for k in range(1, len(g)):
            i = state_id.get(g[k:])
            if i is not None:
                return i
        return 0

    # -- ARPA I/O ----------------------------------------------------------------------------

    def to_arpa(self) -> str:
        """The model as ARPA text (six decimals, n-grams sorted, backoffs only where non-zero)."""
        out = ["", "\\data\\"]
        out += [f"ngram {n}={len(level)}" for n, level in enumerate(self.ngrams, start=1)]
        for n, level in enumerate(self.ngrams, start=1):
            out += ["", f"\\{n}-grams:"]
            for g in sorted(level):
                p, bo = level[g]
                line = f"{p:.6f}\t{' '.join(g)}"
                if n < self.order and bo != 0.0:
                    line += f"\t{bo:.6f}"
                out.append(line)
        out += ["", "\\end\\", ""]
        return "\n".join(out)

    def write_arpa(self, path: str | Path) -> None:
        """Write the model in ARPA format (gzip-compressed when the name ends in ``.gz``).

        The bytes go to a temporary file beside ``path`` that then replaces it, so a failed write leaves
        no partial model behind (and an existing file as it was).
        """
        path = Path(path)
        data = self.to_arpa().encode("utf-8")
        if path.suffix == ".gz":
            data = gzip.compress(data, mtime=0)  # mtime=0: rebuilding the same model gives the same bytes
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def read_arpa(cls, path: str | Path) -> "NGramLM":
        """Read an ARPA file (ours or KenLM's), plain or gzip-compressed (recognised by its first bytes).

        Raises:
            FileNotFoundError: if there is no file at ``path``.
            ARPAError: (a ``ValueError``) naming the file, and the line where there is one, for anything
                that is not a complete ARPA model: no ``\\data\\`` section, a malformed entry, a count that
                does not match, a file cut short, a ``.gz`` that is not gzip or whose data is corrupt.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no ARPA file at {path}" + (" (it is a directory)" if path.is_dir() else ""))
        try:
            with _open_text(path) as f:
                ngrams = _parse_arpa(f, path)
        except EOFError:
            raise ARPAError(f"{path}: truncated gzip file (the compressed data ends early)") from None
        except (gzip.BadGzipFile, zlib.error) as error:
            raise ARPAError(f"{path}: corrupt gzip data ({error})") from None
        except UnicodeDecodeError as error:
            raise ARPAError(
                f"{path}: not an ARPA text file (byte {error.start} is not UTF-8; for a KenLM binary model, pass its .arpa)"
            ) from None
        try:
            return cls(ngrams)
        except ValueError as error:
            raise ARPAError(f"{path}: {error}") from None

    load = read = read_arpa


def _open_text(path: Path):
    with open(path, "rb") as f:
        magic = f.read(len(GZIP_MAGIC))
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".gz":
        raise ARPAError(f"{path}: not a gzip file (the name ends in .gz but the data is not gzip-compressed)")
    return open(path, "r", encoding="utf-8")


def _parse_arpa(lines: Iterable[str], path: Path) -> list[dict[tuple[str, ...], tuple[float, float]]]:
    """The n-gram sections of ARPA text, checked against the ``\\data\\`` counts; ARPAError names ``path``."""
    counts: dict[int, int] = {}
    ngrams: list[dict[tuple[str, ...], tuple[float, float]]] = []
    section = None  # None before \data\, 0 in \data\, n in \n-grams:
    ended = False
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line == "\\data\\":
            section = 0
            continue
        if section is None:
            continue  # text before \data\ (KenLM does not write any, others may)
        if line == "\\end\\":
            ended = True
            break
        if line.startswith("\\") and line.endswith("-grams:"):
            n_text = line[1 : line.index("-")]
            if not n_text.isdigit():
                raise ARPAError(f"{path}:{lineno}: bad section header {line!r} (expected \\N-grams:)")
            n = int(n_text)
            if n != len(ngrams) + 1:
                raise ARPAError(f"{path}:{lineno}: section {line} out of order")
            ngrams.append({})
            section = n
            continue
        if section == 0:
            n_text, eq, count_text = line[6:].partition("=") if line.startswith("ngram ") else ("", "", "")
            if not (eq and n_text.strip().isdigit() and count_text.strip().isdigit()):
                raise ARPAError(f"{path}:{lineno}: expected 'ngram N=COUNT', got {line!r}")
            counts[int(n_text)] = int(count_text)
            continue
        parts = line.split()
        if len(parts) not in (section + 1, section + 2):
            raise ARPAError(f"{path}:{lineno}: a {section}-gram line needs prob, {section} words [, backoff]: {line!r}")
        try:
            p = float(parts[0])
            bo = float(parts[section + 1]) if len(parts) == section + 2 else 0.0
        except ValueError:
            raise ARPAError(f"{path}:{lineno}: bad number in {line!r}") from None
        ngrams[section - 1][tuple(parts[1 : section + 1])] = (p, bo)
    if section is None:
        raise ARPAError(f"{path}: not an ARPA file: no \\data\\ section")
    if not ngrams:
        raise ARPAError(f"{path}: truncated: no n-gram sections after \\data\\")
    for n, level in enumerate(ngrams, start=1):
        if counts.get(n, len(level)) != len(level):
            cut = "" if ended else " (truncated?)"
            raise ARPAError(f"{path}: header says ngram {n}={counts[n]} but the file lists {len(level)}{cut}")
    missing = sorted(n for n in counts if n > len(ngrams))
    if missing:
        raise ARPAError(f"{path}: truncated: the header counts {missing[0]}-grams but there is no \\{missing[0]}-grams: section")
    if not ended:
        raise ARPAError(f"{path}: truncated: no \\end\\ line after the {len(ngrams)}-grams")
    return ngrams


# -------------------------------------------------------------------------------------------
# Training: interpolated modified Kneser-Ney (Chen & Goodman 1998, section 3.5; as in KenLM's lmplz).
# The steps, each a function below: count the n-grams of the padded sentences; turn counts below the top
# order into continuation counts; estimate D1, D2, D3+ per order; discount each n-gram and give its context
# the freed mass (gamma); interpolate every order with the one below; write log10 probabilities with the
# gammas as backoff weights.

NGramCounts = list[Counter]  # [n - 1] maps each n-gram (a tuple of n units) to its count
Discounts = tuple[float, float, float]  # D1, D2, D3+


def _count_ngrams(sentences: Iterable[Sequence[str]], order: int) -> tuple[NGramCounts, int]:
    """Raw counts of every n-gram, n = 1..order, of the sentences wrapped in ``<s>``/``</s>``; and the sentence count."""
    raw: NGramCounts = [Counter() for _ in range(order)]
    n_sentences = 0
    for units in sentences:
        padded = [BOS, *units, EOS]
        n_sentences += 1
        for n in range(1, order + 1):
            level = raw[n - 1]
            for i in range(len(padded) - n + 1):
                level[tuple(padded[i : i + n])] += 1
    return raw, n_sentences


def _adjusted_counts(raw: NGramCounts) -> NGramCounts:
    """Kneser-Ney's adjusted counts: raw counts at the top order and for n-grams that start with ``<s>``
    (nothing can precede them), continuation counts (distinct left extensions) for the others; ``<s>`` alone
    is dropped (never predicted)."""
    order = len(raw)
    adjusted: NGramCounts = [Counter() for _ in range(order)]
    adjusted[order - 1] = raw[order - 1]
    for n in range(order - 1, 0, -1):
        level = adjusted[n - 1]
        for g in raw[n]:
            level[g[1:]] += 1  # one more distinct left extension of g[1:]
        for g, c in raw[n - 1].items():
            if g[0] == BOS:
                level[g] = c
    adjusted[0].pop((BOS,), None)
    return adjusted


def _discounts(counts: Counter, order: int) -> Discounts:
    """Modified KN discounts D1, D2, D3+ from the counts-of-counts of one order's (adjusted) counts."""
    n = [0] * 5
    for c in counts.values():
        if c <= 4:
            n[c] += 1
    try:
        y = n[1] / (n[1] + 2 * n[2])
        d = (1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3])
    except ZeroDivisionError:
        d = (-1.0, -1.0, -1.0)
    if not all(0.0 < dk <= k for k, dk in enumerate(d, start=1)):
        fallback = (0.5, 1.0, 1.5)
        log.warning(
            "order %d: counts-of-counts %s give unusable modified Kneser-Ney discounts %s (corpus too small); "
            "using %s", order, n[1:], tuple(round(x, 3) for x in d), fallback,
        )
        return fallback
    return d


def _discount_order(counts: Counter, discounts: Discounts) -> tuple[dict, dict]:
    """One order's discounted probabilities and backoff masses.

    Returns:
        ``(probs, gammas)``: ``probs[g] = (c(g) - D(c)) / c(h)``, with ``h = g[:-1]`` and ``D`` the discount
        for a count of 1, 2 or 3+; ``gammas[h]`` is the mass taken off ``h``'s continuations, which the
        lower order shares out.
    """
    d1, d2, d3 = discounts
    totals: dict[tuple[str, ...], float] = defaultdict(float)
    nk: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])  # continuations with count 1, 2, 3+
    for g, c in counts.items():
        h = g[:-1]
        totals[h] += c
        nk[h][min(c, 3) - 1] += 1
    gammas = {h: (d1 * nk[h][0] + d2 * nk[h][1] + d3 * nk[h][2]) / total for h, total in totals.items()}
    probs = {g: (c - discounts[min(c, 3) - 1]) / totals[g[:-1]] for g, c in counts.items()}
    return probs, gammas


def _interpolate(probs: list[dict], gammas: list[dict], vocab: Sequence[str]) -> list[dict]:
    """Interpolated probabilities, lowest order first: ``p(w|h) = u(w|h) + gamma(h) * p(w|h[1:])``; the
    unigrams are interpolated with the uniform distribution over ``vocab``."""
    uniform = 1.0 / len(vocab)
    gamma0 = gammas[0].get((), 1.0)
    interp: list[dict[tuple[str, ...], float]] = [{(w,): probs[0].get((w,), 0.0) + gamma0 * uniform for w in vocab}]
    for n in range(2, len(probs) + 1):
        lower = interp[n - 2]
        interp.append({g: u + gammas[n - 1][g[:-1]] * lower[g[1:]] for g, u in probs[n - 1].items()})
    return interp


def _backoff_ngrams(interp: list[dict], gammas: list[dict]) -> list[dict[tuple[str, ...], tuple[float, float]]]:
    """ARPA entries ``(log10 prob, log10 backoff)``: a context's backoff weight is its gamma (0 where it has none);
    ``<s>`` gets probability zero and its own backoff."""
    order = len(interp)
    ngrams: list[dict[tuple[str, ...], tuple[float, float]]] = []
    for n in range(1, order + 1):
        context_gamma = gammas[n] if n < order else {}
        level = {}
        for g, p in interp[n - 1].items():
            bo = context_gamma.get(g)
            level[g] = (math.log10(p), math.log10(bo) if bo else 0.0)
        ngrams.append(level)
    bo_bos = gammas[1].get((BOS,)) if order > 1 else None
    ngrams[0][(BOS,)] = (LOG10_ZERO, math.log10(bo_bos) if bo_bos else 0.0)
    return ngrams


def _pruned_ngrams(
    interp: list[dict], raw: NGramCounts, min_counts: Sequence[int]
) -> list[dict[tuple[str, ...], tuple[float, float]]]:
    """ARPA entries of the interpolated model without the n-grams seen fewer than ``min_counts[n - 1]`` times.

    A pruned n-gram's probability becomes its context's backoff weight times the lower order's, and each
    context's weight is recomputed so that its distribution still sums to one (as SRILM and KenLM do):
    ``bo(h) = (1 - sum p(w|h)) / (1 - sum p(w|h[1:]))`` over the continuations ``w`` that are kept.
    Counts are raw counts, which never grow with the order, so with non-decreasing thresholds every kept
    n-gram keeps its context and its lower-order suffix.
    """
    order = len(interp)
    kept = [dict(interp[0])]
    for n in range(2, order + 1):
        threshold = min_counts[n - 1]
        kept.append({g: p for g, p in interp[n - 1].items() if raw[n - 1][g] >= threshold})
    ngrams: list[dict[tuple[str, ...], tuple[float, float]]] = []
    for n in range(1, order + 1):
        higher_p: dict[tuple[str, ...], float] = defaultdict(float)  # context -> sum of its kept continuations' p
        lower_p: dict[tuple[str, ...], float] = defaultdict(float)  # ... and of the same continuations one order down
        if n < order:
            for g, p in kept[n].items():
                higher_p[g[:-1]] += p
                lower_p[g[:-1]] += kept[n - 1][g[1:]]
        contexts = list(kept[n - 1]) + ([(BOS,)] if n == 1 else [])
        level = {}
        for g in contexts:
            bo = 0.0
            if g in higher_p:
                bo = math.log10(max(1.0 - higher_p[g], 1e-12) / max(1.0 - lower_p[g], 1e-12))
            level[g] = (LOG10_ZERO if g == (BOS,) else math.log10(kept[n - 1][g]), bo)
        ngrams.append(level)
    return ngrams


def train_kneser_ney(
    sentences: Iterable[Sequence[str]],
    order: int = 5,
    discounts: Sequence[Sequence[float]] | None = None,
    min_counts: Sequence[int] | None = None,
) -> NGramLM:
    """Train an interpolated modified Kneser-Ney model.

    The highest order uses raw counts; lower orders use continuation counts (how many distinct
    units precede the n-gram), except n-grams that start with ``<s>``, which keep raw counts.
    Each order has discounts D1, D2, D3+ from its counts-of-counts (Chen & Goodman's estimates), and
    the unigrams are interpolated with the uniform distribution over the vocabulary (``<unk>`` included,
    ``<s>`` excluded), so every unit has non-zero probability.

    Args:
        sentences: unit sequences (see :func:`text_to_units`), without ``<s>``/``</s>``.
        order: the n of the model, at least 1.
        discounts: optional ``(D1, D2, D3+)`` per order (index 0 = unigrams) instead of the estimates.
        min_counts: optional minimum raw count per order (index 0 = unigrams, which are never pruned): an
            n-gram seen fewer times is left out and backs off (see :func:`_pruned_ngrams`); non-decreasing.

    Returns:
        The model; write it with :meth:`NGramLM.write_arpa`.
    """
    if order < 1:
        raise ValueError(f"order must be at least 1, got {order}")
    raw, n_sentences = _count_ngrams(sentences, order)
    if n_sentences == 0:
        raise ValueError("no training sentences")
    if discounts is not None and len(discounts) != order:
        raise ValueError(f"discounts must give (D1, D2, D3+) for each of the {order} orders, got {len(discounts)}")
    if min_counts is not None:
        min_counts = [int(c) for c in min_counts]
        if len(min_counts) != order or any(b < a for a, b in zip(min_counts, min_counts[1:])) or min_counts[0] > 1:
            raise ValueError(
                f"min_counts must give one count per order ({order}), non-decreasing, 0 or 1 for unigrams; got {min_counts}"
            )
    adjusted = _adjusted_counts(raw)
    vocab = sorted(({g[0] for g in raw[0]} | {UNK}) - {BOS})
    if discounts is None:
        disc = [_discounts(adjusted[n], n + 1) for n in range(order)]
    else:
        disc = [tuple(float(x) for x in d) for d in discounts]
    probs, gammas = zip(*(_discount_order(adjusted[n], disc[n]) for n in range(order)))
    interp = _interpolate(probs, gammas, vocab)
    if min_counts is None or not any(c > 1 for c in min_counts):
        model = NGramLM(_backoff_ngrams(interp, gammas))
    else:
        model = NGramLM(_pruned_ngrams(interp, raw, min_counts))
    log.info("trained %s on %d sentences (discounts %s)", model, n_sentences, [tuple(round(x, 4) for x in d) for d in disc])
    return model


# -------------------------------------------------------------------------------------------
# The shipped model and the project's training text.


def load_default_lm(units: str = "jamo") -> NGramLM:
    """The project's default LM (built from ``data/sentences``; see ``data/lm/README.md``).

    Raises:
        ValueError: for units with no shipped model.
        FileNotFoundError: if the file is missing, with the command that rebuilds it.
    """
    path = DEFAULT_LM_PATHS.get(units)
    if path is None:
        raise ValueError(f"no default LM for {units!r} units; shipped: {sorted(DEFAULT_LM_PATHS)}")
    if not path.is_file():
        raise FileNotFoundError(f"default LM {path} is missing; rebuild it as data/lm/README.md describes")
    return NGramLM.read_arpa(path)


def default_lm_path(tokenizer) -> Path | None:
    """Where the shipped LM over ``tokenizer``'s units lives (for the char tokenizer: GRID's grammar), or None."""
    return DEFAULT_LM_PATHS.get(units_for_tokenizer(tokenizer))


def default_lm_for(tokenizer) -> NGramLM | None:
    """The shipped LM a beam search over ``tokenizer``'s ids fuses by default, or None where none ships."""
    return None if default_lm_path(tokenizer) is None else load_default_lm(units_for_tokenizer(tokenizer))


def default_lm_text(folder: str | Path | None = None) -> list[str]:
    """The default LM's training text: :func:`lipnet_ko.text.sentence_pool.lm_text` (the pool's train sentences
    plus its extra non-test lines; never a val or test sentence), from ``folder`` or the shipped pool files."""
    from lipnet_ko.text.sentence_pool import POOL_DIR, lm_text

    return lm_text(POOL_DIR if folder is None else folder)


def text_digest(lines: Iterable[str]) -> str:
    """sha256 of the lines joined by newlines (each line ended by one): what a shipped LM's metadata records."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def metadata_path(arpa_path: str | Path) -> Path:
    """The JSON file beside a shipped ARPA file that says how it was built (``x.arpa.gz`` -> ``x.json``)."""
    arpa_path = Path(arpa_path)
    return arpa_path.with_name(arpa_path.name.removesuffix(".gz").removesuffix(".arpa") + ".json")


def build_default_lm(out: str | Path | None = None, folder: str | Path | None = None) -> Path:
    """Train the default jamo LM (:data:`DEFAULT_LM_ORDER`, :data:`DEFAULT_LM_MIN_COUNTS`) on
    :func:`default_lm_text` and write it, with its metadata JSON beside it (:func:`metadata_path`).

    Deterministic: the same text gives the same bytes (``tests/decoding/test_lm.py`` checks the shipped file).

    Args:
        out: the ``.arpa.gz`` to write; default the shipped path, ``DEFAULT_LM_PATHS["jamo"]``.
        folder: the sentence-pool files to read; default the shipped ``data/sentences/open``.

    Returns:
        The path written. Both files are replaced atomically.
    """
    out = DEFAULT_LM_PATHS["jamo"] if out is None else Path(out)
    lines = default_lm_text(folder)
    if not lines:
        raise ValueError("the sentence pool's LM text is empty; rebuild the pool with 'lipnet-ko text build'")
    model = train_kneser_ney([text_to_units(line, "jamo") for line in lines], order=DEFAULT_LM_ORDER,
                             min_counts=DEFAULT_LM_MIN_COUNTS)
    _write_shipped_lm(model, out, lines, {
        "units": "jamo",
        "order": DEFAULT_LM_ORDER,
        "min_counts": None if DEFAULT_LM_MIN_COUNTS is None else list(DEFAULT_LM_MIN_COUNTS),
        "smoothing": "interpolated modified Kneser-Ney (lipnet_ko.decoding.lm.train_kneser_ney)",
        "text": "lipnet_ko.text.sentence_pool.lm_text()",
    }, rebuild="lipnet-ko lm build-default")
    log.info("wrote %s (%d bytes, %s) from %d lines of lm_text()", out, out.stat().st_size, model, len(lines))
    return out


def _write_shipped_lm(model: NGramLM, out: Path, lines: Sequence[str], recipe: dict, rebuild: str) -> None:
    """Write a shipped LM and, beside it, its metadata JSON: ``recipe``, then what the text and the file are."""
    from lipnet_ko.files import write_json_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    model.write_arpa(out)
    write_json_atomic(metadata_path(out), {
        **recipe,
        "text_lines": len(lines),
        "text_sha256": text_digest(lines),
        "ngrams": [len(level) for level in model.ngrams],
        "arpa_bytes": out.stat().st_size,
        "arpa_sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "rebuild": rebuild,
    })


def build_grid_lm(out: str | Path | None = None) -> Path:
    """Train the char tokenizer's default LM, GRID's grammar (:func:`lipnet_ko.data.corpora.grid_sentences`, all
    64,000 sentences once), an order-:data:`GRID_LM_ORDER` Kneser-Ney model, and write it with its metadata JSON.

    The grammar is the prior GRID's papers decode with: it knows which words may stand in each slot, nothing about
    which sentences a test holds (every sentence has the same count). Fixed discounts: an enumerated grammar
    has no singletons to estimate them from. Deterministic, like :func:`build_default_lm`.
    """
    from lipnet_ko.data.corpora import grid_sentences

    out = DEFAULT_LM_PATHS["char"] if out is None else Path(out)
    lines = grid_sentences()
    model = train_kneser_ney([text_to_units(line, "char") for line in lines], order=GRID_LM_ORDER,
                             discounts=[(0.5, 1.0, 1.5)] * GRID_LM_ORDER)
    _write_shipped_lm(model, out, lines, {
        "units": "char",
        "order": GRID_LM_ORDER,
        "smoothing": "interpolated modified Kneser-Ney, discounts (0.5, 1.0, 1.5) at every order",
        "text": "lipnet_ko.data.corpora.grid_sentences(): every GRID sentence once",
    }, rebuild="lipnet-ko lm build-default --units char")
    log.info("wrote %s (%d bytes, %s) from the %d GRID sentences", out, out.stat().st_size, model, len(lines))
    return out


def project_corpus(grammar_samples: int = 3000, seed: int = 0, held_out_share: float = 0.2) -> list[str]:
    """The default LM's training sentences: ``grammar_samples`` sentences drawn from the command grammar
    plus the training part of the free sentences (the held-out part stays out for evaluation)."""
    import random

    from lipnet_ko.text.sentences import load_free_sentences, load_grammar, split_free_sentences

    train, _ = split_free_sentences(load_free_sentences(), held_out_share, seed=seed)
    return load_grammar().sample(random.Random(seed), grammar_samples) + train


# -------------------------------------------------------------------------------------------
# Command line: lipnet-ko lm {build,corpus,score,info}


BUILD_EPILOG = """\
Every character of a line must be one the chosen --units can hold: for jamo and syllable units, Hangul
syllables (jamo units also take the conjoining jamo the jamo tokenizer has ids for); for char units, the
letters a-z (any case) and the apostrophe. A line with anything else (an emoji, a digit, punctuation,
Latin letters in a Korean corpus, a literal '|') stops the build with an error naming the file, line and
character, so a jamo LM stays a jamo LM. Normalise Korean text first ('lipnet-ko normalize --unknown drop'
spells out digits and Latin letters and drops other symbols), or pass --skip-unsupported to leave such
lines out (a warning counts them). Blank lines are ignored.
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lm_command", required=True, metavar="{build,build-default,corpus,score,info}")
    build = sub.add_parser(
        "build", help="train a modified Kneser-Ney model from text files and write ARPA",
        description="Train an interpolated modified Kneser-Ney model from text files and write it as ARPA.",
        epilog=BUILD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    build.add_argument("text", nargs="+", type=Path, help="UTF-8 files, one normalised sentence per line")
    build.add_argument("--order", type=int, default=5, help="n-gram order, at least 1 (default 5)")
    build.add_argument("--units", choices=UNITS, default="jamo", help="LM units (default jamo)")
    build.add_argument("--skip-unsupported", action="store_true",
                       help="leave out lines with characters the units cannot hold, with a warning, instead of stopping")
    build.add_argument("--min-counts", type=int, nargs="+", default=None, metavar="N",
                       help="minimum raw count per order, unigrams first, non-decreasing (e.g. 0 0 0 0 0 2 2 2 2 "
                            "drops n-grams seen once from order 6 up); pruned n-grams back off")
    build.add_argument("--out", type=Path, required=True, help="output .arpa (or .arpa.gz) file")
    default = sub.add_parser(
        "build-default", help="rebuild a shipped default LM: jamo from the sentence pool's LM text, char from GRID's "
                              "grammar (data/lm/README.md)",
        description=f"Train the default jamo LM (order {DEFAULT_LM_ORDER}) on lipnet_ko.text.sentence_pool.lm_text(), or "
                    f"with --units char the GRID grammar LM (order {GRID_LM_ORDER}) on every GRID sentence, and write it "
                    "with its metadata JSON; byte-identical for the same input.",
    )  # fmt: skip
    default.add_argument("--units", choices=sorted(DEFAULT_LM_PATHS), default="jamo",
                         help="which default LM: jamo (Korean, the default) or char (GRID's grammar)")
    default.add_argument("--out", type=Path, default=None,
                         help="output .arpa.gz (default: the shipped file, "
                              f"{DEFAULT_LM_PATHS['jamo'].relative_to(DATA_DIR.parent)} or "
                              f"{DEFAULT_LM_PATHS['char'].relative_to(DATA_DIR.parent)})")
    corpus = sub.add_parser("corpus", help="write an LM's training text: the open sentence pool's LM text, or the grammar's")
    corpus.add_argument("--source", choices=("open", "grammar"), default="open",
                        help="open (default): lipnet_ko.text.sentence_pool.lm_text(), the default LM's text; "
                             "grammar: command-grammar samples + free sentences (the old 5-gram's text)")
    corpus.add_argument("--grammar-samples", type=int, default=3000, help="sentences sampled from the grammar")
    corpus.add_argument("--seed", type=int, default=0, help="sampling seed and free-sentence split seed")
    corpus.add_argument("--units", choices=UNITS, default=None,
                        help="write units separated by spaces (for KenLM's lmplz) instead of text")
    corpus.add_argument("--out", type=Path, required=True, help="output text file")
    score = sub.add_parser("score", help="print log10 probability and perplexity of each line of a text file")
    score.add_argument("lm", type=Path, help="ARPA file (.arpa or .arpa.gz)")
    score.add_argument("text", type=Path, help="UTF-8 file, one normalised sentence per line")
    info = sub.add_parser("info", help="print an ARPA model's order, units and n-gram counts")
    info.add_argument("lm", type=Path, help="ARPA file (.arpa or .arpa.gz)")


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, stripped line)`` for each non-blank line of a UTF-8 text file (a leading BOM is dropped).

    Raises:
        FileNotFoundError: no such file (or a directory).
        ValueError: the file is not UTF-8, naming the line.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} is a directory, not a text file" if path.is_dir() else f"no such file: {path}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        lineno = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{path}:{lineno}: not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8") from None
    return [(lineno, line.strip()) for lineno, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _build(args: argparse.Namespace) -> int:
    if args.order < 1:
        return _fail(f"--order must be at least 1, got {args.order}")
    if args.out.is_dir():
        return _fail(f"--out {args.out} is a directory; give the .arpa or .arpa.gz file to write")
    sentences: list[list[str]] = []
    n_lines = 0
    skipped: list[tuple[Path, int]] = []
    bad_chars: dict[str, None] = {}  # every character that got a line skipped, in order
    for path in args.text:
        lines = _read_lines(path)
        n_lines += len(lines)
        for lineno, line in lines:
            bad = unsupported_characters(line, args.units)
            if not bad:
                sentences.append(text_to_units(line, args.units))
            elif args.skip_unsupported:
                skipped.append((path, lineno))
                bad_chars.update(dict.fromkeys(bad))
            else:
                fix = "normalise the text first ('lipnet-ko normalize --unknown drop FILE') or " if args.units != "char" else ""
                return _fail(
                    f"{path}:{lineno}: {_describe_characters(bad)} cannot be written as {args.units} units; "
                    f"{fix}pass --skip-unsupported to leave such lines out"
                )
    if skipped:
        log.warning(
            "skipped %d of %d lines (the first at %s:%d) with characters %s units cannot hold: %s; "
            "without --skip-unsupported such a line stops the build",
            len(skipped), n_lines, *skipped[0], args.units, _describe_characters(list(bad_chars)),
        )  # fmt: skip
    if not sentences:
        files = ", ".join(map(str, args.text))
        why = (
            f"--skip-unsupported left out every non-blank line ({n_lines}): each has characters {args.units} units cannot hold"
            if skipped else "the text is empty or blank"
        )  # fmt: skip
        return _fail(f"no sentences to train on in {files}: {why}")
    if args.min_counts is not None and len(args.min_counts) != args.order:
        return _fail(f"--min-counts needs one count per order ({args.order}), got {len(args.min_counts)}")
    model = train_kneser_ney(sentences, order=args.order, min_counts=args.min_counts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.write_arpa(args.out)
    log.info("wrote %s (%d bytes)", args.out, args.out.stat().st_size)
    return 0


def _score(args: argparse.Namespace, model: NGramLM) -> int:
    lines = _read_lines(args.text)
    if not lines:
        return _fail(f"no sentences to score in {args.text}: the file is empty or blank")
    total, count = 0.0, 0
    for _, line in lines:
        units = text_to_units(line, model.units if model.units in UNITS else "syllable")
        lp = model.score(units)
        total += lp
        count += len(units) + 1
        print(f"{lp:.4f}\t{line}")
    print(f"perplexity {10.0 ** (-total / count):.3f} over {count} units")
    return 0


def run(args: argparse.Namespace) -> int:
    """``lipnet-ko lm ...``: 0 on success; 2, with one ``error:`` line on stderr, for input it cannot use."""
    try:
        if args.lm_command == "build":
            return _build(args)
        if args.lm_command == "build-default":
            if args.out is not None and args.out.is_dir():
                return _fail(f"--out {args.out} is a directory; give the .arpa.gz file to write")
            path = build_grid_lm(args.out) if args.units == "char" else build_default_lm(args.out)
            print(f"wrote {path} and {metadata_path(path)}")
            return 0
        if args.lm_command == "corpus":
            if args.grammar_samples < 0:
                return _fail(f"--grammar-samples must be 0 or more, got {args.grammar_samples}")
            if args.source == "open":
                from lipnet_ko.text.sentence_pool import lm_text

                lines = lm_text()
            else:
                lines = project_corpus(args.grammar_samples, args.seed)
            if args.units:
                lines = [" ".join(text_to_units(line, args.units)) for line in lines]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
            log.info("wrote %d sentences to %s", len(lines), args.out)
            return 0
        model = NGramLM.read_arpa(args.lm)
        if args.lm_command == "info":
            print(model)
            return 0
        return _score(args, model)
    except (OSError, ValueError) as error:  # FileNotFoundError, ARPAError, a file that is not UTF-8, ...
        return _fail(str(error))
