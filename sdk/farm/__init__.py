"""The render farm: the same queue on a Ray cluster (docs/farm.md). Optional: ``pip install vgen-studio[farm]``.

``farm_executors(address)`` connects (or starts a local Ray for ``local:N``) and returns one
:class:`~sdk.farm.executor.RayExecutor` per device of the cluster; hand them to
``RenderService(project, executors=...)``, which schedules and records jobs as it does for local devices.
Ray is imported here, lazily, and nowhere else in the SDK.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from sdk.errors import InvalidRequest

#: seconds an unreachable farm address may take before the error
CONNECT_TIMEOUT = 10.0
#: seconds joining a cluster whose address answers may take (a port that is no Ray server fails after this)
JOIN_TIMEOUT = 60.0
ADDRESS_HINT = ("Use ray://HOST:PORT (a Ray client server, port 10001 by default), HOST:PORT (the head's GCS port, "
                "6379), auto (the cluster this machine belongs to) or local:N (a Ray started here with N CPU workers).")


@dataclass
class FarmAddress:
    kind: str                 # "ray" (ray://), "gcs" (HOST:PORT), "auto" or "local"
    address: str = ""         # what ray.init gets
    workers: int = 0          # local:N


def parse_address(text: str) -> FarmAddress:
    """``ray://HOST:PORT``, ``HOST:PORT``, ``auto`` or ``local:N``; InvalidRequest(field="farm") otherwise."""
    value = (text or "").strip()
    if value == "auto":
        return FarmAddress("auto", "auto")
    if value.startswith("local:"):
        n = value.split(":", 1)[1]
        if not n.isdigit() or not 1 <= int(n) <= 256:
            raise InvalidRequest(f"farm {text!r}: local:N needs a worker count from 1 to 256.", hint=ADDRESS_HINT,
                                 field="farm")
        return FarmAddress("local", "", int(n))
    rest = value[len("ray://"):] if value.startswith("ray://") else value
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidRequest(f"farm {text!r} is not a Ray address.", hint=ADDRESS_HINT, field="farm")
    return FarmAddress("ray" if value.startswith("ray://") else "gcs", value)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InvalidRequest("The render farm needs Ray, which is not installed.",
                             hint="pip install 'vgen-studio[farm]' (Ray 2.60).", field="farm") from None
    return ray


def connect(text: str, *, timeout: float = CONNECT_TIMEOUT) -> FarmAddress:
    """Join the cluster at ``text`` (or start a local one). An unreachable address fails within ``timeout`` s
    with InvalidRequest(field="farm"), before any job is touched."""
    where = parse_address(text)
    if where.kind in ("ray", "gcs", "auto"):
        _token_auth()  # before Ray is imported: it reads the mode once
    ray = _ray()
    if ray.is_initialized():
        return where
    if where.kind in ("ray", "gcs"):
        host, _, port = where.address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=min(timeout, 5.0)).close()
        except OSError as exc:
            raise InvalidRequest(f"farm {text!r}: nothing answers at {host}:{port} ({exc}).",
                                 hint="Start the cluster (`ray start --head`, see docs/farm.md) or check the "
                                      "address and firewall. The jobs stay queued.", field="farm") from None
    kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
    if where.kind == "local":
        kwargs.update(num_cpus=where.workers, include_dashboard=False)
    else:
        kwargs["address"] = where.address
    try:
        # the address answered: joining may take a while on a busy head (Ray client starts a server per client)
        _init_within(ray, kwargs, None if where.kind == "local" else JOIN_TIMEOUT)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, TimeoutError... for a missing cluster
        raise InvalidRequest(f"farm {text!r}: could not join the Ray cluster ({type(exc).__name__}: "
                             f"{str(exc)[:300]}).", hint=ADDRESS_HINT + " The jobs stay queued.",
                             field="farm") from None
    return where


