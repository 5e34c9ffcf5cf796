//! dora-aggregator: the DORA metrics per service from the stored events, daily and on
//! demand.
//!
//! - `request`: what an invocation asks for;
//! - `metrics`: the definitions (pure);
//! - `handler`: reading the window, publishing, the digest.

pub mod handler;
pub mod metrics;
pub mod redeliver;
pub mod request;

pub use handler::Aggregator;
