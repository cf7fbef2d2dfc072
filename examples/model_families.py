"""Build the real-model families of the coverage issue as golden cases: small random-initialised PyTorch models
exported with torch.onnx, plus the forms onnxruntime's own tools make of them (transformers optimizer, static QDQ
and dynamic quantization). Writes golden/<family>/{model.onnx, inputs/*.npy, case.toml}; then record the expected
outputs with `bornc golden record <family>` (the reference, cross-checked against onnxruntime).

Needs torch (`pip install torch==2.13.0`, the CPU build); the tests only need the files this writes.

    python examples/model_families.py [--out golden] [family ...]
"""
from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np

TARGETS = ["reference", "python", "webgpu", "x86_64", "rpi4"]


def _torch():
    import torch
    torch.manual_seed(0)
    return torch


# ---------------------------------------------------------------------------------------------------- models
def _sane_batchnorm(model) -> None:
    """Running statistics a trained BatchNorm could have (mean in [-0.2, 0.2], variance in [0.5, 1.5])."""
    torch = _torch()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


def bert_encoder():
    """A BERT/MiniLM-style encoder: word + position + token-type embeddings, LayerNorm, 2 post-norm blocks of
    masked multi-head attention and a GELU MLP, masked mean pooling (the sentence-embedding head)."""
    torch = _torch()
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.h, self.d = heads, d
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-12), nn.LayerNorm(d, eps=1e-12)
            self.f1, self.f2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x, bias):
            b, s, _ = x.shape
            split = lambda t: t.view(b, s, self.h, self.d // self.h).transpose(1, 2)   # noqa: E731
            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.d // self.h) + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(b, s, self.d)
            x = self.ln1(x + self.o(ctx))
            return self.ln2(x + self.f2(nn.functional.gelu(self.f1(x))))

    class Bert(nn.Module):
        def __init__(self, vocab=120, d=32, heads=4, layers=2, max_len=32):
            super().__init__()
            self.word, self.pos, self.tok = nn.Embedding(vocab, d), nn.Embedding(max_len, d), nn.Embedding(2, d)
            self.ln = nn.LayerNorm(d, eps=1e-12)
            self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))

        def forward(self, input_ids, attention_mask, token_type_ids):
            s = input_ids.shape[1]
            pos = torch.arange(s, device=input_ids.device).unsqueeze(0)
            x = self.ln(self.word(input_ids) + self.pos(pos) + self.tok(token_type_ids))
            bias = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
            for blk in self.blocks:
                x = blk(x, bias)
            m = attention_mask.unsqueeze(-1).float()
            return (x * m).sum(1) / m.sum(1).clamp(min=1e-9)

    rng = np.random.default_rng(0)
    ids = rng.integers(1, 120, (2, 16)).astype(np.int64)
    mask = np.ones((2, 16), np.int64)
    mask[1, 11:] = 0
    types = np.zeros((2, 16), np.int64)
    types[:, 8:] = 1
    return Bert().eval(), {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}, ["sentence_embedding"]


