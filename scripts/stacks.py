"""List the project's stacks (every ``Pulumi.<stack>.yaml``) as JSON, for workflow matrices.

    python scripts/stacks.py                     # ["dev", "prod"]
    python scripts/stacks.py --production true   # stacks whose `production` is on
    python scripts/stacks.py --production false  # the others

``production`` is read the way the program reads it (``read_stack_settings``), so a value
written by ``pulumi config set`` ("true") counts. Exit 2 on an invalid stack file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hardened_k8s.config import ConfigError
from hardened_k8s.mock_engine import stack_names
from hardened_k8s.stack_config import read_stack_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project-dir", type=Path, default=Path("."), help="Pulumi project (default .)")
    parser.add_argument("--production", choices=("true", "false", "any"), default="any")
    args = parser.parse_args(argv)
    stacks = stack_names(args.project_dir)
    if args.production != "any":
        wanted = args.production == "true"
        try:
            stacks = [s for s in stacks if read_stack_settings(args.project_dir, s).production is wanted]
        except ConfigError as exc:
            print(f"error: invalid stack file:\n{exc}", file=sys.stderr)
            return 2
    print(json.dumps(stacks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
