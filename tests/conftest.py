"""Shared fixtures: a deterministic fake encoder for fast tests, the real model once per session,
the indexes built with it once per session, and the served app of the UI tests (test_ui.py,
test_browser.py) once per session."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from assistant.runtime import QUERY_THREADS, configure_process

# As the entry points do, before torch, FAISS, gradio or huggingface_hub is loaded: nothing is
# downloaded, and OpenMP threads wait passively, one per process as where questions are answered
# (most of the suite's work; a FAISS search of one question takes about three times as long on
# two). The CLI commands run in this process (CliRunner) then change nothing.
configure_process(threads=QUERY_THREADS)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from assistant import stores  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.layout import Index, current_version  # noqa: E402

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent
EVAL = REPO / "eval"  # the development sets, committed in the repository (see eval/README.md)
SEED_QUESTIONS = EVAL / "seed" / "questions.jsonl"
SEED_QUOTES = EVAL / "seed" / "quotes.jsonl"
SEED_PARAPHRASES = EVAL / "seed" / "paraphrases.jsonl"  # paraphrases and unrelated sentences
SQUAD = EVAL / "squad-sample"
SELQA = EVAL / "selqa-dev"
HOSTILE = "hostile/almanac"  # a document of the app's corpus full of markup, LaTeX and script


REAL_MODEL_FIXTURES = {"real_encoder", "real_reader"}

# Where the Assistants of the suite search (`make test-milvus`): "folder" (the default) or
# "milvus-lite", where every index folder opened without a store is searched in a milvus-lite copy.
TEST_STORES = ("folder", "milvus-lite")
TEST_STORE = os.environ.get("ASSISTANT_TEST_STORE") or "folder"
ON_MILVUS = TEST_STORE == "milvus-lite"


def pytest_configure(config: pytest.Config) -> None:
    if TEST_STORE not in TEST_STORES:
        raise pytest.UsageError(f"ASSISTANT_TEST_STORE must be one of {', '.join(TEST_STORES)}, got {TEST_STORE!r}")
    config.addinivalue_line("markers", "folder_store(reason): searches the index folder in a Milvus run too, "
                                       "for the reason given")


# The two longest tests (the reader's floors: about 2.5 and 2 minutes with their index builds), each opening one half of the
# run: `make test`'s two processes (--dist worksteal) start on one half each, so they run side by side.
LONGEST = ("tests/test_reader.py::test_squad_sample_floors", "tests/test_reader.py::test_selqa_floors")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the real embedding model or the shipped reader, even through another
    fixture, is ``slow``: ``pytest -m "not slow"`` runs only the fast ones. The LONGEST tests
    open the two halves of the run."""
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    longest = [next((i for i in items if i.nodeid == name), None) for name in LONGEST]
    if None in longest:  # a selection without them keeps its order
        return
    rest = [i for i in items if i not in longest]
    half = len(rest) // 2
    items[:] = [longest[0], *rest[:half], longest[1], *rest[half:]]


class MilvusCopies:
    """The pipeline's store seam in a Milvus run (``pipeline.open_index``, ``pipeline.live_version``).

    Settings without a ``store`` get their index folder's live version copied, as `assistant index
    --store` copies it (``stores.publish``), into a milvus-lite file of that folder's own, and
    opened from there; the folder is copied again when its live version changed (a test rebuilt
    it). Each test process has its own files under its own basetemp: milvus-lite opens a file from
    one process at a time, and `make test`'s two processes share the session's indexes (``built_once``).
    """

    def __init__(self) -> None:
        self.root: Path | None = None  # the test process's folder of files, set when the session starts
        self.copies: dict[Path, tuple[str, str | None]] = {}  # index folder -> its store, the version copied there
        self.numbers = itertools.count()
        self.lock = threading.Lock()  # the served app opens and asks from several threads
        self.folder_only = False  # the running test is marked folder_store

    def open_index(self, settings: Settings, model: str | None) -> Index:
        if settings.store or self.folder_only:
            return stores.open_index(settings, model)
        return stores.open_index(settings.with_(store=self._copy(settings)), model)

    def live_version(self, settings: Settings) -> str | None:
        if settings.store or self.folder_only:
            return stores.live_version(settings)
        version = current_version(settings.index_dir)
        store, copied = self.copies.get(Path(settings.index_dir).resolve(), (None, None))
        if store is None or copied != version:
            return version  # not copied yet: it differs from the version served, so the next open copies it
        return stores.live_version(settings.with_(store=store))

    def _copy(self, settings: Settings) -> str:
        """The store holding the folder's live version, copied there first if it is not yet."""
        folder = Path(settings.index_dir).resolve()
        with self.lock:
            version = current_version(folder)
            store = self.copies[folder][0] if folder in self.copies else \
                f"milvus-lite:{self.root / f'{next(self.numbers)}.db'}"
            if self.copies.get(folder) != (store, version):
                stores.publish(settings.with_(store=store))  # the folder's own error when it has no loadable version
                self.copies[folder] = (store, version)
        return store

    def release(self, under: Path) -> None:
        """Stop the milvus-lite servers of the copies of index folders under ``under`` (a test's own
        tmp_path, done with when the test ends), which would otherwise hold a gRPC server and its
        threads each until the process ends."""
        from milvus_lite.server_manager import server_manager_instance

        with self.lock:
            for folder in [f for f in self.copies if f.is_relative_to(under.resolve())]:
                store, _ = self.copies.pop(folder)
                server_manager_instance.release_server(stores.milvus_uri(store))


