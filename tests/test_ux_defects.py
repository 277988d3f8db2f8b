"""The defects of issue 13, each checked where a user meets it: the browser, the app's API, the CLI.

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
