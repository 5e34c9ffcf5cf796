"""Deploys infra/spoke.yaml into one [[account]] of the fleet config: the function roles
in the first region, the event forwarding to the hub's fleet bus in every region.

Usage: python infra/deploy-spoke.py <config.toml> <account name> <hub stack> <prefix>
           <spoke-params file> [<regions>] [<profile>]

The hub's account comes from the caller's own credentials (the hub's: the default
profile); the spoke's from <profile> (an AWS CLI profile of the spoke account, required
and checked against the account's role_arn), given to `sam deploy`. The account's external id, when the config names one (`ssm:`), is read
from the hub's SSM and passed as the NoEcho parameter `ExternalId`. Regions: the
space-separated <regions>, else every region the config has clusters or networks of the
account in. The roles (IAM is global) are always made by the stack in the hub's region,
deployed there too if it is not among them: adding or removing a region never moves them.

<account name> `hub`: the hub's own account, in its regions other than the hub's (where
the hub stack's own rules forward), for the event forwarding only (no roles).
"""
import subprocess
import sys
import tomllib

import boto3


def main() -> None:
    config_path, account, stack, prefix, params_path = sys.argv[1:6]
    regions = sys.argv[6].split() if len(sys.argv) > 6 and sys.argv[6].strip() else []
    profile = sys.argv[7] if len(sys.argv) > 7 and sys.argv[7].strip() else None
    with open(config_path, "rb") as f:
        config = tomllib.load(f)
    with open(params_path, encoding="utf-8") as f:
        params = f.read().split()
    hub_region = config["fleet"]["region"]
    if not regions:
        listed = next(p for p in params if p.startswith("Regions="))
        regions = listed.split("=", 1)[1].split(",")
    hub = boto3.session.Session(region_name=hub_region)
    hub_account = hub.client("sts").get_caller_identity()["Account"]
    forwarding_only = account == "hub"
    entry = {} if forwarding_only else next(
        a for a in config.get("account", []) if a["name"] == account
    )
    overrides = [
        f"HubAccountId={hub_account}",
        f"FleetName={stack}",
        f"ClusterNamePrefix={prefix}",
        *params,
    ]
    if not forwarding_only:
        # The stack goes where the profile's credentials are: never the hub's by default.
        if not profile:
            sys.exit(f"account `{account}`: ACCOUNT_PROFILE=<an AWS CLI profile of that account> is required")
        spoke_account = boto3.session.Session(profile_name=profile).client(
            "sts", region_name=hub_region
        ).get_caller_identity()["Account"]
        wanted = entry["role_arn"].split(":")[4]
        if spoke_account != wanted:
            sys.exit(
                f"ACCOUNT_PROFILE={profile} is account {spoke_account}; account `{account}`'s role_arn is in {wanted}"
            )
    external = entry.get("external_id")
    if external:
        if not external.startswith("ssm:"):
            sys.exit(f"account `{account}`: external_id must be an ssm: reference")
        value = hub.client("ssm").get_parameter(Name=external[4:], WithDecryption=True)
        overrides.append(f"ExternalId={value['Parameter']['Value']}")
    if forwarding_only:
        # The hub stack forwards its own region's events.
        regions = [r for r in regions if r != hub_region]
    else:
        # The hub's region first, and it alone holds the roles.
        regions = [hub_region] + [r for r in regions if r != hub_region]
    for i, region in enumerate(regions):
        with_roles = i == 0 and not forwarding_only
        command = [
            "sam",
            "deploy",
            "--template-file", "infra/spoke.yaml",
            "--stack-name", f"{stack}-spoke",
            "--region", region,
            "--capabilities", "CAPABILITY_NAMED_IAM",
            "--no-fail-on-empty-changeset",
            "--parameter-overrides",
            f"IncludeRoles={'true' if with_roles else 'false'}",
            *overrides,
        ]
        if profile:
            command += ["--profile", profile]
        print(f"spoke `{account}` in {region}: roles {'yes' if with_roles else 'no'}", flush=True)
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
