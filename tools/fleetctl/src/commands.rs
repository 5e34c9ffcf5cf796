//! Each command: its request, where it goes, and how its answer is shown.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::CommandFactory;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::cli::{Cli, Command, ConfigCommand, CostCommand, DnsCommand, DoraCommand, Hold};
use crate::invoke::{Failure, Invoker, Lambda, Local};
use crate::render::{self, Style};
use crate::request::{self, Request, Usage};
use crate::wait::{self, Look};

/// How a command ended: its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Ok,
    /// 1: a function or AWS failed, or the action's own tick did.
    Failed,
    /// 2: bad usage; nothing was invoked (or the function refused and changed nothing).
    Usage,
    /// 3: the cluster is not ready (wait timed out, no API server for a kubeconfig).
    NotReady,
}

impl Exit {
    pub fn code(self) -> ExitCode {
        ExitCode::from(match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::NotReady => 3,
        })
    }
}

/// A command that did not finish as asked: its exit code and one line.
#[derive(Debug)]
pub struct Error {
    pub exit: Exit,
    pub message: String,
}

impl From<Usage> for Error {
    fn from(u: Usage) -> Self {
        Error {
            exit: Exit::Usage,
            message: u.0,
        }
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        Error {
            exit: match f {
                Failure::Refused(_) => Exit::Usage,
                Failure::NotReady(_) => Exit::NotReady,
                Failure::Failed(_) => Exit::Failed,
            },
            message: f.message().to_string(),
        }
    }
}

fn failed(message: impl Into<String>) -> Error {
    Error {
        exit: Exit::Failed,
        message: message.into(),
    }
}

/// Writes `text` and a newline to stdout. A closed pipe (`fleetctl status | head`) is not
/// a failure; any other write error is (exit 1), never a panic.
pub fn emit(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(failed(format!("writing the output: {e}"))),
    }
}

/// The output and the invoker of one run.
struct Ctx {
    invoker: Invoker,
    json: bool,
}

impl Ctx {
    async fn ask(&self, r: Request) -> Result<Value, Error> {
        Ok(self.invoker.call(r.function, r.event).await?)
    }

    /// Prints the answer: as JSON with `--json`, else as `human` renders it.
    fn show(
        &self,
        answer: &Value,
        human: impl FnOnce(&Value) -> Result<String, String>,
    ) -> Result<(), Error> {
        let text = if self.json {
            serde_json::to_string_pretty(answer).map_err(|e| failed(e.to_string()))?
        } else {
            human(answer).map_err(failed)?
        };
        emit(&text)
    }
}

/// Runs `cli`'s command.
pub async fn run(cli: Cli, style: Style) -> Result<Exit, Error> {
    let g = cli.global;
    // What needs no function at all.
    match &cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "fleetctl", &mut script);
            emit(String::from_utf8_lossy(&script).trim_end())?;
            return Ok(Exit::Ok);
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => return config_check(file, g.json),
        _ => {}
    }
    // The decision time the arguments are checked against: the local one (FLEET_NOW) or
    // the real clock, which the deployed functions decide at.
    let now = if g.local {
        fleet_shared::runner::local_now().map_err(|e| Error::from(Usage(e.to_string())))?
    } else {
        Timestamp::now()
    };
    // Every argument is checked before anything is invoked (or connected to).
    let planned = plan_request(&cli.command, now)?;
    let request = || {
        planned
            .clone()
            .ok_or_else(|| failed("no request for this command"))
    };
    let invoker = if g.local {
        Invoker::Local(Box::<Local>::default())
    } else {
        Invoker::Lambda(Lambda::connect(&g.stack, g.profile.as_deref(), g.region.as_deref()).await?)
    };
    let ctx = Ctx {
        invoker,
        json: g.json,
    };
    match cli.command {
        Command::Status { .. } => {
            let answer = ctx.ask(request()?).await?;
            ctx.show(&answer, |a| Ok(render::status(&render::view(a)?, style)))?;
            Ok(Exit::Ok)
        }
        Command::Plan { .. } => {
            let answer = ctx.ask(request()?).await?;
            ctx.show(&answer, |a| Ok(render::plan(&render::view(a)?, style)))?;
            Ok(Exit::Ok)
        }
        Command::Up(_) | Command::Down(_) => {
            let answer = ctx.ask(request()?).await?;
            ctx.show(&answer, |a| Ok(render::override_set(&render::view(a)?)))?;
            Ok(tick_exit(&answer))
        }
        Command::Clear { .. } => {
            let answer = ctx.ask(request()?).await?;
            ctx.show(&answer, |a| Ok(render::override_cleared(&render::view(a)?)))?;
            Ok(tick_exit(&answer))
        }
        Command::Wait {
            cluster,
            timeout,
            interval,
        } => wait_for(&ctx, &cluster, &timeout, interval.as_deref()).await,
        Command::Kubeconfig {
            cluster,
            aws_profile,
            role_arn,
        } => {
            let row = one_status(&ctx, &cluster).await?;
            if let (Some(account), None, None) = (&row.account, &aws_profile, &role_arn) {
                eprintln!(
                    "note: {cluster} lives in account `{account}`: the token is made with the credentials kubectl runs with; --aws-profile or --role-arn names that account's"
                );
            }
            let token = crate::kubeconfig::TokenOptions {
                aws_profile,
                role_arn,
            };
            match crate::kubeconfig::kubeconfig(&row, &token) {
                Ok(yaml) => {
                    emit(yaml.trim_end())?;
                    Ok(Exit::Ok)
                }
                Err(message) => Err(Error {
                    exit: Exit::NotReady,
                    message,
                }),
            }
        }
        Command::Drain { .. }
        | Command::Dns { .. }
        | Command::Dora { .. }
        | Command::Cost { .. } => {
            let answer = ctx.ask(request()?).await?;
            ctx.show(&answer, |a| Ok(render::generic(a, style)))?;
            Ok(if reports_failure(&answer) {
                Exit::Failed
            } else {
                Exit::Ok
            })
        }
        Command::Completions { .. } | Command::Config { .. } => Ok(Exit::Ok),
    }
}

