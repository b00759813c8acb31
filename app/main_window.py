"""The main window: project sidebar, job editor, queue with live preview, gallery, menus."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QSizePolicy, QSplitter,
                               QStackedWidget, QTabWidget, QWidget)

from app import settings as st
from app.dialogs.new_project import NewProjectDialog
from app.layout import DOCK_WIDTHS, AdaptiveLayout
from app.loader import ModelLoader
from app.notifications import Notifier
from app.tasks import TaskRunner
from app.widgets.conditions_view import ConditionsController
from app.widgets.gallery import Gallery
from app.widgets.input_widgets import InputSources
from app.widgets.job_editor import JobEditor
from app.widgets.preview import LivePreview
from app.widgets.queue_panel import QueuePanel
from app.widgets.sidebar import IMAGE_SUFFIXES, ProjectSidebar, drop_problem, dropped_files
from app.widgets.welcome import WelcomePage


class MainWindow(QMainWindow):
    plugins_loaded = Signal()
    #: the project's path ("" when closed)
    project_changed = Signal(str)
    #: title, message — every error the window showed
    error_shown = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("VGen Studio")
        self.setAcceptDrops(True)
        self.resize(1280, 800)  # a smaller screen: the window manager fits it, and AdaptiveLayout follows
        self.registry: Any = None
        self.session: Any = None
        self.tasks = TaskRunner(self)
        self.loader = ModelLoader(self)
        self.last_error: tuple[str, str] | None = None
        self._message_box: QMessageBox | None = None
        self.new_dialog: NewProjectDialog | None = None
        self.plugins_dialog: Any = None
        self.settings_dialog: Any = None

        self.welcome = WelcomePage(self)
        self.welcome.new_requested.connect(self.show_new_project_dialog)
        self.welcome.open_requested.connect(self.choose_project)
        self.welcome.recent_requested.connect(self.open_project)
        self.queue_panel = QueuePanel(self.loader.jobs, self)
        self.preview = LivePreview(self)
        self.gallery = Gallery(self.loader.outputs, self)
        self.editor = JobEditor(self.loader.prompts, parent=self, sources=InputSources.of(self.loader))
        self.sidebar = ProjectSidebar(self.loader.subjects, self.loader.motions, self.loader.prompts,
                                      self.loader.adapters, self.loader.thumbs, self)
        # the queue table keeps about three quarters of the width (never less than 55 %); the preview the rest
        self.queue_split = split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setObjectName("queueSplitter")
        split.addWidget(self.queue_panel)
        split.addWidget(self.preview)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setCollapsible(0, False)
        split.setSizes([720, 240])
        self.queue_panel.setMinimumWidth(320)
        self.preview.setMinimumWidth(160)
        self.preview.setMinimumHeight(140)
        self.preview.setMaximumWidth(400)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(split, "Queue")
        self.tabs.addTab(self.gallery, "Gallery")
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.tabs)
        self.setCentralWidget(self.stack)
        # the middle's minimum is set, not summed from every page (the welcome page alone asks ~700 px): the window
        # must shrink to 1024 px with both docks beside it, where AdaptiveLayout tabs the docks (app/layout.py)
        self.stack.setMinimumWidth(440)
        self.project_dock = self._dock("Project", "projectDock", self.sidebar, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.editor_dock = self._dock("Job editor", "editorDock", self.editor, Qt.DockWidgetArea.RightDockWidgetArea)
        self.project_label = QLabel("No project", self)
        self.project_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # a long path
        self.queue_summary = QLabel("", self)
        self.statusBar().addWidget(self.project_label)
        self.statusBar().addPermanentWidget(self.queue_summary)
        # a queueing warning's full text is the status bar's tooltip while its message shows
        self.statusBar().messageChanged.connect(lambda m: None if m else self.statusBar().setToolTip(""))

        self.editor.queue_requested.connect(self._on_editor_queue_requested)
        self.editor.prompt_add_requested.connect(self._on_prompt_add_requested)
        self.sidebar.prompts_page.prompt_add_requested.connect(self._on_prompt_add_requested)
        self.sidebar.prompts_page.prompt_remove_requested.connect(lambda i: self._with_session("remove_prompt", i))
        self.sidebar.subjects_page.subject_requested.connect(self._on_subject_requested)
        self.sidebar.motions_page.motion_requested.connect(lambda n, v: self._with_session("add_motion", n, v))
        self.sidebar.subjects_page.train_requested.connect(self._on_subjects_train_requested)
        self.sidebar.motions_page.train_requested.connect(self._on_motions_train_requested)
        self.sidebar.subjects_page.job_records = self.loader.jobs.records
        self.sidebar.motions_page.job_records = self.loader.jobs.records
        for page in (self.sidebar.subjects_page, self.sidebar.motions_page):
            page.remove_requested.connect(self._on_sidebar_remove_requested)
            page.remove_confirmed.connect(lambda kind, i, cascade: self._with_session("remove_target", kind, i, cascade))
        self.loader.prompts.edit_requested.connect(lambda i, t, n: self._with_session("update_prompt", i, t, n))
        self.gallery.requeue_requested.connect(lambda d: self._with_session("requeue", d))
        self.gallery.export_requested.connect(self._on_gallery_export_requested)
        self.gallery.recall_requested.connect(self.recall)
        self.gallery.chain.edit_requested.connect(
            lambda spec_id, request: self.show_in_editor(spec_id, request, "a follow-up of the selected output"))
        self.queue_panel.selected_job_changed.connect(lambda *_: self._update_follow())
        self.loader.jobs_loaded.connect(self._on_loader_jobs_loaded)
        self.loader.catalog_loaded.connect(lambda _: self.loader.jobs.set_input_names(self.loader.adapters.names))
        self.tasks.task_failed.connect(lambda exc: self.show_error("Something went wrong", exc))
        self.notifier = Notifier(self, self.loader)  # tray message when a batch finishes or a job fails
        self._build_menus()
        self.conditions_ui = ConditionsController(self)  # Extract conditions…, condition players (issue 12)
        self.sidebar.setMinimumWidth(220)
        self.editor.setMinimumWidth(290)
        self.resizeDocks([self.project_dock, self.editor_dock], DOCK_WIDTHS, Qt.Orientation.Horizontal)
        self._set_session(None)
        self._restore_layout()
        self.adaptive_layout = AdaptiveLayout(self, self.project_dock, self.editor_dock, split, self.preview)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    # -- menus ------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        from app.menus import build_menus

        build_menus(self)
        self._update_recent_menu()

    def show_settings(self, page: str = "") -> Any:
        from app.dialogs.settings import SettingsDialog

        dialog = SettingsDialog(self, session=self.session, registry=self.registry)
        dialog.applied.connect(self._on_settings_applied)
        if page:
            dialog.show_page(page)
        self.settings_dialog = dialog
        dialog.open()
        return dialog

    def _on_settings_applied(self, changed: dict[str, Any]) -> None:
        moved = "device" in changed or "farm" in changed
        if moved and self.session is not None and not self.session.restart_service():
            where = (f"the farm at {changed['farm']}" if changed.get("farm") else
                     "this machine" if "farm" in changed else str(changed["device"]))
            self.statusBar().showMessage(f"Rendering moves to {where} when the queue starts next (a job is "
                                         "rendering now).", 10000)

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in st.recent_projects() if (Path(p) / "project.db").is_file()]  # gone ones are not offered
        for i, path in enumerate(recent):
            a = self.recent_menu.addAction(f"&{i + 1} {path}" if i < 9 else path)
            a.triggered.connect(lambda _=False, p=path: self.open_project(p))
        self.recent_menu.setEnabled(bool(recent))
        self.welcome.set_recent(recent)

    def _focus_new_prompt(self) -> None:
        self.project_dock.show()
        self.sidebar.setCurrentWidget(self.sidebar.prompts_page)
        self.sidebar.prompts_page.text.setFocus()

    def _focus_filter(self) -> None:
        target = self.gallery.search if self.tabs.currentIndex() == 1 else self.queue_panel.filter
        target.setFocus()
        target.selectAll()

    # -- plugins --------------------------------------------------------------------------------
    def load_plugins(self) -> None:
        """Load the plugin registry in the background (a broken plugin is listed, never fatal)."""
        def work() -> Any:
            from sdk.plugins import load_plugins

            return load_plugins()

        def failed(exc: BaseException) -> None:
            from sdk.plugins import PluginRegistry

            self._on_plugins_loaded(PluginRegistry())
            self.show_error("Plugins could not be loaded", exc)

        self.welcome.status.setText("Loading plugins…")
        self.tasks.submit(work, self._on_plugins_loaded, failed)

    def _on_plugins_loaded(self, registry: Any) -> None:
        self.registry = registry
        self.welcome.status.setText("")
        self.loader.set_method_lookup(lambda sid: registry.spec(sid).method if sid in registry.generators
                                      or sid in registry.trainers else sid.split(".")[0])
        self.editor.set_registry(registry)
        self.loader.jobs.set_registry(registry)
        self.sidebar.subjects_page.train_action.set_registry(registry)
        self.sidebar.motions_page.train_action.set_registry(registry)
        broken = [n for n, info in registry.plugins.items() if info.error]
        if broken:
            self.statusBar().showMessage(f"Plugin(s) failed to load: {', '.join(broken)} — Tools ▸ Plugins… "
                                         "shows why.", 15000)
        self.plugins_loaded.emit()

    def show_plugins_dialog(self, tab: str = "Models") -> Any:
        from app.dialogs.plugins import PluginsDialog

        if self.registry is None:
            self.statusBar().showMessage("Plugins are still loading…", 3000)
            return None
        busy = self.plugins_dialog
        if busy is not None and busy.registry is self.registry and busy.models.process is not None:
            busy.show_tab(tab)  # a download still running: the same manager, with its progress and Cancel
            busy.open()
            return busy
        self.plugins_dialog = PluginsDialog(self.registry, self)
        self.plugins_dialog.weights_changed.connect(self.editor.set_installed_weights)
        self.plugins_dialog.show_tab(tab)
        self.plugins_dialog.open()
        return self.plugins_dialog

    # -- projects -------------------------------------------------------------------------------
    def show_new_project_dialog(self) -> NewProjectDialog:
        from sdk.project import list_templates

        folder = Path(str(st.settings().value("last_folder", str(Path.home()))))
        self.new_dialog = NewProjectDialog(list_templates(), folder, self)
        self.new_dialog.project_requested.connect(self.create_project)
        self.new_dialog.open()
        return self.new_dialog

    def choose_project(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open project (a .vgen folder)",
                                                str(st.settings().value("last_folder", str(Path.home()))))
        if path:
            self.open_project(path)

    def create_project(self, path: Any, template: Any = None) -> None:
        def work() -> Any:
            from sdk.project import Project

            return Project.create(Path(path), template=template or None)

        self.statusBar().showMessage(f"Creating {path}…")
        self.tasks.submit(work, self._on_project_opened, lambda e: self.show_error("Cannot create the project", e))

    def open_project(self, path: Any) -> None:
        def work() -> Any:
            from sdk.project import Project

            return Project.open(Path(path))

        def failed(exc: BaseException) -> None:
            self.show_error("Cannot open the project", exc)
            if not Path(path).exists():
                st.remove_recent_project(path)
                self._update_recent_menu()

        self.statusBar().showMessage(f"Opening {path}…")
        self.tasks.submit(work, self._on_project_opened, failed)

    def _on_project_opened(self, project: Any) -> None:
        from app.session import ProjectSession

        if self.registry is None:  # cannot happen: plugins load first on the same serial runner
            from sdk.plugins import PluginRegistry

            self.registry = PluginRegistry()
        self.close_project()
        session = ProjectSession(project, self.registry, self)
        st.add_recent_project(project.path)
        s = st.settings()
        s.setValue("last_folder", str(project.path.parent))
        self._update_recent_menu()
        self._set_session(session)
        self.statusBar().showMessage(f"Opened {project.path}", 5000)
        session.start_service()

    def close_project(self) -> None:
        if self.session is None:
            return
        session = self.session
        self._set_session(None)
        session.close()
        session.deleteLater()

    def _set_session(self, session: Any) -> None:
        self.session = session
        self.loader.set_session(session)
        self.queue_panel.set_session(session)
        self.gallery.set_session(session)
        self.preview.set_session(session)
        self.notifier.set_session(session)
        has = session is not None
        self.stack.setCurrentIndex(1 if has else 0)
        self.project_dock.setVisible(has)
        self.editor_dock.setVisible(has)
        for a in self.project_actions + [self.close_action]:
            a.setEnabled(has)
        self.setWindowTitle(f"{session.name} — VGen Studio" if has else "VGen Studio")
        self.project_label.setText(f"{session.name}  ·  {session.path}" if has else "No project open")
        if has:
            session.error_raised.connect(self._on_session_error_raised)
            session.render_state_changed.connect(self.queue_panel.set_render_state)
            session.jobs_queued.connect(self._on_session_jobs_queued)
            session.bridge.job_started.connect(lambda *_: self._update_follow())
        self.project_changed.emit(str(session.path) if has else "")

    # -- actions --------------------------------------------------------------------------------
    def _with_session(self, method: str, *args: Any) -> None:
        if self.session is not None:
            getattr(self.session, method)(*args)

    @Slot(str, object, bool)
    def _on_editor_queue_requested(self, spec_id: str, request: dict[str, Any], start: bool) -> None:
        if self.session is not None:
            self.session.queue(spec_id, start, **request)

    @Slot(str, int, object)
    def _on_subjects_train_requested(self, trainer_id: str, subject_id: int, params: dict[str, Any]) -> None:
        if self.session is not None:
            self.session.queue(trainer_id, kind="train", subject=subject_id, seeds=str(params.get("seed", 0)),
                               params={k: [v] for k, v in params.items()})

    @Slot(str, int, str)
    def _on_sidebar_remove_requested(self, kind: str, ident: int, name: str) -> None:
        page = self.sidebar.subjects_page if kind == "subject" else self.sidebar.motions_page
        if self.session is not None:
            self.session.jobs_using(kind, ident, lambda jobs: page.confirm_removal(ident, name, jobs))

    @Slot(str, int, str, object)
    def _on_motions_train_requested(self, trainer_id: str, motion_id: int, caption: str, params: dict[str, Any]) -> None:
        if self.session is not None:
            self.session.queue(trainer_id, kind="train", motion=motion_id, prompts=[caption] if caption else [],
                               seeds=str(params.get("seed", 0)), params={k: [v] for k, v in params.items()})

    @Slot(str, str)
    def _on_prompt_add_requested(self, text: str, negative: str) -> None:
        self._with_session("add_prompt", text, negative)

    def _on_subject_requested(self, name: str, images: list[Path], token: str, masks: list[Any]) -> None:
        page = self.sidebar.subjects_page  # its dialog stays open until the subject is stored or refused
        self._with_session("add_subject", name, images, token, masks if any(masks) else None, page.subject_added,
                           page.subject_failed)

    def recall(self, job_or_output: Any) -> None:
        """Load a job's or an output's settings into the job editor for editing, without queueing (a JobRecord, an
        OutputRecord, a job id or an output folder). "Re-queue exactly" is ``session.requeue``."""
        session = self.session
        if session is None:
            return
        from app.recall import read_recipe

        session.call(lambda: read_recipe(session.project, self.registry, job_or_output),
                     lambda result: self.show_in_editor(*result), "Cannot recall these settings")

    def show_in_editor(self, spec_id: str, request: dict[str, Any], what: str) -> None:
        """Show ``request`` for ``spec_id`` in the job editor for editing (nothing is queued); ``what`` it is, for
        the status bar."""
        problems = self.editor.load_request(spec_id, request)
        self.editor_dock.show()
        self.editor_dock.raise_()
        self.statusBar().showMessage(f"The job editor shows the settings of {what}; nothing was queued."
                                     + (" Not restored: " + " ".join(problems) if problems else ""), 15000)

    def _on_session_jobs_queued(self, batch: Any) -> None:
        warnings = list(getattr(batch, "warnings", ()))  # e.g. a prompt the text encoder cuts at 77 tokens
        text = f"Queued {len(batch.job_ids)} job(s)."
        if warnings:
            import logging

            for w in warnings:
                logging.getLogger("vgen.app").warning("queued with a warning: %s", w)
            text += f"  ⚠ {warnings[0]}" + (f" (+{len(warnings) - 1} more: hover here)" if len(warnings) > 1 else "")
        self.statusBar().setToolTip("\n\n".join(warnings))
        self.statusBar().showMessage(text, 30000 if warnings else 5000)
        self.tabs.setCurrentIndex(0)

    def _on_gallery_export_requested(self, output_dir: Path, dest: Path, fmt: str) -> None:
        if self.session is not None:
            self.session.export(output_dir, dest, fmt,
                                lambda p: self.statusBar().showMessage(f"Exported to {p}", 8000))

    def _on_loader_jobs_loaded(self) -> None:
        counts: dict[str, int] = {}
        for job in self.loader.jobs.records():
            key = getattr(job.status, "value", str(job.status))
            counts[key] = counts.get(key, 0) + 1
        parts = [f"{counts[k]} {label}" for k, label in (("QUEUED", "queued"), ("RUNNING", "running"),
                                                          ("SUCCEEDED", "done"), ("FAILED", "failed")) if counts.get(k)]
        self.queue_summary.setText(" · ".join(parts))
        self._update_follow()

    def _update_follow(self) -> None:
        """Preview the selected job if it is running, else the running job (else keep the last one)."""
        self.preview.update_jobs(self.loader.jobs, self.queue_panel.selected_job())

    # -- errors ---------------------------------------------------------------------------------
    def show_error(self, title: str, exc: BaseException | str, details: str = "") -> None:
        from app.session import describe_error

        message, more = (exc, details) if isinstance(exc, str) else describe_error(exc)
        self.last_error = (title, message)
        self.statusBar().showMessage(f"{title}: {message}", 15000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorBox")
        if more:
            box.setInformativeText(more if len(more) < 400 else "")
            if len(more) >= 400:
                box.setDetailedText(more)
        if self._message_box is not None:
            self._message_box.close()
        self._message_box = box
        box.open()
        self.error_shown.emit(title, message)

    @Slot(str, str, str)
    def _on_session_error_raised(self, title: str, message: str, details: str) -> None:
        self.show_error(title, message, details)

    # -- drops ------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():  # anything: a file the window cannot use is named on the drop
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        projects = [p for p in paths if (p / "project.db").is_file() or p.name == "project.db"]
        if projects:
            event.acceptProposedAction()
            self.open_project(projects[0])
            return
        if self.session is None:
            return
        videos = [p for p in paths if p.suffix.lower() == ".mp4"]
        images = dropped_files(event, IMAGE_SUFFIXES)
        event.acceptProposedAction()
        problem = drop_problem(paths, videos + images)
        if problem and not (videos or images):
            self.show_error("Nothing was added", problem)
        elif problem:
            self.statusBar().showMessage(problem, 15000)
        for video in videos:  # an output dropped back: queue its recipe again
            self.session.requeue(video)
        if images:
            self.sidebar.setCurrentWidget(self.sidebar.subjects_page)
            self.sidebar.subjects_page.new_subject(images)

    # -- layout and closing ---------------------------------------------------------------------
    def _restore_layout(self) -> None:
        s = st.settings()
        geometry, state = s.value("window/geometry"), s.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)
        if self.session is None:
            self.project_dock.hide()
            self.editor_dock.hide()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.session is not None:
            self.project_dock.show()
            self.editor_dock.show()
        s = st.settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.sync()
        self.close_project()
        self.tasks.wait()
        self.loader.thumbs.wait()
        super().closeEvent(event)
