"""The network's sizes: ``ModelConfig``, the named presets, and the crop geometry constants.

No Keras here, so scoring, decoding and the command line can read a model's shape without loading
TensorFlow; ``lipnet_ko.model.network`` builds the model from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

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
    # CPU preset: narrower layers, and crops pooled to 25x50 first (4x fewer Conv3D FLOPs; on a CPU the
    # Conv3D backward pass dominates a training step), without the last max-pool so the GRUs still get a
    # 3x6 map (864 features per frame rather than 144). About 1.16 M parameters. Pooling the last block too
    # gives shorter epochs but learns less per epoch, and less in the same time budget (README compares them).
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


