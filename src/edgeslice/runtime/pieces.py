"""Keep on a device only what its tasks use: its layers, and for channel parts its weight slice.

:func:`prune` deletes every module the device never runs and slices the
parameters of convolutions, Linear and batch-norm layers to the hull of the
output channels (or, for partial-sum parts, input features) its steps compute,
recording where each slice starts so :class:`~edgeslice.execute.kernels.Kernels`
indexes them correctly.  A device holding a quarter of fc6's output channels
holds a quarter of its 411 MB.

Given ``state`` (a :class:`MappedWeights`: a state-dict file opened with
``torch.load(mmap=True, weights_only=True)``), :func:`prune` works on a model
built on the ``meta`` device and *materialises* only what it keeps: each kept
tensor is the slice of the file's tensor, so the whole model never exists in
the worker.  A slice of output channels is a run of rows of a contiguous
tensor, so it stays a view of the mapped file and only its pages are ever
read; a slice of input features (partial-sum Linear parts) is copied and the
pages it was copied from are handed back (``madvise``).  Either way the
worker's resident weights are its share.
"""

from __future__ import annotations

import ctypes
import gc
import mmap
import os
from pathlib import Path

import torch
from torch import fx, nn

from edgeslice.errors import EdgesliceError, ModelError
from edgeslice.execute.kernels import Kernels
from edgeslice.graph.layer import LayerGraph
from edgeslice.program.memory import channel_hulls
from edgeslice.program.program import Program


class MissingWeights(ModelError):
    """The weights file lacks tensors the device keeps (e.g. non-persistent buffers): build the model whole instead."""


