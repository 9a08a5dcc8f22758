"""Write the policy pack config for one stack from its stack file.

The stack file stays the one place where exemptions are declared (``<project>:policyExemptions``)
and where a stack is marked production (``<project>:production``)::

    python policy/pack_config.py Pulumi.prod.yaml > policy-config.prod.json
    pulumi preview --stack prod --policy-pack policy --policy-pack-config policy-config.prod.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from crossguard import pack_config

from hardened_k8s.policy import EXEMPTION_LIST


def config_for_stack_file(stack_file: Path, project: str) -> dict[str, Any]:
    """The pack config for the stack file of ``project``; raises on invalid exemptions."""
    values = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    production = values.get(f"{project}:production") is True
    exemptions = EXEMPTION_LIST.validate_python(values.get(f"{project}:policyExemptions") or [])
    return pack_config(exemptions, production=production)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stack_file", type=Path, help="Pulumi.<stack>.yaml")
    parser.add_argument(
        "--project-file",
        type=Path,
        default=None,
        help="Pulumi.yaml naming the project (default: beside the stack file)",
    )
    args = parser.parse_args(argv)
    project_file = args.project_file or args.stack_file.with_name("Pulumi.yaml")
    project = yaml.safe_load(project_file.read_text())["name"]
    json.dump(config_for_stack_file(args.stack_file, project), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
