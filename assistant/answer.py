"""Passages -> the extractive answer: the best sentence (or a short run), its phrase, confidence, abstention.

Each sentence of the top passages is first scored with signals that need no model call at query
time (sentence vectors are precomputed at index time):

- ``semantic``: cosine similarity of the sentence to the question;
- ``keyword``: the IDF-weighted share of the question's terms the sentence contains;
- ``passage``: the fused score of the passage it lies in, relative to the best passage;
- ``cue``: whether the sentence holds what the question asks for (a date for "when", a number
  for "how many", a name for "who"/"where") that the question itself does not mention;
- ``heading``: whether it does not end as a sentence does (a title, heading or standfirst,
  which often repeats a question's words without answering it; used by the reader's ranker).

With a reader (``reader.py``), the best ``Calibration.candidates`` sentences by that hand-tuned
score are read in one batch; each gets a combined score from the reader's verdict and the
signals above (``Calibration.ranker``), the best one is the answer, its phrase is the reader's,
and the confidence is the calibrated probability that it is right (``Calibration.confidence``).
Without one (``--reader none``), the hand-tuned score picks the sentence and a logistic
function of its semantic and keyword signals and of how much of the question's vocabulary
occurs in the corpus gives the confidence (``Settings.answer_weights``, fitted by bench/tune_answers.py).

A line of a fact box ("Population: 51.63 million") whose label's words are all in the question
("What is the population of South Korea?") answers it with its value, as a byline answers who
wrote a document (``from_metadata``): the hand-tuned score ranks it and gives the confidence,
and the value is the phrase. The reader, trained on prose, judges such lines poorly.

A question about what a speaker of an interview said ("What did Kim say about Afghanistan?",
``speakers.asked_speaker``) takes its candidates from that speaker's sentences only (their
turns, and sentences outside any turn that name them, as an article reports what they said);
when the passages hold none, the sources don't appear to answer.

The answer is the best sentence, joined with its neighbour in the same paragraph when one of the
two opens with a word that points back (He, It, This, ...), since then the pair is what
answers. Below the threshold the answer is None: the sources don't appear to answer.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from collections import ChainMap
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from assistant.authorship import asks_for_author
from assistant.config import AnswerWeights, Settings
from assistant.errors import InputError
from assistant.keyword import KeywordIndex
from assistant.retrieval import Hit, Retrieval
from assistant.reader import Reader, Reading, reads_as_sentence
from assistant.speakers import asked_speaker, known_speakers, names
from assistant.store import Index
from assistant.types import Answer, Citation, Document, Phrase, Span

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(rf"\b(?:1\d{{3}}|20\d{{2}})s?\b|\b(?:{_MONTHS})\b|\b\d{{1,2}}(?:st|nd|rd|th)\b|\bcentur(?:y|ies)\b|\bdecade\b", re.I)
_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundred|thousand|million|billion|percent)\b", re.I)
_POINTS_BACK = re.compile(r"^(?:He|She|It|They|This|These|That|Those|His|Her|Its|Their|Such|There|Both|Each)\b")
# "Label: value", the label a few words of its own (a fact box's line, a profile's field)
_FACT_LINE = re.compile(r"([^\W\d][^:\n.!?]{0,40}):[ \t]+(\S.*?)\s*$")
_WHY = re.compile(r"(?:why|how come|for what reason)\b", re.IGNORECASE)
SPAN_FLOOR = -20.0  # the span score of a candidate the reader found no phrase in
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w'’-]+")


def question_type(question: str) -> str | None:
    """The kind of answer a question wants: "date", "number", "name", or None."""
    q = question.lower()
    if re.search(r"\bwhen\b|\bwhat (?:year|date|day|month|century|decade)\b|\bwhich (?:year|date|day|month)\b", q):
        return "date"
    if re.search(r"\bhow (?:many|much|long|old|far|tall|big|large)\b|\bwhat (?:percentage|number|amount)\b", q):
        return "number"
    if re.search(r"\bwho(?:m|se)?\b|\bwhere\b", q):
        return "name"
    return None


def _has_cue(kind: str | None, sentence: str, question: str) -> bool:
    if kind == "date":
        return bool(_DATE.search(sentence))
    if kind == "number":
        return bool(_NUMBER.search(sentence))
    if kind == "name":
        asked = set(re.findall(r"\w+", question.lower()))
        return any(m.group().lower() not in asked for m in _NAME.finditer(sentence))
    return False


@dataclass(frozen=True)
class Scored:
    """A candidate sentence with its signals; ``reading`` once the reader has read it."""

    sentence: int
    passage_rank: int
    score: float
    semantic: float
    keyword: float
    passage: float = 0.0
    cue: float = 0.0
    heading: float = 0.0
    reading: Reading | None = None


@dataclass(frozen=True)
class Calibration:
    """How a reader's verdict is combined with the retrieval signals, and its confidence.

    Fitted on the development sets by ``training/calibrate_reader.py`` and kept beside the
    reader's weights (``calibration.json``):

    - ``ranker``: logistic weights over a candidate's signals (``FEATURES``): the sentence
      with the highest combined score is the answer;
    - ``confidence``: Platt-style weights over the best candidate's combined score, its margin
      over the runner-up, its reader logit, the question's coverage and the candidate's
      similarity to the question (``CONFIDENCE``): the probability that the answer is right;
    - ``candidates``: how many sentences (best by the hand-tuned score) the reader reads;
    - ``abstain_below``: the confidence under which the sources are said not to answer.
    """

    FEATURES = ("reader", "span", "semantic", "keyword", "passage", "cue", "heading")
    CONFIDENCE = ("score", "margin", "reader", "coverage", "semantic")

    candidates: int
    ranker: dict[str, float]
    confidence: dict[str, float]
    abstain_below: float = 0.5

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """The calibration in ``path``; InputError, in the user's terms, when it cannot be read
        or was fitted on other signals than this version combines."""
        advice = "recalibrate it with training/calibrate_reader.py, or answer with --reader none"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            wanted = {"ranker": ("bias", *cls.FEATURES), "confidence": ("bias", *cls.CONFIDENCE)}
            missing = [f"{name} ({part})" for part, names in wanted.items() for name in names
                       if name not in data[part]]
            calibration = cls(int(data["candidates"]), data["ranker"], data["confidence"], float(data["abstain_below"]))
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(f"the reader {path.parent.name!r} cannot be used: its calibration.json cannot be "
                             f"read; {advice}") from None
        if missing:
            raise InputError(f"the reader {path.parent.name!r} was calibrated for another version of the assistant: "
                             f"its calibration.json lacks the signals {', '.join(missing)}; {advice}")
        return calibration

    @staticmethod
    def features(c: Scored) -> dict[str, float]:
        """A read candidate's signals, by the names of ``FEATURES``."""
        return {"reader": c.reading.logit, "span": max(c.reading.phrase_score, SPAN_FLOOR), "semantic": c.semantic,
                "keyword": c.keyword, "passage": c.passage, "cue": c.cue, "heading": c.heading}

    def rank_score(self, values: dict[str, float]) -> float:
        """A candidate's combined score from its ``FEATURES`` values (``features``)."""
        return self.ranker["bias"] + sum(self.ranker[f] * values[f] for f in self.FEATURES)

    def probability(self, values: dict[str, float]) -> float:
        """The probability that the best candidate is right, from its ``CONFIDENCE`` values."""
        w = self.confidence
        z = w["bias"] + sum(w[f] * values[f] for f in self.CONFIDENCE)
        return 1.0 / (1.0 + math.exp(-z))


