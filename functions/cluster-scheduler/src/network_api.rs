//! EC2's side of a `[[network]]`: what exists (NAT gateways in its public subnets, its
//! Elastic IPs, its route tables' default routes) and the calls that make and take them
//! away. The decisions are [`crate::network_steps`]'s.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{DomainType, Filter, ResourceType, Tag, TagSpecification};
use fleet_shared::config::{NetworkConfig, CLUSTER_TAG, MANAGED_BY_TAG, NETWORK_TAG};
use fleet_shared::{FleetError, Result};

use crate::network_steps::{
    DefaultRoute, ObservedAddress, ObservedNat, ObservedNetwork, ObservedRouteTable,
};

/// Tag carrying the token written before a NAT gateway or Elastic IP is made: what a
/// crash left unrecorded is found by it.
pub const TOKEN_TAG: &str = "fleet:token";

const DEFAULT_ROUTE: &str = "0.0.0.0/0";

fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// What EC2 shows of network `n`; `recorded_subnets`: where the fleet recorded gateways
/// (a subnet the config no longer lists is looked at too, to take its gateway away);
/// `other_tables`: route tables looked at besides `n`'s (for a network removed from the
/// config: those the others list, which may still route through its gateways). NAT
/// gateways the tables' default routes point at are looked at too, wherever they are
/// (whether a route goes to one of the fleet's, another network's included).
///
/// # Errors
/// An EC2 error (`DescribeNatGateways`, `DescribeAddresses`, `DescribeRouteTables`).
pub async fn observe(
    ec2: &aws_sdk_ec2::Client,
    n: &NetworkConfig,
    recorded_subnets: &[String],
    other_tables: &[String],
) -> Result<ObservedNetwork> {
    let mut subnets: Vec<String> = n.nat_gateways.iter().map(|g| g.subnet_id.clone()).collect();
    for s in recorded_subnets {
        if !subnets.contains(s) {
            subnets.push(s.clone());
        }
    }
    // A network removed from the config lists no subnets but the recorded ones, maybe
    // none: no call then (EC2 fails a filter without values).
    let mut nat_gateways = if subnets.is_empty() {
        vec![]
    } else {
        describe_nat_gateways(ec2, filter("subnet-id", subnets)).await?
    };
    let addresses = ec2
        .describe_addresses()
        .filters(filter(&format!("tag:{NETWORK_TAG}"), [n.name.clone()]))
        .send()
        .await
        .map_err(FleetError::aws_call("EC2", "DescribeAddresses"))?
        .addresses()
        .iter()
        .map(|a| ObservedAddress {
            allocation_id: a.allocation_id().unwrap_or_default().to_string(),
            association_id: a.association_id().map(String::from),
            token: tag_value(a.tags(), TOKEN_TAG).map(String::from),
            managed_by: tag_value(a.tags(), MANAGED_BY_TAG).map(String::from),
        })
        .collect();
    // A filter, not RouteTableIds: a route table that is gone must not hide the others
    // (EC2 fails the whole call for one unknown id).
    let mut tables: Vec<String> = n.route_tables().map(|(_, r)| r.to_string()).collect();
    tables.extend(
        other_tables
            .iter()
            .filter(|t| !tables.contains(t))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let route_tables = if tables.is_empty() {
        vec![]
    } else {
        describe_route_tables(ec2, tables).await?
    };
    let elsewhere: Vec<String> = route_tables
        .iter()
        .filter_map(|t| t.default_route.as_ref())
        .map(|d| d.target.clone())
        .filter(|t| t.starts_with("nat-") && !nat_gateways.iter().any(|n| &n.id == t))
        .collect();
    if !elsewhere.is_empty() {
        // A filter, not NatGatewayIds: one that is long gone must not fail the call.
        nat_gateways.extend(describe_nat_gateways(ec2, filter("nat-gateway-id", elsewhere)).await?);
    }
    Ok(ObservedNetwork {
        nat_gateways,
        addresses,
        route_tables,
    })
}

/// The route tables `tables` that exist, with their default route.
async fn describe_route_tables(
    ec2: &aws_sdk_ec2::Client,
    tables: Vec<String>,
) -> Result<Vec<ObservedRouteTable>> {
    let mut route_tables = vec![];
    let mut pages = ec2
        .describe_route_tables()
        .filters(filter("route-table-id", tables))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(FleetError::aws_call("EC2", "DescribeRouteTables"))?;
        for t in page.route_tables() {
            let default_route = t
                .routes()
                .iter()
                .find(|r| r.destination_cidr_block() == Some(DEFAULT_ROUTE))
                .map(|r| DefaultRoute {
                    target: r
                        .nat_gateway_id()
                        .or(r.gateway_id())
                        .or(r.transit_gateway_id())
                        .or(r.network_interface_id())
                        .or(r.vpc_peering_connection_id())
                        .or(r.instance_id())
                        .or(r.egress_only_internet_gateway_id())
                        .or(r.carrier_gateway_id())
                        .or(r.local_gateway_id())
                        .unwrap_or("unknown")
                        .to_string(),
                    blackhole: r.state().map(|s| s.as_str()) == Some("blackhole"),
                });
            route_tables.push(ObservedRouteTable {
                id: t.route_table_id().unwrap_or_default().to_string(),
                default_route,
            });
        }
    }
    Ok(route_tables)
}

