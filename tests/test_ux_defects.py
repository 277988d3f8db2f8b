"""The defects of issue 13 and of the review after it, each checked where a user meets it: the browser,
the app's API, the CLI.

Browser tests reuse test_browser's Chromium, contexts (nothing may leave 127.0.0.1, no dialog may
fire) and helpers; app tests reuse conftest's served app over the seed corpus.
"""

from __future__ import annotations

import re
import shutil
from html import unescape
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from gradio_client import Client, handle_file
from gradio_client.exceptions import ValidationError
from test_browser import (  # noqa: F401
    DESKTOP,
    PHONE,
    TIMEOUT,
    ask,
    browser,
    context,
    expect,
    open_tab,
    page,
    watch,
)
from conftest import REPO, dev_questions, write_question_set

from assistant.cli import main
from assistant.config import Settings
from assistant.corpus import load_corpus
from assistant.pipeline import Assistant, LiveAssistant
from assistant.store import build_index
from assistant.ui import build_demo, create_app, running
from assistant.ui.handlers import Handlers
from assistant.ui.render import ABSTAIN_MESSAGE

SEED_INTERVIEW = "000_e5c0c9823818600b"
BINARY = bytes(range(256)) * 4  # NUL bytes and bytes that are not UTF-8
LATIN1 = 'id,question,answers,sources\nq1,Où est le café ?,café,\n'.encode("latin-1")
browser_test = pytest.mark.browser


def _viewports() -> pytest.MarkDecorator:
    return pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280px", "390px"])


# --- 1. a new answer comes into view at its top ---------------------------------------------------


@browser_test
@_viewports()
def test_an_abstention_comes_into_view_with_its_verdict(page, viewport: dict) -> None:
    page.set_viewport_size(viewport)
    ask(page, dev_questions()["d02"]["question"])  # an answer before it: the chat has content to scroll
    card = ask(page, "What is the capital of Peru?")
    expect(card.locator(".qa-abstain")).to_be_in_viewport(ratio=1, timeout=TIMEOUT)
    weak = card.locator("details.qa-others")
    expect(weak.locator("li.qa-other").first).to_be_hidden()  # weak matches start collapsed
    weak.locator("summary").click()
    expect(weak.locator("li.qa-other").first).to_be_visible()


@browser_test
@_viewports()
def test_the_cut_question_notice_comes_into_view(page, viewport: dict) -> None:
    page.set_viewport_size(viewport)
    question = dev_questions()["d02"]["question"] + " Korea industries" * 150  # over 2,000 characters
    card = ask(page, question)
    notice = card.locator(".qa-notice")
    expect(notice).to_contain_text("cut to that length")
    expect(notice).to_be_in_viewport(ratio=1, timeout=TIMEOUT)
    expect(card.locator("mark.qa-answer")).to_be_attached()


# --- 2. a follow-up with a pronoun keeps the person the answer was about ---------------------------


@browser_test
def test_follow_up_with_a_pronoun_keeps_the_person(page) -> None:
    ask(page, "Who was interviewed about his fellowship in Seoul?")
    card = ask(page, "Where was he based?")
    expect(card.locator(".qa-query")).to_contain_text("Michal Natorski")
    expect(card.locator("mark.qa-answer")).to_contain_text("Dutch Embassy")


# --- 3. passage cards: the link apart from the text, no raw fusion score ---------------------------


@browser_test
def test_passage_cards_keep_the_link_apart_and_show_no_raw_score(page) -> None:
    card = ask(page, dev_questions()["d02"]["question"])
    card.locator("summary", has_text="Other passages").click()
    item = card.locator("li.qa-other").first
    cite, snippet = item.locator(".qa-cite"), item.locator(".qa-snippet")
    expect(snippet).to_be_visible()
    cite_box, snippet_box = cite.bounding_box(), snippet.bounding_box()
    assert snippet_box["y"] >= cite_box["y"] + cite_box["height"] - 1, "the passage text runs into the link line"
    expect(cite).to_contain_text("also matched")
    expect(card).not_to_contain_text(re.compile(r"score \d"))
    expect(card.locator(".qa-cite").first).to_contain_text(re.compile(r"confidence \d\.\d\d"))  # the answer's


# --- 4. an unreadable question set is explained once, in the user's terms -------------------------


@browser_test
@pytest.mark.parametrize(("name", "data", "problem"), [("binary.jsonl", BINARY, "is not a text file"),
                                                       ("latin1.csv", LATIN1, "is not UTF-8 text")])
