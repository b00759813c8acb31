"""Typed inputs: what a generator or trainer takes besides its params (DESIGN §4).

A spec declares its inputs as fields, e.g. ``inputs=(ImageRef("image", required=True), VideoRef("video"))``.
Each field class knows its whole path, so queueing, the service, the worker, the CLI and the GUI loop over the
declared fields and never ask "is this an image?":

=============== ============================== ================================== ===================================
field           what the user gives (queue)    stored in the job row              what the worker gets
=============== ============================== ================================== ===================================
``ImageRef``    an image file, or an asset id  the asset's sha256                 ``Path`` of the image
``VideoRef``    a video file, an asset id, or  the asset's sha256, or              :class:`VideoInput`
                (``accept_outputs``) a job id  ``{"output": job id}``
``OutputRef``   a job id (its output)          ``{"output": job id}``              :class:`VideoInput`
``SubjectRef``  a subject's name or id         the subject's id                   :class:`SubjectInput`
``MotionRef``   a motion's name or id          the motion's id                    :class:`MotionInput`
``AdapterRef``  an Adapter id, ``latest``,     the text given                     :class:`AdapterInput` or None
                ``none`` or a file
``ConditionRef`` a condition asset's id        the condition's asset sha256       :class:`ConditionInput`
=============== ============================== ================================== ===================================

A job whose input is another job's output waits for it (:meth:`InputField.depends_on`): ``queue list`` shows what it
waits for, and it runs once that job succeeded (it fails, or is cancelled, with it otherwise).

Nothing here imports torch; the ``*Input`` classes are what plugins receive in ``JobRequest.inputs``.
"""
from __future__ import annotations

from typing import Any

from sdk.inputs.base import InputField
from sdk.inputs.media import ImageRef, OutputRef, VideoRef
from sdk.inputs.refs import AdapterRef, ConditionRef, MotionRef, SubjectRef
from sdk.inputs.values import AdapterInput, ConditionInput, MotionInput, SubjectInput, VideoInput

__all__ = ["InputField", "ImageRef", "VideoRef", "OutputRef", "SubjectRef", "MotionRef", "AdapterRef", "ConditionRef",
           "SubjectInput", "MotionInput", "VideoInput", "AdapterInput", "ConditionInput", "LEGACY", "FIELD_TYPES",
           "normalize"]

LEGACY = {"image": ImageRef, "subject": SubjectRef, "motion": MotionRef, "video": VideoRef}
FIELD_TYPES: tuple[type[InputField], ...] = (ImageRef, VideoRef, OutputRef, SubjectRef, MotionRef, AdapterRef,
                                             ConditionRef)


def normalize(inputs: Any, required: Any) -> tuple[bool, tuple[InputField, ...]]:
    """A spec's declared inputs → (takes text?, fields). Strings are the legacy spelling: ``"text"`` (prompts)
    and the names in :data:`LEGACY`; ``required`` (legacy ``required_inputs``) marks those fields required.
    Raises ValueError for anything else."""
    takes_text = False
    out: list[InputField] = []
    for item in inputs or ():
        if item == "text":
            takes_text = True
        elif isinstance(item, str):
            if item not in LEGACY:
                raise ValueError(f"unknown input {item!r}; declare a typed field (ImageRef, VideoRef, …)")
            out.append(LEGACY[item](item, required=required is None or item in required))
        elif isinstance(item, InputField):
            out.append(item)
        else:
            raise ValueError(f"input {item!r} is neither a typed field nor a known name")
    names = [f.name for f in out]
    if len(set(names)) != len(names):
        raise ValueError(f"input names repeat: {', '.join(names)}")
    for f in out:
        f.check()
    return takes_text, tuple(out)
