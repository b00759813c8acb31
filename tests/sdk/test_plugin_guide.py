"""docs/plugins.md's worked example, built from the guide's own code blocks as a stranger would build it: its files are
the blocks tagged ``title="..."``. It is installed with pip as a distribution into a temporary site dir — nothing in
this checkout changes, so adding a method is a plugin-only change — then listed by ``vgen plugins list``, rendered
by the real worker through the guide's CLI session and its script, and run through its own contract suite."""
from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdk.outputs import read_frames
from sdk.project import Project
from sdk.records import JobStatus
from sdk.testing.install import install_plugin

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "plugins.md"
PLUGIN = "vgen-crossfade"
FENCE = re.compile(r'^```(\w*)(?:[ \t]+title="([^"]+)")?[ \t]*\n(.*?)^```[ \t]*$', re.M | re.S)
PHOTO, SKY = (220, 30, 30), (40, 90, 230)
HEAVY = ("torch", "diffusers", "transformers", "open_clip")


def guide_blocks() -> list[tuple[str, str | None, str]]:
    """(language, title, text) of every fenced block of the guide."""
    return [(m.group(1), m.group(2), m.group(3)) for m in FENCE.finditer(GUIDE.read_text(encoding="utf-8"))]


@dataclass
class Example:
    work: Path  # the reader's folder: the plugin's folder, the scripts, photo.png and sky.png
    site: Path  # where the plugin is installed
    bin: Path  # a `vgen` command for this checkout
    installed_by: str

    def run(self, args: list[str], *, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
        paths = [str(self.site), str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths),
               "PATH": os.pathsep.join([str(self.bin), os.environ.get("PATH", "")])}
        return subprocess.run(args, cwd=cwd or self.work, env=env, capture_output=True, text=True, timeout=timeout)


