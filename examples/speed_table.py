"""The C target's speed beside onnxruntime, model by model, at 1 and 2 threads: the table of the C-speed issue.

    .venv/bin/python examples/speed_table.py [--runs 20] [--only NAME,...] [-o docs/speed.md]

Models: the public real models in ../shared/models (their stored inputs), and random-weight copies of onnx's
light_resnet50, light_squeezenet, light_inception_v2 and light_densenet121 with an fp16 and an int8 QDQ copy of
light_squeezenet made by onnxruntime's own tools (examples/random_weight_models.py: random inputs, seed 0).
Each is compiled once with ``bornc compile --target x86_64 --threads 2`` (``--target x86_64-v4``: AVX-512 and VNNI) (bornc.compile.compile_model) and timed
through ``bornc bench``'s code (bornc.bench.bench_artifact): bornc and onnxruntime (ORT_ENABLE_ALL, the same
thread count, the same inputs) in one process, in alternating blocks, medians. The C API caps the artifact at 1
thread for the 1-thread column. Ratio = onnxruntime ms / bornc ms (above 1: bornc is faster); % of peak = the
model's FLOPs per second over one core's fp32 FMA peak measured here for the target's vector width
(bornc.bench.measured_peak_gflops) times the threads. Cold start: a fresh
``model_run`` process to its first output (.npy in and out); code: the model's code and runtime sections (size -A).
Takes about 15 minutes on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "models"
sys.path.insert(0, str(ROOT / "examples"))


def _machine() -> str:
    """This machine's CPU model (/proc/cpuinfo) and core count, for the table's header."""
    import os
    try:
        name = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        name = "an unknown CPU"
    return f"{name}, {os.cpu_count()} cores"


def _models(work: Path) -> list[dict]:
    """(name, path, feeds) of every model of the table."""
    import random_weight_models as rw
    items = []
    for d in sorted(SHARED.glob("*/model.onnx")) if SHARED.is_dir() else []:
        card = json.loads((d.parent / "card.json").read_text())
        feeds = {i["name"]: np.load(d.parent / i["file"]) for i in card["inputs"]}
        items.append({"name": d.parent.name, "path": d, "feeds": feeds})
    rw.main(["-o", str(work), "--fp16", "squeezenet", "--int8", "squeezenet"])
    for d in sorted(work.glob("light_*/model.onnx")):
        with np.load(d.parent / "inputs.npz") as z:
            items.append({"name": d.parent.name, "path": d, "feeds": {k: z[k] for k in z.files}})
    return items


def _row(item: dict, runs: int, out: Path, target: str = "x86_64") -> dict:
    import bornc
    from bornc.bench import bench_artifact
    from bornc.compile import compile_model
    shapes = {k: v.shape for k, v in item["feeds"].items() if np.ndim(v)}
    compile_model(bornc.load_onnx(item["path"], input_shapes=shapes), target, out, name="m", source=str(item["path"]),
                  threads=2)
    row = {"model": item["name"]}
    for t in (1, 2):
        r = bench_artifact(out, str(item["path"]), item["feeds"], runs, 3, threads=t)
        row.update({f"bornc_{t}": r["bornc_ms"], f"ort_{t}": r.get("onnxruntime_ms"), f"peak_{t}": r.get("peak_fraction"),
                    "cold_ms": r.get("cold_start_ms"), "code_bytes": r.get("code_bytes"), "weights_bytes": r.get("weights_bytes")})
    return row


def render(rows: list[dict]) -> str:
    head = ("| model | bornc 1T ms | ORT 1T ms | ratio 1T | % peak 1T | bornc 2T ms | ORT 2T ms | ratio 2T | bornc 2T/1T "
            "| cold start ms | code bytes |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        def ratio(t):
            return r[f"ort_{t}"] / r[f"bornc_{t}"] if r.get(f"ort_{t}") else None
        cells = [r["model"], f"{r['bornc_1']:.2f}", f"{r['ort_1']:.2f}" if r.get("ort_1") else "-",
                 f"{ratio(1):.2f}" if ratio(1) else "-", f"{100 * r['peak_1']:.0f}%" if r.get("peak_1") else "-",
                 f"{r['bornc_2']:.2f}", f"{r['ort_2']:.2f}" if r.get("ort_2") else "-", f"{ratio(2):.2f}" if ratio(2) else "-",
                 f"{r['bornc_1'] / r['bornc_2']:.2f}", f"{r['cold_ms']:.1f}" if r.get("cold_ms") else "-",
                 f"{r['code_bytes']:,}" if r.get("code_bytes") else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    geo = []
    for t in (1, 2):
        rs = [r[f"ort_{t}"] / r[f"bornc_{t}"] for r in rows if r.get(f"ort_{t}")]
        if rs:
            geo.append(f"geometric mean of onnxruntime / bornc at {t} thread{'s' if t > 1 else ''}: "
                       f"{math.exp(sum(map(math.log, rs)) / len(rs)):.2f} over {len(rs)} models")
    return head + "\n".join(lines) + "\n\n" + "; ".join(geo) + ".\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="timed runs per side and thread count (5 alternating blocks)")
    ap.add_argument("--only", help="a comma-separated subset of model names")
    ap.add_argument("--target", default="x86_64", help="x86_64 (AVX2) or x86_64-v4 (AVX-512 and VNNI)")
    ap.add_argument("-o", "--output", help="also write the table (markdown) and its .json here")
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bornc-speed-") as tmp:
        for item in _models(Path(tmp) / "models"):
            if a.only and item["name"] not in a.only.split(","):
                continue
            rows.append(_row(item, a.runs, Path(tmp) / "art" / item["name"], a.target))
            r = rows[-1]
            print(f"{r['model']:<34} 1T {r['bornc_1']:8.2f} ms (ORT {r['ort_1'] or float('nan'):8.2f})   "
                  f"2T {r['bornc_2']:8.2f} ms (ORT {r['ort_2'] or float('nan'):8.2f})", flush=True)
    text = render(rows)
    print(text)
    if a.output:
        Path(a.output).write_text(f"# C speed beside onnxruntime ({a.target})\n\nGenerated by `examples/speed_table.py "
                                  f"--target {a.target}` (see its docstring for the method) on {_machine()}.\n\n" + text)
        Path(a.output).with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
