"""Checking a whole draft: every quotation found with its place, checked, and tabled (CSV, JSON).

The test draft (tests/data/drafts, see its README) mixes typographic and straight quotation
marks, quotations inside quotations and quotations broken over lines; its expected quotations
and verdicts are written by hand in expected.jsonl.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DATA

from assistant.cli import main
from assistant.config import Settings
from assistant.drafts import (
    DraftCheck,
    Quotation,
    check_draft,
    find_quotations,
    is_draft,
    table,
    table_csv,
    table_json,
)
from assistant.errors import InputError
from assistant.pipeline import Assistant
from assistant.types import Citation, QuoteCheck, QuoteMatch, Span

DRAFT_FILE = DATA / "drafts" / "draft.txt"
DRAFT = DRAFT_FILE.read_text(encoding="utf-8")
EXPECTED = [json.loads(line) for line in (DATA / "drafts" / "expected.jsonl").read_text(encoding="utf-8").splitlines()]


def _texts(draft: str) -> list[str]:
    found = find_quotations(draft)
    for q in found:
        assert draft[q.start : q.end] == q.text
    return [q.text for q in found]


# --- finding quotations ------------------------------------------------------------------------


def test_every_quotation_of_the_test_draft_is_found_with_its_place() -> None:
    found = find_quotations(DRAFT)
    assert [q.text for q in found] == [e["quotation"] for e in EXPECTED]
    for q in found:
        assert DRAFT[q.start : q.end] == q.text
        assert DRAFT[q.start - 1] in "“«‘\"" and DRAFT[q.end] in "”»’\""
        for offset in q.inner:  # the marks of a quotation inside it
            assert q.start < offset < q.end and DRAFT[offset] in "‘’'"
    # the draft covers every shape the issue names
    assert {DRAFT[q.start - 1] for q in found} == {"“", "«", "‘", '"'}
    assert sum("\n" in q.text for q in found) == 2
    assert sum(bool(q.inner) for q in found) == 2


@pytest.mark.parametrize(("draft", "expected"), [
    ("He said “the talks are over for now” and left.", ["the talks are over for now"]),
    ("Kim’s view and the ministers’ view: “we have no alternatives at all”.", ["we have no alternatives at all"]),
    ("In the ’90s, she said “AI was a distant dream then”.", ["AI was a distant dream then"]),
    ('It\'s "a quote in straight marks here" and don\'t worry.', ["a quote in straight marks here"]),
    ("«four words in guillemets» and ‹four words in angle› marks", ["four words in guillemets",
                                                                   "four words in angle"]),
    ("“Outer words ‘inner quote here’ and more”", ["Outer words ‘inner quote here’ and more"]),
    ("A “scare quote” is too short.", []),
    ("“An unclosed quote runs on\n\nto the next paragraph” no.", []),
    ("A stray ‘ mark and then “four words in here” end.", ["four words in here"]),
    ("“  spaces around four words  ”", ["spaces around four words"]),
])
def test_quotation_shapes(draft: str, expected: list[str]) -> None:
    assert _texts(draft) == expected


def test_draft_or_one_quote() -> None:
    assert is_draft(DRAFT)
    assert not is_draft("“The Embassy's staff was very welcoming and supportive of my research.”\n")
    assert not is_draft("The Embassy's staff was very welcoming and supportive of my research.")
    with pytest.raises(InputError, match="must be text"):
        find_quotations(None)  # type: ignore[arg-type]


# --- checking, with a stand-in checker ------------------------------------------------------------


def _verdict_for(accepted: set[str]):
    """A check that calls verbatim exactly the texts in ``accepted``, absent anything else."""
    calls: list[str] = []

    def check(text: str) -> QuoteCheck:
        calls.append(text)
        if len(text.split()) < 4:
            raise InputError("the quote has too few words")
        return QuoteCheck(text, "verbatim" if text in accepted else "absent", 1.0 if text in accepted else 0.1)

    return check, calls


def test_inner_single_marks_and_trailing_punctuation_are_read_as_the_source_has_them() -> None:
    draft = "She wrote “a ‘sovereign AI’ ecosystem for all,” and “nothing of the kind here”."
    check, calls = _verdict_for({"a “sovereign AI” ecosystem for all"})
    first, second = check_draft(draft, check)
    assert first.check.verdict == "verbatim" and len(first.check.notices) == 2
    assert calls[:3] == ["a ‘sovereign AI’ ecosystem for all,", "a “sovereign AI” ecosystem for all,",
                         "a “sovereign AI” ecosystem for all"]
    assert second.check.verdict == "absent" and second.check.notices == ()
    assert draft[first.quotation.start : first.quotation.end] == "a ‘sovereign AI’ ecosystem for all,"


def test_a_draft_without_quotations_is_refused_in_plain_words() -> None:
    check, _ = _verdict_for(set())
    with pytest.raises(InputError, match="no quotation of 4 words or more"):
        check_draft("No quotation marks here, only “two words”.", check)


def test_table_rows_csv_and_json() -> None:
    doc_text = "Kim said the talks were over."
    citation = Citation("doc", Span(0, len(doc_text)), doc_text, "A title", "https://example.org/a", "An Author")
    checks = [DraftCheck(Quotation(1, 30, "Kim said the talks were over."),
                         QuoteCheck("Kim said the talks were over.", "verbatim", 1.0,
                                    (QuoteMatch(citation, exact=True, score=1.0),))),
              DraftCheck(Quotation(40, 60, "something else entirely here"), None, "too long to check")]
    rows = table(checks)
    assert [r["verdict"] for r in rows] == ["verbatim", "not checked"]
    assert rows[0]["source"] == "“A title”, An Author" and rows[0]["link"] == "https://example.org/a"
    assert rows[0]["speaker"] == getattr(citation, "speaker", None)
    assert rows[1]["source"] == "too long to check" and rows[1]["link"] == ""
    parsed = list(csv.DictReader(io.StringIO(table_csv(rows))))
    assert [p["quotation"] for p in parsed] == [r["quotation"] for r in rows]
    assert parsed[0]["source_start"] == "0" and parsed[1]["doc_id"] == ""
    assert {"quotation", "verdict", "source", "speaker", "link"} <= set(parsed[0])
    assert json.loads(table_json(rows)) == rows


# --- the test draft against the seed corpus (real model) --------------------------------------------


@pytest.fixture(scope="module")
def seed_assistant(seed_index: Settings, real_encoder) -> Assistant:
    return Assistant.open(seed_index, real_encoder)


def test_the_draft_check_gets_each_verdict_right(seed_assistant: Assistant) -> None:
    checks = seed_assistant.check_draft(DRAFT)
    assert [(c.quotation.text, c.check.verdict) for c in checks] == [(e["quotation"], e["verdict"]) for e in EXPECTED]
    for item, expected in zip(checks, EXPECTED):
        assert DRAFT[item.quotation.start : item.quotation.end] == item.quotation.text
        if expected["source"]:
            assert item.check.matches[0].citation.doc_id == expected["source"]
        else:
            assert item.check.matches == ()
        for match in item.check.matches:  # the offset invariant holds for every match
            cited = match.citation
            assert seed_assistant.index.by_id[cited.doc_id].text[cited.span.start : cited.span.end] == cited.text
    rows = table(checks)
    assert [r["verdict"] for r in rows] == [e["verdict"] for e in EXPECTED]
    for row, item in zip(rows, checks):
        assert DRAFT[row["start"] : row["end"]] == row["quotation"]
        if row["doc_id"]:
            doc = seed_assistant.index.by_id[row["doc_id"]]
            assert doc.text[row["source_start"] : row["source_end"]] == row["source_text"]
            assert row["link"] == doc.source
            assert row["speaker"] == getattr(item.check.matches[0].citation, "speaker", None)


def _run(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_checks_a_draft_file_as_a_table_csv_and_json(seed_index: Settings, tmp_path: Path) -> None:
    dirs = ["--corpus", str(seed_index.corpus_dir), "--index", str(seed_index.index_dir)]
    result = _run("quote", "--file", str(DRAFT_FILE), *dirs)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["#", "verdict", "quotation", "source", "speaker"]
    assert [line.split()[1] for line in lines[1:]] == [e["verdict"] for e in EXPECTED]
    result = _run("quote", "--file", str(DRAFT_FILE), "--format", "csv", *dirs)
    parsed = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(p["quotation"], p["verdict"]) for p in parsed] == [(e["quotation"], e["verdict"]) for e in EXPECTED]
    out = tmp_path / "checked.json"
    result = _run("quote", "--file", str(DRAFT_FILE), "--out", str(out), *dirs)
    assert result.exit_code == 0 and result.stdout == "" and "8 quotation(s)" in result.stderr
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert [r["verdict"] for r in rows] == [e["verdict"] for e in EXPECTED]
    result = _run("quote", "--draft", "Nothing quoted “here at all”.", *dirs)
    assert result.exit_code == 2 and "no quotation of 4 words or more" in result.stderr