/// The request a command sends, checked; `None` for commands that build theirs as they go.
fn plan_request(command: &Command, now: Timestamp) -> Result<Option<Request>, Usage> {
    let hold = |desired: &str, h: &Hold| {
        request::hold(desired, &h.cluster, &h.for_, &h.until, &h.reason, now)
    };
    Ok(Some(match command {
        Command::Status { cluster } => request::status(cluster)?,
        Command::Plan { at, cluster } => request::plan(at, cluster)?,
        Command::Up(h) => hold("up", h)?,
        Command::Down(h) => hold("down", h)?,
        Command::Clear { cluster, reason } => request::clear(cluster, reason.as_deref())?,
        Command::Wait {
            cluster,
            timeout,
            interval,
        } => {
            wait::duration("--timeout", timeout).map_err(Usage)?;
            if let Some(i) = interval {
                wait::duration("--interval", i).map_err(Usage)?;
            }
            request::status(&Some(cluster.clone()))?;
            return Ok(None);
        }
        Command::Kubeconfig { cluster, .. } => {
            request::status(&Some(cluster.clone()))?;
            return Ok(None);
        }
        Command::Drain {
            instance_id,
            dry_run,
        } => request::drain(instance_id, *dry_run, now)?,
        Command::Dns {
            command: DnsCommand::Sync { cluster, dry_run },
        } => request::dns_sync(cluster, *dry_run)?,
        Command::Dora {
            command: DoraCommand::Report { service, from, to },
        } => request::dora_report(service, from, to)?,
        Command::Cost {
            command: CostCommand::Report { month },
        } => request::cost_report(month)?,
        Command::Completions { .. } | Command::Config { .. } => return Ok(None),
    }))
}

