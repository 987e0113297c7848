"""The label-scheme seam: what every scheme promises, and the single-label scheme's decisions
(label values read as ids or names, cross-entropy, softmax and argmax, metrics)."""

from __future__ import annotations

import ast
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import label_value

from nsmc_sentiment_classifier import label_schemes
from nsmc_sentiment_classifier.label_schemes import (
    label_values,
    multi_label,
    single_label,
)

SCHEMES = sorted(label_schemes.SCHEMES)
SINGLE = label_schemes.get("single_label")


def test_the_default_scheme_is_picked_by_name():
    assert label_schemes.get() is label_schemes.get(label_schemes.DEFAULT)
    for name in SCHEMES:
        assert label_schemes.get(name).name == name
    with pytest.raises(ValueError, match=r"unknown label scheme 'multi_labels'; known: .*single_label"):
        label_schemes.get("multi_labels")


@pytest.mark.parametrize("name", SCHEMES)
def test_every_scheme_keeps_the_contract(name, config):
    scheme = label_schemes.get(name)
    names = list(config.data.label_names)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, len(names), generator=generator) * 4
    probabilities = scheme.probabilities(logits)
    assert probabilities.shape == logits.shape and probabilities.dtype == torch.float32
    assert bool(((probabilities >= 0) & (probabilities <= 1)).all())
    predictions = scheme.predict(probabilities)
    assert len(predictions) == len(logits)
    assert all(isinstance(scheme.decode(prediction, names), str) for prediction in predictions)
    metrics = scheme.compute_metrics(predictions, predictions, names)
    assert set(scheme.metric_names) <= set(metrics)
    assert scheme.best_metric in (*scheme.metric_names, "loss")
    assert scheme.problem_type in ("single_label_classification", "multi_label_classification")
    assert isinstance(scheme.label_sets, bool)
    thresholds = scheme.decision_thresholds(len(names))
    assert thresholds is None or len(thresholds) == len(names)
    for row, target in zip(probabilities.tolist(), predictions, strict=True):
        assert 0.0 <= scheme.mistake_score(row, target) <= 1.0
    assert hash(scheme.cell_key(["a", "b"])) is not None and scheme.cell_values(None) in ([], [None])


def test_every_task_reads_its_labels_with_a_scheme():
    """A task named for its inputs (a text pair) reads its labels with the scheme of its kind."""
    for task in label_schemes.TASKS:
        assert label_schemes.for_project(task).name in SCHEMES
    assert label_schemes.for_project("text_pair") == SINGLE


def test_the_surest_mistake_is_the_largest_wrong_decision_on_random_cases():
    """mistake_score against its definition, on 3,000 random score rows and targets."""
    rng = random.Random(19)
    multi = multi_label.MultiLabel()
    for _ in range(3000):
        size = rng.randint(2, 8)
        scores = [rng.random() for _ in range(size)]
        thresholds = tuple(rng.random() for _ in range(size))
        tuned = multi_label.MultiLabel(thresholds=thresholds)
        target = tuple(sorted(rng.sample(range(size), rng.randint(0, size))))
        chosen = {i for i in range(size) if scores[i] >= thresholds[i]}
        wrong = [
            scores[i] if i in chosen else 1 - scores[i] for i in range(size) if (i in chosen) != (i in target)
        ]
        assert tuned.mistake_score(scores, target) == (max(wrong) if wrong else 0.0)
        assert multi.decision_thresholds(size) == [0.5] * size
        assert tuned.decision_thresholds(size) == list(thresholds)
        best = max(range(size), key=scores.__getitem__)
        assert SINGLE.mistake_score(scores, rng.randrange(size)) == scores[best]


def test_labels_round_trip_in_the_projects_own_names_and_format(config):
    names = list(config.data.label_names)
    values = [label_value(config, index) for index in range(len(names))]
    read = SINGLE.label_reader(values, names, config.data.label_format)
    assert [read(value) for value in values] == list(range(len(names)))
    assert [SINGLE.decode(read(value), names) for value in values] == names
    for label_format, written in (("names", names), ("ids", [str(i) for i in range(len(names))])):
        read = SINGLE.label_reader(written, names, label_format)
        assert [SINGLE.decode(read(value), names) for value in written] == names


