"""The Milvus store's top-10 lists against the embedded store's, question by question.

For each development set with its corpus (seed, squad-sample, selqa-dev), builds the index with
the real model in a temporary folder, writes it to milvus-lite (assistant/milvus_store.py) and
compares, for every question:

- keyword: Milvus' BM25 top-10 with bm25s' top-10 as retrieval computes it (stemmed), and with
  bm25s over the same chunks without the stemmer (the control: same analysis as milvus-lite);
  mean Jaccard of the two sets, mean share of bm25s' list that Milvus also returns, and how
  often the first chunk is the same;
- keyword quality: how often each top-10 holds a chunk containing the gold answer;
- dense: Milvus' FLAT top-10 with FAISS exact search (the same list, in the same order), also
  restricted to the question's source documents (FAISS with an ID selector) for the questions
  that have one;
- writing: the first write of the version, and an update after one document changed (a
  sentence added to the corpus's first text file): its time and the shared rows it wrote.

Prints a Markdown table and writes bench/results/milvus.json.

    .venv/bin/python bench/bench_milvus.py [--sets seed squad-sample selqa-dev]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.runtime import QUERY_THREADS, configure_process  # noqa: E402

configure_process(threads=QUERY_THREADS)  # before torch and FAISS are loaded

import bm25s  # noqa: E402
import numpy as np  # noqa: E402
from bm25s.tokenization import Tokenizer  # noqa: E402

from assistant import milvus_store  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.embedding import SentenceTransformerEncoder  # noqa: E402
from assistant.store import build_index, load_index  # noqa: E402

SETS = {"seed": (ROOT / "corpus", ROOT / "eval" / "seed" / "questions.jsonl"),
        "squad-sample": (ROOT / "eval" / "squad-sample" / "corpus", ROOT / "eval" / "squad-sample" / "questions.jsonl"),
        "selqa-dev": (ROOT / "eval" / "selqa-dev" / "corpus", ROOT / "eval" / "selqa-dev" / "questions.jsonl")}
K = 10
OUT = ROOT / "bench" / "results" / "milvus.json"


def top(scores: np.ndarray, k: int = K) -> list[int]:
    """The ``k`` best positive scores' positions, best first (ties by position)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return [int(i) for i in order if scores[i] > 0]


def agreement(reference: list[list[int]], found: list[list[int]]) -> dict:
    """Mean Jaccard, mean share of the reference list found, and first-place agreement, over the
    questions whose reference list is not empty."""
    pairs = [(set(r), set(f), r[0], f[0] if f else None) for r, f in zip(reference, found) if r]
    return {"questions": len(pairs),
            "jaccard": round(float(np.mean([len(r & f) / len(r | f) for r, f, _, _ in pairs])), 3),
            "recall": round(float(np.mean([len(r & f) / len(r) for r, f, _, _ in pairs])), 3),
            "same_first": round(float(np.mean([a == b for _, _, a, b in pairs])), 3)}


def identical(reference: list[list[int]], found: list[list[int]]) -> float:
    """Share of the questions whose two lists are the same, in the same order."""
    return round(float(np.mean([a == b for a, b in zip(reference, found)])), 3)


def answer_rate(texts: list[str], lists: list[list[int]], questions: list[dict]) -> float:
    """Share of the questions with an answer whose list holds a chunk containing one (ignoring case)."""
    hits = [any(a.lower() in texts[i].lower() for i in found for a in q["answers"])
            for found, q in zip(lists, questions) if q.get("sources") and q.get("answers")]
    return round(float(np.mean(hits)), 3)


