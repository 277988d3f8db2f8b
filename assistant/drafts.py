"""A draft -> every quotation in it, each checked against the sources, as a table.

:func:`find_quotations` finds the quotations of a text: between typographic double (“…”),
single (‘…’) or angle («…») quotation marks, or straight ones ("…", '…'), of at least
``min_words`` words. A quotation may run over line breaks (not over a blank line, where an
unclosed mark is dropped). A quotation inside a quotation is part of the outer one, which is
the one found; apostrophes (``Kim’s``, ``don't``) are not quotation marks. Each quotation
keeps its place in the draft: ``draft[start:end] == text`` (the marks left out).

:func:`check_draft` checks each one with a :class:`~assistant.quotes.QuoteChecker`; a quotation
that is not verbatim as written is also tried with its inner quotation's single marks as double
ones (quoting a quote turns the source's “…” into ‘…’) and without a comma or full stop before
its closing mark (where many writers put their own), each reading said in the check's notices. :func:`table` makes the rows people read and export (:func:`table_csv`,
:func:`table_json`): quotation, verdict, source, speaker, link.
"""

from __future__ import annotations

import csv
import io
import json
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.errors import InputError
from assistant.types import QuoteCheck, format_citation

_WORD = re.compile(r"\w+")
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
# opening mark -> its closing marks; straight marks close themselves
_PAIRS = {"\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb", "\u2039": "\u203a", '"': '"', "'": "'"}
_CLOSERS = {c for closers in _PAIRS.values() for c in closers}
_SINGLE = {"\u2018": "\u201c", "\u2019": "\u201d", "'": '"'}  # an inner single mark as the source's double
TABLE_COLUMNS = ("quotation", "verdict", "source", "speaker", "link")


@dataclass(frozen=True)
class Quotation:
    """One quotation of a draft: ``draft[start:end] == text``, the marks around it left out.

    ``inner`` holds the draft offsets of the single quotation marks of quotations nested in it.
    """

    start: int
    end: int
    text: str
    inner: tuple[int, ...] = ()


def find_quotations(draft: str, min_words: int = 4) -> list[Quotation]:
    """The outermost quotations of ``draft`` with at least ``min_words`` words, in order.

    Every pair of marks that closes is a quotation; those inside another are part of it. A
    mark that never closes (a stray ‘ or ") is left out, not taken to hold what follows.
    """
    if not isinstance(draft, str):
        raise InputError(f"the draft must be text, got {type(draft).__name__}")
    pairs: list[tuple[int, int, str]] = []  # (opening offset, closing offset, mark)
    stack: list[tuple[str, int]] = []  # open marks: (mark, offset)
    blank_ends = {m.end() for m in _BLANK_LINE.finditer(draft)}
    for i, c in enumerate(draft):
        if i in blank_ends:  # a paragraph ends every quotation left open
            stack = []
        depth = _closes(draft, i, stack)
        if depth is not None:
            mark, opened = stack[depth]
            pairs.append((opened, i, mark))
            del stack[depth:]
        elif _opens(draft, i):
            stack.append((c, i))
    pairs.sort()
    found: list[Quotation] = []
    outer_end = -1
    for opened, closed, _ in pairs:
        if opened < outer_end:
            continue
        outer_end = closed
        inner = [x for a, b, mark in pairs if opened < a and b < closed and mark in _SINGLE for x in (a, b)]
        _add(found, draft, opened + 1, closed, sorted(inner), min_words)
    return found


def _closes(draft: str, i: int, stack: list[tuple[str, int]]) -> int | None:
    """The depth in ``stack`` of the open mark that ``draft[i]`` closes, or None."""
    c = draft[i]
    if c not in _CLOSERS or not stack:
        return None
    if c in "'\u2019" and i + 1 < len(draft) and draft[i + 1].isalnum():
        return None  # an apostrophe inside a word: Kim’s, don't
    if c in "\"'" and (i == 0 or draft[i - 1].isspace()):
        return None  # a straight mark before a word opens
    for depth in range(len(stack) - 1, -1, -1):
        if c in _PAIRS[stack[depth][0]]:
            return depth
    return None


def _opens(draft: str, i: int) -> bool:
    c = draft[i]
    if c not in _PAIRS:
        return False
    if c in "\u2018'" and draft[i + 1 : i + 2].isdigit():
        return False  # an elided year: ‘90s
    if c in "\"'":  # straight marks open only before a word, after a space, a bracket or a dash
        before = draft[i - 1] if i else " "
        after = draft[i + 1] if i + 1 < len(draft) else " "
        return not after.isspace() and not before.isalnum()
    return True


def _add(found: list[Quotation], draft: str, start: int, end: int, inner: list[int], min_words: int) -> None:
    text = draft[start:end]
    lead, trail = len(text) - len(text.lstrip()), len(text) - len(text.rstrip())
    start, end = start + lead, end - trail
    if len(_WORD.findall(draft[start:end])) >= min_words:
        found.append(Quotation(start, end, draft[start:end], tuple(inner)))