def test_a_file_is_read_one_way_and_unknown_values_name_their_line():
    names = ["부정", "긍정"]
    read = SINGLE.label_reader({"긍정": 2, "부정": 3}, names)
    assert (read(" 긍정 "), read("부정")) == (1, 0)
    with pytest.raises(label_values.UnknownLabelsError) as caught:
        SINGLE.label_reader({"긍정": 2, "중립": 5}, names)
    assert caught.value.first_line == 5 and "'중립' (line 5)" in str(caught.value)
    with pytest.raises(label_values.MixedLabelsError):
        SINGLE.label_reader({"1": 2, "부정": 3}, names)


def test_the_loss_is_torch_cross_entropy_weighted_or_not():
    rng = random.Random(18)
    for _ in range(300):
        classes, rows = rng.randint(2, 9), rng.randint(1, 17)
        logits = torch.randn(rows, classes, dtype=torch.float64) * rng.uniform(0.1, 10)
        labels = [rng.randrange(classes) for _ in range(rows)]
        targets = torch.tensor(labels)
        weights = [rng.uniform(0.0, 3.0) for _ in range(classes)]
        weights[labels[0]] = max(weights[labels[0]], 0.1)  # a weighted mean needs some weight
        plain = torch.nn.CrossEntropyLoss()(logits.float(), targets)
        weighted = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights))(logits.float(), targets)
        assert torch.allclose(SINGLE.loss(logits, targets, None), plain)
        assert torch.allclose(SINGLE.loss(logits, targets, weights), weighted)


def test_the_loss_is_float32_under_half_precision_logits():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.25]], dtype=torch.bfloat16)
    loss = SINGLE.loss(logits, torch.tensor([0, 1]), [1.0, 2.0])
    assert loss.dtype == torch.float32


def test_class_weights_balance_the_classes_and_none_means_unweighted():
    names = ["부정", "긍정", "중립"]
    assert SINGLE.class_weights("none", [0, 0, 1], names) is None
    assert SINGLE.class_weights("balanced", [0, 0, 0, 1, 1, 2], names) == pytest.approx([2 / 3, 1.0, 2.0])
    # A class without training examples has nothing to learn from: weight 0, not infinity.
    assert single_label.balanced_class_weights([0, 1, 1], names) == pytest.approx([1.0, 0.5, 0.0])


def test_probabilities_are_softmax_and_predictions_argmax():
    rng = random.Random(7)
    for _ in range(2000):
        classes = rng.randint(2, 6)
        # Few distinct values: ties are common, and the first of equal scores must win.
        row = [float(rng.randint(-3, 3)) for _ in range(classes)]
        logits = torch.tensor([row])
        probabilities = SINGLE.probabilities(logits)
        assert torch.allclose(probabilities, logits.softmax(-1))
        assert SINGLE.predict(probabilities) == [int(logits.argmax(-1))]
        assert SINGLE.predict([row]) == [row.index(max(row))]


def test_one_logit_heads_and_foreign_multi_label_models_score_each_label_on_its_own():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    multi_label_head = SimpleNamespace(problem_type="multi_label_classification", num_labels=2)
    foreign = label_schemes.for_model(multi_label_head)
    assert torch.allclose(foreign.probabilities(logits), logits.sigmoid())
    assert torch.allclose(SINGLE.probabilities(logits[:, :1]), logits[:, :1].sigmoid())
    untagged = label_schemes.for_model(SimpleNamespace(problem_type=None, num_labels=2))
    assert torch.allclose(untagged.probabilities(logits), logits.softmax(-1))


def test_a_model_records_its_scheme_and_serving_picks_it(tiny_model_dir, config):
    from nsmc_sentiment_classifier.serving import inference
    from nsmc_sentiment_classifier.training import modeling

    model = modeling.load_model(str(tiny_model_dir), config.data.label_names)
    assert model.config.label_scheme == label_schemes.DEFAULT
    assert model.config.problem_type == SINGLE.problem_type
    assert label_schemes.for_model(model.config) is SINGLE
    assert inference.model_fn(str(tiny_model_dir)).scheme.name == "single_label"


