"""Style transfer speed, as ratios (docs/style.md, "Speed").

1. Arbitrary stylizer (ONNX): muselab's ``ArbitraryStylizer.stylize`` at 256 and 512 px
   against the same two ONNX files in a bare onnxruntime loop (style predictor once +
   transformer once): overhead ratio = muselab / bare.
2. Gatys: optimisation iterations per second (forward + backward) per backbone at 256 px.
3. Fast network: seconds for one 512 x 512 image, and its GFLOP/s against the measured
   fp32 matmul peak.

    python benchmarks/style_latency.py [--device cpu|cuda] [--threads N] [--vgg19 PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, count_flops, matmul_peak_gflops  # noqa: E402


def photo(side: int) -> np.ndarray:
    import skimage.data

    from muselab.style.common import resize

    return resize(skimage.data.astronaut(), (side, side))


def arbitrary(threads: int) -> None:
    from muselab.style.arbitrary import ArbitraryStylizer, fetch_models

    fetch_models()
    st = ArbitraryStylizer(threads=threads)
    style = photo(256)
    x_style = (style.astype(np.float32) / 255)[None]
    vec = st.predict.run(None, {st._p_in: x_style})[0]
    x384 = np.random.default_rng(0).random((1, 384, 384, 3), dtype=np.float32)

    def bare() -> None:
        v = st.predict.run(None, {st._p_in: x_style})[0]
        st.transform.run(None, {st._t_in[0]: x384, st._t_in[1]: v})

    t_bare = best_time(bare, repeats=5)
    del vec
    for side in (256, 512):
        c = photo(side)
        t = best_time(lambda c=c: st.stylize(c, [style]), repeats=5)
        print(f"arbitrary {side}px: muselab {t * 1000:.0f} ms, bare onnxruntime "
              f"{t_bare * 1000:.0f} ms, ratio {t / t_bare:.2f}")


def gatys(device: torch.device, vgg19: str | None) -> None:
    from muselab.errors import MuselabError
    from muselab.models.backbones import load_backbone
    from muselab.style.gatys import StyleLoss, layers_for

    x = torch.from_numpy(photo(256).transpose(2, 0, 1).copy()).float()[None].div(255).to(device)
    names = ["random", "mobilenet-v2", "inception-v3"] + (["vgg19"] if vgg19 else [])
    for name in names:
        try:
            net = load_backbone(name, weights=vgg19 if name == "vgg19" else None,
                                device=str(device))
        except MuselabError as exc:
            print(f"gatys {name}: skipped ({exc})")
            continue
        s, c = layers_for(net)  # type: ignore[arg-type]
        loss_fn = StyleLoss(net, x, [x.flip(3)], [1.0], s, c,  # type: ignore[arg-type]
                            (1.0, 100.0, 1e-3))
        img = x.clone().requires_grad_(True)

        def step(img: torch.Tensor = img, loss_fn: StyleLoss = loss_fn) -> None:
            loss_fn(img)[0].backward()
            if device.type == "cuda":
                torch.cuda.synchronize()

        t = best_time(step, repeats=5)
        print(f"gatys {name} 256px: {1 / t:.1f} iterations/s")


def fast(device: torch.device) -> None:
    from muselab.models.style_nets import ResnetConfig, ResnetGenerator

    net = ResnetGenerator(ResnetConfig()).eval().to(device)
    x = torch.rand(1, 3, 512, 512, device=device)

    def run() -> None:
        with torch.inference_mode():
            net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    t = best_time(run, repeats=5)
    flops = count_flops(run)
    line = f"fast network 512px: {t * 1000:.0f} ms, {flops / 1e9:.1f} GFLOP, " \
           f"{flops / t / 1e9:.1f} GFLOP/s"
    if device.type == "cpu":
        peak, _ = matmul_peak_gflops()
        line += f" = {flops / t / 1e9 / peak:.2f} x the matmul peak ({peak:.0f} GFLOP/s)"
    print(line)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--vgg19", default=None, help="torchvision VGG19 state dict")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    arbitrary(args.threads)
    gatys(device, args.vgg19)
    fast(device)


if __name__ == "__main__":
    main()
