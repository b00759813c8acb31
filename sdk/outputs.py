"""Outputs carry their own recipe (DESIGN §6).

An output folder holds::

    frames/000000.png …   every frame, lossless (exports and comparisons are exact)
    thumb.png             the middle frame, scaled down to fit 256×256
    video.mp4             H.264 yuv420p, the full job spec as JSON in the MP4 ``comment`` tag
    meta.json             the same job spec, pretty-printed; written last

This module imports numpy, PIL and imageio-ffmpeg only (never torch).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sdk.errors import InvalidRequest
from sdk.video import Video

#: Marks a JSON comment as a VGen Studio recipe; bumped when the meta layout changes.
META_SCHEMA = "vgen-studio.output/1"
#: Formats :func:`export` writes.
EXPORT_FORMATS = ("mp4", "gif", "webp", "png")
THUMB_SIZE = 256
#: x264 constant rate factor: 17 is visually lossless; frames/ keeps the exact pixels anyway.
MP4_CRF = 17
# One command-line argument may hold at most 128 KiB on Linux; larger recipes are muxed from a file.
_MAX_ARG_BYTES = 100_000


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


# -- writing -----------------------------------------------------------------------------
def _even_pad(frames: np.ndarray) -> np.ndarray:
    """Pad odd widths/heights by repeating the last column/row (yuv420p needs even sizes)."""
    _, h, w, _ = frames.shape
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return frames
    return np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")


def _escape_ffmetadata(value: str) -> str:
    for ch in ("\\", "=", ";", "#", "\n"):
        value = value.replace(ch, "\\" + ch)
    return value


def write_mp4(path: Path, video: Video, meta: dict[str, Any] | None = None) -> Path:
    """Encode ``video`` as H.264 yuv420p MP4 at ``path`` with ``meta`` as JSON in the ``comment`` tag.

    yuv420p needs even sizes: an odd width or height is padded by one pixel, repeating the
    right column / bottom row, so a 33×17 video is stored as 34×18 (frames/ keeps the exact size).
    """
    import imageio_ffmpeg

    path = Path(path)
    frames = _even_pad(video.frames)
    comment = json.dumps(meta, ensure_ascii=True, separators=(",", ":")) if meta is not None else None
    big = comment is not None and len(comment) > _MAX_ARG_BYTES
    target = path.with_name(path.name + ".enc.mp4") if big else path
    params = ["-crf", str(MP4_CRF), "-preset", "medium"]
    if comment is not None and not big:
        params += ["-metadata", "comment=" + comment]
    params += ["-movflags", "+faststart"]
    writer = imageio_ffmpeg.write_frames(
        str(target), (frames.shape[2], frames.shape[1]), fps=video.fps, codec="libx264",
        pix_fmt_in="rgb24", pix_fmt_out="yuv420p", macro_block_size=1, quality=None,
        ffmpeg_log_level="error", output_params=params,
    )
    writer.send(None)
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()
    if big:  # mux the recipe from an ffmetadata file instead of the command line
        meta_txt = path.with_name(path.name + ".ffmeta")
        meta_txt.write_text(";FFMETADATA1\ncomment=" + _escape_ffmetadata(comment) + "\n", encoding="utf-8")
        try:
            _run_ffmpeg(["-y", "-i", str(target), "-f", "ffmetadata", "-i", str(meta_txt), "-map", "0",
                         "-map_metadata", "1", "-c", "copy", "-movflags", "+faststart", str(path)])
        finally:
            meta_txt.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
    return path


def _write_png(path: Path, frame: np.ndarray) -> None:
    Image.fromarray(frame, "RGB").save(path, format="PNG", compress_level=4)


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def check_video(spec: Any, params: Any, result: Any) -> Video:
    """What a generator (or extractor) returned, checked: a :class:`Video` whose frame count and size are those
    asked for (``num_frames``, ``height``, ``width`` in its params), unless the spec ``resizes``. Raises
    :class:`VGenError` naming the plugin and what it returned."""
    from sdk.errors import VGenError

    who = f"{spec.id} ({spec.entry})"
    if result is None:
        raise VGenError(f"The generator {who} returned nothing (None) instead of a Video.",
                        hint="This is a bug in that plugin: generate() must return sdk.Video(frames, fps).")
    if not isinstance(result, Video):
        raise VGenError(f"The generator {who} returned a {type(result).__name__}, not a Video.",
                        hint="This is a bug in that plugin: generate() must return sdk.Video(frames, fps).")
    if getattr(spec, "resizes", False):
        return result
    asked = {k: getattr(params, k, None) for k in ("num_frames", "height", "width")}
    got = {"num_frames": result.num_frames, "height": result.frames.shape[1], "width": result.frames.shape[2]}
    wrong = [f"{k} {got[k]} (asked {asked[k]})" for k in asked if isinstance(asked[k], int) and asked[k] != got[k]]
    if wrong:
        raise VGenError(f"The generator {who} returned a video of the wrong shape: {', '.join(wrong)}.",
                        hint="This is a bug in that plugin; a plugin that changes the size or frame count on "
                             "purpose (an upscaler, an interpolator) declares resizes=True.")
    return result


def write_output(dest_dir: Path, video: Video, meta: dict[str, Any]) -> dict[str, Path]:
    """Write a complete output folder for ``video`` with recipe ``meta`` into ``dest_dir``.

    Order: ``frames/``, ``thumb.png``, ``video.mp4`` (encoded under a temporary name, then
    renamed), ``meta.json`` last (also via a temporary name): a folder without ``meta.json`` is
    incomplete. Atomic publication (renaming the staging folder) is the service's job.
    Returns ``{"frames", "thumb", "video", "meta"}`` → paths.
    """
    dest_dir = Path(dest_dir)
    json.dumps(meta)  # fail before writing anything if the recipe is not JSON
    frames_dir = dest_dir / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(video.frames):
        _write_png(frames_dir / f"{i:06d}.png", frame)
    thumb = Image.fromarray(video.frames[video.num_frames // 2], "RGB")
    thumb.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
    thumb.save(dest_dir / "thumb.png", format="PNG")
    mp4_tmp = dest_dir / "video.part.mp4"
    write_mp4(mp4_tmp, video, meta)
    os.replace(mp4_tmp, dest_dir / "video.mp4")
    _write_json_atomic(dest_dir / "meta.json", meta)
    return {
        "frames": frames_dir,
        "thumb": dest_dir / "thumb.png",
        "video": dest_dir / "video.mp4",
        "meta": dest_dir / "meta.json",
    }


# -- reading -----------------------------------------------------------------------------
def _run_ffmpeg(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", *args],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise InvalidRequest(
            "ffmpeg could not read or write the video: "
            + (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["unknown error"])[-1],
            hint="Check that the file is a complete video.",
        )
    return proc


def _parse_ffmetadata(text: str) -> dict[str, str]:
    """Global tags of an ``-f ffmetadata`` dump (backslash escapes undone; sections ignored)."""
    tags: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        if text[i] in ";#" or text[i] == "\n":  # comment / header / empty line
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if text[i] == "[":  # [STREAM], [CHAPTER]: only global tags matter here
            break
        key: list[str] = []
        value: list[str] = []
        cur, seen_eq = key, False
        while i < n and text[i] != "\n":
            ch = text[i]
            if ch == "\\" and i + 1 < n:
                cur.append(text[i + 1])
                i += 2
                continue
            if ch == "=" and not seen_eq:
                cur, seen_eq = value, True
            else:
                cur.append(ch)
            i += 1
        i += 1
        if seen_eq:
            tags["".join(key).lower()] = "".join(value)
    return tags


def read_output_meta(output_dir: Path) -> dict[str, Any]:
    """An output folder's recipe (``meta.json``), or ``{}`` when it is missing or not a JSON object."""
    try:
        meta = json.loads((Path(output_dir) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def read_meta_from_mp4(path: Path) -> dict[str, Any]:
    """The recipe stored in an MP4's ``comment`` tag (see :func:`write_output`).

    Raises :class:`InvalidRequest` when the file is missing, unreadable, or its comment is not
    a VGen Studio recipe (a JSON object).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidRequest(f"No video at {path}.", hint="Give the path of an output's video.mp4.", field="path")
    proc = _run_ffmpeg(["-i", str(path), "-f", "ffmetadata", "-"])
    comment = _parse_ffmetadata(proc.stdout.decode("utf-8", "replace")).get("comment")
    meta: Any = None
    if comment:
        try:
            meta = json.loads(comment)
        except ValueError:
            meta = None
    if not isinstance(meta, dict):
        raise InvalidRequest(
            f"{path.name} carries no VGen Studio recipe (no JSON job spec in its comment tag).",
            hint="Only videos rendered by VGen Studio can be re-queued from their file.",
            field="path",
        )
    return meta


def read_frames(output_dir: Path) -> np.ndarray:
    """uint8 ``[F, H, W, 3]`` frames of an output: exact from ``frames/*.png`` when present,
    else decoded from ``video.mp4`` (lossy; the even-size padding is cropped off when
    ``meta.json`` gives ``params.width``/``params.height``)."""
    output_dir = Path(output_dir)
    pngs = sorted((output_dir / "frames").glob("[0-9]*.png")) if (output_dir / "frames").is_dir() else []
    if pngs:
        out = []
        for p in pngs:
            with Image.open(p) as im:
                out.append(np.asarray(im.convert("RGB")))
        return np.stack(out)
    mp4 = output_dir / "video.mp4"
    if not mp4.is_file():
        raise InvalidRequest(f"{output_dir} holds neither frames/ nor video.mp4.",
                             hint="Is this an output folder?", field="path")
    from sdk.video import decode_video_file

    frames, _ = decode_video_file(mp4, hint="The file may be truncated.")
    try:
        params = json.loads((output_dir / "meta.json").read_text(encoding="utf-8")).get("params") or {}
        w, h = int(params["width"]), int(params["height"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return frames
    if frames.shape[1] in (h, h + 1) and frames.shape[2] in (w, w + 1):
        frames = np.ascontiguousarray(frames[:, :h, :w])
    return frames


def _output_fps(output_dir: Path) -> float:
    """fps of an output: the MP4 stream's, else meta.json's ``params.fps``, else 8."""
    mp4 = output_dir / "video.mp4"
    if mp4.is_file():
        import imageio_ffmpeg

        reader = imageio_ffmpeg.read_frames(str(mp4))
        try:
            fps = next(reader).get("fps")
        finally:
            reader.close()
        if fps:
            return float(fps)
    try:
        fps = json.loads((output_dir / "meta.json").read_text(encoding="utf-8"))["params"]["fps"]
        return float(fps)
    except (OSError, ValueError, KeyError, TypeError):
        return 8.0


# -- export ------------------------------------------------------------------------------
def export(output_dir: Path, dest: Path, fmt: str, *, overwrite: bool = False) -> Path:
    """Export an output folder to ``dest`` as ``fmt``: ``mp4`` (a copy of video.mp4),
    ``gif`` (loops forever), ``webp`` (animated, lossy quality 90) or ``png`` (``dest`` is a
    folder of ``000000.png …`` with exactly the job's pixels).

    GIF and WebP encoders merge identical consecutive frames (adding their durations), so a
    still clip may hold fewer frames than the job rendered. An existing ``dest`` is refused
    unless ``overwrite=True``. Returns ``dest``.
    """
    output_dir, dest = Path(output_dir), Path(dest)
    fmt = fmt.lower().lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise InvalidRequest(f"Unknown export format {fmt!r}.",
                             hint="Choose one of: " + ", ".join(EXPORT_FORMATS) + ".", field="format")
    if not output_dir.is_dir():
        raise InvalidRequest(f"No output folder at {output_dir}.", hint="Give an outputs/<job-id> folder.",
                             field="path")
    exists = dest.exists() and (not dest.is_dir() or any(dest.iterdir()))
    if exists and not overwrite:
        raise InvalidRequest(f"{dest} already exists.", hint="Choose another name or pass overwrite=True.",
                             field="dest")
    if fmt != "png":
        if dest.is_dir():
            raise InvalidRequest(f"{dest} is a folder.", hint=f"Give a .{fmt} file name.", field="dest")
        dest.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mp4":
        src = output_dir / "video.mp4"
        if not src.is_file():
            raise InvalidRequest(f"{output_dir} has no video.mp4.", hint="Export gif/webp/png instead.",
                                 field="path")
        shutil.copyfile(src, dest)
        return dest
    if fmt == "png":
        return _export_png(output_dir, dest)
    frames = read_frames(output_dir)
    duration = max(1, round(1000.0 / _output_fps(output_dir)))
    images = [Image.fromarray(f, "RGB") for f in frames]
    tmp = dest.with_name(dest.name + ".part")
    if fmt == "gif":
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration,
                       loop=0, optimize=False, disposal=1)
    else:
        images[0].save(tmp, format="WEBP", save_all=True, append_images=images[1:], duration=duration,
                       loop=0, lossless=False, quality=90, method=4)
    os.replace(tmp, dest)
    return dest


def _export_png(output_dir: Path, dest: Path) -> Path:
    if dest.exists() and not dest.is_dir():
        raise InvalidRequest(f"{dest} is a file; PNG export writes a folder of frames.",
                             hint="Give a folder path.", field="dest")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):  # only reached with overwrite=True
        old.unlink()
    src_dir = output_dir / "frames"
    pngs = sorted(src_dir.glob("[0-9]*.png")) if src_dir.is_dir() else []
    if pngs:  # byte-for-byte copies of the job's lossless frames
        for i, p in enumerate(pngs):
            shutil.copyfile(p, dest / f"{i:06d}.png")
    else:
        for i, frame in enumerate(read_frames(output_dir)):
            _write_png(dest / f"{i:06d}.png", frame)
    return dest


# -- the recipe --------------------------------------------------------------------------
def build_meta(
    *,
    job_id: str,
    kind: str,
    spec_id: str,
    spec_version: str,
    params: dict[str, Any],
    seed: int,
    prompt: str | None,
    inputs: dict[str, Any],
    weights: str | None,
    weights_hashes: dict[str, str],
    timings: dict[str, float],
    extra: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The job spec an output carries (in ``meta.json`` and the MP4 comment). Stable keys:

    - ``schema``: ``"vgen-studio.output/1"`` (marks a VGen recipe)
    - ``app_version``: the SDK version that rendered it
    - ``created_at``: UTC ISO-8601 time, seconds
    - ``job_id``; ``kind``: ``"generate"`` | ``"train"``
    - ``spec_id``, ``spec_version``: the generator/trainer id and version
    - ``params``: validated parameters (JSON); ``seed``: int; ``prompt``: str or None
    - ``inputs``: input references → asset hashes (e.g. ``{"image": "ab12…"}``)
    - ``weights``: weights id or path (None when the spec needs none);
      ``weights_hashes``: relative file → sha256 (or size/mtime fingerprint for huge plain files)
    - ``timings``: name → seconds (e.g. ``load``, ``generate``, ``total``)
    - ``options``: run options (``precision``, ``memory_mode``, and ``oom_retry`` after an out-of-memory retry)
    - ``runtime`` (added by the worker): what it really ran on: device and its name, the dtype of the denoiser's
      weights and activations, attention backend, memory mode, preflight estimate, library versions
    - ``extra``: anything else, a dict (``{}`` when none)
    - ``source`` (only when the job took an earlier job's output as its source, e.g. an upscale): ``job_id``,
      ``output_id``, ``output`` (the source video's path inside the project), ``spec_id`` (its generator),
      ``prompt``, ``seed`` and ``input`` (the input it went into); see :mod:`sdk.chain`

    Raises :class:`InvalidRequest` if any value is not JSON-serialisable.
    """
    from sdk import __version__

    meta: dict[str, Any] = {
        "schema": META_SCHEMA,
        "app_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "job_id": str(job_id),
        "kind": kind,
        "spec_id": spec_id,
        "spec_version": spec_version,
        "params": dict(params),
        "seed": int(seed),
        "prompt": prompt,
        "inputs": dict(inputs),
        "weights": None if weights is None else str(weights),
        "weights_hashes": dict(weights_hashes),
        "timings": {k: float(v) for k, v in timings.items()},
        "options": dict(options or {}),
        "extra": dict(extra or {}),
    }
    if source:
        meta["source"] = dict(source)
    for key, value in meta.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"The recipe field {key!r} is not JSON: {exc}",
                                 hint="Pass plain numbers, strings, lists and dicts.", field=key) from None
    return meta
