"""Benchmark quote verification: time per check and verdict accuracy on generated quotes.

For the seed corpus and the squad-sample corpus, builds a temporary index with the real
model, then generates quotes from the documents with a fixed random seed:

- ``exact``: word-aligned cuts of one sentence, of several sentences (often straddling chunks)
  and longer than a chunk; expected ``verbatim``;
- ``typographic``: exact cuts with curly quotes, other dashes, line breaks or a capital first
  letter; expected ``verbatim``;
- ``elision``: a cut with words in the middle replaced by `` ... ``; expected ``verbatim``;
- ``number`` / ``word`` / ``negation``: a cut (one sentence, several, or longer than a chunk)
  with one digit changed, one word or name swapped, or a negation added or dropped; expected
  ``altered``, in the right document and place;
- ``absent``: sentences written for this benchmark that the corpus does not contain.

A check is correct when the verdict is the expected one and, for verbatim and altered quotes,
the best match lies in the source document and overlaps the span the quote was cut from.
Writes bench/results/quotes.json and bench/results/quotes.md.

    .venv/bin/python bench/bench_quotes.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
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
from assistant.quotes import QuoteChecker  # noqa: E402
from assistant.retrieval import Retriever  # noqa: E402
from assistant.store import Index, build_index, load_index  # noqa: E402
from assistant.textnorm import normalize  # noqa: E402
from assistant.types import Span  # noqa: E402

CORPORA = {
    "seed": ROOT / "corpus",
    "squad-sample": ROOT / "eval" / "squad-sample" / "corpus",
}
ABSENT = {
    "seed": [
        "Seoul will host the 2027 AI Safety Summit in the autumn.",
        "The Dutch Embassy funded a new quantum computing laboratory in Busan.",
        "South Korea banned all military uses of artificial intelligence in 2024.",
        "The fellowship lasted three years and ended with a book on robotics.",
        "North Korea signed a treaty limiting autonomous weapons last spring.",
        "The ministry plans to replace every diplomat with a language model by 2030.",
        "Samsung will move its entire chip production to the Netherlands.",
        "The interview was recorded in a cafe in Amsterdam during the winter.",
        "Korean farmers use drones to count cattle in the southern provinces.",
        "The coalition was dissolved after only two months because of budget cuts.",
        "Japan and Korea agreed to share a single national AI research agency.",
        "The researcher concluded that multilateralism has no future in Asia.",
        "Every Korean university must teach a compulsory course on AI ethics from next year.",
        "The defense agency bought ten thousand humanoid robots for border patrols.",
        "A new undersea cable will link Seoul directly to Rotterdam by 2026.",
        "The summit ended without any statement on cybersecurity or chips.",
        "The embassy closed its science office because of a lack of interest.",
        "Korean startups received free electricity for training large models.",
        "The professor described Korea as a minor player in semiconductor design.",
        "The United Nations moved its AI office from New York to Seoul.",
        "Most of the fellows spoke fluent Korean before they arrived.",
        "The government will tax every AI-generated image at five percent.",
        "Parliament rejected the AI basic act by a large majority in the final vote.",
        "The minister resigned after the chip export scandal was revealed.",
        "Researchers in Daejeon trained a model on the entire national library.",
        "The report recommends that embassies stop using digital tools altogether.",
        "Cultural exchange programs with Korea were cancelled for the coming decade.",
        "A regional bank financed the construction of three new data centers in Jeju.",
        "The interviewer asked whether Korean music helped the spread of AI.",
        "Military planners rely on weather satellites launched from the Antarctic.",
    ],
    "squad-sample": [
        "Beyonce opened a chain of vegan bakeries in Oslo in 2011.",
        "The Ming emperors appointed a Portuguese admiral to govern Lhasa.",
        "Twilight Princess was first released on a handheld console in Brazil.",
        "Spectre was filmed entirely on a single soundstage in Toronto.",
        "The Sichuan earthquake was predicted a week in advance by local farmers.",
        "New York City was briefly the capital of Canada in the eighteenth century.",
        "Solar panels were banned in Germany after a referendum in 1999.",
        "Link rides a mechanical dragon through the desert of the Twilight Realm.",
        "Destiny's Child recorded their first album in a church in Chicago.",
        "The Dalai Lama visited the Ming court every winter to play chess.",
        "Daniel Craig directed the film and also composed its entire soundtrack.",
        "The earthquake caused the Yangtze river to flow backwards for a month.",
        "Central Park was designed by a team of Italian engineers in 1920.",
        "Photovoltaic cells were invented by a Roman architect in the first century.",
        "Beyonce studied marine biology at a university in Scotland.",
        "The Tibetan kings paid an annual tribute of horses to the Vatican.",
        "Nintendo cancelled the game because the wolf design tested poorly.",
        "The film's opening scene takes place during a festival in Oslo.",
        "Rescue workers used trained dolphins to search the flooded towns.",
        "The subway system of New York was built entirely with wooden rails.",
        "Solar cookers are mandatory in every school kitchen in Canada.",
        "Jay Z and Beyonce founded a space exploration company in Houston.",
        "The Yongle Emperor converted to Buddhism after a visit to Mongolia.",
        "Midna is revealed to be the queen of an underwater kingdom.",
        "The villain of the film is a retired chess champion from Austria.",
        "Aftershocks of the earthquake were felt as far away as Argentina.",
        "Brooklyn declared independence from New York City in the 1950s.",
        "The largest solar farm in the world floats on a lake in Iceland.",
        "Beyonce's debut solo album was recorded entirely in Paris.",
        "The Ming dynasty built a railway connecting Beijing and Lhasa.",
    ],
}
STOP = set("the a an and or of to in on at for by with from as is was are were be been it its that this which "
           "who whom their his her they he she we our not no never".split())
AUX = ("is", "was", "are", "were", "has", "have", "had", "can", "will", "would", "could", "should", "did", "does", "do")
NEGATIONS = re.compile(r"\b(not|never|no)\b ?")


def _word_cut(text: str, start: int, end: int, rng: random.Random, lo: int, hi: int) -> tuple[int, int] | None:
    """A run of ``lo``-``hi`` whole words inside ``text[start:end]``, as offsets."""
    words = [m.span() for m in re.finditer(r"\S+", text[start:end])]
    if len(words) < lo:
        return None
    n = rng.randint(lo, min(hi, len(words)))
    first = rng.randint(0, len(words) - n)
    return start + words[first][0], start + words[first + n - 1][1]


def _sentences(index: Index) -> list[tuple[int, int, int]]:
    return [tuple(int(x) for x in row) for row in index.sentence_rows]


def _cut(index: Index, rng: random.Random, kind: str) -> tuple[int, int, int] | None:
    """A span to quote: (document number, start, end)."""
    rows = _sentences(index)
    i = rng.randrange(len(rows))
    doc_no, start, end = rows[i]
    text = index.documents[doc_no].text
    if kind == "sentence":
        found = _word_cut(text, start, end, rng, 6, 40)
    elif kind == "multi":
        last = min(len(rows) - 1, i + rng.randint(1, 3))
        while rows[last][0] != doc_no:
            last -= 1
        found = _word_cut(text, start, rows[last][2], rng, 20, 90)
    else:  # long: more than the longest chunk
        longest = max(int(r[2] - r[1]) for r in index.chunk_rows)
        stop = min(len(text), start + longest + 400)
        if stop - start < longest + 100:
            return None
        found = (start, text.rfind(" ", start, stop))
    return (doc_no, *found) if found else None


def _typographic(quote: str, rng: random.Random) -> str:
    """``quote`` with curly quotes made straight (or straight ones curly), other dashes, or else
    a line break, a double space or a capital first letter."""
    changed = quote.translate(str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'}))
    if changed == quote:
        changed = re.sub(r"(\w)'(\w)", "\\1\u2019\\2", changed)
        changed = re.sub(r'"([^"]*)"', "\u201c\\1\u201d", changed)
    changed = re.sub(r"(\d)-(\d)", "\\1\u2013\\2", changed)
    changed = changed.replace(" - ", " \u2014 ")
    if changed == quote:
        spaces = [m.start() for m in re.finditer(" ", quote)]
        choice = rng.choice(["newline", "case", "double"])
        if choice == "case" and quote[0].islower():
            changed = quote[0].upper() + quote[1:]
        elif spaces:
            at = rng.choice(spaces)
            changed = quote[:at] + ("\n" if choice == "newline" else "  ") + quote[at + 1 :]
    return changed


def _alter(quote: str, kind: str, rng: random.Random, vocabulary: list[str]) -> str | None:
    """``quote`` with one number, word or negation changed; None when it has no such thing."""
    if kind == "number":
        numbers = [m for m in re.finditer(r"\d+", quote)]
        if not numbers:
            return None
        m = rng.choice(numbers)
        k = rng.randrange(m.start(), m.end())
        digit = rng.choice([d for d in "0123456789" if d != quote[k] and not (d == "0" and k == m.start())])
        return quote[:k] + digit + quote[k + 1 :]
    if kind == "word":
        words = [m for m in re.finditer(r"\b[A-Za-z]{5,}\b", quote) if m.group().lower() not in STOP and m.start() > 0]
        if not words:
            return None
        m = rng.choice(words)
        same_case = [w for w in vocabulary if w[0].isupper() == m.group()[0].isupper() and w != m.group()]
        return quote[: m.start()] + rng.choice(same_case) + quote[m.end() :]
    negation = NEGATIONS.search(quote)
    if negation:
        return quote[: negation.start()] + quote[negation.end() :]
    aux = [m for m in re.finditer(r"\b(" + "|".join(AUX) + r")\b", quote)]
    if not aux:
        return None
    m = rng.choice(aux)
    return quote[: m.end()] + " not" + quote[m.end() :]


class _CachedEncoder:
    """The real encoder, remembering the vectors of the current quote so a second check of
    it shows the time spent outside the model."""

    def __init__(self, encoder: SentenceTransformerEncoder) -> None:
        self.encoder, self.name, self.vectors, self.calls = encoder, encoder.name, {}, 0

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    def count_tokens(self, text: str) -> int:
        return self.encoder.count_tokens(text)

    def encode(self, texts: list[str], *, progress: bool = False, desc: str = "") -> np.ndarray:
        missing = [t for t in texts if t not in self.vectors]
        if missing:
            self.calls += 1
            self.vectors.update(zip(missing, self.encoder.encode(missing)))
        return np.stack([self.vectors[t] for t in texts])


def generate(index: Index, name: str, rng: random.Random, counts: dict[str, int]) -> list[dict]:
    """Quotes with their expected verdict, source document and span."""
    normalized = "\n".join(normalize(d.text).text for d in index.documents)
    vocabulary = sorted({w for d in index.documents for w in re.findall(r"\b[A-Za-z]{5,}\b", d.text)})
    cases: list[dict] = []
    for kind, wanted in counts.items():
        if kind == "absent":
            cases += [{"kind": kind, "quote": q, "expected": "absent", "source": None} for q in ABSENT[name][:wanted]]
            continue
        made, tries = 0, 0
        while made < wanted and tries < wanted * 50:
            tries += 1
            shape = {"typographic": rng.choice(["sentence", "sentence", "multi"]), "elision": "multi"}.get(
                kind, rng.choice(["sentence", "sentence", "multi", "long"]))
            cut = _cut(index, rng, shape)
            if cut is None:
                continue
            doc_no, start, end = cut
            doc = index.documents[doc_no]
            quote = doc.text[start:end]
            if len(re.findall(r"\w+", quote)) < 6:
                continue
            expected = "verbatim"
            if kind == "typographic":
                quote = _typographic(quote, rng)
                if quote == doc.text[start:end]:
                    continue
            elif kind == "elision":
                words = quote.split()
                if len(words) < 16:
                    continue
                a = rng.randint(4, len(words) - 10)
                b = rng.randint(a + 2, len(words) - 5)
                quote = " ".join(words[:a]) + " ... " + " ".join(words[b:])
            elif kind in ("number", "word", "negation"):
                quote = _alter(quote, kind, rng, vocabulary)
                expected = "altered"
                if quote is None or normalize(quote).text.strip() in normalized:
                    continue
            cases.append({"kind": kind, "shape": shape, "quote": quote, "expected": expected,
                          "source": doc.doc_id, "start": start, "end": end})
            made += 1
    return cases


def run(name: str, corpus: Path, encoder: SentenceTransformerEncoder, counts: dict[str, int], seed: int) -> dict:
    """Build a temporary index of ``corpus``, generate the quotes and check each one twice."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus_dir=corpus, index_dir=Path(tmp) / "index")
        began = time.perf_counter()
        build_index(settings, encoder, progress=True)
        build_s = time.perf_counter() - began
        index = load_index(settings.index_dir)
        cached = _CachedEncoder(encoder)
        checker = QuoteChecker(index, cached, Retriever(index, cached, settings))
        began = time.perf_counter()
        checker.normalized  # noqa: B018 - the one-off normalisation of the corpus, timed apart
        prepare_s = time.perf_counter() - began
        cases = generate(index, name, random.Random(seed), counts)
        checker.check(cases[0]["quote"])  # warm up the model
        results = []
        for case in cases:
            cached.vectors.clear()
            began = time.perf_counter()
            check = checker.check(case["quote"])
            elapsed = time.perf_counter() - began
            began = time.perf_counter()  # again, the quote's vector now cached: all but the model
            checker.check(case["quote"])
            rest = time.perf_counter() - began
            best = check.matches[0] if check.matches else None
            results.append({**case, "verdict": check.verdict, "score": check.score, "ms": round(elapsed * 1000, 2),
                            "ms_without_model": round(rest * 1000, 2), "model_calls": cached.calls,
                            "correct": _correct(case, check.verdict, check.matches),
                            "best_doc": best.citation.doc_id if best else None})
            cached.calls = 0
        return {"corpus": name, "documents": len(index.documents), "chunks": len(index),
                "build_s": round(build_s, 1), "prepare_s": round(prepare_s, 3), "summary": summarize(results),
                "results": results}


