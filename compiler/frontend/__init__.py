"""Front ends: ONNX import (and, later, tracing)."""
