"""The reader's accuracy/latency curve over the number of candidate sentences it reads.

    .venv/bin/python bench/bench_reader.py [--squad-index DIR] [--limit 300]

On the squad-sample corpus, for each number of candidates N (the best N sentences by the
hand-tuned score are read), every question is timed in the same loop as its bare embedding,
and the answers are scored: answer accuracy over the answerable questions, abstention over
the unanswerable ones. N = 0 is the hand-tuned scorer alone (``--reader none``). Writes
bench/results/reader.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.runtime import QUERY_THREADS, configure_process  # noqa: E402

configure_process(threads=QUERY_THREADS)  # before torch and FAISS are loaded: as `assistant eval` answers

from assistant import evaluation  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.embedding import SentenceTransformerEncoder  # noqa: E402
from assistant.metrics import answer_metrics  # noqa: E402
from assistant.pipeline import Assistant  # noqa: E402
from assistant.store import build_index, current_version  # noqa: E402

EVAL = ROOT / "eval"
RESULTS = ROOT / "bench" / "results"
COUNTS = (0, 1, 2, 4, 8, 12, 16, 24)


def point(assistant: Assistant, questions: list[evaluation.Question]) -> dict:
    embed, answer, right, abstained = [], [], [], []
    assistant.ask(questions[0].question)  # warm up
    for q in questions:
        t0 = time.perf_counter()
        assistant.encoder.encode([q.question])
        t1 = time.perf_counter()
        response = assistant.ask(q.question, k=10)
        t2 = time.perf_counter()
        embed.append(t1 - t0)
        answer.append(t2 - t1)
        m = answer_metrics(q, response.answer)
        (right if q.answerable else abstained).append(m["answer_correct"] if q.answerable else m["abstained"])
    return {
        "answer_accuracy": round(sum(right) / max(len(right), 1), 4),
        "abstention": round(sum(abstained) / max(len(abstained), 1), 4),
        "embed_p50_ms": round(statistics.median(embed) * 1000, 2),
        "answer_p50_ms": round(statistics.median(answer) * 1000, 2),
        "answer_p95_ms": round(float(np.percentile(answer, 95)) * 1000, 2),
        "ratio_p50": round(statistics.median(answer) / statistics.median(embed), 2),
    }


def run(squad_index: Path | None = None, limit: int = 300) -> dict:
    encoder = SentenceTransformerEncoder()
    results: dict = {"load_before": round(os.getloadavg()[0], 2), "curve": []}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus_dir=EVAL / "squad-sample" / "corpus", index_dir=squad_index or Path(tmp) / "squad")
        if current_version(settings.index_dir) is None:
            build_index(settings, encoder, progress=True)
        questions = evaluation.load_question_set(EVAL / "squad-sample" / "questions.jsonl").questions
        # answerable and unanswerable in the set's proportions (every third question is unanswerable)
        step = max(1, len(questions) // limit)
        sample = questions[::step][:limit]
        with_reader = Assistant.open(settings, encoder)
        results["reader"] = with_reader.reader_stamp
        for n in COUNTS:
            if n == 0:
                assistant = Assistant.open(settings.with_(reader="none"), encoder)
            else:
                assistant = with_reader
                extractor = assistant.extractor
                extractor.calibration = replace(extractor.calibration, candidates=n)
            results["curve"].append({"candidates": n, **point(assistant, sample)})
        results["questions"] = len(sample)
    results["load_after"] = round(os.getloadavg()[0], 2)
    return results


def table(results: dict) -> str:
    lines = [f"Reader `{results['reader']['name']}` ({results['reader']['fingerprint']}), "
             f"{results['questions']} squad-sample questions; 0 candidates = `--reader none`.", "",
             "| candidates read | answer accuracy | abstention | answer p50 | answer p95 | embed p50 | answer / embed p50 |",
             "|---|---|---|---|---|---|---|"]
    for r in results["curve"]:
        lines.append(f"| {r['candidates']} | {r['answer_accuracy']:.3f} | {r['abstention']:.3f} | {r['answer_p50_ms']} ms "
                     f"| {r['answer_p95_ms']} ms | {r['embed_p50_ms']} ms | {r['ratio_p50']}x |")
    lines.append(f"\nLoad average {results['load_before']} before, {results['load_after']} after.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad-index", type=Path, help="An existing index of the squad-sample corpus.")
    parser.add_argument("--limit", type=int, default=300, help="Questions (answerable and not).")
    args = parser.parse_args()
    results = run(args.squad_index, args.limit)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reader.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
