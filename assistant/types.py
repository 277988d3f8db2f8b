"""The data that flows through the pipeline: frozen dataclasses with a JSON shape each."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any


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
class Passage:
    """A ranked piece of a document returned for a question, with what is needed to cite it."""

    rank: int
    doc_id: str
    title: str
    source: str
    start: int
    end: int
    text: str
    score: float
    author: str | None = None
    date: str | None = None
    page: int | None = None
    link: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Passage:
        return cls(**data)


def source_link(doc_id: str, start: int, end: int) -> str:
    """The app's source-view address that opens ``doc_id`` with ``[start, end)`` highlighted."""
    from urllib.parse import urlencode

    return "/source?" + urlencode({"doc": doc_id, "start": start, "end": end})


@dataclass(frozen=True)
class Phrase:
    """The answer phrase the reader marked inside the answer: ``text == document.text[start:end]``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Answer:
    """The extractive answer: a verbatim span of one document, with confidence and citation.

    ``text == document.text[start:end]``; ``passage_rank`` is the rank of the passage it
    lies in; ``link`` opens the app's source view at the span; ``phrase`` is the answer
    phrase inside it when a reader marked one.
    """

    text: str
    doc_id: str
    title: str
    source: str
    start: int
    end: int
    confidence: float
    passage_rank: int
    author: str | None = None
    date: str | None = None
    page: int | None = None
    link: str = ""
    phrase: Phrase | None = None

    def around_phrase(self) -> tuple[str, str, str] | None:
        """The answer's text as (before, phrase, after) around its phrase; None without one."""
        if self.phrase is None:
            return None
        a, b = self.phrase.start - self.start, self.phrase.end - self.start
        return self.text[:a], self.text[a:b], self.text[b:]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        phrase = data.get("phrase")
        return cls(**(data | {"phrase": Phrase(**phrase) if phrase else None}))


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
    """Where (part of) a quote is found: ``text == document.text[start:end]``.

    ``parts`` holds one span per elided part when the quote has an ellipsis (``text`` then
    covers the elided words too); ``diff`` is empty for verbatim matches; ``context`` is the
    sentence(s) around the match, ``document.text[context_start:context_end]``.
    """

    doc_id: str
    title: str
    source: str
    start: int
    end: int
    text: str
    exact: bool
    score: float
    normalizations: tuple[str, ...] = ()
    diff: tuple[DiffOp, ...] = ()
    parts: tuple[Span, ...] = ()
    context: str = ""
    context_start: int = 0
    context_end: int = 0
    page: int | None = None
    link: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["normalizations"] = list(self.normalizations)
        data["diff"] = [d.to_dict() for d in self.diff]
        data["parts"] = [{"start": p.start, "end": p.end, "text": self.text[p.start - self.start : p.end - self.start]}
                         for p in self.parts]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuoteMatch:
        data = dict(data)
        data["normalizations"] = tuple(data.get("normalizations") or ())
        data["diff"] = tuple(DiffOp(**d) for d in data.get("diff") or ())
        data["parts"] = tuple(Span(p["start"], p["end"]) for p in data.get("parts") or ())
        return cls(**data)


@dataclass(frozen=True)
class QuoteCheck:
    """The verdict on one quote: ``verbatim``, ``altered`` or ``absent``.

    ``matches`` lists every occurrence (verbatim) or the closest spans, best first (altered),
    and is empty when absent; ``nearest`` then holds the nearest passages, for context only.
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
