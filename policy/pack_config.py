"""Write the policy pack config for one stack from its stack file.

The stack file stays the one place where exemptions are declared (``<project>:policyExemptions``)
and where a stack is marked production (``<project>:production``). Both are read exactly as
the program and the offline render read them (``hardened_k8s.stack_config.read_stack_settings``:
the values the engine hands over, checked by the ``StackConfig`` model's fields), so
``production: "true"``, as ``pulumi config set`` writes it, means production here too::

    python policy/pack_config.py Pulumi.prod.yaml > policy-config.prod.json
    pulumi preview --stack prod --policy-pack policy --policy-pack-config policy-config.prod.json

Exit status 2 with ``key.path: problem; fix`` lines when the stack file is invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from crossguard import pack_config

from hardened_k8s.config import ConfigError
from hardened_k8s.stack_config import read_stack_settings


def config_for_stack(project_dir: Path, stack: str) -> dict[str, Any]:
    """The pack config of ``stack`` of the project in ``project_dir``; raises ConfigError."""
    settings = read_stack_settings(project_dir, stack)
    return pack_config(
        settings.policy_exemptions,
        production=settings.production,
        security_profile=settings.security_profile,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stack_file", type=Path, help="Pulumi.<stack>.yaml, beside the project's Pulumi.yaml")
    args = parser.parse_args(argv)
    name = args.stack_file.name
    if not (name.startswith("Pulumi.") and name.endswith(".yaml")) or name == "Pulumi.yaml":
        print(f"error: {name}: is not a stack file; pass Pulumi.<stack>.yaml", file=sys.stderr)
        return 2
    stack = name[len("Pulumi.") : -len(".yaml")]
    try:
        config = config_for_stack(args.stack_file.resolve().parent, stack)
    except ConfigError as exc:
        print(f"error: stack {stack!r} has invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    json.dump(config, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