def whisper_encoder():
    """A Whisper-style audio encoder: two GELU Conv1d stems (the second strided), sinusoidal positions, two
    pre-norm blocks of self-attention and a GELU MLP, a final LayerNorm."""
    torch = _torch()
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.att = nn.MultiheadAttention(d, heads, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x):
            h = self.ln1(x)
            x = x + self.att(h, h, h, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class Encoder(nn.Module):
        def __init__(self, mels=40, d=48, heads=4, frames=64):
            super().__init__()
            self.c1, self.c2 = nn.Conv1d(mels, d, 3, padding=1), nn.Conv1d(d, d, 3, stride=2, padding=1)
            t = torch.arange(frames // 2)[:, None] / (10000 ** (torch.arange(0, d, 2)[None, :] / d))
            self.register_buffer("pos", torch.cat([torch.sin(t), torch.cos(t)], dim=1)[None])
            self.blocks = nn.ModuleList(Block(d, heads) for _ in range(2))
            self.ln = nn.LayerNorm(d)

        def forward(self, mel):
            x = nn.functional.gelu(self.c2(nn.functional.gelu(self.c1(mel)))).transpose(1, 2) + self.pos
            for blk in self.blocks:
                x = blk(x)
            return self.ln(x)

    mel = np.random.default_rng(1).standard_normal((1, 40, 64)).astype(np.float32)
    return Encoder().eval(), {"mel": mel}, ["features"]


def crnn_recognizer():
    """A CRNN/SVTR-style text recognizer: a Conv-BN-ReLU backbone collapsed to a width sequence, a mixing block
    with a hand-decomposed LayerNorm (mean, variance, sqrt, as PaddleOCR's exports spell it), a CTC head."""
    torch = _torch()
    nn = torch.nn

    class HandLN(nn.Module):
        def __init__(self, d, eps=1e-6):
            super().__init__()
            self.w, self.b, self.eps = nn.Parameter(torch.randn(d) * 0.1 + 1), nn.Parameter(torch.randn(d) * 0.1), eps

        def forward(self, x):
            mu = x.mean(-1, keepdim=True)
            var = (x - mu).pow(2).mean(-1, keepdim=True)
            return (x - mu) / torch.sqrt(var + self.eps) * self.w + self.b

    class CRNN(nn.Module):
        def __init__(self, classes=40, d=48):
            super().__init__()
            blk = lambda i, o, s: [nn.Conv2d(i, o, 3, stride=s, padding=1), nn.BatchNorm2d(o), nn.ReLU()]  # noqa: E731
            self.cnn = nn.Sequential(*blk(3, 16, 2), *blk(16, 32, (2, 1)), *blk(32, d, (2, 1)), nn.AdaptiveAvgPool2d((1, None)))
            self.ln1, self.ln2 = HandLN(d), HandLN(d)
            self.mix = nn.Sequential(nn.Linear(d, 2 * d), nn.Hardswish(), nn.Linear(2 * d, d))
            self.head = nn.Linear(d, classes)

        def forward(self, image):
            x = self.cnn(image).squeeze(2).transpose(1, 2)            # [B, W, C]
            x = x + self.mix(self.ln1(x))
            return torch.log_softmax(self.head(self.ln2(x)), dim=-1)

    img = np.random.default_rng(2).random((1, 3, 32, 96)).astype(np.float32)
    model = CRNN()
    _sane_batchnorm(model)
    return model.eval(), {"image": img}, ["log_probs"]


def gru_audio():
    """A GRU audio model: a LeakyRelu CNN over a spectrogram, two stacked bidirectional GRUs, a per-frame score
    and their mean as a 0-d scalar output."""
    torch = _torch()
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self, d=24):
            super().__init__()
            self.cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2d((2, 1)),
                                     nn.Conv2d(8, 8, 3, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2d((2, 1)))
            self.gru = nn.GRU(8 * 10, d, num_layers=2, bidirectional=True, batch_first=True)
            self.out = nn.Linear(2 * d, 1)

        def forward(self, spec):
            x = self.cnn(spec)                                        # [B, 8, 10, T]
            b, c, f, t = x.shape
            x = x.permute(0, 3, 1, 2).reshape(b, t, c * f)
            y, _ = self.gru(x)
            frames = torch.sigmoid(self.out(y)).squeeze(-1)
            return frames, frames.mean()

    spec = np.random.default_rng(3).standard_normal((1, 1, 40, 30)).astype(np.float32)
    return Net().eval(), {"spec": spec}, ["frame_scores", "score"]


def lstm_tagger():
    """A Conv1d + LSTM + Linear sequence tagger (to be dynamically quantized by onnxruntime)."""
    torch = _torch()
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self, feats=20, d=32):
            super().__init__()
            self.conv = nn.Conv1d(feats, d, 3, padding=1)
            self.lstm = nn.LSTM(d, d, batch_first=True)
            self.out = nn.Linear(d, 8)

        def forward(self, x):
            h = torch.relu(self.conv(x)).transpose(1, 2)
            y, _ = self.lstm(h)
            return self.out(y)

    x = np.random.default_rng(4).standard_normal((1, 20, 24)).astype(np.float32)
    return Net().eval(), {"features": x}, ["logits"]


