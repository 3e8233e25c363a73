"""CTC training of the LipNet model: ``TrainConfig`` -> ``train(config, run_dir)`` -> a run folder.

The loop is written out (one traced train step over an epoch of batches prefetched by a thread) rather than
``model.fit``, because a run must resume *mid-epoch* exactly where it stopped: ``fit`` with
``BackupAndRestore`` restarts the interrupted epoch from its first batch. Batches depend only on
(seed, epoch, batch position) (see ``lipnet_ko.data.batching.ClipBatcher``), and a checkpoint holds every model
variable (dropout seed state included) and every optimizer variable, so a killed run that resumes ends
with the same weights as one that never stopped (without a time budget: under ``max_minutes`` the
learning rate follows elapsed time, see ``learning_rate_at``).

A run is driven by ``_Trainer``: its constructor sets up the session (data, model, resume state),
``train_epoch`` runs the rest of one epoch, ``end_epoch`` validates, logs and checkpoints, and
``finish_run`` scores the kept model. What the run leaves on disk, and where, is
``lipnet_ko.model.run_folder.RunFolder``.

Fine-tuning (``TrainConfig.init_from``, ``--init RUN``): a new run copies every weight of a trained model with the
same tokenizer and network (``find_init_model``, ``load_init_weights``) before its first step; a resumed run
continues from its own checkpoint. ``freeze_frontend_epochs`` keeps the STCNN (``frontend_layers``) fixed for
the first epochs: its layers are made non-trainable, so that phase has a train step of its own, traced over
the other variables, and the optimizer restarts when the frontend joins in (``_Trainer.restart_optimizer``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lipnet_ko.data.batching import ClipBatcher, Example, PipelineConfig
from lipnet_ko.files import replace_atomically, temp_path, write_json_atomic
from lipnet_ko.model.config import ModelConfig
from lipnet_ko.model.run_folder import RunFolder, default_run_dir
from lipnet_ko.training.config import TrainConfig
from lipnet_ko.training.run_data import EVAL_SPLITS, RunData, prepare_data, read_run_splits, write_run_splits
from lipnet_ko.video.extract import PreprocessConfig

logger = logging.getLogger(__name__)


def _saved_model_config(run_dir: Path, mconfig: ModelConfig) -> ModelConfig:
    """On ``--resume``, the ``ModelConfig`` the run started with (its ``model_config.json``), not ``mconfig``.

    A preset can change between versions (a layer added, a pooling left out); a run resumes as the
    network its checkpoints hold.
    """
    path = RunFolder(run_dir).model_config_json
    if not path.is_file():
        return mconfig
    saved = ModelConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    if saved != mconfig:
        now = mconfig.to_dict()
        changed = sorted(k for k, v in saved.to_dict().items() if now.get(k) != v)
        logger.warning("resuming with the run's own model config (%s differ from the preset now)", ", ".join(changed))
    return saved


def check_same_training_data(run_dir: Path, data: RunData) -> None:
    """Refuse to resume a run on other training clips than it started with (``splits.json``).

    The data of a run is rebuilt on ``--resume``; a corpus regenerated in between (a new generator
    version, other settings, a changed corpus folder) would silently continue on different clips.
    """
    path = RunFolder(run_dir).splits_json
    if not path.is_file():
        return
    saved = read_run_splits(path).get("splits", {}).get("train", [])
    now = data.clip_ids.get("train", [])
    if saved != now:
        missing, new = len(set(saved) - set(now)), len(set(now) - set(saved))
        raise ValueError(
            f"{run_dir} started on other training clips than the data has now ({len(saved)} then, {len(now)} now; "
            f"{missing} gone, {new} new): its corpus or settings changed (for the synthetic default, a newer "
            "corpus version); resume it with the data it started on, or start a new run"
        )


# ---------------------------------------------------------------------------------------------------
# Learning-rate plan and the epoch-end callbacks (their state is saved for --resume)


def learning_rate_at(config: TrainConfig, step: int, total_steps: int, cuts: int, time_share: float = 0.0) -> float:
    """The rate for ``step`` (0-based): linear warm-up, then the schedule; ``cuts`` = plateau reductions so far.

    ``time_share`` (elapsed / ``max_minutes``, 0 without a budget): the cosine's progress is the larger of
    the step share and the time share, so under a time budget the decay ends when the budget does,
    even when epochs run slower than planned (following the epoch plan alone, a run that falls behind
    would stop with the rate still mid-way down).
    """
    base = config.learning_rate
    if config.schedule == "plateau":
        base *= config.plateau_factor**cuts
    if step < config.warmup_steps:
        return base * (step + 1) / config.warmup_steps
    if config.schedule != "cosine":
        return base
    progress = min(1.0, max(time_share, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)))
    low = min(config.min_learning_rate, base)
    return low + 0.5 * (base - low) * (1 + math.cos(math.pi * progress))


def plan_epochs(config: TrainConfig, epochs_done: int, train_seconds: float, epoch_seconds: list[float]) -> int:
    """How many epochs a run under ``max_minutes`` does in all, re-planned after every epoch.

    Another epoch starts only when it is expected to end within 5% over the budget, at the median time
    of the last three epochs after the first (which pays for tracing). The learning rate does not
    depend on this plan: under a budget the cosine follows the time share (``learning_rate_at``), so
    it reaches its floor when the budget ends however many epochs fit.
    """
    if config.max_minutes is None or not epoch_seconds:
        return config.epochs
    steady = epoch_seconds[1:] or epoch_seconds
    per_epoch = max(1e-3, float(np.median(steady[-3:])))
    more = max(0, int((config.max_minutes * 60.0 * 1.05 - train_seconds) / per_epoch))
    return max(epochs_done, min(config.epochs, epochs_done + more))


@dataclass
class Monitor:
    """Best-so-far tracking of val CER for checkpointing, early stopping and plateau cuts."""

    best: float = math.inf
    best_epoch: int = -1
    since_best: int = 0  # epochs without improvement (early stopping)
    since_cut: int = 0  # epochs without improvement since the last rate cut (plateau)
    cuts: int = 0
    min_delta: float = 1e-4

    def update(self, epoch: int, value: float, config: TrainConfig) -> dict:
        """Returns what to do: {"improved", "cut_rate", "stop"}."""
        improved = value < self.best - self.min_delta
        if improved:
            self.best, self.best_epoch, self.since_best, self.since_cut = value, epoch, 0, 0
        else:
            self.since_best += 1
            self.since_cut += 1
        cut = config.schedule == "plateau" and self.since_cut >= config.plateau_patience
        if cut:
            self.cuts += 1
            self.since_cut = 0
        stop = bool(config.early_stop_patience) and self.since_best >= config.early_stop_patience
        return {"improved": improved, "cut_rate": cut, "stop": stop}


@dataclass
class TrainState:
    """What ``--resume`` needs besides the weights."""

    epoch: int = 0  # current epoch (0-based)
    batch: int = 0  # batches of ``epoch`` already done
    step: int = 0  # optimizer steps done in all
    planned_epochs: int | None = None  # set after the first epoch from max_minutes
    total_steps: int | None = None
    train_seconds: float = 0.0  # time spent in the loop so far (over all sessions of the run)
    checkpoint: str | None = None  # file name under checkpoints/
    monitor: Monitor = field(default_factory=Monitor)
    history: list[dict] = field(default_factory=list)  # one row per finished epoch
    epoch_loss_sum: float = 0.0  # running loss of the unfinished epoch
    finished: bool = False
    stop_reason: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainState":
        values = dict(values)
        values["monitor"] = Monitor(**values.get("monitor", {}))
        return cls(**values)


# ---------------------------------------------------------------------------------------------------
# Strategy, model and checkpoints


def make_strategy(name: str):
    """The tf.distribute strategy for ``--strategy``; "multiworker" reads the cluster from ``TF_CONFIG``."""
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multiworker needs TF_CONFIG (cluster and task) in the environment")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def worker_shard() -> tuple[int, int]:
    """(this worker's index, number of workers) from ``TF_CONFIG``; (0, 1) without one."""
    spec = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    workers = len(spec.get("cluster", {}).get("worker", [])) or 1
    return int(spec.get("task", {}).get("index", 0)), workers


def make_train_step(model, strategy, frame_shape: tuple[int, int, int]):
    """One compiled train step ``step(((crops, crop_lengths), (ids, id_lengths))) -> loss``.

    Traced once, with every batch and time dimension left open: a run that resumes on a batch of
    another shape then runs the very same graph as one that never stopped (with Keras' own
    ``train_on_batch`` the traces, and so the float rounding, depend on the order shapes arrive in).
    """
    import tensorflow as tf

    h, w, c = frame_shape
    signature = (
        (tf.TensorSpec((None, None, h, w, c), tf.uint8), tf.TensorSpec((None,), tf.int32)),
        (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32)),
    )

    @tf.function(input_signature=[signature])
    def step(data):
        logs = strategy.run(model.train_step, args=(data,))
        return strategy.experimental_local_results(logs["loss"])[0]

    def run(data) -> float:
        model.reset_metrics()  # the loss tracker would otherwise average over steps
        return float(step(data))

    return run


