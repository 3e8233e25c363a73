"""Preprocessed mouth crops -> training batches. The only tf.data code in the package.

Each batch is ``((crops, crop_lengths), (ids, id_lengths))``:

* ``crops``: uint8 ``[B, T, H, W, C]`` as stored (the model converts them to float), zero-padded in time to the longest clip;
* ``crop_lengths``: int32 ``[B]``, true frame counts;
* ``ids``: int32 ``[B, L]`` label ids, padded with the blank (0);
* ``id_lengths``: int32 ``[B]``, true label lengths (CTC must be given these, not the padded sizes).

Augmentation (training only) runs per clip in numpy/OpenCV inside the generator and never touches
labels: horizontal flip, LipNet-style temporal jitter (frame deletion/duplication), speaking-rate
change (temporal resampling), small shifts, scale and rotation, brightness and gamma. Every random
draw comes from a generator seeded by ``(seed, epoch, clip index)``, so a run is reproducible.
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

CROPS_KEY = "crops"  # the .npz array written by `lipnet-ko preprocess`: uint8 [T, H, W, C]


def ctc_min_frames(ids: Sequence[int]) -> int:
    """Fewest output frames CTC needs for a label: its length plus one blank per adjacent repeat."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:]) if a == b)


def ctc_feasible(ids: Sequence[int], num_frames: int, temporal_stride: int = 1) -> bool:
    """True when ``num_frames`` input frames (``// temporal_stride`` model outputs) can carry the label."""
    return num_frames // temporal_stride >= ctc_min_frames(ids)


@dataclass(frozen=True)
class Example:
    """One training clip: where its crops are (or the crops themselves) and its label ids."""

    crops_path: Path | None  # a preprocessed .npz; None when ``crops`` is given in memory
    ids: tuple[int, ...]  # label ids from the tokenizer, blank excluded
    num_frames: int  # T of the crops
    text: str = ""
    speaker: str = ""
    crops: np.ndarray | None = field(default=None, compare=False, repr=False)  # uint8 [T, H, W, C]
    clip_id: str = ""  # the corpus's id of the clip ("s1/bbaf2n", "lip_..._001_3"); reports and splits.json name clips by it

    def load(self) -> np.ndarray:
        if self.crops is not None:
            return self.crops
        with np.load(self.crops_path) as archive:
            return archive[CROPS_KEY]


def load_examples(paths: Iterable[str | Path], tokenizer, *, in_memory: bool = False,
                  clip_ids: Sequence[str] | None = None) -> tuple[list[Example], list[dict]]:  # fmt: skip
    """Examples from ``.npz`` files written by ``lipnet-ko preprocess`` (their ``text`` is the label).

    Reads only the small members (text, speaker, frame count) unless ``in_memory`` also loads the crops.
    ``clip_ids`` (one per path) names the clips; by default each is named by its file's stem.
    A file that cannot be read, or whose text the tokenizer rejects, is reported in the second return
    value as ``{"path", "reason"}`` and left out; it never stops the rest.
    """
    examples, skipped = [], []
    paths = [Path(p) for p in paths]
    if clip_ids is not None and len(clip_ids) != len(paths):
        raise ValueError(f"clip_ids gives {len(clip_ids)} ids for {len(paths)} paths")
    for index, path in enumerate(paths):
        try:
            with np.load(path, allow_pickle=False) as archive:
                text, speaker = str(archive["text"]), str(archive["speaker"])
                num_frames = int(archive["found"].shape[0])
                crops = archive[CROPS_KEY] if in_memory else None
        except Exception as error:  # a truncated or foreign file: report it, keep going
            skipped.append({"path": str(path), "reason": f"unreadable preprocessed clip: {error}"})
            continue
        try:
            ids = tuple(tokenizer.encode(text))
        except ValueError as error:
            skipped.append({"path": str(path), "reason": f"label rejected by the {tokenizer.name} tokenizer: {error}"})
            continue
        if not ids:
            skipped.append({"path": str(path), "reason": "empty label"})
            continue
        clip_id = clip_ids[index] if clip_ids is not None else path.stem
        examples.append(Example(path, ids, num_frames, text=text, speaker=speaker, crops=crops, clip_id=clip_id))
    for item in skipped:
        log.warning("skipping %s: %s", item["path"], item["reason"])
    return examples, skipped