/// Exit 1 when the tick an override made at once failed (the override stands; the
/// schedule's next tick retries).
fn tick_exit(answer: &Value) -> Exit {
    if answer["reconcile"]["result"] == "failed" {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

/// Whether a report answer says something failed or was not done: an `error` or
/// `errors` anywhere, a `result`/`status` of `failed`, a drain's `not-ours` (the instance
/// is no node of the fleet: nothing drained) or its `pending` pods (still on the node).
fn reports_failure(answer: &Value) -> bool {
    match answer {
        Value::Object(m) => m.iter().any(|(k, v)| match (k.as_str(), v) {
            ("error", Value::String(_)) => true,
            ("errors" | "pending", Value::Array(a)) => !a.is_empty(),
            ("result" | "status", Value::String(s)) => s == "failed" || s == "not-ours",
            _ => reports_failure(v),
        }),
        Value::Array(items) => items.iter().any(reports_failure),
        _ => false,
    }
}

async fn one_status(ctx: &Ctx, cluster: &str) -> Result<render::StatusRow, Error> {
    let answer = ctx
        .ask(request::status(&Some(cluster.to_string()))?)
        .await?;
    let status: render::Status = render::view(&answer).map_err(failed)?;
    status
        .clusters
        .into_iter()
        .find(|c| c.name == cluster)
        .ok_or_else(|| failed(format!("the status of {cluster} has no row for it")))
}

/// The step a tick takes (or would take) now for `cluster`: with --local, the tick this
/// run takes itself (nothing else ticks locally); deployed, the plan's next step (the
/// schedule ticks).
async fn step_now(ctx: &Ctx, cluster: &str) -> Result<Option<String>, Error> {
    if ctx.invoker.is_local() {
        let o = ctx.ask(request::reconcile(cluster)).await?;
        return Ok(Some(format!(
            "{} ({})",
            o["step"].as_str().unwrap_or_default(),
            o["result"].as_str().unwrap_or_default()
        )));
    }
    let plan = ctx
        .ask(request::plan(&None, &Some(cluster.to_string()))?)
        .await?;
    Ok(plan["clusters"][0]["next_step"].as_str().map(String::from))
}

async fn wait_for(
    ctx: &Ctx,
    cluster: &str,
    timeout: &str,
    interval: Option<&str>,
) -> Result<Exit, Error> {
    let timeout = wait::duration("--timeout", timeout).map_err(Usage)?;
    // Locally the ticks are this run's own: no need to wait a schedule's 15 seconds.
    let interval = match interval {
        Some(i) => wait::duration("--interval", i).map_err(Usage)?,
        None if ctx.invoker.is_local() => Duration::from_secs(1),
        None => Duration::from_secs(15),
    };
    let started = Instant::now();
    let not_ready = |message: String| {
        if ctx.json {
            emit(&json!({"cluster": cluster, "ready": false, "reason": message}).to_string())?;
        }
        Err(Error {
            exit: Exit::NotReady,
            message,
        })
    };
    let mut last = String::new();
    loop {
        // A look that fails (a throttled or timed-out invoke) is a line, not the end: the
        // wait goes on until its timeout. A cluster wanted down is said before any tick.
        let look = match one_status(ctx, cluster).await {
            Ok(row) => match wait::look(&row, None) {
                Look::Rising(_) => match step_now(ctx, cluster).await {
                    Ok(step) => wait::look(&row, step.as_deref()),
                    Err(e) if e.exit == Exit::Failed => {
                        Look::Rising(format!("{cluster}: {}", e.message))
                    }
                    Err(e) => return Err(e),
                },
                other => other,
            },
            Err(e) if e.exit == Exit::Failed => Look::Rising(format!("{cluster}: {}", e.message)),
            Err(e) => return Err(e),
        };
        match look {
            Look::Ready => {
                let row = one_status(ctx, cluster).await?;
                let endpoint = row.endpoint.as_deref().unwrap_or("-");
                if ctx.json {
                    emit(
                        &json!({"cluster": cluster, "ready": true, "endpoint": row.endpoint})
                            .to_string(),
                    )?;
                } else {
                    emit(&format!(
                        "{cluster} is ready after {}s: {endpoint}",
                        started.elapsed().as_secs()
                    ))?;
                }
                return Ok(Exit::Ok);
            }
            Look::WantedDown(message) => return not_ready(message),
            Look::Rising(line) => {
                if line != last && !ctx.json {
                    emit(&format!("[{:>4}s] {line}", started.elapsed().as_secs()))?;
                }
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return not_ready(format!(
                        "{cluster} not ready after {}s: {line}",
                        started.elapsed().as_secs()
                    ));
                }
                last = line;
                tokio::time::sleep(interval.min(left)).await;
            }
        }
    }
}

/// `config check <file>`: what the functions check at cold start, and a deployed config's
/// rule that every secret is an `ssm:` reference.
fn config_check(file: &std::path::Path, json: bool) -> Result<Exit, Error> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| failed(format!("cannot read {}: {e}", file.display())))?;
    let config = fleet_shared::config::check_deployed(&text)
        .map_err(|e| failed(format!("{}: {e}", file.display())))?;
    if json {
        emit(&json!({"ok": true, "file": file.display().to_string(), "clusters": config.clusters.len(), "networks": config.networks.len(), "accounts": config.accounts.len()}).to_string())?;
    } else {
        emit(&format!(
            "ok: {}: {} cluster(s), {} network(s), {} account(s) besides the hub",
            file.display(),
            config.clusters.len(),
            config.networks.len(),
            config.accounts.len()
        ))?;
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_report_are_found_anywhere() {
        assert!(!reports_failure(
            &json!({"clusters": [{"result": "done"}], "errors": []})
        ));
        assert!(reports_failure(
            &json!({"clusters": [{"changes": [], "error": "Cloudflare 500"}]})
        ));
        assert!(reports_failure(
            &json!({"instances": [{"status": "failed"}]})
        ));
        assert!(!reports_failure(&json!({"error": null})));
    }

    #[test]
    fn exits_say_what_happened() {
        let e: Error = Failure::Refused("unknown cluster".into()).into();
        assert_eq!(e.exit, Exit::Usage);
        let e: Error = Failure::Failed("throttled".into()).into();
        assert_eq!(e.exit, Exit::Failed);
        let now: Timestamp = "2026-11-23T20:00:00Z".parse().expect("ts");
        let bad = Command::Wait {
            cluster: "staging".into(),
            timeout: "3x".into(),
            interval: None,
        };
        assert!(plan_request(&bad, now).is_err());
    }
}