def save_checkpoint(path: Path, model, optimizer) -> None:
    """Every model variable (weights, batch-norm statistics, dropout seeds) and optimizer variable, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"model_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    arrays.update({f"optimizer_{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)})

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    replace_atomically(temp_path(path), path, write)


def load_checkpoint(path: Path, model, optimizer) -> None:
    with np.load(path) as archive:
        model_vars = [archive[f"model_{i}"] for i in range(len(model.variables))]
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        opt_keys = sorted((k for k in archive.files if k.startswith("optimizer_")), key=lambda k: int(k.split("_")[1]))
        model_keys = (f"model_{i}" for i in range(len(model.variables)))
        if len(opt_keys) != len(optimizer.variables) or any(k not in archive.files for k in model_keys):
            raise ValueError(f"{path} does not match this model/optimizer (was the config changed?)")
        for variable, value in zip(model.variables, model_vars):
            variable.assign(value)
        for variable, key in zip(optimizer.variables, opt_keys):
            variable.assign(archive[key])


def _save_weights_atomic(model, path: Path) -> None:
    replace_atomically(path.with_name(f".{path.name[: -len('.weights.h5')]}.tmp{os.getpid()}.weights.h5"), path,
                        model.save_weights)


def _save_model_atomic(model, path: Path) -> None:
    replace_atomically(path.with_name(f".{path.stem}.tmp{os.getpid()}.keras"), path, model.save)


# ---------------------------------------------------------------------------------------------------
# Fine-tuning: the trained model a run starts from (--init), and its frontend frozen for the first epochs

REGULARISATION_FIELDS = ("dropout", "gru_dropout")  # ModelConfig fields with no weights: a fine-tuning run may change them


@dataclass(frozen=True)
class InitModel:
    """The trained model a new run starts from (``TrainConfig.init_from``), as :func:`find_init_model` found it."""

    model_file: Path  # the .keras file whose weights are copied
    model_config: ModelConfig  # its model_config.json
    preprocess: PreprocessConfig  # its preprocess.json: how the crops it was trained on were made


def find_init_model(config: TrainConfig, tokenizer) -> InitModel:
    """The model ``config.init_from`` names, checked against the run's tokenizer and network; reads JSON only.

    Args:
        config: the new run's settings; ``init_from`` is a training run folder (its ``model.keras``), a ``.keras``
            file with its side files beside it, or a keras export folder (``lipnet-ko export --format keras``):
            what ``lipnet_ko.model.inference.load_recognizer`` loads, less the formats without Keras weights.
        tokenizer: the run's tokenizer; the model's must be the same one (name and every id).

    Returns:
        an :class:`InitModel`. Its ``ModelConfig`` equals the run's (``config.model_config``) but for
        ``REGULARISATION_FIELDS``.

    Raises:
        FileNotFoundError: nothing at ``init_from``, a folder without ``model.keras`` (e.g. a run still
            training), or a side file missing.
        ValueError: a model without Keras weights, an unreadable side file, or another tokenizer or network
            (the message names what differs).
    """
    from lipnet_ko.model.inference import EXPORT_MANIFEST, locate_model, read_side_files

    path, where = Path(config.init_from).resolve(), f"--init {config.init_from}"
    run = RunFolder(path)
    if not path.exists():
        raise FileNotFoundError(f"{where}: no such run folder or model file")
    if path.is_dir() and not (path / EXPORT_MANIFEST).is_file() and not run.model_keras.is_file():
        why = " (a run still training: its model.keras is written when it ends)" if run.state_json.is_file() else ""
        raise FileNotFoundError(f"{where}: no {run.model_keras.name} in that folder{why}; pass a finished run folder, "
                                "a .keras file or a keras export folder")
    try:
        fmt, model_file, folder = locate_model(path)
        if fmt != "keras":
            raise ValueError(f"a {fmt} model has no Keras weights to fine-tune; pass its training run folder or .keras file")
        its_config, its_tokenizer, preprocess = read_side_files(folder)
    except (FileNotFoundError, ValueError) as error:
        raise type(error)(f"{where}: {error}") from None
    if its_tokenizer != tokenizer:
        hint = f" (--tokenizer {its_tokenizer.name})" if its_tokenizer.name != tokenizer.name else ""
        raise ValueError(f"{where}: its tokenizer is {its_tokenizer.name} ({its_tokenizer.vocab_size} ids), this run's is "
                         f"{tokenizer.name} ({tokenizer.vocab_size} ids): fine-tuning needs the same tokenizer{hint}")
    its, ours = its_config.to_dict(), config.model_config(tokenizer.vocab_size).to_dict()
    differ = [f"{k} {its[k]} vs {ours[k]}" for k in ours if k not in REGULARISATION_FIELDS and its.get(k) != ours[k]]
    if differ:
        its_preset = _run_preset(folder)
        if its_preset not in (None, config.preset):
            differ.insert(0, f"preset {its_preset} vs {config.preset}")
        raise ValueError(f"{where}: its network differs from this run's: {', '.join(differ)} (its vs this run's); "
                         "fine-tuning needs the same network: pass the --preset and TrainConfig.model it was trained with")
    return InitModel(model_file, its_config, preprocess)


def _run_preset(folder: Path) -> str | None:
    """The preset named in ``folder``'s ``config.json`` (a run folder's), for error messages; None without one."""
    try:
        return json.loads(RunFolder(folder).config_json.read_text(encoding="utf-8")).get("preset")
    except (OSError, ValueError, AttributeError):
        return None


def load_init_weights(model, init: InitModel) -> None:
    """Every weight of ``init``'s model into ``model``: batch-norm statistics too, not the dropout seeds.

    Weights are matched by their path below the model (``stcnn_block_1/kernel``, ...; a model loaded from a
    ``.keras`` file names them without the model's own ``lipnet/`` in front) and must have the same shapes, so
    until its first step ``model`` computes exactly the logits the trained model does.

    Raises:
        ValueError: a weight missing on either side, or of another shape (the network code changed since).
    """
    from lipnet_ko.model.inference import load_keras_model

    def by_path(network) -> dict:
        return {w.path.removeprefix(f"{network.name}/"): w for w in network.weights}

    theirs, ours = by_path(load_keras_model(init.model_file, init.model_config)), by_path(model)
    problems = [f"{p} missing in it" for p in ours if p not in theirs]
    problems += [f"{p} not in this run's" for p in theirs if p not in ours]
    problems += [f"{p} {tuple(theirs[p].shape)} vs {tuple(w.shape)}" for p, w in ours.items()
                 if p in theirs and tuple(theirs[p].shape) != tuple(w.shape)]  # fmt: skip
    if problems:
        raise ValueError(f"{init.model_file}: its weights do not fit this run's network: {', '.join(problems[:5])}"
                         f"{' ...' if len(problems) > 5 else ''}")
    for p, w in ours.items():
        w.assign(theirs[p].numpy())


def frontend_layers(model) -> list:
    """The STCNN frontend of a ``LipNet``: every layer of its Conv3D blocks (``model.blocks``, the ``stcnn_*`` layers:
    padding, Conv3D, batch norm, activation, dropout, pooling). The input pooling before them has no weights."""
    return [layer for block in model.blocks for layer in block]


def set_frontend_trainable(model, trainable: bool) -> None:
    """Freeze (False) or unfreeze the frontend. A frozen batch norm runs in inference mode (Keras 3), so its
    statistics stay as loaded too: a frozen frontend computes the same features at every step."""
    for layer in frontend_layers(model):
        layer.trainable = trainable


# ---------------------------------------------------------------------------------------------------
# The run


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict
    state: TrainState


def _get_tokenizer(name: str):
    from lipnet_ko.text.tokenizer import get_tokenizer

    return get_tokenizer(name)


def _fits_in_memory(examples: list[Example], limit_gb: float) -> bool:
    if examples[0].crops is not None:
        return True
    with np.load(examples[0].crops_path) as archive:
        frame_bytes = int(np.prod(archive["crops"].shape[1:]))
    return sum(e.num_frames for e in examples) * frame_bytes <= limit_gb * 2**30


class _Csv:
    FIELDS = ("epoch", "step", "loss", "val_cer", "val_wer", "learning_rate", "seconds", "rss_mb")

    def __init__(self, path: Path, keep_epochs_below: int):
        self.path = path
        rows = []
        if path.exists():  # a resumed run: drop rows of epochs that will be redone
            with open(path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < keep_epochs_below]
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, self.FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    def append(self, row: dict) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, self.FIELDS).writerow({k: row.get(k) for k in self.FIELDS})


def resident_mb() -> float | None:
    """This process's resident memory (MB), from /proc on Linux; None elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _attach_log_file(run: RunFolder) -> tuple[logging.Handler, int]:
    """``train.log`` gets the library's INFO records even when the caller configured no logging."""
    handler = logging.FileHandler(run.train_log, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("lipnet_ko")
    level = package.level
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)
    package.addHandler(handler)
    return handler, level


def train(config: TrainConfig, run_dir: str | Path | None = None, *, resume: bool = False, progress: bool = True,
          data: RunData | None = None) -> TrainResult:
    """Trains (or resumes) a run and evaluates it; see ``lipnet_ko.model.run_folder`` for the run folder.

    Args:
        config: the run's settings. On ``resume`` the folder's ``config.json`` is used instead.
        run_dir: the run folder; default ``runs/<date-time>`` (and ``runs/latest`` points to it).
        resume: continue the run in ``run_dir`` from its last checkpoint.
        progress: tqdm progress bars.
        data: already prepared data (tests, notebooks); default: ``prepare_data(config.data)``.

    Raises:
        ValueError: ``run_dir`` already holds a run and ``resume`` is False, or holds none and it is True; or
            ``config.init_from`` is no model this run can start from (see ``find_init_model``).
        FileNotFoundError: nothing to start from at ``config.init_from``.
    """
    run = RunFolder(run_dir if run_dir is not None else default_run_dir())
    if resume:
        if not run.state_json.exists():
            raise ValueError(f"{run.path} holds no run to resume (no {run.state_json.name}); start one without --resume")
        saved = TrainConfig.from_json(run.config_json)
        if saved != config:
            logger.info("resuming with the run's own %s (settings given now are ignored)", run.config_json.name)
        config = saved
    elif run.state_json.exists():
        raise ValueError(f"{run.path} already holds a run; pass --resume to continue it, or choose another --run-dir")
    init = None
    if not resume and config.init_from is not None:  # checked before the run folder or the data is made
        init = find_init_model(config, _get_tokenizer(config.data.tokenizer))
        # resolved: config.json must name the model even where init_from was relative, or runs/latest (which moves on)
        config = dataclasses.replace(config, init_from=str(Path(config.init_from).resolve()))
    run.path.mkdir(parents=True, exist_ok=True)
    handler, level = _attach_log_file(run)
    try:
        return _Trainer(config, run, resume, progress, data, init).run()
    finally:
        package = logging.getLogger("lipnet_ko")
        package.removeHandler(handler)
        package.setLevel(level)
        handler.close()


class _Trainer:
    """One session of a run: ``__init__`` sets it up, ``run()`` trains epoch by epoch, then scores the kept model.

    All progress lives in ``self.state`` (a ``TrainState``), which ``save_state`` writes to ``state.json``
    beside a checkpoint of every variable; a new session built with ``resume=True`` starts from there.
    """

    def __init__(self, config: TrainConfig, run: RunFolder, resume: bool, progress: bool, data: RunData | None,
                 init: InitModel | None = None):
        self.config, self.run_folder, self.progress = config, run, progress
        self.tokenizer = _get_tokenizer(config.data.tokenizer)
        self.preprocess = PreprocessConfig()
        mconfig = config.model_config(self.tokenizer.vocab_size)
        self.data = data if data is not None else prepare_data(config.data, self.tokenizer, self.preprocess, progress=progress)
        mconfig = self._start_or_check_run(resume, mconfig)
        self._make_batchers()
        self._build_model(mconfig)
        if init is not None:
            self._initialise_from(init)
        self._load_state(resume)
        self.budget = None if config.max_minutes is None else config.max_minutes * 60.0  # seconds
        self.session_start = time.perf_counter()
        self.seconds_before = self.state.train_seconds

    def _start_or_check_run(self, resume: bool, mconfig: ModelConfig) -> ModelConfig:
        """A new run writes its config, side files and splits; a resumed one checks its data and keeps its network."""
        from lipnet_ko.model.inference import write_side_files

        run = self.run_folder
        if not resume:
            write_json_atomic(run.config_json, self.config.to_dict())
            write_side_files(run.path, mconfig, self.tokenizer, self.preprocess)
            write_run_splits(run.splits_json, self.data)
            run.point_latest()
        else:
            check_same_training_data(run.path, self.data)
            mconfig = _saved_model_config(run.path, mconfig)
        logger.info("data: %s", json.dumps(self.data.summary()))
        return mconfig

    def _make_batchers(self) -> None:
        """This worker's share of the training clips, batched; with a curriculum, also its shorter half."""
        config = self.config
        worker, workers = worker_shard() if config.strategy == "multiworker" else (0, 1)
        self.train_examples = self.data.splits["train"][worker::workers]
        self.val_examples = self.data.splits["val"][: config.val_clips]
        cache = _fits_in_memory(self.train_examples, config.cache_limit_gb)
        logger.info("%d training clips (%s)", len(self.train_examples), "cached in memory" if cache else "streamed from .npz")
        pipeline = PipelineConfig(batch_size=config.batch_size, seed=config.seed, cache=cache)
        self.batcher = ClipBatcher(self.train_examples, pipeline, config.augment)
        self.short_batcher = None
        if config.curriculum_epochs:
            lengths = sorted(e.num_frames for e in self.batcher.examples)
            cut = lengths[len(lengths) // 2]
            self.short_batcher = ClipBatcher([e for e in self.batcher.examples if e.num_frames <= cut], pipeline, config.augment)

    def batcher_for(self, epoch: int) -> ClipBatcher:
        if self.short_batcher is not None and epoch < self.config.curriculum_epochs:
            return self.short_batcher
        return self.batcher

    def steps_until(self, epochs: int) -> int:
        return sum(len(self.batcher_for(e)) for e in range(epochs))

    def _build_model(self, mconfig: ModelConfig) -> None:
        """The seeded model and optimizer under the run's strategy, the traced train step and the recognizer."""
        import keras

        from lipnet_ko.model.inference import keras_recognizer
        from lipnet_ko.model.network import build_model

        config = self.config
        keras.utils.set_random_seed(config.seed)
        self.strategy = strategy = make_strategy(config.strategy)
        with strategy.scope():
            self.model = build_model(mconfig, frames=max(e.num_frames for e in self.train_examples[:64]))
            self.optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate, clipnorm=5.0)
            self.model.compile(optimizer=self.optimizer, jit_compile=False)
            self.optimizer.build(self.model.trainable_variables)
        logger.info("model %s: %.2f M parameters", config.preset, self.model.count_params() / 1e6)
        self.train_steps = {}  # frontend frozen (bool) -> its traced step (see train_step_for)
        self.recognizer = keras_recognizer(self.model, self.tokenizer, self.preprocess, self.run_folder.path)

    def _initialise_from(self, init: InitModel) -> None:
        load_init_weights(self.model, init)
        logger.info("weights initialised from %s", init.model_file)
        if init.preprocess != self.preprocess:
            logger.warning("%s was trained on crops made with other preprocess settings than this run's", init.model_file)

    def train_step_for(self, epoch: int):
        """The traced step of ``epoch``'s phase: frontend frozen (the first ``freeze_frontend_epochs``) or trained.

        Sets the frontend's trainable flags for that phase. A step's graph is traced on its first call, over the
        variables trainable then, so each phase has a step of its own, each traced once.
        """
        frozen = epoch < self.config.freeze_frontend_epochs
        set_frontend_trainable(self.model, not frozen)
        if frozen not in self.train_steps:
            if frozen:
                logger.info("frontend (STCNN) frozen up to epoch %d", self.config.freeze_frontend_epochs)
            self.train_steps[frozen] = make_train_step(self.model, self.strategy, self.batcher.frame_shape)
        return self.train_steps[frozen]

    def restart_optimizer(self) -> None:
        """Every optimizer variable back to zero (Adam's moments and step count) when the frontend unfreezes.

        Adam's bias correction counts the optimizer's steps, not each variable's: frontend moments that start
        from zero at a late step would go uncorrected and move the trained frontend by several times the
        learning rate per step (3x at the first step, 6x by the tenth for a steady gradient) for hundreds
        of steps. Restarted, as Keras' transfer-learning guide recompiles after unfreezing, every variable
        takes Adam's usual first steps. The learning rate is left alone: ``step`` sets it anyway.
        """
        keep = self.optimizer.learning_rate
        for variable in self.optimizer.variables:
            if variable is not keep:
                variable.assign(np.zeros(variable.shape, variable.dtype))

    def _load_state(self, resume: bool) -> None:
        """``self.state``: a fresh one, or the saved one with its checkpoint loaded; then the log writers."""
        import tensorflow as tf

        run = self.run_folder
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        self.state = TrainState()
        if resume:
            self.state = TrainState.from_dict(json.loads(run.state_json.read_text(encoding="utf-8")))
            if self.state.checkpoint:
                load_checkpoint(run.checkpoints / self.state.checkpoint, self.model, self.optimizer)
            logger.info("resumed at epoch %d, batch %d (step %d)", self.state.epoch + 1, self.state.batch, self.state.step)
        if self.state.total_steps is None:
            self.state.total_steps = self.steps_until(self.config.epochs)
        self.csv_log = _Csv(run.log_csv, keep_epochs_below=self.state.epoch)
        self.writer = tf.summary.create_file_writer(str(run.tensorboard))

    def elapsed(self) -> float:
        """Seconds of training in all the run's sessions so far."""
        return self.seconds_before + time.perf_counter() - self.session_start

    def save_state(self) -> None:
        """A checkpoint of every variable, then ``state.json`` naming it, then the older checkpoints go."""
        path = self.run_folder.checkpoint(self.state.step)
        save_checkpoint(path, self.model, self.optimizer)
        self.state.checkpoint = path.name
        write_json_atomic(self.run_folder.state_json, self.state.to_dict())
        for old in self.run_folder.resume_checkpoints():
            if old.name != path.name:
                old.unlink(missing_ok=True)

    def run(self) -> TrainResult:
        state = self.state
        while not state.finished:
            planned = state.planned_epochs or self.config.epochs
            if state.epoch >= planned:
                state.finished, state.stop_reason = True, state.stop_reason or f"planned epochs done ({planned})"
                break
            epoch_start = time.perf_counter()
            if not self.train_epoch(planned):
                state.train_seconds = self.elapsed()
                state.finished, state.stop_reason = True, f"time budget ({self.config.max_minutes} min) used up mid-epoch"
                self.save_state()
                break
            self.end_epoch(epoch_start)
        set_frontend_trainable(self.model, True)  # model.keras is saved with every layer trainable
        write_json_atomic(self.run_folder.state_json, state.to_dict())
        logger.info("training stopped: %s; %d epochs, %d steps, %.1f min",
                    state.stop_reason, state.epoch, state.step, state.train_seconds / 60)
        metrics = finish_run(self.run_folder, self.recognizer, self.data, self.config, state)
        return TrainResult(self.run_folder.path, metrics, state)

    def train_epoch(self, planned: int) -> bool:
        """The batches of ``state.epoch`` from ``state.batch`` on; False when the time budget ran out before its end."""
        from tqdm import tqdm

        state = self.state
        source = self.batcher_for(state.epoch)
        steps = len(source)
        bar = tqdm(total=steps, initial=state.batch, desc=f"epoch {state.epoch + 1}/{planned}", unit="batch",
                   disable=None if self.progress else True, dynamic_ncols=True, leave=False)
        out_of_time = False
        self.train_step = self.train_step_for(state.epoch)
        for (crops, crop_lengths), (ids, id_lengths) in source.prefetched(state.epoch, state.batch):
            loss, lr = self.step(((crops, crop_lengths), (ids, id_lengths)))
            bar.update()
            bar.set_postfix(loss=f"{loss:.2f}", lr=f"{lr:.1e}")
            if state.step % self.config.checkpoint_every == 0 and state.batch < steps:
                state.train_seconds = self.elapsed()
                self.save_state()
            if self.budget is not None and self.elapsed() > self.budget * 1.1:  # the plan was too optimistic: stop now
                out_of_time = True
                break
        bar.close()
        return not out_of_time

    def step(self, batch) -> tuple[float, float]:
        """One optimizer step on ``batch`` at the planned rate: ``(loss, learning rate)``."""
        import tensorflow as tf

        state = self.state
        time_share = 0.0 if self.budget is None else self.elapsed() / self.budget
        lr = learning_rate_at(self.config, state.step, state.total_steps, state.monitor.cuts, time_share)
        self.optimizer.learning_rate.assign(lr)
        loss = self.train_step(batch)
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss became {loss} at step {state.step}; lower --learning-rate")
        state.step += 1
        state.batch += 1
        state.epoch_loss_sum += loss
        with self.writer.as_default(step=state.step):
            tf.summary.scalar("train/loss", loss)
            tf.summary.scalar("train/learning_rate", lr)
        return loss, lr

    def end_epoch(self, epoch_start: float) -> None:
        """Validate, log, keep the best weights, re-plan under a time budget, decide on stopping, checkpoint."""
        state, config = self.state, self.config
        epoch = state.epoch
        row = {"epoch": epoch, "step": state.step, "loss": round(state.epoch_loss_sum / max(1, state.batch), 4),
               "learning_rate": self.optimizer.learning_rate.numpy().item()}
        decision = self.validate(epoch, row)
        row["seconds"] = round(time.perf_counter() - epoch_start, 1)
        row["rss_mb"] = resident_mb()
        self.log_epoch(row, decision)
        state.epoch, state.batch, state.epoch_loss_sum = epoch + 1, 0, 0.0
        state.train_seconds = self.elapsed()
        if self.budget is not None:
            planned = plan_epochs(config, state.epoch, state.train_seconds, [h["seconds"] for h in state.history])
            if planned != state.planned_epochs:
                logger.info("%d epochs fit the %.0f-minute budget", planned, config.max_minutes)
            state.planned_epochs = planned
        if decision["stop"]:
            state.finished, state.stop_reason = True, f"early stopping: no better val CER for {config.early_stop_patience} epochs"
        if config.freeze_frontend_epochs and state.epoch == config.freeze_frontend_epochs:
            # the checkpoint below holds the restarted optimizer, so a resumed run restarts it once only
            self.restart_optimizer()
            logger.info("frontend (STCNN) trained from epoch %d on: optimizer restarted", state.epoch + 1)
        self.save_state()

    def validate(self, epoch: int, row: dict) -> dict:
        """Greedy val CER/WER into ``row``, the monitor's decision, and ``best.weights.h5`` when it improved.

        Without validation clips every epoch counts as the best so far.
        """
        best = self.run_folder.best_weights
        if not self.val_examples:
            _save_weights_atomic(self.model, best)
            self.state.monitor.best_epoch = epoch
            return {"improved": True, "cut_rate": False, "stop": False}
        val = _validate(self.recognizer, self.val_examples, self.config.sample_clips)
        row.update(val_cer=round(val["cer"], 5), val_wer=round(val["wer"], 5))
        decision = self.state.monitor.update(epoch, val["cer"], self.config)
        if decision["improved"]:
            _save_weights_atomic(self.model, best)
        return decision

    def log_epoch(self, row: dict, decision: dict) -> None:
        """The epoch's row to log.csv, TensorBoard, the state's history and the log."""
        import tensorflow as tf

        config = self.config
        self.csv_log.append(row)
        with self.writer.as_default(step=self.state.step):
            for key in ("loss", "val_cer", "val_wer"):
                if row.get(key) is not None:
                    tf.summary.scalar(f"epoch/{key}", row[key])
        self.writer.flush()
        self.state.history.append(row)
        logger.info("epoch %d: loss %.3f, val CER %s, val WER %s, lr %.2e, %.0f s%s", row["epoch"] + 1, row["loss"],
                    row.get("val_cer"), row.get("val_wer"), row["learning_rate"], row["seconds"],
                    " (best)" if decision["improved"] else "")
        if decision["cut_rate"]:
            logger.info("val CER has not improved for %d epochs: learning rate x%.2f",
                        config.plateau_patience, config.plateau_factor)


def _validate(recognizer, examples: list[Example], samples: int) -> dict:
    from lipnet_ko.training.evaluation import evaluate, standard_decoders

    result = evaluate(recognizer, examples, {"greedy": standard_decoders()["greedy"]})
    scores = result.scores["greedy"]
    for ref, hyp in list(zip(result.references, result.hypotheses["greedy"]))[:samples]:
        logger.info("  val: %s -> %s", ref, hyp)
    return {"cer": scores.cer, "wer": scores.wer}


def finish_run(run: RunFolder, recognizer, data: RunData, config: TrainConfig, state: TrainState) -> dict:
    """Evaluates the final and the best checkpoint, keeps the best as ``model.keras``, writes ``metrics.json``.

    ``recognizer`` runs the trained Keras model (``keras_recognizer``); its weights become the kept checkpoint's.
    """
    from lipnet_ko.training.evaluation import evaluate, standard_decoders
    from lipnet_ko.decoding.lm import default_lm_for

    model = recognizer.model
    decoders = standard_decoders(config.beam_width, default_lm_for(recognizer.tokenizer))
    splits = {name: data.splits.get(name, []) for name in EVAL_SPLITS}

    def evaluate_all(names: dict) -> dict:
        out = {}
        for name, examples in splits.items():
            if examples:
                out[name] = evaluate(recognizer, examples, names).to_dict()
        return out

    t0 = time.perf_counter()
    best_path = run.best_weights
    last_epoch = state.epoch - 1
    final = None
    # The weights in memory are the best checkpoint's only if the last finished epoch was the best and no
    # unvalidated steps of a cut-short epoch (state.batch > 0: the time budget ran out mid-epoch) came after it.
    if best_path.exists() and (state.monitor.best_epoch != last_epoch or state.batch > 0):
        final = evaluate_all({k: v for k, v in decoders.items() if k != "beam_lm"})
        model.load_weights(best_path)
    kept = evaluate_all(decoders)
    _save_model_atomic(model, run.model_keras)
    metrics = {
        **kept,
        "kept_checkpoint": {
            "epoch": state.monitor.best_epoch + 1,
            "val_syllable_cer": None if math.isinf(state.monitor.best) else round(state.monitor.best, 5),
        },
        "final_checkpoint": {"epoch": state.epoch, **(final if final is not None else {"same_as_kept": True})},
        "training": {
            "epochs": state.epoch,
            "steps": state.step,
            "minutes": round(state.train_seconds / 60, 2),
            "stop_reason": state.stop_reason,
            "preset": config.preset,
            "init_from": config.init_from,
            "parameters": int(model.count_params()),
            "clips": {name: len(v) for name, v in data.splits.items()},
        },
        "data": data.corpus,
        "oracle_floor": oracle_floors(splits, recognizer.tokenizer, {k: v for k, v in decoders.items() if k != "greedy"}),
        "evaluation_seconds": round(time.perf_counter() - t0, 1),
    }
    write_json_atomic(run.metrics_json, metrics)
    return metrics


def oracle_floors(splits: dict[str, list[Example]], tokenizer, decoders: dict) -> dict:
    """Per split, the beam decoders' figures on perfect-viseme logits of its sentences (``decoding.oracle``).

    What the decoder and its language model make of a video that shows every viseme class right and
    nothing more: the floor the trained model's figures are read against. Jamo tokenizers only (the viseme
    classes are Korean); ``{}`` otherwise.
    """
    from lipnet_ko.decoding.oracle import oracle_floor
    from lipnet_ko.text.tokenizer import JamoTokenizer
    from lipnet_ko.training.evaluation import score_dict

    if not isinstance(tokenizer, JamoTokenizer):
        return {}
    out = {}
    for name, examples in splits.items():
        if examples:
            scores = oracle_floor([e.text for e in examples], tokenizer, decoders)
            out[name] = {decoder: score_dict(s) for decoder, s in scores.items()}
    return out


def format_metrics(metrics: dict) -> str:
    """A plain table of the kept model's figures, split x decoder, each split followed by its oracle floor (``floor:...``)."""
    lines = [f"{'split':<16} {'decoder':<13} {'syl CER':>8} {'jamo CER':>9} {'vis CER':>8} {'WER':>7} {'BLEU':>6} {'n':>5}"]
    floors = metrics.get("oracle_floor", {})
    for split in EVAL_SPLITS:
        rows = list(metrics.get(split, {}).items()) + [(f"floor:{k}", v) for k, v in floors.get(split, {}).items()]
        for decoder, s in rows:
            viseme = f"{s['viseme_cer']:>8.2%}" if "viseme_cer" in s else f"{'-':>8}"  # runs saved before the metric
            lines.append(f"{split:<16} {decoder:<13} {s['syllable_cer']:>8.2%} {s['jamo_cer']:>9.2%} {viseme} "
                         f"{s['wer']:>7.2%} {s['bleu']:>6.1f} {s['utterances']:>5}")
    return "\n".join(lines)
