"""FFT identities, complex layout and k-space fusion."""

import math

import numpy as np
import pytest
import torch

from nas_recon.physics import KSpaceFusion, center_crop, chan_to_complex, complex_to_chan, fft2c, fuse, ifft2c


def rand_complex(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))


@pytest.mark.parametrize("shape", [(8, 8), (2, 3, 17, 12), (1, 2, 320, 320)])
def test_fft_round_trip(shape):
    x = rand_complex(*shape)
    torch.testing.assert_close(ifft2c(fft2c(x)), x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fft2c(ifft2c(x)), x, atol=1e-5, rtol=1e-5)


def test_parseval():
    x = rand_complex(3, 33, 20)
    assert torch.allclose(fft2c(x).abs().pow(2).sum((-2, -1)), x.abs().pow(2).sum((-2, -1)), rtol=1e-4)


def test_fft_is_centered_numpy_convention():
    x = rand_complex(16, 10).numpy()
    ref = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho"))
    np.testing.assert_allclose(fft2c(torch.from_numpy(x)).numpy(), ref, atol=1e-5)
    # a centred delta has a flat spectrum
    d = torch.zeros(8, 8, dtype=torch.complex64)
    d[4, 4] = 1
    assert torch.allclose(fft2c(d).abs(), torch.full((8, 8), 1 / 8))


def test_complex_chan_round_trip():
    x = rand_complex(2, 5, 7)
    c = complex_to_chan(x)
    assert c.shape == (2, 2, 5, 7)
    assert torch.equal(chan_to_complex(c), x)
    with pytest.raises(ValueError, match="2 channels"):
        chan_to_complex(torch.zeros(1, 3, 4, 4))


def test_center_crop():
    x = torch.arange(36.0).view(6, 6)
    assert torch.equal(center_crop(x, 2, 4), x[2:4, 1:5])
    with pytest.raises(ValueError, match="smaller than the crop"):
        center_crop(x, 8, 2)


def masked_pair(seed=1):
    x = complex_to_chan(rand_complex(2, 12, 10, seed=seed))
    k_full = complex_to_chan(rand_complex(2, 12, 10, seed=seed + 1))
    mask = (torch.rand(2, 1, 1, 10, generator=torch.Generator().manual_seed(seed)) > 0.5).float()
    return x, k_full * mask, mask


def test_hard_fusion_keeps_measured_values():
    x, k0, mask = masked_pair()
    out = KSpaceFusion()(x, k0, mask)
    k_out = fft2c(chan_to_complex(out))
    sel = mask[:, 0].expand(2, 12, 10).bool()
    torch.testing.assert_close(k_out[sel], chan_to_complex(k0)[sel], atol=1e-5, rtol=1e-5)
    # unsampled points keep the network's k-space
    torch.testing.assert_close(k_out[~sel], fft2c(chan_to_complex(x))[~sel], atol=1e-5, rtol=1e-5)


def test_soft_fusion_closed_form():
    x, k0, mask = masked_pair(3)
    lam = 0.7
    out = KSpaceFusion(lam)(x, k0, mask)
    k = fft2c(chan_to_complex(x))
    m = mask[:, 0]
    expected = (1 - m) * k + m * (k + lam * chan_to_complex(k0)) / (1 + lam)
    torch.testing.assert_close(fft2c(chan_to_complex(out)), expected, atol=1e-5, rtol=1e-5)
    # large lambda approaches hard replacement
    torch.testing.assert_close(fuse(x, k0, mask, 1e9), fuse(x, k0, mask, None), atol=1e-4, rtol=1e-4)


def test_learnable_lambda_gets_gradient():
    x, k0, mask = masked_pair(5)
    layer = KSpaceFusion(2.0, learnable=True)
    assert math.isclose(float(layer.current_lam().detach()), 2.0, rel_tol=1e-5)
    layer(x, k0, mask).pow(2).sum().backward()
    assert layer.raw_lam.grad is not None and layer.raw_lam.grad.abs() > 0
    assert sum(p.numel() for p in KSpaceFusion().parameters()) == 0


def test_fusion_runs_in_float32_under_bf16_autocast():
    """Mixed precision (issue 21): a network under bf16 autocast hands the fusion bf16 images; the fusion runs
    in float32/complex64 and matches the fp32 result to bf16 rounding of its input."""
    from nas_recon.physics.fusion import KSpaceFusion

    g = torch.Generator().manual_seed(0)
    x, k0 = torch.randn(2, 2, 16, 12, generator=g), torch.randn(2, 2, 16, 12, generator=g)
    mask = (torch.rand(2, 1, 1, 12, generator=g) > 0.5).float()
    for layer in (KSpaceFusion(), KSpaceFusion(0.5)):
        ref = layer(x, k0, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = layer(torch.nn.functional.conv2d(x, torch.eye(2).view(2, 2, 1, 1)), k0, mask)  # bf16 from a conv
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, ref, atol=0.05, rtol=0.02)


