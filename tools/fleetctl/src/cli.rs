//! The command line, as clap reads it: every command, option and example of `--help`.

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  fleetctl status
  fleetctl plan --at 2026-11-23T20:00:00+01:00
  fleetctl up staging --for 3h --reason \"late release\"
  fleetctl down staging --until 2026-11-24T06:00:00Z --reason \"long weekend\"
  fleetctl clear staging
  fleetctl wait staging --timeout 30m
  fleetctl kubeconfig staging > ~/.kube/staging
  fleetctl drain i-0abc1234def567890 --dry-run
  fleetctl dns sync staging --dry-run
  fleetctl dora report --service web --from 2026-11-01T00:00:00Z
  fleetctl cost report --month 2026-11
  fleetctl config check infra/fleet.toml
  fleetctl --local status          (the functions in-process: FLEET_CONFIG, AWS_ENDPOINT_URL, ...)

Exit codes: 0 ok, 1 failed, 2 bad usage, 3 not ready.";

/// The operator's hands on an ephemeral EKS fleet: what is up, what will happen, keep a
/// cluster up tonight, wait for the morning's rebuild, reach it, drain a node, and the
/// DNS, DORA and cost reports.
///
/// Against the deployed stack, it invokes its functions (Lambda `Invoke`; their names
/// from the stack's outputs) and needs only `lambda:InvokeFunction` and
/// `cloudformation:DescribeStacks`. With `--local`, it runs the same handlers in this
/// process against `FLEET_CONFIG`, `FLEET_TABLE` and `AWS_ENDPOINT_URL` (`make local-aws`).
#[derive(Debug, Parser)]
#[command(name = "fleetctl", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Run the handlers in this process (FLEET_CONFIG, FLEET_TABLE, AWS_ENDPOINT_URL; FLEET_NOW for the decision time) instead of invoking the deployed functions.
    #[arg(long, global = true, env = "FLEETCTL_LOCAL")]
    pub local: bool,
    /// The CloudFormation stack whose functions to invoke.
    #[arg(long, global = true, default_value = "fleet", env = "FLEETCTL_STACK")]
    pub stack: String,
    /// The AWS profile to use (else the usual chain: AWS_PROFILE, environment, SSO, ...).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// The stack's region (else AWS_REGION or the profile's).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Print the functions' answers as JSON (for scripts) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every cluster (or one): where it lives, what the schedule wants, what EKS shows,
    /// whether it is ready, its override, its next change and this month's uptime.
    Status {
        /// Only this cluster.
        cluster: Option<String>,
    },
    /// What a tick would do now (or at `--at`): desired state and next step per cluster.
    Plan {
        /// Plan for this instant (RFC 3339, e.g. 2026-11-23T20:00:00+01:00).
        #[arg(long)]
        at: Option<String>,
        /// Only this cluster.
        cluster: Option<String>,
    },
    /// Keep a cluster up (whatever its schedule says) for a while or until a time.
    Up(Hold),
    /// Keep a cluster down for a while or until a time (not a `protect`ed one).
    Down(Hold),
    /// Drop a cluster's override: its schedule decides again.
    Clear {
        /// The cluster's name in the fleet config.
        cluster: String,
        /// Why, and who asks: kept in the cluster's audit trail.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Wait until a cluster is ready (its `Cluster Ready` published), showing its step.
    /// With --local, it runs the ticks itself (nothing else ticks locally).
    Wait {
        /// The cluster's name in the fleet config.
        cluster: String,
        /// Give up after this long (exit 3).
        #[arg(long, default_value = "30m")]
        timeout: String,
        /// How often to look (default 15s; 1s with --local).
        #[arg(long)]
        interval: Option<String>,
    },
    /// Print a kubeconfig for a running cluster; its user runs `aws eks get-token` in the
    /// cluster's region (your AWS credentials, which need an access entry there).
    Kubeconfig {
        /// The cluster's name in the fleet config.
        cluster: String,
        /// The AWS profile `aws eks get-token` runs with (the cluster's account).
        #[arg(long = "aws-profile")]
        aws_profile: Option<String>,
        /// A role `aws eks get-token` assumes first (`--role-arn`).
        #[arg(long)]
        role_arn: Option<String>,
    },
    /// Cordon and drain the node on an EC2 instance, as the spot drainer does on a warning.
    Drain {
        /// The instance id (i-0abc1234def567890).
        instance_id: String,
        /// Say what would be evicted; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// DNS records following the clusters' ingress.
    Dns {
        #[command(subcommand)]
        command: DnsCommand,
    },
    /// DORA metrics.
    Dora {
        #[command(subcommand)]
        command: DoraCommand,
    },
    /// Spend, forecast, savings and leftovers.
    Cost {
        #[command(subcommand)]
        command: CostCommand,
    },
    /// The fleet config.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// An override: `up`/`down <cluster> (--for <duration> | --until <time>) --reason <text>`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("when").required(true).args(["for_", "until"])))]
pub struct Hold {
    /// The cluster's name in the fleet config.
    pub cluster: String,
    /// For how long from now (3h, 90m, 2 days).
    #[arg(long = "for", id = "for_", value_name = "DURATION")]
    pub for_: Option<String>,
    /// Until when (RFC 3339, e.g. 2026-11-23T23:00:00+01:00).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Why: shown in status, Slack and the audit trail.
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Converge every cluster's records (or one's) to its recorded phase.
    Sync {
        /// Only this cluster.
        cluster: Option<String>,
        /// Say what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DoraCommand {
    /// The four keys (and rework rate) per service; publishes nothing.
    Report {
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// From (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// To (RFC 3339).
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CostCommand {
    /// A month's report (this month by default); publishes nothing.
    Report {
        /// The month (YYYY-MM).
        #[arg(long)]
        month: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file as the functions do at cold start, and as a deployed config
    /// must be (every secret an ssm: reference). Needs no AWS.
    Check {
        /// The TOML file.
        file: std::path::PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn an_override_needs_for_or_until_and_a_reason() {
        let ok = Cli::try_parse_from(["fleetctl", "up", "staging", "--for", "3h", "--reason", "x"]);
        assert!(ok.is_ok());
        for bad in [
            vec!["fleetctl", "up", "staging", "--reason", "x"],
            vec!["fleetctl", "up", "staging", "--for", "3h"],
            vec![
                "fleetctl",
                "up",
                "staging",
                "--for",
                "3h",
                "--until",
                "2030-01-01T00:00:00Z",
                "--reason",
                "x",
            ],
        ] {
            let e = Cli::try_parse_from(&bad).expect_err("bad usage");
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }
}
