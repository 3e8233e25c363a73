"""Evaluation reports: decoded texts in, JSON + Markdown + confusion heatmaps out.

Owns the report that ``lipnet-ko evaluate`` writes once a test set has been decoded with several
decoders (greedy, beam, beam + LM): corpus figures from :func:`lipnet_ko.text.metrics.score_corpus`,
per-speaker and per-utterance error rates, and jamo confusion matrices whose rows and columns are
grouped by viseme class (:mod:`lipnet_ko.text.visemes`), so that confusions between look-alike jamo sit
in blocks on the diagonal. Texts only: no model, no TensorFlow; matplotlib is imported when a
plot is drawn.

Every file is written atomically (:mod:`lipnet_ko.files`): a reader sees the old file or the whole
new one, and a failed :func:`write_report` leaves none of its files behind.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from lipnet_ko.text import metrics
from lipnet_ko.files import replace_atomically, temp_path
from lipnet_ko.text.normalize import normalize_for_metrics
from lipnet_ko.text.visemes import CLASS_NAMES, token_viseme_classes, viseme_class

INSERTION = "<ins>"  # reference-side label of a hypothesis token with no reference token
DELETION = "<del>"  # hypothesis-side label of a reference token with no hypothesis token
EDIT_GROUP = "edit"  # the group of INSERTION and DELETION in label_groups
NO_SPEAKER = "(unknown)"  # per-speaker key of utterances without a speaker when others have one

REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"


@dataclass(frozen=True)
class Utterance:
    """One decoded test clip: its reference and each decoder's hypothesis."""

    clip_id: str
    reference: str
    hypotheses: dict[str, str]  # decoder name -> decoded text, e.g. {"greedy": ..., "beam": ..., "beam_lm": ...}
    speaker: str | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        if not self.hypotheses:
            raise ValueError(f"utterance {self.clip_id!r} has no hypotheses; give at least one decoder's text")
        for name, text in self.hypotheses.items():
            if not isinstance(text, str):
                raise TypeError(f"utterance {self.clip_id!r}: hypothesis of {name!r} must be a str, got {type(text).__name__}")
        if not isinstance(self.reference, str):
            raise TypeError(f"utterance {self.clip_id!r}: reference must be a str, got {type(self.reference).__name__}")


def _decoder_names(utterances: Sequence[Utterance]) -> list[str]:
    """The decoders every utterance was decoded with, in the first utterance's order."""
    if not utterances:
        raise ValueError("no utterances to report on")
    names = list(utterances[0].hypotheses)
    seen_clips: set[str] = set()
    for utt in utterances:
        if utt.clip_id in seen_clips:
            raise ValueError(f"clip {utt.clip_id!r} is listed twice; each clip must appear once")
        seen_clips.add(utt.clip_id)
        if set(utt.hypotheses) != set(names):
            raise ValueError(
                f"clip {utt.clip_id!r} has hypotheses for {sorted(utt.hypotheses)} but clip "
                f"{utterances[0].clip_id!r} has {sorted(names)}; decode every clip with the same decoders"
            )
    return names


def _speaker_figures(utterances: Sequence[Utterance], decoder: str) -> dict[str, dict]:
    by_speaker: dict[str, list[Utterance]] = {}
    for utt in utterances:
        by_speaker.setdefault(utt.speaker if utt.speaker is not None else NO_SPEAKER, []).append(utt)
    figures = {}
    for speaker in sorted(by_speaker):
        group = by_speaker[speaker]
        refs = [u.reference for u in group]
        hyps = [u.hypotheses[decoder] for u in group]
        figures[speaker] = {"utterances": len(group), "cer": metrics.cer(refs, hyps), "wer": metrics.wer(refs, hyps)}
    return figures


def _skipped_rows(skipped: Iterable[Mapping]) -> list[dict]:
    rows = []
    for k, item in enumerate(skipped):
        if not item.get("clip_id") or not item.get("reason"):
            raise ValueError(f"skipped entry {k} ({dict(item)!r}) needs a clip_id and a reason")
        rows.append({"clip_id": str(item["clip_id"]), "split": item.get("split"), "reason": str(item["reason"])})
    return rows


