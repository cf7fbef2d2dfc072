#!/usr/bin/env bash
# Quick start: set up a virtual environment, fetch a real model from PyPI, inspect it, run it with the
# reference interpreter, and check it against its golden outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"

# The PaddleOCR text-direction classifier, from the rapidocr-onnxruntime wheel (sha256-verified, cached).
MODEL=$(bornc golden fetch ppocr_mobile_v2_cls)
bornc inspect "$MODEL" --input-shape x=1,3,48,192
bornc run "$MODEL" --input-shape x=1,3,48,192 --input x=golden/ppocr_mobile_v2_cls/inputs/x.npy -o out/cls.npz
bornc golden check ppocr_mobile_v2_cls silero_vad_16k magika_standard_v3_3
