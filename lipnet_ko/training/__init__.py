"""Training: a run from data to a scored checkpoint.

- ``config``: ``TrainConfig`` (nests ``DataConfig``, ``AugmentConfig`` and the model overrides).
- ``run_data``: a run's clips: corpus, splits, crop caches (``prepare_data``).
- ``evaluation``: logits -> decoded text -> corpus figures for a list of examples.
- ``trainer``: the CTC training loop, checkpoints, exact resume (``train``).
"""
