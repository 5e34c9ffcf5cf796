"""Stores the fleet config in SSM for the deployed functions (`make deploy`).

Usage: python infra/put-config.py <config.toml> <parameter name>
Checked first with the functions' own validation (`fleet-config check`: unknown keys,
types, values, every secret an `ssm:` reference); nothing is stored when it fails. A
String parameter (the config holds `ssm:` references, never secret values) in the
config's own `fleet.region`, where the stack goes; the advanced tier when it is over the
standard tier's 4 KB. AWS errors (no credentials, access denied) end it with one line.
"""
import subprocess
import sys
import tomllib

import boto3
import botocore.exceptions


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
    region = tomllib.loads(text)["fleet"]["region"]
    tier = "Advanced" if len(text.encode()) > 4096 else "Standard"
    try:
        boto3.client("ssm", region_name=region).put_parameter(
            Name=name, Value=text, Type="String", Tier=tier, Overwrite=True
        )
    except botocore.exceptions.BotoCoreError as e:
        sys.exit(f"not stored: {e} (README, Deploy: AWS credentials for {region})")
    except botocore.exceptions.ClientError as e:
        sys.exit(f"not stored: SSM PutParameter {name} in {region}: {e}")
    print(f"{path} -> ssm:{name} in {region} ({tier})")


if __name__ == "__main__":
    main()
