"""The continual-learning view: results matrix, forgetting and final average on hand-made numbers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from streamvae.evaluation.continual import (average_over_seen, final_average, forgetting, forgetting_per_task,
                                            results_matrix)

NAN = float("nan")


def test_forgetting_higher_is_better_is_best_earlier_minus_final():
    r = np.array([[-100.0, NAN, NAN],
                  [-110.0, -90.0, NAN],
                  [-120.0, -95.0, -80.0]])
    per_task = forgetting_per_task(r)
    assert per_task[0] == pytest.approx(20.0)  # best earlier -100, final -120
    assert per_task[1] == pytest.approx(5.0)  # best earlier -90, final -95
    assert math.isnan(per_task[2])  # first seen at the final point: no earlier value
    assert forgetting(r) == pytest.approx(12.5)  # averaged over the two tasks that qualify


def test_forgetting_lower_is_better_is_final_minus_best_earlier_and_can_be_negative():
    sse = np.array([[10.0, NAN],
                    [12.0, 20.0],
                    [15.0, 18.0]])
    np.testing.assert_allclose(forgetting_per_task(sse, higher_is_better=False), [5.0, -2.0])
    assert forgetting(sse, higher_is_better=False) == pytest.approx(1.5)


def test_forgetting_is_nan_without_an_earlier_point():
    assert math.isnan(forgetting(np.array([[1.0, 2.0]])))
    assert math.isnan(forgetting(np.full((3, 2), NAN)))


def test_results_matrix_from_rows_reads_each_rows_own_k_and_masks_unseen_tasks():
    rows = [
        {"arrival": 2, "iw_samples": 5, "tasks_seen": 1, "ll_iw5": -10.0,
         "per_task": {"ll_iw5": [-10.0, -50.0], "recon_sse": [3.0, None]}},
        {"arrival": 4, "iw_samples": 20, "tasks_seen": 2, "ll_iw20": -12.0, "final": True,
         "per_task": {"ll_iw20": [-11.0, -13.0], "recon_sse": [4.0, 5.0]}},
    ]
    np.testing.assert_array_equal(results_matrix(rows, "ll"), [[-10.0, -50.0], [-11.0, -13.0]])
    seen = results_matrix(rows, "ll", seen_only=True)
    assert math.isnan(seen[0, 1]) and seen[1, 1] == -13.0
    sse = results_matrix(rows, "recon_sse")
    assert math.isnan(sse[0, 1]) and sse[1, 1] == 5.0  # null -> NaN
    assert np.isnan(results_matrix(rows, "probe_linear")).all()  # a metric the rows lack
    assert forgetting(seen) == pytest.approx(1.0)  # task 0: -10 -> -11


def test_final_average_and_curve_skip_missing_values():
    r = np.array([[1.0, NAN], [2.0, 4.0]])
    assert final_average(r) == pytest.approx(3.0)
    np.testing.assert_allclose(average_over_seen(r), [1.0, 3.0])
    assert final_average(np.array([[1.0, NAN], [NAN, 5.0]])) == pytest.approx(5.0)
