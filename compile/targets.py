"""The back ends by name: the one table that ``lgn export``, ``lgn eval``/``bench`` and ``lgn check`` read.

Each :class:`Target` names its entry functions as ``"module:function"`` strings, and option
choices and defaults that a back end owns as :class:`Ref`\\ s to its constants (``c.WORD_BITS``,
``c.STYLES``, ``hdl.synth.TARGETS``); all are resolved on first use, so importing this module
imports no back end: neither jinja2 templates nor Amaranth (and never torch). The front end adds
its own entry (torch eval) in :mod:`lgn.targets`.

Entry contracts
---------------
``export(netlist, out, **options) -> list[Path]``
    Write the target's file (``writes == "file"``) or files into the directory ``out``
    (``writes == "directory"``); ``options`` are the target's :attr:`Target.options`.
``predictor(netlist, out=None, **options) -> predict``
    Do everything that is done once (build, compile) and return ``predict(inputs) -> classes
    (N,)``; ``inputs`` are what :func:`inputs_for` makes of raw features for this target. With
    ``out`` the predictor runs the files its export writes there (emitted once).

Examples
--------
>>> get("c").writes, get("c").inputs, [o.name for o in get("c").options]
('directory', 'features', ['name', 'word_bits', 'style'])
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Ref", "Option", "Target", "TargetError", "TARGETS", "SYNTH_TARGETS", "SYNTH_DEVICES", "SIMULATORS",
           "get", "resolve", "inputs_for", "feature_width"]


class TargetError(ValueError):
    """An unknown target, or an option that does not apply to the target or is out of range."""


@dataclass(frozen=True)
class Ref:
    """A ``"package.module:attribute"`` reference to a back end's constant or function."""

    path: str

    def resolve(self):
        module, _, attribute = self.path.partition(":")
        return getattr(importlib.import_module(module), attribute)


def resolve(value):
    """Return ``value``, or what it names when it is a :class:`Ref`."""
    return value.resolve() if isinstance(value, Ref) else value


@dataclass(frozen=True)
class Option:
    """An option of a target: ``--flag`` on the command line, a keyword of its entry functions.

    ``choices`` and ``default`` may be :class:`Ref`\\ s to the back end's constants; ``kind``
    converts a value from the command line; ``minimum`` bounds integers.
    """

    name: str
    help: str
    kind: type = str
    default: Any = None
    choices: Ref | tuple | None = None
    minimum: int | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> tuple | None:
        """The choices (resolved), or None when any value of :attr:`kind` is allowed."""
        choices = resolve(self.choices)
        return None if choices is None else tuple(choices)

    def value(self, raw) -> Any:
        """``raw`` converted to :attr:`kind` and checked; :class:`TargetError` when it is not allowed."""
        try:
            value = self.kind(raw)
        except (TypeError, ValueError):
            raise TargetError(f"{self.flag} must be {self.kind.__name__}, got {raw!r}") from None
        allowed = self.allowed()
        if allowed is not None and value not in allowed:
            raise TargetError(f"{self.flag} must be one of {', '.join(map(str, allowed))}, got {raw!r}")
        if self.minimum is not None and value < self.minimum:
            raise TargetError(f"{self.flag} must be >= {self.minimum}, got {value}")
        return value


