"""Validating and staging files for the content-addressed asset store.

An import first copies the source into ``.staging/.import-*`` while hashing it, then decodes
*that copy* fully (images with PIL, videos with ffmpeg through imageio-ffmpeg). Only a copy
that decoded cleanly is moved (``os.replace``) to ``assets/<hash[:2]>/<hash>.<ext>``; a refused
file leaves nothing behind, neither in ``assets/`` nor in the database.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sdk.errors import InvalidRequest

MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_SIDE_PX = 8192
#: the smallest image side a model can use (subject image, mask, I2V input: all are resized to the video size)
MIN_SIDE_PX = 32
MAX_FRAMES = 10_000
#: a motion is change between frames: a video needs at least two
MIN_FRAMES = 2
ASSET_KINDS = ("image", "mask", "video")
IMPORT_PREFIX = ".import-"  # temp copies in .staging/; start-up recovery leaves them alone

_IMAGE_EXT = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "GIF": "gif", "TIFF": "tif"}
_VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif"}
_IMAGE_HINT = ("Accepted images: PNG, JPEG, WebP, BMP, TIFF or GIF, at least 32×32 px, at most 8192 px a side "
               "and 200 MB.")
_VIDEO_HINT = ("Accepted videos: MP4, MOV, WebM, MKV, AVI or animated GIF that ffmpeg can decode, "
               "at least 2 frames, at most 10,000 frames, 8192 px a side and 200 MB.")


@dataclass
class StagedAsset:
    """A validated copy waiting in ``.staging/`` to be moved into ``assets/``."""

    tmp_path: Path
    hash: str
    kind: str
    ext: str
    original_name: str
    width: int
    height: int
    num_frames: int
    fps: float | None
    bytes: int

    def rel_path(self) -> str:
        """Path of the final copy relative to the project folder."""
        return asset_rel_path(self.hash, self.ext)

    def discard(self) -> None:
        """Remove the temporary copy (after it was refused or found to be a duplicate)."""
        self.tmp_path.unlink(missing_ok=True)


def asset_rel_path(sha: str, ext: str) -> str:
    return f"assets/{sha[:2]}/{sha}.{ext}"


def _refuse(kind: str, src: Path, problem: str) -> InvalidRequest:
    hint = _VIDEO_HINT if kind == "video" else _IMAGE_HINT
    article = {"image": "an image", "mask": "a mask", "video": "a video"}[kind]
    return InvalidRequest(f"Cannot import {src} as {article}: {problem}.", hint=hint, field=kind)


def stage_asset(src: str | os.PathLike[str], kind: str, staging_root: Path) -> StagedAsset:
    """Copy ``src`` into ``staging_root`` while hashing it, then decode and check the copy.

    Raises InvalidRequest(field=kind) naming the file and the problem: missing, empty, too big,
    not decodable (corrupt or truncated), wrong type, too many pixels or frames.
    """
    if kind not in ASSET_KINDS:
        raise InvalidRequest(f"Unknown asset kind {kind!r}.", hint=f"Use one of {', '.join(ASSET_KINDS)}.",
                             field="kind")
    src = Path(src)
    if not src.exists():
        raise _refuse(kind, src, "the file does not exist")
    if not src.is_file():
        raise _refuse(kind, src, "it is not a file")
    size = src.stat().st_size
    if size == 0:
        raise _refuse(kind, src, "the file is empty (0 bytes)")
    if size > MAX_FILE_BYTES:
        limit_mb = MAX_FILE_BYTES // 2**20
        raise _refuse(kind, src, f"the file is too big ({size / 2**20:.0f} MB; the limit is {limit_mb} MB)")

    staging_root.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=IMPORT_PREFIX, suffix=src.suffix.lower(), dir=staging_root)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            while chunk := inp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if kind == "video":
            ext, width, height, frames, fps = _probe_video(tmp, src)
        else:
            ext, width, height = _probe_image(tmp, src, kind)
            frames, fps = 1, None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return StagedAsset(tmp, digest.hexdigest(), kind, ext, src.name, width, height, frames, fps, size)


def _looks_like_video(path: Path, src: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(12)
    return (head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3"  # MP4/MOV, Matroska/WebM
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI ") or src.suffix.lower() in _VIDEO_SUFFIXES - {".gif"})


def _probe_image(path: Path, src: Path, kind: str) -> tuple[str, int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            fmt = img.format or ""
            width, height = img.size
            if max(width, height) > MAX_SIDE_PX:
                raise _refuse(kind, src, f"it is {width}x{height} px; the limit is {MAX_SIDE_PX} px a side")
            if min(width, height) < MIN_SIDE_PX:
                raise _refuse(kind, src, f"it is {width}x{height} px; images need at least {MIN_SIDE_PX}x{MIN_SIDE_PX} px")
            img.load()  # decodes every pixel: truncated or corrupt data fails here
    except InvalidRequest:
        raise
    except UnidentifiedImageError as exc:
        if _looks_like_video(path, src):
            raise _refuse(kind, src, "it is a video, not an image (add it to a motion instead)") from exc
        raise _refuse(kind, src, "it is not an image file this app can read") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _refuse(kind, src, f"the image data is damaged or truncated ({exc})") from exc
    if fmt not in _IMAGE_EXT:
        raise _refuse(kind, src, f"the image format {fmt or 'unknown'} is not supported")
    return _IMAGE_EXT[fmt], width, height


def _probe_video(path: Path, src: Path) -> tuple[str, int, int, int, float | None]:
    from PIL import Image, UnidentifiedImageError

    try:  # ffmpeg happily reads a still PNG as a one-frame "video"; refuse that as the wrong type
        with Image.open(path) as img:
            if img.format != "GIF":
                raise _refuse("video", src,
                              f"it is a {img.format} image, not a video (add it to a subject instead)")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        pass

    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="gray", bpp=1)  # gray: decode fully, copy little
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise _refuse("video", src, "ffmpeg cannot decode it: the file is damaged, truncated or not a video "
                      f"({_last_line(exc)})") from exc
    try:
        width, height = meta["size"]
        if max(width, height) > MAX_SIDE_PX:
            raise _refuse("video", src, f"it is {width}x{height} px; the limit is {MAX_SIDE_PX} px a side")
        frames = 0
        for _frame in reader:
            frames += 1
            if frames > MAX_FRAMES:
                raise _refuse("video", src, f"it has more than {MAX_FRAMES:,} frames")
    except (OSError, RuntimeError) as exc:
        raise _refuse("video", src, f"decoding stopped after {frames} frames: the file is damaged or truncated "
                      f"({_last_line(exc)})") from exc
    finally:
        reader.close()
    if frames < 1:
        raise _refuse("video", src, "it contains no video frames")
    if frames < MIN_FRAMES:
        raise _refuse("video", src, f"it has only {frames} frame; a motion needs at least {MIN_FRAMES} (use an image "
                                    "for a still)")
    ext = src.suffix.lower().lstrip(".")
    if not ext or len(ext) > 8 or not ext.isalnum():
        ext = "mp4"
    fps = float(meta["fps"]) if meta.get("fps") else None
    return ext, int(width), int(height), frames, fps


def _last_line(exc: BaseException) -> str:
    """ffmpeg errors carry its whole stderr; keep the line that says what went wrong."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if any(w in ln.lower() for w in ("invalid", "error", "not found", "truncat", "could not", "end of file")):
            return ln[:200]
    return lines[-1][:200] if lines else type(exc).__name__


def place_staged(staged: StagedAsset, project_dir: Path) -> bool:
    """Move a staged copy to its content-addressed place; return True if a new file was placed.

    An existing copy with the same hash is kept (it has the same bytes) and the staged one dropped.
    """
    target = project_dir / staged.rel_path()
    if target.exists():
        staged.discard()
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged.tmp_path, target)
    return True


def remove_tree(path: Path) -> None:
    """Remove a folder if it exists (staging, failed moves)."""
    shutil.rmtree(path, ignore_errors=True)
