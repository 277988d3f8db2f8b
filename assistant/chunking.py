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
    """Sentence spans with pysbd's rules (no model, nothing downloaded), line by line.

    pysbd's time grows with the square of the length of what it is given, so a line longer
    than ``window`` characters is fed to it a window at a time, the last (perhaps unfinished)
    sentence of each window starting the next; a sentence is at most ``window`` characters,
    longer ones are cut at a space. pysbd also costs some 15 µs a character, so a text longer
    than ``fast_above`` characters (a book-length single file) is split by a plain rule
    instead: a sentence ends at ``.``, ``!``, ``?`` or ``…`` before white space.
    """

    def __init__(self, window: int = 8000, fast_above: int = 1_000_000) -> None:
        if window < 100:
            raise ValueError(f"window must be at least 100 characters, got {window}")
        self.window = window
        self.fast_above = fast_above

    @cached_property
    def segmenter(self):  # noqa: ANN201 - pysbd has no type hints
        import pysbd

        return pysbd.Segmenter(language="en", clean=False)

    def split(self, text: str) -> list[Span]:
        """Spans of the sentences of ``text``, stripped of surrounding white space."""
        segment = self._plain if len(text) > self.fast_above else self._pysbd
        spans: list[Span] = []
        for line in re.finditer(r"[^\n]+", text):
            begin, end = line.start(), line.end()
            while begin < end:
                stop = min(end, begin + self.window)
                found = segment(text, begin, stop)
                if stop < end:  # the window may have cut the last sentence: read it again
                    found = found[:-1] if len(found) > 1 else self._cut(text, begin, stop)
                spans += found
                begin = max(found[-1].end, begin + 1) if found else stop
        return spans

    def _pysbd(self, text: str, begin: int, end: int) -> list[Span]:
        spans = []
        cursor = begin
        for sentence in self.segmenter.segment(text[begin:end]):
            sentence = sentence.strip()
            if not sentence:
                continue
            start = text.find(sentence, cursor, end)
            if start < 0:  # pysbd changed the text: keep the rest of the line whole
                break
            spans.append(Span(start, start + len(sentence)))
            cursor = start + len(sentence)
        return spans + _stripped(text, cursor, end)

    @staticmethod
    def _plain(text: str, begin: int, end: int) -> list[Span]:
        spans, start = [], begin
        for boundary in _SENTENCE_END.finditer(text, begin, end):
            spans += _stripped(text, start, boundary.start())
            start = boundary.end()
        return spans + _stripped(text, start, end)

    @staticmethod
    def _cut(text: str, begin: int, stop: int) -> list[Span]:
        """One sentence filling the window: cut it at the window's last space."""
        cut = text.rfind(" ", begin, stop)
        return _stripped(text, begin, cut if cut > begin else stop)


# White space after end punctuation, perhaps followed by a closing quote or bracket. Fixed-width
# look-behinds keep the search linear whatever the text (no backtracking over runs of dots).
_SENTENCE_END = re.compile(r"(?:(?<=[.!?\u2026])|(?<=[.!?\u2026][\"'\u2019\u201d\u00bb)\]]))\s+")


def _stripped(text: str, start: int, end: int) -> list[Span]:
    """The span of ``text[start:end]`` without surrounding white space; none if it is blank."""
    piece = text[start:end]
    if not piece.strip():
        return []
    return [Span(start + len(piece) - len(piece.lstrip()), start + len(piece.rstrip()))]
