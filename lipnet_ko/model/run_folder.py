"""The layout of a training run folder: every path and file name of a run, and the ``runs/latest`` link.

A run folder, as ``lipnet_ko.training.trainer.train`` leaves it::

    config.json          TrainConfig (what `--config` reads back)
    model_config.json    ModelConfig; tokenizer.json; preprocess.json (the crop geometry inference must use)
    splits.json          clip ids of every split (synthetic default: train / val / unseen_sentences / unseen_speakers)
    state.json           resume state: epoch, batch, step, learning-rate plan, callback state, history
    checkpoints/         ckpt-<step>.npz (resume), best.weights.h5 (best validation syllable CER)
    log.csv, tensorboard/, train.log
    model.keras          the kept model (best validation CER)
    metrics.json         per test split and decoder: syllable_cer, jamo_cer, viseme_cer, wer, bleu; oracle_floor per split
    export/<format>/     what ``lipnet-ko export`` writes by default (see lipnet_ko.model.export)

``model_config.json``, ``tokenizer.json`` and ``preprocess.json`` are the side files: every model file needs
them beside it, in an export folder as much as in a run folder, so their names (``SIDE_FILES``) are shared
by both. Runs started without a folder of their own go to ``runs/<date-time>`` (relative to the working
folder), and ``runs/latest`` links to the newest of them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lipnet_ko.files import temp_path

logger = logging.getLogger(__name__)

RUNS_DIR = Path("runs")  # where runs go by default, relative to the working folder
LATEST = "latest"  # the link in RUNS_DIR to the newest run started there

KERAS_FILE = "model.keras"
MODEL_CONFIG_FILE = "model_config.json"
TOKENIZER_FILE = "tokenizer.json"
PREPROCESS_FILE = "preprocess.json"
SIDE_FILES = (MODEL_CONFIG_FILE, TOKENIZER_FILE, PREPROCESS_FILE)  # travel with every model file


def default_run_dir() -> Path:
    """``runs/<date-time>``: the folder of a run started without ``--run-dir``."""
    return RUNS_DIR / datetime.now().strftime("%Y%m%d-%H%M%S")


@dataclass(frozen=True)
class RunFolder:
    """The paths of one training run folder (see the module docstring); nothing is created until written.

    ``RunFolder(path)``: ``path`` is the run folder itself, e.g. ``runs/20240101-000000``.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def latest(cls, runs_dir: str | Path = RUNS_DIR) -> RunFolder:
        """``runs/latest``: the newest run started in ``runs_dir`` (the link itself; it may not exist)."""
        return cls(Path(runs_dir) / LATEST)

    @property
    def config_json(self) -> Path:
        return self.path / "config.json"

    @property
    def model_config_json(self) -> Path:
        return self.path / MODEL_CONFIG_FILE

    @property
    def tokenizer_json(self) -> Path:
        return self.path / TOKENIZER_FILE

    @property
    def preprocess_json(self) -> Path:
        return self.path / PREPROCESS_FILE

    @property
    def side_files(self) -> tuple[Path, ...]:
        """``model_config.json``, ``tokenizer.json``, ``preprocess.json``: what inference reads beside ``model.keras``."""
        return tuple(self.path / name for name in SIDE_FILES)

    @property
    def splits_json(self) -> Path:
        return self.path / "splits.json"

    @property
    def state_json(self) -> Path:
        return self.path / "state.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        """The resume checkpoint taken after ``step`` optimizer steps: ``checkpoints/ckpt-<step>.npz``."""
        return self.checkpoints / f"ckpt-{step:07d}.npz"

    def resume_checkpoints(self) -> list[Path]:
        """Every ``checkpoints/ckpt-*.npz`` on disk, oldest step first."""
        return sorted(self.checkpoints.glob("ckpt-*.npz"))

    @property
    def best_weights(self) -> Path:
        """``checkpoints/best.weights.h5``: the weights of the best validation CER so far."""
        return self.checkpoints / "best.weights.h5"

    @property
    def log_csv(self) -> Path:
        return self.path / "log.csv"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def train_log(self) -> Path:
        return self.path / "train.log"

    @property
    def model_keras(self) -> Path:
        return self.path / KERAS_FILE

    @property
    def metrics_json(self) -> Path:
        return self.path / "metrics.json"

    def export_dir(self, fmt: str) -> Path:
        """``export/<fmt>``: where ``lipnet-ko export`` writes a format by default."""
        return self.path / "export" / fmt

    def point_latest(self, runs_dir: str | Path = RUNS_DIR) -> None:
        """Point ``runs_dir/latest`` at this run: a relative symlink, replaced atomically.

        Only a run directly inside ``runs_dir`` is linked: a run elsewhere (``--run-dir``, tests) leaves the
        link to the default runs alone. A file system without symlinks gets a warning, not an error.
        """
        runs_dir = Path(runs_dir)
        if self.path.parent.resolve() != runs_dir.resolve():
            return
        link = self.path.parent / LATEST
        tmp = temp_path(link)
        try:
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.path.name)
            os.replace(tmp, link)
        except OSError as error:  # the old link, if any, is left as it was
            tmp.unlink(missing_ok=True)
            logger.warning("could not point %s at %s: %s", link, self.path, error)
