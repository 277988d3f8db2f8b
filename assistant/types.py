"""The data that flows through the pipeline: frozen dataclasses with a JSON shape each."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from assistant.speakers import Turn, find_turns, speaker_at


@dataclass(frozen=True)
class Span:
    """Half-open character range ``[start, end)`` into a document's text."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"invalid span [{self.start}, {self.end})")

    def overlap(self, other: Span) -> int:
        """Number of characters the two spans share."""
        return max(0, min(self.end, other.end) - max(self.start, other.start))

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Metadata:
    """What a reader needs to cite a document; kept beside the text, never inside it."""

    title: str
    author: str | None = None
    publisher: str | None = None
    date: str | None = None
    url: str | None = None
    note: str | None = None  # for readers: e.g. how the text differs from what it should say

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metadata:
        return cls(**{k: data.get(k) for k in ("title", "author", "publisher", "date", "url", "note")})


@dataclass(frozen=True)
class Document:
    """One corpus file as loaded: its id, text, metadata and (for paged formats) page starts.

    ``doc_id`` is the path relative to the corpus without its extension; ``path`` keeps the
    extension. ``content_hash`` hashes the file's bytes and its metadata sidecar, so it
    changes whenever what the index holds for the document would change.
    ``page_starts[i]`` is the offset in ``text`` where page ``i + 1`` begins.
    """

    doc_id: str
    path: str
    text: str
    metadata: Metadata
    content_hash: str
    page_starts: tuple[int, ...] = field(default=())

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``offset``, or None for formats without pages."""
        if not self.page_starts:
            return None
        return bisect.bisect_right(self.page_starts, offset)

    @property
    def source(self) -> str:
        """The document's link when known, else its path in the corpus."""
        return self.metadata.url or self.path

    @cached_property
    def turns(self) -> tuple[Turn, ...]:
        """The speaker turns of an interview or other transcript (speakers.py); empty for other texts."""
        return find_turns(self.text)

    def speaker_of(self, span: Span) -> str | None:
        """Who speaks ``span``: the speaker of the one turn holding it, else None."""
        return speaker_at(self.turns, span.start, span.end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "path": self.path,
            "text": self.text,
            "metadata": self.metadata.to_dict(),
            "content_hash": self.content_hash,
            "page_starts": list(self.page_starts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(
            doc_id=data["doc_id"],
            path=data["path"],
            text=data["text"],
            metadata=Metadata.from_dict(data["metadata"]),
            content_hash=data["content_hash"],
            page_starts=tuple(data.get("page_starts") or ()),
        )


@dataclass(frozen=True)
class Chunk:
    """A piece of a document sized for the embedding model; ``text == doc.text[start:end]``."""

    doc_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Citation:
    """A verbatim piece of a document and what is needed to cite it: ``document.text[span.start:span.end] == text``.

    The library makes it with :meth:`of`, from the document itself, so the text always is the
    span's; :func:`format_citation` is the one way it is written. Its JSON is flat (``doc_id``,
    ``start``, ``end``, ``text`` beside the citing metadata) inside the answers, passages and
    matches that hold it.
    """

    doc_id: str
    span: Span
    text: str
    title: str
    source: str
    author: str | None = None
    date: str | None = None
    page: int | None = None
    speaker: str | None = None

    @classmethod
    def of(cls, document: Document, span: Span) -> Citation:
        """``span`` of ``document`` with the document's title, source, author, date and page, and its speaker."""
        meta = document.metadata
        return cls(document.doc_id, span, document.text[span.start : span.end], meta.title, document.source,
                   meta.author, meta.date, document.page_at(span.start), document.speaker_of(span))

    def to_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "title": self.title, "source": self.source, "start": self.span.start,
                "end": self.span.end, "text": self.text, "author": self.author, "date": self.date, "page": self.page,
                "speaker": self.speaker}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Citation:
        """From :meth:`to_dict`'s fields of ``data``; other keys (e.g. the ``link`` of older results) are ignored."""
        return cls(data["doc_id"], Span(data["start"], data["end"]), data["text"], data["title"], data["source"],
                   data.get("author"), data.get("date"), data.get("page"), data.get("speaker"))


def format_citation(citation: Citation, *, sep: str = ", ", place: bool = False, quote: bool = False) -> str:
    """How a citation is written, by the CLI and the app alike: “title”, author, date and page,
    leaving out what is unknown; the speaker, when known, stands in the author's place ("Michal
    Natorski (speaking)"), since an interview's authors are both people in it; ``place`` adds
    where the text lies (the document's source, its link when known, else its file in the
    corpus, and the character span); ``quote`` makes it a ready-to-paste citation, the quoted
    text first."""
    who = f"{citation.speaker} (speaking)" if citation.speaker else citation.author
    parts = [f"“{citation.title}”", who, citation.date,
             None if citation.page is None else f"p. {citation.page}"]
    if place:
        parts.append(f"{citation.source}, characters {citation.span.start}–{citation.span.end}")
    written = sep.join(part for part in parts if part)
    return f"“{citation.text.strip()}” — {written}." if quote else written


@dataclass(frozen=True)
class Passage:
    """A ranked piece of a document returned for a question."""

    rank: int
    citation: Citation
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, **self.citation.to_dict(), "score": self.score}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Passage:
        return cls(data["rank"], Citation.from_dict(data), data["score"])


