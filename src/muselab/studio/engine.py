"""Models the studio can sample, and the interactive latent operations on them.

A *model* is a training run (``<runs>/NNNNN-name/model.safetensors``) or a shipped model
(``<models>/<name>/model.safetensors``), named by its directory. Every operation is
seeded, so the same request gives the same images; every output is stored in the gallery
with its latent, seed, model, weights hash and parents.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from muselab.errors import ConfigError
from muselab.image.latent import slerp
from muselab.io import sha256_file
from muselab.store import gallery
from muselab.store.gallery import NewItem, NotFoundError
from muselab.studio.settings import Settings

MODEL_FILE = "model.safetensors"


@dataclass(frozen=True)
class ModelRef:
    """A sampleable model on disk."""

    id: str
    origin: Literal["run", "shipped"]
    dir: Path
    recipe: str
    resolution: int
    step: int
    classes: list[str] = field(default_factory=list)
    created: str = ""
    text: bool = False  # a text-to-image model: the prompt steers it


    @property
    def weights(self) -> Path:
        return self.dir / MODEL_FILE

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "origin": self.origin, "recipe": self.recipe,
                "resolution": self.resolution, "step": self.step, "classes": self.classes,
                "created": self.created, "text": self.text}


def _read_ref(path: Path, origin: Literal["run", "shipped"]) -> ModelRef | None:
    """The model in directory ``path``, or None if it has no readable weights yet."""
    from muselab.train import checkpoint as ck

    weights = path / MODEL_FILE
    if not weights.is_file():
        return None
    try:
        meta = ck.read_metadata(weights)
        config = json.loads(meta["config"])
    except Exception:  # a file being written or not a muselab model: not listed
        return None
    info = config.get("data_info", {})
    if not int(info.get("resolution", 0)) or not int(info.get("channels", 0)):
        return None  # not an image model (music, poetry): their own pages serve them
    return ModelRef(id=path.name, origin=origin, dir=path, recipe=str(config.get("model", "")),
                    resolution=int(info.get("resolution", 0)), step=int(meta.get("step", 0)),
                    classes=list(info.get("class_names", [])),
                    created=str(config.get("created", "")),
                    text=bool(config.get("model_config", {}).get("text", False)))


def list_models(settings: Settings) -> list[ModelRef]:
    """Runs (newest first) then shipped models."""
    from muselab.train.rundir import list_runs

    refs = [_read_ref(p, "run") for p in reversed(list_runs(settings.runs))]
    if settings.models.is_dir():
        refs += [_read_ref(p, "shipped") for p in sorted(settings.models.iterdir()) if p.is_dir()]
    return [r for r in refs if r is not None]


def find_model(settings: Settings, model_id: str) -> ModelRef:
    """The model named ``model_id``; :class:`NotFoundError` if none has weights."""
    origins: tuple[tuple[Path, Literal["run", "shipped"]], ...] = (
        (settings.runs, "run"), (settings.models, "shipped"))
    for root, origin in origins:
        path = root / model_id
        if "/" not in model_id and "\\" not in model_id and model_id not in ("", ".", ".."):
            ref = _read_ref(path, origin) if path.is_dir() else None
            if ref is not None:
                return ref
    raise NotFoundError(f"model {model_id!r} does not exist or has no weights yet; "
                        "GET /api/models lists the models (train one on the Train page)")




@dataclass
class Loaded:
    """A model in memory: its pipeline, weights hash and (lazily) its GANSpace directions."""

    ref: ModelRef
    pipe: Any  # muselab.image.pipeline.ImagePipeline
    weights_hash: str
    directions: Directions | None = None


@dataclass
class Directions:
    """Principal directions in latent space (GANSpace, Harkonen et al. 2020).

    ``vectors`` [K, Z]: latent displacement per unit of principal coordinate;
    ``sigma`` [K]: standard deviation of each coordinate (slider unit = 1 sigma);
    ``explained`` [K]: fraction of output variance of each component.
    """

    vectors: Tensor
    sigma: Tensor
    explained: Tensor


class Engine:
    """Loads models on demand (an LRU of ``settings.cache_models``) and runs latent ops."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: OrderedDict[tuple[str, int], Loaded] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, model_id: str) -> Loaded:
        """The model ``model_id`` (reloaded when its weights file changes, e.g. training)."""
        from muselab.models.zoo import pipeline_class

        ref = find_model(self.settings, model_id)
        key = (str(ref.weights), ref.weights.stat().st_mtime_ns)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            pipe = pipeline_class(ref.dir).from_run(ref.dir, device="auto")
            loaded = Loaded(ref, pipe, sha256_file(ref.weights))
            self._cache[key] = loaded
            while len(self._cache) > self.settings.cache_models:
                self._cache.popitem(last=False)
            return loaded

    # -- image operations -------------------------------------------------------------------

    def generate(self, conn: Any, model_id: str, seeds: Sequence[int], source: str = "create",
                 prompt: str = "", job_id: int | None = None) -> list[int]:
        """One image per seed (each a pure function of its seed)."""
        m = self.load(model_id)
        z = m.pipe.latents(list(seeds)).flatten(1)  # [N, Z]
        params = [{"op": "seed", "class": _class_of(m, i)} for i in range(len(seeds))]
        return self._store(conn, m, z, params, seeds=list(seeds), source=source, prompt=prompt,
                           job_id=job_id)

    def variations(self, conn: Any, item_id: int, n: int, strength: float, seed: int,
                   source: str = "create") -> list[int]:
        """``n`` children of one image: slerp of its latent towards fresh ones by
        ``strength`` (0 = the same image, 1 = unrelated)."""
        item, m = self._item_model(conn, item_id)
        base = torch.from_numpy(item.latent)[None]  # [1, Z]
        noise = m.pipe.task.sample_z(n, torch.Generator().manual_seed(seed)).flatten(1)  # [n, Z]
        z = slerp(base.expand_as(noise), noise, strength)  # [n, Z]
        params = [{"op": "variation", "strength": strength, "seed": seed, "index": i,
                   "class": item.params.get("class")} for i in range(n)]
        return self._store(conn, m, z, params, parents=[[item_id]] * n, source=source,
                           prompt=item.prompt)

    def breed(self, conn: Any, parent_ids: Sequence[int], n: int, strength: float, seed: int,
              crossover: Literal["uniform", "slerp"] = "uniform") -> list[int]:
        """``n`` children of the selected parents (Picbreeder, Secretan et al. 2008): each
        child crosses two random parents (uniform crossover of latent coordinates, Syswerda
        1989, or a slerp blend), then mutates by ``strength`` towards a fresh latent."""
        if not parent_ids:
            raise ConfigError("breed: select at least one parent image")
        pairs = [self._item_model(conn, p) for p in parent_ids]
        models = {m.ref.id for _, m in pairs}
        if len(models) > 1:
            raise ConfigError(f"breed: parents come from different models ({sorted(models)}); "
                              "select parents of one model")
        m = pairs[0][1]
        zs = torch.stack([torch.from_numpy(it.latent) for it, _ in pairs])
        g = torch.Generator().manual_seed(seed)
        a = torch.randint(len(zs), (n,), generator=g)
        b = torch.randint(len(zs), (n,), generator=g)
        if crossover == "uniform":
            mask = torch.rand(n, zs.shape[1], generator=g) < 0.5  # [n, Z]
            child = torch.where(mask, zs[a], zs[b])
        else:
            t = torch.rand(n, 1, generator=g)  # [n, 1]
            child = torch.stack([slerp(zs[a[i]], zs[b[i]], float(t[i])) for i in range(n)])
        noise = m.pipe.task.sample_z(n, g).flatten(1)  # [n, Z]
        z = slerp(child, noise, strength)
        params = [{"op": "breed", "strength": strength, "seed": seed, "crossover": crossover,
                   "index": i, "class": pairs[int(a[i])][0].params.get("class")}
                  for i in range(n)]
        lineage = [sorted({int(parent_ids[int(a[i])]), int(parent_ids[int(b[i])])})
                   for i in range(n)]
        return self._store(conn, m, z, params, parents=lineage, source="breed",
                           prompt=pairs[int(a[0])][0].prompt if n else "")

    def directions(self, model_id: str, k: int = 8, samples: int = 512) -> Directions:
        """GANSpace (Harkonen 2020): PCA of the generator's output over random latents,
        then the latent directions that produce each principal component, found by least
        squares regression of the latents on the principal coordinates. (GANSpace takes an
        early feature layer; the output layer works for every model we sample.)"""
        m = self.load(model_id)
        if m.directions is not None and len(m.directions.sigma) >= k:
            return m.directions
        g = torch.Generator().manual_seed(0)
        z = m.pipe.task.sample_z(samples, g).flatten(1)  # [N, Z]
        labels = m.pipe.label_ids(samples, None)
        feats = torch.from_numpy(_decode(m, z, labels)).flatten(1).float() / 255  # [N, D]
        feats = feats - feats.mean(0)
        _, s, v = torch.linalg.svd(feats, full_matrices=False)  # v: [min(N,D), D]
        kk = min(k, v.shape[0])
        coords = feats @ v[:kk].T  # [N, K]
        sol = torch.linalg.lstsq(coords, z - z.mean(0)).solution  # [K, Z]
        var = s**2
        m.directions = Directions(vectors=sol, sigma=coords.std(0),
                                  explained=var[:kk] / var.sum())
        return m.directions

    def explore(self, conn: Any, model_id: str, coeffs: Sequence[float], seed: int | None = None,
                item_id: int | None = None, keep: bool = False) -> tuple[bytes, int | None]:
        """Move a latent along the principal directions by ``coeffs`` (in sigmas); a PNG of
        the result, stored in the gallery when ``keep``."""
        m = self.load(model_id)
        d = self.directions(model_id, k=max(1, len(coeffs)))
        base, parents, cls, prompt = self._base_latent(conn, m, seed, item_id)
        c = torch.tensor(list(coeffs), dtype=torch.float32)[: len(d.sigma)]  # [K]
        z = base + ((c * d.sigma[: len(c)])[:, None] * d.vectors[: len(c)]).sum(0)  # [Z]
        params = {"op": "explore", "coeffs": [float(x) for x in c], "seed": seed, "class": cls}
        image = _decode(m, z[None], _labels(m, [cls]), prompt)[0]
        kept = None
        if keep:
            kept = self._store(conn, m, z[None], [params], parents=[parents], source="explore",
                               seeds=[seed or 0] if item_id is None else None,
                               prompt=prompt)[0]
        return _png_bytes(image), kept

    def interpolate(self, conn: Any, item_ids: Sequence[int], frames: int, fps: float = 12.0
                    ) -> int:
        """A slerp walk through the images' latents (looping) as a GIF in the gallery."""
        from muselab.image.io import save_gif
        from muselab.image.latent import walk

        if len(item_ids) < 2:
            raise ConfigError("interpolate: pick at least two images")
        pairs = [self._item_model(conn, i) for i in item_ids]
        m = pairs[0][1]
        if len({mm.ref.id for _, mm in pairs}) > 1:
            raise ConfigError("interpolate: the images come from different models")
        zs = torch.stack([torch.from_numpy(it.latent) for it, _ in pairs])
        path = walk(zs, frames, loop=True)  # [K*F, Z]
        cls = pairs[0][0].params.get("class")
        images = _decode(m, path, _labels(m, [cls] * len(path)), pairs[0][0].prompt)
        rel = _new_file("gif")
        save_gif(self.settings.media_dir() / rel, list(images), fps=fps,
                 comment=json.dumps(m.pipe.provenance(op="interpolate", items=list(item_ids))))
        return gallery.add_item(conn, NewItem(
            kind="gif", file=rel, mime="image/gif", params={"op": "interpolate",
                                                              "frames": frames, "fps": fps},
            model=m.ref.id, weights_hash=m.weights_hash, source="explore",
            parents=list(item_ids)))

    # -- helpers ----------------------------------------------------------------------------

    def _item_model(self, conn: Any, item_id: int) -> tuple[gallery.Item, Loaded]:
        item = gallery.get_item(conn, item_id)
        if item.latent is None:
            raise ConfigError(f"image {item_id} has no latent (it was not generated by a "
                              "latent model), so it cannot be varied or bred")
        return item, self.load(item.model)

    def _base_latent(self, conn: Any, m: Loaded, seed: int | None, item_id: int | None
                     ) -> tuple[Tensor, list[int], str | None, str]:
        """(latent, parents, class, prompt) of an image, or of a fresh seed."""
        if item_id is not None:
            item, mm = self._item_model(conn, item_id)
            if mm.ref.id != m.ref.id:
                raise ConfigError(f"image {item_id} comes from model {mm.ref.id}, "
                                  f"not {m.ref.id}")
            return (torch.from_numpy(item.latent), [item_id], item.params.get("class"),
                    item.prompt)
        z = m.pipe.latents([seed or 0]).flatten(1)[0]  # [Z]
        return z, [], _class_of(m, 0), ""

    def _store(self, conn: Any, m: Loaded, z: Tensor, params: list[dict[str, Any]],
               parents: Sequence[Sequence[int]] | None = None, seeds: list[int] | None = None,
               source: str = "", prompt: str = "", job_id: int | None = None) -> list[int]:
        """Decode ``z`` [N, Z], write PNGs with provenance, then add the gallery rows."""
        from muselab.image.io import save_png

        images = _decode(m, z, _labels(m, [p.get("class") for p in params]), prompt)
        media = self.settings.media_dir()
        new = []
        for i, image in enumerate(images):
            seed = seeds[i] if seeds else None
            rel = _new_file("png")
            noted = {"prompt": prompt} if prompt else {}
            save_png(media / rel, image, m.pipe.provenance(**{"seed": seed, **params[i], **noted}))
            new.append(NewItem(kind="image", file=rel, params=params[i], seed=seed,
                               model=m.ref.id, weights_hash=m.weights_hash,
                               latent=z[i].numpy(), source=source, prompt=prompt,
                               job_id=job_id, parents=parents[i] if parents else ()))
        try:
            return gallery.add_items(conn, new)
        except BaseException:
            for it in new:  # the rows were rolled back: do not leave orphan files
                (media / it.file).unlink(missing_ok=True)
            raise


