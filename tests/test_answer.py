"""Answer extraction: units with the fake encoder, measured floors with the real model."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import evaluation
from assistant.answer import question_type
from assistant.authorship import asks_for_author, author_names
from assistant.config import DEFAULT_READER, Settings
from assistant.metrics import aggregate
from assistant.pipeline import Assistant
from assistant.ui.render import source_link
from conftest import SEED_QUESTIONS, SQUAD, fake_assistant_on


@pytest.fixture
def fake_assistant(tmp_path: Path) -> Assistant:
    return fake_assistant_on(tmp_path, {
        "otters.txt": "Otters\n\nSea otters live along the coast of the North Pacific Ocean. "
                      "They use stones to crack open shellfish. The otter population fell sharply in 1911.\n\n"
                      "Why do otters float? Their dense fur traps air. It keeps them warm and buoyant.\n\n"
                      "Otter Daily, by Mara Quill\n\nMara Quill has written about marine mammals for twenty years.\n",
        "otters.meta.json": '{"title": "Otters", "author": "Mara Quill"}'}, chunk_tokens=25, chunk_overlap=5)


def test_answer_is_a_verbatim_span(fake_assistant: Assistant) -> None:
    response = fake_assistant.ask("When did the otter population fall sharply?")
    answer = response.answer
    assert answer is not None
    text, span = fake_assistant.index.by_id["otters"].text, answer.citation.span
    assert text[span.start : span.end] == answer.citation.text
    assert "1911" in answer.citation.text
    assert 0.0 <= answer.confidence <= 1.0
    assert source_link("otters", span.start, span.end) == f"/source?doc=otters&start={span.start}&end={span.end}"
    assert any(p.rank == answer.passage_rank and p.citation.span.start <= span.start and span.end <= p.citation.span.end
               for p in response.passages)


def test_pointing_back_sentence_joins_its_antecedent(fake_assistant: Assistant) -> None:
    answer = fake_assistant.ask("What do sea otters use stones to crack open?").answer
    assert answer is not None
    assert answer.citation.text.startswith("Sea otters live along the coast")
    assert answer.citation.text.endswith("crack open shellfish.")


def test_why_question_includes_the_reason(fake_assistant: Assistant) -> None:
    # the fake encoder's similarities are not calibrated: test the span, not the confidence
    always = Assistant(fake_assistant.index, fake_assistant.encoder, fake_assistant.settings.with_(abstain_below=0.0))
    answer = always.ask("Why do otters float?").answer
    assert answer is not None and "dense fur traps air" in answer.citation.text


def test_who_wrote_answers_from_the_byline(fake_assistant: Assistant) -> None:
    # the fake encoder's similarities are not calibrated: test the choice, not the confidence
    always = Assistant(fake_assistant.index, fake_assistant.encoder, fake_assistant.settings.with_(abstain_below=0.0))
    answer = always.ask("Who wrote about otters?").answer
    assert answer is not None and "Mara Quill" in answer.citation.text
    text = always.index.by_id[answer.citation.doc_id].text
    assert answer.phrase.text == "Mara Quill" == text[answer.phrase.start : answer.phrase.end]  # the author, marked
    # the metadata answers who wrote it; any other question about writing is the reader's to judge
    ranked = {q: always.extractor.ranked(always.retriever.retrieve(q))[0][0]
              for q in ("Who wrote about otters?", "What do otters write about?")}
    assert ranked["Who wrote about otters?"].reading is None
    assert ranked["What do otters write about?"].reading is not None


def test_a_fact_box_line_answers_with_its_value(tmp_path: Path) -> None:
    """A "Label: value" line whose label's words are all in the question answers it with its
    value as the phrase, not read by the reader; an interview's turn ("Kim: ...") stays the
    reader's, and so does a fact line whose label the question does not ask for."""
    assistant = fake_assistant_on(tmp_path, {"otterland.txt": (
        "Otterland\n\nOtterland is a small island nation known for its kelp forests and its otters.\n\n"
        "Country Profile\nPopulation: 3,000 people\nCapital city: Kelpton\n\n"
        "Kim: I believe the kelp forests of Otterland will recover.\n")}, chunk_tokens=40, chunk_overlap=5, abstain_below=0.0)
    text = assistant.index.by_id["otterland"].text

    answer = assistant.ask("What is the population?").answer
    assert answer is not None and answer.citation.text == "Population: 3,000 people"
    assert answer.phrase.text == "3,000 people" == text[answer.phrase.start : answer.phrase.end]
    best = {q: assistant.extractor.ranked(assistant.retriever.retrieve(q))[0][0]
            for q in ("What is the population?", "What is the capital city?",
                      "What did Kim say about the kelp forests?", "How many people live in the capital?")}
    assert best["What is the population?"].reading is None
    assert best["What is the capital city?"].reading is None
    assert best["What did Kim say about the kelp forests?"].reading is not None  # a sentence: the reader's
    assert best["How many people live in the capital?"].reading is not None  # "Capital city" is not all asked