def _coil_problem(coils: int = 4, h: int = 12, w: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)

    def cplx(*shape):
        return torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))

    maps = cplx(2, coils, h, w)
    maps = maps / (maps.abs() ** 2).sum(dim=1, keepdim=True).sqrt()  # sum_c |S_c|^2 = 1, as ESPIRiT normalises
    mask = (torch.rand(2, 1, 1, w, generator=g) > 0.5).to(torch.complex64)
    return cplx(2, h, w), cplx(2, coils, h, w), maps, mask


def test_sense_operator_is_adjoint():
    """<A x, y> = <x, A^H y> to float tolerance (issue 22)."""
    from nas_recon.physics.sense import dot, sense_adjoint, sense_forward

    x, y, maps, mask = _coil_problem()
    lhs = dot(sense_forward(x, maps, mask), y)
    rhs = dot(x, sense_adjoint(y, maps, mask))
    torch.testing.assert_close(lhs, rhs, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("h,w", [(6, 5), (8, 8), (7, 9)])
def test_column_projection_and_coil_consistency_equal_the_2d_transforms(h, w):
    """F^H M F x through 1-D FFTs along W (no shifts) equals the centered 2-D transforms for odd and even sizes;
    coil_consistency is F^H ((1 - w M) F c + w M k0) for column and 2-D masks."""
    from nas_recon.physics.sense import coil_consistency, column_projection

    g = torch.Generator().manual_seed(h * w)
    x = torch.randn(3, h, w, dtype=torch.complex128, generator=g)
    m = (torch.rand(w, generator=g) < 0.5).double()
    k0 = torch.randn(3, h, w, dtype=torch.complex128, generator=g) * m
    torch.testing.assert_close(column_projection(x, m), ifft2c(m * fft2c(x)), rtol=0, atol=1e-12)
    k = fft2c(x)
    for weight in (1.0, 0.3):
        want = ifft2c((1 - weight * m) * k + weight * m * k0)
        for mask in (m.view(1, w), m.expand(h, w).clone()):
            torch.testing.assert_close(coil_consistency(x, k0, mask, weight), want, rtol=0, atol=1e-12)


def test_conjugate_gradient_matches_a_direct_solve():
    """CG on the regularised normal equations equals the dense solve of the same tiny problem."""
    from nas_recon.physics.sense import sense_adjoint, sense_dc, sense_forward

    x, k, maps, mask = _coil_problem(coils=3, h=6, w=5)
    k0 = sense_forward(x, maps, mask)
    z = 0.5 * x
    lam = 0.3
    got = sense_dc(z, k0, maps, mask, lam, iterations=60)
    n = 6 * 5
    for b in range(2):  # columns of A^H A + lam I from unit vectors
        eye = torch.eye(n, dtype=torch.complex64).view(n, 6, 5)
        cols = [sense_adjoint(sense_forward(e[None].expand(2, 6, 5), maps, mask), maps, mask)[b] + lam * e
                for e in eye]
        a = torch.stack([c.reshape(-1) for c in cols], dim=1)
        rhs = (sense_adjoint(k0, maps, mask)[b] + lam * z[b]).reshape(-1)
        direct = torch.linalg.solve(a.to(torch.complex128), rhs.to(torch.complex128)).to(torch.complex64)
        torch.testing.assert_close(got[b].reshape(-1), direct, rtol=1e-4, atol=1e-4)


def test_one_coil_sense_dc_is_the_closed_form_fusion():
    """With one coil and unit maps, CG data consistency (weight lam on the prior) equals KSpaceFusion(1/lam)."""
    from nas_recon.physics.fusion import KSpaceFusion
    from nas_recon.physics.sense import sense_dc

    g = torch.Generator().manual_seed(1)
    x, k0 = torch.randn(2, 2, 12, 10, generator=g), torch.randn(2, 2, 12, 10, generator=g)
    mask = (torch.rand(2, 1, 1, 10, generator=g) > 0.5).float()
    k0 = k0 * mask
    lam = 0.25
    fused = KSpaceFusion(1 / lam)(x, k0, mask)
    maps = torch.ones(2, 1, 12, 10, dtype=torch.complex64)
    cg = sense_dc(chan_to_complex(x), chan_to_complex(k0).unsqueeze(1), maps, mask.to(torch.complex64), lam,
                  iterations=20)
    torch.testing.assert_close(complex_to_chan(cg), fused, rtol=1e-4, atol=1e-5)
