"""Counting CLIP tokens without torch: where a prompt is cut by the text encoder's 77-token window.

The counter is open_clip's ``SimpleTokenizer`` (the tokenizer every VGen method encodes prompts with) re-done
torch-free on the same data: the BPE merges file that ships inside the installed ``open_clip`` package (found with
``importlib.util.find_spec``, which does not import it — importing open_clip imports torch), the same clean-up
(ftfy, HTML unescape, whitespace, lower case) and the same word pattern. ``tests/sdk/test_tokens.py`` checks it
against open_clip's own tokenizer.
"""
from __future__ import annotations

import functools
import gzip
import html
import importlib.util
import logging
from pathlib import Path

log = logging.getLogger(__name__)

#: The text encoder's window: start token + 75 prompt tokens + end token.
CONTEXT_LENGTH = 77
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
_SHOWN_CHARS = 80  # of the dropped text, in a warning


def bpe_path() -> Path | None:
    """The BPE merges file inside the installed open_clip package, or None when it is not installed."""
    spec = importlib.util.find_spec("open_clip")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / BPE_FILE
        if path.is_file():
            return path
    return None


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte → printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class ClipTokenCounter:
    """Splits text into words and counts the BPE tokens of each, as open_clip's ``SimpleTokenizer.encode`` does."""

    def __init__(self, merges_file: Path) -> None:
        import regex

        lines = gzip.open(merges_file).read().decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = _bytes_to_unicode()
        self.pattern = regex.compile(r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"
                                     r"[^\s\p{L}\p{N}]+", regex.IGNORECASE)
        self._cache: dict[str, int] = {"<start_of_text>": 1, "<end_of_text>": 1}

    @staticmethod
    def clean(text: str) -> str:
        try:
            import ftfy

            text = ftfy.fix_text(text)
        except ImportError:  # pragma: no cover - ftfy comes with open_clip; counts stay close without it
            pass
        text = html.unescape(html.unescape(text)).strip()
        return " ".join(text.split()).strip().lower()

    def _bpe_len(self, token: str) -> int:
        if token in self._cache:
            return self._cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            first, second = best
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        self._cache[token] = len(word)
        return len(word)

    def words(self, text: str) -> tuple[str, list[tuple[int, int]]]:
        """(the cleaned text, [(start of the word in it, BPE tokens of the word)])."""
        cleaned = self.clean(text)
        out = []
        for m in self.pattern.finditer(cleaned):
            token = "".join(self.byte_encoder[b] for b in m.group(0).encode("utf-8"))
            out.append((m.start(), self._bpe_len(token)))
        return cleaned, out

    def count(self, text: str) -> int:
        """Tokens of ``text`` including the start and end tokens, before the 77-token cut."""
        return 2 + sum(n for _, n in self.words(text)[1])


@functools.lru_cache(maxsize=1)
def counter() -> ClipTokenCounter | None:
    """The shared counter, or None when open_clip's BPE file (or the ``regex`` package) is not installed."""
    path = bpe_path()
    if path is None:
        log.debug("open_clip's %s was not found: prompt lengths are not checked", BPE_FILE)
        return None
    try:
        return ClipTokenCounter(path)
    except ImportError:  # pragma: no cover - regex comes with open_clip
        return None


def truncation(text: str, limit: int = CONTEXT_LENGTH) -> tuple[int, str] | None:
    """``(tokens, dropped text)`` when ``text`` is longer than the text encoder's window, else None.

    ``tokens`` counts the start and end tokens; the dropped text is the cleaned (lower-cased) text from the start of
    the first word that does not fit whole."""
    tok = counter()
    if tok is None or not text:
        return None
    cleaned, words = tok.words(text)
    total = 2 + sum(n for _, n in words)
    if total <= limit:
        return None
    used = 2
    for start, n in words:
        if used + n > limit:
            return total, cleaned[cleaned.rfind(" ", 0, start) + 1:]  # from the start of the cut word
        used += n
    return total, ""  # pragma: no cover - total > limit means some word does not fit


def truncation_warning(text: str, what: str = "The prompt", limit: int = CONTEXT_LENGTH) -> str | None:
    """A one-line warning that shows what the text encoder will not see, or None when ``text`` fits."""
    cut = truncation(text, limit)
    if cut is None:
        return None
    total, dropped = cut
    shown = dropped if len(dropped) <= _SHOWN_CHARS else dropped[:_SHOWN_CHARS].rsplit(" ", 1)[0] + " …"
    return (f"{what} is {total} CLIP tokens; the text encoder reads {limit} (with start and end), so it ignores "
            f"everything from: \"{shown}\"")
