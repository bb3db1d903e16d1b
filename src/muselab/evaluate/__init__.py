"""Evaluating generated images (see ``docs/evaluation.md``).

* :mod:`~muselab.evaluate.metrics`: the metric registry (FID, KID, precision/recall,
  density/coverage, SWD) with N and bootstrap intervals; :func:`~muselab.evaluate.metrics.evaluate`;
* :mod:`~muselab.evaluate.stats`: the statistics behind them, in float64;
* :mod:`~muselab.evaluate.features`: feature extractors (pixels, the backbones);
* :mod:`~muselab.evaluate.sources`: runs, folders and data sets as image sets;
* :mod:`~muselab.evaluate.memorisation`: nearest training images, possible copies;
* :mod:`~muselab.evaluate.report`: the Markdown/HTML report of a run;
* :mod:`~muselab.evaluate.swd`: sliced Wasserstein distance;
* :mod:`~muselab.evaluate.aesthetics`, :mod:`~muselab.evaluate.value`: computational
  aesthetics and the value model learned from ratings.

Importing this package imports none of them.
"""
