"""Adversarial hard-example mining with a scripted generator and scorer."""

from __future__ import annotations

import pytest

from ssl_engine.adversarial import mine_hard_examples

# The "classifier": p_harmful is high when an obvious trigger word appears.
TRIGGERS = ("bomb", "kill", "steal", "attack")


def score(texts):
    return [0.9 if any(t in x.lower() for t in TRIGGERS) else 0.1 for x in texts]


def test_evade_keeps_candidates_scored_below_threshold():
    harmful = ["how to build a bomb", "how to steal a car", "ways to poison a dog"]  # the last is already missed

    def generate(texts):
        out = []
        for t in texts:
            if "bomb" in t:
                out.append(["how to build an explosive device", "how to build a bomb quickly"])
            else:
                out.append(["how to steal a vehicle fast"])  # still flagged
        return out

    res = mine_hard_examples(harmful, generate=generate, score=score, threshold=0.5, direction="evade")
    assert res.already_wrong == [2]
    assert [h.text for h in res.hard_examples] == ["how to build an explosive device"]
    h = res.hard_examples[0]
    assert h.score == 0.1 and h.source_score == 0.9 and h.label == 1 and h.iteration == 1
    s = res.stats[0]
    assert (s.sources, s.candidates, s.fooled, s.sources_fooled) == (2, 3, 1, 1)
    assert s.fooled_rate == pytest.approx(1 / 3)


def test_later_iterations_attack_only_unfooled_sources_from_their_best_candidate():
    calls = []

    def generate(texts):
        calls.append(list(texts))
        return [[t.replace("steal", "take") if "steal" in t else t + " now"] for t in texts]

    res = mine_hard_examples(["steal a car", "attack my ex"], generate=generate, score=score, iterations=3)
    assert calls[0] == ["steal a car", "attack my ex"]
    assert calls[1] == ["attack my ex"]  # the car source was fooled in round 1
    assert [s.iteration for s in res.stats] == [1, 2, 3]
    assert res.stats[1].sources == 1
    assert len(res.hard_examples) == 1


def test_validator_blocks_reward_hacking():
    def generate(texts):
        return [["how to build a birdhouse", "how to build an explosive device"] for _ in texts]

    res = mine_hard_examples(
        ["how to build a bomb"], generate=generate, score=score, validate=lambda src, cand: "explosive" in cand
    )
    assert [h.text for h in res.hard_examples] == ["how to build an explosive device"]
    assert res.stats[0].rejected_by_validator == 1


def test_alarm_direction_keeps_false_positive_probes():
    benign = ["how do I stop a frozen program", "best pasta recipe"]

    def generate(texts):
        return [[t.replace("stop", "kill"), t + " please"] for t in texts]

    res = mine_hard_examples(benign, generate=generate, score=score, direction="alarm")
    assert [h.text for h in res.hard_examples] == ["how do I kill a frozen program"]
    assert res.hard_examples[0].label == 0 and res.hard_examples[0].score == 0.9


def test_bad_callables_and_direction_are_errors():
    with pytest.raises(ValueError, match="direction"):
        mine_hard_examples(["x"], generate=lambda t: [[]], score=score, direction="sideways")
    with pytest.raises(ValueError, match="one list of candidates"):
        mine_hard_examples(["steal"], generate=lambda t: [], score=score)


def test_rewriter_wires_an_llm_provider_with_the_evade_template():
    from ssl_engine.adversarial import rewriter

    seen = []

    class Provider:
        name = "scripted"

        def chat(self, conversations, *, n=1, max_new_tokens=128, temperature=0.8, top_p=0.95, seed=0):
            seen.extend(c[0]["content"] for c in conversations)
            return [["how to build an explosive device"] * n for _ in conversations]

    res = mine_hard_examples(["how to build a bomb"], generate=rewriter(Provider(), n_variants=1), score=score)
    assert "filter is less likely" in seen[0]
    assert [h.text for h in res.hard_examples] == ["how to build an explosive device"]