COPIES = MilvusCopies() if ON_MILVUS else None


@pytest.fixture(scope="session", autouse=True)
def suite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The store the suite searches (ASSISTANT_TEST_STORE): in a Milvus run, the pipeline opens
    every index folder through COPIES."""
    if COPIES is None:
        yield TEST_STORE
        return
    from assistant import pipeline

    COPIES.root = tmp_path_factory.mktemp("milvus")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "open_index", COPIES.open_index)
        patch.setattr(pipeline, "live_version", COPIES.live_version)
        yield TEST_STORE


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """A test marked ``folder_store(reason)`` keeps to the index folder, its module's fixtures too."""
    marker = item.get_closest_marker("folder_store")
    if marker is not None and not (marker.args and marker.args[0]):
        raise pytest.UsageError(f"{item.nodeid}: folder_store needs the reason the test keeps to the folder")
    if COPIES is not None:
        COPIES.folder_only = marker is not None
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """The Milvus copies of a test's own indexes (under its tmp_path) are released after it."""
    own = getattr(item, "funcargs", {}).get("tmp_path")
    try:
        return (yield)
    finally:
        if COPIES is not None and own is not None:
            COPIES.release(own)


def folder_version(index: Index) -> str:
    """The index folder's version an opened index was read from (a Milvus copy records it)."""
    return index.manifest.get("folder_version", index.version)


class FakeEncoder:
    """Bag of hashed words: deterministic, fast, shares words -> similar vectors."""

    name = "fake-encoder"
    dimension = 64

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def encode(self, texts: list[str], *, progress: bool = False, desc: str = "") -> np.ndarray:
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of text per page (Helvetica)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
        content_no = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_no} 0 R >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def make_docx(path: Path, paragraphs: list[str], title: str = "") -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(str(path))


@pytest.fixture
def mini_corpus(tmp_path: Path) -> Path:
    """A small corpus of every format, with a repeated sentence and typographic quotes."""
    corpus = tmp_path / "corpus"
    shutil.copytree(DATA / "mini", corpus)
    (corpus / "report.pdf").write_bytes(make_pdf(["Page one mentions the amber lantern.",
                                                  "Page two mentions the violet harbour."]))
    make_docx(corpus / "memo.docx", ["Memo about the budget.", "The budget grew by 7 percent in 2023."],
              title="Budget Memo")
    return corpus


def fake_assistant_on(tmp_path: Path, texts: dict[str, str], **settings):
    """An assistant with the fake encoder over a corpus of ``texts`` (file name -> content)."""
    from assistant.pipeline import Assistant
    from assistant.store import build_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in texts.items():
        (corpus / name).write_text(text, encoding="utf-8")
    configured = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-encoder", **settings)
    encoder = FakeEncoder()
    build_index(configured, encoder)
    return Assistant.open(configured, encoder)


@pytest.fixture
def fake_settings(tmp_path: Path, mini_corpus: Path) -> Settings:
    return Settings(corpus_dir=mini_corpus, index_dir=tmp_path / "index", model="fake-encoder",
                    chunk_tokens=20, chunk_overlap=4)


@pytest.fixture(scope="session")
def real_encoder():
    """The packaged all-MiniLM-L6-v2, loaded once for the whole session."""
    from assistant.embedding import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder()
    encoder.model  # noqa: B018 - load now, once
    return encoder


