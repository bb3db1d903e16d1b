"""muselab: an open-source AI art studio.

Nothing runs at import time: importing :mod:`muselab` loads no data, no model and
touches no device. Every capability lives in its own subpackage (``muselab.data``,
``muselab.models``, ``muselab.train``, ``muselab.image`` ...).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("muselab")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
