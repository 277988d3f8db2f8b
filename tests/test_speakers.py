"""Who said it: the speaker turns of the seed interviews, written out here by hand from reading
the two documents, and the speaker carried by citations, copied citations, ``ask --json`` and
questions about what one speaker said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.chunking import SentenceSplitter
from assistant.cli import main
from assistant.config import Settings
from assistant.corpus import load_corpus
from assistant.pipeline import Assistant
from assistant.speakers import asked_speaker, find_turns, known_speakers
from assistant.types import Citation, Document, Span, format_citation
from conftest import REPO, fake_assistant_on

INTERVIEW = "000_e5c0c9823818600b"  # Diego Salama (DS) speaks with Michal Natorski (MN)
PROFILE = "001_c4102580e4b6b722"  # PassBlue's article, then its interview with Sangjin Kim
ARTICLE = "004_839b94e0d721e6c8"  # no interview
DS, MN, PB, KIM = "Diego Salama", "Michal Natorski", "PassBlue", "Sangjin Kim"

# Every turn, in order: label, the speaker's full name as the document gives it, how the turn
# opens and how its last paragraph ends. A turn takes in the paragraphs that follow it without a
# label (Natorski's and Kim's long answers), and not a photo caption ("Michal Natorski Korea_1"),
# the suggested citation after the interview or the ambassador's profile after it.
TURNS = {
    INTERVIEW: [
        ("DS", DS, "Diego Salama (DS): First, tell me", "what you did in Korea?"),
        ("MN", MN, "Michal Natorski (MN): I went there as a researcher", "Korean Peninsula and the broader region."),
        ("DS", DS, "DS: \u00a0So how does Korea's AI strategy", "but also protect the sector?"),
        ("MN", MN, "MN: Both dimensions are connected, of course.", "hundreds of stakeholders is prepared."),
        ("DS", DS, "DS: On the domestic side", "public and private sectors?"),
        ("MN", MN, "MN: One distinctive feature of Korea's approach", "active in AI research and deployment."),
        ("DS", DS, "DS: Now, back to the security side of things.", "security concerns that South Korea faces?"),
        ("MN", MN, "MN: This is one element I think is completely overlooked", "foreign and defence policy priorities."),
        ("DS", DS, "DS: Moving towards the United Nations", "norm-takers, or hedging actors?"),
        ("MN", MN, "MN: South Korea and the Netherlands collaborate", "can also be an asset for deterrence."),
        ("DS", DS, "DS: This relationship seems like an important partnership", "R&D, export controls, etc.?"),
        ("MN", MN, "MN: There are plenty of opportunities", "such as China and the United States."),
        ("DS", DS, "DS: What do you think are the domestic and multilateral guardrails",
         "misuse while advancing innovation?"),
        ("MN", MN, "MN: South Korea and the Netherlands are committed", "the world to have these characteristics."),
        ("DS", DS, "DS: I'd like to ask about your experience.", "from the different venues and meetings?"),
        ("MN", MN, "MN: The goal was to make the research actionable", "apparent to everyone once you are there."),
        ("DS", DS, "DS: And the social aspect likely provided additional input.", "lunch breaks influence your thinking?"),
        ("MN", MN, "MN: Absolutely.", "participate in official meetings and events."),
        ("DS", DS, "DS: Finally, multilateralism is in crisis", "on the state of multilateralism today?"),
        ("MN", MN, "MN: Multilateralism has always been stressed", "trust among actors and share knowledge."),
    ],
    PROFILE: [
        ("PassBlue", PB, "PassBlue: What’s your signature event", "rotating presidency in September?"),
        ("Kim", KIM, "Kim: Korea has been proactively participating", "peace and security in terms of AI."),
        ("PassBlue", PB, "PassBlue: Last year, your monthly rotating presidency", "AI expand on last year’s event?"),
        ("Kim", KIM, "Kim: Cybersecurity is part of the AI implications", "expansion of our interest in this issue."),
        ("PassBlue", PB, "PassBlue: South Korea is interested in becoming the penholder", "Why is this important now?"),
        ("Kim", KIM, "Kim: Since becoming a Security Council member [in 2024]", "as penholder and as a Council member."),
        ("PassBlue", PB, "PassBlue: What is your opinion on the penholdership", "on behalf of another sovereign country?"),
        ("Kim", KIM, "Kim: Penholdership carries authority", "have historically deployed troops there."),
        ("PassBlue", PB, "PassBlue: \u00a0Some say the penholdership", "need to speak for another?"),
        ("Kim", KIM, "Kim: I think you have to understand the dynamism", "Afghanistan need to show responsibility."),
        ("PassBlue", PB, "PassBlue: On Palestine,", "What is your position?"),
        ("Kim", KIM, "Kim: As you said,", "for recognition of Palestine as a state."),
        ("PassBlue", PB, "PassBlue: Given the dire situation in Gaza", "isn’t recognition urgent?"),
        ("Kim", KIM, "Kim: Our position is that the decision", "government of Korea is aware of this trend."),
        ("PassBlue", PB, "PassBlue: Ambassador, there are those who would say", "does not want to anger the US."),
        ("Kim", KIM, "Kim: Very tricky question", "see what is happening on the ground."),
        ("PassBlue", PB, "PassBlue: Let’s move away from Palestine.", "panel on North Korea was not renewed?"),
        ("Kim", KIM, "Kim: Russia vetoed renewing", "and a follow-up report will come soon."),
        ("PassBlue", PB, "PassBlue: I want to circle back", "impact of this suspension in the region?"),
        ("Kim", KIM, "Kim: Member countries are not assisted", "The absence of the panel creates risks."),
        ("PassBlue", PB, "PassBlue: Let’s talk about South Korea’s relationship", "Do you agree with that?"),
        ("Kim", KIM, "Kim: Frankly, we have reasonable worries", "between North Korea and the United States."),
        ("PassBlue", PB, "PassBlue: Still on the South Korea-US relationship.", "while maintaining the US alliance?"),
        ("Kim", KIM, "Kim: I believe our ally", "some countries beyond our region."),
    ],
}


@pytest.fixture(scope="module")
def seed_documents() -> dict[str, Document]:
    documents, _ = load_corpus(REPO / "corpus")
    return {doc.doc_id: doc for doc in documents}


def _hand_spans(text: str, doc_id: str) -> list[tuple[str, int, int]]:
    """The hand-listed turns' speakers and spans, found in the text by their opening and closing words."""
    spans = []
    for _, speaker, opening, closing in TURNS.get(doc_id, ()):
        start = text.index(opening)
        assert text.count(opening) == 1, opening
        spans.append((speaker, start, text.index(closing, start) + len(closing)))
    return spans


