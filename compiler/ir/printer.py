"""Human-readable text dump of the IR (``bornc inspect MODEL --ir``).

One line per value definition: ``%name: type = Op[attrs](%inputs)``; constants print their type and, when
small, their values; subgraphs are indented under their node.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph, Model


def _fmt_attr(v) -> str:
    if isinstance(v, Graph):
        return f"<graph {v.name}>"
    if isinstance(v, np.ndarray):
        return f"tensor<{v.dtype}{list(v.shape)}>" if v.size > 8 else np.array2string(v.ravel(), separator=",")
    if isinstance(v, float):
        return f"{v:g}"
    return repr(v) if isinstance(v, str) else str(v)


def _graph_lines(g: Graph, indent: str) -> list[str]:
    out = [f"{indent}graph {g.name}(" + ", ".join(f"%{i}: {g.types[i]}" for i in g.inputs) + ")"]
    for name, arr in g.constants.items():
        shown = "" if arr.size > 8 or arr.dtype == object and arr.size > 4 else " " + np.array2string(np.asarray(arr).ravel(), separator=",", threshold=8)
        out.append(f"{indent}  const %{name}: {g.types[name]}{shown}")
    for n in g.nodes:
        attrs = ", ".join(f"{k}={_fmt_attr(v)}" for k, v in sorted(n.attrs.items()) if not isinstance(v, Graph))
        outs = ", ".join(f"%{o}: {g.types.get(o)}" for o in n.outputs if o)
        ins = ", ".join(f"%{i}" if i else "_" for i in n.inputs)
        op = n.op if not n.domain else f"{n.domain}.{n.op}"
        out.append(f"{indent}  {outs} = {op}{'[' + attrs + ']' if attrs else ''}({ins})  # {n.name}")
        for k, v in n.attrs.items():
            if isinstance(v, Graph):
                out.append(f"{indent}    {k}:")
                out.extend(_graph_lines(v, indent + "      "))
    out.append(f"{indent}  return " + ", ".join(f"%{o}" for o in g.outputs))
    return out


def format_model(model: Model) -> str:
    """The whole model as text: opsets, then the main graph."""
    head = "model opsets " + ", ".join(f"{d or 'ai.onnx'}:{v}" for d, v in sorted(model.opsets.items()))
    return "\n".join([head] + _graph_lines(model.graph, "")) + "\n"
