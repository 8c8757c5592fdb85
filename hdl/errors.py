"""Errors raised by the hardware back end: one line each, naming the problem."""

from __future__ import annotations

__all__ = ["HDLError", "InvalidNameError", "UnknownTargetError", "DeviceTooSmallError",
           "ToolMissingError", "ToolFailedError"]


class HDLError(ValueError):
    """Base class of the hardware back end's errors (bad arguments, missing tools)."""


class InvalidNameError(HDLError):
    """A module name that cannot be turned into a Verilog identifier."""


class UnknownTargetError(HDLError):
    """A synthesis target or iCE40 device that is not supported."""


class DeviceTooSmallError(HDLError):
    """A design that does not fit the chosen FPGA part."""


class ToolMissingError(HDLError):
    """An outside tool (iverilog, verilator, Yosys, nextpnr) that is not installed."""


class ToolFailedError(HDLError):
    """An outside tool that ran and failed; the message carries the last lines of its log."""
