//! `sinch-operator validate`: the offline rules, no network.

use super::{InputArgs, exit};
use crate::model::Kind;
use std::io::Write;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
}

pub fn exec(args: Args) -> crate::Result<u8> {
    let input = crate::validate::load(&args.input.filename).map_err(crate::Error::Invalid)?;
    let counts: Vec<String> = Kind::ALL
        .into_iter()
        .filter_map(|kind| {
            let n = input.manifests.iter().filter(|m| m.object.kind() == kind).count();
            (n > 0).then(|| format!("{n} {kind}"))
        })
        .collect();
    let n = input.manifests.len();
    writeln!(
        std::io::stdout(),
        "valid: {n} object{} ({})",
        if n == 1 { "" } else { "s" },
        counts.join(", ")
    )
    .map_err(crate::Error::Output)?;
    Ok(exit::OK)
}
