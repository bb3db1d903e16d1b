"""Run exported models without torch: numpy, onnxruntime and Pillow only.

``pip install muselab[runtime]`` gives exactly these; ``muselab-run`` is the command
(:mod:`muselab.runtime.cli`). :mod:`muselab.runtime.model` loads an export folder
(``model.onnx`` + ``model.json``), :mod:`muselab.runtime.sample` samples GANs, VAEs and
diffusion U-Nets (DDIM in numpy, :mod:`muselab.runtime.ddim`) and stylizes images,
:mod:`muselab.runtime.lm` continues token sequences with a Transformer's KV cache.
Nothing in this package may import torch (tests/runtime checks it).
"""
