//! Files and stdin -> YAML documents as JSON values, each with the line of every field in it.
//!
//! Values come from `serde_yaml` (YAML 1.2 scalars, duplicate keys refused); line numbers come
//! from a second, event-level parse with `saphyr-parser`, so every later error can point at the
//! line a person has to edit. That parse runs only when an error asks for a line: valid input,
//! what `plan` reads on every pull request, is parsed once.

use crate::diagnostic::{Diagnostic, Origin, child, item};
use saphyr_parser::{Event, Parser};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Larger inputs are refused rather than parsed: no real manifest comes close.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// The file name whose gitignore-style patterns exclude paths below a directory given with `-f`.
pub const IGNORE_FILE: &str = ".sinchignore";

/// One YAML document of the input.
#[derive(Clone, Debug)]
pub struct Document {
    pub source: Source,
    pub value: serde_json::Value,
}

impl Document {
    /// A document that never was text (an object read from the API server): named `label`,
    /// with no lines to point at.
    pub fn from_value(label: &str, value: serde_json::Value) -> Document {
        Document {
            source: Source::named(label),
            value,
        }
    }
}

/// Where a document is, and the line of each of its fields.
#[derive(Clone, Debug)]
pub struct Source {
    pub origin: Origin,
    /// The text the document came from; `None`: it never was text.
    text: Option<Arc<Text>>,
}

/// One input's text, and the line of every field of its documents once an error asked for one.
struct Text {
    text: Box<str>,
    index: OnceLock<Vec<LineIndex>>,
}

/// The text holds the input's Secret documents too: a debug print shows its size only.
impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Text")
            .field("bytes", &self.text.len())
            .field("indexed", &self.index.get().is_some())
            .finish()
    }
}

impl Text {
    fn new(text: &str) -> Arc<Text> {
        Arc::new(Text {
            text: text.into(),
            index: OnceLock::new(),
        })
    }

    /// The index of the 1-based `document`; none past a syntax error that stopped the events.
    fn document(&self, document: usize) -> Option<&LineIndex> {
        let index = self.index.get_or_init(|| index_lines(&self.text));
        index.get(document.checked_sub(1)?)
    }
}

impl Source {
    /// What is not in a file (an object of the cluster), named by `label`; no lines.
    pub fn named(label: &str) -> Source {
        Source {
            origin: Origin {
                file: label.into(),
                document: 1,
            },
            text: None,
        }
    }

    fn index(&self) -> Option<&LineIndex> {
        self.text.as_ref()?.document(self.origin.document)
    }

    /// 1-based line where the document starts (its `---`, or its first node).
    pub fn line(&self) -> usize {
        self.index().map_or(1, |i| i.line)
    }

    /// A problem at `field` of this document's object (`object` is `Kind namespace/name`).
    pub fn diagnostic(&self, object: Option<&str>, field: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: Some(self.origin.file.clone()),
            document: Some(self.origin.document),
            line: Some(if field.is_empty() {
                self.line()
            } else {
                self.line_of(field)
            }),
            object: object.map(str::to_string),
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.into(),
        }
    }

    /// The line of a field path (as built by [`child`] and [`item`]); the nearest enclosing field's
    /// line when the field itself is absent (a missing required field points at its parent).
    pub fn line_of(&self, path: &str) -> usize {
        let Some(index) = self.index() else {
            return 1;
        };
        let mut p = path;
        loop {
            if let Some(line) = index.lines.get(p) {
                return *line;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return index.line,
            }
        }
    }
}

/// Reads every input: files as given, directories recursively (`*.yaml`, `*.yml`, sorted, hidden
/// entries and `.sinchignore` patterns skipped), `-` as standard input.
pub fn read_inputs(paths: &[PathBuf]) -> (Vec<Document>, Vec<Diagnostic>) {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            match std::io::stdin()
                .take(MAX_INPUT_BYTES.saturating_add(1) as u64)
                .read_to_end(&mut bytes)
            {
                Ok(_) => parse_bytes("<stdin>", &bytes, &mut docs, &mut errors),
                Err(e) => errors.push(Diagnostic::new(format!("cannot read standard input: {e}"))),
            }
            continue;
        }
        let label = path.display().to_string();
        match std::fs::metadata(path) {
            Err(e) => errors.push(Diagnostic::new(io_message(&e)).in_file(&label.into(), None)),
            Ok(meta) if meta.is_dir() => {
                for file in yaml_files_below(path, &mut errors) {
                    read_file(&file, &mut docs, &mut errors);
                }
            }
            Ok(_) => read_file(path, &mut docs, &mut errors),
        }
    }
    (docs, errors)
}

