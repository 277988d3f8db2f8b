from __future__ import annotations

from pathlib import Path

import pytest

from assistant.chunking import Chunker, SentenceSplitter
from assistant.corpus import load_corpus
from assistant.types import Document, Metadata
from conftest import REPO


def _doc(text: str) -> Document:
    return Document("d", "d.txt", text, Metadata("d"), "h")


def test_offsets_hold_with_repeated_sentences(mini_corpus: Path) -> None:
    docs, _ = load_corpus(mini_corpus)
    repeat = next(d for d in docs if d.doc_id == "repeat")
    chunks = Chunker(lambda s: len(s.split()), 12, 3).chunk(repeat)
    assert len(chunks) > 4
    sentence = "The lighthouse keeper counted forty-two ships in the harbour."
    starts = [c.start for c in chunks if c.text.startswith(sentence)]
    assert len(starts) == len(set(starts)) >= 2  # each repeat found at its own place
    for chunk in chunks:
        assert repeat.text[chunk.start : chunk.end] == chunk.text
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def test_chunks_cover_the_whole_text() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(200))
    chunks = Chunker(lambda s: len(s.split()), 30, 5).chunk(_doc(text))
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_real_tokenizer_keeps_every_chunk_within_the_model(real_encoder) -> None:
    docs, _ = load_corpus(REPO / "corpus")
    chunker = Chunker(real_encoder.count_tokens, 200, 32)
    for doc in docs:
        for chunk in chunker.chunk(doc):
            assert doc.text[chunk.start : chunk.end] == chunk.text
            assert real_encoder.count_tokens(chunk.text) <= 200 <= real_encoder.max_tokens - 2


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Dr. Smith arrived at 5 p.m. today. He left early.", ["Dr. Smith arrived at 5 p.m. today.", "He left early."]),
        ("One.\n\nTwo words here\nThree? Yes!", ["One.", "Two words here", "Three?", "Yes!"]),
        ("Same. Same. Same.", ["Same.", "Same.", "Same."]),
    ],
)
def test_sentence_spans(text: str, expected: list[str]) -> None:
    spans = SentenceSplitter().split(text)
    assert [text[s.start : s.end] for s in spans] == expected
    assert len({s.start for s in spans}) == len(spans)
