"""Fine-tuning the served bundle on the server's own studies, as a MONAI Label train task.

Registration is unsupervised, so the studies need no labels: the bundle's ``train.json`` runs from the weights
served now on pairs drawn from the datastore's images (the atlas to every image, every image to a random other
one), each put through the real-scan stage exactly as at inference (``common.realscan.finetune``). The best
weights by image similarity replace the served ones only when they score better than the served weights, in
``<app>/model/<bundle>_finetuned.pt``; the infer task loads them before its next request. Follows MONAI Label's
``TrainTask`` interface (``description``, ``info()``, ``config()``, ``stats()``, ``__call__(request, datastore)``)
without importing ``monailabel``.
"""

from __future__ import annotations

import json
import os
import time

from ..register import _train_parser
from .infer import AtlasLabelPropagation

__all__ = ["FineTuneRegistration"]


class FineTuneRegistration:
    """Fine-tune ``task``'s bundle on a datastore's images; work files and statistics under ``model_dir``.

    Request keys (MONAI Label's ``POST /train/finetune`` body): ``max_epochs`` (default 1), ``max_pairs``
    (default 64), ``learning_rate`` (default: the bundle's), ``seed`` (default 0).
    """

    def __init__(self, task: AtlasLabelPropagation, model_dir: str) -> None:
        if not task.weights:
            raise ValueError("the infer task needs a 'weights' file for the fine-tuned weights")
        self.task, self.model_dir = task, model_dir
        self.description = f"Fine-tune {task.bundle} on the datastore's studies (unsupervised, no labels needed)"
        self._stats = os.path.join(model_dir, f"{task.bundle}_finetune.json")

    def info(self) -> dict:
        return {"description": self.description, "config": self.config()}

    def config(self) -> dict:
        return {"max_epochs": 1, "max_pairs": 64, "seed": 0}

    def stats(self) -> dict:
        """The last fine-tuning's figures (``{}`` before the first)."""
        if not os.path.isfile(self._stats):
            return {}
        with open(self._stats, encoding="utf-8") as f:
            return json.load(f)

    def __call__(self, request: dict, datastore) -> dict:
        from common.atomic import atomic_open
        from common.realscan.finetune import finetune, finetune_pairs, prepare_pairs

        images = [datastore.get_image_uri(image) for image in datastore.list_images()]
        pairs = finetune_pairs(
            images, self.task.atlas_image, int(request.get("max_pairs", 64)), int(request.get("seed", 0))
        )
        stage = self.task._parser.get_parsed_content("real_scan")
        items = prepare_pairs(stage, pairs, self.task.device)
        result = finetune(
            _train_parser(self.task.bundle, self.task.configs),
            items,
            checkpoint=self.task.served_weights(),
            model_path=self.task.weights,
            work_dir=os.path.join(self.model_dir, f"{self.task.bundle}_finetune"),
            max_epochs=int(request.get("max_epochs", 1)),
            device=self.task.device,
            learning_rate=None if request.get("learning_rate") is None else float(request["learning_rate"]),
        )
        result = {"images": len(images), **result, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.makedirs(self.model_dir, exist_ok=True)
        with atomic_open(self._stats, "w") as f:
            json.dump(result, f, indent=1)
        self.task.reload()
        return result
