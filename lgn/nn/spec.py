"""The model spec: one small grammar for an architecture, its JSON form, shapes and the builder.

A spec is a sequence of blocks separated by white space; each block is a name with optional
arguments in parentheses and an optional repeat count::

    spec   = block { block }
    block  = name [ "(" [ arg { "," arg } ] ")" ] [ "*" count ]
    arg    = value | key "=" value

Positional arguments fill a block's parameters in the order listed below; keywords name them
(the short key or the full name). ``dense(8000)*4`` is four ``dense(8000)`` blocks.

==============================  ============================================================
block                           meaning
==============================  ============================================================
``thermo(bits, method)``        thermometer encoder, ``method`` ``uniform`` or ``quantile``;
                                first if present (else the dataset's default encoder). On an
                                image dataset of shape (C, H, W) it yields a (C*bits, H, W)
                                image, channel ``c*bits + t`` being threshold ``t`` of channel
                                ``c``.
``conv(channels, k, s, p, d)``  :class:`~lgn.nn.LogicConv2d`: ``channels`` trees of depth ``d``
                                (default 3) over a ``k x k`` window (default 3) at stride ``s``
                                (1) with zero padding ``p`` (0); needs an image.
``orpool(window, s)``           :class:`~lgn.nn.OrPool2d` over ``window x window`` (default 2)
                                at stride ``s`` (default ``window``); needs an image.
``flatten``                     image (C, H, W) to a vector, channel-major; needed between an
                                image block and ``dense`` or ``groupsum``.
``dense(width)``                a :class:`~lgn.nn.LogicLayer` of ``width`` gates; consecutive
                                widths may differ. Directly after ``thermo`` it reads the
                                encoder's bits (feature-major).
``lut(width, k, m, bits)``      a :class:`~lgn.nn.lut.LutLayer` of ``width`` k-input LUT nodes
                                (``k`` 1..6, default 6); with ``m`` (1..inputs) each LUT input
                                learns its source among ``m`` candidates
                                (:class:`~lgn.nn.connectivity.LearnedLutLayer`). With ``bits``
                                (dividing ``k``; only right after ``thermo``) each run of
                                ``bits`` inputs learns one raw *feature* among ``m``, reading
                                ``bits`` of its thermometer bits: ``lut(2000, k=6, m=16,
                                bits=3)`` nodes are functions of two pixels each.
``learned(width, m)``           ``width`` two-input gates whose operands learn their sources
                                among ``m`` candidates (default 8, at most the inputs):
                                :class:`~lgn.nn.connectivity.LearnedLogicLayer`.
``groupsum(tau)``               the class scores: outputs summed in ``num_classes`` groups,
                                divided by ``tau``; last if present (default: ``tau`` =
                                ``sqrt(outputs / classes)``).
==============================  ============================================================

Example: ``thermo(3, uniform) conv(32, k=3, p=1) orpool(2) flatten dense(2000) groupsum(tau=20)``;
a LUT net with learned wiring: ``thermo(3) lut(600, k=6, m=8) lut(200, k=6, m=8) groupsum``.
``dense``, ``lut`` and ``learned`` are the vector blocks; a learned source's temperature follows
the training schedule (see :func:`lgn.nn.connectivity.temperature_at`).

:func:`parse` reads the text, :meth:`Spec.to_json` / :func:`from_json` give the plain-JSON form
stored in checkpoints, ``str(spec)`` the canonical text. :meth:`Spec.resolve` checks a spec
against a dataset (image shape, classes) and fills in the encoder and ``tau``;
:func:`parameter_shapes` gives the shape of every parameter and buffer of the model a config
describes, by arithmetic (nothing is allocated); :func:`build` makes the model. Every problem is
a :class:`SpecError` whose one-line message names the offending block and why.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

__all__ = ["SpecError", "Spec", "Thermo", "Conv", "OrPool", "Flatten", "Dense", "Lut", "Learned", "GroupSumHead",
           "parse",
           "from_json", "dense_spec", "from_config", "parameter_shapes", "index_bounds", "build",
           "MAX_DEPTH"]

#: Deepest logic tree a ``conv`` block may have (``2**8 = 256`` leaves per output channel).
MAX_DEPTH = 8


class SpecError(ValueError):
    """A malformed or unfitting model spec; the message names the block and the reason."""


def _positive_int(block: str, name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise SpecError(f"{block}: {name} must be {what}, got {value!r}")
    return value


# --------------------------------------------------------------------------------------- blocks
@dataclass(frozen=True)
class Thermo:
    """Thermometer encoder: ``bits`` thresholds per feature, ``'uniform'`` or ``'quantile'``."""

    bits: int | None = None
    method: str | None = None
    NAME = "thermo"
    POSITIONAL = 2
    KEYS = {"bits": "bits", "method": "method"}

    def __post_init__(self):
        if self.bits is not None:
            _positive_int(self.NAME, "bits", self.bits)
        if self.method is not None and self.method not in ("uniform", "quantile"):
            raise SpecError(f"{self.NAME}: method must be 'uniform' or 'quantile', got {self.method!r}")


@dataclass(frozen=True)
class Conv:
    """A :class:`~lgn.nn.LogicConv2d` block."""

    channels: int | None = None
    kernel: int = 3
    stride: int = 1
    padding: int = 0
    depth: int = 3
    NAME = "conv"
    POSITIONAL = 1
    KEYS = {"channels": "channels", "k": "kernel", "kernel": "kernel", "s": "stride", "stride": "stride",
            "p": "padding", "padding": "padding", "d": "depth", "depth": "depth"}

    def __post_init__(self):
        if self.channels is None:
            raise SpecError("conv: missing the number of output channels, as in conv(32, k=3, p=1, d=3)")
        _positive_int(self.NAME, "channels", self.channels)
        _positive_int(self.NAME, "kernel size k", self.kernel)
        _positive_int(self.NAME, "stride s", self.stride)
        _positive_int(self.NAME, "padding p", self.padding, minimum=0)
        _positive_int(self.NAME, "depth d", self.depth)
        if self.depth > MAX_DEPTH:
            raise SpecError(f"conv: depth d must be at most {MAX_DEPTH} (2**d leaves per tree), got {self.depth}")
        if self.padding >= self.kernel:
            raise SpecError(f"conv: padding p={self.padding} must be smaller than the kernel size k={self.kernel}")


@dataclass(frozen=True)
class OrPool:
    """An :class:`~lgn.nn.OrPool2d` block (``stride`` defaults to ``window``)."""

    window: int = 2
    stride: int | None = None
    NAME = "orpool"
    POSITIONAL = 1
    KEYS = {"window": "window", "w": "window", "s": "stride", "stride": "stride"}

    def __post_init__(self):
        _positive_int(self.NAME, "window", self.window)
        if self.stride is None:
            object.__setattr__(self, "stride", self.window)
        _positive_int(self.NAME, "stride s", self.stride)


@dataclass(frozen=True)
class Flatten:
    """Image to vector, channel-major."""

    NAME = "flatten"
    POSITIONAL = 0
    KEYS = {}


@dataclass(frozen=True)
class Dense:
    """A :class:`~lgn.nn.LogicLayer` of ``width`` gates."""

    width: int | None = None
    NAME = "dense"
    POSITIONAL = 1
    KEYS = {"width": "width", "w": "width"}

    def __post_init__(self):
        if self.width is None:
            raise SpecError("dense: missing the width (number of gates), as in dense(8000)")
        _positive_int(self.NAME, "width", self.width)


def _width(block: str, value, example: str) -> None:
    if value is None:
        raise SpecError(f"{block}: missing the width (number of nodes), as in {example}")
    _positive_int(block, "width", value)


def _candidates(block: str, value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise SpecError(f"{block}: m (candidate sources per input) must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class Lut:
    """A :class:`~lgn.nn.lut.LutLayer` of ``width`` k-input LUTs; learned wiring among ``m`` if given."""

    width: int | None = None
    k: int = 6
    m: int | None = None
    bits: int | None = None
    NAME = "lut"
    POSITIONAL = 1
    KEYS = {"width": "width", "w": "width", "k": "k", "m": "m", "candidates": "m", "bits": "bits"}

    def __post_init__(self):
        _width(self.NAME, self.width, "lut(600, k=6, m=8)")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= 6:
            raise SpecError(f"{self.NAME}: k (inputs per LUT) must be an integer in 1..6, got {self.k!r}")
        _candidates(self.NAME, self.m)
        if self.bits is not None:
            if isinstance(self.bits, bool) or not isinstance(self.bits, int) or self.bits < 1 or self.k % self.bits:
                raise SpecError(f"{self.NAME}: bits (thermometer bits per raw feature) must be a positive "
                                f"integer dividing k={self.k}, got {self.bits!r}")
            if self.m is None:
                raise SpecError(f"{self.NAME}: bits={self.bits} needs learned wiring (m=...), "
                                f"as in lut(4000, k=6, m=16, bits=3)")


@dataclass(frozen=True)
class Learned:
    """A :class:`~lgn.nn.connectivity.LearnedLogicLayer`: ``width`` gates, sources among ``m``."""

    width: int | None = None
    m: int = 8
    NAME = "learned"
    POSITIONAL = 1
    KEYS = {"width": "width", "w": "width", "m": "m", "candidates": "m"}

    def __post_init__(self):
        _width(self.NAME, self.width, "learned(2000, m=8)")
        _candidates(self.NAME, self.m)


_VECTOR_BLOCKS = (Dense, Lut, Learned)


@dataclass(frozen=True)
class GroupSumHead:
    """The GroupSum head; ``tau=None`` means ``sqrt(outputs / classes)`` (filled in by resolve)."""

    tau: float | None = None
    NAME = "groupsum"
    POSITIONAL = 0
    KEYS = {"tau": "tau"}

    def __post_init__(self):
        if self.tau is not None:
            if isinstance(self.tau, bool) or not isinstance(self.tau, (int, float)) or not (
                    math.isfinite(self.tau) and self.tau > 0):
                raise SpecError(f"groupsum: tau must be a positive number, got {self.tau!r}")
            object.__setattr__(self, "tau", float(self.tau))


BLOCKS = {cls.NAME: cls for cls in (Thermo, Conv, OrPool, Flatten, Dense, Lut, Learned, GroupSumHead)}
_IMAGE_BLOCKS = (Conv, OrPool)


def _fields(block) -> list[str]:
    return [f.name for f in dataclasses.fields(block)]


def _block_text(block) -> str:
    """Canonical text of one block: the leading ``POSITIONAL`` parameters bare, the rest as short keys."""
    values = dataclasses.asdict(block)
    names = _fields(block)
    short = {}
    for key, name in block.KEYS.items():  # the first (shortest) key listed for each field
        short.setdefault(name, key)
    args = []
    for i, name in enumerate(names):
        value = values[name]
        if value is None:
            continue
        text = f"{value:g}" if isinstance(value, float) else str(value)
        args.append(text if i < block.POSITIONAL else f"{short[name]}={text}")
    return block.NAME + (f"({', '.join(args)})" if args else "")


# --------------------------------------------------------------------------------------- parsing
_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]*)")
_REPEAT = re.compile(r"\s*\*\s*([^\s()*]*)")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _value(text: str):
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if _NUMBER.match(text):
        return float(text)
    return text


def _make_block(name: str, args: list[tuple[str | None, object]], token: str):
    cls = BLOCKS.get(name.lower())
    if cls is None:
        raise SpecError(f"block {token!r}: unknown block {name!r} (expected one of {', '.join(BLOCKS)})")
    names = _fields(cls)
    values, keywords = {}, False
    for position, (key, value) in enumerate(args):
        if key is None:
            if keywords:
                raise SpecError(f"block {token!r}: positional argument {value!r} after a keyword argument")
            if position >= len(names):
                raise SpecError(f"block {token!r}: too many arguments ({cls.NAME} takes "
                                f"{', '.join(names) or 'none'})")
            field = names[position]
        else:
            keywords = True
            field = cls.KEYS.get(key.lower())
            if field is None:
                expected = ", ".join(sorted(set(cls.KEYS))) or "none"
                raise SpecError(f"block {token!r}: unknown argument {key!r} (expected {expected})")
        if field in values:
            raise SpecError(f"block {token!r}: {field} is given twice")
        values[field] = value
    try:
        return cls(**values)
    except SpecError as exc:
        raise SpecError(f"block {token!r}: {str(exc).split(': ', 1)[1]}") from None


def _split_args(text: str, token: str) -> list[tuple[str | None, object]]:
    if not text.strip():
        return []
    args = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise SpecError(f"block {token!r}: empty argument")
        key, eq, value = part.partition("=")
        if eq:
            key, value = key.strip(), value.strip()
            if not re.fullmatch(r"[A-Za-z_]\w*", key) or not value:
                raise SpecError(f"block {token!r}: cannot read argument {part!r}")
            args.append((key, _value(value)))
        else:
            args.append((None, _value(part)))
    return args


def parse(text: str) -> "Spec":
    """Parse the spec grammar (see the module docstring) into a :class:`Spec`.

    Raises
    ------
    SpecError
        Naming the offending block: unknown block or argument, a missing, negative or
        non-integer size, unbalanced parentheses, or blocks in an impossible order.
    """
    if not isinstance(text, str) or not text.strip():
        raise SpecError("the model spec is empty")
    blocks, pos = [], 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        match = _NAME.match(text, pos)
        if match is None:
            rest = text[pos:].strip().split()[0]
            raise SpecError(f"cannot read {rest!r} in the spec: expected a block name such as conv(...)")
        name, pos = match.group(1), match.end()
        args_text = ""
        if text.startswith("(", pos):
            close = text.find(")", pos)
            inner_open = text.find("(", pos + 1)
            if close < 0 or 0 <= inner_open < close:
                raise SpecError(f"block {text[match.start(1):].split(')')[0].strip()!r}: unbalanced parentheses")
            args_text, pos = text[pos + 1 : close], close + 1
        repeat = 1
        rep = _REPEAT.match(text, pos)
        token = text[match.start(1) : rep.end() if rep else pos]
        if rep:
            pos = rep.end()
            if not re.fullmatch(r"\d+", rep.group(1)) or int(rep.group(1)) < 1:
                raise SpecError(f"block {token!r}: the repeat count must be a positive integer")
            repeat = int(rep.group(1))
        if pos < len(text) and not text[pos].isspace():
            raise SpecError(f"block {text[match.start(1):].split()[0]!r}: unexpected {text[pos]!r}")
        block = _make_block(name, _split_args(args_text, token), token)
        blocks.extend([(block, token)] * repeat)
    return Spec._checked(blocks)


def from_json(blocks) -> "Spec":
    """The :class:`Spec` of the plain-JSON form written by :meth:`Spec.to_json`."""
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise SpecError(f"the model spec must be a non-empty list of blocks, got {type(blocks).__name__}")
    parsed = []
    for i, item in enumerate(blocks):
        if not isinstance(item, dict) or "block" not in item:
            raise SpecError(f"spec block {i}: expected an object with a 'block' name, got {item!r:.60}")
        cls = BLOCKS.get(item["block"])
        token = f"#{i} {item['block']}"
        if cls is None:
            raise SpecError(f"spec block {token!r}: unknown block (expected one of {', '.join(BLOCKS)})")
        unknown = set(item) - {"block"} - set(_fields(cls))
        if unknown:
            raise SpecError(f"spec block {token!r}: unknown field {sorted(unknown)[0]!r}")
        try:
            block = cls(**{k: v for k, v in item.items() if k != "block"})
        except SpecError as exc:
            raise SpecError(f"spec block {token!r}: {str(exc).split(': ', 1)[1]}") from None
        parsed.append((block, _block_text(block)))
    return Spec._checked(parsed)


def dense_spec(layers: int, width: int, tau: float | None = None) -> "Spec":
    """The spec of ``layers`` dense layers of ``width`` gates (``--layers/--width``)."""
    return Spec((Dense(width),) * layers + (GroupSumHead(tau),))


# ----------------------------------------------------------------------------------------- Spec
@dataclass(frozen=True)
class Spec:
    """A parsed architecture: a tuple of blocks (``Thermo``, ``Conv``, ..., ``GroupSumHead``).

    A spec always ends with a :class:`GroupSumHead` (added when the text has none). ``resolve``
    makes it complete: a :class:`Thermo` block first and a numeric ``tau``.
    """

    blocks: tuple
    #: The text each block came from (for error messages); not part of equality.
    tokens: tuple = dataclasses.field(default=(), compare=False, repr=False)

    def __post_init__(self):
        if len(self.tokens) != len(self.blocks):
            object.__setattr__(self, "tokens", tuple(_block_text(b) for b in self.blocks))

    def _token(self, index: int) -> str:
        return self.tokens[index]

    @classmethod
    def _checked(cls, pairs) -> "Spec":
        """Check the block order that holds regardless of the dataset."""
        blocks = [b for b, _ in pairs]
        for i, (block, token) in enumerate(pairs):
            if isinstance(block, Thermo) and i != 0:
                raise SpecError(f"block {token!r}: thermo must be the first block")
            if isinstance(block, GroupSumHead) and i != len(pairs) - 1:
                raise SpecError(f"block {token!r}: groupsum must be the last block")
        if not any(isinstance(b, (Conv, *_VECTOR_BLOCKS)) for b in blocks):
            raise SpecError("the spec has no logic layer: add conv(...), dense(...) or lut(...) blocks")
        tokens = [t for _, t in pairs]
        if not isinstance(blocks[-1], GroupSumHead):
            blocks.append(GroupSumHead())
            tokens.append("groupsum")
        return cls(tuple(blocks), tuple(tokens))

    # ------------------------------------------------------------------ forms
    def __str__(self) -> str:
        parts, i = [], 0
        while i < len(self.blocks):
            j = i
            while j + 1 < len(self.blocks) and self.blocks[j + 1] == self.blocks[i]:
                j += 1
            text = _block_text(self.blocks[i])
            parts.append(text + (f"*{j - i + 1}" if j > i else ""))
            i = j + 1
        return " ".join(parts)

    def to_json(self) -> list[dict]:
        """Plain JSON (a list of objects, one per block), as stored in checkpoint configs."""
        return [{"block": b.NAME, **dataclasses.asdict(b)} for b in self.blocks]

    @property
    def thermo(self) -> Thermo | None:
        return self.blocks[0] if isinstance(self.blocks[0], Thermo) else None

    @property
    def head(self) -> GroupSumHead:
        return self.blocks[-1]

    @property
    def layers(self) -> tuple:
        """The blocks between the encoder and the head."""
        return tuple(b for b in self.blocks if not isinstance(b, (Thermo, GroupSumHead)))

    @property
    def has_gate_logits(self) -> bool:
        """Whether some block learns two-input gates (the ones ``parametrization`` shapes)."""
        return any(isinstance(b, (Conv, Dense, Learned)) for b in self.blocks)

    @property
    def has_luts(self) -> bool:
        """Whether some block is a layer of k-input LUT nodes."""
        return any(isinstance(b, Lut) for b in self.blocks)

    def _layer_tokens(self) -> tuple:
        return tuple(t for b, t in zip(self.blocks, self.tokens) if not isinstance(b, (Thermo, GroupSumHead)))

    def with_encoder(self, bits: int | None = None, method: str | None = None) -> "Spec":
        """This spec with the thermo block's ``bits``/``method`` replaced where given."""
        if self.thermo is None and bits is None and method is None:
            return self
        thermo = self.thermo or Thermo()
        thermo = Thermo(bits if bits is not None else thermo.bits, method if method is not None else thermo.method)
        start = 1 if self.thermo else 0
        return Spec((thermo,) + self.blocks[start:], (_block_text(thermo),) + self.tokens[start:])

    def with_tau(self, tau: float) -> "Spec":
        """This spec with the GroupSum temperature ``tau``."""
        head = GroupSumHead(tau)
        return Spec(self.blocks[:-1] + (head,), self.tokens[:-1] + (_block_text(head),))

    # ------------------------------------------------------------------ shapes
    def shapes(self, num_features: int, num_bits: int, image_shape=None, num_classes: int | None = None):
        """Input and output shape of every layer block, checking that each fits.

        Returns a list of ``(block, in_shape, out_shape)`` for :attr:`layers`; an image shape is
        ``(C, H, W)``, a vector shape ``(n,)``. Raises :class:`SpecError` naming the block when
        an image block gets a vector, a kernel or window is larger than its input, or the last
        outputs are not divisible by ``num_classes``.
        """
        if image_shape is not None:
            channels, height, width = (int(v) for v in image_shape)
            if channels * height * width != num_features:
                raise SpecError(f"image shape {tuple(image_shape)} does not match the {num_features} features")
            shape = (channels * num_bits, height, width)
        else:
            shape = (num_features * num_bits,)
        rows, previous = [], "thermo"
        for block, token in zip(self.layers, self._layer_tokens()):
            if isinstance(block, _VECTOR_BLOCKS) and previous == "thermo":
                shape = (math.prod(shape),)  # dense reads the encoder's bits as they come
            if isinstance(block, _IMAGE_BLOCKS) and len(shape) != 3:
                if image_shape is None and previous == "thermo":
                    raise SpecError(f"block {token!r}: {block.NAME} needs an image dataset, but this dataset "
                                    "has no image shape (tabular features)")
                raise SpecError(f"block {token!r}: {block.NAME} needs an image, but {previous} gives a vector")
            if isinstance(block, Conv):
                _, height, width = shape
                padded = (height + 2 * block.padding, width + 2 * block.padding)
                if min(padded) < block.kernel:
                    pad = f" ({padded[0]}x{padded[1]} with padding {block.padding})" if block.padding else ""
                    raise SpecError(f"block {token!r}: the {height}x{width} input{pad} is smaller than the "
                                    f"{block.kernel}x{block.kernel} kernel")
                out = ((padded[0] - block.kernel) // block.stride + 1, (padded[1] - block.kernel) // block.stride + 1)
                new = (block.channels, *out)
            elif isinstance(block, OrPool):
                channels, height, width = shape
                if min(height, width) < block.window:
                    raise SpecError(f"block {token!r}: the {height}x{width} input is smaller than the "
                                    f"{block.window}x{block.window} window")
                new = (channels, (height - block.window) // block.stride + 1,
                       (width - block.window) // block.stride + 1)
            elif isinstance(block, Flatten):
                if len(shape) != 3:
                    raise SpecError(f"block {token!r}: nothing to flatten, {previous} already gives a vector")
                new = (math.prod(shape),)
            else:  # Dense, Lut, Learned
                if len(shape) != 1:
                    raise SpecError(f"block {token!r}: {block.NAME} needs a vector; put flatten before it")
                m = getattr(block, "m", None)
                if getattr(block, "bits", None) is not None:
                    if previous != "thermo":
                        raise SpecError(f"block {token!r}: bits= reads raw features' thermometer bits, so it "
                                        f"must come right after the encoder, not after {previous}")
                    if block.bits > num_bits:
                        raise SpecError(f"block {token!r}: bits={block.bits} is more than the {num_bits} "
                                        f"thermometer bits per feature")
                    if m > num_features:
                        raise SpecError(f"block {token!r}: m={m} candidate features is more than the "
                                        f"{num_features} features")
                if m is not None and m > shape[0]:
                    raise SpecError(f"block {token!r}: m={m} candidate sources is more than the {shape[0]} "
                                    f"inputs {previous} gives")
                new = (block.width,)
            rows.append((block, shape, new))
            shape, previous = new, token
        if len(shape) != 1:
            raise SpecError(f"block {previous!r}: groupsum needs a vector; put flatten before it")
        if num_classes is not None and shape[0] % num_classes:
            what = "width" if previous.startswith(("dense", "lut", "learned")) else "output count"
            raise SpecError(f"block {previous!r}: {what} {shape[0]} is not divisible by the {num_classes} classes")
        return rows

    def num_gates(self, num_features: int, num_bits: int, image_shape=None) -> int:
        """Gates of the lowered (unrolled) netlist, before optimization."""
        total = 0
        for block, _, out in self.shapes(num_features, num_bits, image_shape):
            if isinstance(block, Conv):
                total += math.prod(out) * (2 ** block.depth - 1)
            elif isinstance(block, OrPool):
                total += math.prod(out) * (block.window ** 2 - 1)
            elif isinstance(block, _VECTOR_BLOCKS):
                total += block.width
        return total

    def resolve(self, num_features: int, num_classes: int, image_shape=None, default_bits: int | None = None,
                default_method: str | None = None) -> "Spec":
        """Check this spec against a dataset and return it complete (thermo block, numeric tau).

        ``default_bits``/``default_method`` fill what the thermo block leaves open (the dataset's
        default encoder).
        """
        spec = self.with_encoder(self.thermo.bits if self.thermo and self.thermo.bits else default_bits,
                                 self.thermo.method if self.thermo and self.thermo.method else default_method)
        if spec.thermo.bits is None or spec.thermo.method is None:
            raise SpecError("thermo: the encoder's bits and method are not known (give thermo(BITS, METHOD))")
        rows = spec.shapes(num_features, spec.thermo.bits, image_shape, num_classes)
        if spec.head.tau is None:
            spec = spec.with_tau(round(math.sqrt(rows[-1][2][0] / num_classes), 3))
        return spec

    # ------------------------------------------------------------ parameters
    def parameter_shapes(self, num_features: int, num_classes: int, parametrization: str = "gates",
                         image_shape=None) -> dict[str, tuple]:
        """Shape of every parameter and buffer of the built model, by name, without building it."""
        if self.thermo is None or self.thermo.bits is None:
            raise SpecError("parameter_shapes needs a resolved spec (with thermo bits)")
        per_gate = 4 if parametrization == "table" else 16
        shapes = {"encoder.thresholds": (num_features, self.thermo.bits)}
        for i, (block, _, _) in enumerate(self._model_rows(num_features, num_classes, image_shape)):
            if isinstance(block, Conv):  # in state_dict order: parameters, then buffers
                leaves = 2 ** block.depth
                shapes[f"layers.{i}.weights"] = (block.channels, leaves - 1, per_gate)
                for name in ("leaf_channel", "leaf_row", "leaf_col"):
                    shapes[f"layers.{i}.{name}"] = (block.channels, leaves)
            elif isinstance(block, Dense):
                shapes[f"layers.{i}.weights"] = (block.width, per_gate)
                shapes[f"layers.{i}.idx_a"] = shapes[f"layers.{i}.idx_b"] = (block.width,)
            elif isinstance(block, Lut) and block.m is None:
                shapes[f"layers.{i}.weights"] = (block.width, 1 << block.k)
                shapes[f"layers.{i}.inputs"] = (block.width, block.k)
            elif isinstance(block, Lut):
                shapes[f"layers.{i}.selector.logits"] = (block.width * block.k // (block.bits or 1), block.m)
                shapes[f"layers.{i}.selector.candidates"] = (block.width * block.k, block.m)
                shapes[f"layers.{i}.luts.weights"] = (block.width, 1 << block.k)
                shapes[f"layers.{i}.luts.inputs"] = (block.width, block.k)
            elif isinstance(block, Learned):
                shapes[f"layers.{i}.selector.logits"] = (2 * block.width, block.m)
                shapes[f"layers.{i}.selector.candidates"] = (2 * block.width, block.m)
                shapes[f"layers.{i}.gates.weights"] = (block.width, per_gate)
                shapes[f"layers.{i}.gates.idx_a"] = shapes[f"layers.{i}.gates.idx_b"] = (block.width,)
        return shapes

    def index_bounds(self, num_features: int, num_classes: int, image_shape=None) -> dict[str, int]:
        """For every index buffer of the built model, the bound its entries must lie below."""
        bounds = {}
        for i, (block, in_shape, _) in enumerate(self._model_rows(num_features, num_classes, image_shape)):
            if isinstance(block, Conv):
                bounds.update({f"layers.{i}.leaf_channel": in_shape[0], f"layers.{i}.leaf_row": block.kernel,
                               f"layers.{i}.leaf_col": block.kernel})
            elif isinstance(block, Dense):
                bounds[f"layers.{i}.idx_a"] = bounds[f"layers.{i}.idx_b"] = in_shape[0]
            elif isinstance(block, Lut) and block.m is None:
                bounds[f"layers.{i}.inputs"] = in_shape[0]
            elif isinstance(block, Lut):
                bounds[f"layers.{i}.selector.candidates"] = in_shape[0]
                bounds[f"layers.{i}.luts.inputs"] = block.width * block.k
            elif isinstance(block, Learned):
                bounds[f"layers.{i}.selector.candidates"] = in_shape[0]
                bounds[f"layers.{i}.gates.idx_a"] = bounds[f"layers.{i}.gates.idx_b"] = 2 * block.width
        return bounds

    def _model_rows(self, num_features, num_classes, image_shape):
        """:meth:`shapes` with a ``None`` row where the model has its ThermometerImage layer."""
        rows = self.shapes(num_features, self.thermo.bits, image_shape, num_classes)
        if rows and isinstance(rows[0][0], (*_IMAGE_BLOCKS, Flatten)):
            rows.insert(0, (None, None, None))
        return rows


# ------------------------------------------------------------------------------ configs, models
def from_config(config: dict) -> Spec:
    """The spec a training config describes: its ``arch``, else ``layers`` x ``width`` dense layers.

    Dense nets given by ``--layers/--width`` (and every config written before specs existed)
    have no ``arch``: their ``layers``, ``width`` and ``tau`` give the model they always did.
    """
    arch = config.get("arch")
    if arch is None:
        for key in ("layers", "width"):
            if isinstance(config.get(key), bool) or not isinstance(config.get(key), int):
                raise SpecError(f"config has no arch and no integer {key!r}")
        spec = dense_spec(config["layers"], config["width"], config.get("tau"))
    elif any(config.get(key) is not None for key in ("layers", "width")):
        raise SpecError("config has both an arch and layers/width: one of them must be null")
    elif isinstance(arch, str):
        spec = parse(arch)
    else:
        spec = from_json(arch)
    return spec


def _model_spec(config: dict, num_features: int, num_bits: int) -> Spec:
    """The resolved spec of ``config`` for an encoder of ``num_features`` x ``num_bits``."""
    spec = from_config(config)
    thermo = spec.thermo
    if thermo is not None and thermo.bits is not None and thermo.bits != num_bits:
        raise SpecError(f"the spec's thermo has {thermo.bits} bits, the encoder {num_bits}")
    return spec.resolve(num_features, config["num_classes"], config.get("image_shape"), num_bits,
                        (thermo.method if thermo else None) or "uniform")


def parameter_shapes(config: dict, num_features: int, num_bits: int) -> dict[str, tuple]:
    """Shapes of the parameters and buffers of the model ``config`` describes (see :meth:`Spec.parameter_shapes`).

    ``num_features`` x ``num_bits`` is the encoder's threshold shape; nothing is allocated, so a
    checkpoint's weights can be checked against its config before anything is built.
    """
    return _model_spec(config, num_features, num_bits).parameter_shapes(
        num_features, config["num_classes"], config.get("parametrization", "gates"), config.get("image_shape"))


def index_bounds(config: dict, num_features: int, num_bits: int) -> dict[str, int]:
    """Upper bounds (exclusive) of the index buffers of the model ``config`` describes."""
    return _model_spec(config, num_features, num_bits).index_bounds(
        num_features, config["num_classes"], config.get("image_shape"))


def build(config: dict, encoder):
    """Build the (untrained) :class:`~lgn.nn.LogicStack` that ``config`` describes around ``encoder``.

    ``config`` holds ``arch`` (or ``layers``/``width``/``tau``), ``num_classes``, ``image_shape``,
    ``connections``, ``init``, ``parametrization``, ``seed`` and ``feature_dtype``. Layers draw
    their wiring and weights in order from one generator seeded with ``seed``, so a dense spec
    builds exactly the :class:`~lgn.nn.LogicNet` of the same seed.
    """
    import torch
    from torch import nn

    from .connectivity import LearnedLogicLayer, LearnedLutLayer
    from .lut import LutLayer
    from .modules import LogicConv2d, LogicLayer, LogicStack, OrPool2d, ThermometerImage

    spec = _model_spec(config, encoder.num_features, encoder.num_bits)
    image_shape = config.get("image_shape")
    generator = torch.Generator().manual_seed(config.get("seed", 0))
    options = dict(init=config.get("init", "random"), parametrization=config.get("parametrization", "gates"),
                   generator=generator)
    layers = []
    for block, in_shape, _ in spec._model_rows(encoder.num_features, config["num_classes"], image_shape):
        if block is None:
            layers.append(ThermometerImage(image_shape, encoder.num_bits))
        elif isinstance(block, Conv):
            layers.append(LogicConv2d(in_shape[0], block.channels, block.kernel, block.stride, block.padding,
                                      block.depth, **options))
        elif isinstance(block, OrPool):
            layers.append(OrPool2d(block.window, block.stride))
        elif isinstance(block, Flatten):
            layers.append(nn.Flatten(1))
        elif isinstance(block, Dense):
            layers.append(LogicLayer(in_shape[0], block.width, connections=config.get("connections", "random"),
                                     **options))
        elif isinstance(block, Learned):
            layers.append(LearnedLogicLayer(in_shape[0], block.width, candidates=block.m, **options))
        elif block.m is None:
            layers.append(LutLayer(in_shape[0], block.width, k=block.k, connections=config.get("connections", "random"),
                                   init=options["init"], generator=generator))
        else:
            feature_bits = None if block.bits is None else (block.bits, spec.thermo.bits)
            layers.append(LearnedLutLayer(in_shape[0], block.width, k=block.k, candidates=block.m,
                                          init=options["init"], generator=generator, feature_bits=feature_bits))
    return LogicStack(encoder, layers, config["num_classes"], spec.head.tau,
                      feature_dtype=config.get("feature_dtype", "float32"), image_shape=image_shape)
