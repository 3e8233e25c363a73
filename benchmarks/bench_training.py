"""Training and inference throughput of the model (issue 6 benchmark).

Measured in one run, per preset:

1. train, pipeline: the training loop's own path (``ClipBatcher.prefetched``: batches with augmentation
   made ahead by a thread, feeding the train step of ``lipnet_ko.training.trainer.make_train_step``), clips/s,
   with the crops cached in memory (what ``train`` does when they fit) and streamed from ``.npz`` (larger
   corpora); also the same through ``ClipBatcher.dataset`` (``tf.data.Dataset.from_generator``, what
   training used before: in 20-minute runs it left the process idle for 20-50 s at the end of about half
   the epochs, which these short epochs may not show);
2. train, model only (the baseline): the same train steps on the same batches pre-made in memory;
   the ratio 1/2 is the share of model speed the input pipeline keeps (target >= 0.9);
3. inference clips/s at batch 1 and batch 16 (``Recognizer.logits``, the path evaluation and transcription use);
4. achieved GFLOP/s (analytic FLOP count of the network; a train step counted as 3x the forward pass)
   as a share of this machine's float32 matmul peak, measured in the same run.

Clips are 75 frames of 50x100 RGB (LipNet's input), saved as .npz like ``lipnet-ko preprocess`` writes them.
Medians of ``--repeats``. Usage: python benchmarks/bench_training.py [--presets small,lipnet] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

FRAMES = 75


def forward_flops(config, frames: int = FRAMES) -> float:
    """Multiply-adds x 2 of one clip's forward pass: Conv3D blocks, BiGRUs, the logits layer."""
    h, w, c = -(-config.height // config.input_pool), -(-config.width // config.input_pool), config.channels
    flops = 0.0
    for filters, kernel, stride, pool in zip(config.conv_filters, config.conv_kernels, config.conv_strides, config.block_pools):
        h, w = -(-h // stride[1]), -(-w // stride[2])
        flops += 2 * frames * h * w * filters * c * kernel[0] * kernel[1] * kernel[2]
        h, w, c = h // pool, w // pool, filters
    features = h * w * c
    units = config.gru_units
    for _ in range(config.num_gru_layers):
        flops += 2 * 2 * frames * 3 * units * (features + units)  # 2 directions, 3 gates
        features = 2 * units
    return flops + 2 * frames * features * config.vocabulary_size


def matmul_peak(repeats: int) -> float:
    import tensorflow as tf

    n = 2048
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(10):
            out = matmul(a, b)
        out.numpy()
        times.append((time.perf_counter() - start) / 10)
    return 2 * n**3 / statistics.median(times) / 1e9


def make_clips(folder: Path, count: int, rng: np.random.Generator) -> list[Path]:
    base = rng.integers(0, 256, (FRAMES, 50, 100, 3), dtype=np.uint8)
    paths = []
    for i in range(count):
        path = folder / f"clip{i}.npz"
        np.savez_compressed(path, crops=np.roll(base, i, axis=2), found=np.ones(FRAMES, bool),
                            text=np.str_("공을 갑 삼 옆에 다시 놓아"), speaker=np.str_(f"s{i % 4}"))
        paths.append(path)
    return paths


def bench_preset(preset: str, examples, args, peak: float) -> dict:
    import keras
    import tensorflow as tf

    from lipnet_ko.data.batching import AugmentConfig, ClipBatcher, PipelineConfig
    from lipnet_ko.model.network import build_model
    from lipnet_ko.model.config import model_config
    from lipnet_ko.training.trainer import make_train_step
    from lipnet_ko.model.inference import keras_recognizer
    from lipnet_ko.text.tokenizer import get_tokenizer
    from lipnet_ko.video.extract import PreprocessConfig

    keras.utils.set_random_seed(0)
    config = model_config(preset)
    model = build_model(config, frames=FRAMES)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
    streamed = ClipBatcher(examples, PipelineConfig(batch_size=args.batch_size, cache=False), AugmentConfig())
    cached = ClipBatcher(examples, PipelineConfig(batch_size=args.batch_size, cache=True), AugmentConfig())
    step = make_train_step(model, tf.distribute.get_strategy(), streamed.frame_shape)
    premade = list(streamed.epoch(0))
    step(premade[0])  # the one trace
    list(cached.epoch(0))  # fill the cache

    def clips_per_second(batches) -> float:
        """Train on every batch of ``batches`` (made however the iterable makes them); clips per second."""
        start = time.perf_counter()
        n = 0
        for x, y in batches:
            step((x, y))
            n += int(x[1].shape[0])
        return n / (time.perf_counter() - start)

    pipe, alone, stream, serial, via_tf_data = [], [], [], [], []
    for r in range(args.repeats):
        alone.append(clips_per_second(premade))  # pre-made in memory: the model alone
        pipe.append(clips_per_second(cached.prefetched(r)))  # the training loop's path
        stream.append(clips_per_second(streamed.prefetched(r)))
        serial.append(clips_per_second(cached.epoch(r)))  # made in the stepping thread, no prefetch
        via_tf_data.append(clips_per_second(cached.dataset(r)))  # the old tf.data path
    infer = {}
    recognizer = keras_recognizer(model, get_tokenizer("jamo"), PreprocessConfig())  # the one prediction path
    for batch in (1, 16):
        clips = list(np.random.default_rng(0).integers(0, 256, (batch, FRAMES, 50, 100, 3), dtype=np.uint8))
        recognizer.logits(clips, batch_size=batch)
        rates = []
        for _ in range(args.repeats):
            calls = max(1, 16 // batch)
            start = time.perf_counter()
            for _ in range(calls):
                recognizer.logits(clips, batch_size=batch)
            rates.append(calls * batch / (time.perf_counter() - start))
        infer[batch] = statistics.median(rates)
    flops = forward_flops(config)
    train_rate = statistics.median(pipe)
    return {
        "preset": preset,
        "params_m": model.count_params() / 1e6,
        "gflop_fwd": flops / 1e9,
        "train_pipeline": train_rate,
        "train_model_only": statistics.median(alone),
        "train_streamed": statistics.median(stream),
        "train_serial": statistics.median(serial),
        "train_tf_data": statistics.median(via_tf_data),
        "ratio": train_rate / statistics.median(alone),
        "infer_b1": infer[1],
        "infer_b16": infer[16],
        "train_gflops": 3 * flops * train_rate / 1e9,
        "infer_gflops": flops * infer[16] / 1e9,
        "peak": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="small,lipnet")
    parser.add_argument("--clips", type=int, default=320,
                        help="clips per epoch (320 = 40 steps at batch 8): each epoch starts a new prefetch thread, "
                             "as training does; too few steps and that start-up dominates")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=8, help="8 = the training default")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import lipnet_ko  # noqa: F401  (first: TensorFlow's oneDNN switch)

    from lipnet_ko.data.batching import load_examples
    from lipnet_ko.text.tokenizer import JamoTokenizer

    peak = matmul_peak(args.repeats)
    print(f"float32 matmul peak (2048^2, median of {args.repeats}): {peak:.0f} GFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        examples, _ = load_examples(make_clips(Path(tmp), args.clips, np.random.default_rng(0)), JamoTokenizer())
        for preset in args.presets.split(","):
            r = bench_preset(preset, examples, args, peak)
            print(f"\n{preset}: {r['params_m']:.2f} M parameters, {r['gflop_fwd']:.2f} GFLOP forward per {FRAMES}-frame clip")
            print(f"  train, real pipeline (cached crops, augmented):  {r['train_pipeline']:6.2f} clips/s")
            print(f"  train, real pipeline (streamed .npz, augmented): {r['train_streamed']:6.2f} clips/s")
            print(f"  train, batches made between steps (no prefetch): {r['train_serial']:6.2f} clips/s")
            print(f"  train, through tf.data from_generator (old path): {r['train_tf_data']:5.2f} clips/s")
            print(f"  train, model only (pre-made batches):            {r['train_model_only']:6.2f} clips/s")
            print(f"  ratio pipeline / model only:                     {r['ratio']:6.3f} cached, "
                  f"{r['train_streamed'] / r['train_model_only']:.3f} streamed  (target >= 0.9)")
            print(f"  inference batch 1:  {r['infer_b1']:6.2f} clips/s   batch 16: {r['infer_b16']:6.2f} clips/s")
            print(f"  achieved: train {r['train_gflops']:.0f} GFLOP/s ({r['train_gflops'] / peak:.0%} of peak), "
                  f"inference b16 {r['infer_gflops']:.0f} GFLOP/s ({r['infer_gflops'] / peak:.0%} of peak)")


if __name__ == "__main__":
    main()
