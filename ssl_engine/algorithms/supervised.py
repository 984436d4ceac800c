"""Supervised: cross-entropy on labeled batches only (the baseline of every comparison)."""

from __future__ import annotations

from dataclasses import dataclass

from ssl_engine.algorithms.base import SSLAlgorithm, register


@register("supervised")
class Supervised(SSLAlgorithm):
    """Class-weighted cross-entropy on the labeled set; the unlabeled pool is only scored."""

    @dataclass(frozen=True)
    class Config:
        """No settings of its own."""

    views = ()

    def train_step(self, labeled, unlabeled):
        return self.supervised_step(labeled)
