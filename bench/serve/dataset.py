"""The requests of a load point: random, ShareGPT and prefix repetition, like vLLM's benchmark datasets.

Every dataset draws from numpy's Generator seeded with `seed`, so two runs with the same arguments
send the same requests in the same order. Lengths with a range ratio r are uniform integers in
[floor(len * (1 - r)), ceil(len * (1 + r))], as vLLM draws them (output lengths at least 1).

random: with a tokenizer (any object with encode and decode), vLLM's method: the ids
(offset + i + j) mod vocab after a random shared prefix, decoded and re-encoded, then cut or padded
until they re-encode to the drawn length (at most MAX_RETRY rounds); the request carries the ids and
their text. Without one, the prompt is that many words from a fixed list of common words, and
input_tokens is that nominal count: the server's `usage` gives the true count where it sends one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bench.results.files import limit_bytes, read_text_bounded
from bench.serve.model import RequestSpec

MAX_RETRY = 10
SHAREGPT_MIN_LEN = 4  # vLLM's is_valid_sequence: shorter prompts or replies are skipped
SHAREGPT_MAX_PROMPT = 1024
SHAREGPT_MAX_TOTAL = 2048
_WORD_TEXT = (
    "the of and to in is was for on that with as by at from his it an were are which this be has or had not "
    "first one their its new after but who have also two they her been other when there all during into "
    "school time may years more most only over city some world would where later up such used many can state "
    "about national out known university united then made number part under team between both year three "
    "well film while each being found since house music people area called against long high group game "
    "early became name same family life work very will these second like series around so public"
)
WORDS = _WORD_TEXT.split()  # common English words, one token each in most tokenizers


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...


class DatasetError(ValueError):
    """A dataset that cannot give requests (one line naming the file or the argument)."""


def length_range(length: int, range_ratio: float, minimum: int = 0) -> tuple[int, int]:
    """vLLM's bounds: [floor(len * (1 - r)), ceil(len * (1 + r))], neither under `minimum`."""
    return max(minimum, math.floor(length * (1 - range_ratio))), max(minimum, math.ceil(length * (1 + range_ratio)))


def _check(n: int, **lengths: int) -> None:
    if n < 0:
        raise DatasetError(f"number of prompts must be >= 0, got {n}")
    for name, value in lengths.items():
        if value < 0:
            raise DatasetError(f"{name} must be >= 0, got {value}")


def _words(rng: np.random.Generator, n: int) -> list[str]:
    return [WORDS[i] for i in rng.integers(0, len(WORDS), size=n)]


def _encode(tokenizer: Any, text: str) -> list[int]:
    try:
        return list(tokenizer.encode(text, add_special_tokens=False))
    except TypeError:  # a tokenizer without that keyword
        return list(tokenizer.encode(text))


def _vocab_size(tokenizer: Any) -> int:
    size = getattr(tokenizer, "vocab_size", None)
    return int(size) if size else len(tokenizer)


def fit_to_length(tokenizer: Any, ids: list[int], target: int, rng: np.random.Generator) -> tuple[list[int], str]:
    """vLLM's gen_prompt_decode_to_target_len: decode, re-encode, cut or pad with random ids, until
    the text re-encodes to `target` ids (or MAX_RETRY rounds); the ids and their text."""
    vocab = _vocab_size(tokenizer)
    for _ in range(MAX_RETRY):
        text = tokenizer.decode(ids)
        ids = _encode(tokenizer, text)
        if len(ids) == target:
            return ids, text
        ids = ids[:target] if len(ids) > target else ids + rng.integers(0, vocab, size=target - len(ids)).tolist()
    text = tokenizer.decode(ids)
    return _encode(tokenizer, text), text


