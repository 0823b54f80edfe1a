"""Facts about what every chapter does first."""
import pytest
import torch

from resbook.chapter import glue, setup


def test_setup_prints_device_and_profile_and_seeds(capsys, monkeypatch):
    monkeypatch.setenv("RESBOOK_DEVICE", "cpu")
    monkeypatch.setenv("RESBOOK_PROFILE", "quick")
    device, profile = setup(seed=3)
    first = torch.rand(2)
    setup(seed=3)
    assert torch.equal(first, torch.rand(2))
    line = capsys.readouterr().out.splitlines()[0]
    assert device.type == "cpu" and "device: cpu" in line and "profile: quick" in line


def test_glue_names_must_be_identifiers():
    with pytest.raises(ValueError, match="name"):
        glue("plain 56 loss", 1.0)


def test_numpy_and_torch_scalars_are_glued_as_python_numbers(monkeypatch):
    import sys
    import types

    import numpy as np

    glued = {}
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=False: glued.__setitem__(name, value)
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    glue("from_numpy", np.float64(0.25))
    glue("from_torch", torch.tensor(3))
    assert glued == {"from_numpy": 0.25, "from_torch": 3}
    assert type(glued["from_numpy"]) is float and format(glued["from_numpy"], ".2f") == "0.25"


@pytest.mark.parametrize("display", ["no", 0, None])
def test_glue_display_must_be_true_or_false(display):
    with pytest.raises(TypeError, match="display must be True or False"):
        glue("loss", 1.0, display=display)


def test_setup_refuses_a_bad_seed_before_printing_anything(capsys):
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        setup(seed=-1)
    assert capsys.readouterr().out == ""
