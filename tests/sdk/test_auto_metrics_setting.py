"""A project chooses the metrics that score every finished output (Settings ▸ Project in the GUI): off by default,
a chosen metric scores each new output with the real worker, an empty choice turns even a plugin's auto metric off,
and a metric no plugin offers is refused before anything is stored."""
from __future__ import annotations

import pytest

from sdk.conditions import project_auto_metrics, set_project_auto_metrics
from sdk.errors import InvalidRequest
from sdk.project import Project
from sdk.queueing import queue_jobs
from sdk.service import RenderService
from tests.sdk.conditions_helpers import cond_site, project, registry  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def test_the_projects_auto_metrics_score_each_new_output(registry, project: Project) -> None:
    assert project_auto_metrics(project) is None  # never chosen: the metrics' own auto flags
    assert set_project_auto_metrics(project, registry, ["classic_cv.flow_warp"]) == ["classic_cv.flow_warp"]
    scored = queue_jobs(project, registry, "condtest.square").job_ids[0]
    set_project_auto_metrics(project, registry, ["classic_cv.flow_warp"])  # choosing again changes nothing

    assert RenderService(project, registry=registry).run(until_empty=True)["succeeded"] == 2  # the output + its score
    # the project's choice replaces the plugins' defaults: condtest.brightness (auto=True) did not run
    assert [s.metric for s in project.scores(scored)] == ["classic_cv.flow_warp"]
    assert any("queued auto metrics classic_cv.flow_warp" in line["message"] for line in project.logs(scored))

    assert set_project_auto_metrics(project, registry, []) == []  # scoring off
    assert Project.open(project.path).meta("auto_metrics") == []  # stored in the project, seen by other processes
    unscored = queue_jobs(project, registry, "condtest.square").job_ids[0]
    assert RenderService(project, registry=registry).run(until_empty=True)["succeeded"] == 1
    assert project.scores(unscored) == [] and not any(j.kind == "score" and unscored in j.depends_on
                                                      for j in project.jobs())


def test_a_metric_no_plugin_offers_is_refused_and_nothing_changes(registry, project: Project) -> None:
    set_project_auto_metrics(project, registry, ["classic_cv.flow_warp"])
    with pytest.raises(InvalidRequest) as err:
        set_project_auto_metrics(project, registry, ["classic_cv.flow_warp", "nope.clip_t"])
    assert err.value.field == "auto_metrics" and "nope.clip_t" in err.value.user_message
    assert "classic_cv.flow_warp" in err.value.hint  # the hint lists the known metrics
    assert project_auto_metrics(project) == ["classic_cv.flow_warp"]
