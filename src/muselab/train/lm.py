"""Language-model training for the ONE Trainer: token corpora, batches, the LM task.

* :class:`TokenCorpus`: a tokenised corpus (train / held-out token streams, piece
  offsets, the vocabulary) stored as one ``.tokens.npz`` file (no pickle). Named
  corpora are registered with :func:`register_corpus`; ``data.source`` may be such a
  name or a path to a ``.tokens.npz`` file.
* :class:`LMBatches`: windows of ``block_size + 1`` tokens whose starts (and any
  augmentation, e.g. musical transposition) are drawn from a generator seeded with
  ``(seed, step)``: batch ``k`` is a pure function of ``k``, so resume is exact.
* :class:`LMTask`: a :class:`~muselab.models.transformer.Transformer` trained with AdamW
  (Loshchilov & Hutter 2019), linear warm-up and cosine decay (Loshchilov & Hutter 2017),
  gradient clipping (Pascanu et al. 2013); bf16 autocast on CUDA.

For token corpora the run's :class:`~muselab.train.task.DataInfo` carries the
vocabulary size in ``num_classes`` (each token is a class of the next-token softmax).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from muselab.config import check_range, replace
from muselab.errors import DataError
from muselab.io import atomic_write
from muselab.models.transformer import Transformer, TransformerConfig
from muselab.train.callbacks import Callback, Checkpoint, Periodic, ProgressBar, ScalarLog
from muselab.train.task import Batch, DataInfo, Task, evaluating

if TYPE_CHECKING:
    from muselab.train.trainer import TrainConfig, Trainer

#: Token windows [B, T + 1] + a generator -> augmented windows [B, T + 1].
TokenTransform = Callable[[Tensor, torch.Generator], Tensor]

TOKENS_SUFFIX = ".tokens.npz"
_CORPORA: dict[str, Callable[[], TokenCorpus]] = {}
_TRANSFORMS: dict[str, TokenTransform] = {}


# -- corpora -----------------------------------------------------------------------------------


@dataclass
class TokenCorpus:
    """A tokenised corpus: pieces concatenated into one stream per split."""

    name: str
    vocab: tuple[str, ...]  # token id -> name
    train: np.ndarray  # int32 [N] token ids
    train_offsets: np.ndarray  # int64 [P + 1]: piece p is train[off[p]:off[p + 1]]
    val: np.ndarray  # int32 [M] held-out pieces
    val_offsets: np.ndarray  # int64 [Q + 1]
    #: Token ids a training window may start at (e.g. piece start, bar); empty: anywhere.
    start_tokens: tuple[int, ...] = ()
    #: Name of a registered :data:`TokenTransform` applied to training windows ("": none).
    transform: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # source, licence, tokenizer version

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def pieces(self, split: str = "val") -> list[np.ndarray]:
        """The pieces of ``split`` ("train" or "val") as separate arrays."""
        tokens, off = (self.val, self.val_offsets) if split == "val" else (
            self.train, self.train_offsets)
        return [tokens[off[i] : off[i + 1]] for i in range(len(off) - 1)]

    def limit(self, n_pieces: int) -> TokenCorpus:
        """The corpus with only its first ``n_pieces`` training pieces."""
        n = min(n_pieces, len(self.train_offsets) - 1)
        off = self.train_offsets[: n + 1]
        return TokenCorpus(self.name, self.vocab, self.train[: off[-1]], off, self.val,
                           self.val_offsets, self.start_tokens, self.transform, self.meta)


def pack(pieces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate pieces -> (tokens int32 [N], offsets int64 [P + 1])."""
    lengths = np.array([len(p) for p in pieces], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = np.concatenate(pieces).astype(np.int32) if pieces else np.zeros(0, np.int32)
    return tokens, offsets


def save_corpus(corpus: TokenCorpus, path: Path) -> None:
    """Write ``corpus`` as a ``.tokens.npz`` file (atomically; no pickled objects)."""
    header = {"name": corpus.name, "start_tokens": list(corpus.start_tokens),
              "transform": corpus.transform, "meta": corpus.meta, "format": "muselab-tokens/1"}
    arrays = {"train": corpus.train, "train_offsets": corpus.train_offsets, "val": corpus.val,
              "val_offsets": corpus.val_offsets, "vocab": np.array(corpus.vocab, dtype=str),
              "header": np.array(json.dumps(header))}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)

    atomic_write(path, write)


