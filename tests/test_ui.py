"""The app through its edges: gradio_client against a launched demo, HTTP against the source view.

One server for the session (tests/conftest.py) on a free 127.0.0.1 port, over the seed corpus
plus the hostile documents of tests/data/hostile, indexed with the real model.
"""

from __future__ import annotations

import re
import os
import subprocess
import sys
from collections.abc import Iterator
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError
from conftest import HOSTILE, ON_MILVUS, REPO, dev_questions, edited_gold, write_question_set

from assistant.config import DEFAULT_READER
from assistant.pipeline import Assistant
from assistant.types import Citation, Span, format_citation
from assistant.ui import build_demo, create_app, exposure_warning, running
from assistant.ui.handlers import Handlers
from assistant.ui.render import ABSTAIN_MESSAGE, safe_url, source_link, text

DOC = "000_e5c0c9823818600b"

# Tags and attributes the app itself writes into answers, quote results and the source view;
# anything else in the HTML would have come from a document.
ALLOWED_TAGS = {"div", "p", "blockquote", "mark", "strong", "a", "details", "summary", "ol", "li", "span", "br",
                "del", "ins", "table", "caption", "thead", "tbody", "tr", "th", "td", "code", "section", "h3",
                "dl", "dt", "dd",  # and, in the source view's page:
                "html", "head", "meta", "title", "style", "body", "header", "main", "h1", "h2", "script"}
ALLOWED_ATTRS = {"class", "href", "target", "rel", "title", "role", "id", "tabindex", "aria-label", "scope",
                 "open", "lang", "charset", "name", "content", "nonce"}


class TagCollector(HTMLParser):
    """Every start tag with its attributes, and the text of every <script> element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def assert_inert(html: str, *, page: bool = False) -> None:
    """No tag, attribute, link or script in ``html`` that the app did not write itself."""
    parser = TagCollector()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, f"unexpected <{tag}> in rendered HTML"
        assert set(attrs) <= ALLOWED_ATTRS, f"unexpected attributes {set(attrs) - ALLOWED_ATTRS} on <{tag}>"
        if tag == "a":
            assert attrs["href"].startswith(("/source?", "/", "#")), attrs["href"]
        if tag == "script":
            assert page and "nonce" in attrs and "src" not in attrs
    assert all("__pwned" not in s for s in parser.scripts)
    if not page:
        # Markdown and template syntax must never reach the chat's renderer as such.
        for syntax in ("![", "](", "{{", "${", "$x"):
            assert syntax not in html, f"{syntax!r} left uninterpreted-proof in {html[:200]}"


@pytest.fixture
def client(server: str, tmp_path: Path) -> Iterator[Client]:
    """A fresh session (its own conversation state) for each test."""
    client = Client(server, verbose=False, download_files=str(tmp_path))
    yield client
    client.close()


def ask(client: Client, question: str, k: int = 5, docs: list[str] | None = None) -> tuple[list[dict], str, dict]:
    """(chat history, citation, response JSON) for one question in the client's session."""
    _, chat, citation, payload = client.predict(question, [], k, docs or [], api_name="/ask")
    return chat, citation, payload


def last_message(chat: list[dict]) -> str:
    content = chat[-1]["content"]
    return content if isinstance(content, str) else "".join(c.get("text", "") for c in content)


# --- rendering, without a server ------------------------------------------------------------


