"""Moved to :mod:`lgn.hdl.sorter` (hardware lives under ``lgn.hdl``); this path keeps working."""

from lgn.hdl.sorter import C_TYPES, SortingNetworkComponent, emit_c

__all__ = ["C_TYPES", "emit_c", "SortingNetworkComponent"]
