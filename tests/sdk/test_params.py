from __future__ import annotations

import math

import pytest

from sdk.errors import InvalidRequest
from sdk.params import GenerateParams, parse_param_assignments, parse_seeds, validate_params


def test_seeds_parse_lists_and_ranges() -> None:
    assert parse_seeds("1,2,5-8") == [1, 2, 5, 6, 7, 8]
    assert parse_seeds(None) == [0]
    assert parse_seeds("3,3") == [3]


@pytest.mark.parametrize("text", ["-5", "x", "8-5", "1,,-2"])
def test_bad_seeds_are_refused_naming_the_value(text: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_seeds(text)
    assert err.value.field == "seed"
    assert err.value.hint


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
