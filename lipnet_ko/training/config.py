"""``TrainConfig``: everything a training run depends on, saved as ``config.json`` in its run folder
(``lipnet_ko.model.run_folder.RunFolder.config_json``)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from lipnet_ko.data.batching import AugmentConfig
from lipnet_ko.model.config import ModelConfig, model_config
from lipnet_ko.training.run_data import DataConfig

STRATEGIES = ("default", "mirrored", "multiworker")
SCHEDULES = ("cosine", "constant", "plateau")
OBSOLETE_DATA_FIELDS = {"train_free", "free_sentences"}  # DataConfig fields of runs before corpus v4


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` in the run folder."""

    data: DataConfig = field(default_factory=DataConfig)
    preset: str = "small"  # model preset (lipnet_ko.model.config.PRESETS); "small" is the CPU preset
    model: dict = field(default_factory=dict)  # ModelConfig fields overriding the preset, e.g. {"gru_units": 64}
    batch_size: int = 8
    epochs: int = 60  # upper bound; max_minutes usually ends the run first
    learning_rate: float = 3e-3
    schedule: str = "cosine"  # cosine (warm-up, then cosine decay over the planned steps) | constant | plateau
    warmup_steps: int = 60
    min_learning_rate: float = 5e-5  # where cosine decay ends
    plateau_patience: int = 2  # "plateau": epochs without a better val CER before the rate is cut
    plateau_factor: float = 0.5
    early_stop_patience: int = 12  # epochs without a better val CER before stopping; 0 = never
    max_minutes: float | None = 25.0  # time budget: epochs are planned to fit it, the cosine decays over it; None = no limit
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)  # None = no augmentation
    curriculum_epochs: int = 0  # LipNet-style curriculum: the first N epochs train on the shorter half of the clips
    cache_limit_gb: float = 1.5  # keep training crops in memory when they fit in this; stream from .npz otherwise
    checkpoint_every: int = 20  # steps between resume checkpoints (and at every epoch end)
    val_clips: int = 96  # validation clips decoded (greedy) after each epoch
    sample_clips: int = 3  # validation clips whose reference -> hypothesis is logged each epoch
    beam_width: int = 32  # final evaluation's beam decoders
    strategy: str = "default"  # default | mirrored | multiworker (MultiWorkerMirroredStrategy from TF_CONFIG)
    seed: int = 0
    # Fine-tuning: start from a trained model's weights instead of random ones: a run folder, its .keras file or a
    # keras export folder, with the same tokenizer and network (lipnet_ko.training.trainer.find_init_model). Only a
    # new run loads them; a resumed run continues from its own checkpoint. None = random initialisation.
    init_from: str | None = None
    freeze_frontend_epochs: int = 0  # with init_from: the STCNN frontend is not trained for the first N epochs

    def __post_init__(self) -> None:
        if isinstance(self.data, dict):
            object.__setattr__(self, "data", DataConfig(**self.data))
        if isinstance(self.augment, dict):
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.augment.items()}
            values = {**AugmentConfig.ADDED_FIELDS, **values}  # a saved run keeps the augmentation it had
            object.__setattr__(self, "augment", AugmentConfig(**values))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        for name in ("batch_size", "epochs", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0 or None, got {self.max_minutes}")
        if isinstance(self.init_from, Path):
            object.__setattr__(self, "init_from", str(self.init_from))  # config.json holds it as a string
        if self.init_from is not None and not (isinstance(self.init_from, str) and self.init_from.strip()):
            raise ValueError(f"init_from must be the path of a trained run or model, or None, got {self.init_from!r}")
        if self.freeze_frontend_epochs < 0:
            raise ValueError(f"freeze_frontend_epochs must be >= 0, got {self.freeze_frontend_epochs}")
        if self.freeze_frontend_epochs and self.init_from is None:
            # A frozen random frontend would hand the GRUs fixed random features: refused rather than run.
            raise ValueError(
                f"freeze_frontend_epochs={self.freeze_frontend_epochs} needs init_from: only a trained frontend is worth "
                "keeping fixed; pass --init RUN, or leave --freeze-frontend-epochs out"
            )
        self.model_config(69)  # unknown preset or field names fail here, not after data preparation

    def model_config(self, vocabulary_size: int) -> ModelConfig:
        try:
            return model_config(self.preset, vocabulary_size=vocabulary_size, **self.model)
        except TypeError as error:
            raise ValueError(f"unknown model field in TrainConfig.model {sorted(self.model)}: {error}") from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        data = values.get("data")
        if isinstance(data, dict) and set(data) & OBSOLETE_DATA_FIELDS:
            # Runs made before corpus v4 (0.2 and older) held free-sentence test corpora of their own; the
            # fields mean nothing now. Their synthetic corpus settings are another version's: resuming such a
            # run on the synthetic default is refused by the corpus (a different cache key), not silently mixed.
            values = {**values, "data": {k: v for k, v in data.items() if k not in OBSOLETE_DATA_FIELDS}}
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read config {path}: {error}") from None
        return cls.from_dict(values)
