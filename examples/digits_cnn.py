"""A small CNN defined in Python with bornc, trained with plain numpy on scikit-learn's digits, compiled for
rpi, python and webgpu, and checked on held-back digits by each compiled artifact.

    pip install 'bornc[examples]'            # scikit-learn, for its bundled 8x8 digits (1,797 images)
    python examples/digits_cnn.py [--out out/digits] [--targets rpi python webgpu] [--record-golden DIR]

The network: Conv 3x3 (1 -> 8 channels, pad 1) + ReLU + MaxPool 2x2 + Linear (128 -> 10) + Softmax. Training is
mini-batch SGD with momentum on the cross-entropy (the conv is the first layer, so its backward pass only needs
the weight gradient, from the same im2col columns as the forward pass). 1,437 images train, the last 360 of a
seeded shuffle are held back; every figure printed is on those 360.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

import bornc as bc
from bornc.executors import load_artifact

SEED, TEST = 0, 360


def load_digits():
    """(train x, train y, test x, test y): images scaled to [0, 1], NCHW float32 (N, 1, 8, 8)."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        sys.exit("this example needs scikit-learn for its digits data: pip install 'bornc[examples]'")
    d = sk_digits()
    x = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[order], d.target[order]
    return x[:-TEST], y[:-TEST], x[-TEST:], y[-TEST:]


def im2col(x: np.ndarray) -> np.ndarray:
    """3x3 windows of x (N, 1, 8, 8), zero padded: (N, 9, 64)."""
    xp = np.pad(x[:, 0], ((0, 0), (1, 1), (1, 1)))
    return np.stack([xp[:, i:i + 8, j:j + 8].reshape(len(x), 64) for i in range(3) for j in range(3)], axis=1)


def forward(p: dict, x: np.ndarray):
    cols = im2col(x)
    z = np.einsum("cj,njk->nck", p["w"], cols) + p["b"][None, :, None]           # (N, 8, 64)
    a = np.maximum(z, 0).reshape(len(x), 8, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(len(x), 8, 4, 4, 4)
    arg = a.argmax(axis=-1)
    h = np.take_along_axis(a, arg[..., None], -1)[..., 0].reshape(len(x), 128)   # max pool 2x2
    logits = h @ p["wf"].T + p["bf"]
    return logits, (cols, z, arg, h)


def train(x, y, epochs: int = 30, lr: float = 0.05, momentum: float = 0.9, batch: int = 32) -> dict:
    rng = np.random.default_rng(SEED)
    p = {"w": (rng.standard_normal((8, 9)) / 3).astype(np.float32), "b": np.zeros(8, np.float32),
         "wf": (rng.standard_normal((10, 128)) / np.sqrt(128)).astype(np.float32), "bf": np.zeros(10, np.float32)}
    vel = {k: np.zeros_like(v) for k, v in p.items()}
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            idx = order[s:s + batch]
            xb, yb = x[idx], y[idx]
            logits, (cols, z, arg, h) = forward(p, xb)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            prob = e / e.sum(axis=1, keepdims=True)
            d = prob
            d[np.arange(len(idx)), yb] -= 1.0
            d /= len(idx)                                                     # d loss / d logits
            g = {"wf": d.T @ h, "bf": d.sum(0)}
            dh = (d @ p["wf"]).reshape(len(idx), 8, 4, 4)
            da = np.zeros((len(idx), 8, 4, 4, 4), np.float32)
            np.put_along_axis(da, arg[..., None], dh[..., None], -1)          # gradient to the max of each window
            dz = da.reshape(len(idx), 8, 4, 4, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(len(idx), 8, 64) * (z > 0)
            g["w"] = np.einsum("nck,njk->cj", dz, cols)
            g["b"] = dz.sum((0, 2))
            for k in p:
                vel[k] = momentum * vel[k] - lr * g[k].astype(np.float32)
                p[k] = (p[k] + vel[k]).astype(np.float32)
    return p


def define(p: dict, batch: int):
    """The trained network as a bornc model taking (batch, 1, 8, 8) float32 images, giving (batch, 10) probabilities."""
    conv = bc.Conv2d(1, 8, 3, padding=1, weight=p["w"].reshape(8, 1, 3, 3), bias=p["b"])
    fc = bc.Linear(128, 10, weight=p["wf"], bias=p["bf"])

    def net(x):
        h = bc.max_pool(bc.relu(conv(x)), kernel_shape=[2, 2], strides=[2, 2])
        return {"probs": bc.softmax(fc(h.reshape(batch, 128)), axis=-1)}
    return bc.trace(net, bc.Input("image", (batch, 1, 8, 8), "float32"), name="digits_cnn")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/digits")
    ap.add_argument("--targets", nargs="*", default=["rpi", "python", "webgpu"])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--record-golden", metavar="DIR", help="also write a golden case for the batch-1 model here")
    a = ap.parse_args(argv)
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="xdg-"))
    xtr, ytr, xte, yte = load_digits()
    p = train(xtr, ytr, a.epochs)
    numpy_acc = float((forward(p, xte)[0].argmax(1) == yte).mean())
    print(f"trained in numpy: held-back accuracy {numpy_acc:.4f} ({TEST} digits)")
    model = define(p, TEST)
    ref = model.run({"image": xte})["probs"]
    print(f"reference interpreter (traced model): accuracy {float((ref.argmax(1) == yte).mean()):.4f}")
    for target in a.targets:
        out = os.path.join(a.out, target)
        bc.compile(model, target=target, out=out)
        probs = load_artifact(out)({"image": xte})["probs"]
        acc = float((probs.argmax(1) == yte).mean())
        agree = float((probs.argmax(1) == ref.argmax(1)).mean())
        print(f"{target:8s} artifact {out}: accuracy {acc:.4f}, max abs diff vs reference {np.abs(probs - ref).max():.2e}, "
              f"same prediction on {agree:.4f}")
    if a.record_golden:
        one = define(p, 1)
        bc.golden_record(one, {"image": xte[:1]}, a.record_golden, targets=["reference", "python", "webgpu", "x86_64", "rpi4"])
        print(f"golden case written to {a.record_golden}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
