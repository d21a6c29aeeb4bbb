//! `sinch-operator apply`: plans, asks (or takes `--auto-approve`), and carries the plan out; or
//! `apply PLANFILE`: carries out exactly a saved plan, refusing one that is stale.

use super::{InputArgs, SecretArgs, connection, exit};
use crate::engine::execute::{self, Fate};
use crate::engine::plan::{Action, Change, Plan};
use crate::render;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(mut_arg("filename", |a| a.required(false).required_unless_present("plan_file")))]
pub struct Args {
    /// A plan saved by `plan --out`: apply exactly it. Refused when what it was planned from
    /// changed since, in Sinch or in the input (its Secrets fill the plan's placeholders).
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub secrets: SecretArgs,
    #[command(flatten)]
    pub connection: connection::ConnectionArgs,
    /// Apply without asking.
    #[arg(long)]
    pub auto_approve: bool,
    /// Also delete what no manifest declares, in the (project, region) scopes the input
    /// touches: webhooks of declared apps, templates, apps.
    #[arg(long, conflicts_with = "plan_file")]
    pub prune: bool,
}

pub fn exec(args: Args) -> crate::Result<u8> {
    let saved = match &args.plan_file {
        Some(path) => Some(read_plan(path)?),
        None => None,
    };
    let input = InputArgs {
        filename: match (&saved, args.input.filename.is_empty()) {
            (Some(saved), true) => saved.saved.inputs.iter().map(PathBuf::from).collect(),
            _ => args.input.filename.clone(),
        },
    };
    let secrets = SecretArgs {
        secrets_from_cluster: saved
            .as_ref()
            .map_or(args.secrets.secrets_from_cluster, |p| p.saved.secrets_from_cluster),
    };
    // Bad input is reported before anything else.
    let mut manifests = crate::validate::load(&input.filename).map_err(crate::Error::Invalid)?;
    // A saved plan was approved when it was saved; otherwise ask before reading anything.
    let ask = saved.is_none() && !args.auto_approve;
    if ask && !std::io::stdin().is_terminal() {
        return Err(crate::Error::Config {
            var: "--auto-approve",
            message: "not given, and standard input is not a terminal to ask on".into(),
        });
    }
    let prune = saved.as_ref().map_or(args.prune, |p| p.saved.prune);
    let nonce = saved.as_ref().map(|p| p.saved.nonce.clone());
    let runtime = super::runtime()?;
    runtime.block_on(async {
        super::plan::cluster_secrets(&mut manifests, &secrets).await?;
        let connection = connection::connect(&args.connection, |v| std::env::var(v).ok()).await?;
        let options = super::plan::options(&input, &secrets, prune, nonce, &connection.credentials);
        let result = run(&manifests, &connection, &options, saved, ask).await;
        connection.close().await;
        result
    })
}

async fn run(
    manifests: &crate::validate::Input,
    connection: &connection::Connection,
    options: &crate::engine::plan::Options,
    saved: Option<Plan>,
    ask: bool,
) -> crate::Result<u8> {
    let fresh = super::plan::make(manifests, connection, options).await?;
    let out = &mut std::io::stdout();
    let plan = match saved {
        Some(saved) => {
            let stale = crate::engine::plan::stale(&saved, &fresh);
            if !stale.is_empty() {
                let mut message = String::from("the saved plan is stale, nothing was applied:");
                for line in stale {
                    message.push_str(&format!("\n  {line}"));
                }
                message.push_str("\nrun `sinch-operator plan` again");
                return Err(crate::Error::SavedPlan(message));
            }
            saved
        }
        None => fresh,
    };
    let known = super::plan::known(manifests, connection);
    write(out, &known.scrub(&render::text::render(&plan, super::plan::colour())))?;
    if !plan.has_changes() {
        return Ok(if plan.errors.is_empty() { exit::OK } else { exit::ERROR });
    }
    if ask && !confirm()? {
        write(out, "Apply cancelled; nothing was sent.\n")?;
        return Ok(exit::ERROR);
    }
    let todo = plan.changes.iter().filter(|c| c.action != Action::Noop).count() as u64;
    let bar = indicatif::ProgressBar::with_draw_target(Some(todo), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} changes {elapsed}").expect("a valid template"),
    );
    let report = |c: &Change, s: &Fate| {
        if *s == Fate::Unchanged {
            return;
        }
        bar.inc(1);
        bar.suspend(|| {
            let _ = writeln!(std::io::stdout(), "{}", outcome_line(c, s));
        });
    };
    let outcomes = execute::execute(
        &plan,
        &options.salt,
        &connection.client,
        &connection.credentials,
        &manifests.secrets,
        &report,
    )
    .await;
    bar.finish_and_clear();
    let count =
        |f: &dyn Fn(&Change, &Fate) -> bool| outcomes.iter().filter(|o| f(&plan.changes[o.index], &o.status)).count();
    let done = |a: Action| move |c: &Change, s: &Fate| c.action == a && matches!(s, Fate::Done { .. });
    let failed = count(&|_, s| matches!(s, Fate::Failed { .. } | Fate::Skipped(_)));
    let summary = format!(
        "{} created, {} updated, {} deleted, {} failed",
        count(&done(Action::Create)),
        count(&done(Action::Update)),
        count(&done(Action::Delete)),
        failed
    );
    let ok = failed == 0 && plan.errors.is_empty();
    write(
        out,
        &match ok {
            true => format!("\nApply complete: {summary}.\n"),
            false => format!(
                "\nApply finished with errors: {summary}{}.\n",
                match plan.errors.len() {
                    0 => String::new(),
                    n => format!(", {n} not planned"),
                }
            ),
        },
    )?;
    Ok(if ok { exit::OK } else { exit::ERROR })
}

fn outcome_line(c: &Change, s: &Fate) -> String {
    let verb = match c.action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Delete => "deleted",
        Action::Noop => "unchanged",
    };
    match s {
        Fate::Done { id, note, .. } => {
            let id = id.as_ref().map(|id| format!(" ({id})")).unwrap_or_default();
            let note = note.as_ref().map(|n| format!(": {n}")).unwrap_or_default();
            format!("{verb} {}{id}{note}", c.label())
        }
        Fate::Failed { message, .. } => format!("failed {}: {message}", c.label()),
        Fate::Skipped(why) => format!("skipped {}: {why}", c.label()),
        Fate::Unchanged => format!("unchanged {}", c.label()),
    }
}

fn confirm() -> crate::Result<bool> {
    let out = &mut std::io::stdout();
    write(out, "Apply these changes to Sinch? Only 'yes' is accepted: ")?;
    out.flush().map_err(crate::Error::Output)?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|source| crate::Error::Io {
            context: "cannot read the answer".into(),
            source,
        })?;
    Ok(answer.trim() == "yes")
}

fn write(out: &mut impl Write, text: &str) -> crate::Result<()> {
    out.write_all(text.as_bytes()).map_err(crate::Error::Output)
}

fn read_plan(path: &PathBuf) -> crate::Result<Plan> {
    let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
        context: format!("cannot read the plan {}", path.display()),
        source,
    })?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| {
        crate::Error::SavedPlan(format!(
            "{} is not a plan saved by `sinch-operator plan --out`: {e}",
            path.display()
        ))
    })?;
    if plan.format_version != crate::engine::plan::FORMAT_VERSION {
        return Err(crate::Error::SavedPlan(format!(
            "{} has plan format {}; this sinch-operator reads format {}",
            path.display(),
            plan.format_version,
            crate::engine::plan::FORMAT_VERSION
        )));
    }
    Ok(plan)
}
