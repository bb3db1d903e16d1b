"""ONNX exports: file size, and onnxruntime latency against torch eager on the same inputs.

    python benchmarks/export.py [--threads 2] [--repeats 10]

Graphs (default configurations, batch 1 unless noted): the DCGAN generator at 32 px
(batch 64, a sample grid), the shipped ``emoji-vae32`` decoder (batch 64), one step of
the default diffusion U-Net at 32 px (batch 2: a guided step), the fast style network
on a 256 px image, and one cached decoding step of the shipped ``bach-chorale``
Transformer with 128 tokens in its KV cache. Both runtimes get the same thread count
(default 1). A call's cost is the CPU time of this process (``time.process_time``, all
threads), which a busy shared machine inflates far less than wall time; the best of
``--repeats`` calls after a warm-up is kept.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
import torch
from common import best_time

from muselab.export.api import load_for_export
from muselab.export.onnx import Graph, export_graph
from muselab.export.targets import export_lm, plan_export
from muselab.models.registry import get_model
from muselab.train.run import build_task, resolve_config
from muselab.train.task import DataInfo, Task


def fresh(model: str, info: DataInfo) -> Task:
    """A default-configured, randomly initialised task (latency does not need training)."""
    cfg = resolve_config(model)
    return build_task(get_model(cfg.model), cfg.model_config, info, 0, torch.device("cpu"))


def graphs() -> list[tuple[str, Graph]]:
    out: list[tuple[str, Graph]] = []
    gan = plan_export(fresh("dcgan", DataInfo(32)), {"model": "dcgan"}).graphs[0]
    out.append(("dcgan G, 32 px, batch 64", _batch(gan, 64)))
    vae = load_for_export("emoji-vae32")
    out.append(("emoji-vae32 decoder, batch 64", _batch(plan_export(vae.task, vae.config)
                                                        .graphs[0], 64)))
    unet = plan_export(fresh("diffusion", DataInfo(32)), {"model": "diffusion"}).graphs[0]
    out.append(("diffusion U-Net 32 px, one step, batch 2", unet))
    style = plan_export(fresh("fast-style", DataInfo(256)), {"model": "fast-style"}).graphs[0]
    style.inputs = {"image": torch.rand(1, 3, 256, 256)}
    out.append(("fast style network, 256 px", style))
    lm = load_for_export("bach-chorale")
    step = export_lm(lm.task, lm.config).graphs[0]
    c = lm.task.model.cfg  # type: ignore[attr-defined]
    past = torch.randn(c.n_layer, 1, c.n_head, 128, c.head_dim)
    step.inputs = {"tokens": torch.tensor([[5]]), "past_k": past, "past_v": past.clone()}
    out.append(("bach-chorale Transformer, 1 token, 128 cached", step))
    return out


def _batch(graph: Graph, n: int) -> Graph:
    graph.inputs = {k: torch.cat([v] * (n // len(v))) for k, v in graph.inputs.items()}
    return graph


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} threads")
    print(f"{'graph (CPU ms per call)':<48} {'onnx MiB':>8} {'torch':>8} {'ort':>8} "
          f"{'ort speed-up':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, graph in graphs():
            path = Path(tmp) / f"{len(name)}.onnx"
            export_graph(graph, path)
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            feeds = {k: v.numpy() for k, v in graph.inputs.items()}
            module = graph.module.eval()
            args_t = tuple(graph.inputs.values())

            def run_torch(m: torch.nn.Module = module, a: tuple = args_t) -> None:
                with torch.no_grad():
                    m(*a)

            t_torch = best_time(run_torch, args.repeats, clock=time.process_time)
            t_ort = best_time(lambda s=session, f=feeds: s.run(None, f), args.repeats,
                              clock=time.process_time)
            size = path.stat().st_size / 2**20
            print(f"{name:<48} {size:8.2f} {1000 * t_torch:8.2f} {1000 * t_ort:8.2f} "
                  f"{t_torch / t_ort:11.2f}x")


if __name__ == "__main__":
    main()
