"""Expands the SAM template into the plain CloudFormation it deploys as (AWS SAM's own
translator, offline), so that cfn-lint and checkov see the real IAM policies, function
URLs and schedules: checkov does not expand SAM policy statements by itself.

Usage: python infra/sam-transform.py infra/template.yaml > target/template.cfn.json
"""
import json
import os
import sys
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies(ManagedPolicyLoader):
    """The template names no managed policy: nothing to look up (and no AWS to ask)."""

    def __init__(self):
        pass

    def load(self):
        return {}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        template = yaml_parse(f.read())
    # What `sam package` does after uploading the code: local paths become S3 URIs.
    function = template.get("Globals", {}).get("Function", {})
    if isinstance(function.get("CodeUri"), str) and not function["CodeUri"].startswith("s3://"):
        function["CodeUri"] = "s3://packaged-code/bootstrap.zip"
    # The translator asks for a region only to build ARNs; no AWS call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    try:
        out = transform(template, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        sys.exit("the SAM template does not translate: " + "; ".join(str(c) for c in e.causes))
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
