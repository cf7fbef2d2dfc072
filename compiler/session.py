"""The Python API beside tracing: compile, inspect and golden cases for in-memory models (what the CLI does).

    model = bc.load_onnx("m.onnx", input_shapes={"x": (1, 3, 224, 224)})   # or bc.trace(...)
    bc.inspect(model)                       # inputs, outputs, op histogram, parameters, FLOPs
    bc.compile(model, target="rpi", out="out/")
    case = bc.golden_record(model, {"x": x}, "golden/my_model", targets=["reference", "python"])
    bc.golden_check(case, target="python")
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .ir.graph import Model


def compile(model: Model, target: str = "host", out: str | Path = "out", **options):  # noqa: A001 - the API's name
    """Optimize and compile ``model`` for ``target`` into ``out`` (bornc.compile.compile_model's options:
    opt_level, weights, schedule, self_test, ram, flash, build). Returns the CompileResult (manifest, built
    files, RAM/flash bytes). Raises UnsupportedOpError, BudgetError, ToolchainError."""
    from .compile import compile_model
    return compile_model(model, target, out, **options)


def inspect(model: Model) -> dict:
    """Inputs, outputs, op histogram (subgraphs included), parameter count and bytes, FLOPs per op."""
    from .analysis import summarize
    return summarize(model)


def golden_record(model: Model, feeds: dict, folder: str | Path, targets=("reference",), rtol: float = 1e-4,
                  atol: float = 1e-5, ort: bool = True):
    """Write a golden case for ``model`` into ``folder``: the model as ONNX (model.onnx), the inputs, case.toml,
    and the expected outputs from the reference interpreter (cross-checked with onnxruntime when ``ort``).
    Returns the GoldenCase. Raises GoldenError when onnxruntime disagrees."""
    from . import golden
    folder = Path(folder)
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    model.to_onnx(folder / "model.onnx")
    lines = ['# recorded by bornc.golden_record', f'targets = {list(targets)!r}'.replace("'", '"'), "",
             "[model]", 'path = "model.onnx"', "", "[inputs]"]
    for name in model.graph.inputs:
        f = golden.safe_name(name) + ".npy"
        np.save(folder / "inputs" / f, np.asarray(feeds[name]))
        lines.append(f'{json.dumps(name)} = "{f}"')      # a JSON string is a TOML basic string
    lines += ["", "[outputs]"] + [f'{json.dumps(o)} = "{golden.safe_name(o)}.npy"' for o in model.graph.outputs]
    lines += ["", "[tolerance]", f"default = {{ rtol = {rtol!r}, atol = {atol!r} }}", ""]
    (folder / "case.toml").write_text("\n".join(lines))
    case = golden.load_case(folder)
    golden.record(case, ort=ort)
    return case


def golden_check(case, target: str = "reference") -> list:
    """Check a golden case (a GoldenCase, a folder, or a name under golden/) on ``target``; returns one row per
    output with its max errors and whether it passed."""
    from . import golden
    if not isinstance(case, golden.GoldenCase):
        case = golden.load_case(case)
    return golden.check(case, target)
