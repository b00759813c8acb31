"""The global models directory and its registry (DESIGN §3, §5).

Weights are global, not per project: ``models_dir()`` (``$VGEN_MODELS_DIR`` or the platform's
user data dir) holds downloaded/copied weights and ``registry.json``, a list of entries::

    {"id", "path", "format", "source": "imported" | "fetched" | "tiny",
     "sha256": {relative file: hex}, "installed_at", "licence",
     "origin": {"source", "repo_id", "revision", "all_files"}}   # fetched entries only

Weights fetched under two ids from the same repository are stored once (:mod:`sdk.weights_fetch`: hard links).

Imported weights are referenced in place by default. Nothing here imports torch.

Ids: weights are registered under a known weights id (a :class:`~sdk.specs.WeightsSpec` of a plugin; the files must
then fit that spec's generators) or under the user's own id in the ``user.`` namespace (``user.my-finetune``),
checked against the generator it is used with when a job is queued. Every import is inspected first, without running
code (:mod:`sdk.weights_check`): nothing is registered when it does not fit.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdk.errors import InvalidRequest, VGenError, WeightsMissing
from sdk.specs import WeightsSpec, load_entry

if TYPE_CHECKING:
    from sdk.plugins import PluginRegistry

log = logging.getLogger(__name__)

REGISTRY_NAME = "registry.json"
REGISTRY_VERSION = 1
#: Plain (unregistered) files above this size are fingerprinted by size+mtime, not hashed.
FINGERPRINT_LIMIT = 64 * 1024 * 1024
CHECKPOINT_SUFFIXES = (".pth", ".ckpt", ".bin", ".safetensors", ".pt")
#: Seconds to wait on the hub before a download counts as offline.
HUB_TIMEOUT = 10
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
#: the namespace of the user's own weights ids (``user.my-finetune``); every other id must be a known WeightsSpec id
USER_NAMESPACE = "user."


def models_dir() -> Path:
    """The global models directory: ``$VGEN_MODELS_DIR`` if set, else ``<user data dir>/vgen-studio/models``."""
    env = os.environ.get("VGEN_MODELS_DIR")
    if env:
        return Path(env).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir("vgen-studio")) / "models"


def _fixes(weights_id: str) -> str:
    return (f"Run `vgen models fetch {weights_id}` (downloads; check its licence) or "
            f"`vgen models import {weights_id} PATH` or, for a test run, "
            f"`vgen models make-tiny {weights_id} DIR`.")


# -- registry ----------------------------------------------------------------------------
def _registry_path() -> Path:
    return models_dir() / REGISTRY_NAME


def _read_registry() -> dict[str, dict[str, Any]]:
    path = _registry_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise VGenError(f"The models registry {path} cannot be read: {exc}",
                        hint="Fix or delete it, then re-import your weights.") from None
    entries = data.get("weights", []) if isinstance(data, dict) else []
    return {e["id"]: e for e in entries if isinstance(e, dict) and "id" in e}


def _write_registry(entries: dict[str, dict[str, Any]]) -> None:
    """Write the registry atomically (temporary file in the same folder + ``os.replace``)."""
    path = _registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"version": REGISTRY_VERSION, "weights": [entries[k] for k in sorted(entries)]}
    fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _register(entry: dict[str, Any]) -> dict[str, Any]:
    entries = _read_registry()  # re-read right before writing: keeps others' recent changes
    entries[entry["id"]] = entry
    _write_registry(entries)
    return entry


def list_installed() -> list[dict[str, Any]]:
    """All registered weights, sorted by id (each entry a dict as in the module docstring)."""
    entries = _read_registry()
    return [entries[k] for k in sorted(entries)]


def installed(weights_id: str) -> dict[str, Any] | None:
    """The registry entry of ``weights_id``, or None when it is not installed."""
    return _read_registry().get(weights_id)


def remove(weights_id: str, *, delete_files: bool = False) -> bool:
    """Unregister ``weights_id``; with ``delete_files`` also delete its files if they live
    inside ``models_dir()`` (weights referenced elsewhere are never deleted). True if it was registered."""
    entries = _read_registry()
    entry = entries.pop(weights_id, None)
    if entry is None:
        return False
    _write_registry(entries)
    path = Path(entry["path"])
    if delete_files and path.exists() and path.resolve().is_relative_to(models_dir().resolve()):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return True


# -- resolving ---------------------------------------------------------------------------
def resolve(weights: str | None, default_id: str | None) -> tuple[Path, str | None]:
    """Where the weights a job asks for are: ``(path, id)``.

    ``weights`` may be an existing path (→ ``(absolute path, None)``) or an installed id
    (→ ``(its path, id)``); None means ``default_id``. Raises :class:`WeightsMissing` naming
    the id and the three ways to get it.
    """
    if weights is not None and str(weights).strip():
        weights = str(weights).strip()
        candidate = Path(weights).expanduser()
        if candidate.exists():
            return candidate.absolute(), None
        weights_id = weights
    elif default_id:
        weights_id = default_id
    else:
        raise WeightsMissing("No weights were given and this generator has no default weights.",
                             hint="Pass weights as an installed id or a path; `vgen models list` shows what is installed.")
    entry = installed(weights_id)
    if entry is None:
        if any(sep in weights_id for sep in ("/", "\\")) or weights_id.startswith(("~", ".")):
            raise WeightsMissing(f"No weights at {weights_id}: the path does not exist.",
                                 hint="Check the path, or give an installed weights id (`vgen models list`).")
        raise WeightsMissing(f"Weights {weights_id!r} are not installed.", hint=_fixes(weights_id))
    path = Path(entry["path"])
    if not path.exists():
        raise WeightsMissing(f"Weights {weights_id!r} are registered at {path}, but that path no longer exists.",
                             hint=_fixes(weights_id))
    return path, weights_id


# -- hashing -----------------------------------------------------------------------------
def _files(root: Path) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every file under ``root`` (hidden files/folders skipped)."""
    if root.is_file():
        return [(root.name, root)]
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        out.append((rel.as_posix(), p))
    return sorted(out)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256_tree(path: Path) -> dict[str, str]:
    """Full sha256 of every file under ``path`` (or of the file itself), by relative path."""
    return {rel: _sha256(p) for rel, p in _files(Path(path))}


