"""Layers holding numpy weights, for models defined in Python (``bc.Linear``, ``bc.Conv2d``...).

Each layer is called on symbolic tensors inside :func:`bornc.trace` and emits ONNX operators; weights are numpy
arrays given by the caller (trained elsewhere) or, when omitted, drawn from a seeded normal distribution scaled by
1/sqrt(fan_in) (for tests and shapes, not for accuracy). Shapes follow PyTorch's conventions (NCHW, weight
(out, in)), so trained weights can be copied over.
"""
from __future__ import annotations

import numpy as np

from .api import Tensor, TraceError, apply


def _init(shape, fan_in: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) / np.sqrt(max(fan_in, 1))).astype(np.float32)


class Linear:
    """y = x @ W.T + b for x (..., in_features); W (out_features, in_features) float32, b (out_features,)."""

    def __init__(self, in_features: int, out_features: int, weight=None, bias=None, use_bias: bool = True, seed: int = 0):
        self.weight = np.asarray(weight, np.float32) if weight is not None else _init((out_features, in_features), in_features, seed)
        if self.weight.shape != (out_features, in_features):
            raise TraceError(f"Linear: weight shape {self.weight.shape}, expected {(out_features, in_features)}")
        self.bias = (np.asarray(bias, np.float32) if bias is not None else np.zeros(out_features, np.float32)) if use_bias else None

    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim == 2:
            return apply("Gemm", x, self.weight, self.bias, transB=1)
        y = x @ np.ascontiguousarray(self.weight.T)
        return y + self.bias if self.bias is not None else y


class Conv2d:
    """2-D convolution, NCHW: weight (out_channels, in_channels / groups, kH, kW), bias (out_channels,); ``padding``
    an int or (pad_h, pad_w), symmetric."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 weight=None, bias=None, use_bias: bool = True, seed: int = 0):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        shape = (out_channels, in_channels // groups, kh, kw)
        self.weight = np.asarray(weight, np.float32) if weight is not None else _init(shape, in_channels // groups * kh * kw, seed)
        if self.weight.shape != shape:
            raise TraceError(f"Conv2d: weight shape {self.weight.shape}, expected {shape}")
        self.bias = (np.asarray(bias, np.float32) if bias is not None else np.zeros(out_channels, np.float32)) if use_bias else None
        pair = lambda v: [v, v] if isinstance(v, int) else list(v)  # noqa: E731
        ph, pw = pair(padding)
        self.attrs = {"strides": pair(stride), "dilations": pair(dilation), "group": groups, "pads": [ph, pw, ph, pw],
                      "kernel_shape": [kh, kw]}

    def __call__(self, x: Tensor) -> Tensor:
        return apply("Conv", x, self.weight, self.bias, **self.attrs)


class BatchNorm2d:
    """Inference BatchNormalization over channels (axis 1) with running statistics."""

    def __init__(self, num_features: int, weight=None, bias=None, running_mean=None, running_var=None, eps: float = 1e-5):
        c = num_features
        self.weight = np.asarray(weight if weight is not None else np.ones(c), np.float32)
        self.bias = np.asarray(bias if bias is not None else np.zeros(c), np.float32)
        self.mean = np.asarray(running_mean if running_mean is not None else np.zeros(c), np.float32)
        self.var = np.asarray(running_var if running_var is not None else np.ones(c), np.float32)
        self.eps = float(eps)

    def __call__(self, x: Tensor) -> Tensor:
        return apply("BatchNormalization", x, self.weight, self.bias, self.mean, self.var, epsilon=self.eps)


class LayerNorm:
    """LayerNormalization over the last len(normalized_shape) axes, with scale and bias."""

    def __init__(self, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.weight = np.asarray(weight if weight is not None else np.ones(shape), np.float32)
        self.bias = np.asarray(bias if bias is not None else np.zeros(shape), np.float32)
        self.eps, self.rank = float(eps), len(shape)

    def __call__(self, x: Tensor) -> Tensor:
        return apply("LayerNormalization", x, self.weight, self.bias, axis=-self.rank, epsilon=self.eps)


class Embedding:
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by integer ids (ONNX Gather on axis 0)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, weight=None, seed: int = 0):
        self.weight = np.asarray(weight, np.float32) if weight is not None else _init((num_embeddings, embedding_dim), 1, seed)

    def __call__(self, ids: Tensor) -> Tensor:
        return apply("Gather", self.weight, ids, axis=0)


class MultiHeadAttention:
    """Self- or cross-attention (Vaswani et al. 2017, "Attention Is All You Need", section 3.2.2) on
    (batch, length, embed_dim) inputs: per-head softmax(Q K^T / sqrt(head_dim)) V, then the output projection."""

    def __init__(self, embed_dim: int, num_heads: int, q=None, k=None, v=None, out=None, seed: int = 0):
        if embed_dim % num_heads:
            raise TraceError(f"MultiHeadAttention: embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        self.h, self.d = num_heads, embed_dim // num_heads
        self.q = q or Linear(embed_dim, embed_dim, seed=seed)
        self.k = k or Linear(embed_dim, embed_dim, seed=seed + 1)
        self.v = v or Linear(embed_dim, embed_dim, seed=seed + 2)
        self.out = out or Linear(embed_dim, embed_dim, seed=seed + 3)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.h, self.d).transpose(0, 2, 1, 3)

    def __call__(self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None) -> Tensor:
        key = query if key is None else key
        value = key if value is None else value
        q, k, v = self._heads(self.q(query)), self._heads(self.k(key)), self._heads(self.v(value))
        att = apply("Softmax", (q @ k.transpose(0, 1, 3, 2)) * np.float32(1 / np.sqrt(self.d)), axis=-1)
        b, _, n, _ = att.shape
        y = (att @ v).transpose(0, 2, 1, 3).reshape(b, n, self.h * self.d)
        return self.out(y)
