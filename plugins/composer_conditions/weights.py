"""The annotator weights VGen loads from its ``models/`` folder (torch-free: read when listing plugins), and finding
their files in a weights folder inside the worker."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sdk.errors import WeightsMissing
from sdk.specs import WeightsFile, WeightsSpec

METHOD = "VideoComposer conditions"
#: where VGen's README and configs take them from: the TF-T2V model repository on ModelScope, beside the UNets
REPO = "iic/tf-t2v"
DEPTH_ID = "composer_conditions.midas_v3_dpt_large"
SKETCH_ID = "composer_conditions.sketch"
MIDAS_FILE = "midas_v3_dpt_large.pth"
PIDINET_FILE = "table5_pidinet.pth"
SIMPLIFY_FILE = "sketch_simplification_gan.pth"


def weights_specs() -> list[WeightsSpec]:
    return [
        WeightsSpec(
            id=DEPTH_ID, title="MiDaS v3 DPT-Large (depth; VGen .pth or a hub DPT-Large folder)", method=METHOD,
            formats=("vgen", "transformers"), source="modelscope", repo_id=REPO, files=(WeightsFile(MIDAS_FILE),),
            licence="MIT (MiDaS, Intel ISL)", size_gb=1.4, tiny="plugins.composer_conditions.tiny:make_tiny_depth",
            description="Depth for VideoComposer's depth condition. Also reads a DPT-Large folder in transformers' "
                        "format (config.json + weights), e.g. Intel/dpt-large, imported with `vgen models import`."),
        WeightsSpec(
            id=SKETCH_ID, title="PiDiNet table5 + sketch simplification (sketch; VGen .pth)", method=METHOD,
            formats=("vgen",), source="modelscope", repo_id=REPO,
            files=(WeightsFile(PIDINET_FILE), WeightsFile(SIMPLIFY_FILE)),
            licence="PiDiNet: MIT; sketch simplification (Simo-Serra et al.): the authors' code and models are "
                    "for non-commercial use only (CC BY-NC-SA 4.0); as distributed with VGen: research use",
            size_gb=0.18, tiny="plugins.composer_conditions.tiny:make_tiny_sketch",
            description="Edges (PiDiNet, BSDS table5) cleaned by the sketch-simplification GAN, for VideoComposer's "
                        "sketch and single-sketch conditions."),
    ]


def weights_path(req: Any, default_id: str) -> Path:
    """The job's weights (a folder or a file), or the installed default; WeightsMissing with the fetch command."""
    if req.weights is not None:
        return Path(req.weights)
    from sdk import weights as w

    return w.resolve(None, default_id)[0]


def find_file(root: Path, name: str, weights_id: str) -> Path:
    """``name`` in the weights folder ``root`` (at its top or below, as VGen's ``models/``), or ``root`` itself when it
    is that file. WeightsMissing naming the file and the fetch command otherwise."""
    if root.is_file() and root.name == name:
        return root
    if root.is_dir():
        found = sorted(root.rglob(name))
        if found:
            return found[0]
    raise WeightsMissing(f"{name} is not in {root}.", hint=f"Run `vgen models fetch {weights_id}` (or `vgen models "
                                                          f"make-tiny {weights_id} DIR` for a test run).")
