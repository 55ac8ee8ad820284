import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from common.data import RandAxisSwapd, SelectSliced, acdc_pairs, augmentation, pair_transforms


def test_augmentation_applies_the_same_flip_and_swap_to_images_and_labels():
    # an asymmetric pattern: image value = 100 i + 10 j + k, label = the same numbers; any mismatch in the
    # flip/swap between keys breaks the equality, and every one of the 8 in-plane outcomes must appear
    i, j, k = np.meshgrid(np.arange(6), np.arange(6), np.arange(3), indexing="ij")
    pattern = torch.from_numpy((100 * i + 10 * j + k).astype(np.float32))[None]
    aug = augmentation()
    aug.set_random_state(0)
    seen = set()
    for _ in range(80):
        d = aug(
            {
                "moving": pattern.clone(),
                "fixed": pattern.clone() + 1000,
                "moving_label": pattern.clone(),
                "fixed_label": pattern.clone() + 1000,
            }
        )
        assert torch.equal(d["moving"], d["moving_label"])
        assert torch.equal(d["fixed"], d["fixed_label"])
        assert torch.equal(d["fixed"] - 1000, d["moving"])
        assert torch.equal(d["moving"][..., 1] - d["moving"][..., 0], torch.ones(1, 6, 6))  # k axis untouched
        corner = d["moving"][0, 0, 0, 0].item(), d["moving"][0, 1, 0, 0].item()
        seen.add(corner)
    assert len(seen) == 8  # 4 flips x 2 (swap or not): the dihedral group of the square


def test_axis_swap_updates_affine():
    img = MetaTensor(torch.rand(1, 4, 4, 2), affine=torch.diag(torch.tensor([1.0, 2.0, 3.0, 1.0])))
    out = RandAxisSwapd(["img"], prob=1.0)({"img": img})["img"]
    assert torch.equal(out[0], img[0].transpose(0, 1))
    assert out.affine[1, 0] == 2.0 and out.affine[0, 1] == 1.0 and img.affine[0, 0] == 1.0


def test_select_mid_ventricular_slice(acdc_demo):
    pair = acdc_pairs(acdc_demo, "testing", "acdc")[0]
    volume = pair_transforms(pixdim=(1.5, 1.5, 3.15), spatial_size=(128, 128, 32))(pair)
    lv_slices = (volume["fixed_label"][0] == 3).any(0).any(0).nonzero().flatten()
    expected = int((lv_slices.min() + lv_slices.max()) // 2)
    two_d = pair_transforms(
        pixdim=(1.5, 1.5, 3.15), spatial_size=(128, 128, 32), slice_2d={"index": "label", "label_value": 3}
    )(pair)
    for key in ("moving", "fixed", "moving_label", "fixed_label"):
        assert two_d[key].shape == (1, 128, 128)
        assert torch.equal(two_d[key], volume[key][..., expected])


def test_select_slice_by_index_and_errors():
    d = {"moving": torch.arange(24.0).view(1, 2, 3, 4)}
    assert torch.equal(SelectSliced(["moving"], index=1)(d)["moving"], d["moving"][..., 1])
    assert torch.equal(SelectSliced(["moving"], index="middle")(d)["moving"], d["moving"][..., 2])
    with pytest.raises(ValueError, match="outside"):
        SelectSliced(["moving"], index=7)(d)
    with pytest.raises(ValueError, match="index"):
        SelectSliced(["moving"], index="apex")
