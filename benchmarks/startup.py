"""Process start → main window shown, for ``python main.py`` (target ≤ 0.6 s on a 2-core machine (issue 11)).

    python benchmarks/startup.py [--runs 7]

Each run starts a fresh interpreter with ``VGEN_STUDIO_STARTUP_PROBE=1``: the app prints the
wall-clock time right after the window's first paint and quits. Reported: min / median / max of
(shown − the moment before ``subprocess.Popen``), plus the same for a torch-importing process
for comparison (what a GUI that imports torch at start pays).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def once(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.time()
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    for line in out.stdout.splitlines():
        if line.startswith("VGEN_STUDIO_SHOWN "):
            return float(line.split()[1]) - t0
    raise RuntimeError(f"no start-up mark (rc {out.returncode}):\n{out.stdout}\n{out.stderr[-2000:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-torch", action="store_true", help="skip the torch comparison")
    a = ap.parse_args()
    env = dict(os.environ, VGEN_STUDIO_STARTUP_PROBE="1", QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM",
                                                                                          "offscreen"))
    once([sys.executable, "main.py"], env)  # warm the file cache
    rows = [("python main.py (window shown)", [once([sys.executable, "main.py"], env) for _ in range(a.runs)])]
    if not a.no_torch:
        code = "import time, torch; print('VGEN_STUDIO_SHOWN', time.time())"
        rows.append(("python -c 'import torch' (for comparison)",
                     [once([sys.executable, "-c", code], env) for _ in range(max(3, a.runs // 2))]))
    print(f"{'':42} {'min':>7} {'median':>7} {'max':>7}   (seconds, {os.cpu_count()} cores)")
    for name, xs in rows:
        print(f"{name:42} {min(xs):7.3f} {statistics.median(xs):7.3f} {max(xs):7.3f}")
    median = statistics.median(rows[0][1])
    print(f"target ≤ 0.6 s: {'met' if median <= 0.6 else 'MISSED'}")
    return 0 if median <= 0.6 else 1


if __name__ == "__main__":
    sys.exit(main())
