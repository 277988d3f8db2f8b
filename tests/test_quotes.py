from __future__ import annotations

import ast
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from assistant.cli import main
from assistant import metrics
from assistant.alignment import Part, Step, word_diff, word_spans
from assistant.config import QuoteSettings, Settings
from assistant.errors import InputError
from assistant.pipeline import Assistant
from assistant.quotes import QuoteCheck, QuoteChecker, needed_normalizations, normalize
from assistant.store import Index, build_index
from assistant.textnorm import QUOTE_MARKS, Normalized
from assistant.types import DiffOp
from assistant.ui.render import source_link
from conftest import DATA, SEED_PARAPHRASES, SEED_QUOTES, FakeEncoder

QUOTES = DATA / "quotes"


def _cases(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


FAKE_CASES = _cases(QUOTES / "cases.jsonl")
SEED_CASES = _cases(SEED_QUOTES) + _cases(QUOTES / "seed-cases.jsonl")


def _ids(cases: list[dict]) -> list[str]:
    return [case["id"] for case in cases]


@pytest.fixture(scope="module")
def fake_settings_quotes(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The quotes test corpus, indexed with the fake encoder in small chunks (30 words)."""
    settings = Settings(corpus_dir=QUOTES / "corpus", index_dir=tmp_path_factory.mktemp("quotes") / "index",
                        model="fake-encoder", chunk_tokens=30, chunk_overlap=5)
    build_index(settings, FakeEncoder())
    return settings


def _checker(settings: Settings, encoder) -> QuoteChecker:
    """The quote checker of an assistant opened on ``settings``' index (on Milvus in a Milvus run)."""
    opened = Assistant.open(settings.with_(reader="none"), encoder)  # the checker reads no answers
    return QuoteChecker(opened.index, encoder, opened.retriever)


@pytest.fixture(scope="module")
def fake_checker(fake_settings_quotes: Settings) -> QuoteChecker:
    return _checker(fake_settings_quotes, FakeEncoder())


@pytest.fixture(scope="module")
def seed_checker(seed_index: Settings, real_encoder) -> QuoteChecker:
    return _checker(seed_index, real_encoder)


def _assert_offsets(index: Index, check: QuoteCheck) -> None:
    """Every span points at exactly the text it reports."""
    for match in check.matches:
        cited, span = match.citation, match.citation.span
        doc = index.by_id[cited.doc_id]
        assert doc.text[span.start : span.end] == cited.text
        assert doc.text[match.context_start : match.context_end] == match.context
        assert match.context_start <= span.start <= span.end <= match.context_end
        assert parse_qs(urlsplit(source_link(cited.doc_id, span.start, span.end)).query) == {
            "doc": [cited.doc_id], "start": [str(span.start)], "end": [str(span.end)]}
        assert cited.title == doc.metadata.title
        ends = [span.start]
        for part in match.parts:
            assert ends[-1] <= part.start < part.end <= span.end
            ends.append(part.end)
        if match.parts:
            assert match.parts[0].start == span.start and match.parts[-1].end == span.end
        if match.diff:
            pieces = [doc.text[p.start : p.end] for p in match.parts] or [cited.text]
            assert "".join(d.source for d in match.diff) == "".join(pieces)
            assert {d.op for d in match.diff} <= {"equal", "replace", "delete", "insert"}


def _assert_case(checker: QuoteChecker, case: dict) -> QuoteCheck:
    check = checker.check(case["quote"])
    assert check.verdict == case["expected"], (case["id"], check.verdict, check.score)
    _assert_offsets(checker.index, check)
    if case["expected"] == "absent":
        assert check.matches == ()
        assert check.nearest, "absent quotes still list the nearest passages"
        assert check.score < checker.altered_threshold
        return check
    best = check.matches[0]
    assert best.citation.doc_id == case["source"]
    if case["expected"] == "verbatim":
        assert check.score == 1.0 and best.diff == ()
    else:
        assert checker.altered_threshold <= check.score < 1.0
        assert not best.exact and best.diff
        assert check.score >= case.get("min_score", 0)
    if "occurrences" in case:
        assert len(check.matches) == case["occurrences"]
        assert len({(m.citation.doc_id, m.citation.span.start) for m in check.matches}) == case["occurrences"]
    if "exact" in case:
        assert all(m.exact == case["exact"] for m in check.matches)
    if "normalizations" in case:
        assert set(best.normalizations) == set(case["normalizations"])
    if "parts" in case:
        assert len(best.parts) == case["parts"]
    if "changes" in case:
        changes = [{"op": d.op, "quote": d.quote.strip(), "source": d.source.strip()}
                   for d in best.diff if d.op != "equal"]
        assert changes == case["changes"]
    if case.get("straddles"):
        chunks = [checker.index.chunk(i) for i in range(len(checker.index))]
        doc_id, span = best.citation.doc_id, best.citation.span
        assert not any(c.doc_id == doc_id and c.start <= span.start and span.end <= c.end for c in chunks)
        assert any(c.doc_id == doc_id and c.start <= span.start < c.end for c in chunks)
    if case.get("longer_than_chunk"):
        longest = max(int(r[2] - r[1]) for r in checker.index.chunk_rows)
        assert len(best.citation.text) > longest
    return check


# --- normalisation ---------------------------------------------------------------------------


def test_normalize_maps_back_to_original_offsets() -> None:
    text = "Kim\u2019s  \u201cview\u201d \u2014 the mi-\ngration of \ufb01sh in 1998\u20132004\u00a0was cafe\u0301 news."
    norm = normalize(text)
    assert norm.text == "Kim's \"view\"-the migration of fish in 1998-2004 was caf\u00e9 news."
    assert len(norm.starts) == len(norm.ends) == len(norm.text)
    assert all(0 <= s < e <= len(text) for s, e in zip(norm.starts, norm.ends))
    assert list(norm.starts) == sorted(norm.starts)
    a = norm.text.index("migration")
    start, end = norm.original(a, a + len("migration"))
    assert text[start:end] == "mi-\ngration"
    a = norm.text.index("fish")
    assert text[slice(*norm.original(a, a + 4))] == "\ufb01sh"


def test_normalize_steps_can_be_left_out() -> None:
    assert normalize("a \u2014 b", frozenset({"whitespace"})).text == "a \u2014 b"
    assert normalize("a  \u2014\n b", frozenset({"whitespace", "dashes"})).text == "a-b"
    assert normalize("a -- b").text == normalize("a\u2013b").text == "a-b"
    assert normalize("hyphen-\nation", frozenset()).text == "hyphen-\nation"
    assert normalize("AI-\ndriven").text == "AIdriven"  # a line break between letters drops the hyphen
    assert normalize("2004-\n2005").text == "2004-2005"  # ...but not between digits


@pytest.mark.parametrize(("quote", "source", "needed"), [
    ("same text here", "same text here", ()),
    ("Kim's view", "Kim\u2019s view", ("quotes",)),
    ("1998-2004", "1998\u20132004", ("dashes",)),
    ("a long\nline", "a long line", ("whitespace",)),
    ("the migration", "the mi-\ngration", ("hyphenation",)),
    ("the final", "the \ufb01nal", ("nfkc",)),
    ("the council", "The council", ("case",)),
    ("\u201cIce talks\u201d \u2014 said", '"Ice talks" - said', ("quotes", "dashes")),
    ("\u00abIce talks\u00bb said", '"Ice talks" said', ("quotes",)),
    ("\u2039Ice talks\u203a said", "'Ice talks' said", ("quotes",)),
    ("a 5\u2033 pipe", 'a 5" pipe', ("quotes",)),
])
def test_needed_normalizations(quote: str, source: str, needed: tuple[str, ...]) -> None:
    assert needed_normalizations(quote, source) == needed


def test_metrics_and_quotes_straighten_the_same_quote_marks() -> None:
    marks = "\u00ab\u00bb\u2039\u203a\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2032\u2033"
    assert set(marks) == set(QUOTE_MARKS)
    assert set(QUOTE_MARKS.values()) == {"'", '"'}
    for mark, straight in QUOTE_MARKS.items():
        assert metrics.normalize_answer(mark) == normalize(mark).text == straight, hex(ord(mark))
        assert normalize(mark, frozenset({"quotes"})).text == straight, hex(ord(mark))
        text = f"Kim said {mark}ice  talks{mark} were over"
        expected = f"kim said {straight}ice talks{straight} were over"
        assert metrics.normalize_answer(text) == normalize(text).text.casefold() == expected
    for plain in "'\"":  # ASCII quotes stay as they are in both
        assert metrics.normalize_answer(plain) == normalize(plain).text == plain


def test_normalisation_imports_neither_metrics_nor_quotes() -> None:
    path = Path(__file__).resolve().parent.parent / "assistant" / "textnorm.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name and name.startswith("assistant")}


def test_bounds_cut_the_original_text_per_token() -> None:
    text = "Kim\u2019s  \u201cview\u201d  ends."
    norm = normalize(text)
    assert isinstance(norm, Normalized)
    tokens = word_spans(norm.text)
    bounds = norm.bounds(tokens)
    assert len(bounds) == len(tokens) + 1 and bounds[0] == 0 and bounds[-1] == len(text)
    assert [text[a:b] for a, b in zip(bounds, bounds[1:])] == ["Kim", "\u2019", "s  ", "\u201c", "view", "\u201d  ",
                                                               "ends", "."]


def test_word_diff_pairs_a_shorter_stretch_with_the_words_it_resembles() -> None:
    quote, source = "the council approved the pier", "the council did not approve the pier"
    norm = normalize(quote).strip()
    part = Part(quote, norm, word_spans(norm.text))
    src = normalize(source)
    tokens = word_spans(src.text)
    bounds = src.bounds(tokens)
    equal, ops = word_diff(part, [src.text[a:b] for a, b in tokens],
                           [source[a:b] for a, b in zip(bounds, bounds[1:])])
    assert equal == 4.0
    assert ops == [DiffOp("equal", "the council ", "the council "), DiffOp("delete", "", "did not "),
                   DiffOp("replace", "approved ", "approve "), DiffOp("equal", "the pier", "the pier")]
    assert "".join(d.source for d in ops) == source and "".join(d.quote for d in ops) == quote
    assert Step._fields == ("op", "src_from", "src_to", "quote_from", "quote_to")


# --- cases on the small test corpus (fake encoder) -----------------------------------------------


@pytest.mark.parametrize("case", FAKE_CASES, ids=_ids(FAKE_CASES))
def test_quote_cases(fake_checker: QuoteChecker, case: dict) -> None:
    _assert_case(fake_checker, case)


def test_cases_cover_every_verdict_and_shape() -> None:
    kinds = {key for case in FAKE_CASES for key in ("straddles", "longer_than_chunk", "parts", "occurrences")
             if key in case}
    assert kinds == {"straddles", "longer_than_chunk", "parts", "occurrences"}
    assert {case["expected"] for case in FAKE_CASES} == {"verbatim", "altered", "absent"}


def test_repeated_sentence_reports_every_occurrence_in_order(fake_checker: QuoteChecker) -> None:
    check = fake_checker.check("The lighthouse keeper counted forty-two ships in the harbour.")
    text = fake_checker.index.by_id["harbour"].text
    sentence = "The lighthouse keeper counted forty-two ships in the harbour."
    expected = [i for i in range(len(text)) if text.startswith(sentence, i)]
    assert [m.citation.span.start for m in check.matches] == expected and len(expected) == 3


def test_one_changed_word_in_a_long_quote_is_never_verbatim(fake_checker: QuoteChecker) -> None:
    text = fake_checker.index.by_id["chronicle"].text.split("\n\n")[1].strip()
    for old, new, change in (("1887", "1888", ("replace", "1888", "1887")),
                             ("grew well", "grew not well", ("insert", "not", "")),
                             ("three measures", "four measures", ("replace", "four", "three")),
                             ("a church", "a Church", ("replace", "Church", "church")),
                             ("came from as far", "came from as far as far", ("insert", "as far", ""))):
        check = fake_checker.check(text.replace(old, new))
        assert check.verdict == "altered", (old, new)
        assert check.score > 0.97
        changed = [(d.op, d.quote.strip(), d.source.strip()) for d in check.matches[0].diff if d.op != "equal"]
        assert changed == [change]


def test_elision_parts_must_be_in_order_and_close(fake_checker: QuoteChecker) -> None:
    out_of_order = fake_checker.check("planted willows to hold the earth ... Every spring the river rose")
    assert out_of_order.verdict != "verbatim"
    quote = "The valley was settled by farmers ... planted barley, rye and later potatoes"
    assert fake_checker.check(quote).verdict == "verbatim"
    strict = QuoteChecker(fake_checker.index, fake_checker.encoder, fake_checker.retriever, QuoteSettings(max_gap=20))
    assert strict.check(quote).verdict != "verbatim"


def test_elision_parts_have_their_own_spans(fake_checker: QuoteChecker) -> None:
    check = fake_checker.check("Every spring the river rose [\u2026] planted willows to hold the earth in place.")
    match = check.matches[0]
    doc = fake_checker.index.by_id[match.citation.doc_id].text
    assert [doc[p.start : p.end] for p in match.parts] == [
        "Every spring the river rose", "planted willows to hold the earth in place."]
    assert "elision" in check.notices[0]


def test_surrounding_quotation_marks_are_not_part_of_the_quote(fake_checker: QuoteChecker) -> None:
    check = fake_checker.check("\u201cThe harbour master said the dredging was never finished on time.\u201d")
    assert check.verdict == "verbatim" and check.matches[0].exact
    assert check.quote == "The harbour master said the dredging was never finished on time."
    assert check.notices


@pytest.mark.parametrize("quote", ["in the harbour", "   ", "... the ... harbour ...", "forty-two ships"])
def test_too_short_quotes_are_refused(fake_checker: QuoteChecker, quote: str) -> None:
    with pytest.raises(InputError, match="fewer than 4 words"):
        fake_checker.check(quote)


def test_bad_input_is_refused(fake_checker: QuoteChecker) -> None:
    with pytest.raises(InputError, match="must be text"):
        fake_checker.check(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="at most"):
        QuoteChecker(fake_checker.index, fake_checker.encoder, fake_checker.retriever,
                     QuoteSettings(max_chars=50)).check(
            "The lighthouse keeper counted forty-two ships in the harbour and more.")
    with pytest.raises(InputError, match="altered_threshold"):
        QuoteSettings(altered_threshold=0)


def test_json_round_trip_has_the_issue_shape(fake_checker: QuoteChecker) -> None:
    for quote in ("The council approved the new pier in 2019.", "The valley was settled by farmers ... later potatoes",
                  "The lighthouse was painted bright green by volunteers last summer."):
        check = fake_checker.check(quote)
        data = json.loads(json.dumps(check.to_dict()))
        assert {"quote", "verdict", "score", "matches"} <= set(data)
        for match in data["matches"]:
            assert {"doc_id", "title", "source", "start", "end", "text", "exact", "normalizations", "diff"} <= set(match)
            assert all(set(d) == {"op", "quote", "source"} for d in match["diff"])
            for part in match["parts"]:
                assert match["text"][part["start"] - match["start"] : part["end"] - match["start"]] == part["text"]
        assert QuoteCheck.from_dict(data) == check
    assert data["verdict"] == "absent" and data["nearest"]


def test_assistant_check_quote_builds_the_checker_once(fake_settings_quotes: Settings) -> None:
    assistant = Assistant.open(fake_settings_quotes, FakeEncoder())
    first = assistant.check_quote("In 2021 the port handled 74% of the region's grain exports")
    checker = assistant._quote_checker
    second = assistant.check_quote("the harbour master said the dredging was never finished on time")
    assert assistant._quote_checker is checker
    assert first.verdict == "altered" and second.verdict == "verbatim"
    assert [d.source for d in first.matches[0].diff if d.op == "replace"] == ["47"]


# --- the seed corpus with the real model -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("case", SEED_CASES, ids=_ids(SEED_CASES))
def test_seed_quotes(seed_checker: QuoteChecker, case: dict) -> None:
    _assert_case(seed_checker, case)


@pytest.mark.slow
def test_seed_dev_set_is_all_covered() -> None:
    dev = _cases(SEED_QUOTES)
    assert len(dev) >= 9 and {c["expected"] for c in dev} == {"verbatim", "altered", "absent"}


# --- paraphrase: not a quote, closest in meaning -------------------------------------------------------

PARAPHRASES = _cases(SEED_PARAPHRASES)


@pytest.mark.slow
def test_a_paraphrase_is_not_a_quote_but_names_the_sentence_closest_in_meaning(seed_checker: QuoteChecker) -> None:
    quote = ("Samsung and SK Hynix will now need a licence from the American president before buying US equipment "
             "for their Chinese factories.")
    check = seed_checker.check(quote)
    assert check.verdict == "paraphrase" and check.score < seed_checker.altered_threshold
    (match,) = check.matches
    assert match.citation.doc_id == "001_c4102580e4b6b722" and not match.exact and match.diff == ()
    assert match.citation.text.startswith("Samsung and SK Hynix will now be expected to seek a license")
    assert seed_checker.paraphrase_threshold <= match.score < 1.0
    _assert_offsets(seed_checker.index, check)
    assert QuoteCheck.from_dict(json.loads(json.dumps(check.to_dict()))) == check
    for unrelated in ("The recipe calls for two cups of flour and a pinch of salt.",
                      "The moon is made of green cheese, according to the ministry of dairy."):
        check = seed_checker.check(unrelated)
        assert check.verdict == "absent" and check.matches == () and check.nearest


@pytest.mark.slow
def test_paraphrase_precision_on_the_dev_set(seed_checker: QuoteChecker) -> None:
    """Measured with the threshold of QuoteSettings: precision 1.00 (17 called), recall 0.81 (of 21)."""
    assert len(PARAPHRASES) >= 40 and {c["expected"] for c in PARAPHRASES} == {"paraphrase", "absent"}
    called, right = 0, 0
    for case in PARAPHRASES:
        check = seed_checker.check(case["quote"])
        assert check.verdict in ("paraphrase", "absent"), (case["id"], check.verdict)  # none is a quote
        if check.verdict == "paraphrase":
            called += 1
            right += case["expected"] == "paraphrase" and check.matches[0].citation.doc_id == case["source"]
    paraphrases = sum(c["expected"] == "paraphrase" for c in PARAPHRASES)
    assert right / called >= 1.0
    assert right / paraphrases >= 0.80


# --- command line --------------------------------------------------------------------------------


def _run(*args: str, stdin: str | None = None) -> object:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


def _dirs(settings: Settings) -> list[str]:
    return ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]


@pytest.mark.slow
def test_cli_quote_json(seed_index: Settings) -> None:
    quote = "Kim's comments have been edited and condensed for clarity."
    result = _run("quote", quote, "--json", *_dirs(seed_index))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verdict"] == "verbatim" and data["score"] == 1.0 and data["quote"] == quote
    match = data["matches"][0]
    assert match["doc_id"] == "001_c4102580e4b6b722" and match["exact"] is False
    assert match["normalizations"] == ["quotes"]
    text = (seed_index.corpus_dir / f"{match['doc_id']}.txt").read_text(encoding="utf-8")
    assert text[match["start"] : match["end"]] == match["text"] == "Kim\u2019s comments have been edited and condensed for clarity."


@pytest.mark.slow
def test_cli_quote_human_output(seed_index: Settings) -> None:
    result = _run("quote", "The session, scheduled for Sept. 20-21, comes as the United States prepares",
                  *_dirs(seed_index))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("altered (score 0.")
    assert "001_c4102580e4b6b722.txt, characters" in result.stdout
    assert "[-24-]{+20+}" in result.stdout and "[-25-]{+21+}" in result.stdout
    result = _run("quote", "The coalition aims to streamline the development of AI-driven offense applications ... "
                  "to predictive logistical modeling for the armed forces.", *_dirs(seed_index))
    assert result.exit_code == 0 and result.stdout.startswith("altered")
    assert "[-defense-]{+offense+} applications \u2026 to predictive" in result.stdout
    assert "part chars 735-790" in result.stdout
    result = _run("quote", "Seoul will host the 2027 AI Safety Summit.", *_dirs(seed_index))
    assert result.exit_code == 0 and result.stdout.startswith("absent")
    assert "for context only" in result.stdout
    result = _run("quote", "Engineers are now writing the first safety rules for the shared data platforms.",
                  *_dirs(seed_index))
    assert result.exit_code == 0 and result.stdout.startswith("paraphrase")
    assert "Not verified: not a quote; closest in meaning:" in result.stdout
    assert "meaning similarity 0." in result.stdout and "Technical teams are currently drafting" in result.stdout


@pytest.mark.slow
def test_cli_quote_from_file(seed_index: Settings, tmp_path: Path) -> None:
    path = tmp_path / "quote.txt"
    path.write_text("The Embassy's staff was very welcoming\nand supportive of my research.\n", encoding="utf-8")
    result = _run("quote", "--file", str(path), "--json", *_dirs(seed_index))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verdict"] == "verbatim" and data["matches"][0]["normalizations"] == ["whitespace"]
    result = _run("quote", "--file", "-", "--json", *_dirs(seed_index), stdin=path.read_text())
    assert json.loads(result.stdout)["verdict"] == "verbatim"


@pytest.mark.slow
def test_cli_quote_errors_exit_2(seed_index: Settings, tmp_path: Path) -> None:
    result = _run("quote", "too short", *_dirs(seed_index))
    assert result.exit_code == 2 and "fewer than 4 words" in result.stderr
    result = _run("quote", *_dirs(seed_index))
    assert result.exit_code == 2 and "--file" in result.stderr
    result = _run("quote", "--file", str(tmp_path / "missing.txt"), *_dirs(seed_index))
    assert result.exit_code == 2 and "cannot read the quote" in result.stderr
    result = _run("quote", "a quote of enough words", "--index", str(tmp_path / "none"))
    assert result.exit_code == 2 and "assistant index" in result.stderr
