"""``vgen models fetch``: weights downloaded once, however many ids they are registered under (DESIGN §5).

**Stored once.** A fetched entry records where it came from (``origin``: source, repo id, revision). Before anything
is downloaded, each file a spec lists is looked for among the entries already fetched from the same origin: a file
found there (with its recorded sha256, and the spec's if it gives one) is hard-linked into the new id's folder —
one copy on disk, whichever id is removed first — and only the files found nowhere are downloaded. So
``dreamvideo.modelscope_v1_5`` after ``modelscope_t2v.v1_5`` (the same files of ``iic/dreamvideo-t2v``) downloads
nothing, and ``videolcm.videolcm_t2v`` after ``tf_t2v.tft2v_t2v_16f`` downloads only its UNet: the OpenCLIP and VAE
files of ``iic/tf-t2v`` are shared. Hard links are what the model cache sees as one file too
(:mod:`sdk.ml.components`), so the methods then share one loaded VAE and text encoder. Where the file system cannot
hard-link, the file is copied (logged).

**A mirror.** With ``VGEN_MODELS_MIRROR`` set to a folder, files come from ``<mirror>/<source>/<repo id>/`` (or
``<repo id>@<revision>/`` when the spec pins a revision and that folder exists) instead of the network: a lab's
shared disk, or an offline machine given a copy of the hub's files.

Nothing here imports torch.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sdk.errors import InvalidRequest, VGenError, WeightsMissing
from sdk.specs import WeightsSpec

log = logging.getLogger("sdk.weights")

MIRROR_ENV = "VGEN_MODELS_MIRROR"


def origin_of(spec: WeightsSpec) -> dict[str, Any]:
    """What identifies a download: the hub, the repo and the revision (None: the default branch)."""
    return {"source": spec.source, "repo_id": spec.repo_id, "revision": spec.revision}


def fetch(spec: WeightsSpec, *, dest: Path | None = None, mirror: Path | None = None) -> dict[str, Any]:
    """Get ``spec``'s files into ``dest`` (default ``models_dir()/spec.id``) and register them; returns the entry.

    Files already fetched for another id from the same origin are hard-linked, the rest come from ``mirror``
    (default ``$VGEN_MODELS_MIRROR``) or the hub (huggingface_hub or modelscope). The entry's ``licence`` is the
    spec's: show it (VGen weights are research/non-commercial). Offline or any hub error fails within about
    ``HUB_TIMEOUT`` seconds with :class:`WeightsMissing`; nothing is registered then."""
    from sdk import weights as w

    if spec.source == "none" or not spec.repo_id:
        raise InvalidRequest(f"Weights {spec.id!r} have no download source.",
                             hint=f"Import them from disk: `vgen models import {spec.id} PATH`.", field="weights")
    dest = Path(dest).expanduser().absolute() if dest is not None else w.models_dir() / spec.id
    if mirror is None and os.environ.get(MIRROR_ENV):
        mirror = Path(os.environ[MIRROR_ENV]).expanduser()
    created = not dest.exists()
    origin = origin_of(spec)
    known = {f.path: f.sha256 for f in spec.files}
    shared = _link_from_other_ids(spec, origin, dest, known)
    missing = [p for p in known if p not in shared] if known else (None if not shared else [])
    if spec.licence:
        log.info("Fetching %s from %s; licence: %s", spec.id, spec.source, spec.licence)
    if shared:
        log.info("%s: %d file(s) already fetched for %s, linked instead of downloaded", spec.id, len(shared),
                 ", ".join(sorted({donor for _, donor in shared.values()})))
    try:
        if missing is None or missing:
            if mirror is not None:
                _copy_from_mirror(spec, Path(mirror), dest, missing)
            elif spec.source == "modelscope":
                _fetch_modelscope(spec, dest, missing)
            else:
                _fetch_huggingface(spec, dest, missing)
    except VGenError:
        raise
    except Exception as exc:  # offline, unknown repo, gated, disk full ...
        if created and dest.is_dir() and not w._files(dest):
            shutil.rmtree(dest, ignore_errors=True)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsMissing(
            f"Could not download {spec.id} from {spec.source}: {reason}",
            hint=f"Check the network, or import weights you already have: vgen models import {spec.id} PATH",
        ) from exc
    # hash what came now; a linked file is the donor's file, whose sha256 the registry already holds
    sha = {rel: shared[rel][0] if rel in shared else w._sha256(p) for rel, p in w._files(dest)}
    for rel, expected in known.items():
        if rel not in sha:
            raise WeightsMissing(f"{rel} of {spec.id} was not downloaded.", hint=f"Delete {dest} and fetch again.")
        if expected and sha[rel] != expected:
            raise WeightsMissing(f"Downloaded {rel} of {spec.id} does not match its sha256.",
                                 hint=f"Delete {dest} and fetch again.")
    fmt = w.detect_format(dest) or (spec.formats[0] if spec.formats else "diffusers")
    entry = w._entry(spec.id, dest, fmt, "fetched", spec.licence, sha)
    entry["origin"] = dict(origin, all_files=not known)
    return w._register(entry)


def _link_from_other_ids(spec: WeightsSpec, origin: dict[str, Any], dest: Path,
                         known: dict[str, str | None]) -> dict[str, tuple[str, str]]:
    """Hard-link into ``dest`` the files of ``spec`` that entries fetched from ``origin`` already hold (all of a
    donor's files when the spec lists none and the donor fetched the whole repo). Returns {relative path: (sha256,
    donor id)} of what was linked."""
    from sdk import weights as w

    out: dict[str, tuple[str, str]] = {}
    for entry in w.list_installed():
        got = entry.get("origin") or {}
        if entry["id"] == spec.id or {k: got.get(k) for k in origin} != origin or not isinstance(entry.get("sha256"), dict):
            continue
        if not known and not got.get("all_files"):
            continue
        root = Path(entry["path"])
        for rel, digest in entry["sha256"].items():
            if rel in out or (known and rel not in known) or (known.get(rel) and known[rel] != digest):
                continue
            src = root / rel
            if not src.is_file() or (dest / rel).resolve() == src.resolve():
                continue
            _link(src, dest / rel)
            out[rel] = (digest, entry["id"])
    return out


def _link(src: Path, target: Path) -> None:
    """``target`` becomes a hard link to ``src`` (a copy where the file system cannot link), replacing it whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and os.path.samefile(src, target):
        return
    tmp = target.with_name(f".{target.name}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError as exc:  # another file system, FAT, a share without links
        log.warning("cannot hard-link %s (%s): copying it instead", src, exc)
        shutil.copy2(src, tmp)
    os.replace(tmp, target)


def _copy_from_mirror(spec: WeightsSpec, mirror: Path, dest: Path, files: list[str] | None) -> None:
    base = mirror / spec.source / spec.repo_id
    pinned = base.with_name(f"{base.name}@{spec.revision}") if spec.revision else None
    if pinned is not None and pinned.is_dir():
        base = pinned
    if not base.is_dir():
        raise WeightsMissing(f"The mirror has no {spec.source} repository {spec.repo_id} (looked in {base}).",
                             hint=f"Copy its files there, or unset {MIRROR_ENV} to download from {spec.source}.")
    rels = files if files is not None else [p.relative_to(base).as_posix() for p in sorted(base.rglob("*"))
                                            if p.is_file() and not p.name.startswith(".")]
    lacking = [r for r in rels if not (base / r).is_file()]
    if lacking:
        raise WeightsMissing(f"The mirror {base} lacks {', '.join(lacking)} of {spec.id}.",
                             hint=f"Copy them there, or unset {MIRROR_ENV} to download from {spec.source}.")
    for rel in rels:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(base / rel, tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)


def _fetch_huggingface(spec: WeightsSpec, dest: Path, patterns: list[str] | None) -> None:
    from sdk.weights import HUB_TIMEOUT

    for var in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):
        os.environ.setdefault(var, str(HUB_TIMEOUT))  # read when huggingface_hub is first imported
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from huggingface_hub import snapshot_download

    snapshot_download(spec.repo_id, revision=spec.revision, allow_patterns=patterns, local_dir=dest,
                      etag_timeout=HUB_TIMEOUT)


def _fetch_modelscope(spec: WeightsSpec, dest: Path, patterns: list[str] | None) -> None:
    try:
        from modelscope.hub.snapshot_download import snapshot_download
    except ImportError:
        raise VGenError(f"Fetching {spec.id} needs the modelscope hub client, which is not installed.",
                        hint="pip install vgen-studio[modelscope]") from None
    kwargs: dict[str, Any] = {"local_dir": str(dest)}
    if spec.revision:
        kwargs["revision"] = spec.revision
    if patterns:
        kwargs["allow_patterns"] = patterns
    snapshot_download(spec.repo_id, **kwargs)
