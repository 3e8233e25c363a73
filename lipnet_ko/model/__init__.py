"""Model: the network and everything that runs or saves it.

- ``config``: ``ModelConfig`` and the named presets (no Keras import: cheap to read).
- ``network``: the LipNet Keras model (STCNN + BiGRU, logits out).
- ``losses``: CTC with true label and frame lengths.
- ``inference``: ``Recognizer``, the one prediction path (evaluation, training's validation, transcription,
  the benchmarks), loading a run folder or an export.
- ``run_folder``: ``RunFolder``, the one owner of a training run's file names and the ``runs/latest`` link.
- ``export``: ``.keras``, SavedModel and TFLite exports, checked against the source model;
  ``lipnet-ko export``.
"""
