"""Training defaults per corpus kind: what ``python train.py --data KIND:PATH`` trains with when no flag says otherwise.

``TrainConfig()``'s own defaults are the synthetic default's (open Korean on many synthetic faces). Other corpora
need other settings, and a user who names only the data should still get a run that works:

- ``grid:`` (GRID, English, one or a few real speakers): the char tokenizer, and the augmentation without the
  colour and skin transforms that stand in for the synthetic corpus's many faces (a real speaker's colours are
  what the test clips show too). The split is the default one, held-out sentences of the training speakers
  (LipNet's overlapped-speaker protocol), scored as ``seen``.
- ``crops:`` (a few dozen clips already cropped to the mouth, e.g. one real speaker): small batches, a short
  budget, a gentler learning rate with a short warm-up, and more clips held out, because there are so few;
  with ``--init RUN`` this is the fine-tuning recipe, which also holds the STCNN for the first 30 epochs.

A recipe only fills in fields the user left alone: a flag, or a ``--config`` file, always wins
(:func:`apply_recipe`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lipnet_ko.data.batching import AugmentConfig
from lipnet_ko.training.config import TrainConfig

# Augmentation for real video of few speakers: the geometric and temporal transforms, not the colour and skin
# ones (AugmentConfig's channel_gain, saturation_range, texture), which vary the synthetic corpus's faces.
REAL_VIDEO_AUGMENT = AugmentConfig(**AugmentConfig.ADDED_FIELDS)

# kind -> {dotted TrainConfig field: value}; "data.x" is a DataConfig field.
RECIPES: dict[str, dict[str, Any]] = {
    # epochs: an upper bound far above what fits, so the budget ends the run (TrainConfig's 60 stopped GRID s1 after
    # 23 of its 25 minutes on a quiet machine; GRID's epochs are short)
    "grid": {"data.tokenizer": "char", "augment": REAL_VIDEO_AUGMENT, "epochs": 1000},
    "crops": {
        "augment": REAL_VIDEO_AUGMENT,
        "batch_size": 4,
        "max_minutes": 6.0,
        "learning_rate": 1e-3,
        "warmup_steps": 10,
        "early_stop_patience": 0,  # a handful of val clips is too noisy to stop on; the budget ends the run
        "data.val_share": 0.15,
        "data.seen_share": 0.15,
    },
}
# Added when the run starts from a trained model (--init): fine-tuning a few clips works better with the STCNN held
# for the first epochs (BENCHMARKS.md, "Real speakers": 6 clips of a real speaker, 22.4% syllable CER with beam + LM
# frozen against 23.0% unfrozen and 30.2% from scratch).
INIT_RECIPES: dict[str, dict[str, Any]] = {"crops": {"freeze_frontend_epochs": 30}}


def corpus_kind(spec: str) -> str:
    """``"grid"`` for ``grid:DIR``, ``"synthetic"`` for the embedded default, and so on."""
    return "synthetic" if spec == "synthetic" else spec.partition(":")[0]


def recipe_for(spec: str, fine_tuning: bool = False) -> dict[str, Any]:
    """The defaults :data:`RECIPES` holds for ``spec``'s corpus kind (empty for the synthetic default), with
    :data:`INIT_RECIPES`'s when ``fine_tuning`` (the run starts from a trained model)."""
    kind = corpus_kind(spec)
    return {**RECIPES.get(kind, {}), **(INIT_RECIPES.get(kind, {}) if fine_tuning else {})}


def apply_recipe(config: TrainConfig, given: set[str] = frozenset()) -> TrainConfig:
    """``config`` with its corpus kind's recipe filled in, except the dotted fields in ``given`` (set by the user).

    Returns:
        A new config; ``config`` itself when the kind has no recipe.
    """
    top: dict[str, Any] = {}
    data: dict[str, Any] = {}
    for name, value in recipe_for(config.data.spec, fine_tuning=config.init_from is not None).items():
        if name in given:
            continue
        if name.startswith("data."):
            data[name.removeprefix("data.")] = value
        else:
            top[name] = value
    if not top and not data:
        return config
    return dataclasses.replace(config, data=dataclasses.replace(config.data, **data), **top)
