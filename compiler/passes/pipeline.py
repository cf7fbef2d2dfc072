"""Pass pipelines per ``--opt-level``. The lists below are the documentation of our order of operations.

0: nothing. 1: float16 models computed in float32 inside on targets without float16 arithmetic (``widen_float16``),
then clean-ups that keep every op (folding, dead code, CSE, no-ops). 2: pre-quantized layers (QDQ
pairs, QLinearConv, QLinearMatMul) onto bornc's integer layers first, then level 1, then folding
BatchNormalization and per-channel Mul/Add into Conv/Gemm, recognizing Softmax and LayerNormalization from
their decomposed forms, MatMul+Add -> Gemm, elementwise chains -> FusedElementwise, and epilogue fusion into
FusedConv/FusedGemm/FusedMatMul. The verifier runs after every pass when ``verify`` is set (always in tests).

With a target, every level ends with ``legalize`` (ops the target's backend cannot lower become ops it can, see
``passes/legalize.py``); level 2 also legalizes first, so the expanded ops are fused like any others. Passes that
create composites (LayerNormalization, Softmax, FusedConv...) take the target and create only what it lowers.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Callable

from ..errors import VerifyError
from ..ir.graph import Model
from ..ir.printer import format_model
from ..ir.verify import verify
from .eliminate_common_subexpressions import eliminate_common_subexpressions
from .eliminate_dead_code import eliminate_dead_code
from .fold_batchnorm import fold_batchnorm
from .fold_constants import fold_constants
from .fuse_elementwise import fuse_elementwise
from .fuse_epilogue import fuse_epilogue
from .fuse_matmul_add import fuse_matmul_add
from .legalize import legalize
from .lstm_int8_weights import lstm_int8_weights
from .materialize_constant_outputs import materialize_constant_outputs
from .recognize_layernorm import recognize_layernorm
from .recognize_softmax import recognize_softmax
from .remove_noops import remove_noops
from .widen_float16 import widen_float16
from ..quantize.qdq import fold_qdq

log = logging.getLogger(__name__)

Pass = Callable[[Model], Model]

#: Run last for a target, after legalize: rewrites into forms one backend reads (each a no-op for the others).
BACKEND_PASSES: list[Pass] = [lstm_int8_weights, materialize_constant_outputs]

CLEANUP: list[Pass] = [fold_constants, remove_noops, eliminate_common_subexpressions, eliminate_dead_code]

PIPELINES: dict[int, list[Pass]] = {
    0: [],
    1: [widen_float16] + CLEANUP,
    2: [fold_qdq, widen_float16, legalize] + CLEANUP + [fold_batchnorm, recognize_softmax, recognize_layernorm, fuse_matmul_add, fold_constants,
                  eliminate_dead_code, fuse_elementwise, fuse_epilogue, eliminate_dead_code],
}


@dataclass
class PassRecord:
    """Node and constant counts after one pass."""

    name: str
    nodes: int
    constants: int


def with_quantize(passes: list[Pass], quantize: Pass | None) -> list[Pass]:
    """``passes`` with the quantization pass inserted before elementwise fusion (so it sees plain
    Conv/Gemm/MatMul and Relu/Clip, with BatchNorm already folded), or at the end when there is none."""
    if quantize is None:
        return list(passes)
    k = passes.index(fuse_elementwise) if fuse_elementwise in passes else len(passes)
    return passes[:k] + [quantize] + passes[k:]


def passes_for(opt_level: int, quantize: Pass | None = None, target=None) -> list[Pass]:
    """The passes run at ``opt_level`` (``quantize`` inserted, see ``with_quantize``), ending with legalize and the
    backend passes when a target is given; without one, the early legalize of level 2 is left out too."""
    if opt_level not in PIPELINES:
        raise ValueError(f"opt level must be one of {sorted(PIPELINES)}")
    passes = with_quantize(PIPELINES[opt_level], quantize)
    if target is None:
        return [p for p in passes if p is not legalize]
    return (passes if passes and passes[-1] is legalize else passes + [legalize]) + BACKEND_PASSES


def _apply(p: Pass, model: Model, target) -> Model:
    if target is not None and "target" in inspect.signature(p).parameters:
        return p(model, target=target)
    return p(model)


def run_pipeline(model: Model, opt_level: int = 2, verify_each: bool = True,
                 quantize: Pass | None = None, target=None) -> tuple[Model, list[PassRecord]]:
    """Run the pipeline for ``opt_level`` (see :func:`passes_for`); ``target`` (a Target, or a backend name) makes
    it target-aware. Returns the final model and the counts before/after each pass.

    Raises VerifyError naming the pass (with the IR after it in the log at debug level) if a pass breaks an
    invariant, UnsupportedOpError (from legalize) listing every op the target cannot lower."""
    records = [PassRecord("input", len(model.graph.nodes), len(model.graph.constants))]
    for p in passes_for(opt_level, quantize, target):
        model = _apply(p, model, target)
        if verify_each:
            try:
                verify(model)
            except VerifyError as ex:
                pname = getattr(p, "__name__", type(p).__name__)
                log.debug("IR after %s:\n%s", pname, format_model(model))
                raise VerifyError(f"after pass {pname}: {ex}") from None
        records.append(PassRecord(getattr(p, "__name__", type(p).__name__), len(model.graph.nodes), len(model.graph.constants)))
    return model, records


def optimize(model: Model, opt_level: int = 2, verify_each: bool = True, quantize: Pass | None = None,
             target=None) -> Model:
    """The model after the pipeline for ``opt_level`` (and ``quantize``, when given), legalized for ``target``."""
    return run_pipeline(model, opt_level, verify_each, quantize, target)[0]
