"""Export a trained model for serving, and the ``lipnet-ko export`` command.

``export(run_dir, fmt)`` writes ``RUN/export/<fmt>/``, a folder that needs nothing else from the run::

    model.keras                        fmt "keras": the LipNet as trained (float32 crops in [0, 1], or uint8)
    saved_model.pb, variables/, ...    fmt "savedmodel": signature "serving_default" (below)
    model.tflite, model_fp16.tflite    fmt "tflite": float32 and float16-weight TFLite models
    model_config.json, tokenizer.json, preprocess.json   copied from the run
    export.json                        format, files and byte sizes, source run, check results, limitations

The SavedModel and TFLite signatures take mouth crops as they come from preprocessing, ``crops`` uint8
``[B, T, H, W, C]`` and ``crop_lengths`` int32 ``[B]``, divide by 255 inside, and return ``logits``
float32 ``[B, T, V]`` (blank id 0) and ``logit_lengths`` int32 ``[B]``.

TFLite limitations (also written to export.json):

* Batch size 1; the time length T stays dynamic. With a dynamic batch the GRU loop's TensorList ops
  only convert as Flex ops (``SELECT_TF_OPS``), which the ``tf.lite`` interpreter in the TensorFlow pip
  package cannot run ("Select TensorFlow op(s) ... not supported by this interpreter"). With a static
  batch they lower to the builtin WHILE op. ``Recognizer`` runs a TFLite model one clip at a time.
* Builtin ops only. TFLite has no builtin 3-D pooling, so the ``(1, k, k)`` max and average pooling
  layers are traced as the same 2-D pooling applied to every frame (see ``_per_frame_pooling``).
* ``model_fp16.tflite`` stores the weights in float16 and computes in float32; its logits differ from
  the Keras model's by about 1e-3, so it is checked by argmax agreement, not by a tolerance.

Every export is reloaded with :func:`lipnet_ko.model.inference.load_recognizer` and compared with the Keras
model on random probe clips before it is moved into place; nothing is left behind when that fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from lipnet_ko import __version__
from lipnet_ko.files import nearest_existing, temp_path, write_json_atomic
from lipnet_ko.model.inference import (
    EXPORT_MANIFEST,
    FORMATS,
    SERVING_SIGNATURE,
    TFLITE_FP16_FILE,
    Recognizer,
    load_recognizer,
)
from lipnet_ko.model.run_folder import SIDE_FILES, RunFolder

FLOAT32_ATOL = 1e-4  # max |logit difference| allowed between a float32 export and the Keras model
PROBE_LENGTHS = (12, 7)  # frames of the random clips every export is checked on (two: padding is exercised)

TFLITE_LIMITATIONS = [
    "batch size 1 (crops [1, T, H, W, C], crop_lengths [1]); T is dynamic. A dynamic batch needs Flex ops "
    "(SELECT_TF_OPS) for the GRU's TensorList ops, which the Python tf.lite interpreter cannot run; "
    "run clips one at a time (lipnet_ko.model.inference.Recognizer does)",
    "builtin ops only: TFLite has no 3-D pooling, so the (1, k, k) max/average pooling layers are exported as "
    "per-frame 2-D pooling",
    f"{TFLITE_FP16_FILE}: float16 weights, float32 compute; logits differ from the Keras model by about 1e-3",
]


def _write_model(recognizer: Recognizer, fmt: str, folder: Path) -> dict[str, str]:
    """Write the model file(s) of ``fmt`` into ``folder``; returns {file or folder name: dtype}."""
    from lipnet_ko.model.serving import write_model  # TensorFlow: imported only when an export runs

    return write_model(recognizer, fmt, folder)


def _file_sizes(folder: Path) -> dict[str, int]:
    return {
        path.relative_to(folder).as_posix(): path.stat().st_size
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != EXPORT_MANIFEST
    }


def _probe_clips(recognizer: Recognizer) -> list[np.ndarray]:
    c = recognizer.model_config
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (n, c.height, c.width, c.channels), dtype=np.uint8) for n in PROBE_LENGTHS]


def compare_logits(reference: list[np.ndarray], logits: list[np.ndarray]) -> dict:
    """Max absolute difference and frame argmax agreement of two lists of per-clip logits ``[T_i, V]``."""
    diff = max(float(np.abs(a - b).max()) for a, b in zip(reference, logits))
    agree = np.concatenate([a.argmax(-1) == b.argmax(-1) for a, b in zip(reference, logits)])
    return {"max_abs_diff": diff, "argmax_agreement": float(agree.mean())}


def _move_into_place(built: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.{os.getpid()}.old")
        os.replace(out, old)
    try:
        os.replace(built, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old)


def _unwritable(out: Path, error: OSError) -> OSError:
    """An OSError whose message names the export folder and why it cannot be written (one line)."""
    ancestor = nearest_existing(out)
    if ancestor is not None and not ancestor.is_dir():
        return OSError(f"cannot write the export folder {out}: {ancestor} is a file, not a folder")
    return OSError(f"cannot write the export folder {out}: {error.strerror or error}")


def _about_export_folder(error: OSError, out: Path, built: Path) -> bool:
    """Whether ``error`` came from writing the export (its temporary folder, the folder, the old export moved
    aside) rather than from reading the run; an error naming no file (a full disk during ``write``) counts."""
    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    if not names:
        return True
    aside = str(out.with_name(f".{out.name}."))  # _move_into_place's ".NAME.<pid>.old"
    return any(name.startswith((str(built), str(out), aside)) for name in names)


def _make_parents(folder: Path) -> list[Path]:
    """``folder`` and its missing parents, created; returns those it created, deepest first (for cleaning up)."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(created):
        path.mkdir(exist_ok=True)
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; a folder something else wrote into since is kept
        try:
            folder.rmdir()
        except OSError:
            break


