"""Render small, then upscale the keepers (issue 13), on the tiny twins of HiGen and SR600 through the real worker:

- a project made from the ``text-to-720p`` template; ``vgen queue add --generator higen.t2v --then sr600.upscale``
  queues the render and its upscale, which waits for it; the upscale's output links back to its source (meta.json,
  ``vgen jobs show``) and the gallery shows the pair;
- "Upscale…" on the HiGen output shows the follow-up in the job editor (the output as its source, its prompt and
  seed), where its size is changed before it is queued; it renders and the gallery shows that pair too.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gallery_helpers import click, index_of
from guihelpers import create_project

from app.models.output_model import ChainRole
from sdk.cli import main as vgen
from sdk.outputs import read_frames

pytestmark = pytest.mark.slow
SMALL_HIGEN = ["height=32", "width=48", "num_inference_steps=2"]
SMALL_SR = {"height": 80, "width": 128, "num_inference_steps": 2, "total_noise_levels": 40}


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from plugins.higen.tiny import make_tiny_weights as higen_twin
    from plugins.sr600.tiny import make_tiny_weights as sr_twin

    root = tmp_path_factory.mktemp("t2-720p")
    return {"higen": higen_twin(root / "higen"), "sr600": sr_twin(root / "sr600")}


def test_a_render_is_upscaled_by_then_and_again_from_the_gallery(qtbot: Any, window: Any, tmp_path: Path,
                                                                 twins: dict[str, Path], capsys) -> None:
    from sdk import weights as w

    w.import_weights("sr600.sr600", twins["sr600"])  # the upscaler's default weights, as `vgen models import` does
    session = create_project(qtbot, window, tmp_path / "Clips.vgen", template="text-to-720p")
    project = session.project
    prompt = project.prompts()[0].text
    argv = ["queue", "add", str(project.path), "--generator", "higen.t2v", "--prompt", prompt, "--seeds", "3",
            "--weights", str(twins["higen"]), "--then", "sr600.upscale"]
    argv += [a for p in SMALL_HIGEN for a in ("--param", p)]
    argv += [a for k, v in SMALL_SR.items() for a in ("--then-param", f"{k}={v}")]
    assert vgen(argv) == 0, capsys.readouterr().err
    assert "Queued 2 job(s)" in capsys.readouterr().out
    render, upscale = sorted(project.jobs(), key=lambda j: j.spec_id)
    assert (render.spec_id, upscale.spec_id) == ("higen.t2v", "sr600.upscale")
    assert upscale.depends_on == (render.id,) and upscale.prompt == prompt and upscale.seed == 3

    window.queue_panel.start_action.trigger()
    qtbot.waitUntil(lambda: window.loader.outputs.rowCount() == 2, timeout=300_000)
    assert [project.job(j).status.value for j in (render.id, upscale.id)] == ["SUCCEEDED", "SUCCEEDED"]
    assert read_frames(project.output(render.id).dir).shape == (32, 32, 48, 3)
    assert read_frames(project.output(upscale.id).dir).shape == (32, 80, 128, 3)
    meta = json.loads((project.output(upscale.id).dir / "meta.json").read_text())
    assert meta["source"]["job_id"] == render.id and meta["source"]["spec_id"] == "higen.t2v"
    assert vgen(["jobs", "show", str(project.path), upscale.id]) == 0
    assert f"source: {render.id}" in capsys.readouterr().out

    window.tabs.setCurrentIndex(1)
    gallery = window.gallery
    qtbot.waitUntil(lambda: chain_text(gallery, upscale.id) == f"from {render.id[:8]}", timeout=20_000)
    assert index_of(gallery, render.id).data(ChainRole) == f"Upscale → {upscale.id[:8]}"

    # "Upscale…": the follow-up in the job editor, made smaller there, then queued from the editor
    click(qtbot, gallery, render.id)
    settings = gallery.chain.actions["Upscale…"]
    assert settings.isEnabled() and settings in gallery.menu.actions()
    settings.trigger()
    editor = window.editor
    qtbot.waitUntil(lambda: editor.spec is not None and editor.spec.id == "sr600.upscale", timeout=10_000)
    assert editor.request()["inputs"]["video"] == render.id
    assert "nothing was queued" in window.statusBar().currentMessage()
    editor.params.set_values(SMALL_SR)
    with qtbot.waitSignal(session.jobs_queued, timeout=20_000) as queued:
        assert editor.submit(start=True), editor.problems
    again = project.job(queued.args[0].job_ids[0])
    assert (again.spec_id, again.inputs, again.prompt, again.seed) == (
        "sr600.upscale", {"video": {"output": render.id}}, prompt, 3)
    qtbot.waitUntil(lambda: window.loader.outputs.rowCount() == 3, timeout=300_000)
    assert read_frames(project.output(again.id).dir).shape == (32, 80, 128, 3)
    qtbot.waitUntil(lambda: chain_text(gallery, again.id) == f"from {render.id[:8]}", timeout=20_000)


def chain_text(gallery: Any, job_id: str) -> str | None:
    """The tile's chain badge ("from JOB"), None while the output is not shown yet."""
    try:
        return index_of(gallery, job_id).data(ChainRole)
    except AssertionError:
        return None
