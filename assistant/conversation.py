"""Follow-up questions: build the retrieval query from a question and the turns before it.

People ask follow-ups the way they speak: "and when was it adopted?" after "What is the Korean
AI Strategy?". Such a question cannot be searched on its own, so the query gets the *topic* of
the conversation (the content words of the last self-contained question) put in front:
"Korean AI Strategy: when was it adopted?". A question that names its own subject starts a
new topic and is searched as typed.

A question is taken as a follow-up when it begins with a continuation word ("and", "what
about", ...) or leans on a pronoun ("it", "they", "that", ...) while naming nothing itself
(no capitalised word after the first and at most three content words of its own).

A follow-up that leans on a pronoun ("Where was he based?") also gets what the previous
*answer* was about, its *subject*: the names (runs of capitalised words: people,
organisations, places) in the reader's answer phrase, else in the answer sentence, then the
document's author names that the sentence mentions, written out in full; a name's last two
words, SUBJECT_WORDS words at most. "Who was interviewed about his fellowship in Seoul?",
answered with "Dr. Diego Salama ... speaks with Dr. Michal Natorski ..." (phrase "Dr. Michal
Natorski"), makes "Where was he based?" search "interviewed fellowship Seoul Michal Natorski
Diego Salama: Where was he based?". No model is involved and nothing is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.pipeline import Response

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
SUBJECT_WORDS = 4
_CAPITALISED = r"[A-ZÀ-ÖØ-Þ][\w'’.-]*"
_NAME_RUN = re.compile(rf"{_CAPITALISED}(?:\s+(?:(?:of|for|and|the|de|van|von|al)\s+)*{_CAPITALISED})*")
_TITLES = frozenset("dr mr mrs ms prof sir dame".split())
_SENTENCE_START = re.compile(r"(?:^|[.!?:;“\"]\s+)$")


@dataclass(frozen=True)
class Turn:
    """One exchange: what was asked, what was searched, and the topic it carried forward.

    ``follow_up`` tells whether the query got the topic of earlier turns.
    """

    question: str
    query: str
    topic: str
    follow_up: bool = False
    subject: str = ""
    without_subject: str = ""  # the query without the previous answer's subject, when it got one
    answer: str = ""  # the text of the answer this turn got (``answered``)
    subject_answer: str = ""  # the previous answer, when the query carries its subject
    also_tried: str = ""  # the query with the subject, when the one without it gave the answer


@dataclass(frozen=True)
class Query:
    """The text to search for a question; ``follow_up`` tells whether context was added;
    ``without_subject`` is the text without the previous answer's subject, when it got one."""

    text: str
    topic: str
    follow_up: bool
    without_subject: str = ""


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


def _has_pronoun(question: str) -> bool:
    return any(w.lower() in _PRONOUNS for w in _WORD.findall(question))


def _trimmed(name: str) -> str:
    """``name`` without leading or trailing stop words and titles ("The", "Dr.")."""
    words = name.split()
    while words and (words[0].lower().strip(".") in _STOP | _TITLES):
        words.pop(0)
    while words and (words[-1].lower().strip(".") in _STOP | _TITLES):
        words.pop()
    return re.sub(r"['’]s$", "", " ".join(words).strip("."))


def names_in(text: str, known: Sequence[str] = ()) -> list[str]:
    """The names in ``text``: runs of capitalised words, in order, without repeats.

    A lone capitalised word that opens a sentence ("However", "Kim") counts only as part of a
    ``known`` name, which is then written out in full ("Sangjin Kim").
    """
    names: list[str] = []
    for match in _NAME_RUN.finditer(text):
        name = _trimmed(match.group())
        opens = _SENTENCE_START.search(text[: match.start()]) is not None
        if opens and " " not in name:
            name = next((k for k in known if name and name in k.split()), "")
        if name and name not in names:
            names.append(name)
    return names


