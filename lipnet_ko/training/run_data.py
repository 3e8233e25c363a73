"""The data of a training run: corpus spec -> clips -> preprocessed crops -> split examples.

``prepare_data(config)`` does, in order: make (or reuse) the synthetic corpus when the spec is
``synthetic``; scan the corpus; split it; preprocess every clip once through ``lipnet_ko.data.crops``
(cached, resumable; the synthetic default is rendered straight into that cache); and load the examples.

The splits. A corpus whose ``split.json`` names its own splits keeps them: the synthetic default (corpus v4)
has ``train``, ``val`` (training identities reading held-out sentences: picks the best checkpoint),
``unseen_sentences`` (training identities, sentences never seen) and ``unseen_speakers`` (identities built
on face photos never used in training, sentences never seen). Any other corpus is split into ``train``,
``val`` (held-out utterances of training speakers), ``seen`` (other held-out utterances of training speakers)
and ``unseen`` (held-out speakers: ``split.json``'s ``test``, else a share of the speakers).

Held-out utterances whose text also occurs in ``train`` are dropped from every test split, so those splits
are held-out *sentences*, not only held-out recordings.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from lipnet_ko.data.corpora import is_spec, read_split, scan, split_by_speaker, split_by_utterance, synthetic_output
from lipnet_ko.data.batching import Example, load_examples
from lipnet_ko.data.clips import Clip
from lipnet_ko.video.extract import PreprocessConfig
from lipnet_ko.data.crops import output_path, run_batch
from lipnet_ko.synth.corpus import SPLIT_NAME, SYNTH_VERSION, SynthConfig, crops_dir, generate_corpus
from lipnet_ko.text.normalize import normalize_text
from lipnet_ko.files import corpus_cache_dir, data_dir

logger = logging.getLogger(__name__)

# The test splits, in report order: the synthetic default's (unseen_sentences, unseen_speakers), and the
# seen / unseen speaker splits every other corpus gets.
EVAL_SPLITS = ("unseen_sentences", "unseen_speakers", "seen", "unseen")
FIT_SPLITS = ("train", "val")


@dataclass(frozen=True)
class DataConfig:
    """Which corpus a run trains on and how it is split."""

    spec: str = "synthetic"  # "synthetic" (embedded default corpus), synthetic:DIR, aihub:DIR, grid:DIR, crops:DIR, manifest:FILE
    tokenizer: str = "jamo"  # "jamo" (Korean) or "char" (English, GRID)
    synth: SynthConfig = field(default_factory=SynthConfig)  # the corpus "synthetic" generates
    synth_dir: str | None = None  # where "synthetic" is generated; None = <data_dir>/synth/default-v<SYNTH_VERSION>
    # Folder for generated data: "synthetic" writes its corpora and their crop caches under DATA_DIR/synth/.
    # None = $LIPNET_KO_DATA_DIR, else data/ in the working directory (lipnet_ko.files.data_dir).
    data_dir: str | None = None
    # Preprocessed crops; None = "<corpus>-crops" beside the corpus, or under data_dir where that is read-only
    cache_dir: str | None = None
    val_share: float = 0.05  # training speakers' utterances held out for validation (best checkpoint)
    seen_share: float = 0.1  # training speakers' utterances held out for the seen-speaker test
    unseen_share: float = 0.2  # corpora without split.json: share of speakers held out (unseen test)
    split_seed: int = 0
    max_train_clips: int | None = None  # cap (for quick runs); None = all
    jobs: int = 2  # worker processes for generation and preprocessing

    def __post_init__(self) -> None:
        if isinstance(self.synth, dict):
            try:
                object.__setattr__(self, "synth", SynthConfig(**self.synth))
            except TypeError as error:  # a run of an older corpus version (e.g. v3's free_share, sentence_set "mixed")
                raise ValueError(
                    f"DataConfig.synth holds settings of another synthetic corpus version than v{SYNTH_VERSION} ({error}); "
                    "a run made before corpus v4 cannot rebuild its synthetic splits: evaluate it with --data SPEC"
                ) from None
        if self.spec != "synthetic" and not is_spec(self.spec):
            raise ValueError(
                f"data spec must be 'synthetic' or KIND:PATH (aihub:, grid:, crops:, manifest:, synthetic:), got {self.spec!r}"
            )
        if self.tokenizer not in ("jamo", "char"):
            raise ValueError(f"DataConfig.tokenizer must be 'jamo' or 'char', got {self.tokenizer!r}")
        for name in ("val_share", "seen_share", "unseen_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"DataConfig.{name} must be in [0, 1), got {getattr(self, name)}")


@dataclass
class RunData:
    """Examples per split, plus what was skipped on the way."""

    splits: dict[str, list[Example]]  # train, val and the EVAL_SPLITS the corpus has (some may be empty)
    clip_ids: dict[str, list[str]]
    # What was left out: {"clip_id", "reason"} (+ "split") for clips of a split that failed preprocessing or loading,
    # {"path", "reason"} for files the corpus scan skipped (before splitting, so they belong to no split).
    skipped: list[dict]
    corpus: str  # resolved spec of the main corpus

    def summary(self) -> dict:
        return {
            "corpus": self.corpus,
            "clips": {name: len(examples) for name, examples in self.splits.items()},
            "skipped": len(self.skipped),
        }


def synthetic_dir(config: DataConfig) -> Path:
    """The folder of the ``synthetic`` spec's corpus.

    ``config.synth_dir`` when set, else ``<data dir>/synth/default-v<SYNTH_VERSION>`` with the data dir
    of :func:`lipnet_ko.files.data_dir` (``config.data_dir``, ``$LIPNET_KO_DATA_DIR`` or ``./data``).
    """
    # The default folder carries the generator version: a newer version regenerates beside the old
    # corpus (and its crop cache) instead of mixing with it.
    return Path(config.synth_dir) if config.synth_dir else data_dir(config.data_dir) / "synth" / f"default-v{SYNTH_VERSION}"


def _text_key(text: str) -> str:
    return " ".join(normalize_text(text, unknown="drop").split())


def split_clips(clips: list[Clip], corpus_dir: Path | None, config: DataConfig) -> dict[str, list[Clip]]:
    """The run's splits (see the module docstring): a ``split.json`` with named splits is kept as it is;
    one with ``train``/``test`` (held-out speakers) or none gets train / val / seen / unseen."""
    split_file = corpus_dir / SPLIT_NAME if corpus_dir is not None else None
    named = read_split(split_file, clips) if split_file is not None and split_file.exists() else None
    own_splits = named is not None and bool(set(named) - {"train", "test"})
    if own_splits:
        splits = {name: list(items) for name, items in named.items()}
        splits.setdefault("val", [])
    else:
        if named is not None:
            train, unseen = named.get("train", []), named.get("test", [])
        elif config.unseen_share > 0 and len({c.speaker for c in clips}) >= 3:
            by_speaker = split_by_speaker(clips, config.unseen_share, seed=config.split_seed)
            train, unseen = by_speaker["train"], by_speaker["test"]
        else:
            train, unseen = list(clips), []
        held = config.val_share + config.seen_share
        if held > 0 and len(train) >= 10:
            first = split_by_utterance(train, held, seed=config.split_seed)
            train, held_out = first["train"], first["test"]
            if config.seen_share:
                second = split_by_utterance(held_out, config.seen_share / held, seed=config.split_seed + 1)
            else:
                second = {"train": held_out, "test": []}
            val, seen = second["train"], second["test"]
        else:
            val, seen = [], []
        splits = {"train": train, "val": val, "seen": seen, "unseen": unseen}
    train_texts = {_text_key(c.text) for c in splits["train"]}
    for name, items in splits.items():
        if name == "train" or (name == "unseen" and not own_splits):
            continue  # held-out speakers may say training sentences (GRID's grammar does): the unseen-speaker test
        kept = [c for c in items if _text_key(c.text) not in train_texts]
        if len(kept) < len(items):
            logger.info("%s: dropped %d held-out clips whose sentence also occurs in training", name, len(items) - len(kept))
        splits[name] = kept
    if config.max_train_clips is not None:
        splits["train"] = splits["train"][: config.max_train_clips]
    return splits


def _no_clip_message(spec: str, skipped: list) -> str:
    return f"{spec}: no usable clip ({len(skipped)} skipped; run `lipnet-ko data inspect {spec}` for reasons)"


def _cache_dir(config: DataConfig, corpus_dir: Path | None, spec: str) -> Path:
    if spec.startswith("synthetic:") and corpus_dir is not None and corpus_dir.is_dir() \
            and synthetic_output(corpus_dir) == "crops":  # fmt: skip
        # Rendered straight to crops: there are no videos to crop into another cache.
        if config.cache_dir and Path(config.cache_dir) != crops_dir(corpus_dir):
            logger.warning("%s was rendered straight to mouth crops in %s: cache_dir %s is not used", corpus_dir,
                           crops_dir(corpus_dir), config.cache_dir)
        return crops_dir(corpus_dir)
    if config.cache_dir:
        return Path(config.cache_dir)
    if corpus_dir is not None:  # beside the corpus folder or manifest, else under the data folder (read-only corpora)
        return corpus_cache_dir(corpus_dir, config.data_dir)
    raise ValueError(f"no cache folder for {spec}; set DataConfig.cache_dir")


def _preprocess(clips: list[Clip], cache: Path, preprocess: PreprocessConfig, jobs: int, progress: bool,
                skipped: list[dict], split: str | None = None) -> list[tuple[Path, str]]:  # fmt: skip
    """Crops every clip once (already-done clips are skipped by ``run_batch``).

    Returns:
        (.npz path, clip id) of the clips whose crops exist; each failed one is added to ``skipped`` as
        ``{"clip_id", "reason"}``, plus ``"split"`` when ``split`` is given.
    """
    entries, interrupted = run_batch(clips, cache, preprocess, jobs=jobs, progress=progress)
    if interrupted:
        raise KeyboardInterrupt
    done = []
    for clip, entry in zip(clips, entries):
        if entry["status"] == "failed":
            item = {"clip_id": clip.clip_id, "reason": entry.get("reason", "preprocessing failed")}
            skipped.append(item if split is None else {**item, "split": split})
        else:
            done.append((output_path(cache, clip), clip.clip_id))
    return done


def _load(done: list[tuple[Path, str]], tokenizer, in_memory: bool = False,
          split: str | None = None) -> tuple[list[Example], list[dict]]:  # fmt: skip
    """Load the cropped clips; each rejected one comes back as ``{"clip_id", "path", "reason"}`` (+ ``"split"``)."""
    examples, rejected = load_examples([p for p, _ in done], tokenizer, in_memory=in_memory, clip_ids=[c for _, c in done])
    clip_of = {str(p): c for p, c in done}
    tagged = []
    for item in rejected:
        item = {"clip_id": clip_of.get(item.get("path"), item.get("path")), **item}
        tagged.append(item if split is None else {**item, "split": split})
    return examples, tagged


def prepare_data(config: DataConfig, tokenizer, preprocess: PreprocessConfig | None = None, *, progress: bool = True,
                 in_memory: bool = False) -> RunData:
    """Generate/scan, split, preprocess and load a run's data (see the module docstring)."""
    preprocess = preprocess or PreprocessConfig()
    skipped: list[dict] = []
    if config.spec == "synthetic":
        folder = synthetic_dir(config)
        summary = generate_corpus(folder, dataclasses.replace(config.synth, jobs=config.jobs), progress=progress,
                                  preprocess=preprocess)
        if summary["written"]:
            logger.info("synthetic corpus %s: %d sessions written in %.0f s", folder, summary["written"], summary["seconds"])
        spec = f"synthetic:{folder}"
    else:
        spec = config.spec
    corpus = scan(spec)
    skipped += corpus.skipped
    if not corpus.clips:
        raise ValueError(_no_clip_message(spec, corpus.skipped))
    path = spec.partition(":")[2]
    corpus_dir = Path(path) if Path(path).is_dir() else None
    clip_splits = split_clips(list(corpus.clips), corpus_dir, config)
    cache = _cache_dir(config, Path(path), spec)
    examples: dict[str, list[Example]] = {}
    for name, clips in clip_splits.items():
        if not clips:
            examples[name] = []
            continue
        done = _preprocess(clips, cache, preprocess, config.jobs, progress, skipped, split=name)
        loaded, rejected = _load(done, tokenizer, in_memory, split=name)
        skipped += rejected
        examples[name] = loaded
        logger.info("%s: %d clips", name, len(loaded))
    if not examples["train"]:
        raise ValueError(f"{spec}: no training clip left after splitting and preprocessing")
    ids = {name: [e.clip_id for e in items] for name, items in examples.items()}
    _check_unique_ids(ids)
    return RunData(examples, ids, skipped, spec)


