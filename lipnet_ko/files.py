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