def is_draft(text: str, min_words: int = 4) -> bool:
    """Whether ``text`` holds quotations in quotation marks, rather than being one quote (with
    its marks around it or not)."""
    found = find_quotations(text, min_words)
    return bool(found) and not (len(found) == 1 and len(text.strip()) - len(found[0].text) <= 2)


@dataclass(frozen=True)
class DraftCheck:
    """A quotation of the draft and its check (None, with ``problem``, when it cannot be checked)."""

    quotation: Quotation
    check: QuoteCheck | None
    problem: str = ""


def check_draft(draft: str, check: Callable[[str], QuoteCheck], min_words: int = 4) -> list[DraftCheck]:
    """Every quotation of ``draft`` with its check by ``check`` (e.g. ``Assistant.check_quote``).

    Raises InputError when the draft holds no quotation of ``min_words`` words or more.
    """
    quotations = find_quotations(draft, min_words)
    if not quotations:
        raise InputError(f"no quotation of {min_words} words or more was found in the draft: put each quotation "
                         f"between quotation marks (“…”, ‘…’, «…» or \"…\")")
    out = []
    for quotation in quotations:
        try:
            out.append(DraftCheck(quotation, _best_check(quotation, check)))
        except InputError as exc:
            out.append(DraftCheck(quotation, None, str(exc)))
    return out


_RANK = {"verbatim": 0, "altered": 1, "paraphrase": 2, "absent": 3}
_DOUBLED = "the inner quotation’s single marks were read as the source’s double marks"
_TRAILING = "the punctuation before the closing quotation mark was left out of the check"


def _rank(check: QuoteCheck) -> tuple[int, float]:
    """Better verdicts first; among altered readings, the closer one."""
    return _RANK[check.verdict], -check.score if check.verdict == "altered" else 0.0


def _best_check(quotation: Quotation, check: Callable[[str], QuoteCheck]) -> QuoteCheck:
    """The check of the quotation as written unless it is not verbatim and a reading of the
    draft's own punctuation does better: an inner quotation's single marks as the source's
    double ones, then a comma or full stop the writer put before the closing mark."""
    chars = list(quotation.text)
    for offset in quotation.inner:
        chars[offset - quotation.start] = _SINGLE[chars[offset - quotation.start]]
    doubled = "".join(chars)
    readings = [(doubled, (_DOUBLED,))] if quotation.inner else []
    if doubled[-1:] in ",.;:":
        readings.append((doubled[:-1], (*((_DOUBLED,) if quotation.inner else ()), _TRAILING)))
    best = check(quotation.text)
    for text, notices in readings:
        if best.verdict == "verbatim":
            break
        other = check(text)
        if _rank(other) < _rank(best):
            best = QuoteCheck(other.quote, other.verdict, other.score, other.matches, other.nearest,
                              (*other.notices, *notices))
    return best


def table(checks: Sequence[DraftCheck], link: Callable[[Any], str] = lambda citation: citation.source
          ) -> list[dict[str, Any]]:
    """One row per quotation: its text and place in the draft, verdict, best match's source
    (its citation), speaker, link (``link(citation)``; by default the document's source) and
    the cited span. A paraphrase's source is the sentence closest in meaning."""
    rows = []
    for item in checks:
        q, check = item.quotation, item.check
        match = check.matches[0] if check and check.matches else None
        cited = match.citation if match else None
        rows.append({
            "quotation": q.text, "start": q.start, "end": q.end,
            "verdict": check.verdict if check else "not checked",
            "score": check.score if check else None,
            "source": format_citation(cited) if cited else (item.problem or ""),
            "speaker": cited.speaker if cited else None,
            "link": link(cited) if cited else "",
            "doc_id": cited.doc_id if cited else None,
            "source_start": cited.span.start if cited else None,
            "source_end": cited.span.end if cited else None,
            "source_text": cited.text if cited else None,
            "similarity": match.score if match else None,
        })
    return rows


def table_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV (a header line, then one line per quotation)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else list(TABLE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return out.getvalue()


def table_json(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a JSON list."""
    return json.dumps(list(rows), ensure_ascii=False, indent=2) + "\n"


def table_text(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a plain-text table for a terminal: long cells shortened, the link and span last."""
    widths = (3, 11, 48, 40, 16)
    lines = ["  ".join(h.ljust(w) for h, w in zip(("#", "verdict", "quotation", "source", "speaker"), widths))
             + "  link"]
    for number, row in enumerate(rows, start=1):
        cells = (str(number), row["verdict"], row["quotation"], row["source"], row["speaker"] or "—")
        place = f", characters {row['source_start']}–{row['source_end']}" if row["doc_id"] else ""
        lines.append("  ".join(textwrap.shorten(c, w, placeholder=" …").ljust(w) for c, w in zip(cells, widths))
                     + f"  {row['link']}{place}")
    return "\n".join(lines) + "\n"


FORMATS = {"table": table_text, "csv": table_csv, "json": table_json}
