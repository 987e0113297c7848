"""What this project relies on beyond the libraries' public APIs, checked against the installed
versions.

transformers has no public hook for the Trainer's training sampler (the batch plan) nor for how
it scales a per-batch mean loss; training/transformers_internals.py is the one place that uses
either. The server overrides uvicorn's public ``Server.shutdown`` to hear when shutdown begins.
Each test fails, naming the library, its version and the file to update, the day one changes
(an upgrade would otherwise drop the batch plan or scale gradients without a word).
"""

from __future__ import annotations

import inspect
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
import uvicorn
from torch.utils.data import Sampler
from transformers import TrainingArguments

from nsmc_sentiment_classifier.serving import server
from nsmc_sentiment_classifier.training import (
    transformers_internals as internals,
)

pytestmark = pytest.mark.engine

ADAPTER = f"src/{internals.__name__.split('.')[0]}/training/transformers_internals.py"
SERVER = "src/nsmc_sentiment_classifier/serving/server.py"


def changed(library: str, version: str, what: str, where: str) -> str:
    return (
        f"{library} {version}: {what}. Update {where}, the one place that relies on it, and this test "
        "(or keep the library at the versions pyproject.toml names)."
    )


def transformers_changed(what: str) -> str:
    return changed("transformers", transformers.__version__, what, ADAPTER)


class TinyModel(torch.nn.Module):
    # ``**kwargs`` in forward is what makes transformers 5 treat a model as taking loss keywords.
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1, bias=False)

    def forward(self, x: torch.Tensor, **kwargs: Any) -> dict[str, torch.Tensor]:
        return {"logits": self.linear(x)}


class MeanLossTrainer(internals.PlannedTrainer):
    """Computes its own per-batch mean loss, as the project's Trainer does."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(x=inputs["x"])
        loss = outputs["logits"].mean()
        return (loss, outputs) if return_outputs else loss


class Order(Sampler[int]):
    def __init__(self, indices: list[int]) -> None:
        self.indices = indices

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def tiny_trainer(tmp_path: Path, **arguments: Any) -> MeanLossTrainer:
    args = TrainingArguments(
        output_dir=str(tmp_path),
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        **arguments,
    )
    # With labels in the batches the Trainer counts ``num_items_in_batch``, as in the project.
    rows = [{"x": torch.tensor([float(i), 1.0]), "labels": i % 2, "index": i} for i in range(6)]
    return MeanLossTrainer(model=TinyModel(), args=args, train_dataset=rows)


def test_the_trainer_still_asks_for_its_train_sampler():
    method = getattr(transformers.Trainer, "_get_train_sampler", None)
    assert method is not None, transformers_changed("Trainer._get_train_sampler is gone")
    parameters = list(inspect.signature(method).parameters)
    assert parameters in (["self"], ["self", "train_dataset"]), transformers_changed(
        f"Trainer._get_train_sampler takes {parameters}, not (self) or (self, train_dataset)"
    )


def test_the_training_batches_follow_the_planned_sampler(tmp_path):
    trainer = tiny_trainer(tmp_path, per_device_train_batch_size=2)
    trainer.train_sampler = Order([5, 0, 3, 1, 4, 2])
    batches = [batch["index"].tolist() for batch in trainer.get_train_dataloader()]
    assert batches == [[5, 0], [3, 1], [4, 2]], transformers_changed(
        f"the Trainer's training batches ignore PlannedTrainer.train_sampler (got {batches}), so the "
        "project's batch plan would be dropped"
    )


def test_turning_loss_keywords_off_makes_the_trainer_scale_a_per_batch_loss(tmp_path):
    """With 2 accumulation steps the Trainer must halve each per-batch mean loss before
    backward; it does so only once ``use_per_batch_mean_loss`` has told it the loss is one.
    One plain SGD step (no clipping, no decay) shows the gradient's scale in the update."""

    def update(per_batch_mean: bool) -> float:
        trainer = tiny_trainer(
            tmp_path,
            per_device_train_batch_size=1,
            gradient_accumulation_steps=2,
            max_steps=1,
            optim="sgd",
            learning_rate=1.0,
            lr_scheduler_type="constant",
            weight_decay=0.0,
            max_grad_norm=0.0,
            save_strategy="no",
            logging_strategy="no",
        )
        assert hasattr(trainer, "model_accepts_loss_kwargs"), transformers_changed(
            "Trainer has no model_accepts_loss_kwargs"
        )
        if per_batch_mean:
            internals.use_per_batch_mean_loss(trainer)
        trainer.train_sampler = Order([0, 1])
        model = trainer.model
        assert isinstance(model, TinyModel)
        before = model.linear.weight.detach().clone()
        trainer.train()
        return float((before - model.linear.weight.detach()).sum())

    default, per_batch = update(False), update(True)
    assert abs(per_batch - default / 2) < 1e-6 * abs(default), transformers_changed(
        "setting Trainer.model_accepts_loss_kwargs = False no longer makes the Trainer divide a "
        f"per-batch mean loss by the gradient accumulation steps (update {per_batch}, else {default})"
    )


def test_uvicorn_still_calls_server_shutdown_when_it_stops():
    version = uvicorn.__version__
    parameters = list(inspect.signature(uvicorn.Server.shutdown).parameters)
    expected = inspect.iscoroutinefunction(uvicorn.Server.shutdown) and parameters == ["self", "sockets"]
    assert expected, changed(
        "uvicorn", version, f"Server.shutdown is no coroutine (self, sockets) (it takes {parameters})", SERVER
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})

    calls: list[float] = []
    config = uvicorn.Config(app, http="h11", lifespan="on", log_config=None)
    runner = server._Uvicorn(config, lambda: calls.append(time.monotonic()))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        thread = threading.Thread(target=runner.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not runner.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        runner.should_exit = True
        thread.join(60)
    assert not thread.is_alive() and len(calls) == 1, changed(
        "uvicorn", version, "Server.shutdown is not called (once) when the server stops", SERVER
    )