@pytest.mark.parametrize("hostile", [
    "<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "![x](http://example.com/x.png)",
    "[x](javascript:alert(1))", "{{constructor}}", "${alert(1)}", "$x^2$", "**bold** _it_ `code`",
    "line one\n\n![after a blank line](http://example.com/y.png)", "a\u2028b\r\nc",
])
def test_text_leaves_nothing_to_interpret(hostile: str) -> None:
    out = text(hostile)
    assert unescape(out.replace("<br>", "\n")) == hostile.replace("\r", "").replace("\u2028", "\n")
    assert not set("<>[](){}!$*_`'\"") & set(out.replace("<br>", ""))
    assert "\n" not in out


def test_a_citation_is_written_one_way() -> None:
    full = Citation("memo", Span(3, 10), " grew. ", "Budget Memo", "memo.docx", "Ana Pérez", "2024-03", 2)
    assert format_citation(full) == "“Budget Memo”, Ana Pérez, 2024-03, p. 2"
    assert format_citation(full, sep=" · ") == "“Budget Memo” · Ana Pérez · 2024-03 · p. 2"
    assert (format_citation(full, place=True, quote=True)
            == "“grew.” — “Budget Memo”, Ana Pérez, 2024-03, p. 2, memo.docx, characters 3–10.")
    bare = Citation("memo", Span(0, 4), "Memo", "Memo", "https://example.org/memo")
    assert format_citation(bare, place=True) == "“Memo”, https://example.org/memo, characters 0–4"


def test_only_web_links_are_links() -> None:
    assert safe_url("https://example.org/a") == "https://example.org/a"
    assert safe_url("javascript:alert(1)") is None and safe_url("data:text/html,x") is None
    assert safe_url("//example.org") is None and safe_url(None) is None


# --- Ask ------------------------------------------------------------------------------------


@pytest.mark.parametrize("qid", ["d02", "d05", "d06"])
def test_dev_question_gets_its_gold_answer_highlighted(client: Client, qid: str) -> None:
    item = dev_questions()[qid]
    chat, citation, payload = ask(client, item["question"])
    gold = item["answers"][0]
    assert payload["answer"] is not None, "the assistant abstained on an answerable question"
    assert gold.lower() in payload["answer"]["text"].lower()
    assert payload["answer"]["doc_id"] in item["sources"]
    message = last_message(chat)
    marked = message.split('<mark class="qa-answer">', 1)[1].split("</mark>", 1)[0]
    assert gold.lower() in unescape(re.sub(r"</?strong[^>]*>", "", marked)).lower()  # the text, phrase tags aside
    phrase = payload["answer"]["phrase"]  # the reader's answer phrase, marked inside the sentence
    assert phrase is not None
    strong = marked.split('<strong class="qa-phrase" title="answer phrase">', 1)[1].split("</strong>", 1)[0]
    assert unescape(strong) == phrase["text"]
    answer = payload["answer"]
    assert source_link(answer["doc_id"], answer["start"], answer["end"]) in message.replace("&amp;", "&")
    assert gold in citation and payload["answer"]["title"] in citation
    assert f"characters {payload['answer']['start']}–{payload['answer']['end']}" in citation


def test_unanswerable_question_abstains_with_weak_matches(client: Client) -> None:
    chat, citation, payload = ask(client, dev_questions()["n03"]["question"])
    assert payload["answer"] is None
    assert payload["passages"], "weak matches must still be shown"
    message = last_message(chat)
    assert ABSTAIN_MESSAGE in unescape(message)
    assert "Weak matches" in message and message.count('class="qa-other"') == len(payload["passages"])
    assert citation == ""


def test_follow_up_uses_the_previous_turn(client: Client) -> None:
    _, _, first = ask(client, "What is the Korean AI strategy?")
    assert not first["follow_up"]
    chat, _, payload = ask(client, "and when was it adopted?")
    assert payload["follow_up"] and payload["query"] == "Korean AI strategy: when was it adopted?"
    assert "Searched for:" in last_message(chat)
    assert payload["answer"] is not None and "2019" in payload["answer"]["text"]


def test_follow_up_without_history_is_searched_as_typed(client: Client) -> None:
    _, _, payload = ask(client, "and when was it adopted?")
    assert not payload["follow_up"] and payload["query"] == "and when was it adopted?"


def test_restrict_to_documents_and_number_of_passages(client: Client) -> None:
    _, _, payload = ask(client, "South Korea AI", k=3, docs=["004_839b94e0d721e6c8"])
    assert 1 <= len(payload["passages"]) <= 3
    assert {p["doc_id"] for p in payload["passages"]} == {"004_839b94e0d721e6c8"}


def test_library_error_is_shown_with_its_message(client: Client) -> None:
    with pytest.raises(AppError, match="the question is empty"):
        ask(client, "\x00\x01")


def test_empty_question_is_a_gentle_warning_not_an_error(client: Client) -> None:
    _, chat, citation, payload = client.predict("   ", [], 5, [], api_name="/ask")
    unchanged = (None, [], {"__type__": "update"})  # gr.skip(): the outputs are left as they were
    assert payload in unchanged and chat in unchanged


def test_hostile_document_is_rendered_inert_in_answers(client: Client) -> None:
    chat, citation, payload = ask(client, "Who founded the amber kite festival of Quillmoor?", k=10)
    assert any(p["doc_id"] == HOSTILE for p in payload["passages"])
    hostile_text = next(p["text"] for p in payload["passages"] if p["doc_id"] == HOSTILE)
    assert "<script>" in hostile_text or "Quillmoor" in hostile_text
    for message in chat:
        content = message["content"] if isinstance(message["content"], str) else message["content"][0]["text"]
        assert_inert(content)


# --- Check a quote ----------------------------------------------------------------------------


QUOTES = {
    "verbatim": "Cybersecurity is a part of the AI implications on international peace and security",
    "altered": "Cybersecurity is a part of the AI implications on international trade and security",
    "absent": "The moon is made of green cheese, according to the ministry of dairy.",
}


@pytest.mark.parametrize("verdict", list(QUOTES))
def test_quote_check_gives_each_verdict(client: Client, verdict: str) -> None:
    html, data = client.predict(QUOTES[verdict], api_name="/check_quote")
    assert data["verdict"] == verdict
    assert f'class="qa-badge qa-{verdict}"' in html and verdict.title() in html
    if verdict == "absent":
        assert not data["matches"]
    else:
        match = data["matches"][0]
        link = source_link(match["doc_id"], match["start"], match["end"])
        assert match["doc_id"] == "001_c4102580e4b6b722" and link in html.replace("&amp;", "&")
    if verdict == "altered":
        assert '<del title="in the source">peace</del> <ins title="in the quote">trade</ins>' in html
    assert_inert(html)


def test_empty_quote_is_a_gentle_warning(client: Client) -> None:
    html, data = client.predict("  ", api_name="/check_quote")
    assert data in (None, {"__type__": "update"})


# --- Evaluate and Library -----------------------------------------------------------------------


def test_evaluate_uploaded_question_set(client: Client, tmp_path: Path) -> None:
    path = write_question_set(tmp_path / "small.jsonl", ("d02", "d06", "n03"))
    html, table, files, summary = client.predict(handle_file(str(path)), 5, api_name="/evaluate")
    assert summary["questions"] == 3 and summary["answerable"] == 2 and summary["unanswerable"] == 1
    assert "hit@1" in unescape(html) and "answer_accuracy" in unescape(html)
    assert len(table["data"]) == 3 and {row[1] for row in table["data"]} == {"d02", "d06", "n03"}
    names = {Path(f).name: Path(f) for f in files}
    assert "results.jsonl" in names and "summary.json" in names
    assert len(names["results.jsonl"].read_text(encoding="utf-8").splitlines()) == 3


def test_evaluate_reports_progress_per_question(assistant: Assistant, tmp_path: Path) -> None:
    path = write_question_set(tmp_path / "small.jsonl", ("d02", "d05", "n03"))
    calls: list[object] = []
    html, rows, files, summary, runs = Handlers(assistant, tmp_path).evaluate(
        str(path), 5, progress=lambda value, **kwargs: calls.append(value))
    assert calls[0] == 0 and calls[-1] == (3, 3)
    assert [c for c in calls if isinstance(c, tuple)] == [(1, 3), (2, 3), (3, 3)]
    assert all(Path(f).parent.parent == tmp_path for f in files)


def test_evaluate_keeps_the_sessions_runs_and_compares_two(assistant: Assistant, tmp_path: Path) -> None:
    handlers = Handlers(assistant, tmp_path)
    ids = ("d02", "d06", "n03")
    *_, summary, runs = handlers.evaluate(str(write_question_set(tmp_path / "base.jsonl", ids)), 10, [],
                                          progress=lambda *a, **kw: None)
    *_, runs = handlers.evaluate(str(edited_gold(tmp_path / "edited.jsonl", ids, "d02")), 10, runs,
                                 progress=lambda *a, **kw: None)
    assert summary["hit@10"] == 1.0  # both answerable questions are hits in the first run
    labels = [r["label"] for r in runs]
    assert [label.split(" · ")[:3] for label in labels] == [
        ["Run 1: base.jsonl", f"reader {assistant.reader_stamp['name']}", "k 10"],
        ["Run 2: edited.jsonl", f"reader {assistant.reader_stamp['name']}", "k 10"]]
    a, b = Handlers.run_choices(runs)
    assert (a.choices, a.value, b.value) == ([(label, label) for label in labels], labels[0], labels[1])
    html = unescape(Handlers.compare(labels[0], labels[1], runs))
    assert_inert(Handlers.compare(labels[0], labels[1], runs))
    assert "3 question(s) in both runs" in html and "1 with different gold labels: d02" in html
    assert "Note: the runs were made differently, so a delta may come from that and not from one change: " \
           "question set" in html  # the same model, reader, index and settings: only the set's gold differs
    assert "<td>hit@10</td><td>2</td><td>1.0000</td><td>0.5000</td><td>-0.5000</td>" in html
    assert "<td>hit@10</td><td>1 → 0</td><td>1</td><td>d02</td>" in html


def test_evaluate_refuses_a_bad_question_set_with_its_message(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "x1", "question": ""}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValidationError, match="line 2"):  # checked before the run, shown beside the upload
        client.predict(handle_file(str(path)), 5, api_name="/evaluate")