/// The NAT gateways `by` selects, whoever made them.
async fn describe_nat_gateways(ec2: &aws_sdk_ec2::Client, by: Filter) -> Result<Vec<ObservedNat>> {
    let mut nat_gateways = vec![];
    let mut pages = ec2
        .describe_nat_gateways()
        .filter(by)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(FleetError::aws_call("EC2", "DescribeNatGateways"))?;
        for g in page.nat_gateways() {
            let tags = g.tags();
            nat_gateways.push(ObservedNat {
                id: g.nat_gateway_id().unwrap_or_default().to_string(),
                subnet_id: g.subnet_id().unwrap_or_default().to_string(),
                state: g
                    .state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                allocation_ids: g
                    .nat_gateway_addresses()
                    .iter()
                    .filter_map(|a| a.allocation_id().map(String::from))
                    .collect(),
                token: tag_value(tags, TOKEN_TAG).map(String::from),
                managed_by: tag_value(tags, MANAGED_BY_TAG).map(String::from),
                network: tag_value(tags, NETWORK_TAG).map(String::from),
                failure: g
                    .failure_code()
                    .map(|code| format!("{code}: {}", g.failure_message().unwrap_or_default())),
            });
        }
    }
    Ok(nat_gateways)
}

/// The tags of everything the fleet makes for network `network` (`stack`: its
/// `fleet:managed-by`; `token`: see [`TOKEN_TAG`]). `fleet:cluster` carries the network's
/// name too: the cost report groups the bill by that one tag.
fn tags(resource: ResourceType, stack: &str, network: &str, token: &str) -> TagSpecification {
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    TagSpecification::builder()
        .resource_type(resource)
        .tags(tag(MANAGED_BY_TAG, stack))
        .tags(tag(NETWORK_TAG, network))
        .tags(tag(CLUSTER_TAG, &format!("network:{network}")))
        .tags(tag(TOKEN_TAG, token))
        .tags(tag("Name", &format!("fleet-{network}")))
        .build()
}

/// Allocates an Elastic IP for a NAT gateway, tagged (as `tags` makes them). Not idempotent in
/// EC2: the token tag is how a retry after a lost answer finds the first one.
///
/// # Errors
/// EC2's (`AddressLimitExceeded`: the account's quota of Elastic IPs).
pub async fn allocate(
    ec2: &aws_sdk_ec2::Client,
    stack: &str,
    network: &str,
    token: &str,
) -> Result<String> {
    let out = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tags(ResourceType::ElasticIp, stack, network, token))
        .send()
        .await
        .map_err(FleetError::aws_call("EC2", "AllocateAddress"))?;
    out.allocation_id().map(String::from).ok_or_else(|| {
        FleetError::Internal("AllocateAddress answered without an allocation id".into())
    })
}

/// Creates the NAT gateway (public, with the Elastic IP `allocation_id`) in `subnet`;
/// `token` is its `ClientToken`, so a repeated call returns the same gateway.
///
/// # Errors
/// EC2's (a subnet without an internet gateway route fails later, as state `failed`).
pub async fn create_nat_gateway(
    ec2: &aws_sdk_ec2::Client,
    stack: &str,
    network: &str,
    subnet: &str,
    allocation_id: &str,
    token: &str,
) -> Result<String> {
    let out = ec2
        .create_nat_gateway()
        .subnet_id(subnet)
        .allocation_id(allocation_id)
        .client_token(token)
        .tag_specifications(tags(ResourceType::Natgateway, stack, network, token))
        .send()
        .await
        .map_err(FleetError::aws_call("EC2", "CreateNatGateway"))?;
    out.nat_gateway()
        .and_then(|g| g.nat_gateway_id())
        .map(String::from)
        .ok_or_else(|| FleetError::Internal("CreateNatGateway answered without an id".into()))
}

