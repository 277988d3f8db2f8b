"""The reader's training command: seeded, checkpointed, resumable, and exportable to a reader folder.

Runs the real scripts for a few steps on a small SQuAD-format file written here (never on the
development sets), from the packaged all-MiniLM-L6-v2 weights.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.reader import Reader
from conftest import REPO

FACTS = [
    ("Otters", ["Sea otters live along the coast of the North Pacific. They use stones to crack shellfish. "
                "The otter population fell sharply in 1911.",
                "Otters have the densest fur of any animal. Their fur traps air. It keeps them warm."]),
    ("Lighthouses", ["The Pharos of Alexandria was built in the third century BC. It stood about 100 metres tall. "
                     "An earthquake damaged it in 1303.",
                     "Modern lighthouses use LED lamps. Many are automated. The last keeper left in 1998."]),
    ("Glaciers", ["The Perito Moreno glacier lies in Argentina. It advances about two metres per day. "
                  "Visitors watch ice fall into the lake.",
                  "Glaciers store about 69 percent of the world's fresh water. Most of it is in Antarctica."]),
]
QUESTIONS = {"1911": "When did the otter population fall?", "stones": "What do sea otters use to crack shellfish?",
             "fur": "What traps air?", "1303": "When did an earthquake damage the Pharos?",
             "1998": "When did the last keeper leave?", "about 100 metres": "How tall was the Pharos?", "Argentina": "Where is the Perito Moreno glacier?",
             "two metres per day": "How fast does the glacier advance?", "Antarctica": "Where is most fresh water?"}


def _squad(path: Path) -> None:
    data = []
    for a, (title, paragraphs) in enumerate(FACTS):
        pars = []
        for p, context in enumerate(paragraphs):
            qas = [{"id": f"t-{a}-{p}-{answer}", "question": question,
                    "answers": [{"text": answer, "answer_start": context.index(answer)}]}
                   for answer, question in QUESTIONS.items() if answer in context]
            pars.append({"context": context, "qas": qas})
        data.append({"title": title, "paragraphs": pars})
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump({"version": "test", "data": data}, f)


def _train(squad: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "training/train_reader.py", "--squad", str(squad), "--out", str(out), "--questions", "8",
         "--dev-articles", "1", "--dev-questions", "3", "--batch", "4", "--save-every", "1", "--threads", "1",
         "--max-tokens", "64", *extra], cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_training_resumes_from_its_checkpoint_and_exports_a_reader(tmp_path: Path) -> None:
    squad = tmp_path / "squad.json.gz"
    _squad(squad)
    out = tmp_path / "run"
    first = _train(squad, out, "--stop-after", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "run the same command again to resume" in first.stdout
    log = [json.loads(line) for line in (out / "train.log").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    assert not (out / "reader.pt").exists()

    second = _train(squad, out)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resumed at step 2" in second.stdout
    log = [json.loads(line) for line in (out / "train.log").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, len(log) + 1)) and len(log) > 2  # no step twice
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["questions"] == 3 and 0.0 <= metrics["sentence_p_at_1"] <= 1.0
    split = json.loads((out / "split.json").read_text())
    assert len(split["dev_articles"]) == 1 and split["train_articles"] == 2

    folder = tmp_path / "reader-test"
    exported = subprocess.run([sys.executable, "training/export_reader.py", "--squad", str(squad), "--run", str(out),
                               "--out", str(folder), "--dev-questions", "3"],
                              cwd=REPO, capture_output=True, text=True, timeout=600)
    assert exported.returncode == 0, exported.stderr[-2000:]
    report = json.loads((folder / "export.json").read_text())
    assert report["shipped"] in ("int8", "fp16") and set(report["held_out_squad"]) == {"fp32", "int8", "fp16"}
    reader = Reader(folder)
    readings = reader.read("When did the otter population fall?",
                           [("The otter population fell sharply in 1911.", "", "")])
    assert len(readings) == 1 and 0 <= readings[0].start < readings[0].end <= 42

    # a later run starts from these weights (learning rate 0 leaves them as loaded), with edited questions
    tuned = _train(squad, tmp_path / "tuned", "--init", str(out / "reader.pt"), "--edit-share", "1.0",
                   "--sample-seed", "5", "--lr", "0", "--stop-after", "1")
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    assert "starting from" in tuned.stdout
    import torch

    start = torch.load(out / "reader.pt", weights_only=True)
    after = torch.load(tmp_path / "tuned" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(start[k], after[k]) for k in start)


def _calibration_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("calibrate_reader", REPO / "training" / "calibrate_reader.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_calibration_curve_reads_once_and_pools_the_folds() -> None:
    calibrate = _calibration_module()
    question = {"set": "s", "id": "q1", "answerable": True, "coverage": 1.0, "fold": 0,
                "candidates": [{"right": False}, {"right": True}, {"right": False}]}
    assert [len(q["candidates"]) for q in calibrate.first([question], 2)] == [2]
    assert question["candidates"][1]["right"] and len(question["candidates"]) == 3  # the collection is kept whole
    folds = [{"questions": 30, "threshold": 0.3, "answer_accuracy": 0.8, "answered": 0.9},
             {"questions": 10, "threshold": 0.4, "answer_accuracy": 0.6, "answered": 1.0}]
    assert calibrate.pooled(folds) == {"questions": 40, "answer_accuracy": 0.75, "answered": 0.925}


def test_question_edits_take_the_answer_away() -> None:
    """Each kind of edit changes only what the answering window holds, into what it does not."""
    import random

    from training.question_edits import KINDS, edit, names

    window = "The Pharos of Alexandria was built in 280 BC by Ptolemy II. It was the largest building of its time."
    article = names(window + " Rhodes had a colossus. The Great Pyramid of Giza stood in Egypt.")
    assert {"Pharos of Alexandria", "Ptolemy II", "Great Pyramid of Giza", "Rhodes"} <= set(article)
    assert "The" not in article and "It" not in article  # words that open sentences are no names
    seen: dict[str, str] = {}
    rng = random.Random(0)
    for question in ("When was the Pharos of Alexandria built?", "Who built the Pharos of Alexandria in 280 BC?",
                     "What was the largest building of its time?", "Which lighthouse was designed by Ptolemy II?"):
        for _ in range(20):
            edited = edit(question, window, article, rng)
            assert edited is not None and edited[0] != question
            seen.setdefault(edited[1], edited[0])
    assert set(seen) == set(KINDS)
    assert any(n in seen["entity"] for n in ("Rhodes", "Great Pyramid of Giza", "Egypt"))  # a name not in the window
    assert " 280 " not in seen["number"] and seen["number"].startswith("Who built the Pharos of Alexandria in ")
    assert "smallest" in seen["antonym"] and "largest" not in seen["antonym"]
    assert " not " in seen["negation"]
    assert edit("How?", window, article, rng) is None  # nothing to change


def test_fp16_weights_come_back_as_the_same_fp32_graph(tmp_path: Path) -> None:
    """``--from-folder`` re-quantises a shipped reader from its fp16-weights file: turning those
    weights back into fp32 must give a plain fp32 graph that computes exactly what the fp16 file does."""
    import numpy as np
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from training.export_reader import fp16_weights, fp32_weights

    weights = np.random.default_rng(0).normal(size=(64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 32])],
        [numpy_helper.from_array(weights, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "fp32.onnx"))
    fp16_weights(tmp_path / "fp32.onnx", tmp_path / "fp16.onnx")
    fp32_weights(tmp_path / "fp16.onnx", tmp_path / "back.onnx")

    back = onnx.load(str(tmp_path / "back.onnx"))
    assert [n.op_type for n in back.graph.node] == ["MatMul"]  # no casts left
    (restored,) = [numpy_helper.to_array(t) for t in back.graph.initializer]
    assert restored.dtype == np.float32 and np.array_equal(restored, weights.astype(np.float16).astype(np.float32))
    x = np.random.default_rng(1).normal(size=(3, 64)).astype(np.float32)
    run = {name: onnxruntime.InferenceSession(str(tmp_path / f"{name}.onnx")).run(None, {"x": x})[0]
           for name in ("fp16", "back")}
    assert np.array_equal(run["fp16"], run["back"])


def test_edited_questions_are_read_against_their_own_answer_sentence(tmp_path: Path) -> None:
    """``--edit-share 1``: a question gives, beside its positive, its edited twin as a negative on
    the very window that answers the original; without edits the examples are as before."""
    from training.train_reader import build

    squad = tmp_path / "squad.json.gz"
    _squad(squad)
    with gzip.open(squad, "rt", encoding="utf-8") as f:
        articles = json.load(f)["data"]
    plain = build(articles, 9, 3, easy_share=0.0)
    edited = build(articles, 9, 3, easy_share=0.0, edit_share=1.0)
    positives = {e.qid: e for e in edited if e.label == 1}
    twins = [e for e in edited if e.label == 0 and e.text == positives[e.qid].text]
    assert twins and all(t.question != positives[t.qid].question for t in twins)
    assert len(edited) == len(plain) + len(twins)
    assert sorted((e.qid, e.question, e.text) for e in plain) == sorted(
        (e.qid, e.question, e.text) for e in edited if e not in twins)


@pytest.mark.slow
def test_mined_examples_are_the_assistants_candidates_and_train_the_reader(tmp_path: Path) -> None:
    """``mine_candidates.py`` indexes training articles with the product's own index and labels the
    candidates the reader would read; ``train_reader.py --mined`` trains on them."""
    from training.train_reader import load_squad, split_articles

    squad = tmp_path / "squad.json.gz"
    _squad(squad)
    mined = tmp_path / "mined.jsonl"
    done = subprocess.run([sys.executable, "training/mine_candidates.py", "--squad", str(squad), "--out", str(mined),
                           "--dev-articles", "1", "--questions", "20", "--candidates", "4"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in mined.read_text().splitlines()]
    dev, train = split_articles(load_squad(squad), 1, 13)
    gold = {qa["id"]: qa["answers"][0]["text"] for a in train for p in a["paragraphs"] for qa in p["qas"]}
    assert {r["qid"] for r in rows} == set(gold)  # every training question, none of the held-out article's
    assert all(sum(r["qid"] == q for r in rows) <= 4 for q in gold)
    for r in rows:
        sentence = r["window"][0]
        if r["label"]:
            start, end = r["answer"]
            assert sentence[start:end].lower() == gold[r["qid"]].lower()
        else:
            assert r["answer"] is None and gold[r["qid"]].lower() not in sentence.lower()
    assert sum(r["label"] for r in rows) >= len(gold) - 1  # retrieval finds nearly every answer here

    trained = _train(squad, tmp_path / "run", "--questions", "0", "--mined", str(mined), "--stop-after", "1")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert f"{len(rows)} examples ({sum(r['label'] for r in rows)} positive)" in trained.stdout

    # the held-out article, mined to measure the exported reader on its own candidates
    held_out = tmp_path / "held-out.jsonl"
    done = subprocess.run([sys.executable, "training/mine_candidates.py", "--squad", str(squad), "--out", str(held_out),
                           "--dev-articles", "1", "--candidates", "4", "--held-out"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    dev_ids = {qa["id"] for a in dev for p in a["paragraphs"] for qa in p["qas"]}
    assert {json.loads(line)["qid"] for line in held_out.read_text().splitlines()} == dev_ids
    exported = subprocess.run([sys.executable, "training/export_reader.py", "--squad", str(squad), "--run",
                               str(tmp_path / "run"), "--out", str(tmp_path / "reader"), "--dev-questions", "3",
                               "--held-out-candidates", str(held_out)],
                              cwd=REPO, capture_output=True, text=True, timeout=600)
    assert exported.returncode == 0, exported.stderr[-2000:]
    measured = json.loads((tmp_path / "reader" / "export.json").read_text())["held_out_squad"]["int8"]
    assert 0 < measured["candidate_questions"] <= len(dev_ids) and 0.0 <= measured["candidate_p_at_1"] <= 1.0

    # batches encoded ahead in worker processes train exactly as those encoded in the loop, and
    # the finished run measures itself on the held-out candidates
    runs = {}
    for workers in ("0", "2"):
        out = tmp_path / f"listwise-{workers}"
        done = _train(squad, out, "--questions", "0", "--mined", str(mined), "--listwise", "--epochs", "0.2",
                      "--dev-questions", "0", "--held-out-candidates", str(held_out), "--workers", workers)
        assert done.returncode == 0, done.stderr[-2000:]
        runs[workers] = ([json.loads(line)["loss"] for line in (out / "train.log").read_text().splitlines()],
                         json.loads((out / "metrics.json").read_text()))
    assert runs["0"][0] == runs["2"][0] and len(runs["0"][0]) >= 2
    assert runs["0"][1]["candidate_questions"] == measured["candidate_questions"]
    assert runs["0"][1]["candidate_p_at_1"] == runs["2"][1]["candidate_p_at_1"]


def test_listwise_batches_keep_each_questions_candidates_together_and_reward_the_right_one() -> None:
    """``--listwise``: a mined question's candidates share a batch, as one run, and the softmax
    over a run costs less the more of its probability goes to its right candidate."""
    import torch

    from training.train_reader import Example, batches, loss_of

    def run(qid: str, right: int) -> list[Example]:
        return [Example(f"q{qid}", f"s{i}", int(i == right), (0, 2) if i == right else None, qid) for i in range(4)]

    lists = [run(str(k), k % 4) for k in range(10)]
    built = [Example("b", "t", 1, None, f"b{k}") for k in range(5)]
    plan = batches(built, lists, 8, True, seed=3)
    runs = [r for batch in plan for r in batch]
    assert sorted(len(r) for r in runs) == [1] * 5 + [4] * 10  # every run whole, once
    assert all(len({e.qid for e in r}) == 1 for r in runs)
    assert all(sum(len(r) for r in batch) <= 8 for batch in plan)
    pointwise = batches(built, lists, 8, False, seed=3)
    assert sum(len(b) for b in pointwise) == 45 and all(len(r) == 1 for b in pointwise for r in b)

    def model_scoring(logits: list[float]):
        def forward(input_ids, attention_mask, token_type_ids):
            n = len(logits)
            return torch.tensor(logits), torch.zeros(n, 3), torch.zeros(n, 3)
        return forward

    enc = {"input_ids": None, "attention_mask": None, "token_type_ids": None,
           "labels": torch.tensor([0.0, 1.0, 0.0, 0.0]), "start": torch.full((4,), -100), "end": torch.full((4,), -100)}
    favoured = loss_of(model_scoring([0.0, 3.0, 0.0, 0.0]), enc, [4])
    passed_over = loss_of(model_scoring([3.0, 0.0, 0.0, 0.0]), enc, [4])
    pointwise_only = loss_of(model_scoring([3.0, 0.0, 0.0, 0.0]), enc)
    assert favoured < passed_over and pointwise_only < passed_over


def test_heading_negatives_can_be_left_out_of_the_mined_examples(tmp_path: Path) -> None:
    """``--drop-heading-negatives``: a wrong candidate that is a title line is left out, a right
    one that does not end as a sentence (a fact line) is kept, and so is every wrong sentence."""
    from training.train_reader import mined

    rows = [("Otters", 0), ("Population: 51.63 million", 1), ("Otters live along the coast.", 0), ("Sea otters", 0)]
    path = tmp_path / "mined.jsonl"
    path.write_text("".join(json.dumps({"question": "q", "window": [s, "", ""], "label": label,
                                        "answer": [0, 3] if label else None, "qid": "x"}) + "\n"
                            for s, label in rows), encoding="utf-8")
    assert [e.label for e in mined(path)[0]] == [0, 1, 0, 0]
    assert [e.text for e in mined(path, drop_heading_negatives=True)[0]] == [
        "Population: 51.63 million", "Otters live along the coast."]
