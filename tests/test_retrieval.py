"""Retrieval: fusion modes, merged passages, filters, and one model call per question."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.errors import InputError
from assistant.pipeline import Assistant
from assistant.store import build_index
from assistant.ui.render import source_link
from conftest import FakeEncoder


@pytest.fixture
def assistant(fake_settings: Settings) -> Assistant:
    encoder = FakeEncoder()
    build_index(fake_settings, encoder)
    return Assistant.open(fake_settings.with_(k=10), encoder)


def test_passages_never_overlap_and_offsets_hold(assistant: Assistant) -> None:
    for question in ("lighthouse keeper forty-two ships harbour", "glacier advances metres", "budget percent"):
        passages = assistant.ask(question, k=10).passages
        assert [p.rank for p in passages] == list(range(1, len(passages) + 1))
        for i, a in enumerate(p.citation for p in passages):
            assert assistant.index.by_id[a.doc_id].text[a.span.start : a.span.end] == a.text
            for b in (p.citation for p in passages[i + 1 :]):
                if a.doc_id == b.doc_id:
                    assert a.span.end <= b.span.start or b.span.end <= a.span.start, (a, b)


def test_overlapping_chunks_merge_into_one_passage(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    words = [f"word{i}" for i in range(80)]
    (corpus / "long.txt").write_text(" ".join(words) + "\n")
    (corpus / "other.txt").write_text("unrelated text about gardens and roses\n")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-encoder",
                        chunk_tokens=12, chunk_overlap=6)
    encoder = FakeEncoder()
    build_index(settings, encoder)
    assistant = Assistant.open(settings, encoder)
    index = assistant.index
    spans = [(index.chunk(i).start, index.chunk(i).end) for i in range(len(index)) if index.chunk(i).doc_id == "long"]
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), "chunks should overlap"
    passages = assistant.ask(" ".join(words[30:42]), k=5).passages
    long = [p.citation.span for p in passages if p.citation.doc_id == "long"]
    assert long[0].end - long[0].start > max(e - s for s, e in spans)  # neighbours merged into one passage
    for a in long:
        for b in long:
            assert a is b or a.end <= b.start or b.end <= a.start


def test_each_question_costs_one_model_call(assistant: Assistant) -> None:
    encoder = assistant.encoder
    encoder.encoded.clear()
    assistant.ask("Where is the copper mine?")
    assert encoder.encoded == ["Where is the copper mine?"]
    encoder.encoded.clear()
    assistant.ask_many(["one question", "another question"])
    assert encoder.encoded == ["one question", "another question"]


def test_modes_and_filters(assistant: Assistant) -> None:
    for mode in ("dense", "keyword", "hybrid"):
        single = Assistant(assistant.index, assistant.encoder, assistant.settings.with_(retriever=mode))
        top = single.ask("copper mine Chuquicamata tonnes", k=3).passages[0]
        assert top.citation.doc_id == "page", mode
    only = assistant.ask("copper mine", doc_ids=["memo"]).passages
    assert only and {p.citation.doc_id for p in only} == {"memo"}
    with pytest.raises(InputError, match="unknown document id"):
        assistant.ask("copper", doc_ids=["nope"])
    with pytest.raises(InputError, match="k must be at least 1"):
        assistant.ask("copper", k=0)
    with pytest.raises(InputError, match="retriever must be one of"):
        assistant.settings.with_(retriever="magic")


def test_questions_are_cleaned_and_cut(assistant: Assistant) -> None:
    with pytest.raises(InputError, match="empty"):
        assistant.ask(" \n\t ")
    long = "copper " * 1000
    response = assistant.ask(long)
    assert len(response.question) == assistant.settings.max_question_chars
    assert any("cut" in n for n in response.notices)
    assert assistant.ask("copper\x00 mine\x1b").question == "copper  mine"


def test_pages_and_citations(assistant: Assistant) -> None:
    passage = next(p.citation for p in assistant.ask("violet harbour", k=10).passages if p.citation.doc_id == "report")
    second_page = passage.span.start >= assistant.index.by_id["report"].page_starts[1]
    assert passage.page == 2 if second_page else passage.page == 1
    copper = next(p.citation for p in assistant.ask("copper mine", k=10).passages if p.citation.doc_id == "page")
    assert copper.source == "https://example.org/copper" and copper.author == "Mining Desk"
    start, end = copper.span.start, copper.span.end
    assert source_link(copper.doc_id, start, end) == f"/source?doc=page&start={start}&end={end}"


def test_path_is_kept_when_no_link(assistant: Assistant, mini_corpus: Path) -> None:
    memo = next(p.citation for p in assistant.ask("budget grew percent", k=10).passages if p.citation.doc_id == "memo")
    assert memo.source == "memo.docx" and memo.title == "Budget Memo"
