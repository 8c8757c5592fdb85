"""The gate table, re-exported from the IR package (:mod:`lgn.compile.gates`), which owns it."""

from lgn.compile.gates import *  # noqa: F401,F403
from lgn.compile.gates import __all__  # noqa: F401
