"""C lowerings of Conv, ConvTranspose, Gemm, MatMul (and their Fused* forms with an epilogue),
BatchNormalization, pooling, LRN, Softmax/LogSoftmax and the recurrent layers (LSTM, GRU, RNN). Geometry comes from the same helpers the
reference kernels use (``ops/nn.py``), so both agree on padding rules."""
from __future__ import annotations

import numpy as np

from ...ops.registry import lowering
from ...pyrt import rt
from ..common import geometry
from .ctypes_ import literal
from .lower_elementwise import c_math, elementwise_stage, render_program
from ..common.lowering import broadcast_strides, contiguous_strides
from .lowering import Lowered, CCtx, Stage


def _epilogue(ctx: CCtx, first_extra: int) -> list[Stage]:
    prog = ctx.attrs.get("epilogue") or []
    if not prog:
        return []
    n_extra = len(ctx.node.inputs) - first_extra
    ops = [("Y0", ctx.oshape(), ctx.oct())] + [(f"X{first_extra + k}", ctx.shape(first_extra + k), ctx.ct(first_extra + k))
                                             for k in range(n_extra)]
    return [elementwise_stage(ctx, prog, ops, ("Y0", ctx.oshape(), ctx.oct()), ctx.oct(), parallel=True)]


def conv_window(ctx: CCtx, w_index: int = 1) -> dict:
    """The 1-D/2-D convolution geometry the C conv templates share (:func:`bornc.backends.common.geometry.
    conv_window`: N, C, H, W, M, G, MG, CG, KH, KW, OH, OW, SH, SW, DH, DW, PT, PB, PL, PR, P, owlo, owhi). The
    weight is input ``w_index`` (3 for QLinearConv)."""
    xs, ws = ctx.shape(0), ctx.shape(w_index)
    if len(xs) not in (3, 4):
        raise ctx.unsupported(f"{len(xs) - 2}-D convolution in C")
    return geometry.conv_window(ctx.attrs, xs, ws, ctx.oshape())


#: bytes of one worker's packed B block (K x columns, im2col or copied) in the packed GEMM convolution: within
#: a Zen 4 core's 1 MiB L2 beside the A panels streaming through
B_BLOCK_BYTES = 768 * 1024