def test_metrics_of_a_small_known_case():
    names = ["부정", "긍정", "중립"]
    metrics = SINGLE.compute_metrics([0, 1, 1, 0, 2], [0, 1, 0, 0, 1], names)
    assert metrics["num_examples"] == 5
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    # F1 per class: 부정 P=2/3 R=1 -> 0.8; 긍정 P=1/2 R=1/2 -> 0.5; 중립 never predicted -> 0.
    assert metrics["macro_f1"] == pytest.approx((0.8 + 0.5 + 0.0) / 3)
    negative = {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    assert metrics["per_class"]["부정"] == pytest.approx(negative)
    assert metrics["confusion_matrix"] == [[2, 0, 0], [1, 1, 0], [0, 1, 0]]
    assert metrics["labels"] == names
    empty = SINGLE.compute_metrics([], [], names)
    assert empty["num_examples"] == 0 and empty["confusion_matrix"] == [[0] * 3] * 3
    with pytest.raises(ValueError, match="y_true has 2 labels but y_pred has 1"):
        SINGLE.compute_metrics([0, 1], [0], names)


def test_the_schemes_import_nothing_else_of_the_project():
    """They ship beside code/inference.py in model.tar.gz, without the rest of the package."""
    folder = Path(label_schemes.__file__).parent
    for module in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, f"{module.name}:{node.lineno} imports from outside label_schemes"


def test_a_new_scheme_is_one_new_module_also_where_the_schemes_are_top_level(tmp_path):
    """As in the inference container (code/label_schemes/ beside code/inference.py)."""
    shutil.copytree(Path(label_schemes.__file__).parent, tmp_path / "label_schemes")
    (tmp_path / "label_schemes" / "shouting.py").write_text(
        "import dataclasses\n"
        "from .single_label import SingleLabel\n"
        "SCHEME = dataclasses.replace(SingleLabel(), name='shouting')\n",
        encoding="utf-8",
    )
    code = "import json, label_schemes as s; print(json.dumps([sorted(s.SCHEMES), s.get('shouting').name]))"
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert json.loads(found.stdout) == [sorted([*SCHEMES, "shouting"]), "shouting"]


def test_reading_labels_loads_no_torch():
    package = label_schemes.__name__.split(".")[0]
    code = (
        f"import sys, {package}.label_schemes, {package}.data.examples, {package}.data.check; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- multi-label -----------------------------------------------------------------------------

MULTI = label_schemes.get("multi_label")


def _f1(scores, positive, threshold):
    """One label's F1 when every score >= ``threshold`` is predicted (0 without positives)."""
    tp = sum(1 for s, p in zip(scores, positive, strict=True) if p and s >= threshold)
    predicted = sum(1 for s in scores if s >= threshold)
    total = sum(positive)
    return 2 * tp / (predicted + total) if predicted + total else 0.0


def _random_label(rng: random.Random) -> tuple[list[float], list[bool]]:
    """Scores and truths of one label: sizes 1..30, few distinct scores (ties), any mix."""
    size = rng.randint(1, 30)
    grid = rng.choice([4, 10, 1000])
    scores = [rng.randint(0, grid) / grid for _ in range(size)]
    rate = rng.random()
    return scores, [rng.random() < rate for _ in range(size)]


def test_best_threshold_matches_a_brute_force_search():
    """Over thousands of random labels: no threshold gives a higher F1 than the chosen one
    (every distinct score and the default tried), and without positives the default stays."""
    rng = random.Random(19)
    for _ in range(3000):
        scores, positive = _random_label(rng)
        chosen = multi_label.best_threshold(scores, positive)
        if not any(positive):
            assert chosen == multi_label.DEFAULT_THRESHOLD
            continue
        best = max(_f1(scores, positive, t) for t in {*scores, multi_label.DEFAULT_THRESHOLD})
        assert _f1(scores, positive, chosen) == pytest.approx(best)
        assert 0.0 <= chosen <= 1.0


def test_tuning_never_lowers_a_labels_validation_f1_below_the_default_thresholds():
    rng = random.Random(7)
    for _ in range(500):
        num_labels, rows = rng.randint(2, 6), rng.randint(1, 25)
        probabilities = [[rng.randint(0, 20) / 20 for _ in range(num_labels)] for _ in range(rows)]
        targets = [tuple(i for i in range(num_labels) if rng.random() < 0.3) for _ in range(rows)]
        tuned = MULTI.tune(probabilities, targets)
        assert len(tuned.model_config()["label_thresholds"]) == num_labels
        names = [f"l{i}" for i in range(num_labels)]
        before = MULTI.compute_metrics(targets, MULTI.predict(probabilities), names)["per_class"]
        after = tuned.compute_metrics(targets, tuned.predict(probabilities), names)["per_class"]
        for name in names:
            assert after[name]["f1"] >= before[name]["f1"] - 1e-12
        # The tuned decision is the one a model records and serving reads back.
        config = SimpleNamespace(**tuned.model_config())
        assert label_schemes.for_model(config).predict(probabilities) == tuned.predict(probabilities)


def test_multi_label_metrics_agree_with_counting_by_hand():
    rng = random.Random(3)
    for _ in range(500):
        num_labels, rows = rng.randint(2, 5), rng.randint(1, 20)
        names = [f"l{i}" for i in range(num_labels)]
        truth, guess = (
            [tuple(i for i in range(num_labels) if rng.random() < 0.4) for _ in range(rows)] for _ in range(2)
        )
        metrics = MULTI.compute_metrics(truth, guess, names)
        cells = [(i in t, i in g) for t, g in zip(truth, guess, strict=True) for i in range(num_labels)]
        tp = sum(1 for t, g in cells if t and g)
        fp = sum(1 for t, g in cells if g and not t)
        fn = sum(1 for t, g in cells if t and not g)
        assert metrics["micro_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
        assert metrics["hamming_loss"] == pytest.approx((fp + fn) / len(cells))
        assert metrics["exact_match"] == pytest.approx(
            sum(1 for t, g in zip(truth, guess, strict=True) if t == g) / rows
        )
        per_label = [
            2
            * sum(1 for t, g in zip(truth, guess, strict=True) if i in t and i in g)
            / max(1, sum(1 for t in truth if i in t) + sum(1 for g in guess if i in g))
            for i in range(num_labels)
        ]
        assert metrics["macro_f1"] == pytest.approx(sum(per_label) / num_labels)
        assert metrics["empty_true"] == sum(1 for t in truth if not t)
        for i, name in enumerate(names):
            (tn, fp_i), (fn_i, tp_i) = metrics["label_confusion"][name]
            assert tp_i + fn_i == metrics["per_class"][name]["support"] == sum(1 for t in truth if i in t)


def test_a_single_label_name_is_scored_as_a_label_set():
    truth, guess = [(0,), (), (), ()], [(0,), (0,), (), ()]
    metrics = MULTI.compute_metrics(truth, guess, ["toxic"])
    assert metrics["micro_f1"] == pytest.approx(2 / 3)
    assert metrics["per_class"]["toxic"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "support": 1,
    }


def test_multi_label_features_round_trip_and_hamming_loss_is_lower_better():
    for target in [(), (0,), (1, 3), (0, 1, 2, 3)]:
        feature = MULTI.as_feature(target, 4)
        assert all(isinstance(value, float) for value in feature)
        assert MULTI.from_feature(torch.tensor(feature)) == target
    assert MULTI.lower_is_better == {"hamming_loss"} and MULTI.best_metric == "micro_f1"


def test_multi_label_metrics_agree_with_scikit_learn_for_two_or_more_labels():
    """Counted by hand (a one-label matrix would be read as binary by scikit-learn), but the same
    figures as scikit-learn's multi-label metrics wherever those apply: 1,000 random splits."""
    from sklearn.metrics import accuracy_score, hamming_loss, precision_recall_fscore_support

    rng = random.Random(7)
    for _ in range(1000):
        num_labels = rng.randint(2, 6)
        rows = rng.randint(1, 30)

        truth, guess = (
            [tuple(i for i in range(num_labels) if rng.random() < 0.3) for _ in range(rows)] for _ in range(2)
        )
        names = [f"l{i}" for i in range(num_labels)]
        ours = MULTI.compute_metrics(truth, guess, names)
        t = [MULTI.as_feature(row, num_labels) for row in truth]
        g = [MULTI.as_feature(row, num_labels) for row in guess]
        micro = precision_recall_fscore_support(t, g, average="micro", zero_division=0)
        per = precision_recall_fscore_support(t, g, average=None, zero_division=0)
        assert ours["micro_precision"] == pytest.approx(micro[0])
        assert ours["micro_recall"] == pytest.approx(micro[1])
        assert ours["micro_f1"] == pytest.approx(micro[2])
        assert ours["macro_f1"] == pytest.approx(sum(per[2]) / num_labels)
        assert ours["hamming_loss"] == pytest.approx(hamming_loss(t, g))
        assert ours["exact_match"] == pytest.approx(accuracy_score(t, g))
        for i, name in enumerate(names):
            assert ours["per_class"][name]["f1"] == pytest.approx(per[2][i])
            assert ours["per_class"][name]["support"] == per[3][i]
