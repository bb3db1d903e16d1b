"""In-house text alignment of text-to-image models: is the prompted emoji category drawn?

A logistic-regression classifier on the first 64 principal components of standardised
pooled in-house MobileNetV2 features
(``muselab.models.backbones``) is fitted to the emoji categories of the training
split. The model under test draws one image for each held-out caption (the fixed
split of :func:`muselab.data.holdout_split`, never seen in training); the score is the
share whose predicted category is the caption's. The same model with no prompt
(guidance 0) gives the baseline a prompt must beat, and the classifier's accuracy
on the real held-out images gives the ceiling. SWD to the real set is reported too.

A latent model draws through its autoencoder, whose blur alone can move images across the
classifier's boundaries. For such models a second classifier is fitted to the training
images as the model's own autoencoder reconstructs them (the "decoder domain"), and the
same three numbers are reported with it: they measure whether the prompt picks the
category, apart from how sharply the decoder can draw it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from muselab.data import holdout_split, load_images
from muselab.errors import ConfigError


@dataclass
class AlignmentReport:
    n: int
    accuracy: float  # prompted category ranked first, prompted
    unconditional: float  # the same, with no prompt (baseline)
    real: float  # the classifier on the real held-out images (ceiling)
    swd: float  # SWD x1e3 of the prompted images against the same captions' real images
    per_category: dict[str, list[int]] = field(default_factory=dict)  # name: [hits, n]
    #: the same three numbers with the decoder-domain classifier (latent models only)
    decoded: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    captions: list[str] = field(default_factory=list)  # the held-out captions, in order
    images: np.ndarray | None = field(default=None, repr=False)  # uint8 [n,H,W,3], prompted

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["images"]
        return out


def evaluate_alignment(pipe: Any, *, n: int = 100, steps: int = 25, guidance: float = 3.0,
                       features: str = "mobilenet-v2", holdout: int = 100,
                       progress: bool = True) -> AlignmentReport:
    """Score ``pipe`` (a text-to-image DiffusionPipeline) on ``n`` held-out captions."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from muselab.evaluate.features import cached_extract, get_extractor
    from muselab.evaluate.swd import swd
    from muselab.image.samplers import SamplerConfig

    if not getattr(pipe, "is_text", False):
        raise ConfigError("text alignment needs a text-to-image model")
    if not 1 <= n <= holdout:
        raise ConfigError(f"--n {n}: choose 1..{holdout} (the held-out captions)")
    res = pipe.diffusion.image_shape[0]
    ds = load_images("emoji", res, progress=progress)
    assert ds.labels is not None and ds.captions is not None
    train, held = holdout_split(len(ds.images), holdout)
    held = held[:n]
    extractor = get_extractor(features, device="cpu")
    feats = cached_extract(extractor, ds.images, progress=progress, what="emoji")
    labels = ds.labels

    def fit(x: np.ndarray) -> Any:
        clf = make_pipeline(StandardScaler(), PCA(64, random_state=0),
                            LogisticRegression(max_iter=2000))
        with threadpool_limits(1):  # multi-threaded BLAS thrashes on small fits on a busy CPU
            return clf.fit(x[train], labels[train])

    clf = fit(feats)
    sampler = SamplerConfig(steps=steps)
    prompted = np.concatenate([pipe.text2img(ds.captions[i], [int(i)], sampler=sampler,
                                             guidance=guidance) for i in held])
    plain = pipe.text2img(None, [int(i) for i in held], sampler=sampler)
    want = ds.labels[held]
    f_prompted = cached_extract(extractor, prompted, what="prompted")
    f_plain = cached_extract(extractor, plain, what="unprompted")
    hit = clf.predict(f_prompted) == want
    base = clf.predict(f_plain) == want
    decoded: dict[str, float] = {}
    if pipe.diffusion.ae is not None:
        recon = cached_extract(extractor, _reconstruct(pipe, ds.images), progress=progress,
                               what="emoji through the autoencoder")
        dclf = fit(recon)
        decoded = {"accuracy": float((dclf.predict(f_prompted) == want).mean()),
                   "unconditional": float((dclf.predict(f_plain) == want).mean()),
                   "real": float(dclf.score(recon[held], want))}
    counts: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    for label, ok in zip(want, hit, strict=True):
        counts[ds.class_names[label]] += 1
        hits[ds.class_names[label]] += int(ok)
    return AlignmentReport(
        n=len(held), accuracy=float(hit.mean()), unconditional=float(base.mean()),
        real=float(clf.score(feats[held], want)),
        swd=swd(ds.images[held], prompted).mean,  # against the held-out real images
        per_category={k: [hits[k], counts[k]] for k in sorted(counts)}, decoded=decoded,
        settings={"steps": steps, "guidance": guidance, "features": features,
                  "holdout": holdout,
                  "classifier": "PCA-64 + logistic regression, in-house features"},
        captions=[ds.captions[i] for i in held], images=prompted,
    )


def _reconstruct(pipe: Any, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """uint8 [N,H,W,3] -> the same images encoded and decoded by the model's autoencoder
    (posterior means), uint8."""
    import torch

    from muselab.train.data import to_uint8

    task, out = pipe.diffusion, []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
        out.append(to_uint8(task.to_image(task.to_latent(x.to(task.device)))))
    return np.concatenate(out)
