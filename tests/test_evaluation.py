"""Evaluation: question sets, metrics checked against values worked out by hand, outputs,
reproducibility and the comparison of two runs. Fast: hand-built responses or FakeEncoder."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import evaluation, report
from assistant.cli import main
from assistant.compare import compare_files, compare_runs, load_results
from assistant.config import Settings
from assistant.errors import InputError
from assistant.evaluation import Question, evaluate, evaluate_file, latency_summary, load_question_set
from assistant.metrics import EXPLANATIONS, SUMMARY_OF, metric_counts
from assistant.pipeline import Assistant, Response
from assistant.store import build_index
from assistant.types import Answer, Citation, Passage, Span
from conftest import DATA, FakeEncoder

EVAL_DATA = DATA / "eval"


def _citation(doc_id: str, text: str) -> Citation:
    return Citation(doc_id, Span(0, len(text)), text, title=doc_id, source=f"{doc_id}.txt")


def _passage(rank: int, doc_id: str, text: str) -> Passage:
    return Passage(rank, _citation(doc_id, text), score=round(1 / rank, 6))


def _answer(text: str, doc_id: str = "x") -> Answer:
    return Answer(_citation(doc_id, text), confidence=0.9, passage_rank=1)


def _ask(responses: dict[str, Response]):
    return lambda group: [responses[q.question] for q in group]


# Four answerable and three unanswerable questions with hand-built responses.
HAND = [
    (Question("q1", "Capital of France?", ["Paris"], ["france"], {"category": "geo"}),
     [_passage(1, "france", "The capital of France is Paris."), _passage(2, "tower", "A tall tower.")],
     _answer("The capital is Paris.")),
    # the gold string at rank 2 is in the wrong document; the first real hit is rank 3
    (Question("q2", "When was the tower built?", ["1889"], ["tower"], {"category": "geo"}),
     [_passage(1, "tower", "The tower is tall."), _passage(2, "france", "Built in 1889 in Paris."),
      _passage(3, "tower", "Completed in 1889.")],
     None),
    (Question("q3", "Largest animal?", ["blue whale", "Balaenoptera musculus"], ["whales", "ocean"],
              {"category": "bio", "tags": ["sea"]}),
     [_passage(1, "ocean", "The ocean is deep."), _passage(2, "whales", "Whales sing.")],
     _answer("The \u201cBlue Whale\u201d is largest.")),
    (Question("q4", "Highest mountain?", ["Mount Everest"], ["everest"]),
     [_passage(1, "everest", "Mount Everest is the highest."), _passage(2, "alps", "The Alps are high."),
      _passage(3, "everest", "Climbers reach Mount  EVEREST in May.")],
     _answer("Something else entirely.")),
    (Question("ooc-1", "Who won the 1998 World Cup?"), [_passage(1, "france", "Paris.")], None),
    (Question("imp-1", "When was the tower painted blue?"), [_passage(1, "tower", "Tall.")], _answer("Tall.")),
    (Question("ooc-2", "Who wrote Hamlet?"), [], None),
]


def _hand_run(k: int = 10) -> evaluation.Evaluation:
    questions = [q for q, _, _ in HAND]
    responses = {q.question: Response(q.question, passages, answer) for q, passages, answer in HAND}
    return evaluate(questions, _ask(responses), k=k)


def test_metrics_worked_out_by_hand() -> None:
    result = _hand_run()
    per = {row["id"]: row["metrics"] for row in result.rows}
    assert [per[q]["hit_rank"] for q in ("q1", "q2", "q3", "q4")] == [1, 3, None, 1]
    assert per["q2"]["rr@10"] == pytest.approx(1 / 3, abs=1e-6)
    # nDCG: q2 relevant only at rank 3 -> (1/log2 4) / 1; q4 relevant at ranks 1 and 3
    assert per["q2"]["ndcg@10"] == pytest.approx(0.5, abs=1e-6)
    ndcg_q4 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert per["q4"]["ndcg@10"] == pytest.approx(ndcg_q4, abs=1e-6)
    assert per["q3"]["doc_recall@1"] == 0.5 and per["q3"]["doc_recall@3"] == 1.0
    # token F1: "capital is paris" vs "paris" -> P 1/3, R 1; "blue whale is largest" vs "blue whale" -> P 1/2, R 1
    assert per["q1"]["answer_f1"] == pytest.approx(0.5, abs=1e-6)
    assert per["q3"]["answer_f1"] == pytest.approx(2 / 3, abs=1e-6)
    assert per["q3"]["answer_correct"] == 1  # typographic quotes and case normalised
    assert per["q4"]["answer_correct"] == 0 and per["q2"]["answered"] == 0
    assert [per[q]["abstained"] for q in ("ooc-1", "imp-1", "ooc-2")] == [1, 0, 1]
    assert per["ooc-1"]["hit@1"] is None and per["q1"]["abstained"] is None

    s = result.summary
    assert (s["questions"], s["answerable"], s["unanswerable"]) == (7, 4, 3)
    assert (s["hit@1"], s["hit@3"], s["hit@5"], s["hit@10"]) == (0.5, 0.75, 0.75, 0.75)
    assert s["mrr@10"] == round((1 + 1 / 3 + 0 + 1) / 4, 4)
    assert s["ndcg@10"] == round((1 + 0.5 + 0 + ndcg_q4) / 4, 4)
    assert s["doc_recall@1"] == 0.875 and s["doc_recall@3"] == 1.0
    assert s["answer_accuracy"] == 0.5
    assert s["answer_f1"] == round((0.5 + 0 + 2 / 3 + 0) / 4, 4)
    assert s["answered"] == 0.75
    assert s["abstention_accuracy"] == round(2 / 3, 4)
    assert set(s["by_prefix"]) == {"imp-", "ooc-"}
    assert s["by_prefix"]["ooc-"]["abstention_accuracy"] == 1.0 and s["by_prefix"]["ooc-"]["questions"] == 2
    assert s["by_prefix"]["imp-"]["abstention_accuracy"] == 0.0
    assert set(s["by_category"]) == {"category"}  # "tags" holds lists: not a category
    geo, bio = s["by_category"]["category"]["geo"], s["by_category"]["category"]["bio"]
    assert (geo["questions"], geo["hit@1"], geo["mrr@10"]) == (2, 0.5, round((1 + 1 / 3) / 2, 4))
    assert (bio["questions"], bio["hit@1"], bio["answer_accuracy"]) == (1, 0.0, 1.0)


def test_results_rows_round_trip_and_older_rows_still_load() -> None:
    """A row's answer and passages read back as they were; rows written before the Citation
    type (flat fields and a ``link``) read as the same citation."""
    rows = _hand_run().rows
    for row, (_, passages, answer) in zip(rows, HAND):
        loaded = json.loads(json.dumps(row))
        assert [Passage.from_dict(p) for p in loaded["passages"]] == passages
        assert (Answer.from_dict(loaded["answer"]) if loaded["answer"] else None) == answer
    old_answer = {"text": "The capital is Paris.", "doc_id": "x", "title": "x", "source": "x.txt", "start": 0,
                  "end": 21, "confidence": 0.9, "passage_rank": 1, "author": None, "date": None, "page": None,
                  "link": "/source?doc=x&start=0&end=21", "phrase": None}
    assert Answer.from_dict(old_answer) == HAND[0][2]
    old_passage = {"rank": 2, "doc_id": "tower", "title": "tower", "source": "tower.txt", "start": 0, "end": 13,
                   "text": "A tall tower.", "score": 0.5, "author": None, "date": None, "page": None,
                   "link": "/source?doc=tower&start=0&end=13"}
    assert Passage.from_dict(old_passage) == HAND[0][1][1]


def test_cutoffs_above_k_do_not_apply() -> None:
    s = _hand_run(k=3).summary
    assert s["hit@3"] == 0.75 and s["hit@5"] is None and s["hit@10"] is None
    # the top 10 was not retrieved: no mrr@10 or ndcg@10 (a shorter list would score a higher nDCG)
    assert s["mrr@10"] is None and s["ndcg@10"] is None and _hand_run(k=10).summary["ndcg@10"] is not None


def test_latency_percentiles() -> None:
    # numpy's linear interpolation: p50 between 20 and 30 ms, p95 at 2.85 of 3 steps
    assert latency_summary([0.01, 0.02, 0.03, 0.04]) == {"p50": 25.0, "p95": 38.5, "mean": 25.0, "max": 40.0}


def test_report_lists_failures_with_question_gold_and_answer(tmp_path: Path) -> None:
    result = _hand_run()
    stamp = {"question_set": {"name": "hand.jsonl", "sha256": "0" * 64, "questions": 7, "skipped": []},
             "index": {"version": "v-1", "manifest_sha256": "1" * 64, "documents": 5, "chunks": 9},
             "model": "fake-encoder", "reader": {"name": "none", "fingerprint": "hand-tuned scorer"},
             "package_version": "0", "metrics_library": "ir-measures", "settings": {"k": 10}}
    timing = {"started_at": "2026-01-01T00:00:00+00:00", "seconds": 1.0,
              "latency_ms": latency_summary([0.01]), "per_question_ms": {}}
    files = report.write_outputs(tmp_path, result.summary, result.rows, stamp, timing)
    text = files["report"].read_text(encoding="utf-8")
    assert "| hit@1 | 0.5000 | – | – |" in text  # columns: all, imp-, ooc-
    assert "| abstention\\_accuracy" not in text and "| abstention_accuracy | 0.6667 | 0.0000 | 1.0000 |" in text
    assert f"| answer_accuracy | 4 | {EXPLANATIONS['answer_accuracy']} |" in text.split("### What the metrics mean")[1]
    miss = text.split("### retrieval miss")[1].split("###")[0]
    assert "**q3**: Largest animal?" in miss and '"blue whale"' in miss and "ocean, chars 0–18" in miss
    wrong = text.split("### wrong answer")[1].split("###")[0]
    assert "**q4**" in wrong and '"Something else entirely."' in wrong and "**q1**" not in wrong
    assert "**imp-1**" in text.split("### answered an unanswerable question")[1]
    assert files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_lines = files["results_csv"].read_text(encoding="utf-8").splitlines()
    assert csv_lines[0].startswith("id,question,answers,sources,extra.category,extra.tags,answer,")
    assert len(csv_lines) == 8


# --- question sets ------------------------------------------------------------------------


def test_jsonl_and_csv_give_the_same_questions() -> None:
    jsonl = load_question_set(EVAL_DATA / "mini.jsonl")
    csv_set = load_question_set(EVAL_DATA / "mini.csv")
    fields = [(q.id, q.question, q.answers, q.sources, q.extra) for q in jsonl.questions]
    assert fields == [(q.id, q.question, q.answers, q.sources, q.extra) for q in csv_set.questions]
    assert fields[1] == ("c1", "When, exactly, was the road to the copper mine built?", ["1915", "in 1915"],
                         ["page"], {"category": "industry"})
    assert fields[3][2:] == ([], [], {})
    assert len(jsonl.sha256) == 64 and jsonl.sha256 != csv_set.sha256


DOCS = {"notes", "page", "repeat"}
GOOD = '{"id": "a", "question": "Where?", "answers": ["x"], "sources": ["notes"]}\n'


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("bad.jsonl", GOOD + "not json\n", 'line 2: not valid JSON'),
    ("bad.jsonl", GOOD + "\n[1, 2]\n", "line 3: expected a JSON object"),
    ("bad.jsonl", GOOD + '{"id": "b", "question": "ok"}\n' + GOOD, "line 3: duplicate id 'a'"),
    ("bad.jsonl", GOOD + '{"id": "b", "question": "   ", "answers": []}\n', 'line 2: empty or missing "question"'),
    ("bad.jsonl", GOOD + '{"question": "who?"}\n', 'line 2: missing or empty "id"'),
    ("bad.jsonl", GOOD + '{"id": "b", "question": "q", "answers": "x"}\n', 'line 2: "answers" must be a list'),
    ("bad.jsonl", GOOD + '{"id": "b", "question": "q", "answers": [""]}\n', 'line 2: "answers" must be a list'),
    ("bad.jsonl", GOOD + '{"id": "b", "question": "q", "answers": ["x"], "sources": ["nots"]}\n',
     "line 2: unknown source document id 'nots' (not in the index); did you mean 'notes'?"),
    ("bad.csv", 'id,question,answers,sources\na,"Where,\nthen?",x,notes\nb,q,x\n', "line 4: expected 4 fields"),
    ("bad.csv", "id,question,answers,sources\na,Where?,x,notes\na,Again?,x,notes\n", "line 3: duplicate id 'a'"),
    ("bad.csv", "id,question,answers,sources\na,Where?,x,notez|page\n", "line 2: unknown source document id 'notez'"),
    ("bad.csv", "id,question,answers,sources\na,,x,notes\n", 'line 2: empty or missing "question"'),
    ("bad.csv", "ident,question,answers\na,Where?,x\n", "line 1 must be a header"),
    ("empty.jsonl", "\n\n", "no usable questions"),
])
def test_malformed_sets_are_reported_with_line_numbers(tmp_path: Path, name: str, content: str,
                                                       expected: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as error:
        load_question_set(path, documents=DOCS)
    assert expected in str(error.value)


def test_skip_invalid_keeps_the_good_lines(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(GOOD + "oops\n" + '{"id": "b", "question": "Who?", "answers": [], "sources": []}\n'
                    + '{"id": "a", "question": "dup"}\n', encoding="utf-8")
    loaded = load_question_set(path, documents=DOCS, skip_invalid=True)
    assert [q.id for q in loaded.questions] == ["a", "b"]
    assert [(p.line, p.message.split(" (")[0]) for p in loaded.skipped] == [(2, "not valid JSON"),
                                                                           (4, "duplicate id 'a'")]


# --- against a FakeEncoder index ----------------------------------------------------------


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("fake")
    shutil.copytree(DATA / "mini", root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", model="fake-encoder",
                        chunk_tokens=20, chunk_overlap=4)
    build_index(settings, FakeEncoder())
    return settings


def test_nothing_runs_until_the_file_is_right(fake_index: Settings, tmp_path: Path) -> None:
    assistant = Assistant.open(fake_index, FakeEncoder())
    path = tmp_path / "set.jsonl"
    path.write_text(GOOD + '{"id": "b", "question": "q", "answers": ["x"], "sources": ["Notes"]}\n')
    with pytest.raises(InputError, match="line 2: unknown source document id 'Notes'"):
        evaluate_file(path, assistant, tmp_path / "out")
    assert assistant.encoder.encoded == [] and not (tmp_path / "out").exists()
    run = evaluate_file(path, assistant, skip_invalid=True)
    assert run.summary["questions"] == 1 and run.stamp["question_set"]["skipped"][0].startswith("line 2:")


def test_two_runs_give_identical_results(fake_index: Settings, tmp_path: Path) -> None:
    runs = [evaluate_file(EVAL_DATA / "mini.jsonl", Assistant.open(fake_index, FakeEncoder()), tmp_path / name)
            for name in ("one", "two")]
    for name in ("results.jsonl", "results.csv", "summary.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    reports = [(tmp_path / name / "report.md").read_text(encoding="utf-8") for name in ("one", "two")]
    assert reports[0].split("## Timing")[0] == reports[1].split("## Timing")[0]
    assert runs[0].rows == runs[1].rows and runs[0].stamp == runs[1].stamp
    timing = json.loads((tmp_path / "one" / "timing.json").read_text())
    assert set(timing["per_question_ms"]) == {"g1", "c1", "r1", "ooc-1"} and timing["latency_ms"]["p95"] > 0
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    stamp = summary["stamp"]
    assert stamp["model"] == "fake-encoder" and stamp["question_set"]["name"] == "mini.jsonl"
    assert stamp["reader"] == runs[0].stamp["reader"] and stamp["reader"]["name"] == runs[0].stamp["settings"]["reader"]
    assert len(stamp["index"]["manifest_sha256"]) == 64 and stamp["settings"]["k"] == 10
    assert "started_at" not in json.dumps(summary)
    # the retrieval of this tiny corpus is easy: every gold passage is found
    assert summary["summary"]["hit@3"] == 1.0 and summary["summary"]["questions"] == 4


# --- comparison ---------------------------------------------------------------------------


def _rows(hits: set[str], ids: list[str]) -> list[dict]:
    questions = [Question(i, f"question {i}?", ["gold"], ["d"]) for i in ids]
    responses = {q.question: Response(q.question, [_passage(1, "d", "the gold text" if q.id in hits else "nothing")])
                 for q in questions}
    return evaluate(questions, _ask(responses)).rows


def test_compare_reports_deltas_flips_and_a_paired_test(tmp_path: Path) -> None:
    ids = [f"n{i:02}" for i in range(1, 13)]
    a = _rows({"n01"}, [*ids, "x1"])
    b = _rows(set(ids[1:]), [*ids, "y1"])
    (tmp_path / "a.jsonl").write_text(report.results_jsonl(a))
    (tmp_path / "b.jsonl").write_text(report.results_jsonl(b))
    comparison = compare_files(tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    assert comparison["questions"] == {"shared": 12, "only_a": ["x1"], "only_b": ["y1"], "gold_changed": []}
    hit = comparison["metrics"]["hit@1"]
    assert hit["better"] == ids[1:] and hit["worse"] == ["n01"]
    assert (hit["n"], hit["a"], hit["b"], hit["delta"]) == (12, round(1 / 12, 4), round(11 / 12, 4), round(10 / 12, 4))
    # exact sign test on 11 better, 1 worse: 2 * (C(12,11) + C(12,12)) / 2**12
    assert hit["test"] == "sign test" and hit["p_value"] == pytest.approx(26 / 4096, abs=1e-6) and hit["significant"]
    same = compare_runs(a, a)["metrics"]["mrr@10"]
    assert (same["delta"], same["p_value"], same["better"], same["worse"]) == (0.0, 1.0, [], [])
    assert comparison["metrics"]["ndcg@10"]["test"] == "wilcoxon"
    assert "answer_accuracy" in comparison["metrics"] and comparison["metrics"]["answered"]["delta"] == 0.0


def test_compare_refuses_a_file_that_is_not_results(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 1 has no id and metrics"):
        load_results(EVAL_DATA / "mini.jsonl")


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def cli_index(fake_index: Settings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """CLI options for the FakeEncoder index; the CLI's model loader returns a FakeEncoder."""
    monkeypatch.setattr("assistant.embedding.SentenceTransformerEncoder", lambda *a, **kw: FakeEncoder())
    return ["--corpus", str(fake_index.corpus_dir), "--index", str(fake_index.index_dir), "--model", "fake-encoder"]


