"""Looking inside models: traces, parameter counts, devices, the module tree."""

from brickwork.inspect.params import count_params, device_of, tree
from brickwork.inspect.trace import trace

__all__ = ["count_params", "device_of", "trace", "tree"]
