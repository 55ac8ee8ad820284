"""Datasets of registration pairs: fixed lists of pairs, and random inter-subject pairs drawn anew each epoch."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monai.data import CacheDataset, Dataset
from monai.transforms import Randomizable, apply_transform

__all__ = ["RandomPairDataset"]


class RandomPairDataset(Randomizable, Dataset):
    """Inter-subject pairs: item ``i`` takes subject ``i`` as fixed and a random other subject as moving.

    Subjects ``{"image", "label"?}`` go through ``subject_transform`` once (cached when ``cache=True``);
    each pair then gets ``{"fixed", "moving", "fixed_label", "moving_label"}`` and the random
    ``pair_transform`` (augmentation, identical for the whole pair). ``pairs_per_epoch`` sets the
    length (default: one pair per subject). Call ``set_random_state(seed)`` for reproducible draws.

    ``bidirectional=True`` doubles the length: item ``2k + 1`` is item ``2k`` with moving and fixed swapped,
    so a loader without shuffling gives the published TransMorph training (x -> y, then y -> x).
    """

    def __init__(
        self,
        subjects: Sequence[dict],
        subject_transform: Callable,
        pair_transform: Callable | None = None,
        pairs_per_epoch: int | None = None,
        cache: bool = True,
        seed: int = 0,
        bidirectional: bool = False,
    ) -> None:
        if len(subjects) < 2:
            raise ValueError(f"random inter-subject pairs need at least 2 subjects, got {len(subjects)}")
        self.subjects = list(subjects)
        self.loaded = (
            CacheDataset(self.subjects, subject_transform, progress=False)
            if cache
            else Dataset(self.subjects, subject_transform)
        )
        self.pair_transform = pair_transform
        self.bidirectional = bool(bidirectional)
        self.length = int(pairs_per_epoch or len(self.subjects)) * (2 if self.bidirectional else 1)
        self._last: tuple[int, int, int] | None = None
        Dataset.__init__(self, data=list(range(self.length)))
        self.set_random_state(seed)

    def randomize(self, data=None) -> None:
        self._other = int(self.R.randint(len(self.subjects) - 1))

    def __len__(self) -> int:
        return self.length

    def _draw(self, index: int) -> tuple[int, int]:
        fixed_index = index % len(self.subjects)
        self.randomize()
        return fixed_index, self._other + (self._other >= fixed_index)  # any subject but the fixed one

    def _transform(self, index: int) -> dict:
        if not self.bidirectional:
            fixed_index, moving_index = self._draw(index)
        elif index % 2 == 0 or self._last is None or self._last[0] != index // 2:
            fixed_index, moving_index = self._draw(index // 2)
            self._last = (index // 2, fixed_index, moving_index)
        else:
            moving_index, fixed_index = self._last[1:]
        fixed, moving = self.loaded[fixed_index], self.loaded[moving_index]
        pair = {
            "fixed": fixed["image"],
            "moving": moving["image"],
            "fixed_subject": self.subjects[fixed_index].get("subject", str(fixed_index)),
            "moving_subject": self.subjects[moving_index].get("subject", str(moving_index)),
        }
        if "label" in fixed and "label" in moving:
            pair["fixed_label"], pair["moving_label"] = fixed["label"], moving["label"]
        return apply_transform(self.pair_transform, pair) if self.pair_transform is not None else pair
