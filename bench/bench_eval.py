"""Batch evaluation throughput: questions per second of `assistant eval`, one by one and batched.

    .venv/bin/python bench/bench_eval.py --squad-index DIR [--questions 500]

``evaluate_file`` (what `assistant eval` and the app's Evaluate tab call) asks one question at
a time, so that each latency is that of a question alone; ``evaluate(..., batch=32)`` embeds
32 questions in one model call through ``Assistant.ask_many``. Both run on the same
questions of the squad-sample set, and the per-question metrics are compared.
Writes bench/results/eval.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.runtime import QUERY_THREADS, configure_process  # noqa: E402

configure_process(threads=QUERY_THREADS)  # before torch and FAISS are loaded: as `assistant eval` answers

from assistant import evaluation  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.pipeline import Assistant  # noqa: E402

SQUAD = ROOT / "eval" / "squad-sample"
RESULTS = ROOT / "bench" / "results"


def run(index_dir: Path, questions: int = 500, batch: int = 32) -> dict:
    settings = Settings(corpus_dir=SQUAD / "corpus", index_dir=index_dir)
    assistant = Assistant.open(settings)
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "questions.jsonl"
        subset.write_text("".join((SQUAD / "questions.jsonl").read_text().splitlines(keepends=True)[:questions]))
        load = os.getloadavg()[0]
        started = time.perf_counter()
        one = evaluation.evaluate_file(subset, assistant, k=10)
        one_s = time.perf_counter() - started
        items = evaluation.load_question_set(subset).questions
        started = time.perf_counter()
        batched = evaluation.evaluate(items, lambda group: assistant.ask_many([q.question for q in group], k=10),
                                      k=10, batch=batch)
        batched_s = time.perf_counter() - started
    same = [r["metrics"] for r in one.rows] == [r["metrics"] for r in batched.rows]
    return {"questions": len(items), "batch": batch, "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2),
            "one_by_one": {"seconds": round(one_s, 2), "questions_per_s": round(len(items) / one_s, 1)},
            "batched": {"seconds": round(batched_s, 2), "questions_per_s": round(len(items) / batched_s, 1)},
            "same_metrics": same, "hit@5": one.summary.get("hit@5")}


def table(r: dict) -> str:
    return "\n".join([
        "| evaluation of squad-sample questions | seconds | questions/s |", "|---|---|---|",
        f"| `assistant eval` (one question per call, {r['questions']} questions) | {r['one_by_one']['seconds']} | "
        f"{r['one_by_one']['questions_per_s']} |",
        f"| batched, {r['batch']} questions per model call | {r['batched']['seconds']} | "
        f"{r['batched']['questions_per_s']} |",
        "", f"Same per-question metrics both ways: {r['same_metrics']}. "
        f"Load average {r['load_before']} before, {r['load_after']} after.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad-index", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=500)
    args = parser.parse_args()
    results = run(args.squad_index, args.questions)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "eval.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
