"""Reshape chains: view / reshape / transpose / permute / flatten / ... between two tensors edgeslice can place.

Model code moves elements about in many ways that mean one of a few things:
a channel shuffle (``view(b, g, c // g, h, w)``, ``transpose(1, 2)``,
``reshape(b, c, h, w)``), a flatten before the classifier (``x.view(x.size(0),
-1)``), the reverse before a broadcast (``y.view(b, c, 1, 1)`` in
squeeze-excitation), or nothing at all (``.contiguous()``).  Whatever way it is
written, a chain of such ops from a tensor edgeslice places (a layer) to the
next is *resolved by what it does*: the chain is replayed on an index map
(element ``i`` holds ``i``), and the result says which kind it is:

- ``identity``: same shape, elements in place;
- ``permute``: same ``(C, H, W)`` shape, whole channels moved (attr ``perm``:
  output channel ``c`` is input channel ``perm[c]``) — the spatial layout is
  untouched, so it is spatially pointwise and a channel region maps through;
- ``flatten``: ``(C, H, W) -> (C·H·W,)`` in row-major order;
- ``unflatten``: ``(F,) -> (C, H, W)`` in row-major order.

Intermediate tensors of a chain (the 5-D view of a shuffle) are not layers;
anything else a chain does (a spatial transpose, an NHWC flatten) is refused
when a layer reads it.

Example::

    >>> import torch
    >>> perm_of(torch.arange(6).view(1, 2, 3, 1, 1).transpose(1, 2).reshape(1, 6, 1, 1), 6, 1)
    (0, 3, 1, 4, 2, 5)
"""

from __future__ import annotations

import operator

import torch
from torch import fx

from edgeslice.errors import TraceError

SHAPE_METHODS = {"view", "reshape", "transpose", "permute", "contiguous", "flatten", "unflatten", "squeeze", "unsqueeze",
                 "swapaxes", "swapdims", "movedim", "t"}
SHAPE_FUNCTIONS = {torch.reshape, torch.transpose, torch.permute, torch.flatten, torch.squeeze, torch.unsqueeze,
                   torch.swapaxes, torch.swapdims, torch.movedim, torch.unflatten}
MAX_REPLAY = 1 << 27  # elements of the index map a chain is replayed on (1 GB of int64): larger maps are refused


def is_shape_op(node: fx.Node, gm: fx.GraphModule) -> bool:
    """Whether ``node`` only rearranges its one tensor input (no arithmetic)."""
    if node.op == "call_method":
        return node.target in SHAPE_METHODS
    if node.op == "call_function":
        return node.target in SHAPE_FUNCTIONS
    if node.op == "call_module":
        from torch import nn

        m = gm.get_submodule(node.target)
        return isinstance(m, (nn.Flatten, nn.Unflatten))
    return False


def source_of(node: fx.Node) -> fx.Node:
    arg = node.args[0] if node.args else next(iter(node.kwargs.values()))
    if not isinstance(arg, fx.Node):
        raise TraceError(f"layer {node.name!r}: {node.target} of a non-tensor")
    return arg


def _shape(node: fx.Node) -> tuple[int, ...]:
    return tuple(int(v) for v in node.meta["tensor_meta"].shape)


def _numel(shape) -> int:
    n = 1
    for v in shape:
        n *= v
    return n


def replay(chain: list[fx.Node], src: fx.Node, gm: fx.GraphModule) -> torch.Tensor:
    """Run ``chain`` (the shape ops, in order) on an index map shaped like ``src``."""
    shape = _shape(src)
    if _numel(shape) > MAX_REPLAY:
        raise TraceError(f"layer {chain[-1].name!r}: rearranging a tensor of {_numel(shape):,} elements is too large to "
                         f"analyse; use a smaller input")
    env = {src.name: torch.arange(_numel(shape), dtype=torch.int64).view(shape)}
    for n in chain:
        args = fx.node.map_arg(n.args, lambda a: env[a.name])
        kwargs = fx.node.map_arg(n.kwargs, lambda a: env[a.name])
        if n.op == "call_method":
            env[n.name] = getattr(args[0], n.target)(*args[1:], **kwargs)
        elif n.op == "call_function":
            env[n.name] = n.target(*args, **kwargs)
        else:
            env[n.name] = gm.get_submodule(n.target)(*args, **kwargs)
    return env[chain[-1].name]