@pytest.mark.parametrize("doc_id", [INTERVIEW, PROFILE])
def test_every_turn_of_both_interviews(seed_documents: dict[str, Document], doc_id: str) -> None:
    text = seed_documents[doc_id].text
    turns = find_turns(text)
    assert [(t.label, t.speaker) for t in turns] == [(label, name) for label, name, _, _ in TURNS[doc_id]]
    assert [(t.start, t.end) for t in turns] == [(s, e) for _, s, e in _hand_spans(text, doc_id)]


def test_a_text_without_interview_has_no_turns(seed_documents: dict[str, Document]) -> None:
    assert seed_documents[ARTICLE].turns == ()
    assert find_turns("Note: one.\n\nNote: two.\n\nLanguages: Korean") == ()  # one label is not a dialogue
    assert find_turns("Q: Why?\n\nA: Because.\n\nQ: Sure?\n\nA: Yes.") != ()


@pytest.mark.parametrize("doc_id", [INTERVIEW, PROFILE])
def test_every_sentence_cites_the_speaker_of_its_turn(seed_documents: dict[str, Document], doc_id: str) -> None:
    doc = seed_documents[doc_id]
    hand = _hand_spans(doc.text, doc_id)
    spoken = 0
    for span in SentenceSplitter().split(doc.text):
        inside = [name for name, start, end in hand if start <= span.start and span.end <= end]
        citation = Citation.of(doc, span)
        assert citation.speaker == (inside[0] if inside else None), citation.text
        spoken += bool(inside)
    assert spoken >= 60  # the interviews' sentences, not just their labels
    # outside the turns: the introduction, the article's own quotations of Kim, the profile
    for outside in ("Dr. Diego Salama, Head of Partnerships", "Michal Natorski Korea_1", "Suggested citation",
                    "He added: “So, I know", "Languages: Korean and English"):
        if outside in doc.text:
            start = doc.text.index(outside)
            assert doc.speaker_of(Span(start, start + len(outside))) is None
    _, first_start, _ = hand[0]
    _, _, second_end = hand[1]
    assert doc.speaker_of(Span(first_start, second_end)) is None  # two people's turns: nobody alone


def test_copied_citation_names_only_the_speaker(seed_documents: dict[str, Document]) -> None:
    doc = seed_documents[INTERVIEW]
    for sentence, speaker, other in [("Both dimensions are connected, of course.", MN, DS),
                                     ("First, tell me what you did in Korea?", DS, MN)]:
        start = doc.text.index(sentence)
        citation = Citation.of(doc, Span(start, start + len(sentence)))
        copied = format_citation(citation, place=True, quote=True)
        assert copied.startswith(f"“{sentence}” — ") and f"{speaker} (speaking)" in copied
        assert other not in copied and other.split()[-1] not in copied
        assert Citation.from_dict(json.loads(json.dumps(citation.to_dict()))) == citation
    article = seed_documents[ARTICLE]
    plain = Citation.of(article, Span(0, 20))
    assert plain.speaker is None and article.metadata.author in format_citation(plain)


