"""The LipNet-style model: STCNN (three Conv3D blocks) -> two bidirectional GRUs -> per-frame logits.

Its sizes are a ``lipnet_ko.model.config.ModelConfig``. ``build_model(config)`` returns a :class:`LipNet`,
a Keras model whose input is ``(crops, crop_lengths)`` (``[B, T, H, W, C]``, either uint8 in 0..255 as
stored, converted inside the graph, or float32 in [0, 1]; int32 ``[B]``) and whose output is logits
``[B, T, vocabulary_size]`` with the CTC blank at id 0. Padded frames are masked out of the GRUs, so a
clip's output does not depend on how much padding its batch has. ``LipNet.compute_loss`` applies CTC
with the true label and frame lengths, so ``model.fit`` works on the batches of ``lipnet_ko.data.batching``.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from lipnet_ko.model.losses import ctc_loss
from lipnet_ko.model.config import ModelConfig, TEMPORAL_STRIDE


@keras.saving.register_keras_serializable(package="lipnet_ko")
class LipNet(keras.Model):
    """STCNN + BiGRU lipreading network producing CTC logits (see the module docstring).

    Layer names are stable (``stcnn_block_1`` ...) because checkpoints match weights by name.
    """

    def __init__(self, config: ModelConfig | dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ModelConfig.from_dict(config)
        self.config = config or ModelConfig()
        c = self.config
        self.blocks = []
        block_sizes = zip(c.conv_filters, c.conv_kernels, c.conv_strides, c.block_pools)
        for i, (filters, kernel, stride, pool) in enumerate(block_sizes, 1):
            pad = tuple(k // 2 for k in kernel)
            self.blocks.append(
                [
                    layers.ZeroPadding3D(pad, name=f"stcnn_pad_{i}"),
                    layers.Conv3D(filters, kernel, strides=stride, kernel_initializer="he_normal", name=f"stcnn_block_{i}"),
                    # synchronized: under tf.distribute, batch statistics are all-reduced across replicas, so
                    # every worker ends with the same moving mean/variance (a no-op on one device)
                    layers.BatchNormalization(synchronized=True, name=f"stcnn_norm_{i}"),
                    layers.Activation("relu", name=f"stcnn_relu_{i}"),
                    layers.SpatialDropout3D(c.dropout, name=f"stcnn_dropout_{i}"),
                ]
                # the pool has no weights: checkpoints with and without it differ only in the GRU input size
                + ([layers.MaxPooling3D((1, pool, pool), name=f"stcnn_pool_{i}")] if pool > 1 else [])
            )
        self.input_pooling = (
            layers.AveragePooling3D((1, c.input_pool, c.input_pool), padding="same", name="input_pool")
            if c.input_pool > 1
            else None
        )
        height, width = -(-c.height // c.input_pool), -(-c.width // c.input_pool)
        for stride, pool in zip(c.conv_strides, c.block_pools):
            height, width = -(-height // stride[1]) // pool, -(-width // stride[2]) // pool
        if height < 1 or width < 1:
            raise ValueError(f"a {c.height}x{c.width} crop is too small for {len(c.conv_filters)} blocks")
        self.feature_dim = height * width * c.conv_filters[-1]
        self.flatten = layers.Reshape((-1, self.feature_dim), name="flatten_per_frame")
        self.grus = [
            layers.Bidirectional(
                layers.GRU(c.gru_units, return_sequences=True, kernel_initializer="orthogonal", name=f"gru_{i}"),
                merge_mode="concat",
                name=f"bigru_{i}",
            )
            for i in range(1, c.num_gru_layers + 1)
        ]
        self.gru_dropout = layers.Dropout(c.gru_dropout, name="gru_dropout")
        self.classifier = layers.Dense(c.vocabulary_size, kernel_initializer="he_normal", name="logits")

    def call(self, inputs, training=False):
        crops, crop_lengths = inputs
        mask = ops.arange(ops.shape(crops)[1])[None, :] < ops.cast(crop_lengths, "int32")[:, None]  # [B, T]
        # Zero padded frames after every block: batch norm's shift makes them non-zero, and the next
        # block's temporal kernel would otherwise carry padding into the last real frames.
        x = crops
        if keras.backend.standardize_dtype(x.dtype) == "uint8":  # stored crops: convert here, not in numpy
            x = ops.cast(x, "float32") * (1.0 / 255.0)
        frame_mask = ops.cast(mask, x.dtype)[:, :, None, None, None]
        pool_first = self.input_pooling is not None and self.config.pool_before_norm
        if pool_first:
            x = self.input_pooling(x)
        if self.config.input_norm == "clip":
            # Per clip and channel, over real frames only: lighting, skin tone and camera gain drop out,
            # and the clip's result does not depend on its padding.
            count = ops.maximum(ops.sum(frame_mask, axis=(1, 2, 3, 4), keepdims=True), 1.0) * (x.shape[2] * x.shape[3])
            mean = ops.sum(x * frame_mask, axis=(1, 2, 3), keepdims=True) / count
            var = ops.sum(ops.square(x - mean) * frame_mask, axis=(1, 2, 3), keepdims=True) / count
            x = (x - mean) * ops.rsqrt(var + 1e-6) * frame_mask
        if self.input_pooling is not None and not pool_first:
            x = self.input_pooling(x)
        for block in self.blocks:
            for layer in block:
                takes_training = isinstance(layer, (layers.BatchNormalization, layers.SpatialDropout3D))
                x = layer(x, training=training) if takes_training else layer(x)
            x = x * frame_mask
        x = self.flatten(x)
        for gru in self.grus:
            x = gru(x, mask=mask, training=training)
            x = self.gru_dropout(x, training=training)
        return self.classifier(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean CTC loss over the batch, with true label and frame lengths (blank 0)."""
        _, crop_lengths = x
        ids, id_lengths = y
        logit_lengths = ops.cast(crop_lengths, "int32") // TEMPORAL_STRIDE
        loss = ops.mean(ctc_loss(ids, y_pred, id_lengths, logit_lengths))
        return loss + ops.sum(self.losses) if self.losses else loss

    def get_config(self) -> dict:
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config: dict) -> "LipNet":
        return cls(**config)


def build_model(config: ModelConfig | None = None, frames: int = 75) -> LipNet:
    """A built (weights created) :class:`LipNet` for ``config``; ``frames`` is only used to build it."""
    config = config or ModelConfig()
    model = LipNet(config, name="lipnet")
    crops = ops.zeros((1, frames, config.height, config.width, config.channels))
    model((crops, ops.convert_to_tensor([frames], "int32")))
    return model
