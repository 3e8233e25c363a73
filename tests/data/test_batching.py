from pathlib import Path

import numpy as np
import pytest

from lipnet_ko.data.batching import (
    AugmentConfig,
    ClipBatcher,
    Example,
    PipelineConfig,
    augment_clip,
    ctc_feasible,
    ctc_min_frames,
    drop_infeasible,
)
from lipnet_ko.text.tokenizer import JamoTokenizer

H, W, C = 10, 20, 3


def make_examples(n=20, seed=0, with_files=None):
    rng = np.random.default_rng(seed)
    tok = JamoTokenizer()
    texts = ["가나다", "오늘 날씨", "밥 먹었어요", "다람쥐 헌 쳇바퀴에 타고파"]
    examples = []
    for i in range(n):
        frames = int(rng.integers(40, 76))
        crops = rng.integers(0, 256, (frames, H, W, C), dtype=np.uint8)
        text = texts[i % len(texts)]
        path = None
        if with_files is not None:
            path = with_files / f"clip{i}.npz"
            np.savez_compressed(path, crops=crops)
            crops = None
        examples.append(Example(path, tuple(tok.encode(text)), frames, text=text, crops=crops))
    return examples


def test_ctc_min_frames_counts_repeats():
    assert ctc_min_frames([3, 4, 5]) == 3
    assert ctc_min_frames([3, 3, 5, 5, 5]) == 5 + 3
    assert ctc_feasible([3, 3], 3) and not ctc_feasible([3, 3], 2)
    assert not ctc_feasible([1] * 10, 20, temporal_stride=2)  # 10 outputs for 10 + 9 needed


def test_drop_infeasible_logs_count(caplog):
    ok = Example(None, (2, 3), 10)
    too_long = Example(None, tuple(range(2, 40)), 10)
    assert drop_infeasible([ok, too_long]) == [ok]
    assert "dropped 1 of 2" in caplog.text


def test_batches_have_true_lengths_shapes_and_dtypes(tmp_path):
    examples = make_examples(20, with_files=tmp_path)
    batcher = ClipBatcher(examples, PipelineConfig(batch_size=6, seed=3))
    seen = []
    for (crops, crop_lengths), (ids, id_lengths) in batcher.epoch():
        assert crops.dtype == np.uint8 and crops.shape[2:] == (H, W, C)
        assert crop_lengths.dtype == np.int32 and ids.dtype == np.int32 and id_lengths.dtype == np.int32
        assert crops.shape[1] == crop_lengths.max()
        for row in range(len(crop_lengths)):
            assert np.all(crops[row, crop_lengths[row] :] == 0)  # padding is zeros
            assert np.all(ids[row, id_lengths[row] :] == 0)  # label padding is the blank
        seen += [tuple(ids[r, : id_lengths[r]]) for r in range(len(id_lengths))]
    assert sorted(seen) == sorted(e.ids for e in examples)  # every clip exactly once, labels intact
    assert len(batcher) == 4


def test_unaugmented_batch_equals_stored_crops():
    examples = make_examples(4)
    batcher = ClipBatcher(examples, PipelineConfig(batch_size=4, shuffle=False, bucket_batches=0))
    (crops, lengths), _ = batcher.make_batch([0, 1, 2, 3], epoch=0)
    assert crops.dtype == np.uint8  # the model converts; no float copy of the batch in numpy
    for row, example in enumerate(examples):
        np.testing.assert_array_equal(crops[row, : lengths[row]], example.crops)
        assert not crops[row, lengths[row] :].any()  # zero padding


def test_order_is_reproducible_and_changes_by_epoch():
    examples = make_examples(30)
    a = ClipBatcher(examples, PipelineConfig(batch_size=5, seed=1))
    b = ClipBatcher(examples, PipelineConfig(batch_size=5, seed=1))
    assert a.batch_order(0) == b.batch_order(0)
    assert a.batch_order(0) != a.batch_order(1)
    assert ClipBatcher(examples, PipelineConfig(batch_size=5, seed=2)).batch_order(0) != a.batch_order(0)


def test_bucketing_reduces_padding():
    examples = make_examples(64, seed=5)

    def padding(bucket_batches):
        batcher = ClipBatcher(examples, PipelineConfig(batch_size=8, bucket_batches=bucket_batches))
        total = 0
        for batch in batcher.batch_order(0):
            lengths = [examples[i].num_frames for i in batch]
            total += sum(max(lengths) - n for n in lengths)
        return total

    assert padding(8) < padding(0) / 2