def _token_auth() -> None:
    """Ray 2.60 clusters authenticate with a token (``~/.ray/auth_token`` on the head; ``$RAY_AUTH_TOKEN`` or
    ``$RAY_AUTH_TOKEN_PATH``). A driver sends it only in token mode: turn that on when a token is at hand, unless the
    user chose a mode. Ray reads the mode when it is imported, so this runs first."""
    import sys
    from pathlib import Path

    # once Ray is imported its mode is fixed: setting it now would only start later local clusters (whose servers
    # read the environment) in token mode while this process speaks without one
    if "RAY_AUTH_MODE" in os.environ or "ray" in sys.modules:
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or \
            (Path.home() / ".ray" / "auth_token").is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def _init_within(ray: Any, kwargs: dict[str, Any], timeout: float | None) -> None:
    """``ray.init(**kwargs)``, given up after ``timeout`` s (a port that accepts connections but is no Ray server
    would otherwise keep Ray retrying for minutes)."""
    if timeout is None:
        ray.init(**kwargs)
        return
    import threading

    result: dict[str, BaseException] = {}

    def init() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=init, name="vgen-farm-connect", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer from the cluster within {timeout:g} s")
    if "error" in result:
        raise result["error"]


def actor_class(**options: Any) -> Any:
    """:class:`~sdk.farm.node.NodeWorker` as a Ray actor class with ``options`` (restarts on death; threaded, so
    a cancel reaches it while it waits for events)."""
    ray = _ray()
    from sdk.farm.node import NodeWorker

    base = {"max_restarts": 3, "max_task_retries": 0, "max_concurrency": 4}
    return ray.remote(**{**base, **options})(NodeWorker)


def make_executor(*, device: str = "cpu", threads: int | None = None, num_cpus: float = 1, num_gpus: float = 0,
                  node_id: str | None = None, shared_staging: bool = False, models_dir: str | None = None,
                  heartbeat: float | None = None, max_restarts: int = 3) -> Any:
    """One actor (one device) and its executor. ``node_id`` pins it to a node; ``models_dir`` overrides that node's
    models directory (a second "node" on one test machine)."""
    from sdk.farm.executor import RayExecutor

    options: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_restarts": max_restarts}
    if node_id:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=False)
    actor = actor_class(**options).remote(device, threads, heartbeat, shared_staging, models_dir)
    ray = _ray()
    info = ray.get(actor.info.remote(), timeout=120)
    return RayExecutor(actor, device=device, node=info["node"], shared_staging=shared_staging)


def farm_executors(text: str, *, shared_staging: bool | None = None, heartbeat: float | None = None,
                   threads: int | None = None) -> list[Any]:
    """Connect to the farm at ``text`` and start one actor per device: a GPU actor per GPU of each node, else
    one CPU actor per node using its cores (``local:N``: N CPU actors of ``threads`` threads each, default
    cores/N). ``shared_staging`` (default ``$VGEN_FARM_SHARED_STAGING`` = 1): nodes write outputs straight into the
    project's staging folder on a shared filesystem instead of returning them through the object store."""
    where = connect(text)
    ray = _ray()
    if shared_staging is None:
        shared_staging = os.environ.get("VGEN_FARM_SHARED_STAGING", "").strip() in ("1", "true", "yes")
    if where.kind == "local":
        per = threads or max(1, (os.cpu_count() or 1) // where.workers)
        return [make_executor(device="cpu", threads=per, shared_staging=shared_staging, heartbeat=heartbeat)
                for _ in range(where.workers)]
    executors = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 0))
        for _ in range(gpus):
            executors.append(make_executor(device="cuda", num_cpus=0, num_gpus=1, node_id=node["NodeID"],
                                           shared_staging=shared_staging, heartbeat=heartbeat))
        if not gpus and cpus:
            executors.append(make_executor(device="cpu", threads=threads or cpus, num_cpus=cpus,
                                           node_id=node["NodeID"], shared_staging=shared_staging, heartbeat=heartbeat))
    if not executors:
        raise InvalidRequest(f"farm {text!r}: the cluster has no node with a CPU or GPU to run jobs on.",
                             hint="Add nodes (`ray start --address HEAD:6379`); the jobs stay queued.", field="farm")
    return executors


def disconnect() -> None:
    """Leave the cluster (stops a local Ray started by :func:`connect`)."""
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()
