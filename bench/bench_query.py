"""Query latency: answering a question against embedding the question alone, side by side.

    .venv/bin/python bench/bench_query.py [--squad-index DIR] [--repeats 2] [--limit 200]

For each corpus (the seed corpus and the squad-sample corpus) every question is timed twice
in the same loop: the bare question embedding (one model call) and the whole answer
(embedding, BM25, fusion, merging, sentence scoring, the reader, confidence), with the
shipped reader. The ratio of medians is
what survives a noisy machine. The answer's own stages are timed too (embedding, retrieval,
answer extraction), and pyinstrument profiles everything but the model call
(bench/results/query_profile.txt). Writes bench/results/query.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.runtime import QUERY_THREADS, configure_process  # noqa: E402

configure_process(threads=QUERY_THREADS)  # before torch and FAISS are loaded: as `assistant eval` answers

from assistant import evaluation  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.embedding import SentenceTransformerEncoder  # noqa: E402
from assistant.pipeline import Assistant  # noqa: E402
from assistant.store import build_index, current_version  # noqa: E402

EVAL = ROOT / "eval"
RESULTS = ROOT / "bench" / "results"


def _ms(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)) * 1000, 2)


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
    return {
        "questions": len(questions) * repeats,
        "embed_p50_ms": _ms(embed, 50), "embed_p95_ms": _ms(embed, 95),
        "answer_p50_ms": _ms(answer, 50), "answer_p95_ms": _ms(answer, 95),
        "ratio_p50": round(statistics.median(answer) / statistics.median(embed), 2),
        "ratio_p95": round(float(np.percentile(answer, 95) / np.percentile(embed, 95)), 2),
    }


def stages(assistant: Assistant, questions: list[str]) -> dict[str, float]:
    """Median milliseconds of each stage of an answer, the question's vector computed apart."""
    times: dict[str, list[float]] = {"embed": [], "retrieve": [], "extract": []}
    for question in questions:
        t0 = time.perf_counter()
        vector = assistant.encoder.encode([question])[0]
        t1 = time.perf_counter()
        retrieval = assistant.retriever.retrieve(question, vector=vector)
        t2 = time.perf_counter()
        assistant.extractor.extract(retrieval, assistant.settings.abstain_below)
        t3 = time.perf_counter()
        for name, seconds in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
            times[name].append(seconds)
    return {f"{name}_p50_ms": _ms(values, 50) for name, values in times.items()}


def profile(assistant: Assistant, questions: list[str], out: Path) -> None:
    """pyinstrument's tree of everything an answer does besides the model call."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        out.write_text("pyinstrument is not installed (it is a dev dependency: make setup)\n")
        return
    vectors = assistant.encoder.encode(questions)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(3):
        for question, vector in zip(questions, vectors):
            retrieval = assistant.retriever.retrieve(question, vector=vector)
            assistant.extractor.extract(retrieval, assistant.settings.abstain_below)
    profiler.stop()
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))


def run(squad_index: Path | None = None, repeats: int = 2, limit: int = 200) -> dict:
    encoder = SentenceTransformerEncoder()
    results: dict = {"load_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        seed = Settings(corpus_dir=ROOT / "corpus", index_dir=Path(tmp) / "seed")
        build_index(seed, encoder)
        squad = Settings(corpus_dir=EVAL / "squad-sample" / "corpus",
                         index_dir=squad_index or Path(tmp) / "squad")
        if current_version(squad.index_dir) is None:
            build_index(squad, encoder, progress=True)
        for name, settings, qfile in (("seed", seed, EVAL / "seed" / "questions.jsonl"),
                                      ("squad-sample", squad, EVAL / "squad-sample" / "questions.jsonl")):
            assistant = Assistant.open(settings, encoder)
            results["reader"] = assistant.reader_stamp["name"]
            questions = [q.question for q in evaluation.load_question_set(qfile).questions][:limit]
            results[name] = {"chunks": len(assistant.index), **measure(assistant, questions, repeats),
                             **stages(assistant, questions)}
            if name == "squad-sample":
                RESULTS.mkdir(parents=True, exist_ok=True)
                profile(assistant, questions, RESULTS / "query_profile.txt")
    results["load_after"] = round(os.getloadavg()[0], 2)
    return results


def table(results: dict) -> str:
    lines = ["| corpus | chunks | questions | embed p50 | embed p95 | answer p50 | answer p95 | answer / embed p50 "
             "| answer / embed p95 | retrieval p50 | answer extraction p50 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("seed", "squad-sample"):
        r = results[name]
        lines.append(f"| {name} | {r['chunks']} | {r['questions']} | {r['embed_p50_ms']} ms | {r['embed_p95_ms']} ms | "
                     f"{r['answer_p50_ms']} ms | {r['answer_p95_ms']} ms | **{r['ratio_p50']}x** | {r['ratio_p95']}x | "
                     f"{r['retrieve_p50_ms']} ms | {r['extract_p50_ms']} ms |")
    lines.append(f"\nReader `{results['reader']}`. Load average {results['load_before']} before, "
                 f"{results['load_after']} after.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad-index", type=Path, help="An existing index of the squad-sample corpus.")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=int, default=200, help="Questions per corpus.")
    args = parser.parse_args()
    results = run(args.squad_index, args.repeats, args.limit)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "query.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
