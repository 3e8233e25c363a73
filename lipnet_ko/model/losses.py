"""CTC loss with the true per-clip lengths.

``keras.losses.CTC`` takes every sample's length from the padded shape, so with padded batches it
scores padding as labels and frames. This function takes the real lengths instead; it is the same
quantity as Keras 2's ``ctc_batch_cost`` (the negative log-likelihood of the label under CTC), but
computed from unnormalised logits, with the blank at id 0.
"""

from __future__ import annotations

import keras
from keras import ops

from lipnet_ko.text.tokenizer import BLANK_ID


def ctc_loss(ids, logits, id_lengths, logit_lengths):
    """Per-clip CTC negative log-likelihood.

    Args:
        ids: int ``[B, L]`` label ids, padded with anything past ``id_lengths``.
        logits: float ``[B, T, V]`` unnormalised scores; id 0 is the blank.
        id_lengths: int ``[B]`` true label lengths.
        logit_lengths: int ``[B]`` true frame counts of ``logits``.

    Returns:
        float32 ``[B]``: ``-log p(ids | logits)`` for each clip. Where a label cannot fit its frames,
        TensorFlow clamps the log of zero and returns about 708 rather than ``inf``; drop such clips
        first (``lipnet_ko.data.batching.drop_infeasible``).
    """
    return keras.ops.ctc_loss(
        ops.cast(ids, "int32"),
        ops.cast(logits, "float32"),
        ops.cast(id_lengths, "int32"),
        ops.cast(logit_lengths, "int32"),
        mask_index=BLANK_ID,
    )
