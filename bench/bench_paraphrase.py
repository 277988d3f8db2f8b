"""Calibrate the ``paraphrase`` verdict: pick QuoteSettings.paraphrase_threshold and report its precision.

Builds a temporary index of the seed corpus with the real model, then checks every sentence of
eval/seed/paraphrases.jsonl (hand-written paraphrases of seed sentences, expected
``paraphrase``; unrelated sentences, expected ``absent``) with a checker that calls anything
neither verbatim nor altered a paraphrase, so that each check reports the cosine similarity of
its sentence nearest in meaning. The threshold is the midpoint between the most similar
unrelated sentence and the least similar paraphrase above it (rounded up to 0.01): the lowest
that keeps every unrelated sentence ``absent``. Prints and writes bench/results/paraphrase.json:
each sentence's verdict and similarity, the threshold, and the precision and recall of
``paraphrase`` at it and at the configured one.

    .venv/bin/python bench/bench_paraphrase.py
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # before torch and FAISS are loaded

from assistant.config import QuoteSettings, Settings  # noqa: E402
from assistant.embedding import SentenceTransformerEncoder  # noqa: E402
from assistant.quotes import QuoteChecker  # noqa: E402
from assistant.retrieval import Retriever  # noqa: E402
from assistant.store import build_index, load_index  # noqa: E402

DEV_SET = ROOT / "eval" / "seed" / "paraphrases.jsonl"
OUT = ROOT / "bench" / "results" / "paraphrase.json"


def load_dev_set(path: Path = DEV_SET) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def precision_recall(rows: list[dict], threshold: float) -> dict:
    """Precision and recall of ``paraphrase`` when sentences at least ``threshold`` similar get it."""
    called = [r for r in rows if r["verdict"] == "paraphrase" and r["similarity"] >= threshold]
    right = sum(r["expected"] == "paraphrase" for r in called)
    wanted = sum(r["expected"] == "paraphrase" for r in rows)
    return {"threshold": threshold, "called": len(called), "precision": right / len(called) if called else None,
            "recall": right / wanted if wanted else None}


def choose_threshold(rows: list[dict]) -> float:
    """Midpoint between the most similar unrelated sentence and the next paraphrase, rounded up."""
    negatives = [r["similarity"] for r in rows if r["expected"] != "paraphrase" and r["verdict"] == "paraphrase"]
    ceiling = max(negatives, default=0.0)
    above = [r["similarity"] for r in rows if r["expected"] == "paraphrase" and r["similarity"] > ceiling]
    return math.ceil(((ceiling + min(above)) / 2 if above else ceiling + 0.01) * 100) / 100


def main() -> None:
    encoder = SentenceTransformerEncoder()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus_dir=ROOT / "corpus", index_dir=Path(tmp) / "index")
        build_index(settings, encoder, progress=False)
        index = load_index(settings.index_dir)
        lenient = QuoteChecker(index, encoder, Retriever(index, encoder, settings),
                               QuoteSettings(paraphrase_threshold=1e-6))
        rows = []
        for item in load_dev_set():
            check = lenient.check(item["quote"])
            similarity = check.matches[0].score if check.verdict == "paraphrase" else None
            nearest = check.matches[0].citation if check.matches else None
            rows.append({"id": item["id"], "expected": item["expected"], "verdict": check.verdict,
                         "similarity": similarity if similarity is not None else 0.0,
                         "nearest_doc": nearest.doc_id if nearest else None,
                         "nearest": nearest.text if nearest else None})
    chosen = choose_threshold(rows)
    result = {"model": settings.model, "dev_set": str(DEV_SET.relative_to(ROOT)), "chosen": chosen,
              "at_chosen": precision_recall(rows, chosen),
              "at_configured": precision_recall(rows, QuoteSettings().paraphrase_threshold), "rows": rows}
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for row in sorted(rows, key=lambda r: -r["similarity"]):
        print(f"{row['id']:4} {row['expected']:10} {row['verdict']:10} {row['similarity']:.3f}")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
