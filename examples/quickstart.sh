#!/usr/bin/env bash
# Quick start: install the toolchains, set up a virtual environment, fetch a real model from PyPI, inspect it,
# compile it for a Raspberry Pi 4, run the artifact here under qemu-user, and check it against golden outputs;
# then compile it for WebGPU and run the bundle through wgpu on Mesa's lavapipe Vulkan driver.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES="gcc make python3-venv gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user clang mesa-vulkan-drivers libvulkan1"
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v arm-linux-gnueabihf-gcc >/dev/null \
   || ! command -v qemu-aarch64 >/dev/null || ! command -v clang >/dev/null || ! command -v chromium >/dev/null \
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
bornc inspect "$MODEL" --input-shape x=1,3,48,192
bornc compile "$MODEL" --target rpi --input-shape x=1,3,48,192 -o out/cls-rpi
bornc run out/cls-rpi --input x=golden/ppocr_mobile_v2_cls/inputs/x.npy -o out/cls-rpi.npz
bornc golden check ppocr_mobile_v2_cls silero_vad_16k magika_standard_v3_3 --target rpi

# The same model as a WebGPU bundle (WGSL kernels + manifest + weights + Python and browser hosts).
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
bornc compile "$MODEL" --target webgpu --input-shape x=1,3,48,192 -o out/cls-webgpu
bornc run out/cls-webgpu --input x=golden/ppocr_mobile_v2_cls/inputs/x.npy -o out/cls-webgpu.npz
