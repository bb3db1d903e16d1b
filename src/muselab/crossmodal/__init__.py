"""Cross-modal work: a shared text-image-music embedding space and image -> music.

* :mod:`muselab.crossmodal.features`: interpretable image and music features;
* :mod:`muselab.crossmodal.space`: the shared space (MiniLM text, contrastive image and
  music encoders) and retrieval evaluation;
* :mod:`muselab.crossmodal.image2music`: colour-music associations (Palmer et al. 2013)
  steering the music Transformer.

Importing this package loads nothing heavy; see ``docs/crossmodal.md``.
"""