@pytest.mark.parametrize("question, speaker", [
    ("What did Kim say about Afghanistan?", KIM),
    ("what did sangjin kim think about palestine", KIM),
    ("According to Natorski, what do multilateral frameworks give countries?", MN),
    ("What was said by Natorski about Seoul?", MN),
    ("What did MN answer about guardrails?", MN),
    ("What did Diego Salama ask Natorski?", None),  # no verb of saying: not restricted
    ("Who told PassBlue about the panel?", None),  # PassBlue is told, not telling
    ("What did Kim Jong Un say about drones?", None),  # another Kim
    ("Where was Natorski based?", None),
    ("what languages does sangjin kim speak", None),  # speaking a language is not saying something
    ("What did Kim speak about at the panel?", KIM),
    ("What did the ambassador say about Gaza?", None),
])
def test_asked_speaker(seed_documents: dict[str, Document], question: str, speaker: str | None) -> None:
    speakers = known_speakers(doc.turns for doc in seed_documents.values())
    assert asked_speaker(question, speakers) == speaker


def test_question_about_a_speaker_is_answered_from_their_turns(tmp_path: Path) -> None:
    """With the fake encoder the interviewer's question matches best; restricted to the
    interviewee, the answer is hers."""
    assistant = fake_assistant_on(tmp_path, {"harbour.txt": (
        "Harbour talk\n\nTom Reyes (TR): What about the harbour, the harbour cranes and the harbour tides?\n\n"
        "Lena Ortiz (LO): The cranes came in 1998.\n\n"
        "TR: And the harbour tides, the harbour tides?\n\n"
        "LO: The tides rise twice a day at the harbour wall.\n")}, chunk_tokens=200, chunk_overlap=5, abstain_below=0.0)
    unrestricted = assistant.ask("What about the harbour tides?").answer
    assert unrestricted is not None and unrestricted.citation.speaker == "Tom Reyes"
    answer = assistant.ask("What did LO say about the harbour tides?").answer
    assert answer is not None and answer.citation.speaker == "Lena Ortiz"
    assert answer.citation.text == "LO: The tides rise twice a day at the harbour wall."


def test_restricted_question_and_ask_json(seed_index: Settings) -> None:
    """The real model: a question about what Kim said is answered from Kim's turns only,
    ``ask --json`` carries the speaker of the answer and of each passage, a quote match its speaker."""
    question = "What does Kim think penholdership in Afghanistan helps protect?"
    result = CliRunner().invoke(main, ["ask", question, "--json", "--corpus", str(seed_index.corpus_dir),
                                       "--index", str(seed_index.index_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    answer = data["answer"]
    assert answer is not None and answer["speaker"] == KIM and answer["doc_id"] == PROFILE
    text = (REPO / "corpus" / f"{PROFILE}.txt").read_text(encoding="utf-8")
    kim_turns = [(s, e) for name, s, e in _hand_spans(text, PROFILE) if name == KIM]
    assert text[answer["start"] : answer["end"]] == answer["text"]
    assert any(s <= answer["start"] and answer["end"] <= e for s, e in kim_turns)
    assert all("speaker" in p for p in data["passages"])

    assistant = Assistant.open(seed_index)
    index = assistant.index
    for p in assistant.ask(question).passages:
        assert p.citation.speaker == index.by_id[p.citation.doc_id].speaker_of(p.citation.span)

    def candidates(asked: str) -> list[tuple[Document, Span]]:
        return [index.sentence(c.sentence) for c in assistant.extractor.ranked(assistant.retriever.retrieve(asked))[0]]

    def kims(doc: Document, span: Span) -> bool:
        """In one of Kim's turns, or outside the interviews' turns and naming Kim (the article reporting him)."""
        inside = [name for name, s, e in _hand_spans(doc.text, doc.doc_id) if s <= span.start and span.end <= e]
        return inside == [KIM] if inside else "Kim" in doc.text[span.start : span.end]

    assert not all(kims(*c) for c in candidates("What about Afghanistan?"))  # PassBlue asks about it too
    restricted = candidates("What did Kim say about Afghanistan?")
    assert restricted and all(kims(*c) for c in restricted)
    assert any(s <= span.start and span.end <= e for _, span in restricted for s, e in kim_turns)
    best = assistant.extractor.extract(assistant.retriever.retrieve("What did Kim say about Afghanistan?"), 0.0)
    assert best.citation.speaker == KIM and "Afghan" in best.citation.text
    assert sum(index.speaker(i) == KIM for i in range(len(index.sentence_rows))) >= 30
    quoted = "Holding penholdership in Afghanistan helps protect Afghan girls’ and women’s rights."
    check = assistant.check_quote(quoted)
    assert check.verdict == "verbatim" and [m.citation.speaker for m in check.matches] == [KIM]
