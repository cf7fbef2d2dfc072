"""Microcontroller models in the shapes of the MLPerf Tiny benchmarks, defined with bornc's layers (random
weights, seeded), written as golden cases quantized to int8 for the Cortex-M targets.

    python examples/mcu_models.py [--golden golden]      # writes golden/mcu_*_int8/, then: bornc golden record mcu_...

- ``mcu_kws_dscnn``: keyword spotting, a DS-CNN on 49x10 MFCCs (conv 10x4 stride 2 to 64 channels, four
  depthwise-separable blocks, average pool, 12 class logits): the MLPerf Tiny KWS shape (Zhang et al., "Hello Edge",
  arXiv:1711.07128).
- ``mcu_vww_mobilenet``: visual wake words, MobileNetV1 at width 0.25 on 96x96 RGB, 2 classes (Chowdhery et al.,
  arXiv:1906.05721); logits out.
- ``mcu_anomaly_autoencoder``: anomaly detection, the MLPerf Tiny dense autoencoder on 640 log-mel features
  (640-128-128-128-128-8-128-128-128-128-640).

BatchNormalization follows every convolution and hidden dense layer, with random statistics, as in a trained
export (bornc folds it). Calibration and validation inputs are drawn from the input's distribution (normal for
features, uniform uint8 pixels for images); the weights are random, so the outputs mean nothing: these models guard
shapes, kernels, memory and bit-exactness, not accuracy.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import bornc as bc

SEED = 0


def _bn(c: int, rng) -> bc.BatchNorm2d:
    return bc.BatchNorm2d(c, weight=rng.uniform(0.5, 1.5, c), bias=rng.normal(0, 0.1, c),
                          running_mean=rng.normal(0, 0.1, c), running_var=rng.uniform(0.5, 1.5, c))


def _conv_bn_relu(x, cin: int, cout: int, k, stride, pad, rng, groups: int = 1):
    conv = bc.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, seed=int(rng.integers(1 << 30)))
    return bc.relu(_bn(cout, rng)(conv(x)))


def kws_dscnn():
    """DS-CNN: input (1, 1, 49, 10) float32 MFCCs -> (1, 12) class logits."""
    rng = np.random.default_rng(SEED)

    def net(x):
        h = _conv_bn_relu(x, 1, 64, (10, 4), 2, (5, 1), rng)            # (1, 64, 25, 5)
        for _ in range(4):
            h = _conv_bn_relu(h, 64, 64, 3, 1, 1, rng, groups=64)       # depthwise 3x3
            h = _conv_bn_relu(h, 64, 64, 1, 1, 0, rng)                  # pointwise
        h = bc.global_average_pool(h).reshape(1, 64)
        return {"logits": bc.Linear(64, 12, seed=1)(h)}
    return bc.trace(net, bc.Input("mfcc", (1, 1, 49, 10), "float32"), name="kws_dscnn"), ("mfcc", "normal")


def vww_mobilenet():
    """MobileNetV1 x0.25: input (1, 3, 96, 96) uint8 camera pixels (scaled to [0, 1] inside) -> (1, 2) logits."""
    rng = np.random.default_rng(SEED + 1)
    # (output channels, stride) of the 13 depthwise-separable blocks of MobileNetV1, at width 0.25
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 + [(256, 2), (256, 1)]

    def net(x):
        h, c = _conv_bn_relu(x.astype(np.float32) * np.float32(1 / 255), 3, 8, 3, 2, 1, rng), 8    # (1, 8, 48, 48)
        for cout, s in blocks:
            h = _conv_bn_relu(h, c, c, 3, s, 1, rng, groups=c)
            h, c = _conv_bn_relu(h, c, cout, 1, 1, 0, rng), cout
        h = bc.global_average_pool(h).reshape(1, c)
        return {"logits": bc.Linear(c, 2, seed=2)(h)}
    return bc.trace(net, bc.Input("image", (1, 3, 96, 96), "uint8"), name="vww_mobilenet"), ("image", "pixels")


def anomaly_autoencoder():
    """Dense autoencoder: input (1, 640) float32 log-mel frames -> (1, 640) reconstruction."""
    rng = np.random.default_rng(SEED + 2)
    widths = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128]

    def net(x):
        h = x
        for k, (a, b) in enumerate(zip(widths, widths[1:])):
            h = bc.Linear(a, b, seed=10 + k)(h)
            h = bc.relu(_bn(b, rng)(h))                                   # BatchNormalization on (N, C)
        return {"reconstruction": bc.Linear(128, 640, seed=30)(h)}
    return bc.trace(net, bc.Input("features", (1, 640), "float32"), name="anomaly_autoencoder"), ("features", "normal")


MODELS = {"mcu_kws_dscnn": kws_dscnn, "mcu_vww_mobilenet": vww_mobilenet, "mcu_anomaly_autoencoder": anomaly_autoencoder}

CASE = """# {doc}
# Random weights (examples/mcu_models.py, seed {seed}), quantized to int8 by bornc's own calibration on {n} inputs drawn
# from the input's distribution. Expected outputs come from the reference interpreter's integer path on the quantized
# IR; every target must match them bit for bit (integer layers, then one dequantization).
targets = ["reference", "python", "x86_64", "rpi4", "rpi-armv7", "rpi-zero", "cortex-m4", "cortex-m55"]

[model]
path = "golden/{case}/model.onnx"

[quantize]
mode = "int8"
calibration = "calibration.npz"
validation = "validation.npz"
min_cosine = 0.99
fallback_threshold = "none"

[inputs]
"{inp}" = "{inp}.npy"

[outputs]
{outputs}

[tolerance]
default = {{ rtol = 1e-5, atol = 1e-6 }}
"""


def _draw(rng, kind: str, shape) -> np.ndarray:
    """Normal float32 features, or uint8 pixels."""
    return rng.standard_normal(shape).astype(np.float32) if kind == "normal" else rng.integers(0, 256, shape).astype(np.uint8)


def write_case(folder: Path, case: str, n_calibration: int = 16) -> None:
    """golden/<case>_int8/: model.onnx, the input, calibration and validation sets and case.toml (expected
    outputs are recorded by ``bornc golden record``)."""
    model, (inp, kind) = MODELS[case]()
    d = folder / f"{case}_int8"
    (d / "inputs").mkdir(parents=True, exist_ok=True)
    model.to_onnx(d / "model.onnx")
    shape = model.graph.types[model.graph.inputs[0]].shape
    rng = np.random.default_rng(SEED + 100)
    np.savez_compressed(d / "calibration.npz", **{inp: _draw(rng, kind, (n_calibration,) + tuple(shape))})
    np.savez_compressed(d / "validation.npz", **{inp: _draw(rng, kind, shape)})
    np.save(d / "inputs" / f"{inp}.npy", _draw(rng, kind, shape))
    outputs = "\n".join(f'"{o}" = "{o}.npy"' for o in model.graph.outputs)
    doc = (MODELS[case].__doc__ or case).strip().splitlines()[0]
    (d / "case.toml").write_text(CASE.format(doc=f"{case}: {doc}", seed=SEED, n=n_calibration, case=d.name, inp=inp,
                                             outputs=outputs))
    print(f"wrote {d}/ ({model.graph.types[model.graph.outputs[0]].shape} output)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--golden", default="golden", help="folder of the golden cases")
    ap.add_argument("cases", nargs="*", default=list(MODELS), help=f"cases (default: {' '.join(MODELS)})")
    a = ap.parse_args()
    for case in a.cases:
        write_case(Path(a.golden), case)


if __name__ == "__main__":
    main()
