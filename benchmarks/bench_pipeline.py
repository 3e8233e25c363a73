"""Input pipeline throughput vs the model's training throughput (issue 4 target: pipeline >= 5x the model).

Measures, in one run, on clips shaped like LipNet's input (75 frames of 50x100 RGB, saved as .npz like
`lipnet-ko preprocess` writes them):

1. pipeline: batches from `lipnet_ko.data.batching` with training augmentation, nothing else (clips/s);
2. model only: LipNet train steps on the same augmented batches, pre-made in memory (clips/s), the baseline;
3. fit: `model.fit` fed by the live pipeline, same epochs (clips/s): the pipeline's cost inside training.

Usage: python benchmarks/bench_pipeline.py [--preset lipnet] [--clips 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def make_clips(folder: Path, count: int, rng: np.random.Generator) -> list[Path]:
    paths = []
    base = rng.integers(0, 256, (75, 50, 100, 3), dtype=np.uint8)
    for i in range(count):
        crops = np.roll(base, i, axis=2)
        path = folder / f"clip{i}.npz"
        np.savez_compressed(path, crops=crops, found=np.ones(75, bool), text=np.str_("공을 갑 삼 옆에 다시 놓아"),
                            speaker=np.str_(f"s{i % 4}"))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lipnet")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import lipnet_ko  # noqa: F401  (first: sets TensorFlow's oneDNN switch before TF loads)
    import keras

    from lipnet_ko.data.batching import AugmentConfig, ClipBatcher, PipelineConfig, load_examples
    from lipnet_ko.model.network import build_model
    from lipnet_ko.model.config import model_config
    from lipnet_ko.text.tokenizer import JamoTokenizer

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        examples, _ = load_examples(make_clips(Path(tmp), args.clips, rng), JamoTokenizer())
        batcher = ClipBatcher(examples, PipelineConfig(batch_size=args.batch_size), AugmentConfig())
        dataset = batcher.dataset()

        def pipeline_epoch() -> float:
            start = time.perf_counter()
            n = sum(int(batch[0][1].shape[0]) for batch in dataset)
            return n / (time.perf_counter() - start)

        first_epoch = pipeline_epoch()  # includes reading and decompressing the .npz files
        pipeline = [pipeline_epoch() for _ in range(args.repeats)]

        # The model-only baseline trains on exactly the batches the pipeline yields for the same epoch
        # (augmentation changes clip lengths, hence the work), pre-made in memory; `fit` then draws the
        # same epochs from the live pipeline. Epoch 0 of each traces the shapes and is not timed.
        twin = ClipBatcher(examples, PipelineConfig(batch_size=args.batch_size), AugmentConfig())
        premade = [list(twin.epoch(e)) for e in range(args.repeats + 1)]
        model = build_model(model_config(args.preset))
        model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
        fit_batcher = ClipBatcher(examples, PipelineConfig(batch_size=args.batch_size), AugmentConfig())
        fit_dataset = fit_batcher.dataset()

        def model_epoch(batches) -> float:
            start = time.perf_counter()
            for x, y in batches:
                model.train_on_batch(x, y)
            return len(examples) / (time.perf_counter() - start)

        def fit_epoch() -> float:
            start = time.perf_counter()
            model.fit(fit_dataset, epochs=1, verbose=0)
            return len(examples) / (time.perf_counter() - start)

        model_epoch(premade[0])
        fit_epoch()
        model_only, fitted = [], []
        for epoch in range(1, args.repeats + 1):
            model_only.append(model_epoch(premade[epoch]))
            fitted.append(fit_epoch())

    p, m, f = statistics.median(pipeline), statistics.median(model_only), statistics.median(fitted)
    print(f"preset={args.preset} clips={args.clips} batch={args.batch_size} repeats={args.repeats} (medians)")
    print(f"pipeline (augmented, cached)  {p:8.1f} clips/s   first epoch from .npz: {first_epoch:.1f} clips/s")
    print(f"model only (train steps)      {m:8.1f} clips/s")
    print(f"fit fed by the pipeline       {f:8.1f} clips/s")
    print(f"ratio pipeline / model        {p / m:8.1f}x   (target >= 5x)")
    print(f"training slowdown vs model    {100 * (m / f - 1):8.1f}%   (target <= 5%)")


if __name__ == "__main__":
    main()
