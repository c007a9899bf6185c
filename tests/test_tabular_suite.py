"""The tabular development suite: protocols on the real mlbench tables, splits, ranks, command."""

from pathlib import Path

import numpy as np
import pytest

from memae_tf.cli import main
from memae_tf.data.table_protocols import PROTOCOLS, load_protocol, protocol_split
from memae_tf.evaluation.baselines import make_baseline
from memae_tf.evaluation.tabular_suite import suite_summary

MLBENCH_FOLDERS = [
    Path("/usr/lib/R/site-library/mlbench/data"),
    Path.home() / ".cache" / "memae_tf" / "mlbench",
]
REAL = next((f for f in MLBENCH_FOLDERS if (f / "Shuttle.rda").exists()), None)
needs_mlbench = pytest.mark.skipif(REAL is None, reason="mlbench .rda files not available")

# (rows, features, anomalies) from the UCI documentation of each table: Shuttle's
# class counts 45,586 Rad.Flow and 50 + 171 + 3,267 + 10 + 13 of the five smallest
# classes (High discarded), ODDS' shuttle (49,097 × 9, 3,511 outliers); Ionosphere 351
# returns, 126 bad, 34 attributes less the constant second; Pima 768, 268 positive;
# BreastCancer 699 biopsies less 16 with a missing value, 239 of them malignant; Vehicle
# 846 silhouettes, 199 vans; Glass 214, 9 tableware; Vowel 990 = 15 speakers × 11
# vowels × 6, 10 features less the speaker; Sonar 208, 97 rocks; Satellite 6,435, of
# which 703 cotton crop + 626 damp grey soil + 707 vegetation stubble.
PUBLISHED = {
    "Shuttle": (49_097, 9, 3_511), "Ionosphere": (351, 33, 126),
    "PimaIndiansDiabetes": (768, 8, 268), "BreastCancer": (683, 9, 239),
    "Vehicle": (846, 18, 199), "Glass": (214, 9, 9), "Vowel": (990, 9, 90),
    "Sonar": (208, 60, 97), "Satellite": (6_435, 36, 2_036),
}


def test_every_protocol_has_published_counts():
    assert set(PUBLISHED) == set(PROTOCOLS)
    assert "LetterRecognition" not in PROTOCOLS  # held out


@needs_mlbench
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_protocol_matches_the_published_counts(name):
    data = load_protocol(name, REAL, download=False)
    rows, features, anomalies = PUBLISHED[name]
    assert data.x.shape == (rows, features)
    assert int(data.y.sum()) == anomalies
    assert len(data.numeric_columns) == features  # no one-hot columns: raw numbers


@needs_mlbench
def test_breast_cancer_ratings_are_the_numbers_one_to_ten():
    data = load_protocol("BreastCancer", REAL, download=False)
    assert data.feature_names[0] == "Cl.thickness"
    assert sorted(np.unique(data.x[:, 0]).tolist()) == [float(v) for v in range(1, 11)]


def test_splits_train_on_half_the_normal_rows_and_test_on_the_rest():
    y = np.array([0] * 40 + [1] * 7)
    train, test = protocol_split(y, split=3)
    assert len(train) == 20 and not y[train].any()
    assert sorted([*train, *test]) == list(range(47))
    assert set(np.flatnonzero(y)) <= set(test)
    again, _ = protocol_split(y, split=3)
    other, _ = protocol_split(y, split=4)
    assert again.tolist() == train.tolist() and other.tolist() != train.tolist()


@pytest.mark.parametrize("name", ["iforest", "ocsvm", "lof", "ecod"])
def test_baselines_score_a_far_point_above_a_central_one(name):
    rows = np.random.default_rng(0).normal(size=(300, 3))
    baseline = make_baseline(name, seed=0).fit(rows)
    central, far = baseline.score(np.array([[0.0, 0.0, 0.0], [6.0, -6.0, 6.0]]))
    assert far > central


def _task(table, model, split, seed, auroc):
    return {"table": table, "model": model, "split": split, "seed": seed,
            "metrics": {"auroc": auroc}}