fn yaml_files_below(dir: &Path, errors: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let walk = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .hidden(true)
        .parents(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();
    let mut files = Vec::new();
    for entry in walk {
        match entry {
            Ok(entry) => {
                let p = entry.path();
                let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
                if yaml && entry.file_type().is_some_and(|t| t.is_file()) {
                    files.push(p.to_path_buf());
                }
            }
            Err(e) => errors.push(
                Diagnostic::new(format!("cannot read directory: {e}")).in_file(&dir.display().to_string().into(), None),
            ),
        }
    }
    files
}

fn read_file(path: &Path, docs: &mut Vec<Document>, errors: &mut Vec<Diagnostic>) {
    let label = path.display().to_string();
    match std::fs::File::open(path).and_then(|f| {
        let mut bytes = Vec::new();
        f.take(MAX_INPUT_BYTES.saturating_add(1) as u64)
            .read_to_end(&mut bytes)
            .map(|_| bytes)
    }) {
        Ok(bytes) => parse_bytes(&label, &bytes, docs, errors),
        Err(e) => errors.push(Diagnostic::new(io_message(&e)).in_file(&label.into(), None)),
    }
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => format!("cannot read: {e}"),
    }
}

/// Parses one input's bytes into its documents; empty documents (a trailing `---`) are skipped.
pub fn parse_bytes(label: &str, bytes: &[u8], docs: &mut Vec<Document>, errors: &mut Vec<Diagnostic>) {
    let file: Arc<str> = label.into();
    if bytes.len() > MAX_INPUT_BYTES {
        errors.push(
            Diagnostic::new(format!(
                "larger than {} MiB; refusing to parse it",
                MAX_INPUT_BYTES >> 20
            ))
            .in_file(&file, None),
        );
        return;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let before = &bytes[..e.valid_up_to()];
            let line = before.iter().filter(|b| **b == b'\n').count().saturating_add(1);
            let column = before
                .iter()
                .rev()
                .take_while(|b| **b != b'\n')
                .count()
                .saturating_add(1);
            errors.push(
                Diagnostic::new(format!(
                    "not valid UTF-8: invalid byte at column {column}; save the file as UTF-8"
                ))
                .in_file(&file, Some(line)),
            );
            return;
        }
    };
    // Kept for the lines an error may ask for, shared by the file's documents.
    let kept = Text::new(text);
    for (i, read) in values(text).into_iter().enumerate() {
        let source = Source {
            origin: Origin {
                file: file.clone(),
                document: i.saturating_add(1),
            },
            text: Some(kept.clone()),
        };
        let converted = match read {
            Ok(v) => v,
            Err(e) => {
                errors.push(yaml_error(&source, &e));
                continue;
            }
        };
        let Some(converted) = converted else {
            continue; // an empty document
        };
        match converted {
            Ok(value) => docs.push(Document { source, value }),
            Err((field, message)) => {
                let object = source.index().and_then(LineIndex::object);
                errors.push(source.diagnostic(object.as_deref(), &field, message));
            }
        }
    }
}

