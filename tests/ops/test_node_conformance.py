"""The reference interpreter against the ONNX backend node tests (onnx.backend.test.case.node).

One run over all cases (about 1,900 with onnx 1.23, each counted), then: the pass rate goal of the core issue,
and every case of every op that the real models use must pass.
"""
import pytest

from bornc.conformance import run_conformance
from ..conformance_guard import assert_no_regressions

pytestmark = pytest.mark.slow

#: Ops used by the real models in ../shared/models and the onnx light models: every case of these must pass.
REAL_MODEL_OPS = {
    "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "ConstantOfShape", "Conv", "ConvTranspose",
    "Div", "Dropout", "Equal", "Exp", "Expand", "Flatten", "Gather", "Gemm", "GlobalAveragePool", "GlobalMaxPool",
    "HardSigmoid", "Identity", "If", "LRN", "LSTM", "LeakyRelu", "Log", "MatMul", "Max", "MaxPool", "Min", "Mul",
    "Pad", "Pow", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "Relu", "Reshape", "Resize", "Shape",
    "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tanh", "Transpose", "Unsqueeze", "Where",
}


@pytest.fixture(scope="module")
def results():
    return run_conformance("reference")


def test_pass_rate_at_least_85_percent(results):
    assert results["total"] >= 1800
    assert results["passed"] + results["failed"] + results["unsupported"] == results["total"]
    rate = results["passed"] / results["total"]
    assert rate >= 0.85, f"{results['passed']}/{results['total']} = {rate:.1%}"


def test_no_case_regresses(results):
    assert_no_regressions(results)


@pytest.mark.parametrize("op", sorted(REAL_MODEL_OPS))
def test_every_case_of_real_model_ops_passes(results, op):
    cases = {n: v for n, v in results["cases"].items() if _op(results, n) == op}
    counts = results["per_op"].get(op)
    if counts is None:
        pytest.skip(f"the onnx node tests have no case for {op}")
    bad = {n: d for n, (s, d) in cases.items() if s != "passed"}
    assert counts["failed"] == 0 and counts["unsupported"] == 0, bad


def _op(results, name):
    return results["case_ops"].get(name)
