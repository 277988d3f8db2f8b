"""Questions edited so that the sentence which answered them no longer does.

SQuAD v1.1 has no unanswerable questions, and the questions the reader most needs to refuse are
SQuAD 2.0's: written about the paragraph, with one thing changed so that it no longer answers
("When was Australia Twilight launched?", "Who wrote Spectre?" where the text says who directed
it). These edits imitate the kinds Rajpurkar, Jia & Liang (2018) list for SQuAD 2.0: an entity of
the question swapped for another of the same article, a number or year changed, a word swapped
for its antonym, and a negation. An edit only touches what the answering window contains, and
puts in nothing that it contains, so the window no longer answers the edited question.
"""

from __future__ import annotations

import random
import re

CAPITALISED = re.compile(r"\b[A-Z][\w'’\-]*(?:\s+(?:of|the|de|and|von|van|la|le)?\s*[A-Z][\w'’\-]*)*")
NUMBER = re.compile(r"\b\d[\d,.]*\b")
WORD = re.compile(r"\b\w+\b")
# Capitalised words that open a sentence or question rather than name something.
LEADING = re.compile(
    r"^(?:(?:What|Which|Who|Whom|Whose|When|Where|Why|How|In|On|At|The|A|An|During|After|Before|By|For|"
    r"From|To|Of|If|As|It|This|That|These|Its|His|Her|Their|He|She|They)\b\s*)+")
PASSIVE = re.compile(r"\b(?:is|was|are|were|has been|have been|had been|be)\s+(?=\w+(?:ed|en)\b)")
ANTONYMS = [
    ("first", "last"), ("before", "after"), ("more", "less"), ("largest", "smallest"), ("highest", "lowest"),
    ("increase", "decrease"), ("increased", "decreased"), ("won", "lost"), ("win", "lose"), ("north", "south"),
    ("east", "west"), ("northern", "southern"), ("eastern", "western"), ("prequel", "sequel"),
    ("earliest", "latest"), ("began", "ended"), ("started", "ended"), ("minimum", "maximum"),
    ("opened", "closed"), ("early", "late"), ("best", "worst"), ("most", "least"), ("larger", "smaller"),
    ("higher", "lower"), ("older", "younger"), ("oldest", "youngest"), ("major", "minor"),
    ("positive", "negative"), ("joined", "left"), ("bought", "sold"), ("accepted", "rejected"),
    ("allowed", "banned"), ("supported", "opposed"), ("inside", "outside"), ("above", "below"),
    ("longest", "shortest"), ("male", "female"), ("men", "women"), ("birth", "death"), ("born", "died"),
    ("successful", "unsuccessful"), ("top", "bottom"), ("upper", "lower"), ("modern", "ancient"),
    ("private", "public"), ("domestic", "foreign"), ("internal", "external"), ("husband", "wife"),
    ("father", "mother"), ("son", "daughter"), ("brother", "sister"), ("king", "queen"),
]
SWAP = {}
for _a, _b in ANTONYMS:
    SWAP.setdefault(_a, _b)
    SWAP.setdefault(_b, _a)
KINDS = ("entity", "entity", "number", "antonym", "negation")  # entity swaps twice as often


def names(text: str) -> list[str]:
    """The capitalised names in ``text`` (an article), without the words that open sentences."""
    found = {LEADING.sub("", m.group().strip()) for m in CAPITALISED.finditer(text)}
    return sorted(n for n in found if len(n) > 2)


def _named_spans(question: str, window: str) -> list[tuple[int, int, str]]:
    spans = []
    for m in CAPITALISED.finditer(question):
        lead = LEADING.match(m.group())
        skip = len(lead.group()) if lead else 0
        name = m.group()[skip:].strip()
        if len(name) > 2 and name in window:
            spans.append((m.start() + skip, m.start() + skip + len(name), name))
    return spans


def edit(question: str, window: str, article_names: list[str], rng: random.Random) -> tuple[str, str] | None:
    """``(edited question, kind)`` that ``window`` (the answer sentence and its neighbours) no
    longer answers, or None when no kind of edit applies."""
    kinds = list(KINDS)
    rng.shuffle(kinds)
    for kind in kinds:
        if kind == "entity":
            spans = _named_spans(question, window)
            if not spans:
                continue
            start, end, name = rng.choice(spans)
            pool = [n for n in article_names if n not in window and name not in n and n not in name]
            if pool:
                return question[:start] + rng.choice(pool) + question[end:], kind
        elif kind == "number":
            spans = [m for m in NUMBER.finditer(question) if m.group() in window]
            if not spans:
                continue
            m = rng.choice(spans)
            try:
                value = int(float(m.group().replace(",", "")))
            except ValueError:
                continue
            if 1000 <= value <= 2100:  # a year: a nearby one
                new = str(value + rng.choice([-1, 1]) * rng.randint(1, 30))
            else:
                new = str(max(2, value * rng.choice([2, 3, 10])))
            if new not in window:
                return question[: m.start()] + new + question[m.end():], kind
        elif kind == "antonym":
            spans = [m for m in WORD.finditer(question) if m.group().lower() in SWAP]
            if not spans:
                continue
            m = rng.choice(spans)
            new = SWAP[m.group().lower()]
            if m.group()[0].isupper():
                new = new.capitalize()
            return question[: m.start()] + new + question[m.end():], kind
        else:  # negation of a passive verb: "was founded" -> "was not founded"
            m = PASSIVE.search(question)
            if m and " not " not in question:
                return question[: m.end()] + "not " + question[m.end():], kind
    return None
