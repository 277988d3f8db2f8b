"""The app in a real headless Chromium (Debian's, driven by Playwright).

One server for the session (tests/conftest.py, shared with test_ui.py) and one browser for the
module; each test gets a fresh browser context in which every request that would leave
127.0.0.1 is blocked and recorded, and every dialog is recorded, so each test also proves that
nothing phoned home and no alert() fired.
Elements are found by role, label or elem_id, and waits use Playwright's polling ``expect``.
Screenshots of each tab at desktop and phone width go to test-output/screenshots/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import HOSTILE, REPO, dev_questions, write_question_set

from assistant.config import DEFAULT_READER
from assistant.pipeline import Assistant
from assistant.ui.render import source_link

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO / "test-output" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT = 120_000  # ms: how long to wait for the app, never a speed check (`make bench` measures speed); two test workers share 2 cores


def _contains(fragment: str) -> re.Pattern[str]:
    return re.compile(re.escape(fragment))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watch:
    """What a page did that it must not: requests off 127.0.0.1, dialogs, page errors."""

    def __init__(self) -> None:
        self.external: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def context(browser, watch: Watch) -> Iterator[object]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=None)

    def guard(route) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", None) or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            watch.external.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    context.on("page", lambda page: _watch_page(page, watch))
    yield context
    context.close()
    assert watch.external == [], f"requests left 127.0.0.1: {watch.external}"
    assert watch.dialogs == [], f"dialogs fired: {watch.dialogs}"


def _watch_page(page, watch: Watch) -> None:
    page.on("dialog", lambda dialog: (watch.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: watch.errors.append(str(error)))


@pytest.fixture
def page(context, server: str):
    page = context.new_page()
    page.goto(server)
    expect(page.get_by_label("Question")).to_be_visible(timeout=TIMEOUT)
    return page


def shoot(page, name: str) -> None:
    """Full-page screenshots at desktop and phone width; the phone view must not scroll sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    expect(page.locator("body")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.screenshot(path=SCREENSHOTS / f"{name}-phone.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    assert overflow <= 0, f"the {name} view scrolls sideways by {overflow}px at 390 px"


def ask(page, question: str, *, keyboard: bool = False):
    """Ask in the chat and return the locator of the new answer card."""
    cards = page.locator("#chat .qa-card")
    before = cards.count()
    box = page.get_by_label("Question")
    box.fill(question)
    if keyboard:
        box.press("Enter")
    else:
        page.get_by_role("button", name="Ask", exact=True).click()
    expect(cards).to_have_count(before + 1, timeout=TIMEOUT)
    return cards.last


def download(page, files: str, name: str, path: Path) -> Path:
    """Click the visible download link of ``name`` in the file list ``files``; save it at ``path``."""
    link = page.locator(f"{files} a[download='{name}']")
    expect(link).to_be_visible()
    with page.expect_download() as started:
        link.click()
    started.value.save_as(path)
    return path


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")


# --- Ask ------------------------------------------------------------------------------------


def test_dev_question_shows_the_gold_answer_highlighted(page) -> None:
    item = dev_questions()["d02"]
    card = ask(page, item["question"])
    expect(card.locator("mark.qa-answer")).to_contain_text(item["answers"][0])
    expect(card.locator("mark.qa-answer strong.qa-phrase")).to_have_count(1)  # the answer phrase, inside
    expect(page.get_by_role("log")).to_contain_text(item["question"])  # the chat is a live log
    expect(card.get_by_role("link", name="Open in source")).to_be_visible()
    expect(card.locator(".qa-cite").first).to_contain_text("Exploring AI, Diplomacy, and Multilateralism in Korea")
    expect(card.locator("summary", has_text="Other passages")).to_be_visible()
    citation = page.get_by_label("Citation of the latest answer")
    expect(citation).to_have_value(_contains(item["answers"][0]))
    page.get_by_role("button", name="Copy citation").click()
    expect(page.get_by_text("Citation copied to the clipboard.")).to_be_visible()
    page.wait_for_function("async () => (await navigator.clipboard.readText()).includes('shipbuilding')",
                           timeout=TIMEOUT)
    shoot(page, "ask")


def test_source_link_opens_the_document_with_the_span_highlighted(page, context, assistant: Assistant) -> None:
    item = dev_questions()["d05"]
    card = ask(page, item["question"])
    answer = card.locator("mark.qa-answer")
    expect(answer).to_contain_text(item["answers"][0])
    with context.expect_page() as opened:
        card.get_by_role("link", name="Open in source").first.click()
    source = opened.value
    cited = source.locator("mark#cited")
    expect(cited).to_contain_text(item["answers"][0], timeout=TIMEOUT)
    expect(cited).to_be_in_viewport()
    expect(cited).to_be_focused()
    title = "South Korea Takes on AI Amid Threats at Home and Abroad"
    expect(source.get_by_role("heading", level=1)).to_have_text(title)
    expect(source.locator("#span-info")).to_contain_text("Cited span: characters")
    source.set_viewport_size(PHONE)
    source.screenshot(path=SCREENSHOTS / "source-phone.png")
    source.set_viewport_size(DESKTOP)
    source.screenshot(path=SCREENSHOTS / "source-desktop.png")


def test_unanswerable_question_shows_the_abstention_message(page) -> None:
    card = ask(page, dev_questions()["n03"]["question"])
    expect(card.locator(".qa-abstain")).to_contain_text("The sources don't appear to answer this.")
    expect(card.locator("mark.qa-answer")).to_have_count(0)
    weak = card.locator("details.qa-others")
    expect(weak.locator("summary")).to_contain_text("Weak matches")
    expect(weak.locator("li.qa-other").first).to_be_hidden()  # collapsed: the verdict comes first
    weak.locator("summary").click()
    expect(weak.locator("li.qa-other").first).to_be_visible()
    expect(page.get_by_label("Citation of the latest answer")).to_have_value("")


def test_follow_up_question_uses_the_previous_turn(page) -> None:
    first = ask(page, "What is the Korean AI strategy?", keyboard=True)
    expect(first.locator(".qa-query")).to_have_count(0)
    card = ask(page, "and when was it adopted?", keyboard=True)
    expect(card.locator(".qa-query")).to_contain_text("Searched for: “Korean AI strategy: when was it adopted?”")
    expect(card.locator("mark.qa-answer")).to_contain_text("2019")
    shoot(page, "ask-follow-up")
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("#chat .qa-card")).to_have_count(0)
    card = ask(page, "and when was it adopted?", keyboard=True)  # no conversation: searched as typed
    expect(card.locator(".qa-query")).to_have_count(0)


def test_empty_question_gets_a_gentle_warning(page) -> None:
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.get_by_text("Type a question about the documents first.")).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("#chat .qa-card")).to_have_count(0)