/// A syntax error of `source`'s document, with the line, object and field a person edits.
fn yaml_error(source: &Source, e: &serde_yaml::Error) -> Diagnostic {
    let mark = source.index();
    let line = e.location().map(|l| l.line()).or(mark.map(|m| m.line));
    let mut d = Diagnostic::new(format!("invalid YAML: {}", yaml_message(e))).in_file(&source.origin.file, line);
    d.document = Some(source.origin.document);
    // What the events read before the error still names the object and the field.
    if let Some(mark) = mark {
        d.object = mark.object();
        d.field = e.location().and_then(|l| mark.field_at(l.line()));
    }
    // serde_yaml names the path itself when it has one.
    if let Some((path, rest)) = d.message["invalid YAML: ".len()..].split_once(": ")
        && !path.contains(' ')
    {
        d.field = Some(path.to_string());
        d.message = format!("invalid YAML: {rest}");
    }
    if d.message.contains(" as u128") || d.message.contains(" as i128") {
        d.message = "the number is out of range: no integer field takes it".into();
    }
    // libyaml places a duplicate key at its mapping; the event index knows the key.
    if let Some((path, line)) = mark.and_then(|m| m.repeated.first())
        && d.message.contains("duplicate entry with key")
    {
        d.line = Some(*line);
        d.field = Some(path.clone());
        d.message = "invalid YAML: the key is repeated; each key may appear once in a mapping".into();
    }
    d
}

/// One document as read: its JSON value (`None`: an empty document) or what JSON cannot hold
/// in it (the field and why); or the YAML error.
type Converted = Result<Option<Result<serde_json::Value, (String, String)>>, serde_yaml::Error>;

/// Each document's value, up to and including the first syntax error: libyaml cannot resume
/// after one, so the rest of the stream is lost. A large text is read in two halves, one per
/// core, split at a `---` line: libyaml ends every scalar there (a block scalar's lines are
/// indented; a plain one stops; a quoted one or a flow collection is an error), so each half
/// holds whole documents. When either half has an error, the whole text is read again: the
/// errors, their lines and what the stream loses are then those of one reading.
fn values(text: &str) -> Vec<Converted> {
    if let Some(at) = split_point(text) {
        let (first, second) = text.split_at(at);
        let (mut read, rest) = std::thread::scope(|s| {
            let rest = s.spawn(|| values_of(second));
            (values_of(first), rest.join().expect("reading YAML does not panic"))
        });
        if read.iter().chain(&rest).all(Result::is_ok) {
            read.extend(rest);
            return read;
        }
    }
    values_of(text)
}

/// Below this size a text is read on one thread: a thread costs more than it saves.
const PARALLEL_ABOVE_BYTES: usize = 64 * 1024;

/// Where the second half starts: the first `---` line from the middle on. None for a small
/// text, or one with directives (`%YAML`, `%TAG`), which belong to the document after them.
fn split_point(text: &str) -> Option<usize> {
    if text.len() < PARALLEL_ABOVE_BYTES || text.starts_with('%') || text.contains("\n%") {
        return None;
    }
    let middle = (text.len() / 2..text.len()).find(|&i| text.is_char_boundary(i))?;
    text.get(middle..)?.match_indices("\n---").find_map(|(i, _)| {
        let at = middle.checked_add(i)?.checked_add(1)?;
        let after = text.get(at..)?.strip_prefix("---")?;
        (after.is_empty() || after.starts_with([' ', '\t', '\r', '\n'])).then_some(at)
    })
}

/// [`values`] on one thread. Each document is made JSON as it is read, so that no more than one
/// document's YAML value is held at a time.
fn values_of(text: &str) -> Vec<Converted> {
    let mut values = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(de).map(|v| (!v.is_null()).then(|| to_json(&v, "")));
        let fatal = value.as_ref().is_err_and(|e| e.location().is_some());
        values.push(value);
        if fatal {
            break;
        }
    }
    values
}

/// serde_yaml appends " at line L column C" to its messages; the line is reported separately.
fn yaml_message(e: &serde_yaml::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// JSON is what Kubernetes stores: mapping keys must be strings and tags mean nothing to it.
/// `Err((field path, message))`.
fn to_json(v: &serde_yaml::Value, path: &str) -> Result<serde_json::Value, (String, String)> {
    use serde_yaml::Value as Y;
    Ok(match v {
        Y::Null => serde_json::Value::Null,
        Y::Bool(b) => (*b).into(),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| {
                        (
                            path.to_string(),
                            format!("the number {n} cannot be represented in JSON"),
                        )
                    })?
            }
        }
        Y::String(s) => s.clone().into(),
        Y::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| to_json(v, &item(path, i)))
            .collect::<Result<Vec<_>, _>>()?
            .into(),
        Y::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s.clone(),
                    other => {
                        return Err((
                            path.to_string(),
                            format!(
                                "mapping keys must be strings, found {}",
                                serde_json::to_string(&to_json(other, path)?).unwrap_or_default()
                            ),
                        ));
                    }
                };
                let value = to_json(v, &child(path, &key))?;
                out.insert(key, value);
            }
            serde_json::Value::Object(out)
        }
        Y::Tagged(t) => {
            return Err((
                path.to_string(),
                format!("YAML tags are not supported (found {})", t.tag),
            ));
        }
    })
}

