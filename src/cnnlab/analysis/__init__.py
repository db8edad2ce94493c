"""Inspection and comparison: summary, MACs, receptive fields, convolution cost, benchmarks."""

from .cost import ConvCost, conv_cost
from .macs import MacCount, count_macs, trace
from .receptive_field import receptive_field
from .summary import ModelSummary, summary

__all__ = ["ConvCost", "MacCount", "ModelSummary", "conv_cost", "count_macs",
           "receptive_field", "summary", "trace"]
