"""Import an ONNX model, look inside, and run it with the reference interpreter, from Python.

    python examples/python_api.py [MODEL.onnx]

Without an argument it uses the squeezenet "light" model that ships inside the onnx package.
"""
import sys
from pathlib import Path

import numpy as np
import onnx

import bornc
from bornc.analysis import summarize

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(onnx.__file__).parent / "backend/test/data/light/light_squeezenet.onnx"
model = bornc.load_onnx(path)
info = summarize(model)
print(f"{path.name}: {info['nodes']} nodes, {info['parameters']:,} parameters, {info['flops'] / 1e9:.2f} GFLOPs")
feeds = {}
for name in model.graph.inputs:
    t = model.graph.types[name]
    feeds[name] = np.random.default_rng(0).standard_normal(t.shape).astype(t.dtype)
for name, value in bornc.run(model, feeds).items():
    print(f"{name}: {value.dtype}{list(value.shape)} argmax {int(np.argmax(value))}")
