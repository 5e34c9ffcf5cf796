//! dora-webhook: GitHub, Flux and Flagger webhooks in through a Function URL, normalized
//! DORA events out into the state table.
//!
//! - `signature`: HMAC-SHA256 and token checks;
//! - `normalize`: payloads -> events per configured service (pure);
//! - `handler`: the HTTP request/response and storage.

pub mod handler;
pub mod normalize;
pub mod signature;

pub use handler::Webhook;
