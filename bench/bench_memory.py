"""Memory: peak resident memory of the app serving the squad-sample corpus, and bytes per chunk.

    .venv/bin/python bench/bench_memory.py --squad-index DIR [--questions 200]

The app: a child process imports ``app.py`` with ASSISTANT_CORPUS and ASSISTANT_INDEX set
(which loads the model and the index, answers a warm-up question and builds the Gradio app,
everything but opening the port), then answers questions through the app's LiveAssistant;
its resident memory (VmRSS) is read after each step and its peak (VmHWM) at the end.
Per chunk: what one indexed chunk costs, split into the vectors (memory-mapped float32,
chunk and sentence), the FAISS index, the span rows, the documents' text and records, the
keyword index (its BM25 matrices memory-mapped, its vocabulary in Python) and the per-sentence
terms of the answer extractor (Python allocations measured with tracemalloc). Writes
bench/results/memory.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # before torch and FAISS are loaded

SQUAD = ROOT / "eval" / "squad-sample"
RESULTS = ROOT / "bench" / "results"

CHILD = r"""
import json, sys
def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {k: int(fields[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM")}
out = {"python": status()}
sys.path.insert(0, sys.argv[1])
import app
out["app_loaded"] = status()
questions = [json.loads(line)["question"] for line in open(sys.argv[2])][:int(sys.argv[3])]
for q in questions:
    app.live.current().ask(q)
out["after_questions"] = status()
print(json.dumps(out))
"""


def app_process(index_dir: Path, questions: int) -> dict:
    env = {**os.environ, "ASSISTANT_CORPUS": str(SQUAD / "corpus"), "ASSISTANT_INDEX": str(index_dir)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(SQUAD / "questions.jsonl"), str(questions)],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def per_chunk(index_dir: Path) -> dict:
    import faiss

    from assistant.answer import AnswerExtractor
    from assistant.config import Settings
    from assistant.keyword import KeywordIndex
    from assistant.store import load_index

    def allocated(make):  # noqa: ANN001, ANN202 - bytes still held of what ``make`` allocated
        tracemalloc.start()
        try:
            return make(), tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    index, loaded = allocated(lambda: load_index(index_dir))  # the keyword index included
    _, keyword = allocated(lambda: KeywordIndex.load(index_dir / index.version))  # the same again, alone
    bm25 = index.keyword.bm25.scores
    # the Snowball stemmer's cache (at most 10,000 words, per thread) is a fixed cost, not per chunk
    sentences = [index.documents[d].text[s:e] for d, s, e in index.sentence_rows.tolist()]
    _, stemmer_cache = allocated(lambda: all(KeywordIndex.terms(t) is not None for t in sentences))
    _, terms = allocated(lambda: AnswerExtractor(index, Settings()))
    n = len(index)
    parts = {
        "chunk_vectors": index.chunk_vectors.nbytes,
        "sentence_vectors": index.sentence_vectors.nbytes,
        "faiss_index": len(faiss.serialize_index(index.searcher.search_index)),
        "rows_and_keys": index.chunk_rows.nbytes + index.sentence_rows.nbytes + index.chunk_keys.nbytes
        + index.sentence_keys.nbytes,
        "documents_and_records (Python)": loaded - keyword - index.chunk_rows.nbytes - index.sentence_rows.nbytes,
        "BM25 matrices (memory-mapped)": sum(bm25[name].nbytes for name in ("data", "indices", "indptr")),
        "keyword index vocabulary (Python)": keyword,
        "answer extractor's sentence terms": terms,
    }
    return {"chunks": n, "sentences": len(index.sentence_rows), "text_bytes": sum(len(d.text.encode()) for d in index.documents),
            "bytes_per_chunk": {name: round(value / n) for name, value in parts.items()},
            "total_bytes_per_chunk": round(sum(parts.values()) / n), "stemmer_cache_bytes": stemmer_cache}


def run(index_dir: Path, questions: int = 200) -> dict:
    return {"app": app_process(index_dir, questions), "per_chunk": per_chunk(index_dir),
            "load": round(os.getloadavg()[0], 2)}


def table(r: dict) -> str:
    a, p = r["app"], r["per_chunk"]
    lines = ["| app process (squad-sample) | resident MiB | peak MiB |", "|---|---|---|"]
    for name, label in (("python", "bare Python"), ("app_loaded", "app loaded (model, index, Gradio app)"),
                        ("after_questions", "after answering the questions")):
        lines.append(f"| {label} | {a[name]['VmRSS']} | {a[name]['VmHWM']} |")
    lines += ["", f"Per indexed chunk ({p['chunks']} chunks, {p['sentences']} sentences, "
              f"{round(p['text_bytes'] / p['chunks'])} bytes of text per chunk):", "",
              "| part | bytes per chunk |", "|---|---|"]
    lines += [f"| {name} | {value:,} |" for name, value in p["bytes_per_chunk"].items()]
    lines.append(f"| **total** | **{p['total_bytes_per_chunk']:,}** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad-index", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()
    results = run(args.squad_index, args.questions)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
