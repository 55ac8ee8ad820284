"""``common.data.data_root``: what ``--demo_data false --dataset_dir /data/...`` typed on the command line means
(fire passes the word ``false`` as the string ``"false"``, which Python reads as true)."""

import os

import pytest

from common.bundle.values import flag, optional
from common.data import DataError, data_root


@pytest.mark.parametrize("word", [False, "false", "False", "FALSE", "no", "off", "0", 0])
def test_demo_data_false_in_any_spelling_reads_the_users_folder_and_writes_nothing(word, tmp_path):
    (tmp_path / "scan.nii.gz").write_bytes(b"a user's scan")
    assert data_root(word, str(tmp_path), "oasis", subjects=2, size=[16, 16, 16]) == str(tmp_path)
    assert os.listdir(tmp_path) == ["scan.nii.gz"]


def test_demo_data_true_writes_the_demo_set_and_a_missing_user_folder_is_named_by_its_reader(tmp_path):
    from common.data import oasis_subjects

    out = str(tmp_path / "demo")
    assert data_root("true", out, "oasis", subjects=2, size="null") == out
    assert os.path.isfile(os.path.join(out, ".regzoo-demo.json"))
    absent = data_root("false", str(tmp_path / "absent"), "oasis")
    assert not os.path.exists(absent)
    with pytest.raises(DataError, match="absent"):
        oasis_subjects(absent)


def test_command_line_words_mean_what_they_say_or_name_the_key():
    assert flag("true", "k") is True and flag("No", "k") is False and flag(True, "k") is True
    assert optional("null") is None and optional("None") is None and optional([1.5, 1.5]) == [1.5, 1.5]
    with pytest.raises(ValueError, match="overwrite: expected true or false, got 'maybe'"):
        flag("maybe", "overwrite")
