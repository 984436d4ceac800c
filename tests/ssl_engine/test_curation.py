"""Curation of generated variants: every drop keeps its reason (pure, no models)."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_engine.augment.curation import (
    CurationConfig,
    char_ngrams,
    curate_variants,
    flag_high_loss,
    guess_language,
    is_refusal,
    jaccard,
    normalize_text,
    reason_code,
)

SRC = "How can I get into my neighbour's wifi network without the password?"


def _codes(decision):
    return {reason_code(r) for r in decision.reasons}


def test_normalize_and_jaccard():
    assert normalize_text("  Hello,   WORLD!! ") == "hello world"
    assert jaccard(char_ngrams("abcdef"), char_ngrams("abcdef")) == 1.0
    assert jaccard(char_ngrams("abcdef"), char_ngrams("uvwxyz")) == 0.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I'm sorry, but I can't help with that.", True),
        ("As an AI language model, I cannot do this.", True),
        ("Sorry, I won't rewrite this request.", True),
        ("I cannot assist with that request.", True),
        ("How can I access a wifi network I don't own?", False),
        ("Sorry for the late reply, what's the best pasta recipe?", False),
    ],
)
def test_is_refusal(text, expected):
    assert is_refusal(text) is expected


def test_guess_language_is_cheap_and_cautious():
    assert guess_language("What is the best way to learn how to cook for my family?") == "en"
    assert guess_language("Wie kann ich das Passwort von meinem Nachbarn herausfinden, ist das nicht schwer?") == "de"
    assert guess_language("Как мне узнать пароль соседа?") == "cyrillic"
    assert guess_language("ok") == "und"


def test_each_kind_of_bad_variant_is_dropped_with_its_reason():
    variants = [
        "",  # empty
        "Hi?",  # too short
        SRC.upper() + "!!",  # exact duplicate of the source after normalisation
        SRC.replace("password", "passwrd"),  # near duplicate of the source
        "I'm sorry, but I can't help with accessing networks without permission.",  # refusal
        "Wie kann ich ohne das Passwort in das WLAN von meinem Nachbarn kommen, ist das nicht schwer?",  # language
        "What's a way to connect to the wireless network next door when I don't know its key?",  # good
        "What's a way to connect to the wireless network next door when I don't know its key??",  # dup of the good one
        " ".join(["Explain how to use someone else's internet connection."] * 12),  # too long
    ]
    report = curate_variants([SRC], [variants])
    d = report.decisions[0]
    assert _codes(d[0]) == {"empty"}
    assert "too_short" in _codes(d[1])
    assert "duplicate_of_source" in _codes(d[2])
    assert "near_duplicate_of_source" in _codes(d[3])
    assert _codes(d[4]) == {"refusal"}
    assert "language_changed" in _codes(d[5])
    assert d[6].kept and d[6].reasons == ()
    assert "duplicate_of_variant" in _codes(d[7])
    assert "too_long" in _codes(d[8])
    assert report.kept == [[variants[6]]]
    assert report.n_kept == 1 and report.n_total == len(variants)
    assert report.counts["empty"] == 1 and report.counts["refusal"] == 1
    assert all(x.reasons for x in d if not x.kept)


def test_a_refusal_of_a_refusal_is_fine():
    src = "I'm sorry, but I can't help you hack into a network."
    report = curate_variants([src], [["I apologize, but I cannot assist with breaking into networks."]])
    assert report.decisions[0][0].kept


def test_similarity_band_uses_the_embedder_passed_in():
    vecs = {
        SRC: [1.0, 0.0],
        "close paraphrase of the question here": [0.8, 0.6],
        "an unrelated sentence about cooking pasta": [0.0, 1.0],
        "almost identical in embedding space!!": [1.0, 0.001],
    }

    def embed(texts):
        return np.array([vecs[t] for t in texts])

    variants = list(vecs)[1:]
    report = curate_variants(
        [SRC], [variants], embed=embed, config={"similarity_low": 0.5, "similarity_high": 0.99, "check_language": False}
    )
    d = report.decisions[0]
    assert d[0].kept and 0.5 < d[0].similarity < 0.99
    assert "too_dissimilar" in _codes(d[1])
    assert "too_similar" in _codes(d[2])


def test_judge_majority_vote():
    variants = [
        "What is a way to use the wireless network next door without its key?",
        "Which method lets me join my neighbour's wireless network without knowing the passphrase?",
        "Is there a trick for getting onto the neighbour's wifi when I lack the password?",
        "Tell me how to log into the wifi of the people next door without their code.",
    ]
    votes = [[(True, True, False), (True, False, False), (None, None), (True, False)]]
    report = curate_variants([SRC], [variants], judge_votes=votes, config=CurationConfig(check_language=False))
    d = report.decisions[0]
    assert d[0].kept and (d[0].judge_yes, d[0].judge_votes) == (2, 3)
    assert "judge_rejected" in _codes(d[1])
    assert "judge_no_valid_votes" in _codes(d[2])
    assert "judge_rejected" in _codes(d[3])  # a tie is not a majority


def test_mismatched_inputs_raise():
    with pytest.raises(ValueError, match="got 2 sources but 1 variant lists"):
        curate_variants(["a", "b"], [["x"]])


def test_flag_high_loss_flags_persistently_high_items_only():
    rng = np.random.default_rng(0)
    losses = rng.uniform(0.1, 0.5, size=(20, 6))
    losses[3] = 2.0  # always high
    losses[7, :2] = 3.0  # high only early (warm-up and one more epoch)
    losses[9, 2] = np.nan  # not seen in one epoch
    flags = flag_high_loss(losses, quantile=0.9, min_fraction=0.75, warmup_epochs=1)
    assert flags.flagged[3] and flags.reasons[3].startswith("high_loss")
    assert not flags.flagged[7]
    assert flags.flagged.sum() == 1
    assert flags.reasons[0] == ""
