"""The microcontroller table: each int8 golden model of examples/mcu_models.py on each Cortex-M target, through
the CLI as a user runs it (`bornc golden check`, `bornc compile --quantize int8` with the case's calibration,
validation and fallback options, so the artifact measured is the one golden check compares, `bornc bench --json`).

    python examples/mcu_report.py [--targets cortex-m4 cortex-m55] [--cases mcu_kws_dscnn_int8 ...] [-o table.md]

Per model and target: RAM (planned arena, the model's I/O buffers, other runtime state, the stack one run used:
measured by painting it under qemu), flash (kernels, weights, runtime: from the link map of build/firmware.elf,
the smallest application), instructions per inference and per multiply-accumulate (qemu-system-arm -icount
shift=0: instructions executed, not cycles on a chip), and whether the outputs equal the golden ones bit for bit.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
CASES = ["mcu_kws_dscnn_int8", "mcu_vww_mobilenet_int8", "mcu_anomaly_autoencoder_int8"]


def bornc(*args: str) -> str:
    """Run the bornc CLI; its stdout, or exit with its error line."""
    r = subprocess.run([sys.executable, "-m", "bornc", *args], capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        sys.exit(f"bornc {' '.join(args[:2])}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
    return r.stdout


def row(case: str, target: str, tmp: Path) -> dict:
    """Figures of one case on one target."""
    import tomllib
    folder = ROOT / "golden" / case
    spec = tomllib.loads((folder / "case.toml").read_text())
    check = bornc("golden", "check", case, "--target", target).splitlines()
    line = next(ln for ln in check if ln.startswith(case))
    exact = float(line.split()[2]) == 0.0 and line.rstrip().endswith("pass")
    out = tmp / f"{case}-{target}"
    q = spec["quantize"]                 # the case's own quantization: the artifact golden check compares
    opts = ["--calibration", str(folder / q["calibration"])]
    opts += ["--validation", str(folder / q["validation"])] if "validation" in q else []
    opts += ["--fallback-threshold", str(q["fallback_threshold"])] if "fallback_threshold" in q else []
    bornc("compile", str(folder / "model.onnx"), "--target", target, "--quantize", q["mode"], *opts, "-o", str(out))
    inputs = [a for name, f in spec["inputs"].items() for a in ("--input", f"{name}={folder / 'inputs' / f}")]
    r = json.loads(bornc("bench", str(out), *inputs, "--json"))
    fw = r["firmware"]
    return {"case": case.removeprefix("mcu_").removesuffix("_int8"), "target": target, "arena": fw["arena"],
            "io": fw["io"], "other": fw["state"], "stack": r["stack_bytes"], "kernels": fw["kernels"],
            "weights": fw["weights"], "runtime": fw["runtime"], "instructions": r["instructions"],
            "per_mac": r.get("instructions_per_mac", float("nan")), "exact": exact}


def table(rows: list[dict]) -> str:
    head = ("| model | target | RAM arena | I/O buffers | other state | stack used | flash kernels | weights | runtime | "
            "instructions / inference | per MAC | bit-exact |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r['case']} | {r['target']} | {r['arena']:,} | {r['io']:,} | {r['other']:,} | {r['stack']:,} | {r['kernels']:,} | "
        f"{r['weights']:,} | {r['runtime']:,} | {r['instructions']:,} | {r['per_mac']:.2f} | {'yes' if r['exact'] else 'NO'} |\n"
        for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", nargs="+", default=["cortex-m4", "cortex-m55", "cortex-m7"])
    ap.add_argument("--cases", nargs="+", default=CASES)
    ap.add_argument("-o", "--output", help="also write the table (markdown) here")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row(c, t, Path(tmp)) for c in a.cases for t in a.targets]
    text = table(rows) + ("\nBytes; instructions from qemu-system-arm -icount shift=0 (not cycles); per MAC = "
                          "instructions / (manifest FLOPs / 2).\n")
    print(text)
    if a.output:
        Path(a.output).write_text(text)


if __name__ == "__main__":
    main()