class TermSets:
    """The distinct terms of each sentence, kept as term numbers in two flat arrays.

    ``terms[i]`` is the frozenset of sentence ``i``'s terms, made when asked for. A list of
    frozensets held about 1.4 KB of Python objects per sentence, several per chunk, which a
    corpus of a million chunks could not afford (bench/README.md, "Memory").
    """

    def __init__(self, term_lists: Iterable[list[str]]) -> None:
        numbers: dict[str, int] = {}
        ids, ends = array("i"), array("q", [0])
        for terms in term_lists:
            ids.extend(sorted({numbers.setdefault(t, len(numbers)) for t in terms}))
            ends.append(len(ids))
        self._ids = np.frombuffer(ids, dtype=np.int32) if ids else np.empty(0, np.int32)
        self._ends = np.frombuffer(ends, dtype=np.int64)
        self._names = list(numbers)

    def __len__(self) -> int:
        return len(self._ends) - 1

    def __getitem__(self, i: int) -> frozenset[str]:
        names = self._names
        return frozenset(names[j] for j in self._ids[self._ends[i] : self._ends[i + 1]].tolist())


class AnswerExtractor:
    """Picks the answer sentence from a retrieval and decides whether to abstain."""

    def __init__(self, index: Index, settings: Settings,
                 reader: Reader | None = None, calibration: Calibration | None = None) -> None:
        if (reader is None) != (calibration is None):
            raise ValueError("a reader needs its calibration, and a calibration its reader")
        self.reader = reader
        self.calibration = calibration
        self.index = index
        self.keyword: KeywordIndex = index.keyword
        self.weights: AnswerWeights = settings.answer_weights
        self.passages = settings.answer_passages
        documents = self.index.documents
        self.sentence_terms = TermSets(
            self.keyword.terms(documents[d].text[s:e]) for d, s, e in self.index.sentence_rows.tolist()
        )

    def term_weights(self, terms: list[str]) -> dict[str, float]:
        """Each distinct term's share of the terms' total IDF."""
        weights = {t: self.keyword.idf(t) for t in set(terms)}
        total = sum(weights.values())
        return {t: w / total for t, w in weights.items()} if total > 0 else {}

    @staticmethod
    def coverage(weights: dict[str, float], text_terms: frozenset[str] | set[str]) -> float:
        """The weighted share of the question's terms found in ``text_terms``."""
        return sum(w for t, w in weights.items() if t in text_terms)

    def score_sentences(self, retrieval: Retrieval) -> list[Scored]:
        """Every sentence of the top passages with its score, best first."""
        return self._score(retrieval, self.term_weights(self.keyword.terms(retrieval.question)))

    def _score(self, retrieval: Retrieval, q_weights: dict[str, float]) -> list[Scored]:
        w = self.weights
        hits = retrieval.hits[: self.passages]
        if not hits:
            return []
        kind = question_type(retrieval.question)
        authorship = asks_for_author(retrieval.question)
        top = max(h.passage.score for h in hits) or 1.0
        inside: list[tuple[Hit, int, str]] = []  # each sentence wholly inside a passage shown, once
        seen: set[int] = set()
        for hit in hits:
            cited = hit.passage.citation
            doc = self.index.by_id[cited.doc_id]
            for s in self.index.sentences_in(self.index.doc_numbers[cited.doc_id], cited.span.start, cited.span.end):
                if s in seen:
                    continue
                seen.add(s)
                _, span = self.index.sentence(s)
                if cited.span.start <= span.start and span.end <= cited.span.end:
                    inside.append((hit, s, doc.text[span.start : span.end]))
        # similarities retrieval did not compute: their stored vectors fetched in one call (one
        # round trip to a Milvus store)
        missing = [s for _, s, _ in inside if s not in retrieval.sentence_scores]
        fetched = {}
        if missing:
            vectors = self.index.searcher.sentence_vectors(np.array(missing))
            fetched = dict(zip(missing, map(float, vectors @ retrieval.vector)))
        similarity = ChainMap(retrieval.sentence_scores, fetched)
        scored: list[Scored] = []
        for hit, s, text in inside:
            p = hit.passage
            semantic = similarity[s]
            keyword = self.coverage(q_weights, self.sentence_terms[s])
            if authorship and self._names_author(s):
                keyword = 1.0  # naming the document's author is what the question asks
            cue = 1.0 if _has_cue(kind, text, retrieval.question) else 0.0
            score = (w.semantic * semantic + w.keyword * keyword + w.passage * (p.score / top) + w.cue * cue)
            heading = 0.0 if reads_as_sentence(text) else 1.0
            scored.append(Scored(s, p.rank, score, semantic, keyword, p.score / top, cue, heading))
        if authorship:
            scored = [x for x in scored if self._names_author(x.sentence)] or scored
        speaker = asked_speaker(retrieval.question, self.speakers)
        if speaker:
            scored = [x for x in scored if self._said_by(x.sentence, speaker)]
        scored.sort(key=lambda x: -x.score)
        return scored

    @cached_property
    def speakers(self) -> dict[str, set[str]]:
        """The speakers of the index's interviews, with their turns' labels."""
        return known_speakers(doc.turns for doc in self.index.documents)

    def _said_by(self, sentence: int, speaker: str) -> bool:
        """Whether ``sentence`` is ``speaker``'s: in one of their turns, or outside any turn and
        naming them (the article around an interview reporting what they said)."""
        said = self.index.speaker(sentence)
        if said is not None:
            return said == speaker
        doc, span = self.index.sentence(sentence)
        return names(doc.text[span.start : span.end], speaker, self.speakers[speaker])

    def _names_author(self, sentence: int) -> bool:
        return self.index.names_author(*self.index.sentence_rows[sentence].tolist())

    def confidence(self, best: Scored, coverage: float) -> float:
        """Probability-like confidence in [0, 1] that ``best`` answers the question."""
        w = self.weights
        z = w.bias + w.c_semantic * best.semantic + w.c_keyword * best.keyword + w.c_coverage * coverage
        return 1.0 / (1.0 + math.exp(-z))

    def _run(self, sentence: int, passage: Span, explain: bool) -> tuple[int, int]:
        """First and last sentence of the answer: the sentence plus a neighbour pointing back,
        and for a "why" question the sentence after it, where the reason usually follows."""
        first = last = sentence
        doc, span = self.index.sentence(sentence)
        for neighbour in (sentence - 1, sentence + 1):
            if not 0 <= neighbour < len(self.index.sentence_rows):
                continue
            other_doc, other = self.index.sentence(neighbour)
            if other_doc is not doc or other.start < passage.start or other.end > passage.end:
                continue
            lo, hi = (other, span) if neighbour < sentence else (span, other)
            if "\n" in doc.text[lo.end : hi.start]:
                continue  # another paragraph
            if _POINTS_BACK.match(doc.text[hi.start : hi.end]) or (explain and neighbour > sentence):
                first, last = min(first, neighbour), max(last, neighbour)
        return first, last

    def window(self, sentence: int) -> tuple[str, str, str]:
        """The sentence's text and its neighbours' in the same document, as the reader reads them."""
        doc, span = self.index.sentence(sentence)
        texts = []
        for neighbour in (sentence - 1, sentence + 1):
            text = ""
            if 0 <= neighbour < len(self.index.sentence_rows):
                other_doc, other = self.index.sentence(neighbour)
                if other_doc is doc:
                    text = doc.text[other.start : other.end]
            texts.append(text)
        return doc.text[span.start : span.end], texts[0], texts[1]

    def ranked(self, retrieval: Retrieval) -> tuple[list[Scored], float]:
        """The candidate sentences best first, and the share of the question's terms (by IDF)
        found anywhere in the corpus. With a reader, the candidates are the sentences it read
        (the best ``calibration.candidates`` by the hand-tuned score), ranked by the
        calibrated combination of its verdict and the retrieval signals; unless the answer
        comes from the documents' metadata (``from_metadata``) or a fact box's line
        (``fact_value``), which are not the reader's to judge."""
        q_weights = self.term_weights(self.keyword.terms(retrieval.question))
        coverage = self.coverage(q_weights, {t for t in q_weights if t in self.keyword.vocabulary})
        scored = self._score(retrieval, q_weights)
        if (self.reader is None or not scored or self.from_metadata(retrieval.question, scored[0])
                or self.fact_value(retrieval.question, scored[0]) is not None):
            return scored, coverage
        top = scored[: self.calibration.candidates]
        readings = self.reader.read(retrieval.question, [self.window(c.sentence) for c in top])
        read = [replace(c, reading=r) for c, r in zip(top, readings)]
        read = [replace(c, score=self.calibration.rank_score(Calibration.features(c))) for c in read]
        read.sort(key=lambda c: -c.score)
        return read, coverage

    def extract(self, retrieval: Retrieval, abstain_below: float | None = None) -> Answer | None:
        """The answer sentence with its confidence, or None below ``abstain_below`` (by default
        the calibrated threshold of the reader, or of the hand-tuned scorer when it answered:
        without a reader, or from the metadata)."""
        scored, coverage = self.ranked(retrieval)
        if not scored:
            return None
        best = scored[0]
        if abstain_below is None:
            abstain_below = (self.weights if best.reading is None else self.calibration).abstain_below
        if best.reading is None:
            confidence = self.confidence(best, coverage)
        else:
            margin = best.score - scored[1].score if len(scored) > 1 else 0.0
            confidence = self.calibration.probability(
                Calibration.features(best) | {"score": best.score, "margin": margin, "coverage": coverage})
        if confidence < abstain_below:
            return None
        doc, span = self.answer_span(best, retrieval)
        return Answer(Citation.of(doc, span), round(confidence, 4), best.passage_rank,
                      self._phrase(best, self.from_metadata(retrieval.question, best),
                                   self.fact_value(retrieval.question, best)))

    def answer_span(self, candidate: Scored, retrieval: Retrieval) -> tuple[Document, Span]:
        """Where the answer lies when ``candidate`` is the best: its sentence, with a neighbour
        pointing back, and the sentence after it for a "why" question (``_run``)."""
        passage = next(h.passage for h in retrieval.hits if h.passage.rank == candidate.passage_rank)
        explain = bool(_WHY.match(retrieval.question.strip()))
        first, last = self._run(candidate.sentence, passage.citation.span, explain)
        doc, first_span = self.index.sentence(first)
        return doc, Span(first_span.start, self.index.sentence(last)[1].end)

    def from_metadata(self, question: str, best: Scored) -> bool:
        """Whether the answer is where the text names its document's author, for a question
        asking who wrote it: the metadata decides that (``authorship.py``), and it is ranked and
        its confidence given by the hand-tuned scorer. The reader was trained to judge whether a
        sentence answers a question, and a byline answers "who wrote it" only with the metadata."""
        return asks_for_author(question) and self._names_author(best.sentence)

    def fact_value(self, question: str, best: Scored) -> Span | None:
        """Where the value lies, in the document's offsets, when ``best`` is a fact box's
        "Label: value" line (not a sentence) whose label's terms are all among the question's."""
        if not best.heading:
            return None  # a sentence ("Kim: I believe ...", an interview's turn) is the reader's
        doc, span = self.index.sentence(best.sentence)
        line = _FACT_LINE.fullmatch(doc.text[span.start : span.end])
        if line is None:
            return None
        label = set(self.keyword.terms(line.group(1)))
        if not label or not label <= set(self.keyword.terms(question)):
            return None
        return Span(span.start + line.start(2), span.start + line.end(2))

    def _phrase(self, best: Scored, metadata: bool, fact: Span | None) -> Phrase | None:
        """The answer phrase inside the best sentence, in the document's offsets: for an answer
        from the ``metadata``, the author's name as the text gives it; for a ``fact`` line, its
        value; else the reader's."""
        doc, span = self.index.sentence(best.sentence)
        reading = best.reading
        if fact is not None:
            return Phrase(fact.start, fact.end, doc.text[fact.start : fact.end])
        if metadata:
            mentions = self.index.author_mentions[self.index.doc_numbers[doc.doc_id]]
            name = next(m for m in mentions if span.start <= m.start and m.end <= span.end)
            return Phrase(name.start, name.end, doc.text[name.start : name.end])
        if reading is None or reading.start >= reading.end:
            return None
        start, end = span.start + reading.start, span.start + reading.end
        return Phrase(start, end, doc.text[start:end])
