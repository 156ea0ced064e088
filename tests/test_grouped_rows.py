"""A declaration's ``grouped`` inputs (AnimateDiff SDXL: pooled text one row per video, tokens one per frame): the
contract proves one negative per prompt; a schedule that gives the frames of one video different negatives or
starts cannot reach the per-video rows and is refused with a clear error."""

from __future__ import annotations

import pytest

import negdelay
from contract_cases import call, case

NAME = "AnimateDiffSDXLPipeline"


def test_different_negatives_within_a_video_are_refused():
    c = case(NAME)
    frames = c.call["num_frames"]
    per_frame = [f"blurry hat {i}" if i % 2 else "ugly dog" for i in range(2 * frames)]  # 2 prompts x frames rows
    with negdelay.apply(c.pipe, per_frame, start_step=1), pytest.raises(ValueError, match="one entry per prompt"):
        call(c)


def test_different_starts_within_a_video_are_refused():
    c = case(NAME)
    frames = c.call["num_frames"]
    negatives = [n for n in c.negatives() for _ in range(frames)]  # one per row: each video's frames share one
    starts = [1, 2] * frames
    with negdelay.apply(c.pipe, negatives, start_step=starts), pytest.raises(ValueError, match="one start"):
        call(c)

