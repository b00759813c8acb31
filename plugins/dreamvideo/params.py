"""Parameters of the DreamVideo trainers and of ``dreamvideo.compose`` (torch-free: forms are built from the schema).

Defaults follow the released configs (vgen-notes §12); names follow diffusers' training scripts.
Adapter parameters (``embedding``, ``identity_adapter``, ``motion_adapter``) name project Adapters: an id (or id
prefix), ``"latest"`` (the newest of that kind trained on the job's subject/motion), ``"none"``, or the path of a
released file. The service resolves them when the job starts (:func:`sdk.adapters.resolve_adapter_params`).
"""
from __future__ import annotations

from pydantic import Field

from sdk.params import GenerateParams, TrainParams

PLACEHOLDER = "*"  # VGen's placeholder string; the subject's own token is mapped onto it


class _DreamVideoTrain(TrainParams):
    height: int = Field(256, ge=8, le=2048, multiple_of=8, description="Training size (multiple of 8).")
    width: int = Field(256, ge=8, le=2048, multiple_of=8, description="Training size (multiple of 8).")
    lr_scheduler: str = Field("constant_with_warmup", pattern="^(constant|constant_with_warmup|linear|cosine)$")
    lr_warmup_steps: int = Field(10, ge=0)
    adam_weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    noise_offset: float = Field(0.1, ge=0.0, le=1.0, description="Offset noise per frame and channel (VGen: 0.1).")
    sample_steps: int = Field(25, ge=1, le=1000, description="DDIM steps of the sample previews.")
    sample_num_frames: int = Field(8, ge=1, le=128, description="Frames of the sample previews.")
    sample_guidance_scale: float = Field(9.0, ge=0.0, le=50.0, description="Guidance of the sample previews.")


class _SubjectTrain(_DreamVideoTrain):
    train_batch_size: int = Field(4, ge=1, le=256, description="Images per step (VGen's subject configs: 4).")


class SubjectStep1Params(_SubjectTrain):
    """Textual inversion of the subject's token (one 1024-d vector), base UNet frozen."""

    max_train_steps: int = Field(3000, ge=1, le=1_000_000)
    learning_rate: float = Field(1e-4, gt=0.0, le=1.0)
    checkpointing_steps: int = Field(200, ge=1)
    validation_steps: int = Field(200, ge=1)
    caption: str = Field("a *", description="Training caption; * stands for the subject.")
    initializer_token: str = Field("", description="Word the embedding starts from (default: the subject's name).")
    use_masks: bool = Field(True, description="Masked loss where the subject has masks.")


class SubjectStep2Params(_SubjectTrain):
    """Identity adapter beside every spatial cross-attention; the step-1 embedding frozen."""

    max_train_steps: int = Field(1000, ge=1, le=1_000_000)
    learning_rate: float = Field(1e-5, gt=0.0, le=1.0)
    checkpointing_steps: int = Field(100, ge=1)
    validation_steps: int = Field(100, ge=1)
    caption: str = Field("a *", description="Training caption; * stands for the subject.")
    use_masks: bool = Field(True, description="Masked loss where the subject has masks.")
    embedding: str = Field("latest", description="The step-1 embedding: an Adapter id, 'latest' (newest of the "
                                                 "subject) or a released text_embedding_of_*.pth file.")


class SubjectParams(SubjectStep2Params):
    """``dreamvideo.subject``: queues step 1 then step 2; a parameter goes to every step that has it."""

    max_train_steps: int | None = Field(None, ge=1, le=1_000_000, description="Both steps (default: their own).")
    learning_rate: float | None = Field(None, gt=0.0, le=1.0, description="Both steps (default: their own).")
    checkpointing_steps: int | None = Field(None, ge=1)
    validation_steps: int | None = Field(None, ge=1)
    initializer_token: str = Field("", description="Step 1: the word the embedding starts from.")


class MotionParams(_DreamVideoTrain):
    """Motion adapter on every temporal attention and feed-forward, conditioned on a random frame's CLIP embedding."""

    prompt: str = Field("", description="Caption of the motion's videos (dropped with p_zero).")
    max_train_steps: int = Field(3000, ge=1, le=1_000_000)
    learning_rate: float = Field(1e-5, gt=0.0, le=1.0)
    checkpointing_steps: int = Field(100, ge=1)
    validation_steps: int = Field(100, ge=1)
    train_batch_size: int = Field(1, ge=1, le=256, description="Clips per step (VGen's motion configs: 1).")
    num_frames: int = Field(32, ge=2, le=128, description="Frames per training clip.")
    sample_fps: int = Field(8, ge=1, le=60, description="Frames per second the clips are sampled at.")
    p_zero: float = Field(0.5, ge=0.0, le=1.0, description="Probability the caption is dropped.")
    p_image_zero: float = Field(0.5, ge=0.0, le=1.0, description="Probability the appearance image is dropped.")
    save_latents: bool = Field(True, description="Keep the clips' latents in the checkpoint (for inverse noise).")


class ComposeParams(GenerateParams):
    """A prompt with the subject's token, an identity and/or a motion adapter, their strengths."""

    num_frames: int = Field(32, ge=1, le=128, description="Number of frames.")
    identity_adapter: str = Field("latest", description="Identity adapter: an Adapter id, 'latest' (newest of the "
                                                        "subject), 'none', or a released *_adapter_*.pth file.")
    identity_step: int = Field(0, ge=0, description="Checkpoint step of the identity adapter's training (0: the one picked).")
    text_embedding: str = Field("", description="A released text_embedding_of_*.pth (default: the one inside the "
                                                "identity adapter).")
    motion_adapter: str = Field("latest", description="Motion adapter: an Adapter id, 'latest' (newest of the "
                                                      "motion), 'none', or a released *_adapter_*.pth file.")
    motion_step: int = Field(0, ge=0, description="Checkpoint step of the motion adapter's training (0: the one picked).")
    identity_strength: float = Field(1.0, ge=0.0, le=4.0, description="Scale of the identity adapter (0 turns it off).")
    motion_strength: float = Field(1.0, ge=0.0, le=4.0, description="Scale of the motion adapter (0 turns it off).")
    appearance_guide_strength_cond: float = Field(1.0, ge=0.0, le=10.0, description="λ of the appearance image.")
    appearance_guide_strength_uncond: float = Field(1.0, ge=0.0, le=10.0, description="λ in the unconditional branch.")
    inverse_noise_strength: float = Field(0.0, ge=0.0, le=1.0,
                                          description="Mix of DDIM-inverted training latents into the initial noise.")
    offset_noise: float = Field(0.1, ge=0.0, le=1.0, description="Offset noise of the initial latents (VGen: 0.1).")
    decode_chunk_size: int = Field(8, ge=1, le=128, description="Frames decoded by the VAE at a time.")


#: adapter-reference params → the Adapter kind "latest" looks for
EMBEDDING_KIND = "dreamvideo.embedding"
IDENTITY_KIND = "dreamvideo.identity"
MOTION_KIND = "dreamvideo.motion"
