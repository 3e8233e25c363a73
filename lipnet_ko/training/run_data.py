"""The data of a training run: corpus spec -> clips -> preprocessed crops -> split examples.

``prepare_data(config)`` does, in order: make (or reuse) the synthetic corpus when the spec is
``synthetic``; scan the corpus; split it into ``train``, ``val`` (held-out utterances of training
speakers, used to pick the best checkpoint), ``seen`` (other held-out utterances of training speakers:
the seen-speaker test), ``unseen`` (held-out speakers) and, for the synthetic default, ``free`` (the
held-out free sentences, never in training, read by training speakers) and ``unseen_free`` (free
sentences of held-out speakers): there ``seen`` and ``unseen`` keep only sentences of the command
grammar, the closed-vocabulary test the accuracy targets are set on; preprocess every clip once through
``lipnet_ko.data.crops`` (cached, resumable); and load the examples.

Held-out utterances whose text also occurs in ``train`` are dropped from ``val`` and ``seen``, so those
splits are held-out *sentences*, not only held-out recordings.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from lipnet_ko.data.corpora import is_spec, read_split, scan, split_by_speaker, split_by_utterance
from lipnet_ko.data.batching import Example, load_examples
from lipnet_ko.data.clips import Clip
from lipnet_ko.video.extract import PreprocessConfig
from lipnet_ko.data.crops import output_path, run_batch
from lipnet_ko.synth.corpus import SPLIT_NAME, SYNTH_VERSION, SynthConfig, generate_corpus
from lipnet_ko.text.normalize import normalize_text
from lipnet_ko.files import data_dir

logger = logging.getLogger(__name__)

# The test splits. For the synthetic default, ``seen`` and ``unseen`` hold sentences of the command grammar
# only (closed vocabulary, what the accuracy targets are about, as GRID is for LipNet); open-vocabulary
# sentences go to ``free`` (training speakers) and ``unseen_free`` (held-out speakers).
EVAL_SPLITS = ("seen", "unseen", "free", "unseen_free")


@dataclass(frozen=True)
class DataConfig:
    """Which corpus a run trains on and how it is split."""

    spec: str = "synthetic"  # "synthetic" (the embedded default corpus), synthetic:DIR, aihub:DIR, grid:DIR, manifest:FILE
    tokenizer: str = "jamo"  # "jamo" (Korean) or "char" (English, GRID)
    synth: SynthConfig = field(default_factory=SynthConfig)  # the corpus "synthetic" generates
    synth_dir: str | None = None  # where "synthetic" is generated; None = <data_dir>/synth/default-v<SYNTH_VERSION>
    # Folder for generated data: "synthetic" writes its corpora and their crop caches under DATA_DIR/synth/.
    # None = $LIPNET_KO_DATA_DIR, else data/ in the working directory (lipnet_ko.files.data_dir).
    data_dir: str | None = None
    free_sentences: int = 3  # "synthetic": held-out free sentences per training speaker, the "free" split
    # "synthetic": also train and validate on the corpus's free sentences. Off by default: they are far too
    # few to learn open-vocabulary reading from, and they take training time from the command grammar and
    # blur which words each slot allows, so held-out grammar sentences are read worse with them (README).
    train_free: bool = False
    cache_dir: str | None = None  # preprocessed crops; None = "<corpus>-crops" beside the corpus
    val_share: float = 0.05  # training speakers' utterances held out for validation (best checkpoint)
    seen_share: float = 0.1  # training speakers' utterances held out for the seen-speaker test
    unseen_share: float = 0.2  # corpora without split.json: share of speakers held out (unseen test)
    split_seed: int = 0
    max_train_clips: int | None = None  # cap (for quick runs); None = all
    jobs: int = 2  # worker processes for generation and preprocessing

    def __post_init__(self) -> None:
        if isinstance(self.synth, dict):
            object.__setattr__(self, "synth", SynthConfig(**self.synth))
        if self.spec != "synthetic" and not is_spec(self.spec):
            raise ValueError(
                f"data spec must be 'synthetic' or KIND:PATH (aihub:, grid:, manifest:, synthetic:), got {self.spec!r}"
            )
        if self.tokenizer not in ("jamo", "char"):
            raise ValueError(f"DataConfig.tokenizer must be 'jamo' or 'char', got {self.tokenizer!r}")
        for name in ("val_share", "seen_share", "unseen_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"DataConfig.{name} must be in [0, 1), got {getattr(self, name)}")


@dataclass
class RunData:
    """Examples per split, plus what was skipped on the way."""

    splits: dict[str, list[Example]]  # train, val, seen, unseen, free (some may be empty)
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


def synthetic_dirs(config: DataConfig) -> tuple[Path, Path]:
    """(main corpus, free-sentence corpus) folders of the ``synthetic`` spec.

    ``config.synth_dir`` when set, else ``<data dir>/synth/default-v<SYNTH_VERSION>`` with the data dir
    of :func:`lipnet_ko.files.data_dir` (``config.data_dir``, ``$LIPNET_KO_DATA_DIR`` or ``./data``).
    """
    # The default folder carries the generator version: a newer version regenerates beside the old
    # corpus (and its crop cache) instead of mixing with it.
    base = Path(config.synth_dir) if config.synth_dir else data_dir(config.data_dir) / "synth" / f"default-v{SYNTH_VERSION}"
    return base, base.with_name(base.name + "-free")


FREE_FIRST_SESSION = 101  # the free-sentence corpus's session numbers start here: its clip ids differ from the main corpus's


def free_synth_config(config: DataConfig) -> SynthConfig:
    """The free-sentence test corpus: the same training speakers (same seed, same ids) reading held-out free sentences.

    Its sessions are numbered from :data:`FREE_FIRST_SESSION`, so a clip id names one clip of one corpus.
    """
    s = config.synth
    return dataclasses.replace(
        s,
        first_session=FREE_FIRST_SESSION,
        speakers=s.speakers - s.held_out_speakers,
        held_out_speakers=0,
        sentences=config.free_sentences,
        sentences_per_session=config.free_sentences,
        sentence_set="free-test",
    )


def _text_key(text: str) -> str:
    return " ".join(normalize_text(text, unknown="drop").split())


def split_clips(clips: list[Clip], corpus_dir: Path | None, config: DataConfig) -> dict[str, list[Clip]]:
    """train / val / seen / unseen, from split.json when the corpus has one, else by speaker."""
    split_file = corpus_dir / SPLIT_NAME if corpus_dir is not None else None
    if split_file is not None and split_file.exists():
        by_speaker = read_split(split_file, clips)
        train, unseen = by_speaker.get("train", []), by_speaker.get("test", [])
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
    train_texts = {_text_key(c.text) for c in train}
    dropped = sum(_text_key(c.text) in train_texts for c in val + seen)
    val = [c for c in val if _text_key(c.text) not in train_texts]
    seen = [c for c in seen if _text_key(c.text) not in train_texts]
    if dropped:
        logger.info("dropped %d held-out clips whose sentence also occurs in training", dropped)
    if config.max_train_clips is not None:
        train = train[: config.max_train_clips]
    return {"train": train, "val": val, "seen": seen, "unseen": unseen}


def _no_clip_message(spec: str, skipped: list) -> str:
    return f"{spec}: no usable clip ({len(skipped)} skipped; run `lipnet-ko data inspect {spec}` for reasons)"


def _cache_dir(config: DataConfig, corpus_dir: Path | None, spec: str) -> Path:
    if config.cache_dir:
        return Path(config.cache_dir)
    if corpus_dir is not None and corpus_dir.is_dir():
        return corpus_dir.with_name(corpus_dir.name + "-crops")
    if corpus_dir is not None:  # a manifest file
        return corpus_dir.with_name(corpus_dir.stem + "-crops")
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


def _separate_free_sentences(clip_splits: dict[str, list[Clip]], train_free: bool) -> None:
    """Synthetic default: keep grammar sentences in seen/unseen; free sentences to free/unseen_free.

    Unless ``train_free``, the free sentences of train and val are left out of the run as well.
    """
    from lipnet_ko.text.sentences import load_grammar

    grammar = load_grammar()
    moves = [("seen", "free"), ("unseen", "unseen_free")] + ([] if train_free else [("train", None), ("val", None)])
    for name, free_name in moves:  # free_name None: the free sentences leave the run
        kept, moved = [], []
        for clip in clip_splits.get(name, []):
            (kept if grammar.contains(_text_key(clip.text)) else moved).append(clip)
        clip_splits[name] = kept
        if free_name is not None:
            clip_splits[free_name] = clip_splits.get(free_name, []) + moved
        if moved:
            logger.info("%s: %d free (non-grammar) sentences %s", name, len(moved),
                        f"moved to {free_name}" if free_name else "left out (train_free is off)")


def prepare_data(config: DataConfig, tokenizer, preprocess: PreprocessConfig | None = None, *, progress: bool = True,
                 in_memory: bool = False) -> RunData:
    """Generate/scan, split, preprocess and load a run's data (see the module docstring)."""
    preprocess = preprocess or PreprocessConfig()
    skipped: list[dict] = []
    free_clips: list[Clip] = []
    free_cache: Path | None = None
    if config.spec == "synthetic":
        main_dir, free_dir = synthetic_dirs(config)
        for folder, synth in ((main_dir, config.synth), (free_dir, free_synth_config(config))):
            summary = generate_corpus(folder, dataclasses.replace(synth, jobs=config.jobs), progress=progress)
            if summary["written"]:
                logger.info("synthetic corpus %s: %d sessions written in %.0f s", folder, summary["written"], summary["seconds"])
        spec = f"synthetic:{main_dir}"
        free_scan = scan(f"synthetic:{free_dir}")
        free_cache = Path(config.cache_dir) / "free-sentences" if config.cache_dir else _cache_dir(config, free_dir, spec)
        skipped += free_scan.skipped
        free_clips = list(free_scan.clips) if config.free_sentences else []
    else:
        spec = config.spec
    corpus = scan(spec)
    skipped += corpus.skipped
    if not corpus.clips:
        raise ValueError(_no_clip_message(spec, corpus.skipped))
    kind, _, path = spec.partition(":")
    corpus_dir = Path(path) if Path(path).is_dir() else None
    clip_splits = split_clips(list(corpus.clips), corpus_dir, config)
    cache = _cache_dir(config, Path(path), spec)
    # The free-sentence corpus names its files like the main corpus (same speakers and sessions), so its
    # crops need a cache of their own: in the main cache they would be taken for the main corpus's
    # already-cropped clips of the same name.
    free_set = set(free_clips)

    def cache_of(clip: Clip) -> Path:
        return free_cache if clip in free_set else cache

    clip_splits["free"] = free_clips
    if config.spec == "synthetic":
        _separate_free_sentences(clip_splits, config.train_free)
    examples: dict[str, list[Example]] = {}
    for name, clips in clip_splits.items():
        if not clips:
            examples[name] = []
            continue
        done = []
        for folder in dict.fromkeys(cache_of(c) for c in clips):
            done += _preprocess([c for c in clips if cache_of(c) == folder], folder, preprocess, config.jobs, progress, skipped,
                                split=name)
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
                    "run must have its own id (for the synthetic default, delete synth/default-v*-free* in the data folder "
                    "to regenerate the free-sentence corpus with its own session numbers)"
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
