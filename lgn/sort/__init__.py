"""Differentiable sorting networks (Petersen et al., ICML 2021 / ICLR 2022) and their hardware twin.

The networks themselves (:mod:`lgn.sort.networks`) need neither torch nor Amaranth; the relaxed
operators (torch) and the hardware twin (:mod:`lgn.hdl.sorter`, Amaranth) load on first use.
"""

import importlib

from .networks import (NETWORKS, SortError, SortingNetwork, bitonic_network, odd_even_network,
                       sorting_network, top_k_network)

_LAZY = {
    **dict.fromkeys(("SIGMOIDS", "conditional_swap", "ranking_loss", "relaxed_network", "soft_rank",
                     "soft_sort", "soft_top_k", "swap_weight", "top_k_cross_entropy"),
                    "lgn.sort.functional"),
    **dict.fromkeys(("SoftSort", "TopKCrossEntropy"), "lgn.sort.modules"),
    **dict.fromkeys(("C_TYPES", "SortingNetworkComponent", "emit_c"), "lgn.hdl.sorter"),
}

__all__ = [
    "SIGMOIDS", "NETWORKS", "C_TYPES", "SortError", "SortingNetwork", "bitonic_network",
    "odd_even_network", "sorting_network", "top_k_network", "swap_weight", "conditional_swap",
    "relaxed_network", "soft_rank", "soft_sort", "soft_top_k", "ranking_loss",
    "top_k_cross_entropy", "SoftSort", "TopKCrossEntropy", "emit_c", "SortingNetworkComponent",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