def test_library_lists_documents_and_index_status(client: Client, assistant: Assistant) -> None:
    html = client.predict(api_name="/library")
    assert "all-MiniLM-L6-v2" in unescape(html) and "Up to date" in html
    assert f"{DEFAULT_READER} ({assistant.reader.fingerprint})" in unescape(html)  # the reader that answers
    assert assistant.index.manifest["created_at"] in unescape(html)
    assert html.count("/source?doc=") == len(assistant.index.documents)
    assert "<script>" in unescape(html) and "<script" not in html  # the hostile title, as text
    assert_inert(html)


# --- the source view ----------------------------------------------------------------------------


def test_source_view_shows_the_document_with_the_span_marked(server: str, assistant: Assistant) -> None:
    text = assistant.index.by_id[DOC].text
    start = text.index("The Korean AI Strategy was adopted in 2019")
    end = text.index(".", start) + 1
    response = httpx.get(f"{server}/source", params={"doc": DOC, "start": start, "end": end})
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    marked = page.split('<mark id="cited"', 1)[1].split(">", 1)[1].split("</mark>", 1)[0]
    assert marked == text[start:end]
    assert "Exploring AI, Diplomacy, and Multilateralism in Korea" in page
    assert_inert(page, page=True)


def test_source_view_of_a_hostile_document_is_inert(server: str, assistant: Assistant) -> None:
    text = assistant.index.by_id[HOSTILE].text
    start = text.index("<script>")
    response = httpx.get(f"{server}/source", params={"doc": HOSTILE, "start": start, "end": start + 40})
    assert response.status_code == 200
    assert "&lt;script&gt;window.__pwned" in response.text
    assert "javascript:" not in response.text.split("<dt>Link</dt>", 1)[1].split("</dd>", 1)[0].split(">", 1)[0]
    assert_inert(response.text, page=True)


