"""MONAI Label entry point, served through the folder ``regzoo monailabel-app --out APP`` writes (MONAI Label
writes its logs and models into the app folder, so that folder is the user's):
``monailabel start_server --app APP --studies DIR --conf bundle NAME [--conf checkpoint FILE]
[--conf configs quick.json] [--conf atlas_image F --conf atlas_label L] [--conf atlas_labels labels.json]
[--conf affine none|rigid|affine] [--conf refine 20]``; the user's image is registered through the bundle's
real-scan stage. ``POST /train/finetune`` fine-tunes the bundle on the datastore's studies (no labels needed) and
the new weights (``<app>/model/<bundle>_finetuned.pt``) are served from the next request.

Needs ``monailabel`` (README.md, "MONAI Label"); the infer task itself is
:class:`regzoo.monailabel_app.infer.AtlasLabelPropagation`, the train task
:class:`regzoo.monailabel_app.train.FineTuneRegistration`.
"""

from __future__ import annotations

import os

from monailabel.interfaces.app import MONAILabelApp

from regzoo.monailabel_app.infer import AtlasLabelPropagation
from regzoo.monailabel_app.train import FineTuneRegistration


class RegZooApp(MONAILabelApp):
    def __init__(self, app_dir, studies, conf):
        bundle = conf.get("bundle", "transmorph_tvf")
        model_dir = os.path.join(app_dir, "model")
        self.task = AtlasLabelPropagation(
            bundle=bundle,
            checkpoint=conf.get("checkpoint"),
            configs=conf.get("configs"),
            atlas_image=conf.get("atlas_image"),
            atlas_label=conf.get("atlas_label"),
            labels=conf.get("atlas_labels"),
            device=conf.get("device", "cpu"),
            affine=conf.get("affine"),
            refine=int(conf.get("refine", 0)),
            weights=os.path.join(model_dir, f"{bundle}_finetuned.pt"),
        )
        self.finetune = FineTuneRegistration(self.task, model_dir)
        super().__init__(app_dir=app_dir, studies=studies, conf=conf, name="regzoo", description=self.task.description)

    def init_infers(self):
        return {"atlas_propagation": self.task}

    def init_trainers(self):
        return {"finetune": self.finetune}
