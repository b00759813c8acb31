"""HPSv2: the scorer contract the reward trainer calls, and the metric's segment means, against plain torch."""
from __future__ import annotations

import pytest
import torch

from sdk.errors import IncompatibleCheckpoint, WeightsMissing

from sdk.ml.hps import hps_video_scores, load_hps, preprocess_frames, segment_frames
from sdk.ml.hps import make_tiny_hps
from tests.plugins.vgen_metrics.reference import clip_image, clip_text, unit


@pytest.fixture(scope="module")
def hps_dir(tmp_path_factory):
    return make_tiny_hps(tmp_path_factory.mktemp("hps"))


def _vgen_preprocess(frames01):
    # VGen's reward: torchvision Resize(224) (tensor: bilinear, no antialias in torchvision 0.13) + Normalize
    import torchvision.transforms as T

    norm = T.Normalize(mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711])
    # + a centre crop, a no-op on the square frames VGen scores (non-square ones need it for the ViT)
    return norm(T.CenterCrop(224)(T.Resize(224, antialias=False)(frames01)))


def _reference_scores(hps_dir, frames01, prompts):
    import open_clip

    sd = torch.load(hps_dir / "HPS_v2.pt", weights_only=True)["state_dict"]
    tokens = open_clip.get_tokenizer("ViT-H-14")(prompts)
    img = unit(clip_image(sd, _vgen_preprocess(frames01), head_width=80, quick=False))
    txt = unit(clip_text(sd, tokens, head_width=64, quick=False))
    return (img * txt).sum(-1)


def test_hps_scorer_equals_plain_torch_and_is_differentiable(hps_dir):
    frames = torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    prompts = ["a corgi running on the beach", "a red car", "a corgi running on the beach"]
    scorer = load_hps(hps_dir, "cpu", torch.float32)
    x = frames.clone().requires_grad_(True)
    got = scorer.score(preprocess_frames(x), prompts)
    want = _reference_scores(hps_dir, frames, prompts)
    assert got.shape == (3,)
    torch.testing.assert_close(got.detach(), want, atol=1e-5, rtol=0)
    got.sum().backward()  # the reward trainer backpropagates the score into the decoded frames
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in scorer.parameters())  # the reward model stays frozen


def test_hps_raw_state_dict_loads_too_and_code_is_refused(hps_dir, tmp_path):
    sd = torch.load(hps_dir / "HPS_v2.pt", weights_only=True)["state_dict"]
    torch.save(sd, tmp_path / "HPS_v2.pt")  # the raw dict, without the {"state_dict": …} wrapper
    images = preprocess_frames(torch.rand(2, 3, 224, 224))
    a = load_hps(hps_dir).score(images, ["a", "b"])
    b = load_hps(tmp_path / "HPS_v2.pt").score(images, ["a", "b"])
    torch.testing.assert_close(a, b)
    torch.save(torch.nn.Linear(2, 2), tmp_path / "evil.pt")  # a pickled module: loading it would run code
    with pytest.raises(IncompatibleCheckpoint, match="cannot be read safely"):
        load_hps(tmp_path / "evil.pt")
    with pytest.raises(WeightsMissing, match="HPS_v2.pt"):
        load_hps(tmp_path / "nowhere")


def test_hps_metric_takes_the_middle_frame_of_four_segments(hps_dir):
    assert segment_frames(16) == [2, 6, 10, 14]
    assert segment_frames(3) == [0, 1, 2]  # too short for 4 segments: every frame
    frames = torch.rand(16, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    prompt = "a cat playing the piano"
    scorer = load_hps(hps_dir)
    got = hps_video_scores(scorer, frames, prompt, batch=5)
    per_frame = _reference_scores(hps_dir, frames, [prompt] * 16)  # non-square: shorter side 224, centre crop
    assert got["hpsv2"] == pytest.approx(float(per_frame[[2, 6, 10, 14]].mean()), abs=1e-5)
    assert got["hpsv2_all_frames"] == pytest.approx(float(per_frame.mean()), abs=1e-5)
