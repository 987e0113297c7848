"""The only place this project reaches into transformers' internals: the Trainer offers no public
hook for either of these. tests/test_library_internals.py checks both against the installed
transformers and fails, naming its version and this file, the day one of them changes.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Sampler
from transformers import Trainer


class PlannedTrainer(Trainer):
    """A Trainer that takes its training batches, in order, from ``train_sampler`` when one is
    set (the project's batch plan). The Trainer's DataLoader cuts the sampler's stream into
    batches of ``per_device_train_batch_size`` and accelerate deals them out to the ranks."""

    train_sampler: Sampler[int] | None = None

    # The Trainer's private factory of its training sampler (transformers 4.51: no argument;
    # 5.x: the dataset), called by ``get_train_dataloader``.
    def _get_train_sampler(self, *args: Any, **kwargs: Any) -> Any:
        if self.train_sampler is None:
            return super()._get_train_sampler(*args, **kwargs)
        return self.train_sampler


def use_per_batch_mean_loss(trainer: Trainer) -> None:
    """The loss ``compute_loss`` returns is a per-batch mean (as in the plain loop), not a sum
    over ``num_items_in_batch``: the Trainer must divide it by the gradient accumulation steps
    and not multiply it by the number of processes under DDP. It decides both from whether the
    model's ``forward`` takes loss keywords (transformers 5 models do); 5.x documents a flag
    for the first only, 4.51 and 5.3 none."""
    trainer.model_accepts_loss_kwargs = False
