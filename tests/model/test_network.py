import dataclasses

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from lipnet_ko.model.config import PRESETS, ModelConfig, model_config  # noqa: E402
from lipnet_ko.model.network import LipNet, build_model  # noqa: E402

TINY = model_config("tiny", height=24, width=48, vocabulary_size=11)


def batch(frames=(12, 9), config=TINY, seed=0):
    rng = np.random.default_rng(seed)
    crops = np.zeros((len(frames), max(frames), config.height, config.width, config.channels), np.float32)
    for row, n in enumerate(frames):
        crops[row, :n] = rng.random((n, config.height, config.width, config.channels))
    return crops, np.array(frames, np.int32)


def test_output_shape_and_stable_layer_names():
    model = build_model(TINY, frames=12)
    logits = model(batch())
    assert tuple(logits.shape) == (2, 12, 11)
    names = {layer.name for layer in model._flatten_layers()}
    assert {"stcnn_block_1", "stcnn_block_3", "bigru_1", "bigru_2", "logits"} <= names


def test_presets_have_the_documented_sizes():
    assert 4.4e6 < build_model(PRESETS["lipnet"]).count_params() < 4.8e6
    assert 1.1e6 < build_model(PRESETS["small"]).count_params() < 1.2e6
    assert 0.5e6 < build_model(dataclasses.replace(PRESETS["small"], pool_last=True)).count_params() < 0.7e6
    with pytest.raises(ValueError, match="unknown model preset"):
        model_config("huge")


def test_padding_does_not_change_a_clips_logits():
    model = build_model(TINY, frames=12)
    crops, lengths = batch((12, 7))
    together = model((crops, lengths)).numpy()
    alone = model((crops[1:, :7], lengths[1:])).numpy()
    np.testing.assert_allclose(together[1, :7], alone[0], atol=1e-5)


def test_save_and_reload_give_the_same_logits(tmp_path):
    model = build_model(TINY, frames=12)
    x = batch()
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded, LipNet) and reloaded.config == TINY
    np.testing.assert_allclose(reloaded(x).numpy(), model(x).numpy(), atol=1e-6)


def test_fit_lowers_the_ctc_loss():
    keras.utils.set_random_seed(0)
    model = build_model(TINY, frames=12)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    x = batch((12, 10))
    y = (np.array([[1, 2, 3, 0], [4, 5, 0, 0]], np.int32), np.array([3, 2], np.int32))
    first = model.train_on_batch(x, y)
    for _ in range(30):
        last = model.train_on_batch(x, y)
    assert np.isfinite(first) and last < 0.7 * first


def test_config_round_trip_and_validation():
    assert ModelConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="one entry per block"):
        ModelConfig(conv_filters=(8, 8))
    with pytest.raises(ValueError, match="too small"):
        LipNet(model_config("tiny", height=4, width=4))


def test_clip_normalisation_removes_gain_and_offset_per_clip():
    model = build_model(TINY, frames=12)
    crops, lengths = batch((12, 7))
    brighter = crops.copy()
    brighter[1, :7] = 0.5 * brighter[1, :7] + 0.3  # the second clip only, real frames only (padding stays zero)
    a, b = model((crops, lengths)).numpy(), model((brighter, lengths)).numpy()
    np.testing.assert_allclose(a[1, :7], b[1, :7], atol=1e-4)
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)
    raw = build_model(model_config("tiny", height=24, width=48, vocabulary_size=11, input_norm="none"), frames=12)
    assert not np.allclose(raw((crops, lengths)).numpy()[1, :7], raw((brighter, lengths)).numpy()[1, :7], atol=1e-3)


def test_input_pooling_shrinks_the_features_and_keeps_padding_invariance():
    pooled = model_config("tiny", height=48, width=96, vocabulary_size=11, input_pool=2)
    assert LipNet(pooled).feature_dim < LipNet(model_config("tiny", height=48, width=96, vocabulary_size=11)).feature_dim
    model = build_model(pooled, frames=12)
    crops, lengths = batch((12, 7), config=pooled)
    together = model((crops, lengths)).numpy()
    alone = model((crops[1:, :7], lengths[1:])).numpy()
    np.testing.assert_allclose(together[1, :7], alone[0], atol=1e-5)
    with pytest.raises(ValueError, match="input_pool"):
        ModelConfig(input_pool=0)


def test_uint8_crops_give_the_same_logits_as_float_crops():
    model = build_model(TINY, frames=12)
    crops, lengths = batch((12, 7))
    stored = np.round(crops * 255).astype(np.uint8)
    from_float = model((stored.astype(np.float32) / 255, lengths)).numpy()
    np.testing.assert_allclose(model((stored, lengths)).numpy(), from_float, atol=1e-5)


def test_pool_before_norm_keeps_padding_invariance_and_old_models_keep_their_order():
    config = model_config("tiny", height=48, width=96, vocabulary_size=11, input_pool=2, pool_before_norm=True)
    model = build_model(config, frames=12)
    crops, lengths = batch((12, 7), config=config)
    together = model((crops, lengths)).numpy()
    np.testing.assert_allclose(together[1, :7], model((crops[1:, :7], lengths[1:])).numpy()[0], atol=1e-5)
    # The same weights with the other order give other logits: the flag changes the function, so a
    # config saved without it (False by default) must load with the order it was trained with.
    old = build_model(dataclasses.replace(config, pool_before_norm=False), frames=12)
    old.set_weights(model.get_weights())
    assert not np.allclose(old((crops, lengths)).numpy(), together, atol=1e-4)
    saved = config.to_dict()
    saved.pop("pool_before_norm")
    assert ModelConfig.from_dict(saved).pool_before_norm is False
    assert PRESETS["small"].pool_before_norm is True


def test_pool_last_false_keeps_the_last_blocks_spatial_map(tmp_path):
    pooled = model_config("tiny", height=48, width=96, vocabulary_size=11)
    config = dataclasses.replace(pooled, pool_last=False)
    assert LipNet(config).feature_dim == 4 * LipNet(pooled).feature_dim  # 2x2 max-pool left out
    model = build_model(config, frames=12)
    crops, lengths = batch((12, 7), config=config)
    together = model((crops, lengths)).numpy()
    np.testing.assert_allclose(together[1, :7], model((crops[1:, :7], lengths[1:])).numpy()[0], atol=1e-5)
    model.save(tmp_path / "wide.keras")
    reloaded = keras.models.load_model(tmp_path / "wide.keras")
    assert reloaded.config.pool_last is False
    np.testing.assert_allclose(reloaded((crops, lengths)).numpy(), together, atol=1e-6)
    saved = pooled.to_dict()
    saved.pop("pool_last")  # configs saved before the field existed: the pooled model they were trained as
    assert ModelConfig.from_dict(saved).pool_last is True