def _cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_eval_writes_every_output(cli_index: list[str], tmp_path: Path) -> None:
    out = tmp_path / "flat" / "results.csv"
    result = _cli("eval", str(EVAL_DATA / "mini.csv"), "--report-dir", str(tmp_path / "run"), "--out", str(out),
                  "--json", *cli_index)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"questions", "hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "ndcg@10", "answer_accuracy",
            "abstention_accuracy", "latency_ms", "stamp", "files"} <= set(data)
    assert data["questions"] == 4 and data["by_category"]["category"]["industry"]["questions"] == 1
    assert "Evaluating" in result.stderr and "100%" in result.stderr
    for name in ("results.jsonl", "results.csv", "summary.json", "timing.json", "report.md", "hit_at_k.png"):
        assert (tmp_path / "run" / name).is_file(), name
    assert out.read_text(encoding="utf-8") == (tmp_path / "run" / "results.csv").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert rows[1]["extra"] == {"category": "industry"} and rows[1]["metrics"]["hit_rank"] == 1

    text = _cli("eval", str(EVAL_DATA / "mini.jsonl"), *cli_index)
    assert text.exit_code == 0 and "hit@1" in text.stdout and "latency p50/p95" in text.stdout


def test_cli_eval_invalid_set_runs_nothing(cli_index: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(GOOD + "{broken\n" + '{"id": "c", "question": "", "answers": []}\n')
    result = _cli("eval", str(bad), "--report-dir", str(tmp_path / "run"), *cli_index)
    assert result.exit_code == 2
    assert "line 2: not valid JSON" in result.stderr and 'line 3: empty or missing "question"' in result.stderr
    assert "Evaluating" not in result.stderr and not (tmp_path / "run").exists()
    result = _cli("eval", str(bad), "--skip-invalid", "--json", *cli_index)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["questions"] == 1 and "warning: skipped line 2" in result.stderr


def test_cli_compare(cli_index: list[str], tmp_path: Path) -> None:
    for name, k in (("a", "1"), ("b", "5")):
        assert _cli("eval", str(EVAL_DATA / "mini.jsonl"), "--k", k, "--report-dir", str(tmp_path / name),
                    "--json", *cli_index).exit_code == 0
    result = _cli("eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b" / "results.jsonl"), "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["a"]["stamp"]["settings"]["k"] == 1 and data["b"]["stamp"]["settings"]["k"] == 5
    assert data["metrics"]["hit@1"]["delta"] == 0.0 and "hit@3" not in data["metrics"]  # k=1 has no hit@3
    assert data["differences"] == ["k: 1 -> 5"]  # the same model, reader, index and question set
    text = _cli("eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert text.exit_code == 0 and "4 question(s) in both runs" in text.stdout and "hit@1" in text.stdout
    assert "note: the runs were made differently" in text.stdout and "k: 1 -> 5" in text.stdout
    same = _cli("eval", "--compare", str(tmp_path / "a"), str(tmp_path / "a" / "results.jsonl"))
    assert same.exit_code == 0 and "made differently" not in same.stdout
    assert _cli("eval").exit_code == 2
    assert _cli("eval", "x.jsonl", "--compare", "a", "b").exit_code == 2
    missing = _cli("eval", "--compare", str(tmp_path / "none.jsonl"), str(tmp_path / "a"))
    assert missing.exit_code == 2 and "cannot compare: “" in missing.stderr and "does not exist" in missing.stderr


# --- TREC files ---------------------------------------------------------------------------


def _placed(rank: int, doc_id: str, start: int, text: str) -> Passage:
    return Passage(rank, Citation(doc_id, Span(start, start + len(text)), text, title=doc_id, source=doc_id),
                   score=0.5)


# Hits at rank 1, 3 (the gold string at rank 2 is in another document) and 2 (typographic quotes,
# case), a miss, nothing retrieved; ids and a document id with spaces; an unanswerable question.
TREC_CASES = [
    (Question("t1", "Capital?", ["Paris"], ["france"]),
     [_placed(1, "france", 0, "Paris is the capital."), _placed(2, "france", 40, "A river.")]),
    (Question("t2", "Built?", ["1889"], ["tower"]),
     [_placed(1, "tower", 0, "Tall."), _placed(2, "france", 9, "In 1889."), _placed(3, "tower", 30, "In 1889.")]),
    (Question("t 3", "Sung?", ["\u201cblue\u201d whale"], ["my whales"]),
     [_placed(1, "ocean", 0, "Deep."), _placed(2, "my whales", 5, 'The "Blue" Whale sings.')]),
    (Question("t4", "Missed?", ["never"], []), [_placed(1, "ocean", 0, "Deep."), _placed(2, "tower", 0, "Tall.")]),
    (Question("t5", "Nothing?", ["gold"], ["tower"]), []),
    (Question("ooc-1", "Unanswerable?"), [_placed(1, "ocean", 0, "Deep.")]),
]


def _measured(folder: Path, k: int) -> dict[str, float]:
    """hit@c up to k, and mrr@10 when k reaches 10, computed by ir-measures from the written TREC files alone."""
    import ir_measures
    from ir_measures import RR, Success

    qrels = list(ir_measures.read_trec_qrels(str(folder / "qrels.trec")))
    run = list(ir_measures.read_trec_run(str(folder / "run.trec")))
    measures = {f"hit@{c}": Success @ c for c in (1, 3, 5, 10) if c <= k} | ({"mrr@10": RR @ 10} if k >= 10 else {})
    values = ir_measures.calc_aggregate(list(measures.values()), qrels, run)
    return {name: round(values[measure], 4) for name, measure in measures.items()}


def test_trec_files_give_our_hit_and_mrr(tmp_path: Path) -> None:
    responses = {q.question: Response(q.question, passages) for q, passages in TREC_CASES}
    result = evaluate([q for q, _ in TREC_CASES], _ask(responses))
    files = report.write_trec(tmp_path, result.rows)
    measured = _measured(tmp_path, 10)
    assert measured == {name: result.summary[name] for name in measured}
    assert measured["hit@1"] == 0.2 and measured["hit@3"] == 0.6  # t1; then t2 and t 3
    run_lines = files["trec_run"].read_text(encoding="utf-8").splitlines()
    assert run_lines[0] == "t1 Q0 france:0-21 1 1.000000 assistant"
    assert "t%203 Q0 my%20whales:5-28 2 0.500000 assistant" in run_lines
    assert not any(line.startswith("ooc-1 ") for line in run_lines)
    qrels = files["trec_qrels"].read_text(encoding="utf-8").splitlines()
    assert "t2 0 france:9-17 0" in qrels and "t2 0 tower:30-38 1" in qrels and "t5 0 none 0" in qrels


def test_cli_eval_trec_agrees_with_its_summary(cli_index: list[str], tmp_path: Path) -> None:
    for k in ("1", "10"):
        result = _cli("eval", str(EVAL_DATA / "mini.jsonl"), "--k", k, "--trec", str(tmp_path / k), "--json",
                      *cli_index)
        assert result.exit_code == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["files"]["trec_run"] == str(tmp_path / k / "run.trec")
        measured = _measured(tmp_path / k, int(k))
        assert measured == {name: summary[name] for name in measured}
    assert _cli("eval", str(EVAL_DATA / "mini.jsonl"), "--trec", str(tmp_path / "t"), *cli_index).stdout.endswith(
        f"TREC run and qrels: {tmp_path / 't' / 'run.trec'}, {tmp_path / 't' / 'qrels.trec'}\n")


def test_every_metric_is_explained_with_its_question_count(tmp_path: Path) -> None:
    result = _hand_run()
    counts = metric_counts(result.rows)
    assert counts["hit@1"] == 4 and counts["abstention_accuracy"] == 3 and counts["phrase_f1"] == 0
    assert set(SUMMARY_OF.values()) | {"questions", "answerable", "unanswerable", "k", "ece"} <= set(EXPLANATIONS)
    table = "\n".join(report.explanation_table(result.summary, result.rows))
    assert f"| hit@1 | 4 | {EXPLANATIONS['hit@1']} |" in table
    assert f"| abstention_accuracy | 3 | {EXPLANATIONS['abstention_accuracy']} |" in table
    assert "phrase_f1" not in table  # no answer carried a phrase: the metric has no value
