"""Index build: the whole build against the model's raw embedding of the same texts, side by side.

    .venv/bin/python bench/bench_build.py [--corpus DIR] [--keep DIR]

On a copy of the squad-sample corpus, in one process with the model loaded once:

1. raw embedding: the model alone (``SentenceTransformer.encode``, one call per kind, batch
   32) on the very texts the build embeds: every chunk and every sentence;
2. a full build (load, chunk, split sentences, embed, FAISS, write, fsync), with the time
   spent inside the encoder measured separately;
3. ``--rebuild`` of the unchanged corpus (every vector comes from the embedding cache);
4. an update after editing one sentence in the middle of one document, and one after
   appending a paragraph to another;
5. an update when nothing changed.

Writes bench/results/build.json and prints a Markdown table. ``--keep DIR`` leaves the
squad-sample index in DIR for the other benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # before torch and FAISS are loaded

from assistant.config import Settings  # noqa: E402
from assistant.embedding import SentenceTransformerEncoder  # noqa: E402
from assistant.store import build_index, load_index  # noqa: E402

SQUAD = ROOT / "eval" / "squad-sample" / "corpus"


class TimedEncoder:
    """The encoder, with the seconds spent embedding and the number of texts counted."""

    def __init__(self, encoder: SentenceTransformerEncoder) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.seconds = 0.0
        self.texts = 0

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    def count_tokens(self, text: str) -> int:
        return self.encoder.count_tokens(text)

    def encode(self, texts: list[str], **kwargs: object) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.encoder.encode(texts, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.texts += len(texts)


def timed_build(settings: Settings, encoder: SentenceTransformerEncoder, **kwargs: object) -> dict:
    timed = TimedEncoder(encoder)
    started = time.perf_counter()
    report = build_index(settings, timed, **kwargs)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "embedding_seconds": round(timed.seconds, 2),
            "chunks": report.chunks, "sentences": report.sentences, "chunks_embedded": report.chunks_embedded,
            "sentences_embedded": report.sentences_embedded, "changed": report.changed}


def raw_embedding(encoder: SentenceTransformerEncoder, texts: list[str]) -> float:
    """Seconds for the bare model to embed ``texts`` in one call."""
    model = encoder.model
    started = time.perf_counter()
    model.encode(texts, batch_size=encoder.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                 show_progress_bar=False)
    return time.perf_counter() - started


def edit_middle_sentence(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    middle = text.index(". ", len(text) // 2) + 2
    path.write_text(text[:middle] + "This sentence was added by the benchmark. " + text[middle:], encoding="utf-8")


def run(corpus: Path, keep: Path | None = None) -> dict:
    encoder = SentenceTransformerEncoder()
    encoder.encode(["warm up the model"] * 8)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "corpus"
        shutil.copytree(corpus, work)
        settings = Settings(corpus_dir=work, index_dir=Path(tmp) / "index")
        load = lambda: os.getloadavg()[0]  # noqa: E731
        results: dict = {"load_before": round(load(), 2)}

        full = timed_build(settings, encoder)
        if keep:  # the index of the unedited corpus, for the other benchmarks
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(settings.index_dir, keep, ignore=shutil.ignore_patterns(".lock"))
        index = load_index(settings.index_dir)
        chunk_texts = [index.chunk(i).text for i in range(len(index))]
        sentence_texts = [doc.text[span.start : span.end] for doc, span in map(index.sentence, range(len(index.sentence_rows)))]
        raw_chunks = raw_embedding(encoder, chunk_texts)
        raw_sentences = raw_embedding(encoder, sentence_texts)
        raw = raw_chunks + raw_sentences
        results["full_build"] = full
        results["raw_embedding"] = {"chunks_seconds": round(raw_chunks, 2), "sentences_seconds": round(raw_sentences, 2),
                                    "seconds": round(raw, 2)}
        results["chunks_per_second"] = round(full["chunks"] / full["seconds"], 1)
        results["raw_chunks_per_second"] = round(len(chunk_texts) / raw_chunks, 1)
        results["build_over_raw"] = round(full["seconds"] / raw, 3)
        results["build_over_raw_chunks_only"] = round(full["seconds"] / raw_chunks, 3)

        results["rebuild_cached"] = timed_build(settings, encoder, rebuild=True)
        docs = sorted(work.glob("*.txt"), key=lambda p: p.stat().st_size)
        edit_middle_sentence(docs[len(docs) // 2])
        results["update_edit_one_sentence"] = {"document": docs[len(docs) // 2].stem, **timed_build(settings, encoder)}
        with docs[0].open("a", encoding="utf-8") as fh:
            fh.write("\n\nA paragraph appended by the benchmark, about nothing in particular at all.\n")
        results["update_append_paragraph"] = {"document": docs[0].stem, **timed_build(settings, encoder)}
        results["update_nothing_changed"] = timed_build(settings, encoder)
        for name in ("rebuild_cached", "update_edit_one_sentence", "update_append_paragraph", "update_nothing_changed"):
            results[name]["share_of_full_build"] = round(results[name]["seconds"] / full["seconds"], 4)
        results["load_after"] = round(load(), 2)
    return results


def table(r: dict) -> str:
    full, raw = r["full_build"], r["raw_embedding"]
    lines = [
        "| step | seconds | share of full build | chunks embedded | sentences embedded |",
        "|---|---|---|---|---|",
        f"| raw embedding, chunks + sentences (model alone) | {raw['seconds']} | "
        f"{round(raw['seconds'] / full['seconds'], 3)} | {full['chunks']} | {full['sentences']} |",
        f"| raw embedding, chunks only | {raw['chunks_seconds']} | {round(raw['chunks_seconds'] / full['seconds'], 3)} "
        f"| {full['chunks']} | 0 |",
        f"| full build (of which embedding {full['embedding_seconds']} s) | {full['seconds']} | 1.0 | "
        f"{full['chunks_embedded']} | {full['sentences_embedded']} |",
    ]
    for name, label in (("rebuild_cached", "`--rebuild`, unchanged text"),
                        ("update_edit_one_sentence", "update: one sentence inserted in one document"),
                        ("update_append_paragraph", "update: one paragraph appended to one document"),
                        ("update_nothing_changed", "update: nothing changed")):
        s = r[name]
        lines.append(f"| {label} | {s['seconds']} | {s['share_of_full_build']} | {s['chunks_embedded']} | "
                     f"{s['sentences_embedded']} |")
    lines.append("")
    lines.append(f"Build / raw embedding of the same texts: **{r['build_over_raw']}x** "
                 f"(against the chunks alone: {r['build_over_raw_chunks_only']}x). "
                 f"Chunks per second: build {r['chunks_per_second']}, raw model on chunks {r['raw_chunks_per_second']}. "
                 f"Load average {r['load_before']} before, {r['load_after']} after.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=SQUAD)
    parser.add_argument("--keep", type=Path, help="Leave the squad-sample index here.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "build.json")
    args = parser.parse_args()
    results = run(args.corpus, args.keep)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
