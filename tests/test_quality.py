"""Measured floors with the real model on the development sets."""

from __future__ import annotations

from assistant import evaluation
from assistant.config import Settings
from assistant.pipeline import Assistant
from conftest import SHARED


def test_seed_questions_hit_at_5(seed_index: Settings, real_encoder) -> None:
    assistant = Assistant.open(seed_index, real_encoder)
    questions = evaluation.load_questions(SHARED / "eval" / "seed-questions-dev.jsonl")
    results, summary = evaluation.run(questions, lambda g: assistant.ask_many([q.question for q in g], k=10))
    assert summary["hit@5"] >= 0.90, summary
    for result in results:
        for p in result["passages"]:
            assert assistant.index.by_id[p["doc_id"]].text[p["start"] : p["end"]] == p["text"]
