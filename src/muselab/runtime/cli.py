"""``muselab-run``: use exported models with numpy, onnxruntime and Pillow only (no torch).

    muselab-run info MODEL.onnx
    muselab-run sample MODEL.onnx --seeds 0-7 --out DIR [--class NAME] [--prompt TEXT]
    muselab-run stylize MODEL.onnx IMAGE --out FILE.png
    muselab-run tokens MODEL.onnx --prompt-ids 0,5,9 --n 32

Errors a user can act on print one ``error: ...`` line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from muselab.errors import ConfigError, DataError, MuselabError
from muselab.runtime.model import OnnxModel


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except MuselabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="muselab-run", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="What an exported model is and how to run it.")
    info.add_argument("model", type=Path)
    info.set_defaults(func=_info)

    s = sub.add_parser("sample", help="Images from seeds (GAN, VAE, diffusion exports).")
    s.add_argument("model", type=Path)
    s.add_argument("--seeds", default="0-7", help="e.g. 0-7, 1,5,9 (default 0-7)")
    s.add_argument("--out", type=Path, default=Path("samples"), help="output folder")
    s.add_argument("--class", dest="label", help="class name (class-conditional models)")
    s.add_argument("--prompt", help="a prompt exported with: muselab export --prompt")
    s.add_argument("--embedding", type=Path, help="a prompt embedding [D] as .npy")
    s.add_argument("--steps", type=int, help="DDIM steps (default: the model's)")
    s.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    s.add_argument("--eta", type=float, default=0.0, help="DDIM noise (0: deterministic)")
    s.add_argument("--batch", type=int, default=8, help="images per network call")
    s.set_defaults(func=_sample)

    st = sub.add_parser("stylize", help="Stylize or translate one image.")
    st.add_argument("model", type=Path)
    st.add_argument("image", type=Path)
    st.add_argument("--out", type=Path, required=True, help="output PNG")
    st.add_argument("--reverse", action="store_true", help="CycleGAN: translate B to A")
    st.set_defaults(func=_stylize)

    t = sub.add_parser("tokens", help="Continue a token sequence (Transformer exports).")
    t.add_argument("model", type=Path)
    t.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    t.add_argument("--n", type=int, default=32, help="new tokens")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--temperature", type=float, default=1.0)
    t.add_argument("--top-k", type=int)
    t.set_defaults(func=_tokens)
    return p


def _info(args: argparse.Namespace) -> None:
    meta = OnnxModel.load(args.model).meta
    keep = {k: v for k, v in meta.items() if k not in ("config", "schedule")}
    if "schedule" in meta:
        keep["schedule"] = {k: v for k, v in meta["schedule"].items() if k != "alpha_bar"}
    print(json.dumps(keep, indent=2, sort_keys=True))


def _sample(args: argparse.Namespace) -> None:
    from muselab.image.io import make_grid, save_png
    from muselab.io import ensure_dir
    from muselab.runtime.sample import generate, parse_seeds, prompt_embedding

    model = OnnxModel.load(args.model)
    seeds = parse_seeds(args.seeds)
    if args.prompt is not None and args.embedding is not None:
        raise ConfigError("--prompt and --embedding: give one")
    emb = None
    if args.prompt is not None:
        emb = prompt_embedding(model, args.prompt)
    elif args.embedding is not None:
        emb = _read_npy(args.embedding)
    images = generate(model, seeds, label=args.label, embedding=emb, steps=args.steps,
                      guidance=args.guidance, eta=args.eta, batch=args.batch,
                      progress=_Progress("sampling") if model.kind == "diffusion" else None)
    out = ensure_dir(args.out)
    settings = {"steps": args.steps, "guidance": args.guidance, "eta": args.eta,
                "class": args.label, "prompt": args.prompt}
    signed = _can_sign()
    for seed, img in zip(seeds, images, strict=True):
        save_png(out / f"seed{seed:04d}.png", img, model.provenance(seed=seed, **settings),
                 provenance=signed)
    save_png(out / "grid.png", make_grid(images), model.provenance(seeds=seeds, **settings),
             provenance=signed)
    print(f"wrote {len(images)} images and grid.png to {out}")


def _stylize(args: argparse.Namespace) -> None:
    from PIL import Image

    from muselab.image.io import save_png
    from muselab.runtime.sample import stylize

    model = OnnxModel.load(args.model)
    try:
        with Image.open(args.image) as im:
            image = np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise DataError(f"{args.image}: cannot read the image ({exc})") from exc
    graph = "reverse" if args.reverse else "model"
    if graph not in model.meta["graphs"]:
        raise ConfigError("--reverse: this model has no reverse graph (CycleGAN only)")
    save_png(args.out, stylize(model, image, graph), model.provenance(input=str(args.image)),
             provenance=_can_sign())
    print(f"wrote {args.out}")


def _tokens(args: argparse.Namespace) -> None:
    from muselab.runtime.lm import generate_tokens

    try:
        prompt = [int(t) for t in args.prompt_ids.split(",")]
    except ValueError:
        raise ConfigError(f"--prompt-ids {args.prompt_ids!r}: comma-separated integers") from None
    tokens = generate_tokens(OnnxModel.load(args.model), prompt, args.n, seed=args.seed,
                             temperature=args.temperature, top_k=args.top_k)
    print(",".join(map(str, tokens)))


#: What muselab.provenance needs beyond the runtime's packages (signatures, watermark).
PROVENANCE_PACKAGES = ("cryptography", "scipy")


def _can_sign() -> bool | None:
    """None (the default: watermark and signed provenance, muselab.provenance) where its
    packages are installed; else False, with a note: the PNGs keep their metadata."""
    import importlib.util

    missing = [p for p in PROVENANCE_PACKAGES if importlib.util.find_spec(p) is None]
    if not missing:
        return None
    print(f"note: {' and '.join(missing)} not installed: PNGs carry their muselab metadata "
          f"but no watermark or signed provenance (pip install {' '.join(missing)})",
          file=sys.stderr)
    return False


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.asarray(np.load(path, allow_pickle=False), dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise DataError(f"--embedding {path}: not a .npy array ({exc})") from exc


class _Progress:
    """One stderr line per step with the estimated time left."""

    def __init__(self, what: str) -> None:
        self.what, self.start = what, time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        spent = time.perf_counter() - self.start
        eta = spent / done * (total - done)
        end = "\n" if done == total else "\r"
        if done < total and not sys.stderr.isatty():
            return
        print(f"{self.what} {done}/{total} [{spent:.1f}s, ETA {eta:.1f}s]", end=end,
              file=sys.stderr, flush=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
