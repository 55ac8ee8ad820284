"""Whole registration models. Every one follows the inference contract of DESIGN.md:

``forward(x)`` with ``x = (B, 2, *spatial)`` = [moving, fixed], intensities in [0, 1], returns the DDF
``(B, ndim, *spatial)`` in voxel units. ``forward(x, outputs=True)`` returns a dict for training: ``ddf``
plus what the losses need (``velocity``, ``mean`` / ``log_sigma``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..spatial.bspline import BSplineSVF, control_grid_size
from ..spatial.integrate import integrate_svf
from .blocks import conv_block, flow_head
from .unet import VM1, RegistrationUNet

__all__ = ["VoxelMorph", "MIDIR", "check_pair_input"]


def check_pair_input(x: torch.Tensor, spatial_dims: int, image_size: Sequence[int] | None = None) -> None:
    """Validate the contract input ``(B, 2, *spatial)``."""
    if x.ndim != spatial_dims + 2 or x.shape[1] != 2:
        raise ValueError(
            f"input must be (B, 2, *spatial) = [moving, fixed] with {spatial_dims} spatial axes, got {tuple(x.shape)}"
        )
    if image_size is not None and tuple(x.shape[2:]) != tuple(image_size):
        raise ValueError(f"input spatial size {tuple(x.shape[2:])} differs from the network's {tuple(image_size)}")


class VoxelMorph(nn.Module):
    """VoxelMorph (Balakrishnan et al. 2019) and VoxelMorph-diff (Dalca et al. 2019).

    Args:
        spatial_dims: 2 or 3.
        encoder, decoder: U-Net channels (``VM1`` default; ``VM2`` = (16,32,32,32) / (32,32,32,32,32,16,16)).
        mode: ``"displacement"`` (VM: the head is the DDF), ``"velocity"`` (VM-diff: a stationary velocity
            field integrated by scaling and squaring), ``"probabilistic"`` (VM-diff with a Gaussian velocity
            posterior: mean and log-variance heads, sampled in training, mean at inference).
        int_steps: scaling-and-squaring steps (7).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        encoder: Sequence[int] = VM1["encoder"],
        decoder: Sequence[int] = VM1["decoder"],
        mode: str = "displacement",
        int_steps: int = 7,
    ) -> None:
        super().__init__()
        if mode not in ("displacement", "velocity", "probabilistic"):
            raise ValueError(f"mode must be 'displacement', 'velocity' or 'probabilistic', got {mode!r}")
        self.spatial_dims, self.mode, self.int_steps = spatial_dims, mode, int_steps
        self.unet = RegistrationUNet(spatial_dims, 2, encoder, decoder)
        self.flow = flow_head(spatial_dims, self.unet.out_channels)
        if mode == "probabilistic":
            self.log_sigma = flow_head(spatial_dims, self.unet.out_channels, std=1e-10)
            nn.init.constant_(self.log_sigma.bias, -10.0)  # start with a near-deterministic posterior

    def forward(self, x: torch.Tensor, outputs: bool = False):
        check_pair_input(x, self.spatial_dims)
        features = self.unet(x)
        field = self.flow(features)
        if self.mode == "displacement":
            return {"ddf": field} if outputs else field
        out = {"velocity": field}
        if self.mode == "probabilistic":
            out["mean"], out["log_sigma"] = field, self.log_sigma(features)
            if self.training:
                field = field + torch.exp(0.5 * out["log_sigma"]) * torch.randn_like(field)
                out["velocity"] = field
        out["ddf"] = integrate_svf(field, self.int_steps)
        return out if outputs else out["ddf"]

    def trajectory(self, x: torch.Tensor, gammas: Sequence[float]) -> list[torch.Tensor]:
        """DDFs at fractions ``gamma`` of the way from moving to fixed (the DDM paper's baselines): VM scales the
        displacement (``gamma * u``), VM-diff integrates the velocity to time gamma (``exp(gamma * v)``)."""
        if self.mode == "displacement":
            ddf = self(x)
            return [float(g) * ddf for g in gammas]
        velocity = self(x, outputs=True)["mean" if self.mode == "probabilistic" else "velocity"]
        return [integrate_svf(float(g) * velocity, self.int_steps) for g in gammas]


class MIDIR(nn.Module):
    """MIDIR (Qiu et al. 2021): a U-Net predicts cubic B-spline control-point velocities of an SVF.

    U-Net encoder 16-32-32-32-32 (first convolution at full resolution, then 4 stride-2), ``4 - ceil(log2 s)``
    decoder levels for control-point spacing ``s`` (the coarsest of the axes), a (bi/tri)linear resize to the
    control grid ``ceil((n - 1) / s) + 3``, two 3x3 convolutions (32, 16), an output convolution to ``ndim``
    channels (no activation). Control points -> dense SVF (transposed-convolution B-spline) -> ``exp`` with
    ``int_steps`` steps; ``diffeomorphic=False`` uses the B-spline displacement directly.
    """

    def __init__(
        self,
        image_size: Sequence[int],
        spacing: Sequence[int] | int = 2,
        int_steps: int = 7,
        diffeomorphic: bool = True,
        encoder: Sequence[int] = (16, 32, 32, 32, 32),
        decoder: Sequence[int] = (32, 32, 32, 32),
        head: Sequence[int] = (32, 16),
    ) -> None:
        super().__init__()
        self.image_size = tuple(int(n) for n in image_size)
        self.spatial_dims = len(self.image_size)
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"image_size must have 2 or 3 values, got {self.image_size}")
        self.transform = BSplineSVF(self.image_size, spacing, steps=int_steps, diffeomorphic=diffeomorphic)
        self.grid_size = control_grid_size(self.image_size, self.transform.spacing)
        levels = 4 - math.ceil(math.log2(max(self.transform.spacing)))
        self.unet = RegistrationUNet(
            self.spatial_dims,
            2,
            encoder,
            tuple(decoder)[: max(levels, 0)],
            strides=(1,) + (2,) * (len(encoder) - 1),
            num_upsamplings=max(levels, 0),
        )
        layers, channels = [], self.unet.out_channels
        for out in head:
            layers.append(conv_block(self.spatial_dims, channels, out))
            channels = out
        self.head = nn.Sequential(*layers)
        self.out = flow_head(self.spatial_dims, channels)

    def forward(self, x: torch.Tensor, outputs: bool = False):
        check_pair_input(x, self.spatial_dims, self.image_size)
        features = self.unet(x)
        mode = "bilinear" if self.spatial_dims == 2 else "trilinear"
        features = F.interpolate(features, size=self.grid_size, mode=mode, align_corners=False)
        control_points = self.out(self.head(features))
        field = self.transform.dense(control_points)
        ddf = integrate_svf(field, self.transform.steps) if self.transform.diffeomorphic else field
        return {"ddf": ddf, "velocity": field, "control_points": control_points} if outputs else ddf
