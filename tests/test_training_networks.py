"""THA1's networks at full size (shapes, one forward pass) and their building blocks."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tests.numerics import U32  # noqa: E402
from training.configs import CONFIGS, NetworkConfig  # noqa: E402
from training.networks import Combiner, Morpher, Rotator  # noqa: E402
from training.networks.rotator import warp  # noqa: E402

torch.set_num_threads(2)
FULL = CONFIGS["tha1"].network


def count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.numeric
def test_full_size_networks_run_one_forward_pass():
    torch.manual_seed(0)
    image = torch.rand(1, 4, 256, 256) * 2 - 1
    pose = torch.rand(1, 3)
    with torch.no_grad():
        morpher = Morpher(FULL)
        assert morpher.body.layers[0].in_channels == 7
        out = morpher(image, pose)
        # α·image + (1 - α)·tanh(…) of values in [-1, 1]: three roundings can pass 1 by 3u.
        assert out.shape == (1, 4, 256, 256) and out.abs().max() <= 1 + 3 * U32
        del morpher
        rotator = Rotator(FULL)
        first, second = rotator(image, pose)
        assert first.shape == second.shape == (1, 4, 256, 256)
        del rotator
        combiner = Combiner(FULL)
        assert combiner.body.stem[0].in_channels == 11
        assert combiner(first, second, pose).shape == (1, 4, 256, 256)
    # 512 channels at the 32×32 bottleneck; about 34 M parameters each (THA1: ~360 MB in all).
    assert 30e6 < count(Morpher(FULL)) < 40e6


def test_body_reaches_512_channels_at_32x32():
    body = Morpher(FULL).body.layers
    x = torch.zeros(1, 7, 256, 256)
    shapes = []
    with torch.no_grad():
        for layer in body:
            x = layer(x)
            shapes.append(tuple(x.shape[1:]))
    assert (512, 32, 32) in shapes and shapes[-1] == (64, 256, 256)


def test_width_depth_and_size_are_configurable():
    config = NetworkConfig(
        image_size=32, base_channels=8, max_channels=16, downsamplings=2, res_blocks=1
    )
    out = Rotator(config, pose_size=5)(torch.zeros(2, 4, 32, 32), torch.zeros(2, 5))
    assert out[0].shape == (2, 4, 32, 32)
    with pytest.raises(ValueError, match="does not divide"):
        NetworkConfig(image_size=36, downsamplings=3)


@pytest.mark.numeric
def test_zero_flow_is_the_identity_and_outside_is_transparent():
    image = torch.rand(1, 4, 16, 16) * 2 - 1
    # The identity grid's pixel centres, (2i + 1)/W - 1, are computed to about 2u, which
    # grid_sample scales by W/2 pixels: a sample position off by up to W·u pixel, times a
    # neighbour difference of at most 1 in [0, 1] (2 in [-1, 1]), plus the four roundings of
    # (x + 1)/2, the blend and 2y - 1.
    width = image.shape[-1]
    bound = (2 * width + 4) * U32
    assert torch.allclose(warp(image, torch.zeros(1, 2, 16, 16)), image, rtol=0, atol=bound)
    shifted = warp(image, torch.full((1, 2, 16, 16), 4.0))  # sample far outside the image
    assert torch.equal(shifted, torch.full_like(shifted, -1.0))  # zeros padding: 0·2 - 1


@pytest.mark.numeric
def test_alpha_bias_starts_near_identity():
    config = CONFIGS["cpu-small"].network
    torch.manual_seed(0)
    image = torch.rand(2, 4, 128, 128) * 2 - 1
    with torch.no_grad():
        out = Morpher(config)(image, torch.rand(2, 3))
    # out - image = (1 - σ(3))·(change - image) with σ(3) = 0.953: a model property with a wide
    # margin (rounding moves these means by ~1e-7 of themselves).
    assert (out - image).abs().mean() < 0.1 * (image.abs().mean())
