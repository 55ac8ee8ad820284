"""The engine pieces every bundle's configs name: the training objective, the evaluator's postprocessing, the
per-pair metrics table and the weights loader, each against an analytic case or a numpy computation."""

import csv
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from common.engines import (
    CheckpointError,
    RegistrationLoss,
    RegistrationMetricsTable,
    TimedInferer,
    WarpOutputs,
    load_weights,
    pretrained_network,
)
from common.losses import GradientRegulariser, SoftDiceLoss


def _blob(size=12):
    """A smooth image, zero near the border (so padding never matters for one-voxel shifts)."""
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij")).astype(np.float32)
    image = np.exp(-(((grid - size / 2) ** 2).sum(0)) / 6.0)
    image[:2], image[-2:], image[:, :2], image[:, -2:], image[..., :2], image[..., -2:] = 0, 0, 0, 0, 0, 0
    return torch.from_numpy(image)[None, None]


def _shift(value, size=12):
    ddf = torch.zeros(1, 3, size, size, size)
    ddf[:, 0] = value
    return ddf


def test_registration_loss_terms_against_numpy_and_the_analytic_regulariser():
    fixed = _blob()
    moving = torch.roll(fixed, 1, dims=2)  # fixed(x) = moving(x + 1) along axis 0
    loss = RegistrationLoss(torch.nn.MSELoss(), regulariser=GradientRegulariser("l2", "mean"), reg_weight=0.5)
    targets = {"moving": moving, "fixed": fixed}
    assert float(loss({"ddf": _shift(1.0)}, targets)) == pytest.approx(0.0, abs=1e-10)
    identity = float(loss({"ddf": _shift(0.0)}, targets))
    assert identity == pytest.approx(float(np.mean((moving.numpy() - fixed.numpy()) ** 2)), rel=1e-5)
    # u_0 = a x_0: forward differences a along axis 0 in component 0 only -> mean over 3 components a^2 / 3,
    # averaged over 3 axes: a^2 / 9
    a = 0.3
    linear = torch.zeros(1, 3, 12, 12, 12)
    linear[:, 0] = a * torch.arange(12.0).view(12, 1, 1)
    loss({"ddf": linear}, targets)
    assert loss.terms["reg"] == pytest.approx(0.5 * a * a / 9, rel=1e-5)
    assert loss.terms["loss"] == pytest.approx(loss.terms["image"] + loss.terms["reg"], rel=1e-6)


def test_registration_loss_label_term_only_with_both_labels_and_clear_errors():
    fixed = _blob()
    label = (fixed > 0.5).float()
    loss = RegistrationLoss(torch.nn.MSELoss(), label_loss=SoftDiceLoss(), label_weight=1.0, num_classes=2)
    loss({"ddf": _shift(0.0)}, {"moving": fixed, "fixed": fixed})
    assert "label" not in loss.terms
    loss({"ddf": _shift(0.0)}, {"moving": fixed, "fixed": fixed, "moving_label": label, "fixed_label": label})
    assert loss.terms["label"] == pytest.approx(0.0, abs=1e-4)  # identical labels: soft Dice loss 0
    with pytest.raises(ValueError, match="outputs dict"):
        loss(_shift(0.0), {"moving": fixed, "fixed": fixed})
    with pytest.raises(ValueError, match="reg_on"):
        RegistrationLoss(torch.nn.MSELoss(), reg_on="field")
    with pytest.raises(ValueError, match="num_classes"):
        RegistrationLoss(torch.nn.MSELoss(), label_loss=SoftDiceLoss())


