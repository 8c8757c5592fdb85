"""Stateless logic-gate operations; the modules in :mod:`lgn.nn.modules` call these in one line."""

from __future__ import annotations

import threading

import torch

from . import gates

__all__ = [
    "gate_coefficients", "hard_gate_coefficients", "table_coefficients", "hard_table_coefficients",
    "table_gate_ops", "logic_layer", "logic_layer_feature_major", "logic_layer_batch_major",
    "logic_layer_reference", "group_sum_feature_major",
    "group_sum", "thermometer", "thermometer_image",
    "conv_output_size", "conv_leaf_index", "conv_patch_index", "logic_conv2d", "logic_conv2d_unfold",
    "logic_tree", "or_pool2d",
]

_COEFFICIENTS = torch.from_numpy(gates.COEFFICIENTS.copy())
_TRUTH = torch.from_numpy(gates.TRUTH_TABLE.astype("float64"))


def gate_coefficients(weights: torch.Tensor) -> torch.Tensor:
    """Return ``(out, 4)`` coefficients over ``{1, a, b, ab}`` of ``softmax(weights)`` ``(out, 16)``."""
    return torch.softmax(weights, dim=-1) @ _COEFFICIENTS.to(weights)


def hard_gate_coefficients(weights: torch.Tensor) -> torch.Tensor:
    """Return the coefficients of the most likely gate of each neuron (the discretized layer)."""
    return _COEFFICIENTS.to(weights)[weights.argmax(dim=-1)]


def _bilinear(table: torch.Tensor) -> torch.Tensor:
    """Coefficients over ``{1, a, b, ab}`` of the table ``(..., 4)`` of g(0,0), g(0,1), g(1,0), g(1,1)."""
    t00, t01, t10, t11 = table.unbind(-1)
    return torch.stack([t00, t10 - t00, t01 - t00, t11 - t10 - t01 + t00], dim=-1)


def table_coefficients(weights: torch.Tensor) -> torch.Tensor:
    """Coefficients of gates parametrized by their truth table: ``g(a,b) = sigmoid(weights[2a+b])``.

    ``weights`` is ``(out, 4)``: one logit per input pattern instead of one per gate (the
    truth-table parametrization of light DLGNs), which trains in far fewer steps.
    """
    return _bilinear(torch.sigmoid(weights))


def hard_table_coefficients(weights: torch.Tensor) -> torch.Tensor:
    """Coefficients of the discretized truth-table gates (each entry 1 where its logit is > 0)."""
    return _bilinear((weights > 0).to(weights.dtype))


def table_gate_ops(weights: torch.Tensor) -> torch.Tensor:
    """Gate number of each discretized truth-table gate: bit ``3 - (2a+b)`` holds g(a, b)."""
    bits = (weights > 0).long()
    return (bits * torch.tensor([8, 4, 2, 1], device=weights.device)).sum(-1)


#: Elements per temporary of the chunked CPU kernel (1 MiB of float32): its temporaries
#: (gathered operands, their products with the gradient, operand gradients) stay in the per-core
#: cache, and chunks are few enough that PyTorch's per-op overhead, and with two threads the
#: wake-up of the second one at every op, stay small. Measured (CPU time per training step of
#: bench/train.py's net, shared 2-core machine): 2^18 beats 2^19 by 1.1-1.25x on one thread at
#: batch 128 and 1024 and ties on two; 2^16 loses on two threads; one chunk per layer (no
#: chunking) is 1.3-1.5x slower.
CPU_CHUNK_ELEMENTS = 1 << 18

_scratch_buffers = threading.local()


def _scratch(slot: int, numel: int, like: torch.Tensor) -> torch.Tensor:
    """A flat buffer of ``numel`` elements of ``like``'s dtype and device, reused across calls.

    The kernel's temporaries are the same few chunk-sized buffers at every call of every layer;
    keeping them (per thread, at most two of ``2 * CPU_CHUNK_ELEMENTS`` each) instead of
    allocating them anew spares the allocator, and on CPU the page faults of fresh memory: at
    batch 128 that was about a fifth of a training step's CPU time. Off the CPU (one chunk per
    layer, and a caching allocator) the buffer is simply allocated.
    """
    if like.device.type != "cpu":
        return like.new_empty(numel)
    buffers = getattr(_scratch_buffers, "buffers", None)
    if buffers is None:
        buffers = _scratch_buffers.buffers = {}
    key = (slot, like.dtype, like.device)
    buffer = buffers.get(key)
    if buffer is None or buffer.numel() < numel:
        buffer = buffers[key] = like.new_empty(numel)
    return buffer[:numel]