@dataclass(frozen=True)
class Phrase:
    """The answer phrase the reader marked inside the answer: ``text == document.text[start:end]``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Answer:
    """The extractive answer: a verbatim span of one document (its citation), with confidence.

    ``passage_rank`` is the rank of the passage it lies in; ``phrase`` is the answer phrase
    inside it when a reader marked one.
    """

    citation: Citation
    confidence: float
    passage_rank: int
    phrase: Phrase | None = None

    def around_phrase(self) -> tuple[str, str, str] | None:
        """The answer's text as (before, phrase, after) around its phrase; None without one."""
        if self.phrase is None:
            return None
        text, start = self.citation.text, self.citation.span.start
        a, b = self.phrase.start - start, self.phrase.end - start
        return text[:a], text[a:b], text[b:]

    def to_dict(self) -> dict[str, Any]:
        return {**self.citation.to_dict(), "confidence": self.confidence, "passage_rank": self.passage_rank,
                "phrase": asdict(self.phrase) if self.phrase else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        phrase = data.get("phrase")
        return cls(Citation.from_dict(data), data["confidence"], data["passage_rank"],
                   Phrase(**phrase) if phrase else None)


@dataclass(frozen=True)
class DiffOp:
    """One step of a word-level diff from the source to the quote.

    ``equal``: same words; ``replace``: the quote changed ``source`` into ``quote``;
    ``delete``: source words the quote leaves out; ``insert``: quote words the source lacks.
    Texts keep the white space that follows them, so joining the ``source`` texts of a
    match's diff gives its source text (per elided part) and joining ``quote`` the quote.
    """

    op: str
    quote: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class QuoteMatch:
    """Where (part of) a quote is found: its citation.

    ``parts`` holds one span per elided part when the quote has an ellipsis (the citation's
    text then covers the elided words too); ``diff`` is empty for verbatim matches; ``context``
    is the sentence(s) around the match, ``document.text[context_start:context_end]``.
    """

    citation: Citation
    exact: bool
    score: float
    normalizations: tuple[str, ...] = ()
    diff: tuple[DiffOp, ...] = ()
    parts: tuple[Span, ...] = ()
    context: str = ""
    context_start: int = 0
    context_end: int = 0

    def to_dict(self) -> dict[str, Any]:
        text, start = self.citation.text, self.citation.span.start
        return {
            **self.citation.to_dict(),
            "exact": self.exact,
            "score": self.score,
            "normalizations": list(self.normalizations),
            "diff": [d.to_dict() for d in self.diff],
            "parts": [{"start": p.start, "end": p.end, "text": text[p.start - start : p.end - start]}
                      for p in self.parts],
            "context": self.context,
            "context_start": self.context_start,
            "context_end": self.context_end,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuoteMatch:
        return cls(
            citation=Citation.from_dict(data),
            exact=data["exact"],
            score=data["score"],
            normalizations=tuple(data.get("normalizations") or ()),
            diff=tuple(DiffOp(**d) for d in data.get("diff") or ()),
            parts=tuple(Span(p["start"], p["end"]) for p in data.get("parts") or ()),
            context=data.get("context", ""),
            context_start=data.get("context_start", 0),
            context_end=data.get("context_end", 0),
        )


@dataclass(frozen=True)
class QuoteCheck:
    """The verdict on one quote: ``verbatim``, ``altered``, ``paraphrase`` or ``absent``.

    ``matches`` lists every occurrence (verbatim), the closest spans, best first (altered), or
    the one sentence closest in meaning, scored by its cosine similarity (paraphrase: not a
    quote), and is empty when absent; ``nearest`` holds the nearest passages, for context only.
    ``score`` is 1.0 for verbatim, else the best word-level similarity found (0 to 1).
    """

    quote: str
    verdict: str
    score: float
    matches: tuple[QuoteMatch, ...] = ()
    nearest: tuple[Passage, ...] = ()
    notices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "quote": self.quote,
            "verdict": self.verdict,
            "score": self.score,
            "matches": [m.to_dict() for m in self.matches],
            "nearest": [p.to_dict() for p in self.nearest],
            "notices": list(self.notices),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuoteCheck:
        return cls(
            quote=data["quote"],
            verdict=data["verdict"],
            score=data["score"],
            matches=tuple(QuoteMatch.from_dict(m) for m in data.get("matches") or ()),
            nearest=tuple(Passage.from_dict(p) for p in data.get("nearest") or ()),
            notices=tuple(data.get("notices") or ()),
        )
