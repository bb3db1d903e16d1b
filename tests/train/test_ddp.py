"""Data-parallel training (muselab.train.ddp): 2 gloo processes on this machine."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from muselab.errors import ConfigError, MuselabError
from muselab.train import checkpoint as ck
from muselab.train import ddp
from muselab.train.data import ImageBatches
from muselab.train.task import Batch, Task
from muselab.train.trainer import TrainConfig, Trainer

GLOBAL_BATCH = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def join(rank: int, world: int, port: int) -> None:
    """What torchrun sets for each rank."""
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    ddp.setup(torch.device("cpu"))


class TinyAE(Task):
    """A deterministic task (no noise, no batch norm): MSE of a conv autoencoder."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(),
                                 nn.Conv2d(4, 3, 3, padding=1))
        self.modules = {"net": self.net}
        self.optimizers = {"net": torch.optim.Adam(self.net.parameters(), lr=1e-2)}

    def train_step(self, batch: Batch, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        loss = (self.net(batch.images) - batch.images).pow(2).mean()  # mean over this shard
        self.optimizers["net"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["net"].step()
        return {"loss": loss.detach()}

    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return z

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.zeros(n, 3, 8, 8)


def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)


def one_step(run_dir: Path, batch: int = GLOBAL_BATCH) -> dict[str, Tensor]:
    """Gradients and weights of TinyAE after one Trainer step on the first ``batch`` images
    of the step-0 order (the global batch; its first half is rank 0's shard)."""
    task = TinyAE()
    cfg = TrainConfig(steps=1, batch_size=batch, metric_every=0, ema_decay=0.0,
                      progress=False, tensorboard=False)
    trainer = Trainer(task, ImageBatches(images(), None, batch, seed=3), cfg, run_dir,
                      {}, callbacks=[])
    trainer.fit()
    out = {f"grad.{k}": p.grad.clone() for k, p in task.net.named_parameters()
           if p.grad is not None}
    out.update({f"weight.{k}": p.detach().clone() for k, p in task.net.named_parameters()})
    return out


def grads_worker(rank: int, world: int, port: int, tmp: str) -> None:
    join(rank, world, port)
    save_file(one_step(Path(tmp)), f"{tmp}/rank{rank}.safetensors")
    ddp.cleanup()


def test_two_processes_match_one_process_on_the_doubled_batch(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(grads_worker, args=(2, free_port(), str(tmp_path)), nprocs=2)
    single = one_step(tmp_path)  # one process, the whole batch (2 x the per-rank batch)
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    assert set(ranks[0]) == set(single) and any(k.startswith("grad.") for k in single)
    for key, want in single.items():
        for got in ranks:
            torch.testing.assert_close(got[key], want, rtol=1e-5, atol=1e-6, msg=key)
    # rank 0's own shard alone gives another gradient: the average is what made them equal
    shard0 = one_step(tmp_path, GLOBAL_BATCH // 2)
    assert not torch.allclose(shard0["grad.0.weight"], single["grad.0.weight"], atol=1e-4)


def test_shards_tile_the_global_batch() -> None:
    batch = Batch(torch.arange(12.0).view(6, 1, 1, 2), torch.arange(6))
    parts = [ddp.shard(batch, ddp.World(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat([p.images for p in parts]), batch.images)
    assert torch.equal(torch.cat([p.labels for p in parts if p.labels is not None]),
                       batch.labels)


def test_world_size_must_divide_the_batch() -> None:
    with pytest.raises(ConfigError, match=r"train.batch_size=10 .* 3 processes"):
        ddp.check_batch(10, ddp.World(0, 3))
    assert ddp.check_batch(12, ddp.World(1, 3)) == 4


def test_stale_rendezvous_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv(ddp.TIMEOUT_ENV, "2")
    for k, v in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(MuselabError, match=rf"rendezvous at 127.0.0.1:{port} .*rank 0 of 2"):
        ddp.setup(torch.device("cpu"))
    assert not torch.distributed.is_initialized()


def test_launch_strips_nproc() -> None:
    args = ddp.launch_args(["train", "dcgan", "--nproc", "2", "--steps=3", "--nproc=4"], "train")
    assert args == ["train", "dcgan", "--steps=3"]
    cmd = ddp.torchrun_command(2, args)
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    with pytest.raises(ConfigError, match="--nproc"):
        ddp.launch_args(["sample", "x"], "train")


# -- whole runs -------------------------------------------------------------------------------

TINY_ARGS = ["wgan-gp", "--data", "digits", "--res", "32", "--limit", "64", "--batch", "8",
             "--set", 'model_config.net={"g_width":8,"d_width":8,"max_width":16,"z_dim":8}',
             "--set", "model_config.n_critic=2", "--set", "train.metric_n=32",
             "--set", "train.metric_every=2", "--set", "train.sample_every=0",
             "--set", "train.checkpoint_every=2", "--set", "train.tensorboard=false",
             "--no-progress"]


def run_tensors(run: Path) -> dict[str, Tensor]:
    return load_file(str(run / ck.MODEL_FILE))


def test_ddp_run_resumes_in_one_process(tmp_path: Path, runs: Path) -> None:
    """``--nproc 2`` (torchrun, gloo) writes one run; a single process continues it."""
    from muselab.train.run import resume_run

    env = {**os.environ, "MUSELAB_RUNS": str(runs)}
    proc = subprocess.run([sys.executable, "-m", "muselab.cli", "train", *TINY_ARGS,
                           "--steps", "4", "--nproc", "2"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list(runs.iterdir())
    assert proc.stderr.count("run directory:") == 1  # rank 0 alone reports and writes
    saved = run_tensors(run)
    trainer = resume_run(run, steps=6, train_overrides={"progress": False})
    assert trainer.step == 4 and not trainer.world.distributed
    for name, module in trainer.task.modules.items():
        for key, value in module.state_dict().items():
            torch.testing.assert_close(value, saved[f"{name}.{key}"])
    result = trainer.fit()
    assert result.step == 6 and np.isfinite(result.metrics["swd"])
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 2, 4, 6]  # one record per metric step: no duplicates from rank 1


def exact_worker(rank: int, world: int, port: int, runs: str) -> None:
    from muselab.train.run import resume_run, start_run
    from tests.tiny import tiny_config

    join(rank, world, port)
    extra = {"model_config": {"n_critic": 2}}
    for steps in (4, 2):
        cfg = tiny_config("wgan-gp", steps=steps, extra=extra, batch_size=8, metric_every=0,
                          sample_every=0)
        start_run(cfg, Path(runs)).fit()
    resume_run(sorted(Path(runs).iterdir())[1], steps=4).fit()
    ddp.cleanup()


def test_resume_under_ddp_is_exact(runs: Path) -> None:
    """2 ranks x 4 steps == 2 ranks x 2 steps + resume to 4 (weights, bit for bit)."""
    import torch.multiprocessing as mp

    mp.spawn(exact_worker, args=(2, free_port(), str(runs)), nprocs=2)
    straight, resumed = (run_tensors(r) for r in sorted(runs.iterdir()))
    assert set(straight) == set(resumed)
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_ranks_draw_different_noise_from_one_shared_stream() -> None:
    shared = [torch.Generator().manual_seed(5) for _ in range(2)]
    outs = [ddp.step_generator(shared[r], ddp.World(r, 2), torch.Generator()) for r in range(2)]
    a, b = (torch.randn(4, generator=g) for g in outs)
    assert not torch.allclose(a, b)
    assert torch.equal(shared[0].get_state(), shared[1].get_state())  # still in step