/// The service error code of an SDK error, if the service sent one.
fn code<E: ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// Points `route_table`'s default route at `nat` (`replace`: over the route there).
/// A route already there is left for the next tick's look (a retry after a lost answer).
///
/// # Errors
/// EC2's.
pub async fn route(
    ec2: &aws_sdk_ec2::Client,
    route_table: &str,
    nat: &str,
    replace: bool,
) -> Result<()> {
    if replace {
        return ec2
            .replace_route()
            .route_table_id(route_table)
            .destination_cidr_block(DEFAULT_ROUTE)
            .nat_gateway_id(nat)
            .send()
            .await
            .map(|_| ())
            .map_err(FleetError::aws_call("EC2", "ReplaceRoute"));
    }
    match ec2
        .create_route()
        .route_table_id(route_table)
        .destination_cidr_block(DEFAULT_ROUTE)
        .nat_gateway_id(nat)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some("RouteAlreadyExists") => Ok(()),
        Err(e) => Err(FleetError::aws("EC2", "CreateRoute", e)),
    }
}

/// Puts `route_table`'s default route back to `target` (what `adopt_routes` replaced:
/// `igw-…`, `vgw-…`, `nat-…`, `tgw-…`, `eni-…`, `pcx-…`, `i-…`). A target that is gone
/// (or of a kind a default route cannot name again) leaves no default route rather than
/// the fleet's gateway, which is about to be deleted: logged.
///
/// # Errors
/// EC2's, but a target not found.
pub async fn restore_route(
    ec2: &aws_sdk_ec2::Client,
    route_table: &str,
    target: &str,
) -> Result<()> {
    let call = ec2
        .replace_route()
        .route_table_id(route_table)
        .destination_cidr_block(DEFAULT_ROUTE);
    let (kind, _) = target.split_once('-').unwrap_or((target, ""));
    let call = match kind {
        "igw" | "vgw" => call.gateway_id(target),
        "nat" => call.nat_gateway_id(target),
        "tgw" => call.transit_gateway_id(target),
        "eni" => call.network_interface_id(target),
        "pcx" => call.vpc_peering_connection_id(target),
        "i" => call.instance_id(target),
        _ => {
            tracing::warn!(%route_table, %target, "an adopted route's target cannot be put back; deleting the route");
            return delete_route(ec2, route_table).await;
        }
    };
    match call.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if code(&e).is_some_and(|c| c.ends_with(".NotFound") || c == "NatGatewayNotFound") =>
        {
            tracing::warn!(%route_table, %target, "an adopted route's target is gone; deleting the route");
            delete_route(ec2, route_table).await
        }
        Err(e) => Err(FleetError::aws("EC2", "ReplaceRoute", e)),
    }
}

/// Deletes `route_table`'s default route; already gone counts as done.
///
/// # Errors
/// EC2's.
pub async fn delete_route(ec2: &aws_sdk_ec2::Client, route_table: &str) -> Result<()> {
    match ec2
        .delete_route()
        .route_table_id(route_table)
        .destination_cidr_block(DEFAULT_ROUTE)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // The route, or its table, is gone: nothing routes through the gateway there.
        Err(e)
            if matches!(
                code(&e),
                Some("InvalidRoute.NotFound" | "InvalidRouteTableID.NotFound")
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(FleetError::aws("EC2", "DeleteRoute", e)),
    }
}

/// Deletes NAT gateway `id`; already gone counts as done.
///
/// # Errors
/// EC2's.
pub async fn delete_nat_gateway(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<()> {
    match ec2.delete_nat_gateway().nat_gateway_id(id).send().await {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some("NatGatewayNotFound") => Ok(()),
        Err(e) => Err(FleetError::aws("EC2", "DeleteNatGateway", e)),
    }
}

/// Releases Elastic IP `allocation_id`; already released counts as done.
///
/// # Errors
/// EC2's (`InvalidIPAddress.InUse` while still associated).
pub async fn release(ec2: &aws_sdk_ec2::Client, allocation_id: &str) -> Result<()> {
    match ec2
        .release_address()
        .allocation_id(allocation_id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some("InvalidAllocationID.NotFound") => Ok(()),
        Err(e) => Err(FleetError::aws("EC2", "ReleaseAddress", e)),
    }
}