def _chunks(x: torch.Tensor, gates: int) -> list[tuple[int, int]]:
    """Gate ranges ``[start, stop)``: one off the CPU (launches dominate), cache-sized on it."""
    rows = gates if x.device.type != "cpu" else CPU_CHUNK_ELEMENTS // max(1, x.shape[1])
    rows = max(1, min(gates, rows))
    return [(s, min(s + rows, gates)) for s in range(0, gates, rows)]


def _blocked(first: torch.Tensor, second: torch.Tensor, chunks) -> torch.Tensor:
    """Indices ordered chunk by chunk: ``first[s:e], second[s:e]`` for each chunk ``[s, e)``."""
    return torch.cat([t for s, e in chunks for t in (first[s:e], second[s:e])])


class _LogicLayerFeatureMajor(torch.autograd.Function):
    """``y[j] = c0 + c1*a + c2*b + c3*a*b`` with rows ``a = x[idx_a[j]]``, ``b = x[idx_b[j]]``.

    Activations are feature-major, ``(features, N)``, so each gather and each scatter moves
    whole contiguous rows. The gates are processed in chunks whose temporaries stay in the
    cache, written into scratch buffers kept across calls (:func:`_scratch`), with at most one
    broadcast operand per elementwise op (PyTorch's vectorized path). Only ``x`` is saved: gathering ``a`` and
    ``b`` again in the backward pass costs less than keeping them.
    """

    @staticmethod
    def forward(ctx, x, idx_a, idx_b, coef):
        gates, n = idx_a.numel(), x.shape[1]
        chunks = _chunks(x, gates)
        order = _blocked(idx_a, idx_b, chunks)
        c = coef.t().contiguous().unsqueeze(-1)  # (4, gates, 1): c0, c1, c2, c3
        y = x.new_empty(gates, n)
        size = 2 * (chunks[0][1] - chunks[0][0]) * n if chunks else 0
        gathered, mixed = _scratch(0, size, x), _scratch(1, size, x)
        for s, e in chunks:
            r = e - s
            both = torch.index_select(x, 0, order[2 * s:2 * e], out=gathered[:2 * r * n].view(2 * r, n))
            # [c0 + c2*b, c1 + c3*b], then y = (c0 + c2*b) + a * (c1 + c3*b)
            w = torch.mul(both[r:], c[2:4, s:e], out=mixed[:2 * r * n].view(2, r, n)).add_(c[0:2, s:e])
            torch.addcmul(w[0], both[:r], w[1], out=y[s:e])
        ctx.save_for_backward(x, idx_a, idx_b, order, c)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, idx_a, idx_b, order, c = ctx.saved_tensors
        need_x, need_coef = ctx.needs_input_grad[0], ctx.needs_input_grad[3]
        grad = grad.contiguous()
        gates, n = grad.shape
        chunks = _chunks(x, gates)
        grad_x = torch.zeros_like(x) if need_x else None
        # [dL/db, dL/da] = g * [c2, c1] + c3 * [g*a, g*b], scattered to [idx_b, idx_a]
        scatter = _blocked(idx_b, idx_a, chunks) if need_x else None
        c21, c3 = c[1:3].flip(0), c[3]
        sums = []  # per chunk: [sum g*a, sum g*b] (2, r) and sum g*a*b (r,)
        size = 2 * (chunks[0][1] - chunks[0][0]) * n if chunks else 0
        gathered, products = _scratch(0, size, x), _scratch(1, size, x)
        for s, e in chunks:
            r = e - s
            g = grad[s:e]
            both = torch.index_select(x, 0, order[2 * s:2 * e], out=gathered[:2 * r * n].view(2 * r, n))
            gab = torch.mul(both.view(2, r, n), g, out=products[:2 * r * n].view(2, r, n))  # [g*a, g*b]
            if need_coef:
                sums.append((gab.sum(2), torch.mul(gab[0], both[r:], out=both[:r]).sum(1)))
            if need_x:
                back = torch.mul(g, c21[:, s:e], out=gathered[:2 * r * n].view(2, r, n)).addcmul_(gab, c3[s:e])
                grad_x.index_add_(0, scatter[2 * s:2 * e], back.view(2 * r, n))
        grad_coef = None
        if need_coef:
            linear = torch.cat([p for p, _ in sums], 1) if sums else grad.new_empty(2, 0)
            product = torch.cat([q for _, q in sums]) if sums else grad.new_empty(0)
            grad_coef = torch.stack([grad.sum(1), linear[0], linear[1], product], 1)
        return grad_x, None, None, grad_coef


