"""The open-vocabulary Korean sentence pool: real sentences from installed packages, split by sentence.

Reading the pool needs only the files shipped in ``data/sentences/open/``:

- ``pool.tsv.gz``: one sentence a row, ``split<TAB>source<TAB>text``, sorted; ``split`` is train/val/test.
- ``lm_extra.txt.gz``: extra language-model text from the same sources (sentences too long for a clip,
  and their clauses); never contains a val or test sentence.
- ``sources.json``: per source, the package, its version, the files read, the licence and the counts.

:func:`load_pool` and :func:`lm_text` read them (cached). ``lipnet-ko text build --out DIR`` rebuilds them
from the Debian packages and Python wheel named in :data:`SOURCES`, deterministically (gzip with
``mtime=0``, sorted rows), so a rebuild on the same package versions is byte-identical.

The rules a sentence passes (:func:`accept`):

- Before normalisation it holds no Latin letter and no digit: help texts' Latin is program names and
  keys (spelled letter by letter it would be noise), and a digit's reading depends on context
  (``3개`` is 세 개, not 삼 개), so a sentence with one has no reliable label.
- After :func:`lipnet_ko.text.normalize.normalize_text` every character is a Hangul syllable or a space.
- 2 to 12 eojeol, and at most 40 syllables (:data:`MAX_SYLLABLES`): at a normal speaking rate of about
  5 syllables per second that is 8 s, 200 frames at 25 fps, while its jamo label is at most
  3 x 40 + 11 = 131 tokens, so CTC (one output per frame) always has room for the label and its repeats.
- Help, FAQ and law text: only segments that end a sentence (terminal ``.``, ``?`` or ``!`` after a
  sentence-final syllable such as 다, 요, 까); headings, menu paths and table cells are dropped.

The split is by sentence and by hash: ``sha256(text)`` decides, so adding a source never moves another
source's sentences between splits. A train sentence that contains a val or test sentence is dropped,
and so is every LM line that does.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import html.parser
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator

from lipnet_ko.files import PROJECT_DATA_DIR, replace_atomically, temp_path, write_json_atomic
from lipnet_ko.text.hangul import is_syllable
from lipnet_ko.text.normalize import normalize_text

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
POOL_DIR = PROJECT_DATA_DIR / "sentences" / "open"
POOL_FILE = "pool.tsv.gz"
LM_FILE = "lm_extra.txt.gz"
SOURCES_FILE = "sources.json"
POOL_HEADER = "split\tsource\ttext"
FORMAT_VERSION = 1

MIN_EOJEOL = 2
MAX_EOJEOL = 12
MAX_SYLLABLES = 40  # 8 s at ~5 syllables/s: 200 frames at 25 fps for a label of at most 131 jamo tokens
TEST_PERCENT = 8
VAL_PERCENT = 4  # hash buckets 0..7 test, 8..11 val, 12..99 train
SENTENCE_FINAL = set("다요까죠오네자니지라나군가게세")  # last syllable of a finished sentence in written text
_TERMINAL = re.compile(r"(?<=[.?!])\s+")
_LATIN_OR_DIGIT = re.compile(r"[A-Za-z0-9Ａ-Ｚａ-ｚ０-９]")
_CLAUSE = re.compile(r"[,;:，、]\s*")
_ENUMERATORS = re.compile(r"[\u2460-\u24ff\u3260-\u327f\u2776-\u2793]")  # circled numbers ①..⑳, ㉠.. of law text
_ARTICLE = re.compile(r"제\s*\d+\s*(조|항|호|장|절)(의\s*\d+)?(\([^)]*\))?")


@dataclasses.dataclass(frozen=True)
class Source:
    """One text source: where its files are and how to read them."""

    name: str  # short id, the pool's source column
    package: str  # apt package ("debian:NAME"), Python distribution ("pypi:NAME"), or "project"
    licence: str
    root: Path  # folder searched
    patterns: tuple[str, ...]  # globs under root
    kind: str  # "lines": one sentence a line; "html"; "wrapped": hard-wrapped plain text; "law": one clause a line

    def files(self) -> list[Path]:
        return sorted({p for pattern in self.patterns for p in self.root.glob(pattern) if p.is_file()})


def _site_packages() -> Path:
    import konlpy  # noqa: F401  (only to locate the wheel; konlpy is a build-time source, not a runtime need)

    return Path(konlpy.__file__).resolve().parent


def default_sources() -> list[Source]:
    """The sources of the shipped pool, in priority order (a duplicate keeps the first source's name)."""
    sentences = PROJECT_DATA_DIR / "sentences"
    try:
        konlpy_corpus = _site_packages() / "data" / "corpus"
    except ImportError:
        konlpy_corpus = Path("/nonexistent/konlpy/data/corpus")
    public = ("public domain in Korea (Copyright Act art. 7: statutes and bills are not protected works); "
              "shipped in the GPL-3.0+ konlpy wheel")
    return [
        Source("everyday", "project", "MIT (written for lipnet-ko)", sentences, ("everyday.txt",), "lines"),
        Source("free", "project", "MIT (written for lipnet-ko)", sentences, ("free.txt",), "lines"),
        Source("broadcast", "project", "MIT (written for lipnet-ko)", sentences, ("broadcast.txt",), "lines"),
        Source("libreoffice-help", "debian:libreoffice-help-ko", "MPL-2.0 (some files Apache-2.0)",
               Path("/usr/share/libreoffice/help/ko"), ("text/**/*.html",), "html"),
        Source("gimp-help", "debian:gimp-help-ko", "GFDL-1.2+ (no invariant sections)",
               Path("/usr/share/gimp/2.0/help/ko"), ("*.html",), "html"),
        Source("debian-faq", "debian:debian-faq-ko", "Debian FAQ permission notice (verbatim and modified copies allowed)",
               Path("/usr/share/doc/debian/FAQ/ko"), ("*.html",), "html"),
        Source("kolaw", "pypi:konlpy", public, konlpy_corpus / "kolaw", ("*.txt",), "law"),
        Source("kobill", "pypi:konlpy", public, konlpy_corpus / "kobill", ("*.txt",), "wrapped"),
    ]


# ---------------------------------------------------------------------------------------------------
# Extraction


class _BlockText(html.parser.HTMLParser):
    """Text of an HTML page, one string per block element (paragraph, list item, table cell, heading)."""

    BLOCKS = {"p", "div", "li", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "br", "tr", "pre",
              "table", "ul", "ol", "dl", "blockquote", "section", "body"}
    SKIP = {"script", "style", "head", "title", "code", "kbd", "samp", "tt"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._skip = 0

    def _flush(self) -> None:
        text = " ".join("".join(self._current).split())
        if text:
            self.blocks.append(text)
        self._current = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCKS:
            self._flush()

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data):
        if not self._skip:
            self._current.append(data)

    def close(self):
        super().close()
        self._flush()


def split_sentences(block: str) -> list[str]:
    """Split running text at sentence-final punctuation followed by whitespace."""
    return [part.strip() for part in _TERMINAL.split(block) if part.strip()]


def _unwrap(text: str) -> str:
    """Join hard-wrapped lines: a line ending in a space ended a word; one without was cut inside a word."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        out.append(line.strip())
        out.append(" " if line.endswith((" ", "\t")) else "")
    return "".join(out)


def extract(source: Source, path: Path) -> Iterator[tuple[str, bool]]:
    """The candidate sentences of one file, each with whether it needs a sentence ending to count."""
    raw = path.read_text(encoding="utf-8", errors="strict")
    if source.kind == "lines":
        for line in raw.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                yield line.strip(), False
    elif source.kind == "html":
        parser = _BlockText()
        parser.feed(raw)
        parser.close()
        for block in parser.blocks:
            for sentence in split_sentences(block):
                yield sentence, True
    elif source.kind == "law":
        for line in raw.splitlines():
            line = _ARTICLE.sub(" ", _ENUMERATORS.sub(" ", line))
            for sentence in split_sentences(line):
                yield sentence, True
    elif source.kind == "wrapped":
        for sentence in split_sentences(_unwrap(raw)):
            yield sentence, True
    else:
        raise ValueError(f"source {source.name}: unknown kind {source.kind!r}")


# ---------------------------------------------------------------------------------------------------
# Filters and split


def clean(raw: str) -> str | None:
    """``raw`` normalised if it is usable Korean text (no Latin letters or digits, only syllables left), else None."""
    if _LATIN_OR_DIGIT.search(raw):
        return None
    try:
        text = normalize_text(raw)
    except ValueError:
        return None
    return text or None


def length_problem(text: str) -> str | None:
    """Why a normalised sentence does not fit a clip (too few/many eojeol or syllables), or None."""
    eojeol = text.count(" ") + 1
    if eojeol < MIN_EOJEOL:
        return "short"
    if eojeol > MAX_EOJEOL or len(text) - eojeol + 1 > MAX_SYLLABLES:
        return "long"
    return None


def ends_sentence(raw: str) -> bool:
    """Whether ``raw`` ends like a finished sentence: a sentence-final syllable, then ``.``, ``?`` or ``!``."""
    stripped = raw.rstrip(" \"'”’」』)")
    return len(stripped) >= 2 and stripped[-1] in ".?!" and stripped[-2] in SENTENCE_FINAL


def accept(raw: str, *, needs_ending: bool = False) -> str | None:
    """The pool form of ``raw`` (see the module docstring for the rules), or None when it is rejected."""
    if needs_ending and not ends_sentence(raw):
        return None
    text = clean(raw)
    if text is None or length_problem(text):
        return None
    return text


def split_of(text: str) -> str:
    """``"train"``, ``"val"`` or ``"test"`` from the sentence's SHA-256: stable whatever else is in the pool."""
    bucket = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "test" if bucket < TEST_PERCENT else "val" if bucket < TEST_PERCENT + VAL_PERCENT else "train"


def clauses(raw: str) -> list[str]:
    """The clauses of a long sentence, cut at commas and semicolons, each cleaned (unusable ones left out)."""
    out = []
    for part in _CLAUSE.split(raw.rstrip(".?! ")):
        text = clean(part)
        if text and text.count(" ") + 1 >= MIN_EOJEOL:
            out.append(text)
    return out


# ---------------------------------------------------------------------------------------------------
# Build


@dataclasses.dataclass
class BuildResult:
    """What :func:`build_pool` wrote and what it could not read."""

    rows: list[tuple[str, str, str]]  # (split, source, text), sorted
    lm_extra: list[str]
    sources: dict[str, dict]
    missing: list[str]  # messages for sources whose files were absent
    dropped_contains_held_out: int


def package_version(package: str) -> str | None:
    """Installed version of ``debian:NAME`` (dpkg-query) or ``pypi:NAME``; None when it is not installed."""
    kind, _, name = package.partition(":")
    if kind == "debian":
        try:
            done = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True, check=False)
        except OSError:
            return None
        return done.stdout.strip() or None if done.returncode == 0 else None
    if kind == "pypi":
        from importlib import metadata

        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
    return None