@pytest.fixture(scope="session")
def real_reader():
    """The shipped reader (models/reader-v2), loaded once for the whole session."""
    from assistant.config import DEFAULT_READER
    from assistant.reader import load_reader, reader_folder

    return load_reader(reader_folder(DEFAULT_READER))


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, corpus_dir: Path, encoder) -> Settings:
    """``corpus_dir`` indexed with the real model once per run: the first test process (of
    `make test`'s two pytest-xdist workers) to need it builds it, the other waits and reads it.
    The tests only read these indexes."""
    from filelock import FileLock

    from assistant.store import build_index

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    folder = root / f"index-{name}"
    settings = Settings(corpus_dir=corpus_dir, index_dir=folder / "index")
    with FileLock(f"{folder}.lock"):
        if not (folder / "built").exists():
            build_index(settings, encoder)
            (folder / "built").touch()
    return settings


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> Settings:
    """The seed corpus indexed with the real model, shared by the tests that only read it."""
    return built_once(tmp_path_factory, "seed", REPO / "corpus", real_encoder)


@pytest.fixture(scope="session")
def selqa_index(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> Settings:
    """The selqa-dev corpus (244 Wikipedia sections) indexed with the real model, built once."""
    return built_once(tmp_path_factory, "selqa", SELQA / "corpus", real_encoder)


@pytest.fixture(scope="session")
def eval_run(tmp_path_factory: pytest.TempPathFactory, real_encoder):
    """``eval_run(settings, questions, reader)``: the EvalRun of `assistant eval` on a question set
    with a reader ("none" for the hand-tuned scorer), computed once per session and shared."""
    from assistant import evaluation
    from assistant.pipeline import Assistant

    runs: dict[tuple[str, str, str], object] = {}

    def run(settings: Settings, questions: Path, reader: str):
        key = (str(settings.index_dir), str(questions), reader)
        if key not in runs:
            assistant = Assistant.open(settings.with_(reader=reader), real_encoder)
            runs[key] = evaluation.evaluate_file(questions, assistant, tmp_path_factory.mktemp("run"))
        return runs[key]

    return run


@pytest.fixture(scope="session")
def squad_index(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> Settings:
    """The squad-sample corpus (7 articles) indexed with the real model, built once."""
    return built_once(tmp_path_factory, "squad", SQUAD / "corpus", real_encoder)


# --- the app of the UI tests -------------------------------------------------------------------


def dev_questions() -> dict[str, dict]:
    """The seed development question set by id."""
    return {q["id"]: q for q in map(json.loads, SEED_QUESTIONS.read_text(encoding="utf-8").splitlines())}


def write_question_set(path: Path, ids: tuple[str, ...]) -> Path:
    """A small JSONL question set of development questions."""
    questions = dev_questions()
    path.write_text("".join(json.dumps(questions[q]) + "\n" for q in ids), encoding="utf-8")
    return path


def edited_gold(path: Path, ids: tuple[str, ...], changed: str) -> Path:
    """A question set of development questions in which ``changed`` has a gold answer no passage holds."""
    write_question_set(path, ids)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        if row["id"] == changed:
            row["answers"] = ["zebra-striped quantum marmalade"]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def ui_settings(tmp_path_factory: pytest.TempPathFactory, seed_index: Settings, real_encoder) -> Settings:
    """The seed corpus plus the hostile documents of tests/data/hostile (under ``hostile/``): the
    session's seed index is copied and updated, so only the hostile documents are embedded."""
    from assistant.store import build_index

    root = tmp_path_factory.mktemp("app")
    shutil.copytree(seed_index.corpus_dir, root / "corpus")
    shutil.copytree(DATA / "hostile", root / "corpus" / "hostile")
    shutil.copytree(seed_index.index_dir, root / "index")
    settings = seed_index.with_(corpus_dir=root / "corpus", index_dir=root / "index")
    report = build_index(settings, real_encoder)
    assert sorted(report.added) == [HOSTILE, "hostile/signals"]
    return settings


@pytest.fixture(scope="session")
def assistant(ui_settings: Settings, real_encoder):
    """The app's Assistant (test_retrieval.py has its own fixture of this name)."""
    from assistant.pipeline import Assistant

    return Assistant.open(ui_settings, encoder=real_encoder)


@pytest.fixture(scope="session")
def server(assistant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of the app, served on a free 127.0.0.1 port until the session ends."""
    from assistant.ui import build_demo, create_app, running

    demo = build_demo(assistant, results_dir=tmp_path_factory.mktemp("results"))
    with running(create_app(demo, assistant)) as srv:
        yield srv.url