def load_corpus_file(path: Path) -> TokenCorpus:
    """Read a ``.tokens.npz`` file written by :func:`save_corpus`."""
    if not path.is_file():
        raise DataError(f"token corpus {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            return TokenCorpus(
                name=header["name"], vocab=tuple(str(v) for v in z["vocab"]),
                train=z["train"].astype(np.int32), train_offsets=z["train_offsets"],
                val=z["val"].astype(np.int32), val_offsets=z["val_offsets"],
                start_tokens=tuple(header["start_tokens"]), transform=header["transform"],
                meta=header["meta"])
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path} is not a muselab token corpus: {exc}") from exc


def register_corpus(name: str) -> Callable[[Callable[[], TokenCorpus]], Callable[[], TokenCorpus]]:
    """Register a loader (builds or reads its cache) for ``data.source = name``."""

    def decorate(loader: Callable[[], TokenCorpus]) -> Callable[[], TokenCorpus]:
        _CORPORA[name] = loader
        return loader

    return decorate


def register_transform(name: str) -> Callable[[TokenTransform], TokenTransform]:
    """Register a training-window augmentation under ``name``."""

    def decorate(fn: TokenTransform) -> TokenTransform:
        _TRANSFORMS[name] = fn
        return fn

    return decorate


def _load_builtins() -> None:
    from muselab.models.registry import list_models

    list_models()  # importing the built-in recipe modules registers their corpora


def is_token_source(source: str) -> bool:
    """Whether ``data.source`` names a token corpus (registered, or a .tokens.npz file)."""
    _load_builtins()
    return source in _CORPORA or source.endswith(TOKENS_SUFFIX)


def load_corpus(source: str) -> TokenCorpus:
    """The corpus registered as ``source``, or read from the ``.tokens.npz`` file ``source``."""
    _load_builtins()
    if source in _CORPORA:
        return _CORPORA[source]()
    if source.endswith(TOKENS_SUFFIX):
        return load_corpus_file(Path(source).expanduser())
    raise DataError(f"unknown token corpus {source!r} (registered: {', '.join(sorted(_CORPORA))};"
                    f" or give a *{TOKENS_SUFFIX} file)")


def get_transform(name: str) -> TokenTransform | None:
    if not name:
        return None
    _load_builtins()
    if name not in _TRANSFORMS:
        raise DataError(f"token corpus needs transform {name!r}, which is not registered")
    return _TRANSFORMS[name]


# -- batches -----------------------------------------------------------------------------------


