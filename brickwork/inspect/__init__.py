"""Looking inside models: traces, parameter counts, devices, the module tree, summaries."""

from brickwork.inspect.params import count_params, device_of, tree
from brickwork.inspect.summary import Summary, SummaryRow, summary
from brickwork.inspect.trace import trace

__all__ = ["Summary", "SummaryRow", "count_params", "device_of", "summary", "trace", "tree"]
