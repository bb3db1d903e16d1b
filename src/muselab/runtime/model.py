"""An exported model: its ``model.json`` sidecar and onnxruntime sessions, sha256-checked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from muselab.errors import ConfigError, DataError
from muselab.io import sha256_file

SIDECAR, FORMAT = "model.json", "muselab-onnx"
KINDS = ("gan", "vae", "diffusion", "style", "translate", "transformer")


@dataclass
class OnnxModel:
    """``model.onnx`` (and its sibling graphs) with the sidecar that says how to run them."""

    path: Path  # the main graph
    meta: dict[str, Any]
    _sessions: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> OnnxModel:
        """Read ``path`` (a ``.onnx`` file or its folder) and check every graph's sha256."""
        p = Path(path)
        p = p / "model.onnx" if p.is_dir() else p
        if not p.is_file():
            raise ConfigError(f"{p}: no such model (export one with: muselab export RUN)")
        side = p.parent / SIDECAR
        if not side.is_file():
            raise DataError(f"{p}: no {SIDECAR} next to it; muselab-run needs the sidecar "
                            "written by muselab export")
        try:
            meta = json.loads(side.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{side} is not valid JSON: {exc}") from exc
        if (meta.get("format") != FORMAT or meta.get("kind") not in KINDS
                or "model" not in meta.get("graphs", {})):
            raise DataError(f"{side} is not a muselab export sidecar")
        model = cls(p, meta)
        for name, graph in meta["graphs"].items():
            model._verify(name, graph)
        return model

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])

    def _verify(self, name: str, graph: dict[str, Any]) -> None:
        f = self.path.parent / graph["file"]
        if not f.is_file():
            raise DataError(f"{f} is missing (graph {name!r} of {self.path.parent / SIDECAR})")
        if sha256_file(f) != graph["sha256"]:
            raise DataError(f"{f} is corrupt: its sha256 does not match {SIDECAR}; "
                            "export the model again")

    def session(self, name: str = "model") -> Any:
        """The onnxruntime session of graph ``name`` (made once)."""
        if name not in self._sessions:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            f = self.path.parent / self.meta["graphs"][name]["file"]
            self._sessions[name] = ort.InferenceSession(str(f), opts,
                                                        providers=["CPUExecutionProvider"])
        return self._sessions[name]

    def run(self, name: str, **inputs: np.ndarray) -> list[np.ndarray]:
        """Run graph ``name`` on named numpy inputs; the outputs in the sidecar's order."""
        outputs = self.meta["graphs"][name]["outputs"]
        return list(self.session(name).run(outputs, inputs))

    def provenance(self, **extra: Any) -> dict[str, Any]:
        """What a generated image records about its model (PNG metadata)."""
        m = self.meta
        return {"model": m.get("recipe"), "run": m.get("name"), "step": m.get("step"),
                "muselab_version": m.get("muselab_version"), "runtime": "onnx",
                "weights_sha256": m["graphs"]["model"]["sha256"], **extra}
