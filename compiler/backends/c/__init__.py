"""The C backend: generated C99 with shapes baked in, plus the tiny runtime in runtime/c."""
from .emit import compile_c

__all__ = ["compile_c"]
