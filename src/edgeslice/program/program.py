"""The Program: a Plan lowered to concrete tasks on concrete regions.

Four kinds of task, listed in an order that is valid to run sequentially:

``input``     the model input appears on the source device;
``transfer``  a region of a tensor travels from the device holding it to another;
``compute``   a device runs a list of *steps* (a layer and the region of its
              output to compute), after assembling each external input it
              *needs* from *pieces* (regions held by earlier tasks on the same
              device: its own computations, the input, or arrived transfers);
              partial sums are *reduced* (added) rather than placed;
``output``    the sink assembles the model output.

The simulator and the runtime both consume this; neither re-derives regions.
The small value types inside tasks (Piece, Need, Step, Out) are NamedTuples:
as immutable as the frozen task dataclasses, and they hash in C, which
matters because planners memoise on them.
:meth:`Program.to_text` gives a compact, line-oriented form that
:meth:`Program.from_text` reads back to an equal Program (golden files in the
tests are in this form).  Example line::

    transfer x3 d0->d1 features_3[0:64,110:112,0:224] from=s0p0 bytes=114688
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from edgeslice.program.regions import Range, Region, fmt, parse, volume

TEXT_HEADER = "edgeslice-program"
TEXT_VERSION = 1


class Piece(NamedTuple):
    """Region ``region`` of a need, taken from what task ``task`` holds on the same device."""

    task: str
    region: Region


class Need(NamedTuple):
    """An external input region a compute (or output) task assembles from pieces."""

    tensor: str
    region: Region
    pieces: tuple[Piece, ...]
    reduce: bool = False


class Step(NamedTuple):
    """Compute ``region`` of ``layer``'s output; ``inputs`` set for a partial-sum Linear part."""

    layer: str
    region: Region
    inputs: Range | None = None


class Out(NamedTuple):
    """A region of a tensor a compute task delivers (``partial``: a partial sum to be reduced)."""

    tensor: str
    region: Region
    partial: bool = False


@dataclass(frozen=True)
class InputTask:
    id: str
    device: str
    tensor: str
    region: Region


@dataclass(frozen=True)
class TransferTask:
    id: str
    src: str
    dst: str
    tensor: str
    region: Region
    source: str
    nbytes: int

    @property
    def device(self) -> str:  # the device that initiates it
        return self.src


@dataclass(frozen=True)
class ComputeTask:
    id: str
    device: str
    segment: int
    part: int
    needs: tuple[Need, ...]
    steps: tuple[Step, ...]
    outs: tuple[Out, ...]
    flops: int


@dataclass(frozen=True)
class OutputTask:
    id: str
    device: str
    need: Need


Task = InputTask | TransferTask | ComputeTask | OutputTask


