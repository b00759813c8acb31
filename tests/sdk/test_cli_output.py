"""What the CLI prints from a project it was sent: crafted names and prompts never reach the terminal raw."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from sdk.cli import main as vgen
from sdk.project import Project
from sdk.records import NewJob

CLEAR_SCREEN = "\x1b[2J\x1b[H"


@pytest.fixture
def crafted(tmp_path: Path) -> Path:
    """A project whose rows were edited by someone else to hold terminal escape sequences."""
    img = tmp_path / "dog.png"
    Image.new("RGB", (64, 64), "white").save(img)
    with Project.create(tmp_path / "Sent.vgen") as p:
        p.add_subject("dog", [img])
        p.add_prompt("a dog")
        p.add_jobs([NewJob(kind="generate", spec_id="modelscope_t2v.t2v", params={}, seed=1, prompt="a dog")])
        with p._wengine.begin() as conn:
            conn.execute(text("UPDATE subjects SET name = :n, token = :n"), {"n": f"dog{CLEAR_SCREEN}"})
            conn.execute(text("UPDATE prompts SET text = :t"), {"t": f"a dog{CLEAR_SCREEN}\x07"})
            conn.execute(text("UPDATE jobs SET prompt = :t, spec_id = :s"),
                         {"t": f"a dog{CLEAR_SCREEN}", "s": f"x{CLEAR_SCREEN}"})
        return p.path


@pytest.mark.parametrize("command", [["subject", "list"], ["prompt", "list"], ["queue", "list"]])
def test_lists_escape_control_characters(crafted: Path, command: list[str], capsys: pytest.CaptureFixture) -> None:
    assert vgen([*command, str(crafted)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out  # shown, escaped, so the user can see what the row holds


def test_job_details_escape_control_characters(crafted: Path, capsys: pytest.CaptureFixture) -> None:
    with Project.open(crafted) as p:
        job = p.jobs()[0].id
    assert vgen(["jobs", "show", str(crafted), job]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2J" in out


@pytest.mark.parametrize("name", ["dog\x1b[2J", "dog\x00", "two\nlines", "x" * 201])
def test_names_with_control_characters_or_breaks_are_refused(tmp_path: Path, name: str) -> None:
    from sdk.errors import InvalidRequest

    img = tmp_path / "dog.png"
    Image.new("RGB", (64, 64), "white").save(img)
    with Project.create(tmp_path / "P.vgen") as p:
        with pytest.raises(InvalidRequest) as err:
            p.add_subject(name, [img])
        assert err.value.field == "name"
        with pytest.raises(InvalidRequest):
            p.add_prompt("a\x07dog")  # a prompt may span lines, but never ring the terminal's bell
        assert p.subjects() == [] and p.prompts() == []


def test_an_invalid_row_is_listed_as_invalid(crafted: Path, capsys: pytest.CaptureFixture) -> None:
    with Project.open(crafted) as p:
        with p._wengine.begin() as conn:
            conn.execute(text("UPDATE jobs SET params = '[1, 2]', seed = 'abc'"))
    assert vgen(["queue", "list", str(crafted)]) == 0
    out = capsys.readouterr().out
    assert "INVALID" in out and "the stored row is invalid" in out
