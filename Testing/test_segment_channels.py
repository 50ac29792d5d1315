"""Zoo TC/WT/ET channels ⇄ BraTS labels: exact both ways."""

import itertools

import numpy as np
import pytest

from HybridNeuroLib.segment.channels import channels_to_labels, labels_to_channels


def test_every_label_maps_to_the_zoo_regions_and_back():
    labels = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    channels = labels_to_channels(labels)
    assert channels.shape == (3, 2, 2)
    assert channels[0].tolist() == [[False, True], [False, True]]  # tumor core = necrotic or enhancing
    assert channels[1].tolist() == [[False, True], [True, True]]  # whole tumor = any label
    assert channels[2].tolist() == [[False, False], [False, True]]  # enhancing only
    random_labels = np.random.default_rng(0).integers(0, 4, (7, 8, 9)).astype(np.uint8)
    np.testing.assert_array_equal(channels_to_labels(labels_to_channels(random_labels)), random_labels)


def test_probabilities_threshold_at_one_half_and_inner_regions_win():
    # every combination of (TC, WT, ET) decisions, as probabilities just above/below 0.5
    combos = np.array(list(itertools.product([0.49, 0.51], repeat=3))).T  # (3, 8)
    labels = channels_to_labels(combos).tolist()
    expected = {(0, 0, 0): 0, (0, 1, 0): 2, (1, 1, 0): 1, (1, 1, 1): 3, (0, 1, 1): 3, (1, 0, 0): 1,
                (0, 0, 1): 3, (1, 0, 1): 3}
    assert labels == [expected[tuple(int(v > 0.5) for v in column)] for column in combos.T]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="3 channels"):
        channels_to_labels(np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="0..3"):
        labels_to_channels(np.array([0, 4]))
