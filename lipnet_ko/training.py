"""CTC training of the LipNet model: ``TrainConfig`` -> ``train(config, run_dir)`` -> a run folder.

The loop is written out (one traced train step over an epoch of batches prefetched by a thread) rather than
``model.fit``, because a run must resume *mid-epoch* exactly where it stopped: ``fit`` with
``BackupAndRestore`` restarts the interrupted epoch from its first batch. Batches depend only on
(seed, epoch, batch position) (see ``lipnet_ko.data.ClipBatcher``), and a checkpoint holds every model
variable (dropout seed state included) and every optimizer variable, so a killed run that resumes ends
with the same weights as one that never stopped (without a time budget: under ``max_minutes`` the
learning rate follows elapsed time, see ``learning_rate_at``).

Run folder::

    config.json          TrainConfig (what `--config` reads back)
    model_config.json    ModelConfig; tokenizer.json; preprocess.json (the crop geometry inference must use)
    splits.json          clip ids of train / val / seen / unseen / free / unseen_free
    state.json           resume state: epoch, batch, step, learning-rate plan, callback state, history
    checkpoints/         ckpt-<step>.npz (resume), best.weights.h5 (best validation syllable CER)
    log.csv, tensorboard/, train.log
    model.keras          the kept model (best validation CER)
    metrics.json         per split (seen, unseen, free, unseen_free) and decoder: syllable_cer, jamo_cer, wer, bleu
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
from datetime import datetime
from pathlib import Path

import numpy as np

from lipnet_ko.data import AugmentConfig, ClipBatcher, Example, PipelineConfig
from lipnet_ko.files import temp_path, write_json_atomic
from lipnet_ko.model import ModelConfig, model_config
from lipnet_ko.training_data import EVAL_SPLITS, DataConfig, RunData, prepare_data, read_splits, write_splits

logger = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "multiworker")
SCHEDULES = ("cosine", "constant", "plateau")
RUNS_DIR = Path("runs")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` in the run folder."""

    data: DataConfig = field(default_factory=DataConfig)
    preset: str = "small"  # model preset (lipnet_ko.model.PRESETS); "small" is the CPU preset
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
    max_minutes: float | None = 20.0  # training-time budget: epochs are planned to fit it, the cosine decays over it; None = no limit
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)  # None = no augmentation
    curriculum_epochs: int = 0  # LipNet-style curriculum: the first N epochs train on the shorter half of the clips
    cache_limit_gb: float = 1.5  # keep training crops in memory when they fit in this; stream from .npz otherwise
    checkpoint_every: int = 20  # steps between resume checkpoints (and at every epoch end)
    val_clips: int = 96  # validation clips decoded (greedy) after each epoch
    sample_clips: int = 3  # validation clips whose reference -> hypothesis is logged each epoch
    beam_width: int = 32  # final evaluation's beam decoders
    strategy: str = "default"  # default | mirrored | multiworker (MultiWorkerMirroredStrategy from TF_CONFIG)
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.data, dict):
            object.__setattr__(self, "data", DataConfig(**self.data))
        if isinstance(self.augment, dict):
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.augment.items()}
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
        if isinstance(values.get("data"), dict) and "train_free" not in values["data"]:
            # Configs written before the field existed trained on free sentences too; keep that on --resume.
            values = {**values, "data": {**values["data"], "train_free": True}}
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read config {path}: {error}") from None
        return cls.from_dict(values)


def _saved_model_config(run_dir: Path, mconfig: ModelConfig) -> ModelConfig:
    """On ``--resume``, the ``ModelConfig`` the run started with (its ``model_config.json``), not ``mconfig``.

    A preset can change between versions (``small`` left out its last max-pool from runs/v4-b on); a run
    resumes as the network its checkpoints hold.
    """
    path = Path(run_dir) / "model_config.json"
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
    path = Path(run_dir) / "splits.json"
    if not path.is_file():
        return
    saved = read_splits(path).get("splits", {}).get("train", [])
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
    even when epochs run slower than planned (the epoch plan alone ended runs with the rate mid-way).
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


