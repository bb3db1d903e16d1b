"""Read TensorFlow.js layers models as npm ``nsfwjs@4.3.0`` ships them.

nsfwjs bundles each model as browserify JavaScript: ``model.min.js`` sets
``exports={modelTopology: ..., weightsManifest: ...}`` as a minified JavaScript object
literal (unquoted keys, ``.5`` numbers, ``!0`` for true) and each
``group1-shardKofN.min.js`` sets ``exports="<base64 of the weight bytes>"``. The weight
bytes are the tfjs binary format: tensors back to back in manifest order, here
8-bit affine-quantised (``value = q * scale + min``, as ``tf.io.decodeWeights`` does).

Nothing here needs Node: a small literal parser and numpy.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from muselab.errors import DataError

_SPACE = re.compile(r"\s*")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_DQ_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_SQ_STRING = re.compile(r"'(?:[^'\\]|\\.)*'", re.S)
_WORDS: dict[str, Any] = {"!0": True, "!1": False, "true": True, "false": False,
                          "null": None, "void 0": None}
_SHARD = re.compile(r'exports="([A-Za-z0-9+/=]*)"')


class _Parser:
    """Recursive-descent parser for a JavaScript object/array literal of plain data."""

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where

    def fail(self, pos: int, what: str) -> DataError:
        near = self.text[pos : pos + 40]
        return DataError(f"{self.where}: cannot parse the model literal at {pos}: {what} "
                         f"(near {near!r})")

    def skip(self, pos: int) -> int:
        match = _SPACE.match(self.text, pos)
        return match.end() if match else pos

    def value(self, pos: int) -> tuple[Any, int]:
        pos = self.skip(pos)
        char = self.text[pos : pos + 1]
        if char == "{":
            return self.obj(pos + 1)
        if char == "[":
            return self.array(pos + 1)
        if char in "\"'":
            return self.string(pos)
        for word, val in _WORDS.items():
            if self.text.startswith(word, pos):
                return val, pos + len(word)
        match = _NUMBER.match(self.text, pos)
        if match:
            raw = match.group()
            is_int = not any(c in raw for c in ".eE")
            return (int(raw) if is_int else float(raw)), match.end()
        raise self.fail(pos, "expected a value")

    def string(self, pos: int) -> tuple[str, int]:
        pattern = _DQ_STRING if self.text[pos] == '"' else _SQ_STRING
        match = pattern.match(self.text, pos)
        if not match:
            raise self.fail(pos, "unterminated string")
        body = match.group()[1:-1]
        if self.text[pos] == "'":
            body = body.replace("\\'", "'").replace('"', '\\"')
        return json.loads(f'"{body}"'), match.end()

    def key(self, pos: int) -> tuple[str, int]:
        pos = self.skip(pos)
        if self.text[pos : pos + 1] in "\"'":
            return self.string(pos)
        match = _IDENT.match(self.text, pos) or _NUMBER.match(self.text, pos)
        if not match:
            raise self.fail(pos, "expected a key")
        return match.group(), match.end()

    def obj(self, pos: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        pos = self.skip(pos)
        if self.text[pos : pos + 1] == "}":
            return out, pos + 1
        while True:
            key, pos = self.key(pos)
            pos = self.skip(pos)
            if self.text[pos : pos + 1] != ":":
                raise self.fail(pos, "expected ':'")
            out[key], pos = self.value(pos + 1)
            pos = self.skip(pos)
            char = self.text[pos : pos + 1]
            if char == "}":
                return out, pos + 1
            if char != ",":
                raise self.fail(pos, "expected ',' or '}'")
            pos += 1

    def array(self, pos: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        pos = self.skip(pos)
        if self.text[pos : pos + 1] == "]":
            return out, pos + 1
        while True:
            item, pos = self.value(pos)
            out.append(item)
            pos = self.skip(pos)
            char = self.text[pos : pos + 1]
            if char == "]":
                return out, pos + 1
            if char != ",":
                raise self.fail(pos, "expected ',' or ']'")
            pos += 1


def parse_js_literal(text: str, where: str = "literal") -> Any:
    """Parse one JavaScript data literal (object, array, string, number) from ``text``."""
    value, end = _Parser(text, where).value(0)
    if text[end:].strip():
        raise _Parser(text, where).fail(end, "trailing text")
    return value


def model_json_from_js(source: str, where: str) -> dict[str, Any]:
    """The ``{modelTopology, weightsManifest}`` object a bundled ``model.min.js`` exports."""
    start = source.find("exports={")
    if start < 0:
        raise DataError(f"{where}: no 'exports={{...}}' model literal found; is this an "
                        "nsfwjs model bundle?")
    value, _ = _Parser(source, where).value(start + len("exports="))
    if not isinstance(value, dict) or "modelTopology" not in value:
        raise DataError(f"{where}: the exported literal has no modelTopology")
    if "weightsManifest" not in value:
        raise DataError(f"{where}: the exported literal has no weightsManifest")
    return value


def shard_bytes_from_js(source: str, where: str) -> bytes:
    """The weight bytes a bundled ``group1-shardKofN.min.js`` exports as base64."""
    match = _SHARD.search(source)
    if not match:
        raise DataError(f"{where}: no 'exports=\"<base64>\"' weight shard found")
    try:
        return base64.b64decode(match.group(1), validate=True)
    except binascii.Error as exc:
        raise DataError(f"{where}: the weight shard is not valid base64: {exc}") from exc


@dataclass(frozen=True)
class WeightSpec:
    """One tensor of a tfjs weights manifest."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: dict[str, Any] | None

    @property
    def count(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes this tensor takes in the weight data."""
        stored = self.quantization["dtype"] if self.quantization else self.dtype
        return self.count * _ITEMSIZE[stored]


_ITEMSIZE = {"float32": 4, "int32": 4, "uint8": 1, "uint16": 2, "float16": 2}


def weight_specs(model_json: dict[str, Any]) -> list[WeightSpec]:
    """All tensors of the manifest, in the order their bytes are stored."""
    specs = []
    for group in model_json["weightsManifest"]:
        for w in group["weights"]:
            specs.append(WeightSpec(str(w["name"]), tuple(int(d) for d in w["shape"]),
                                    str(w["dtype"]), w.get("quantization")))
    return specs


def _decode(spec: WeightSpec, raw: bytes) -> np.ndarray:
    q = spec.quantization
    if q is None:
        if spec.dtype not in ("float32", "int32"):
            raise DataError(f"tfjs weight {spec.name}: unsupported dtype {spec.dtype}")
        return np.frombuffer(raw, dtype=np.dtype(spec.dtype).newbyteorder("<")).copy()
    kind = q["dtype"]
    if kind == "float16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float32)
    if kind in ("uint8", "uint16"):
        ints = np.frombuffer(raw, dtype=np.uint8 if kind == "uint8" else "<u2")
        # tf.io.decodeWeights: v * scale + min in float64, stored as float32
        return (ints.astype(np.float64) * float(q["scale"]) + float(q["min"])).astype(np.float32)
    raise DataError(f"tfjs weight {spec.name}: unsupported quantization {kind}")


def decode_weights(specs: list[WeightSpec], data: bytes, where: str) -> dict[str, np.ndarray]:
    """Split the concatenated shard bytes into named float32 arrays of their shapes."""
    need = sum(s.nbytes for s in specs)
    if need != len(data):
        raise DataError(f"{where}: the weight shards hold {len(data)} bytes but the manifest "
                        f"describes {need}; the package is corrupt or not the pinned version")
    out: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        raw = data[offset : offset + spec.nbytes]
        offset += spec.nbytes
        out[spec.name] = _decode(spec, raw).astype(np.float32).reshape(spec.shape)
    return out


def conv_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras ``Conv2D`` kernel ``[kh, kw, in, out]`` -> PyTorch ``[out, in, kh, kw]``."""
    return np.transpose(kernel, (3, 2, 0, 1))


def depthwise_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras ``DepthwiseConv2D`` ``[kh, kw, in, mult]`` -> PyTorch ``[in*mult, 1, kh, kw]``."""
    kh, kw, cin, mult = kernel.shape
    return np.transpose(kernel, (2, 3, 0, 1)).reshape(cin * mult, 1, kh, kw)


def batchnorm(weights: dict[str, np.ndarray], layer: str, prefix: str) -> dict[str, np.ndarray]:
    """Keras ``BatchNormalization`` ``layer`` -> ``{prefix.weight, .bias, .running_*}``.

    A layer built with ``scale=False`` (InceptionV3) has no gamma: weight is ones.
    """
    mean = weights[f"{layer}/moving_mean"]
    gamma = weights.get(f"{layer}/gamma", np.ones_like(mean))
    beta = weights.get(f"{layer}/beta", np.zeros_like(mean))
    return {f"{prefix}.weight": gamma, f"{prefix}.bias": beta,
            f"{prefix}.running_mean": mean,
            f"{prefix}.running_var": weights[f"{layer}/moving_variance"]}
