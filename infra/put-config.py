"""Stores the fleet config in SSM for the deployed functions (`make deploy`).

Usage: python infra/put-config.py <config.toml> <parameter name>
A String parameter (the config holds `ssm:` references, never secret values); the
advanced tier when it is over the standard tier's 4 KB.
"""
import sys

import boto3


def main() -> None:
    path, name = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    tier = "Advanced" if len(text.encode()) > 4096 else "Standard"
    boto3.client("ssm").put_parameter(
        Name=name, Value=text, Type="String", Tier=tier, Overwrite=True
    )
    print(f"{path} -> ssm:{name} ({tier})")


if __name__ == "__main__":
    main()
