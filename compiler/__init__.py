"""bornc: a code-generating compiler from ONNX models to standalone inference artifacts for edge devices."""
__version__ = "0.1.0"

from . import ops  # noqa: F401  (registers every operator)
from .api import Input, Tensor, TraceError, apply, trace
from .errors import BorncError
from .frontend.onnx_import import load_onnx
from .interpreter import run
from .layers import BatchNorm2d, Conv2d, Embedding, LayerNorm, Linear, MultiHeadAttention
from . import compile as _compile_module  # noqa: F401  (imported first: ``bornc.compile`` is the function below)
from .session import compile, golden_check, golden_record, inspect  # noqa: E402
from .quantize import QuantizeConfig  # noqa: E402

globals().update({k: v for k, v in __import__("bornc.api", fromlist=["op_functions"]).op_functions().items()
                  if k not in globals()})

__all__ = ["__version__", "BorncError", "load_onnx", "run", "trace", "Input", "Tensor", "TraceError", "apply",
           "compile", "inspect", "golden_record", "golden_check", "Linear", "Conv2d", "BatchNorm2d", "LayerNorm",
           "Embedding", "MultiHeadAttention", "QuantizeConfig"]
