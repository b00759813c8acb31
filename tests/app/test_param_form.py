"""Parameter forms built from params schemas: real defaults, scientific learning rates, optional numbers left to
their default, and values the user changed surviving a change of generator (issue 11 #3 and "switching the
generator resets every parameter")."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from guihelpers import create_project, drop_files, write_images
from pydantic import BaseModel, Field
from PySide6.QtCore import Qt

from app.widgets.param_form import INVALID_STYLE, NumberEdit, ParamForm, format_number


def _retype(qtbot: Any, editor: Any, text: str) -> None:
    """Select the field's text and type over it, as a user does."""
    editor.setFocus()
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    qtbot.keyClicks(editor, text)


def test_numbers_show_their_real_value() -> None:
    assert [format_number(v) for v in (1e-4, 1e-5, 9.0, 0.1 + 0.2, 16, 2.5e-7)] == [
        "0.0001", "1e-5", "9.0", "0.3", "16", "2.5e-7"]


def test_the_dreamvideo_subject_form_is_valid_as_it_opens_and_takes_1e_5(
        qtbot: Any, window: Any, installed_dreamvideo_weights: str, tmp_path: Path) -> None:
    session = create_project(qtbot, window, tmp_path, template=None)
    page = window.sidebar.subjects_page
    drop_files(page, write_images(tmp_path / "rex"))
    with qtbot.waitSignal(window.loader.catalog_loaded, timeout=10_000, check_params_cb=lambda k: k == "subjects"):
        qtbot.mouseClick(page.dialog.add_button, Qt.MouseButton.LeftButton)
    editor = window.editor
    assert editor.select_generator("dreamvideo.subject")
    form = editor.params

    # as it opens: no error; steps and rate are empty ("default": each step keeps its own), not 1 and 0.000
    assert form.validate() == {}
    steps, rate = form.editors["max_train_steps"], form.editors["learning_rate"]
    assert isinstance(rate, NumberEdit) and (steps.text(), rate.text()) == ("", "")
    assert steps.placeholderText() == rate.placeholderText() == "default"
    assert "their own" in rate.toolTip()
    qtbot.waitUntil(lambda: editor.queue_button.isEnabled())  # the new subject is chosen; nothing else is missing

    # each step's own form shows its real default learning rate
    assert editor.select_generator("dreamvideo.subject_step1")
    assert editor.params.editors["learning_rate"].text() == "0.0001"
    assert editor.select_generator("dreamvideo.subject_step2")
    assert editor.params.editors["learning_rate"].text() == "1e-5"
    assert editor.params.editors["max_train_steps"].value() == 1000

    # typed in scientific notation, and checked against the model's range
    rate = editor.params.editors["learning_rate"]
    _retype(qtbot, rate, "2e-5")
    assert editor.params.values()["learning_rate"] == 2e-5 and rate.styleSheet() == ""
    qtbot.keyClicks(rate, "x")  # letters never get in
    assert rate.text() == "2e-5"
    _retype(qtbot, rate, "1e-")  # half typed: marked, queueing blocked, nothing lost
    assert rate.styleSheet() == INVALID_STYLE and not editor.queue_button.isEnabled()
    _retype(qtbot, rate, "2")
    assert "less than or equal to 1" in editor.params.errors["learning_rate"]
    _retype(qtbot, rate, "3e-5")
    assert editor.queue_button.isEnabled()

    # the rate typed for step 2 carries over to the composite (same name and type); emptied, it is each step's own
    assert editor.select_generator("dreamvideo.subject")
    rate = editor.params.editors["learning_rate"]
    assert rate.text() == "3e-5"
    _retype(qtbot, rate, "")
    assert editor.queue_button.isEnabled()
    with qtbot.waitSignal(session.jobs_queued, timeout=30_000):
        qtbot.mouseClick(editor.queue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.loader.jobs.records()) == 2, timeout=10_000)
    jobs = sorted(window.loader.jobs.records(), key=lambda j: j.position)
    assert [(j.params["max_train_steps"], j.params["learning_rate"]) for j in jobs] == [(3000, 1e-4), (1000, 1e-5)]


def test_up_and_down_step_a_typed_number(qtbot: Any) -> None:
    class P(BaseModel):
        guidance_scale: float = Field(9.0, ge=0, le=50)
        max_train_steps: int | None = Field(None, ge=1)

    form = ParamForm()
    qtbot.addWidget(form)
    form.set_params_model(P)
    g = form.editors["guidance_scale"]
    for _ in range(3):
        qtbot.keyClick(g, Qt.Key.Key_Up)
    assert g.text() == "9.3"  # not 9.299999999999999
    steps = form.editors["max_train_steps"]
    assert form.values() == {"guidance_scale": 9.3}  # empty optional: left to the model's default
    qtbot.keyClicks(steps, "5")
    qtbot.keyClick(steps, Qt.Key.Key_Down)
    assert form.values()["max_train_steps"] == 4


def test_values_the_user_changed_survive_a_change_of_generator(qtbot: Any, window: Any, tmp_path: Path) -> None:
    create_project(qtbot, window, tmp_path)
    editor = window.editor
    frames = editor.params.editors["num_frames"]
    frames.setFocus()
    frames.selectAll()
    qtbot.keyClicks(frames, "8")
    _retype(qtbot, editor.params.editors["guidance_scale"], "12")
    assert editor.params.values()["num_frames"] == 8

    # TF-T2V shares both (same name, same type): kept; its own width (448) is not replaced by T2V's 256
    assert editor.select_generator("tf_t2v.t2v")
    values = editor.params.values()
    assert (values["num_frames"], values["guidance_scale"], values["width"]) == (8, 12.0, 448)
    # VideoLCM has no guidance; back on T2V it is still what the user typed
    assert editor.select_generator("videolcm.t2v")
    assert editor.params.values()["num_frames"] == 8 and "guidance_scale" not in editor.params.editors
    assert editor.select_generator("modelscope_t2v.t2v")
    assert editor.params.values()["guidance_scale"] == 12.0 and editor.params.values()["width"] == 256


def test_a_value_never_moves_into_a_field_of_another_type(qtbot: Any) -> None:
    class A(BaseModel):
        strength: float = 0.5
        mode: str = "a"

    class B(BaseModel):
        strength: str = "high"
        mode: str = "b"

    from app.widgets.job_editor import JobEditor
    from app.models.catalog_models import PromptListModel

    editor = JobEditor(PromptListModel())
    qtbot.addWidget(editor)
    editor._set_params_model(A)
    editor.params.set_values({"strength": 0.9, "mode": "mine"})
    editor._set_params_model(B)
    assert editor.params.values() == {"strength": "high", "mode": "mine"}
