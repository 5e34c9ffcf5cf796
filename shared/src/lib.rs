//! What every fleet function shares: the fleet config, the schedule, AWS clients, the state
//! table, the `fleet` bus, Slack notifications, errors, and the runner that serves a
//! handler in Lambda or runs it once locally.

#![deny(missing_docs)]

pub mod aws;
pub mod bus;
pub mod clock;
pub mod config;
pub mod dora;
pub mod error;
pub mod events;
pub mod kube;
pub mod metrics;
pub mod notice;
pub mod notify;
pub mod place;
pub mod request;
pub mod runner;
pub mod schedule;
pub mod startup;
pub mod state;

pub use error::{FleetError, Result};
