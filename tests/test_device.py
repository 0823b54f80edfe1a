"""Facts about device choice, seeding and profiles."""
import random

import numpy as np
import pytest
import torch

from resbook.device import check_device, choose_device, on_one_thread, one_thread, seed_everything
from resbook.profile import PROFILES, get_profile


def test_environment_variable_overrides_the_device(monkeypatch):
    monkeypatch.setenv("RESBOOK_DEVICE", "cpu")
    assert choose_device() == torch.device("cpu")


def test_default_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("RESBOOK_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert choose_device().type == expected


def test_unknown_device_names_the_allowed_ones():
    with pytest.raises(ValueError, match="'cuda', 'mps', 'cpu'"):
        choose_device("tpu")


def test_seeding_repeats_the_same_random_numbers():
    seed_everything(5)
    first = torch.randn(3)
    seed_everything(5)
    assert torch.equal(first, torch.randn(3))


def test_profile_follows_the_device_unless_overridden(monkeypatch):
    monkeypatch.delenv("RESBOOK_PROFILE", raising=False)
    assert get_profile(device=torch.device("cpu")).name == "quick"
    assert get_profile(device=torch.device("cuda")).name == "full"
    monkeypatch.setenv("RESBOOK_PROFILE", "full")
    assert get_profile(device=torch.device("cpu")).name == "full"


def test_full_profile_runs_at_least_as_many_seeds_as_quick():
    assert PROFILES["full"].seeds >= PROFILES["quick"].seeds


def test_a_profile_picks_its_own_entry_of_a_modules_sizes():
    sizes = {"quick": 1, "full": 2}
    assert [PROFILES[name].pick(sizes) for name in ("quick", "full")] == [1, 2]
    with pytest.raises(ValueError, match="sizes"):
        PROFILES["quick"].pick({"quick": 1})


def test_a_bad_profile_in_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("RESBOOK_PROFILE", "huge")
    with pytest.raises(ValueError, match="RESBOOK_PROFILE"):
        get_profile()


def test_unknown_profile_names_the_allowed_ones():
    with pytest.raises(ValueError, match="'quick', 'full'"):
        get_profile("huge")


def test_seed_must_be_a_non_negative_int():
    with pytest.raises(TypeError, match="seed"):
        seed_everything(1.5)


def test_a_numpy_seed_seeds_like_the_same_python_int():
    seed_everything(np.arange(8)[7])
    first = (torch.randn(3), np.random.rand(2))
    seed_everything(7)
    assert torch.equal(first[0], torch.randn(3)) and np.array_equal(first[1], np.random.rand(2))


def test_the_environment_variable_wins_over_an_available_accelerator(monkeypatch):
    monkeypatch.setattr("resbook.device._available", lambda name: True)  # as on a machine with CUDA and MPS
    monkeypatch.delenv("RESBOOK_DEVICE", raising=False)
    assert choose_device() == torch.device("cuda")
    for name in ("cpu", "mps"):
        monkeypatch.setenv("RESBOOK_DEVICE", name)
        assert choose_device() == torch.device(name)


def test_a_device_in_the_environment_that_is_missing_is_refused(monkeypatch):
    monkeypatch.setattr("resbook.device._available", lambda name: name == "cpu")
    monkeypatch.setenv("RESBOOK_DEVICE", "cuda")
    with pytest.raises(ValueError, match="'cuda' was asked for"):
        choose_device()


def test_seeding_seeds_python_numpy_and_torch_as_their_own_seeders_do():
    seed_everything(11)
    drawn = (random.random(), np.random.rand(3), torch.rand(3))
    assert drawn[0] == random.Random(11).random()
    assert np.array_equal(drawn[1], np.random.RandomState(11).rand(3))
    assert torch.equal(drawn[2], torch.rand(3, generator=torch.Generator().manual_seed(11)))


# --- errors name the argument or the environment variable (issue 16, item 8) ----------------------

def test_a_bad_device_in_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("RESBOOK_DEVICE", "tpu")
    with pytest.raises(ValueError, match="the environment variable RESBOOK_DEVICE must be one of 'cuda', 'mps', 'cpu'"):
        choose_device()
    monkeypatch.setattr("resbook.device._available", lambda name: name == "cpu")
    monkeypatch.setenv("RESBOOK_DEVICE", "mps")
    with pytest.raises(ValueError, match="RESBOOK_DEVICE: device 'mps' was asked for but is not available"):
        choose_device()


def test_a_device_name_that_is_not_a_str_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="name must be a device name"):
        choose_device(torch.device("cpu"))


def test_a_profile_asked_for_a_device_string_is_a_type_error_naming_device_whatever_the_environment(monkeypatch):
    for environment in ("", "quick"):
        monkeypatch.setenv("RESBOOK_PROFILE", environment)
        with pytest.raises(TypeError, match="device must be a torch.device"):
            get_profile(device="cuda")
    with pytest.raises(TypeError, match="name must be a profile name"):
        get_profile(name=1)