def author_names(author: str | None) -> list[str]:
    """The people named in a metadata author field ("Dr. A B (interviewer); C D")."""
    return [_trimmed(re.sub(r"\(.*?\)", "", part)) for part in re.split(r";|,| and ", author or "") if part.strip()]


def subject_of(sentence: str, phrase: str | None = None, author: str | None = None, *, topic: str = "") -> str:
    """What an answer is about: the names in its ``phrase`` (else in its ``sentence``) and the
    document's ``author`` names the sentence mentions, in full, leaving out words already in
    ``topic``; at most SUBJECT_WORDS words."""
    known = author_names(author)
    mentioned = [k for k in known if any(w in sentence for w in k.split())]
    seen = {w.lower() for w in _WORD.findall(topic)}
    words: list[str] = []
    names = names_in(sentence, known)
    in_phrase = [n for n in names if phrase and (n in phrase or phrase in n)]
    for name in (in_phrase or names) + mentioned:
        fresh = [w for w in name.split()[-2:] if w.lower() not in seen]  # a name's last words: "Lee Jae-myung"
        if not fresh or len(words) + len(fresh) > SUBJECT_WORDS:
            continue
        words += fresh
        seen |= {w.lower() for w in fresh}
    return " ".join(words)


def build_query(question: str, history: Sequence[Turn] = ()) -> Query:
    """The retrieval query for ``question`` after the turns in ``history`` (oldest first).

    A self-contained question is returned unchanged and becomes the topic; a follow-up is
    prefixed with the topic of the conversation, which it keeps for the next turn, and, when
    it leans on a pronoun, with the subject of the previous answer.
    """
    text = " ".join(question.split())
    topic = history[-1].topic if history else ""
    if topic and is_follow_up(text):
        rest = _CONTINUATION.sub("", text, count=1) or text
        subject = history[-1].subject if _has_pronoun(rest) else ""
        plain = f"{topic}: {rest}"
        return Query(f"{topic} {subject}: {rest}", topic, True, plain) if subject else Query(plain, topic, True)
    return Query(text, topic_of(text) or topic, False)


def next_turn(question: str, history: Sequence[Turn] = ()) -> Turn:
    """The Turn that ``question`` makes after ``history``: its query and the topic it carries.

    The subject of the previous answer is carried until ``answered`` gives the turn its own.
    """
    query = build_query(question, history)
    subject = history[-1].subject if history and query.follow_up else ""
    return Turn(question=question, query=query.text, topic=query.topic, follow_up=query.follow_up,
                subject=subject, without_subject=query.without_subject,
                subject_answer=history[-1].answer if query.without_subject else "")


def ask_turn(ask: Callable[[str], Response], turn: Turn) -> tuple[Response, Turn]:
    """Ask ``turn``'s query; when it carries the previous answer's subject, ask it without the
    subject too and keep the more confident answer, with the query that gave it. The subject
    finds the person again ("Where was he based?"), but can also pull the search back to the
    answer already given: after "Lee Jae-myung will lead the Council debate", "When was he
    elected?" is answered by "He was elected in June" only without the name. A follow-up asks
    something new, so an answer that only repeats the previous one is not kept when the query
    without the subject finds another, however confident."""
    response = ask(turn.query)
    if turn.without_subject:
        other = ask(turn.without_subject)
        repeated = bool(turn.subject_answer) and response.answer is not None \
            and response.answer.citation.text == turn.subject_answer
        if (repeated and other.answer is not None) or _confidence(other) > _confidence(response):
            return other, replace(turn, query=turn.without_subject, also_tried=turn.query)
    return response, turn


def _confidence(response: Response) -> float:
    return response.answer.confidence if response.answer else 0.0


def answered(turn: Turn, sentence: str, phrase: str | None = None, author: str | None = None) -> Turn:
    """``turn`` with its answer (``sentence``) and that answer's subject (from ``sentence``,
    ``phrase``, the document's ``author``)."""
    subject = subject_of(sentence, phrase, author, topic=turn.topic)
    return replace(turn, subject=subject or turn.subject, answer=sentence)
