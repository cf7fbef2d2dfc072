"""The C backend on the ONNX node tests of the ops the real models use: every such case that the C backend
compiles must pass (compiled in batches, run in-process). The full run (`bornc conformance --executor c`)
writes docs/ops.md."""
import shutil

import pytest

from bornc.conformance import run_conformance

#: Node-test name prefixes of ops used by the real models (their every case the C backend supports must pass).
PATTERN = ("^test_(conv|convtranspose|relu|sigmoid|add|mul|sub|div|clip|hardsigmoid|hardswish|leakyrelu|maxpool|averagepool|"
           "globalaveragepool|globalmaxpool|gemm|matmul|softmax|transpose|concat|split|slice|pad|reshape|squeeze|unsqueeze|"
           "flatten|resize|reduce_mean|reduce_sum|reduce_max|reduce_min|lstm|batchnorm|lrn|cast|where|equal|exp|log|sqrt|"
           "pow|tanh|gather|expand|constantofshape|identity|sum|max|min)")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed (apt-get install gcc)")
def test_c_backend_passes_cases_it_compiles():
    res = run_conformance("c", pattern=PATTERN)
    assert res["total"] > 300
    failed = {n: d for n, (s, d) in res["cases"].items() if s == "failed"}
    known = {n for n in failed if "training_dropout" in n}   # random masks: numpy's generator is not in C
    assert set(failed) <= known, {n: failed[n] for n in set(failed) - known}
    assert res["passed"] >= 0.6 * res["total"], (res["passed"], res["total"])