def _correct(case: dict, verdict: str, matches: tuple) -> bool:
    """Right verdict and, unless absent, a match in the source document overlapping the cut.

    Every occurrence counts for a verbatim quote (a sentence may repeat); only the best
    match (or one tied with it) counts for an altered one.
    """
    if verdict != case["expected"]:
        return False
    if verdict == "absent":
        return True
    pool = matches if verdict == "verbatim" else [m for m in matches if m.score == matches[0].score]
    cut = Span(case["start"], case["end"])
    return any(m.citation.doc_id == case["source"] and m.citation.span.overlap(cut) for m in pool)


def _stats(rows: list[dict]) -> dict:
    def pct(values: list[float], q: float) -> float:
        values = sorted(values)
        return round(values[min(len(values) - 1, int(q * len(values)))], 1)

    ms, rest = [r["ms"] for r in rows], [r["ms_without_model"] for r in rows]
    return {"n": len(rows), "accuracy": round(sum(r["correct"] for r in rows) / len(rows), 4),
            "median_ms": round(statistics.median(ms), 1), "p95_ms": pct(ms, 0.95),
            "median_ms_without_model": round(statistics.median(rest), 1), "p95_ms_without_model": pct(rest, 0.95)}


def summarize(results: list[dict]) -> dict:
    out = {"all": _stats(results)}
    for key in ("exact", "typographic", "elision", "number", "word", "negation", "absent"):
        rows = [r for r in results if r["kind"] == key]
        if rows:
            out[key] = _stats(rows)
    for verdict in ("verbatim", "altered", "absent"):
        rows = [r for r in results if r["expected"] == verdict]
        if rows:
            out[f"expected_{verdict}"] = _stats(rows)
    altered = [r["score"] for r in results if r["expected"] == "altered"]
    absent = [r["score"] for r in results if r["expected"] == "absent"]
    out["scores"] = {"altered_min": min(altered, default=None), "absent_max": max(absent, default=None)}
    return out