def test_keyboard_only_can_reach_and_use_the_ask_button(page) -> None:
    box = page.get_by_label("Question")
    box.fill(dev_questions()["d06"]["question"])
    box.focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Ask", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#chat mark.qa-answer").last).to_contain_text("Cho Hyun", timeout=TIMEOUT)


# --- Check a quote ----------------------------------------------------------------------------


QUOTES = {
    "verbatim": "Cybersecurity is a part of the AI implications on international peace and security",
    "altered": "Cybersecurity is a part of the AI implications on international trade and security",
    "absent": "The moon is made of green cheese, according to the ministry of dairy.",
}


def test_quote_check_shows_each_verdict(page) -> None:
    open_tab(page, "Check a quote")
    result = page.locator("#quote-result")
    for verdict in ("absent", "verbatim", "altered"):
        page.get_by_label("Quote").fill(QUOTES[verdict])
        page.get_by_role("button", name="Check quote").click()
        expect(result.locator(".qa-badge")).to_have_text(verdict.title(), timeout=TIMEOUT)
        if verdict != "absent":
            expect(result.get_by_role("link", name="Open in source").first).to_be_visible()
    expect(result.locator(".qa-diff del").first).to_contain_text("peace")
    expect(result.locator(".qa-diff ins").first).to_contain_text("trade")
    shoot(page, "quote")


