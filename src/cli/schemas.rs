//! `sinch-operator schemas`: one JSON Schema per kind, for editors and kubeconform.

use super::exit;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The directory to write into (as `conversation.sinch.com/<kind>_v1alpha1.json`); created
    /// when missing, files of the same names replaced.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn exec(args: Args) -> crate::Result<u8> {
    for (path, schema) in crate::model::json_schemas() {
        let file = args.out.join(path);
        let io = |source| crate::Error::Io {
            context: format!("cannot write {}", file.display()),
            source,
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
        text.push('\n');
        std::fs::write(&file, text).map_err(io)?;
    }
    Ok(exit::OK)
}
