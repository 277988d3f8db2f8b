"""Training examples as the assistant meets them: its own candidates for SQuAD train questions.

In the assistant the reader reads the best sentences of the top passages of a whole corpus, so
most of what it must tell apart are sentences of *other* passages that retrieval found. The
examples ``train_reader.py`` builds pair a question with sentences of its own article only, and
on squad-sample the reader alone picks a sentence of the wrong passage more often than a wrong
sentence of the right one. This script makes examples of the first kind:

1. ``--articles`` SQuAD train articles (never squad-sample's, never the articles
   ``train_reader.py`` holds out, seeded) are written as a corpus and indexed with the product's
   own chunking, embedding and index;
2. ``--questions`` of their questions (varied as in training: some lower-cased, some cut to key
   words) are retrieved with the product's own retrieval, and the best ``--candidates``
   sentences by the hand-tuned score (what the reader reads) become examples, each labelled by
   whether it holds the gold answer, with the answer's span in it when it does.

The examples are written as JSON lines for ``train_reader.py --mined``. With ``--held-out``
the articles ``train_reader.py`` held out are mined instead, never to train on: for
``export_reader.py --held-out-candidates``, which measures how often the reader picks a right
sentence among the assistant's own candidates.

    python training/mine_candidates.py --squad PATH/train-v1.1.json.gz --out training/run-v3/mined.jsonl
    python training/mine_candidates.py --squad PATH/train-v1.1.json.gz --out training/run-v3/held-out.jsonl --held-out
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # before FAISS, torch and transformers are loaded

from assistant.config import Settings  # noqa: E402
from assistant.embedding import SentenceTransformerEncoder  # noqa: E402
from assistant.pipeline import Assistant  # noqa: E402
from assistant.store import build_index  # noqa: E402
from training.train_reader import load_squad, split_articles, vary  # noqa: E402


def write_corpus(articles: list[dict], folder: Path) -> None:
    """One text file per article: its title, then its paragraphs separated by blank lines."""
    folder.mkdir(parents=True, exist_ok=True)
    for article in articles:
        name = re.sub(r"[^\w-]", "_", article["title"])
        text = "\n\n".join([article["title"].replace("_", " ")] + [p["context"] for p in article["paragraphs"]])
        (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")


def answer_span(sentence: str, answer: str) -> tuple[int, int] | None:
    """Where the answer is in the sentence (first as written, then ignoring case); None if not there."""
    at = sentence.find(answer)
    if at < 0:
        at = sentence.lower().find(answer.lower())
    if at < 0 or sentence[at : at + len(answer)].lower() != answer.lower():
        return None
    return at, at + len(answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, required=True, help="SQuAD v1.1 train JSON (.json or .json.gz)")
    parser.add_argument("--out", type=Path, required=True, help="examples to write (JSON lines)")
    parser.add_argument("--articles", type=int, default=60, help="training articles to index")
    parser.add_argument("--questions", type=int, default=4000, help="questions to retrieve")
    parser.add_argument("--candidates", type=int, default=8, help="sentences per question, as the reader reads")
    parser.add_argument("--dev-articles", type=int, default=20, help="as train_reader.py: held out, never mined")
    parser.add_argument("--held-out", action="store_true", help="mine the held-out articles (to measure, never to train)")
    parser.add_argument("--seed", type=int, default=13, help="as train_reader.py: splits the articles")
    parser.add_argument("--sample-seed", type=int, default=21, help="picks the articles and questions")
    args = parser.parse_args()

    dev, train = split_articles(load_squad(args.squad), args.dev_articles, args.seed)
    source = dev if args.held_out else train
    rng = random.Random(args.sample_seed)
    articles = rng.sample(source, min(args.articles, len(source)))
    pool = [qa for a in articles for p in a["paragraphs"] for qa in p["qas"]]
    rng.shuffle(pool)
    pool = pool[: args.questions]

    encoder = SentenceTransformerEncoder()
    counts = {"questions": len(pool), "examples": 0, "positives": 0, "without_positive": 0}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus_dir=Path(tmp) / "corpus", index_dir=Path(tmp) / "index", reader="none")
        write_corpus(articles, settings.corpus_dir)
        build_index(settings, encoder)
        assistant = Assistant.open(settings, encoder)  # reader "none": candidates by the hand-tuned score
        extractor = assistant.extractor
        questions = [vary(qa["question"], rng) for qa in pool]
        vectors = encoder.encode(questions)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", encoding="utf-8") as out:
            for qa, question, vector in tqdm(list(zip(pool, questions, vectors)), desc="mining", unit="q"):
                retrieval = assistant.retriever.retrieve(question, k=10, vector=vector)
                ranked, _ = extractor.ranked(retrieval)
                answer = qa["answers"][0]["text"]
                positives = 0
                for c in ranked[: args.candidates]:
                    sentence, before, after = extractor.window(c.sentence)
                    span = answer_span(sentence, answer)
                    positives += span is not None
                    out.write(json.dumps({"question": question, "window": [sentence, before, after],
                                          "label": int(span is not None), "answer": span, "qid": qa["id"]},
                                         ensure_ascii=False) + "\n")
                    counts["examples"] += 1
                counts["positives"] += positives
                counts["without_positive"] += positives == 0
    print(json.dumps(counts | {"articles": len(articles)}))


if __name__ == "__main__":
    main()
