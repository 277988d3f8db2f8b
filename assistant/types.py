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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metadata:
        return cls(**{k: data.get(k) for k in ("title", "author", "publisher", "date", "url")})


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
class Answer:
    """The extractive answer: a verbatim span of one document, with confidence and citation.

    ``text == document.text[start:end]``; ``passage_rank`` is the rank of the passage it
    lies in; ``link`` opens the app's source view at the span.
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        return cls(**data)
