"""Reading checkpoint headers without running code or importing torch (sdk.inspect_weights)."""
from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sdk.errors import IncompatibleCheckpoint
from sdk.inspect_weights import TensorInfo, read_tensors

REPO = Path(__file__).resolve().parents[2]


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path: Path, code_checkpoint) -> None:
    marker = tmp_path / "pwned"
    path = code_checkpoint(tmp_path / "evil.pth", marker)
    with pytest.raises(IncompatibleCheckpoint) as err:
        read_tensors(path)
    assert not marker.exists()
    assert "evil.pth" in err.value.user_message and re.search(r"(posix|nt|os)\.system", err.value.user_message)
    assert "weights_only=False" not in str(err.value)


def test_a_plain_pickle_and_a_legacy_torch_file_are_refused_with_how_to_convert(tmp_path: Path, code_pickle) -> None:
    marker = tmp_path / "pwned"
    plain = tmp_path / "plain.pth"
    plain.write_bytes(code_pickle(marker))
    with pytest.raises(IncompatibleCheckpoint, match="plain Python pickle"):
        read_tensors(plain)
    assert not marker.exists()

    legacy = tmp_path / "legacy.pth"
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(IncompatibleCheckpoint) as err:
        read_tensors(legacy)
    assert "legacy" in err.value.user_message
    assert "weights_only=True" in err.value.hint and "weights_only=False" not in err.value.hint


def test_shapes_and_dtypes_match_what_torch_loads(tmp_path: Path) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = collections.OrderedDict(
        a=base, view=base[1:, 2:],  # a view into a shared storage, with an offset
        t=base.t(), half=torch.ones(3, 2, dtype=torch.float16), bf=torch.ones(5, dtype=torch.bfloat16),
        idx=torch.arange(4), flag=torch.ones(2, dtype=torch.bool), scalar=torch.tensor(1.5),
        p=torch.nn.Parameter(torch.zeros(2, 2)), empty=torch.zeros(0, 3), wide=torch.zeros(1).expand(320, 1024))
    torch.save({"state_dict": sd, "step": 7, "device": torch.device("cpu")}, tmp_path / "ok.pth")
    got = read_tensors(tmp_path / "ok.pth")
    want = torch.load(tmp_path / "ok.pth", weights_only=True)["state_dict"]
    assert list(got) == list(want)
    for k, v in want.items():
        assert got[k] == TensorInfo(tuple(v.shape), str(v.dtype).removeprefix("torch.")), k

    save_file({k: v.contiguous() for k, v in sd.items() if k != "p"}, str(tmp_path / "ok.safetensors"))
    st = read_tensors(tmp_path / "ok.safetensors")
    assert {k: v.shape for k, v in st.items()} == {k: tuple(v.shape) for k, v in sd.items() if k != "p"}
    assert st["half"].dtype == "float16" and st["bf"].dtype == "bfloat16"


@pytest.mark.parametrize("cut", [1, 100, 2000])
def test_truncated_files_are_refused(tmp_path: Path, cut: int) -> None:
    sd = {"a": torch.randn(32, 32), "b": torch.randn(64)}
    save_file(sd, str(tmp_path / "w.safetensors"))
    torch.save(sd, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        data = (tmp_path / name).read_bytes()
        bad = tmp_path / f"cut-{name}"
        bad.write_bytes(data[:-cut])
        with pytest.raises(IncompatibleCheckpoint) as err:
            read_tensors(bad)
        assert bad.name in err.value.user_message and "download or copy it again" in err.value.hint


def test_garbage_headers_and_missing_storages_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((20).to_bytes(8, "little") + b'{"a": {"dtype": "F32"')
    with pytest.raises(IncompatibleCheckpoint, match="not valid JSON"):
        read_tensors(bad)
    bad.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    with pytest.raises(IncompatibleCheckpoint, match="header claims"):
        read_tensors(bad)
    (tmp_path / "notes.bin").write_text("just some text, not weights at all")
    with pytest.raises(IncompatibleCheckpoint, match="neither a safetensors file nor a torch zip"):
        read_tensors(tmp_path / "notes.bin")

    torch.save({"w": torch.zeros(8)}, tmp_path / "w.pth")  # drop the storage record from a valid zip
    with zipfile.ZipFile(tmp_path / "w.pth") as z:
        entries = {n: z.read(n) for n in z.namelist() if not re.search(r"/data/\d+$", n)}
    with zipfile.ZipFile(tmp_path / "hollow.pth", "w") as z:
        for n, d in entries.items():
            z.writestr(n, d)
    with pytest.raises(IncompatibleCheckpoint, match="storage 0 is missing"):
        read_tensors(tmp_path / "hollow.pth")


def test_reading_headers_does_not_import_torch(tmp_path: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(3, 4)}}, tmp_path / "w.pth")
    save_file({"w": torch.zeros(3, 4)}, str(tmp_path / "w.safetensors"))
    code = ("import sys; from sdk.inspect_weights import read_tensors; "
            f"a = read_tensors({str(tmp_path / 'w.pth')!r}); b = read_tensors({str(tmp_path / 'w.safetensors')!r}); "
            "assert a['w'].shape == b['w'].shape == (3, 4), (a, b); assert 'torch' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_no_error_message_suggests_weights_only_false() -> None:
    hits = [f"{p.relative_to(REPO)}:{i}" for root in ("sdk", "plugins") for p in (REPO / root).rglob("*.py")
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(r"weights_only\s*=\s*False", line)]
    assert hits == []
