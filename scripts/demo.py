"""`make demo`: a demo project rendered end to end on tiny ModelScope-T2V weights.

Tiny weights are random: the videos are noise by design. They exercise the real loaders, the real
denoising loop, the worker process and ffmpeg. Real weights: `vgen models fetch modelscope_t2v.ms_1_7b`
(CC-BY-NC-4.0, research/non-commercial).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from sdk.cli import main as vgen

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"


def run(*args: str) -> None:
    print("$ vgen " + " ".join(f"'{a}'" if " " in a else a for a in args), flush=True)
    code = vgen(list(args))
    if code:
        sys.exit(code)


def main() -> int:
    if DEMO.exists():
        shutil.rmtree(DEMO)
    project = str(DEMO / "Demo.vgen")
    weights = str(DEMO / "weights" / "modelscope-t2v-tiny")
    run("project", "new", project, "--template", "demo")
    run("models", "make-tiny", "modelscope_t2v.ms_1_7b", weights, "--format", "diffusers")
    run("queue", "add", project, "--generator", "modelscope_t2v.t2v", "--all-prompts", "--seeds", "1,2",
        "--param", "num_frames=8", "--param", "height=64", "--param", "width=64",
        "--param", "num_inference_steps=10", "--weights", weights)
    run("queue", "run", project)
    videos = sorted((DEMO / "Demo.vgen" / "outputs").glob("*/video.mp4"))
    print(f"\n{len(videos)} MP4s (tiny random weights render noise, by design):")
    for v in videos:
        print(f"  {v}")
    return 0 if len(videos) == 6 else 1


if __name__ == "__main__":
    sys.exit(main())
