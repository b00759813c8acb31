"""Safe checkpoint loading: unwrap/prefix handling, strict errors, refused pickles, missing files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sdk.errors import IncompatibleCheckpoint, WeightsMissing
from sdk.ml.checkpoints import load_into, load_state_dict


class _Evil:
    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _Evil.marker = str(marker)
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Evil()}, path)
    with pytest.raises(IncompatibleCheckpoint, match="Refused to load evil.pth"):
        load_state_dict(path)
    assert not marker.exists()


def test_unwrap_and_strip_prefixes(tmp_path: Path) -> None:
    sd = {"module.a.weight": torch.ones(2), "model.diffusion_model.b.bias": torch.zeros(3)}
    torch.save({"state_dict": sd, "step": 12}, tmp_path / "x.ckpt")
    out = load_state_dict(tmp_path / "x.ckpt")
    assert set(out) == {"a.weight", "b.bias"}
    save_file({"c": torch.ones(1)}, str(tmp_path / "y.safetensors"))
    assert set(load_state_dict(tmp_path / "y.safetensors")) == {"c"}


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(IncompatibleCheckpoint, match="bad.safetensors"):
        load_state_dict(tmp_path / "bad.safetensors")
    (tmp_path / "bad.pth").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(IncompatibleCheckpoint, match="bad.pth"):
        load_state_dict(tmp_path / "bad.pth")
    with pytest.raises(WeightsMissing, match="vgen models make-tiny") as info:
        load_state_dict(tmp_path / "nope.pth")
    assert "nope.pth" in str(info.value)


def test_load_into_names_first_mismatching_key() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 4))
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["0.weight"] = torch.zeros(3, 5)
    with pytest.raises(IncompatibleCheckpoint, match=r"'0\.weight' has shape \[3, 5\] but the model expects \[3, 2\]"):
        load_into(model, sd)
    sd = {k: v for k, v in model.state_dict().items() if k != "1.bias"}
    with pytest.raises(IncompatibleCheckpoint, match="'1.bias' is missing"):
        load_into(model, sd)
    with pytest.raises(IncompatibleCheckpoint, match="unexpected key 'extra'"):
        load_into(model, dict(model.state_dict(), extra=torch.zeros(1)))
