"""``fid-inception``: the InceptionV3 graph FID is defined with (Heusel et al. 2017).

The weights are not fetched: pass pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``
(its port of TensorFlow's ``inception-2015-12-05`` graph) as ``weights=PATH``. The file is
loaded with ``torch.load(weights_only=True)``; its keys are pytorch-fid's
``FIDInceptionV3`` keys (``Conv2d_1a_3x3.conv.weight`` ... ``Mixed_7c.branch_pool.bn.running_var``,
plus ``fc.*``, ignored). Input RGB in ``[0, 1]`` is mapped to ``[-1, 1]``; ``pooled`` resizes
to 299x299 bilinearly and averages ``Mixed_7c``: the 2048-d pool3 features of the literature.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import Tensor

from muselab.errors import ConfigError
from muselab.io import sha256_file
from muselab.models.backbones.base import (
    Backbone,
    BackboneInfo,
    load_checked,
    read_state_file,
    register_backbone,
)
from muselab.models.backbones.inception_v3 import CONTENT_LAYERS, LAYERS, STYLE_LAYERS, InceptionV3

logger = logging.getLogger("muselab.backbones")

#: torch.hub convention: the file name ends with the first 8 hex digits of its sha256.
FID_SHA256_PREFIX = "6726825d"

INFO = BackboneInfo(
    name="fid-inception",
    in_house=False,
    needs_weights=True,
    fetchable=False,
    licence="your file (pytorch-fid port of TF inception-2015-12-05, Apache-2.0)",
    layers=LAYERS,
    feature_dim=2048,
    input_size=299,
    description="The FID InceptionV3 (pytorch-fid pt_inception-2015-12-05-6726825d.pth); "
                "matches published FID/KID numbers",
    style_layers=STYLE_LAYERS,
    content_layers=CONTENT_LAYERS,
)


class FIDInception(InceptionV3):
    """InceptionV3 with pytorch-fid's patched blocks; input scaled to ``[-1, 1]``."""

    def __init__(self) -> None:
        super().__init__(INFO, fid=True)

    def normalize(self, x: Tensor) -> Tensor:
        """``[0, 1] -> [-1, 1]`` as pytorch-fid's ``normalize_input``."""
        return 2 * x - 1


@register_backbone(INFO)
def build(weights: Path | None, seed: int) -> Backbone:
    """The FID Inception from the user's ``pt_inception-2015-12-05`` state dict."""
    if weights is None:
        raise ConfigError(
            "backbone 'fid-inception' needs weights=PATH (--feature-weights/--backbone-weights): "
            "pytorch-fid's pt_inception-2015-12-05-6726825d.pth, which muselab cannot download"
        )
    path = Path(weights).expanduser()
    net = FIDInception()
    load_checked(net, read_state_file(path, INFO.name), str(path), ignore=("fc.",))
    digest = sha256_file(path)
    literature = digest.startswith(FID_SHA256_PREFIX)
    if not literature:
        logger.warning("%s fits the FID Inception but its sha256 %s... is not pytorch-fid's "
                       "%s...: scores may not match the literature", path, digest[:8],
                       FID_SHA256_PREFIX)
    net.provenance |= {"weights": str(path), "sha256": digest, "matches_literature": literature}
    return net
