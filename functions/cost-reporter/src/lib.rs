//! cost-reporter: what the fleet costs, what the schedule saved, what the month will end
//! at, and what teardown left behind.
//!
//! - `request`: what an invocation asks for;
//! - `explorer`: Cost Explorer (usage and forecast, cached for the day);
//! - `uptime`: hours up from the recorded transitions, hours the schedule plans (pure);
//! - `leftovers`: resources still tagged for clusters that are down, and Karpenter's;
//! - `karpenter`: which cluster Karpenter's instances, launch templates and instance
//!   profiles are of, and which instances lack the cost tag (pure);
//! - `versions`: EKS standard-support dates;
//! - `inputs`: what the report is made from (pure types);
//! - `report`: the report itself (pure);
//! - `handler`: the wiring of one invocation.

pub mod explorer;
pub mod handler;
pub mod inputs;
pub mod karpenter;
pub mod leftovers;
pub mod report;
pub mod request;
pub mod uptime;
pub mod versions;

pub use handler::Reporter;
