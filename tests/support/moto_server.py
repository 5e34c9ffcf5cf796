"""Starts moto server on a loopback port and stops it when its parent goes away.

Prints the port on the first line of stdout, then serves until stdin reaches end of file:
the parent holds the write end of stdin, so when the test process exits (even killed),
the pipe closes and the server stops. No stray servers, no fixed ports.

Usage: python moto_server.py [port]   (port 0, the default, picks a free one)

FLEET_MOTO_ROUTE53_ZONE_IDS="example.com=Z0123456789ABCDEFGHIJ,..." gives the hosted zones
created later under those names the ids the example config names (moto's own custom-id
registry; real Route53 ids are random, so a config names them).

moto has no Cost Explorer forecast (GetCostForecast answers 500 "not implemented"): this
stand-in answers it from the seeded cost-and-usage days (see `get_cost_forecast`). Nor
has it IAM's ListInstanceProfileTags: answered from the tags moto keeps (see
`list_instance_profile_tags`). Nor EKS add-ons, access entries and Pod Identity associations
(see `addons`, `access_entries`, `pod_identity_associations`). And moto lets anyone assume
any role: here STS's own checks (see `assume_role`).
"""
import datetime
import json
import logging
import os
import sys
import threading

from moto.ce.responses import CostExplorerResponse
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult, BaseResponse
from moto.iam.responses import IamResponse
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.route53.models import HostedZoneIdentifier
from moto.server import ThreadedMotoServer
from moto.utilities.id_generator import moto_id_manager
from urllib.parse import parse_qs

from werkzeug.serving import make_server


def register_zone_ids() -> None:
    for pair in filter(None, os.environ.get("FLEET_MOTO_ROUTE53_ZONE_IDS", "").split(",")):
        name, _, zone_id = pair.partition("=")
        name = name.strip().rstrip(".") + "."
        moto_id_manager.set_custom_id(
            HostedZoneIdentifier(DEFAULT_ACCOUNT_ID, name, None), zone_id.strip()
        )


def get_cost_forecast(self) -> str:
    """GetCostForecast, as a straight line: the mean daily cost of the last 7 seeded days
    before the forecast starts, times the days forecast, with +-10 % as the 80 % interval.

    Cost Explorer's own model is not public; this is a stand-in with Cost Explorer's
    request and response shapes, so that a local run shows a forecast. The filter is not
    applied (the seeded days hold only fleet clusters' costs). With no seeded day before
    the start it answers as Cost Explorer does for a new account: DataUnavailableException.
    """
    params = json.loads(self.body)
    period = params["TimePeriod"]
    start = datetime.date.fromisoformat(period["Start"])
    end = datetime.date.fromisoformat(period["End"])
    backend = self.ce_backend
    daily = {}
    for result in list(backend.cost_usage_results.values()) + backend.cost_usage_results_queue:
        for day in result.get("ResultsByTime", []):
            date = datetime.date.fromisoformat(day["TimePeriod"]["Start"])
            amounts = [
                float(metric.get("Amount", 0))
                for group in day.get("Groups", [])
                for metric in group.get("Metrics", {}).values()
            ] + [float(metric.get("Amount", 0)) for metric in day.get("Total", {}).values()]
            daily[date] = sum(amounts)
    before = sorted(d for d in daily if d < start)[-7:]
    if not before:
        raise JsonRESTError(
            "DataUnavailableException",
            "Insufficient amount of historical data to generate forecast.",
        )
    mean = sum(daily[d] for d in before) / len(before) * (end - start).days
    money = lambda usd: f"{usd:.10f}"
    return json.dumps({
        "Total": {"Amount": money(mean), "Unit": "USD"},
        "ForecastResultsByTime": [{
            "TimePeriod": {"Start": period["Start"], "End": period["End"]},
            "MeanValue": money(mean),
            "PredictionIntervalLowerBound": money(mean * 0.9),
            "PredictionIntervalUpperBound": money(mean * 1.1),
        }],
    })


