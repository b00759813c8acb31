"""Parameter models and request parsing shared by every generator and trainer.

Names follow diffusers wherever it has one, so users meet names they already know.
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sdk.errors import InvalidRequest
from sdk.safe_text import find_control

MAX_SEED = 2**63 - 1
#: The longest text any parameter (a prompt) may hold; the text encoder reads only 77 tokens of it anyway.
MAX_TEXT_CHARS = 10_000
#: Training steps of every VGen noise schedule; DDIM step counts that divide it give VGen's own timesteps.
TRAIN_TIMESTEPS = 1000


class Params(BaseModel):
    """Base of every params model: unknown keys are refused (a typo must not pass silently); text values are at
    most :data:`MAX_TEXT_CHARS` long and hold no control characters (tab and newline are fine).

    A model may define ``queue_warnings(self) -> list[str]``: things a user should know about these values, shown
    when the job is queued (it is queued anyway); and ``check_inputs(self, given: frozenset[str], project)``, called at
    queue time with the names of the inputs each job is given, raising InvalidRequest when these values need an
    input that is missing (a VideoComposer condition subset naming a condition not given)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            if len(value) > MAX_TEXT_CHARS:
                raise ValueError(f"it is {len(value):,} characters long; at most {MAX_TEXT_CHARS:,} are accepted")
            ch = find_control(value)
            if ch is not None:
                raise ValueError(f"it contains a control character ({unicodedata.name(ch, f'U+{ord(ch):04X}')}, "
                                 f"{ch!r})")
        return value


class VideoParams(Params):
    """The base of a generator that takes no prompt (image-to-video by motion only, an upscaler, a filter): the
    video it makes (diffusers names). Its typed inputs say what it works from."""

    num_frames: int = Field(16, ge=1, le=128, description="Number of frames.")
    height: int = Field(256, ge=8, le=2048, multiple_of=8, description="Frame height in pixels (multiple of 8).")
    width: int = Field(256, ge=8, le=2048, multiple_of=8, description="Frame width in pixels (multiple of 8).")
    fps: int = Field(8, ge=1, le=60, description="Frames per second of the written video.")


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

    def queue_warnings(self) -> list[str]:
        """A DDIM step count that does not divide 1000 gives other timesteps than VGen's own scripts
        (``sdk.ml.schedulers.set_timesteps``; docs/architecture.md, Weights)."""
        n = self.num_inference_steps
        if getattr(self, "scheduler", "ddim") != "ddim" or TRAIN_TIMESTEPS % n == 0:
            return []
        vgen = math.ceil(TRAIN_TIMESTEPS / max(1, TRAIN_TIMESTEPS // n))  # len(1 + arange(0, 1000, 1000 // n))
        return [f"{n} steps: VGen's own scripts would take {vgen} steps for this count; the output will differ "
                f"slightly from VGen's (see docs/architecture.md, num_inference_steps). Step counts that divide "
                f"{TRAIN_TIMESTEPS} (20, 25, 40, 50 …) match VGen exactly."]


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


_SEED_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")
_SEEDS_HINT = "Write seeds as integers from 0 to 2**63-1, separated by commas, with ranges as A-B: e.g. --seeds 1,2,5-8."


def parse_seeds(text: str | int | list[int] | None) -> list[int]:
    """Parse ``"1,2,5-8"`` into ``[1, 2, 5, 6, 7, 8]``; seeds are integers ≥ 0.

    None or ``""`` means ``[0]``. Anything malformed — an empty item (``1,,2``, ``1,``), a range without an end
    (``1-``), a word, a negative number — raises InvalidRequest(field="seed") naming it."""
    if text is None or text == "":
        return [0]
    if isinstance(text, bool):
        raise InvalidRequest(f"Seed {text!r} is not an integer.", hint=_SEEDS_HINT, field="seed")
    if isinstance(text, int):
        items: list[str] = [str(text)]
    elif isinstance(text, list):
        items = [str(x).strip() for x in text]
    else:
        items = [s.strip() for s in str(text).split(",")]
    seeds: list[int] = []
    for item in items:
        if not item:
            raise InvalidRequest(f"The seed list {str(text)!r} has an empty item.",
                                 hint="Remove the extra comma. " + _SEEDS_HINT, field="seed")
        try:
            if item.startswith("-") and item[1:].isdigit():
                raise InvalidRequest(
                    f"Seed {item!r} is negative.", hint="Seeds are integers from 0 to 2**63-1, e.g. --seeds 1,2,5-8.",
                    field="seed",
                )
            m = _SEED_ITEM.match(item)
            if m is None:
                if "-" in item:
                    raise InvalidRequest(f"Seed range {item!r} is not A-B.", hint=_SEEDS_HINT, field="seed")
                raise ValueError(item)
            if m.group(2) is not None:
                lo, hi = int(m.group(1)), int(m.group(2))
                if hi < lo:
                    raise InvalidRequest(f"Seed range {item!r} runs backwards.", hint=f"Write {hi}-{lo}.", field="seed")
                if hi - lo > 10_000:
                    raise InvalidRequest(f"Seed range {item!r} is too long.", hint="At most 10000 seeds a range.", field="seed")
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(m.group(1)))
        except ValueError:
            raise InvalidRequest(f"Seed {item[:40]!r} is not an integer.", hint=_SEEDS_HINT, field="seed") from None
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
            reason = str(err["msg"]).removeprefix("Value error, ")
            msg = f"Parameter {field!r} has invalid value {_short(value)}{where}: {reason}."
            if "control character" in reason:
                hint = "Remove it: prompts and other text take printable characters only (tab and newline are fine)."
            elif "characters long" in reason:
                hint = "Shorten it: the text encoder reads only the first 77 tokens (about 50 words) of a prompt."
            else:
                hint = _hint_for(model, field)
        raise InvalidRequest(msg, hint=hint, field=field) from None


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (a 100,000-character prompt must not flood the message)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(value) if isinstance(value, str) else len(text):,} characters)"


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
    default = "it has no default" if info.is_required() else f"default {info.default!r}"
    if parts:
        return f"Use a value {' and '.join(parts)}{desc}; {default}."
    return f"{default[0].upper()}{default[1:]}{desc}."


def params_schema(model: type[BaseModel]) -> dict[str, Any]:
    """JSON schema for GUI forms and ``--json`` listings."""
    return model.model_json_schema()
