//! `make bench` (see `fleet_tests::bench`): `bench` measures every section and rewrites
//! BENCHMARKS.md, `bench 4 6` measures those sections and prints them.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    fleet_tests::bench::run().await
}