def perm_of(idx: torch.Tensor, channels: int, plane: int) -> tuple[int, ...] | None:
    """The channel permutation an index map ``(N, C, ...)`` shows, or None if it moves elements within planes."""
    flat = idx.reshape(idx.shape[0], channels, plane)
    base = flat[:, :, :1]  # the first element of each output channel
    if not torch.equal(flat - base, torch.arange(plane).expand_as(flat)):
        return None
    src = base[:, :, 0]
    if torch.any(src % plane) or not torch.equal(src - src[:1], (torch.arange(idx.shape[0]) * channels * plane)[:, None].expand_as(src)):
        return None  # a channel starts mid-plane, or samples are mixed
    return tuple(int(v) for v in (src[0] // plane))


def resolve(chain: list[fx.Node], src: fx.Node, gm: fx.GraphModule, batch: int):
    """``(kind, attrs)`` for a chain ending at a tensor edgeslice can place, or None for an intermediate."""
    ins, out = _shape(src), _shape(chain[-1])
    if ins[0] != batch or out[0] != batch or _numel(ins) != _numel(out):
        return None
    simple = len(chain) == 1 and (chain[0].op == "call_module" or chain[0].target in ("view", "reshape", "flatten", torch.flatten,
                                                                                         torch.reshape, "contiguous"))
    if out == ins and all(n.op == "call_method" and n.target == "contiguous" for n in chain):
        return "identity", ()
    if len(out) == 2 and len(ins) >= 2 and simple:  # view/reshape/flatten to (N, F): row-major by definition
        return ("flatten", ()) if len(ins) > 2 else ("identity", ())
    if len(ins) == 2 and len(out) == 4 and simple:  # and back: y.view(b, c, 1, 1)
        return "unflatten", ()
    if not (len(out) == 2 and len(ins) == 4 or len(ins) == 2 and len(out) == 4 or out == ins):
        return None
    idx = replay(chain, src, gm)
    in_order = torch.equal(idx.reshape(-1), torch.arange(idx.numel()))
    if len(out) == 2 and len(ins) == 4:
        return ("flatten", ()) if in_order else None
    if len(ins) == 2 and len(out) == 4:
        return ("unflatten", ()) if in_order else None
    if in_order:
        return "identity", ()
    if len(out) == 4:
        perm = perm_of(idx, out[1], out[2] * out[3])
        if perm is not None:
            return "permute", (("perm", perm),)
    return None


def split_parts(node: fx.Node) -> tuple[fx.Node, int, tuple[int, ...]] | None:
    """``(source, dim, offsets)`` of a ``split`` / ``chunk`` node (its parts' starts along ``dim``), else None."""
    fn = node.target
    if not ((node.op == "call_method" and fn in ("split", "chunk", "tensor_split", "split_with_sizes"))
            or (node.op == "call_function" and fn in (torch.split, torch.chunk, torch.tensor_split))):
        return None
    src = source_of(node)
    metas = node.meta.get("tensor_meta")
    shape = _shape(src)
    dims = [d for d in range(1, len(shape)) if any(int(m.shape[d]) != shape[d] for m in metas)]
    dim = dims[0] if dims else 1
    if len(dims) > 1 or any(int(m.shape[0]) != shape[0] for m in metas):
        raise TraceError(f"layer {node.name!r}: {fn} of the batch dimension cannot be cut")
    offsets, off = [], 0
    for m in metas:
        offsets.append(off)
        off += int(m.shape[dim])
    return src, dim, tuple(offsets)


def is_part(node: fx.Node) -> bool:
    return node.op == "call_function" and node.target is operator.getitem and isinstance(node.args[0], fx.Node)
