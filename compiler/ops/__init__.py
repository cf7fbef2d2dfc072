"""The op registry and every registered operator (importing this package registers them all)."""
from . import registry  # noqa: F401
from . import elementwise, tensor, nn, reduce, control, rnn, resize, attention, loss, quant, qint, signal, misc, composite, contrib, contrib_quant, contrib_attention, strings, ml, training  # noqa: F401
from .registry import REGISTRY, get

__all__ = ["REGISTRY", "get", "registry"]