def test_warp_outputs_of_a_one_voxel_shift():
    moving = _blob()
    label = (moving > 0.3).float() + (moving > 0.7).float()
    inferer = TimedInferer()
    inferer.seconds = 0.5
    ddf = _shift(1.0).repeat(2, 1, 1, 1, 1)
    batch = {
        "pred": ddf,
        "label": {
            "moving": moving.repeat(2, 1, 1, 1, 1),
            "fixed": moving.repeat(2, 1, 1, 1, 1),
            "moving_label": label.repeat(2, 1, 1, 1, 1),
            "fixed_label": label.repeat(2, 1, 1, 1, 1),
        },
    }
    out = WarpOutputs(inferer, inverse="negate")(batch)
    expected = np.roll(moving.numpy(), -1, axis=2)  # warped(x) = moving(x + 1)
    np.testing.assert_allclose(out["warped"][:, :, :-1].numpy(), np.repeat(expected, 2, 0)[:, :, :-1], atol=1e-6)
    shifted_label = np.roll(label.numpy(), -1, axis=2)
    np.testing.assert_array_equal(out["warped_label"][0, :, :-1].numpy(), shifted_label[0, :, :-1])
    torch.testing.assert_close(out["jacobian"], torch.ones_like(out["jacobian"]))
    torch.testing.assert_close(out["inverse_error"], torch.zeros(2))  # -u inverts a constant shift exactly
    assert out["seconds"] == pytest.approx(0.25)  # per pair
    with pytest.raises(ValueError, match="invert"):
        WarpOutputs(inverse="network", network=torch.nn.Identity())


def _cube(lo, hi, size=10):
    label = torch.zeros(1, 1, size, size, size)
    label[..., lo:hi, 2:8, 2:8] = 1
    return label


def test_metrics_table_rows_against_hand_computed_dice_and_files(tmp_path):
    fixed, warped, moving = _cube(2, 8), _cube(4, 8), _cube(5, 8)  # 6, 4 and 3 slices of the same 6 x 6 square
    table = RegistrationMetricsTable(str(tmp_path), labels=[1], hd95=False, title="unit")
    output = {
        "pred": torch.zeros(1, 3, 10, 10, 10),
        "warped_label": warped,
        "target_label": fixed,
        "label": {"moving_label": moving},
        "jacobian": torch.ones(1, 1, 10, 10, 10),
        "seconds": 0.1,
    }
    engine = SimpleNamespace(state=SimpleNamespace(output=output, batch={"fixed": fixed, "subject": "s1"}))
    table.collect(engine)
    output["warped_label"] = fixed
    table.collect(engine)
    first, second = table.rows
    assert first["dice_1"] == pytest.approx(2 * 4 / (4 + 6)) and second["dice_1"] == pytest.approx(1.0)
    assert first["dice_initial"] == pytest.approx(2 * 3 / (3 + 6))
    assert first["njd_percent"] == 0.0 and first["sdlogj"] == pytest.approx(0.0, abs=1e-12)
    table.write()
    with open(tmp_path / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and float(rows[0]["dice_mean"]) == pytest.approx(0.8)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dice_mean"]["mean"] == pytest.approx(0.9) and summary["dice_mean"]["std"] == pytest.approx(0.1)
    assert "unit (2 pairs" in (tmp_path / "summary.md").read_text()


def test_metrics_table_without_labels_in_both_maps_gives_nan_not_a_crash(tmp_path):
    empty = torch.zeros(1, 1, 6, 6, 6)
    table = RegistrationMetricsTable(str(tmp_path), hd95=False)
    output = {"pred": torch.zeros(1, 3, 6, 6, 6), "warped_label": empty, "target_label": empty}
    output["label"] = {"moving_label": empty}
    table.collect(SimpleNamespace(state=SimpleNamespace(output=output, batch={"fixed": empty, "subject": "s"})))
    assert math.isnan(table.rows[0]["dice_mean"])


def test_load_weights_accepts_wrapped_state_dicts_and_names_what_does_not_fit(tmp_path):
    torch.manual_seed(0)
    source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    torch.save({"model": source.state_dict()}, tmp_path / "wrapped.pt")
    load_weights(target, str(tmp_path / "wrapped.pt"))
    torch.testing.assert_close(target.weight, source.weight)
    wrapper = SimpleNamespace(module=torch.nn.Linear(3, 2))  # a DistributedDataParallel-like wrapper
    load_weights(wrapper, str(tmp_path / "wrapped.pt"))
    torch.testing.assert_close(wrapper.module.weight, source.weight)
    torch.save(torch.nn.Linear(4, 2).state_dict(), tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other\.pt: does not fit Linear \(shape mismatch"):
        load_weights(target, str(tmp_path / "other.pt"))
    torch.save({"weight": "not a tensor"}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="state dict of tensors"):
        load_weights(target, str(tmp_path / "bad.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_weights(target, str(tmp_path / "junk.pt"))
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_weights(target, str(tmp_path / "missing.pt"))


def test_pretrained_network_is_loaded_and_in_eval_mode(tmp_path):
    source = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.5))
    torch.save(source.state_dict(), tmp_path / "seq.pt")
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.5))
    network = pretrained_network(fresh, str(tmp_path / "seq.pt"))
    assert not network.training
    x = torch.ones(4, 3)
    torch.testing.assert_close(network(x), source.eval()(x))


def _training(run):
    """A one-weight model trained by an ignite engine, with the state saver and the resume of the bundles."""
    from ignite.engine import Engine

    from common.engines import ResumeTraining, TrainingStateSaver

    network = torch.nn.Linear(1, 1, bias=False)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)

    def step(engine, x):
        optimizer.zero_grad()
        loss = (network(x) - 1.0).pow(2).mean()
        loss.backward()
        optimizer.step()

    engine = Engine(step)
    objects = {"network": network, "optimizer": optimizer, "trainer": engine}
    return (
        engine,
        network,
        objects,
        lambda path: (ResumeTraining(path, objects, run), TrainingStateSaver(path, objects, run)),
    )