def hash_weights(path: Path | str) -> dict[str, str]:
    """Hashes recorded in an output's recipe for the weights at ``path``.

    Installed weights: the sha256 cached in their registry entry. A plain path: a cheap but
    stable fingerprint, sha256 for files ≤ 64 MB and ``"size:<bytes>,mtime_ns:<ns>"`` for larger ones.
    """
    path = Path(path).expanduser().absolute()
    for entry in _read_registry().values():
        if entry.get("sha256") and Path(entry["path"]).absolute() == path:
            return dict(entry["sha256"])
    out = {}
    for rel, p in _files(path):
        st = p.stat()
        out[rel] = _sha256(p) if st.st_size <= FINGERPRINT_LIMIT else f"size:{st.st_size},mtime_ns:{st.st_mtime_ns}"
    return out


# -- installing --------------------------------------------------------------------------
def detect_format(path: Path) -> str | None:
    """``"diffusers"`` (a folder with ``model_index.json``), ``"vgen"`` (``.pth/.ckpt/.bin/...``
    checkpoint files), or None when neither."""
    path = Path(path)
    if path.is_file():
        return "vgen" if path.suffix.lower() in CHECKPOINT_SUFFIXES else None
    if (path / "model_index.json").is_file():
        return "diffusers"
    if any(p.suffix.lower() in CHECKPOINT_SUFFIXES for _, p in _files(path)):
        return "vgen"
    return None


def _check_id(weights_id: str) -> None:
    if not isinstance(weights_id, str) or not _ID_RE.match(weights_id) or weights_id == USER_NAMESPACE:
        raise InvalidRequest(f"Invalid weights id {weights_id!r}.",
                             hint="Use letters, digits, '.', '_' and '-', e.g. modelscope_t2v.v1_5 or user.my-finetune.",
                             field="weights_id")


def _known_spec(weights_id: str, registry: "PluginRegistry") -> WeightsSpec | None:
    """The WeightsSpec of ``weights_id``; None for a ``user.`` id; InvalidRequest for anything else."""
    if weights_id in registry.weights:
        return registry.weights[weights_id]
    if weights_id.startswith(USER_NAMESPACE):
        return None
    used = registry.generators.get(weights_id) or registry.trainers.get(weights_id)
    if used is not None:
        own = f" ({used.default_weights})" if used.default_weights else ""
        raise InvalidRequest(f"{weights_id!r} is a {'trainer' if used.kind == 'train' else 'generator'} id, "
                             "not a weights id.",
                             hint=f"Import under the weights id it reads{own}, or under your own id, e.g. "
                                  f"{USER_NAMESPACE}{weights_id.split('.')[-1]}.", field="weights_id")
    raise InvalidRequest(f"Unknown weights id {weights_id!r}.",
                         hint=f"Use a known weights id (`vgen models list`) or your own id in the {USER_NAMESPACE} "
                              f"namespace, e.g. {USER_NAMESPACE}my-finetune.", field="weights_id")


def _entry(weights_id: str, path: Path, fmt: str, source: str, licence: str, sha: dict[str, str]) -> dict[str, Any]:
    return {
        "id": weights_id, "path": str(path), "format": fmt, "source": source, "sha256": sha,
        "installed_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "licence": licence,
    }