# --- Evaluate and Library -----------------------------------------------------------------------


def test_upload_a_question_set_and_download_its_results(page, tmp_path: Path) -> None:
    path = write_question_set(tmp_path / "small.jsonl", ("d02", "d06", "n03"))
    open_tab(page, "Evaluate")
    page.locator("#eval-file input[type=file]").set_input_files(str(path))
    expect(page.locator("#eval-file")).to_contain_text("small.jsonl", timeout=TIMEOUT)
    page.get_by_role("button", name="Run evaluation").click()
    expect(page.locator("#eval-summary")).to_contain_text("answer_accuracy", timeout=TIMEOUT)
    expect(page.locator("#eval-table")).to_contain_text("n03")
    saved = download(page, "#eval-files", "results.jsonl", tmp_path / "downloaded.jsonl")
    rows = [json.loads(line) for line in saved.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == ["d02", "d06", "n03"]
    shoot(page, "evaluate")


def test_library_lists_documents_and_index_status(page, assistant: Assistant) -> None:
    open_tab(page, "Library")
    library = page.locator("#library")
    expect(library).to_contain_text("Up to date", timeout=TIMEOUT)
    expect(library).to_contain_text("all-MiniLM-L6-v2")
    expect(library).to_contain_text(f"{DEFAULT_READER} ({assistant.reader.fingerprint})")
    # a row per document, and the status rows: status, model, reader, built, version, contents
    expect(library.locator("tbody tr")).to_have_count(len(assistant.index.documents) + 6)
    shoot(page, "library")


# --- hostile documents and paths ---------------------------------------------------------------


def test_hostile_document_is_inert_text_everywhere(page, context, server: str, assistant: Assistant,
                                                   watch: Watch) -> None:
    card = ask(page, "Who founded the amber kite festival of Quillmoor?")
    expect(card).to_contain_text("Quillmoor")
    # The documents' markup is shown as text: titles, authors and passages alike.
    card.locator("summary").first.click()
    expect(card).to_contain_text("“The <b>Quillmoor</b> Kite Almanac <script>window.__pwned='title'</script>”")
    expect(card).to_contain_text("<img src=x onerror=\"window.__pwned='author'\">Orla Fenwick")
    expect(card).to_contain_text('<img src="http://example.com/flag.png" onerror="window.__pwned = \'md-onerror\'">')
    expect(card).to_contain_text("![green pennant](http://example.com/pennant.png")
    page.get_by_role("button", name="Options").click()
    page.get_by_label("Only search these documents").click()
    expect(page.get_by_role("option", name="<script>window.__pwned='title'</script>")).to_be_visible()
    page.keyboard.press("Escape")
    open_tab(page, "Library")
    expect(page.locator("#library")).to_contain_text("<script>window.__pwned='title'</script>", timeout=TIMEOUT)
    text = assistant.index.by_id[HOSTILE].text
    start = text.index("<script>")
    source = context.new_page()
    source.goto(server + source_link(HOSTILE, start, text.index("$x^2$")))
    expect(source.locator("mark#cited")).to_contain_text("<img src=x onerror=")
    expect(source.get_by_role("heading", level=1)).to_contain_text("<script>")
    for view in (page, source):
        assert view.evaluate("typeof window.__pwned") == "undefined"
        assert view.locator("img[src='x'], iframe, svg[onload]").count() == 0
    shoot(source, "source-hostile")
    assert watch.errors == [], watch.errors


def test_path_outside_the_corpus_is_refused(context, server: str) -> None:
    page = context.new_page()
    for doc in ("../../../../etc/passwd", "/etc/passwd", "..%2F..%2Fetc%2Fpasswd"):
        response = page.goto(f"{server}/source?doc={doc}")
        assert response is not None and response.status == 404
        expect(page.get_by_role("alert")).to_contain_text("is not a document of this corpus")
        expect(page.locator("body")).not_to_contain_text("root:")

