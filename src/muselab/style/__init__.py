"""Style transfer in four ways.

- :mod:`muselab.style.arbitrary`: a pretrained arbitrary stylizer (Ghiasi 2017) run with
  onnxruntime; any style image, no training.
- :mod:`muselab.style.gatys`: optimisation of the pixels (Gatys 2016) over a pluggable
  feature backbone.
- :mod:`muselab.style.fast`: a feed-forward network per style (Johnson 2016, instance norm
  per Ulyanov 2016), trained by the one Trainer.
- :mod:`muselab.style.unpaired`: CycleGAN translation between two folders (Zhu 2017).

:mod:`muselab.style.common` holds what they share: reading images, colour preservation,
masks and the seed's blend ``x_new = alpha * x_old + (1 - alpha) * G(s)``.
Nothing runs at import time.
"""