CostExplorerResponse.get_cost_forecast = get_cost_forecast


def list_instance_profile_tags(self) -> ActionResult:
    """ListInstanceProfileTags, with IAM's shapes: the tags moto keeps for the profile
    (set by CreateInstanceProfile's `Tags` and TagInstanceProfile), in one page;
    NoSuchEntity for a profile that does not exist, as IAM answers.
    """
    name = self._get_param("InstanceProfileName")
    profile = self.backend.get_instance_profile(profile_name=name)
    return ActionResult({"Tags": list(profile.tags), "IsTruncated": False})


IamResponse.list_instance_profile_tags = list_instance_profile_tags

_header_access_key = BaseResponse.get_access_key


def get_access_key(self) -> str:
    """The caller's access key from a presigned URL's `X-Amz-Credential` too, as AWS reads
    it: moto reads only the Authorization header's, so a presigned GetCallerIdentity (an
    EKS token) would name moto's default user instead of the caller."""
    if "Authorization" not in self.headers:
        for key, values in self.querystring.items():
            if key.lower() == "x-amz-credential" and values:
                return values[0].split("/")[0]
    return _header_access_key(self)


BaseResponse.get_access_key = get_access_key


# --- AssumeRole as STS decides it ----------------------------------------------------
# moto lets anyone assume any role, existing or not ("the role does not need to exist").
# STS (API reference, AssumeRole; IAM User Guide, "Cross account resource access"):
# the role must exist in its account and its trust policy must allow the caller (an
# `AWS` principal of the caller's account: its id, its root or an ARN in it, or `*`)
# for `sts:AssumeRole`, with `sts:ExternalId` equal to the one sent when the trust's
# condition names one; else AccessDenied. The exception is AWS Organizations':
# `OrganizationAccountAccessRole`, which Organizations creates in every member account
# trusting the management account (moto's default account here): the test support
# creates spoke roles through it, as platform teams' StackSets do.
from moto.iam.models import iam_backends
from moto.sts.exceptions import STSClientError
from moto.sts.responses import TokenResponse

_assume_role = TokenResponse.assume_role
ORGANIZATION_ROLE = "OrganizationAccountAccessRole"