@pytest.mark.parametrize("doc", [
    "../etc/passwd",
    "../../../../../../etc/passwd",
    "/etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..\\..\\etc\\passwd",
    f"{DOC}.txt",
    f"../corpus/{DOC}",
    f"./{DOC}",
    "hostile/../" + DOC,
    "file:///etc/passwd",
    "",
])
def test_source_view_refuses_anything_but_a_corpus_document(server: str, doc: str) -> None:
    response = httpx.get(f"{server}/source", params={"doc": doc})
    assert response.status_code == (404 if doc else 400)
    assert "root:" not in response.text
    assert "Source not available" in response.text


@pytest.mark.parametrize("raw", [
    "doc=..%2F..%2F..%2Fetc%2Fpasswd",
    "doc=%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "doc=%2Fetc%2Fpasswd",
    "doc=%00",
])
def test_source_view_refuses_encoded_paths(server: str, raw: str) -> None:
    response = httpx.get(f"{server}/source?{raw}")
    assert response.status_code == 404 and "root:" not in response.text


def test_source_view_refuses_bad_spans(server: str, assistant: Assistant) -> None:
    length = len(assistant.index.by_id[DOC].text)
    for start, end in (("-1", "5"), ("5", "x"), ("10", "5"), ("0", str(length + 1))):
        response = httpx.get(f"{server}/source", params={"doc": DOC, "start": start, "end": end})
        assert response.status_code == 400, (start, end)


def test_gradio_file_route_serves_no_corpus_or_system_file(server: str, assistant: Assistant) -> None:
    corpus_file = (assistant.settings.corpus_dir / f"{DOC}.txt").resolve()
    for path in ("/etc/passwd", str(corpus_file), quote(str(corpus_file))):
        response = httpx.get(f"{server}/gradio_api/file={path}")
        assert response.status_code in (403, 404), path


# --- exposure and login -------------------------------------------------------------------------


def test_exposure_warning_only_for_other_hosts_without_password() -> None:
    assert exposure_warning("127.0.0.1", None) is None
    assert exposure_warning("localhost", None) is None
    assert exposure_warning("::1", None) is None
    assert exposure_warning("0.0.0.0", ("u", "p")) is None
    warning = exposure_warning("0.0.0.0", None)
    assert warning and "0.0.0.0" in warning and "ASSISTANT_PASSWORD" in warning


def test_app_prints_the_warning_and_a_clean_error(tmp_path: Path) -> None:
    env = {**os.environ, "ASSISTANT_HOST": "0.0.0.0", "ASSISTANT_INDEX": str(tmp_path / "missing"),
           "ASSISTANT_CORPUS": str(tmp_path)}
    if ON_MILVUS:  # the app on a Milvus store that holds no index
        env["ASSISTANT_STORE"] = f"milvus-lite:{tmp_path / 'missing.db'}"
    env.pop("ASSISTANT_PASSWORD", None)
    result = subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "WARNING: serving on 0.0.0.0" in result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_password_protects_the_app_and_the_source_view(assistant: Assistant) -> None:
    demo = build_demo(assistant)
    with running(create_app(demo, assistant, auth=("reader", "s3cret"))) as srv, httpx.Client(base_url=srv.url) as http:
        assert http.get("/source", params={"doc": DOC}).status_code == 401
        assert http.post("/login", data={"username": "reader", "password": "wrong"}).status_code >= 400
        assert http.post("/login", data={"username": "reader", "password": "s3cret"}).status_code == 200
        response = http.get("/source", params={"doc": DOC})
        assert response.status_code == 200 and "Exploring AI" in response.text
