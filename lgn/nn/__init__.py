"""Differentiable logic gate layers: the gate table, functional ops, modules and the model spec."""

from . import functional, gates
from .connectivity import LearnedLogicLayer, LearnedLutLayer
from .lut import LutLayer
from .modules import GroupSum, LogicConv2d, LogicLayer, LogicNet, LogicStack, OrPool2d, Thermometer, ThermometerImage

__all__ = ["gates", "functional", "LogicLayer", "GroupSum", "Thermometer", "LogicNet", "LogicConv2d", "OrPool2d",
           "ThermometerImage", "LogicStack", "LutLayer", "LearnedLutLayer", "LearnedLogicLayer"]
