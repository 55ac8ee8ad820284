"""Turning a pair batch into network input and loss targets for MONAI's trainers and evaluators."""

from __future__ import annotations

import torch

__all__ = ["PairBatch"]

# the pair, its labels, and for cine sequences the real frames and the ED/ES frame numbers (trajectory metrics)
_KEYS = ("moving", "fixed", "moving_label", "fixed_label", "sequence", "sequence_label", "ed", "es")


class PairBatch:
    """``prepare_batch`` for MONAI engines: ``inputs = cat([moving, fixed])`` ``(B, 2, *spatial)`` and ``targets`` a
    dict of the pair's tensors (``moving``, ``fixed``, the labels, and a cine sequence's ``sequence``,
    ``sequence_label``, ``ed``, ``es`` when present), all on ``device``.

    ``outputs=True`` (training) also passes ``outputs=True`` to the network, which then returns its dict of
    outputs (``ddf``, ``velocity``, ...) instead of the DDF alone. ``mask_labels`` passes ``mask`` = the fixed
    labels in that set, ``(B, 1, *spatial)`` (DiffuseReg's masked similarity guidance).
    """

    def __init__(self, outputs: bool = False, mask_labels=None) -> None:
        self.outputs = outputs
        self.mask_labels = list(mask_labels) if mask_labels is not None else None

    def __call__(self, batchdata: dict, device=None, non_blocking: bool = False, **kwargs):
        missing = [k for k in ("moving", "fixed") if k not in batchdata]
        if missing:
            raise ValueError(f"a registration batch needs 'moving' and 'fixed' images, this one lacks {missing}")
        targets = {
            k: torch.as_tensor(batchdata[k]).to(device=device, non_blocking=non_blocking)
            for k in _KEYS
            if k in batchdata and not isinstance(batchdata[k], (str, list, tuple))  # file names stay behind
        }
        inputs = torch.cat([targets["moving"], targets["fixed"]], dim=1)
        kwargs = {"outputs": True} if self.outputs else {}
        if self.mask_labels is not None:
            if "fixed_label" not in targets:
                raise ValueError("mask_labels needs the fixed image's labels in the batch ('fixed_label')")
            labels = torch.as_tensor(self.mask_labels, device=targets["fixed_label"].device)
            kwargs["mask"] = torch.isin(targets["fixed_label"], labels).to(targets["fixed"].dtype)
        if kwargs:
            return inputs, targets, (), kwargs
        return inputs, targets