@dataclass(frozen=True)
class Target:
    """One back end: what it writes, whether it classifies, and what it takes.

    Attributes
    ----------
    name : str
        The ``--target`` / ``--backend`` name.
    help, backend_help : str
        Its line in ``lgn export --help`` (what it writes) and in ``lgn eval --help`` (how it
        classifies).
    inputs : {"bits", "features"}
        What its predictor takes: input bits (the caller applies the netlist's encoder), or raw
        features (it applies the encoder itself). See :func:`inputs_for`.
    writes : {"file", "directory"} or None
        What ``-o`` names for its export; None when it does not export.
    export, predictor : str or None
        ``"module:function"`` of its entry functions (contracts in the module docstring).
    options : tuple of Option
        The keywords its entry functions take.
    label : str
        Its row in ``lgn check``.
    available : str or None
        ``"module:function"`` raising (``ValueError``/``OSError``, with the reason) when a tool
        the predictor needs is missing.
    eval_options : dict
        Extra keywords of the predictor for ``lgn eval`` and ``lgn bench`` (e.g. the widest words).
    test_vectors : bool
        Its export takes ``features=``: test samples of the model's dataset.
    source : {"netlist", "model"}
        What the predictor is built from: the netlist, or the front end's model (torch).
    """

    name: str
    help: str = ""
    backend_help: str = ""
    inputs: str = "bits"
    writes: str | None = None
    export: str | None = None
    predictor: str | None = None
    options: tuple[Option, ...] = ()
    label: str = ""
    available: str | None = None
    eval_options: dict = field(default_factory=dict)
    test_vectors: bool = False
    source: str = "netlist"

    @property
    def predicts(self) -> bool:
        return self.predictor is not None

    def entry(self, which: str = "export"):
        """The entry function ``which`` ('export' or 'predictor'), imported now."""
        ref = getattr(self, which)
        if ref is None:
            raise TargetError(f"the {self.name} target has no {which}")
        return Ref(ref).resolve()

    def unavailable(self) -> str | None:
        """Why the predictor cannot run on this machine (a tool it needs is missing), or None."""
        if self.available is None:
            return None
        try:
            Ref(self.available).resolve()()
        except (ValueError, OSError) as exc:
            return str(exc)
        return None

    def option_values(self, given: dict) -> dict:
        """Every option of this target: ``given`` ones checked, the others at their defaults.

        ``given`` maps option names to raw values; a name that is not an option of this target
        raises :class:`TargetError` naming the targets it applies to.
        """
        mine = {o.name: o for o in self.options}
        for name in given:
            if name not in mine:
                flag = "--" + name.replace("_", "-")
                users = [t.name for t in TARGETS.values() if any(o.name == name for o in t.options)]
                where = f" (it applies to {', '.join(users)})" if users else ""
                raise TargetError(f"{flag} does not apply to the {self.name} target{where}")
        return {name: (option.value(given[name]) if name in given else resolve(option.default))
                for name, option in mine.items()}


def get(name: str, targets: dict | None = None) -> Target:
    """The target called ``name``; :class:`TargetError` naming the known ones otherwise."""
    targets = TARGETS if targets is None else targets
    try:
        return targets[name]
    except (KeyError, TypeError):
        raise TargetError(f"unknown target {name!r}, expected one of {', '.join(targets)}") from None


def feature_width(netlist) -> int:
    """Columns of the raw features a netlist classifies (its input bits when it has no encoder)."""
    return netlist.encoding.num_features if netlist.encoding is not None else netlist.num_inputs


def inputs_for(target: Target, netlist, features) -> np.ndarray:
    """What ``target``'s predictor takes for raw ``features (N, feature_width)``: the one place
    where raw features or input bits is decided (from :attr:`Target.inputs`)."""
    features = np.asarray(features)
    if target.inputs == "features":
        return features
    return netlist.encoding.encode(features) if netlist.encoding is not None else features != 0


# ------------------------------------------------------------------------ entry functions
def _save_npz(netlist, out) -> list[Path]:
    from lgn.compile import formats

    formats.save(netlist, out)
    return [Path(out)]


def _save_text(netlist, out) -> list[Path]:
    from lgn.compile import formats

    formats.save_text(netlist, out)
    return [Path(out)]


def _write_blif(netlist, out, *, name: str) -> list[Path]:
    from lgn.compile import formats

    formats.write_blif(netlist, out, model=name)
    return [Path(out)]


def _write_aiger(netlist, out) -> list[Path]:
    from lgn.compile import formats

    formats.write_aiger(netlist, out)
    return [Path(out)]


def _write_dot(netlist, out, *, name: str, max_nodes: int) -> list[Path]:
    from lgn.compile import dot

    dot.write_dot(netlist, out, name=name, max_nodes=max_nodes)
    return [Path(out)]


def _export_c(netlist, out, *, name: str, word_bits: int, style: str) -> list[Path]:
    from lgn.compile import c

    return c.export(netlist, out, name=name, word_bits=word_bits, style=style)


def _export_verilog(netlist, out, *, name: str, pipeline: int, popcount_group: int, vectors: int,
                    features=None) -> list[Path]:
    from lgn import hdl

    return hdl.export(netlist, out, name=name, pipeline=pipeline, features=features, vectors=vectors,
                      popcount_group=popcount_group)