class LMBatches:
    """Deterministic, resumable windows of a token stream: (inputs, next-token targets)."""

    def __init__(
        self,
        tokens: np.ndarray,  # int [N]
        block_size: int,
        batch_size: int,
        seed: int,
        *,
        start_tokens: tuple[int, ...] = (),
        transform: TokenTransform | None = None,
        device: torch.device | None = None,
    ) -> None:
        if len(tokens) < block_size + 2:
            raise DataError(f"token corpus has {len(tokens)} tokens, fewer than one window of "
                            f"block_size + 1 = {block_size + 1}")
        self.tokens = torch.from_numpy(np.asarray(tokens, dtype=np.int64))  # [N]
        self.block_size, self.batch_size, self.seed = block_size, batch_size, seed
        self.transform = transform
        self.device = device or torch.device("cpu")
        last = len(tokens) - block_size - 1
        starts = np.arange(last + 1)
        if start_tokens:
            starts = starts[np.isin(np.asarray(tokens[: last + 1]), start_tokens)]
        if len(starts) == 0:
            raise DataError("token corpus: no window start (no start token early enough)")
        self.starts = torch.from_numpy(starts.astype(np.int64))  # [S]
        self._offsets = torch.arange(block_size + 1)  # [T + 1]

    def batch(self, step: int) -> Batch:
        """The batch of global step ``step``: ``images`` = inputs, ``labels`` = targets [B, T]."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        pick = torch.randint(len(self.starts), (self.batch_size,), generator=g)  # [B]
        windows = self.tokens[self.starts[pick][:, None] + self._offsets]  # [B, T + 1]
        if self.transform is not None:
            windows = self.transform(windows, g)
        windows = windows.to(self.device)
        return Batch(images=windows[:, :-1], labels=windows[:, 1:])


def eval_windows(tokens: np.ndarray, block_size: int, n: int) -> Tensor:
    """Up to ``n`` evenly spaced, fixed windows [n, T + 1] for a held-out loss."""
    last = len(tokens) - block_size - 1
    if last < 0:
        return torch.zeros(0, block_size + 1, dtype=torch.long)
    starts = np.unique(np.linspace(0, last, num=n).astype(np.int64))
    idx = starts[:, None] + np.arange(block_size + 1)[None, :]
    return torch.from_numpy(np.asarray(tokens, dtype=np.int64)[idx])


# -- the task ----------------------------------------------------------------------------------


def _default_net() -> TransformerConfig:
    return TransformerConfig(vocab_size=2)  # vocab_size is set from the corpus by the builder


@dataclass
class LMConfig:
    """A language-model recipe: the network and its optimiser schedule."""

    net: TransformerConfig = field(default_factory=_default_net)
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    decay_steps: int = 3000  # cosine decay from lr to min_lr until here (set to train.steps)
    weight_decay: float = 0.1  # AdamW, on matrices only (nanoGPT)
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0  # max global gradient norm (Pascanu 2013); 0 = off
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    bos_token: int = 0  # first token of generated samples
    corpus: str = ""  # the recipe's default data.source (a registered token corpus)

    def __post_init__(self) -> None:
        check_range("model_config.lr", self.lr, 1e-7, 1.0)
        check_range("model_config.min_lr", self.min_lr, 0.0, self.lr)
        check_range("model_config.warmup_steps", self.warmup_steps, 0)
        check_range("model_config.decay_steps", self.decay_steps, 1)
        check_range("model_config.weight_decay", self.weight_decay, 0.0, 10.0)
        for b in self.betas:
            check_range("model_config.betas", b, 0.0, 0.9999)
        check_range("model_config.grad_clip", self.grad_clip, 0.0)
        check_range("model_config.bos_token", self.bos_token, 0)

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to ``min_lr`` at ``decay_steps``."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        t = min(1.0, (step - self.warmup_steps) / max(1, self.decay_steps - self.warmup_steps))
        return self.min_lr + 0.5 * (1 + math.cos(math.pi * t)) * (self.lr - self.min_lr)


class LMTask(Task):
    """Next-token prediction with one :class:`Transformer` (module ``lm``)."""

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.cfg = self.config = cfg
        self.model = Transformer(cfg.net)
        self.modules = {"lm": self.model}
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizers = {"lm": torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)}

    @property
    def block_size(self) -> int:
        return self.cfg.net.block_size

    def _autocast(self, device: torch.device) -> Any:
        if self.cfg.amp and device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def train_step(self, batch: Batch, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        x, y = batch.images, batch.labels  # [B, T] inputs, [B, T] targets
        assert y is not None
        opt = self.optimizers["lm"]
        for group in opt.param_groups:
            group["lr"] = self.cfg.lr_at(step)
        with self._autocast(x.device):
            _, loss = self.model(x, y)
        assert loss is not None
        opt.zero_grad(set_to_none=True)
        loss.backward()
        logs = {"loss": loss.detach()}
        if self.cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            logs["grad_norm"] = norm.detach()
        opt.step()
        return logs

    @torch.no_grad()
    def loss_on(self, windows: Tensor, batch: int = 32) -> float:
        """Mean next-token loss over fixed windows [N, T + 1] (eval mode, no dropout)."""
        total, count = 0.0, 0
        with evaluating(self.model):
            for i in range(0, len(windows), batch):
                w = windows[i : i + batch].to(self.device)
                with self._autocast(w.device):
                    _, loss = self.model(w[:, :-1], w[:, 1:])
                assert loss is not None
                total += float(loss) * len(w)
                count += len(w)
        return total / max(1, count)

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Prompts [N, T0] -> token sequences [N, block_size] (temperature 1)."""
        n_new = max(0, self.block_size - z.shape[1])
        return self.model.generate(z.to(self.device), n_new)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.full((n, 1), self.cfg.bos_token, dtype=torch.long)  # [n, 1]


