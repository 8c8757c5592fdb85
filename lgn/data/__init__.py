"""Datasets with raw features, fixed splits and documented default thermometer encoders.

``load(spec)`` returns a validated :class:`Dataset`: float32 raw features (pixels 0..255, ...),
int64 labels, the C type of the raw features for compiled back ends, and the default
:class:`Encoding` (``dataset.encoding.thermometer(dataset.x_train)`` builds the encoder).

==================  ====================  ============  ========  =======  ================================
name                source                train / test  features  classes  default encoder (input bits)
==================  ====================  ============  ========  =======  ================================
``digits``          scikit-learn, bundled 1437 / 360    64 0..16  10       uniform [0, 16] x 3 (192)
``mnist``           IDX files             60000/10000   784 u8    10       uniform [0, 255] x 1 (784)
``fashion-mnist``   IDX files (Debian)    60000/10000   784 u8    10       uniform [0, 255] x 3 (2352)
``cifar10``         binary tar            50000/10000   3072 u8   10       uniform [0, 255] x 3 (9216)
``monk1/2/3``       generated from rules  124/169/122   6 1..4    2        uniform [0.5, 4.5] x 3 (18)
                                          / 432
``npz:``/``csv:``   your file             yours or      any       >= 2     quantile x 7 (7 per feature)
                                          20 % split
==================  ====================  ============  ========  =======  ================================

Errors are :class:`DatasetError` (a ``ValueError``) with a one-line message.
"""

from .dataset import Dataset, DatasetError, Encoding
from .registry import DEFAULT, describe, load, names

__all__ = ["load", "names", "describe", "DEFAULT", "Dataset", "Encoding", "DatasetError"]