def is_text_model(m: Loaded) -> bool:
    """Whether the model draws from a text prompt (a text-to-image diffusion model)."""
    return bool(getattr(m.pipe, "is_text", False))


def _decode(m: Loaded, z: Tensor, labels: Tensor | None, prompt: str = "") -> np.ndarray:
    """Flat latents [N, Z] -> uint8 [N, H, W, C]; a text model is guided by ``prompt`` (for
    the other models the prompt is only a note). The studio keeps every latent flat (a
    diffusion model's x_T too) and gives it back its shape here."""
    z = z.reshape(len(z), *m.pipe.task.sample_z(1).shape[1:])  # [N, ...] as the model wants
    if is_text_model(m) and prompt.strip():
        return np.asarray(m.pipe.decode(z, labels, prompt=prompt))
    return np.asarray(m.pipe.decode(z, labels))


def _class_of(m: Loaded, index: int) -> str | None:
    names = m.pipe.class_names
    return names[index % len(names)] if names else None


def _labels(m: Loaded, classes: Sequence[str | None]) -> Tensor | None:
    names = m.pipe.class_names
    if not names:
        return None
    return torch.tensor([names.index(c) if c in names else i % len(names)
                         for i, c in enumerate(classes)], dtype=torch.long)


def _new_file(ext: str) -> str:
    """A fresh relative media path, fanned out over 256 folders."""
    name = uuid.uuid4().hex
    return f"{name[:2]}/{name}.{ext}"


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()
