"""Where files live, and atomic writes, shared by every command that leaves results on disk.

A result is written to a temporary file in the same folder and moved into place with ``os.replace``,
so a reader (or a resumed run) sees either the old file or the whole new one, never a partial one.

Two data folders: :data:`PROJECT_DATA_DIR` holds what ships with the project and is only read
(sentence lists, grammar, the n-gram LM); :func:`data_dir` is where generated data is written
(synthetic corpora and their crop caches).
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def temp_path(final: Path) -> Path:
    """The temporary name ``final`` is written under: hidden, per process, in the same folder."""
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


def nearest_existing(path: Path) -> Path | None:
    """``path`` or its closest ancestor that exists: what decides whether ``path`` can be created and written."""
    return next((ancestor for ancestor in (path, *path.parents) if ancestor.exists()), None)


def replace_atomically(temp: Path, final: Path, write) -> None:
    """``write(temp)``, then move ``temp`` onto ``final``; the temporary file never outlives a failure (a full disk)."""
    try:
        write(temp)
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, payload) -> None:
    """Write ``payload`` as indented UTF-8 JSON to ``path`` atomically; no temporary file is left on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, ensure_ascii=False, indent=1)
    replace_atomically(temp_path(path), path, lambda temp: temp.write_text(text, encoding="utf-8"))


# The files that ship with the project (sentence lists, grammar, the n-gram LM) live in the checkout's data/.
# Only read: generated data goes to data_dir(), because an installed package's folder may be read-only or shared.
PROJECT_DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DATA_DIR_ENV = "LIPNET_KO_DATA_DIR"  # environment variable naming the folder for generated data


def data_dir(override: str | Path | None = None) -> Path:
    """The folder generated data goes to: synthetic corpora (``synth/default-vN``) and their crop caches.

    Args:
        override: a folder given explicitly (``--data-dir``, ``DataConfig.data_dir``); wins when set.

    Returns:
        An absolute path: ``override``, else ``$LIPNET_KO_DATA_DIR``, else ``data/`` in the working
        directory (run from a checkout's root, the checkout's own ``data/``). Not created here.
    """
    chosen = override or os.environ.get(DATA_DIR_ENV) or "data"
    return Path(chosen).expanduser().absolute()


def is_writable_place(path: Path) -> bool:
    """Whether ``path`` may be created or written: its nearest existing ancestor is a folder open for writing.

    A folder whose owner has no write permission counts as read-only even for root, whom ``os.access``
    lets write anywhere: shared data marked read-only (``r-x``) stays unwritten.
    """
    ancestor = nearest_existing(path)
    if ancestor is None or not ancestor.is_dir():
        return False
    return bool(ancestor.stat().st_mode & 0o200) and os.access(ancestor, os.W_OK | os.X_OK)


def corpus_cache_dir(corpus: str | Path, override: str | Path | None = None) -> Path:
    """Where the mouth crops of a corpus folder or manifest file are cached when no cache folder is given.

    ``<corpus>-crops`` beside it (for a manifest ``notes.csv``: ``notes-crops``), so a corpus and its crops
    travel together; where that place cannot be written (a read-only share, a CI checkout's data), the
    generated-data folder's ``crops/<name>-<hash>-crops``, the hash of the corpus's absolute path keeping
    two corpora of one name apart. ``override`` is that data folder (see :func:`data_dir`).
    """
    import hashlib

    corpus = Path(corpus)
    name = corpus.stem if corpus.is_file() else corpus.name
    beside = corpus.with_name(f"{name}-crops")
    if is_writable_place(beside):
        return beside
    digest = hashlib.sha256(str(corpus.resolve()).encode()).hexdigest()[:8]
    return data_dir(override) / "crops" / f"{name}-{digest}-crops"


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's contents, for the commands that read user files.

    Raises:
        OSError: the file is missing, a folder, or unreadable, with the reason in words.
        ValueError: the file is not UTF-8 (the message names the first bad byte and its offset).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise OSError("no such file") from None
    except IsADirectoryError:
        raise OSError("is a folder, not a text file") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start})") from None
    except OSError as error:
        raise OSError(error.strerror or str(error)) from None
