"""The ``regzoo`` command: ``regzoo <subcommand> --help`` documents each one."""

from __future__ import annotations

import fire

from . import benchmark


def main() -> None:
    fire.Fire({"benchmark": {"nmi": benchmark.nmi}}, name="regzoo")


if __name__ == "__main__":
    main()