def build_report(utterances: Iterable[Utterance], *, title: str, meta: Mapping, skipped: Iterable[Mapping] = ()) -> dict:
    """Score every decoder on the same utterances.

    Args:
        utterances: the decoded test clips; each must carry a hypothesis for the same decoders.
        title: the report's heading.
        meta: what was evaluated, e.g. ``{"model": "runs/a/model.keras", "data": "synth:test"}``;
            values that JSON cannot hold (paths, say) are stored as ``str``.
        skipped: the test clips that could not be scored, each ``{"clip_id", "reason"}`` and optionally
            ``"split"``: the figures leave them out, the report lists them.

    Returns:
        A JSON-ready dict::

            {"title": str, "meta": dict, "num_utterances": int,
             "num_skipped": int, "skipped": [{"clip_id", "split", "reason"}],
             "decoders": {name: {
                 "corpus": Scores.to_dict(),  # cer, jamo_cer, viseme_cer, wer, swer (fractions), bleu (0-100), ...
                 "speakers": {speaker: {"utterances": int, "cer": float, "wer": float}},  # {} without speakers
                 "utterances": [{"clip_id", "speaker", "split", "reference", "hypothesis", "cer", "wer"}],
             }}}

        Decoders keep the first utterance's order; speakers are sorted, and utterances without a
        speaker (when others have one) are counted under ``NO_SPEAKER``. Texts are stored as
        given; every figure normalises them with :func:`lipnet_ko.text.normalize.normalize_for_metrics`.

    Raises:
        ValueError: for no utterances, a repeated clip id, clips decoded with different decoders, or a
            skipped entry without a clip id or reason.
    """
    utterances = list(utterances)
    skipped_rows = _skipped_rows(skipped)
    names = _decoder_names(utterances)
    has_speakers = any(u.speaker is not None for u in utterances)
    refs = [u.reference for u in utterances]
    decoders = {}
    for name in names:
        hyps = [u.hypotheses[name] for u in utterances]
        rows = [
            {
                "clip_id": u.clip_id,
                "speaker": u.speaker,
                "split": u.split,
                "reference": u.reference,
                "hypothesis": hyp,
                "cer": metrics.cer(u.reference, hyp),
                "wer": metrics.wer(u.reference, hyp),
            }
            for u, hyp in zip(utterances, hyps)
        ]
        decoders[name] = {
            "corpus": metrics.score_corpus(refs, hyps).to_dict(),
            "speakers": _speaker_figures(utterances, name) if has_speakers else {},
            "utterances": rows,
        }
    return {
        "title": title,
        "meta": json.loads(json.dumps(dict(meta), ensure_ascii=False, default=str)),
        "num_utterances": len(utterances),
        "num_skipped": len(skipped_rows),
        "skipped": skipped_rows,
        "decoders": decoders,
    }