def random_requests(
    n: int,
    input_len: int,
    output_len: int,
    *,
    range_ratio: float = 0.0,
    prefix_len: int = 0,
    seed: int = 0,
    tokenizer: Tokenizer | None = None,
    ignore_eos: bool = False,
) -> list[RequestSpec]:
    """n random requests of about input_len prompt tokens (plus a shared prefix) and output_len output tokens."""
    _check(n, input_len=input_len, prefix_len=prefix_len)
    if output_len < 1:
        raise DatasetError(f"output length must be >= 1, got {output_len}")
    if not 0.0 <= range_ratio < 1.0:
        raise DatasetError(f"range ratio must be in [0, 1), got {range_ratio}")
    rng = np.random.default_rng(seed)
    in_lo, in_hi = length_range(input_len, range_ratio)
    out_lo, out_hi = length_range(output_len, range_ratio, minimum=1)
    in_lens = rng.integers(in_lo, in_hi + 1, size=n)
    out_lens = rng.integers(out_lo, out_hi + 1, size=n)
    if tokenizer is None:
        prefix = _words(rng, prefix_len)
        return [
            RequestSpec(i, " ".join(prefix + _words(rng, int(k))), prefix_len + int(k), int(m), ignore_eos)
            for i, (k, m) in enumerate(zip(in_lens, out_lens, strict=True))
        ]
    vocab = _vocab_size(tokenizer)
    offsets = rng.integers(0, vocab, size=n)
    prefix_ids = rng.integers(0, vocab, size=prefix_len).tolist()
    specs = []
    for i in range(n):
        inner = ((int(offsets[i]) + i + np.arange(int(in_lens[i]))) % vocab).tolist()
        ids, text = fit_to_length(tokenizer, prefix_ids + inner, prefix_len + int(in_lens[i]), rng)
        specs.append(RequestSpec(i, ids, len(ids), int(out_lens[i]), ignore_eos, prompt_text=text))
    return specs


def prefix_repetition_requests(
    n: int, *, prefix_len: int, suffix_len: int, num_prefixes: int, output_len: int, seed: int = 0
) -> list[RequestSpec]:
    """n requests, each one of num_prefixes shared prefixes (prefix_len words) and its own random
    suffix (suffix_len words), in a shuffled order (vLLM's prefix_repetition): prefix-cache behaviour."""
    _check(n, prefix_len=prefix_len, suffix_len=suffix_len)
    if num_prefixes < 1:
        raise DatasetError(f"number of prefixes must be >= 1, got {num_prefixes}")
    if output_len < 1:
        raise DatasetError(f"output length must be >= 1, got {output_len}")
    rng = np.random.default_rng(seed)
    prefixes = [_words(rng, prefix_len) for _ in range(num_prefixes)]
    prompts = [" ".join(prefixes[i % num_prefixes] + _words(rng, suffix_len)) for i in range(n)]
    order = rng.permutation(n)
    return [RequestSpec(i, prompts[int(j)], prefix_len + suffix_len, output_len) for i, j in enumerate(order)]


def _load_json(path: str | Path) -> Any:
    try:
        text = read_text_bounded(path, limit_bytes(), "a ShareGPT JSON file")
    except OSError as e:
        raise DatasetError(f"{path}: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not JSON ({e.msg} at line {e.lineno} column {e.colno})") from None


def _pair(entry: Any) -> tuple[str, str] | None:
    """(prompt, reply) of one ShareGPT entry: the first human turn and the turn after it; None if absent."""
    turns = entry.get("conversations") if isinstance(entry, dict) else None
    if not isinstance(turns, list):
        return None
    for k, turn in enumerate(turns[:-1]):
        if isinstance(turn, dict) and turn.get("from") in ("human", "user"):
            nxt = turns[k + 1]
            if isinstance(turn.get("value"), str) and isinstance(nxt, dict) and isinstance(nxt.get("value"), str):
                return turn["value"], nxt["value"]
            return None
    return None


def sharegpt_requests(path: str | Path, n: int, *, seed: int = 0, output_len: int | None = None) -> list[RequestSpec]:
    """n requests from a ShareGPT-format JSON file (a list of {"conversations": [{"from", "value"}, ...]}).

    Lengths are whitespace words (the server's usage gives tokens). vLLM's filter: prompts or derived
    replies under 4, prompts over 1024, or prompt + reply over 2048 are skipped. The usable entries
    are shuffled with `seed`; when there are fewer than n they are used again in the same order.
    """
    _check(n)
    if output_len is not None and output_len < 1:
        raise DatasetError(f"output length must be >= 1, got {output_len}")
    data = _load_json(path)
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of conversations, got {type(data).__name__}")
    usable = []
    for pair in filter(None, map(_pair, data)):
        k = len(pair[0].split())
        m = output_len if output_len is not None else len(pair[1].split())
        if k < SHAREGPT_MIN_LEN or k > SHAREGPT_MAX_PROMPT or (output_len is None and m < SHAREGPT_MIN_LEN):
            continue
        if output_len is None and k + m > SHAREGPT_MAX_TOTAL:
            continue
        usable.append((pair[0], k, m))
    if not usable and n:
        raise DatasetError(f"{path}: no usable conversation (a human turn of 4-1024 words and a reply after it)")
    order = np.random.default_rng(seed).permutation(len(usable)).tolist() if usable else []
    return [RequestSpec(i, *usable[order[i % len(order)]]) for i in range(n)]