def import_weights(weights_id: str, src: Path, *, copy: bool = False, licence: str = "",
                   registry: "PluginRegistry | None" = None) -> dict[str, Any]:
    """Register weights you already have (a diffusers folder or VGen checkpoint files) as ``weights_id``.

    ``weights_id`` is a known weights id (the files must fit its generators) or the user's own ``user.<name>``
    (files checked for integrity now, for fit when queued). The files are inspected without running code first
    (:func:`sdk.weights_check.check_weights`). By default they are referenced in place; ``copy=True`` copies them
    into ``models_dir()/weights_id`` first. Computes the sha256 of every file. Returns the entry.
    ``registry`` defaults to the installed plugins. Raises InvalidRequest (id, path), IncompatibleCheckpoint or
    WeightsMissing naming the first problem; nothing is registered then.
    """
    from sdk.weights_check import check_weights, weights_layouts

    _check_id(weights_id)
    if registry is None:
        from sdk.plugins import load_plugins

        registry = load_plugins()
    spec = _known_spec(weights_id, registry)
    src = Path(src).expanduser().absolute()
    if not src.exists():
        raise InvalidRequest(f"No weights at {src}: the path does not exist.", hint="Check the path.", field="path")
    if not _files(src) or (src.is_file() and src.stat().st_size == 0):
        raise InvalidRequest(f"{src} is empty.", hint="Point at the folder or file holding the weights.", field="path")
    fmt = detect_format(src)
    if fmt is None:
        raise InvalidRequest(
            f"{src} does not look like model weights.",
            hint="Expected a diffusers folder (with model_index.json) or VGen checkpoint files ("
            + ", ".join(CHECKPOINT_SUFFIXES) + ").", field="path")
    found = check_weights(src, weights_layouts(registry, spec) if spec else [], what=weights_id)
    fmt = found if found in ("diffusers", "vgen", "checkpoint") else fmt
    if copy:
        dest = models_dir() / weights_id
        if not (dest.exists() and dest.resolve() == src.resolve()):
            src = _copy_into(src, dest)
    return _register(_entry(weights_id, src, fmt, "imported", licence, sha256_tree(src)))


def _copy_into(src: Path, dest: Path) -> Path:
    """Copy ``src`` to ``dest`` via a temporary sibling, replacing ``dest`` only once complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        target = tmp / "w"
        if src.is_dir():
            shutil.copytree(src, target)
        else:
            target.mkdir()
            shutil.copy2(src, target / src.name)
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        os.replace(target, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest if src.is_dir() else dest / src.name


def make_tiny(spec: WeightsSpec, dest: Path, format: str | None = None, register: bool = False,
              size: str = "tiny") -> Path:
    """Write the tiny twin of ``spec`` (random values, tiny dimensions, same on-disk format) into ``dest``.

    Calls ``spec.tiny`` (``"pkg.module:function"``, ``function(dir, format, ...)``). ``format``
    defaults to ``spec.formats[0]``; one the spec does not offer raises :class:`InvalidRequest`.
    With ``register=True`` it is registered under ``spec.id`` with source ``"tiny"``.
    Returns the weights path. Tiny weights produce noise.

    ``size="real"`` writes random weights at the released dimensions instead (gigabytes, streamed to disk: for
    benchmarks and GPU checks), where the builder offers it (its function takes ``size``).
    """
    fmt = format or (spec.formats[0] if spec.formats else "diffusers")
    if not spec.tiny:
        raise InvalidRequest(f"Weights {spec.id!r} have no tiny twin.",
                             hint=f"Fetch or import the real weights: {_fixes(spec.id)}", field="weights")
    if fmt not in spec.formats:
        raise InvalidRequest(f"Weights {spec.id!r} have no {fmt!r} format.",
                             hint="Choose one of: " + ", ".join(spec.formats) + ".", field="format")
    if size not in ("tiny", "real"):
        raise InvalidRequest(f"Unknown twin size {size!r}.", hint="Use tiny or real.", field="size")
    builder = load_entry(spec.tiny)
    if size != "tiny":
        import inspect

        if "size" not in inspect.signature(builder).parameters:
            raise InvalidRequest(f"Weights {spec.id!r} have no {size}-size twin, only a tiny one.",
                                 hint="Leave --size out, or use modelscope-t2v / i2vgen-xl weights.", field="size")
    dest = Path(dest).expanduser().absolute()
    dest.mkdir(parents=True, exist_ok=True)
    result = builder(dest, fmt) if size == "tiny" else builder(dest, fmt, size=size)
    path = Path(result).absolute() if result else dest
    if not path.exists() or not _files(path):
        raise VGenError(f"The tiny-weights builder of {spec.id!r} wrote nothing to {path}.",
                        hint=f"This is a bug in the plugin that provides {spec.tiny}.")
    if register:
        what = "tiny" if size == "tiny" else "real-size"
        _register(_entry(spec.id, path, fmt, "tiny", f"{what} random weights (they produce noise)", sha256_tree(path)))
    return path


def fetch(spec: WeightsSpec, *, dest: Path | None = None, mirror: Path | None = None) -> dict[str, Any]:
    """Download ``spec``'s snapshot and register it; returns the entry. Files already fetched for another id from
    the same repository are hard-linked, not downloaded again; ``mirror`` (default ``$VGEN_MODELS_MIRROR``) is a
    local folder used instead of the hub. See :mod:`sdk.weights_fetch`.

    The entry's ``licence`` is the spec's: show it (VGen weights are research/non-commercial).
    Offline or any hub error fails within about ``HUB_TIMEOUT`` seconds with :class:`WeightsMissing`.
    """
    from sdk.weights_fetch import fetch as _fetch

    return _fetch(spec, dest=dest, mirror=mirror)