def measure(name: str, encoder: SentenceTransformerEncoder, work: Path) -> dict:
    source, questions_file = SETS[name]
    corpus = work / name / "corpus"  # a copy, changed below
    shutil.copytree(source, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=work / name / "index")
    build_index(settings, encoder)
    index = load_index(settings.index_dir)
    started = time.perf_counter()
    milvus_store.write_version(str(work / "milvus.db"), name.replace("-", "_"), index.manifest, index.documents,
                               milvus_store.index_arrays(index))
    written = time.perf_counter() - started
    search = milvus_store.open_version(str(work / "milvus.db"), name.replace("-", "_"), index.model).search
    questions = [json.loads(line) for line in questions_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    vectors = encoder.encode([q["question"] for q in questions])
    texts = [index.chunk(i).text for i in range(len(index))]
    unstemmed = bm25s.BM25()
    unstemmed.index(Tokenizer(stopwords="en").tokenize(texts, show_progress=False, return_as="tuple"),
                    show_progress=False)
    lists: dict[str, list[list[int]]] = {key: [] for key in
                                         ("stemmed", "unstemmed", "milvus", "faiss", "dense", "faiss_in", "dense_in")}
    timings: dict[str, list[float]] = {"keyword": [], "dense": []}
    for question, vector in zip(questions, vectors):
        text = question["question"]
        lists["stemmed"].append(top(index.keyword.scores(text)))
        lists["unstemmed"].append(top(_unstemmed_scores(unstemmed, text)))
        started = time.perf_counter()
        lists["milvus"].append(search.keyword(text, K).ids.tolist())
        timings["keyword"].append(time.perf_counter() - started)
        lists["faiss"].append(index.searcher.dense_top(vector, K).tolist())
        started = time.perf_counter()
        lists["dense"].append(search.dense_top(vector, K).tolist())
        timings["dense"].append(time.perf_counter() - started)
        sources = [index.doc_numbers[d] for d in question.get("sources", []) if d in index.doc_numbers]
        if sources:  # questions without an answer in the corpus have none
            lists["faiss_in"].append(index.searcher.dense_top(vector, K, sources).tolist())
            lists["dense_in"].append(search.dense_top(vector, K, sources).tolist())
    return {
        "corpus": {"documents": len(index.documents), "chunks": len(index), "questions": len(questions)},
        "write_s": round(written, 2),
        "update": update(settings, encoder, work / "milvus.db", name.replace("-", "_")),
        "keyword_vs_bm25s": agreement(lists["stemmed"], lists["milvus"]),
        "keyword_vs_bm25s_unstemmed": agreement(lists["unstemmed"], lists["milvus"]),
        "bm25s_unstemmed_vs_stemmed": agreement(lists["stemmed"], lists["unstemmed"]),
        "dense_identical": identical(lists["faiss"], lists["dense"]),
        "dense_identical_filtered": identical(lists["faiss_in"], lists["dense_in"]),
        "filtered_questions": len(lists["faiss_in"]),
        "keyword_answer_in_top10": {kind: answer_rate(texts, lists[kind], questions)
                                    for kind in ("stemmed", "unstemmed", "milvus")},
        "ms_p50": {kind: round(1000 * float(np.median(t)), 2) for kind, t in timings.items()},
    }


def update(settings: Settings, encoder: SentenceTransformerEncoder, uri: Path, name: str) -> dict:
    """Change one document (a sentence added to the first text file), rebuild the folder, and write the new
    version: its time, and the rows it wrote to the collections the versions share against all of them."""
    first = sorted(p for p in settings.corpus_dir.rglob("*") if p.suffix in (".txt", ".md"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n\nThis sentence was added for the update.\n",
                     encoding="utf-8")
    build_index(settings, encoder)
    index = load_index(settings.index_dir)
    started = time.perf_counter()
    milvus_store.write_version(str(uri), name, index.manifest, index.documents, milvus_store.index_arrays(index))
    written = time.perf_counter() - started
    opened = milvus_store.open_version(str(uri), name, index.model)
    client = opened.search.client
    counts = {}
    for kind in milvus_store.SHARED_KINDS:
        shared = milvus_store.collection(name, opened.manifest["store"]["generation"], kind)
        rows = [client.query(shared, filter=where, output_fields=["count(*)"])[0]["count(*)"]
                for where in (f"born == {opened.manifest['store']['seq']}", "")]
        counts[kind] = {"written": rows[0], "stored": rows[1]}
    return {"write_s": round(written, 2), "rows": counts}


def _unstemmed_scores(bm25: bm25s.BM25, text: str) -> np.ndarray:
    """bm25s scores of ``text`` with the control's analysis (no stemmer), zeros when no term is known."""
    terms = Tokenizer(stopwords="en").tokenize([text], show_progress=False, return_as="string")[0]
    known = [bm25.vocab_dict[t] for t in terms if t in bm25.vocab_dict]
    return bm25.get_scores(known) if known else np.zeros(bm25.scores["num_docs"], np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    args = parser.parse_args()
    encoder = SentenceTransformerEncoder()
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: measure(name, encoder, Path(tmp)) for name in args.sets}
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("| set | chunks | questions | BM25 vs bm25s: Jaccard / recall / same first | vs bm25s unstemmed "
          "| answer in keyword top-10: bm25s / unstemmed / Milvus | dense identical (filtered) "
          "| p50 ms keyword / dense |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        stemmed, control = r["keyword_vs_bm25s"], r["keyword_vs_bm25s_unstemmed"]
        print(f"| {name} | {r['corpus']['chunks']} | {r['corpus']['questions']} "
              f"| {stemmed['jaccard']} / {stemmed['recall']} / {stemmed['same_first']} "
              f"| {control['jaccard']} / {control['recall']} / {control['same_first']} "
              f"| {' / '.join(str(v) for v in r['keyword_answer_in_top10'].values())} "
              f"| {r['dense_identical']} ({r['dense_identical_filtered']}, {r['filtered_questions']} questions) "
              f"| {r['ms_p50']['keyword']} / {r['ms_p50']['dense']} |")
    print("\n| set | first write s | update after one document changed s | rows it wrote / stored: vectors, "
          "sentences, document parts |")
    print("|---|---|---|---|")
    for name, r in results.items():
        rows = ", ".join(f"{n['written']} / {n['stored']}" for n in r["update"]["rows"].values())
        print(f"| {name} | {r['write_s']} | {r['update']['write_s']} | {rows} |")


if __name__ == "__main__":
    main()