def logic_layer_feature_major(x: torch.Tensor, idx_a: torch.Tensor, idx_b: torch.Tensor,
                              coef: torch.Tensor) -> torch.Tensor:
    """:func:`logic_layer` on feature-major activations: ``(in_dim, N) -> (out_dim, N)``.

    The fast kernel: :class:`~lgn.nn.LogicNet` keeps its activations in this layout from the
    encoder to the group sum, so no layer pays for a transpose.

    Parameters
    ----------
    x : Tensor, shape (in_dim, N)
        Inputs in [0, 1], one row per feature (made contiguous if it is not).
    idx_a, idx_b : LongTensor, shape (out_dim,)
        Input index of each gate's first and second operand.
    coef : Tensor, shape (out_dim, 4)
        Gate coefficients over ``{1, a, b, ab}``.

    Returns
    -------
    Tensor, shape (out_dim, N), contiguous
    """
    if x.dim() != 2:
        raise ValueError(f"logic_layer_feature_major expects x of shape (in_dim, N), got {tuple(x.shape)}")
    dtype = torch.promote_types(x.dtype, coef.dtype)  # as the elementwise formula would
    return _LogicLayerFeatureMajor.apply(x.to(dtype).contiguous(), idx_a, idx_b, coef.to(dtype))


def logic_layer(x: torch.Tensor, idx_a: torch.Tensor, idx_b: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """Apply a layer of relaxed two-input gates.

    Parameters
    ----------
    x : Tensor, shape (..., in_dim)
        Inputs in [0, 1].
    idx_a, idx_b : LongTensor, shape (out_dim,)
        Input index of each gate's first and second operand.
    coef : Tensor, shape (out_dim, 4)
        Gate coefficients over ``{1, a, b, ab}`` (see :func:`gate_coefficients`).

    Returns
    -------
    Tensor, shape (..., out_dim), contiguous
        Computed by :func:`logic_layer_feature_major` between two transposes.
    """
    flat = x.reshape(-1, x.shape[-1])
    y = logic_layer_feature_major(flat.t(), idx_a, idx_b, coef)
    return y.t().contiguous().view(*x.shape[:-1], idx_a.numel())


class _LogicLayerBatchMajor(torch.autograd.Function):
    """The first kernel, kept as the baseline of ``bench/train.py``: batch-major gathers along
    the last dimension, ``zeros_like + index_add_`` along it in the backward pass."""

    @staticmethod
    def forward(ctx, x, idx_a, idx_b, coef):
        a = x.index_select(-1, idx_a)
        b = x.index_select(-1, idx_b)
        c0, c1, c2, c3 = coef.unbind(-1)
        ctx.save_for_backward(x, idx_a, idx_b, coef)
        # y = a*(c1 + c3*b) + (c0 + c2*b)
        return torch.addcmul(c0 + c2 * b, a, torch.addcmul(c1, c3, b))

    @staticmethod
    def backward(ctx, grad):
        x, idx_a, idx_b, coef = ctx.saved_tensors
        a = x.index_select(-1, idx_a)
        b = x.index_select(-1, idx_b)
        c0, c1, c2, c3 = coef.unbind(-1)
        grad_x = grad_coef = None
        batch_dims = tuple(range(grad.dim() - 1))
        if ctx.needs_input_grad[3]:
            ga_b = grad * a
            grad_coef = torch.stack(
                [grad.sum(batch_dims), ga_b.sum(batch_dims), (grad * b).sum(batch_dims), (ga_b * b).sum(batch_dims)],
                dim=-1,
            )
        if ctx.needs_input_grad[0]:
            grad_a = grad * torch.addcmul(c1, c3, b)
            grad_b = grad * torch.addcmul(c2, c3, a)
            grad_x = torch.zeros_like(x).index_add_(-1, idx_a, grad_a).index_add_(-1, idx_b, grad_b)
        return grad_x, None, None, grad_coef


def logic_layer_batch_major(x: torch.Tensor, idx_a: torch.Tensor, idx_b: torch.Tensor,
                            coef: torch.Tensor) -> torch.Tensor:
    """:func:`logic_layer` as first written (batch-major, ``(..., in_dim) -> (..., out_dim)``).

    Same values and gradients, about half the speed; kept as the same-run baseline of
    ``bench/train.py`` and as the formulation the fast kernel is tested against.
    """
    return _LogicLayerBatchMajor.apply(x, idx_a, idx_b, coef)


def logic_layer_reference(x, idx_a, idx_b, weights):
    """The naive definition: evaluate all 16 relaxed gates and mix them by ``softmax(weights)``."""
    a = x[..., idx_a].unsqueeze(-1)
    b = x[..., idx_b].unsqueeze(-1)
    t = _TRUTH.to(x)
    # g_i(a,b) = sum over the four input patterns of their probability times the truth value
    pattern = torch.cat([(1 - a) * (1 - b), (1 - a) * b, a * (1 - b), a * b], dim=-1)  # (..., out, 4)
    outputs = pattern @ t.T  # (..., out, 16): all 16 gate outputs materialized
    return (outputs * torch.softmax(weights, dim=-1)).sum(-1)


def group_sum(x: torch.Tensor, k: int, tau: float) -> torch.Tensor:
    """Sum ``x`` ``(..., n)`` in ``k`` contiguous groups and divide by ``tau``: ``(..., k)``."""
    return x.unflatten(-1, (k, x.shape[-1] // k)).sum(-1) / tau


def group_sum_feature_major(x: torch.Tensor, k: int, tau: float) -> torch.Tensor:
    """:func:`group_sum` of feature-major ``x`` ``(n, N)``: returns ``(k, N)``."""
    return x.view(k, x.shape[0] // k, x.shape[1]).sum(1) / tau


def thermometer(x: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Encode ``x`` ``(..., F)`` as bits ``x[f] > thresholds[f, t]``, flattened feature-major."""
    return (x.unsqueeze(-1) > thresholds).flatten(-2).to(thresholds.dtype)


def thermometer_image(bits: torch.Tensor, image_shape, num_bits: int) -> torch.Tensor:
    """View thermometer bits ``(N, C*H*W*num_bits)`` of ``(C, H, W)`` images as ``(N, C*num_bits, H, W)``.

    The bits come feature-major from :func:`thermometer` (feature ``(c*H + y)*W + x``, threshold
    ``t`` innermost); channel ``c*num_bits + t`` of the result is threshold ``t`` of image
    channel ``c``. Works on any dtype (lowering applies it to node ids).
    """
    channels, height, width = image_shape
    image = bits.reshape(bits.shape[0], channels, height, width, num_bits)
    return image.permute(0, 1, 4, 2, 3).reshape(bits.shape[0], channels * num_bits, height, width)


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Output positions along one axis of a ``kernel_size`` window at ``stride`` over padded ``size``."""
    return (size + 2 * padding - kernel_size) // stride + 1


def conv_leaf_index(in_shape, leaf_channel: torch.Tensor, leaf_row: torch.Tensor, leaf_col: torch.Tensor,
                    kernel_size: int, stride: int, padding: int) -> torch.Tensor:
    """Flat input position of every tree leaf at every output position of a logic convolution.

    Parameters
    ----------
    in_shape : (C, H, W)
        Shape of one input image.
    leaf_channel, leaf_row, leaf_col : LongTensor, shape (out_channels, leaves)
        Each leaf's input channel and its row and column inside the ``kernel_size`` window.
    kernel_size, stride, padding : int

    Returns
    -------
    LongTensor, shape (H_out * W_out, out_channels, leaves)
        Index into the image flattened channel-major, ``c*H*W + y*W + x``; ``C*H*W`` (one past
        the end) marks a leaf that falls on the zero padding.
    """
    channels, height, width = in_shape
    out_h = conv_output_size(height, kernel_size, stride, padding)
    out_w = conv_output_size(width, kernel_size, stride, padding)
    device = leaf_channel.device
    y = (torch.arange(out_h, device=device) * stride - padding).view(-1, 1, 1, 1) + leaf_row
    x = (torch.arange(out_w, device=device) * stride - padding).view(1, -1, 1, 1) + leaf_col
    index = leaf_channel * (height * width) + y * width + x
    inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
    index = torch.where(inside, index, channels * height * width)
    return index.reshape(out_h * out_w, *leaf_channel.shape)


def conv_patch_index(leaf_channel: torch.Tensor, leaf_row: torch.Tensor, leaf_col: torch.Tensor,
                     kernel_size: int) -> torch.Tensor:
    """Each leaf's row in :func:`torch.nn.functional.unfold`'s patch (``c*k*k + row*k + col``)."""
    return (leaf_channel * kernel_size + leaf_row) * kernel_size + leaf_col


def logic_tree(h: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """Reduce ``out`` trees, level by level, from their lowest gates to their roots.

    ``h`` ``(..., out * m)`` holds the outputs of each tree's ``m`` lowest gates (tree-major);
    ``coef`` ``(out, m - 1, 4)`` the coefficients of the gates above them, level by level: gate
    ``j`` of a level reads outputs ``2j`` and ``2j + 1`` of the level below. Returns ``(..., out)``.
    Every level is one :func:`logic_layer`.
    """
    out, start = coef.shape[0], 0
    m = h.shape[-1] // out
    while m > 1:
        m //= 2
        even = torch.arange(0, 2 * out * m, 2, device=h.device)
        h = logic_layer(h, even, even + 1, coef[:, start : start + m].reshape(-1, 4))
        start += m
    return h


def _tree_output(h: torch.Tensor, coef: torch.Tensor, out_size) -> torch.Tensor:
    """Finish the trees over ``h`` ``(N, P, out * L/2)``; return ``(N, out, H_out, W_out)``."""
    roots = logic_tree(h, coef[:, (coef.shape[1] + 1) // 2 :])
    return roots.view(h.shape[0], *out_size, coef.shape[0]).permute(0, 3, 1, 2)


#: Leaf elements (gathered leaves x batch) per chunk of the conv tree kernel: its buffers (the
#: leaves, the tree levels above them and their gradients) stay in the last-level cache.
CONV_CHUNK_ELEMENTS = 1 << 18


def _tree_levels(leaves: int) -> list[tuple[int, int]]:
    """``(first gate, gates)`` of each tree level above the leaves, lowest first."""
    levels, start, m = [], 0, leaves // 2
    while m >= 1:
        levels.append((start, m))
        start, m = start + m, m // 2
    return levels


def _position_chunks(positions: int, leaves_per_position: int, n: int) -> list[tuple[int, int]]:
    rows = max(1, CONV_CHUNK_ELEMENTS // max(1, leaves_per_position * n))
    return [(s, min(s + rows, positions)) for s in range(0, positions, rows)]


def _tree_forward(h: torch.Tensor, c: torch.Tensor, levels, keep: list | None = None,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """Reduce leaves ``h`` ``(trees, L, M)`` to roots ``(trees, 1, M)``, level by level.

    ``c`` is ``(4, trees, L - 1, 1)``; with ``keep`` every level's input is appended to it; the
    roots are written to ``out`` when given.
    """
    for depth, (start, m) in enumerate(levels):
        if keep is not None:
            keep.append(h)
        a, b = h[:, 0::2], h[:, 1::2]
        cl = c[:, :, start:start + m]
        # y = (c0 + c2*b) + a * (c1 + c3*b)
        last = out if depth == len(levels) - 1 else None
        h = torch.addcmul(torch.addcmul(cl[0], b, cl[2]), a, torch.addcmul(cl[1], b, cl[3]), out=last)
    return h


class _LogicConvTrees(torch.autograd.Function):
    """Roots of the trees over leaves ``x_flat[index]``, ``index`` ``(P, out, L)``.

    ``x`` is ``(N, C, H, W)`` with any strides; it is copied once into the feature-major
    ``(C*H*W + 1, N)`` (a plain copy when ``x`` is laid out ``(C, H, W, N)``, as this function's
    output is), whose last row is the zero padding. The output is ``(out, P, N)``: channel-major,
    batch innermost. Positions are processed in chunks whose leaves, gathered tree by tree as
    ``(out, L, positions * N)`` rows, and tree levels stay in the cache; the whole tree is one
    call, every elementwise op runs over long contiguous rows with one coefficient per row. Only
    the padded input is saved: the backward pass gathers each chunk's leaves and recomputes its
    levels, runs down the tree, and scatters the leaves' gradients with one ``index_add_``.
    """

    @staticmethod
    def forward(ctx, x, index, coef):
        n, channels, height, width = x.shape
        features = channels * height * width
        flat = x.new_empty(features + 1, n)
        flat[:features].view(channels, height, width, n).copy_(x.permute(1, 2, 3, 0))
        flat[features].zero_()
        positions, out, leaves = index.shape
        c = coef.permute(2, 0, 1).unsqueeze(-1)  # (4, out, L - 1, 1)
        levels = _tree_levels(leaves)
        chunks = _position_chunks(positions, out * leaves, n)
        order = _tree_major(index, chunks)
        roots = x.new_empty(out, positions, n)
        for s, e in chunks:
            q = e - s
            h = flat.index_select(0, order[s * out * leaves:e * out * leaves]).view(out, leaves, q * n)
            _tree_forward(h, c, levels, out=roots[:, s:e].view(out, 1, q * n))
        ctx.save_for_backward(flat, order, c)
        ctx.shapes = (channels, height, width), (positions, out, leaves)
        return roots

    @staticmethod
    def backward(ctx, grad):
        flat, order, c = ctx.saved_tensors
        need_x, need_coef = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
        (channels, height, width), (positions, out, leaves) = ctx.shapes
        n = flat.shape[1]
        levels = _tree_levels(leaves)
        grad_flat = torch.zeros_like(flat) if need_x else None
        grad_c = flat.new_zeros(4, out, leaves - 1)
        for s, e in _position_chunks(positions, out * leaves, n):
            q = e - s
            rows = order[s * out * leaves:e * out * leaves]
            h = flat.index_select(0, rows).view(out, leaves, q * n)
            inputs = []
            _tree_forward(h, c, levels, keep=inputs)
            g = grad[:, s:e].reshape(out, 1, q * n)
            for depth in range(len(levels) - 1, -1, -1):
                start, m = levels[depth]
                below = inputs[depth]
                a, b = below[:, 0::2], below[:, 1::2]
                ga, gb = g * a, g * b
                if need_coef:
                    sums = grad_c[:, :, start:start + m]
                    sums[0] += g.sum(2)
                    sums[1] += ga.sum(2)
                    sums[2] += gb.sum(2)
                    sums[3] += (ga * b).sum(2)
                if depth == 0 and not need_x:
                    break
                cl = c[:, :, start:start + m]
                # dL/da = g * (c1 + c3*b), dL/db = g * (c2 + c3*a)
                g_below = torch.empty_like(below)
                torch.addcmul(g * cl[1], gb, cl[3], out=g_below[:, 0::2])
                torch.addcmul(g * cl[2], ga, cl[3], out=g_below[:, 1::2])
                g = g_below
            if need_x:
                grad_flat.index_add_(0, rows, g.view(-1, n))
        grad_x = None
        if need_x:
            grad_x = grad_flat[:-1].view(channels, height, width, n).permute(3, 0, 1, 2)
        return grad_x, None, grad_c.permute(1, 2, 0) if need_coef else None


def _tree_major(index: torch.Tensor, chunks) -> torch.Tensor:
    """The leaf indices ``(P, out, L)`` chunk by chunk, each chunk ordered ``(out, L, position)``."""
    return torch.cat([index[s:e].permute(1, 2, 0).reshape(-1) for s, e in chunks])


def logic_conv2d(x: torch.Tensor, index: torch.Tensor, coef: torch.Tensor, out_size) -> torch.Tensor:
    """Apply weight-shared logic-gate trees at every position of ``x`` (gathering each leaf directly).

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W)
        Inputs in [0, 1], any memory layout.
    index : LongTensor, shape (H_out * W_out, out_channels, leaves)
        From :func:`conv_leaf_index`; ``leaves = 2**depth``.
    coef : Tensor, shape (out_channels, leaves - 1, 4)
        Coefficients of each tree's gates, level by level from the leaves up: gate ``j < leaves/2``
        reads leaves ``2j`` and ``2j + 1``; see :func:`logic_tree` for the levels above; the root
        is last. The same for every position (weight sharing).
    out_size : (H_out, W_out)

    Returns
    -------
    Tensor, shape (N, out_channels, H_out, W_out)
        A view of memory laid out ``(out_channels, H_out, W_out, N)`` (batch innermost), which
        the next convolution, :func:`or_pool2d` and a flatten into a feature-major dense layer
        read without a transpose.

    Notes
    -----
    Each leaf is gathered from the input, flattened feature-major with one constant-0 row for
    the padding, and the whole tree runs in one cache-chunked kernel; no ``unfold`` of the input
    is materialized. :func:`logic_conv2d_unfold` computes the same through an unfold.
    """
    dtype = torch.promote_types(x.dtype, coef.dtype)  # as the elementwise formula would
    roots = _LogicConvTrees.apply(x.to(dtype), index, coef.to(dtype))
    return roots.view(index.shape[1], *out_size, x.shape[0]).permute(3, 0, 1, 2)


def logic_conv2d_unfold(x: torch.Tensor, patch_index: torch.Tensor, coef: torch.Tensor, kernel_size: int,
                        stride: int, padding: int) -> torch.Tensor:
    """:func:`logic_conv2d` through a materialized :func:`~torch.nn.functional.unfold` of ``x``.

    ``patch_index`` ``(out_channels, leaves)`` comes from :func:`conv_patch_index`; the result is
    the same. Kept to measure the gather against (``bench/conv.py``).
    """
    n, _, height, width = x.shape
    out_size = (conv_output_size(height, kernel_size, stride, padding),
                conv_output_size(width, kernel_size, stride, padding))
    patches = torch.nn.functional.unfold(x, kernel_size, padding=padding, stride=stride)
    patches = patches.transpose(1, 2).contiguous()  # (N, P, C*k*k)
    half = patch_index.shape[1] // 2
    h = logic_layer(patches, patch_index[:, 0::2].reshape(-1), patch_index[:, 1::2].reshape(-1),
                    coef[:, :half].reshape(-1, 4))
    return _tree_output(h, coef, out_size)


def _pool_windows(xm: torch.Tensor, window: int, stride: int, out_size):
    """The ``window**2`` strided views ``(C, H_out, W_out, N)`` of ``xm`` ``(C, H, W, N)``, row-major."""
    out_h, out_w = out_size
    return [xm[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
            for i in range(window) for j in range(window)]


class _OrPool2d(torch.autograd.Function):
    """:func:`torch.nn.functional.max_pool2d` (values, and gradients to each window's first
    maximum in row-major order) computed on ``x.permute(1, 2, 3, 0)``, ``(C, H, W, N)``: on the
    batch-innermost output of :func:`logic_conv2d` it reads and writes without a transpose."""

    @staticmethod
    def forward(ctx, x, window, stride):
        out_size = (conv_output_size(x.shape[2], window, stride, 0), conv_output_size(x.shape[3], window, stride, 0))
        xm = x.permute(1, 2, 3, 0)
        values, argmax = torch.stack(_pool_windows(xm, window, stride, out_size)).max(0)
        ctx.save_for_backward(argmax)
        ctx.setup = xm.shape, window, stride, out_size
        return values.permute(3, 0, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        (argmax,) = ctx.saved_tensors
        shape, window, stride, out_size = ctx.setup
        g = grad.permute(1, 2, 3, 0)
        spread = g.new_zeros(window * window, *g.shape).scatter_(0, argmax.unsqueeze(0), g.unsqueeze(0))
        grad_xm = g.new_zeros(shape)
        for view, part in zip(_pool_windows(grad_xm, window, stride, out_size), spread):
            view += part
        return grad_xm.permute(3, 0, 1, 2), None, None


def or_pool2d(x: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """OR over each ``window x window`` patch at ``stride``, relaxed as the maximum (exact on 0/1).

    Equal to ``max_pool2d(x, window, stride)`` in values and gradients; the result keeps ``x``'s
    batch-innermost layout (see :func:`logic_conv2d`).
    """
    return _OrPool2d.apply(x, window, stride)
