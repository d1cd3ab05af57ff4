"""Loading models: the built-in zoo or any user factory.

A *model spec* is one string, recorded verbatim in every plan so that later
commands need only the plan file:

- a zoo name: ``vgg16``, ``resnet50``, ... (see :data:`edgeslice.models.zoo.ZOO`);
- a zoo name with integer arguments for its factory, ``<name>:k=v[,k=v]``:
  ``resnet50_decoupled:g=2`` (``g`` is short for ``groups``), ``yolov2:num_classes=80``;
- ``path/to/file.py:factory`` — a Python file and a function in it returning an ``nn.Module``;
- ``package.module:factory`` — an importable module and a function in it.

Without ``weights`` the model has deterministic random weights (the factory
runs under ``torch.manual_seed(0)``; batch-norm statistics are then drawn from a
seeded generator so that per-channel slicing of them is actually exercised).
With ``weights`` a ``state_dict`` file is loaded strictly.  With ``meta=True``
the model is built on PyTorch's ``meta`` device: every parameter has its shape
and no storage (nothing is initialised or loaded), for tracing and for workers
that then materialise only their share (:mod:`edgeslice.runtime.pieces`).

Example::

    >>> from edgeslice.models import load_model
    >>> m = load_model("resnet18")
    >>> m.training
    False
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgeslice.errors import ModelError

DEFAULT_INPUT = (3, 224, 224)


@dataclass(frozen=True)
class ModelInfo:
    """What a spec resolves to before building: its canonical spec and default input shape."""

    spec: str
    default_input: tuple[int, ...]
    description: str


def _zoo():
    from edgeslice.models.zoo import ZOO

    return ZOO


def zoo_names() -> list[str]:
    """Names of the built-in models, in registry order."""
    return list(_zoo())


def _is_onnx(spec: str) -> bool:
    return spec.lower().endswith(".onnx")


# Short names of zoo factories' keyword arguments in a spec (``resnet50_decoupled:g=2``).
_ALIASES = {"g": "groups"}


def _zoo_params(name: str) -> dict[str, str]:
    """The keys a spec may give zoo model ``name`` -> the factory argument each sets (its integer arguments)."""
    sig = inspect.signature(_zoo()[name].factory)
    args = [p.name for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and isinstance(p.default, int) and not isinstance(p.default, bool)]
    return {**{k: v for k, v in _ALIASES.items() if v in args}, **{a: a for a in args}}


def _zoo_call(spec: str) -> tuple[str, dict[str, int]] | None:
    """``(zoo name, factory keyword arguments)`` of a ``<zoo name>:k=v[,k=v]`` spec; None for any other spec.

    A spec whose part after the first ``:`` holds ``=`` is this form (a ``file.py:factory`` spec's factory
    name cannot hold one); one that names no zoo model, or gives a key or value the factory does not take,
    is refused in one line naming the spec and what is accepted.

    >>> _zoo_call("resnet50_decoupled:g=2")
    ('resnet50_decoupled', {'groups': 2})
    >>> _zoo_call("vgg16") is None and _zoo_call("models/net.py:build") is None
    True
    """
    name, sep, rest = spec.partition(":")
    if not sep or "=" not in rest:
        return None
    zoo = _zoo()
    if name not in zoo:
        if ":" in rest:  # e.g. 'dir:x=1/net.py:build': a path, not parameters
            return None
        raise ModelError(f"model spec {spec!r}: only zoo models take 'k=v' parameters and {name!r} is not one "
                         f"(zoo: {', '.join(zoo)}); a model file is 'path/to/file.py:factory'")
    params = _zoo_params(name)
    accepted = ", ".join(params) if params else "none"
    kwargs: dict[str, int] = {}
    for item in rest.split(","):
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or key not in params:
            what = f"unknown parameter {key!r}" if eq else f"{item!r} is not 'k=v'"
            raise ModelError(f"model spec {spec!r}: {what}; {name} accepts {accepted}")
        try:
            number = int(value)
        except ValueError:
            raise ModelError(f"model spec {spec!r}: {key}={value!r} is not an integer; {name} accepts "
                             f"{accepted}, each an integer") from None
        if params[key] in kwargs:
            raise ModelError(f"model spec {spec!r} gives {params[key]!r} twice")
        kwargs[params[key]] = number
    return name, kwargs


def _resolve_factory(spec: str):
    zoo = _zoo()
    if spec in zoo:
        return zoo[spec].factory
    call = _zoo_call(spec)
    if call is not None:
        name, kwargs = call
        return functools.partial(zoo[name].factory, **kwargs)
    if _is_onnx(spec):
        if not Path(spec).is_file():
            raise ModelError(f"ONNX file {spec!r} not found")
        from edgeslice.models.onnx import load_onnx

        load_onnx(spec)  # refused here, in one line, if it cannot be converted
        return lambda: load_onnx(spec)
    if ":" not in spec:
        raise ModelError(
            f"unknown model {spec!r}: use one of {', '.join(zoo)} "
            "or 'path/to/file.py:factory' or 'package.module:factory'"
        )
    where, _, fname = spec.rpartition(":")
    if not fname or not where:
        raise ModelError(f"model spec {spec!r} must look like 'path/to/file.py:factory' or 'package.module:factory'")
    if where.endswith(".py") or "/" in where or Path(where).exists():
        path = Path(where)
        if not path.is_file():
            raise ModelError(f"model file {where!r} not found (from model spec {spec!r})")
        modname = f"_edgeslice_user_{abs(hash(str(path.resolve())))}"
        try:
            mspec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(mspec)
            sys.modules[modname] = module
            mspec.loader.exec_module(module)
        except SystemExit as exc:  # user code that exits: say so, do not exit with its status
            raise ModelError(f"model file {where!r} called sys.exit({exc.code!r}) while being imported; a model file "
                             f"should only define the model and its factory") from None
        except Exception as exc:  # user code: report, never a traceback
            raise ModelError(f"could not import model file {where!r}: {type(exc).__name__}: {_first_line(exc)}") from exc
    else:
        try:
            module = importlib.import_module(where)
        except Exception as exc:
            raise ModelError(f"could not import module {where!r} (from model spec {spec!r}): {exc}") from exc
    factory = getattr(module, fname, None)
    if factory is None or not callable(factory):
        raise ModelError(f"{where!r} has no callable named {fname!r}: define `def {fname}(): return MyModel()` there")
    if not (inspect.isfunction(factory) or inspect.isclass(factory)):  # e.g. `os:abort`: a builtin, not a model factory
        raise ModelError(f"{where}:{fname} is not a Python function or class (it is {type(factory).__name__}); "
                         f"a model spec names a factory such as `def {fname}(): return MyModel()`")
    return factory


def normalize_spec(spec: str) -> str:
    """``spec`` as a plan should record it: a model file's path made absolute, so the plan works from any folder.

    >>> normalize_spec("vgg16"), normalize_spec("resnet50_decoupled:g=2")
    ('vgg16', 'resnet50_decoupled:g=2')
    """
    if _is_onnx(spec) and spec not in _zoo():
        return str(Path(spec).resolve())
    if spec in _zoo() or ":" not in spec or _zoo_call(spec) is not None:
        return spec
    where, _, fname = spec.rpartition(":")
    if where.endswith(".py") or "/" in where or Path(where).exists():
        return f"{Path(where).resolve()}:{fname}"
    return spec


def _model_file(spec: str) -> Path | None:
    if _is_onnx(spec) and spec not in _zoo():
        return Path(spec)
    if spec in _zoo() or ":" not in spec or _zoo_call(spec) is not None:
        return None
    where = spec.rpartition(":")[0]
    return Path(where) if (where.endswith(".py") or "/" in where or Path(where).exists()) else None


def source_digest(spec: str) -> str | None:
    """``"sha256:<hex>"`` of the model file a ``file.py:factory`` spec names (None for zoo names and packages).

    A plan records it; :func:`check_source` refuses the plan once the file has changed, since every command
    runs that file's code.
    """
    import hashlib

    path = _model_file(spec)
    if path is None or not path.is_file():
        return None
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


_ANNOUNCED: set[str] = set()


def check_source(spec: str, recorded: str | None) -> None:
    """Refuse (one line naming the file) a model file whose content differs from what the plan recorded.

    Then say on stderr, once per process, which code the plan is about to run (a zoo model says nothing):
    a plan is as trusted as the code it names, and the user should see which that is.
    """
    if recorded is not None:
        now = source_digest(spec)
        if now is not None and now != recorded:
            raise ModelError(f"model file {str(_model_file(spec))!r} has changed since the plan was made (it was "
                             f"{recorded[:19]}..., it is {now[:19]}...); a plan runs that file's code, so re-plan with "
                             f"`edgeslice plan --model {spec}`")
    if spec in _zoo() or (":" not in spec and not _is_onnx(spec)) or spec in _ANNOUNCED:
        return
    if _zoo_call(spec) is not None:  # a zoo model with parameters: our code too
        return
    _ANNOUNCED.add(spec)
    path = _model_file(spec)
    if _is_onnx(spec):
        return  # an ONNX file holds no code: converted to torch ops, nothing of it is executed as Python
    what = f"model file {path.resolve()}" if path is not None else f"module {spec.rpartition(':')[0]}"
    print(f"edgeslice: note: the plan runs the code of {what} ({spec.rpartition(':')[2]})", file=sys.stderr, flush=True)


def _first_line(exc: BaseException) -> str:
    lines = [l for l in str(exc).splitlines() if l.strip()]
    return lines[0] if lines else type(exc).__name__


def _check_state_dict(model: nn.Module, sd: dict, weights: str, spec: str) -> None:
    """One line naming the keys that differ (missing, unexpected, wrong shape), a few of each."""
    want = model.state_dict()

    def few(names):
        names = sorted(names)
        return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")

    missing, extra = set(want) - set(sd), set(sd) - set(want)
    shapes = [k for k in set(want) & set(sd) if hasattr(sd[k], "shape") and tuple(sd[k].shape) != tuple(want[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing {few(missing)}")
    if extra:
        problems.append(f"unexpected {few(extra)}")
    if shapes:
        k = sorted(shapes)[0]
        problems.append(f"shape of {k} is {tuple(sd[k].shape)}, the model's {tuple(want[k].shape)}"
                        + (f" (and {len(shapes) - 1} more)" if len(shapes) > 1 else ""))
    if problems:
        raise ModelError(f"weights file {weights!r} does not fit model {spec!r}: " + "; ".join(problems))


def model_info(spec: str) -> ModelInfo:
    """Resolve a spec without building the model."""
    zoo = _zoo()
    if spec in zoo:
        e = zoo[spec]
        return ModelInfo(spec, tuple(e.input_shape), e.description)
    call = _zoo_call(spec)
    if call is not None:
        e = zoo[call[0]]
        args = ", ".join(f"{k}={v}" for k, v in call[1].items())
        return ModelInfo(spec, tuple(e.input_shape), f"{e.description} ({args})")
    _resolve_factory(spec)
    if _is_onnx(spec):
        from edgeslice.models.onnx import load_onnx

        shape = load_onnx(spec).input_shape
        return ModelInfo(spec, tuple(shape) if shape else DEFAULT_INPUT, f"ONNX model {spec}")
    return ModelInfo(spec, DEFAULT_INPUT, f"user model {spec}")


def _randomize_bn(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(1234)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.1)


def load_model(spec: str, weights: str | None = None, *, meta: bool = False) -> nn.Module:
    """Build the model named by ``spec`` in eval mode (see the module docstring)."""
    factory = _resolve_factory(spec)
    if _is_onnx(spec) and weights is not None:
        raise ModelError(f"ONNX file {spec!r} holds its own weights; leave --weights out")
    if _is_onnx(spec) and meta:
        return factory().to("meta").eval()
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        try:
            if meta:
                with torch.device("meta"):
                    model = factory()
            else:
                model = factory()
        except SystemExit as exc:
            raise ModelError(f"model factory {spec!r} called sys.exit({exc.code!r}) instead of returning a model") from None
        except Exception as exc:
            raise ModelError(f"model factory {spec!r} failed{' on the meta device' if meta else ''}: "
                             f"{type(exc).__name__}: {_first_line(exc)}") from exc
    finally:
        torch.random.set_rng_state(state)
    if not isinstance(model, nn.Module):
        raise ModelError(f"model factory {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    if meta:
        return model.eval()
    if _is_onnx(spec):  # an ONNX file's weights and statistics are its own
        return model.eval()
    if weights is None:
        _randomize_bn(model)
    else:
        try:
            sd = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch's own text suggests weights_only=False, which we never do: one line of ours
            why = _first_line(exc)
            if "weights_only" in why or "Weights only load failed" in why:
                why = "it holds objects other than tensors (edgeslice loads only tensors, weights_only=True)"
            raise ModelError(f"could not read weights file {weights!r}: {why}; save it with "
                             f"torch.save(model.state_dict(), path)") from None
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict):
            raise ModelError(f"weights file {weights!r} holds a {type(sd).__name__}, not a state_dict; save it with "
                             f"torch.save(model.state_dict(), path)")
        _check_state_dict(model, sd, weights, spec)
        try:
            model.load_state_dict(sd, strict=True)
        except Exception as exc:
            raise ModelError(f"weights file {weights!r} does not fit model {spec!r}: {_first_line(exc)}") from exc
    return model.eval()
