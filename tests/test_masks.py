"""fastMRI-semantics Cartesian masks."""

import numpy as np
import pytest

from nas_recon.errors import ConfigError
from nas_recon.physics.masks import MaskSpec, center_fraction_for, eval_seed, make_mask


@pytest.mark.parametrize("acc,width,centre", [(4, 368, 29), (8, 368, 15), (4, 320, 26), (8, 320, 13)])
@pytest.mark.parametrize("kind", ["random", "equispaced"])
def test_exact_centre_lines(acc, width, centre, kind):
    assert round(width * center_fraction_for(acc)) == centre
    m = make_mask(width, acc, kind=kind, rng=np.random.default_rng(0))
    pad = (width - centre + 1) // 2
    assert m[pad : pad + centre].all()
    # the fully sampled centre is exactly `centre` wide: for random masks check over many draws that
    # the neighbours of the block are not always sampled
    if kind == "random":
        edges = [make_mask(width, acc, rng=np.random.default_rng(s))[[pad - 1, pad + centre]] for s in range(50)]
        assert not np.all(edges)


@pytest.mark.parametrize("acc", [4, 8])
@pytest.mark.parametrize("width", [320, 368])
def test_mean_acceleration_within_5_percent(acc, width):
    rng = np.random.default_rng(123)
    counts = [make_mask(width, acc, rng=rng).sum() for _ in range(2000)]
    achieved = width / np.mean(counts)
    assert abs(achieved - acc) / acc < 0.05


def test_same_seed_same_mask_and_eval_masks_fixed():
    a = make_mask(320, 4, rng=np.random.default_rng(eval_seed(0, "f.h5", 3, 4)))
    b = make_mask(320, 4, rng=np.random.default_rng(eval_seed(0, "f.h5", 3, 4)))
    c = make_mask(320, 4, rng=np.random.default_rng(eval_seed(0, "f.h5", 4, 4)))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("acc", [4, 8])
def test_equispaced_spacing(acc):
    width = 368
    m = make_mask(width, acc, kind="equispaced", rng=np.random.default_rng(1))
    centre = round(width * center_fraction_for(acc))
    pad = (width - centre + 1) // 2
    outside = np.nonzero(m)[0]
    outside = outside[(outside < pad) | (outside >= pad + centre)]
    gaps = np.diff(outside[outside < pad])
    # fastMRI's adjusted acceleration keeps the total at about width / acc
    adjusted = acc * (centre - width) / (centre * acc - width)
    assert set(gaps.tolist()) <= {int(np.floor(adjusted)), int(np.ceil(adjusted))}
    assert abs(m.sum() - width / acc) <= 2


def test_mask_spec_draws_both_accelerations():
    spec = MaskSpec("random", (4, 8))
    rng = np.random.default_rng(0)
    accs = [spec.draw(64, rng)[1] for _ in range(400)]
    assert 0.4 < np.mean(np.array(accs) == 4) < 0.6


def test_bad_mask_arguments():
    with pytest.raises(ConfigError, match="unknown 'gaussian'"):
        make_mask(64, 4, kind="gaussian")
    with pytest.raises(ConfigError, match=">= 1"):
        make_mask(64, 0.5)
    with pytest.raises(ConfigError, match="acceleration"):
        MaskSpec("random", (4, 0))
