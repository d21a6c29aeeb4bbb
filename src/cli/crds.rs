//! `sinch-operator crds`: the CustomResourceDefinitions, generated from the Rust types.

use super::exit;
use std::io::Write;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn exec(_: Args) -> crate::Result<u8> {
    std::io::stdout()
        .write_all(crate::model::crds_yaml().as_bytes())
        .map_err(crate::Error::Output)?;
    Ok(exit::OK)
}
