"""The typed IR: Model, Graph, Node, value types, verifier and text printer."""
from .graph import Graph, Model, Node
from .printer import format_model
from .types import OptionalType, SequenceType, TensorType
from .verify import verify

__all__ = ["Graph", "Model", "Node", "TensorType", "SequenceType", "OptionalType", "verify", "format_model"]
