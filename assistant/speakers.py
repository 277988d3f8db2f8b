"""Who says what in an interview: speaker turns ("MN: ...", "Kim: ...") and the names behind their labels.

A transcript-like text opens paragraphs with a speaker's label and a colon. A label (one to four
capitalised words, or a name defining its initials: "Michal Natorski (MN):") that opens at least
two paragraphs is a speaker's, when at least two labels do; so a lone "Languages:" of a profile is
not, nor is a text with a single repeated label. A turn runs from its label over the paragraphs
that follow it without a label, and stops at the next turn, at a heading (a short line without
closing punctuation, such as a photo caption) or at a line that opens with another "Something:"
(the suggested citation after an interview, a profile).

Each label is resolved to the full name the document gives: its definition ("Michal Natorski
(MN)"); for a one-word label, the two-word name it ends most often in the text, if at least twice
("Sangjin Kim" for "Kim"); else the label itself ("PassBlue"). A question about what a speaker said is recognised by
``asked_speaker``; ``names`` tells whether a text (an article reporting them) names them.
Nothing here knows documents: the
text is all it reads (``Document.turns`` caches the turns of each document).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

_WORD = r"[A-Z][\w’'.-]*"
_LABEL = re.compile(rf"^(?P<name>{_WORD}(?: {_WORD}){{0,3}})(?: \((?P<short>[A-Z][\w.]{{0,9}})\))?:[^\S\n]+(?=\S)",
                    re.MULTILINE)
_DEFINITION = re.compile(rf"\b(?P<name>{_WORD}(?: {_WORD}){{1,2}}) \((?P<short>[A-Z][\w.]{{0,9}})\)")
_OTHER_LABEL = re.compile(r"[^\n:]{1,40}:(?:\s|$)")
_LINE = re.compile(r"[^\n]+")
_CLOSED = re.compile(r"[.?!…\"”’)\]]$")
_TITLES = frozenset({"Mr", "Mrs", "Ms", "Miss", "Dr", "Prof", "Professor", "President", "Ambassador", "Minister",
                     "Secretary", "General", "Director", "Chairman", "Senator", "Judge", "The", "When", "As"})
_SAYING = re.compile(
    r"\b(?:say|says|said|saying|tell|tells|told|think|thinks|thought|answer(?:s|ed)?|repl(?:y|ies|ied)"
    r"|respond(?:s|ed)?|argue[sd]?|claim(?:s|ed)?|explain(?:s|ed)?|believe[sd]?|mention(?:s|ed)?"
    r"|(?:speaks?|spoke)\s+(?:about|on|of)|comment(?:s|ed)?|view|views|opinion|according to)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Turn:
    """One speaker's turn: ``text[start:end]`` from its label to the end of its last paragraph."""

    label: str  # as written before the colon, or the initials a definition gives ("MN")
    speaker: str  # the full name the document gives ("Michal Natorski"), else the label
    start: int
    end: int


def find_turns(text: str) -> tuple[Turn, ...]:
    """The speaker turns of a transcript-like text, in order; empty for any other text."""
    labels = [(m.start(), m.group("short") or m.group("name"), m) for m in _LABEL.finditer(text)]
    counts = Counter(label for _, label, _ in labels)
    speaking = {label for label, n in counts.items() if n >= 2}
    if len(speaking) < 2:
        return ()
    defined = {m.group("short"): m.group("name") for _, _, m in reversed(labels) if m.group("short")}
    names = {label: defined.get(label) or _defined_in_prose(text, label) or _full_name(text, label)
             for label in speaking}
    starts = [(start, label) for start, label, _ in labels if label in speaking]
    limits = [start for start, _ in starts[1:]] + [len(text)]
    return tuple(Turn(label, names[label], start, _turn_end(text, start, limit))
                 for (start, label), limit in zip(starts, limits))


def _defined_in_prose(text: str, label: str) -> str | None:
    """The name a definition such as "Michal Natorski (MN)" gives ``label`` in running text."""
    return next((m.group("name") for m in _DEFINITION.finditer(text) if m.group("short") == label), None)


def _full_name(text: str, label: str) -> str:
    """A one-word label's most frequent two-word name in the text ("Sangjin Kim"), else the label."""
    if " " in label:
        return label
    given = Counter(m.group(1) for m in re.finditer(rf"\b([A-Z][a-z][\w’'-]*) {re.escape(label)}\b", text)
                    if m.group(1) not in _TITLES)
    best = given.most_common(1)
    return f"{best[0][0]} {label}" if best and best[0][1] >= 2 else label


def _turn_end(text: str, start: int, limit: int) -> int:
    """Where the turn opening at ``start`` ends: its line and the unlabelled paragraphs after it,
    before ``limit`` (the next turn), a heading or a line opening with another label."""
    lines = _LINE.finditer(text, start, limit)
    first = next(lines)
    end = first.start() + len(first.group().rstrip())
    for line in lines:
        words = line.group().strip()
        if not words:
            continue
        if (len(words) < 80 and not _CLOSED.search(words)) or _OTHER_LABEL.match(words):
            break
        end = line.start() + len(line.group().rstrip())
    return end


def speaker_at(turns: Sequence[Turn], start: int, end: int) -> str | None:
    """Who speaks ``[start, end)``: the speaker of the turn holding all of it, else None
    (outside any turn, or across turns of several people)."""
    for turn in turns:
        if turn.start <= start and end <= turn.end:
            return turn.speaker
        if turn.start > start:
            break
    return None


def known_speakers(turn_lists: Iterable[Sequence[Turn]]) -> dict[str, set[str]]:
    """Every speaker of the given turns, with the labels of their turns."""
    speakers: dict[str, set[str]] = {}
    for turns in turn_lists:
        for turn in turns:
            speakers.setdefault(turn.speaker, set()).add(turn.label)
    return speakers


def asked_speaker(question: str, speakers: dict[str, set[str]]) -> str | None:
    """The speaker a question asks about, when it names one with a verb of saying before the verb
    ("What did Kim say about Afghanistan?") or after "according to" or "by"; else None."""
    verb = _SAYING.search(question)
    if verb is None:
        return None
    found = [(m.start(), speaker) for speaker, labels in speakers.items() for m in _mentions(question, speaker, labels)
             if m.start() < verb.start() or question[: m.start()].lower().endswith(("according to ", "by "))]
    return min(found)[1] if found else None


def names(text: str, speaker: str, labels: set[str]) -> bool:
    """Whether ``text`` names ``speaker`` (as for questions: see ``_mentions``)."""
    return next(_mentions(text, speaker, labels), None) is not None


def _mentions(text: str, speaker: str, labels: set[str]) -> Iterator[re.Match]:
    """Where ``text`` names ``speaker``: by full name, last name (case aside) or label (as
    written); a name followed by another capitalised word is someone else's ("Kim Jong Un")."""
    words = speaker.split()
    patterns = [rf"(?i:{re.escape(speaker)})", *(re.escape(label) for label in labels)]
    if len(words) > 1 and len(words[-1]) > 2:
        patterns.append(rf"(?i:{re.escape(words[-1])})")
    for pattern in patterns:
        yield from re.finditer(rf"(?<![\w’'-]){pattern}(?![\w’'-])(?!\s+[A-Z])", text)