def test_unreadable_question_set_is_explained_once(page, tmp_path: Path, name: str, data: bytes,
                                                   problem: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    open_tab(page, "Evaluate")
    page.locator("#eval-file input[type=file]").set_input_files(str(path))
    expect(page.locator("#eval-file")).to_contain_text(path.stem, timeout=TIMEOUT)
    page.get_by_role("button", name="Run evaluation").click()
    message = page.get_by_text(problem)
    expect(message).to_have_count(1, timeout=TIMEOUT)
    expect(message).to_contain_text(name)
    body = page.locator("body")
    for leak in ("/tmp", "gradio/", "codec", "position", "0x80"):
        expect(body).not_to_contain_text(leak)
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)


def test_unreadable_question_set_through_the_api(server: str, tmp_path: Path) -> None:
    path = tmp_path / "binary.jsonl"
    path.write_bytes(BINARY)
    client = Client(server, verbose=False, download_files=str(tmp_path))
    try:
        with pytest.raises(ValidationError, match="binary.jsonl” is not a text file") as raised:
            client.predict(handle_file(str(path)), 5, api_name="/evaluate")
    finally:
        client.close()
    assert "/tmp" not in str(raised.value) and "codec" not in str(raised.value)


@pytest.mark.parametrize(("name", "data", "problem"), [("binary.jsonl", BINARY, "is not a text file"),
                                                       ("latin1.csv", LATIN1, "is not UTF-8 text (line 2 ")])