def _shown_root(root: Path) -> str:
    """``root`` as sources.json records it: relative to the checkout when inside it, so rebuilds elsewhere match."""
    try:
        return str(root.resolve().relative_to(PROJECT_DATA_DIR.parent))
    except ValueError:
        return str(root)


def _files_digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _contains_any(line: str, needles: list[str]) -> bool:
    return any(needle in line for needle in needles if len(needle) <= len(line))


def build_pool(sources: list[Source] | None = None) -> BuildResult:
    """Read every source, filter, deduplicate and split; see the module docstring for the rules.

    Returns:
        A :class:`BuildResult`. A source with no files is listed in ``missing`` (with the apt package to
        install) and left out; the others are still built.
    """
    sources = default_sources() if sources is None else sources
    owner: dict[str, str] = {}  # text -> source, first source wins
    long_lines: list[tuple[str, str]] = []  # (source, text) of usable text that is too long for a clip
    info: dict[str, dict] = {}
    missing = []
    for source in sources:
        files = source.files()
        if not files:
            hint = source.package.partition(":")[2] if source.package != "project" else source.root
            how = f"install it with 'apt-get install {hint}'" if source.package.startswith("debian:") else (
                f"install it with 'pip install {hint}'" if source.package.startswith("pypi:") else "restore the file")
            missing.append(f"source {source.name}: no files matching {', '.join(source.patterns)} under {source.root}; {how}")
            continue
        seen = kept = duplicates = 0
        for path in files:
            try:
                candidates = list(extract(source, path))
            except (OSError, UnicodeDecodeError) as error:
                log.warning("source %s: cannot read %s: %s", source.name, path, error)
                continue
            for raw, needs_ending in candidates:
                seen += 1
                if needs_ending and not ends_sentence(raw):
                    continue
                text = clean(raw)
                if text is None:
                    continue
                problem = length_problem(text)
                if problem == "long":
                    long_lines.append((source.name, text))
                    long_lines.extend((source.name, c) for c in clauses(raw))
                if problem:
                    continue
                if text in owner:
                    duplicates += 1
                    continue
                owner[text] = source.name
                kept += 1
        info[source.name] = {
            "package": source.package,
            "version": package_version(source.package) if source.package != "project" else "project",
            "licence": source.licence,
            "root": _shown_root(source.root),
            "patterns": list(source.patterns),
            "files": len(files),
            "files_sha256": _files_digest(files),
            "candidates": seen,
            "kept": kept,
            "duplicates": duplicates,
        }
    held_out = sorted((t for t in owner if split_of(t) != "train"), key=len)
    held_set = set(held_out)
    rows = []
    dropped = 0
    for text, name in owner.items():
        split = split_of(text)
        if split == "train" and _contains_any(text, held_out):
            dropped += 1
            continue
        rows.append((split, name, text))
    rows.sort()
    pool_texts = {text for _, _, text in rows}
    extra = sorted({t for _, t in long_lines if t not in pool_texts and t not in held_set and length_problem(t) != "short"})
    extra = [t for t in extra if not _contains_any(t, held_out)]
    for name in info:
        counts = {split: 0 for split in SPLITS}
        for split, source_name, _ in rows:
            if source_name == name:
                counts[split] += 1
        info[name]["sentences"] = counts
    return BuildResult(rows, extra, info, missing, dropped)


