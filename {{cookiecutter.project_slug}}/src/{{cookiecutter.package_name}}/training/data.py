"""Training data: read the channel folders, take the dev subset, tokenise once, batch efficiently.

Texts are tokenised WITHOUT padding; each batch is padded to its own longest text by the collator
(dynamic padding), and with ``group_by_length`` texts of similar length share batches. NSMC reviews
average ~35 characters, so padding all of them to the longest review wastes most of the compute.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from ..data.examples import Example, load_examples
from ..data.subset import dev_subset
from ..errors import DataFormatError
from ..label_schemes import LabelScheme
from ..options import TrainOptions

log = logging.getLogger(__name__)


class TokenizedSplit(Dataset):
    """Token ids per example (unpadded) plus the loss's form of its label (``labels``: the
    scheme's ``as_feature``); items are dicts the collator pads. ``labels`` keeps the label
    scheme's targets (a label id, or a tuple of ids for multi-label), which metrics compare."""

    def __init__(
        self, name: str, features: list[dict[str, Any]], targets: list[Any], texts: list[str] | None = None
    ) -> None:
        self.name = name
        self.features = features
        self.targets = targets
        # The texts (a pair joined: Example.joined), for what reads text, not tokens (the baseline).
        self.texts = texts
        self.lengths = [len(feature["input_ids"]) for feature in features]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.features[index]

    @property
    def labels(self) -> list[Any]:
        return self.targets

    def longest_first(self) -> tuple[TokenizedSplit, list[int]]:
        """The same examples, longest first, and where each one is in this split: batches of
        neighbours then pad little (results map back through the positions)."""
        order = sorted(range(len(self)), key=self.lengths.__getitem__, reverse=True)
        ordered = TokenizedSplit(
            self.name,
            [self.features[i] for i in order],
            [self.targets[i] for i in order],
            [self.texts[i] for i in order] if self.texts is not None else None,
        )
        return ordered, order


@dataclass
class RunData:
    train: TokenizedSplit
    validation: TokenizedSplit
    test: TokenizedSplit | None
    label_names: tuple[str, ...]
    max_length: int

    def evaluation_splits(self) -> list[TokenizedSplit]:
        return [split for split in (self.validation, self.test) if split is not None]


def read_split(path: str | None, name: str, options: TrainOptions) -> list[Example]:
    if path is None:
        return []
    if not Path(path).exists():
        raise DataFormatError(
            f"{name} data not found at {path}: run `data prepare` first or pass --{name}_dir "
            f"(on SageMaker: the input channel '{name}')"
        )
    # Channels hold what `data prepare` writes: label ids, whatever the source files held, in
    # the project's label layout.
    examples = load_examples(
        path,
        options.text_column,
        options.label_column,
        options.label_names,
        label_format="ids",
        scheme=options.label_scheme,
        label_layout=options.label_layout,
        text_pair_column=options.pair_column,
    )
    if not examples:
        raise DataFormatError(f"{path}: the {name} split holds no usable examples")
    return examples


def tokenize(
    name: str, examples: list[Example], tokenizer: Any, max_length: int, scheme: LabelScheme, num_labels: int
) -> TokenizedSplit:
    """Truncate to ``max_length`` but do not pad: padding is decided per batch. ``labels`` is
    what the scheme's loss takes (an id; a multi-hot row of floats for multi-label, which the
    collator stacks into a float tensor). A text pair is encoded as the tokenizer joins pairs
    (``[CLS] a [SEP] b [SEP]`` and its token types); ``longest_first`` truncation takes tokens
    from the longer text first, so both texts keep a share of ``max_length``."""
    pairs = [example.text_pair for example in examples]
    encoded = tokenizer(
        [example.text for example in examples],
        *([pairs] if any(pair is not None for pair in pairs) else []),
        truncation="longest_first",
        max_length=max_length,
        padding=False,
    )
    keys = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in encoded]
    features = [
        {**{key: encoded[key][i] for key in keys}, "labels": scheme.as_feature(example.label, num_labels)}
        for i, example in enumerate(examples)
    ]
    texts = [example.joined for example in examples]
    return TokenizedSplit(name, features, [example.label for example in examples], texts)


