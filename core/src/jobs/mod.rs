//! RaaS jobs: what a client asks for a CID (replication, renewal, repair), validated and
//! normalised, and the pure evaluation of a job against what the chain says.
//!
//! The engine that stores, schedules and acts on jobs builds on these two pieces.

mod evaluate;
mod spec;

pub use evaluate::{
    evaluate, request_key, DealView, Evaluation, JobInput, JobVerdict, OpenRequest, OpenState,
    PlannedRequest, RequestChange, RequestOutcome, Shortfall, ShortfallReason,
};
pub use spec::{JobError, JobLimits, JobSpec, JobSpecInput, MAX_DEAL_EPOCHS};
