//! Problems found in the user's input, each naming where it is: file, line, document, object and
//! field. They are collected, never thrown one at a time, so a run reports all of them at once.

use std::fmt;
use std::sync::Arc;

/// Where a document came from: a file path as the user gave it, or `<stdin>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    /// 1-based position of the document in its file.
    pub document: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: Option<Arc<str>>,
    pub document: Option<usize>,
    pub line: Option<usize>,
    /// `Kind namespace/name`.
    pub object: Option<String>,
    /// The field path, e.g. `spec.channelCredentials[1].staticBearer.tokenRef.key`.
    pub field: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            file: None,
            document: None,
            line: None,
            object: None,
            field: None,
            message: message.into(),
        }
    }

    pub fn in_file(mut self, file: &Arc<str>, line: Option<usize>) -> Self {
        self.file = Some(file.clone());
        self.line = line;
        self
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line (document N): Kind ns/name: field: message`, leaving out what is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            f.write_str(file)?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            if let Some(doc) = self.document {
                write!(f, " (document {doc})")?;
            }
            f.write_str(": ")?;
        }
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// All the problems of one run, in input order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report(pub Vec<Diagnostic>);

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "error: {d}")?;
        }
        let files: std::collections::BTreeSet<_> = self.0.iter().filter_map(|d| d.file.as_deref()).collect();
        let n = self.0.len();
        let errors = if n == 1 { "error" } else { "errors" };
        match files.len() {
            0 => write!(f, "{n} {errors}"),
            1 => write!(f, "{n} {errors} in 1 file"),
            k => write!(f, "{n} {errors} in {k} files"),
        }?;
        f.write_str("; nothing was sent to Sinch")
    }
}

/// Field paths as people read them: `spec.translations[0].textMessage.text`; keys that are not
/// plain identifiers are quoted: `metadata.annotations["example.com/x"]`.
pub fn child(path: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

pub fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}