def test_unreadable_question_set_on_the_command_line(seed_index: Settings, tmp_path: Path, name: str,
                                                     data: bytes, problem: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    result = CliRunner().invoke(main, ["eval", str(path), "--corpus", str(seed_index.corpus_dir),
                                       "--index", str(seed_index.index_dir)], catch_exceptions=False)
    assert result.exit_code == 2
    assert problem in result.stderr and name in result.stderr
    assert "codec" not in result.stderr and "Traceback" not in result.stderr


# --- 5. accessibility -------------------------------------------------------------------------------


@browser_test
def test_results_files_tables_and_messages_have_readable_names(page, tmp_path: Path) -> None:
    card = ask(page, dev_questions()["d02"]["question"])
    expect(card).to_be_visible()
    labelled = page.locator("#chat [aria-label*='message']")
    expect(labelled.first).to_be_attached()
    expect(page.locator("#chat [aria-label*='<']")).to_have_count(0, timeout=TIMEOUT)  # no HTML source
    words = " ".join(card.inner_text().split()[:8])  # the answer's own words, as the card shows them
    expect(labelled.last).to_have_attribute("aria-label", re.compile("^" + re.escape(f"bot's message: {words}")),
                                            timeout=TIMEOUT)

    open_tab(page, "Evaluate")
    path = write_question_set(tmp_path / "small.jsonl", ("d02", "d06", "n03"))
    page.locator("#eval-file input[type=file]").set_input_files(str(path))
    expect(page.locator("#eval-file")).to_contain_text("small.jsonl", timeout=TIMEOUT)
    page.get_by_role("button", name="Run evaluation").click()
    expect(page.locator("#eval-summary")).to_contain_text("answer_accuracy", timeout=TIMEOUT)
    files = page.locator("#eval-files")
    for name in ("results.jsonl", "results.csv", "summary.json", "report.md"):
        expect(files.get_by_role("link", name=re.compile(re.escape(name)))).to_be_visible()
    expect(files.get_by_role("button", name=re.compile("Remove"))).to_have_count(0)
    for header in ("Hit rank", "Confidence"):
        cell = page.locator("#eval-table th", has_text=header).first
        expect(cell).to_be_in_viewport(ratio=1)


# --- 6. the seed interview's metadata ---------------------------------------------------------------


def test_seed_interview_names_its_publisher_with_a_note_on_the_text() -> None:
    documents, _ = load_corpus(REPO / "corpus")
    interview = next(d for d in documents if d.doc_id == SEED_INTERVIEW)
    assert interview.metadata.publisher == "UNU-MERIT"
    note = interview.metadata.note or ""
    assert "UNU" in note and "糖心Vlog破解版" in note
    assert "糖心Vlog破解版-MERIT" in interview.text  # the text itself is left as published


def test_source_view_and_library_show_the_publisher_and_the_note(server: str) -> None:
    page = httpx.get(f"{server}/source", params={"doc": SEED_INTERVIEW}).text
    publisher = page.split("<dt>Publisher</dt><dd>", 1)[1].split("</dd>", 1)[0]
    assert publisher == "UNU-MERIT"
    assert "<dt>Note</dt>" in page and "United Nations University" in page
    client = Client(server, verbose=False)
    try:
        library = client.predict(api_name="/library")
    finally:
        client.close()
    row = unescape(library).split("Exploring AI, Diplomacy, and Multilateralism in Korea", 1)[1].split("</tr>", 1)[0]
    assert "<td>UNU-MERIT</td>" in row and "Vlog" not in row


# --- 7. the document filter follows the live index --------------------------------------------------


@browser_test
def test_document_filter_lists_a_document_indexed_after_start(context, ui_settings: Settings, real_encoder,
                                                              tmp_path: Path) -> None:
    shutil.copytree(ui_settings.corpus_dir, tmp_path / "corpus")
    shutil.copytree(ui_settings.index_dir, tmp_path / "index")
    settings = ui_settings.with_(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    live = LiveAssistant(Assistant.open(settings, real_encoder))
    with running(create_app(build_demo(live), live)) as srv:
        page = context.new_page()
        page.goto(srv.url)
        expect(page.get_by_label("Question")).to_be_visible(timeout=TIMEOUT)
        (tmp_path / "corpus" / "lighthouse.txt").write_text(
            "The Velmora Lighthouse\n\nThe lighthouse of Velmora was lit for the first time in 1887.\n",
            encoding="utf-8")
        build_index(settings, real_encoder)  # what `assistant index` does, while the app is serving
        page.get_by_role("button", name="Options").click()
        page.get_by_label("Only search these documents").click()
        expect(page.get_by_role("option", name=re.compile("The Velmora Lighthouse"))).to_be_visible(timeout=TIMEOUT)


# --- 8. a refused check leaves no earlier verdict on screen --------------------------------------

VERBATIM = "Cybersecurity is a part of the AI implications on international peace and security"
DRAFT_WITH_QUOTE = f"The report says “{VERBATIM}”, as the ministry put it."
MALFORMED = '{"id": "bad", "question": "x" "answers": []}\n'


@browser_test
def test_a_refused_quote_check_clears_the_verdict_before_it(page) -> None:
    open_tab(page, "Check a quote")
    result, box = page.locator("#quote-result"), page.get_by_label("Quote")
    box.fill(VERBATIM)
    page.get_by_role("button", name="Check quote").click()
    expect(result.locator(".qa-badge")).to_have_text("Verbatim", timeout=TIMEOUT)
    for refused, reason in (("AI", "The quote has 1 word(s)"), ("", "Paste a quote to check first.")):
        box.fill(refused)
        page.get_by_role("button", name="Check quote").click()
        expect(result.locator(".qa-refused")).to_contain_text(reason, timeout=TIMEOUT)
        expect(result.locator(".qa-badge, .qa-match")).to_have_count(0)
        box.fill(VERBATIM)
        page.get_by_role("button", name="Check quote").click()
        expect(result.locator(".qa-badge")).to_have_text("Verbatim", timeout=TIMEOUT)


@browser_test
def test_a_refused_draft_check_clears_the_table_before_it(page) -> None:
    open_tab(page, "Check a quote")
    result = page.locator("#quote-result")
    page.get_by_label("Quote").fill(DRAFT_WITH_QUOTE)
    page.get_by_role("button", name="Check every quotation").click()
    expect(result.locator("table caption")).to_have_text("Quotations in the draft (1)", timeout=TIMEOUT)
    expect(page.locator("#draft-files")).to_be_visible()
    page.get_by_label("Quote").fill("Prose without any quotation marks in it at all, just words.")
    page.get_by_role("button", name="Check every quotation").click()
    expect(result.locator(".qa-refused")).to_contain_text("No quotation of", timeout=TIMEOUT)
    expect(result.locator("table, .qa-badge")).to_have_count(0)
    expect(page.locator("#draft-files")).to_be_hidden()  # no downloads of the table that went


def test_a_refused_comparison_replaces_the_one_before_it(assistant: Assistant) -> None:
    runs = [{"label": "Run 1", "dir": "/nowhere/1"}, {"label": "Run 2", "dir": "/nowhere/2"}]
    for a, b, said in (("Run 1", "Run 1", "Choose two different runs to compare."),
                       (None, "Run 2", "Run two evaluations first")):
        html = Handlers(assistant).compare(a, b, runs)
        assert isinstance(html, str) and 'class="qa-refused"' in html and said in unescape(html)
        assert "<table" not in html


# --- 9. a rejected question set: its own name, the app's own remedy, every word readable ------------


@browser_test
def test_a_rejected_question_set_is_named_readable_and_can_be_skipped(page, tmp_path: Path) -> None:
    path = write_question_set(tmp_path / "mixed.jsonl", ("d02",))
    path.write_text(path.read_text(encoding="utf-8") + MALFORMED, encoding="utf-8")
    open_tab(page, "Evaluate")
    page.locator("#eval-file input[type=file]").set_input_files(str(path))
    message = page.locator("#eval-file .validation-error")  # said on upload, before any run
    expect(message).to_contain_text("Question set “mixed.jsonl” has 1 problem(s)", timeout=TIMEOUT)
    expect(message).to_contain_text("or tick “Skip invalid lines”")
    for leak in ("/tmp", "gradio/", "--skip-invalid"):
        expect(page.locator("body")).not_to_contain_text(leak)
    upload, box = page.locator("#eval-file").bounding_box(), message.bounding_box()
    assert upload["x"] <= box["x"] and box["x"] + box["width"] <= upload["x"] + upload["width"] + 1
    assert message.evaluate("e => e.scrollWidth <= e.clientWidth && e.scrollHeight <= e.clientHeight")
    page.get_by_label("Skip invalid lines").check()
    expect(message).to_have_count(0, timeout=TIMEOUT)
    page.get_by_role("button", name="Run evaluation").click()
    expect(page.locator("#eval-summary")).to_contain_text("answer_accuracy", timeout=TIMEOUT)
    expect(page.locator("#eval-table tbody tr")).to_have_count(1)


def test_question_set_problem_names_the_upload_not_the_temp_path(assistant: Assistant, tmp_path: Path) -> None:
    path = tmp_path / "gradio" / "1c53edde" / "malformed.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(MALFORMED, encoding="utf-8")
    [verdict, *rest] = Handlers(assistant).check_question_set(str(path), 5, [])
    assert not verdict["is_valid"] and all(v["is_valid"] for v in rest)
    assert verdict["message"].startswith("Question set “malformed.jsonl” has 1 problem(s):")
    assert str(tmp_path) not in verdict["message"] and "--skip-invalid" not in verdict["message"]
    assert verdict["message"].endswith("Fix these lines, or tick “Skip invalid lines” to run the other questions.")


# --- 10. the document filter, the pass mark, and small wording ---------------------------------------


def _asked(assistant: Assistant, question: str, docs: list[str]) -> list[dict]:
    _, history, *_ = Handlers(assistant).ask(question, [], [], 5, docs)
    return history


def test_an_unanswered_question_says_how_many_documents_the_filter_left(assistant: Assistant) -> None:
    total = len(assistant.index.documents)
    question = dev_questions()["n03"]["question"]
    filtered = _asked(assistant, question, [SEED_INTERVIEW])[-1]["content"]
    assert ABSTAIN_MESSAGE in unescape(filtered)
    assert f"Searched 1 of {total} documents (chosen in Options)." in unescape(filtered)
    assert "Searched" not in unescape(_asked(assistant, question, [])[-1]["content"])


def test_a_cut_question_is_shown_as_it_was_searched(assistant: Assistant) -> None:
    limit = assistant.settings.max_question_chars
    question = dev_questions()["d02"]["question"] + " Korea industries" * 150
    shown = unescape(_asked(assistant, question, [])[0]["content"].replace("<br>", "\n"))
    assert question[:limit] in shown and question[: limit + 10] not in shown and shown.endswith("…</div>")


def test_the_pass_mark_is_a_check_mark_not_a_square_root(assistant: Assistant, tmp_path: Path) -> None:
    path = write_question_set(tmp_path / "one.jsonl", ("n03",))
    _, rows, *_ = Handlers(assistant, tmp_path).evaluate(str(path), 5, progress=lambda *a, **k: None)
    assert rows[0][0] == "✔ pass" and "√" not in rows[0][0] and "✓" not in rows[0][0]


def test_a_paraphrase_says_not_a_quote_once(assistant: Assistant) -> None:
    html, data = Handlers(assistant).check_quote("Engineers are now writing the first safety rules for the "
                                                 "shared data platforms.")
    assert data["verdict"] == "paraphrase"
    assert unescape(html).lower().count("not a quote; closest in meaning") == 1


def test_check_quote_on_a_draft_points_to_checking_every_quotation(assistant: Assistant) -> None:
    draft = ('Kim said "Cybersecurity is an important part of the discussion" and added that '
             '"The Embassy\'s staff was very welcoming and supportive of my research."')
    html, data = Handlers(assistant).check_quote(draft)
    assert data is None and "holds 2 quotations" in unescape(html) and "Check every quotation" in unescape(html)
    html, data = Handlers(assistant).check_quote('"The Embassy\'s staff was very welcoming and supportive of my research."')
    assert data["verdict"] == "verbatim"  # one quote in its marks is still one quote


def test_copy_citation_after_a_declined_answer_says_there_is_nothing_to_cite() -> None:
    with pytest.warns(UserWarning) as said:
        Handlers.copied("")
    message = str(said[0].message)
    assert "no answer to cite" in message and "ask a question first" not in message
