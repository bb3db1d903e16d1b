"""Fetch npm ``nsfwjs@4.3.0`` and convert its tfjs models to PyTorch safetensors.

The tarball is downloaded from the npm registry (``$npm_config_registry`` or
registry.npmjs.org; ``npm pack`` as a fallback), checked against the pinned sha256 and kept
in ``<data_home>/backbones/``. Converting reads only the model bundles out of it
(:mod:`muselab.models.backbones.tfjs`), maps the Keras names onto the PyTorch modules and
writes ``<data_home>/backbones/<backbone>-nsfwjs-4.3.0.safetensors`` (float32, the
dequantised 8-bit weights exactly) with its provenance in the metadata. Both steps are
idempotent; ``muselab backbones fetch`` runs them ahead of time.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from muselab.data import npm
from muselab.data.imagefolder import make_progress
from muselab.errors import DataError
from muselab.io import atomic_open, atomic_write, data_home, ensure_dir, sha256_file
from muselab.models.backbones.base import (
    Backbone,
    load_checked,
    read_state_file,
    state_from_numpy,
)
from muselab.models.backbones.tfjs import (
    decode_weights,
    model_json_from_js,
    shard_bytes_from_js,
    weight_specs,
)

logger = logging.getLogger("muselab.backbones")

#: Bump when the conversion changes: older converted files are then rebuilt.
CONVERSION_FORMAT = "1"
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class NpmTarball:
    """A pinned npm package tarball."""

    package: str
    version: str
    sha256: str
    integrity: str
    """The registry's ``dist.integrity`` (sha512), for reference."""

    @property
    def spec(self) -> str:
        """``package@version``."""
        return f"{self.package}@{self.version}"

    @property
    def filename(self) -> str:
        """The tarball's file name, as ``npm pack`` writes it."""
        return f"{self.package}-{self.version}.tgz"

    def url(self) -> str:
        """Tarball URL on the configured registry."""
        registry = os.environ.get("npm_config_registry") or "https://registry.npmjs.org/"
        return f"{registry.rstrip('/')}/{self.package}/-/{self.filename}"


NSFWJS = NpmTarball(
    package="nsfwjs",
    version="4.3.0",
    sha256="4496790efc9bdc6f3e85a826a8e482c1fa1e9db4b3d18c095e98cc0c73cfb12f",
    integrity="sha512-WTKDte0vp1X97N1h34P79G/hG+sVT3+TnDz9di1WseIJR93v11E4viNX7Vg9WsO6HYoR772Nzq2iM8jo3XBZ+g==",
)


@dataclass(frozen=True)
class TfjsModel:
    """Where a backbone's tfjs model lives in the nsfwjs tarball."""

    folder: str
    shards: int


MODELS = {"mobilenet-v2": TfjsModel("mobilenet_v2", 1),
          "inception-v3": TfjsModel("inception_v3", 6)}


def backbones_dir() -> Path:
    """``<data_home>/backbones``: the tarball and the converted weights."""
    return ensure_dir(data_home() / "backbones", "backbones folder")


def tarball_path() -> Path:
    """Where the pinned nsfwjs tarball is cached."""
    return backbones_dir() / NSFWJS.filename


def converted_path(name: str) -> Path:
    """Where a converted backbone's safetensors file goes."""
    return backbones_dir() / f"{name}-{NSFWJS.package}-{NSFWJS.version}.safetensors"


# ------------------------------------------------------------------------------ fetching


def _download(url: str, target: Path, progress: bool) -> None:
    """Stream ``url`` into ``target`` atomically, checking the pinned sha256 before renaming."""
    import hashlib

    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp, \
            atomic_open(target, "wb") as fh:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with make_progress(progress, bytes_=True) as bar:
            task = bar.add_task(f"downloading {NSFWJS.spec}", total=total)
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                fh.write(chunk)
                digest.update(chunk)
                bar.update(task, advance=len(chunk))
        _check_sha(url, digest.hexdigest())


def _check_sha(origin: str | Path, actual: str | None = None) -> None:
    npm.check_sha256(origin, NSFWJS.sha256, NSFWJS.spec, actual=actual)


def _npm_pack(target: Path, progress: bool) -> None:
    """``npm pack`` the pinned package into a scratch folder, check it, move it to ``target``."""
    with tempfile.TemporaryDirectory(prefix="muselab-npm-") as tmp:
        made = npm.npm_pack(NSFWJS.spec, Path(tmp), progress,
                            offline_hint="muselab backbones fetch --tarball PATH")
        _check_sha(made)
        _copy(made, target)


def _copy(src: Path, target: Path) -> None:
    """Copy ``src`` to ``target`` atomically."""

    def write(tmp_name: str) -> None:
        shutil.copyfile(src, tmp_name)

    atomic_write(target, write)


def fetch_tarball(tarball: str | Path | None = None, progress: bool = True) -> Path:
    """The pinned nsfwjs tarball in the data home: cached, copied from ``tarball`` or fetched.

    Raises a :class:`DataError` saying what to do when neither the registry nor ``npm pack``
    can provide it.
    """
    target = tarball_path()
    if tarball is not None:
        given = Path(tarball).expanduser()
        if not given.is_file():
            raise DataError(f"tarball {given} does not exist or is not a file: pass the .tgz "
                            f"made by `npm pack {NSFWJS.spec}`")
        _check_sha(given)
        if given.resolve() != target.resolve():
            _copy(given, target)
        return target
    if target.is_file():
        if sha256_file(target) == NSFWJS.sha256:
            return target
        logger.warning("cached %s has the wrong sha256; fetching it again", target)
    url = NSFWJS.url()
    try:
        _download(url, target, progress)
        return target
    except (urllib.error.URLError, OSError, TimeoutError, DataError) as exc:
        first = f"downloading {url} failed: {getattr(exc, 'reason', exc)}"
    try:
        _npm_pack(target, progress)
        return target
    except DataError as exc:
        raise DataError(
            f"cannot fetch {NSFWJS.spec}: {first}; {exc}. On a machine with network run "
            f"`npm pack {NSFWJS.spec}`, copy the .tgz here and run "
            f"`muselab backbones fetch --tarball PATH`"
        ) from exc


