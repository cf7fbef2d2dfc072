"""Random-weight copies of onnx's light_* zoo models, and fp16 and int8 QDQ forms made with onnxruntime's tools.

The light_* files in the onnx wheel (onnx/backend/test/data/light) keep each model's graph but store every
weight as a ConstantOfShape node filling a constant, so a compiler that folds them pays nothing and one that
does not pays a fill per inference. This script replaces each such node whose shape is a constant by an
initializer of random values (seeded), which makes the file look like a trained model of the same
architecture:

- BatchNormalization scale and variance: uniform in [0.5, 1.5]; its bias and mean: normal, sigma 0.1;
- other tensors of rank >= 2 (Conv, Gemm weights): normal with sigma sqrt(2 / fan_in) (He et al., "Delving
  deep into rectifiers", ICCV 2015), fan_in = the product of all but the first dimension, so activations
  neither vanish nor blow up through the depth of the net;
- the rest (biases): normal, sigma 0.01.

    .venv/bin/python examples/random_weight_models.py -o /tmp/rw [--models resnet50,squeezenet] [--fp16 M] [--int8 M]

writes ``<out>/<model>/model.onnx`` with ``inputs.npz`` (one random input, standard normal, seed 0) and
``expected.npz`` (onnxruntime's outputs on it). ``--fp16 M`` adds ``<M>_fp16`` (onnxruntime.transformers'
float16 converter, keep_io_types so the inputs stay float32) and ``--int8 M`` adds ``<M>_int8_qdq``
(the model converted to opset 13, then onnxruntime.quantization.quantize_static, QDQ format, per-channel weights, 8 calibration inputs drawn like the
input).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
from onnx import numpy_helper

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
DEFAULT = ("resnet50", "squeezenet", "inception_v2", "densenet121")


def _consumers(graph) -> dict[str, list]:
    users: dict[str, list] = {}
    for n in graph.node:
        for k, i in enumerate(n.input):
            users.setdefault(i, []).append((n, k))
    return users


def randomize(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """A copy of ``model`` whose ConstantOfShape nodes with a constant shape are random initializers (see the
    module docstring for the distributions). Graph inputs that name initializers are dropped (ONNX IR >= 4 does
    not need them), so the model's only inputs are its data inputs."""
    rng = np.random.default_rng(seed)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consts = dict(inits)
    users = _consumers(g)
    keep = []
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        if n.op_type != "ConstantOfShape" or n.input[0] not in consts:
            keep.append(n)
            continue
        shape = tuple(int(d) for d in consts[n.input[0]])
        role = [(u.op_type, k) for u, k in users.get(n.output[0], [])]
        if any(op == "BatchNormalization" and k in (1, 4) for op, k in role):
            arr = rng.uniform(0.5, 1.5, shape)
        elif any(op == "BatchNormalization" for op, _ in role):
            arr = rng.normal(0.0, 0.1, shape)
        elif len(shape) >= 2:
            arr = rng.normal(0.0, np.sqrt(2.0 / max(int(np.prod(shape[1:])), 1)), shape)
        else:
            arr = rng.normal(0.0, 0.01, shape)
        g.initializer.append(numpy_helper.from_array(arr.astype(np.float32), n.output[0]))
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    live = [i for i in g.initializer if i.name in used]          # the fills' shape constants go
    del g.initializer[:]
    g.initializer.extend(live)
    init_names = {i.name for i in g.initializer}
    data_inputs = [i for i in g.input if i.name not in init_names and i.name not in consts]
    del g.input[:]
    g.input.extend(data_inputs)
    m.ir_version = max(m.ir_version, 4)
    return m


def _feeds(model_path: Path, seed: int = 0) -> dict:
    import onnxruntime as ort
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    return {i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
            for i in sess.get_inputs()}


def _save_case(model_path: Path, feeds: dict) -> None:
    import onnxruntime as ort
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    np.savez(model_path.parent / "inputs.npz", **feeds)
    np.savez(model_path.parent / "expected.npz", **{o.name: v for o, v in zip(sess.get_outputs(), outs)})


def to_fp16(src: Path, dst: Path) -> None:
    """onnxruntime's float16 converter (onnxruntime.transformers.float16), float32 inputs and outputs kept."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dst))


def to_int8_qdq(src: Path, dst: Path, feeds: dict) -> None:
    """onnxruntime's static quantizer: QDQ format, int8 weights per channel, uint8 activations, calibrated
    (MinMax) on 8 inputs drawn like ``feeds``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class _Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.items = iter([{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in feeds.items()}
                               for _ in range(8)])

        def get_next(self):
            return next(self.items, None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    src13 = dst.parent / "float_opset13.onnx"       # QDQ with per-channel axes needs opset >= 13
    onnx.save(onnx.version_converter.convert_version(onnx.load(str(src)), 13), str(src13))
    quantize_static(str(src13), str(dst), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    src13.unlink()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--models", default=",".join(DEFAULT), help="light_* names without the prefix")
    ap.add_argument("--fp16", default="", help="models to convert to float16 as well")
    ap.add_argument("--int8", default="", help="models to quantize to int8 QDQ as well")
    a = ap.parse_args(argv)
    out = Path(a.out)
    for name in [s for s in a.models.split(",") if s]:
        path = out / f"light_{name}_rw" / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(randomize(onnx.load(str(LIGHT / f"light_{name}.onnx"))), str(path))
        feeds = _feeds(path)
        _save_case(path, feeds)
        print(f"wrote {path}")
        if name in a.fp16.split(","):
            p16 = out / f"light_{name}_rw_fp16" / "model.onnx"
            to_fp16(path, p16)
            _save_case(p16, feeds)
            print(f"wrote {p16}")
        if name in a.int8.split(","):
            p8 = out / f"light_{name}_rw_int8_qdq" / "model.onnx"
            to_int8_qdq(path, p8, feeds)
            _save_case(p8, feeds)
            print(f"wrote {p8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
