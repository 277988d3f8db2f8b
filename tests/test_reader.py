"""The trained reader: its input, its folder, the phrase offsets, and its measured floors.

The floors are the reader issue's, measured as `assistant eval` measures them
(``evaluation.evaluate_file``, through the session's shared ``eval_run``) on the project's own copies of the development sets in eval/,
with the real embedding model and the shipped reader; each is compared with ``--reader none``
(the hand-tuned scorer) on the same index.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import main
from assistant.config import DEFAULT_READER, Settings
from assistant.errors import InputError
from assistant.pipeline import Assistant
from assistant.reader import MODELS, Reader, pair_text, reader_folder
from assistant.types import Answer
from conftest import SELQA, SEED_QUESTIONS, SQUAD

READER = MODELS / DEFAULT_READER


def test_the_candidate_opens_what_the_reader_reads() -> None:
    text = pair_text("He was born in 1810.", "Chopin was a composer.", "He died in Paris.")
    assert text.startswith("He was born in 1810. [SEP] ")
    assert "Chopin was a composer." in text and "He died in Paris." in text
    assert pair_text("Alone.", "", "") == "Alone."
    long = "x" * 1000
    assert len(pair_text("S.", long, long)) < 2 * 200 + 20  # neighbours are cut, the candidate never


def test_reader_setting_names_a_folder_or_none(tmp_path: Path, real_reader: Reader) -> None:
    assert reader_folder("none") is None and reader_folder("None") is None
    assert reader_folder(DEFAULT_READER) == READER.resolve()
    assert reader_folder(str(READER)) == READER.resolve()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.onnx").write_bytes(b"")
    with pytest.raises(InputError, match=r"no reader at .*missing: tokenizer.json, reader.json, calibration.json"):
        reader_folder(str(tmp_path / "half"))


def test_cli_names_a_missing_reader_in_plain_words(seed_index: Settings, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ask", "Who is the minister?", "--corpus", str(seed_index.corpus_dir),
                                       "--index", str(seed_index.index_dir), "--reader", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no reader at" in result.stderr and "--reader none" in result.stderr
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr


def test_reader_reads_a_batch_and_marks_a_phrase_in_the_sentence(real_reader: Reader) -> None:
    reader = real_reader
    candidates = [("The otter population fell sharply in 1911.", "Sea otters live on the coast.", ""),
                  ("Sea otters live on the coast.", "", "The otter population fell sharply in 1911.")]
    readings = reader.read("When did the otter population fall?", candidates)
    assert len(readings) == 2
    for (sentence, _, _), reading in zip(candidates, readings):
        assert 0 <= reading.start < reading.end <= len(sentence)
    assert reader.read("anything", []) == []
    assert len(reader.fingerprint) == 16 and reader.name == DEFAULT_READER


def test_phrase_offsets_point_into_the_document(seed_index: Settings, real_encoder, eval_run) -> None:
    rows = eval_run(seed_index, SEED_QUESTIONS, DEFAULT_READER).rows  # every seed question, as `assistant eval` asks
    answers = [Answer.from_dict(json.loads(json.dumps(row["answer"]))) if row["answer"] else None for row in rows]
    assistant = Assistant.open(seed_index, real_encoder)
    live = [assistant.ask(row["question"], k=seed_index.eval_k).answer for row in rows[:8]]
    assert live == answers[:8]  # an answer's JSON gives it back whole
    phrases = 0
    for answer in answers:
        if answer is None or answer.phrase is None:
            continue
        phrases += 1
        text, span = assistant.index.by_id[answer.citation.doc_id].text, answer.citation.span
        assert text[answer.phrase.start : answer.phrase.end] == answer.phrase.text
        assert span.start <= answer.phrase.start < answer.phrase.end <= span.end
    answered = sum(a is not None for a in answers)
    assert answered and phrases == answered  # every answer the reader gives marks its phrase
    byline = answers[next(i for i, row in enumerate(rows) if row["id"] == "d08")]  # who wrote the PassBlue profile
    assert byline is not None and byline.phrase.text == "Damilola Banjo"  # the metadata's author, as the text names them


def test_cli_shows_the_phrase(seed_index: Settings) -> None:
    args = ["ask", "Who is South Korea's foreign affairs minister?", "--corpus", str(seed_index.corpus_dir),
            "--index", str(seed_index.index_dir)]
    data = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)
    phrase = data["answer"]["phrase"]
    assert phrase is not None and "Cho Hyun" in phrase["text"]
    plain = CliRunner().invoke(main, args).stdout
    assert phrase["text"] in plain.splitlines()[1]  # the phrase on its own line, above the sentence


@pytest.fixture(scope="module")
def squad_third(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every third question of squad-sample (500: 334 answerable, 83 imp-, 83 ooc-): reading
    all 1,500 would take the suite past its time; the README has the whole set's figures."""
    lines = (SQUAD / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    path = tmp_path_factory.mktemp("squad-third") / "questions.jsonl"
    path.write_text("\n".join(lines[::3]) + "\n", encoding="utf-8")
    return path


# Floors measured with reader-v2 (its model card; comments: reader-v2's figure, then reader-v1's).
# The seed set's are the reader issue's targets, which reader-v2 reaches: 0.90 (0.80 on query),
# abstention 0.80 with 0.95 answered, the whole set's ECE 0.030 too. It does not reach the others:
# squad-sample answer accuracy 0.88 and imp- abstention 0.50; selqa-dev 0.85 (0.80 paraphrased)
# and ECE 0.05.


def test_squad_sample_floors(squad_index: Settings, squad_third: Path, eval_run) -> None:
    run = eval_run(squad_index, squad_third, DEFAULT_READER)
    s = run.summary
    assert s["answer_accuracy"] >= 0.84, s  # measured 0.850 (whole set 0.829); 0.802 (0.784)
    assert s["by_prefix"]["ooc-"]["abstention_accuracy"] >= 0.96, s["by_prefix"]  # 1.000; 0.988
    assert s["by_prefix"]["imp-"]["abstention_accuracy"] >= 0.25, s["by_prefix"]  # 0.301; 0.289
    assert s["answered"] >= 0.93, s  # 0.946; 0.937
    assert s["calibration"]["ece"] <= 0.05, s["calibration"]  # 0.036 (whole set 0.030); 0.055 (0.054)
    assert run.stamp["reader"]["name"] == DEFAULT_READER
    baseline = eval_run(squad_index, squad_third, "none").summary
    assert s["answer_accuracy"] > baseline["answer_accuracy"], (s, baseline)
    assert s["abstention_accuracy"] > baseline["abstention_accuracy"], (s, baseline)
    assert s["calibration"]["ece"] < baseline["calibration"]["ece"], (s, baseline)


def test_selqa_floors(selqa_index: Settings, eval_run) -> None:
    s = eval_run(selqa_index, SELQA / "questions.jsonl", DEFAULT_READER).summary
    assert s["answer_accuracy"] >= 0.78, s  # measured 0.787; 0.780
    assert s["by_category"]["paraphrase"]["True"]["answer_accuracy"] >= 0.74, s["by_category"]["paraphrase"]  # 0.752; 0.745
    assert s["calibration"]["ece"] <= 0.09, s["calibration"]  # 0.085; 0.094: under-confident here
    baseline = eval_run(selqa_index, SELQA / "questions.jsonl", "none").summary
    assert s["answer_accuracy"] > baseline["answer_accuracy"], (s, baseline)
    assert s["calibration"]["ece"] < baseline["calibration"]["ece"], (s, baseline)


def test_seed_floors(seed_index: Settings, eval_run) -> None:
    s = eval_run(seed_index, SEED_QUESTIONS, DEFAULT_READER).summary
    assert s["answer_accuracy"] >= 0.90, s  # measured 0.911; 0.889
    assert s["by_category"]["style"]["query"]["answer_accuracy"] >= 0.80, s["by_category"]["style"]  # 0.818; 0.727
    assert s["abstention_accuracy"] >= 0.80, s  # 8 of 10; 7 of 10
    assert s["answered"] >= 0.95, s  # 0.978; 0.956
    baseline = eval_run(seed_index, SEED_QUESTIONS, "none").summary
    assert s["answer_accuracy"] > baseline["answer_accuracy"], (s, baseline)
    assert s["abstention_accuracy"] > baseline["abstention_accuracy"], (s, baseline)


def test_model_card_lists_every_file_with_its_size_and_hash() -> None:
    import hashlib
    import re

    card = (READER / "README.md").read_text(encoding="utf-8")
    listed = {name: (int(size.replace(",", "")), digest)
              for name, size, digest in re.findall(r"^\| `([^`]+)` \| ([\d,]+) \| `([0-9a-f]{64})` \|$", card, re.M)}
    files = {f.name: (f.stat().st_size, hashlib.sha256(f.read_bytes()).hexdigest())
             for f in READER.iterdir() if f.name != "README.md"}
    assert listed == files


def test_a_calibration_for_other_signals_is_refused_in_plain_words(tmp_path: Path) -> None:
    """A reader folder calibrated by another version (other confidence signals), or with a
    damaged calibration.json, is refused with what to do, not a crash."""
    from assistant.answer import Calibration

    calibration = json.loads((READER / "calibration.json").read_text(encoding="utf-8"))
    del calibration["confidence"][Calibration.CONFIDENCE[-1]]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "calibration.json").write_text(json.dumps(calibration), encoding="utf-8")
    with pytest.raises(InputError, match=rf"'old' was calibrated for another version .* lacks the signals "
                                         rf"{Calibration.CONFIDENCE[-1]} \(confidence\); recalibrate it"):
        Calibration.load(tmp_path / "old" / "calibration.json")
    (tmp_path / "old" / "calibration.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=r"'old' cannot be used: its calibration.json cannot be read"):
        Calibration.load(tmp_path / "old" / "calibration.json")
    assert Calibration.load(READER / "calibration.json").candidates == calibration["candidates"]
