"""Every ``vgen …`` command that a message, hint or help text names exists, with the flags it names.

A hint that names a command the CLI does not have ("vgen project create") sends the user to a dead end; this reads
every string literal of sdk/, app/ and plugins/ (docstrings aside) and checks each mention against the real parser.
"""
from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

from sdk.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
#: where a command mention ends: a backtick, a quote, a bracket, a sentence or list break
_END = re.compile(r"[`'\"()\[\];\n]| or |, |\. |\.$")
_MENTION = re.compile(r"(?<![\w.-])vgen ([A-Za-z][^`]*)")


def _strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal in ``path`` except docstrings; f-string fields read as ``X``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
            out.append((node.lineno, text))
            for v in node.values:  # the parts were collected above, as one string
                docstrings.add(id(v))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.append((node.lineno, node.value))
    return out


def _mentions() -> list[tuple[str, str]]:
    found = []
    for package in ("sdk", "app", "plugins"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, text in _strings(path):
                for m in _MENTION.finditer(text):
                    command = _END.split(m.group(1), maxsplit=1)[0].strip()
                    found.append((f"{path.relative_to(ROOT)}:{line}", command))
    return found


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def check_mention(command: str) -> str | None:
    """None when ``command`` (what follows ``vgen``) names a real command and only its real flags, else why not."""
    parser = build_parser()
    words = command.split()
    path = ["vgen"]
    while words and (subs := _subcommands(parser)):
        word = words[0]
        if word not in subs:
            return f"`{' '.join(path)}` has no command {word!r} (it has: {', '.join(sorted(subs))})"
        parser, path = subs[word], path + [words.pop(0)]
    if _subcommands(parser):
        return f"`{' '.join(path)}` is a group, not a command (its commands: {', '.join(sorted(_subcommands(parser)))})"
    flags = {o for a in parser._actions for o in a.option_strings}
    for word in words:
        if word.startswith("--"):
            flag = word.split("=", 1)[0].rstrip(".,:")
            if flag not in flags:
                return f"`{' '.join(path)}` has no option {flag} (it has: {', '.join(sorted(flags))})"
    return None


def test_the_checker_catches_a_missing_command_and_a_missing_flag() -> None:
    assert "has no command 'create'" in check_mention("project create")
    assert "has no option --gpu" in check_mention("queue run PROJECT --gpu")
    assert check_mention("project new Fitness.vgen --template demo") is None
    assert check_mention("models make-tiny ID DIR") is None
    assert "is a group" in check_mention("jobs")


def test_the_scan_finds_the_hints() -> None:
    commands = {c for _, c in _mentions()}
    # hints from several layers: store, weights, the CLI itself
    assert {"queue clear", "doctor", "plugins list"} <= {" ".join(c.split()[:2]) for c in commands}
    assert any(c.startswith("models fetch") for c in commands)


@pytest.mark.parametrize("where,command", _mentions())
def test_every_vgen_command_named_in_a_message_exists(where: str, command: str) -> None:
    problem = check_mention(command)
    assert problem is None, f"{where}: `vgen {command}`: {problem}"


def test_queue_clear_the_hints_name_removes_failed_and_cancelled_jobs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from sdk.cli import main as vgen
    from sdk.project import Project
    from sdk.records import NewJob

    path = tmp_path / "Clear.vgen"
    assert vgen(["project", "new", str(path)]) == 0
    with Project.open(path) as p:
        batch = p.add_jobs([NewJob(kind="generate", spec_id="x.y", spec_version="1", params={}, seed=s, prompt="a",
                                   inputs={}, weights=None) for s in (1, 2)])
        p.request_cancel(batch.job_ids[0])
    assert vgen(["queue", "clear", str(path)]) == 0
    assert "Removed 1 failed or cancelled job(s)" in capsys.readouterr().out
    with Project.open(path) as p:
        assert [j.id for j in p.jobs()] == [batch.job_ids[1]]  # the queued one stays
