"""The python backend: a generated schedule (``model.py``) over the one-file numpy runtime in runtime/python."""
from .emit import compile_python, lacks_python_kernel

__all__ = ["compile_python", "lacks_python_kernel"]
