"""Test helper: a run folder as ``lipnet_ko.training.trainer`` leaves it, holding a randomly initialised model."""

from __future__ import annotations

from pathlib import Path

import keras

from lipnet_ko.model.inference import write_side_files
from lipnet_ko.model.network import build_model
from lipnet_ko.model.run_folder import RunFolder
from lipnet_ko.video.extract import PreprocessConfig


def write_run(folder: Path, config, tokenizer, frames: int = 8):
    """Creates ``folder`` with ``model.keras`` (weights from seed 0) and its side files; returns the model."""
    run = RunFolder(folder)
    keras.utils.set_random_seed(0)
    model = build_model(config, frames=frames)
    run.path.mkdir(parents=True, exist_ok=True)
    model.save(run.model_keras)
    write_side_files(run.path, config, tokenizer, PreprocessConfig())
    return model