def levenshtein_alignment(reference: Sequence[str], hypothesis: Sequence[str]) -> list[tuple[str | None, str | None]]:
    """A minimum-edit alignment of two token sequences.

    Returns:
        ``(ref_token, hyp_token)`` pairs in order: equal tokens for a match, different ones for a
        substitution, ``(ref_token, None)`` for a deletion and ``(None, hyp_token)`` for an
        insertion. The number of pairs that are not matches is the Levenshtein distance. Among
        equally short alignments the backtrace prefers a match or substitution, then a deletion.
    """
    n, m = len(reference), len(hypothesis)
    dist = [[0] * (m + 1) for _ in range(n + 1)]  # dist[i][j]: edits between reference[:i] and hypothesis[:j]
    for i in range(n + 1):
        dist[i][0] = i
    for j in range(m + 1):
        dist[0][j] = j
    for i in range(1, n + 1):
        row, prev, ref_token = dist[i], dist[i - 1], reference[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (ref_token != hypothesis[j - 1]), prev[j] + 1, row[j - 1] + 1)
    pairs: list[tuple[str | None, str | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and dist[i][j] == dist[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            pairs.append((reference[i - 1], hypothesis[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and dist[i][j] == dist[i - 1][j] + 1:
            pairs.append((reference[i - 1], None))
            i -= 1
        else:
            pairs.append((None, hypothesis[j - 1]))
            j -= 1
    pairs.reverse()
    return pairs


def jamo_labels(tokenizer) -> list[str]:
    """The jamo tokens of ``tokenizer`` grouped by viseme class, then ``INSERTION`` and ``DELETION``.

    Classes follow ``visemes.CLASS_NAMES`` (initials, medials, finals); within a class, token id order.
    """
    classes = token_viseme_classes(tokenizer)
    ids = [tid for tid, name in enumerate(classes) if name is not None]
    ids.sort(key=lambda tid: (CLASS_NAMES.index(classes[tid]), tid))
    return [tokenizer.tokens[tid] for tid in ids] + [INSERTION, DELETION]


def _jamo_tokens(text: str, tokenizer) -> list[str]:
    """Normalised text -> its jamo tokens, spaces dropped (what ``metrics.jamo_cer`` compares)."""
    return [tokenizer.tokens[tid] for tid in tokenizer.encode(normalize_for_metrics(text)) if tid != tokenizer.space_id]


def jamo_confusions(pairs: Iterable[tuple[str, str]], tokenizer) -> tuple[list[str], np.ndarray]:
    """Count which reference jamo each hypothesis jamo was aligned to.

    Both texts are normalised as for the metrics and split into position-specific jamo tokens with
    spaces dropped, so the edits counted here over a corpus are those of ``metrics.jamo_cer``.

    Args:
        pairs: ``(reference, hypothesis)`` texts.
        tokenizer: a :class:`~lipnet_ko.text.tokenizer.JamoTokenizer`.

    Returns:
        ``(labels, matrix)``: ``labels`` from :func:`jamo_labels` (67 jamo + ``INSERTION`` +
        ``DELETION`` for the jamo tokenizer); ``matrix`` is ``int64 [L, L]`` with rows the reference
        token and columns the hypothesis token. Matches lie on the diagonal, substitutions off it,
        an insertion of token t counts in row ``INSERTION``, column t, and a deletion of t in row t,
        column ``DELETION`` (so row ``DELETION`` and column ``INSERTION`` stay zero).

    Raises:
        ValueError: for a tokenizer without viseme classes, or a text its ``encode`` rejects
            (naming the pair).
    """
    labels = jamo_labels(tokenizer)
    index = {label: k for k, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for k, (reference, hypothesis) in enumerate(pairs):
        try:
            ref_tokens, hyp_tokens = _jamo_tokens(reference, tokenizer), _jamo_tokens(hypothesis, tokenizer)
        except ValueError as e:
            raise ValueError(f"pair {k} ({reference!r}, {hypothesis!r}): {e}") from e
        for ref_token, hyp_token in levenshtein_alignment(ref_tokens, hyp_tokens):
            row = index[ref_token] if ref_token is not None else index[INSERTION]
            col = index[hyp_token] if hyp_token is not None else index[DELETION]
            matrix[row, col] += 1
    return labels, matrix


def label_groups(labels: Sequence[str]) -> list[str]:
    """The group of each confusion label, for :func:`plot_confusions`.

    A jamo belongs to its viseme class (``"I:bilabial"``), a viseme class to its position
    (``"I"``, ``"M"``, ``"F"``), and ``INSERTION``/``DELETION`` to ``EDIT_GROUP``.
    """
    groups = []
    for label in labels:
        if label in (INSERTION, DELETION):
            groups.append(EDIT_GROUP)
        elif label in CLASS_NAMES:
            groups.append(label.split(":", 1)[0])
        else:
            groups.append(viseme_class(label))
    return groups


def viseme_confusions(labels: Sequence[str], matrix: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Collapse a jamo confusion matrix from :func:`jamo_confusions` to viseme classes.

    A substitution between look-alike jamo (ᄇ for ᄆ) lands on the diagonal of the class matrix,
    so the diagonal share of the off-diagonal jamo counts tells how many confusions stay inside a class.

    Returns:
        ``(class_labels, class_matrix)``: the classes that occur in ``labels`` in ``CLASS_NAMES``
        order, then ``INSERTION`` and ``DELETION``; ``int64 [C, C]``, rows reference, columns hypothesis.
    """
    matrix = np.asarray(matrix)
    if matrix.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix must be [{len(labels)}, {len(labels)}] to match the labels, got {list(matrix.shape)}")
    # viseme_class raises, naming the label, for anything but a jamo (class labels cannot collapse again)
    classes = [label if label in (INSERTION, DELETION) else viseme_class(label) for label in labels]
    present = set(classes)
    class_labels = [name for name in CLASS_NAMES if name in present]
    class_labels += [label for label in (INSERTION, DELETION) if label in present]
    index = {label: k for k, label in enumerate(class_labels)}
    target = np.array([index[c] for c in classes], dtype=np.int64)
    collapsed = np.zeros((len(class_labels), len(class_labels)), dtype=np.int64)
    np.add.at(collapsed, (target[:, None], target[None, :]), matrix.astype(np.int64))
    return class_labels, collapsed


def _display_label(label: str) -> str:
    """Conjoining jamo -> the letter people read, marked by position: initial ᄀ "ㄱ-", final ᆨ "-ㄱ"."""
    if len(label) != 1 or not 0x1100 <= ord(label) <= 0x11FF:
        return label
    position, name = unicodedata.name(label).split(" ", 2)[1:]  # "HANGUL CHOSEONG KIYEOK" -> CHOSEONG, KIYEOK
    try:
        letter = unicodedata.lookup("HANGUL LETTER " + name)
    except KeyError:
        return label
    return {"CHOSEONG": f"{letter}-", "JONGSEONG": f"-{letter}"}.get(position, letter)


def _korean_font():
    """NanumGothic from the koreanize_matplotlib package, or None (with a warning) when it is missing."""
    from matplotlib.font_manager import FontProperties

    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is not None and spec.submodule_search_locations:
        path = Path(spec.submodule_search_locations[0]) / "fonts" / "NanumGothic.ttf"
        if path.is_file():
            return FontProperties(fname=str(path))
    warnings.warn(
        "NanumGothic not found (pip install koreanize-matplotlib); Korean tick labels will show as boxes",
        stacklevel=3,
    )
    return None


def _save_atomic(path: Path, write) -> None:
    """Call ``write(temp)`` and move the temporary file onto ``path``; the temporary file never outlives a failure."""
    replace_atomically(temp_path(path), path, write)


def _pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed on servers)."""
    import matplotlib

    matplotlib.use("Agg")  # must precede the pyplot import
    import matplotlib.pyplot as plt

    return plt


def _render_png(path: Path, labels: Sequence[str], matrix: np.ndarray, groups: Sequence[str], title: str | None) -> None:
    """Draw the row-normalised heatmap and save it as a PNG at ``path`` (not atomically)."""
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix must be [{len(labels)}, {len(labels)}] to match the labels, got {list(counts.shape)}")
    if len(groups) != len(labels):
        raise ValueError(f"groups must name one group per label: got {len(groups)} groups for {len(labels)} labels")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)  # rows with no count stay 0

    plt = _pyplot()
    font = _korean_font()
    size = max(6.0, 0.2 * len(labels) + 2.5)  # inches; about 0.2 in per label keeps tick labels legible
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    try:
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="share of the reference row")
        ticks = np.arange(len(labels))
        shown = [_display_label(label) for label in labels]
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xticklabels(shown, rotation=90, fontproperties=font)
        ax.set_yticklabels(shown, fontproperties=font)
        for k in range(1, len(groups)):
            if groups[k] != groups[k - 1]:
                ax.axhline(k - 0.5, color="0.3", linewidth=0.8)
                ax.axvline(k - 0.5, color="0.3", linewidth=0.8)
        ax.set_xlabel("hypothesis")
        ax.set_ylabel("reference")
        if title:
            ax.set_title(title, fontproperties=font)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)


def plot_confusions(
    labels: Sequence[str],
    matrix: np.ndarray,
    png_path: str | Path,
    *,
    groups: Sequence[str],
    title: str | None = None,
) -> Path:
    """Draw a confusion matrix as a row-normalised heatmap and write it as a PNG, atomically.

    Tick labels use NanumGothic (shipped with ``koreanize-matplotlib``) so that jamo render; an
    initial is shown as ``ㄱ-`` and a final as ``-ㄱ``.

    Args:
        labels: one label per row/column, e.g. from :func:`jamo_confusions` or :func:`viseme_confusions`.
        matrix: ``[L, L]`` counts, rows reference, columns hypothesis; each row is divided by its sum.
        png_path: where the PNG goes; its folder must exist.
        groups: the group of each label (:func:`label_groups`); a line is drawn wherever it changes.
        title: drawn above the plot.

    Returns:
        ``png_path`` as a Path.

    Raises:
        ValueError: when ``matrix`` or ``groups`` does not match ``labels``. A failure leaves no file.
    """
    png_path = Path(png_path)
    _save_atomic(png_path, lambda temp: _render_png(temp, labels, matrix, groups, title))
    return png_path


def _escape(text) -> str:
    """A value as the text of one Markdown table cell: backslashes and pipes escaped, one line."""
    text = "" if text is None else str(text)
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def _table(header: Sequence[str], align: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Markdown table lines; ``align`` per column: "l" or "r"."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def to_markdown(report: dict, *, figures: Sequence[str] = ()) -> str:
    """Render a :func:`build_report` dict as Markdown.

    Sections: title; meta (every ``meta`` entry, then the decoders, the utterance count and the count
    of skipped clips; a ``meta`` entry under one of those three names is not shown twice); a corpus table
    (decoder x CER, jamo CER, WER, sWER, BLEU); a per-speaker CER table when the report has speakers; a
    per-utterance table with one row per clip and decoder; and, when clips were skipped, a table of them
    with the reason. Error rates are shown in %, BLEU on 0-100. Texts have ``|`` and ``\\`` escaped so
    that they cannot break a table.

    Args:
        report: from :func:`build_report`.
        figures: image file names (relative to the Markdown file) to show under "Confusions".
    """
    decoders = report["decoders"]
    names = list(decoders)
    lines = [f"# {_escape(report['title'])}", ""]
    skipped = report.get("skipped", [])  # reports written before skipped clips were listed have none
    own = {
        "decoders": ", ".join(_escape(n) for n in names),
        "utterances": str(report["num_utterances"]),
        "skipped": str(len(skipped)) + (" (listed under Skipped)" if skipped else ""),
    }
    for key, value in report["meta"].items():
        if key in own:
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"- **{_escape(key)}**: {_escape(shown)}")
    lines += [f"- **{key}**: {value}" for key, value in own.items()] + [""]

    lines += ["## Corpus", ""]
    lines += _table(
        ["decoder", "CER", "jamo CER", "viseme CER", "WER", "sWER", "BLEU"],
        "lrrrrrr",
        (
            [_escape(name), *(_percent(corpus[k]) for k in ("cer", "jamo_cer", "viseme_cer", "wer", "swer")),
             f"{corpus['bleu']:.2f}"]
            for name, corpus in ((name, block["corpus"]) for name, block in decoders.items())
        ),
    )
    lines.append("")

    speakers = list(decoders[names[0]]["speakers"])
    if speakers:
        lines += ["## Speakers", ""]
        lines += _table(
            ["speaker", "utterances", *(f"{_escape(n)} CER" for n in names)],
            "lr" + "r" * len(names),
            (
                [
                    _escape(speaker),
                    str(decoders[names[0]]["speakers"][speaker]["utterances"]),
                    *(_percent(decoders[n]["speakers"][speaker]["cer"]) for n in names),
                ]
                for speaker in speakers
            ),
        )
        lines.append("")

    rows_by_decoder = [decoders[n]["utterances"] for n in names]
    with_speaker = any(row["speaker"] is not None for row in rows_by_decoder[0])
    with_split = any(row["split"] is not None for row in rows_by_decoder[0])
    header = ["clip", *(["speaker"] if with_speaker else []), *(["split"] if with_split else [])]
    header += ["reference", "decoder", "hypothesis", "CER", "WER"]
    rows = []
    for per_clip in zip(*rows_by_decoder):
        for name, row in zip(names, per_clip):
            cells = [_escape(row["clip_id"])]
            cells += [_escape(row["speaker"])] if with_speaker else []
            cells += [_escape(row["split"])] if with_split else []
            cells += [_escape(row["reference"]), _escape(name), _escape(row["hypothesis"])]
            cells += [_percent(row["cer"]), _percent(row["wer"])]
            rows.append(cells)
    lines += ["## Utterances", ""]
    lines += _table(header, "l" * (len(header) - 2) + "rr", rows)

    if skipped:
        with_split = any(item.get("split") is not None for item in skipped)
        lines += ["", "## Skipped", "", "Not scored: the figures above leave these clips out.", ""]
        lines += _table(
            ["clip", *(["split"] if with_split else []), "reason"],
            "lll" if with_split else "ll",
            ([_escape(item["clip_id"]), *([_escape(item.get("split"))] if with_split else []), _escape(item["reason"])]
             for item in skipped),
        )

    if figures:
        lines += ["", "## Confusions", ""]
        lines += [f"![{Path(f).stem}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def write_report(
    report: dict,
    out_dir: str | Path,
    *,
    confusions: Mapping[str, tuple[Sequence[str], np.ndarray]] | None = None,
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and one PNG per confusion matrix into ``out_dir``.

    Every file is first written under a temporary name and only then moved into place, so a
    failure (an unwritable folder, a bad matrix) leaves neither new files nor temporary ones; files
    of an earlier report in ``out_dir`` stay as they were.

    Args:
        report: from :func:`build_report`.
        out_dir: the folder, created if needed.
        confusions: file stem -> ``(labels, matrix)``, e.g. ``{"jamo_confusions_beam_lm":
            jamo_confusions(...), "viseme_confusions_beam_lm": viseme_confusions(...)}``; each is
            drawn with :func:`plot_confusions` (groups from :func:`label_groups`) to ``<stem>.png``
            and shown at the end of ``report.md``.

    Returns:
        ``{"json": path, "markdown": path, <stem>: png path, ...}``.
    """
    out_dir = Path(out_dir)
    confusions = dict(confusions or {})
    for stem in confusions:
        if not stem or Path(stem).name != stem or stem.startswith(".") or stem in ("json", "markdown"):
            raise ValueError(f"confusion name {stem!r} must be a plain file stem such as 'jamo_confusions_beam'")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / REPORT_JSON, "markdown": out_dir / REPORT_MARKDOWN}
    paths.update({stem: out_dir / f"{stem}.png" for stem in confusions})
    staged: list[tuple[Path, Path]] = []  # (temporary, final)

    def stage(final: Path, write) -> None:
        temp = temp_path(final)
        staged.append((temp, final))
        write(temp)

    try:
        stage(paths["json"], lambda t: t.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8"))
        figures = [paths[stem].name for stem in confusions]
        stage(paths["markdown"], lambda t: t.write_text(to_markdown(report, figures=figures), encoding="utf-8"))
        for stem, (labels, matrix) in confusions.items():
            draw = functools.partial(_render_png, labels=labels, matrix=matrix, groups=label_groups(labels), title=stem)
            stage(paths[stem], draw)
        for temp, final in staged:
            os.replace(temp, final)
    except BaseException:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise
    return paths
