"""Tests for lipnet_ko.training.recipes: per-corpus training defaults, and that the user's own settings win."""

from __future__ import annotations

from lipnet_ko.data.batching import AugmentConfig
from lipnet_ko.training.config import TrainConfig
from lipnet_ko.training.recipes import REAL_VIDEO_AUGMENT, apply_recipe, corpus_kind
from lipnet_ko.training.run_data import DataConfig


def test_grid_gets_letters_and_no_synthetic_colour_augmentation():
    config = apply_recipe(TrainConfig(data=DataConfig(spec="grid:/corpora/grid-s1")))
    assert config.data.tokenizer == "char"
    assert (config.augment.channel_gain, config.augment.saturation_range, config.augment.texture) == (0.0, (1.0, 1.0), 0.0)
    assert config.augment.flip_prob == AugmentConfig().flip_prob  # the geometric transforms stay
    assert config.preset == TrainConfig().preset and config.max_minutes == TrainConfig().max_minutes
    assert config.epochs > 200  # the budget, not the epoch cap, ends a GRID run


def test_the_synthetic_default_and_kinds_without_a_recipe_are_left_as_they_are():
    default = TrainConfig()
    assert apply_recipe(default) is default and corpus_kind(default.data.spec) == "synthetic"
    manifest = TrainConfig(data=DataConfig(spec="manifest:/my/clips.csv"))
    assert apply_recipe(manifest) is manifest


def test_what_the_user_set_wins_over_the_recipe():
    config = TrainConfig(data=DataConfig(spec="crops:/speaker", val_share=0.3), batch_size=2)
    tuned = apply_recipe(config, given={"batch_size", "data.val_share"})
    assert (tuned.batch_size, tuned.data.val_share) == (2, 0.3)
    assert tuned.max_minutes == 6.0 and tuned.learning_rate == 1e-3 and tuned.augment == REAL_VIDEO_AUGMENT
    grid = apply_recipe(TrainConfig(data=DataConfig(spec="grid:/g", tokenizer="jamo")), given={"data.tokenizer"})
    assert grid.data.tokenizer == "jamo"


def test_fine_tuning_few_clips_holds_the_frontend_first():
    scratch = apply_recipe(TrainConfig(data=DataConfig(spec="crops:/speaker")))
    assert scratch.freeze_frontend_epochs == 0  # freezing a random frontend is refused by TrainConfig anyway
    tuned = apply_recipe(TrainConfig(data=DataConfig(spec="crops:/speaker"), init_from="runs/synthetic"))
    assert tuned.freeze_frontend_epochs == 30 and tuned.batch_size == 4
    mine = TrainConfig(data=DataConfig(spec="crops:/speaker"), init_from="runs/synthetic", freeze_frontend_epochs=5)
    assert apply_recipe(mine, given={"freeze_frontend_epochs"}).freeze_frontend_epochs == 5
    assert apply_recipe(TrainConfig(data=DataConfig(spec="grid:/g"), init_from="runs/g")).freeze_frontend_epochs == 0
