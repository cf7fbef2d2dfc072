"""External tensor data and names of an untrusted ONNX file, checked before onnx or numpy touches them.

Every TensorProto of a model is found (graph and subgraph initializers, sparse initializers' values and indices,
Constant and other node attributes: ``t``, ``tensors``, ``sparse_tensor``, ``sparse_tensors``; model-local
functions; training-info graphs). Each one whose data is external is read by :func:`inline_external_data`
itself, against the model's folder, and its bytes moved into ``raw_data``: onnx's own loader, which resolves
some locations against the process's working directory, never runs. The checks follow the ONNX external-data
spec (``docs/ExternalData.md``: keys ``location``, ``offset``, ``length``): the location must be a relative path
with no ``..`` component; the file, after symlinks are resolved, must lie inside the model's folder, be a regular
file with one hard link, and hold ``offset + length`` bytes; the length must match the tensor's dims and type.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator

import numpy as np
import onnx
from onnx import helper

from ..errors import ModelImportError


def _graph_tensors(g: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from g.initializer
    for sp in g.sparse_initializer:
        yield sp.values
        yield sp.indices
    for n in g.node:
        yield from _node_tensors(n)


def _node_tensors(n: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    for a in n.attribute:
        if a.HasField("t"):
            yield a.t
        yield from a.tensors
        for sp in ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors):
            yield sp.values
            yield sp.indices
        for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            yield from _graph_tensors(sub)


def all_tensors(proto: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every TensorProto in ``proto``, nested subgraphs, sparse tensors and functions included."""
    yield from _graph_tensors(proto.graph)
    for f in proto.functions:
        for n in f.node:
            yield from _node_tensors(n)
    for ti in proto.training_info:
        yield from _graph_tensors(ti.initialization)
        yield from _graph_tensors(ti.algorithm)


def _is_external(t: onnx.TensorProto) -> bool:
    return t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data) > 0


def _location(t: onnx.TensorProto, root: Path) -> tuple[Path, int, int | None]:
    """(resolved file, offset, length or None) of an external tensor, after the path checks."""
    info = {e.key: e.value for e in t.external_data}
    loc = info.get("location", "")
    where = f"tensor {t.name!r}: external data location {loc!r}"
    if not isinstance(loc, str) or not loc or "\0" in loc:
        raise ModelImportError(f"{where} is empty or not a valid file name")
    pp, wp = PurePosixPath(loc), PureWindowsPath(loc)
    if pp.is_absolute() or wp.is_absolute() or wp.drive or loc.startswith(("/", "\\")):
        raise ModelImportError(f"{where} must be a relative path inside the model's folder")
    if ".." in pp.parts or ".." in wp.parts:
        raise ModelImportError(f"{where} must not contain '..'")
    full = Path(os.path.realpath(root / loc))
    if full != root and root not in full.parents:
        raise ModelImportError(f"{where} leaves the model's folder {str(root)!r} (through a symbolic link)")
    try:
        st = full.stat()
    except OSError:
        raise ModelImportError(f"{where}: file {str(full)!r} not found") from None
    if not full.is_file():
        raise ModelImportError(f"{where} is not a regular file")
    if st.st_nlink > 1:
        raise ModelImportError(f"{where} has {st.st_nlink} hard links; a hard link may lead outside the model's "
                               "folder, so external data files must have one")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise ModelImportError(f"tensor {t.name!r}: external data offset/length must be integers") from None
    if offset < 0 or (length is not None and length < 0):
        raise ModelImportError(f"tensor {t.name!r}: negative external data offset or length")
    end = offset + (length if length is not None else 0)
    if offset > st.st_size or end > st.st_size:
        raise ModelImportError(f"tensor {t.name!r}: external data [{offset}, {end}) lies outside {loc!r} "
                               f"({st.st_size} bytes)")
    return full, offset, length


def _expected_bytes(t: onnx.TensorProto) -> int | None:
    """Bytes of ``t``'s data by its dims and element type (None for strings)."""
    if t.data_type == onnx.TensorProto.STRING:
        return None
    try:
        dt = helper.tensor_dtype_to_np_dtype(t.data_type)
    except (KeyError, ValueError):
        return None
    n = int(np.prod([int(d) for d in t.dims], dtype=object)) if t.dims else 1
    bits = {onnx.TensorProto.INT4: 4, onnx.TensorProto.UINT4: 4}.get(t.data_type)
    for name in ("INT2", "UINT2"):
        if getattr(onnx.TensorProto, name, None) == t.data_type:
            bits = 2
    for name in ("FLOAT4E2M1",):
        if getattr(onnx.TensorProto, name, None) == t.data_type:
            bits = 4
    return (n * bits + 7) // 8 if bits else n * np.dtype(dt).itemsize


def inline_external_data(proto: onnx.ModelProto, folder: str | os.PathLike | None) -> None:
    """Read every external tensor of ``proto`` from ``folder`` (the model file's folder) into its ``raw_data``.

    With ``folder`` None (a model built in memory), any external tensor is an error. Raises ModelImportError
    naming the tensor for an unsafe or missing location, a range outside the file, or a size that does not
    match the tensor's dims."""
    root = Path(os.path.realpath(folder)) if folder is not None else None
    for t in all_tensors(proto):
        if not _is_external(t):
            continue
        if root is None:
            raise ModelImportError(f"tensor {t.name!r} has external data; load the model from its file")
        full, offset, length = _location(t, root)
        with open(full, "rb") as f:
            f.seek(offset)
            data = f.read() if length is None else f.read(length)
        want = _expected_bytes(t)
        if want is not None and len(data) != want:
            raise ModelImportError(f"tensor {t.name!r}: external data holds {len(data)} bytes, its dims "
                                   f"{list(t.dims)} need {want}")
        t.raw_data = data
        del t.external_data[:]
        t.data_location = onnx.TensorProto.DEFAULT


def _names(g: onnx.GraphProto) -> Iterator[tuple[str, object]]:
    yield "graph", g.name
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        yield "value", vi.name
    for t in g.initializer:
        yield "initializer", t.name
    for sp in g.sparse_initializer:
        yield "sparse initializer", sp.values.name
    for n in g.node:
        yield "node", n.name
        yield "op type", n.op_type
        yield "domain", n.domain
        for v in list(n.input) + list(n.output):
            yield "value", v
        for a in n.attribute:
            yield "attribute", a.name
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _names(sub)


def check_names(proto: onnx.ModelProto) -> None:
    """Reject names that are not valid UTF-8 or hold NUL: generated sources spell every name as an escaped
    literal or a mangled comment, and a NUL would cut the name a C caller sees. Raises ModelImportError."""
    for kind, name in _names(proto.graph):
        if isinstance(name, bytes):
            raise ModelImportError(f"the name of a {kind} is not valid UTF-8: {name[:60]!r}")
        if "\0" in name:
            raise ModelImportError(f"the {kind} name {name[:60]!r} contains a NUL character")


__all__ = ["all_tensors", "inline_external_data", "check_names"]
