"""The embedder on PyTorch against ONNX Runtime (``--backend onnx``): speed and retrieval quality.

    .venv/bin/python bench/bench_onnx.py [--rounds 3] [--questions 1500]

Speed: texts/s embedding every chunk of the squad-sample corpus (as an index build cuts them),
with one and with two threads per backend, the four variants interleaved in every round so that
they see the same machine load; the median round is reported. Quality: an index of the corpus
built with each backend (the build's wall time is recorded too), then hit@5 and MRR@10 of the
squad-sample questions with ``evaluation.evaluate_file`` and the hand-tuned scorer (``--reader
none``; the reader does not change which passages are retrieved). Also the least cosine between
the two backends' vectors of the same chunk. The ONNX export is made in a temporary cache folder,
and its time is recorded. Writes bench/results/onnx.json and prints a Markdown table.
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

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # before torch and FAISS are loaded: every core, as an index build

import numpy as np  # noqa: E402
import torch  # noqa: E402

from assistant import evaluation  # noqa: E402
from assistant.chunking import Chunker  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.corpus import load_file, scan  # noqa: E402
from assistant.embedding import OnnxEncoder, SentenceTransformerEncoder  # noqa: E402
from assistant.pipeline import Assistant  # noqa: E402
from assistant.store import build_index  # noqa: E402

SQUAD = ROOT / "eval" / "squad-sample"
RESULTS = ROOT / "bench" / "results"


def chunk_texts(encoder: SentenceTransformerEncoder, settings: Settings) -> list[str]:
    chunker = Chunker(encoder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
    docs = [load_file(f) for f in scan(settings.corpus_dir)[0]]
    return [doc.text[c.start:c.end] for doc in docs for c in chunker.chunk(doc)]


def speed(texts: list[str], rounds: int) -> dict:
    torch_encoder = SentenceTransformerEncoder()
    onnx = {n: OnnxEncoder(threads=n) for n in (1, 2)}
    runs: dict[str, list[float]] = {}
    for encoder in (torch_encoder, *onnx.values()):
        encoder.encode(texts[:16])  # load and warm up
    for _ in range(rounds):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for name, encoder in (("torch", torch_encoder), ("onnx", onnx[threads])):
                started = time.perf_counter()
                encoder.encode(texts)
                runs.setdefault(f"{name}, {threads} thread(s)", []).append(len(texts) / (time.perf_counter() - started))
    torch.set_num_threads(os.cpu_count() or 1)
    return {variant: round(float(np.median(rates)), 1) for variant, rates in runs.items()}


def quality(settings: Settings, questions: Path, work: Path) -> dict:
    out = {}
    for backend in ("torch", "onnx"):
        built = settings.with_(index_dir=work / f"index-{backend}", backend=backend)
        encoder = SentenceTransformerEncoder() if backend == "torch" else OnnxEncoder()
        started = time.perf_counter()
        report = build_index(built, encoder)
        build_s = time.perf_counter() - started
        run = evaluation.evaluate_file(questions, Assistant.open(built, encoder), k=10)
        out[backend] = {"build_s": round(build_s, 1), "chunks": report.chunks,
                        "sentences": report.sentences_embedded, "questions": run.summary["questions"],
                        "hit@5": run.summary["hit@5"], "mrr@10": run.summary.get("mrr@10")}
    return out


def run(rounds: int, questions: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["ASSISTANT_CACHE"] = str(work / "cache")
        settings = Settings(corpus_dir=SQUAD / "corpus", reader="none")
        torch_encoder = SentenceTransformerEncoder()
        texts = chunk_texts(torch_encoder, settings)
        started = time.perf_counter()
        onnx = OnnxEncoder()
        onnx.session  # noqa: B018 - the export, on first use
        export_s = time.perf_counter() - started
        cosine = (torch_encoder.encode(texts) * onnx.encode(texts)).sum(axis=1)
        load = os.getloadavg()[0]
        rates = speed(texts, rounds)
        subset = work / "questions.jsonl"
        subset.write_text("".join((SQUAD / "questions.jsonl").read_text().splitlines(keepends=True)[:questions]))
        scores = quality(settings, subset, work)
    return {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2), "chunks": len(texts), "export_s": round(export_s, 1),
            "least_cosine": round(float(cosine.min()), 6), "texts_per_s": rates, "quality": scores}


def table(r: dict) -> str:
    lines = [f"| backend | threads | chunks/s ({r['chunks']} squad-sample chunks) |", "|---|---|---|"]
    for variant, rate in r["texts_per_s"].items():
        name, threads = variant.split(", ")
        lines.append(f"| {name} | {threads.split()[0]} | {rate} |")
    lines += ["", "| backend | index build | hit@5 | MRR@10 | questions |", "|---|---|---|---|---|"]
    for name, q in r["quality"].items():
        lines.append(f"| {name} | {q['build_s']} s | {q['hit@5']:.4f} | {q['mrr@10']:.4f} | {q['questions']} |")
    lines += ["", f"Export {r['export_s']} s; least cosine between the backends' chunk vectors {r['least_cosine']}. "
                  f"{r['date']}, {r['cpus']} CPUs, load average {r['load_before']} before, {r['load_after']} after."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, default=1500)
    args = parser.parse_args()
    results = run(args.rounds, args.questions)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "onnx.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
