//! The baseline of `make bench`'s cold start: the smallest `lambda_runtime` function,
//! which answers every event with the event itself. The functions' cold starts are
//! measured against it in the same harness (BENCHMARKS.md, section 1).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
