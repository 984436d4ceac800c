"""Umbra's semi-supervised safety-classifier engine.

Framework-free: no Django, Celery or database imports anywhere in this package.
This module exposes only light types; torch and transformers are imported inside
the modules that need them, so the web process can import ``ssl_engine`` cheaply.
"""

from ssl_engine.types import (  # noqa: F401
    Callback,
    ExamplePrediction,
    LabeledText,
    RoundInput,
    RoundResult,
    TrainControl,
    TrainState,
    UnlabeledText,
    ViewLoss,
)

LABEL_NAMES = ("unharmful", "harmful")  # index = engine label id (1 = harmful); the app and the CLI import it
