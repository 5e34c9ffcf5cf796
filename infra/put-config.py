"""Stores the fleet config in SSM for the deployed functions (`make deploy`).

Usage: python infra/put-config.py <config.toml> <parameter name>
Checked first with the functions' own validation (`fleet-config check`: unknown keys,
types, values); nothing is stored when it fails. A String parameter (the config holds
`ssm:` references, never secret values); the advanced tier when it is over the standard
tier's 4 KB.
"""
import subprocess
import sys

import boto3


def check(path: str) -> None:
    """Exits, storing nothing, unless the functions would accept the config."""
    result = subprocess.run(
        ["cargo", "run", "--quiet", "-p", "fleet-shared", "--bin", "fleet-config", "--", "check", path],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"not stored: {result.stderr.strip() or result.stdout.strip()}")


def main() -> None:
    path, name = sys.argv[1], sys.argv[2]
    check(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    tier = "Advanced" if len(text.encode()) > 4096 else "Standard"
    boto3.client("ssm").put_parameter(
        Name=name, Value=text, Type="String", Tier=tier, Overwrite=True
    )
    print(f"{path} -> ssm:{name} ({tier})")


if __name__ == "__main__":
    main()
