"""Questions about who wrote a document are answered from where the text names its author.

A document's author is metadata (kept beside the text), but the text usually names its
author too, in a byline or a biography. For "who wrote ..." questions the places where a
document's text names an author of that document are the candidate answers.
"""

from __future__ import annotations

import re

from assistant.types import Document, Span

_ASKS = re.compile(
    r"\bwho (?:wrote|writes|has written|authored|penned|reported)\b|\bwho is the (?:author|writer|reporter)\b"
    r"|\bwritten by whom\b|\b(?:author|writer) of\b",
    re.IGNORECASE,
)


def asks_for_author(question: str) -> bool:
    """Whether the question asks who wrote something."""
    return bool(_ASKS.search(question))


def author_names(author: str | None) -> list[str]:
    """The names in a metadata author field ("A; B (interviewer), C and D" -> A, B, C, D)."""
    if not author:
        return []
    cleaned = re.sub(r"\([^)]*\)", "", author)
    names = re.split(r";|,|\band\b|&", cleaned)
    return [n.strip() for n in names if len(n.strip()) > 2]


def author_mentions(document: Document) -> list[Span]:
    """Every place the document's text names one of its authors, in order."""
    spans = []
    for name in author_names(document.metadata.author):
        spans += [Span(m.start(), m.end()) for m in re.finditer(re.escape(name), document.text)]
    return sorted(spans, key=lambda s: s.start)
