"""Error rates and BLEU for Korean (and English) transcripts. Plain Python, no TensorFlow.

Conventions (the README has the same table):

* Both sides go through one normaliser first (:func:`lipnet_ko.text.normalize.normalize_for_metrics` by default).
* ``cer``: syllable (character) error rate with spaces removed; denominator = reference characters.
* ``jamo_cer``: the same on conjoining jamo (the NFD form), spaces removed.
* ``viseme_cer``: the same on the jamo's viseme classes (``lipnet_ko.text.visemes``), spaces removed: what the
  lips can show. Jamo of one class (ㅂ/ㅁ/ㅍ as initials, say) count as equal; a character with no Korean
  viseme class (a Latin letter of GRID) is a class of its own.
* ``wer``: over eojeol (space-separated words).
* ``swer``: space-normalised WER: the hypothesis is re-spaced to the reference's word boundaries
  through a character alignment, so errors of spacing alone are forgiven.
* ``bleu``: word (eojeol) 4-gram BLEU on a 0-100 scale with the brevity penalty; corpus level with
  ``exp`` smoothing for orders without matches, sentence level also with effective order.
* Corpus figures divide the summed edits by the summed reference lengths. ``average="utterance"``
  gives the mean of per-utterance ratios instead. An empty reference counts as length 1 in a
  ratio's denominator, so an empty hypothesis scores 0 and each inserted unit costs 1.

Every function takes two strings (one utterance) or two equally long lists (a corpus).
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Callable, Literal, Sequence

import editdistance
import numpy as np

from lipnet_ko.text.normalize import normalize_for_metrics
from lipnet_ko.text.hangul import to_jamo
from lipnet_ko.text.visemes import viseme_class
from lipnet_ko.files import read_text

Texts = str | Sequence[str]
Normalizer = Callable[[str], str] | None
Average = Literal["corpus", "utterance"]


def _pair(references: Texts, hypotheses: Texts, normalizer: Normalizer) -> tuple[list[str], list[str]]:
    if isinstance(references, str) != isinstance(hypotheses, str):
        raise TypeError("pass two strings or two lists of strings, not one of each")
    refs = [references] if isinstance(references, str) else list(references)
    hyps = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} references but {len(hyps)} hypotheses")
    if normalizer is not None:
        refs = [normalizer(r) for r in refs]
        hyps = [normalizer(h) for h in hyps]
    return refs, hyps


def _rate(pairs: list[tuple[Sequence, Sequence]], average: Average) -> float:
    if average not in ("corpus", "utterance"):
        raise ValueError(f"average must be 'corpus' or 'utterance', got {average!r}")
    if not pairs:
        raise ValueError("no utterances to score")
    edits = [editdistance.eval(r, h) for r, h in pairs]
    if average == "utterance":
        return sum(e / max(len(r), 1) for e, (r, _) in zip(edits, pairs)) / len(pairs)
    return sum(edits) / max(sum(len(r) for r, _ in pairs), 1)


def _chars(text: str) -> str:
    return text.replace(" ", "")


def cer(
    references: Texts, hypotheses: Texts, *, normalizer: Normalizer = normalize_for_metrics, average: Average = "corpus"
) -> float:
    """Syllable (character) error rate, spaces removed: edits / reference characters (a fraction, not %)."""
    refs, hyps = _pair(references, hypotheses, normalizer)
    return _rate([(_chars(r), _chars(h)) for r, h in zip(refs, hyps)], average)


def jamo_cer(
    references: Texts, hypotheses: Texts, *, normalizer: Normalizer = normalize_for_metrics, average: Average = "corpus"
) -> float:
    """Jamo error rate: CER on the conjoining-jamo (NFD) form, spaces removed."""
    refs, hyps = _pair(references, hypotheses, normalizer)
    return _rate([(to_jamo(_chars(r)), to_jamo(_chars(h))) for r, h in zip(refs, hyps)], average)


def viseme_classes(text: str) -> list[str]:
    """One viseme class per jamo of ``text``, spaces removed (what ``viseme_cer`` compares).

    A character that is not a conjoining jamo after ``to_jamo`` (a Latin letter, a digit) stands for itself.
    """
    classes = []
    for ch in to_jamo(_chars(text)):
        try:
            classes.append(viseme_class(ch))
        except ValueError:
            classes.append(ch)
    return classes


def viseme_cer(
    references: Texts, hypotheses: Texts, *, normalizer: Normalizer = normalize_for_metrics, average: Average = "corpus"
) -> float:
    """Viseme error rate: edits over the jamo's viseme-class sequences / reference jamo, spaces removed.

    The part of the jamo error that the video could have shown: a hypothesis that swaps look-alike jamo
    (바 for 마) has jamo errors but no viseme errors.
    """
    refs, hyps = _pair(references, hypotheses, normalizer)
    return _rate([(viseme_classes(r), viseme_classes(h)) for r, h in zip(refs, hyps)], average)


def wer(
    references: Texts, hypotheses: Texts, *, normalizer: Normalizer = normalize_for_metrics, average: Average = "corpus"
) -> float:
    """Word error rate over eojeol (space-separated words)."""
    refs, hyps = _pair(references, hypotheses, normalizer)
    return _rate([(r.split(), h.split()) for r, h in zip(refs, hyps)], average)


_INF = 1 << 30  # an unreachable cell: above any distance, and _INF + 1 still fits the int32 rows
_NUMPY_MIN_WIDTH = 48  # bands at least this many columns wide are computed with numpy, narrower ones in plain Python


def _alignment_band(n: int, m: int, distance: int) -> tuple[int, int]:
    """The diagonals ``k = i - j`` that an optimal alignment of lengths ``n``, ``m`` at ``distance`` edits can visit.

    A path through cell (i, j) costs at least ``|k|`` to get there and ``|(n - m) - k|`` to finish, so a cell
    with ``|k| + |n - m - k| > distance`` lies on no optimal path (Ukkonen 1985, "Algorithms for approximate
    string matching").
    """
    delta = n - m
    return -((distance - delta) // 2), (distance + delta) // 2  # ceil((delta - D) / 2), floor((delta + D) / 2)


def align_characters(reference: str, hypothesis: str) -> list[int]:
    """Levenshtein alignment: for each hypothesis character, the index of its reference character, or -1.

    -1 marks an inserted character; a match or a substitution gives the reference index. Of the optimal
    alignments, this is the one a backtrace of the full table from the end picks when it prefers a diagonal
    move (match/substitution), then an insertion, then a deletion. The full table is never held: only the
    band of diagonals that optimal paths can use is computed (its width is set by the distance, which
    ``editdistance`` gives first), one row in ``sqrt(n)`` is kept, and the backtrace recomputes one block of
    rows at a time. Memory: about ``2 * sqrt(n) * band`` numbers, ``band <= min(n, m) + 1``; time: about
    twice the band's area (in numpy for wide bands), after ``editdistance``'s own ``n * m`` steps in C.
    """
    n, m = len(reference), len(hypothesis)
    if n + m >= _INF:
        raise ValueError(f"texts of {n} and {m} characters are too long to align (at most {_INF - 1} together)")
    if reference == hypothesis:
        return list(range(m))
    if n == 0 or m == 0:
        return [-1] * m
    distance = editdistance.eval(reference, hypothesis)
    owner = _banded_alignment(reference, hypothesis, distance)
    if owner is None:  # the band was too narrow for the distance found: it was an underestimate
        owner = _banded_alignment(reference, hypothesis, max(n, m))
    return owner


def _banded_alignment(reference: str, hypothesis: str, distance: int) -> list[int] | None:
    """:func:`align_characters` inside the band for ``distance``; None if the best path in it costs more.

    Rows are stored by diagonal: index ``t`` of row ``i`` is column ``j = i - k_max + t``, so the cell above
    (i - 1, j) is ``t + 1`` of the previous row, the diagonal one (i - 1, j - 1) is ``t`` and the left one is
    ``t - 1``. Cells outside the band hold _INF or more; cells right of the last column may hold anything
    (no cell of the table reads them).
    """
    n, m = len(reference), len(hypothesis)
    k_min, k_max = _alignment_band(n, m, distance)
    width = k_max - k_min + 1
    block = max(1, math.isqrt(n))  # rows per checkpoint
    if width >= _NUMPY_MIN_WIDTH:
        hyp_codes = np.full(m + 2 * width + 1, -1, dtype=np.int32)  # hyp_codes[width + j] = hypothesis[j - 1]
        hyp_codes[width + 1 : width + 1 + m] = [ord(ch) for ch in hypothesis]
        ref_codes = [ord(ch) for ch in reference]
        steps = np.arange(width, dtype=np.int32)
        work = np.empty((2, width), dtype=np.int32)

        def new_rows(count: int):
            return np.full((count, width), _INF, dtype=np.int32)

        def next_row(prev: np.ndarray, i: int, out: np.ndarray) -> None:
            up, diag = work
            first = width + i - k_max
            np.add(prev[1:], 1, out=up[:-1])
            up[-1] = _INF
            np.add(prev, hyp_codes[first : first + width] != ref_codes[i - 1], out=diag)
            # row[t] = min(x[t], row[t - 1] + 1) is a running minimum of x[t] - t, shifted back by t
            np.minimum(up, diag, out=up)
            up -= steps
            np.minimum.accumulate(up, out=out)
            out += steps

    else:

        def new_rows(count: int):
            return [[_INF] * width for _ in range(count)]

        def next_row(prev: list, i: int, out: list) -> None:
            base, ref_char, left = i - k_max, reference[i - 1], _INF
            for t in range(max(0, -base), min(width - 1, m - base) + 1):
                up = prev[t + 1] + 1 if t + 1 < width else _INF
                diag = prev[t] + (ref_char != hypothesis[base + t - 1]) if base + t > 0 else _INF
                left = min(diag, up, left + 1)
                out[t] = left

    checkpoints = new_rows(n // block + 1)
    for j in range(min(m, -k_min) + 1):
        checkpoints[0][j + k_max] = j
    prev, row = new_rows(2)
    prev[:] = checkpoints[0]
    for i in range(1, n + 1):
        next_row(prev, i, row)
        if i % block == 0:
            checkpoints[i // block][:] = row
        prev, row = row, prev
    if prev[m - n + k_max] > distance:
        return None
    owner = [-1] * m
    rows = new_rows(block + 1)
    i, j = n, m
    while i > 0 and j > 0:
        top = (i - 1) // block * block
        rows[0][:] = checkpoints[top // block]
        for k in range(top + 1, i + 1):
            next_row(rows[k - 1 - top], k, rows[k - top])
        while i > top and j > 0:
            row, prev = rows[i - top], rows[i - 1 - top]
            t = j - i + k_max  # (i, j) lies on an optimal path, so inside the band
            here = row[t]
            if prev[t] + (reference[i - 1] != hypothesis[j - 1]) == here:
                owner[j - 1] = i - 1
                i, j = i - 1, j - 1
            elif t > 0 and row[t - 1] + 1 == here:
                j -= 1
            else:
                i -= 1
    return owner


def respace(reference: str, hypothesis: str) -> str:
    """Re-space ``hypothesis`` to the word boundaries of ``reference`` through a character alignment.

    Each hypothesis character aligned to a reference character (match or substitution, by
    :func:`align_characters`) joins that character's word; an inserted character joins the word of the
    character before it (the first word when there is none). Characters, and so CER, are unchanged; only
    spaces move. Memory stays near linear in the text's length (a 36,000-character line takes a few
    tens of MB).
    """
    ref_words = reference.split()
    word_of = [i for i, word in enumerate(ref_words) for _ in word]
    hyp = _chars(hypothesis)
    owner = align_characters("".join(ref_words), hyp)
    words: list[list[str]] = []
    current = -2
    for ch, index in zip(hyp, owner):
        w = word_of[index] if index >= 0 else (current if current >= 0 else 0)
        if w != current:
            words.append([])
            current = w
        words[-1].append(ch)
    return " ".join("".join(word) for word in words)


def swer(
    references: Texts, hypotheses: Texts, *, normalizer: Normalizer = normalize_for_metrics, average: Average = "corpus"
) -> float:
    """Space-normalised WER: WER after :func:`respace` (spacing-only errors forgiven)."""
    refs, hyps = _pair(references, hypotheses, normalizer)
    return _rate([(r.split(), respace(r, h).split()) for r, h in zip(refs, hyps)], average)


def _ngrams(words: list[str], max_order: int) -> Counter:
    return Counter(tuple(words[i : i + n]) for n in range(1, max_order + 1) for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class BLEUStats:
    """Sufficient statistics of BLEU: clipped n-gram matches and totals per order, and lengths."""

    matches: tuple[int, ...]
    totals: tuple[int, ...]
    hyp_len: int
    ref_len: int


def bleu_stats(references: Sequence[str], hypotheses: Sequence[str], max_order: int = 4) -> BLEUStats:
    """Accumulate BLEU statistics over already-normalised, space-tokenised texts."""
    matches, totals = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for ref, hyp in zip(references, hypotheses):
        r, h = ref.split(), hyp.split()
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        ref_counts = _ngrams(r, max_order)
        for gram, count in _ngrams(h, max_order).items():
            matches[len(gram) - 1] += min(count, ref_counts[gram])
            totals[len(gram) - 1] += count
    return BLEUStats(tuple(matches), tuple(totals), hyp_len, ref_len)


def bleu_from_stats(stats: BLEUStats, *, smooth: Literal["exp", "none"] = "exp", effective_order: bool = False) -> float:
    """BLEU (0-100) from statistics.

    ``smooth="exp"``: an order with no match gets precision 1 / (2^k * total), k counting such
    orders (the NIST geometric smoothing; Chen & Cherry 2014, method 3). ``effective_order`` stops the
    geometric mean at the highest order the hypothesis has n-grams for (sentence-level BLEU).
    """
    if smooth not in ("exp", "none"):
        raise ValueError(f"smooth must be 'exp' or 'none', got {smooth!r}")
    if stats.hyp_len == 0:
        return 0.0
    log_precisions = []
    halvings = 1.0
    for matched, total in zip(stats.matches, stats.totals):
        if total == 0:
            break
        if matched:
            log_precisions.append(math.log(matched / total))
        elif smooth == "exp":
            halvings *= 2
            log_precisions.append(math.log(1.0 / (halvings * total)))
        else:
            return 0.0
    order = len(log_precisions) if effective_order else len(stats.matches)
    if order == 0:
        return 0.0
    # Orders the hypothesis is too short for count as zero precision unless effective_order is on.
    if len(log_precisions) < order:
        return 0.0
    brevity = 1.0 if stats.hyp_len >= stats.ref_len else math.exp(1 - stats.ref_len / stats.hyp_len)
    return 100.0 * brevity * math.exp(sum(log_precisions) / order)


def bleu(
    references: Texts,
    hypotheses: Texts,
    *,
    normalizer: Normalizer = normalize_for_metrics,
    max_order: int = 4,
    smooth: Literal["exp", "none"] = "exp",
) -> float:
    """Word-level BLEU on a 0-100 scale.

    Two lists give corpus BLEU (statistics summed over utterances, then one score). Two strings give
    sentence BLEU, which also uses the effective order so that short sentences are not zeroed.
    """
    refs, hyps = _pair(references, hypotheses, normalizer)
    sentence = isinstance(references, str)
    return bleu_from_stats(bleu_stats(refs, hyps, max_order), smooth=smooth, effective_order=sentence)


@dataclass(frozen=True)
class Scores:
    """Corpus figures for one system; error rates are fractions, BLEU is 0-100."""

    utterances: int
    cer: float
    jamo_cer: float
    viseme_cer: float
    wer: float
    swer: float
    bleu: float
    cer_utterance_mean: float  # mean of per-utterance syllable CERs, for readers who want that view
    wer_utterance_mean: float

    def to_dict(self) -> dict:
        return asdict(self)


def score_corpus(
    references: Sequence[str], hypotheses: Sequence[str], *, normalizer: Normalizer = normalize_for_metrics
) -> Scores:
    """Every metric at once, normalising each text only once."""
    refs, hyps = _pair(list(references), list(hypotheses), normalizer)
    return Scores(
        utterances=len(refs),
        cer=cer(refs, hyps, normalizer=None),
        jamo_cer=jamo_cer(refs, hyps, normalizer=None),
        viseme_cer=viseme_cer(refs, hyps, normalizer=None),
        wer=wer(refs, hyps, normalizer=None),
        swer=swer(refs, hyps, normalizer=None),
        bleu=bleu(refs, hyps, normalizer=None),
        cer_utterance_mean=cer(refs, hyps, normalizer=None, average="utterance"),
        wer_utterance_mean=wer(refs, hyps, normalizer=None, average="utterance"),
    )


def configure_parser(parser) -> None:
    parser.add_argument("references", help="text file of references, one utterance a line")
    parser.add_argument("hypotheses", help="text file of hypotheses, same number of lines")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args) -> int:
    """``lipnet-ko score REF HYP``: corpus figures for two line-aligned text files.

    Exit 2, with one ``error:`` line and no figures, when a file cannot be read, is empty, or the two
    files differ in line count.
    """
    lines = {}
    for role, path in (("references", args.references), ("hypotheses", args.hypotheses)):
        try:
            lines[role] = read_text(path).splitlines()
        except (OSError, ValueError) as error:
            print(f"error: cannot read the {role} file {path}: {error}", file=sys.stderr)
            return 2
    refs, hyps = lines["references"], lines["hypotheses"]
    if not refs and not hyps:
        print(f"error: {args.references} and {args.hypotheses} are both empty: no utterance to score", file=sys.stderr)
        return 2
    if len(refs) != len(hyps):
        counts = [(path, len(texts), role) for path, texts, role in
                  ((args.references, refs, "reference"), (args.hypotheses, hyps, "hypothesis"))]  # fmt: skip
        empty = [f"{path} is empty" for path, count, _ in counts if count == 0]
        print(
            f"error: {'; '.join(empty) + ': ' if empty else ''}{counts[0][0]} has {counts[0][1]} reference lines but "
            f"{counts[1][0]} has {counts[1][1]} hypothesis lines; give one hypothesis line per reference line, in the same order",
            file=sys.stderr,
        )
        return 2
    scores = score_corpus(refs, hyps)
    if args.json:
        print(json.dumps(scores.to_dict(), indent=1))
    else:
        for key, value in scores.to_dict().items():
            shown = f"{value}" if key == "utterances" else (f"{value:.2f}" if key == "bleu" else f"{100 * value:.2f}%")
            print(f"{key:<20} {shown}")
    return 0