def _packed_predictor(netlist, out=None):
    from lgn.compile import packed

    return lambda bits: packed.predict(netlist, bits)


def _c_predictor(netlist, out=None, *, name: str = "model", word_bits: int = 64, style: str | None = None,
                 cflags=("-O2",)):
    """Compile ``netlist`` here; with ``out``, the files :func:`_export_c` writes there."""
    from lgn.compile import c

    style = style or c.DEFAULT_STYLE
    if out is None:
        return c.build(netlist, name=name, word_bits=word_bits, style=style, cflags=cflags).predict
    paths = _export_c(netlist, out, name=name, word_bits=word_bits, style=style)
    source = next(p for p in paths if p.suffix == ".c")
    library = c.compile_shared(source, Path(out) / f"lib{source.stem}.so", cflags=cflags)
    return c.CModel(library, netlist, source.stem, word_bits).predict


# ------------------------------------------------------------------------------- the table
_NAME = Option("name", "C symbol prefix / Verilog module / BLIF model / DOT graph name (sanitised; "
                       "keywords are avoided).", default="model")

#: Every back end of lgn.compile and lgn.hdl, by ``--target`` name, in the order help lists them.
TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("packed", ".npz netlist file for the packed executor (lgn eval FILE --backend packed)",
           "the bit-parallel executor", writes="file", export=f"{__name__}:_save_npz", predictor=f"{__name__}:_packed_predictor",
           label="packed, optimized"),
    Target("netlist", "the readable text form (every command reads it, like .npz)",
           writes="file", export=f"{__name__}:_save_text"),
    Target("blif", "BLIF for ABC/yosys", writes="file", export=f"{__name__}:_write_blif",
           options=(_NAME,)),
    Target("aiger", "AIGER for ABC (.aag ASCII, else binary)", writes="file",
           export=f"{__name__}:_write_aiger"),
    Target("dot", "Graphviz DOT of a small netlist: every gate, input and output (dot -Tsvg)",
           writes="file", export=f"{__name__}:_write_dot",
           options=(_NAME, Option("max_nodes", "largest netlist (gates, inputs and outputs) to draw.",
                                  int, Ref("lgn.compile.dot:MAX_NODES"), minimum=1))),
    Target("c", "NAME.h + NAME.c (C99)", "the generated C, compiled here", inputs="features",
           writes="directory", export=f"{__name__}:_export_c",
           predictor=f"{__name__}:_c_predictor", label="C (compiled here)",
           available="lgn.compile.c:find_compiler",
           eval_options={"word_bits": 512, "cflags": ("-O2", "-march=native")},
           options=(_NAME,
                    Option("word_bits", "samples per machine word (128+ use vector extensions).", int,
                           64, Ref("lgn.compile.c:WORD_BITS")),
                    Option("style", "levelized loops over op-grouped index arrays (fast to compile and "
                                    "run), unrolled straight-line code, or a compact gate table.",
                           str, Ref("lgn.compile.c:DEFAULT_STYLE"), Ref("lgn.compile.c:STYLES")))),
    Target("verilog", "NAME.v, NAME_tb.v and a report", inputs="features", writes="directory",
           export=f"{__name__}:_export_verilog", test_vectors=True,
           options=(_NAME,
                    Option("pipeline", "logic levels between pipeline registers (0: combinational).",
                           int, 0, minimum=0),
                    Option("popcount_group", "popcount compressor size before the adder tree (6 suits "
                                             "LUT6 FPGAs; 0, a plain adder tree, is smaller on LUT4 "
                                             "parts such as iCE40).",
                           int, Ref("lgn.hdl.popcount:MAX_GROUP"), minimum=0),
                    Option("vectors", "testbench vectors, from the model's test set when it can be "
                                      "loaded.", int, 1000, minimum=1))),
)}

#: ``lgn synth --target`` flows and ``--device`` iCE40 parts, from :mod:`lgn.hdl.synth`.
SYNTH_TARGETS = Ref("lgn.hdl.synth:TARGETS")
SYNTH_DEVICES = Ref("lgn.hdl.synth:ICE40_DEVICES")
#: Simulators of the Verilog testbench (``lgn check``, ``lgn export --simulate``).
SIMULATORS = Ref("lgn.hdl.verilator:SIMULATORS")
