"""Install a plugin as a real distribution into a folder, for tests: the worker then finds it through the
``vgen_studio`` entry-point group exactly as it finds a pip-installed plugin.

::

    site = install_plugin(tmp_path / "site", "vgen-oomtest", {"oomtest.py": SOURCE}, {"oomtest": "oomtest"})
    monkeypatch.setenv("PYTHONPATH", os_pathsep_join(site, os.environ.get("PYTHONPATH")))  # for the worker
    monkeypatch.syspath_prepend(str(site))                                                 # for this process

It writes the modules and a ``<name>-<version>.dist-info`` with ``METADATA``, ``entry_points.txt`` and ``RECORD``:
what pip leaves behind, without running pip.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from sdk.hookspecs import PROJECT_NAME


def install_plugin(site: str | os.PathLike[str], dist_name: str, files: dict[str, str],
                   entry_points: dict[str, str], version: str = "0.1.0") -> Path:
    """Write ``files`` (relative path → source text) into ``site`` and register ``entry_points``
    (plugin name → module) in the ``vgen_studio`` group. Returns ``site``."""
    site = Path(site)
    site.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    norm = re.sub(r"[-_.]+", "_", dist_name)
    info = site / f"{norm}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n", encoding="utf-8")
    lines = [f"[{PROJECT_NAME}]"] + [f"{name} = {module}" for name, module in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (info / "RECORD").write_text("".join(f"{rel},,\n" for rel in files), encoding="utf-8")
    return site


def pythonpath_with(site: str | os.PathLike[str]) -> str:
    """``PYTHONPATH`` with ``site`` first (what a worker process needs to import the installed plugin)."""
    old = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([str(site)] + ([old] if old else []))