def test_augmentation_keeps_labels_and_is_deterministic():
    examples = make_examples(12)
    config = PipelineConfig(batch_size=4, seed=9)
    one = list(ClipBatcher(examples, config, AugmentConfig()).epoch(0))
    two = list(ClipBatcher(examples, config, AugmentConfig()).epoch(0))
    plain = list(ClipBatcher(examples, config).epoch(0))
    for a, b, p in zip(one, two, plain):
        np.testing.assert_array_equal(a[0][0], b[0][0])
        np.testing.assert_array_equal(a[1][0], p[1][0])  # labels unchanged by augmentation
        np.testing.assert_array_equal(a[1][1], p[1][1])
    assert any(not np.array_equal(a[0][1], p[0][1]) for a, p in zip(one, plain))  # timing did change


def test_each_augmentation_does_what_it_says():
    rng = np.random.default_rng(0)
    clip = np.zeros((50, H, W, 1), dtype=np.uint8)
    clip[:, :, : W // 2] = 200  # bright left half
    off = dict(drop_prob=0, duplicate_prob=0, rate_range=(1, 1), max_shift=0, scale_range=(1, 1), max_rotation_deg=0,
               max_brightness=0, gamma_range=(1, 1), channel_gain=0, saturation_range=(1, 1), texture=0)
    flipped = augment_clip(clip, rng, AugmentConfig(flip_prob=1.0, **off))
    assert flipped[:, :, W // 2 :].mean() > 190 and flipped[:, :, : W // 2].mean() < 10
    same = augment_clip(clip, rng, AugmentConfig(flip_prob=0.0, **off))
    np.testing.assert_array_equal(same, clip)
    faster = augment_clip(clip, rng, AugmentConfig(flip_prob=0.0, **{**off, "rate_range": (1.25, 1.25)}))
    assert len(faster) == 40
    brighter = augment_clip(clip, rng, AugmentConfig(flip_prob=0.0, **{**off, "gamma_range": (0.5, 0.5)}))
    assert brighter[:, :, : W // 2].mean() > 200
    # temporal transforms never make a clip shorter than its CTC minimum
    for seed in range(20):
        out = augment_clip(clip, np.random.default_rng(seed), AugmentConfig(rate_range=(1.2, 1.2), drop_prob=0.5), min_frames=45)
        assert len(out) >= 45


def test_colour_and_texture_augmentations_do_what_they_say():
    off = dict(flip_prob=0, drop_prob=0, duplicate_prob=0, rate_range=(1, 1), max_shift=0, scale_range=(1, 1),
               max_rotation_deg=0, max_brightness=0, gamma_range=(1, 1), channel_gain=0, saturation_range=(1, 1), texture=0)
    rng = np.random.default_rng(0)
    clip = np.empty((6, H, W, 3), dtype=np.uint8)
    clip[...] = (200, 120, 90)  # a skin colour
    clip[:, H // 3: 2 * H // 3] = (180, 60, 70)  # redder lips across the middle
    np.testing.assert_array_equal(augment_clip(clip, rng, AugmentConfig(**off)), clip)  # all neutral: unchanged
    grey = augment_clip(clip, rng, AugmentConfig(**{**off, "saturation_range": (0.0, 0.0)})).astype(int)
    assert np.abs(grey - grey.mean(axis=-1, keepdims=True)).max() <= 1  # saturation 0: every channel the pixel's grey
    np.testing.assert_allclose(grey[..., 0], clip.astype(int).mean(axis=-1), atol=1)
    pale = augment_clip(clip, rng, AugmentConfig(**{**off, "saturation_range": (0.5, 0.5)})).astype(int)
    assert np.ptp(pale[0, 0, 0]) == pytest.approx(np.ptp(clip[0, 0, 0].astype(int)) / 2, abs=1)  # halfway to grey
    gained = [augment_clip(clip, np.random.default_rng(s), AugmentConfig(**{**off, "channel_gain": 0.2})) for s in range(4)]
    ratios = [g[0, 0, 0].astype(float) / clip[0, 0, 0] for g in gained]
    assert all(np.all((r > 0.79) & (r < 1.21)) for r in ratios) and len({tuple(np.round(r, 2)) for r in ratios}) == 4
    factors = [augment_clip(clip, np.random.default_rng(s), AugmentConfig(**{**off, "texture": 0.2})) / clip for s in range(6)]
    assert max(f.std() for f in factors) > 0.02  # the amplitude is drawn per clip in [0, texture]
    for factor in factors:
        assert np.all(np.abs(factor - 1) < 0.51)  # a multiplicative field, at most 2.5 x the amplitude
        np.testing.assert_allclose(factor, np.broadcast_to(factor[:1], factor.shape), atol=0.02)  # static over frames
        np.testing.assert_allclose(factor[..., 0], factor[..., 2], atol=0.02)  # and the same on every channel
    single = np.full((4, H, W, 1), 100, np.uint8)  # grey crops: no colour transform, texture still applies
    colour_only = AugmentConfig(**{**off, "channel_gain": 0.2, "saturation_range": (0, 0)})
    out = augment_clip(single, np.random.default_rng(0), colour_only)
    np.testing.assert_array_equal(out, single)


def test_runs_saved_before_the_colour_augmentation_resume_without_it():
    from lipnet_ko.training.config import TrainConfig

    saved = TrainConfig().to_dict()
    for name in AugmentConfig.ADDED_FIELDS:
        del saved["augment"][name]  # what config.json of earlier runs holds
    augment = TrainConfig.from_dict(saved).augment
    assert (augment.channel_gain, augment.saturation_range, augment.texture) == (0.0, (1.0, 1.0), 0.0)
    assert TrainConfig().augment.texture > 0 and TrainConfig().augment.channel_gain > 0  # new runs have it


def test_bad_inputs():
    with pytest.raises(ValueError, match="no clip left"):
        ClipBatcher([Example(None, tuple(range(2, 50)), 10, crops=np.zeros((10, H, W, C), np.uint8))], PipelineConfig())
    with pytest.raises(ValueError, match="probability"):
        AugmentConfig(flip_prob=2)
    bad = make_examples(2)
    bad[1] = Example(None, bad[1].ids, 60, crops=np.zeros((60, H + 1, W, C), np.uint8))
    batcher = ClipBatcher(bad, PipelineConfig(batch_size=2, shuffle=False))
    with pytest.raises(ValueError, match="crop size"):
        list(batcher.epoch())


def test_tf_dataset_yields_the_same_batches():
    tf = pytest.importorskip("tensorflow")
    examples = make_examples(10)
    batcher = ClipBatcher(examples, PipelineConfig(batch_size=4, seed=4))
    expected = list(ClipBatcher(examples, PipelineConfig(batch_size=4, seed=4)).epoch(0))
    got = list(batcher.dataset())
    assert len(got) == len(expected) == 3
    for ((c, cl), (i, il)), ((ec, ecl), (ei, eil)) in zip(got, expected):
        assert isinstance(c, tf.Tensor)
        np.testing.assert_array_equal(c.numpy(), ec)
        np.testing.assert_array_equal(i.numpy(), ei)
        np.testing.assert_array_equal(il.numpy(), eil)


def test_load_examples_from_preprocessed_files(tmp_path):
    from lipnet_ko.data.batching import load_examples

    tok = JamoTokenizer()
    good = tmp_path / "good.npz"
    crops = np.zeros((30, H, W, C), np.uint8)
    np.savez_compressed(good, crops=crops, found=np.ones(30, bool), text=np.str_("가나다"), speaker=np.str_("s1"))
    latin = tmp_path / "latin.npz"
    np.savez_compressed(latin, crops=crops, found=np.ones(30, bool), text=np.str_("abc"), speaker=np.str_("s1"))
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 truncated")
    examples, skipped = load_examples([good, latin, broken, tmp_path / "missing.npz"], tok)
    assert [e.crops_path for e in examples] == [good]
    assert examples[0].ids == tuple(tok.encode("가나다")) and examples[0].num_frames == 30 and examples[0].speaker == "s1"
    assert examples[0].crops is None
    np.testing.assert_array_equal(examples[0].load(), crops)
    reasons = {Path(s["path"]).name: s["reason"] for s in skipped}
    assert "rejected by the jamo tokenizer" in reasons["latin.npz"]
    assert "unreadable" in reasons["broken.npz"] and "unreadable" in reasons["missing.npz"]
    assert examples[0].clip_id == "good"  # named by the file's stem unless the caller names it
    named, _ = load_examples([good, latin], tok, clip_ids=["s1/good", "s1/latin"])
    assert [e.clip_id for e in named] == ["s1/good"]  # ids follow their paths past the rejected file
    with pytest.raises(ValueError, match="2 ids for 1 paths"):
        load_examples([good], tok, clip_ids=["a", "b"])


def test_prefetched_batches_equal_the_epoch_and_errors_reach_the_caller():
    rng = np.random.default_rng(0)
    tok = JamoTokenizer()
    examples = [Example(None, tuple(tok.encode("가나")), 12 + i, text="가나",
                        crops=rng.integers(0, 255, (12 + i, H, W, C), dtype=np.uint8))
                for i in range(7)]  # fmt: skip
    batcher = ClipBatcher(examples, PipelineConfig(batch_size=2, seed=3, prefetch=1), AugmentConfig())
    direct, threaded = list(batcher.epoch(4, start_batch=1)), list(batcher.prefetched(4, start_batch=1))
    assert len(threaded) == len(direct) == 3
    for (a, _), (b, _) in zip(direct, threaded):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    first = next(iter(batcher.prefetched(5)))  # leaving early stops the thread (no hang at exit)
    assert first[0][0].shape[0] == 2
    broken = ClipBatcher(examples[:2] + [Example(None, examples[0].ids, 12, crops=np.zeros((12, H + 1, W, C), np.uint8))],
                         PipelineConfig(batch_size=3, shuffle=False), None)  # fmt: skip
    with pytest.raises(ValueError, match="crop size"):
        list(broken.prefetched(0))
