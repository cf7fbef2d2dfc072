"""bornc: a code-generating compiler from ONNX models to standalone inference artifacts for edge devices."""
__version__ = "0.1.0"

from . import ops  # noqa: F401  (registers every operator)
from .errors import BorncError
from .frontend.onnx_import import load_onnx
from .interpreter import run

__all__ = ["__version__", "BorncError", "load_onnx", "run"]