def markdown(runs: list[dict]) -> str:
    """Two tables: verdict accuracy per kind of quote, and time per check (median / p95 ms)."""
    kinds = ("exact", "typographic", "elision", "number", "word", "negation", "absent")
    lines = ["| corpus | quotes | accuracy | " + " | ".join(kinds) + " |", "|---|---|---|" + "---|" * len(kinds)]
    for r in runs:
        s = r["summary"]
        cells = " | ".join(f"{s[k]['accuracy']:.3f} ({s[k]['n']})" if k in s else "-" for k in kinds)
        lines.append(f"| {r['corpus']} ({r['documents']} docs, {r['chunks']} chunks) | {s['all']['n']} | "
                     f"{s['all']['accuracy']:.3f} | {cells} |")
    lines += ["", "| corpus | all quotes | expected verbatim | expected altered | expected absent "
              "| all, without the model call |", "|---|---|---|---|---|---|"]
    for r in runs:
        s = r["summary"]
        cells = [f"{s[k]['median_ms']} / {s[k]['p95_ms']}"
                 for k in ("all", "expected_verbatim", "expected_altered", "expected_absent")]
        cells.append(f"{s['all']['median_ms_without_model']} / {s['all']['p95_ms_without_model']}")
        lines.append(f"| {r['corpus']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of quotes per kind")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quotes.json")
    args = parser.parse_args()
    base = {"exact": 60, "typographic": 40, "elision": 20, "number": 30, "word": 30, "negation": 30, "absent": 30}
    counts = {k: max(1, round(v * args.scale)) for k, v in base.items()}
    encoder = SentenceTransformerEncoder()
    load_before = os.getloadavg()
    runs = [run(name, corpus, encoder, counts, args.seed) for name, corpus in CORPORA.items()]
    machine = {"cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
               "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seed": args.seed, "counts": counts, "machine": machine, "runs": runs},
                                   indent=1, ensure_ascii=False) + "\n")
    table = markdown(runs)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"machine: {machine}", file=sys.stderr)
    for r in runs:
        print(r["corpus"], json.dumps(r["summary"]), file=sys.stderr)


if __name__ == "__main__":
    main()