def test_training_resumes_only_into_the_same_run(tmp_path):
    path = str(tmp_path / "models" / "training_state.pt")
    demo = {"data": str(tmp_path / "demo"), "image_size": [64, 64, 16], "pixdim": None}
    engine, network, _, pieces = _training(demo)
    resume, saver = pieces(path)
    resume.attach(engine)  # no state yet: nothing to resume
    saver.attach(engine)
    engine.run([torch.ones(1, 1)] * 3, max_epochs=2)
    weight = network.weight.item()

    again, network2, _, pieces2 = _training(demo)  # the same run, restarted: resumes at epoch 2
    pieces2(path)[0].attach(again)
    again.run([torch.ones(1, 1)] * 3, max_epochs=2)
    assert again.state.epoch == 2 and network2.weight.item() == pytest.approx(weight)

    longer, network5, _, pieces5 = _training(demo)  # max_epochs raised: one more epoch from the saved state
    pieces5(path)[0].attach(longer)
    longer.run([torch.ones(1, 1)] * 3, max_epochs=3)
    assert longer.state.epoch == 3 and network5.weight.item() != pytest.approx(weight)

    for changed, said in [
        ({"data": "/data/ACDC"}, "data '"),
        ({"image_size": [128, 128, 32]}, "image_size [64, 64, 16], now [128"),
    ]:
        other, _, _, pieces3 = _training({**demo, **changed})
        with pytest.raises(ValueError, match="training state of another run") as err:
            pieces3(path)[0].attach(other)
        assert path in str(err.value) and said in str(err.value) and "--ckpt_dir" in str(err.value)

    state = torch.load(path, weights_only=True)
    del state["regzoo_run"]
    torch.save(state, path)  # a state written before run records: resumed
    old, network4, _, pieces4 = _training({**demo, "data": "/elsewhere"})
    pieces4(path)[0].attach(old)
    old.run([torch.ones(1, 1)] * 3, max_epochs=2)
    assert old.state.epoch == 2 and network4.weight.item() == pytest.approx(weight)
