"""Facts about the training recipe: one record says how a net is trained, and it refuses nonsense."""
import math

import numpy as np
import pytest
import torch

from resbook.recipe import PER_NET, Recipe, check_recipes, make_optimizer


def test_defaults_are_the_books_sgd_recipe():
    recipe = Recipe(steps=10)
    assert (recipe.optimizer, recipe.lr, recipe.momentum, recipe.batch_size) == ("sgd", 0.05, 0.9, 128)
    assert recipe.describe() == "SGD (momentum 0.9), lr 0.05, batch 128, 10 steps"


def test_numpy_numbers_are_stored_as_python_numbers():
    recipe = Recipe(steps=np.int64(5), lr=np.float32(0.5), betas=[0.8, np.float64(0.9)])
    assert type(recipe.steps) is int and type(recipe.lr) is float and recipe.betas == (0.8, 0.9)


def test_constant_schedule_keeps_the_rate_and_warmup_ramps_it_linearly():
    recipe = Recipe(steps=10, warmup_steps=4)
    assert [recipe.lr_factor(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_cosine_schedule_falls_from_one_to_near_zero_along_half_a_cosine():
    recipe = Recipe(steps=8, schedule="cosine")
    expected = [0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)]
    assert [recipe.lr_factor(s) for s in range(8)] == pytest.approx(expected)
    assert recipe.lr_factor(0) == 1.0 and recipe.lr_factor(4) == pytest.approx(0.5)


def test_linear_schedule_after_warmup_falls_to_zero_at_the_end():
    recipe = Recipe(steps=6, schedule="linear", warmup_steps=2)
    assert [recipe.lr_factor(s) for s in range(6)] == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])


@pytest.mark.parametrize("optimizer, kind", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                             ("adamw", torch.optim.AdamW)])
def test_the_factory_makes_the_optimizer_the_recipe_names_with_its_settings(optimizer, kind):
    recipe = Recipe(steps=1, optimizer=optimizer, lr=0.3, weight_decay=0.01, betas=(0.8, 0.99), momentum=0.5)
    made = make_optimizer(recipe, [torch.zeros(2, requires_grad=True)])
    assert type(made) is kind
    group = made.param_groups[0]
    assert group["lr"] == 0.3 and group["weight_decay"] == 0.01
    assert group["momentum"] == 0.5 if optimizer == "sgd" else group["betas"] == (0.8, 0.99)
    assert make_optimizer(recipe, [torch.zeros(2, requires_grad=True)], lr=1.0).param_groups[0]["lr"] == 1.0


def test_recipes_of_nets_trained_together_may_differ_only_per_net():
    base = Recipe(steps=5)
    varied = [base, Recipe(steps=5, lr=0.1, clip_norm=1.0, normalise_per_layer=True)]
    assert check_recipes(varied, 2) == varied
    assert check_recipes(base, 3) == [base] * 3
    assert set(PER_NET) == {"lr", "clip_norm", "normalise_per_layer"}
    with pytest.raises(ValueError, match=r"recipe\[1\] differs from recipe\[0\] in momentum, steps"):
        check_recipes([base, Recipe(steps=6, momentum=0.5)], 2)
    with pytest.raises(ValueError, match="one Recipe per net"):
        check_recipes([base], 2)
    with pytest.raises(TypeError, match=r"recipe\[0\]"):
        check_recipes([{"steps": 5}], 1)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(steps=0), ValueError, "steps"), (dict(steps=2.0), TypeError, "steps"),
    (dict(batch_size=0), ValueError, "batch_size"), (dict(optimizer="lbfgs"), ValueError, "optimizer"),
    (dict(lr=0.0), ValueError, "lr"), (dict(lr=-1.0), ValueError, "lr"), (dict(lr=math.nan), ValueError, "lr"),
    (dict(lr=True), TypeError, "lr"), (dict(lr="0.1"), TypeError, "lr"),
    (dict(momentum=1.0), ValueError, "momentum"), (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(betas=(0.9,)), TypeError, "betas"), (dict(betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
    (dict(schedule="step"), ValueError, "schedule"), (dict(warmup_steps=10), ValueError, "warmup_steps"),
    (dict(clip_norm=0.0), ValueError, "clip_norm"), (dict(normalise_per_layer="yes"), TypeError, "normalise"),
])
def test_bad_settings_raise_naming_the_setting(kwargs, error, message):
    with pytest.raises(error, match=message):
        Recipe(**({"steps": 10} | kwargs))


def test_make_optimizer_rejects_what_is_not_a_recipe():
    with pytest.raises(TypeError, match="recipe"):
        make_optimizer({"lr": 0.1}, [torch.zeros(1, requires_grad=True)])


@pytest.mark.parametrize("recipe, line", [
    (Recipe(steps=300, optimizer="adam", lr=1e-3, betas=(0.8, 0.99), batch_size=64),
     "Adam (betas 0.8, 0.99), lr 0.001, batch 64, 300 steps"),
    (Recipe(steps=300, optimizer="adamw", weight_decay=0.01, schedule="cosine", warmup_steps=20),
     "AdamW (betas 0.9, 0.999), lr 0.05, batch 128, 300 steps, weight decay 0.01, "
     "cosine schedule after 20 warm-up steps"),
    (Recipe(steps=50, momentum=0.0, schedule="linear", clip_norm=1.0, normalise_per_layer=True),
     "SGD (momentum 0), lr 0.05, batch 128, 50 steps, linear schedule, gradients clipped to norm 1, "
     "per-layer normalised steps"),
    (Recipe(steps=50, warmup_steps=5), "SGD (momentum 0.9), lr 0.05, batch 128, 50 steps, "
                                       "constant schedule after 5 warm-up steps"),
])
def test_a_recipe_describes_itself_in_one_line_for_the_chapter_text(recipe, line):
    assert recipe.describe() == line


def test_every_numpy_setting_is_stored_as_a_python_number():
    recipe = Recipe(steps=np.int64(5), batch_size=np.int32(8), lr=np.float32(0.5), momentum=np.float32(0.5),
                    weight_decay=np.float64(0.1), warmup_steps=np.uint8(1), clip_norm=np.float32(2.0))
    for name in ("momentum", "weight_decay", "clip_norm"):
        assert type(getattr(recipe, name)) is float, name
    assert type(recipe.batch_size) is int and type(recipe.warmup_steps) is int


@pytest.mark.parametrize("settings, message", [
    (dict(momentum=1.0), r"^momentum must be in \[0, 1\), got 1.0$"),
    (dict(clip_norm=0.0), r"^clip_norm must be in \(0, inf\), got 0.0$"),
    (dict(batch_size=0), "^batch_size must be >= 1, got 0$"),
])
def test_a_setting_out_of_its_interval_is_refused_showing_the_interval(settings, message):
    with pytest.raises(ValueError, match=message):
        Recipe(steps=10, **settings)


def test_recipes_that_are_neither_one_nor_a_list_are_refused_naming_what_came():
    with pytest.raises(TypeError, match="^recipe must be a resbook.recipe.Recipe or one per net, got str$"):
        check_recipes("sgd", 2)


def test_the_optimizer_factory_names_a_recipe_that_is_not_one():
    with pytest.raises(TypeError, match="^recipe must be a resbook.recipe.Recipe, got str$"):
        make_optimizer("sgd", [torch.zeros(1, requires_grad=True)])