@dataclass(frozen=True)
class Program:
    spec: str
    fingerprint: str
    batch: int
    itemsize: int
    devices: tuple[str, ...]
    source: str
    sink: str
    tensors: tuple[tuple[str, tuple[int, ...]], ...]
    tasks: tuple[Task, ...]

    # ---- derived -------------------------------------------------------
    @cached_property
    def task_by_id(self) -> dict[str, Task]:
        return {t.id: t for t in self.tasks}

    @property
    def computes(self) -> tuple[ComputeTask, ...]:
        return tuple(t for t in self.tasks if isinstance(t, ComputeTask))

    @property
    def transfers(self) -> tuple[TransferTask, ...]:
        return tuple(t for t in self.tasks if isinstance(t, TransferTask))

    @property
    def flops(self) -> int:
        """Total FLOPs, halo and group recomputation included."""
        return sum(t.flops for t in self.computes)

    @property
    def bytes_transferred(self) -> int:
        return sum(t.nbytes for t in self.transfers)

    def shape(self, tensor: str) -> tuple[int, ...]:
        return dict(self.tensors)[tensor]

    # ---- text form -----------------------------------------------------
    def to_text(self) -> str:
        lines = [
            f"{TEXT_HEADER} {TEXT_VERSION} model={self.spec} fingerprint={self.fingerprint} batch={self.batch} "
            f"itemsize={self.itemsize} devices={','.join(self.devices)} source={self.source} sink={self.sink}"
        ]
        for name, shp in self.tensors:
            lines.append(f"tensor {name} {'x'.join(map(str, shp))}")
        for t in self.tasks:
            if isinstance(t, InputTask):
                lines.append(f"input {t.id} @{t.device} {t.tensor}{fmt(t.region)}")
            elif isinstance(t, TransferTask):
                lines.append(f"transfer {t.id} {t.src}->{t.dst} {t.tensor}{fmt(t.region)} from={t.source} bytes={t.nbytes}")
            elif isinstance(t, ComputeTask):
                lines.append(f"compute {t.id} @{t.device} seg={t.segment} part={t.part} flops={t.flops}")
                lines += ["  " + _need_text(n) for n in t.needs]
                for s in t.steps:
                    extra = f" inputs={s.inputs[0]}:{s.inputs[1]}" if s.inputs is not None else ""
                    lines.append(f"  step {s.layer}{fmt(s.region)}{extra}")
                for o in t.outs:
                    lines.append(f"  out {o.tensor}{fmt(o.region)}" + (" partial" if o.partial else ""))
            elif isinstance(t, OutputTask):
                lines.append(f"output {t.id} @{t.device}")
                lines.append("  " + _need_text(t.need))
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> "Program":
        lines = [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
        head = lines[0].split()
        if head[:2] != [TEXT_HEADER, str(TEXT_VERSION)]:
            raise ValueError(f"not an edgeslice program text (version {TEXT_VERSION})")
        kv = dict(tok.split("=", 1) for tok in head[2:])
        tensors, tasks = [], []
        cur = None  # (kind, header fields, needs, steps, outs)

        def flush():
            if cur is None:
                return
            kind, h, needs, steps, outs = cur
            if kind == "compute":
                tasks.append(ComputeTask(h["id"], h["device"], int(h["seg"]), int(h["part"]), tuple(needs),
                                         tuple(steps), tuple(outs), int(h["flops"])))
            else:
                tasks.append(OutputTask(h["id"], h["device"], needs[0]))

        for line in lines[1:]:
            tok = line.split()
            if line.startswith("  "):
                if tok[0] == "need":
                    cur[2].append(_parse_need(tok))
                elif tok[0] == "step":
                    name, reg = _parse_ref(tok[1])
                    inputs = None
                    if len(tok) > 2:
                        lo, hi = tok[2].split("=", 1)[1].split(":")
                        inputs = (int(lo), int(hi))
                    cur[3].append(Step(name, reg, inputs))
                elif tok[0] == "out":
                    name, reg = _parse_ref(tok[1])
                    cur[4].append(Out(name, reg, len(tok) > 2 and tok[2] == "partial"))
                continue
            flush()
            cur = None
            if tok[0] == "tensor":
                tensors.append((tok[1], tuple(int(v) for v in tok[2].split("x"))))
            elif tok[0] == "input":
                name, reg = _parse_ref(tok[3])
                tasks.append(InputTask(tok[1], tok[2][1:], name, reg))
            elif tok[0] == "transfer":
                src, dst = tok[2].split("->")
                name, reg = _parse_ref(tok[3])
                f = dict(t.split("=", 1) for t in tok[4:])
                tasks.append(TransferTask(tok[1], src, dst, name, reg, f["from"], int(f["bytes"])))
            elif tok[0] == "compute":
                h = dict(t.split("=", 1) for t in tok[3:])
                h.update(id=tok[1], device=tok[2][1:])
                cur = ("compute", h, [], [], [])
            elif tok[0] == "output":
                cur = ("output", {"id": tok[1], "device": tok[2][1:]}, [], [], [])
            else:
                raise ValueError(f"unknown program line: {line!r}")
        flush()
        return cls(kv["model"], kv["fingerprint"], int(kv["batch"]), int(kv["itemsize"]), tuple(kv["devices"].split(",")),
                   kv["source"], kv["sink"], tuple(tensors), tuple(tasks))


def _need_text(n: Need) -> str:
    arrow = "<+" if n.reduce else "<-"
    return f"need {n.tensor}{fmt(n.region)} {arrow} " + " ".join(f"{p.task}{fmt(p.region)}" for p in n.pieces)


def _parse_ref(tok: str) -> tuple[str, Region]:
    i = tok.index("[")
    return tok[:i], parse(tok[i:])


def _parse_need(tok: list[str]) -> Need:
    name, reg = _parse_ref(tok[1])
    pieces = tuple(Piece(*_parse_ref(t)) for t in tok[3:])
    return Need(name, reg, pieces, tok[2] == "<+")


def piece_bytes(region: Region, batch: int, itemsize: int) -> int:
    return volume(region) * batch * itemsize
