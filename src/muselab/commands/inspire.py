"""``muselab`` commands: cross-modal works (``music2video``, ``triptych``, ``inspire``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from muselab.commands import out, user_errors


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("music2video")(music2video)
    app.command("triptych")(triptych)
    app.command("inspire")(inspire)


@user_errors
def music2video(
    piece: Annotated[Path, typer.Argument(help="A MIDI (.mid) or WAV (.wav) file.")],
    model: Annotated[str, typer.Option(help="Image model: a zoo name, run or weights file "
                                            "(a VAE or GAN).")] = "emoji-vae32",
    out_path: Annotated[Path, typer.Option("--out", help="The MP4 to write (OUT.json holds "
                                           "the provenance).")] = Path("video.mp4"),
    fps: Annotated[float, typer.Option(help="Frames per second.", min=1, max=60)] = 12.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same video).")] = 0,
    size: Annotated[int, typer.Option(help="Frame side in pixels (multiple of 16).")] = 256,
    gif: Annotated[bool, typer.Option("--gif", help="Write GIF + WAV + HTML instead of an "
                                      "MP4 (the fallback used when ffmpeg is missing).")]
        = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
) -> None:
    """Music -> video: tempo, loudness, pitch contour and key steer a latent walk."""
    from muselab.crossmodal.music2video import WalkConfig, music_to_video

    res = music_to_video(piece, out_path, model=model, fps=fps, seed=seed,
                         cfg=WalkConfig(size=size), device=device, fallback=gif)
    a = res.record["audio"]
    out.print(f"wrote {res.path}: {res.frames} frames at {res.fps:g} fps ({res.duration:.2f} s; "
              f"{a['key']}, {a['tempo_bpm']:g} bpm)")
    if "audio_note" in res.record:
        out.print(f"note: {res.record['audio_note']}")


@user_errors
def triptych(
    theme: Annotated[str, typer.Argument(help='The theme, e.g. "autumn rain at night".')],
    lang: Annotated[str, typer.Option(help="Poem language: zh or en.")] = "en",
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Folder to write (and FOLDER.zip); default triptych-<theme>.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same triptych).")] = 0,
    image_model: Annotated[str, typer.Option(help="Text-to-image model (zoo name, run or "
                                                  "file).")] = "emoji-text32",
    poem_model: Annotated[str | None, typer.Option(help="Verse model (default: the shipped "
                                                        "one for --lang).")] = None,
    music_model: Annotated[str | None, typer.Option(help="Music model (default "
                                                         "bach-chorale).")] = None,
    bars: Annotated[int, typer.Option(help="Bars of music.", min=1, max=64)] = 8,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
) -> None:
    """Theme -> a poem, an image and music from one theme embedding (HTML page + zip)."""
    import re

    from muselab.crossmodal.triptych import check_lang, make_triptych

    check_lang(lang)
    slug = "-".join(re.findall(r"\w+", theme.lower()))[:40] or "theme"
    res = make_triptych(theme, out_path or Path(f"triptych-{slug}"), lang=lang, seed=seed,
                        image_model=image_model, poem_model=poem_model,
                        music_model=music_model, bars=bars, device=device, progress=True)
    out.print(f"wrote {res.folder / 'index.html'} and {res.zip}")
    out.print((res.folder / "poem.txt").read_text("utf-8").rstrip())


@user_errors
def inspire(
    folder: Annotated[Path, typer.Argument(help="A folder of your images (png, jpg, ...).")],
    out_path: Annotated[Path, typer.Option("--out", help="Folder for the mood board "
                                           "(moodboard.png), inspire.json and the parts.")]
        = Path("inspire"),
    model: Annotated[str, typer.Option(help="Image model for variations and surprises (a "
                                            "VAE: zoo name, run or file).")] = "emoji-vae32",
    colours: Annotated[int, typer.Option(help="Palette size.", min=1, max=16)] = 5,
    variations: Annotated[int, typer.Option(help="Variations per work.", min=0, max=16)] = 4,
    surprise: Annotated[int, typer.Option(help="'Surprise me' works.", min=0, max=32)] = 4,
    remix: Annotated[bool, typer.Option(help="Style remixes (arbitrary stylizer).")] = True,
    value_model: Annotated[Path | None, typer.Option(
        help="A fitted value model folder (muselab rate fit); default: the aesthetic "
             "prior.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
) -> None:
    """Inspiration: palettes, composition, style, neighbours, variations, a mood board."""
    from muselab.crossmodal.inspire import InspireConfig
    from muselab.crossmodal.inspire import inspire as run

    cfg = InspireConfig(colours=colours, variations=variations, surprise=surprise,
                        remix=remix, model=model, seed=seed)
    res = run(folder, out_path, cfg, value_dir=value_model, device=device)
    for w in res.report["works"]:
        pal = " ".join(p["hex"] for p in w["palette"])
        c = w["composition"]
        out.print(f"{w['file']}: palette {pal}; thirds {c['thirds']:.2f}, symmetry "
                  f"{c['symmetry_lr']:.2f}, edges {c['edge_density']:.2f}; nearest "
                  f"{w['neighbours'][0]['name']!r}")
    if res.report["remix_note"]:
        out.print(f"note: {res.report['remix_note']}")
    out.print(f"wrote {res.board} and {out_path / 'inspire.json'}")
