"""Writing Chinese verse with a trained model: load, prompt, constrain, sample.

A model is a ``model.safetensors`` written by the Trainer (a run directory, a run
number, a file) or a shipped model under ``models/<name>/``. Its vocabulary comes
from the file's metadata (``poetry_vocab``, written by :func:`export_model`) or else
from the token corpus the run was trained on.

Each poem ``i`` of a call is drawn with its own generator seeded ``seed + i``, so a
poem is reproduced by its seed alone, whatever ``n`` was.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from muselab.errors import ConfigError, MuselabError
from muselab.models.transformer import Transformer
from muselab.poetry.constraints import ZhFormMask, ZhSpec
from muselab.poetry.prosody import STOP, Form, get_form, is_hanzi
from muselab.poetry.vocab import BOS, EOS, SEP, CharVocab, vocab_of

DEFAULT_MODEL = "tang-poems"
VOCAB_META = "poetry_vocab"
THEME_MODES = ("title", "opening", "both")


@dataclass
class Poem:
    """One generated poem and how it was made."""

    text: str
    lang: str
    form: str
    seed: int
    model: str
    constrained: bool
    theme: str = ""
    acrostic: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def pretty(self) -> str:
        """The poem with one couplet per line (Chinese) or as written (English)."""
        if self.lang == "zh":
            return self.text.replace(STOP, STOP + "\n").strip()
        return self.text

    def record(self) -> dict[str, Any]:
        return asdict(self)


def shipped_models_dir() -> Path:
    """``./models`` when it exists, else the ``models/`` folder of the source checkout."""
    here = Path("models")
    return here if here.is_dir() else Path(__file__).resolve().parents[3] / "models"


def resolve_model_file(spec: str | None, runs_dir: Path | None = None,
                       hint: str = "recipes/tang-poems.sh") -> Path:
    """The ``model.safetensors`` named by ``spec``: a shipped name, a file, a folder or a run."""
    from muselab.train.checkpoint import MODEL_FILE
    from muselab.train.rundir import find_run, runs_root

    name = spec or DEFAULT_MODEL
    candidates = [shipped_models_dir() / name / MODEL_FILE, Path(name), Path(name) / MODEL_FILE]
    for path in candidates:
        if path.is_file():
            return path
    try:
        run = find_run(name, runs_root(runs_dir))
    except MuselabError:
        raise MuselabError(
            f"--model {name!r}: no shipped model (models/{name}/), model file or run of that "
            f"name; train one with {hint}") from None
    if not (run / MODEL_FILE).is_file():
        raise MuselabError(f"--model {name!r}: run {run} has no {MODEL_FILE} yet")
    return run / MODEL_FILE


class ZhPoet:
    """A Chinese-verse language model with its vocabulary."""

    def __init__(self, model: Transformer, vocab: CharVocab, name: str) -> None:
        if model.cfg.vocab_size != len(vocab):
            raise MuselabError(f"model {name}: {model.cfg.vocab_size} outputs but the "
                               f"vocabulary has {len(vocab)} tokens")
        self.model, self.vocab, self.name = model.eval(), vocab, name
        self._line_endings: dict[int, dict[tuple[int, ...], list[int]]] = {}

    @classmethod
    def load(cls, spec: str | None = None, device: str = "cpu",
             runs_dir: Path | None = None) -> ZhPoet:
        import muselab.poetry.recipes  # noqa: F401  (registers poetry-tang)
        from muselab.train import checkpoint as ck
        from muselab.train.lm import LMTask, load_corpus
        from muselab.train.run import load_task

        path = resolve_model_file(spec, runs_dir)
        task, config = load_task(path, device)
        if not isinstance(task, LMTask):
            raise MuselabError(f"{path} is a {config.get('model')!r} model, not a verse model")
        meta = ck.read_metadata(path)
        if VOCAB_META in meta:
            vocab = CharVocab.from_json(json.loads(meta[VOCAB_META]), str(path))
        else:
            source = str(config.get("data", {}).get("source", ""))
            vocab = vocab_of(load_corpus(source).meta, f"token corpus {source!r}")
        return cls(task.model, vocab, spec or DEFAULT_MODEL)

    # ------------------------------------------------------------------ prompts

    def check_chars(self, text: str, what: str) -> None:
        """Every character of ``text`` must be a Chinese character the model knows."""
        bad = [ch for ch in text if not is_hanzi(ch)]
        if bad:
            raise ConfigError(f"{what} {text!r}: {''.join(bad)!r} is not a Chinese character")
        missing = self.vocab.missing(text)
        if missing:
            raise ConfigError(f"{what} {text!r}: the model's vocabulary has no "
                              f"{''.join(missing)!r}; choose other characters")

    def prompt(self, form: Form, title: str) -> list[int]:
        """``<bos> <form> title <sep>``."""
        v = self.vocab
        return [v.id(BOS), v.form_token(form.name), *v.encode(title), v.id(SEP)]

    # ------------------------------------------------------------------ writing

    def write(
        self,
        form: str = "jueju5",
        *,
        n: int = 1,
        seed: int = 0,
        theme: str = "",
        theme_as: str = "title",
        acrostic: str = "",
        rhyme: bool = True,
        tones: bool = False,
        constrained: bool = True,
        novel: bool = False,
        temperature: float = 0.9,
        top_p: float | None = 0.95,
        repetition_penalty: float = 1.1,
    ) -> list[Poem]:
        """``n`` poems of ``form``; see :class:`~muselab.poetry.constraints.ZhSpec`.

        ``novel`` (with ``constrained``) forbids completing any line of the Tang corpus,
        which is then built in the data home if it is not there yet.
        """
        from muselab.poetry.tang import TITLE_MAX

        f = get_form(form)
        if theme_as not in THEME_MODES:
            raise ConfigError(f"--theme-as {theme_as!r}: choose one of {', '.join(THEME_MODES)}")
        theme = "".join(theme.split())
        if theme:
            self.check_chars(theme, "--theme")
        if acrostic:
            self.check_chars(acrostic, "--acrostic")
        title = theme if theme_as in ("title", "both") else ""
        if len(title) > TITLE_MAX:
            raise ConfigError(f"--theme {theme!r} is longer than {TITLE_MAX} characters")
        opening = theme if theme_as in ("opening", "both") else ""
        spec = ZhSpec(f, rhyme=rhyme, tones=tones, acrostic=acrostic, opening=opening)
        prompt = self.prompt(f, title)
        settings = {"temperature": temperature, "top_p": top_p, "rhyme": rhyme, "tones": tones,
                    "theme_as": theme_as, "repetition_penalty": repetition_penalty,
                    "novel": novel}
        mask = ZhFormMask(self.vocab, spec, len(prompt),
                          self._endings(f.chars) if novel else None) if constrained else None
        poems = []
        for i in range(n):
            body = self._sample(prompt, spec.form, mask, seed + i, temperature, top_p,
                                repetition_penalty)
            poems.append(Poem(body, "zh", f.name, seed + i, self.name, constrained, theme,
                              acrostic, settings))
        return poems

    def _endings(self, chars: int) -> dict[tuple[int, ...], list[int]]:
        if chars not in self._line_endings:
            from muselab.poetry.constraints import line_endings
            from muselab.poetry.tang import tang_corpus

            lines = tang_corpus().line_set()
            self._line_endings[chars] = line_endings(lines, self.vocab, chars)
        return self._line_endings[chars]

    def _sample(self, prompt: list[int], form: Form, mask: ZhFormMask | None, seed: int,
                temperature: float, top_p: float | None, rep: float) -> str:
        device = self.model.tok_emb.weight.device
        x = torch.tensor([prompt], dtype=torch.long, device=device)  # [1, T0]
        g = torch.Generator(device=device).manual_seed(seed)
        eos = self.vocab.id(EOS)
        n_new = form.length + (1 if mask is not None else 16)
        n_new = min(n_new, self.model.cfg.block_size - len(prompt))
        out = self.model.generate(x, n_new, temperature=temperature, top_p=top_p,
                                  repetition_penalty=rep, logits_mask=mask, stop_token=eos,
                                  generator=g)  # [1, T0 + n]
        body = out[0, len(prompt) :].tolist()
        if eos in body:
            body = body[: body.index(eos)]
        return self.vocab.decode(body)


def export_model(model_file: Path, out_dir: Path) -> Path:
    """Write ``out_dir/model.safetensors``: fp16 weights, the config and the vocabulary.

    The run's config is kept, with ``data.source`` set to the corpus's registered name
    (``tang``, ``english-verse``) so the file does not name a local path; the corpus's
    vocabulary (Chinese or English) goes into the metadata. Needs only the token corpus.
    """
    from safetensors.torch import load_file, save_file

    import muselab.poetry.recipes  # noqa: F401  (registers the verse corpora)
    from muselab.io import atomic_write
    from muselab.train import checkpoint as ck
    from muselab.train.lm import load_corpus

    meta = ck.read_metadata(model_file)
    config = json.loads(meta["config"])
    source = str(config.get("data", {}).get("source", ""))
    corpus = load_corpus(source)
    vocab = corpus.meta.get("vocab")
    if not isinstance(vocab, dict):
        raise MuselabError(f"token corpus {source!r} carries no verse vocabulary")
    config["data"]["source"] = corpus.name
    meta = {**meta, "config": json.dumps(config, sort_keys=True),
            VOCAB_META: json.dumps(vocab, ensure_ascii=False)}
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous()
               for k, v in load_file(str(model_file)).items()}
    dest = out_dir / ck.MODEL_FILE
    atomic_write(dest, lambda tmp: save_file(tensors, tmp, metadata=meta))
    return dest
