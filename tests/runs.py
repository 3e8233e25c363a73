"""Test helper: a run folder as ``lipnet_ko.training`` leaves it, holding a randomly initialised model."""

from __future__ import annotations

from pathlib import Path

import keras

from lipnet_ko.inference import write_side_files
from lipnet_ko.model import build_model
from lipnet_ko.preprocess import PreprocessConfig


def write_run(folder: Path, config, tokenizer, frames: int = 8):
    """Creates ``folder`` with ``model.keras`` (weights from seed 0) and its side files; returns the model."""
    keras.utils.set_random_seed(0)
    model = build_model(config, frames=frames)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    write_side_files(folder, config, tokenizer, PreprocessConfig())
    return model
