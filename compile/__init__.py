"""Netlist IR, lowering, passes, and the software back ends (packed executor, C)."""

from .netlist import FEATURE_DTYPES, Netlist, NetlistError, ThermometerEncoding
from .peers import PeerModelError, from_difflogic, from_torchlogix

__all__ = ["Netlist", "NetlistError", "ThermometerEncoding", "FEATURE_DTYPES", "from_difflogic",
           "from_torchlogix", "PeerModelError"]
