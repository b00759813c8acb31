"""Motion vectors from the compressed stream (PyAV with ``flags2=+export_mvs``), as the original VideoComposer
computes them (VGen ships no motion extraction: its ``mv_data_video`` stays empty).

VideoComposer re-encodes the reference video at its sampling rate (``ffmpeg -filter:v fps=… -c:v mpeg4``) and reads
the codec's motion vectors (``mvextractor``): one vector per coded block, written at the block's destination centre
as ``source · motion_xy / motion_scale`` (the displacement from the reference frame, in pixels), zero elsewhere and
on intra frames. Here the sampled, resized frames themselves are encoded (mpeg4 at ffmpeg's default 200 kb/s, or
H.264), so each vector spans exactly one sampled interval and lies on the frame grid the UNet takes; VideoComposer
measured at the source size, then resized the sparse field. The source's own H.264 vectors are not used: they span
one source frame against a reference the side data does not name, not the sampled interval the model learnt.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np

from sdk.errors import VGenError
from sdk.video import Video

from plugins.composer_conditions.encoding import motion_to_frame
from plugins.composer_conditions.frames import note_padding, run_frames, sample
from plugins.composer_conditions.params import MotionParams

#: ffmpeg's default mpeg4 bit rate (VideoComposer's ffmpeg call sets none)
MPEG4_BIT_RATE = 200_000


def encode(frames: np.ndarray, fps: int, codec: str = "mpeg4") -> bytes:
    """``frames`` (uint8 RGB ``[F, H, W, 3]``) encoded in memory (AVI for mpeg4, MP4 for H.264, no B-frames so every
    vector points back to the previous frame)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="avi" if codec == "mpeg4" else "mp4") as out:
        stream = out.add_stream("mpeg4" if codec == "mpeg4" else "libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "mpeg4":
            stream.bit_rate = MPEG4_BIT_RATE
        else:
            stream.options = {"bf": "0", "x264-params": "bframes=0"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def vector_fields(data: bytes, width: int, height: int) -> list[np.ndarray]:
    """One ``[H, W, 2]`` float32 field per decoded frame of ``data`` (VideoComposer's layout: each block's
    ``source · motion / motion_scale`` at its clipped destination centre; zero elsewhere and on intra frames)."""
    import av

    fields: list[np.ndarray] = []
    with av.open(io.BytesIO(data)) as inp:
        stream = inp.streams.video[0]
        stream.codec_context.options = {"flags2": "+export_mvs"}
        for frame in inp.decode(stream):
            mv = np.zeros((height, width, 2), np.float32)
            side = frame.side_data.get("MOTION_VECTORS")
            if side is not None and len(side):
                v = side.to_ndarray()
                x = np.clip(v["dst_x"], 0, width - 1)
                y = np.clip(v["dst_y"], 0, height - 1)
                scale = np.maximum(v["motion_scale"], 1).astype(np.float32)
                mv[y, x, 0] = v["source"] * v["motion_x"] / scale
                mv[y, x, 1] = v["source"] * v["motion_y"] / scale
            fields.append(mv)
    return fields


class MotionExtractor:
    """``composer_conditions.motion``: the motion vectors of the sampled frames (see the module docstring)."""

    def extract(self, ctx: Any, req: Any) -> Video:
        p: MotionParams = req.params
        s = sample(req.inputs["video"], p)
        note_padding(ctx, s, p)
        fields = vector_fields(encode(s.frames[:s.real], p.sample_fps, p.codec), p.width, p.height)
        if len(fields) != s.real:
            raise VGenError(f"The {p.codec} encoder gave back {len(fields)} frame(s) of the {s.real} encoded.",
                            hint="Try codec=h264 (or mpeg4); this is a problem of the bundled FFmpeg.")
        clipped = 0

        def make(i: int) -> np.ndarray:
            nonlocal clipped
            frame, n = motion_to_frame(fields[i] if i < s.real else np.zeros((p.height, p.width, 2), np.float32))
            clipped += n
            return frame

        frames = run_frames(ctx, p.num_frames, make)
        moving = sum(int(np.abs(f).sum() > 0) for f in fields)
        ctx.log.info(f"motion vectors from {p.codec}: {moving} of {s.real} frame(s) move (the first is intra-coded)")
        if clipped:
            ctx.log.warning(f"{clipped} vector component(s) beyond ±63.5 px were clipped")
        return Video(frames, fps=p.sample_fps)
