"""Known-answer tests of the privacy section (ecgtwin.eval.privacy): a generator that returns training records is flagged."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ecgtwin.eval.privacy import (label_codes, nearest_distances, paired_distances, plot_closest_pairs, privacy_section,
                                  same_class_mask, spectrum_embedding)

L = 200


def records(n: int, seed: int) -> np.ndarray:
    """n independent random 12-lead records (n, 12, L): white noise smoothed over 5 samples, 0.15-0.45 mV RMS."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=np.sqrt(5), size=(n, 12, L + 4)) * rng.uniform(0.15, 0.45, (n, 1, 1))
    return np.stack([x[..., i:i + L] for i in range(5)]).mean(axis=0)  # (n, 12, L) moving average


def test_nearest_distances_known_values_and_exclusion() -> None:
    gallery = np.zeros((3, 12, L))
    gallery[1] += 1.0
    gallery[2] += 3.0
    queries = np.full((2, 12, L), 0.9)
    d, index = nearest_distances(queries, gallery)
    np.testing.assert_allclose(d, 0.1, rtol=1e-5) and np.testing.assert_array_equal(index, [1, 1])
    exclude = np.array([[False, True, False], [True, True, True]])  # query 0 may not use row 1; query 1 nothing
    d, index = nearest_distances(queries, gallery, exclude)
    assert d[0] == pytest.approx(0.9, rel=1e-5) and index[0] == 0 and math.isnan(d[1]) and index[1] == -1
    assert paired_distances(queries, gallery[:2]) == pytest.approx([0.9, 0.1], rel=1e-9)


def test_spectrum_is_blind_to_circular_shifts() -> None:
    x = records(2, 0)
    shifted = np.roll(x, 37, axis=2)
    assert paired_distances(spectrum_embedding(x), spectrum_embedding(shifted)) == pytest.approx([0, 0], abs=1e-5)
    assert paired_distances(x, shifted).min() > 0.05


def test_label_codes_and_same_class_mask() -> None:
    codes = label_codes(np.array([[1, 0], [0, 1], [1, 0], [1, 1]]))
    assert codes[0] == codes[2] and len(set(codes)) == 3
    mask = same_class_mask(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [1, 0], [0, 1]]))
    np.testing.assert_array_equal(mask, [[True, False, True], [True, True, True]])  # class [1, 1] absent: all count


def test_a_generator_that_returns_training_records_is_flagged(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train, real = records(120, 1), records(40, 2)
    train_labels, target_labels = rng.integers(0, 2, (120, 2)), rng.integers(0, 2, (40, 2))
    patient, train_patient = np.arange(1000, 1040), np.arange(120)
    twin = real + rng.normal(scale=0.05, size=real.shape)  # an honest twin: close to its own patient's target
    methods = {"twin": twin, "copycat": train[rng.choice(120, 40, replace=False)],
               "shifted": np.roll(train[:40], 50, axis=2)}
    spaces = {"signal": (methods, real, train, True),
              "spectrum": ({k: spectrum_embedding(v) for k, v in methods.items()}, spectrum_embedding(real),
                           spectrum_embedding(train), True)}
    section, nearest = privacy_section(spaces, target_labels, patient, train_labels, train_patient)
    assert section["copycat"]["signal_memorized_share"] == 1.0 and section["copycat"]["signal_nn_train_min"] < 1e-3
    assert section["copycat"]["signal_closer_to_train_share"] == 1.0
    assert section["twin"]["signal_memorized_share"] < 0.2 and section["twin"]["signal_closer_to_train_share"] < 0.5
    assert section["shifted"]["signal_memorized_share"] < 0.2  # aligned signals miss a shifted copy ...
    assert section["shifted"]["spectrum_memorized_share"] == 1.0  # ... the spectrum catches it
    real_row = section["real"]
    assert real_row["signal_threshold"] > 0 and real_row["signal_memorized_share"] == pytest.approx(0.05, abs=0.03)
    assert section["copycat"]["signal_memorized_same_class_share"] > 0.2  # copies of the target's class are caught there too
    png = plot_closest_pairs(methods["copycat"], train, nearest["signal_copycat_distance"], nearest["signal_copycat_index"],
                             100, tmp_path / "closest.png", n=2)
    assert png.read_bytes()[:4] == b"\x89PNG"