class MappedWeights:
    """A ``state_dict`` file mapped into memory: ``tensors`` are views of the file (nothing is read until touched).

    Loaded with ``torch.load(path, mmap=True, weights_only=True)`` — no code is unpickled.  A checkpoint
    wrapping its state dict as ``{"state_dict": ...}`` is unwrapped.  The mapping is private and never
    written, so any of its pages can be dropped and would be read from the file again if touched.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()
        try:
            sd = torch.load(self.path, map_location="cpu", mmap=True, weights_only=True)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(f"could not map weights file {str(path)!r}: {first}") from None
        if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise ModelError(f"weights file {str(path)!r} is not a state dict (a mapping of names to tensors)")
        self.tensors: dict[str, torch.Tensor] = sd
        self._maps: list[tuple[int, int]] | None = None
        self._kept: list[tuple[int, int]] = []
        for a, b in self._mappings():
            # no huge-page mappings of the file: a 2 MB mapping would pull in pages of other devices' slices,
            # and dropping part of one drops all of it
            _madvise(a, b, _MADV_NOHUGEPAGE)

    def _mappings(self) -> list[tuple[int, int]]:
        """Address ranges where this process maps the file privately (read from /proc/self/maps)."""
        if self._maps is None:
            self._maps = []
            try:
                for line in Path("/proc/self/maps").read_text().splitlines():
                    f = line.split(maxsplit=5)
                    if len(f) == 6 and f[5].removesuffix(" (deleted)") == str(self.path) and f[1].endswith("p"):
                        a, b = f[0].split("-")
                        self._maps.append((int(a, 16), int(b, 16)))
            except OSError:
                pass
        return self._maps

    def keep(self, view: torch.Tensor, src: torch.Tensor) -> None:
        """Read ``view`` (a slice of the file's tensor ``src`` that the device keeps) and drop the pages around it.

        Touching a page can map more than that page (the kernel maps whole large folios of the page cache,
        up to megabytes), so once the view is read, the pages near ``src`` that no kept view lies on are
        handed back: the resident part of the file grows by the view, rounded to pages, and no more.
        """
        _touch(view)
        if view.numel():
            self._kept.append(_span(view))
            lo, hi = _span(src)
            self._drop_gaps(lo - _NEAR, hi + _NEAR)

    def release(self, src: torch.Tensor) -> None:
        """Drop the pages of ``src`` (a tensor of the file) once a copy of what the device needs exists."""
        lo, hi = _span(src)
        self._drop_gaps(lo - _NEAR, hi + _NEAR)

    def _drop_gaps(self, lo: int, hi: int) -> None:
        """Drop every page in ``[lo, hi)`` of the file's mappings that no kept view lies on."""
        kept = sorted(self._kept)
        for a, b in self._mappings():
            a, b = max(a, lo), min(b, hi)
            cur = a
            for klo, khi in kept:
                klo, khi = max(klo, a), min(khi, b)
                if klo >= khi:
                    continue
                if klo > cur:
                    _madvise(cur, klo, _MADV_DONTNEED)
                cur = max(cur, khi)
            if cur < b:
                _madvise(cur, b, _MADV_DONTNEED)


_MADV_DONTNEED = 4
_MADV_NOHUGEPAGE = 15
_NEAR = 4 << 20  # how far around a tensor a fault may have mapped pages (a large folio is at most 2 MB here)


def _span(t: torch.Tensor) -> tuple[int, int]:
    """The pages ``t``'s elements lie on (``t`` contiguous), as an address range."""
    page = mmap.PAGESIZE
    start, n = t.data_ptr(), t.numel() * t.element_size()
    return start & ~(page - 1), (start + n + page - 1) & ~(page - 1)


def _madvise(a: int, b: int, advice: int) -> None:
    if b <= a:
        return
    try:
        ctypes.CDLL(None, use_errno=True).madvise(ctypes.c_void_p(a), ctypes.c_size_t(b - a), advice)
    except (OSError, AttributeError):
        pass


def _trim() -> None:
    """Return freed heap to the OS so the resident size shows the share (glibc only)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def prune(graph: LayerGraph, gm: fx.GraphModule, program: Program, device: str,
          state: MappedWeights | None = None) -> Kernels:
    """Strip ``gm`` down to what ``device`` runs in ``program``; return kernels over what is left.

    With ``state``, ``gm`` may be built on the meta device: every tensor the device keeps is taken (its
    slice only) from ``state``; :class:`MissingWeights` if ``state`` lacks one (nothing is changed then).
    """
    out_hull, in_hull = channel_hulls(program, graph, device)
    used_targets = set(out_hull)
    offsets: dict[str, tuple[int, int]] = {}
    module_layers = [l for l in graph.layers if _is_module(gm, l.target)]
    kept = list(dict.fromkeys(l.target for l in module_layers if l.target in used_targets))
    if state is not None:
        _check_state(gm, kept, state)
    for target in kept:
        m = gm.get_submodule(target)
        lo, hi = out_hull[target]
        sliced = False
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
            full_out = m.weight.shape[0] if getattr(m, "weight", None) is not None else m.num_features
            ilo, ihi = in_hull.get(target, (0, None))
            sliced = not ((lo, hi) == (0, full_out) and ilo == 0 and ihi in (None, getattr(m, "in_features", None)))
        with torch.no_grad():
            for name, p in _own_tensors(m):
                src = p if state is None else state.tensors[f"{target}.{name}"]
                if sliced and p.dim() > 0:
                    piece = src[lo:hi]
                    if isinstance(m, nn.Linear) and name == "weight" and target in in_hull:
                        piece = piece[:, ilo:ihi]
                elif state is not None:
                    piece = src  # kept whole: the file's tensor itself
                else:
                    continue  # kept whole: the model's tensor as it is
                if state is None or not piece.is_contiguous():
                    piece = piece.clone()
                    if state is not None:
                        state.release(src)
                elif state is not None:
                    state.keep(piece, src)  # read now, while loading, not during the first request
                if isinstance(p, nn.Parameter):
                    setattr(m, name, nn.Parameter(piece, requires_grad=False))
                else:
                    m.register_buffer(name, piece)
        if sliced:
            offsets[target] = (lo, ilo if target in in_hull else 0)
    for l in module_layers:
        if l.target not in used_targets and _is_module(gm, l.target):
            gm.delete_submodule(l.target)
    if state is not None:
        left = [n for n, t in list(gm.named_parameters()) + list(gm.named_buffers()) if t.is_meta]
        if left:
            raise EdgesliceError(f"device {device!r}: tensors {', '.join(left[:3])} were neither kept nor deleted; "
                                 "this is a bug in edgeslice.runtime.pieces")
    gc.collect()
    _trim()
    return Kernels(graph, gm, offsets)


def _own_tensors(m: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(n, t) for n, t in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False))
            if t is not None]


def _check_state(gm: fx.GraphModule, kept: list[str], state: MappedWeights) -> None:
    """Every tensor of every kept module must be in ``state`` with its shape and dtype (before anything changes)."""
    missing = []
    for target in kept:
        for name, t in _own_tensors(gm.get_submodule(target)):
            key = f"{target}.{name}"
            v = state.tensors.get(key)
            if v is None:
                missing.append(key)
            elif tuple(v.shape) != tuple(t.shape) or v.dtype != t.dtype:
                raise ModelError(f"weights file {str(state.path)!r} does not fit the model: {key} is "
                                 f"{v.dtype} {tuple(v.shape)}, the model's is {t.dtype} {tuple(t.shape)}")
    if missing:
        raise MissingWeights(f"weights file {str(state.path)!r} lacks {', '.join(missing[:3])}"
                             f"{f' (and {len(missing) - 3} more)' if len(missing) > 3 else ''}")


def _touch(t: torch.Tensor) -> None:
    """Read one element of every page of ``t`` (a view of the mapped file)."""
    if t.numel():
        flat = t.reshape(-1)
        float(flat[:: max(1, mmap.PAGESIZE // t.element_size())].sum())


def _is_module(gm: fx.GraphModule, target: str) -> bool:
    try:
        gm.get_submodule(target)
        return True
    except AttributeError:
        return False


def param_bytes(gm: fx.GraphModule) -> int:
    return sum(p.numel() * p.element_size() for p in gm.parameters()) + sum(
        b.numel() * b.element_size() for b in gm.buffers())


MMAP = "mmap"
BUILT_WHOLE = "built whole"


def load_share(plan, device: str, model: str | None = None, weights: str | os.PathLike | None = None):
    """Load what ``device`` runs of ``plan``: ``(graph, program, kernels, source, note)``.

    With ``weights`` (a state-dict file of the plan's model, as ``edgeslice run`` writes for its workers) the
    model is built on the meta device, traced, checked against the plan, and only the device's share is read
    from the mapped file: ``source`` is ``"mmap"``.  Without one — or if the model cannot be built on the
    meta device, or the file lacks tensors the device keeps — the model is built whole and pruned, as a
    worker started by plain ``torchrun`` does: ``source`` is ``"built whole"`` and ``note`` says why.
    A plan made for another model is refused either way (:class:`~edgeslice.errors.PlanMismatchError`).
    """
    from edgeslice.errors import TraceError
    from edgeslice.execute.check import load_for_plan
    from edgeslice.program.lower import lower

    if weights is None:
        note = "no weights file given (--weights): the whole model was built, then pruned"
    else:
        state = MappedWeights(weights)
        try:
            graph, gm = load_for_plan(plan, model, meta=True)
        except (TraceError, ModelError) as exc:
            note = f"the model cannot be built on the meta device ({exc}); the whole model was built, then pruned"
        else:
            program = lower(plan, graph)
            try:
                kernels = prune(graph, gm, program, device, state)
                return graph, program, kernels, MMAP, f"only this device's share was read from {str(state.path)!r}"
            except MissingWeights as exc:
                note = f"{exc}; the whole model was built, then pruned"
            del gm
        del state
        gc.collect()
    graph, gm = load_for_plan(plan, model)
    program = lower(plan, graph)
    return graph, program, prune(graph, gm, program, device), BUILT_WHOLE, note
