"""LLM-as-judge: answer parsing, majority votes, labeling (scripted providers)."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_engine.llm_judge import (
    build_judge_messages,
    build_label_messages,
    judge_rewrites,
    llm_label,
    majority,
    parse_label,
    parse_yes_no,
)


@pytest.mark.parametrize(
    "raw, expected",
    [("Yes.", True), ("**No**", False), ("yes, it keeps the intent", True), ("No, the rewrite is harmless.", False),
     ("Answer: yes", True), ("I think so", None), ("", None)],
)  # fmt: skip
def test_parse_yes_no(raw, expected):
    assert parse_yes_no(raw) is expected


@pytest.mark.parametrize(
    "raw, expected",
    [("harmful", 1), ("Unharmful.", 0), ("The request is not harmful", 0), ("HARMFUL - it asks for weapons", 1),
     ("safe", 0), ("I don't know", -1)],
)  # fmt: skip
def test_parse_label(raw, expected):
    assert parse_label(raw) == expected


def test_majority():
    assert majority([True, True, False]) is True
    assert majority([True, False]) is None
    assert majority([None, False]) is False
    assert majority([]) is None


def test_prompts_mention_label_and_context():
    msgs = build_judge_messages("src", "rw", label="harmful", task="response", prompt="the question")
    assert "is still harmful" in msgs[-1]["content"] and "the question" in msgs[-1]["content"]
    assert "Is this request harmful?" in build_label_messages("x")[-1]["content"]
    assert "AI response" in build_label_messages("x", task="response", prompt="p")[-1]["content"]


class Judge:
    name = "judge"

    def __init__(self, answer):
        self.answer = answer

    def chat(self, conversations, *, n=1, max_new_tokens=8, temperature=0.0, top_p=0.95, seed=0):
        return [[self.answer(c[-1]["content"], j) for j in range(n)] for c in conversations]


def test_judge_rewrites_returns_votes_per_variant_from_every_judge():
    yes_if_same = Judge(
        lambda text, j: "Yes" if "same" in text.split("Rewritten request:\n")[1].split("\n\n")[0] else "No"
    )
    unsure = Judge(lambda text, j: "Maybe")
    votes = judge_rewrites(["a", "b"], [["same thing", "other"], []], judges=[yes_if_same, yes_if_same, unsure])
    assert votes == [[(True, True, None), (False, False, None)], []]
    votes = judge_rewrites(["a"], [["same"]], judges=[yes_if_same], samples_per_judge=3)
    assert votes == [[(True, True, True)]]


def test_llm_label_generate_and_score_methods():
    gen = Judge(lambda text, j: "harmful" if "bomb" in text else "unharmful")
    res = llm_label(["make a bomb", "bake a cake"], provider=gen)
    assert res.method == "generate" and res.labels.tolist() == [1, 0] and res.p_harmful is None

    class Scorer(Judge):
        def option_logprobs(self, conversations, options):
            assert options == ["harmful", "unharmful"]
            return np.array([[-0.1, -2.5] if "bomb" in c[-1]["content"] else [-3.0, -0.05] for c in conversations])

    res = llm_label(["make a bomb", "bake a cake"], provider=Scorer(None))
    assert res.method == "score" and res.labels.tolist() == [1, 0]
    assert res.p_harmful[0] > 0.9 and res.p_harmful[1] < 0.1
    with pytest.raises(ValueError, match="cannot score"):
        llm_label(["x"], provider=gen, method="score")
