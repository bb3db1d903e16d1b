"""The ``muselab`` console script: a clear message when only the torch-free runtime is
installed (``pip install muselab[runtime]`` gives ``muselab-run``, not ``muselab``)."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from muselab.cli import main as cli_main
    except ModuleNotFoundError as exc:
        sys.exit(f"error: the muselab command needs the full install ({exc.name} is missing): "
                 "pip install 'muselab[full]'. The torch-free runtime (muselab[runtime]) "
                 "provides muselab-run.")
    cli_main()