def test_check_device_accepts_devices_and_their_names_and_refuses_the_rest(monkeypatch):
    from resbook.device import check_device

    assert check_device("device", "cpu") == check_device("device", torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr("resbook.device._available", lambda name: name == "cpu")
    for value, error, message in [("cuda:0", ValueError, "device: device 'cuda:0' is not available"),
                                  ("cpu:x", ValueError, "device must be one of"), ("meta", ValueError, "one of"),
                                  (None, TypeError, "device must be a torch.device or a str")]:
        with pytest.raises(error, match=message):
            check_device("device", value)


ALLOWED_DEVICES = "one of 'cuda', 'mps', 'cpu'"
PRESENT = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}


def test_asking_for_a_device_this_machine_lacks_is_refused():
    for name, present in PRESENT.items():
        if present:
            assert choose_device(name) == torch.device(name) == check_device("device", name)
        else:
            with pytest.raises(ValueError, match=f"^name: device '{name}' was asked for but is not available"):
                choose_device(name)
            with pytest.raises(ValueError, match=f"^device: device '{name}' is not available on this machine"):
                check_device("device", name)


def test_a_device_name_that_is_not_a_string_is_refused_naming_where_it_came_from():
    with pytest.raises(TypeError, match=f"^name must be a device name, {ALLOWED_DEVICES}; got int 3$"):
        choose_device(3)


@pytest.mark.parametrize("value", ["cpu", "cpu:0", torch.device("cpu")])
def test_check_device_takes_a_name_with_or_without_an_index_or_a_device(value):
    assert check_device("device", value) == torch.device(value)


@pytest.mark.parametrize("value", ["tpu", "not a device", "gpu:0"])
def test_check_device_refuses_an_unknown_device_naming_the_allowed_ones(value):
    with pytest.raises(ValueError, match=rf"^where must be {ALLOWED_DEVICES} \(optionally with an index, "
                                         rf"e\.g\. 'cuda:0'\), got '{value}'$"):
        check_device("where", value)


def test_check_device_refuses_what_is_neither_a_device_nor_a_string():
    with pytest.raises(TypeError, match="^where must be a torch.device or a str such as 'cpu', got int 0$"):
        check_device("where", 0)


def test_seed_zero_is_a_seed_like_any_other():
    seed_everything(0)
    assert torch.equal(torch.rand(2), torch.rand(2, generator=torch.Generator().manual_seed(0)))


def test_a_seed_beyond_numpys_32_bits_still_seeds_every_generator():
    # NumPy's legacy seeder takes seeds below 2**32: it gets the seed modulo 2**32, torch and Python the seed itself.
    seed = 2**32 + 7
    seed_everything(seed)
    drawn = (random.random(), np.random.rand(2), torch.rand(2))
    assert drawn[0] == random.Random(seed).random()
    assert np.array_equal(drawn[1], np.random.RandomState(7).rand(2))
    assert torch.equal(drawn[2], torch.rand(2, generator=torch.Generator().manual_seed(seed)))


def test_a_bad_seed_is_named_as_the_seed():
    with pytest.raises(ValueError, match="^seed must be >= 0, got -1$"):
        seed_everything(-1)


def test_with_nothing_asked_the_profile_follows_the_device_the_book_chose(monkeypatch):
    monkeypatch.delenv("RESBOOK_PROFILE", raising=False)
    for device, profile in (("cuda", "full"), ("cpu", "quick")):
        monkeypatch.setattr("resbook.profile.choose_device", lambda: torch.device(device))
        assert get_profile().name == profile


@pytest.mark.parametrize("ask, error, message", [
    (dict(name=1), TypeError, "^name must be a profile name, one of 'quick', 'full'; got int 1$"),
    (dict(name="huge"), ValueError, "^name must be one of 'quick', 'full'; got 'huge'$"),
    (dict(device="cuda"), TypeError,
     r"^device must be a torch.device \(e.g. resbook.device.choose_device\(\)\), got str 'cuda'$"),
])
def test_a_bad_profile_request_is_refused_with_the_whole_story(ask, error, message):
    with pytest.raises(error, match=message):
        get_profile(**ask)


def test_a_bad_profile_in_the_environment_is_named_as_the_environment_variable(monkeypatch):
    monkeypatch.setenv("RESBOOK_PROFILE", "huge")
    with pytest.raises(ValueError, match="^the environment variable RESBOOK_PROFILE must be one of 'quick', 'full'"):
        get_profile()


@pytest.mark.parametrize("sizes, shown", [({"quick": 1}, r"\['quick'\]"), ([1, 2], "list")])
def test_sizes_that_do_not_give_every_profile_its_entry_are_refused_showing_what_came(sizes, shown):
    message = rf"^sizes must map each profile \('quick', 'full'\) to its sizes, got {shown}$"
    with pytest.raises(ValueError, match=message):
        PROFILES["quick"].pick(sizes)


def test_on_one_thread_runs_on_one_thread_and_restores_the_callers_count_even_after_an_error():
    seen = []

    @on_one_thread
    def small_work(fail):
        seen.append(torch.get_num_threads())
        if fail:
            raise RuntimeError("boom")
        return "done"

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert small_work(False) == "done" and seen == [1]
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="boom"):
            small_work(True)
        assert torch.get_num_threads() == 2 and seen == [1, 1]
        assert small_work.__name__ == "small_work"
    finally:
        torch.set_num_threads(previous)
    with pytest.raises(TypeError, match="function"):
        on_one_thread(3)


def test_one_thread_block_runs_on_one_thread_and_restores_the_callers_count_even_after_an_error():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="boom"), one_thread():
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
