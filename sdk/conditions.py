"""Condition extractors and metrics as jobs (DESIGN §4): what happens when one finishes, and queueing them.

- An **extract** job (a :class:`~sdk.specs.ConditionSpec`) returns a video; the service publishes it as an output
  (previewable like any other) and as a condition: a video asset with a ``conditions`` row linked to its source and
  to the extractor's id and version (:meth:`sdk.Project.finish_extract_job`). Generators take it through a
  :class:`~sdk.inputs.ConditionRef` input, by condition id or by the extract job's id (then they wait for it).
- A **score** job (a :class:`~sdk.specs.MetricSpec`) returns ``{name: number}`` for the output of the job given as
  its ``output`` input; the values are stored with that job (:meth:`sdk.Project.finish_score_job`), shown by
  ``vgen jobs show`` and added to the output's ``meta.json``. It has no output of its own.
- When a generate job succeeds, the project's auto metrics that apply to its generator (``applies_to``; empty: all)
  are queued on its output, as a batch of score jobs that wait for nothing else. The project chooses them (its
  ``auto_metrics`` meta key, a list of metric ids, set by :func:`set_project_auto_metrics`: the GUI's Settings ▸
  Project); a project that never chose takes the metrics' own ``auto`` flags (no built-in metric is auto, so
  scoring is off by default).

Nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sdk.errors import InvalidRequest, VGenError
from sdk.records import BatchRecord, JobStatus

if TYPE_CHECKING:
    from pathlib import Path

    from sdk.plugins import PluginRegistry
    from sdk.project import Project
    from sdk.records import JobRecord, OutputRecord

log = logging.getLogger(__name__)


class MetricNotApplicable(InvalidRequest):
    """A metric's output input refuses an output it cannot score (e.g. a subject metric on a job that took no
    subject). :func:`score_jobs` and the auto metrics skip that output, with the reason in its job's log."""


def publish_result(project: "Project", registry: "PluginRegistry", job: "JobRecord", staging: "Path"
                   ) -> "OutputRecord | None":
    """RenderService only: record a job whose worker reported it finished, the way its kind needs. Returns its
    output (None for a score job, which has none). Auto metrics are queued after a generate job."""
    if job.kind == "score":
        project.finish_score_job(job.id, staging)
        return None
    if job.kind == "extract":
        spec = registry.conditions.get(job.spec_id)
        kind = (spec.condition if spec is not None else "") or job.spec_id.rpartition(".")[2]
        return project.finish_extract_job(job.id, staging, kind=kind)[0]
    output = project.finish_job(job.id, staging)
    if job.kind == "generate":
        queue_auto_metrics(project, registry, job)
    return output


#: project meta key: the ids of the metrics that score every finished output (absent or None: each metric's ``auto``)
AUTO_METRICS_KEY = "auto_metrics"


def project_auto_metrics(project: "Project") -> list[str] | None:
    """The metric ids the project chose to score every finished output with, or None if it never chose (then the
    metrics' own ``auto`` flags apply)."""
    value = project.meta(AUTO_METRICS_KEY)
    if not isinstance(value, list):
        return None
    return [str(v) for v in value]


def set_project_auto_metrics(project: "Project", registry: "PluginRegistry",
                             metric_ids: Sequence[str] | None) -> list[str] | None:
    """Choose the metrics that score every output the project's generate jobs make from now on (``[]``: none;
    ``None``: back to the metrics' own ``auto`` flags). Returns what was stored.

    Raises InvalidRequest (field ``auto_metrics``) naming an unknown metric or one that cannot score an output;
    ProjectReadOnly on a read-only project. Nothing is stored then."""
    chosen: list[str] | None = None
    if metric_ids is not None:
        chosen = []
        for metric_id in metric_ids:
            try:
                _output_field(registry.metric(str(metric_id)))
            except InvalidRequest as exc:
                raise InvalidRequest(exc.user_message, hint=exc.hint, field=AUTO_METRICS_KEY) from None
            if metric_id not in chosen:
                chosen.append(str(metric_id))
    with project._writing() as s:  # the sdk's own meta write (Project keeps no public setter for one key)
        project._set_meta(s, AUTO_METRICS_KEY, chosen)
    return chosen


def choose_installed_metrics(project: "Project", metric_ids: Sequence[str]) -> list[str] | None:
    """A template's ``"auto_metrics"``: those of ``metric_ids`` that installed plugins offer become the project's
    auto-metrics choice (a template may name metrics of a plugin this machine lacks)."""
    from sdk.plugins import load_plugins

    registry = load_plugins()
    return set_project_auto_metrics(project, registry, [m for m in metric_ids if m in registry.metrics])


