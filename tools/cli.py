"""The ``regzoo`` command: ``regzoo <subcommand> --help`` documents each one."""

from __future__ import annotations

import functools
import inspect
import signal
import sys

import fire

from common.bundle.values import flag, optional
from common.data.files import DataError
from common.data.phantoms import ensure_demo_data

from . import benchmark, benchmark_accuracy, benchmark_affine
from .package import fetch, package
from .register import register


def make_demo_data(
    kind: str = "acdc", out: str = "data/demo", subjects: int = 10, seed: int = 0, size=None, overwrite: bool = False
) -> None:
    """Write deterministic phantoms in a real data set's layout.

    Args:
        kind: ``acdc`` (4D cardiac, ACDC layout), ``oasis`` (brain, Learn2Reg OASIS layout), ``multimodal``
            (the brain phantoms with a T2-like rendering and a datalist JSON of T1w/T2w pairs) or ``mni``
            (real anatomy: subjects of the MNI ICBM152 2009 template inside the nilearn wheel, OASIS layout;
            ``pip install nilearn``).
        out: output folder; refused when it holds anything but a regzoo demo set.
        subjects: number of (training) subjects; ACDC adds ``max(2, subjects // 3)`` testing subjects.
        seed: the same seed writes identical files.
        size: brain volume size, e.g. ``160,192,224`` (default 80,96,112: OASIS's field of view at 2 mm).
        overwrite: replace a demo set made with other parameters.
    """
    size = tuple(int(n) for n in (size.split(",") if isinstance(size, str) else size)) if size else None
    ensure_demo_data(out, kind, subjects, seed, size, overwrite=overwrite)
    print(f"{kind} demo data in {out}")


def monailabel_app(out: str = "regzoo-monailabel-app") -> None:
    """Write the folder MONAI Label serves (``--app``; MONAI Label writes its logs and models there) and print the
    command that starts the server.

    Args:
        out: the app folder to write (a ``main.py`` importing ``regzoo.monailabel_app.main.RegZooApp``).
    """
    from .monailabel_app.folder import write_app_folder

    write_app_folder(out)
    print(
        f"monailabel start_server --app {out} --studies <your images> --conf bundle transmorph_tvf "
        "--conf checkpoint bundles/transmorph_tvf/models/model.pt [--conf configs quick.json]"
    )


def _stop(signum, frame) -> None:
    """SIGTERM as ``SystemExit``: the atomic writers remove their temporaries on the way out."""
    raise SystemExit(128 + signum)


def typed(command):
    """``command`` with the values fire passes read as typed: a switch (a ``bool`` default) through
    ``common.bundle.values.flag`` (fire passes ``--overwrite false`` as the string "false", which is true), an
    optional value (a ``None`` default) through ``optional`` (``--checkpoint null`` means none). Fire still reads
    the original signature and docstring (``functools.wraps``)."""
    signature = inspect.signature(command)
    parameters = signature.parameters
    switches = [n for n, p in parameters.items() if isinstance(p.default, bool)]
    optionals = [n for n, p in parameters.items() if p.default is None and p.kind is not p.VAR_KEYWORD]

    @functools.wraps(command)
    def run(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        for name in switches:
            if name in bound.arguments:
                bound.arguments[name] = flag(bound.arguments[name], f"--{name}")
        for name in optionals:
            if name in bound.arguments:
                bound.arguments[name] = optional(bound.arguments[name])
        return command(*bound.args, **bound.kwargs)

    return run


def _typed_commands(commands: dict) -> dict:
    return {k: _typed_commands(v) if isinstance(v, dict) else typed(v) for k, v in commands.items()}


#: ``regzoo <name> [<name>]`` -> the function it runs (fire turns the function's arguments into flags)
COMMANDS = _typed_commands(
    {
        "benchmark": {
            "accuracy": benchmark_accuracy.accuracy,
            "affine": benchmark_affine.affine,
            "diffusemorph": benchmark.diffusemorph,
            "diffusereg": benchmark.diffusereg,
            "nmi": benchmark.nmi,
            "registration": benchmark.registration,
            "transmorph": benchmark.transmorph,
        },
        "fetch": fetch,
        "make-demo-data": make_demo_data,
        "monailabel-app": monailabel_app,
        "package": package,
        "register": register,
    }
)


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    try:
        fire.Fire(COMMANDS, name="regzoo")
    except (DataError, OSError, ValueError) as err:
        sys.stderr.write(f"regzoo: error: {err}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
