"""DESIGN §1: the GUI and the SDK never pay torch's import cost; layers import only downwards."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _imports_in(package: str) -> list[tuple[Path, str]]:
    found = []
    for path in (REPO / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(path, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module))
    return found


def test_import_sdk_and_app_leaves_torch_out() -> None:
    code = "import sys, sdk, app, sdk.cli, sdk.service, sdk.project, sdk.plugins, sdk.farm; sdk.load_plugins(); " \
           "bad = [m for m in ('torch', 'diffusers', 'transformers', 'open_clip', 'ray') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_sdk_never_imports_qt_app_or_plugins() -> None:
    bad = [(p, m) for p, m in _imports_in("sdk") if m.split(".")[0] in ("PySide6", "app", "plugins")]
    assert not bad, bad


def test_app_never_imports_plugins_or_ml_libraries() -> None:
    bad = [(p, m) for p, m in _imports_in("app")
           if m.split(".")[0] in ("plugins", "torch", "diffusers", "transformers", "open_clip") or m.startswith("sdk.ml")]
    assert not bad, bad


def test_plugins_never_import_app_qt_or_each_other() -> None:
    for pkg in (REPO / "plugins").iterdir():
        if not (pkg / "__init__.py").exists():
            continue
        for path, mod in _imports_in(f"plugins/{pkg.name}"):
            top = mod.split(".")
            assert top[0] not in ("app", "PySide6"), (path, mod)
            if top[0] == "plugins" and len(top) > 1:
                assert top[1] == pkg.name, f"{path} imports another plugin: {mod}"


def test_builtin_plugins_come_through_the_entry_point_group() -> None:
    import importlib.metadata

    names = {ep.name for ep in importlib.metadata.entry_points(group="vgen_studio")}
    assert "modelscope_t2v" in names