# ------------------------------------------------------------------------------ converting


def read_tfjs_model(tgz: Path, model: TfjsModel) -> dict[str, np.ndarray]:
    """Decode one nsfwjs model of the tarball into ``{keras weight name: float32 array}``."""
    base = f"package/dist/models/{model.folder}/"
    wanted = {f"{base}model.min.js"} | {
        f"{base}group1-shard{k}of{model.shards}.min.js" for k in range(1, model.shards + 1)}
    texts: dict[str, str] = {}
    try:
        with tarfile.open(tgz, mode="r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    src = tar.extractfile(member)
                    if src is not None:
                        texts[member.name] = src.read().decode("utf-8")
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {tgz}: {exc}; delete it and fetch again") from exc
    missing = sorted(wanted - texts.keys())
    if missing:
        raise DataError(f"{tgz} lacks {missing[0]}: not the nsfwjs {NSFWJS.version} layout")
    where = f"{tgz}:{base}"
    model_json = model_json_from_js(texts[f"{base}model.min.js"], where + "model.min.js")
    data = b"".join(shard_bytes_from_js(texts[name], name) for name in sorted(
        wanted - {f"{base}model.min.js"}, key=lambda n: int(n.split("shard")[1].split("of")[0])))
    return decode_weights(weight_specs(model_json), data, where)


def _empty_net(name: str) -> Backbone:
    if name == "mobilenet-v2":
        from muselab.models.backbones.mobilenet_v2 import MobileNetV2

        return MobileNetV2()
    from muselab.models.backbones.inception_v3 import INFO, InceptionV3

    return InceptionV3(INFO)


def _keras_mapper(name: str, net: Backbone) -> Callable[[dict[str, np.ndarray]],
                                                        dict[str, np.ndarray]]:
    if name == "mobilenet-v2":
        from muselab.models.backbones import mobilenet_v2

        return mobilenet_v2.keras_to_state
    from muselab.models.backbones import inception_v3

    assert isinstance(net, inception_v3.InceptionV3)
    return lambda weights: inception_v3.keras_to_state(net, weights)


def _metadata(name: str) -> dict[str, str]:
    from muselab import __version__

    return {"format": CONVERSION_FORMAT, "backbone": name, "source": f"npm:{NSFWJS.spec}",
            "tarball_sha256": NSFWJS.sha256, "licence": "MIT (nsfwjs, Infinite Red)",
            "muselab": __version__}


def convert(name: str, tgz: Path) -> Path:
    """Convert backbone ``name`` from the nsfwjs tarball; write and return its safetensors."""
    from safetensors.torch import save_file

    if name not in MODELS:
        raise DataError(f"{name!r} is not converted from nsfwjs (those are: "
                        f"{', '.join(MODELS)})")
    weights = read_tfjs_model(tgz, MODELS[name])
    net = _empty_net(name)
    try:
        state = state_from_numpy(_keras_mapper(name, net)(weights))
    except KeyError as exc:
        raise DataError(f"{tgz}: the {name} model has no weight {exc}; not nsfwjs "
                        f"{NSFWJS.version}") from exc
    load_checked(net, state, f"{tgz} ({name})")  # shapes must fit the PyTorch modules
    target = converted_path(name)
    atomic_write(target, lambda tmp_name: save_file(net.state_dict(), tmp_name,
                                                    metadata=_metadata(name)))
    return target


def is_converted(name: str) -> bool:
    """True when ``name``'s converted file exists and matches the pinned source and format."""
    path = converted_path(name)
    if not path.is_file():
        return False
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception:  # a truncated or foreign file: convert again
        return False
    return meta.get("format") == CONVERSION_FORMAT and meta.get("tarball_sha256") == NSFWJS.sha256


def fetch_backbone(name: str, tarball: str | Path | None = None, progress: bool = True,
                   force: bool = False) -> Path:
    """Make sure ``name``'s converted weights are in the data home; return their path."""
    if name not in MODELS:
        raise DataError(f"backbone {name!r} has nothing to fetch (fetchable: "
                        f"{', '.join(MODELS)})")
    given = fetch_tarball(tarball, progress) if tarball is not None else None  # checked
    if not force and is_converted(name):
        return converted_path(name)
    tgz = given or fetch_tarball(None, progress)
    with make_progress(progress, spinner=True) as bar:
        bar.add_task(f"converting {name}", total=None)
        return convert(name, tgz)


def load_nsfwjs_weights(net: Backbone, weights: Path | None) -> None:
    """Fill ``net`` from ``weights`` (a converted file) or the data home (fetching once)."""
    if weights is None:
        try:
            path = fetch_backbone(net.name, progress=False)
        except DataError as exc:
            raise DataError(f"backbone {net.name!r} is not converted yet: run `muselab "
                            f"backbones fetch {net.name}` (fetching it now failed: {exc})"
                            ) from exc
        net.provenance |= {"source": f"npm:{NSFWJS.spec}", "tarball_sha256": NSFWJS.sha256}
    else:
        path = Path(weights)
    load_checked(net, read_state_file(path, net.name), f"{path}")
    net.provenance |= {"weights": str(path)}
