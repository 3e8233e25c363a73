"""The LipNet-style model: STCNN (three Conv3D blocks) -> two bidirectional GRUs -> per-frame logits.

``build_model(config)`` returns a :class:`LipNet`, a Keras model whose input is ``(crops,
crop_lengths)`` (``[B, T, H, W, C]``, either uint8 in 0..255 as stored, converted inside the graph,
or float32 in [0, 1]; int32 ``[B]``) and whose output is logits
``[B, T, vocabulary_size]`` with the CTC blank at id 0. Padded frames are masked out of the GRUs, so a
clip's output does not depend on how much padding its batch has. ``LipNet.compute_loss`` applies CTC
with the true label and frame lengths, so ``model.fit`` works on the batches of ``lipnet_ko.data``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import keras
from keras import layers, ops

from lipnet_ko.losses import ctc_loss

MOUTH_HEIGHT = 50  # px, crop height the presets expect
MOUTH_WIDTH = 100  # px
TEMPORAL_STRIDE = 1  # output frames per input frame: the model never pools in time


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the network; ``PRESETS`` holds the named ones."""

    vocabulary_size: int = 69  # the tokenizer's vocab_size, blank included
    height: int = MOUTH_HEIGHT  # input crop height, px
    width: int = MOUTH_WIDTH  # input crop width, px
    channels: int = 3  # 3 = RGB, 1 = grey
    input_pool: int = 1  # average-pool the crops by this factor in height and width before the STCNN (CPU presets)
    conv_filters: tuple[int, ...] = (32, 64, 96)
    conv_kernels: tuple[tuple[int, int, int], ...] = ((3, 5, 5), (3, 5, 5), (3, 3, 3))
    conv_strides: tuple[tuple[int, int, int], ...] = ((1, 2, 2), (1, 1, 1), (1, 1, 1))  # LipNet strides the first block
    gru_units: int = 256  # per direction
    num_gru_layers: int = 2
    dropout: float = 0.5  # spatial dropout after each conv block
    gru_dropout: float = 0.0  # dropout between GRU layers
    input_norm: str = "clip"  # "clip": standardise each clip over its real frames (mean 0, std 1); "none"
    # Apply input_pool before input_norm (4x less work for the normalisation at input_pool=2). False
    # keeps the order models saved before this option were trained with.
    pool_before_norm: bool = False
    # Max-pool after the last Conv3D block too (LipNet). False keeps its spatial map: with input_pool=2 the
    # small preset's frames reach the GRUs as 3x6x48 = 864 features instead of 1x3x48 = 144.
    pool_last: bool = True

    def __post_init__(self) -> None:
        if not (len(self.conv_filters) == len(self.conv_kernels) == len(self.conv_strides)):
            raise ValueError("conv_filters, conv_kernels and conv_strides must have one entry per block")
        if self.input_pool < 1:
            raise ValueError(f"input_pool must be >= 1, got {self.input_pool}")
        if self.input_norm not in ("clip", "none"):
            raise ValueError(f"input_norm must be 'clip' or 'none', got {self.input_norm!r}")
        if self.vocabulary_size < 2:
            raise ValueError(f"vocabulary_size must count the blank and at least one token, got {self.vocabulary_size}")
        # JSON round trips give lists; keep tuples so configs compare and hash equal.
        object.__setattr__(self, "conv_filters", tuple(int(f) for f in self.conv_filters))
        object.__setattr__(self, "conv_kernels", tuple(tuple(int(k) for k in kk) for kk in self.conv_kernels))
        object.__setattr__(self, "conv_strides", tuple(tuple(int(s) for s in ss) for ss in self.conv_strides))

    @property
    def block_pools(self) -> tuple[int, ...]:
        """The max-pool factor (height and width) after each Conv3D block: 2, or 1 for an unpooled last block."""
        return tuple(2 if self.pool_last or i < len(self.conv_filters) - 1 else 1 for i in range(len(self.conv_filters)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        return cls(**values)


PRESETS: dict[str, ModelConfig] = {
    "lipnet": ModelConfig(),  # the paper's sizes: about 4.6 M parameters at 69 tokens
    # CPU preset: narrower layers, and crops pooled to 25x50 first (4x fewer Conv3D FLOPs; on 2 cores the
    # Conv3D backward pass is most of a training step), without the last max-pool so the GRUs still get a
    # 3x6 map (864 features per frame rather than 144). About 1.16 M parameters. Pooling the last block too
    # (0.61 M, the preset before runs/v4-b) gives shorter epochs but learns less per epoch: 2.9-3.5% syllable
    # CER on seen speakers against 1.5-2.0% for this one in the same 20 minutes (README).
    "small": ModelConfig(
        conv_filters=(16, 32, 48), gru_units=128, input_pool=2, dropout=0.2, pool_before_norm=True, pool_last=False
    ),
    "tiny": ModelConfig(conv_filters=(4, 8, 8), gru_units=16, dropout=0.0),  # tests only
}


def model_config(preset: str = "small", **overrides) -> ModelConfig:
    """A named preset with fields overridden, e.g. ``model_config("lipnet", vocabulary_size=29)``."""
    try:
        base = PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown model preset {preset!r}; choose from {sorted(PRESETS)}") from None
    return replace(base, **overrides)


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
        for i, (filters, kernel, stride, pool) in enumerate(zip(c.conv_filters, c.conv_kernels, c.conv_strides, c.block_pools), 1):
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
            layers.AveragePooling3D((1, c.input_pool, c.input_pool), padding="same", name="input_pool") if c.input_pool > 1 else None
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
                x = layer(x, training=training) if isinstance(layer, (layers.BatchNormalization, layers.SpatialDropout3D)) else layer(x)
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