/// Per document, from the YAML events (which need no alias expanded and no value built): its
/// first line, the line of every field path, repeated keys with the line of their second
/// occurrence, and the scalars that name its object.
#[derive(Debug, Default)]
struct LineIndex {
    line: usize,
    lines: HashMap<String, usize>,
    repeated: Vec<(String, usize)>,
    /// `kind`, `metadata.namespace`, `metadata.name`, as written.
    names: [Option<String>; 3],
}

impl LineIndex {
    /// `Kind namespace/name`, as validation labels objects, once the kind is known.
    fn object(&self) -> Option<String> {
        let [kind, namespace, name] = &self.names;
        Some(format!(
            "{} {}/{}",
            kind.as_ref()?,
            namespace.as_deref().unwrap_or(crate::model::DEFAULT_NAMESPACE),
            name.as_deref().unwrap_or("<unnamed>")
        ))
    }

    /// The outermost field that starts on `line`, or else the last one before it.
    fn field_at(&self, line: usize) -> Option<String> {
        self.lines
            .iter()
            .filter(|(_, l)| **l <= line)
            .max_by(|(p, l), (q, m)| l.cmp(m).then(q.len().cmp(&p.len())).then(q.cmp(p)))
            .map(|(p, _)| p.clone())
    }
}

/// The index of every document; when the events stop at a syntax error, the documents up to it,
/// the last one as far as it was read.
fn index_lines(text: &str) -> Vec<LineIndex> {
    enum Frame {
        Map { path: String, key: Option<String> },
        Seq { path: String, next: usize },
    }
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut doc = LineIndex {
        line: 1,
        ..LineIndex::default()
    };
    // The path of the node about to start, recording its line; advances the parent frame.
    fn enter(stack: &mut [Frame], lines: &mut HashMap<String, usize>, line: usize) -> Option<String> {
        match stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) => {
                    let p = child(path, &k);
                    lines.entry(p.clone()).or_insert(line);
                    Some(p)
                }
                None => None, // this node is a key
            },
            Some(Frame::Seq { path, next }) => {
                let p = item(path, *next);
                *next = next.saturating_add(1);
                lines.insert(p.clone(), line);
                Some(p)
            }
        }
    }
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            docs.push(doc);
            return docs;
        };
        let line = span.start.line();
        match event {
            Event::DocumentStart(_) => {
                doc = LineIndex {
                    line,
                    ..LineIndex::default()
                };
            }
            Event::DocumentEnd => docs.push(std::mem::take(&mut doc)),
            Event::Scalar(value, ..) => match enter(&mut stack, &mut doc.lines, line) {
                Some(path) => {
                    if let Some(i) = ["kind", "metadata.namespace", "metadata.name"]
                        .iter()
                        .position(|p| *p == path)
                    {
                        doc.names[i] = Some(value.into_owned());
                    }
                }
                None => {
                    if let Some(Frame::Map { path, key }) = stack.last_mut() {
                        let p = child(path, &value);
                        if doc.lines.insert(p.clone(), line).is_some() {
                            doc.repeated.push((p, line));
                        }
                        *key = Some(value.into_owned());
                    }
                }
            },
            Event::Alias(_) => {
                enter(&mut stack, &mut doc.lines, line);
            }
            Event::MappingStart(..) => {
                let path = enter(&mut stack, &mut doc.lines, line).unwrap_or_default();
                stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = enter(&mut stack, &mut doc.lines, line).unwrap_or_default();
                stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    docs
}

#[cfg(test)]
mod tests;
