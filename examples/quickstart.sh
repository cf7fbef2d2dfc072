#!/usr/bin/env bash
# Quick start: install the toolchains, set up a virtual environment, fetch a real model from PyPI, inspect it,
# compile it for a Raspberry Pi 4 and for WebGPU, run both artifacts here (the Pi binary under qemu-user, the
# bundle through wgpu on Mesa's lavapipe Vulkan driver) and show what the model says, check three real models
# against golden outputs, and say where the artifacts are.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES="gcc make python3-venv gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user clang mesa-vulkan-drivers libvulkan1 gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v arm-linux-gnueabihf-gcc >/dev/null \
   || ! command -v qemu-aarch64 >/dev/null || ! command -v clang >/dev/null || ! command -v chromium >/dev/null \
   || ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null \
   || [ ! -e /usr/lib/arm-none-eabi/newlib ] \
   || ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
  # headless Chromium (WebGPU on its SwiftShader adapter) runs the browser host in the tests
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,examples]'
export PATH="$PWD/.venv/bin:$PATH"

# The PaddleOCR text-direction classifier, from the rapidocr-onnxruntime wheel (sha256-verified, cached).
MODEL=$(bornc golden fetch ppocr_mobile_v2_cls)
IMAGE=golden/ppocr_mobile_v2_cls/inputs/x.npy          # a text line, 48x192 RGB, as the model takes it
bornc inspect "$MODEL" --input-shape x=1,3,48,192
bornc compile "$MODEL" --target rpi --input-shape x=1,3,48,192 -o out/cls-rpi

# The same model as a WebGPU bundle (WGSL kernels + manifest + weights + Python and browser hosts).
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
bornc compile "$MODEL" --target webgpu --input-shape x=1,3,48,192 -o out/cls-webgpu

echo
echo "== What the model says about the text line: is it upright (class 0) or upside down (class 1)?"
echo "-- on the Raspberry Pi 4 binary, run here under qemu-user:"
bornc run out/cls-rpi --input x=$IMAGE -o out/cls-rpi.npz --top 2 --labels "upright,upside down"
echo "-- on WebGPU (wgpu, Mesa's lavapipe):"
bornc run out/cls-webgpu --input x=$IMAGE -o out/cls-webgpu.npz --top 2 --labels "upright,upside down"
echo
echo "== Golden check on the rpi target (three real models, outputs recorded with onnxruntime):"
bornc golden check ppocr_mobile_v2_cls silero_vad_16k magika_standard_v3_3 --target rpi
echo
echo "== The artifacts:"
echo "   out/cls-rpi/     C sources, Makefile and build/model_run (aarch64): copy the folder to a Pi 4 and run"
echo "                    ./build/model_run --input x=x.npy, or make there to rebuild with its compiler"
echo "   out/cls-webgpu/  WGSL kernels, manifest, weights, bornrt_webgpu.py (Python host) and index.html (browser)"