def drop_infeasible(examples: Sequence[Example], temporal_stride: int = 1) -> list[Example]:
    """Drop clips whose label cannot fit their frames under CTC (they would give an infinite loss)."""
    kept = [e for e in examples if ctc_feasible(e.ids, e.num_frames, temporal_stride)]
    if len(kept) < len(examples):
        log.warning(
            "dropped %d of %d clips whose labels are longer than CTC allows for their frame count",
            len(examples) - len(kept),
            len(examples),
        )
    return kept


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation; every field at its neutral value turns that transform off."""

    flip_prob: float = 0.5  # probability of a horizontal flip
    drop_prob: float = 0.05  # per-frame probability of deleting a frame (LipNet temporal jitter)
    duplicate_prob: float = 0.05  # per-frame probability of repeating a frame
    rate_range: tuple[float, float] = (0.8, 1.2)  # speaking-rate factor: >1 plays faster (fewer frames)
    max_shift: float = 0.05  # translation, as a fraction of the crop size
    scale_range: tuple[float, float] = (0.92, 1.08)
    max_rotation_deg: float = 5.0
    max_brightness: float = 0.12  # additive, as a fraction of the 0-255 range
    gamma_range: tuple[float, float] = (0.8, 1.25)
    # Colour and skin, per clip (3-channel crops only for the first two): what differs most between the face
    # photos of the synthetic speakers (lip against skin colour, skin texture), so that a model trained on
    # some faces depends less on them (README, "unseen speakers").
    channel_gain: float = 0.15  # each channel's gain drawn in [1 - x, 1 + x]
    saturation_range: tuple[float, float] = (0.3, 1.3)  # scale of each pixel's distance from its grey value
    texture: float = 0.1  # largest amplitude of a static multiplicative skin texture (smooth noise); 0 = off

    # The neutral value of each field added after runs were first saved: a run's config.json without
    # them resumes with the augmentation it was started with.
    ADDED_FIELDS = {"channel_gain": 0.0, "saturation_range": (1.0, 1.0), "texture": 0.0}

    def __post_init__(self) -> None:
        for name in ("flip_prob", "drop_prob", "duplicate_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AugmentConfig.{name} must be a probability in [0, 1], got {getattr(self, name)}")
        for name in ("rate_range", "scale_range", "gamma_range"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"AugmentConfig.{name} must satisfy 0 < low <= high, got {(low, high)}")
        low, high = self.saturation_range
        if not 0 <= low <= high:
            raise ValueError(f"AugmentConfig.saturation_range must satisfy 0 <= low <= high, got {(low, high)}")
        if not 0.0 <= self.channel_gain < 1.0 or not 0.0 <= self.texture < 1.0:
            raise ValueError("AugmentConfig.channel_gain and texture must be in [0, 1)")


def _temporal_indices(num_frames: int, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    rate = rng.uniform(*config.rate_range)
    new_length = max(1, int(round(num_frames / rate)))
    index = np.minimum((np.arange(new_length) * rate).astype(np.int64), num_frames - 1)
    keep = rng.random(new_length) >= config.drop_prob
    repeat = 1 + (rng.random(new_length) < config.duplicate_prob)
    index = np.repeat(index[keep], repeat[keep])
    return index if len(index) else np.zeros(1, dtype=np.int64)


def augment_clip(crops: np.ndarray, rng: np.random.Generator, config: AugmentConfig, min_frames: int = 1) -> np.ndarray:
    """Randomly transform one clip (uint8 ``[T, H, W, C]``) and return uint8 ``[T', H, W, C]``.

    The temporal transforms are skipped for this draw when they would leave fewer than ``min_frames``
    frames (the clip's CTC minimum), so the label always stays feasible.
    """
    num_frames, height, width = crops.shape[:3]
    index = _temporal_indices(num_frames, rng, config)
    if len(index) >= min_frames:
        crops = crops[index]
    flip = rng.random() < config.flip_prob
    angle = rng.uniform(-config.max_rotation_deg, config.max_rotation_deg)
    scale = rng.uniform(*config.scale_range)
    shift = rng.uniform(-config.max_shift, config.max_shift, size=2) * (width, height)
    if angle or scale != 1.0 or shift.any():
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
        matrix[:, 2] += shift
        if flip:  # fold the flip into the warp: warpAffine on a flipped view would first copy every frame
            matrix = matrix @ np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        crops = np.stack(
            [cv2.warpAffine(f, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) for f in crops]
        ).reshape(len(crops), height, width, -1)
    elif flip:
        crops = crops[:, :, ::-1]
    gamma = rng.uniform(*config.gamma_range)
    brightness = rng.uniform(-config.max_brightness, config.max_brightness) * 255
    table = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + brightness, 0, 255).astype(np.uint8)
    # a table lookup, much faster than numpy fancy indexing
    crops = cv2.LUT(np.ascontiguousarray(crops), table).reshape(crops.shape)
    return _colour_and_texture(crops, rng, config)


def _colour_and_texture(crops: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Per-clip saturation, channel gains and a static skin texture (smooth noise at two scales), on uint8 [T, H, W, C].

    Saturation and gains are one 3x3 colour matrix (``cv2.transform``); the texture is a multiplicative field in
    1/128 steps (``cv2.multiply``): both stay in uint8, so a clip costs a few milliseconds.
    """
    frames, height, width, channels = crops.shape
    image = np.ascontiguousarray(crops).reshape(frames * height, width, channels)
    if channels == 3 and (config.channel_gain > 0 or config.saturation_range != (1.0, 1.0)):
        saturation = rng.uniform(*config.saturation_range)
        gains = rng.uniform(1.0 - config.channel_gain, 1.0 + config.channel_gain, 3)
        matrix = gains[:, None] * (saturation * np.eye(3) + (1.0 - saturation) / 3.0)  # grey + s * (pixel - grey), then gain
        image = cv2.transform(image, matrix.astype(np.float32))
    if config.texture > 0:
        amplitude = rng.uniform(0.0, config.texture)
        field = np.zeros((height, width), np.float32)
        for cells, weight in ((4, 0.6), (12, 0.4)):  # blotches, then pores and wrinkles
            coarse = rng.standard_normal((max(2, height * cells // width), cells)).astype(np.float32)
            field += weight * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        factor = np.round(128.0 * (1.0 + amplitude * np.clip(field, -2.5, 2.5))).astype(np.uint8)
        tiled = np.ascontiguousarray(np.broadcast_to(factor[None, :, :, None], (frames, height, width, channels)))
        image = cv2.multiply(image, tiled.reshape(image.shape), scale=1.0 / 128.0)
    return image.reshape(frames, height, width, channels)


@dataclass(frozen=True)
class PipelineConfig:
    """How batches are made."""

    batch_size: int = 16
    shuffle: bool = True  # shuffle clips (and batches) every epoch; training only
    bucket_batches: int = 8  # sort by length within windows of this many batches, to cut padding; 0 = off
    cache: bool = True  # keep loaded crops in memory after the first epoch
    seed: int = 0
    temporal_stride: int = 1  # model output frames per input frame divisor, for the CTC check
    prefetch: int = 2  # batches prepared ahead


class ClipBatcher:
    """Makes padded numpy batches from examples; ``dataset()`` wraps it in ``tf.data``."""

    def __init__(self, examples: Sequence[Example], config: PipelineConfig, augment: AugmentConfig | None = None):
        if config.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {config.batch_size}")
        self.examples = drop_infeasible(examples, config.temporal_stride)
        if not self.examples:
            raise ValueError("no clip left to batch (empty input, or every label is too long for its clip under CTC)")
        self.config = config
        self.augment = augment
        self._cache: dict[int, np.ndarray] = {}
        self._epochs = itertools.count()
        self.frame_shape = self._load(0).shape[1:]  # (H, W, C); every clip is checked against it

    def _load(self, index: int) -> np.ndarray:
        crops = self._cache.get(index)
        if crops is None:
            crops = self.examples[index].load()
            if crops.dtype != np.uint8 or crops.ndim != 4:
                raise ValueError(f"{self.examples[index].crops_path}: crops must be uint8 [T, H, W, C],"
                                 f" got {crops.dtype} {crops.shape}")
            if self.config.cache:
                self._cache[index] = crops
        return crops

    def batch_order(self, epoch: int) -> list[list[int]]:
        """Indices of each batch for one epoch (deterministic from the seed and the epoch)."""
        n, size = len(self.examples), self.config.batch_size
        order = np.arange(n)
        rng = np.random.default_rng((self.config.seed, epoch))
        if self.config.shuffle:
            rng.shuffle(order)
        if self.config.bucket_batches:
            window = size * self.config.bucket_batches
            lengths = np.array([self.examples[i].num_frames for i in range(n)])
            order = np.concatenate(
                [
                    chunk[np.argsort(lengths[chunk], kind="stable")]
                    for chunk in np.array_split(order, max(1, math.ceil(n / window)))
                ]
            )
        batches = [order[i : i + size].tolist() for i in range(0, n, size)]
        if self.config.shuffle:
            rng.shuffle(batches)
        return batches

    def clip(self, index: int, epoch: int) -> np.ndarray:
        crops = self._load(index)
        if crops.shape[1:] != self.frame_shape:
            raise ValueError(f"{self.examples[index].crops_path}: crop size {crops.shape[1:]} differs from {self.frame_shape}")
        if self.augment is not None:
            rng = np.random.default_rng((self.config.seed, epoch, index))
            min_frames = ctc_min_frames(self.examples[index].ids) * self.config.temporal_stride
            crops = augment_clip(crops, rng, self.augment, min_frames=min_frames)
        return crops

    def make_batch(
        self, indices: Sequence[int], epoch: int
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        clips = [self.clip(i, epoch) for i in indices]
        labels = [self.examples[i].ids for i in indices]
        crop_lengths = np.array([len(c) for c in clips], dtype=np.int32)
        id_lengths = np.array([len(ids) for ids in labels], dtype=np.int32)
        crops = np.zeros((len(clips), crop_lengths.max(), *self.frame_shape), dtype=np.uint8)  # the model converts
        for row, clip in enumerate(clips):
            crops[row, : len(clip)] = clip
        ids = np.zeros((len(labels), max(1, id_lengths.max())), dtype=np.int32)
        for row, label in enumerate(labels):
            ids[row, : len(label)] = label
        return (crops, crop_lengths), (ids, id_lengths)

    def epoch(self, epoch: int | None = None, start_batch: int = 0) -> Iterator:
        """Yield every batch of one epoch from ``start_batch`` on; without ``epoch``, each call is the next epoch.

        Batches depend only on (seed, epoch, batch position), so a resumed run that starts at batch
        ``k`` of epoch ``e`` sees exactly what an uninterrupted run saw there.
        """
        epoch = next(self._epochs) if epoch is None else epoch
        for indices in self.batch_order(epoch)[start_batch:]:
            yield self.make_batch(indices, epoch)

    def prefetched(self, epoch: int | None = None, start_batch: int = 0) -> Iterator:
        """:meth:`epoch`'s batches, made ``config.prefetch`` ahead in a background thread (what training uses).

        A plain thread and queue rather than ``tf.data``: fed from a Python generator, ``tf.data`` could leave
        the training process idle at the end of an epoch, both cores unused and the main thread waiting for
        the next batch (figures in BENCHMARKS.md). An error in the thread is raised here; leaving
        the loop early stops the thread.
        """
        epoch = next(self._epochs) if epoch is None else epoch
        batches: queue.Queue = queue.Queue(maxsize=max(1, self.config.prefetch))
        stop = threading.Event()
        done = object()

        def put(item) -> bool:
            """Queue ``item`` unless the consumer left first; False when it did."""
            while not stop.is_set():
                try:
                    batches.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for batch in self.epoch(epoch, start_batch):
                    if not put(batch):
                        return
                item = done
            except BaseException as error:  # handed to the consumer, raised there
                item = error
            put(item)

        worker = threading.Thread(target=produce, name=f"lipnet-ko-batches-{epoch}", daemon=True)
        worker.start()
        try:
            while True:
                item = batches.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join()

    def __len__(self) -> int:
        return math.ceil(len(self.examples) / self.config.batch_size)

    def dataset(self, epoch: int | None = None, start_batch: int = 0):
        """A ``tf.data.Dataset`` over one epoch per iteration (re-iterate, or ``.repeat()``, for more).

        With ``epoch`` given, every iteration yields that epoch's batches from ``start_batch`` on.
        """
        import tensorflow as tf

        h, w, c = self.frame_shape
        signature = (
            (tf.TensorSpec((None, None, h, w, c), tf.uint8), tf.TensorSpec((None,), tf.int32)),
            (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32)),
        )
        dataset = tf.data.Dataset.from_generator(lambda: self.epoch(epoch, start_batch), output_signature=signature)
        return dataset.prefetch(self.config.prefetch)


def make_dataset(examples: Sequence[Example], config: PipelineConfig | None = None, augment: AugmentConfig | None = None):
    """``tf.data`` batches for ``examples``; pass ``augment`` for training, leave it None for evaluation."""
    return ClipBatcher(examples, config or PipelineConfig(), augment).dataset()
