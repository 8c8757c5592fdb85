"""Differentiable sorting networks (Petersen et al., ICML 2021 / ICLR 2022) and their hardware twin."""

from .functional import (SIGMOIDS, conditional_swap, ranking_loss, relaxed_network, soft_rank,
                         soft_sort, soft_top_k, swap_weight, top_k_cross_entropy)
from .hardware import C_TYPES, SortingNetworkComponent, emit_c
from .modules import SoftSort, TopKCrossEntropy
from .networks import (NETWORKS, SortError, SortingNetwork, bitonic_network, odd_even_network,
                       sorting_network, top_k_network)

__all__ = [
    "SIGMOIDS", "NETWORKS", "C_TYPES", "SortError", "SortingNetwork", "bitonic_network",
    "odd_even_network", "sorting_network", "top_k_network", "swap_weight", "conditional_swap",
    "relaxed_network", "soft_sort", "soft_rank", "soft_top_k", "ranking_loss",
    "top_k_cross_entropy", "SoftSort", "TopKCrossEntropy", "emit_c", "SortingNetworkComponent",
]