class AccessDenied(STSClientError):
    code = "AccessDenied"


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _trusts(document, caller_account, external_id):
    if isinstance(document, str):
        from urllib.parse import unquote
        try:
            document = json.loads(document)
        except ValueError:
            document = json.loads(unquote(document))
    for statement in _as_list(document.get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action", []))
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = statement.get("Principal", {})
        aws = _as_list(principal.get("AWS", [])) if isinstance(principal, dict) else [principal]
        if not any(p == "*" or p == caller_account or p.split(":")[4:5] == [caller_account] for p in aws):
            continue
        wanted = (statement.get("Condition", {}).get("StringEquals", {}) or {}).get("sts:ExternalId")
        if wanted is not None and external_id not in _as_list(wanted):
            continue
        return True
    return False


def assume_role(self):
    role_arn = self._get_param("RoleArn") or ""
    parts = role_arn.split(":")
    caller = self.current_account
    if len(parts) != 6 or not parts[5].startswith("role/"):
        raise AccessDenied(f"Not authorized to perform sts:AssumeRole on {role_arn}")
    account, name = parts[4], parts[5].split("/")[-1]
    organization = name == ORGANIZATION_ROLE and caller == DEFAULT_ACCOUNT_ID
    if not organization:
        try:
            role = iam_backends[account][parts[1]].get_role(name)
        except Exception:
            role = None
        if role is None or not _trusts(role.assume_role_policy_document, caller, self._get_param("ExternalId")):
            raise AccessDenied(
                f"User: arn:aws:iam::{caller}:user/moto is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            )
    return _assume_role(self)


TokenResponse.assume_role = assume_role


# --- NAT gateways and Elastic IPs as EC2 runs them -------------------------------------
# moto makes a NAT gateway `available` at once, deletes it at once without freeing its
# address, ignores ClientToken and releases an address that is still associated. EC2
# (User Guide, "NAT gateways": "NAT gateway basics", "Delete a NAT gateway"; API
# reference, CreateNatGateway's ClientToken, ReleaseAddress):
# - a new gateway is `pending` for minutes, then `available` (or `failed`, with a
#   failure code, its address disassociated); here: `pending` on the first
#   DescribeNatGateways that shows it, `available` from the next;
# - DeleteNatGateway makes it `deleting`, then `deleted` (shown for about an hour); its
#   Elastic IP stays associated until then; here: `deleted` from the second describe;
# - CreateNatGateway with a ClientToken already used returns the same gateway, or fails
#   with IdempotentParameterMismatch when the subnet or the address differ;
# - a route to a gateway that is `deleting` or `deleted` is a `blackhole` (moto's routes
#   are always `active`);
# - ReleaseAddress of an associated address fails with InvalidIPAddress.InUse;
# - DeleteNatGateway of an unknown id fails with NatGatewayNotFound.
# Tests steer what EC2 does by tagging the public subnet (a real call, no side channel):
# `fleet-test:nat-fails` = <message> makes its gateways fail, `fleet-test:nat-deleting` =
# `stuck` keeps them `deleting` while the tag is there.
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend
from moto.ec2.models.nat_gateways import NatGateway, NatGatewayBackend
from moto.ec2.responses.nat_gateways import NatGateways

_create_nat = NatGatewayBackend.create_nat_gateway
_describe_nats = NatGatewayBackend.describe_nat_gateways
_release = ElasticAddressBackend.release_address


def _subnet_tag(backend, subnet_id, key):
    return backend.tags.get(subnet_id, {}).get(key)


def _free_address(backend, nat):
    for a in nat.address_set:
        allocation = a.get("allocationId")
        for eip in backend.address_by_allocation([allocation]) if allocation else []:
            if eip.association_id:
                backend.disassociate_address(association_id=eip.association_id)


def describe_nat_gateways(self, filters, nat_gateway_ids):
    shown = _describe_nats(self, filters, nat_gateway_ids)
    for nat in shown:
        # A gateway moves on only after one describe has shown it where it is.
        if getattr(nat, "_fleet_seen", None) != nat.state:
            continue
        if nat.state == "pending":
            message = _subnet_tag(self, nat.subnet_id, "fleet-test:nat-fails")
            if message:
                nat.state = "failed"
                nat.failure_code = "Gateway.NotAttached"
                nat.failure_message = message
                _free_address(self, nat)
            else:
                nat.state = "available"
        elif nat.state == "deleting":
            if _subnet_tag(self, nat.subnet_id, "fleet-test:nat-deleting") != "stuck":
                nat.state = "deleted"
                _free_address(self, nat)
    for nat in shown:
        nat._fleet_seen = nat.state
    return shown


def create_nat_gateway(self, subnet_id, allocation_id, tags=None, connectivity_type="public", client_token=None):
    tokens = self.__dict__.setdefault("_fleet_nat_tokens", {})
    if client_token and client_token in tokens:
        nat = self.nat_gateways[tokens[client_token]]
        allocations = [a.get("allocationId") for a in nat.address_set]
        if nat.subnet_id != subnet_id or allocation_id not in allocations:
            raise EC2ClientError(
                "IdempotentParameterMismatch",
                "The client token you have provided is associated with a resource that is already deleted or was created with different parameters.",
            )
        return nat
    nat = _create_nat(self, subnet_id, allocation_id, tags, connectivity_type)
    nat.state = "pending"
    if client_token:
        tokens[client_token] = nat.id
    return nat


def delete_nat_gateway(self, nat_gateway_id):
    nat = self.nat_gateways.get(nat_gateway_id)
    if nat is None:
        raise EC2ClientError("NatGatewayNotFound", f"NAT gateway {nat_gateway_id} was not found")
    if nat.state in ("pending", "available", "failed"):
        nat.state = "deleting" if nat.state != "failed" else "deleted"
        nat._fleet_seen = None
    return nat


def release_address(self, address=None, allocation_id=None):
    eips = self.address_by_allocation([allocation_id]) if allocation_id else self.address_by_ip([address])
    if eips and eips[0].association_id:
        raise EC2ClientError(
            "InvalidIPAddress.InUse",
            f"Address {eips[0].public_ip} is in use.",
        )
    return _release(self, address=address, allocation_id=allocation_id)


def create_nat_gateway_response(self):
    nat = self.ec2_backend.create_nat_gateway(
        subnet_id=self._get_param("SubnetId"),
        allocation_id=self._get_param("AllocationId"),
        tags=add_tag_specification(self._get_param("TagSpecifications", [])),
        connectivity_type=self._get_param("ConnectivityType"),
        client_token=self._get_param("ClientToken"),
    )
    return ActionResult({"NatGateway": nat})


from moto.ec2.utils import add_tag_specification

from moto.ec2.models.route_tables import Route


def _route_state(self):
    nat = self.nat_gateway
    return "blackhole" if nat is not None and nat.state in ("deleting", "deleted") else "active"


Route.state = property(_route_state)
NatGatewayBackend.describe_nat_gateways = describe_nat_gateways
NatGatewayBackend.create_nat_gateway = create_nat_gateway
NatGatewayBackend.delete_nat_gateway = delete_nat_gateway
ElasticAddressBackend.release_address = release_address
NatGateways.create_nat_gateway = create_nat_gateway_response


# --- Fixed ids for the local account's VPC ----------------------------------------------
# EC2 gives random ids and a config names them; the local account (`make local-aws`, the
# demo) makes the example config's subnet and route tables with the ids it names: a
# `fleet-local:id` tag on CreateSubnet / CreateRouteTable sets the id (moto's own
# generators otherwise).
import moto.ec2.models.route_tables as _route_tables_module
import moto.ec2.models.subnets as _subnets_module
from moto.ec2.responses.route_tables import RouteTables
from moto.ec2.responses.subnets import Subnets

_wanted_ids = threading.local()


def _fixed(module, generator):
    original = getattr(module, generator)

    def pick():
        wanted = getattr(_wanted_ids, generator, None)
        if wanted:
            setattr(_wanted_ids, generator, None)
            return wanted
        return original()

    setattr(module, generator, pick)


_fixed(_subnets_module, "random_subnet_id")
_fixed(_route_tables_module, "random_route_table_id")


def _with_local_id(method, generator):
    def wrapped(self):
        tags = add_tag_specification(self._get_param("TagSpecifications", []))
        setattr(_wanted_ids, generator, tags.get("fleet-local:id"))
        try:
            return method(self)
        finally:
            setattr(_wanted_ids, generator, None)

    return wrapped


Subnets.create_subnet = _with_local_id(Subnets.create_subnet, "random_subnet_id")
RouteTables.create_route_table = _with_local_id(RouteTables.create_route_table, "random_route_table_id")


# --- EKS add-ons, access entries and Pod Identity associations ------------------------
# moto has none of them (no CreateAddon, CreateAccessEntry, CreatePodIdentityAssociation). This stand-in
# keeps them on moto's own cluster object, so they go with the cluster as in EKS, with the
# refusals EKS documents (API reference, CreateAccessEntry, AssociateAccessPolicy,
# CreatePodIdentityAssociation):
# - an unknown cluster: ResourceNotFoundException (404);
# - a second entry for a principal, a second association for a service account:
#   ResourceInUseException (409);
# - kubernetesGroups or username on a non-STANDARD entry: InvalidParameterException;
#   an unknown type: InvalidParameterException;
# - AssociateAccessPolicy on an entry that is not STANDARD: InvalidRequestException; on
#   a principal without an entry: ResourceNotFoundException;
# - EC2_LINUX / EC2_WINDOWS entries get EKS's own groups and user name for nodes.
import re
import uuid
from urllib.parse import unquote, urlparse

from moto.eks import urls as _eks_urls
from moto.eks.models import eks_backends
from moto.iam.models import get_account_id_from

_ACCESS_TYPES = {"STANDARD", "EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "EC2"}


def _eks_error(status, code, message):
    return status, {"x-amzn-ErrorType": code, "content-type": "application/json"}, json.dumps(
        {"message": message, "__type": code}
    )


def _eks_ok(body):
    return 200, {"content-type": "application/json"}, json.dumps(body)


def _eks_cluster(request, full_url, name):
    # The region as moto routes it: the signature's credential scope
    # (`Credential=<key>/<date>/<region>/eks/aws4_request`); the account from the key.
    auth = request.headers.get("Authorization", "")
    scope = re.search(r"Credential=([^/,]+)/[^/]+/([^/]+)/", auth)
    region = scope.group(2) if scope else "us-east-1"
    account = get_account_id_from(scope.group(1)) if scope else DEFAULT_ACCOUNT_ID
    cluster = eks_backends[account][region].clusters.get(name)
    if cluster is not None:
        cluster.__dict__.setdefault("fleet_access", {})
        cluster.__dict__.setdefault("fleet_pods", {})
    return cluster, region, account


def _body(request):
    raw = request.data if hasattr(request, "data") else request.body
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return {}


def access_entries(request, full_url, headers):
    path = unquote(urlparse(full_url).path)
    m = re.match(r"^/clusters/([^/]+)/access-entries(?:/(.+?))?(/access-policies)?$", path)
    if not m:
        return _eks_error(404, "ResourceNotFoundException", "no such resource")
    name, principal, policies = m.group(1), m.group(2), m.group(3)
    cluster, region, account = _eks_cluster(request, full_url, name)
    if cluster is None:
        return _eks_error(404, "ResourceNotFoundException", f"No cluster found for name: {name}.")
    entries = cluster.fleet_access
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    if request.method == "GET" and principal is None:
        return _eks_ok({"accessEntries": sorted(entries), "nextToken": None})
    if request.method == "GET":
        entry = entries.get(principal)
        if entry is None:
            return _eks_error(404, "ResourceNotFoundException", f"The specified principalArn could not be found.")
        return _eks_ok({"accessEntry": entry})
    body = _body(request)
    if policies:
        entry = entries.get(principal)
        if entry is None:
            return _eks_error(404, "ResourceNotFoundException", "The specified principalArn could not be found.")
        if entry["type"] != "STANDARD":
            return _eks_error(400, "InvalidRequestException", f"The specified access entry type {entry['type']} does not support access policies.")
        return _eks_ok({
            "clusterName": name,
            "principalArn": principal,
            "associatedAccessPolicy": {
                "policyArn": body.get("policyArn"),
                "accessScope": body.get("accessScope", {"type": "cluster"}),
                "associatedAt": now,
                "modifiedAt": now,
            },
        })
    principal = body.get("principalArn")
    kind = body.get("type", "STANDARD")
    if not principal:
        return _eks_error(400, "InvalidParameterException", "principalArn is required")
    if kind not in _ACCESS_TYPES:
        return _eks_error(400, "InvalidParameterException", f"The type {kind} is not supported.")
    if kind != "STANDARD" and (body.get("kubernetesGroups") or body.get("username")):
        return _eks_error(400, "InvalidParameterException", f"kubernetesGroups and username cannot be specified for access entries of type {kind}.")
    if principal in entries:
        return _eks_error(409, "ResourceInUseException", "The specified access entry resource is already in use on this cluster.")
    groups, username = body.get("kubernetesGroups", []), body.get("username")
    if kind in ("EC2_LINUX", "EC2_WINDOWS"):
        groups, username = ["system:nodes"], "system:node:{{EC2PrivateDNSName}}"
    entries[principal] = {
        "clusterName": name,
        "principalArn": principal,
        "kubernetesGroups": groups,
        "accessEntryArn": f"arn:aws:eks:{region}:{account}:access-entry/{name}/role/{account}/{principal.rsplit('/', 1)[-1]}/{uuid.uuid4()}",
        "createdAt": now,
        "modifiedAt": now,
        "tags": body.get("tags", {}),
        "username": username or principal,
        "type": kind,
    }
    return _eks_ok({"accessEntry": entries[principal]})


def pod_identity_associations(request, full_url, headers):
    parsed = urlparse(full_url)
    m = re.match(r"^/clusters/([^/]+)/pod-identity-associations(?:/([^/]+))?$", unquote(parsed.path))
    if not m:
        return _eks_error(404, "ResourceNotFoundException", "no such resource")
    name, association_id = m.group(1), m.group(2)
    cluster, region, account = _eks_cluster(request, full_url, name)
    if cluster is None:
        return _eks_error(404, "ResourceNotFoundException", f"No cluster found for name: {name}.")
    pods = cluster.fleet_pods
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    if association_id is None and request.method == "GET":
        query = parse_qs(parsed.query)
        ns = query.get("namespace", [None])[0]
        sa = query.get("serviceAccount", [None])[0]
        found = [
            {k: a[k] for k in ("clusterName", "namespace", "serviceAccount", "associationArn", "associationId")}
            for a in pods.values()
            if (ns is None or a["namespace"] == ns) and (sa is None or a["serviceAccount"] == sa)
        ]
        return _eks_ok({"associations": found, "nextToken": None})
    if association_id is not None:
        a = pods.get(association_id)
        if a is None:
            return _eks_error(404, "ResourceNotFoundException", f"Association {association_id} not found")
        if request.method == "POST":
            body = _body(request)
            if body.get("roleArn"):
                a["roleArn"] = body["roleArn"]
                a["modifiedAt"] = now
        return _eks_ok({"association": a})
    body = _body(request)
    for field in ("namespace", "serviceAccount", "roleArn"):
        if not body.get(field):
            return _eks_error(400, "InvalidParameterException", f"{field} is required")
    if any(a["namespace"] == body["namespace"] and a["serviceAccount"] == body["serviceAccount"] for a in pods.values()):
        return _eks_error(409, "ResourceInUseException", "Association already exists for this namespace and service account")
    new_id = "a-" + uuid.uuid4().hex[:17]
    pods[new_id] = {
        "clusterName": name,
        "namespace": body["namespace"],
        "serviceAccount": body["serviceAccount"],
        "roleArn": body["roleArn"],
        "associationArn": f"arn:aws:eks:{region}:{account}:podidentityassociation/{name}/{new_id}",
        "associationId": new_id,
        "tags": body.get("tags", {}),
        "createdAt": now,
        "modifiedAt": now,
    }
    return _eks_ok({"association": pods[new_id]})


def addons(request, full_url, headers):
    m = re.match(r"^/clusters/([^/]+)/addons(?:/([^/]+))?$", unquote(urlparse(full_url).path))
    if not m:
        return _eks_error(404, "ResourceNotFoundException", "no such resource")
    name, addon = m.group(1), m.group(2)
    cluster, region, account = _eks_cluster(request, full_url, name)
    if cluster is None:
        return _eks_error(404, "ResourceNotFoundException", f"No cluster found for name: {name}.")
    installed = cluster.__dict__.setdefault("fleet_addons", {})
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    if request.method == "GET" and addon is None:
        return _eks_ok({"addons": sorted(installed), "nextToken": None})
    if request.method == "GET":
        if addon not in installed:
            return _eks_error(404, "ResourceNotFoundException", f"No addon: {addon} found in cluster: {name}")
        return _eks_ok({"addon": installed[addon]})
    body = _body(request)
    addon = body.get("addonName")
    if not addon:
        return _eks_error(400, "InvalidParameterException", "addonName is required")
    if addon in installed:
        return _eks_error(409, "ResourceInUseException", f"Addon already exists: {addon}")
    installed[addon] = {
        "addonName": addon,
        "clusterName": name,
        "status": "ACTIVE",
        "addonVersion": body.get("addonVersion") or "v1.0.0-eksbuild.1",
        "addonArn": f"arn:aws:eks:{region}:{account}:addon/{name}/{addon}/{uuid.uuid4()}",
        "createdAt": now,
        "modifiedAt": now,
        "serviceAccountRoleArn": body.get("serviceAccountRoleArn"),
        "tags": body.get("tags", {}),
    }
    return _eks_ok({"addon": installed[addon]})


# moto draws one OIDC issuer id per process, so every cluster shares it; EKS gives each
# cluster (each incarnation of a name) its own: 32 upper-case hex characters.
from moto.eks.models import Cluster as _EksCluster

_cluster_init = _EksCluster.__init__


def _cluster_with_own_issuer(self, *args, **kwargs):
    _cluster_init(self, *args, **kwargs)
    issuer = self.identity["oidc"]["issuer"]
    self.identity["oidc"]["issuer"] = issuer.rsplit("/id/", 1)[0] + "/id/" + uuid.uuid4().hex.upper()


_EksCluster.__init__ = _cluster_with_own_issuer

_eks_urls.url_paths["{0}/clusters/(?P<name>[^/]+)/addons$"] = addons
_eks_urls.url_paths["{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)$"] = addons
_eks_urls.url_paths["{0}/clusters/(?P<name>[^/]+)/access-entries$"] = access_entries
_eks_urls.url_paths["{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<principalArn>.+)$"] = access_entries
_eks_urls.url_paths["{0}/clusters/(?P<name>[^/]+)/pod-identity-associations$"] = pod_identity_associations
_eks_urls.url_paths["{0}/clusters/(?P<name>[^/]+)/pod-identity-associations/(?P<associationId>[^/]+)$"] = pod_identity_associations


class SerializedDynamoDB:
    """Handles DynamoDB requests one at a time, as DynamoDB applies conditional writes.

    moto serves each request on its own thread and checks a condition and writes without
    a lock, so two racing conditional writes could both succeed: tests that race two
    invocations (the state table deciding which one acts) would then be flaky.
    """

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.lock:
                # The body is built inside the call; list() drains it under the lock too.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


class PresignedDispatcher(DomainDispatcherApplication):
    """Routes a presigned request (no Authorization header, the signature in the query) by
    its credential scope, as moto routes a header-signed one.

    AWS routes by host name; moto, serving every service on one port, reads the service
    from the Authorization header's scope, which a presigned URL carries in
    `X-Amz-Credential` instead. Without this, the GET that the fake Kubernetes API makes
    to verify an EKS token (a presigned STS GetCallerIdentity) would fall to S3.
    """

    def infer_service_region_host(self, environ, path):
        if not environ.get("HTTP_AUTHORIZATION"):
            query = parse_qs(environ.get("QUERY_STRING", ""))
            scope = next(
                (v[0] for k, v in query.items() if k.lower() == "x-amz-credential"), ""
            ).split("/")
            if len(scope) == 5 and scope[3] and scope[2]:
                return f"{scope[3].lower()}.{scope[2]}.amazonaws.com"
        return super().infer_service_region_host(environ, path)


class Server(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app = SerializedDynamoDB(PresignedDispatcher(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    # One line per request would bury the test output.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    register_zone_ids()
    server = Server(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound = server.get_host_and_port()
    print(bound, flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    server.stop()


if __name__ == "__main__":
    main()