def effective_max_length(requested: int, tokenizer: Any, model_config: Any) -> int:
    """``requested``, capped by what the model can take (position embeddings)."""
    limits = [requested]
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    positions = getattr(model_config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        # RoBERTa-style models reserve two positions for the padding offset.
        offset = 2 if getattr(model_config, "model_type", "") in {"roberta", "xlm-roberta"} else 0
        limits.append(positions - offset)
    length = min(limits)
    if length < requested:
        log.warning("max_seq_length %d exceeds what the model takes; using %d", requested, length)
    return length


def load_run_data(options: TrainOptions, tokenizer: Any, model_config: Any) -> RunData:
    train = read_split(options.train_dir, "train", options)
    validation = read_split(options.validation_dir, "validation", options)
    test = read_split(options.test_dir, "test", options)
    if options.dev_fraction < 1.0:
        keep = dev_subset([example.label for example in train], options.dev_fraction, options.seed)
        log.info(
            "dev subset: training on %d of %d examples (%.0f%%, stratified)",
            len(keep),
            len(train),
            100 * options.dev_fraction,
        )
        train = [train[i] for i in keep]
    max_length = effective_max_length(options.max_seq_length, tokenizer, model_config)
    scheme, num_labels = options.label_scheme, len(options.label_names)

    def tokenized(name: str, examples: list[Example]) -> TokenizedSplit:
        return tokenize(name, examples, tokenizer, max_length, scheme, num_labels)

    data = RunData(
        train=tokenized("train", train),
        validation=tokenized("validation", validation),
        test=tokenized("test", test) if test else None,
        label_names=options.label_names,
        max_length=max_length,
    )
    for split in (data.train, *data.evaluation_splits()):
        lengths = split.lengths
        log.info(
            "%s: %d examples, %.1f tokens on average, longest %d",
            split.name,
            len(split),
            sum(lengths) / len(lengths),
            max(lengths),
        )
    return data


def make_collator(tokenizer: Any, padding: str, data: RunData) -> Callable[[list[dict]], dict]:
    """Dynamic padding, or (``padding='longest'``) every text padded to the longest text in any
    split, the old workshop behaviour kept only for comparison."""
    from transformers import DataCollatorWithPadding

    if padding == "longest":
        longest = max(max(split.lengths) for split in (data.train, *data.evaluation_splits()))
        return DataCollatorWithPadding(tokenizer, padding="max_length", max_length=longest)
    return DataCollatorWithPadding(tokenizer, padding="longest")


@dataclass
class TokenCounter:
    """Real vs processed (real + padding) tokens of the training batches: the token efficiency."""

    # What the run trained before a resume (saved with its checkpoint; empty for a run that
    # never stopped), so throughput and token efficiency describe the whole run.
    before: dict[str, Any] = field(default_factory=dict)
    examples: int = 0
    real_tokens: int = 0
    processed_tokens: int = 0

    def update(self, batch: dict[str, torch.Tensor]) -> None:
        mask = batch["attention_mask"]
        self.examples += int(mask.shape[0])
        self.real_tokens += int(mask.sum())
        self.processed_tokens += int(mask.numel())

    def totals(self, reduce: Callable[[list[float]], list[float]], seconds: float) -> dict[str, Any]:
        """The run's training so far: ``before`` plus this process's counts (``reduce`` sums
        them across ranks) and its training ``seconds``."""
        counts = reduce([self.examples, self.real_tokens, self.processed_tokens])
        keys = ("train_examples_processed", "real_tokens", "processed_tokens")
        totals: dict[str, Any] = {
            key: int(self.before.get(key, 0)) + int(count) for key, count in zip(keys, counts, strict=True)
        }
        real, processed = totals["real_tokens"], totals["processed_tokens"]
        # None, not 0, when no batch was counted (a checkpoint of an older version that carries
        # no totals): an unknown efficiency is not a zero one.
        totals["token_efficiency"] = real / processed if processed else None
        totals["train_seconds"] = float(self.before.get("train_seconds", 0.0)) + seconds
        return totals


@dataclass
class BatchPlan:
    """The training batches of each epoch for one rank, reproducible from (seed, epoch).

    Being a pure function of the epoch lets a resumed run skip exactly the batches it has
    already trained on, without loading them.
    """

    lengths: Sequence[int]
    batch_size: int
    group_by_length: bool
    seed: int
    rank: int = 0
    world_size: int = 1

    def __len__(self) -> int:
        return math.ceil(math.ceil(len(self.lengths) / self.batch_size) / self.world_size)

    def epoch(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        if self.group_by_length:
            batches = length_grouped_batches(self.lengths, self.batch_size, generator)
        else:
            order = torch.randperm(len(self.lengths), generator=generator).tolist()
            batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        # Consecutive batches go to different ranks (as accelerate shards the Trainer's batches),
        # and every rank needs a batch at every step or DDP hangs: top up with repeated batches.
        while len(batches) % self.world_size:
            batches.append(batches[len(batches) % self.world_size])
        return batches[self.rank :: self.world_size]


# Batches per mega-batch. transformers' LengthGroupedSampler uses at most 50 (and fewer on small
# data sets), which leaves ~5% padding on NSMC; 100 brings it to ~3% (measured on NSMC lengths).
MEGA_BATCH_MULT = 100


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator
) -> list[list[int]]:
    """Random mega-batches, each sorted by length and cut into batches; then the batch order is
    shuffled, except that the batch holding the longest text comes first (an out-of-memory
    error then shows up at the first step, not hours in) and the one short batch comes last
    (so the order also survives being flattened and re-cut into ``batch_size`` chunks)."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    size = batch_size * MEGA_BATCH_MULT
    batches = []
    for start in range(0, len(order), size):
        mega = sorted(order[start : start + size], key=lambda i: lengths[i], reverse=True)
        batches += [mega[i : i + batch_size] for i in range(0, len(mega), batch_size)]
    batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    batches.sort(key=lambda batch: len(batch) < batch_size)  # stable: only moves the short one
    full = [b for b in range(len(batches)) if len(batches[b]) == batch_size]
    if full:
        longest = max(full, key=lambda b: lengths[batches[b][0]])
        batches[0], batches[longest] = batches[longest], batches[0]
    return batches


class PlanSampler(Sampler):
    """The single-process :class:`BatchPlan` as a flat index sampler, for the Trainer: its
    DataLoader cuts the stream back into the same batches, and accelerate deals whole batches
    out to the ranks. ``set_epoch`` (called by the Trainer) keeps resumed epochs identical."""

    def __init__(self, plan: BatchPlan) -> None:
        self.plan = plan
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.plan.lengths)

    def __iter__(self) -> Iterator[int]:
        batches = self.plan.epoch(self.epoch)
        self.epoch += 1  # in case nobody calls set_epoch
        return (index for batch in batches for index in batch)
