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
        println!("{text}");
        Ok(())
    }
}

/// Runs `cli`'s command.
pub async fn run(cli: Cli, style: Style) -> Result<Exit, Error> {
    let g = cli.global;
    // What needs no function at all.
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "fleetctl",
                &mut std::io::stdout(),
            );
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
            let answer = ctx.ask(planned.expect("status has a request")).await?;
            ctx.show(&answer, |a| Ok(render::status(&render::view(a)?, style)))?;
            Ok(Exit::Ok)
        }
        Command::Plan { .. } => {
            let answer = ctx.ask(planned.expect("plan has a request")).await?;
            ctx.show(&answer, |a| Ok(render::plan(&render::view(a)?, style)))?;
            Ok(Exit::Ok)
        }
        Command::Up(_) | Command::Down(_) => {
            let answer = ctx.ask(planned.expect("a hold has a request")).await?;
            let set: render::OverrideSet = render::view(&answer).map_err(failed)?;
            ctx.show(&answer, |_| Ok(render::override_set(&set)))?;
            Ok(if set.reconcile.failed() {
                Exit::Failed
            } else {
                Exit::Ok
            })
        }
        Command::Clear { .. } => {
            let answer = ctx.ask(planned.expect("clear has a request")).await?;
            let cleared: render::OverrideCleared = render::view(&answer).map_err(failed)?;
            ctx.show(&answer, |_| Ok(render::override_cleared(&cleared)))?;
            Ok(if cleared.reconcile.failed() {
                Exit::Failed
            } else {
                Exit::Ok
            })
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
            let token = crate::kubeconfig::TokenOptions {
                aws_profile,
                role_arn,
            };
            match crate::kubeconfig::kubeconfig(&row, &token) {
                Ok(yaml) => {
                    print!("{yaml}");
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
            let answer = ctx.ask(planned.expect("a report has a request")).await?;
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
        Command::Clear { cluster } => request::clear(cluster)?,
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

/// Whether a report answer says something failed: an `error` or `errors` anywhere, or
/// a `result`/`status` of `failed`.
fn reports_failure(answer: &Value) -> bool {
    match answer {
        Value::Object(m) => m.iter().any(|(k, v)| match (k.as_str(), v) {
            ("error", Value::String(_)) => true,
            ("errors", Value::Array(a)) => !a.is_empty(),
            ("result" | "status", Value::String(s)) => s == "failed",
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
    let mut status: render::Status = render::view(&answer).map_err(failed)?;
    status
        .clusters
        .pop()
        .ok_or_else(|| failed(format!("the status of {cluster} has no row")))
}

/// The step a tick takes (or would take) now for `cluster`: with --local, the tick this
/// run takes itself (nothing else ticks locally); deployed, the plan's next step (the
/// schedule ticks).
async fn step_now(ctx: &Ctx, cluster: &str) -> Result<Option<String>, Error> {
    if ctx.invoker.is_local() {
        let tick = ctx.ask(request::reconcile()).await?;
        let outcome = tick["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == cluster);
        return Ok(outcome.map(|o| {
            format!(
                "{} ({})",
                o["step"].as_str().unwrap_or_default(),
                o["result"].as_str().unwrap_or_default()
            )
        }));
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
    let mut last = String::new();
    // A cluster the schedule wants down is said at once, before a local tick acts.
    if let Look::WantedDown(message) = wait::look(&one_status(ctx, cluster).await?, None) {
        return Err(Error {
            exit: Exit::NotReady,
            message,
        });
    }
    loop {
        let step = step_now(ctx, cluster).await?;
        let row = one_status(ctx, cluster).await?;
        match wait::look(&row, step.as_deref()) {
            Look::Ready => {
                if ctx.json {
                    println!(
                        "{}",
                        json!({"cluster": cluster, "ready": true, "endpoint": row.endpoint})
                    );
                } else {
                    println!(
                        "{cluster} is ready after {}s: {}",
                        started.elapsed().as_secs(),
                        row.endpoint.as_deref().unwrap_or("-")
                    );
                }
                return Ok(Exit::Ok);
            }
            Look::WantedDown(message) => {
                return Err(Error {
                    exit: Exit::NotReady,
                    message,
                })
            }
            Look::Rising(line) => {
                if line != last && !ctx.json {
                    println!("[{:>4}s] {line}", started.elapsed().as_secs());
                }
                if started.elapsed() + interval > timeout {
                    return Err(Error {
                        exit: Exit::NotReady,
                        message: format!(
                            "{cluster} not ready after {}s: {line}",
                            started.elapsed().as_secs()
                        ),
                    });
                }
                last = line;
            }
        }
        tokio::time::sleep(interval).await;
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
        println!(
            "{}",
            json!({"ok": true, "file": file.display().to_string(), "clusters": config.clusters.len(), "networks": config.networks.len(), "accounts": config.accounts.len()})
        );
    } else {
        println!(
            "ok: {}: {} cluster(s), {} network(s), {} account(s) besides the hub",
            file.display(),
            config.clusters.len(),
            config.networks.len(),
            config.accounts.len()
        );
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
