"""Every item model passes qtmodeltester, with rows, after diff updates, and through its proxy."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt

import app  # noqa: F401  (applies the PySide6 reference-count fix first)
from app.models.base import RecordRole
from app.models.catalog_models import (AdapterListModel, MotionListModel, PromptListModel, SubjectImagesModel,
                                       SubjectListModel, TextFilterProxy)
from app.models.output_model import GalleryItem, OutputFilterProxy, OutputListModel
from app.models.queue_model import JobFilterProxy, JobTableModel, ProgressRole, StatusRole, WaitingRole
from sdk.records import (AdapterRecord, AssetRecord, JobRecord, JobStatus, MotionRecord, OutputRecord, PromptRecord,
                         SubjectImageRecord, SubjectRecord)

REPO = Path(__file__).resolve().parents[2]


def job(i: int, status: JobStatus = JobStatus.QUEUED, **kw: Any) -> JobRecord:
    base = dict(id=f"job{i}", batch_id="b1" if i < 3 else "b2", kind="generate", spec_id="modelscope_t2v.t2v",
                spec_version="1", params={"num_frames": 4}, seed=i, prompt=["", "red fox", "paper boat", "cloud lake", "snow owl"][i], inputs={}, weights=None,
                status=status, position=i, attempts=0, created_at=time.time())
    base.update(kw)
    return JobRecord(**base)


def asset(name: str, tmp_path: Path) -> AssetRecord:
    return AssetRecord(hash=name * 8, kind="image", path=tmp_path / f"{name}.png", original_name=f"{name}.png",
                       width=32, height=32)


def test_job_model_and_proxy(qtmodeltester: Any) -> None:
    model = JobTableModel()
    model.set_records([job(1, JobStatus.RUNNING, started_at=time.time() - 5), job(2), job(3, JobStatus.FAILED,
                       error_message="boom", error_traceback="Traceback…")])
    model.update_progress("job1", 3, 10, 12.0)
    qtmodeltester.check(model)
    proxy = JobFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_filter_text("paper boa")
    assert proxy.rowCount() == 1
    qtmodeltester.check(proxy)
    proxy.set_filter_text("failed")
    assert proxy.rowCount() == 1 and proxy.index(0, JobTableModel.STATUS).data() == "Failed"
    assert model.index(0, JobTableModel.PROGRESS).data() == "3/10"
    assert model.index(0, JobTableModel.PROGRESS).data(ProgressRole) == 30
    assert model.index(0, JobTableModel.ETA).data() in ("12s", "11s")
    assert model.index(2, JobTableModel.STATUS).data() == "Failed"


def test_diff_updates_keep_the_selection_on_the_same_job(qtbot: Any, qtmodeltester: Any) -> None:
    from PySide6.QtWidgets import QTableView

    model = JobTableModel()
    qtmodeltester.check(model, force_py=True)  # stays attached: checks every change below
    model.set_records([job(1), job(2), job(3)])
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.selectionModel().select(model.index(1, 0), QItemSelectionModel.SelectionFlag.Select)
    inserted: list[int] = []
    model.rowsInserted.connect(lambda _p, first, last: inserted.append(last - first + 1))
    model.set_records([job(3), job(1), job(2, JobStatus.RUNNING), job(4)])  # reorder, change, add
    model.set_records([job(1), job(2, JobStatus.RUNNING), job(4)])           # remove
    assert [model.record(r).id for r in range(model.rowCount())] == ["job1", "job2", "job4"]
    selected = [i.row() for i in view.selectionModel().selectedIndexes()]
    assert [model.record(r).id for r in selected] == ["job2"]
    assert inserted == [1]


def test_a_job_that_takes_another_jobs_output_shows_it_waits_until_that_job_is_done(qtbot: Any,
                                                                                    qtmodeltester: Any) -> None:
    model = JobTableModel()
    qtmodeltester.check(model, force_py=True)
    j2, j3 = job(2, depends_on=("job1",)), job(3, depends_on=("job9",))
    model.set_records([job(1), j2, j3])
    status = model.index(1, JobTableModel.STATUS)
    assert status.data() == "Waiting" and status.data(WaitingRole) == ["job1"] and status.data(StatusRole) == "QUEUED"
    assert "waits for job job1" in model.index(1, JobTableModel.SEED).data(Qt.ItemDataRole.ToolTipRole)
    assert model.index(2, JobTableModel.STATUS).data(WaitingRole) == [], "a source that is gone is not waited for"
    proxy = JobFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_filter_text("waiting")
    assert proxy.rowCount() == 1

    model.set_records([job(1, JobStatus.RUNNING), j2, j3])
    assert status.data() == "Waiting"
    # only job1's record changes, yet job2's row repaints: it no longer waits
    changed: list[int] = []
    model.dataChanged.connect(lambda top, bottom, roles=(): changed.extend(range(top.row(), bottom.row() + 1)))
    model.set_records([job(1, JobStatus.SUCCEEDED), j2, j3])
    assert sorted(set(changed)) == [0, 1]
    assert status.data() == "Queued" and status.data(WaitingRole) == []


def test_condition_model_and_the_editor_combo_that_offers_its_kind(qtbot: Any, qtmodeltester: Any,
                                                                   tmp_path: Path) -> None:
    from dataclasses import dataclass

    from app.models.condition_model import ConditionListModel
    from app.widgets.input_widgets import InputSources, widget_for
    from sdk.inputs import ConditionRef

    @dataclass(frozen=True)
    class Condition:  # the shape of sdk.records.ConditionRecord
        id: str
        kind: str
        path: Path
        extractor: str
        source: str
        num_frames: int

    model = ConditionListModel()
    model.set_records([Condition("c1a2b3", "canny", tmp_path / "c.mp4", "canny.edges", "motion jump", 8),
                       Condition("d4e5f6", "depth", tmp_path / "d.mp4", "midas.depth", "output 12ab", 16)])
    qtmodeltester.check(model)
    widget = widget_for(ConditionRef("edges", required=True, condition="canny"), InputSources(conditions=model))
    qtbot.addWidget(widget)
    assert widget.combo.keys() == ["c1a2b3"] and widget.value() == "c1a2b3"
    assert "canny.edges" in widget.combo.itemData(0, Qt.ItemDataRole.ToolTipRole)
    model.set_records([])
    assert widget.value() is None and "extract a canny video first" in widget.missing()


def test_dragging_a_queued_job_asks_to_move_it_among_queued_jobs(qtbot: Any) -> None:
    model = JobTableModel()
    model.set_records([job(1, JobStatus.SUCCEEDED), job(2), job(3), job(4)])
    data = model.mimeData([model.index(3, 0)])
    with qtbot.waitSignal(model.move_requested) as blocker:
        assert model.dropMimeData(data, Qt.DropAction.MoveAction, 1, 0, model.index(-1, -1)) is False
    assert blocker.args == ["job4", -2]
    assert not model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsDragEnabled  # finished jobs stay put


def test_catalog_models(qtmodeltester: Any, tmp_path: Path) -> None:
    img = SubjectImageRecord(asset("a", tmp_path), asset("m", tmp_path))
    subjects = SubjectListModel()
    subjects.set_records([SubjectRecord(1, "Rex", "<rex>", (img,)), SubjectRecord(2, "Tom", "<tom>", ())])
    qtmodeltester.check(subjects)
    images = SubjectImagesModel()
    images.set_records([img, SubjectImageRecord(asset("b", tmp_path))])
    qtmodeltester.check(images)
    motions = MotionListModel()
    motions.set_records([MotionRecord(1, "jump", (asset("v", tmp_path),))])
    qtmodeltester.check(motions)
    prompts = PromptListModel()
    prompts.set_records([PromptRecord(1, "a photo of <rex>", "blurry"), PromptRecord(2, "a boat")])
    qtmodeltester.check(prompts)
    adapters = AdapterListModel()
    adapters.set_records([AdapterRecord("ad1", "rex identity", "dreamvideo.identity", tmp_path, subject_id=1)])
    qtmodeltester.check(adapters)
    proxy = TextFilterProxy()
    proxy.setSourceModel(prompts)
    proxy.set_filter_text("BOAT")
    assert proxy.rowCount() == 1
    qtmodeltester.check(proxy)


def test_adapters_page_groups_adapters_under_their_subject_or_motion(qtbot: Any, qtmodeltester: Any,
                                                                     tmp_path: Path) -> None:
    from app.widgets.prompts_page import AdaptersPage

    adapters = AdapterListModel()
    adapters.names.update({("subject", 1): "Rex", ("subject", 2): "Tom", ("motion", 1): "jump"})
    page = AdaptersPage(adapters)
    qtbot.addWidget(page)
    assert page.hint.isVisibleTo(page) and page.target.count() == 1
    adapters.set_records([
        AdapterRecord("a3", "tom identity", "dreamvideo.identity", tmp_path, step=200, subject_id=2),
        AdapterRecord("a1", "rex identity", "dreamvideo.identity", tmp_path, step=200, subject_id=1),
        AdapterRecord("a2", "rex embedding", "dreamvideo.embedding", tmp_path, step=100, subject_id=1),
        AdapterRecord("a4", "jump motion", "dreamvideo.motion", tmp_path, step=50, motion_id=1),
    ])
    qtmodeltester.check(page.proxy)
    assert not page.hint.isVisibleTo(page)
    assert [page.target.itemText(i) for i in range(page.target.count())] == [
        "All subjects and motions", "Subject: Rex", "Subject: Tom", "Motion: jump"]
    rows = [[page.proxy.index(r, c).data() for c in range(3)] for r in range(page.proxy.rowCount())]
    assert rows == [["jump", "dreamvideo.motion", "50"], ["Rex", "dreamvideo.embedding", "100"],
                    ["Rex", "dreamvideo.identity", "200"], ["Tom", "dreamvideo.identity", "200"]]
    assert page.show_target("subject", 1)
    assert [page.proxy.index(r, 3).data() for r in range(page.proxy.rowCount())] == ["rex embedding", "rex identity"]
    assert not page.show_target("motion", 9)


def test_editing_a_prompt_in_place_asks_to_save_it(qtbot: Any) -> None:
    prompts = PromptListModel()
    prompts.set_records([PromptRecord(1, "a boat", "")])
    with qtbot.waitSignal(prompts.edit_requested) as blocker:
        assert prompts.setData(prompts.index(0, 1), "blurry")
    assert blocker.args == [1, "a boat", "blurry"]
    assert prompts.index(0, 1).data() == "blurry"
    assert not prompts.setData(prompts.index(0, 0), "  ")  # an empty prompt is refused


def test_output_model_and_filters(qtmodeltester: Any, tmp_path: Path) -> None:
    def item(i: int) -> GalleryItem:
        out = OutputRecord(i, f"job{i}", tmp_path, tmp_path / "video.mp4", tmp_path / "meta.json", None, None, 0.0)
        return GalleryItem(out, job(i, JobStatus.SUCCEEDED))

    model = OutputListModel()
    model.set_records([item(1), item(2), item(3)])
    qtmodeltester.check(model)
    proxy = OutputFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_filters(batch="b1")
    assert proxy.rowCount() == 2
    proxy.set_filters(prompt="cloud lake")
    assert proxy.rowCount() == 1 and proxy.index(0, 0).data(RecordRole).job.seed == 3
    proxy.set_filters(method="nope")
    assert proxy.rowCount() == 0
    proxy.set_filters()
    proxy.set_filter_text("boat")
    assert proxy.rowCount() == 1
    qtmodeltester.check(proxy)


def test_import_app_leaves_torch_out() -> None:
    code = ("import sys, app, app.main_window, app.session, app.loader, app.application, app.dialogs.plugins; "
            "print([m for m in ('torch', 'diffusers', 'transformers', 'open_clip', 'plugins') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("n", [3])
def test_the_window_opens_a_project_without_torch(n: int, tmp_path: Path) -> None:
    """The whole GUI process — window, plugins, an open project, a started RenderService — stays torch-free."""
    code = f"""
import sys, os
os.environ['QT_QPA_PLATFORM'] = 'offscreen'
import app
from PySide6.QtCore import QSettings, QEventLoop
from PySide6.QtWidgets import QApplication
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, {str(tmp_path)!r})
qapp = QApplication([])
from app.main_window import MainWindow
w = MainWindow(); w.show(); w.load_plugins()
w.create_project({str(tmp_path / 'P.vgen')!r}, 'demo')
while w.session is None or w.session.state != 'paused' or w.loader.prompts.rowCount() != {n}:
    qapp.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
w.close()
print([m for m in ('torch', 'diffusers', 'transformers', 'open_clip', 'plugins.modelscope_t2v.pipeline')
       if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
