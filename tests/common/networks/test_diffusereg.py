"""DiffuseReg's pieces against independent truths: the fused window attention against an explicit softmax over
the full token sequence, batch independence, VTN's affine map and regulariser on known matrices, and sampling
with an oracle noise predictor (which must return the target field exactly, stop early once it is stable, and
be steered by folding guidance)."""

import math

import pytest
import torch
from monai.networks.nets.swin_unetr import compute_mask, window_partition

from common.diffusion import FoldingGuidance, MaskedSimilarityGuidance, StopWhenStable
from common.losses import AffineCascadeRegulariser
from common.networks import VTN, DiffuseReg, SwinCrossBlock
from common.networks.swin_cross import fused_window_attention
from common.networks.vtn import affine_ddf
from common.spatial import jacobian_determinant


def _reference_attention(block, time, moving, fixed, field, mask):
    """The published formulation: all 1 + 3N tokens attend, bias and mask tiled 3 x 3 on [1:, 1:], keep the
    last N rows; written as an explicit softmax."""
    attn = block.attn
    b, n, c = field.shape
    heads = attn.num_heads
    tokens = torch.cat([time, moving, fixed, field], 1)
    length = tokens.shape[1]
    q, k, v = attn.qkv(tokens).reshape(b, length, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    logits = (q * attn.scale) @ k.transpose(-2, -1)
    table = attn.relative_position_bias_table[attn.relative_position_index[:n, :n].reshape(-1)]
    bias = table.reshape(n, n, heads).permute(2, 0, 1)
    extra = torch.zeros(b, heads, length, length)
    extra[:, :, 1:, 1:] = bias.repeat(1, 3, 3)
    if mask is not None:
        windows = mask.shape[0]
        tiled = torch.zeros(windows, length, length)
        tiled[:, 1:, 1:] = mask.repeat(1, 3, 3)
        extra = extra + tiled.repeat(b // windows, 1, 1).unsqueeze(1)
    out = torch.softmax(logits + extra, dim=-1) @ v
    out = out.transpose(1, 2).reshape(b, length, c)[:, -n:]
    return attn.proj(out)


@pytest.mark.parametrize("shifted", [False, True])
def test_fused_attention_matches_the_explicit_formulation(shifted):
    torch.manual_seed(0)
    window, c = (2, 2, 2), 8
    block = SwinCrossBlock(c, 2, window, (1, 1, 1) if shifted else (0, 0, 0))
    torch.nn.init.normal_(block.attn.relative_position_bias_table, std=0.5)
    n, windows, batch = 8, 8, 2
    mask = compute_mask([4, 4, 4], window, (1, 1, 1), None) if shifted else None
    assert mask is None or mask.shape == (windows, n, n)
    time, moving, fixed, field = (torch.randn(batch * windows, k, c) for k in (1, n, n, n))
    ours = fused_window_attention(block, time, moving, fixed, field, mask)
    expected = _reference_attention(block, time, moving, fixed, field, mask)
    assert torch.allclose(ours, expected, atol=1e-5)


def test_cross_block_is_batch_independent_and_sees_the_condition():
    torch.manual_seed(0)
    block = SwinCrossBlock(8, 2, (2, 2, 2), (1, 1, 1)).eval()
    x, m, f = (torch.randn(2, 4, 4, 4, 8) for _ in range(3))
    t = torch.randn(2, 8)
    mask = compute_mask([4, 4, 4], (2, 2, 2), (1, 1, 1), None)
    both = block(x, m, f, t, mask)
    singles = torch.cat([block(x[i : i + 1], m[i : i + 1], f[i : i + 1], t[i : i + 1], mask) for i in range(2)])
    assert torch.allclose(both, singles, atol=1e-5)
    assert not torch.allclose(block(x, m.flip(0), f, t, mask), both, atol=1e-3)  # the moving tokens matter
    assert not torch.allclose(block(x, m, f, t.flip(0), mask), both, atol=1e-3)  # so does the time token
    assert window_partition(x, (2, 2, 2)).shape == (16, 8, 8)


def test_affine_ddf_of_a_known_map():
    matrix = torch.tensor([[[2.0, 0.0], [0.5, 1.0]]])
    translation = torch.tensor([[1.0, -2.0]])
    ddf = affine_ddf(matrix, translation, (5, 7))
    p = torch.stack(torch.meshgrid(torch.arange(5.0) - 2, torch.arange(7.0) - 3, indexing="ij"))
    expected = torch.einsum("ij,j...->i...", matrix[0], p) + translation[0].view(2, 1, 1) - p
    assert torch.allclose(ddf[0], expected)
    det = jacobian_determinant(ddf)
    assert torch.allclose(det, torch.full_like(det, 2.0), atol=1e-5)  # det A


def test_vtn_starts_at_identity_and_returns_its_parts():
    torch.manual_seed(0)
    net = VTN(2, cascades=2, affine_channels=(8, 8), cascade_encoder=(8, 8), cascade_decoder=(8, 8, 8))
    out = net(torch.rand(2, 2, 32, 32), outputs=True)
    assert out["ddf"].abs().max() < 1e-3
    assert torch.allclose(out["matrix"], torch.eye(2).expand(2, 2, 2))
    assert len(out["flows"]) == 2


def test_affine_regulariser_on_known_matrices():
    reg = AffineCascadeRegulariser(det_weight=1.0, ortho_weight=1.0, grad_weight=0.0)
    angle = 0.3
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    assert float(reg({"matrix": rotation[None], "flows": []})) == pytest.approx(0.0, abs=1e-6)
    scaling = torch.diag(torch.tensor([2.0, 1.0]))[None]
    # det 2: (2 - 1)^2 / 2; eigenvalues of A^T A = 4, 1: (4 + 1/4 - 2) + 0
    assert float(reg({"matrix": scaling, "flows": []})) == pytest.approx(0.5 + 2.25, rel=1e-3)


def _oracle(model, target):
    """Make ``model`` predict the exact noise for the clean field ``target`` (DDF, voxels)."""
    x0 = model.normalise(target)

    def backbone(x_t, moving, fixed, t):
        a = model._alpha(t, x_t)
        eps = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
        return eps - (1 - a).sqrt() * x_t  # predict_noise adds the skip term back

    model.backbone.forward = backbone
    return model


def _model():
    model = DiffuseReg(2, feature_size=8, depths=(1, 1), num_heads=(1, 2), window_size=(4, 4))
    model.set_field_statistics([0.5, -0.5], [2.0, 1.0], 100)
    return model.eval()


@pytest.mark.parametrize("sampler, steps", [("ddim", 50), ("ddim", 10), ("ddpm", None)])
def test_oracle_sampling_returns_the_field(sampler, steps):
    torch.manual_seed(0)
    target = torch.randn(1, 2, 16, 16)
    model = _oracle(_model(), target)
    seen = []
    ddf = model.sample(torch.rand(1, 2, 16, 16), sampler, steps, observer=seen.append, every=5)
    assert torch.allclose(ddf, target, atol=1e-3)
    assert torch.allclose(seen[-1].x0, target, atol=1e-3)  # observers see de-normalised fields
    assert seen[-1].total == (2000 if sampler == "ddpm" else steps)


def test_stable_field_stops_sampling_early():
    target = torch.randn(1, 2, 16, 16)
    model = _oracle(_model(), target)
    stop = StopWhenStable(tolerance=1e-3, window=2)
    ddf = model.sample(torch.rand(1, 2, 16, 16), "ddim", 50, observer=stop, every=1)
    assert stop.stopped_at == 2  # the oracle's estimate is exact from the first step
    assert torch.allclose(ddf, target, atol=1e-3)


def test_folding_guidance_removes_folds():
    x = torch.linspace(0, 1, 16)
    fold = torch.zeros(1, 2, 16, 16)
    fold[0, 0] = (-4.0 * torch.sin(2 * math.pi * x)).view(16, 1)  # d u_0 / d p_0 < -1 somewhere: folds
    model = _oracle(_model(), fold)
    pair = torch.rand(1, 2, 16, 16)
    plain = model.sample(pair, "ddim", 20)
    guided = model.sample(pair, "ddim", 20, guidance=[FoldingGuidance(scale=0.1)])
    folds = [float((jacobian_determinant(d) <= 0).float().mean()) for d in (plain, guided)]
    assert folds[0] > 0.05 and folds[1] < folds[0] / 2
    with pytest.raises(ValueError, match="mask"):
        model.sample(pair, "ddim", 5, guidance=[MaskedSimilarityGuidance(1.0)])


def test_training_draw_needs_field_statistics_and_a_bootstrap():
    model = DiffuseReg(2, feature_size=8, depths=(1, 1), num_heads=(1, 2), window_size=(4, 4))
    with pytest.raises(ValueError, match="statistics"):
        model(torch.rand(1, 2, 16, 16), outputs=True)
    model.set_field_statistics([0.0, 0.0], [1.0, 1.0], 1)
    with pytest.raises(ValueError, match="bootstrap"):
        model(torch.rand(1, 2, 16, 16), outputs=True)
    vtn = VTN(2, cascades=1, affine_channels=(8,), cascade_encoder=(8, 8), cascade_decoder=(8, 8, 8))
    model = DiffuseReg(2, feature_size=8, depths=(1, 1), num_heads=(1, 2), window_size=(4, 4), bootstrap=vtn)
    model.set_field_statistics([0.0, 0.0], [1.0, 1.0], 1)
    out = model(torch.rand(3, 2, 16, 16), outputs=True)  # batch above 1
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (3, 2, 16, 16) for k in out}
    assert not any(k.startswith("bootstrap") for k in model.state_dict())
    (out["noise_pred"].sum() + out["ddf"].sum()).backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None]
    assert unused == []  # DistributedDataParallel needs every parameter in the graph
    assert all(not p.requires_grad for p in vtn.parameters())
