"""``vgen models push WEIGHTS_ID --farm ADDRESS``: copy an installed weights folder to every node's models directory.

Each file goes through Ray's object store in chunks (a node pulls them; no shared filesystem needed), its sha256 is
checked on arrival, and the node registers the folder under the same id only once every file arrived intact.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sdk.errors import InvalidRequest

#: bytes per object-store chunk
CHUNK = 8 * 2**20


def _file_chunks(path: Path) -> tuple[list[Any], str]:
    import ray

    refs, digest = [], hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(CHUNK):
            digest.update(data)
            refs.append(ray.put(data))
    return refs, digest.hexdigest()


def push_weights(weights_id: str, address: str, *, node_models_dir: str | None = None) -> list[str]:
    """Copy installed weights ``weights_id`` to every alive node of the farm at ``address``; return one line per
    node (``node: path``). ``node_models_dir`` overrides the nodes' models directory (a test's "node" on this
    machine). Raises WeightsMissing (not installed here), InvalidRequest (address; a node that refused the files,
    naming it and the file)."""
    from sdk import weights as w
    from sdk.farm import actor_class, connect

    src, _ = w.resolve(weights_id, None)
    entry = w.installed(weights_id) or {}
    connect(address)  # before importing Ray (it sets up token authentication)
    import ray

    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    files = [p for p in sorted(src.rglob("*")) if p.is_file()] if src.is_dir() else [src]
    base = src if src.is_dir() else src.parent
    sent = {p.relative_to(base).as_posix(): _file_chunks(p) for p in files}
    lines = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        actor = actor_class(num_cpus=0, max_restarts=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            node["NodeID"], soft=False)).remote("cpu", None, None, False, node_models_dir)
        try:
            name = ray.get(actor.info.remote(), timeout=120)["node"]
            try:
                ray.get([actor.receive_file.remote(weights_id, rel, refs, sha) for rel, (refs, sha) in sent.items()])
                lines.append(ray.get(actor.install_weights.remote(weights_id, entry.get("licence", ""))))
            except ray.exceptions.RayTaskError as exc:
                raise InvalidRequest(f"Node {name} refused weights {weights_id!r}: {exc.cause}",
                                     hint="Check that node's disk and models directory, then push again.",
                                     field="weights") from None
        finally:
            ray.kill(actor)
    return lines
