"""Record the state-dict keys and shapes of pytorch-fid's FID Inception and torchvision's VGG19.

Run once to make ``tests/fixtures/backbones/torchvision_keys.json``, which
``tests/models/test_backbones.py`` checks muselab's ``fid-inception`` and ``vgg19``
against. It executes the model files of the pinned upstream wheels (torchvision is not a
muselab dependency; its package imports are stubbed, only ``torch.nn`` code runs):

    pip download torchvision==0.28.0 pytorch-fid==0.3.0 --no-deps -d /tmp/tv
    cd /tmp/tv && unzip -o -q 'torchvision-*.whl' 'torchvision/models/*' \
        && unzip -o -q 'pytorch_fid-*.whl'
    python scripts/record_torchvision_keys.py /tmp/tv tests/fixtures/backbones

pytorch-fid's ``fid_inception_v3()`` is torchvision's ``Inception3(num_classes=1008,
aux_logits=False)`` with ``Mixed_*`` blocks replaced by subclasses of the same blocks, so
the keys of that ``Inception3`` are the keys of ``pt_inception-2015-12-05-6726825d.pth``.
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path
from typing import Any


def _load(path: Path, name: str) -> types.ModuleType:
    """Execute a torchvision model file with its package-relative imports stubbed."""
    source = path.read_text()
    source = re.sub(r"^from \.\.?\S* import .*$", "", source, flags=re.M)
    module = types.ModuleType(name)
    stubs: dict[str, Any] = {
        "ImageClassification": object, "_log_api_usage_once": lambda *a, **k: None,
        "register_model": lambda *a, **k: (lambda f: f), "Weights": lambda **k: None,
        "WeightsEnum": object, "_IMAGENET_CATEGORIES": [],
        "_ovewrite_named_param": lambda *a, **k: None,
        "handle_legacy_interface": lambda **k: (lambda f: f),
    }
    module.__dict__.update(stubs)
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - pinned upstream
    return module


def main() -> None:
    """Write ``torchvision_keys.json`` with ``{model: {key: shape}}``."""
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    inception = _load(src / "torchvision/models/inception.py", "tv_inception")
    vgg = _load(src / "torchvision/models/vgg.py", "tv_vgg")
    fid = inception.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    vgg19 = vgg.VGG(vgg.make_layers(vgg.cfgs["E"], batch_norm=False), init_weights=False)
    record = {
        "source": "torchvision==0.28.0 models/inception.py + vgg.py (pytorch-fid==0.3.0 uses "
                  "Inception3(num_classes=1008, aux_logits=False))",
        "fid-inception": {k: list(v.shape) for k, v in fid.state_dict().items()},
        "vgg19": {k: list(v.shape) for k, v in vgg19.state_dict().items()},
    }
    (out / "torchvision_keys.json").write_text(json.dumps(record, indent=0) + "\n")
    print({k: len(v) for k, v in record.items() if isinstance(v, dict)})


if __name__ == "__main__":
    main()