def _install(src: Path, site: Path) -> str:
    """``pip install`` the plugin's folder into ``site`` (no network, no build isolation: this environment's
    setuptools builds it). Where that setuptools is older than the guide's pyproject asks, the same distribution is
    written by :func:`sdk.testing.install.install_plugin` from that pyproject's name, version and entry points."""
    project = tomllib.loads((src / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = re.search(r"setuptools>=(\d+)", " ".join(project["build-system"]["requires"]))
    try:
        have = int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        have = 0
    if have >= (int(wanted.group(1)) if wanted else 0):
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                               "--no-index", "--quiet", "--target", str(site), str(src)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return "pip"
    packages = project["tool"]["setuptools"]["packages"]
    files = {str(f.relative_to(src)): f.read_text(encoding="utf-8")
             for pkg in packages for f in (src / pkg).rglob("*.py")}
    install_plugin(site, project["project"]["name"], files, project["project"]["entry-points"]["vgen_studio"],
                   version=project["project"]["version"])
    return "install_plugin"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Example:
    work = tmp_path_factory.mktemp("reader")
    for _lang, title, text in guide_blocks():
        if title:
            target = work / title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    bin_dir = work.parent / (work.name + "-bin")
    bin_dir.mkdir()
    (bin_dir / "vgen").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m sdk.cli "$@"\n')
    (bin_dir / "vgen").chmod(0o755)
    site = work.parent / (work.name + "-site")
    how = _install(work / PLUGIN, site)
    Image.new("RGB", (320, 240), PHOTO).save(work / "photo.png")
    Image.new("RGB", (320, 240), SKY).save(work / "sky.png")
    return Example(work, site, bin_dir, how)


def test_the_guide_holds_the_whole_plugin_and_it_installs_as_a_distribution(example: Example) -> None:
    blocks = guide_blocks()
    titled = {title: text for _, title, text in blocks if title}
    assert {f"{PLUGIN}/pyproject.toml", f"{PLUGIN}/vgen_crossfade/__init__.py", f"{PLUGIN}/vgen_crossfade/params.py",
            f"{PLUGIN}/vgen_crossfade/hooks.py", f"{PLUGIN}/vgen_crossfade/generator.py",
            f"{PLUGIN}/tests/test_contract.py", "install.sh", "try-it.sh", "cut_to_sky.py"} <= set(titled)
    # what this test does in their place: pip install (into a site dir) here, pytest in the contract test
    assert titled["install.sh"].splitlines() == ["pip install -e ./vgen-crossfade",
                                                 "cd vgen-crossfade && pytest && cd .."]
    # every other snippet that looks runnable says it is a fragment
    loose = [text for lang, title, text in blocks if not title and lang in ("python", "toml", "bash", "sh")]
    assert loose and all("fragment" in text.splitlines()[0] for text in loose), [t.splitlines()[0] for t in loose]
    dist_info = list(example.site.glob("vgen_crossfade-0.1.0.dist-info"))
    assert dist_info and "crossfade = vgen_crossfade.hooks" in (dist_info[0] / "entry_points.txt").read_text()
    # the hooks and params are torch-free: listing and validating never load torch
    probe = example.run([sys.executable, "-c", "import sys; from sdk.plugins import load_plugins; r = load_plugins(); "
                         "print(r.plugins['crossfade'].error, sorted(r.generators['crossfade.fade'].params."
                         f"model_fields), [m for m in {HEAVY!r} if m in sys.modules])"])
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split("\n")[0] == ("None ['fade_from', 'fade_to', 'fps', 'grain', 'height', 'num_frames', "
                                           "'width'] []")


def test_vgen_plugins_list_shows_it_as_the_guide_says(example: Example) -> None:
    listed = example.run(["vgen", "plugins", "list"])
    assert listed.returncode == 0, listed.stderr
    shown = next(text for lang, _, text in guide_blocks()
                 if lang == "console" and text.startswith("$ vgen plugins list"))
    expected = [line for line in shown.splitlines()[1:] if line.strip() not in ("", "…")]
    assert expected and all(line in listed.stdout.splitlines() for line in expected), listed.stdout
    block = listed.stdout.split("crossfade 0.1.0")[1].split("\n", 2)
    assert "LOAD ERROR" not in "".join(block[:2])


def test_the_guides_session_and_script_render_through_the_worker(example: Example) -> None:
    # the CLI session: a project, one job, the real worker (a subprocess importing the installed plugin)
    session = example.run(["bash", "-e", "try-it.sh"])
    assert session.returncode == 0, session.stdout + session.stderr
    assert "Done: 1 succeeded, 0 failed, 0 cancelled." in session.stdout
    with Project.open(example.work / "Fades.vgen") as project:
        (job,) = project.jobs()
        assert job.status is JobStatus.SUCCEEDED and job.spec_id == "crossfade.fade" and job.prompt in ("", None)
        frames = read_frames(project.output(job.id).dir)
    assert frames.shape == (8, 256, 256, 3)  # VideoParams' default size, the 8 frames asked for
    assert frames[0].max() <= 1, "no video given: it fades in from black"
    assert np.abs(frames[-1].astype(int) - PHOTO).max() <= 1, "and ends on the photo"

    # the script: the second job takes the first one's output as its video, so it waits for it
    script = example.run([sys.executable, "cut_to_sky.py"])
    assert script.returncode == 0, script.stdout + script.stderr
    with Project.open(example.work / "Sky.vgen") as project:
        fade_in, to_sky = sorted(project.jobs(), key=lambda j: len(j.depends_on))
        assert to_sky.depends_on == (fade_in.id,)
        assert f"{to_sky.id} waits for ['{fade_in.id}']" in script.stdout
        assert fade_in.status is JobStatus.SUCCEEDED and to_sky.status is JobStatus.SUCCEEDED
        out = project.output(to_sky.id)
        frames = read_frames(out.dir)
        recipe = out.meta_path.read_text()
    assert f'"output": "{fade_in.id}"' in recipe, "the output's recipe names the output it was made from"
    assert frames.shape == (8, 256, 256, 3)
    assert frames[0].mean() < 6, "it starts on the first job's first frame (black, with grain)"
    assert np.abs(frames[-1].reshape(-1, 3).mean(axis=0) - SKY).max() < 1.5, "it ends on the sky"
    assert frames[-1].std() > 3, "with seeded film grain"


def test_the_example_passes_its_contract_suite(example: Example) -> None:
    run = example.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=example.work / PLUGIN)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "passed" in summary and "failed" not in summary and "error" not in summary
    assert "2 skipped" in summary, "weight-free: only the two weights checks are skipped"
