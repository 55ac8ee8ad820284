"""Test-time refinement ("instance optimisation") of a network's prediction on one pair, by Adam on the
bundle's own training objective (its ``RegistrationLoss``: image term and regulariser; labels excluded), starting
from the network's output and keeping the method's guarantee.

What is optimised depends on the method (:func:`refinement_kind`):

- ``"control_points"`` (MIDIR): the B-spline control-point velocities; the field stays ``exp`` of a B-spline SVF,
  diffeomorphic.
- ``"velocity"`` (VoxelMorph-diff): the stationary velocity itself; ``exp(v)``, diffeomorphic, inverse ``exp(-v)``.
- ``"residual_svf"`` (TransMorph-TVF, any method with a true inverse): a stationary velocity ``w`` (zero at the
  start) composed with the prediction, ``phi_net o exp(w)``; diffeomorphic, inverse ``exp(-w) o phi_net^-1``.
- ``"residual"`` (plain displacement methods): a displacement residual added to the prediction.

While optimising, ``exp`` of the control-point velocities is integrated on a grid halved per axis and resized back
(VoxelMorph's ``int_downsize`` 2); the refined field returned is ``exp`` on the network grid, as the method's own
transform. Residual velocities (``residual_svf``) and the velocity parameterisation are integrated on the network
grid throughout (``int_downsize`` 1): for the residual, measured with TransMorph-TVF quick and 20 steps on 6 demo
pairs, the halved grid cost 0.025 Dice (0.886 against 0.911) for 1.3 s less per pair, where MIDIR loses 0.005 on 12
template pairs (0.844 against 0.848) for 1.3 s less; the dense velocity, downsampled, would give gradients to a
subset of its voxels only.

Fields are DDFs in voxel units on the network grid (DESIGN.md). Residuals may live on a coarser grid
(``coarse``: factor per axis), resized to the network grid at every step (smoother, faster).

Coarse to fine (``levels``, optional): the first steps compare the images on grids halved once per level (about 8x
fewer voxels each), where the field is integrated and the loss evaluated; the last steps run on the network grid.
Not the default: on MIDIR quick's 48 x 48 x 64 grid a coarse step cost 0.13 s against 0.17 s on the network grid
(the dense B-spline and Adam do not shrink), and 2 levels lost 0.025 Dice on the template benchmark (README). The
parameter is the same at every level (one optimiser), only the grid it is evaluated on changes. The velocity
parameterisation runs on the network grid only.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..engines.loss import RegistrationLoss
from ..engines.postprocessing import TimedInferer
from ..spatial.integrate import compose, integrate_svf
from ..spatial.resize import resize_displacement

__all__ = [
    "Refinement",
    "RefiningInferer",
    "bundle_refinement",
    "downsample",
    "level_size",
    "level_steps",
    "refinement_kind",
]


def refinement_kind(network) -> str:
    """Which parameterisation keeps ``network``'s guarantee (module docstring)."""
    transform = getattr(network, "transform", None)
    if transform is not None and callable(getattr(transform, "dense", None)):
        return "control_points"
    if getattr(network, "mode", None) in ("velocity", "probabilistic") and hasattr(network, "int_steps"):
        return "velocity"
    if callable(getattr(network, "ddf_and_inverse", None)):
        return "residual_svf"
    return "residual"