def _write_gzip(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` gzipped with mtime 0 and no file name in the header, so equal text gives equal bytes."""

    def write(temp: Path) -> None:
        with open(temp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as handle:
            handle.write(text.encode("utf-8"))

    replace_atomically(temp_path(path), path, write)


def write_pool(result: BuildResult, out: str | Path) -> list[Path]:
    """Write ``pool.tsv.gz``, ``lm_extra.txt.gz`` and ``sources.json`` into ``out`` (created), atomically each."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pool = "".join(f"{split}\t{source}\t{text}\n" for split, source, text in result.rows)
    _write_gzip(out / POOL_FILE, POOL_HEADER + "\n" + pool)
    _write_gzip(out / LM_FILE, "".join(line + "\n" for line in result.lm_extra))
    counts = {split: sum(1 for row in result.rows if row[0] == split) for split in SPLITS}
    meta = {
        "format": FORMAT_VERSION,
        "rules": {"min_eojeol": MIN_EOJEOL, "max_eojeol": MAX_EOJEOL, "max_syllables": MAX_SYLLABLES,
                  "test_percent": TEST_PERCENT, "val_percent": VAL_PERCENT},
        "counts": counts,
        "lm_extra_lines": len(result.lm_extra),
        "train_dropped_for_containing_held_out": result.dropped_contains_held_out,
        "sources": result.sources,
    }
    write_json_atomic(out / SOURCES_FILE, meta)
    return [out / POOL_FILE, out / LM_FILE, out / SOURCES_FILE]


# ---------------------------------------------------------------------------------------------------
# Loading (shipped files only)


def _read_gzip_lines(path: Path) -> list[str]:
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="\n") as handle:
            return handle.read().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; rebuild it with 'lipnet-ko text build --out {path.parent}'") from None
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as error:
        raise ValueError(f"{path}: corrupt sentence-pool file ({error}); rebuild it with 'lipnet-ko text build'") from None


def _is_pool_text(text: str) -> bool:
    return bool(text) and text == " ".join(text.split()) and all(is_syllable(ch) or ch == " " for ch in text)


@functools.lru_cache(maxsize=4)
def read_rows(folder: str | Path = POOL_DIR) -> tuple[tuple[str, str, str], ...]:
    """Every row of ``pool.tsv.gz`` in ``folder``, validated: (split, source, text).

    Raises:
        ValueError: naming the file and line, when the file is not gzip/UTF-8, lacks its header, or a row
            has a bad split, a text that is not normalised Hangul, or a duplicate text.
    """
    path = Path(folder) / POOL_FILE
    lines = _read_gzip_lines(path)
    if not lines or lines[0] != POOL_HEADER:
        raise ValueError(f"{path}: line 1: expected the header {POOL_HEADER!r}")
    rows, seen = [], set()
    for lineno, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{path}: line {lineno}: expected 3 tab-separated fields, got {len(fields)}")
        split, source, text = fields
        if split not in SPLITS:
            raise ValueError(f"{path}: line {lineno}: split {split!r} is not one of {', '.join(SPLITS)}")
        if not _is_pool_text(text):
            raise ValueError(f"{path}: line {lineno}: {text!r} is not normalised Hangul (syllables and single spaces)")
        if text in seen:
            raise ValueError(f"{path}: line {lineno}: duplicate sentence {text!r}")
        seen.add(text)
        rows.append((split, source, text))
    return tuple(rows)


def load_pool(split: str, folder: str | Path = POOL_DIR) -> list[str]:
    """The pool's sentences of one split, normalised and distinct, in file order (sorted).

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        folder: where the pool files are; the shipped ``data/sentences/open`` by default.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return [text for s, _, text in read_rows(folder) if s == split]


@functools.lru_cache(maxsize=4)
def _lm_extra(folder: str | Path) -> tuple[str, ...]:
    path = Path(folder) / LM_FILE
    lines = _read_gzip_lines(path)
    for lineno, line in enumerate(lines, 1):
        if not _is_pool_text(line):
            raise ValueError(f"{path}: line {lineno}: {line!r} is not normalised Hangul (syllables and single spaces)")
    return tuple(lines)


def lm_text(folder: str | Path = POOL_DIR) -> list[str]:
    """The language model's training text: the train sentences, then the extra non-test lines.

    No line equals or contains a val or test sentence (the build drops those).
    """
    return load_pool("train", folder) + list(_lm_extra(folder))


def sources_info(folder: str | Path = POOL_DIR) -> dict:
    """``sources.json`` of the pool: rules, counts, and per source its package, version, files and licence."""
    path = Path(folder) / SOURCES_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: corrupt ({error})") from None


# ---------------------------------------------------------------------------------------------------
# Command line: lipnet-ko text build


def configure_parser(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="{build}")
    build = sub.add_parser("build", help="rebuild the open sentence pool from the installed Debian packages and konlpy")
    build.add_argument("--out", required=True, help="folder to write pool.tsv.gz, lm_extra.txt.gz and sources.json into")


def _summary(result: BuildResult) -> str:
    counts = {split: sum(1 for row in result.rows if row[0] == split) for split in SPLITS}
    train_syllables = {ch for split, _, text in result.rows if split == "train" for ch in text if ch != " "}
    per_source = ", ".join(f"{name} {sum(info['sentences'].values())}" for name, info in result.sources.items())
    return (f"{len(result.rows)} sentences (train {counts['train']}, val {counts['val']}, test {counts['test']}; "
            f"{len(train_syllables)} distinct syllables in train), {len(result.lm_extra)} extra LM lines; "
            f"by source: {per_source}")


def run(args, sources_factory: Callable[[], list[Source]] | None = None) -> int:
    """``lipnet-ko text build``: build the pool; a missing source is reported and the others are still built (exit 1)."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"error: --out {out} is a file, not a folder", file=sys.stderr)
        return 2
    sources = (sources_factory or default_sources)()
    result = build_pool(sources)
    for message in result.missing:
        print(f"error: {message}", file=sys.stderr, flush=True)
    if not result.rows:
        print("error: no sentences: every source is missing or empty; nothing was written", file=sys.stderr)
        return 2
    try:
        write_pool(result, out)
    except OSError as error:
        print(f"error: cannot write {out}: {error.strerror or error}", file=sys.stderr)
        return 2
    read_rows.cache_clear()
    _lm_extra.cache_clear()
    print(f"wrote {out}: {_summary(result)}")
    if result.missing:
        names = ", ".join(m.split(":")[0].removeprefix("source ") for m in result.missing)
        print(f"error: {len(result.missing)} of {len(sources)} sources missing ({names}); the pool was built without them",
              file=sys.stderr)
        return 1
    return 0
