"""The whole pipeline: every pass leaves a verified model (verify after each pass) and, on every real model and
on seeded random graphs, level 2 gives level 0's outputs within tolerance."""
import numpy as np
import pytest
from onnx import helper

import bornc
from bornc.golden import compare
from bornc.passes.pipeline import PIPELINES, run_pipeline

from ..model_corpus import corpus_ids, load_corpus_model
from .helpers import assert_same_outputs, make, rand

N = helper.make_node


@pytest.mark.parametrize("ident", corpus_ids())
def test_real_model_outputs_unchanged_at_opt_level_2(ident):
    model, feeds, tols = load_corpus_model(ident)
    optimized, records = run_pipeline(model, 2, verify_each=True)
    assert records[-1].nodes <= records[0].nodes
    ref, got = bornc.run(model, feeds), bornc.run(optimized, feeds)
    for name in model.graph.outputs:
        rtol, atol = tols.get(name, (1e-4, 1e-5))
        scale = max(1.0, float(np.abs(ref[name]).max()))
        ok, err, _ = compare(got[name], ref[name], rtol, atol * scale)
        assert ok, f"{ident}:{name}: max abs err {err:.3g}"


def _random_graph(seed: int):
    """A small CNN-like graph with a random mix of the patterns the passes rewrite."""
    rng = np.random.default_rng(seed)
    c = 4
    nodes, inits, cur = [], {}, "x"
    for k in range(int(rng.integers(3, 7))):
        kind = rng.choice(["conv_bn", "act", "scale", "residual", "noop", "chain", "transpose_pair"])
        out = f"v{k}"
        if kind == "conv_bn":
            inits.update({f"w{k}": rand(c, c, 3, 3, seed=seed * 10 + k) * 0.3, f"s{k}": np.abs(rand(c, seed=k)) + 0.5,
                          f"b{k}": rand(c, seed=k + 1), f"m{k}": rand(c, seed=k + 2), f"v{k}_var": np.abs(rand(c, seed=k + 3)) + 0.5})
            nodes += [N("Conv", [cur, f"w{k}"], [f"c{k}"], pads=[1, 1, 1, 1]),
                      N("BatchNormalization", [f"c{k}", f"s{k}", f"b{k}", f"m{k}", f"v{k}_var"], [out])]
        elif kind == "act":
            op = str(rng.choice(["Relu", "Sigmoid", "Tanh", "HardSwish", "LeakyRelu"]))
            nodes.append(N(op, [cur], [out]))
        elif kind == "scale":
            inits[f"k{k}"] = rand(1, c, 1, 1, seed=k + 7)
            nodes.append(N("Mul", [cur, f"k{k}"], [out]))
        elif kind == "residual":
            nodes.append(N("Add", [cur, "x"], [out]))
        elif kind == "noop":
            nodes.append(N("Identity", [cur], [out]))
        elif kind == "chain":
            inits[f"h{k}"] = np.float32(0.5)
            nodes += [N("Mul", [cur, f"h{k}"], [f"t{k}"]), N("Exp", [f"t{k}"], [f"u{k}"]), N("Neg", [f"u{k}"], [out])]
        else:
            nodes += [N("Transpose", [cur], [f"p{k}"], perm=[0, 2, 3, 1]), N("Transpose", [f"p{k}"], [out], perm=[0, 3, 1, 2])]
        cur = out
    nodes.append(N("Identity", [cur], ["y"]))
    return make(nodes, [("x", [1, c, 6, 6])], [("y", [1, c, 6, 6])], inits)


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("level", sorted(PIPELINES))
def test_random_graphs_keep_their_outputs(seed, level):
    model = _random_graph(seed)
    optimized, _ = run_pipeline(model, level, verify_each=True)
    assert_same_outputs(model, optimized, rtol=1e-4, atol=1e-4, seed=seed)


def test_opt_level_0_is_identity():
    model = _random_graph(3)
    optimized, records = run_pipeline(model, 0)
    assert optimized is model and len(records) == 1
