"""Take a PyTorch model to bornc through torch.onnx: export, import, compile for the python target, compare.

    python examples/torch_to_bornc.py [--out out/torch-net]

Skips cleanly (exit 0, one line) when torch is not installed; a CPU build installs with `pip install torch`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/torch-net")
    a = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: skipping this example (pip install torch)")
        return 0
    import bornc as bc
    from bornc.executors import load_artifact

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 4), torch.nn.Softmax(dim=-1)).eval()
    x = torch.randn(1, 3, 16, 16)
    path = os.path.join(tempfile.mkdtemp(prefix="torch-onnx-"), "net.onnx")
    kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
    torch.onnx.export(net, (x,), path, input_names=["x"], output_names=["y"], opset_version=17, **kwargs)
    model = bc.load_onnx(path)
    bc.compile(model, target="python", out=a.out)
    got = load_artifact(a.out)({"x": x.numpy()})["y"]
    with torch.no_grad():
        want = net(x).numpy()
    err = float(np.abs(got - want).max())
    print(f"torch -> ONNX -> bornc python artifact {a.out}: max abs diff vs torch {err:.2e}")
    return 0 if err < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
