"""The one entry point the CLI, the app and the tests use: open an index, ask questions."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.answer import AnswerExtractor, Calibration
from assistant.config import Settings
from assistant.embedding import Encoder, encoder_for, index_model_name
from assistant.retrieval import Retriever, clean_question
from assistant.errors import AssistantError
from assistant.reader import load_reader, reader_folder
from assistant.store import Index, Staleness
from assistant.stores import live_version, open_index
from assistant.types import Answer, Passage, QuoteCheck

if TYPE_CHECKING:
    from assistant.drafts import DraftCheck
    from assistant.quotes import QuoteChecker


@dataclass(frozen=True)
class Response:
    """The response to one question: the answer (None when abstaining) and ranked passages.

    When ``answer`` is None the passages are the nearest matches, shown as weak matches.
    """

    question: str
    passages: list[Passage]
    answer: Answer | None = None
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer.to_dict() if self.answer else None,
            "passages": [p.to_dict() for p in self.passages],
            "notices": list(self.notices),
        }


class Assistant:
    """A loaded index with its model, ready to answer; load it once per process."""

    def __init__(self, index: Index, encoder: Encoder, settings: Settings) -> None:
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self.retriever = Retriever(index, encoder, settings)
        folder = reader_folder(settings.reader)
        self.reader = load_reader(folder) if folder else None
        self.extractor = AnswerExtractor(
            index, settings, reader=self.reader,
            calibration=Calibration.load(folder / "calibration.json") if folder else None)
        self._quote_checker: QuoteChecker | None = None

    @classmethod
    def open(cls, settings: Settings, encoder: Encoder | None = None) -> Assistant:
        """Load the live index of ``settings``' store (the index folder, or Milvus) and the model it was built with.

        Raises IndexMissingError, IndexMismatchError, IndexCorruptError, or InputError for a
        Milvus store without the scale extra.
        """
        index = open_index(settings, index_model_name(settings.model, settings.backend))
        encoder = encoder or encoder_for(index.model, settings.batch_size)
        return cls(index, encoder, settings)

    @property
    def reader_stamp(self) -> dict[str, str]:
        """Which reader answers: its name and the fingerprint of its weights and calibration."""
        if self.reader is None:
            return {"name": "none", "fingerprint": "hand-tuned scorer"}
        return {"name": self.reader.name, "fingerprint": self.reader.fingerprint}

    def staleness(self) -> Staleness:
        """How the corpus on disk differs from the loaded index."""
        return self.index.staleness(self.settings.corpus_dir)

    def ask(self, question: str, *, k: int | None = None, doc_ids: list[str] | None = None) -> Response:
        """Ranked passages for ``question``. Raises InputError for an empty question or bad k."""
        return self.ask_many([question], k=k, doc_ids=doc_ids)[0]

    def ask_many(self, questions: list[str], *, k: int | None = None,
                 doc_ids: list[str] | None = None) -> list[Response]:
        """Like ``ask`` for several questions, embedding them in one batch."""
        cleaned = [clean_question(q, self.settings.max_question_chars)[0] for q in questions]
        vectors = self.encoder.encode(cleaned)
        responses = []
        for question, vector in zip(questions, vectors):
            retrieval = self.retriever.retrieve(question, k=k, doc_ids=doc_ids, vector=vector)
            answer = self.extractor.extract(retrieval, self.settings.abstain_below)
            responses.append(Response(retrieval.question, retrieval.passages, answer, retrieval.notices))
        return responses

    def check_quote(self, text: str) -> QuoteCheck:
        """Is ``text`` in the sources: a QuoteCheck with verdict verbatim, altered, paraphrase or absent.

        The checker is built on first use. Raises InputError for a quote too short to check.
        """
        from assistant.quotes import QuoteChecker

        if self._quote_checker is None:
            self._quote_checker = QuoteChecker(self.index, self.encoder, self.retriever)
        return self._quote_checker.check(text)

    def check_draft(self, text: str) -> list[DraftCheck]:
        """Every quotation of the draft ``text`` (in quotation marks, 4 words or more) with its check.

        Raises InputError when the draft holds no such quotation.
        """
        from assistant.drafts import check_draft

        return check_draft(text, self.check_quote, self.settings.quotes.min_words)


class LiveAssistant:
    """Serves from the newest complete index version, picking up rebuilds without a restart.

    ``current()`` returns the Assistant of the live version. When ``assistant index`` has
    switched the index to a new version, the first caller loads it while the others keep
    the old one; the swap is a single assignment, so each request, which takes one
    Assistant and uses it throughout, is answered wholly from the old index or wholly
    from the new. A new version that fails to load is reported through ``last_error`` and
    the old one keeps serving.
    """

    def __init__(self, assistant: Assistant) -> None:
        self._assistant = assistant
        self._lock = threading.Lock()
        self.last_error: AssistantError | None = None
        self._failed: str | None = None

    def current(self) -> Assistant:
        """The Assistant of the newest loadable index version."""
        assistant = self._assistant
        version = live_version(assistant.settings)
        if version in (None, assistant.index.version, self._failed):
            return assistant
        if not self._lock.acquire(blocking=False):
            return assistant  # another request is loading the new version
        try:
            if self._assistant.index.version != version:
                try:
                    self._assistant = Assistant.open(assistant.settings, assistant.encoder)
                    self.last_error = None
                except AssistantError as exc:
                    self.last_error, self._failed = exc, version  # tried once, not per request
            return self._assistant
        finally:
            self._lock.release()
