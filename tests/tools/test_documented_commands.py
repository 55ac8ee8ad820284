"""Every command the docs show (README.md, each bundle's docs/README.md, the MONAI Label app's README) is read
from its ``bash`` block and checked the way its program reads it, without running its training:

- ``python -m monai.bundle run`` (and through ``torchrun``): the config files are stacked and the command-line
  values parsed exactly as MONAI's ``run`` does (fire's value parser, ``ConfigParser.read_config``, ``update``);
  every override must name a key the stacked configs already have (MONAI silently adds an unknown key, so a
  renamed parameter would be ignored), and every ``@`` reference and ``%`` macro reachable from the run's
  ``initialize`` and ``run`` sections (or ``--run_id``) must resolve.
- ``regzoo``: the subcommand exists and every flag is an argument of the function it runs
  (``regzoo.cli.COMMANDS``); ``[--flag value]`` is the docs' notation for an optional flag.
- ``monailabel start_server``: every ``--conf`` key is one the app reads.

The bundle commands also run verbatim, with a tiny budget, in ``test_documented_commands_run.py``; the
``regzoo`` commands run in the tool tests. This check is the cheap one: it keeps a renamed key or file from
leaving a documented command silently broken.
"""

from __future__ import annotations

import glob
import inspect
import os
import re
import shlex

import pytest
from fire.parser import DefaultParseValue
from monai.bundle import ConfigParser
from monai.bundle.reference_resolver import ReferenceResolver

from regzoo.cli import COMMANDS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = ["README.md", "tools/monailabel_app/README.md", *sorted(glob.glob("bundles/*/docs/README.md", root_dir=REPO))]


def _blocks(path: str):
    """The lines of each ``bash`` block of ``path``, continuation lines joined, comments dropped."""
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        text = f.read()
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        yield [line for line in (ln.strip() for ln in joined.splitlines()) if line and not line.startswith("#")]


def _commands() -> list[tuple[str, list[str]]]:
    """``(where, argv)`` of every command: ``&&`` chains split, shell variables set in the block substituted."""
    found = []
    for path in DOCS:
        for lines in _blocks(path):
            variables: dict[str, str] = {}
            for line in lines:
                assignment = re.fullmatch(r"(\w+)='([^']*)'", line)
                if assignment:
                    variables[assignment.group(1)] = assignment.group(2)
                    continue
                for name, value in variables.items():
                    line = line.replace(f"${name}", value)
                argv = shlex.split(line, comments=True)
                part: list[str] = []
                for word in [*argv, "&&"]:
                    if word == "&&":
                        if part:
                            found.append((f"{path}: {' '.join(part)[:90]}", part))
                        part = []
                    else:
                        part.append(word)
    return found


COMMANDS_FOUND = _commands()


def _options(words: list[str], brackets: bool = False) -> tuple[list[tuple[str, str | None]], list[str]]:
    """``(--name, value)`` pairs and the positional words; ``brackets``: drop the ``[``/``]`` of the docs'
    optional flags (``[--refine 20]``)."""
    if brackets:
        words = [re.sub(r"^\[(?=-)|\]+$", "", w) for w in words]
        words = [w for w in words if w]
    options, positional, i = [], [], 0
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            name, _, value = word[2:].partition("=")
            if not value and i + 1 < len(words) and not words[i + 1].startswith("--"):
                value, i = words[i + 1], i + 1
            options.append((name, value or None))
        else:
            positional.append(word)
        i += 1
    return options, positional


def _has(parser: ConfigParser, id: str) -> bool:
    try:
        parser[id]
    except (KeyError, ValueError, IndexError, TypeError):  # MONAI raises ValueError for a missing parent key
        return False
    return True


def _check_monai_run(argv: list[str]) -> None:
    args = argv[argv.index("run") + 1 :]
    options, _ = _options(args)
    values = {name: DefaultParseValue(value) if value is not None else True for name, value in options}
    files = values.pop("config_file")
    files = files if isinstance(files, list) else [files]
    for file in files:
        assert os.path.isfile(os.path.join(REPO, file)), f"config {file} not found"
    run_id = values.pop("run_id", "run")
    parser = ConfigParser()
    try:
        parser.read_config([os.path.join(REPO, f) for f in files])
    except (KeyError, ValueError) as err:  # an overlay key whose section the stack lacks
        raise AssertionError(f"{files} do not stack: {err}") from None
    unknown = [key for key in values if not _has(parser, key)]
    assert not unknown, f"overrides {unknown} name no key of {files}: MONAI would add them and ignore them"
    parser.update(values)
    parser.resolve_macro_and_relative_ids()  # every % macro
    todo, seen = [i for i in ("initialize", run_id) if _has(parser, i)], set()
    assert _has(parser, run_id), f"{files} have no '{run_id}' section to run"
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        assert _has(parser, item), f"@{item.replace('::', '#')} is referenced but not defined in {files}"
        todo.extend(ReferenceResolver.find_refs_in_config(parser[item], item))


