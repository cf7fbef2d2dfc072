"""The WebGPU backend: WGSL kernels with shapes baked in, a manifest of dispatches over one planned arena, and
hosts for Python (wgpu) and browsers in runtime/webgpu."""
from .emit import compile_webgpu, lacks_webgpu_kernel

__all__ = ["compile_webgpu", "lacks_webgpu_kernel"]
