//! The reconciliation engine: from validated manifests to a plan and its execution.

pub mod desired;
pub mod secrets;
