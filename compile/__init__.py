"""Netlist IR, lowering, passes, and the software back ends (packed executor, C)."""

from .netlist import FEATURE_DTYPES, Netlist, NetlistError, ThermometerEncoding

__all__ = ["Netlist", "NetlistError", "ThermometerEncoding", "FEATURE_DTYPES"]
