//! sinch-operator: Sinch Conversation API configuration as code.
//!
//! Data flows down: `cli` and `controller` drive `load` -> `validate` -> `engine`; `model` is the
//! schema everyone shares.

// Every module that handles outside data (manifests, annotations, Sinch's answers, headers)
// may not overflow or divide by zero: a panic there is a crash loop any tenant can cause
// (design rule 14). Checked or saturating arithmetic only; the simulator is our own test double.
#[deny(clippy::arithmetic_side_effects)]
pub mod cli;
#[deny(clippy::arithmetic_side_effects)]
pub mod cluster;
#[deny(clippy::arithmetic_side_effects)]
pub mod controller;
#[deny(clippy::arithmetic_side_effects)]
pub mod diagnostic;
#[deny(clippy::arithmetic_side_effects)]
pub mod engine;
#[deny(clippy::arithmetic_side_effects)]
pub mod input;
#[deny(clippy::arithmetic_side_effects)]
pub mod load;
#[deny(clippy::arithmetic_side_effects)]
pub mod model;
#[deny(clippy::arithmetic_side_effects)]
pub mod render;
#[deny(clippy::arithmetic_side_effects)]
pub mod scrub;
pub mod sim;
#[deny(clippy::arithmetic_side_effects)]
pub mod sinch;
#[deny(clippy::arithmetic_side_effects)]
pub mod validate;

/// The one error type of the library: what stops a command as a whole. Problems with the user's
/// manifests are not errors of this kind but [`diagnostic::Diagnostic`]s, all reported together.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(diagnostic::Report),
    /// A setting (an environment variable or flag) that cannot be used.
    #[error("{var}: {message}")]
    Config { var: &'static str, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A call to Sinch the command needed failed (after its retries), with its class.
    #[error("{context}: {source}")]
    Sinch {
        context: String,
        #[source]
        source: Box<sinch::error::RequestError>,
    },
    /// A saved plan that is not carried out: stale, unreadable, or of another format.
    #[error("{0}")]
    SavedPlan(String),
    /// `import` would overwrite a file.
    #[error("{} exists; import never overwrites a file, nothing was written", .0.display())]
    WouldOverwrite(std::path::PathBuf),
    /// The controller's own state in the cluster is unusable (its fingerprint key).
    #[error("{0}")]
    OperatorState(String),
    /// This replica lost the leader Lease and must stop.
    #[error("lost the leader Lease; exiting so that a restart waits for it again")]
    LostLease,
    #[error("cannot write to standard output: {0}")]
    Output(#[source] std::io::Error),
    /// A call to the Kubernetes API server failed (the controller, `plan --from-cluster`).
    #[error("{context}: {}", kube_message(.source))]
    Kubernetes {
        context: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// Leader election cannot go on: the Lease library failed other than by a call, or its
    /// task ended.
    #[error("{0}")]
    LeaderElection(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failed call to the Kubernetes API server: `context`, then [`kube_message`].
    pub fn kube(context: impl Into<String>, e: kube::Error) -> Error {
        Error::Kubernetes {
            context: context.into(),
            source: Box::new(e),
        }
    }
}

/// Writes `bytes` to `path` readable and writable by its owner alone (mode 0600 on Unix), also
/// when the file was there before with a wider mode: saved plans and the simulator's state may
/// name or hold secrets.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)
}

/// A Kubernetes client error as a person reads it: the API server's own message and code, not
/// the client's `Status { .. }` dump; a missing namespace says what to do.
pub fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let said = format!("{} (HTTP {} {})", s.message.trim_end_matches('.'), s.code, s.reason);
            let namespace = s.message.starts_with("namespaces \"") && s.message.ends_with("not found");
            match (s.code, namespace) {
                (404, true) => format!("{said}: create the namespace, or name an existing one"),
                (403, _) => {
                    format!("{said}: the operator's ServiceAccount lacks this permission (see manifests/rbac.yaml)")
                }
                _ => said,
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    /// Owner-only whether the file is new or was there, readable by all, with longer content.
    #[cfg(unix)]
    #[test]
    fn private_files_are_mode_0600_new_or_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (new, old) = (dir.path().join("new"), dir.path().join("old"));
        std::fs::write(&old, "a longer old content").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        for path in [&new, &old] {
            super::write_private(path, b"plan").unwrap();
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}: {mode:o}", path.display());
            assert_eq!(std::fs::read(path).unwrap(), b"plan");
        }
    }
}
