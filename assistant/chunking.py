"""Document -> Chunks sized in the model's word pieces, and Document -> sentence spans.

Offsets are found by walking forward through the document, never by a global search, so a
document that repeats a sentence still gets each chunk's own place:
``document.text[chunk.start:chunk.end] == chunk.text`` holds for every chunk made here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property

from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.types import Chunk, Document, Span

# Paragraphs first, then lines, sentence ends, clauses, words; separators stay with the
# text before them so chunks end on punctuation rather than start with it.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


class Chunker:
    """Splits documents into overlapping chunks of at most ``chunk_tokens`` word pieces."""

    def __init__(self, count_tokens: Callable[[str], int], chunk_tokens: int, chunk_overlap: int) -> None:
        self.splitter = RecursiveCharacterTextSplitter(
            separators=SEPARATORS,
            keep_separator="end",
            chunk_size=chunk_tokens,
            chunk_overlap=chunk_overlap,
            length_function=count_tokens,
            strip_whitespace=True,
        )

    def chunk(self, document: Document) -> list[Chunk]:
        """The document's chunks in reading order, with exact offsets."""
        chunks: list[Chunk] = []
        cursor = 0
        for piece in self.splitter.split_text(document.text):
            start = document.text.find(piece, cursor)
            if start < 0:
                raise AssertionError(f"chunk of {document.doc_id} not found after offset {cursor}")
            chunk = Chunk(document.doc_id, start, start + len(piece), piece)
            assert document.text[chunk.start : chunk.end] == chunk.text
            chunks.append(chunk)
            cursor = start + 1
        return chunks


class SentenceSplitter:
    """Sentence spans with pysbd's rules (no model, nothing downloaded), line by line."""

    @cached_property
    def segmenter(self):  # noqa: ANN201 - pysbd has no type hints
        import pysbd

        return pysbd.Segmenter(language="en", clean=False)

    def split(self, text: str) -> list[Span]:
        """Spans of the sentences of ``text``, stripped of surrounding white space."""
        spans: list[Span] = []
        for line in re.finditer(r"[^\n]+", text):
            cursor, end = line.start(), line.end()
            for sentence in self.segmenter.segment(line.group()):
                sentence = sentence.strip()
                if not sentence:
                    continue
                start = text.find(sentence, cursor, end)
                if start < 0:  # pysbd changed the text: keep the rest of the line whole
                    break
                spans.append(Span(start, start + len(sentence)))
                cursor = start + len(sentence)
            rest = text[cursor:end]
            if rest.strip():
                lead = len(rest) - len(rest.lstrip())
                spans.append(Span(cursor + lead, cursor + len(rest.rstrip())))
        return spans