def make_forward(model):
    """``predict((crops, crop_lengths)) -> logits`` (numpy) for validation and evaluation, traced once.

    ``model.predict_on_batch`` retraces for every new batch shape; validation batches are sorted by
    length, so each epoch paid several traces (5-35 s per epoch in the default run, about 10% of it).
    Inference's ``KerasBackend`` already traces once with open dimensions; training uses the same.
    """
    from lipnet_ko.inference import KerasBackend

    backend = KerasBackend(model, model.config)
    return lambda batch: backend(*batch)


def save_checkpoint(folder: Path, model, optimizer, step: int) -> str:
    """Every model variable (weights, batch-norm statistics, dropout seeds) and optimizer variable, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{step:07d}.npz"
    arrays = {f"model_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    arrays.update({f"optimizer_{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)})
    final = folder / name
    tmp = temp_path(final)
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, final)
    return name


def load_checkpoint(path: Path, model, optimizer) -> None:
    with np.load(path) as archive:
        model_vars = [archive[f"model_{i}"] for i in range(len(model.variables))]
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        opt_keys = sorted((k for k in archive.files if k.startswith("optimizer_")), key=lambda k: int(k.split("_")[1]))
        if len(opt_keys) != len(optimizer.variables) or any(k not in archive.files for k in (f"model_{i}" for i in range(len(model.variables)))):
            raise ValueError(f"{path} does not match this model/optimizer (was the config changed?)")
        for variable, value in zip(model.variables, model_vars):
            variable.assign(value)
        for variable, key in zip(optimizer.variables, opt_keys):
            variable.assign(archive[key])


def _prune_checkpoints(folder: Path, keep: str) -> None:
    for path in folder.glob("ckpt-*.npz"):
        if path.name != keep:
            path.unlink(missing_ok=True)


def _save_weights_atomic(model, path: Path) -> None:
    tmp = path.with_name(f".{path.name[: -len('.weights.h5')]}.tmp{os.getpid()}.weights.h5")
    model.save_weights(tmp)
    os.replace(tmp, path)


def _save_model_atomic(model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.keras")
    model.save(tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------
# The run


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict
    state: TrainState


def default_run_dir() -> Path:
    return RUNS_DIR / datetime.now().strftime("%Y%m%d-%H%M%S")


def _point_latest(run_dir: Path) -> None:
    """``runs/latest`` -> the newest run folder (a relative symlink, replaced atomically)."""
    link = run_dir.parent / "latest"
    if run_dir.parent.resolve() != RUNS_DIR.resolve():
        return
    tmp = link.with_name(f".latest.tmp{os.getpid()}")
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name)
        os.replace(tmp, link)
    except OSError as error:  # e.g. a file system without symlinks
        logger.warning("could not point %s at %s: %s", link, run_dir, error)


def _get_tokenizer(name: str):
    from lipnet_ko.tokenizer import get_tokenizer

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


def _attach_log_file(run_dir: Path) -> tuple[logging.Handler, int]:
    """``train.log`` gets the library's INFO records even when the caller configured no logging."""
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
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
    """Trains (or resumes) a run and evaluates it; see the module docstring for the run folder.

    Args:
        config: the run's settings. On ``resume`` the folder's ``config.json`` is used instead.
        run_dir: the run folder; default ``runs/<date-time>`` (and ``runs/latest`` points to it).
        resume: continue the run in ``run_dir`` from its last checkpoint.
        progress: tqdm progress bars.
        data: already prepared data (tests, notebooks); default: ``prepare_data(config.data)``.

    Raises:
        ValueError: ``run_dir`` already holds a run and ``resume`` is False, or holds none and it is True.
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
    state_path = run_dir / "state.json"
    if resume:
        if not state_path.exists():
            raise ValueError(f"{run_dir} holds no run to resume (no state.json); start one without --resume")
        saved = TrainConfig.from_json(run_dir / "config.json")
        if saved != config:
            logger.info("resuming with the run's own config.json (settings given now are ignored)")
        config = saved
    elif state_path.exists():
        raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    handler, level = _attach_log_file(run_dir)
    try:
        return _train(config, run_dir, resume, progress, data)
    finally:
        package = logging.getLogger("lipnet_ko")
        package.removeHandler(handler)
        package.setLevel(level)
        handler.close()


def _train(config: TrainConfig, run_dir: Path, resume: bool, progress: bool, data: RunData | None) -> TrainResult:
    import keras
    import tensorflow as tf

    from lipnet_ko.inference import write_side_files
    from lipnet_ko.model import build_model
    from lipnet_ko.preprocess import PreprocessConfig

    tokenizer = _get_tokenizer(config.data.tokenizer)
    preprocess = PreprocessConfig()
    mconfig = config.model_config(tokenizer.vocab_size)
    if data is None:
        data = prepare_data(config.data, tokenizer, preprocess, progress=progress)
    if not resume:
        write_json_atomic(run_dir / "config.json", config.to_dict())
        write_side_files(run_dir, mconfig, tokenizer, preprocess)
        write_splits(run_dir / "splits.json", data)
        _point_latest(run_dir)
    else:
        check_same_training_data(run_dir, data)
        mconfig = _saved_model_config(run_dir, mconfig)
    logger.info("data: %s", json.dumps(data.summary()))

    worker, workers = worker_shard() if config.strategy == "multiworker" else (0, 1)
    train_examples = data.splits["train"][worker::workers]
    val_examples = data.splits["val"][: config.val_clips]
    cache = _fits_in_memory(train_examples, config.cache_limit_gb)
    logger.info("%d training clips (%s)", len(train_examples), "cached in memory" if cache else "streamed from .npz")
    pipeline = PipelineConfig(batch_size=config.batch_size, seed=config.seed, cache=cache)
    batcher = ClipBatcher(train_examples, pipeline, config.augment)
    short_batcher = None
    if config.curriculum_epochs:
        lengths = sorted(e.num_frames for e in batcher.examples)
        cut = lengths[len(lengths) // 2]
        short_batcher = ClipBatcher([e for e in batcher.examples if e.num_frames <= cut], pipeline, config.augment)

    def batcher_for(epoch: int) -> ClipBatcher:
        return short_batcher if short_batcher is not None and epoch < config.curriculum_epochs else batcher

    def steps_until(epochs: int) -> int:
        return sum(len(batcher_for(e)) for e in range(epochs))

    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy)
    with strategy.scope():
        model = build_model(mconfig, frames=max(e.num_frames for e in train_examples[:64]))
        optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate, clipnorm=5.0)
        model.compile(optimizer=optimizer, jit_compile=False)
        optimizer.build(model.trainable_variables)
    logger.info("model %s: %.2f M parameters", config.preset, model.count_params() / 1e6)
    train_step = make_train_step(model, strategy, batcher.frame_shape)

    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    state = TrainState()
    if resume:
        state = TrainState.from_dict(json.loads((run_dir / "state.json").read_text(encoding="utf-8")))
        if state.checkpoint:
            load_checkpoint(ckpt_dir / state.checkpoint, model, optimizer)
        logger.info("resumed at epoch %d, batch %d (step %d)", state.epoch + 1, state.batch, state.step)
    if state.total_steps is None:
        state.total_steps = steps_until(config.epochs)

    def save_state() -> None:
        name = save_checkpoint(ckpt_dir, model, optimizer, state.step)
        state.checkpoint = name
        write_json_atomic(run_dir / "state.json", state.to_dict())
        _prune_checkpoints(ckpt_dir, name)

    csv_log = _Csv(run_dir / "log.csv", keep_epochs_below=state.epoch)
    writer = tf.summary.create_file_writer(str(run_dir / "tensorboard"))
    val_predict = make_forward(model)
    budget = None if config.max_minutes is None else config.max_minutes * 60.0
    session_start = time.perf_counter()
    seconds_before = state.train_seconds

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - session_start

    from tqdm import tqdm

    while not state.finished:
        epoch = state.epoch
        planned = state.planned_epochs or config.epochs
        if epoch >= planned:
            state.finished, state.stop_reason = True, state.stop_reason or f"planned epochs done ({planned})"
            break
        source = batcher_for(epoch)
        steps = len(source)
        epoch_start = time.perf_counter()
        bar = tqdm(total=steps, initial=state.batch, desc=f"epoch {epoch + 1}/{planned}", unit="batch",
                   disable=None if progress else True, dynamic_ncols=True, leave=False)
        out_of_time = False
        for (crops, crop_lengths), (ids, id_lengths) in source.prefetched(epoch, state.batch):
            time_share = 0.0 if budget is None else elapsed() / budget
            lr = learning_rate_at(config, state.step, state.total_steps, state.monitor.cuts, time_share)
            optimizer.learning_rate.assign(lr)
            loss = train_step(((crops, crop_lengths), (ids, id_lengths)))
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at step {state.step}; lower --learning-rate")
            state.step += 1
            state.batch += 1
            state.epoch_loss_sum += loss
            bar.update()
            bar.set_postfix(loss=f"{loss:.2f}", lr=f"{lr:.1e}")
            with writer.as_default(step=state.step):
                tf.summary.scalar("train/loss", loss)
                tf.summary.scalar("train/learning_rate", lr)
            if state.step % config.checkpoint_every == 0 and state.batch < steps:
                state.train_seconds = elapsed()
                save_state()
            if budget is not None and elapsed() > budget * 1.1:  # the plan was too optimistic: stop now
                out_of_time = True
                break
        bar.close()
        if out_of_time:
            state.train_seconds = elapsed()
            state.finished, state.stop_reason = True, f"time budget ({config.max_minutes} min) used up mid-epoch"
            save_state()
            break
        # ---- epoch end: validate, log, checkpoint the best, plan, decide
        row = {"epoch": epoch, "step": state.step, "loss": round(state.epoch_loss_sum / max(1, state.batch), 4),
               "learning_rate": optimizer.learning_rate.numpy().item()}
        if val_examples:
            val = _validate(val_predict, val_examples, tokenizer, config.sample_clips)
            row.update(val_cer=round(val["cer"], 5), val_wer=round(val["wer"], 5))
            decision = state.monitor.update(epoch, val["cer"], config)
            if decision["improved"]:
                _save_weights_atomic(model, ckpt_dir / "best.weights.h5")
        else:
            decision = {"improved": True, "cut_rate": False, "stop": False}
            _save_weights_atomic(model, ckpt_dir / "best.weights.h5")
            state.monitor.best_epoch = epoch
        row["seconds"] = round(time.perf_counter() - epoch_start, 1)
        row["rss_mb"] = resident_mb()
        csv_log.append(row)
        with writer.as_default(step=state.step):
            for key in ("loss", "val_cer", "val_wer"):
                if row.get(key) is not None:
                    tf.summary.scalar(f"epoch/{key}", row[key])
        writer.flush()
        state.history.append(row)
        logger.info("epoch %d: loss %.3f, val CER %s, val WER %s, lr %.2e, %.0f s%s", epoch + 1, row["loss"],
                    row.get("val_cer"), row.get("val_wer"), row["learning_rate"], row["seconds"],
                    " (best)" if decision["improved"] else "")
        if decision["cut_rate"]:
            logger.info("val CER has not improved for %d epochs: learning rate x%.2f", config.plateau_patience, config.plateau_factor)
        state.epoch, state.batch, state.epoch_loss_sum = epoch + 1, 0, 0.0
        state.train_seconds = elapsed()
        if budget is not None:
            planned = plan_epochs(config, state.epoch, state.train_seconds, [h["seconds"] for h in state.history])
            if planned != state.planned_epochs:
                logger.info("%d epochs fit the %.0f-minute budget", planned, config.max_minutes)
            state.planned_epochs = planned
        if decision["stop"]:
            state.finished, state.stop_reason = True, f"early stopping: no better val CER for {config.early_stop_patience} epochs"
        save_state()
    write_json_atomic(run_dir / "state.json", state.to_dict())
    logger.info("training stopped: %s; %d epochs, %d steps, %.1f min", state.stop_reason, state.epoch, state.step, state.train_seconds / 60)
    metrics = finish_run(run_dir, model, data, tokenizer, config, state)
    return TrainResult(run_dir, metrics, state)


def _validate(predict, examples: list[Example], tokenizer, samples: int) -> dict:
    from lipnet_ko.evaluation import evaluate, standard_decoders

    result = evaluate(predict, examples, tokenizer, {"greedy": standard_decoders()["greedy"]})
    scores = result.scores["greedy"]
    for ref, hyp in list(zip(result.references, result.hypotheses["greedy"]))[:samples]:
        logger.info("  val: %s -> %s", ref, hyp)
    return {"cer": scores.cer, "wer": scores.wer}


def finish_run(run_dir: Path, model, data: RunData, tokenizer, config: TrainConfig, state: TrainState) -> dict:
    """Evaluates the final and the best checkpoint, keeps the best as ``model.keras``, writes ``metrics.json``."""
    from lipnet_ko.evaluation import evaluate, standard_decoders
    from lipnet_ko.tokenizer import JamoTokenizer

    lm = None
    if isinstance(tokenizer, JamoTokenizer):
        from lipnet_ko.lm import load_default_lm

        lm = load_default_lm()
    decoders = standard_decoders(config.beam_width, lm)
    splits = {name: data.splits.get(name, []) for name in EVAL_SPLITS}
    predict = make_forward(model)

    def evaluate_all(names: dict) -> dict:
        out = {}
        for name, examples in splits.items():
            if examples:
                out[name] = evaluate(predict, examples, tokenizer, names).to_dict()
        return out

    t0 = time.perf_counter()
    best_path = run_dir / "checkpoints" / "best.weights.h5"
    last_epoch = state.epoch - 1
    final = None
    if best_path.exists() and state.monitor.best_epoch != last_epoch:
        final = evaluate_all({k: v for k, v in decoders.items() if k != "beam_lm"})
        model.load_weights(best_path)
    kept = evaluate_all(decoders)
    _save_model_atomic(model, run_dir / "model.keras")
    metrics = {
        **kept,
        "kept_checkpoint": {"epoch": state.monitor.best_epoch + 1, "val_syllable_cer": None if math.isinf(state.monitor.best) else round(state.monitor.best, 5)},
        "final_checkpoint": {"epoch": state.epoch, **(final if final is not None else {"same_as_kept": True})},
        "training": {
            "epochs": state.epoch, "steps": state.step, "minutes": round(state.train_seconds / 60, 2),
            "stop_reason": state.stop_reason, "preset": config.preset, "parameters": int(model.count_params()),
            "clips": {name: len(v) for name, v in data.splits.items()},
        },
        "data": data.corpus,
        "evaluation_seconds": round(time.perf_counter() - t0, 1),
    }
    write_json_atomic(run_dir / "metrics.json", metrics)
    return metrics


def format_metrics(metrics: dict) -> str:
    """A plain table of the kept model's figures: split x decoder."""
    lines = [f"{'split':<11} {'decoder':<8} {'syl CER':>8} {'jamo CER':>9} {'WER':>7} {'BLEU':>6} {'n':>5}"]
    for split in EVAL_SPLITS:
        for decoder, s in metrics.get(split, {}).items():
            lines.append(f"{split:<11} {decoder:<8} {s['syllable_cer']:>8.2%} {s['jamo_cer']:>9.2%} {s['wer']:>7.2%} {s['bleu']:>6.1f} {s['utterances']:>5}")
    return "\n".join(lines)
