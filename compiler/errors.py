"""The one error hierarchy of bornc.

Library code raises a subclass of :class:`BorncError`; only ``bornc.cli`` prints it (one line, exit code 2).
Each message names what the user has to change: the node, the op, the input, the shapes or dtypes involved.
"""


class BorncError(Exception):
    """Base class of every error bornc raises for bad input or a missing tool."""


class ModelImportError(BorncError):
    """The model file cannot be read: malformed protobuf, bad external data path, unknown type."""


class UnsupportedOpError(BorncError):
    """One or more operators have no registry entry; the message lists every op type with its node names."""

    def __init__(self, missing: dict[str, list[str]]):
        self.missing = missing
        parts = [f"{op} (nodes: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''})" for op, names in sorted(missing.items())]
        super().__init__(f"{len(missing)} unsupported operator type(s): " + "; ".join(parts))


class ShapeError(BorncError):
    """Shapes or dtypes do not fit an operator, or a symbolic dimension is unbound."""


class SpecViolation(ShapeError):
    """The model breaks the ONNX spec for an op (input shapes, ranks or types that do not fit it): never papered
    over by the model's declared output types."""


class VerifyError(BorncError):
    """The IR breaks an invariant (types, single assignment, order, undefined values)."""


class LimitError(BorncError):
    """A tensor the model asks bornc to evaluate or allocate exceeds a resource limit (``--max-constant-bytes``)."""


class InputError(BorncError):
    """A run-time input has the wrong name, shape or dtype, or cannot be read."""


class KernelError(BorncError):
    """A reference kernel failed on a node; the message names the node and its input shapes."""


class ToolchainError(BorncError):
    """A compiler or emulator is missing; the message names the Debian package that provides it."""


class ArtifactError(BorncError):
    """An artifact directory is missing files or its manifest does not match."""


class GoldenError(BorncError):
    """A golden case is malformed, or recording found the reference and onnxruntime in disagreement."""
