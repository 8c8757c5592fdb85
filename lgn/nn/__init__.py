"""Differentiable logic gate layers: the gate table, functional ops and modules."""

from . import functional, gates
from .modules import GroupSum, LogicLayer, LogicNet, Thermometer

__all__ = ["gates", "functional", "LogicLayer", "GroupSum", "Thermometer", "LogicNet"]
