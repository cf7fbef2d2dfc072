"""3x3 stride-1 convolution by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", CVPR 2016, section 4), for the C target (templates/c/conv_winograd.c.j2).

Each 4x4 output tile is A^T [(G g G^T) (.) (B^T d B)] A over the 6x6 input patch d: 36 products per tile and
channel pair instead of the 144 multiply-adds of the direct form. The products of all channel pairs are 36
GEMMs, U_xi (M x C) by V_xi (C x tiles), run on bornrt_gemm.h's micro-kernels; U = G g G^T is computed
here at compile time (float64, rounded once to float32). Transform matrices: the interpolation points 0, +-1,
+-2, +-1/2 and infinity, as in Lavin & Gray's F(4x4, 3x3).

Error: against a float64 direct convolution the transforms add rounding in B^T d B (coefficients up to 5) and
A^T m A (up to 8). On normal inputs and weights the largest error was 3e-6 (C = 64) to 9e-6 (C = 256) of the
output's largest magnitude, against 1e-6 to 2e-6 for the direct GEMM path (test_winograd_conv_error in
tests/backends/test_c_kernels.py measures both and bounds it by 2e-5)."""
from __future__ import annotations

import numpy as np

from .ctypes_ import literal
from .lower_nn import TILE_FLOATS, pack_a6, split
from .lowering import CCtx, Lowered, Stage

# The transform matrices (the C transforms, bornrt_gemm.h's bornc_wino_*, apply BT and AT written out).
BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
               [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], np.float64)

#: bytes of one worker's transformed input and products (36 x (C + M) x tiles floats): enough tiles for whole
#: 32-column GEMM tiles on most layers (ddddocr det on the build VM: 1.5 MiB 67 ms, 3 MiB 57-63 ms, 6 MiB 63 ms)
BLOCK_BYTES = 3072 * 1024
#: input and output channels below which the transforms cost about what the GEMM saves, and tiles per output
#: row below which the 16-tile transforms mostly work on padding, unless there are WIDE_CHANNELS (where the
#: transforms are a small part): measured on the 2-core build VM against the direct GEMM path, 32 -> 32 channels
#: at 208 x 208 ran as fast, 64 -> 64 at 56 x 56 1.4x faster, 128 -> 128 at 28 x 28 (7 tiles a row) 1.4x,
#: 64 -> 64 at 28 x 28 no faster, 256 -> 256 at 14 x 14 1.07x alone but slower inside resnet50 (89 against 79 ms)
MIN_CHANNELS = 64
MIN_TILE_COLUMNS = 12
WIDE_CHANNELS, MIN_TILE_COLUMNS_WIDE = 128, 7


def transform_weights(w: np.ndarray) -> np.ndarray:
    """U[xi] = (G g G^T) flattened over xi = 6 a + b, for weights g (M, C, 3, 3): (36, M, C) float32."""
    u = np.einsum("ai,mcij,bj->abmc", G, np.asarray(w, np.float64), G)
    return u.reshape(36, w.shape[0], w.shape[1]).astype(np.float32)


def applies(ctx: CCtx, geo: dict) -> bool:
    """Whether a Conv takes the Winograd path: float, constant weights, one group, 3x3, stride 1, no dilation,
    MIN_CHANNELS input and output channels, MIN_TILE_COLUMNS tiles across the output (MIN_TILE_COLUMNS_WIDE with
    WIDE_CHANNELS), and a target with more than kilobytes of RAM (its workspace is up to BLOCK_BYTES a worker)."""
    return ("small-ram" not in ctx.features and ctx.oct() == "float" and ctx.consts[1] is not None and geo["G"] == 1 and geo["KH"] == geo["KW"] == 3
            and geo["SH"] == geo["SW"] == 1 and geo["DH"] == geo["DW"] == 1 and len(ctx.shape(0)) == 4
            and min(geo["CG"], geo["MG"]) >= MIN_CHANNELS and -(-geo["OW"] // 4) >= (
                MIN_TILE_COLUMNS_WIDE if min(geo["CG"], geo["MG"]) >= WIDE_CHANNELS else MIN_TILE_COLUMNS))


def winograd_conv(ctx: CCtx, geo: dict, threads: int, clamp) -> Lowered:
    """The lowering: tasks are (image, block of tile rows, chunk of weight panels); a block's rows of 4x4 tiles
    are as many as keep its transformed input and products within BLOCK_BYTES."""
    c, m, tw, th = geo["CG"], geo["MG"], -(-geo["OW"] // 4), -(-geo["OH"] // 4)
    panels = -(-m // 6)
    rows = max(1, min(th, (BLOCK_BYTES // (36 * (c + 6 * panels) * 4) - 16) // tw))
    blocks = -(-th // rows)
    if threads > 1 and geo["N"] * blocks < 2 * threads:  # workers get blocks of their own: a chunk of the weight
        blocks = min(th, -(-2 * threads // geo["N"]))      # panels would transform the block's input again
    rows = -(-th // blocks)                      # the same number in every block
    blocks = -(-th // rows)
    tp = -(-rows * tw // 16) * 16
    chunks, parallel = split(geo["N"] * blocks, panels, threads, geo["N"] * m * c * 9 * geo["OH"] * geo["OW"],
                             per_thread=2)
    tasks = geo["N"] * blocks * chunks
    u = transform_weights(ctx.consts[1])
    packed = {1: np.concatenate([pack_a6(u[xi]) for xi in range(36)])}
    params = {**geo, "TW": tw, "TH": th, "ROWS": rows, "TP": tp, "LD": tp + 16, "NB": blocks, "MPAN": panels, "MCH": chunks,
              "TILE": TILE_FLOATS, "has_bias": ctx.has(2), "epi": None, "serial_tasks": 0 if parallel else tasks,
              "clamp": [literal(v, "float32") for v in clamp] if clamp else None}
    ws = TILE_FLOATS + 36 * (c + 6 * panels) * (tp + 16)
    par = tasks if parallel else 0
    return Lowered([Stage("conv_winograd", params, par)], [k for k in range(3) if ctx.has(k)], workspace=ws * 4,
                   tasks=par, packed=packed)
