import itertools

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from lipnet_ko.model.losses import ctc_loss  # noqa: E402


def brute_force_nll(ids, logits):
    """-log p(ids) by summing every frame path that collapses to ids (blank 0)."""
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    total = 0.0
    for path in itertools.product(range(logits.shape[1]), repeat=logits.shape[0]):
        collapsed = [k for k, _ in itertools.groupby(path) if k != 0]
        if collapsed == list(ids):
            total += np.exp(sum(log_probs[t, k] for t, k in enumerate(path)))
    return -np.log(total)


def test_matches_brute_force_with_true_lengths():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 6, 4)).astype(np.float32)
    ids = np.array([[1, 2, 0, 0], [3, 3, 1, 0]], dtype=np.int32)  # padded with 0
    id_lengths = np.array([2, 3], dtype=np.int32)
    logit_lengths = np.array([4, 6], dtype=np.int32)  # the first clip has 2 padded frames
    loss = ctc_loss(ids, logits, id_lengths, logit_lengths).numpy()
    expected = [brute_force_nll([1, 2], logits[0, :4]), brute_force_nll([3, 3, 1], logits[1])]
    np.testing.assert_allclose(loss, expected, rtol=1e-4)


def test_padding_does_not_change_the_loss():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1, 8, 5)).astype(np.float32)
    ids = np.array([[1, 2, 3]], dtype=np.int32)
    short = ctc_loss(ids, logits[:, :5], [3], [5]).numpy()
    padded = ctc_loss(np.pad(ids, ((0, 0), (0, 4))), logits, [3], [5]).numpy()
    np.testing.assert_allclose(short, padded, rtol=1e-6)


def test_infeasible_label_gets_a_huge_loss():
    logits = np.zeros((1, 2, 4), np.float32)
    loss = ctc_loss(np.array([[1, 1]], np.int32), logits, [2], [2]).numpy()  # needs 3 frames
    feasible = ctc_loss(np.array([[1, 2]], np.int32), logits, [2], [2]).numpy()
    assert loss[0] > 500 > 10 > feasible[0]  # TF clamps log(0) near -708 instead of returning inf
