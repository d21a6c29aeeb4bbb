//! `sinch-operator validate` and `crds`, run as a user runs them: exact output, exact exit codes.

mod common;

use common::{Connection, root, text, walk};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

fn run(args: &[&str]) -> Output {
    common::binary(args).output().expect("the binary runs")
}

#[test]
fn the_examples_are_valid() {
    let out = run(&["validate", "-f", "examples/"]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        "valid: 10 objects (2 ConversationApp, 5 Webhook, 2 Template, 1 ProjectSettings)\n"
    );
    assert_eq!(out.status.code(), Some(0));
}

const EXPECT: &str = "# expect: ";

/// Every file in `examples/invalid/` starts with `# expect: ` lines: exactly what validating it
/// alone must print on stderr. All mismatches are reported together. `UPDATE_EXPECT=1` rewrites
/// the headers from the actual output instead (review the diff before committing it).
#[test]
fn every_invalid_example_gives_its_exact_errors() {
    let dir = root().join("examples/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "only {} invalid examples", files.len());
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(root()).unwrap().to_str().unwrap().to_string();
        if update {
            rewrite_expectation(file, &rel);
        }
        let bytes = std::fs::read(file).unwrap();
        let expected = text_of_header(&bytes);
        assert!(!expected.is_empty(), "{rel} has no `{EXPECT}` header");
        let out = run(&["validate", "-f", &rel]);
        if out.status.code() != Some(1) || !out.stdout.is_empty() || text(&out.stderr) != expected {
            failures.push(format!(
                "{rel}: exit {:?}\n--- expected stderr\n{expected}--- actual stderr\n{}--- stdout\n{}",
                out.status.code(),
                text(&out.stderr),
                text(&out.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Who `plan` and `apply` connect as.
const CONNECTION: Connection = Connection {
    project: "p",
    key_id: "k",
    key_secret: "s",
};

/// `plan` and `apply` refuse every invalid example with the same errors as `validate`, before
/// any request to a project: the simulator they point at counts none but the access token
/// `plan` fetches while it reads the input (issue 28: the token arrives meanwhile).
#[tokio::test(flavor = "multi_thread")]
async fn plan_and_apply_send_nothing_for_any_invalid_input() {
    let sim = common::start(Default::default()).await;
    let huge = tempfile::tempdir().unwrap();
    let huge_file = huge.path().join("huge.yaml");
    let mut yaml = String::from("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n");
    while yaml.len() <= sinch_operator::load::MAX_INPUT_BYTES {
        yaml.push_str(&format!("  k{}: {}\n", yaml.len(), "x".repeat(1000)));
    }
    std::fs::write(&huge_file, yaml).unwrap();
    let mut inputs: Vec<(String, String)> = vec![(
        huge_file.to_str().unwrap().to_string(),
        format!(
            "error: {}: larger than 16 MiB; refusing to parse it\n1 error in 1 file; nothing was sent to Sinch\n",
            huge_file.display()
        ),
    )];
    for entry in std::fs::read_dir(root().join("examples/invalid")).unwrap() {
        let rel = format!("examples/invalid/{}", entry.unwrap().file_name().to_str().unwrap());
        let expected = text_of_header(&std::fs::read(root().join(&rel)).unwrap());
        inputs.push((rel, expected));
    }
    assert!(inputs.len() >= 60, "{}", inputs.len());
    let mut failures = Vec::new();
    for (file, expected) in &inputs {
        for command in [&["plan", "-f"][..], &["apply", "--auto-approve", "-f"][..]] {
            let mut cmd = common::command(&sim, &CONNECTION, command);
            cmd.arg(file);
            let out = common::output(cmd).await;
            if out.status.code() != Some(1) || !out.stdout.is_empty() || text(&out.stderr) != *expected {
                failures.push(format!(
                    "{} {file}: exit {:?}\n{}{}",
                    command[0],
                    out.status.code(),
                    text(&out.stdout),
                    text(&out.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let stats = sim.stats();
    let tokens = stats.count("POST /oauth2/token");
    assert!(tokens <= inputs.len() as u64, "one token per plan at most: {stats:?}");
    assert_eq!(stats.total - tokens, 0, "nothing reached a project: {stats:?}");
}

fn text_of_header(bytes: &[u8]) -> String {
    text(bytes)
        .lines()
        .take_while(|l| l.starts_with(EXPECT))
        .map(|l| format!("{}\n", &l[EXPECT.len()..]))
        .collect()
}

/// The header shifts the lines the errors name, so it is written twice: first with as many
/// placeholder lines as the output has, then with the output that layout gives.
fn rewrite_expectation(file: &Path, rel: &str) {
    let bytes = std::fs::read(file).unwrap();
    let body_start = bytes
        .split_inclusive(|b| *b == b'\n')
        .take_while(|l| l.starts_with(EXPECT.as_bytes()))
        .map(<[u8]>::len)
        .sum::<usize>();
    let body = &bytes[body_start..];
    let header = |lines: &str| -> Vec<u8> {
        lines
            .lines()
            .flat_map(|l| format!("{EXPECT}{l}\n").into_bytes())
            .collect()
    };
    let mut layout = Vec::new();
    let mut stderr = String::from("x\n");
    for _ in 0..2 {
        let placeholder: String = stderr.lines().map(|_| "x\n").collect();
        layout.clear();
        layout.extend(header(&placeholder));
        layout.extend_from_slice(body);
        std::fs::write(file, &layout).unwrap();
        stderr = text(&run(&["validate", "-f", rel]).stderr);
    }
    let mut out = header(&stderr);
    out.extend_from_slice(body);
    std::fs::write(file, out).unwrap();
}

#[test]
fn all_errors_of_all_files_are_reported_together_in_reading_order() {
    let out = run(&[
        "validate",
        "-f",
        "examples/invalid/out-of-range.yaml",
        "-f",
        "examples/invalid/webhook-other-region.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 7, "{err}");
    assert!(
        lines[0].starts_with("error: examples/invalid/out-of-range.yaml:"),
        "{err}"
    );
    assert!(
        lines[4].starts_with("error: examples/invalid/webhook-other-region.yaml:"),
        "{err}"
    );
    assert_eq!(lines[6], "6 errors in 2 files; nothing was sent to Sinch");
}

#[test]
fn a_directory_given_explicitly_is_read_even_where_a_parent_ignores_it() {
    let out = run(&["validate", "-f", "examples/invalid"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("examples/invalid/webhook-six-for-one-app.yaml"));
}

fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = common::binary(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn standard_input_is_read_with_dash() {
    let manifest = std::fs::read(root().join("examples/project-settings.yaml")).unwrap();
    let out = run_with_stdin(&["validate", "-f", "-"], &manifest);
    assert_eq!(text(&out.stdout), "valid: 1 object (1 ProjectSettings)\n");
    assert_eq!(out.status.code(), Some(0));

    let out = run_with_stdin(&["validate", "-f", "-"], b"kind: [\n");
    assert_eq!(
        text(&out.stderr),
        "error: <stdin>:2 (document 1): kind: invalid YAML: did not find expected node content\n1 error in 1 file; nothing was sent to Sinch\n"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_missing_path_is_an_error_naming_it() {
    let out = run(&["validate", "-f", "examples/no-such-dir"]);
    assert_eq!(
        text(&out.stderr),
        "error: examples/no-such-dir: no such file or directory\n1 error in 1 file; nothing was sent to Sinch\n"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_1_not_2() {
    // 2 is reserved for `plan --detailed-exitcode` "changes pending".
    let out = run(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--filename <PATH>"), "{}", text(&out.stderr));
    assert_eq!(run(&["--help"]).status.code(), Some(0));
}

#[test]
fn a_region_flag_takes_only_the_three_regions_and_says_which() {
    let out = run(&["import", "--region", "xx", "--out", "unused"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .starts_with("error: invalid value 'xx' for '--region <REGION>'\n  [possible values: us, eu, br]\n"),
        "{}",
        text(&out.stderr)
    );
    assert!(!root().join("unused").exists(), "nothing was written");
}

#[test]
fn crds_dir_matches_what_the_types_generate() {
    let out = run(&["crds"]);
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string(root().join("crds/conversation.sinch.com.yaml")).unwrap();
    assert!(
        text(&out.stdout) == committed,
        "crds/ is stale: run `cargo run -- crds > crds/conversation.sinch.com.yaml` and commit it"
    );
}

#[test]
fn schemas_dir_matches_what_the_types_generate() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["schemas", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let committed = root().join("schemas");
    let files = |root: &Path| -> Vec<(String, String)> {
        let mut found: Vec<_> = walk(root)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .map(|p| {
                let name = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        found.sort();
        found
    };
    let generated = files(dir.path());
    let names: Vec<&str> = generated.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"conversation.sinch.com/conversationapp_v1alpha1.json"),
        "{names:?}"
    );
    assert!(
        generated == files(&committed),
        "schemas/ is stale: run `cargo run -- schemas --out schemas` and commit it"
    );
}