def yolo_detector():
    """A YOLOv8-style detector: a strided CSP-ish backbone, two detection scales with a DFL box head and the
    in-graph anchor decode (softmax over 8 bins, grid and stride), boxes and class scores concatenated."""
    torch = _torch()
    nn = torch.nn

    def cbs(i, o, s=1):
        return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.SiLU())

    class Yolo(nn.Module):
        def __init__(self, classes=3, reg=8):
            super().__init__()
            self.reg, self.nc = reg, classes
            self.stem = nn.Sequential(cbs(3, 8, 2), cbs(8, 16, 2), cbs(16, 16))
            self.p4 = nn.Sequential(cbs(16, 24, 2), cbs(24, 24))
            self.heads = nn.ModuleList(nn.Conv2d(c, 4 * reg + classes, 1) for c in (16, 24))
            self.strides = (4, 8)
            self.register_buffer("bins", torch.arange(reg, dtype=torch.float32).view(1, reg, 1, 1))

        def forward(self, images):
            p3 = self.stem(images)
            outs = []
            for feat, head, s in zip((p3, self.p4(p3)), self.heads, self.strides):
                y = head(feat)
                b, _, h, w = y.shape
                box, cls = y[:, :4 * self.reg], y[:, 4 * self.reg:]
                d = (torch.softmax(box.view(b * 4, self.reg, h, w), dim=1) * self.bins).sum(1).view(b, 4, h * w)
                gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
                cx, cy = gx.reshape(1, -1) + 0.5, gy.reshape(1, -1) + 0.5
                xy1 = torch.stack([cx - d[:, 0], cy - d[:, 1]], 1)
                xy2 = torch.stack([cx + d[:, 2], cy + d[:, 3]], 1)
                boxes = torch.cat([(xy1 + xy2) / 2, xy2 - xy1], 1) * s
                outs.append(torch.cat([boxes, torch.sigmoid(cls.view(b, self.nc, h * w))], 1))
            return torch.cat(outs, 2)

    img = np.random.default_rng(5).random((1, 3, 64, 64)).astype(np.float32)
    model = Yolo()
    _sane_batchnorm(model)
    return model.eval(), {"images": img}, ["detections"]


# ---------------------------------------------------------------------------------------------------- writing
def export(model, feeds: dict, outputs: list[str], path: Path, opset: int = 17) -> None:
    """torch.onnx.export with the TorchScript exporter at ``opset``, static shapes."""
    torch = _torch()
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    torch.onnx.export(model, args, str(path), input_names=list(feeds), output_names=outputs, opset_version=opset,
                      dynamo=False, do_constant_folding=True)


def ort_optimized(src: Path, dst: Path, heads: int, hidden: int) -> None:
    """onnxruntime's transformers optimizer (model_type bert, CPU fusions only)."""
    from onnxruntime.transformers.optimizer import optimize_model
    opt = optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0, use_gpu=False)
    opt.save_model_to_file(str(dst))


def ort_qdq(src: Path, dst: Path, feeds: dict) -> None:
    """onnxruntime's static quantization to int8 QDQ (per-channel weights), calibrated on small perturbations of
    the case's input."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(9)
            self.items = iter([{k: (v + rng.standard_normal(v.shape).astype(v.dtype) * 0.1) for k, v in feeds.items()}
                               for _ in range(8)])

        def get_next(self):
            return next(self.items, None)
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)


def ort_dynamic(src: Path, dst: Path) -> None:
    """onnxruntime's dynamic quantization (int8 weights; DynamicQuantizeLSTM, ConvInteger, MatMulInteger)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


