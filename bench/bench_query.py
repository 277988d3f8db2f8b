"""Query latency: answering a question against embedding the question alone, side by side.

    .venv/bin/python bench/bench_query.py [--squad-index DIR] [--repeats 3]

For each corpus (the seed corpus and the squad-sample corpus) every question is timed twice
in the same loop: the bare question embedding (one model call) and the whole answer
(embedding, BM25, fusion, merging, sentence scoring, confidence). The ratio of medians is
what survives a noisy machine. Writes bench/results/query.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import evaluation  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.embedding import SentenceTransformerEncoder  # noqa: E402
from assistant.pipeline import Assistant  # noqa: E402
from assistant.store import build_index, current_version  # noqa: E402

SHARED = ROOT.parent / "shared" / "eval"


def measure(assistant: Assistant, questions: list[str], repeats: int) -> dict[str, float]:
    embed, answer = [], []
    assistant.ask(questions[0])  # warm up
    for _ in range(repeats):
        for question in questions:
            t0 = time.perf_counter()
            assistant.encoder.encode([question])
            t1 = time.perf_counter()
            assistant.ask(question)
            t2 = time.perf_counter()
            embed.append(t1 - t0)
            answer.append(t2 - t1)
    ms = lambda xs, q: round(float(np.percentile(xs, q)) * 1000, 2)  # noqa: E731
    return {
        "questions": len(questions) * repeats,
        "embed_p50_ms": ms(embed, 50), "embed_p95_ms": ms(embed, 95),
        "answer_p50_ms": ms(answer, 50), "answer_p95_ms": ms(answer, 95),
        "ratio_p50": round(statistics.median(answer) / statistics.median(embed), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad-index", type=Path, help="An existing index of the squad-sample corpus.")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=int, default=200, help="Questions per corpus.")
    args = parser.parse_args()
    encoder = SentenceTransformerEncoder()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        seed = Settings(corpus_dir=ROOT / "corpus", index_dir=Path(tmp) / "seed")
        build_index(seed, encoder)
        squad = Settings(corpus_dir=SHARED / "squad-sample" / "corpus",
                         index_dir=args.squad_index or Path(tmp) / "squad")
        if current_version(squad.index_dir) is None:
            build_index(squad, encoder, progress=True)
        for name, settings, qfile in (("seed", seed, SHARED / "seed-questions-dev.jsonl"),
                                      ("squad-sample", squad, SHARED / "squad-sample" / "questions.jsonl")):
            assistant = Assistant.open(settings, encoder)
            questions = [q.question for q in evaluation.load_questions(qfile)][: args.limit]
            results[name] = {"chunks": len(assistant.index), **measure(assistant, questions, args.repeats)}
    out = ROOT / "bench" / "results" / "query.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("| corpus | chunks | questions | embed p50 | embed p95 | answer p50 | answer p95 | answer / embed (p50) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['chunks']} | {r['questions']} | {r['embed_p50_ms']} ms | {r['embed_p95_ms']} ms | "
              f"{r['answer_p50_ms']} ms | {r['answer_p95_ms']} ms | {r['ratio_p50']}x |")


if __name__ == "__main__":
    main()
