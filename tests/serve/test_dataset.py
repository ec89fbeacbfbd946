"""Datasets: lengths, determinism, vLLM's re-encoding to an exact length, ShareGPT files good and bad."""

from __future__ import annotations

import json

import pytest

from bench.serve.dataset import (
    WORDS,
    DatasetError,
    fit_to_length,
    length_range,
    prefix_repetition_requests,
    random_requests,
    sharegpt_requests,
)


class PieceTokenizer:
    """A toy tokenizer that, like GPT-2's, does not round-trip: pieces join with no separator and
    encoding takes the longest piece first, so [a, b] decodes to "ab" and re-encodes to [ab]."""

    pieces = ("a", "b", "c", "ab", "bc", "abc", "ca", "d")
    vocab_size = len(pieces)

    def decode(self, ids):
        return "".join(self.pieces[i] for i in ids)

    def encode(self, text, add_special_tokens=True):
        ids, i = [], 0
        while i < len(text):
            k = max((p for p in self.pieces if text.startswith(p, i)), key=len)
            ids.append(self.pieces.index(k))
            i += len(k)
        return ids


def test_length_range_is_vllms():
    assert length_range(100, 0.25) == (75, 125)
    assert length_range(10, 0.55) == (4, 16)  # floor(4.5), ceil(15.5)
    assert length_range(1, 0.9, minimum=1) == (1, 2)


def test_random_text_prompts():
    reqs = random_requests(40, 100, 20, range_ratio=0.5, seed=1)
    assert [r.index for r in reqs] == list(range(40))
    for r in reqs:
        words = r.prompt.split()
        assert len(words) == r.input_tokens and 50 <= r.input_tokens <= 150
        assert 10 <= r.max_tokens <= 30 and set(words) <= set(WORDS)
    assert len({r.input_tokens for r in reqs}) > 10  # the lengths do vary
    assert random_requests(40, 100, 20, range_ratio=0.5, seed=1) == reqs
    assert random_requests(40, 100, 20, range_ratio=0.5, seed=2) != reqs


def test_random_exact_lengths_and_a_shared_prefix():
    reqs = random_requests(5, 8, 3, prefix_len=4, ignore_eos=True, seed=0)
    prefixes = {tuple(r.prompt.split()[:4]) for r in reqs}
    assert len(prefixes) == 1
    assert all(r.input_tokens == 12 and len(r.prompt.split()) == 12 and r.max_tokens == 3 for r in reqs)
    assert all(r.ignore_eos for r in reqs)


def test_random_token_ids_reencode_to_the_drawn_length():
    tok = PieceTokenizer()
    reqs = random_requests(30, 12, 4, range_ratio=0.5, prefix_len=3, seed=7, tokenizer=tok)
    for r in reqs:
        assert isinstance(r.prompt, list) and r.input_tokens == len(r.prompt)
        assert 3 + 6 <= r.input_tokens <= 3 + 18
        assert tok.encode(r.prompt_text) == r.prompt  # the text sends the same ids
    assert random_requests(30, 12, 4, range_ratio=0.5, prefix_len=3, seed=7, tokenizer=tok) == reqs


def test_fit_to_length_cuts_and_pads():
    import numpy as np

    tok = PieceTokenizer()
    ids, text = fit_to_length(tok, [0, 1, 2], 3, np.random.default_rng(0))  # "abc" is one piece: padded
    assert len(ids) == 3 and tok.encode(text) == ids
    ids, text = fit_to_length(tok, [7] * 9, 4, np.random.default_rng(0))  # "ddddddddd": cut to four
    assert ids == [7] * 4 and text == "dddd"


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [({"n": -1}, "number of prompts"), ({"input_len": -2}, "input_len"), ({"output_len": 0}, "output length"),
     ({"range_ratio": 1.0}, "range ratio"), ({"prefix_len": -1}, "prefix_len")],
)  # fmt: skip
def test_random_bad_arguments(kwargs, what):
    args = {"n": 3, "input_len": 10, "output_len": 5, **kwargs}
    with pytest.raises(DatasetError, match=what):
        random_requests(args.pop("n"), args.pop("input_len"), args.pop("output_len"), **args)


def test_prefix_repetition():
    reqs = prefix_repetition_requests(12, prefix_len=6, suffix_len=4, num_prefixes=3, output_len=5, seed=3)
    prefixes = [tuple(r.prompt.split()[:6]) for r in reqs]
    assert len(set(prefixes)) == 3 and all(prefixes.count(p) == 4 for p in set(prefixes))
    assert all(r.input_tokens == 10 == len(r.prompt.split()) and r.max_tokens == 5 for r in reqs)
    assert [r.index for r in reqs] == list(range(12))
    assert prefixes != sorted(prefixes, key=prefixes.index)  # shuffled, not in blocks or round-robin order
    assert prefix_repetition_requests(12, prefix_len=6, suffix_len=4, num_prefixes=3, output_len=5, seed=3) == reqs
    with pytest.raises(DatasetError, match="number of prefixes"):
        prefix_repetition_requests(2, prefix_len=1, suffix_len=1, num_prefixes=0, output_len=1)


def _conv(*turns):
    return {"conversations": [{"from": who, "value": text} for who, text in turns]}


SHAREGPT = [
    _conv(("human", "how do I bake a loaf of bread"), ("gpt", "mix flour water salt and yeast then wait")),
    _conv(
        ("gpt", "hello there, how may I help"),
        ("human", "what is the capital of france"),
        ("gpt", "paris is the capital of france"),
    ),
    _conv(("human", "too short"), ("gpt", "this reply is long enough though")),  # prompt < 4 words
    _conv(("human", "a reply that is too short follows"), ("gpt", "ok")),  # reply < 4 words
    _conv(("human", "only one turn here, no reply")),
    {"id": "no conversations"},
    "not even a dict",
]


def test_sharegpt(tmp_path):
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(SHAREGPT))
    reqs = sharegpt_requests(path, 2, seed=0)
    assert sorted(r.prompt for r in reqs) == ["how do I bake a loaf of bread", "what is the capital of france"]
    by_prompt = {r.prompt: r for r in reqs}
    assert by_prompt["how do I bake a loaf of bread"].max_tokens == 8  # the reply's length
    assert by_prompt["what is the capital of france"].input_tokens == 6
    assert sharegpt_requests(path, 2, seed=0) == reqs
    five = sharegpt_requests(path, 5, seed=0)  # more than the file has: used again in the same order
    assert [r.prompt for r in five] == [reqs[0].prompt, reqs[1].prompt] * 2 + [reqs[0].prompt]
    fixed = sharegpt_requests(path, 3, output_len=64)
    assert all(r.max_tokens == 64 for r in fixed)
    assert "a reply that is too short follows" in {r.prompt for r in fixed}  # the reply's length no longer matters


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not JSON (Expecting property name"), ('{"a": 1}', "expected a JSON list of conversations"),
     (json.dumps(SHAREGPT[2:]), "no usable conversation"), (b"\xff\xfe", "not UTF-8")],
)  # fmt: skip
def test_sharegpt_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(DatasetError) as e:
        sharegpt_requests(path, 3)
    assert message in str(e.value) and str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_sharegpt_missing_file_or_a_directory(tmp_path):
    with pytest.raises(DatasetError, match="No such file"):
        sharegpt_requests(tmp_path / "absent.json", 1)
    with pytest.raises(DatasetError, match="a directory, not a regular file"):
        sharegpt_requests(tmp_path, 1)
