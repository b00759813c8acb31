"""The torch-free CLIP token counter (sdk.tokens) against open_clip's own tokenizer."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdk.tokens import CONTEXT_LENGTH, counter, truncation, truncation_warning

REPO = Path(__file__).resolve().parents[2]
PROMPTS = [
    "a red fox",
    "A  Red FOX!!  jumping over the lazy dog's back, 4k, ultra-detailed",
    "Café crème & naïve façade — “curly quotes” &amp; entities &lt;b&gt;",
    "日本語のテキスト 123,456.78 and Ünïcödé",
    "emoji 🦊🔥 test :) ;-) <3",
    "<start_of_text> a prompt naming the special tokens <end_of_text>",
    "x" * 300,
    " ".join(f"word{i}" for i in range(80)),
    "tabs\tand\nnewlines  stay  whitespace",
    "it's they're we've I'm you'll he'd",
    "wow ! a single ! is token id 0 , which pads",
]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_counts_equal_open_clips_tokenizer(prompt: str) -> None:
    import open_clip

    tok = open_clip.get_tokenizer("ViT-H-14")
    ids = [tok.sot_token_id, *tok.encode(prompt), tok.eot_token_id]
    assert counter().count(prompt) == len(ids)
    if len(ids) > CONTEXT_LENGTH:  # what the encoder keeps: start + 75 tokens + end
        kept = tok([prompt])[0].tolist()
        assert kept[:CONTEXT_LENGTH - 1] == ids[:CONTEXT_LENGTH - 1]


def test_the_warning_shows_where_the_prompt_is_cut() -> None:
    short = "a heron standing in a misty lake at dawn"
    assert truncation(short) is None and truncation_warning(short) is None
    words = [f"w{i:02d}" for i in range(40)]  # 3 tokens each: "w", one per digit
    long = " ".join(words)
    total, dropped = truncation(long)
    assert total == counter().count(long) > CONTEXT_LENGTH
    assert long.startswith(long[: len(long) - len(dropped)].rstrip()) and long.endswith(dropped)
    kept_words = len(long.split()) - len(dropped.split())
    assert 2 + 3 * kept_words <= CONTEXT_LENGTH < 2 + 3 * (kept_words + 1)  # the first word that does not fit whole
    msg = truncation_warning(long, "The prompt")
    assert msg.startswith(f"The prompt is {total} CLIP tokens; the text encoder reads 77")
    assert f'ignores everything from: "{dropped[:20]}' in msg


def test_a_huge_prompt_gives_a_short_warning() -> None:
    msg = truncation_warning("a fox in the snow " * 500)
    assert msg is not None and len(msg) < 300 and msg.endswith('…"')


def test_counting_does_not_import_torch_or_open_clip() -> None:
    code = ("import sys; from sdk.tokens import counter; assert counter().count('a red fox') == 5; "
            "assert 'torch' not in sys.modules and 'open_clip' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
