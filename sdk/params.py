"""Parameter models and request parsing shared by every generator and trainer.

Names follow diffusers wherever it has one, so users meet names they already know.
"""
from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sdk.errors import InvalidRequest

MAX_SEED = 2**63 - 1


class Params(BaseModel):
    """Base of every params model: unknown keys are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class GenerateParams(Params):
    """Common text-to-video parameters (diffusers names)."""

    prompt: str = Field(min_length=1, description="What the video should show.")
    negative_prompt: str = Field("", description="What the video should not show (guidance pushes away from it).")
    num_frames: int = Field(16, ge=1, le=128, description="Number of frames.")
    height: int = Field(256, ge=8, le=2048, multiple_of=8, description="Frame height in pixels (multiple of 8).")
    width: int = Field(256, ge=8, le=2048, multiple_of=8, description="Frame width in pixels (multiple of 8).")
    num_inference_steps: int = Field(50, ge=1, le=1000, description="Denoising steps.")
    guidance_scale: float = Field(9.0, ge=0.0, le=50.0, description="Classifier-free guidance scale (≤1 turns it off).")
    fps: int = Field(8, ge=1, le=60, description="Frames per second of the written video.")

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class TrainParams(Params):
    """Common training parameters (names as in diffusers' training scripts)."""

    max_train_steps: int = Field(100, ge=1, le=1_000_000)
    learning_rate: float = Field(1e-4, gt=0.0, le=1.0)
    train_batch_size: int = Field(1, ge=1, le=256)
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    checkpointing_steps: int = Field(50, ge=1)
    validation_steps: int = Field(50, ge=1)
    lr_scheduler: str = Field("constant", pattern="^(constant|constant_with_warmup|linear|cosine)$")
    lr_warmup_steps: int = Field(0, ge=0)
    mixed_precision: str = Field("no", pattern="^(no|fp16|bf16)$")
    seed: int = Field(0, ge=0, le=MAX_SEED)


def parse_seeds(text: str | int | list[int] | None) -> list[int]:
    """Parse ``"1,2,5-8"`` into ``[1, 2, 5, 6, 7, 8]``; seeds are integers ≥ 0."""
    if text is None or text == "":
        return [0]
    if isinstance(text, int):
        items: list[str] = [str(text)]
    elif isinstance(text, list):
        items = [str(x) for x in text]
    else:
        items = [s.strip() for s in str(text).split(",") if s.strip()]
    seeds: list[int] = []
    for item in items:
        try:
            if item.startswith("-"):
                raise InvalidRequest(
                    f"Seed {item!r} is negative.", hint="Seeds are integers from 0 to 2**63-1, e.g. --seeds 1,2,5-8.",
                    field="seed",
                )
            if "-" in item:
                lo_s, hi_s = item.split("-", 1)
                lo, hi = int(lo_s), int(hi_s)
                if hi < lo:
                    raise InvalidRequest(f"Seed range {item!r} runs backwards.", hint=f"Write {hi}-{lo}.", field="seed")
                if hi - lo > 10_000:
                    raise InvalidRequest(f"Seed range {item!r} is too long.", hint="At most 10000 seeds a range.", field="seed")
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(item))
        except ValueError:
            raise InvalidRequest(
                f"Seed {item!r} is not an integer.", hint="Write seeds like 1,2,5-8.", field="seed"
            ) from None
    for s in seeds:
        if s > MAX_SEED:
            raise InvalidRequest(f"Seed {s} is too large.", hint="Seeds go up to 2**63-1.", field="seed")
    return list(dict.fromkeys(seeds))


def parse_param_assignments(items: list[str]) -> dict[str, list[Any]]:
    """Parse ``["guidance_scale=7,9", "num_frames=16"]`` into lists of values (each list a grid axis).

    Values are read as JSON where they parse (numbers, true/false), else kept as text.
    """
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidRequest(f"Parameter {item!r} is not KEY=VALUE.", hint="Write e.g. --param num_frames=16.", field="param")
        values = [_coerce(v.strip()) for v in raw.split(",")] if "," in raw and not raw.strip().startswith("\"") else [_coerce(raw.strip())]
        out.setdefault(key, []).extend(values)
    return out


def _coerce(raw: str) -> Any:
    if raw.lower() in ("nan", "inf", "-inf", "+inf"):
        return float(raw)
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def validate_params(model: type[BaseModel], values: dict[str, Any], *, spec_id: str = "") -> BaseModel:
    """Validate ``values`` against ``model``; the error names the field, the value and the fix."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "params"
        value = err.get("input")
        where = f" for {spec_id}" if spec_id else ""
        if err["type"] == "missing":
            msg = f"Parameter {field!r} is required{where}."
            hint = f"Give it, e.g. --param {field}=..." if field != "prompt" else "Give a prompt with --prompt TEXT."
        elif err["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields)
            msg = f"Unknown parameter {field!r}{where}."
            hint = f"Known parameters: {known}."
        else:
            msg = f"Parameter {field!r} has invalid value {value!r}{where}: {err['msg']}."
            hint = _hint_for(model, field)
        raise InvalidRequest(msg, hint=hint, field=field) from None


def _hint_for(model: type[BaseModel], field: str) -> str:
    info = model.model_fields.get(field)
    if info is None:
        return "See `vgen plugins list --json` for the parameter schema."
    schema = model.model_json_schema().get("properties", {}).get(field, {})
    parts = []
    for key, label in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"), ("multipleOf", "a multiple of")):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "enum" in schema:
        parts.append("one of " + ", ".join(map(str, schema["enum"])))
    if "pattern" in schema:
        parts.append(f"matching {schema['pattern']}")
    desc = f" ({info.description})" if info.description else ""
    if parts:
        return f"Use a value {' and '.join(parts)}{desc}; default {info.default!r}."
    return f"Default is {info.default!r}{desc}."


def params_schema(model: type[BaseModel]) -> dict[str, Any]:
    """JSON schema for GUI forms and ``--json`` listings."""
    return model.model_json_schema()
