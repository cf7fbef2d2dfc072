"""Quantize the real models in ../shared/models to int8 (and fp16) and report what it costs.

For each model: writes calibration sets (8) and distinct validation sets (4) made from the model's stored input
by seeded augmentation (images: brightness/contrast, shifts, upside-down rotation, noise; audio: gain,
time shift, noise; recurrent state: scaling; magika: real files from this repository, others for validation; 100
validation sets for magika and for the text-direction classifier, 4 elsewhere),
then runs ``bornc compile MODEL --target T --quantize int8 --calibration cal/ --validation val/`` and prints the
report, and with ``--bench`` compares ``bornc bench`` of the float32 and int8 C artifacts: five interleaved
measurements of about 1.5 s each (medians of runs), the median of the five.

    python examples/quantize_models.py --models ../shared/models --target x86_64 [--bench] [--only NAME]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _files(validation: bool) -> list[Path]:
    skip = ("build", "out", "golden")
    files = sorted(p for p in REPO.rglob("*") if p.is_file() and p.suffix in (".py", ".h", ".c", ".md", ".toml", ".j2",
                                                                             ".js", ".html", ".wgsl", ".json")
                   and not any(part.startswith(".") or part in skip or part.endswith(".egg-info")
                               for part in p.relative_to(REPO).parts) and p.stat().st_size > 64)
    return files[1::2] if validation else files[0::2]


def magika_features(data: bytes, size: int = 1024, pad: int = 256) -> np.ndarray:
    """Magika's input: the first and last ``size`` bytes (whitespace stripped), padded with 256."""
    beg, end = data.lstrip()[:size], data.rstrip()[-size:]
    a = list(beg) + [pad] * (size - len(beg))
    b = [pad] * (size - len(end)) + list(end)
    return np.array([a + b], dtype=np.int32)


def augment(name: str, base: np.ndarray, rng, k: int, validation: bool) -> np.ndarray:
    """One augmented copy of the stored input ``base`` of input ``name``."""
    if base.dtype.kind in "iu":
        if base.shape == (1, 2048):                      # magika's byte features
            files = _files(validation)
            return magika_features(files[(k * 7 + 3) % len(files)].read_bytes())
        return base
    if base.ndim == 4:                                  # NCHW image
        x = base * rng.uniform(0.7, 1.3) + rng.uniform(-0.2, 0.2) * base.std()
        x = np.roll(x, (int(rng.integers(-base.shape[2] // 10, base.shape[2] // 10 + 1)),
                        int(rng.integers(-base.shape[3] // 10, base.shape[3] // 10 + 1))), axis=(2, 3))
        if rng.random() < 0.5:                          # upside down (the text-direction classifier's class 1)
            x = x[..., ::-1, ::-1]
        return (x + rng.normal(0, 0.02 * base.std(), base.shape)).astype(base.dtype)
    if name == "state":                                 # recurrent state carried between steps
        return (base * rng.uniform(0.5, 1.5)).astype(base.dtype)
    x = np.roll(base * rng.uniform(0.5, 1.5), int(rng.integers(0, base.size)), axis=1)
    return (x + rng.normal(0, 0.01 * (base.std() + 1e-6), base.shape)).astype(base.dtype)


#: Validation sets per model: more for the classifiers, whose top-1 agreement is a fraction of sets.
N_VAL = {"magika_standard_v3_3": 100, "ch_ppocr_mobile_v2.0_cls": 100}


def write_sets(model_dir: Path, out: Path, n_cal: int = 8, n_val: int | None = None) -> tuple[Path, Path]:
    n_val = n_val or N_VAL.get(model_dir.name, 4)
    card = json.loads((model_dir / "card.json").read_text())
    names = [i["name"] for i in card.get("inputs", [])] if isinstance(card.get("inputs"), list) else None
    stored = {p.stem: np.load(p) for p in sorted((model_dir / "inputs").glob("*.npy"))}
    if names:                                             # file names have / and : replaced by _
        stored = {n: stored[re.sub(r"[/:]", "_", n)] for n in names}
    for kind, count, seed in (("cal", n_cal, 0), ("val", n_val, 1000)):
        d = out / kind
        d.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        for k in range(count):
            sets = {n: augment(n, v, rng, k + seed, kind == "val") for n, v in stored.items()}
            np.savez(d / f"{k:02d}.npz", **sets)
    return out / "cal", out / "val"


def _bench(art: Path, runs: int) -> float:
    r = subprocess.run(["bornc", "bench", str(art), "--runs", str(runs), "--json"], capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout)["bornc_ms"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(REPO.parent / "shared" / "models"))
    ap.add_argument("--target", default="x86_64")
    ap.add_argument("--method", default="percentile")
    ap.add_argument("--only", action="append")
    ap.add_argument("--bench", action="store_true", help="bornc bench the float32 and int8 artifacts")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    rows = {}
    for d in sorted(p for p in Path(a.models).iterdir() if (p / "model.onnx").exists()):
        if a.only and d.name not in a.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            cal, val = write_sets(d, tmp)
            shapes = []
            with np.load(cal / "00.npz") as z:
                for name in z.files:
                    if z[name].ndim:
                        shapes += ["--input-shape", f"{name}=" + ",".join(map(str, z[name].shape))]
            art = tmp / "int8"
            cmd = ["bornc", "compile", str(d / "model.onnx"), "--target", a.target, "-o", str(art), *shapes,
                   "--quantize", "int8", "--calibration", str(cal), "--validation", str(val),
                   "--calibrate-method", a.method]
            r = subprocess.run(cmd, capture_output=True, text=True)
            print(f"== {d.name}")
            print(r.stdout.strip() if r.returncode == 0 else (r.stderr or r.stdout).strip())
            if r.returncode:
                continue
            rep = json.loads((art / "manifest.json").read_text())["quantization"]
            row = {"report": rep}
            if a.bench:
                f32 = tmp / "f32"
                subprocess.run(["bornc", "compile", str(d / "model.onnx"), "--target", a.target, "-o", str(f32), *shapes],
                               capture_output=True, text=True, check=True)
                t32, t8 = [], []
                runs = int(min(2000, max(20, 1500 / _bench(f32, 5))))     # about 1.5 s per measurement
                for _ in range(5):                          # interleaved, so drift hits both alike
                    t32.append(_bench(f32, runs))
                    t8.append(_bench(art, runs))
                row["fp32_ms"], row["int8_ms"] = float(np.median(t32)), float(np.median(t8))
                row["fp32_weights"] = json.loads((f32 / "manifest.json").read_text())["weights_bytes"]
                print(f"  bench {a.target}: float32 {row['fp32_ms']:.3f} ms, int8 {row['int8_ms']:.3f} ms "
                      f"(float32 / int8 = {row['fp32_ms'] / row['int8_ms']:.2f}); artifact weights "
                      f"{row['fp32_weights']:,} -> {rep['artifact_weights_bytes']:,} bytes")
            rows[d.name] = row
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