def test_summary_ranks_models_per_table_and_measures_the_seed_spread():
    # Binary fractions, so that equal means are equal in floating point.
    values = {("A", "memae"): [0.875, 0.625], ("A", "iforest"): [0.5, 0.5],
              ("A", "ae"): [0.75, 0.75], ("B", "memae"): [0.5, 0.5],
              ("B", "iforest"): [0.5, 0.5], ("B", "ae"): [0.875, 0.625]}
    tasks = {f"{m}/{t}{seed}": _task(t, m, 0, seed, v[seed])
             for (t, m), v in values.items() for seed in (0, 1)}
    summary = suite_summary(tasks)
    # Table A: memae 0.75, ae 0.75, iforest 0.5 -> ranks 1.5, 1.5, 3; table B: ae 0.75
    # first, then memae and iforest tied at 0.5 -> 2.5 each.
    assert summary["mean_rank"] == {"memae": 2.0, "ae": 1.25, "iforest": 2.75}
    assert summary["seed_spread"]["A"]["memae"] == pytest.approx(0.125)
    assert summary["seed_spread"]["B"]["iforest"] == 0.0
    assert summary["mean_auroc"]["ae"] == 0.75


@needs_mlbench
def test_suite_command_writes_the_table_and_memae_detects_real_anomalies(tmp_path, capsys):
    out = tmp_path / "suite"
    assert main(["experiment", "tabular-suite", "--variants", "memae", "--baselines",
                 "iforest", "--tables", "BreastCancer", "--tiny", "--data-path", str(REAL),
                 "--out", str(out)]) == 0
    table = (out / "results.md").read_text().splitlines()
    assert "| table | MemAE | IsolationForest |" in table
    row = next(line for line in table if line.startswith("| BreastCancer (1 runs) |"))
    memae = float(row.split("|")[2].strip("* ").split(" ± ")[0])
    assert memae > 0.9  # malignant biopsies against benign ones; chance is 0.5
    assert any(line.startswith("| mean rank | ") for line in table)
    # A second call resumes: nothing is left to run.
    main(["experiment", "tabular-suite", "--variants", "memae", "--baselines", "iforest",
          "--tables", "BreastCancer", "--tiny", "--data-path", str(REAL), "--out", str(out),
          "--resume"])
    assert "0 tasks to run" in capsys.readouterr().out


@needs_mlbench
def test_suite_command_trains_with_the_given_training_options(tmp_path, monkeypatch, capsys):
    from memae_tf.detector import MemAE

    seen, fit = [], MemAE.fit

    def recording_fit(self, x, **settings):
        seen.append(settings)
        return fit(self, x, **settings)

    monkeypatch.setattr(MemAE, "fit", recording_fit)
    out = tmp_path / "suite"
    main(["experiment", "tabular-suite", "--variants", "ae", "--baselines", "",
          "--tables", "Glass", "--splits", "0", "--epochs", "1", "--batch-size", "16",
          "--learning-rate", "0.01", "--lr-decay", "none", "--data-path", str(REAL),
          "--out", str(out)])
    given = {"epochs": 1, "batch_size": 16, "learning_rate": 0.01, "lr_decay": "none"}
    assert seen == [{"verbose": 0, **given, "seed": 0}]
    # The options are part of the folder's identity: a resume without them is refused.
    assert main(["experiment", "tabular-suite", "--variants", "ae", "--baselines", "",
                 "--tables", "Glass", "--splits", "0", "--data-path", str(REAL),
                 "--out", str(out), "--resume"]) != 0
    assert "different config (training:" in capsys.readouterr().err


@needs_mlbench
def test_suite_command_without_training_options_trains_as_the_preset(tmp_path, monkeypatch):
    from memae_tf.evaluation import tabular_suite

    seen = []
    monkeypatch.setattr(tabular_suite, "run_suite", lambda config, *a, **k: seen.append(config))
    main(["experiment", "tabular-suite", "--variants", "ae", "--out", str(tmp_path / "s")])
    assert seen[0].training == {}
