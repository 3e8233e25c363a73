"""lipnet_ko: Korean lipreading with a LipNet-style model, jamo CTC and a Hangul beam search.

Only the public API is exported here, and each name is imported on first use (PEP 562 ``__getattr__``):
``import lipnet_ko`` loads nothing but this file, so ``lipnet-ko --help`` and the text layer stay fast and
usable without numpy, OpenCV, TensorFlow or dlib.
"""

import importlib
import os

__version__ = "0.2.0"

# TensorFlow turns its oneDNN kernels on by default only on Intel CPUs; on others (AMD EPYC here) Conv3D
# runs several times slower without them. Set before TensorFlow is imported; an explicit user setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# public name -> the module that defines it
_EXPORTS = {
    "DecodingOptions": "lipnet_ko.decoding.search",  # numpy only
    "normalize_text": "lipnet_ko.text.normalize",
    "CharTokenizer": "lipnet_ko.text.tokenizer",
    "JamoTokenizer": "lipnet_ko.text.tokenizer",
    "get_tokenizer": "lipnet_ko.text.tokenizer",
    "TranscribeOptions": "lipnet_ko.app.transcribe",  # OpenCV; TensorFlow and dlib load on the first transcribe()
    "transcribe": "lipnet_ko.app.transcribe",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lipnet_ko' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def decode(logits, logit_lengths, tokenizer, options=None):
    """CTC logits -> one ``DecodingResult`` per utterance; see ``lipnet_ko.decoding.search.decode``."""
    from lipnet_ko.decoding.search import DecodingOptions, decode as decode_batch

    return decode_batch(logits, logit_lengths, tokenizer, options if options is not None else DecodingOptions())


def load_model(path=None):
    """A trained model with its tokenizer and preprocessing config, ready for ``transcribe``.

    ``path``: a run folder, an export folder (``lipnet-ko export``) or a ``.keras``/``.tflite`` file
    with its side files; None means ``runs/latest``. See ``lipnet_ko.model.inference.load_recognizer``.
    """
    from lipnet_ko.model.inference import load_recognizer

    return load_recognizer(path)


__all__ = [
    "__version__", "CharTokenizer", "DecodingOptions", "JamoTokenizer", "TranscribeOptions", "decode", "get_tokenizer",
    "load_model", "normalize_text", "transcribe",
]