def _check_unique_ids(ids: dict[str, list[str]]) -> None:
    """Splits, reports and resumed runs name clips by id: two clips with one id would be mixed up."""
    where: dict[str, str] = {}
    for name, items in ids.items():
        for clip_id in items:
            if clip_id and clip_id in where:
                raise ValueError(
                    f"clip id {clip_id!r} names two clips (splits {where[clip_id]!r} and {name!r}); every clip of a "
                    "run must have its own id"
                )
            where[clip_id] = name


def corpus_examples(spec: str, tokenizer, preprocess: PreprocessConfig, *, cache_dir: str | None = None, jobs: int = 2,
                    progress: bool = True) -> tuple[list[Example], list[dict]]:  # fmt: skip
    """Every clip of a corpus spec, unsplit: scanned, cropped once into its cache, loaded.

    What evaluating a model on another corpus needs (``lipnet-ko evaluate --data SPEC``). Returns
    ``(examples, skipped)``; ``skipped`` names each clip left out with its reason: ``{"clip_id", "reason"}`` for
    a clip that failed cropping or loading (``"path"`` too for the latter), ``{"path", "reason"}`` for a file
    or label entry the scan skipped.
    """
    corpus = scan(spec)
    if not corpus.clips:
        raise ValueError(_no_clip_message(spec, corpus.skipped))
    skipped: list[dict] = list(corpus.skipped)
    path = Path(spec.partition(":")[2])
    cache = _cache_dir(DataConfig(spec=spec, cache_dir=cache_dir), path, spec)
    done = _preprocess(list(corpus.clips), cache, preprocess, jobs, progress, skipped)
    examples, rejected = _load(done, tokenizer)
    return examples, skipped + rejected


def write_run_splits(path: Path, data: RunData) -> None:
    """The clip ids of every split, so evaluation reuses them."""
    from lipnet_ko.files import write_json_atomic

    write_json_atomic(path, {"corpus": data.corpus, "splits": data.clip_ids, "skipped": data.skipped})


def read_run_splits(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
