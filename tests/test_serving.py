"""Serving while re-indexing, and under load.

Each rebuild rewrites every document so that all its sentences name the corpus *generation*
they belong to. A response made from one index version has every passage, and its answer,
cut from that generation's texts at the right offsets; a response that mixed versions
(offsets of one applied to the texts of another, or passages of two) fails the check. Both
the library (LiveAssistant under threads) and the app (gradio_client against a served app,
during `assistant index`) are driven while the index is rebuilt, and the new index must be
picked up without a restart. The load test of bench/load.py runs in short against the app.
The FakeEncoder keeps all this fast; the model plays no part in it.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from assistant.config import Settings
from assistant.pipeline import Assistant, LiveAssistant
from assistant.store import build_index, current_version
from assistant.ui import build_demo, create_app, running
from conftest import REPO, FakeEncoder, folder_version

sys.path.insert(0, str(REPO / "bench"))
from load import loopback_url, run_load  # noqa: E402

FACTS = {
    "otters": "sea otters hold hands while they sleep",
    "lighthouse": "the lighthouse keeper counted the ships in the harbour",
    "glacier": "the glacier advances two metres every day",
    "copper": "the copper mine produced a million tonnes of ore",
}
QUESTIONS = ["Why do sea otters hold hands?", "How many ships did the lighthouse keeper count?",
             "How fast does the glacier advance?", "How much ore did the copper mine produce?"]
QUOTE = "the lighthouse keeper counted the ships in the harbour"


def corpus_texts(generation: int) -> dict[str, str]:
    """The documents of one generation; every sentence names it, and lengths differ between them."""
    texts = {}
    for topic, fact in FACTS.items():
        sentences = [f"In generation {generation} {fact}."]
        sentences += [f"Note {n} of generation {generation} about {topic} is here{'!' * (generation % 3)}."
                      for n in range(12 + generation)]
        texts[topic] = f"# {topic.title()} {generation}\n\n" + " ".join(sentences) + "\n"
    return texts


def write_generation(settings: Settings, generation: int) -> dict[str, str]:
    texts = corpus_texts(generation)
    for topic, text in texts.items():
        (settings.corpus_dir / f"{topic}.md").write_text(text, encoding="utf-8")
    return texts


def generation_of(spans: list[dict], generations: dict[int, dict[str, str]]) -> int | None:
    """The one generation whose texts every span (doc_id, start, end, text) was cut from.

    Fails on a span of no generation and on spans of different generations (a mixed
    response); None when several generations would explain all the spans alike.
    """
    assert spans, "a response without passages"
    possible = set(generations)
    for span in spans:
        named = {int(g) for g in re.findall(r"generation (\d+)", span["text"])}
        matching = {g for g, texts in generations.items()
                    if texts.get(span["doc_id"], "")[span["start"] : span["end"]] == span["text"]
                    and named <= {g}}
        assert matching, f"a span from no complete index version: {span['doc_id']} {span['start']}-{span['end']}"
        possible &= matching
        assert possible, "a response mixing index versions"
    return possible.pop() if len(possible) == 1 else None


def response_spans(payload: dict) -> list[dict]:
    """The spans of an ask response (passages and answer) as JSON."""
    return list(payload["passages"]) + ([payload["answer"]] if payload.get("answer") else [])


def quote_spans(check: dict) -> list[dict]:
    """The spans of a quote check as JSON: each match and the sentences around it."""
    spans = []
    for match in check["matches"]:
        spans.append(match)
        spans.append({"doc_id": match["doc_id"], "start": match["context_start"], "end": match["context_end"],
                      "text": match["context"]})
    return spans


@pytest.fixture
def live_settings(tmp_path: Path) -> Settings:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", model="fake-encoder",
                        chunk_tokens=40, chunk_overlap=8)
    settings.corpus_dir.mkdir()
    return settings


def test_live_assistant_under_threads_follows_rebuilds_without_mixing(live_settings: Settings) -> None:
    generations = {0: write_generation(live_settings, 0)}
    build_index(live_settings, FakeEncoder())
    live = LiveAssistant(Assistant.open(live_settings, FakeEncoder()))
    last = 3
    seen: dict[int, list[int]] = {n: [] for n in range(6)}
    errors: list[str] = []
    stop = threading.Event()

    def worker(number: int) -> None:
        request = 0
        while not stop.is_set():
            assistant = live.current()  # once per request, as the app does
            try:
                if request % 4 == 3:
                    spans = quote_spans(assistant.check_quote(QUOTE).to_dict())
                else:
                    spans = response_spans(assistant.ask(QUESTIONS[request % 4]).to_dict())
                generation = generation_of(spans, generations)
                if generation is not None:
                    seen[number].append(generation)
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            request += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in seen]
    for thread in threads:
        thread.start()
    try:
        for generation in range(1, last + 1):
            _wait(lambda g=generation - 1: all(g in s for s in seen.values()) or errors, "every thread to answer")
            generations[generation] = write_generation(live_settings, generation)
            build_index(live_settings, FakeEncoder())
        _wait(lambda: all(last in s for s in seen.values()) or errors, "every thread to use the last index")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    for answered in seen.values():
        assert answered == sorted(answered), "a thread went back to an older index"
        assert answered[-1] == last
    assert folder_version(live.current().index) == current_version(live_settings.index_dir)
    assert live.last_error is None


def _wait(condition, what: str, seconds: float = 120) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings, dict[int, dict[str, str]]]]:
    """The app over the corpus, with a LiveAssistant, on a free 127.0.0.1 port, for the module.

    Yields its URL, its settings and the texts of each generation built so far (a test that
    rebuilds adds its generations).
    """
    root = tmp_path_factory.mktemp("served")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", model="fake-encoder",
                        chunk_tokens=40, chunk_overlap=8)
    settings.corpus_dir.mkdir()
    generations = {0: write_generation(settings, 0)}
    (root / "outside.txt").write_text("The vault code is 4711.")
    (settings.corpus_dir / "secret.txt").symlink_to(root / "outside.txt")  # never followed
    (settings.corpus_dir / "passwd.txt").symlink_to("/etc/passwd")
    build_index(settings, FakeEncoder())
    live = LiveAssistant(Assistant.open(settings, FakeEncoder()))
    demo = build_demo(live)
    with running(create_app(demo, live)) as srv:
        yield srv.url, settings, generations


def test_app_answers_from_one_index_while_rebuilding_and_picks_up_the_new_one(served, tmp_path: Path) -> None:
    url, settings, generations = served
    first = max(generations)
    last = first + 2
    seen: dict[int, list[int]] = {n: [] for n in range(4)}
    errors: list[str] = []
    stop = threading.Event()

    def client(number: int) -> None:
        session = Client(url, verbose=False, download_files=str(tmp_path))
        try:
            request = 0
            while not stop.is_set():
                try:
                    if request % 3 == 2:
                        spans = quote_spans(session.predict(QUOTE, api_name="/check_quote")[-1])
                    else:
                        question = QUESTIONS[(number + request) % 4]
                        spans = response_spans(session.predict(question, [], 5, [], api_name="/ask")[-1])
                    generation = generation_of(spans, generations)
                    if generation is not None:
                        seen[number].append(generation)
                except Exception as exc:  # noqa: BLE001 - every failure is reported below
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                request += 1
        finally:
            session.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in seen]
    for thread in threads:
        thread.start()
    try:
        for generation in range(first + 1, last + 1):
            _wait(lambda g=generation - 1: all(g in s for s in seen.values()) or errors, "every client to answer")
            generations[generation] = write_generation(settings, generation)
            build_index(settings, FakeEncoder())
        _wait(lambda: all(last in s for s in seen.values()) or errors, "every client to use the last index")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    for answered in seen.values():
        assert answered == sorted(answered) and answered[-1] == last

    fresh = Client(url, verbose=False, download_files=str(tmp_path))  # a new visitor, no restart
    try:
        payload = fresh.predict(QUESTIONS[0], [], 5, [], api_name="/ask")[-1]
        assert generation_of(response_spans(payload), generations) == last
        library = fresh.predict(api_name="/library")
        live = Assistant.open(settings.with_(reader="none"), FakeEncoder()).index  # the store's live version
        assert folder_version(live) == current_version(settings.index_dir) and live.version in unescape(library)
    finally:
        fresh.close()
    passage = payload["passages"][0]
    page = httpx.get(f"{url}/source", params={"doc": passage["doc_id"]}).text
    assert f"generation {last}" in page and f"generation {last - 1} " not in page


def test_short_load_run_has_no_failures(served) -> None:
    url, _, _ = served
    # The duration only caps a run that hangs: on a busy machine (two test workers) 60 requests may take minutes.
    figures = run_load(url, clients=20, requests=3, duration=600)
    assert figures["failures"] == [] and figures["failed"] == 0
    assert figures["ok"] == 60 and figures["ask"]["ok"] == 40 and figures["quote"]["ok"] == 20
    assert figures["p50_ms"] is not None and figures["p95_ms"] >= figures["p50_ms"]


def test_a_page_gets_its_next_result_on_the_stream_it_has_open(served) -> None:
    """A page's stream of results stays open between its events (assistant.ui.server.HeldEventStream).

    Gradio closed it after each last pending event; a page whose next event was joined just
    then could miss the close, open no new stream, and never get that event's result (the
    likely cause of the browser tests' rare two-minute waits). Here, as such a page: join, read
    the result, join again once the first is done, and read the second result on the same stream.
    """
    url, _, _ = served
    session = "stream-test"
    ask_fn = next(d["id"] for d in httpx.get(f"{url}/config").json()["dependencies"] if d["api_name"] == "ask")

    def join(client: httpx.Client, question: str) -> str:
        body = {"data": [question, [], [], 5, []], "fn_index": ask_fn, "session_hash": session,
                "event_data": None, "trigger_id": None}
        response = client.post("/gradio_api/queue/join", json=body)
        assert response.status_code == 200, response.text
        return response.json()["event_id"]

    with httpx.Client(base_url=url, timeout=120) as client:
        first = join(client, QUESTIONS[0])
        completed, second = [], None
        with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                message = json.loads(line.removeprefix("data:")) if line.startswith("data:") else {}
                assert message.get("msg") != "close_stream", f"the stream closed after {completed}"
                if message.get("msg") == "process_completed":
                    assert message["success"], message
                    completed.append(message["event_id"])
                    if second is None:
                        second = join(client, QUESTIONS[1])
                    else:
                        break
    assert completed == [first, second]


@pytest.mark.parametrize("url", ["http://0.0.0.0:7860", "http://192.168.1.4:7860", "https://example.org/"])
def test_load_script_drives_only_this_machine(url: str) -> None:
    with pytest.raises(ValueError, match="only drives an app on this machine"):
        loopback_url(url)
    assert loopback_url("http://127.0.0.1:7860") == "http://127.0.0.1:7860"


# --- paths and exposure: what tests/test_ui.py does not already cover ------------------------------


@pytest.mark.parametrize("doc", ["secret", "secret.txt", "passwd", "passwd.txt"])
def test_symlinked_file_outside_the_corpus_is_not_served(served, doc: str) -> None:
    url, settings, _ = served
    assert (settings.corpus_dir / "secret.txt").is_symlink()
    response = httpx.get(f"{url}/source", params={"doc": doc})
    assert response.status_code == 404 and "4711" not in response.text and "root:" not in response.text


@pytest.mark.parametrize("path", [
    "../../../../../../etc/passwd",
    "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "..%2f..%2f..%2f..%2fetc%2fpasswd",
    "{corpus}/secret.txt",
    "{corpus}/../outside.txt",
    "{corpus}/otters.md",
])
def test_file_route_serves_nothing_from_disk(served, path: str) -> None:
    url, settings, _ = served
    path = path.format(corpus=settings.corpus_dir)
    response = httpx.get(f"{url}/gradio_api/file={path}")
    assert response.status_code in (403, 404), path
    assert "4711" not in response.text and "root:" not in response.text and "In generation" not in response.text


@pytest.mark.parametrize("host", ["::", "192.168.1.5", "10.0.0.1", "example.org", "localhost.example.org"])
def test_exposure_warning_for_every_address_that_is_not_loopback(host: str) -> None:
    from assistant.ui import exposure_warning

    warning = exposure_warning(host, None)
    assert warning and host in warning and "ASSISTANT_PASSWORD" in warning
    assert exposure_warning(host, ("reader", "s3cret")) is None
