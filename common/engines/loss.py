"""The training objective of a registration model: image similarity + field regularity (+ label overlap)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..losses.dice import one_hot
from ..spatial.warp import sample_displaced

__all__ = ["RegistrationLoss"]


class RegistrationLoss(nn.Module):
    """``image_weight * image_loss(warped moving, fixed) + reg_weight * regulariser(...) + label_weight * label_loss
    + denoise_weight * MSE(noise_pred, noise)``.

    Called by MONAI's trainer as ``loss(pred, targets)``: ``pred`` is the network's outputs dict (``ddf``,
    ``velocity``, ...), ``targets`` the pair (``moving``, ``fixed``, labels). The moving image is warped with
    ``border`` padding; labels (when ``label_loss`` is set and both exist) as one-hot maps with linear
    interpolation (DESIGN.md).

    Args:
        image_loss: e.g. ``LNCCLoss``, ``ParzenNMILoss``, ``torch.nn.MSELoss``; called ``(warped, fixed)``.
        regulariser: called on ``pred[reg_on]``; ``reg_on="outputs"`` passes the whole dict (``KLPriorLoss``).
        reg_on: ``"ddf"``, ``"velocity"`` (MIDIR, VoxelMorph-diff regularise the velocity), ``"velocities"``
            (the list of a time-dependent velocity field: TransMorph-TVF LDDMM) or ``"outputs"``.
        label_loss: e.g. ``SoftDiceLoss`` on one-hot maps with ``num_classes`` classes.
        denoise_weight: weight of the diffusion term ``||eps_hat - eps||^2`` on ``pred["noise_pred"]`` and
            ``pred["noise"]`` (DiffuseMorph, DDM: 1 with ``image_weight = reg_weight = lambda``).
    The last call's terms are kept in ``self.terms`` (floats) for logging.
    """

    def __init__(
        self,
        image_loss: nn.Module,
        image_weight: float = 1.0,
        regulariser: nn.Module | None = None,
        reg_weight: float = 0.0,
        reg_on: str = "ddf",
        label_loss: nn.Module | None = None,
        label_weight: float = 0.0,
        num_classes: int | None = None,
        denoise_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if reg_on not in ("ddf", "velocity", "velocities", "outputs"):
            raise ValueError(f"reg_on must be 'ddf', 'velocity', 'velocities' or 'outputs', got {reg_on!r}")
        if label_loss is not None and not num_classes:
            raise ValueError("label_loss needs num_classes (background included)")
        self.image_loss, self.regulariser, self.label_loss = image_loss, regulariser, label_loss
        self.image_weight, self.reg_weight, self.label_weight = image_weight, reg_weight, label_weight
        self.reg_on, self.num_classes, self.denoise_weight = reg_on, num_classes, denoise_weight
        self.terms: dict[str, float] = {}

    def forward(self, pred: dict, targets: dict) -> torch.Tensor:
        if not isinstance(pred, dict) or "ddf" not in pred:
            raise ValueError("RegistrationLoss needs the network's outputs dict (call the network with outputs=True)")
        ddf = pred["ddf"]
        warped = sample_displaced(targets["moving"], ddf, padding_mode="border")
        terms = {"image": self.image_weight * self.image_loss(warped, targets["fixed"])}
        if self.regulariser is not None and self.reg_weight:
            field = pred if self.reg_on == "outputs" else pred[self.reg_on]
            terms["reg"] = self.reg_weight * self.regulariser(field)
        if self.label_loss is not None and self.label_weight and "moving_label" in targets and "fixed_label" in targets:
            moving = one_hot(targets["moving_label"], self.num_classes)
            fixed = one_hot(targets["fixed_label"], self.num_classes)
            terms["label"] = self.label_weight * self.label_loss(sample_displaced(moving, ddf), fixed)
        if self.denoise_weight:
            if "noise_pred" not in pred or "noise" not in pred:
                raise ValueError("denoise_weight needs a diffusion model's outputs ('noise_pred' and 'noise')")
            terms["denoise"] = self.denoise_weight * F.mse_loss(pred["noise_pred"], pred["noise"])
        total = sum(terms.values())
        self.terms = {"loss": float(total.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
        return total