class Refinement:
    """``steps`` Adam steps (learning rate ``lr``, voxels per step) on ``loss(pred, {"moving", "fixed"})``.

    Args:
        loss: the bundle's training objective (``common.engines.RegistrationLoss``), from its ``train.json``; only
            its image term and regulariser are kept (labels and a diffusion model's denoising term need what a
            user's pair does not have).
        steps: number of steps; 0 returns the network's prediction unchanged.
        coarse: residuals (``residual_svf``, ``residual``) on a grid this many times coarser per axis.
        int_steps: scaling-and-squaring steps of ``exp`` (7, the project's default).
        levels: resolution levels (1: the network grid only); the steps are split by :func:`level_steps`.
        int_downsize: while optimising, ``exp`` of the control-point or residual velocity is integrated on a grid
            this many times coarser per axis (1 or 2); default 2 for B-spline control points, 1 for residual
            velocities; the velocity parameterisation is always integrated on the network grid (module docstring).
    """

    def __init__(
        self,
        loss,
        steps: int = 50,
        lr: float = 0.05,
        coarse: int = 2,
        int_steps: int = 7,
        levels: int = 1,
        int_downsize: int | None = None,
    ) -> None:
        if int(steps) != steps or steps < 0:
            raise ValueError(f"refinement steps must be a non-negative integer, got {steps!r}")
        if not lr > 0:
            raise ValueError(f"refinement lr must be positive, got {lr!r}")
        if int(levels) != levels or levels < 1:
            raise ValueError(f"refinement levels must be a positive integer, got {levels!r}")
        if int_downsize not in (None, 1, 2):
            raise ValueError(f"refinement int_downsize must be 1 or 2, got {int_downsize!r}")
        self.int_downsize = int_downsize
        if isinstance(loss, RegistrationLoss):  # the image term and the regulariser; no labels, no denoising term
            loss = RegistrationLoss(loss.image_loss, loss.image_weight, loss.regulariser, loss.reg_weight, loss.reg_on)
        self.loss, self.steps, self.lr = loss, int(steps), float(lr)
        self.coarse, self.int_steps, self.levels = int(coarse), int_steps, int(levels)
        self.seconds = 0.0
        self.losses: list[float] = []

    def __call__(
        self, network, inputs: torch.Tensor, ddf: torch.Tensor, inverse: torch.Tensor | None = None, mask=None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Refined (ddf, inverse) of the pair ``inputs`` (1, 2, *spatial) = [moving, fixed] from the network's
        ``ddf`` (and ``inverse``) ``(ndim, *spatial)``. ``mask`` (1, 1, *spatial) in [0, 1]: the image term sees
        only the fixed voxels inside it."""
        if self.steps == 0:
            return ddf, inverse
        start = time.perf_counter()
        kind = refinement_kind(network)
        moving, fixed = inputs[:, :1], inputs[:, 1:]
        if mask is not None:
            moving, fixed = moving * mask, fixed * mask
        size = tuple(ddf.shape[1:])
        levels = 1 if kind == "velocity" else self.levels
        with torch.enable_grad():
            parameter, build = self._parameterise(
                kind, network, inputs, ddf[None], None if inverse is None else inverse[None]
            )
            optimiser = torch.optim.Adam([parameter], lr=self.lr)
            self.losses = []
            for level, steps in enumerate(level_steps(self.steps, levels)):
                grid = level_size(size, levels - 1 - level)
                targets = {"moving": downsample(moving, grid), "fixed": downsample(fixed, grid)}
                for _ in range(steps):
                    optimiser.zero_grad(set_to_none=True)
                    value = self.loss(build(parameter, False, grid), targets)
                    value.backward()
                    optimiser.step()
                    self.losses.append(float(value.detach()))
        with torch.no_grad():
            pred = build(parameter.detach(), True, size)
            refined = pred["ddf"][0]
            refined_inverse = pred["inverse"][0] if "inverse" in pred else None
        self.seconds = time.perf_counter() - start
        return refined, refined_inverse

    @staticmethod
    def _exp(velocity: torch.Tensor, steps: int, final: bool, downsize: int = 1) -> torch.Tensor:
        """``exp(velocity)`` on the velocity's grid; while optimising (not ``final``) with ``downsize`` 2 integrated
        on that grid halved and resized back (VoxelMorph's ``int_downsize`` 2: the integration's backward pass was
        three quarters of a step's time on the network grid)."""
        if final or downsize == 1:
            return integrate_svf(velocity, steps)
        grid = tuple(velocity.shape[2:])
        half = level_size(grid, 1)
        return resize_displacement(integrate_svf(resize_displacement(velocity, half), steps), grid)

    def _parameterise(self, kind: str, network, inputs, ddf, inverse):
        size = ddf.shape[2:]
        coarse = tuple(max(2, (n - 1) // self.coarse + 1) for n in size)
        if kind == "control_points":
            with torch.no_grad():
                points = network(inputs, outputs=True)["control_points"].detach().clone()
            transform = network.transform

            def build(cp, final, grid):
                velocity = resize_displacement(transform.dense(cp), grid)
                field = (
                    self._exp(velocity, transform.steps, final, self.int_downsize or 2)
                    if transform.diffeomorphic
                    else velocity
                )
                out = {"ddf": field, "velocity": velocity, "control_points": cp}
                if transform.diffeomorphic and final:
                    out["inverse"] = integrate_svf(-velocity, transform.steps)
                return out

            return points.requires_grad_(True), build
        if kind == "velocity":
            with torch.no_grad():
                out = network(inputs, outputs=True)
                velocity = out["mean" if "mean" in out else "velocity"].detach().clone()
                log_sigma = out["log_sigma"].detach() if "log_sigma" in out else None
            steps = network.int_steps

            def build(v, final, grid):
                out = {"ddf": integrate_svf(v, steps), "velocity": v}
                if log_sigma is not None:  # VoxelMorph-diff probabilistic: its KL prior sees the refined mean
                    out.update(mean=v, log_sigma=log_sigma)
                if final:
                    out["inverse"] = integrate_svf(-v, steps)
                return out

            return velocity.requires_grad_(True), build
        residual = torch.zeros(1, ddf.shape[1], *coarse, device=ddf.device, dtype=ddf.dtype)
        base, base_inverse = ddf.detach(), None if inverse is None else inverse.detach()
        bases = {}  # the prediction on each level's grid

        def base_on(grid):
            if grid not in bases:
                bases[grid] = resize_displacement(base, grid)
            return bases[grid]

        if kind == "residual_svf":

            def build(w, final, grid):
                velocity = resize_displacement(w, grid)
                step = self._exp(velocity, self.int_steps, final, self.int_downsize or 1)
                out = {"ddf": compose(base_on(grid), step), "velocity": velocity, "velocities": [velocity]}
                if base_inverse is not None and final:
                    out["inverse"] = compose(integrate_svf(-velocity, self.int_steps), base_inverse)
                return out

            return residual.requires_grad_(True), build

        def build(r, final, grid):
            return {"ddf": base_on(grid) + resize_displacement(r, grid)}

        return residual.requires_grad_(True), build


def level_steps(steps: int, levels: int) -> list[int]:
    """Steps per level, coarsest first: the network grid gets a quarter of them (at least one), every coarser
    level half of what remains, the coarsest the rest (20 steps, 2 levels: 15 + 5; 3 levels: 8 + 7 + 5)."""
    if levels <= 1 or steps <= 1:
        return [steps]
    fine = max(1, steps // 4)
    rest, out = steps - fine, [fine]
    for _ in range(levels - 2):
        out.insert(0, rest // 2)
        rest -= rest // 2
    return [rest, *out]


def level_size(size, halvings: int) -> tuple[int, ...]:
    """The grid ``size`` halved ``halvings`` times, corner-aligned (``n -> (n - 1) // 2 + 1``, at least 8)."""
    out = tuple(size)
    for _ in range(halvings):
        out = tuple(max(min(n, 8), (n - 1) // 2 + 1) for n in out)
    return out


def downsample(image: torch.Tensor, size) -> torch.Tensor:
    """``image`` (1, C, *spatial) on the corner-aligned grid ``size``: a 3-voxel box blur (against aliasing),
    then linear resampling; unchanged on its own grid."""
    if tuple(image.shape[2:]) == tuple(size):
        return image
    pool = F.avg_pool2d if image.ndim == 4 else F.avg_pool3d
    blurred = pool(image, 3, stride=1, padding=1, count_include_pad=False)
    mode = "bilinear" if image.ndim == 4 else "trilinear"
    return F.interpolate(blurred, size=tuple(size), mode=mode, align_corners=True)


class RefiningInferer(TimedInferer):
    """An evaluator's inferer that refines each pair's prediction (``refinement``, a :class:`Refinement`) after
    the network, as ``regzoo register --refine`` does: ``pred`` is the refined DDF batch; ``inverse`` holds the
    refined inverses of the last batch (methods with an inverse; ``common.engines.WarpOutputs`` takes them), and
    ``seconds`` network plus refinement. Used by the bundles' ``refine.json`` overlay of ``evaluate.json``."""

    def __init__(self, refinement: Refinement) -> None:
        super().__init__()
        self.refinement, self.inverse = refinement, None

    def __call__(self, inputs: torch.Tensor, network, *args, **kwargs):
        from .register import run_network

        if inputs.is_cuda:
            torch.cuda.synchronize(inputs.device)
        start = time.perf_counter()
        fields, inverses = [], []
        for b in range(inputs.shape[0]):
            pair = inputs[b : b + 1]
            ddf, inverse, _ = run_network(network, pair)
            ddf, inverse = self.refinement(network, pair, ddf, inverse)
            fields.append(ddf)
            inverses.append(inverse)
        self.inverse = None if any(i is None for i in inverses) else torch.stack(inverses)
        if inputs.is_cuda:
            torch.cuda.synchronize(inputs.device)
        self.seconds = time.perf_counter() - start
        return torch.stack(fields)


def bundle_refinement(
    bundle_root: str, steps: int = 0, lr: float = 0.05, configs=(), levels: int = 1
) -> Refinement | None:
    """The :class:`Refinement` of ``steps`` steps on the bundle's own training objective: ``loss`` of its
    ``train.json`` with the overlays ``configs`` (those that change the loss, e.g. ``multimodal.json``); ``None``
    for 0 steps. ``regzoo register --refine`` and the ``register`` run of every ``inference.json``
    (``--refine_steps N``) build it here."""
    from ..bundle import train_parser
    from ..bundle.values import optional

    steps = int(optional(steps, "refine_steps") or 0)
    if steps == 0:
        return None
    loss = train_parser(bundle_root, configs).get_parsed_content("loss")
    return Refinement(loss, steps=steps, lr=float(lr), levels=int(optional(levels, "refine_levels") or 1))
