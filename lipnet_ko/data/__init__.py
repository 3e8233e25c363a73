"""Data: corpora on disk -> clips -> cached crops -> training batches.

- ``clips``: the ``Clip`` record (a video or a time range of one, with its text) and manifests (CSV/JSONL).
- ``corpora``: corpus readers by spec (``aihub:``, ``grid:``, ``manifest:``, ``synthetic:``), splits;
  ``lipnet-ko data``.
- ``crops``: a corpus -> one ``.npz`` of mouth crops per clip (parallel, resumable, reported);
  ``lipnet-ko preprocess``.
- ``batching``: ``.npz`` crops -> ``Example`` -> augmented, padded batches (``ClipBatcher``, ``tf.data``).
"""