def _check_regzoo(argv: list[str]) -> None:
    options, positional = _options(argv[1:], brackets=True)
    command = COMMANDS
    for word in positional:
        if not isinstance(command, dict):
            break
        assert word in command, f"regzoo has no subcommand {word!r} (it has {sorted(command)})"
        command = command[word]
    assert callable(command), f"'{' '.join(argv)}' names a group, not a command"
    parameters = inspect.signature(command).parameters
    unknown = [name for name, _ in options if name.replace("-", "_") not in parameters]
    assert not unknown, f"regzoo {' '.join(positional)} has no flags {unknown} (it has {list(parameters)})"


def _check_monailabel(argv: list[str]) -> None:
    with open(os.path.join(REPO, "tools", "monailabel_app", "main.py"), encoding="utf-8") as f:
        known = set(re.findall(r'conf\.get\("(\w+)"', f.read()))
    words = [re.sub(r"^\[(?=-)|\]+$", "", w) for w in argv]
    keys = [words[i + 1] for i, w in enumerate(words) if w == "--conf"]
    assert keys and not [k for k in keys if k not in known], f"--conf keys {keys}; the app reads {sorted(known)}"


def _kind(argv: list[str]) -> str | None:
    if "monai.bundle" in argv and "run" in argv and argv[0] in ("python", "python3", "torchrun"):
        return "monai"
    if argv[0] == "regzoo":
        return "regzoo"
    if argv[:2] == ["monailabel", "start_server"]:
        return "monailabel"
    return None


CHECKED = [(where, argv) for where, argv in COMMANDS_FOUND if _kind(argv)]


def test_the_docs_show_the_commands_this_test_checks():
    kinds = [_kind(argv) for _, argv in CHECKED]
    assert kinds.count("monai") >= 40 and kinds.count("regzoo") >= 8 and kinds.count("monailabel") >= 1, kinds
    assert {path for path in DOCS} == {where.split(":")[0] for where, _ in CHECKED}  # every docs file has some


@pytest.mark.parametrize("where, argv", CHECKED, ids=[w for w, _ in CHECKED])
def test_documented_command(where, argv):
    {"monai": _check_monai_run, "regzoo": _check_regzoo, "monailabel": _check_monailabel}[_kind(argv)](argv)


def test_the_checks_catch_a_renamed_key_a_missing_reference_and_an_unknown_flag(tmp_path):
    quick = "['bundles/midir/configs/train.json','bundles/midir/configs/quick.json']"
    with pytest.raises(AssertionError, match="name no key"):
        _check_monai_run(["python", "-m", "monai.bundle", "run", "--config_file", quick, "--max_epoch", "1"])
    with pytest.raises(AssertionError, match="not found"):
        _check_monai_run(["python", "-m", "monai.bundle", "run", "--config_file", "bundles/midir/configs/nope.json"])
    with pytest.raises(AssertionError, match="do not stack"):
        _check_monai_run(
            ["python", "-m", "monai.bundle", "run", "--config_file", "bundles/midir/configs/evaluate.json"]
        )
    broken = tmp_path / "broken.json"
    broken.write_text('{"network": {"_target_": "torch.nn.Identity"}, "run": ["$@networks.eval()"]}')
    with pytest.raises(AssertionError, match="@networks is referenced but not defined"):
        _check_monai_run(["python", "-m", "monai.bundle", "run", "--config_file", str(broken)])
    with pytest.raises(AssertionError, match="no flags"):
        _check_regzoo(["regzoo", "register", "--bundle", "midir", "--fixd", "F.nii.gz"])
    with pytest.raises(AssertionError, match="no subcommand"):
        _check_regzoo(["regzoo", "benchmark", "speed"])
    with pytest.raises(AssertionError, match="--conf keys"):
        _check_monailabel(["monailabel", "start_server", "--conf", "bundel", "midir"])
