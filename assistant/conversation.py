"""Follow-up questions: build the retrieval query from a question and the turns before it.

People ask follow-ups the way they speak: "and when was it adopted?" after "What is the Korean
AI Strategy?". Such a question cannot be searched on its own, so the query gets the *topic* of
the conversation (the content words of the last self-contained question) put in front:
"Korean AI Strategy: when was it adopted?". A question that names its own subject starts a
new topic and is searched as typed.

A question is taken as a follow-up when it begins with a continuation word ("and", "what
about", ...) or leans on a pronoun ("it", "they", "that", ...) while naming nothing itself
(no capitalised word after the first and at most three content words of its own).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[\w'’-]+")
_CONTINUATION = re.compile(
    r"^\s*(?:and|but|also|so|then|or|plus|what about|how about|and what about|what else)\b[\s,]*", re.I
)
_PRONOUNS = frozenset(
    "it its it's itself they them their theirs themselves he him his she her hers this that these "
    "those there one".split()
)
_STOP = frozenset(
    """a an the of in on at to for from by with about into over under between through during
    before after above below up down out off again further once here there when where why how what
    which who whom whose is are was were be been being am do does did doing have has had having
    can could should would will shall may might must not no nor only own same so than too very
    just and but or if because as until while also any all both each few more most other some such
    i me my we our you your please tell explain describe give list name say said does did
    it its they them their he him his she her this that these those one ones thing things
    """.split()
)
TOPIC_WORDS = 8


@dataclass(frozen=True)
class Turn:
    """One exchange: what was asked, what was searched, and the topic it carried forward.

    ``follow_up`` tells whether the query got the topic of earlier turns.
    """

    question: str
    query: str
    topic: str
    follow_up: bool = False


@dataclass(frozen=True)
class Query:
    """The text to search for a question; ``follow_up`` tells whether context was added."""

    text: str
    topic: str
    follow_up: bool


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry meaning (not stop words or pronouns), in order."""
    return [w for w in _WORD.findall(text) if w.lower().strip("'’") not in _STOP]


def topic_of(question: str) -> str:
    """The subject of a self-contained question: its content words, at most TOPIC_WORDS."""
    words = content_words(question)
    return " ".join(words[:TOPIC_WORDS])


def is_follow_up(question: str) -> bool:
    """Whether ``question`` leans on an earlier turn to be understood (see the module doc)."""
    if _CONTINUATION.match(question):
        return True
    words = _WORD.findall(question)
    if not any(w.lower() in _PRONOUNS for w in words):
        return False
    names = [w for w in words[1:] if w[:1].isupper() and w.lower() not in _PRONOUNS and w != "I"]
    return not names and len(content_words(question)) <= 3


def build_query(question: str, history: Sequence[Turn] = ()) -> Query:
    """The retrieval query for ``question`` after the turns in ``history`` (oldest first).

    A self-contained question is returned unchanged and becomes the topic; a follow-up is
    prefixed with the topic of the conversation, which it keeps for the next turn.
    """
    text = " ".join(question.split())
    topic = history[-1].topic if history else ""
    if topic and is_follow_up(text):
        rest = _CONTINUATION.sub("", text, count=1) or text
        return Query(f"{topic}: {rest}", topic, True)
    return Query(text, topic_of(text) or topic, False)


def next_turn(question: str, history: Sequence[Turn] = ()) -> Turn:
    """The Turn that ``question`` makes after ``history``: its query and the topic it carries."""
    query = build_query(question, history)
    return Turn(question=question, query=query.text, topic=query.topic, follow_up=query.follow_up)
