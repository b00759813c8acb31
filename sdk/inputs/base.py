"""The base of every typed input field (:class:`InputField`) and what the field types share."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sdk.errors import InvalidRequest

if TYPE_CHECKING:
    from sdk.project import Project

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: a job id or a prefix of one (4 to 12 hexadecimal characters)
JOB_ID_RE = re.compile(r"^[0-9a-f]{4,12}$")


@dataclass(frozen=True)
class InputField:
    """One declared input. ``name`` is how the CLI (``--input NAME=VALUE``), the GUI and ``JobRequest.inputs``
    name it; ``required`` inputs must be given; ``description`` is shown as help."""

    name: str
    required: bool = False
    description: str = ""
    kind: ClassVar[str] = "input"
    #: what the CLI's help says a value looks like
    value_help: ClassVar[str] = "VALUE"

    def check(self) -> None:
        """Raise ValueError when the declaration itself is wrong (the plugin fails to load with the reason)."""
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(f"input name {self.name!r} must be a lowercase identifier (a-z, 0-9, _)")

    # queue time (any process) --------------------------------------------------------------------------------
    def parse(self, project: "Project", value: Any, *, deferred: list[Any]) -> Any:
        """What the user gave → the JSON stored in the job row. Raises InvalidRequest naming the field.
        Files to import are checked here but not imported: a callable returning ``(sha256, newly added)`` is
        appended to ``deferred`` and returned in place of the value; the caller runs it once the whole batch
        passed and stores the hash (so a batch refused later leaves no asset behind)."""
        raise NotImplementedError

    @property
    def takes_outputs(self) -> bool:
        """True when the field takes an earlier job's output (by job id): where a follow-up's source goes."""
        return False

    def depends_on(self, stored: Any) -> str | None:
        """The id of the job whose output this value is (the job then waits for it), or None."""
        return None

    def describe(self, stored: Any) -> str:
        """A short human text for lists (``queue list``, the GUI)."""
        return str(stored)

    # run time (the service) ------------------------------------------------------------------------------------
    def resolve(self, project: "Project", stored: Any, *, job: Any = None) -> tuple[Any, Any]:
        """The stored value → (what the worker gets, as JSON; what the recipe records). Raises InvalidRequest
        naming the field and the path when the input is gone (the job fails, nothing else)."""
        raise NotImplementedError

    # the worker ------------------------------------------------------------------------------------------------
    def materialize(self, data: Any) -> Any:
        """The worker's JSON → the object the plugin gets."""
        return data

    # re-queue ----------------------------------------------------------------------------------------------------
    def from_recipe(self, project: "Project", recorded: Any) -> Any:
        """A recipe's record of this input → a value :meth:`parse` takes again (None if it cannot be found)."""
        return recorded


def accepts_outputs(fld: Any) -> bool:
    """True when ``fld`` takes an earlier job's output (an ``OutputRef``, a ``VideoRef(accept_outputs=True)``)."""
    return bool(getattr(fld, "takes_outputs", False))


def _missing(fld: InputField, what: str, hint: str) -> InvalidRequest:
    return InvalidRequest(f"Input {fld.name!r}: {what}.", hint=hint, field=fld.name)
