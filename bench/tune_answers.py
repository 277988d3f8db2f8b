"""Tune fusion weights, sentence-scoring weights and the confidence model on a dev set.

    .venv/bin/python bench/tune_answers.py --corpus DIR --index DIR --questions FILE.jsonl

Signals are computed once per question; weights are then searched over the cached signals.
Prints hit@1/hit@5/MRR for BM25 alone, dense alone and the best fused weights, the answer
sentence accuracy for the best sentence weights, and abstention figures per threshold.
The chosen defaults live in Settings (assistant/config.py), the sentence weights in Settings.answer_weights.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # before torch and FAISS are loaded

from assistant import evaluation  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.pipeline import Assistant, Response  # noqa: E402


def retrieval_table(assistant: Assistant, questions, vectors) -> list[tuple[str, float, float, float]]:
    base = assistant.settings
    found = [assistant.retriever.candidates(q.question, v, base.candidates) for q, v in zip(questions, vectors)]
    configs = [("keyword", 0, 0, 0), ("dense", 0, 0, 0)]
    steps = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    configs += [("hybrid", a, b, c) for a, b, c in itertools.product(steps, steps, steps) if abs(a + b + c - 1) < 1e-6]
    rows = []
    for mode, a, b, c in configs:
        assistant.retriever.settings = base.with_(retriever=mode, w_keyword=a, w_dense=b, w_sentence=c)
        responses = [Response(q.question, [h.passage for h in assistant.retriever.rank(f, base.eval_k)])
                     for q, f in zip(questions, found)]
        s = evaluation.evaluate(questions, lambda group, r=responses: r, k=base.eval_k,
                                batch=len(questions)).summary
        rows.append((f"{mode} kw={a} dense={b} sent={c}", s["hit@1"], s["hit@5"], s["mrr@10"]))
    assistant.retriever.settings = base
    return rows


def sentence_features(assistant: Assistant, questions, vectors):
    """Per question: signals of each candidate sentence and whether it holds a gold answer."""
    extractor = assistant.extractor
    unit = replace(extractor.weights, semantic=0.0, keyword=0.0, passage=0.0, cue=0.0)
    out = []
    for q, v in zip(questions, vectors):
        r = assistant.retriever.retrieve(q.question, k=5, vector=v)
        rows = []
        for name in ("semantic", "keyword", "passage", "cue"):
            extractor.weights = replace(unit, **{name: 1.0})
            rows.append({s.sentence: s.score for s in extractor.score_sentences(r)})
        extractor.weights = unit
        ids = sorted(rows[0])
        golds = [evaluation.normalize_answer(a) for a in q.answers]
        labels = []
        for s in ids:
            doc, span = assistant.index.sentence(s)
            labels.append(any(g in evaluation.normalize_answer(doc.text[span.start:span.end]) for g in golds))
        feats = np.array([[row[s] for row in rows] for s in ids]) if ids else np.zeros((0, 4))
        weights = extractor.term_weights(extractor.keyword.terms(r.question))
        coverage = extractor.coverage(weights, {t for t in weights if t in extractor.keyword.vocabulary})
        out.append((q, ids, feats, np.array(labels, bool), coverage))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--skip-retrieval", action="store_true", help="Only tune the answer sentence.")
    args = parser.parse_args()
    assistant = Assistant.open(Settings(corpus_dir=args.corpus, index_dir=args.index))
    questions = evaluation.load_question_set(args.questions).questions
    vectors = assistant.encoder.encode([q.question for q in questions])
    answerable = [(q, v) for q, v in zip(questions, vectors) if q.answerable]

    if not args.skip_retrieval:
        rows = retrieval_table(assistant, [q for q, _ in answerable], [v for _, v in answerable])
        print("retrieval (answerable questions), best 8 by MRR@10, then each retriever alone:")
        for row in sorted(rows[2:], key=lambda r: -r[3])[:8] + rows[:2]:
            print(f"  {row[0]:34} hit@1 {row[1]:.3f}  hit@5 {row[2]:.3f}  mrr@10 {row[3]:.3f}")

    data = sentence_features(assistant, questions, vectors)
    best = None
    grid = np.array([w for w in itertools.product((0.2, 0.3, 0.4, 0.5, 0.6), (0.2, 0.3, 0.4, 0.5, 0.6),
                                                  (0.0, 0.1, 0.2, 0.3), (0.0, 0.05, 0.1, 0.15, 0.2))])
    for w in grid:
        correct = sum(bool(len(ids)) and labels[int(np.argmax(feats @ w))]
                      for q, ids, feats, labels, _ in data if q.answerable)
        acc = correct / len(answerable)
        if best is None or acc > best[0]:
            best = (acc, w)
    oracle = sum(labels.any() for q, _, _, labels, _ in data if q.answerable) / len(answerable)
    print(f"sentence accuracy {best[0]:.3f} with semantic/keyword/passage/cue = {best[1].tolist()} "
          f"(a gold answer is in some candidate sentence for {oracle:.3f})")
    w = best[1]
    records = []
    for q, ids, feats, labels, coverage in data:
        if not len(ids):
            continue
        j = int(np.argmax(feats @ w))
        group = "answerable" if q.answerable else q.id.split("-")[0]
        records.append({"group": group, "score": float(feats[j] @ w), "semantic": float(feats[j, 0]),
                        "keyword": float(feats[j, 1]), "coverage": coverage, "correct": bool(labels[j])})
    Path("/tmp/answer_features.json").write_text(json.dumps(records))
    print("features of each question's best sentence written to /tmp/answer_features.json")


if __name__ == "__main__":
    main()
