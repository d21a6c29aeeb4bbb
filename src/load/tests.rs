use super::*;

fn parse(text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    let (mut docs, mut errors) = (Vec::new(), Vec::new());
    parse_bytes("t.yaml", text.as_bytes(), &mut docs, &mut errors);
    (docs, errors)
}

#[test]
fn every_field_knows_its_line_across_documents() {
    let text = "\
# comment
a: 1
---
kind: X
spec:
  list:
    - name: first
    - name: second
      inner: {flow: true}
  'quoted.key': v
---
";
    let (docs, errors) = parse(text);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(docs.len(), 2, "the trailing empty document is skipped");
    assert_eq!((docs[0].source.line(), docs[0].source.origin.document), (2, 1));
    let d = &docs[1].source;
    assert_eq!((d.line(), d.origin.document), (3, 2));
    assert_eq!(d.line_of("kind"), 4);
    assert_eq!(d.line_of("spec.list[0]"), 7);
    assert_eq!(d.line_of("spec.list[1].name"), 8);
    assert_eq!(d.line_of("spec.list[1].inner.flow"), 9);
    assert_eq!(d.line_of("spec[\"quoted.key\"]"), 10);
    // A missing field points at the nearest field that exists.
    assert_eq!(d.line_of("spec.list[1].missing"), 8);
    assert_eq!(d.line_of("nothing.here"), 3);
}

#[test]
fn lines_are_indexed_only_when_asked_and_then_once_per_file() {
    let doc = |i: usize| format!("kind: X\nmetadata:\n  name: n{i}\nspec:\n  list:\n    - a: {i}\n");
    let large: String = (0..2_000).map(doc).collect::<Vec<_>>().join("---\n");
    let (docs, errors) = parse(&large);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(docs.len(), 2_000);
    let text = docs[0].source.text.clone().unwrap();
    assert!(text.index.get().is_none(), "valid input is parsed once");
    assert!(docs.iter().all(|d| Arc::ptr_eq(d.source.text.as_ref().unwrap(), &text)));
    let last = &docs[1_999].source;
    // A document starts at its `---`.
    assert_eq!((last.line(), last.origin.document), (1_999 * 7, 2_000));
    assert_eq!(
        text.index.get().map(Vec::len),
        Some(2_000),
        "one index for the whole file"
    );
    assert_eq!(last.line_of("spec.list[0].a"), 1_999 * 7 + 6);
    assert_eq!(docs[1_999].value["spec"]["list"][0]["a"], 1_999);
    // A syntax error loses the rest of the stream, with its line and the object it was in.
    let broken = format!("{large}---\nkind: X\nmetadata: {{name: bad\n---\n{}", doc(1));
    let (docs, errors) = parse(&broken);
    assert_eq!(docs.len(), 2_000);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].document, errors[0].line), (Some(2_001), Some(2_000 * 7 + 3)));
}

/// Each document as read, comparable: its JSON, what JSON cannot hold, or the YAML error.
fn read(text: &str, whole: bool) -> Vec<String> {
    let read = if whole { values_of(text) } else { values(text) };
    read.iter()
        .map(|r| match r {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("error: {e} ({:?})", e.location().map(|l| (l.line(), l.column()))),
        })
        .collect()
}

#[test]
fn a_large_text_read_in_halves_reads_as_one_reading() {
    // Documents whose scalars and collections cross lines, around every `---`.
    let tricky = "\
---
kind: X
metadata: {name: a}
spec:
  literal: |
    ---
    not a marker: indented
  folded: >-
    plain
    ---
  plain: first
    continued
  quoted: 'one
    two'
  list: [1,
    2]
---
--- # an empty document above
kind: Y
spec: {emoji: \"\u{e9}\u{1f600}\"}
...
---\r
crlf: true\r
";
    let large = tricky.repeat(400);
    assert!(split_point(&large).is_some());
    let whole = read(&large, true);
    assert_eq!(read(&large, false), whole);
    assert_eq!(whole.len(), 1_600);
    // An error in either half: the same errors, lines and loss as one reading.
    for at in [large.len() / 4, large.len() * 3 / 4] {
        let line = large[at..].find("\nkind: Y").unwrap() + at + 1;
        let broken = format!("{}kind: [unclosed\n{}", &large[..line], &large[line..]);
        let whole = read(&broken, true);
        assert!(whole.last().unwrap().starts_with("error: "), "{:?}", whole.last());
        assert_eq!(read(&broken, false), whole);
    }
    // A `---` inside a quoted scalar or a flow collection: libyaml refuses it either way.
    for open in ["q: 'open\n", "f: [open,\n"] {
        let at = large.len() / 2 - 1;
        let line = large[..at].rfind('\n').unwrap() + 1;
        let broken = format!("{}{open}{}", &large[..line], &large[line..]);
        assert_eq!(read(&broken, false), read(&broken, true));
    }
    // Directives belong to the document after them: such a text is read whole.
    assert_eq!(split_point(&format!("%YAML 1.2\n---\n{large}")), None);
}

#[test]
fn yaml_that_json_cannot_hold_is_refused_with_a_reason() {
    let (_, errors) = parse("a: !custom 1\n");
    assert_eq!(errors[0].message, "YAML tags are not supported (found !custom)");
    let (_, errors) = parse("? [1, 2]\n: v\n");
    assert!(
        errors[0].message.starts_with("mapping keys must be strings"),
        "{errors:?}"
    );
    let (_, errors) = parse("a: 1\na: 2\n");
    assert_eq!(
        errors[0].to_string(),
        "t.yaml:2 (document 1): a: invalid YAML: the key is repeated; each key may appear once in a mapping"
    );
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![b'#'; MAX_INPUT_BYTES + 1];
    let (mut docs, mut errors) = (Vec::new(), Vec::new());
    parse_bytes("big.yaml", &big, &mut docs, &mut errors);
    assert_eq!(
        errors[0].to_string(),
        "big.yaml: larger than 16 MiB; refusing to parse it"
    );
}

#[test]
fn directories_are_walked_sorted_skipping_hidden_ignored_and_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for f in [
        "b.yaml",
        "a/z.yml",
        "a/notes.txt",
        ".hidden/x.yaml",
        "skip/y.yaml",
        "a/skipped.yaml",
    ] {
        std::fs::create_dir_all(p.join(f).parent().unwrap()).unwrap();
        std::fs::write(p.join(f), "k: v\n").unwrap();
    }
    std::fs::write(p.join(IGNORE_FILE), "skip/\n*skipped*\n").unwrap();
    let mut errors = Vec::new();
    let files: Vec<String> = yaml_files_below(p, &mut errors)
        .iter()
        .map(|f| f.strip_prefix(p).unwrap().display().to_string())
        .collect();
    assert_eq!(files, ["a/z.yml", "b.yaml"]);
    assert!(errors.is_empty());
}
