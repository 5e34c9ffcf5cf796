//! slack-commands: the `/fleet` slash command and the pre-shutdown notice's buttons,
//! behind their own Function URL.
//!
//! - `signature`: Slack's v0 request signature (HMAC-SHA256, five-minute window);
//! - `request`: the form-encoded slash command and `payload=` interactive bodies;
//! - `command`: what a command or click asks for (pure): the scheduler's own document;
//! - `handler`: the HTTP request and answer, who may act, the hand-off;
//! - `lambda`: the cold start and the scheduler invoked asynchronously.

pub mod command;
pub mod handler;
pub mod lambda;
pub mod request;
pub mod signature;

pub use handler::{Dispatch, SlackCommands};
