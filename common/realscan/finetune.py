"""Fine-tune a bundle's network on a user's own unlabelled pairs (e.g. a MONAI Label server's studies), through the
real-scan stage and with the bundle's own training objective.

Each pair is put on the network grid of its fixed image and the moving image pre-aligned exactly as at inference
(:meth:`RealScanStage.prepare`), so the network learns on what it will see. Training is the bundle's ``train.json``
(network, ``loss``, optimizer, trainer, best-model saver) with only the data and the key metric replaced: there
are no labels, so the key metric is the image similarity of the warped moving image to the fixed one under the
bundle's own image loss (:class:`common.metrics.ImageSimilarityMetric`, higher is better), over the same pairs.
The served weights are scored before training, so the new weights are kept only when they score better.
"""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import torch

from ..atomic import atomic_path
from .register import load_volume
from .stage import RealScanStage

__all__ = ["finetune", "finetune_pairs", "prepare_pairs"]

KEY_METRIC = "val_similarity"


def finetune_pairs(images: list[str], atlas: str | None = None, max_pairs: int = 64, seed: int = 0) -> list[dict]:
    """Training pairs ``{"fixed", "moving"}`` (file paths) from unlabelled ``images``: the atlas to every image
    (the pairs an atlas-propagation server registers), and every image to a random other one; at most
    ``max_pairs`` of them, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    pairs = [{"fixed": image, "moving": atlas} for image in images] if atlas else []
    if len(images) > 1:
        for i, image in enumerate(images):
            other = int(rng.integers(len(images) - 1))
            pairs.append({"fixed": image, "moving": images[other + (other >= i)]})
    if not pairs:
        raise ValueError(f"fine-tuning needs an atlas or at least 2 images, got {len(images)} image(s) and no atlas")
    if len(pairs) > max_pairs:
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), max_pairs, replace=False))]
    return pairs


def prepare_pairs(stage: RealScanStage, pairs: list[dict], device: str | torch.device = "cpu") -> list[dict]:
    """``{"moving", "fixed"}`` tensors ``(1, *network size)`` (CPU) of each pair of file paths: on the network grid
    of its fixed image, the moving image pre-aligned by the stage's affine model."""
    items = []
    for pair in pairs:
        fixed, fixed_image = load_volume(pair["fixed"], "the fixed image")
        moving, moving_image = load_volume(pair["moving"], "the moving image")
        inputs = stage.prepare(fixed, fixed_image.affine, moving, moving_image.affine, device).inputs[0].cpu()
        items.append({"moving": inputs[:1], "fixed": inputs[1:]})
    return items


def finetune(
    parser,
    items: list[dict],
    checkpoint: str,
    model_path: str,
    work_dir: str,
    max_epochs: int = 1,
    device: str | torch.device = "cpu",
    learning_rate: float | None = None,
) -> dict:
    """Fine-tune the network of ``parser`` (the bundle's ``train.json`` with its overlays, a MONAI
    ``ConfigParser``) from ``checkpoint`` on ``items`` (:func:`prepare_pairs`) for ``max_epochs`` epochs, scoring
    every epoch; writes the best weights to ``model_path`` (atomically) only when they score better than the
    starting ones. ``work_dir`` (emptied first) holds the run's logs and checkpoints.

    Returns ``{"pairs", "epochs", "val_similarity_before", "val_similarity_best", "improved", "seconds"}``.
    """
    from monai.data import Dataset

    from ..engines import load_weights

    started = time.perf_counter()
    if len(items) < 1:
        raise ValueError("fine-tuning needs at least one pair")
    shutil.rmtree(work_dir, ignore_errors=True)
    os.makedirs(work_dir)
    overrides = {
        "device": f"$torch.device('{device}')",
        "max_epochs": int(max_epochs),
        "val_interval": 1,
        # the run's best model and state go to work_dir; ckpt_dir stays the bundle's (DiffuseReg's bootstrap is there)
        "validate#best_model#save_dir": os.path.join(work_dir, "models"),
        "output_dir": os.path.join(work_dir, "runs"),
        "resume_path": os.path.join(work_dir, "training_state.pt"),
        "pairs_per_epoch": None,
    }
    if learning_rate is not None:
        overrides["learning_rate"] = float(learning_rate)
    parser.update(overrides)
    parser["train#dataset"] = Dataset(items)
    parser["validate#dataset"] = Dataset(items)
    parser["validate#key_metric"] = {
        KEY_METRIC: {
            "_target_": "IgniteMetricHandler",
            "metric_fn": {"_target_": "common.metrics.ImageSimilarityMetric", "similarity": "@loss#image_loss"},
            "output_transform": "$lambda x: (x['warped'], x['label']['fixed'])",
        }
    }
    best_dir = parser.get_parsed_content("validate#best_model#save_dir")
    os.makedirs(best_dir)
    load_weights(parser.get_parsed_content("network"), checkpoint, device)
    evaluator = parser.get_parsed_content("validate#evaluator")
    evaluator.run()  # the served weights' score; the best-model saver starts from it
    before = float(evaluator.state.metrics[KEY_METRIC])
    trainer = parser.get_parsed_content("train#trainer")
    trainer.run()
    best = float(evaluator.state.best_metric)
    improved = best > before
    if improved:
        with atomic_path(model_path) as tmp:
            shutil.copyfile(os.path.join(best_dir, "model.pt"), tmp)
    return {
        "pairs": len(items),
        "epochs": int(max_epochs),
        "val_similarity_before": before,
        "val_similarity_best": best,
        "improved": improved,
        "seconds": time.perf_counter() - started,
    }
