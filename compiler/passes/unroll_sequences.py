"""Sequences and optionals of static structure as plain tensors, for the static-shape backends (C, WebGPU).

A sequence whose length and element types are known at compile time (a model input given shapes with
``--input-shape NAME[k]=...``, SequenceConstruct, SplitToSequence of a static tensor, SequenceInsert/Erase at
constant positions...) is a list of tensor values; an optional is its element or nothing. This pass follows
those lists through the graph and rewrites the container ops (ONNX spec, "Sequence" and "Optional" operators,
opsets 11-24) into tensor ops:

- SequenceConstruct, SequenceEmpty, SequenceInsert, SequenceErase, Identity, Optional, OptionalGetElement: the
  list itself (no node);
- SequenceAt: an Identity of the element; SequenceLength and OptionalHasElement: constants;
- SplitToSequence: Split (and Squeeze for ``keepdims=0``); ConcatFromSequence: Concat (Unsqueeze first for
  ``new_axis=1``);
- SequenceMap: the body inlined once per element, values renamed;
- Loop with a constant trip count and condition: unrolled; If with a run-time condition whose branches return
  containers (or any cheap If, for a backend without If): both branches and a Where per output.

Sequence inputs become one input per element (``NAME[k]``) and sequence outputs one output per element, recorded
in ``Model.containers`` so that runners take and return lists. Nodes after the rewrite are inferred again (their
inputs' types may have become static) and folded when all their inputs are constants. A container op whose
positions or structure are not constant is left as it is; the backend then reports it as unsupported.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ir.graph import Graph, Model, Node
from ..ir.types import OptionalType, SequenceType, TensorType, type_of_value
from .legalize import infer_and_fold
from .util import FreshNames, clone

#: the ops this pass rewrites (ONNX domain)
CONTAINER_OPS = {"SequenceConstruct", "SequenceEmpty", "SequenceInsert", "SequenceErase", "SequenceAt",
                 "SequenceLength", "SplitToSequence", "ConcatFromSequence", "SequenceMap", "Optional",
                 "OptionalHasElement", "OptionalGetElement", "Identity", "Loop", "If"}

#: most body nodes an unrolled Loop may add (trip count x body size)
MAX_UNROLLED_NODES = 4096
#: most nodes two If branches may hold to be run both and selected from (a "cheap" If)
MAX_SELECT_NODES = 256

_EMPTY = object()           # an empty optional


class _Unroller:
    """The rewrite of one graph: ``seqs`` maps a sequence value to its element names, ``opts`` an optional
    value to its element (a tensor name, a list for an optional sequence, or _EMPTY)."""

    def __init__(self, model: Model, select_if: bool = False):
        self.model, self.g = model, model.graph
        self.select_if = select_if
        self.types, self.consts = self.g.types, self.g.constants
        self.seqs: dict[str, list[str]] = {}
        self.opts: dict[str, object] = {}
        self.nodes: list[Node] = []
        self.fresh = FreshNames(model, "seq")
        self.used = self.fresh.used
        self.touched: set[str] = set()          # values whose types this pass set: their readers are re-inferred

    def const(self, value: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        self.consts[name], self.types[name] = value, type_of_value(value)
        return name

    def emit(self, op: str, ins: list, outs: list, name: str, **attrs) -> None:
        for o in outs:
            self.types.setdefault(o, None)
            self.touched.add(o)
        self.settle(Node(op, ins, outs, attrs, name))

    def settle(self, node: Node) -> None:
        """Append ``node``; when it reads a value whose type this pass set, infer its outputs again first (the
        registry's inference on the now known input types) and fold it when all its inputs are constants
        (Shape and Size of a static tensor too)."""
        from ..ops import registry
        g = self.g
        if not any(i in self.touched for i in node.inputs) and not any(o in self.touched for o in node.outputs):
            self.nodes.append(node)
            return
        self.touched.update(o for o in node.outputs if o)
        opdef = registry.get(node.op, node.domain)
        if opdef is None or node.subgraphs() or not infer_and_fold(self.model, node, g.types, g.constants):
            self.nodes.append(node)

    def alias(self, out: str, src: str, name: str) -> None:
        """``out`` takes the value of tensor ``src`` (an Identity)."""
        self.emit("Identity", [src], [out], name)
        self.types[out] = self.types.get(src)

    # ------------------------------------------------------------------------------------------ the rewrite
    def position(self, node: Node, k: int, n: int, default: int) -> int | None:
        """The constant position input ``k`` of ``node`` in a sequence of ``n`` (negative counts from the end),
        ``default`` when absent, None when not constant; ShapeError when out of range (ONNX spec)."""
        if len(node.inputs) <= k or not node.inputs[k]:
            return default
        v = self.consts.get(node.inputs[k])
        if v is None:
            return None
        p = int(np.asarray(v).ravel()[0])
        limit = n + 1 if node.op == "SequenceInsert" else n
        if not -limit <= p < limit:
            raise ShapeError(f"node {node.name!r} ({node.op}): position {p} is outside a sequence of {n}")
        return p + n if p < 0 else p

    def visit(self, node: Node) -> None:
        """Rewrite one node (or keep it, re-inferred when it reads a rewritten value)."""
        ins = node.inputs
        seq_in = [i for i in ins if i in self.seqs or i in self.opts]
        handled = not node.domain and node.op in CONTAINER_OPS and self.rewrite(node)
        if handled:
            return
        for i in seq_in:                     # an op this pass cannot rewrite reads a container: rebuild it
            self.materialize(i, node.name)
        self.settle(node)

    def rewrite(self, node: Node) -> bool:
        op, ins, out = node.op, node.inputs, node.outputs[0] if node.outputs else ""
        first = ins[0] if ins else ""
        if op == "SequenceConstruct":
            self.seqs[out] = list(ins)
        elif op == "SequenceEmpty":
            self.seqs[out] = []
        elif op == "Identity" and first in self.seqs:
            self.seqs[out] = list(self.seqs[first])
        elif op == "Identity" and first in self.opts:
            self.opts[out] = self.opts[first]
        elif op == "Optional":
            self.opts[out] = (list(self.seqs[first]) if first in self.seqs else first) if first else _EMPTY
        elif op == "OptionalHasElement":
            if first and first not in self.opts and first not in self.seqs and not isinstance(self.types.get(first), TensorType):
                return False                    # an optional input: present or not is known at run time only
            self.fold(out, np.array(bool(first) and self.opts.get(first) is not _EMPTY))
        elif op == "OptionalGetElement" and (first in self.opts or first in self.seqs):
            got = self.opts.get(first, self.seqs.get(first))
            if got is _EMPTY:
                raise ShapeError(f"node {node.name!r} (OptionalGetElement): the optional is always empty")
            if isinstance(got, list):
                self.seqs[out] = list(got)
            else:
                self.alias(out, got, node.name)
        elif op in ("SequenceInsert", "SequenceErase", "SequenceAt", "SequenceLength", "ConcatFromSequence") and first in self.seqs:
            return self.rewrite_seq_op(node, self.seqs[first], out)
        elif op == "SplitToSequence":
            return self.split(node, out)
        elif op == "SequenceMap" and first in self.seqs:
            return self.sequence_map(node)
        elif op == "Loop":
            return self.loop(node)
        elif op == "If" and first in self.consts:
            self.inline_branch(node, bool(np.asarray(self.consts[first]).ravel()[0]))
        elif op == "If" and (self.select_if or any(isinstance(self.types.get(o), (SequenceType, OptionalType))
                                                   for o in node.outputs)):
            return self.select(node)
        else:
            return False
        return True

    def rewrite_seq_op(self, node: Node, seq: list, out: str) -> bool:
        op = node.op
        if op == "SequenceLength":
            self.fold(out, np.array(len(seq), np.int64))
            return True
        if op == "ConcatFromSequence":
            if not seq:
                return False
            ax, new_axis = node.attrs.get("axis", 0), node.attrs.get("new_axis", 0)
            parts = list(seq)
            if new_axis:
                axes = self.const(np.array([ax], np.int64), "axes")
                parts = []
                for k, e in enumerate(seq):
                    parts.append(self.fresh(f"{out}/{k}"))
                    self.emit("Unsqueeze", [e, axes], [parts[-1]], f"{node.name}/unsqueeze{k}")
            self.emit("Concat", parts, [out], node.name, axis=ax)
            return True
        default = len(seq) if op == "SequenceInsert" else -1 % max(len(seq), 1)
        p = self.position(node, 2 if op == "SequenceInsert" else 1, len(seq), default)
        if p is None:
            return False
        if op == "SequenceInsert":
            self.seqs[out] = seq[:p] + [node.inputs[1]] + seq[p:]
        elif op == "SequenceErase":
            if not seq:
                raise ShapeError(f"node {node.name!r} (SequenceErase): the sequence is empty")
            self.seqs[out] = seq[:p] + seq[p + 1:]
        else:
            self.alias(out, seq[p], node.name)
        return True

    def split(self, node: Node, out: str) -> bool:
        """SplitToSequence of a static tensor: Split into the parts (the spec's rules for a scalar or 1-D
        ``split`` and for its absence), then Squeeze each when ``keepdims`` is 0 and ``split`` is absent."""
        x = self.types.get(node.inputs[0])
        if not isinstance(x, TensorType) or not x.is_static or not x.shape:
            return False
        ax = node.attrs.get("axis", 0) % len(x.shape)
        d = x.shape[ax]
        has_split = len(node.inputs) > 1 and bool(node.inputs[1])
        sv = self.consts.get(node.inputs[1]) if has_split else None
        if has_split and sv is None:
            return False
        if not has_split:
            sizes = [1] * d
        elif np.ndim(sv) == 0:
            s = int(sv)
            if s <= 0:
                raise ShapeError(f"node {node.name!r} (SplitToSequence): split {s} must be positive")
            sizes = [s] * (d // s) + ([d % s] if d % s else [])
        else:
            sizes = [int(v) for v in np.asarray(sv).ravel()]
            if sum(sizes) != d or min(sizes, default=0) < 0:
                raise ShapeError(f"node {node.name!r} (SplitToSequence): split {sizes} does not sum to {d}")
        if not sizes:
            self.seqs[out] = []
            return True
        parts = [self.fresh(f"{out}/{k}") for k in range(len(sizes))]
        self.emit("Split", [node.inputs[0], self.const(np.array(sizes, np.int64), "split")], parts, node.name, axis=ax)
        if not has_split and not node.attrs.get("keepdims", 1):
            axes = self.const(np.array([ax], np.int64), "axes")
            squeezed = [self.fresh(f"{p}/squeezed") for p in parts]
            for k, (p, q) in enumerate(zip(parts, squeezed)):
                self.emit("Squeeze", [p, axes], [q], f"{node.name}/squeeze{k}")
            parts = squeezed
        self.seqs[out] = parts
        return True

    def sequence_map(self, node: Node) -> bool:
        """SequenceMap: its body once per element of the first input (ONNX spec, SequenceMap-17); sequence inputs
        give their k-th element, tensor inputs themselves."""
        body: Graph = node.attrs["body"]
        n = len(self.seqs[node.inputs[0]])
        extra = node.inputs[1:]
        if any(b.subgraphs() for b in body.nodes) or any(i in self.seqs and len(self.seqs[i]) != n for i in extra):
            return False
        if any(i in self.opts for i in extra):
            return False
        outs: list[list[str]] = [[] for _ in node.outputs]
        for k in range(n):
            ren = {body.inputs[0]: self.seqs[node.inputs[0]][k]}
            for formal, actual in zip(body.inputs[1:], extra):
                ren[formal] = self.seqs[actual][k] if actual in self.seqs else actual
            self.inline(body, ren, f"{node.name}/{k}")
            for j, o in enumerate(body.outputs):
                outs[j].append(ren.get(o, o))
        for j, o in enumerate(node.outputs):
            if o:
                self.seqs[o] = outs[j]
        return True

    def inline(self, body: Graph, ren: dict, prefix: str) -> None:
        """One copy of ``body``'s constants and nodes, its inputs renamed by ``ren`` (which gains the copies'
        fresh names), each node rewritten in turn as the main graph's are."""
        for c, v in body.constants.items():
            ren[c] = self.const(v, c)
        for bn in body.nodes:
            outs = [self.fresh(f"{prefix}/{o}") if o else "" for o in bn.outputs]
            ren.update({o: r for o, r in zip(bn.outputs, outs) if o})
            for o in outs:
                if o:
                    self.types[o] = None
                    self.touched.add(o)
            attrs = {k: _renamed_free(v, ren) if isinstance(v, Graph) else v for k, v in bn.attrs.items()}
            self.visit(Node(bn.op, [ren.get(i, i) if i else "" for i in bn.inputs], outs, attrs,
                            f"{prefix}/{bn.name}", bn.domain))

    def loop(self, node: Node) -> bool:
        """Loop (ONNX spec, Loop-1..24) with a constant trip count and condition: the body once per iteration,
        each copy rewritten like the main graph (so loop-carried sequences grow by constant positions), scan
        outputs stacked by Unsqueeze and Concat. Taken only when every iteration's condition output is the
        constant true (directly or through Identity); otherwise nothing is emitted and the Loop stays."""
        body: Graph = node.attrs["body"]
        m = self.consts.get(node.inputs[0]) if node.inputs and node.inputs[0] else None
        c = self.consts.get(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else np.array(True)
        if m is None or c is None or any(b.subgraphs() and b.op != "If" for b in body.nodes):
            return False
        trips = int(np.asarray(m).ravel()[0]) if bool(np.asarray(c).ravel()[0]) else 0
        n_carried = len(node.inputs) - 2
        n_scan = len(body.outputs) - 1 - n_carried
        if trips * max(len(body.nodes), 1) > MAX_UNROLLED_NODES or (trips <= 0 and n_scan):
            return False
        saved = (len(self.nodes), dict(self.seqs), dict(self.opts), set(self.touched))
        cur, scans = list(node.inputs[2:]), [[] for _ in range(n_scan)]
        for k in range(max(trips, 0)):
            ren = {body.inputs[0]: self.const(np.array(k, np.int64), "iter"), body.inputs[1]: self.const(np.array(True), "cond")}
            ren.update(zip(body.inputs[2:], cur))
            self.inline(body, ren, f"{node.name}/{k}")
            if not self.constant_true(ren.get(body.outputs[0], body.outputs[0])):
                self.nodes[saved[0]:] = []
                self.seqs, self.opts, self.touched = saved[1], saved[2], saved[3]
                return False
            cur = [ren.get(o, o) for o in body.outputs[1:1 + n_carried]]
            for j, o in enumerate(body.outputs[1 + n_carried:]):
                scans[j].append(ren.get(o, o))
        for out, v in zip(node.outputs[:n_carried], cur):
            if not out:
                continue
            if v in self.seqs:
                self.seqs[out] = list(self.seqs[v])
            elif v in self.opts:
                self.opts[out] = self.opts[v]
            else:
                self.alias(out, v, f"{node.name}/{out}")
        for out, vals in zip(node.outputs[n_carried:], scans):
            if out:
                axes = self.const(np.array([0], np.int64), "axes")
                parts = [self.fresh(f"{out}/{k}") for k in range(len(vals))]
                for k, (v, p) in enumerate(zip(vals, parts)):
                    self.emit("Unsqueeze", [v, axes], [p], f"{node.name}/stack{k}")
                self.emit("Concat", parts, [out], f"{node.name}/{out}", axis=0)
        return True

    def inline_branch(self, node: Node, cond: bool) -> None:
        """If with a constant condition (folded inside an unrolled body): the chosen branch inlined."""
        branch = node.attrs["then_branch" if cond else "else_branch"]
        ren: dict = {}
        self.inline(branch, ren, f"{node.name}/{'then' if cond else 'else'}")
        for out, bo in zip(node.outputs, branch.outputs):
            v = ren.get(bo, bo)
            if v in self.seqs:
                self.seqs[out] = list(self.seqs[v])
            elif v in self.opts:
                self.opts[out] = self.opts[v]
            elif out:
                self.alias(out, v, f"{node.name}/{out}")

    def select(self, node: Node) -> bool:
        """If with a run-time condition as both branches inlined and a Where per output tensor (sequences and
        optionals element by element): taken when the branches hold at most MAX_SELECT_NODES nodes and give the
        same structure and static shapes; otherwise nothing is emitted and the If stays."""
        then_b, else_b = node.attrs["then_branch"], node.attrs["else_branch"]
        if len(then_b.nodes) + len(else_b.nodes) > MAX_SELECT_NODES:
            return False
        saved = (len(self.nodes), dict(self.seqs), dict(self.opts), set(self.touched))
        ren_t, ren_e = {}, {}
        self.inline(then_b, ren_t, f"{node.name}/then")
        self.inline(else_b, ren_e, f"{node.name}/else")
        pairs = [(o, ren_t.get(a, a), ren_e.get(b, b)) for o, a, b in zip(node.outputs, then_b.outputs, else_b.outputs)]
        picked = {}
        for out, a, b in pairs:
            got = self.select_value(node, out, a, b)
            if got is None:
                self.nodes[saved[0]:] = []
                self.seqs, self.opts, self.touched = saved[1], saved[2], saved[3]
                return False
            picked[out] = got
        for out, got in picked.items():
            kind, val = got
            if kind == "seq":
                self.seqs[out] = val
            elif kind == "opt":
                self.opts[out] = val
        return True

    def select_value(self, node: Node, out: str, a: str, b: str):
        """("tensor", out) after a Where choosing ``a`` or ``b`` into ``out``; ("seq", names) or ("opt", ...) for
        containers of the same structure; None when the two differ in structure or static shape."""
        cond = node.inputs[0]
        if a in self.seqs or b in self.seqs or a in self.opts or b in self.opts:
            va, vb = self.opts.get(a, self.seqs.get(a)), self.opts.get(b, self.seqs.get(b))
            kind = "opt" if a in self.opts or b in self.opts else "seq"
            if (a in self.opts) != (b in self.opts) or (a in self.seqs) != (b in self.seqs):
                return None
            if va is _EMPTY or vb is _EMPTY:
                return (kind, _EMPTY) if va is vb else None
            la, lb = (va if isinstance(va, list) else [va]), (vb if isinstance(vb, list) else [vb])
            if len(la) != len(lb):
                return None
            names = []
            for k, (ea, eb) in enumerate(zip(la, lb)):
                names.append(self.fresh(f"{out}/{k}"))
                if not self.where(cond, ea, eb, names[-1], f"{node.name}/{out}/{k}"):
                    return None
            return (kind, names if isinstance(va, list) else names[0])
        return ("tensor", out) if self.where(cond, a, b, out, f"{node.name}/{out}") else None

    def where(self, cond: str, a: str, b: str, out: str, name: str) -> bool:
        ta, tb = self.types.get(a), self.types.get(b)
        if not (isinstance(ta, TensorType) and isinstance(tb, TensorType) and ta.is_static and ta == tb):
            return False
        self.emit("Where", [cond, a, b], [out], name)
        return True

    def constant_true(self, name: str) -> bool:
        """``name`` is the constant true, or an Identity chain from it among the emitted nodes."""
        made = {o: n for n in self.nodes for o in n.outputs}
        while name not in self.consts and name in made and made[name].op == "Identity" and not made[name].domain:
            name = made[name].inputs[0]
        v = self.consts.get(name)
        return v is not None and bool(np.asarray(v).ravel()[0])

    # ------------------------------------------------------------------------------------------ helpers
    def fold(self, out: str, value: np.ndarray) -> None:
        self.consts[out], self.types[out] = value, type_of_value(value)
        self.touched.add(out)

    def materialize(self, name: str, where: str) -> None:
        """Rebuild container ``name`` for a node this pass does not rewrite (the backend then reports that node)."""
        got = self.opts.get(name, self.seqs.get(name))
        if isinstance(got, list) and got:
            self.emit("SequenceConstruct", list(got), [name], f"{where}/sequence")
        elif isinstance(got, list):
            self.emit("SequenceEmpty", [], [name], f"{where}/sequence")
        elif got is _EMPTY:
            self.emit("Optional", [], [name], f"{where}/optional")
        elif got is not None:
            self.emit("Optional", [got], [name], f"{where}/optional")
        self.seqs.pop(name, None)
        self.opts.pop(name, None)


def _renamed_free(g: Graph, ren: dict, outer: frozenset = frozenset()) -> Graph:
    """A copy of subgraph ``g`` whose reads of enclosing-scope values (names it does not define, nor a graph
    between it and the copy's root) are renamed by ``ren``; nested subgraphs likewise."""
    defined = set(outer) | set(g.inputs) | set(g.constants) | {o for n in g.nodes for o in n.outputs if o}
    nodes = []
    for n in g.nodes:
        attrs = {k: _renamed_free(v, ren, frozenset(defined)) if isinstance(v, Graph) else v for k, v in n.attrs.items()}
        nodes.append(Node(n.op, [ren.get(i, i) if i and i not in defined else i for i in n.inputs], list(n.outputs),
                          attrs, n.name, n.domain))
    outs = [ren.get(o, o) if o not in defined else o for o in g.outputs]
    return Graph(g.name, list(g.inputs), outs, nodes, dict(g.constants), dict(g.types))


def _has_containers(g: Graph) -> bool:
    return any(isinstance(t, (SequenceType, OptionalType)) for t in g.types.values())


def unroll_sequences(model: Model, select_if: bool = False) -> Model:
    """``model`` with its sequences and optionals of static structure rewritten into tensors (see the module
    docstring); unchanged when it has none. Sequence inputs without element shapes stay as they are. With
    ``select_if`` (a backend that cannot run If), every cheap If becomes both branches and a Where; otherwise
    only Ifs returning sequences or optionals do.

    Raises ShapeError for a constant position outside its sequence and for reading an always-empty optional."""
    control = ("Loop", "If") if select_if else ("Loop",)
    if not _has_containers(model.graph) and not any(n.op in control and not n.domain for n in model.graph.nodes):
        return model
    m = clone(model)
    u = _Unroller(m, select_if)
    g = m.graph
    inputs = []
    for x in g.inputs:
        t = g.types[x]
        seq = t.elem if isinstance(t, OptionalType) else t
        if isinstance(seq, SequenceType) and seq.elems is not None:
            names = [f"{x}[{k}]" for k in range(len(seq.elems))]
            if any(n in g.types for n in names):
                raise ShapeError(f"input {x!r}: its elements would be named {names[0]!r}..., which the model uses")
            for nm, et in zip(names, seq.elems):
                g.types[nm] = et
            u.used.update(names)
            (u.opts if isinstance(t, OptionalType) else u.seqs)[x] = names
            m.containers[x] = ("sequence", names, "input")
            inputs += names
        else:
            inputs.append(x)
    g.inputs = inputs
    for node in g.nodes:
        u.visit(node)
    g.outputs = _outputs(u, m)
    g.nodes = u.nodes
    for name in [k for k, t in g.types.items() if t is None or k in u.seqs or k in u.opts]:
        if not any(name in n.outputs or name in n.inputs for n in g.nodes) and name not in g.outputs \
                and name not in g.inputs and name not in g.constants:
            del g.types[name]
    return m


def _outputs(u: _Unroller, m: Model) -> list[str]:
    """The graph's outputs with each unrolled container replaced by its elements (an Identity each, named
    ``NAME[k]``; a present optional tensor keeps its name; an empty optional has none)."""
    outs = []
    for y in m.graph.outputs:
        got = u.opts.get(y, u.seqs.get(y)) if (y in u.opts or y in u.seqs) else None
        if got is None:
            outs.append(y)
            continue
        if got is _EMPTY:
            m.containers[y] = ("optional", [], "output")
            continue
        if isinstance(got, str):
            u.alias(y, got, f"{y}/output")
            m.containers[y] = ("optional", [y], "output")
            outs.append(y)
            continue
        names = [f"{y}[{k}]" for k in range(len(got))]
        for nm, e in zip(names, got):
            if nm in u.used and nm not in got:
                raise ShapeError(f"output {y!r}: its elements would be named {nm!r}, which the model uses")
            u.alias(nm, e, f"{nm}/output")
        m.containers[y] = ("sequence", names, "output")
        outs += names
    return outs


__all__ = ["unroll_sequences", "CONTAINER_OPS"]
