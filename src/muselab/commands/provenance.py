"""``muselab verify FILE...``: the provenance of files (label, watermark, signature).

Exit codes (for several files, the most severe state wins): 0 verified, 1 tampered,
2 error (unreadable file), 3 watermark only, 4 label only, 5 no provenance. See
:mod:`muselab.provenance.verify`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from muselab.commands import err, out

_STYLE = {"verified": "green", "tampered": "bold red", "error": "red", "watermarked": "cyan",
          "labelled": "yellow", "none": "dim"}


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)


def verify(
    files: Annotated[list[Path], typer.Argument(help="Images, WAV, MIDI or text files.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON lines instead.")]
        = False,
    watermark: Annotated[bool, typer.Option(
        help="Look for the invisible watermark in images (a resized copy takes seconds).")]
        = True,
) -> None:
    """Check the provenance of files: label, watermark, signature, tampered.

    Exit code: 0 verified, 1 tampered, 2 unreadable, 3 watermark only, 4 label only,
    5 none (several files: the most severe).
    """
    from muselab.errors import MuselabError
    from muselab.provenance.verify import EXIT_CODES, Verdict, worst
    from muselab.provenance.verify import verify as check

    verdicts = []
    for f in files:
        try:
            verdicts.append(check(f, watermark=watermark))
        except MuselabError as exc:
            verdicts.append(Verdict(str(f), state="error", notes=[str(exc)]))
    if json_out:
        for v in verdicts:
            out.print(json.dumps(v.as_dict(), ensure_ascii=False), highlight=False,
                      markup=False, soft_wrap=True)
    else:
        table = Table("file", "state", "label", "watermark", "signature", "notes")
        for v in verdicts:
            table.add_row(v.file, f"[{_STYLE[v.state]}]{v.state}[/]", "yes" if v.label else "no",
                          v.watermark or "-", v.signature, "; ".join(v.notes))
        out.print(table)
    for v in verdicts:
        if v.state == "error":
            err.print(f"[bold red]error:[/] {v.notes[0]}", highlight=False)
    raise typer.Exit(EXIT_CODES[worst([v.state for v in verdicts])])
