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
