"""Looking inside models: traces, parameter counts, devices, the module tree, summaries, doctor."""

from brickwork.inspect.doctor import doctor
from brickwork.inspect.findings import Finding, Report
from brickwork.inspect.params import count_params, device_of, tree
from brickwork.inspect.summary import Summary, SummaryRow, summary
from brickwork.inspect.trace import trace

__all__ = [
    "Finding",
    "Report",
    "Summary",
    "SummaryRow",
    "count_params",
    "device_of",
    "doctor",
    "summary",
    "trace",
    "tree",
]
