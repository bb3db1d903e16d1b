"""Trace one network to ONNX, check it against torch with onnxruntime, describe it in JSON.

The TorchScript-based exporter of ``torch.onnx`` (``dynamo=False``) is used: it traces
the module once with example inputs, needs only the ``onnx`` package next to torch and
takes well under a second for muselab's nets. The batch (and, where a net allows it,
the image size or the cache length) stays a dynamic axis.

Every export is verified at once: onnxruntime runs the graph on the example inputs and
on a second batch size, and the largest absolute difference from the torch outputs is
recorded in the sidecar (an export that disagrees by more than the tolerance fails).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from muselab.errors import MuselabError
from muselab.io import atomic_write, sha256_file

#: ONNX opset of every export (onnxruntime 1.17+ runs it; opset 14 adds attention ops).
OPSET = 17
#: Largest absolute difference from torch accepted by :func:`export_graph` (issue 10).
TOLERANCE = 1e-4


class ExportError(MuselabError):
    """A model cannot be exported (an untraceable architecture, or outputs that disagree)."""


@dataclass
class Graph:
    """One network to export: a module, example inputs (in order) and output names.

    ``dynamic`` names the axes that may change size at inference time, per input and
    output (ONNX ``dynamic_axes``). ``resize`` makes a second example batch for the
    parity check: inputs -> other inputs with a different dynamic size.
    """

    name: str  # file stem: "model", "decoder", ...
    module: nn.Module
    inputs: dict[str, Tensor]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)
    resize: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None


def export_graph(graph: Graph, path: Path, tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Write ``graph`` to ``path`` (atomically) and check it; returns its sidecar entry."""
    module = graph.module.eval()
    args = tuple(graph.inputs.values())
    what = f"{graph.name} ({type(module).__name__})"

    def write(tmp: str) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter
            torch.onnx.export(module, args, tmp, dynamo=False, opset_version=OPSET,
                              input_names=list(graph.inputs), output_names=graph.outputs,
                              dynamic_axes=graph.dynamic or None, do_constant_folding=True)

    try:
        atomic_write(path, write)
    except Exception as exc:  # noqa: BLE001 - any tracer failure means "not exportable"
        raise ExportError(f"cannot export {what} to ONNX: its architecture could not be "
                          f"traced ({_first_line(exc)})") from exc
    diff = parity(graph, path)
    if not diff <= tolerance:
        path.unlink(missing_ok=True)
        raise ExportError(f"ONNX export of {what} differs from torch by {diff:.3g} "
                          f"(> {tolerance:g}); the graph was not written")
    return {"file": path.name, "sha256": sha256_file(path), "opset": OPSET,
            "inputs": _describe(graph.inputs, graph.dynamic),
            "outputs": graph.outputs, "parity_max_abs_diff": diff}


def parity(graph: Graph, path: Path) -> float:
    """Max |onnxruntime - torch| over the outputs, on the example and a resized batch."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batches = [graph.inputs] + ([graph.resize(graph.inputs)] if graph.resize else [])
    worst = 0.0
    for inputs in batches:
        with torch.no_grad():
            want = graph.module(*inputs.values())
        want = want if isinstance(want, tuple) else (want,)
        got = session.run(graph.outputs, {k: v.numpy() for k, v in inputs.items()})
        for w, g in zip(want, got, strict=True):
            if tuple(w.shape) != g.shape:
                raise ExportError(f"ONNX export of {graph.name}: output shape {g.shape} is "
                                  f"not torch's {tuple(w.shape)} (a size was traced as fixed)")
            worst = max(worst, float(np.abs(w.float().numpy() - g).max(initial=0.0)))
    return worst


def _describe(inputs: dict[str, Tensor], dynamic: dict[str, dict[int, str]]) -> list[Any]:
    """Name, dtype and shape (dynamic axes by name) of each input."""
    out = []
    for name, t in inputs.items():
        axes = dynamic.get(name, {})
        shape = [axes.get(i, s) for i, s in enumerate(t.shape)]
        out.append({"name": name, "dtype": str(t.dtype).removeprefix("torch."), "shape": shape})
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