def build_lm(cfg: LMConfig, data: DataInfo) -> LMTask:
    """The task with the network's vocabulary sized for the corpus (``data.num_classes``)."""
    if data.num_classes >= 2 and data.num_classes != cfg.net.vocab_size:
        cfg = replace(cfg, net=replace(cfg.net, vocab_size=data.num_classes))
    return LMTask(cfg)


# -- callbacks and run preparation -------------------------------------------------------------


class ValLoss(Periodic):
    """Held-out next-token loss (nats/token) on fixed windows every N steps -> ``val_loss``."""

    order = 10
    name = "val_loss"

    def __init__(self, every: int, windows: Tensor) -> None:
        super().__init__(every)
        self.windows = windows  # [N, T + 1]

    def fire(self, trainer: Trainer) -> None:
        task = trainer.task
        assert isinstance(task, LMTask)
        t0 = time.perf_counter()
        value = task.loss_on(self.windows)
        trainer.record_metric(self.name, value)
        trainer.append_jsonl("metrics.jsonl", {
            "step": trainer.step, "metric": self.name, "value": value, "n": len(self.windows),
            "elapsed_s": trainer.elapsed(), "seconds": time.perf_counter() - t0})


def lm_callbacks(cfg: TrainConfig, val_windows: Tensor) -> list[Callback]:
    """The standard callbacks of a language-model run (no image samples, no SWD)."""
    cbs: list[Callback] = [Checkpoint(cfg.checkpoint_every, cfg.keep_last, monitor="val_loss"),
                           ScalarLog(cfg.log_every)]
    if cfg.metric_every > 0 and len(val_windows):
        cbs.append(ValLoss(cfg.metric_every, val_windows))
    if cfg.tensorboard:
        from muselab.train.callbacks import TensorBoard

        cbs.append(TensorBoard())
    if cfg.progress:
        cbs.append(ProgressBar())
    return cbs


def prepare_lm(
    source: str,
    limit: int | None,
    train: TrainConfig,
    device: torch.device,
    build: Callable[[DataInfo], Task],
) -> tuple[Task, LMBatches, DataInfo, list[Callback]]:
    """Corpus, task, batches and callbacks of a language-model run on ``source``."""
    corpus = load_corpus(source)
    if limit is not None:
        corpus = corpus.limit(limit)
    info = DataInfo(resolution=0, channels=0, num_classes=corpus.vocab_size)
    task = build(info)
    if not isinstance(task, LMTask):
        raise DataError(f"data.source {source!r} is a token corpus, but the model is not a "
                        "language model")
    data = LMBatches(corpus.train, task.block_size, train.batch_size, train.seed,
                     start_tokens=corpus.start_tokens, transform=get_transform(corpus.transform),
                     device=device)
    windows = eval_windows(corpus.val, task.block_size, train.metric_n)
    return task, data, info, lm_callbacks(train, windows)
