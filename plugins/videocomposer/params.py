"""Parameters of the VideoComposer generators and the condition subsets they take (torch-free: the GUI builds forms
from the schema, the queue checks subsets against the inputs given).

``conditions`` is VGen's ``partial_keys`` (without the text key ``y``, which is always used): one subset of the
condition inputs given, written ``depth`` or ``sketch+local_image``; empty means every condition input given, and
``none`` means text (and style image) only. A list is a grid axis: ``--param conditions=depth,sketch,local_image``
renders the same prompt and seed under each subset, as VGen's released configs do.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Collection, Literal

from pydantic import Field, field_validator

from sdk.errors import InvalidRequest
from sdk.params import GenerateParams, Params

if TYPE_CHECKING:
    from sdk.project import Project

#: the condition inputs, in VGen's order of the UNet's sum; each is a ``ConditionRef`` input of that name whose
#: condition kind is the same name (``mask`` with ``video``: the frames under the mask make VGen's masked video)
CONDITION_INPUTS = ("depth", "local_image", "motion", "canny", "sketch", "single_sketch", "mask")
#: the UNet's name of each input's branch (VGen's model kwargs)
BRANCH_OF = {"depth": "depth", "local_image": "local_image", "motion": "motion", "canny": "canny",
             "sketch": "sketch", "single_sketch": "single_sketch", "mask": "masked"}
#: VGen's spelling of a few keys, accepted in ``conditions``
ALIASES = {"masked": "mask", "depthmap": "depth"}
NONE = "none"
#: the three subsets of VGen's released vcomposer configs (``partial_keys`` without ``y``)
VGEN_SUBSETS = ("depth", "sketch", "local_image")
#: VGen's default negative prompt (tools/modules/config.py): the unconditional text
DEFAULT_NEGATIVE = ("Distorted, discontinuous, Ugly, blurry, low resolution, motionless, static, disfigured, "
                    "disconnected limbs, Ugly faces, incomplete arms")
T2V_SUFFIX = ", cinematic, High Contrast, highly detailed, no blur, 4k render"  # tft2v_vcomposer_infer.yaml
LCM_SUFFIX = ", cinematic, High Contrast, highly detailed, Unreal Engine 5, no blur, 4k render"  # videolcm_vcomposer
_HINT = f"Write one subset as NAME+NAME (names: {', '.join(CONDITION_INPUTS)}), '{NONE}' for text only, or leave it " \
        "empty for every condition given; commas make a grid (--param conditions=depth,sketch+local_image)."


def parse_subset(text: str) -> tuple[str, ...] | None:
    """``"sketch+local_image"`` → ``("local_image", "sketch")`` (VGen's order); ``""`` → None (every condition
    given); ``"none"`` → ``()``. Raises ValueError naming an unknown or repeated name."""
    text = text.strip()
    if not text:
        return None
    if text.lower() == NONE:
        return ()
    names = [ALIASES.get(n.strip().lower(), n.strip().lower()) for n in text.split("+")]
    for n in names:
        if n not in CONDITION_INPUTS:
            raise ValueError(f"{n!r} is not a condition; known: {', '.join(CONDITION_INPUTS)} (or '{NONE}')")
    if len(set(names)) != len(names):
        raise ValueError(f"a condition repeats in {text!r}")
    return tuple(n for n in CONDITION_INPUTS if n in names)


def chosen_conditions(subset: str, given: Collection[str]) -> tuple[str, ...]:
    """The condition inputs a job uses: its subset, or every condition input ``given`` when the subset is empty."""
    parsed = parse_subset(subset)
    if parsed is None:
        return tuple(n for n in CONDITION_INPUTS if n in given)
    return parsed


class _Composition(Params):
    """What both generators share: the video, the condition subset and VGen's frame sampling of ``video``."""

    prompt: str = Field(min_length=1, description="What the video should show.")
    num_frames: int = Field(16, ge=1, le=128, description="Number of frames (16, or 32 as VGen's 32-frame config).")
    height: int = Field(256, ge=8, le=2048, multiple_of=8,
                        description="Frame height (256; 512 with the 896×512 weights).")
    width: int = Field(448, ge=8, le=2048, multiple_of=8,
                       description="Frame width (448; 896 with the 896×512 weights).")
    conditions: str = Field("", description="The condition subset to use (VGen's partial_keys): NAME+NAME out of the "
                                            "condition inputs given; empty: all of them; 'none': text only. "
                                            "A comma list is a grid axis.")
    sample_fps: int = Field(3, ge=1, le=60, description="Frames per second taken from the `video` input for the "
                                                        "masked-video condition (VGen: 3).")
    fps: int = Field(8, ge=1, le=60, description="Frames per second of the written video.")
    decode_chunk_size: int = Field(8, ge=1, le=128, description="Frames decoded by the VAE at a time.")

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("conditions")
    @classmethod
    def _known_subset(cls, value: str) -> str:
        parsed = parse_subset(value)  # stored in one spelling: VGen's order, "none" for text only
        return "" if parsed is None else "+".join(parsed) or NONE

    def check_inputs(self, given: Collection[str], project: "Project | None" = None) -> None:
        """Queue time: every condition of the subset has its input (``mask`` also the ``video`` under it). Raises
        InvalidRequest(field="conditions") naming the conditions given and those the project holds of that kind."""
        chosen = chosen_conditions(self.conditions, given)
        missing = [n for n in chosen if n not in given]
        if "mask" in chosen and "video" not in given:
            missing.append("video")
        if not missing:
            return
        have = [n for n in CONDITION_INPUTS if n in given] + (["video"] if "video" in given else [])
        extracted = []
        if project is not None:
            for n in missing:
                ids = [c.id[:8] for c in project.conditions(kind=n) if not c.problem] if n != "video" else []
                if ids:
                    extracted.append(f"{n}: {', '.join(ids[:5])}")
        where = f" The project holds {'; '.join(extracted)}." if extracted else ""
        raise InvalidRequest(
            f"The condition subset {self.conditions!r} needs {', '.join(missing)}, which this job was not given "
            f"(given: {', '.join(have) or 'no condition'}).{where}",
            hint="Give each with --input NAME=CONDITION_ID (`vgen conditions list`; extract one with `vgen conditions "
                 "extract`), the mask's source with --input video=MOTION, or choose a subset of what is given.",
            field="conditions")


class ComposerT2VParams(_Composition, GenerateParams):
    """``videocomposer.t2v``: the released tft2v_vcomposer configs (448×256, DDIM 50, guidance 9)."""

    negative_prompt: str = Field(DEFAULT_NEGATIVE, description="The unconditional text (VGen's default).")
    num_inference_steps: int = Field(50, ge=1, le=1000, description="DDIM steps (VGen's timestep list).")
    guidance_scale: float = Field(9.0, ge=0.0, le=50.0,
                                  description="Classifier-free guidance scale (≤1 turns it off); only text and style "
                                              "image differ between the two branches, as in VGen.")
    positive_suffix: str = Field(T2V_SUFFIX, description="Appended to the prompt, as the released configs do.")
    scheduler: Literal["ddim", "dpmpp", "euler"] = Field("ddim", description="Sampler: ddim (as VGen), dpmpp or euler.")


class ComposerLCMParams(_Composition):
    """``videocomposer.lcm``: the released videolcm_vcomposer config (4 LCM steps, no guidance)."""

    num_inference_steps: int = Field(4, ge=1, le=8, description="LCM steps (1–8; 4 as released).")
    positive_suffix: str = Field(LCM_SUFFIX, description="Appended to the prompt, as the released config does.")

