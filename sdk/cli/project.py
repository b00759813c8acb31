"""``vgen project|subject|motion|prompt``: a project and what it holds."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sdk.cli._common import _p, cmd, group, open_project, print_json


def cmd_project_new(a: argparse.Namespace) -> int:
    from sdk.project import Project

    p = Project.create(a.path, template=a.template)
    print(f"Created project {_p(p.name)!r} at {_p(p.path)}")
    return 0


def cmd_project_info(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        info = p.info()
    if a.json:
        print_json(info)
    else:
        for k, v in info.items():
            print(f"{k:>14}: {_p(v)}")
    return 0


def cmd_project_templates(a: argparse.Namespace) -> int:
    from sdk.project import list_templates

    for t in list_templates():
        print(f"{t['name']:<24} {t.get('title', '')} — {t.get('description', '')}")
    return 0


def cmd_subject_add(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        s = p.add_subject(a.name, [Path(i) for i in a.images], token=a.token,
                          masks=[Path(m) for m in a.mask] if a.mask else None)
    print(f"Added subject {_p(s.name)!r} (token {_p(s.token)}) with {len(s.images)} image(s)")
    return 0


def cmd_subject_list(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        subjects = p.subjects()
    if a.json:
        print_json([{"id": s.id, "name": s.name, "token": s.token, "images": [str(i.asset.path) for i in s.images],
                      "masks": [str(i.mask.path) if i.mask else None for i in s.images]} for s in subjects])
    else:
        for s in subjects:
            masks = sum(1 for i in s.images if i.mask)
            print(f"{_p(s.name):<20} {_p(s.token):<16} {len(s.images)} image(s){f', {masks} mask(s)' if masks else ''}")
    return 0


def cmd_motion_add(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        m = p.add_motion(a.name, [Path(v) for v in a.videos])
    print(f"Added motion {_p(m.name)!r} with {len(m.videos)} video(s)")
    return 0


def cmd_motion_list(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        motions = p.motions()
    if a.json:
        print_json([{"id": m.id, "name": m.name, "videos": [str(v.path) for v in m.videos]} for m in motions])
    else:
        for m in motions:
            frames = ", ".join(f"{v.num_frames} frames" for v in m.videos)
            print(f"{_p(m.name):<20} {len(m.videos)} video(s): {frames}")
    return 0


def cmd_prompt_add(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        pr = p.add_prompt(a.text, negative=a.negative or "")
    print(f"Added prompt #{pr.id}")
    return 0


def cmd_prompt_list(a: argparse.Namespace) -> int:
    with open_project(a.path) as p:
        prompts = p.prompts()
    if a.json:
        print_json([pr.__dict__ for pr in prompts])
    else:
        for pr in prompts:
            neg = f"   (negative: {_p(pr.negative)})" if pr.negative else ""
            print(f"#{pr.id:<4} {_p(pr.text)}{neg}")
    return 0


def register(sub: Any) -> None:
    g = group(sub, "project", "create and inspect projects")
    c = cmd(g, "new", cmd_project_new, "create a project folder")
    c.add_argument("path"); c.add_argument("--template", default=None, help="a template name (see `vgen project templates`)")
    c = cmd(g, "info", cmd_project_info, "show a project's contents")
    c.add_argument("path"); c.add_argument("--json", action="store_true")
    cmd(g, "templates", cmd_project_templates, "list project templates")

    g = group(sub, "subject", "subjects: reference images of who/what should appear")
    c = cmd(g, "add", cmd_subject_add, "add a subject from images")
    c.add_argument("path"); c.add_argument("name"); c.add_argument("images", nargs="+")
    c.add_argument("--token", default=None, help="placeholder token used in prompts, default <name>")
    c.add_argument("--mask", nargs="+", default=None, help="one mask image per image")
    c = cmd(g, "list", cmd_subject_list, "list subjects")
    c.add_argument("path"); c.add_argument("--json", action="store_true")

    g = group(sub, "motion", "motions: reference videos of how it should move")
    c = cmd(g, "add", cmd_motion_add, "add a motion from videos")
    c.add_argument("path"); c.add_argument("name"); c.add_argument("videos", nargs="+")
    c = cmd(g, "list", cmd_motion_list, "list motions")
    c.add_argument("path"); c.add_argument("--json", action="store_true")

    g = group(sub, "prompt", "the project's prompts")
    c = cmd(g, "add", cmd_prompt_add, "add a prompt")
    c.add_argument("path"); c.add_argument("text"); c.add_argument("--negative", default="")
    c = cmd(g, "list", cmd_prompt_list, "list prompts")
    c.add_argument("path"); c.add_argument("--json", action="store_true")
