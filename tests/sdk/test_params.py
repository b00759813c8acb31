from __future__ import annotations

import math

import pytest

from sdk.errors import InvalidRequest
from sdk.params import GenerateParams, parse_param_assignments, parse_seeds, validate_params


def test_seeds_parse_lists_and_ranges() -> None:
    assert parse_seeds("1,2,5-8") == [1, 2, 5, 6, 7, 8]
    assert parse_seeds(None) == [0]
    assert parse_seeds("3,3") == [3]


@pytest.mark.parametrize("text", ["-5", "x", "8-5", "1,,-2", "1,,2", "1,", ",", "1-", "a", "1-x", "--3", "1.5", "0x10"])
def test_bad_seeds_are_refused_naming_the_value(text: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_seeds(text)
    assert err.value.field == "seed"
    assert err.value.hint


def test_an_empty_item_in_a_seed_list_is_named() -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_seeds("1,,2")
    assert "'1,,2' has an empty item" in err.value.user_message and "extra comma" in err.value.hint
    with pytest.raises(InvalidRequest, match="'1-' is not A-B"):
        parse_seeds("1-")
    assert parse_seeds(" 2 , 4-5 ") == [2, 4, 5]  # spaces around items are fine


@pytest.mark.parametrize(("values", "needle"), [
    ({"prompt": "a cat\x00"}, "control character"), ({"prompt": "ok", "negative_prompt": "\x1b[31mred"}, "control"),
    ({"prompt": "x" * 10_001}, "10,001 characters long"),
])
def test_text_params_hold_printable_text_of_sane_length(values: dict, needle: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        validate_params(GenerateParams, values)
    assert needle in err.value.user_message and len(err.value.user_message) < 300
    assert validate_params(GenerateParams, {"prompt": "two\nlines\tand a tab"}).prompt == "two\nlines\tand a tab"


@pytest.mark.parametrize(("steps", "vgen"), [(30, 31), (7, 8), (300, 334), (999, 1000)])
def test_ddim_step_counts_that_do_not_divide_1000_say_what_vgen_would_do(steps: int, vgen: int) -> None:
    from sdk.ml.schedulers import vgen_timesteps  # the count the warning names: the length of VGen's own list

    assert len(vgen_timesteps(steps)) == vgen
    [warning] = GenerateParams(prompt="a", num_inference_steps=steps).queue_warnings()
    assert warning.startswith(f"{steps} steps: VGen's own scripts would take {vgen} steps for this count")
    for ok in (1, 20, 25, 40, 50, 1000):
        assert GenerateParams(prompt="a", num_inference_steps=ok).queue_warnings() == []


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [("num_frames", 0, "≥ 1"), ("width", 37, "multiple of 8"), ("num_inference_steps", -1, "≥ 1"),
     ("guidance_scale", math.nan, "finite")],
)
def test_out_of_range_params_name_field_value_and_fix(field: str, value: object, needle: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        validate_params(GenerateParams, {"prompt": "a cat", field: value})
    e = err.value
    assert e.field == field
    assert field in e.user_message and repr(value) in e.user_message
    assert needle in e.user_message + e.hint


def test_unknown_param_lists_known_ones() -> None:
    with pytest.raises(InvalidRequest) as err:
        validate_params(GenerateParams, {"prompt": "a", "num_frame": 8})
    assert "num_frames" in err.value.hint


def test_param_assignments_make_grid_axes() -> None:
    assert parse_param_assignments(["guidance_scale=7,9", "num_frames=8", "negative_prompt=ugly"]) == {
        "guidance_scale": [7, 9], "num_frames": [8], "negative_prompt": ["ugly"]}
    with pytest.raises(InvalidRequest):
        parse_param_assignments(["oops"])