def write_case(out: Path, name: str, model_file: Path, feeds: dict, outputs: list[str], note: str,
               tol: tuple[float, float] = (1e-4, 1e-5)) -> None:
    import shutil
    import onnx
    case = out / name
    (case / "inputs").mkdir(parents=True, exist_ok=True)
    shutil.copy(model_file, case / "model.onnx")
    names = [o.name for o in onnx.load(str(model_file)).graph.output]
    for k, v in feeds.items():
        np.save(case / "inputs" / f"{k}.npy", v)
    lines = [f"# {note}", "# Built by examples/model_families.py (random weights, torch.onnx); recorded with `bornc golden record`.",
             f"targets = {TARGETS!r}".replace("'", '"'), "", "[model]", 'path = "model.onnx"', "", "[inputs]"]
    lines += [f'"{k}" = "{k}.npy"' for k in feeds] + ["", "[outputs]"] + [f'"{o}" = "{o}.npy"' for o in names]
    lines += ["", "[tolerance]", f"default = {{ rtol = {tol[0]}, atol = {tol[1]} }}", ""]
    (case / "case.toml").write_text("\n".join(lines))


_LSTM_NOTE = ("Conv1d + LSTM tagger dynamically quantized by onnxruntime (DynamicQuantizeLSTM, ConvInteger, "
              "MatMulInteger).\n# atol 3e-3: onnxruntime's DynamicQuantizeLSTM also quantizes X and H to uint8 at each step; "
              "bornc runs the float LSTM on the dequantized weights.")

#: family -> (model builder, [(case, what onnxruntime's tools do to the export or None, note, (rtol, atol))])
FAMILY_CASES = {
    "bert": (bert_encoder, [
        ("family_bert", None, "BERT/MiniLM-style encoder (opset 17): attention mask, masked mean pooling.", (1e-4, 1e-5)),
        ("family_bert_ortopt", lambda src, dst, feeds: ort_optimized(src, dst, 4, 32),
         "The BERT encoder after onnxruntime's transformers optimizer (contrib Attention, SkipLayerNormalization...).",
         (1e-4, 1e-5))]),
    "whisper": (whisper_encoder, [
        ("family_whisper", None, "Whisper-style audio encoder: Conv1d stem, LayerNorm, GELU, attention.", (1e-4, 2e-5)),
        ("family_whisper_qdq", ort_qdq, "The Whisper-style encoder after onnxruntime's static QDQ int8 quantization.",
         (1e-3, 1e-3))]),
    "crnn": (crnn_recognizer, [
        ("family_crnn", None, "CRNN/SVTR-style text recognizer: hand-decomposed LayerNorm, CTC head.", (1e-4, 1e-5))]),
    "gru": (gru_audio, [
        ("family_gru", None, "GRU audio model: LeakyRelu CNN, stacked bidirectional GRUs, a 0-d scalar output.",
         (1e-4, 1e-5))]),
    "lstm": (lstm_tagger, [
        ("family_lstm_dynq", lambda src, dst, feeds: ort_dynamic(src, dst), _LSTM_NOTE, (1e-3, 3e-3))]),
    "yolo": (yolo_detector, [
        ("family_yolo", None, "YOLOv8-style detector with its in-graph anchor decode (DFL softmax, grid, stride).",
         (1e-4, 1e-4))]),
}
FAMILIES = list(FAMILY_CASES)


def build(out: Path, names: list[str]) -> None:
    """Export each family's model once, then write each of its cases (the export itself, or what an onnxruntime
    tool makes of it)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in names:
            make, cases = FAMILY_CASES[name]
            m, feeds, outs = make()
            src = tmp / f"{name}.onnx"
            export(m, feeds, outs, src)
            for case, transform, note, tol in cases:
                path = src
                if transform is not None:
                    path = tmp / f"{case}.onnx"
                    transform(src, path, feeds)
                write_case(out, case, path, feeds, outs, note, tol)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "golden"))
    ap.add_argument("families", nargs="*", help=f"some of {', '.join(FAMILIES)} (default: all)")
    a = ap.parse_args()
    bad = set(a.families) - set(FAMILIES)
    if bad:
        ap.error(f"unknown families {sorted(bad)}; choose from {FAMILIES}")
    build(Path(a.out), a.families or FAMILIES)