def block_columns(k: int, p: int) -> int:
    """Output columns per task of the packed GEMM convolution: whole 16-column panels whose K x columns block
    fits B_BLOCK_BYTES (at least one panel, at most 256 columns), no more than the output has."""
    cols = max(16, min(256, B_BLOCK_BYTES // (4 * k) // 16 * 16))
    return min(cols, -(-p // 16) * 16)


#: below this many multiply-adds (about 0.1 ms on one core) a kernel's tasks stay on the caller: on the 2-core
#: build VM, models made of many small parallel kernels (ppocr cls, squeezenet) ran slower on 2 threads than on 1
PARALLEL_MIN_MACS = 8_000_000


def split(base: int, panels: int, threads: int, macs: int, per_thread: int = 4) -> tuple[int, bool]:
    """How a packed GEMM kernel is split: (chunks of weight panels per block, whether its tasks go to the
    workers). Blocks alone feed the workers when there are ``per_thread`` per thread; otherwise each block's
    output channels are cut into chunks. Under PARALLEL_MIN_MACS, or on one thread, the tasks run in order on the
    caller."""
    parallel = threads > 1 and macs >= PARALLEL_MIN_MACS
    chunks = 1 if not parallel or base >= per_thread * threads else min(panels, -(-per_thread * threads // base))
    return chunks, parallel


# Floats at the start of a packed convolution's workspace for the micro-kernel's edge tile (12 x 32, bornrt_gemm.h).
TILE_FLOATS = 384


def pack_a6(a: np.ndarray) -> np.ndarray:
    """A (M x K) float32 as bornrt_gemm.h's packed weights: 6-row panels, k-major inside a panel,
    ``out[(i * K + k) * 6 + r] = a[6 i + r, k]``, rows past M zero; flat, ceil(M / 6) * 6 * K floats."""
    m, k = a.shape
    mp = -(-m // 6) * 6
    padded = np.zeros((mp, k), np.float32)
    padded[:m] = a
    return np.ascontiguousarray(padded.reshape(mp // 6, 6, k).transpose(0, 2, 1)).ravel()


def clamp_of(program: list) -> tuple[float, float] | None:
    """(lo, hi) when an epilogue program is one Relu or Clip with constant bounds on the product (what the GEMM
    micro-kernel applies in its store); None otherwise."""
    if len(program) != 1 or program[0]["args"][:1] != [["in", 0]]:
        return None
    step = program[0]
    if step["op"] == "Relu" and len(step["args"]) == 1:
        return 0.0, float("inf")
    if step["op"] == "Clip" and all(kind == "c" for kind, _ in step["args"][1:]):
        bounds = [v for _, v in step["args"][1:]] + [None, None]
        lo, hi = bounds[0], bounds[1]
        return (float("-inf") if lo is None else float(lo)), (float("inf") if hi is None else float(hi))
    return None


def _packed_conv(ctx: CCtx, geo: dict, threads: int, clamp) -> Lowered | None:
    """Conv as GEMM on weights packed at compile time (templates/c/conv_packed.c.j2) for a float Conv with a
    constant weight that is not depthwise. Three ways to present the input as B (K x columns): ``direct``, a
    1x1 stride-1 convolution reads its input rows in place; ``padded``, any other stride-1 convolution reads a
    padded copy of a block of input rows, tap k at a fixed offset (its output columns include the padding
    columns, dropped at the store); ``phased``, a strided one, the same over polyphase planes of the block
    (:func:`_phased`); ``im2col`` (strided and dilated) builds 16-column panels. Tasks: (image, group, block of
    output columns or rows, chunk of 6-row weight panels); the chunks split one block's output channels over
    workers when blocks alone would leave workers idle."""
    mg, cg, kh, kw = geo["MG"], geo["CG"], geo["KH"], geo["KW"]
    wt = ctx.consts[1]
    if ctx.oct() != "float" or wt is None or (cg == 1 and mg == 1) or not (kh * kw > 1 or (cg >= 4 and mg >= 6)):
        return None
    k, p, oh, ow = cg * kh * kw, geo["OH"] * geo["OW"], geo["OH"], geo["OW"]
    wp = geo["W"] + geo["PL"] + geo["PR"]
    if kh * kw == 1 and geo["SH"] == geo["SW"] == 1 and geo["PT"] == geo["PL"] == 0 and oh == geo["H"] and ow == geo["W"]:
        mode, cols = "direct", block_columns(k, p)
        blocks, rows, extra = -(-p // cols), 0, {}
        ws = TILE_FLOATS + k * cols
    elif geo["SH"] == geo["SW"] == 1:
        mode, halo = "padded", (kh - 1) * geo["DH"]
        rows = max(1, min(oh, B_BLOCK_BYTES // (4 * cg * wp) - halo))
        rp = rows + halo
        cols, blocks = rows * wp, -(-oh // rows)
        offs = [(c * rp + i * geo["DH"]) * wp + j * geo["DW"] for c in range(cg) for i in range(kh) for j in range(kw)]
        dst = [(q // wp) * ow + q % wp if q % wp < ow else -1 for q in range(-(-cols // 16) * 16)]
        extra = {"offs": offs, "dst": dst, "RP": rp, "WP": wp, "SLACK": kw * geo["DW"] + 16}
        ws = cg * rp * wp + kw * geo["DW"] + 16 + TILE_FLOATS
    elif geo["DH"] == geo["DW"] == 1 and geo["SH"] <= 4 and geo["SW"] <= 4:
        mode, rows, cols, blocks, extra, ws = _phased(geo, cg, ow)
    else:
        mode, cols, rows = "im2col", block_columns(k, p), 0
        blocks, extra = -(-p // cols), {}
        ws = k * cols + TILE_FLOATS
    panels = -(-mg // 6)
    base = geo["N"] * geo["G"] * blocks
    chunks, parallel = split(base, panels, threads, geo["N"] * geo["M"] * k * p)
    tasks = base * chunks
    w2 = np.asarray(wt, np.float32).reshape(geo["G"], mg, k)
    packed = {1: np.concatenate([pack_a6(w2[g]) for g in range(geo["G"])])}
    if ctx.has(2):
        b = np.zeros((geo["G"], panels * 6), np.float32)
        b[:, :mg] = np.asarray(ctx.const(2, "bias"), np.float32).reshape(geo["G"], mg)
        packed[2] = b.ravel()
    params = {**geo, **extra, "K": k, "P": p, "mode": mode, "TILE": TILE_FLOATS, "epi": None, "COLS": cols, "ROWS": rows, "NB": blocks, "MPAN": panels,
              "MCH": chunks, "serial_tasks": 0 if parallel else tasks, "has_bias": ctx.has(2),
              "clamp": [literal(v, "float32") for v in clamp] if clamp else None}
    par = tasks if parallel else 0
    return Lowered([Stage("conv_packed", params, par)], [k for k in range(3) if ctx.has(k)], workspace=ws * 4,
                   tasks=par, packed=packed)


def _phased(geo: dict, cg: int, ow: int) -> tuple:
    """The ``phased`` mode of a strided convolution: a block of input rows copied into SH x SW polyphase planes,
    plane (rho, phi) holding input rows rho, rho + SH, ... and columns phi, phi + SW, ... (zero where they fall in
    the padding), so that tap (kh, kw) of output column (oh, ow) reads plane (kh % SH, kw % SW) at row
    oh + kh // SH, column ow + kw // SW: a fixed offset plus the output column's index, as in ``padded``.
    (mode, rows, columns, blocks, template parameters, workspace floats)."""
    sh, sw, kh, kw = geo["SH"], geo["SW"], geo["KH"], geo["KW"]
    wph, halo = ow + (kw - 1) // sw, (kh - 1) // sh
    rows = max(1, min(geo["OH"], B_BLOCK_BYTES // (4 * cg * sh * sw * wph) - halo))
    rph = rows + halo
    cols = rows * wph
    offs = [(((c * sh + i % sh) * sw + j % sw) * rph + i // sh) * wph + j // sw
            for c in range(cg) for i in range(kh) for j in range(kw)]
    dst = [(q // wph) * ow + q % wph if q % wph < ow else -1 for q in range(-(-cols // 16) * 16)]
    slack = (kw - 1) // sw + 16
    wrow = max(geo["PL"] + geo["W"], wph * sw)
    extra = {"offs": offs, "dst": dst, "RPH": rph, "WPH": wph, "SLACK": slack, "WROW": wrow}
    return "phased", rows, cols, -(-geo["OH"] // rows), extra, TILE_FLOATS + cg * sh * sw * rph * wph + slack + wrow


def _conv_lowered(ctx: CCtx, threads: int, clamp=None) -> Lowered:
    from . import lower_winograd     # it builds on this module's packing helpers
    geo = conv_window(ctx)
    if lower_winograd.applies(ctx, geo):
        return lower_winograd.winograd_conv(ctx, geo, threads, clamp)
    packed = _packed_conv(ctx, geo, threads, clamp)
    if packed is not None:
        return packed
    ops = {"T": ctx.oct(), "X": "X0", "Wt": "X1", "B": "X2", "has_bias": ctx.has(2), "Y": "Y0"}
    mg = geo["MG"]
    ocb = 4 if mg % 4 == 0 else (2 if mg % 2 == 0 else 1)
    tasks = geo["N"] * geo["G"] * (mg // ocb)                    # one per (image, group, channel block)
    macs = geo["N"] * geo["M"] * geo["CG"] * geo["KH"] * geo["KW"] * geo["OH"] * geo["OW"]
    tasks = tasks if threads > 1 and tasks > 1 and macs >= PARALLEL_MIN_MACS else 0
    return Lowered([Stage("conv2d", {**geo, **ops, "OCB": ocb, "tasks": tasks}, tasks)], [k for k in range(3) if ctx.has(k)],
                   tasks=tasks)


@lowering("c", "Conv")
def _conv(ctx: CCtx) -> Lowered:
    return _conv_lowered(ctx, ctx.threads)


@lowering("c", "FusedConv", domain="bornc")
def _fused_conv(ctx: CCtx) -> Lowered:
    clamp = clamp_of(ctx.attrs.get("epilogue") or [])
    return _with_epilogue(ctx, _conv_lowered(ctx, ctx.threads, clamp), 3, clamp)


@lowering("c", "ConvTranspose")
def _convtranspose(ctx: CCtx) -> Lowered:
    xs, ws = ctx.shape(0), ctx.shape(1)
    if len(xs) not in (3, 4):
        raise ctx.unsupported(f"{len(xs) - 2}-D transposed convolution in C")
    geo = geometry.convtranspose_window(ctx.attrs, xs, ws, ctx.oshape())
    ops = {"X": "X0", "Wt": "X1", "B": "X2", "has_bias": ctx.has(2), "Y": "Y0"}
    args = [k for k in range(3) if ctx.has(k)]
    if ctx.oct() == "float" and geo["CG"] >= 4 and geo["MG"] * geo["KH"] * geo["KW"] >= 6:
        q = geo["MG"] * geo["KH"] * geo["KW"]
        rows = max(1, min(geo["H"], (256 * 1024) // max(q * geo["W"], 1)))
        return Lowered([Stage("convtranspose_gemm", {**geo, **ops, "Q": q, "R": rows})], args,
                       workspace=(q * rows * geo["W"] + geo["CG"] * 16) * 4)
    return Lowered([Stage("convtranspose2d", {**geo, **ops, "T": ctx.oct()})], args)


def gemm_stage(ctx: CCtx, trans_a: bool, trans_b: bool, alpha: float, beta: float, c_input: int | None,
               batch_a=None, batch_b=None) -> Stage:
    a, b = ctx.shape(0), ctx.shape(1)
    a = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    m, k = (a[-1], a[-2]) if trans_a else (a[-2], a[-1])
    n = b[-2] if trans_b else b[-1]
    a_index = "(size_t)k * %d + m" % m if trans_a else "(size_t)m * %d + k" % k
    params = {"M": m, "N": n, "K": k, "T": ctx.oct(), "A": "X0", "Bm": "X1", "Y": "Y0", "transB": trans_b,
              "alpha": literal(alpha, ctx.outs[0].dtype), "beta": literal(beta, ctx.outs[0].dtype), "a_index": a_index,
              "has_c": c_input is not None, "Cm": f"X{c_input}" if c_input is not None else "", "c_index": "0",
              "batch": 1, "aoff": [0], "boff": [0]}
    if c_input is not None:
        cs = broadcast_strides(ctx.shape(c_input), (m, n))
        params["c_index"] = f"(size_t)m * {cs[0]} + (size_t)n * {cs[1]}"
    if batch_a is not None:
        params.update(batch=len(batch_a), aoff=batch_a, boff=batch_b)
    return Stage("gemm", params)


def _packed_xw(ctx: CCtx, wt: np.ndarray, bias: np.ndarray | None, m: int, clamp) -> Lowered:
    """Y (m x N) = X (m x K) @ W (K x N) + bias[N] for a constant W, as the GEMM micro-kernel computes it: W^T
    packed at compile time into 6-row panels (output features), 16 rows of X transposed into one panel per step,
    the 6 x 16 tile stored transposed (templates/c/gemm_packed.c.j2). Tasks: blocks of 64 rows of X x chunks of
    weight panels."""
    k, n = wt.shape
    panels = -(-n // 6)
    cols = 64
    blocks = -(-m // cols)
    chunks, parallel = split(blocks, panels, ctx.threads, m * n * k)
    packed = {1: pack_a6(np.ascontiguousarray(np.asarray(wt, np.float32).T))}
    if bias is not None:
        b = np.zeros(panels * 6, np.float32)
        b[:n] = bias
        packed[2] = b
    tasks = blocks * chunks
    params = {"M": m, "N": n, "K": k, "COLS": cols, "NB": blocks, "MPAN": panels, "MCH": chunks,
              "has_bias": bias is not None, "serial_tasks": 0 if parallel else tasks,
              "clamp": [literal(v, "float32") for v in clamp] if clamp else None}
    par = tasks if parallel else 0
    return Lowered([Stage("gemm_packed", params, par)], [0, 1, 2] if bias is not None else [0, 1],
                   workspace=(16 * k + 96) * 4, tasks=par, packed=packed)


def _packed_gemm(ctx: CCtx, clamp=None) -> Lowered | None:
    """Gemm with a constant B, no transA and a bias that is per output feature (or none), on the packed path:
    alpha folded into the packed weights, beta into the bias. None when it does not apply."""
    a = ctx.attrs
    wt = ctx.consts[1]
    if ctx.oct() != "float" or a["transA"] or wt is None:
        return None
    wt = np.asarray(wt, np.float32)
    wt = (wt.T if a["transB"] else wt) * np.float32(a["alpha"])
    m, n = ctx.shape(0)[0], wt.shape[1]
    bias = None
    if ctx.has(2):
        c = ctx.consts[2]
        if c is None or int(np.prod(np.shape(c))) not in (1, n) or (np.ndim(c) == 2 and np.shape(c)[0] != 1):
            return None
        bias = np.broadcast_to(np.asarray(c, np.float32).reshape(-1), (n,)) * np.float32(a["beta"])
    if m * n * wt.shape[0] < 4096:
        return None
    return _packed_xw(ctx, wt, bias, m, clamp) if m >= 16 else _small_m(ctx, wt, bias, m)


def _small_m(ctx: CCtx, wt: np.ndarray, bias: np.ndarray | None, m: int) -> Lowered:
    """Y (m x N) = X (m x K) @ W (K x N) + bias for a constant W and fewer than 16 rows (a classifier head, one
    decoder step): W stored K x N (transposed at compile time, alpha folded in), so gemm.c.j2's inner loop runs
    over contiguous W and Y rows and vectorizes; each Y element still adds its K products in order."""
    k, n = wt.shape
    st = Stage("gemm", {"M": m, "N": n, "K": k, "T": "float", "A": "X0", "Bm": "X1", "Y": "Y0", "transB": False,
                        "alpha": literal(1.0, "float32"), "beta": literal(1.0, "float32"),
                        "a_index": "(size_t)m * %d + k" % k, "has_c": bias is not None, "Cm": "X2", "c_index": "n",
                        "batch": 1, "aoff": [0], "boff": [0]})
    packed = {1: np.ascontiguousarray(wt, np.float32).ravel()}
    if bias is not None:
        packed[2] = np.ascontiguousarray(bias, np.float32)
    return Lowered([st], [0, 1, 2] if bias is not None else [0, 1], packed=packed)


def _plain_gemm(ctx: CCtx) -> Lowered:
    a = ctx.attrs
    st = gemm_stage(ctx, bool(a["transA"]), bool(a["transB"]), a["alpha"], a["beta"], 2 if ctx.has(2) else None)
    return Lowered([st], [k for k in range(3) if ctx.has(k)])


@lowering("c", "Gemm")
def _gemm(ctx: CCtx) -> Lowered:
    return _packed_gemm(ctx) or _plain_gemm(ctx)


def _task_epilogue(ctx: CCtx, first_extra: int) -> dict | None:
    """A Fused* convolution's epilogue as statements for each task's own outputs (templates/c/task_epilogue.c.j2):
    when the output is float and every extra operand has the output's shape (read at the same offset). None
    otherwise (a broadcast operand: the epilogue runs as its own pass)."""
    prog = ctx.attrs.get("epilogue") or []
    extras = range(first_extra, len(ctx.node.inputs))
    if not prog or ctx.oct() != "float" or any(ctx.shape(k) != ctx.oshape() or ctx.ct(k) != "float" for k in extras):
        return None
    stmts, result = render_program(prog, [f"a{j}" for j in range(1 + len(extras))], "float", ctx)
    return {"stmts": stmts, "result": result, "extras": [f"X{k}" for k in extras]}


def _with_epilogue(ctx: CCtx, low: Lowered, first_extra: int, clamp) -> Lowered:
    """A Fused* node's core kernel followed by its epilogue: nothing more where the packed micro-kernel applied it
    (clamp), inside each task of a packed or Winograd convolution where it can (:func:`_task_epilogue`), else as
    its own parallel pass."""
    core = low.stages[0].template
    args = [k for k in range(len(ctx.node.inputs)) if ctx.has(k)]
    if clamp is not None and core in ("conv_packed", "conv_winograd", "gemm_packed"):
        return Lowered(low.stages, low.args, workspace=low.workspace, tasks=low.tasks, packed=low.packed)
    epi = _task_epilogue(ctx, first_extra) if core in ("conv_packed", "conv_winograd") else None
    if epi is not None:
        low.stages[0].params["epi"] = epi
        return Lowered(low.stages, args, workspace=low.workspace, tasks=low.tasks, packed=low.packed)
    return Lowered(low.stages + _epilogue(ctx, first_extra), args, workspace=low.workspace, tasks=low.tasks,
                   packed=low.packed)


@lowering("c", "FusedGemm", domain="bornc")
def _fused_gemm(ctx: CCtx) -> Lowered:
    clamp = clamp_of(ctx.attrs.get("epilogue") or [])
    return _with_epilogue(ctx, _packed_gemm(ctx, clamp) or _plain_gemm(ctx), 3, clamp)


def _matmul_stage(ctx: CCtx) -> Stage:
    """Batched MatMul as one gemm per batch entry; a 1-D A is a (1, K) row and a 1-D B a (K, 1) column (the
    output's bytes are the same once the spec drops those axes)."""
    a, b = ctx.shape(0), ctx.shape(1)
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    nb = int(np.prod(batch, dtype=np.int64)) if batch else 1
    sa = broadcast_strides(a2[:-2], batch) if batch else []
    sb = broadcast_strides(b2[:-2], batch) if batch else []
    msz, ksz, nsz = a2[-2], a2[-1], b2[-1]
    aoff, boff = [], []
    for idx in np.ndindex(*batch) if batch else [()]:
        aoff.append(int(sum(i * s for i, s in zip(idx, sa))) * msz * ksz)
        boff.append(int(sum(i * s for i, s in zip(idx, sb))) * ksz * nsz)
    st = gemm_stage(ctx, False, False, 1.0, 0.0, None, aoff if nb > 1 else None, boff if nb > 1 else None)
    st.params.update(M=msz, N=nsz, K=ksz, a_index="(size_t)m * %d + k" % ksz)
    return st


def _packed_matmul(ctx: CCtx, clamp=None) -> Lowered | None:
    """MatMul with a constant 2-D B on the packed path: A's leading dims fold into its rows (B is shared)."""
    wt, a = ctx.consts[1], ctx.shape(0)
    if ctx.oct() != "float" or wt is None or np.ndim(wt) != 2 or len(a) < 2:
        return None
    m = int(np.prod(a[:-1], dtype=np.int64))
    if m < 16 or m * wt.shape[0] * wt.shape[1] < 4096:
        return None
    return _packed_xw(ctx, np.asarray(wt, np.float32), None, m, clamp)


@lowering("c", "MatMul")
def _matmul(ctx: CCtx) -> Lowered:
    return _packed_matmul(ctx) or Lowered([_matmul_stage(ctx)], [0, 1])


@lowering("c", "FusedMatMul", domain="bornc")
def _fused_matmul(ctx: CCtx) -> Lowered:
    clamp = clamp_of(ctx.attrs.get("epilogue") or [])
    return _with_epilogue(ctx, _packed_matmul(ctx, clamp) or Lowered([_matmul_stage(ctx)]), 2, clamp)


@lowering("c", "BatchNormalization")
def _batchnorm(ctx: CCtx) -> Lowered:
    if ctx.attrs.get("training_mode"):
        raise ctx.unsupported("training mode")
    xs = ctx.shape(0)
    inner = int(np.prod(xs[2:], dtype=np.int64)) if len(xs) > 2 else 1
    return Lowered([Stage("batchnorm", {"N": xs[0], "C": xs[1], "S": inner, "T": ctx.oct(),
                                        "eps": literal(ctx.attrs["epsilon"], ctx.outs[0].dtype)})], [0, 1, 2, 3, 4])


def _pool(ctx: CCtx, kind: str) -> Lowered:
    """MaxPool (with its indices output), AveragePool and LpPool over any number of spatial axes, geometry from
    the reference's ``pool_geometry``."""
    xs = ctx.shape(0)
    if len(xs) < 3:
        raise ctx.unsupported("pooling of a tensor without spatial axes")
    kernel, strides, dil, pads, _, _ = rt.pool_geometry(ctx.attrs, xs)
    spatial, out = list(xs[2:]), list(ctx.oshape()[2:])
    nd = len(spatial)
    has_idx = kind == "max" and len(ctx.node.outputs) > 1 and bool(ctx.node.outputs[1])
    istr, ostr = contiguous_strides(spatial), contiguous_strides(out)
    col = contiguous_strides(spatial[::-1])[::-1]            # storage_order 1: the first spatial axis fastest
    t = ctx.oct()
    lowest = "-HUGE_VALF" if t == "float" else "-HUGE_VAL" if t == "double" else \
        "0" if t.startswith("u") else f"{t[:-2].upper()}_MIN"
    if kind == "max" and nd == 2 and not has_idx and list(dil) == [1, 1] and t == "float":
        return Lowered([Stage("maxpool2d_sep", {"NC": xs[0] * xs[1], "I": spatial, "O": out, "K": list(kernel),
                                                "S": list(strides), "P": [p[0] for p in pads]})], [0],
                       workspace=spatial[1] * 4)      # the row buffer, in the arena
    return Lowered([Stage("pool", {
        "kind": kind, "nd": nd, "NC": xs[0] * xs[1], "isz": int(np.prod(spatial, dtype=np.int64)),
        "osz": int(np.prod(out, dtype=np.int64)), "I": spatial, "O": out, "K": list(kernel), "S": list(strides),
        "D": list(dil), "P": [p[0] for p in pads], "PE": [p[1] for p in pads], "istr": istr, "ostr": ostr,
        "idxstr": col if ctx.attrs.get("storage_order", 0) else istr, "order": list(range(nd)), "has_idx": has_idx,
        "count_pad": int(ctx.attrs.get("count_include_pad", 0)), "T": t, "lowest": lowest,
        "p": ctx.attrs.get("p", 2)})], [0])


lowering("c", "MaxPool")(lambda ctx: _pool(ctx, "max"))
lowering("c", "AveragePool")(lambda ctx: _pool(ctx, "avg"))
lowering("c", "LpPool")(lambda ctx: _pool(ctx, "lp"))


def _global(ctx: CCtx, kind: str) -> Lowered:
    xs = ctx.shape(0)
    inner = int(np.prod(xs[2:], dtype=np.int64))
    return Lowered([Stage("global_pool", {"kind": kind, "NC": xs[0] * xs[1], "S": inner, "T": ctx.oct(), "acc": ctx.acc(ctx.oct())})], [0])


lowering("c", "GlobalAveragePool")(lambda ctx: _global(ctx, "avg"))
lowering("c", "GlobalMaxPool")(lambda ctx: _global(ctx, "max"))


@lowering("c", "LRN")
def _lrn(ctx: CCtx) -> Lowered:
    xs = ctx.shape(0)
    size = ctx.attrs["size"]
    a = ctx.attrs
    return Lowered([Stage("lrn", {"N": xs[0], "C": xs[1], "S": int(np.prod(xs[2:], dtype=np.int64)), "lo": (size - 1) // 2,
                                  "hi": -(-(size - 1) // 2), "T": ctx.oct(),
                                  "scale": literal(a["alpha"] / size, "float32"), "bias": literal(a["bias"], "float32"),
                                  "beta": literal(a["beta"], "float32")})], [0])


def _softmax(ctx: CCtx, log: bool) -> Lowered:
    """Softmax along one axis (opset >= 13) or over the 2-D coercion at ``axis`` (opset < 13, default axis 1)."""
    xs = ctx.shape(0)
    ax = ctx.attrs["axis"]
    ax = (ax if ax is not None else (-1 if ctx.opset >= 13 else 1)) % len(xs)
    outer = int(np.prod(xs[:ax], dtype=np.int64))
    if ctx.opset >= 13:
        dim, inner = xs[ax], int(np.prod(xs[ax + 1:], dtype=np.int64))
    else:
        dim, inner = int(np.prod(xs[ax:], dtype=np.int64)), 1
    return Lowered([Stage("softmax", {"outer": outer, "D": dim, "inner": inner, "T": ctx.oct(), "log": log, "acc": ctx.acc(ctx.oct())})], [0])


lowering("c", "Softmax")(lambda ctx: _softmax(ctx, False))
lowering("c", "LogSoftmax")(lambda ctx: _softmax(ctx, True))


#: ONNX recurrent activations (LSTM/GRU/RNN spec, "activations") as C expressions of ``v`` with alpha ``a`` and
#: beta ``b`` (the same table as the reference's, runtime/python/bornrt.py ``_ACT``).
_RNN_ACT = {
    "Sigmoid": "1 / (1 + EXP(-v))", "Tanh": "TANH(v)", "Relu": "(v > 0 ? v : 0)", "Affine": "(a * v + b)",
    "LeakyRelu": "(v >= 0 ? v : a * v)", "ThresholdedRelu": "(v > a ? v : 0)", "ScaledTanh": "(a * TANH(b * v))",
    "HardSigmoid": "(a * v + b < 0 ? 0 : a * v + b > 1 ? 1 : a * v + b)", "Elu": "(v >= 0 ? v : a * (EXP(v) - 1))",
    "Softsign": "(v / (1 + FABS(v)))", "Softplus": "LOG1P(EXP(v))",
}
_RNN_DEFAULT = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}


def _rnn_acts(ctx: CCtx, dirs: int, dtype: str) -> list[list[str]]:
    """Per direction, the C expression of each activation of the layer (alpha and beta baked in as literals)."""
    import re
    per = _RNN_DEFAULT[ctx.node.op]
    names = ctx.attrs["activations"] or per * dirs
    if len(names) != len(per) * dirs or any(n not in _RNN_ACT for n in names):
        raise ctx.unsupported(f"activations {names} (C knows {sorted(_RNN_ACT)}, {len(per)} per direction)")
    ctype_ = "double" if dtype == "float64" else "float"
    out = []
    for n, (a, b) in zip(names, rt.rnn_alpha_beta(names, ctx.attrs["activation_alpha"], ctx.attrs["activation_beta"])):
        e = re.sub(r"\b(EXP|TANH|FABS|LOG1P)\b", lambda m: c_math(ctype_, m.group(1).lower()), _RNN_ACT[n])
        out.append(re.sub(r"\b[ab]\b", lambda m: literal(float(a if m.group(0) == "a" else b), dtype), e))
    return [out[d * len(per):(d + 1) * len(per)] for d in range(dirs)]


def _recurrent(ctx: CCtx) -> Lowered:
    """LSTM, GRU and RNN (every direction, layout, activation, clip, sequence_lens, peepholes, input_forget and
    linear_before_reset the spec allows) as one kernel, templates/c/recurrent.c.j2. Workspace: the state
    (h, and c for LSTM, [B, H]) and three gate vectors of G*H, in elements of the input's type."""
    a, op = ctx.attrs, ctx.node.op
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    xs, ws = ctx.shape(0), ctx.shape(1)
    seq, batch = (xs[1], xs[0]) if a["layout"] else (xs[0], xs[1])
    w8 = a.get("_w_scale") is not None
    dirs = ws[0]
    hidden = ctx.shape(2)[1] if w8 else ws[1] // gates       # int8 R k-major: [D, H, 4H]
    t = ctx.ct(0)
    if t not in ("float", "double"):
        raise ctx.unsupported(f"{op} on {ctx.ins[0].dtype}")
    outs = [bool(o) for o in ctx.node.outputs] + [False] * (3 - len(ctx.node.outputs))
    lbr = op == "GRU" and bool(a.get("linear_before_reset"))
    gh = gates * hidden
    clip = a["clip"]
    params = {"op": op, "S": seq, "B": batch, "I": xs[2], "H": hidden, "D": dirs, "G": gates, "T": t,
              "GR": gh if op != "GRU" or lbr else 2 * hidden, "lbr": lbr, "layout": bool(a["layout"]),
              "input_forget": op == "LSTM" and bool(a.get("input_forget")), "acts": _rnn_acts(ctx, dirs, ctx.ins[0].dtype),
              "clip": literal(float(clip), ctx.ins[0].dtype) if clip is not None else None,
              "reverse": [a["direction"] == "reverse" or (a["direction"] == "bidirectional" and d == 1) for d in range(dirs)],
              "w8": w8, "w_scale": [literal(float(v), "float32") for v in a.get("_w_scale") or []],
              "r_scale": [literal(float(v), "float32") for v in a.get("_r_scale") or []],
              "has_b": ctx.has(3), "has_lens": ctx.has(4), "has_h0": ctx.has(5), "has_c0": ctx.has(6),
              "has_p": ctx.has(7), "has_y": outs[0], "has_yh": outs[1], "has_yc": outs[2]}
    elems = batch * hidden * (2 if op == "LSTM" else 1) + 2 * gh + hidden
    size = 8 if t == "double" else 4
    return Lowered([Stage("recurrent", params)], [k for k in range(8) if ctx.has(k)], workspace=elems * size)


for _op in ("LSTM", "GRU", "RNN"):
    lowering("c", _op)(_recurrent)


@lowering("c", "GridSample")
def _gridsample(ctx: CCtx) -> Lowered:
    """GridSample (opset 16-22: linear/bilinear, nearest, cubic/bicubic; zeros, border, reflection) over any
    number of spatial axes, templates/c/gridsample.c.j2."""
    xs, out = ctx.shape(0), ctx.oshape()
    if ctx.oct() not in ("float", "double") or ctx.ct(1) != ctx.oct():
        raise ctx.unsupported(f"GridSample on {ctx.ins[0].dtype} with a {ctx.ins[1].dtype} grid")
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(ctx.attrs["mode"], ctx.attrs["mode"])
    if mode not in ("linear", "nearest", "cubic") or ctx.attrs["padding_mode"] not in ("zeros", "border", "reflection"):
        raise ctx.unsupported(f"mode {ctx.attrs['mode']!r} with padding {ctx.attrs['padding_mode']!r}")
    spatial, osp = list(xs[2:]), list(out[2:])
    return Lowered([Stage("gridsample", {
        "N": xs[0], "C": xs[1], "nd": len(spatial), "I": spatial, "O": osp, "istr": contiguous_strides(spatial),
        "ostr": contiguous_strides(osp), "isz": int(np.prod(spatial, dtype=np.int64)),
        "osz": int(np.prod(osp, dtype=np.int64)), "mode": mode, "taps": {"linear": 2, "nearest": 1, "cubic": 4}[mode],
        "padding": ctx.attrs["padding_mode"], "align": int(ctx.attrs["align_corners"]), "T": ctx.oct()})], [0, 1])


@lowering("c", "RoiAlign")
def _roialign(ctx: CCtx) -> Lowered:
    """RoiAlign (opsets 10-22, avg and max, both coordinate modes) with run-time boxes and batch indices,
    templates/c/roialign.c.j2."""
    xs, rs = ctx.shape(0), ctx.shape(1)
    if ctx.oct() not in ("float", "double") or ctx.ct(1) != ctx.oct():
        raise ctx.unsupported(f"RoiAlign on {ctx.ins[0].dtype} with {ctx.ins[1].dtype} boxes")
    a = ctx.attrs
    half = a["coordinate_transformation_mode"] == "half_pixel"
    return Lowered([Stage("roialign", {
        "N": xs[0], "C": xs[1], "H": xs[2], "W": xs[3], "R": rs[0], "OH": int(a["output_height"]),
        "OW": int(a["output_width"]), "ratio": max(int(a["sampling_ratio"]), 0), "mode": a["mode"], "half": half,
        "scale": literal(float(a["spatial_scale"]), "float64"), "off": "0.5" if half else "0.0", "T": ctx.oct()})], [0, 1, 2])


def _twiddles(n: int) -> dict:
    m = np.arange(n, dtype=np.float64) * (2 * np.pi / n)
    return {"cos": [literal(v, "float64") for v in np.cos(m)], "sin": [literal(v, "float64") for v in np.sin(m)]}


@lowering("c", "DFT")
def _dft(ctx: CCtx) -> Lowered:
    """DFT (opsets 17-20: dft_length, axis attribute or input, inverse, onesided) as a direct sum over
    compile-time twiddle tables, templates/c/dft.c.j2 (O(N^2) per signal)."""
    xs = ctx.shape(0)
    if ctx.oct() not in ("float", "double"):
        raise ctx.unsupported(f"DFT on {ctx.ins[0].dtype}")
    ax = int(np.asarray(ctx.const(2, "axis")).ravel()[0]) if ctx.has(2) else (ctx.attrs["axis"] if ctx.opset < 20 else -2)
    ax %= len(xs)
    length = xs[ax]
    herm = bool(ctx.attrs["inverse"] and ctx.attrs["onesided"])      # irfft: onesided spectrum in, real out
    n = int(np.asarray(ctx.const(1, "dft_length")).ravel()[0]) if ctx.has(1) else (2 * (length - 1) if herm else length)
    if n < 1 or ax == len(xs) - 1:
        raise ctx.unsupported(f"dft_length {n} on axis {ax}")
    return Lowered([Stage("dft", {
        "outer": int(np.prod(xs[:ax], dtype=np.int64)), "inner": int(np.prod(xs[ax + 1:-1], dtype=np.int64)),
        "L": length, "N": n, "T_LEN": n if herm else min(length, n),
        "K": n if herm else n // 2 + 1 if ctx.attrs["onesided"] else n, "herm": herm,
        "cin": xs[-1], "inverse": bool(ctx.attrs["inverse"]), "frames": 1, "step": 0, "has_window": False,
        "T": ctx.oct(), **_twiddles(n)})], [0])


@lowering("c", "STFT")
def _stft(ctx: CCtx) -> Lowered:
    """STFT (opset 17): frames of frame_length every frame_step samples, times the window, each a DFT."""
    xs = ctx.shape(0)
    if ctx.oct() not in ("float", "double"):
        raise ctx.unsupported(f"STFT on {ctx.ins[0].dtype}")
    step = int(np.asarray(ctx.const(1, "frame_step")).ravel()[0])
    n = int(np.asarray(ctx.const(3, "frame_length")).ravel()[0]) if ctx.has(3) else ctx.shape(2)[0]
    frames = ctx.oshape()[1]
    return Lowered([Stage("dft", {
        "outer": xs[0], "inner": 1, "L": xs[1], "N": n, "T_LEN": n, "K": ctx.oshape()[2], "cin": xs[-1],
        "inverse": False, "frames": frames, "step": step, "has_window": ctx.has(2), "herm": False, "T": ctx.oct(),
        **_twiddles(n)})], [0, 2] if ctx.has(2) else [0])
