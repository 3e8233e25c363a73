"""lipnet_ko: Korean lipreading with a LipNet-style model, jamo CTC and a Hangul beam search.

Only the public API is exported here. Heavy modules (TensorFlow, dlib) are imported lazily so that
``import lipnet_ko`` and the text layer stay fast and usable without them.
"""

import os

__version__ = "0.2.0"

# TensorFlow turns its oneDNN kernels on by default only on Intel CPUs; on others (AMD EPYC here) Conv3D
# runs several times slower without them. Set before TensorFlow is imported; an explicit user setting wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from lipnet_ko.decode.search import DecodingOptions, decode  # noqa: E402  (numpy only)
from lipnet_ko.text.normalize import normalize_text  # noqa: E402
from lipnet_ko.text.tokenizer import CharTokenizer, JamoTokenizer, get_tokenizer  # noqa: E402
from lipnet_ko.app.transcribe import TranscribeOptions, transcribe  # noqa: E402  (OpenCV; TensorFlow and dlib load on first call)


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
