//! `sinch-operator import`: writes manifests for what a project already has in Sinch, so that
//! adopting the tool starts from the truth. `plan` on the result shows no changes.

use super::{connection, exit};
use crate::engine::import::{self, RegionLive};
use crate::model::{Kind, Region};
use crate::sinch::client::Project;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A region to import (repeatable).
    #[arg(long, value_name = "REGION", required = true)]
    pub region: Vec<Region>,
    /// The directory to write manifests into (created; existing files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub connection: connection::ConnectionArgs,
}

/// Everything one region of the project holds, with list calls.
async fn read(p: &Project) -> crate::Result<RegionLive> {
    let failed = |source| crate::Error::Sinch {
        context: "nothing was written".into(),
        source: Box::new(source),
    };
    let (apps, templates, settings) = tokio::join!(p.list_apps(), p.list_templates(), p.get_settings());
    let apps = apps.map_err(failed)?;
    let webhooks = futures_util::future::join_all(
        apps.iter()
            .map(|a| p.list_webhooks(a.id.as_deref().unwrap_or_default())),
    )
    .await;
    let mut pairs = Vec::new();
    for (app, hooks) in apps.into_iter().zip(webhooks) {
        pairs.push((app, hooks.map_err(failed)?));
    }
    Ok(RegionLive {
        apps: pairs,
        templates: templates.map_err(failed)?,
        settings: settings.map_err(failed)?,
    })
}

pub fn exec(args: Args) -> crate::Result<u8> {
    let runtime = super::runtime()?;
    let regions = runtime.block_on(async {
        let connection = connection::connect(&args.connection, |v| std::env::var(v).ok()).await?;
        let project = connection.defaults.project.clone().ok_or(crate::Error::Config {
            var: connection::PROJECT_VAR,
            message: "not set: the project to import".into(),
        })?;
        let mut regions = Vec::new();
        for region in &args.region {
            let p = connection
                .client
                .project(&project, *region, connection.credentials.clone());
            regions.push((*region, read(&p).await));
        }
        connection.close().await;
        regions
            .into_iter()
            .map(|(r, live)| live.map(|l| (r, l)))
            .collect::<crate::Result<Vec<_>>>()
    })?;
    // Settings are one per project: import them once, from the first region that has them.
    let mut regions = regions;
    let mut seen = false;
    for (_, live) in regions.iter_mut() {
        if seen {
            live.settings = None;
        }
        seen |= live.settings.is_some();
    }
    let imported = import::manifests(&regions);
    write_all(&args.out, &imported)?;
    let n = |k: Kind| imported.counts.get(&k).copied().unwrap_or(0);
    println!(
        "imported {} ConversationApp, {} Webhook, {} Template, {} ProjectSettings into {}",
        n(Kind::ConversationApp),
        n(Kind::Webhook),
        n(Kind::Template),
        n(Kind::ProjectSettings),
        args.out.display()
    );
    if !imported.secrets.is_empty() {
        println!(
            "secret values are not imported: provide the {} Secret(s) listed in {}",
            imported.secrets.len(),
            args.out.join(SECRETS_FILE).display()
        );
    }
    for s in &imported.skipped {
        eprintln!("warning: not imported: {s}");
    }
    Ok(if imported.skipped.is_empty() {
        exit::OK
    } else {
        exit::ERROR
    })
}

/// Where the commented-out Secret template goes (`.yaml` so it sits with the manifests; all
/// comments, so it supplies nothing until a person fills it in).
const SECRETS_FILE: &str = "secrets.example.yaml";

fn write_all(dir: &Path, imported: &import::Imported) -> crate::Result<()> {
    let mut files: Vec<(PathBuf, &str)> = imported
        .files
        .iter()
        .map(|f| (dir.join(&f.path), f.yaml.as_str()))
        .collect();
    let secrets = import::secrets_template(&imported.secrets);
    if !imported.secrets.is_empty() {
        files.push((dir.join(SECRETS_FILE), &secrets));
    }
    if let Some((path, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(crate::Error::WouldOverwrite(path.clone()));
    }
    for (path, text) in files {
        let io = |source| crate::Error::Io {
            context: format!("cannot write {}", path.display()),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, text).map_err(io)?;
    }
    Ok(())
}