def auto_metrics(registry: "PluginRegistry", generator_id: str, chosen: Sequence[str] | None = None) -> list[Any]:
    """The metrics that score every output of ``generator_id`` on their own: those in ``chosen`` (a project's
    choice; ids no installed plugin offers are left out), or with ``chosen=None`` those flagged ``auto=True``; in
    both cases only the ones that apply to the generator."""
    if chosen is None:
        specs = [spec for spec in registry.metrics.values() if spec.auto]
    else:
        specs = [registry.metrics[m] for m in chosen if m in registry.metrics]
    return [spec for spec in specs if not spec.applies_to or generator_id in spec.applies_to]


def queue_auto_metrics(project: "Project", registry: "PluginRegistry", job: "JobRecord") -> BatchRecord | None:
    """Queue the project's auto metrics for a succeeded generate job (one batch), None if there are none. A metric that
    cannot be queued (its weights are missing …) is skipped with the reason in the job's log: the job itself
    succeeded."""
    from sdk.queueing import QueuePlan, plan_jobs

    chosen = project_auto_metrics(project)
    for missing in sorted(set(chosen or ()) - set(registry.metrics)):
        project.add_log(job.id, "WARNING", f"auto metric {missing} not queued: no installed plugin offers it "
                                           "(Settings ▸ Project chooses the auto metrics)")
    plan = QueuePlan()
    for spec in auto_metrics(registry, job.spec_id, chosen):
        try:
            plan.extend_plan(plan_jobs(project, registry, spec.id, inputs={_output_field(spec): job.id}))
        except VGenError as exc:
            project.add_log(job.id, "WARNING", f"auto metric {spec.id} not queued: {exc.user_message} {exc.hint}")
    if not plan:
        return None
    batch = project.add_jobs(plan)
    project.add_log(job.id, "INFO", f"queued auto metrics {', '.join(sorted({j.spec_id for j in plan}))} "
                                    f"in batch {batch.id}: {' '.join(batch.job_ids)}")
    return batch


def _output_field(spec: Any) -> str:
    """The input a metric takes the scored output through: its first ``output`` field (``OutputRef``)."""
    for f in spec.fields:
        if f.kind == "output":
            return f.name
    raise InvalidRequest(f"The metric {spec.id} declares no OutputRef input, so it cannot score an output.",
                         hint="A metric declares inputs=(OutputRef(\"output\", required=True),).", field="metric")


def score_jobs(project: "Project", registry: "PluginRegistry", metrics: Sequence[str], *,
               jobs: Sequence[str] = (), batch: str | None = None) -> BatchRecord:
    """Queue score jobs: every metric in ``metrics`` on the outputs of ``jobs`` (ids or prefixes) and/or of every
    generate job of ``batch`` (those that failed or were cancelled are left out), as one batch. A job still queued
    or running is scored once it succeeds. Raises InvalidRequest naming an unknown metric, a failed job given by
    id, or a batch with nothing to score; nothing is queued then."""
    from sdk.queueing import QueuePlan, plan_jobs

    if not metrics:
        raise InvalidRequest("No metric given.", hint="Give one with --metric ID (`vgen plugins list` shows them).",
                             field="metric")
    targets = [project.job(j).id for j in jobs]
    if batch is not None:
        in_batch = project.jobs(batch_id=_batch_id(project, batch))
        targets += [j.id for j in in_batch if j.kind == "generate" and not j.problem
                    and j.status not in (JobStatus.FAILED, JobStatus.CANCELLED) and j.id not in targets]
        if not targets:
            raise InvalidRequest(f"Batch {batch} has no output to score (no generate job in it succeeded or is "
                                 "still to run).", hint="Score another batch, or retry its jobs first.", field="batch")
    if not targets:
        raise InvalidRequest("Nothing to score.", hint="Give a job id, or --batch BATCH.", field="job")
    plan = QueuePlan()
    skipped: list[str] = []
    for metric_id in metrics:
        spec = registry.metric(metric_id)
        field = _output_field(spec)
        for target in targets:  # one by one: an output the metric does not apply to is skipped, not the batch
            try:
                plan.extend_plan(plan_jobs(project, registry, spec.id, inputs={field: target}))
            except MetricNotApplicable as exc:
                skipped.append(f"{spec.id} on {target}: {exc.user_message}")
                project.add_log(target, "WARNING", f"metric {spec.id} skipped: {exc.user_message}")
    if not plan:
        raise InvalidRequest("Nothing to score: " + "; ".join(skipped), hint="Pick metrics that apply to these "
                             "outputs.", field="metric")
    batch = project.add_jobs(plan)
    # what was skipped comes back as warnings (the CLI prints them; each is in its job's log too)
    return dataclasses.replace(batch, warnings=tuple(batch.warnings) + tuple(f"skipped {s}" for s in skipped))


def _batch_id(project: "Project", prefix: str) -> str:
    found = {j.batch_id for j in project.jobs() if j.batch_id.startswith(str(prefix).strip().lower())}
    if len(found) != 1:
        raise InvalidRequest(f"{'No' if not found else 'More than one'} batch with id {prefix!r}.",
                             hint="`vgen queue list --json` shows each job's batch_id.", field="batch")
    return found.pop()
