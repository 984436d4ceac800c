"""Text augmenters. Importing this package registers the built-in ones."""

from ssl_engine.augment import (  # noqa: F401  (register generators llm_rewrite, backtranslation)
    backtranslation,
    cheap,  # noqa: F401  (registers word_dropout, word_swap, synonym)
    llm,
)
from ssl_engine.augment.registry import AUGMENTERS, augmenter, get_augmenter  # noqa: F401
