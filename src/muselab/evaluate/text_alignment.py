"""In-house text alignment of text-to-image models: is the prompted emoji category drawn?

A logistic-regression classifier on the first 64 principal components of standardised
pooled in-house MobileNetV2 features
(``muselab.models.backbones``) is fitted to the emoji categories of the training
split. The model under test draws one image for each held-out caption (the fixed
split of :func:`muselab.data.holdout_split`, never seen in training); the score is the
share whose predicted category is the caption's. The same model with no prompt
(guidance 0) gives the baseline a prompt must beat, and the classifier's accuracy
on the real held-out images gives the ceiling. SWD to the real set is reported too.
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
    clf = make_pipeline(StandardScaler(), PCA(64, random_state=0),
                        LogisticRegression(max_iter=2000))
    with threadpool_limits(1):  # multi-threaded BLAS thrashes on small fits on a busy CPU
        clf.fit(feats[train], ds.labels[train])
    sampler = SamplerConfig(steps=steps)
    prompted = np.concatenate([pipe.text2img(ds.captions[i], [int(i)], sampler=sampler,
                                             guidance=guidance) for i in held])
    plain = pipe.text2img(None, [int(i) for i in held], sampler=sampler)
    want = ds.labels[held]
    hit = clf.predict(cached_extract(extractor, prompted, what="prompted")) == want
    base = clf.predict(cached_extract(extractor, plain, what="unprompted")) == want
    counts: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    for label, ok in zip(want, hit, strict=True):
        counts[ds.class_names[label]] += 1
        hits[ds.class_names[label]] += int(ok)
    return AlignmentReport(
        n=len(held), accuracy=float(hit.mean()), unconditional=float(base.mean()),
        real=float(clf.score(feats[held], want)),
        swd=swd(ds.images[held], prompted).mean,  # against the held-out real images
        per_category={k: [hits[k], counts[k]] for k in sorted(counts)},
        settings={"steps": steps, "guidance": guidance, "features": features,
                  "holdout": holdout,
                  "classifier": "PCA-64 + logistic regression, in-house features"},
        captions=[ds.captions[i] for i in held], images=prompted,
    )
