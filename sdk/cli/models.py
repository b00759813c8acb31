"""``vgen plugins|models|doctor``: what is installed and what this machine offers."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sdk.cli._common import cmd, group, print_json


def cmd_plugins_list(a: argparse.Namespace) -> int:
    from sdk.params import params_schema
    from sdk.plugins import load_plugins

    reg = load_plugins()

    def describe(spec: Any) -> dict[str, Any]:
        return {"title": spec.title, "method": spec.method, "kind": spec.kind, "version": spec.version,
                "inputs": [{"name": f.name, "type": type(f).__name__, "required": f.required,
                            "description": f.description} for f in spec.fields],
                "takes_prompt": spec.takes_text, "default_weights": spec.default_weights,
                "params": params_schema(spec.params)}

    tables = (("generator", reg.generators), ("trainer", reg.trainers), ("extractor", reg.conditions),
              ("metric", reg.metrics))
    if a.json:
        out: dict[str, Any] = {"plugins": [i.to_dict() for i in reg.plugins.values()]}
        for label, table in tables:
            out[label + "s"] = {spec_id: describe(spec) for spec_id, spec in table.items()}
        out["weights"] = {w.id: {"title": w.title, "method": w.method, "formats": list(w.formats),
                                 "licence": w.licence} for w in reg.weights.values()}
        print_json(out)
        return 0
    for info in reg.plugins.values():
        print(f"{info.name} {info.version} ({info.module})")
        for label, table in tables:
            for spec_id in getattr(info, {"extractor": "extractors"}.get(label, label + "s")):
                spec = table[spec_id]
                ins = ", ".join(f.name + ("" if f.required else "?") for f in spec.fields)
                print(f"    {label:<10} {spec_id:<28} {spec.title}" + (f"  [inputs: {ins}]" if ins else ""))
        for w in info.weights:
            print(f"    weights    {w:<28} {reg.weights[w].title}")
        if info.error:
            print("    LOAD ERROR: " + info.error.strip().splitlines()[-1])
    return 0


def cmd_models_list(a: argparse.Namespace) -> int:
    from sdk import weights as w
    from sdk.plugins import load_plugins

    reg = load_plugins()
    installed = {e["id"]: e for e in w.list_installed()}
    if a.json:
        print_json({"models_dir": str(w.models_dir()), "installed": list(installed.values()),
                     "known": [{"id": s.id, "title": s.title, "source": s.source, "repo_id": s.repo_id,
                                "licence": s.licence, "commercial": s.commercial, "formats": list(s.formats)}
                               for s in reg.weights.values()]})
        return 0
    print(f"Models directory: {w.models_dir()}")
    for s in reg.weights.values():
        e = installed.pop(s.id, None)
        state = f"installed ({e['source']}) at {e['path']}" if e else "not installed"
        use = {True: "  [commercial use allowed]", False: "  [not for commercial use]"}.get(s.commercial, "")
        print(f"{s.id:<30} {state}\n{'':<30} {s.source}:{s.repo_id}  licence: {s.licence}{use}")
    for e in installed.values():
        print(f"{e['id']:<30} installed ({e['source']}) at {e['path']}")
    return 0


def cmd_models_make_tiny(a: argparse.Namespace) -> int:
    from sdk import weights as w
    from sdk.plugins import load_plugins

    spec = load_plugins().weights_spec(a.id)
    fmt = a.format or (spec.formats[0] if spec.formats else None)  # the spec's first format, as the library does
    path = w.make_tiny(spec, Path(a.dir), fmt, register=a.register, size=a.size)
    print(f"Wrote {a.size} {fmt} weights for {a.id} to {path} (random: they render noise, for tests and demos)")
    return 0


def cmd_models_import(a: argparse.Namespace) -> int:
    from sdk import weights as w

    entry = w.import_weights(a.id, Path(a.path), copy=a.copy)
    print(f"Registered {a.id} ({entry['format']}) at {entry['path']}")
    return 0


def cmd_models_fetch(a: argparse.Namespace) -> int:
    from sdk import weights as w
    from sdk.plugins import load_plugins

    spec = load_plugins().weights_spec(a.id)
    if spec.licence:
        print(f"Licence of {spec.id}: {spec.licence}", file=sys.stderr)
    entry = w.fetch(spec)
    print(f"Fetched {a.id} to {entry['path']}")
    return 0


def cmd_doctor(a: argparse.Namespace) -> int:
    """Devices (memory, dtypes, attention), ffmpeg, versions: what a worker would run on. Imports torch."""
    import platform
    import subprocess

    import sdk
    from sdk import weights as w
    from sdk.ml.probe import all_devices
    from sdk.ml.runtime import resolve_precision
    from sdk.outputs import _ffmpeg

    devices = all_devices()
    try:
        ffmpeg = _ffmpeg()
        first = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, timeout=10).stdout.splitlines()
        ffmpeg_text = f"{ffmpeg} ({first[0] if first else 'unknown version'})"
    except Exception as exc:  # report, never crash: this is the command people run when something is wrong
        ffmpeg_text = f"NOT FOUND ({exc})"
    import torch

    auto = devices[0]["device"]
    auto_dtype = str(resolve_precision("auto", torch.device(auto))).removeprefix("torch.")
    report = {"vgen_studio": sdk.__version__, "python": platform.python_version(), "devices": devices,
              "auto": {"device": auto, "precision": auto_dtype}, "ffmpeg": ffmpeg_text,
              "models_dir": str(w.models_dir())}
    if a.json:
        print_json(report)
        return 0
    print(f"VGen Studio {sdk.__version__}, Python {report['python']}")
    print("Devices:")
    for d in devices:
        mem = f"{d['total_bytes'] / 2**30:.1f} GB total, {d['free_bytes'] / 2**30:.1f} GB free"
        print(f"  {d['device']:<8} {d['device_name']}\n  {'':<8} {mem}; precisions {', '.join(d['dtypes'])}; "
              f"attention {', '.join(d['attention'])}")
    print(f"auto means: device {auto}, precision {auto_dtype}")
    print(f"ffmpeg: {ffmpeg_text}")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in devices[0]["versions"].items()))
    print(f"Models directory: {report['models_dir']}")
    return 0


def register(sub: Any) -> None:
    g = group(sub, "plugins", "installed plugins")
    c = cmd(g, "list", cmd_plugins_list, "plugins, their generators and trainers, load errors")
    c.add_argument("--json", action="store_true")

    c = sub.add_parser("doctor", help="devices, precisions, attention backends, ffmpeg and versions")
    c.set_defaults(fn=cmd_doctor)
    c.add_argument("--json", action="store_true")

    g = group(sub, "models", "model weights (global, not per project)")
    c = cmd(g, "list", cmd_models_list, "known and installed weights")
    c.add_argument("--json", action="store_true")
    c = cmd(g, "make-tiny", cmd_models_make_tiny, "write tiny random weights in a real format (tests, demos)")
    c.add_argument("id"); c.add_argument("dir")
    c.add_argument("--format", default=None, help="one of the formats the weights offer (default: their first)")
    c.add_argument("--register", action="store_true", help="also register them under ID")
    c.add_argument("--size", choices=("tiny", "real"), default="tiny",
                   help="real: the released dimensions (several GB, streamed; for benchmarks and GPU checks)")
    c = cmd(g, "import", cmd_models_import, "register weights you already have (a known weights id, or user.NAME)")
    c.add_argument("id"); c.add_argument("path"); c.add_argument("--copy", action="store_true")
    c = cmd(g, "fetch", cmd_models_fetch, "download weights (check the licence)")
    c.add_argument("id")
