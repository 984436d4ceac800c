"""Backtranslation through a tiny, randomly initialised MarianMT model built in tmp_path.

No OPUS-MT model can be downloaded here, so the code path is exercised with a
1-layer Marian model and a real ``MarianTokenizer`` whose SentencePiece models are
trained on a few sentences in the test (the tokenizer needs .spm files and a vocab).
The outputs are gibberish; the test checks plumbing, chunking, seeding and rejections.
"""

from __future__ import annotations

import json

import pytest

from ssl_engine.augment.backtranslation import backtranslate, split_chunks
from ssl_engine.augment.generators import generate_variants

CORPUS = [
    "How do I make a bomb at home?",
    "Write a poem about the sea and the sky.",
    "Der Hund läuft schnell nach Hause.",
    "Le chat dort sur la chaise.",
    "What is the best way to learn Python programming?",
] * 20


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory):
    spm = pytest.importorskip("sentencepiece")
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    d = tmp_path_factory.mktemp("tiny-marian")
    (d / "corpus.txt").write_text("\n".join(CORPUS))
    spm.SentencePieceTrainer.train(
        input=str(d / "corpus.txt"), model_prefix=str(d / "sp"), vocab_size=50, model_type="unigram",
        hard_vocab_limit=False, character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1, minloglevel=2,
    )  # fmt: skip
    sp = spm.SentencePieceProcessor(model_file=str(d / "sp.model"))
    vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}
    for i in range(sp.get_piece_size()):
        vocab.setdefault(sp.id_to_piece(i), len(vocab))
    (d / "vocab.json").write_text(json.dumps(vocab))
    for name in ("source.spm", "target.spm"):
        (d / name).write_bytes((d / "sp.model").read_bytes())
    tok = MarianTokenizer(str(d / "source.spm"), str(d / "target.spm"), str(d / "vocab.json"))
    tok.save_pretrained(d / "model")
    torch.manual_seed(0)
    cfg = MarianConfig(
        vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=128,
        pad_token_id=2, eos_token_id=0, decoder_start_token_id=2, forced_eos_token_id=0,
    )  # fmt: skip
    MarianMTModel(cfg).save_pretrained(d / "model")
    return str(d / "model")


def test_split_chunks_keeps_sentences_whole_and_bounded():
    text = "One sentence here. Another one follows! A third? " * 10
    chunks = split_chunks(text, max_chars=60)
    assert all(len(c) <= 60 for c in chunks)
    assert " ".join(chunks).split() == text.split()
    assert split_chunks("") == []


def test_backtranslation_gives_one_outcome_per_pivot_and_is_seeded(tiny_marian):
    models = {"de": (tiny_marian, tiny_marian), "fr": (tiny_marian, tiny_marian)}
    texts = ["How do I make a bomb at home?", "Write a poem about the sea. " * 8, ""]
    opts = dict(pivots=("de", "fr"), models=models, batch_size=2, max_length=12, chunk_chars=80)
    res = backtranslate(texts, sample=True, **opts)
    for r in res[:2]:
        assert len(r.variants) + len(r.rejected) == 2
        assert all(v.strip() for v in r.variants)
    assert [x.reason for x in res[2].rejected] == ["empty_source (de)", "empty_source (fr)"]
    assert res[0].meta["generator"] == "backtranslation"
    again = backtranslate(texts, sample=True, **opts)
    assert [r.variants for r in again] == [r.variants for r in res]


def test_backtranslation_generator_and_its_config_errors(tiny_marian):
    res = generate_variants(
        ["Le chat dort."], generator="backtranslation",
        config={"pivots": ["ro"], "models": {"ro": [tiny_marian, tiny_marian]}, "num_beams": 2, "max_length": 8},
    )  # fmt: skip
    assert len(res) == 1 and len(res[0].variants) + len(res[0].rejected) == 1
    with pytest.raises(ValueError, match="no translation models configured"):
        generate_variants(["x"], generator="backtranslation", config={"pivots": ["xx"]})
    with pytest.raises(ValueError, match="unknown backtranslation config"):
        generate_variants(["x"], generator="backtranslation", config={"pivot": ["de"]})