def export(run_dir: str | Path | None, fmt: str, out: str | Path | None = None) -> dict:
    """Export a trained Keras model to a self-contained folder, checked against the original.

    Args:
        run_dir: a training run folder, or a ``.keras`` file with the side JSON files beside it;
            ``None`` means ``runs/latest``.
        fmt: ``"keras"``, ``"savedmodel"`` or ``"tflite"`` (see the module docstring).
        out: the export folder; default ``<run folder>/export/<fmt>``. An existing export there is
            replaced; any other existing path is refused.

    Returns:
        the ``export.json`` payload, plus ``"path"``: where the export was written.

    Raises:
        ValueError: unknown ``fmt``, or ``run_dir`` is not a Keras model or cannot be read (see ``load_recognizer``).
        FileNotFoundError: no model at ``run_dir`` (see ``load_recognizer``).
        FileExistsError: ``out`` exists and is not an export folder.
        OSError: ``out`` cannot be written (a parent is a file, no permission, disk full); the message names
            the folder and why. Nothing is left behind, not even parent folders this call created.
        RuntimeError: a float32 export does not reproduce the Keras logits within ``FLOAT32_ATOL``.
    """
    import keras  # here, not at the top: `lipnet-ko export --help` must not load TensorFlow
    import tensorflow as tf

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    recognizer = load_recognizer(run_dir)
    if recognizer.format != "keras":
        raise ValueError(f"{recognizer.source} is already a {recognizer.format} export; export from the training run folder")
    source_dir = recognizer.source.parent
    out = Path(out) if out is not None else RunFolder(source_dir).export_dir(fmt)
    if out.exists() and not (out / EXPORT_MANIFEST).is_file():
        raise FileExistsError(f"{out} exists and is not an export folder; choose another --out or remove it")

    created: list[Path] = []
    built = temp_path(out)
    try:
        created = _make_parents(out.parent)
        shutil.rmtree(built, ignore_errors=True)
        built.mkdir()
    except OSError as error:
        _remove_empty(created)
        raise _unwritable(out, error) from None
    try:
        dtypes = _write_model(recognizer, fmt, built)
        for name in SIDE_FILES:
            shutil.copyfile(source_dir / name, built / name)
        c = recognizer.model_config
        if fmt == "keras":
            inputs = {"crops": f"float32 [B, T, {c.height}, {c.width}, {c.channels}] in [0, 1]", "crop_lengths": "int32 [B]"}
            outputs = {"logits": f"float32 [B, T, {c.vocabulary_size}], blank id 0"}
        else:
            batch = "1" if fmt == "tflite" else "B"
            inputs = {"crops": f"uint8 [{batch}, T, {c.height}, {c.width}, {c.channels}] in [0, 255]",
                      "crop_lengths": f"int32 [{batch}]"}
            outputs = {"logits": f"float32 [{batch}, T, {c.vocabulary_size}], blank id 0", "logit_lengths": f"int32 [{batch}]"}
        manifest = {
            "format": fmt,
            "files": _file_sizes(built),
            "models": {name: {"dtype": dtype} for name, dtype in dtypes.items()},
            "signature": SERVING_SIGNATURE if fmt != "keras" else None,
            "inputs": inputs,
            "outputs": outputs,
            "source_run": str(source_dir.resolve()),
            "source_model": str(recognizer.source.resolve()),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": {"lipnet_ko": __version__, "tensorflow": tf.__version__, "keras": keras.__version__},
            "limitations": TFLITE_LIMITATIONS if fmt == "tflite" else [],
        }
        write_json_atomic(built / EXPORT_MANIFEST, manifest)  # load_recognizer reads the format from it

        probe = _probe_clips(recognizer)
        reference = recognizer.logits(probe)
        for name, info in manifest["models"].items():
            exported = load_recognizer(built if fmt == "savedmodel" else built / name)
            info["check"] = compare_logits(reference, exported.logits(probe))
            if info["dtype"] == "float32" and info["check"]["max_abs_diff"] > FLOAT32_ATOL:
                raise RuntimeError(
                    f"the {fmt} export {name} differs from the Keras model by {info['check']['max_abs_diff']:.3g} "
                    f"(more than {FLOAT32_ATOL}); nothing was written"
                )
        manifest["check"] = {"probe_lengths": list(PROBE_LENGTHS), "float32_atol": FLOAT32_ATOL}
        write_json_atomic(built / EXPORT_MANIFEST, manifest)
        _move_into_place(built, out)
    except OSError as error:
        shutil.rmtree(built, ignore_errors=True)
        _remove_empty(created)
        if not _about_export_folder(error, out, built):
            raise  # e.g. a file of the run that cannot be read: its own message names it
        raise _unwritable(out, error) from None
    except BaseException:
        shutil.rmtree(built, ignore_errors=True)
        _remove_empty(created)
        raise
    return {**manifest, "path": str(out)}


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", nargs="?", type=Path, help="training run folder or .keras file (default runs/latest)")
    parser.add_argument(
        "--format",
        required=True,
        choices=FORMATS,
        help="keras (the model as trained), savedmodel (uint8 crops, any batch), tflite (float32 and float16, batch 1)",
    )
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="export folder (default RUN_DIR/export/FORMAT); an earlier export there is replaced")


def run(args: argparse.Namespace) -> int:
    """``lipnet-ko export RUN_DIR --format FMT [--out DIR]``: write the export, print its files and sizes."""
    try:
        manifest = export(args.run_dir, args.format, args.out)
    except (OSError, ValueError) as error:  # FileNotFoundError, FileExistsError, an unwritable --out, a damaged model
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"exported {manifest['format']} to {manifest['path']}")
    width = max(len(name) for name in manifest["files"])
    for name, size in manifest["files"].items():
        print(f"  {name:<{width}}  {_size(size):>10}")
    for name, info in manifest["models"].items():
        check = info["check"]
        print(
            f"  check {name} ({info['dtype']}): max |logit diff| {check['max_abs_diff']:.2e}, "
            f"argmax agreement {100 * check['argmax_agreement']:.1f}%"
        )
    for line in manifest["limitations"]:
        print(f"  note: {line}")
    return 0