def test_a_line_that_does_not_end_as_a_sentence_is_marked_a_heading(fake_assistant: Assistant) -> None:
    index = fake_assistant.index
    scored = fake_assistant.extractor.score_sentences(fake_assistant.retriever.retrieve("Otter Daily by Mara Quill"))
    heading = {}
    for c in scored:
        doc, span = index.sentence(c.sentence)
        heading[doc.text[span.start : span.end]] = c.heading
    assert heading["Otter Daily, by Mara Quill"] == 1.0  # the byline: a line, not a sentence
    assert heading["Mara Quill has written about marine mammals for twenty years."] == 0.0


def test_abstains_when_the_corpus_lacks_the_words(fake_assistant: Assistant) -> None:
    response = fake_assistant.ask("What is the boiling point of mercury in kelvin?")
    assert response.answer is None
    assert response.passages  # nearest passages are still shown
    assert response.to_dict()["answer"] is None


def test_threshold_is_a_setting(fake_assistant: Assistant) -> None:
    always = Assistant(fake_assistant.index, fake_assistant.encoder, fake_assistant.settings.with_(abstain_below=0.0))
    never = Assistant(fake_assistant.index, fake_assistant.encoder, fake_assistant.settings.with_(abstain_below=1.0))
    question = "What is the boiling point of mercury in kelvin?"
    assert always.ask(question).answer is not None
    assert never.ask("When did the otter population fall sharply?").answer is None


@pytest.mark.parametrize(
    "question, kind",
    [("When was it adopted?", "date"), ("What year did she marry?", "date"), ("How many ships?", "number"),
     ("Who founded NAVER?", "name"), ("Where is the FDNY?", "name"), ("What is AI?", None)],
)
def test_question_types(question: str, kind: str | None) -> None:
    assert question_type(question) == kind


def test_authorship_questions_and_names() -> None:
    assert asks_for_author("Who wrote the PassBlue profile?")
    assert not asks_for_author("Who leads the mission?")
    assert author_names("Dr. A B (interviewer); C D and E F") == ["Dr. A B", "C D", "E F"]


ORIGINAL_SEED = {f"d{i:02d}" for i in range(1, 14)} | {"n01", "n02", "n03"}  # today's floors were set on these


def test_seed_questions_floors(seed_index: Settings, eval_run) -> None:
    run = eval_run(seed_index, SEED_QUESTIONS, DEFAULT_READER)
    assert run.summary["hit@5"] >= 0.90, run.summary  # the whole set (55 questions)
    for row in run.rows:
        for p in row["passages"]:
            text = seed_index.corpus_dir.joinpath(f"{p['doc_id']}.txt").read_text(encoding="utf-8")
            assert text[p["start"] : p["end"]] == p["text"]
    rows = [row for row in run.rows if row["id"] in ORIGINAL_SEED]
    assert len(rows) == 16
    for row in rows:
        answer = row["answer"]
        if answer:
            assert seed_index.corpus_dir.joinpath(f"{answer['doc_id']}.txt").read_text(
                encoding="utf-8")[answer["start"] : answer["end"]] == answer["text"]
    metrics = aggregate(rows, 10)
    assert metrics["hit@3"] == 1.0, metrics
    assert metrics["answer_accuracy"] >= 0.92, metrics
    assert metrics["answered"] == 1.0, metrics
    assert metrics["abstention_accuracy"] == 1.0, metrics  # n01, n02 and n03


def test_squad_sample_floors(squad_index: Settings, real_encoder, eval_run) -> None:
    """The hand-tuned scorer's floors (``--reader none``), and hybrid retrieval beating each
    retriever alone; the reader's floors are in test_reader.py."""
    run = eval_run(squad_index, SQUAD / "questions.jsonl", "none")
    metrics = run.summary
    hybrid = Assistant.open(squad_index.with_(reader="none"), real_encoder)
    answerable = [q for q in evaluation.load_question_set(SQUAD / "questions.jsonl").questions if q.answerable]
    alone, k = {}, squad_index.eval_k
    for mode in ("keyword", "dense"):
        single = Assistant(hybrid.index, real_encoder, squad_index.with_(retriever=mode, reader="none"))
        responses = single.ask_many([q.question for q in answerable], k=k)
        alone[mode] = evaluation.evaluate(answerable, lambda group, r=responses: r, k=k, batch=len(answerable)).summary
    for mode, summary in alone.items():
        assert metrics["hit@1"] > summary["hit@1"], (mode, metrics, summary)
        assert metrics["hit@5"] > summary["hit@5"], (mode, metrics, summary)
    assert metrics["answer_accuracy"] >= 0.75, metrics
    assert metrics["by_prefix"]["ooc-"]["abstention_accuracy"] >= 0.85, metrics
    assert metrics["answered"] >= 0.90, metrics
