"""A trained model ready for inference: ``load_recognizer(path) -> Recognizer``, mouth crops -> logits.

A :class:`Recognizer` bundles the network with what it must be used with: its ``ModelConfig``, the
tokenizer it was trained with and the ``PreprocessConfig`` that made its crops. It loads any of:

* a training run folder (``model.keras`` + ``model_config.json``, ``tokenizer.json``, ``preprocess.json``),
  or ``runs/latest`` when no path is given;
* a ``.keras`` file with those three JSON files beside it;
* an export folder written by :mod:`lipnet_ko.model.export` (its ``export.json`` names the format: ``keras``,
  ``savedmodel`` or ``tflite``), or one ``.tflite`` file inside it (e.g. ``model_fp16.tflite``).

Whatever the format, ``Recognizer.logits(clips)`` gives the same per-clip logits (up to float error).
Decoding them to text is :mod:`lipnet_ko.decoding.search`'s job.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from lipnet_ko.model.config import TEMPORAL_STRIDE, ModelConfig
from lipnet_ko.model.run_folder import KERAS_FILE, MODEL_CONFIG_FILE, PREPROCESS_FILE, SIDE_FILES, TOKENIZER_FILE, RunFolder
from lipnet_ko.video.extract import PreprocessConfig
from lipnet_ko.text.tokenizer import load_tokenizer

FORMATS = ("keras", "savedmodel", "tflite")
TFLITE_FILE = "model.tflite"  # float32; export also writes TFLITE_FP16_FILE beside it
TFLITE_FP16_FILE = "model_fp16.tflite"
EXPORT_MANIFEST = "export.json"
SERVING_SIGNATURE = "serving_default"  # SavedModel and TFLite: crops uint8 [B, T, H, W, C], crop_lengths int32 [B]
KERAS_ARCHIVE_MEMBERS = ("config.json", "model.weights.h5")  # what Keras 3 writes into every .keras zip
COPY_HINT = "was it copied whole?"
SAVED_MODEL_FILES = ["saved_model.pb", "variables/variables.index"]  # what tf.saved_model.load reads first


class Recognizer:
    """A model plus the configuration it must be used with.

    Attributes:
        model_config: the network's ``ModelConfig`` (crop size, channels, vocabulary size).
        tokenizer: the tokenizer the model was trained with; ``tokenizer.vocab_size`` equals
            ``model_config.vocabulary_size``.
        preprocess: the ``PreprocessConfig`` that made the training crops; crops fed to the model
            must be made with it.
        source: the model file or folder this was loaded from.
        format: ``"keras"``, ``"savedmodel"`` or ``"tflite"``.
        model: the Keras ``LipNet`` when ``format == "keras"``, else ``None``.
    """

    def __init__(
        self, backend, model_config: ModelConfig, tokenizer, preprocess: PreprocessConfig, source: Path, format: str, model=None
    ):
        self._backend = backend
        self.model_config = model_config
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.source = Path(source)
        self.format = format
        self.model = model

    def __repr__(self) -> str:
        c = self.model_config
        return (
            f"Recognizer(format={self.format!r}, source='{self.source}', "
            f"input={c.height}x{c.width}x{c.channels}, vocabulary_size={c.vocabulary_size})"
        )

    def predict(self, crops: np.ndarray, crop_lengths: np.ndarray) -> np.ndarray:
        """Logits for one padded batch.

        Args:
            crops: float ``[B, T, H, W, C]`` in [0, 1] (uint8 in [0, 255] is accepted too), zero-padded in time.
                Exported models take uint8, so for them float crops are rounded to steps of 1/255,
                which is lossless for crops that came from uint8.
            crop_lengths: int ``[B]``, the real number of frames of each clip (1 ≤ length ≤ T).

        Returns:
            float32 logits ``[B, T // TEMPORAL_STRIDE, vocabulary_size]``, blank at id 0. Rows past a
            clip's ``crop_lengths[b] // TEMPORAL_STRIDE`` are padding and hold no meaning.
        """
        crops = np.asarray(crops)
        crop_lengths = np.asarray(crop_lengths, dtype=np.int32)
        c = self.model_config
        if crops.ndim != 5 or crops.shape[2:] != (c.height, c.width, c.channels):
            raise ValueError(
                f"crops must be [B, T, {c.height}, {c.width}, {c.channels}] for this model, got shape {crops.shape}"
            )
        if crop_lengths.shape != crops.shape[:1]:
            raise ValueError(f"crop_lengths must be [B] = [{crops.shape[0]}], got shape {crop_lengths.shape}")
        if crop_lengths.size and (crop_lengths.min() < 1 or crop_lengths.max() > crops.shape[1]):
            raise ValueError(f"crop_lengths must lie in 1..{crops.shape[1]} (the padded length), got {crop_lengths.tolist()}")
        return self._backend(crops, crop_lengths)

    def logits(self, clips: Sequence[np.ndarray], batch_size: int = 16) -> list[np.ndarray]:
        """Per-clip logits, padding removed, in the order of ``clips``.

        Clips are sorted by length and batched so that each batch is padded as little as possible;
        the result does not depend on the batching (padded frames are masked in the model).

        Args:
            clips: mouth crops, each uint8 ``[T_i, H, W, C]`` with ``(H, W, C)`` as in ``model_config``
                (``[T_i, H, W]`` is accepted for a one-channel model).
            batch_size: clips per forward pass.

        Returns:
            one float32 ``[T_i // TEMPORAL_STRIDE, vocabulary_size]`` array per clip.
        """
        clips = [self._check_clip(i, clip) for i, clip in enumerate(clips)]
        return self._batched_logits([len(c) for c in clips], clips.__getitem__, batch_size)

    def example_logits(self, examples: Sequence, batch_size: int = 16) -> list[np.ndarray]:
        """Like :meth:`logits` for ``lipnet_ko.data.batching.Example`` items: each clip is read from disk
        only when its batch runs, so a whole split never sits in memory at once."""
        return self._batched_logits([e.num_frames for e in examples],
                                    lambda i: self._check_clip(i, examples[i].load()), batch_size)

    def _batched_logits(self, lengths: Sequence[int], load, batch_size: int) -> list[np.ndarray]:
        """The one prediction loop: sort by length, pad each batch to its longest clip, run, strip the padding."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        out: list[np.ndarray | None] = [None] * len(lengths)
        order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            clips = [load(i) for i in indices]
            crop_lengths = np.array([len(c) for c in clips], dtype=np.int32)
            crops = np.zeros((len(clips), crop_lengths.max(), *clips[0].shape[1:]), dtype=np.uint8)
            for row, clip in enumerate(clips):
                crops[row, : len(clip)] = clip
            logits = self._backend(crops, crop_lengths)
            for row, i in enumerate(indices):
                out[i] = logits[row, : crop_lengths[row] // TEMPORAL_STRIDE].copy()  # not a view that keeps the batch alive
        return out  # type: ignore[return-value]

    def _check_clip(self, index: int, clip: np.ndarray) -> np.ndarray:
        clip = np.asarray(clip)
        c = self.model_config
        if clip.ndim == 3 and c.channels == 1:
            clip = clip[..., None]
        if clip.ndim != 4 or clip.shape[1:] != (c.height, c.width, c.channels):
            raise ValueError(
                f"clip {index} has shape {clip.shape}, but this model takes {c.height}x{c.width}x{c.channels} crops "
                f"([T, {c.height}, {c.width}, {c.channels}]); make the crops with the recognizer's preprocess config"
            )
        if clip.dtype != np.uint8:
            raise ValueError(
                f"clip {index} is {clip.dtype}; pass uint8 crops (0..255), or use predict() for float crops in [0, 1]"
            )
        if len(clip) == 0:
            raise ValueError(f"clip {index} has no frames")
        return clip


def _as_float(crops: np.ndarray) -> np.ndarray:
    if crops.dtype == np.uint8:
        return crops.astype(np.float32) * np.float32(1 / 255)
    return crops.astype(np.float32, copy=False)


def _as_uint8(crops: np.ndarray) -> np.ndarray:
    if crops.dtype == np.uint8:
        return crops
    return np.round(np.clip(crops, 0.0, 1.0) * 255).astype(np.uint8)


class KerasBackend:
    """Runs the LipNet in one traced function (any batch and length: traced once, not per shape).

    ``backend(crops, crop_lengths) -> logits`` (numpy); training validates with it too.
    """

    def __init__(self, model, config: ModelConfig):
        import tensorflow as tf

        self.model = model
        spec = [
            tf.TensorSpec([None, None, config.height, config.width, config.channels], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ]
        self._forward = tf.function(
            lambda crops, crop_lengths: model((crops, crop_lengths), training=False), input_signature=spec
        )

    def __call__(self, crops: np.ndarray, crop_lengths: np.ndarray) -> np.ndarray:
        return self._forward(_as_float(crops), crop_lengths).numpy()


def keras_recognizer(model, tokenizer, preprocess: PreprocessConfig, source: str | Path = "<in memory>") -> Recognizer:
    """A :class:`Recognizer` over a Keras ``LipNet`` held in memory (training validates and evaluates through it)."""
    return Recognizer(KerasBackend(model, model.config), model.config, tokenizer, preprocess, Path(source), "keras", model=model)


class _SavedModelBackend:
    def __init__(self, path: Path):
        import tensorflow as tf

        try:
            self._loaded = tf.saved_model.load(str(path))  # keep a reference: the signature does not own the variables
        except Exception as error:  # OSError, IndexError, tf.errors.*, a protobuf DecodeError: all mean "damaged"
            raise ValueError(
                f"cannot read the SavedModel in {path}: {_first_line(error)} ({COPY_HINT} export it again with "
                "`lipnet-ko export`)"
            ) from None
        try:
            self._serve = self._loaded.signatures[SERVING_SIGNATURE]
        except KeyError:
            raise ValueError(
                f"{path}: SavedModel has no {SERVING_SIGNATURE!r} signature; re-export it with `lipnet-ko export`"
            ) from None
        self.input_shape = tuple(self._serve.structured_input_signature[1]["crops"].shape)  # (None, None, H, W, C)

    def __call__(self, crops: np.ndarray, crop_lengths: np.ndarray) -> np.ndarray:
        outputs = self._serve(crops=_as_uint8(crops), crop_lengths=crop_lengths)
        return outputs["logits"].numpy()


def _first_line(error: BaseException) -> str:
    """An exception as one line: its first non-empty line, prefixed by its type."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _tflite_interpreter(path: Path):
    """An interpreter from ``ai_edge_litert`` when installed, else ``tf.lite.Interpreter``.

    The model is passed as bytes, not as a path: only then does the interpreter verify the flatbuffer, so a
    truncated or damaged file raises ValueError instead of crashing the process (it segfaults from a path).
    """
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read the TFLite model {path}: {error.strerror or error}") from None
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    try:
        with warnings.catch_warnings():
            # tf.lite.Interpreter warns on every construction that it moves to ai_edge_litert; it still works.
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
            return Interpreter(model_content=content)
    except ValueError as error:  # "The model is not a valid Flatbuffer buffer", "... identifier ..., should be 'TFL3'"
        raise ValueError(
            f"cannot read the TFLite model {path}: not a valid TFLite file ({len(content)} bytes): "
            f"{_first_line(error)} ({COPY_HINT})"
        ) from None


class _TFLiteBackend:
    """One clip per invoke: the TFLite model has batch size 1 and any length (see lipnet_ko.model.export)."""

    def __init__(self, path: Path):
        self._interpreter = _tflite_interpreter(path)
        signatures = self._interpreter.get_signature_list()
        if SERVING_SIGNATURE not in signatures:
            raise ValueError(f"{path}: no {SERVING_SIGNATURE!r} signature; re-export it with `lipnet-ko export`")
        self._run = self._interpreter.get_signature_runner(SERVING_SIGNATURE)
        self.input_shape = tuple(int(d) for d in self._run.get_input_details()["crops"]["shape_signature"])  # (1, -1, H, W, C)
        self._vocabulary_size = int(self._run.get_output_details()["logits"]["shape_signature"][-1])

    def __call__(self, crops: np.ndarray, crop_lengths: np.ndarray) -> np.ndarray:
        crops = _as_uint8(crops)
        logits = np.zeros((len(crops), crops.shape[1] // TEMPORAL_STRIDE, self._vocabulary_size), np.float32)
        for row, length in enumerate(crop_lengths):
            # The signature runner resizes the inputs to this clip's length and reallocates.
            out = self._run(crops=crops[row : row + 1, :length], crop_lengths=crop_lengths[row : row + 1])["logits"]
            logits[row, : out.shape[1]] = out[0]
        return logits


def _check_input_shape(path: Path, shape: tuple, config: ModelConfig) -> None:
    expected = (config.height, config.width, config.channels)
    if tuple(shape[2:]) != expected:
        raise ValueError(
            f"model and config do not match: {path} takes {'x'.join(map(str, shape[2:]))} crops but "
            f"{MODEL_CONFIG_FILE} says {'x'.join(map(str, expected))}"
        )


def locate_model(path: Path) -> tuple[str, Path, Path]:
    """``path`` -> (format, model file or folder, folder holding the side JSON files)."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; pass a training run folder, an export folder, or a .keras/.tflite file "
            f"(`python train.py` saves {RunFolder.latest().path})"
        )
    if path.is_file():
        formats = {".keras": "keras", ".tflite": "tflite"}
        if path.suffix not in formats:
            raise ValueError(f"{path}: not a model file; expected a .keras or .tflite file, or a run or export folder")
        return formats[path.suffix], path, path.parent
    manifest = path / EXPORT_MANIFEST
    if manifest.is_file():
        fmt = _read_json(manifest).get("format")
        if fmt not in FORMATS:
            raise ValueError(f"{manifest}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        needed = {"keras": [KERAS_FILE], "savedmodel": SAVED_MODEL_FILES, "tflite": [TFLITE_FILE]}[fmt]
        missing = [name for name in needed if not (path / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{path} is a {fmt} export but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing; "
                "export it again with `lipnet-ko export`"
            )
        return fmt, path if fmt == "savedmodel" else path / needed[0], path
    run = RunFolder(path)
    if run.model_keras.is_file():
        return "keras", run.model_keras, path
    raise FileNotFoundError(
        f"no model in {path}: expected {KERAS_FILE} (a training run) or {EXPORT_MANIFEST} (an export folder); "
        "train one with `python train.py` or pass --model PATH"
    )


def write_side_files(folder: str | Path, config: ModelConfig, tokenizer, preprocess: PreprocessConfig) -> None:
    """Write what must travel with a model file (``SIDE_FILES``) into ``folder``; ``read_side_files`` reads them back."""
    from lipnet_ko.files import write_json_atomic

    folder = Path(folder)
    write_json_atomic(folder / MODEL_CONFIG_FILE, config.to_dict())
    tokenizer.save(folder / TOKENIZER_FILE)
    (folder / PREPROCESS_FILE).write_text(preprocess.to_json(), encoding="utf-8")


def _read_json(path: Path) -> dict:
    """A JSON object file; anything else is a ValueError that names the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"cannot read {path}: {_first_line(error)} ({COPY_HINT})") from None
    if not isinstance(data, dict):
        raise ValueError(f"cannot read {path}: expected a JSON object, got a {type(data).__name__} ({COPY_HINT})")
    return data


def _read_side_file(path: Path, read):
    """``read(path)``, with any failure of a readable-but-wrong file turned into a ValueError naming ``path``."""
    try:
        return read(path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        message = str(error)
        if str(path) in message:  # already names the file (as _read_json does)
            raise ValueError(message) from None
        raise ValueError(f"cannot read {path}: {_first_line(error)} ({COPY_HINT})") from None


def read_side_files(folder: Path) -> tuple[ModelConfig, object, PreprocessConfig]:
    missing = [name for name in SIDE_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {', '.join(missing)}: a model can only be used with the config, tokenizer and crop "
            "settings it was trained with; copy them from its training run folder"
        )
    config = _read_side_file(folder / MODEL_CONFIG_FILE, lambda p: ModelConfig.from_dict(_read_json(p)))
    tokenizer = _read_side_file(folder / TOKENIZER_FILE, lambda p: load_tokenizer(p))
    preprocess = _read_side_file(folder / PREPROCESS_FILE, lambda p: PreprocessConfig.from_json(p.read_text(encoding="utf-8")))
    if tokenizer.vocab_size != config.vocabulary_size:
        raise ValueError(
            f"model and tokenizer do not match in {folder}: {MODEL_CONFIG_FILE} has vocabulary_size="
            f"{config.vocabulary_size} but {TOKENIZER_FILE} ({tokenizer.name}) has {tokenizer.vocab_size} tokens"
        )
    return config, tokenizer, preprocess


def _check_keras_archive(path: Path) -> None:
    """Raise a ValueError that says what is wrong with a ``.keras`` file Keras cannot open.

    Keras reports any file that is not a zip archive as "File not found", even when it is there but
    empty, truncated or something else; this names the real problem first.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise ValueError(f"cannot read the model {path}: {error.strerror or error}") from None
    if not zipfile.is_zipfile(path):
        if size == 0:
            why = "the file is empty"
        elif head.startswith(b"PK"):
            why = f"a zip archive cut short ({size} bytes, its end is missing)"
        elif head == b"\x89HDF":
            why = "an HDF5 file (a legacy .h5 model, not a .keras archive)"
        else:
            why = f"{size} bytes that are not a zip archive"
        raise ValueError(f"cannot read the model {path}: not a Keras archive: {why} ({COPY_HINT})")
    try:
        with zipfile.ZipFile(path) as archive:
            missing = [name for name in KERAS_ARCHIVE_MEMBERS if name not in archive.namelist()]
            if missing:
                raise ValueError(
                    f"cannot read the model {path}: not a Keras archive: the zip has no {', '.join(missing)} ({COPY_HINT})"
                )
            damaged = archive.testzip()  # reads every member and checks its CRC
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"cannot read the model {path}: damaged Keras archive: {error} ({COPY_HINT})") from None
    if damaged is not None:
        raise ValueError(
            f"cannot read the model {path}: damaged Keras archive: {damaged} fails its checksum ({COPY_HINT})"
        )


def load_keras_model(path: Path, config: ModelConfig):
    import keras

    from lipnet_ko.model.network import LipNet  # registers the class, so load_model needs no custom_objects

    _check_keras_archive(path)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # e.g. OSError from h5py for a damaged weights file, KeyError, TypeError from a config
        raise ValueError(f"cannot read the model {path}: {_first_line(error)} ({COPY_HINT})") from None
    if not isinstance(model, LipNet):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a lipnet_ko LipNet")
    if model.config != config:
        raise ValueError(
            f"model and config do not match: {path} was built with {model.config}, {MODEL_CONFIG_FILE} says {config}"
        )
    return model


def model_path_or_latest(path: str | Path | None) -> Path:
    """``path``, or ``runs/latest`` when it is None (FileNotFoundError, with what to do, when there is none)."""
    if path is not None:
        return Path(path)
    latest = RunFolder.latest().path
    if not latest.exists():
        raise FileNotFoundError(f"no trained model at {latest}: run `python train.py` (it saves {latest}) or pass --model PATH")
    return latest


def read_preprocess_config(path: str | Path | None = None) -> PreprocessConfig:
    """The crop settings a model at ``path`` (as :func:`load_recognizer` takes it) must be fed with, read from its
    side files alone: no TensorFlow, so crops can be made while the model loads."""
    return read_side_files(locate_model(model_path_or_latest(path))[2])[2]


def load_recognizer(path: str | Path | None = None) -> Recognizer:
    """Load a model with its configuration, for inference.

    Args:
        path: a training run folder, an export folder (``lipnet-ko export``), a ``.keras`` file or a
            ``.tflite`` file with ``model_config.json``, ``tokenizer.json`` and ``preprocess.json``
            beside it; ``None`` means ``runs/latest`` (relative to the working folder).

    Returns:
        a :class:`Recognizer`.

    Raises:
        FileNotFoundError: nothing loadable at ``path``, or a side file is missing (the message names it).
        ValueError: a model file or side file that is there but cannot be read (empty, truncated, damaged,
            not what its name says; the message names the file and why), or the model, its config and its
            tokenizer do not belong together.
    """
    path = model_path_or_latest(path)
    fmt, model_path, folder = locate_model(path)
    config, tokenizer, preprocess = read_side_files(folder)
    model = None
    if fmt == "keras":
        model = load_keras_model(model_path, config)
        backend = KerasBackend(model, config)
    elif fmt == "savedmodel":
        backend = _SavedModelBackend(model_path)
        _check_input_shape(model_path, backend.input_shape, config)
    else:
        backend = _TFLiteBackend(model_path)
        _check_input_shape(model_path, backend.input_shape, config)
    return Recognizer(backend, config, tokenizer, preprocess, source=model_path, format=fmt, model=model)
