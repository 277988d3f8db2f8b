"""Load test: concurrent clients drive the running app through gradio_client.

    .venv/bin/python app.py &                      # or any served app, on 127.0.0.1
    .venv/bin/python bench/load.py [--url http://127.0.0.1:7860] [--clients 20]
                                   [--requests 50] [--duration 180] [--json OUT]

Each client is its own gradio_client session and sends, one after another, a mix of questions
(the development question set, plus a few odd ones: emoji, another language, a long paste) and
quote checks (the development quote set), two questions for each quote, until it has sent
``--requests`` or ``--duration`` seconds have passed: the run is bounded in count and in time.
A request fails when it raises or when its reply lacks passages or a verdict. Prints
throughput and p50/p95 latency, overall and per kind; exits 1 if any request failed. Only
loopback addresses are accepted: this drives a local app, never someone else's server.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

SEED = Path(__file__).resolve().parent.parent / "eval" / "seed"
ODD_QUESTIONS = [
    "🤖 Which Korean industries is AI relevant to? 🇰🇷",
    "¿Quién es el ministro de asuntos exteriores de Corea del Sur?",
    "What is the Korean AI strategy?\x00\x07",
    "How does Korea's AI strategy link domestic industrial policy with diplomacy? " * 40,
]
FALLBACK_QUESTIONS = ["What is the Korean AI strategy?", "Who is South Korea's foreign affairs minister?"]
FALLBACK_QUOTES = ["Cybersecurity is a part of the AI implications on international peace and security",
                   "Cybersecurity is a part of the AI implications on international trade and security"]
VERDICTS = ("verbatim", "altered", "absent")


def loopback_url(url: str) -> str:
    """``url`` if it names this machine; raises ValueError for any other host."""
    host = urlsplit(url).hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local:
        raise ValueError(f"the load test only drives an app on this machine (127.0.0.1), not {host or url!r}")
    return url


def workload() -> tuple[list[str], list[str]]:
    """(questions, quotes) to send: the seed development sets in eval/seed, or a few built in."""
    def read(name: str, key: str) -> list[str]:
        path = SEED / name
        if not path.is_file():
            return []
        return [json.loads(line)[key] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    questions = read("questions.jsonl", "question") or FALLBACK_QUESTIONS
    quotes = read("quotes.jsonl", "quote") or FALLBACK_QUOTES
    return questions + ODD_QUESTIONS, quotes


@dataclass
class Results:
    """What the clients did; ``record`` is called from their threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"ask": [], "quote": []})
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, failure: str | None) -> None:
        with self.lock:
            if failure is None:
                self.latencies[kind].append(seconds)
            else:
                self.failures.append(f"{kind}: {failure}")


def _one(client, kind: str, text: str) -> str | None:  # noqa: ANN001 - gradio_client.Client
    """Send one request; None when the reply is a proper one, else what was wrong."""
    try:
        if kind == "ask":
            outputs = client.predict(text, [], 5, [], api_name="/ask")
            payload = outputs[-1]
            if not isinstance(payload, dict) or not payload.get("passages"):
                return f"no passages for {text[:60]!r}: {str(payload)[:200]}"
        else:
            _, data = client.predict(text, api_name="/check_quote")
            if not isinstance(data, dict) or data.get("verdict") not in VERDICTS:
                return f"no verdict for {text[:60]!r}: {str(data)[:200]}"
    except Exception as exc:  # noqa: BLE001 - any failure counts, and the run goes on
        return f"{type(exc).__name__}: {str(exc)[:200]} for {text[:60]!r}"
    return None


def run_load(url: str, *, clients: int = 20, requests: int = 50, duration: float = 180.0,
             seed: int = 0) -> dict:
    """Drive the app at ``url`` with ``clients`` concurrent sessions; returns the figures.

    Each session sends at most ``requests`` requests and stops starting new ones after
    ``duration`` seconds. Raises ValueError for a non-loopback ``url``.
    """
    from gradio_client import Client

    url = loopback_url(url)
    questions, quotes = workload()
    results = Results()
    start = time.monotonic()
    deadline = start + duration

    def session(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        try:
            client = Client(url, verbose=False)
        except Exception as exc:  # noqa: BLE001
            results.record("ask", 0.0, f"session {number} could not connect: {exc}")
            return
        try:
            for sent in range(requests):
                if time.monotonic() >= deadline:
                    break
                kind = "quote" if sent % 3 == 2 else "ask"
                text = rng.choice(quotes if kind == "quote" else questions)
                began = time.monotonic()
                failure = _one(client, kind, text)
                results.record(kind, time.monotonic() - began, failure)
        finally:
            client.close()

    threads = [threading.Thread(target=session, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    return summarize(results, elapsed, clients)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000, 1)


def summarize(results: Results, elapsed: float, clients: int) -> dict:
    every = results.latencies["ask"] + results.latencies["quote"]
    done = len(every) + len(results.failures)
    figures = {
        "clients": clients,
        "requests": done,
        "ok": len(every),
        "failed": len(results.failures),
        "seconds": round(elapsed, 1),
        "throughput_per_s": round(len(every) / elapsed, 2) if elapsed else 0.0,
        "p50_ms": _percentile(every, 50),
        "p95_ms": _percentile(every, 95),
    }
    for kind, values in results.latencies.items():
        figures[kind] = {"ok": len(values), "p50_ms": _percentile(values, 50), "p95_ms": _percentile(values, 95)}
    figures["failures"] = results.failures[:20]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860", help="the running app (loopback only)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent sessions")
    parser.add_argument("--requests", type=int, default=50, help="most requests per session")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds after which no request starts")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    for name in ("clients", "requests", "duration"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    try:
        figures = run_load(args.url, clients=args.clients, requests=args.requests, duration=args.duration)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{figures['requests']} requests from {figures['clients']} clients in {figures['seconds']} s: "
          f"{figures['ok']} ok, {figures['failed']} failed; {figures['throughput_per_s']} requests/s; "
          f"latency p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms")
    for kind in ("ask", "quote"):
        print(f"  {kind:5}: {figures[kind]['ok']} ok, p50 {figures[kind]['p50_ms']} ms, p95 {figures[kind]['p95_ms']} ms")
    for failure in figures["failures"]:
        print(f"  failed: {failure}", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if figures["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
