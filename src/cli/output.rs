//! `iamplan output`: the plan's outputs, read from live IAM without changing anything
//! (`iamplan output plans/ably-lambda role_arn --raw | pbcopy`).

use super::{Common, EXIT_OK, read_stack};
use crate::plan::Style;
use anyhow::{Result, bail};
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct OutputArgs {
    pub files: Vec<PathBuf>,
    /// One output, by name.
    pub name: Option<String>,
    pub common: Common,
    pub json: bool,
    /// The value alone, without quotes or a newline (for pipes).
    pub raw: bool,
}

/// The last argument names an output when it is not a file or directory and more than
/// one argument is given.
pub fn split_name(mut args: Vec<PathBuf>) -> (Vec<PathBuf>, Option<String>) {
    if args.len() > 1
        && let Some(last) = args.last()
        && !last.exists()
        && last.components().count() == 1
    {
        let name = args.pop().map(|p| p.to_string_lossy().into_owned());
        return (args, name);
    }
    (args, None)
}

pub async fn run(args: OutputArgs) -> Result<i32> {
    if args.raw && args.name.is_none() {
        bail!(
            "--raw prints one output: name it, e.g. `iamplan output plans/ably-lambda role_arn --raw`"
        );
    }
    let (desired, _session, live) = read_stack(&args.files, &args.common).await?;
    let outputs: Vec<&crate::output::Output> = match &args.name {
        None => desired.outputs.iter().collect(),
        Some(n) => match desired.outputs.iter().find(|o| o.name == *n) {
            Some(o) => vec![o],
            None => {
                let names: Vec<&str> = desired.outputs.iter().map(|o| o.name.as_str()).collect();
                match crate::spec::nearest(n, names.iter().copied()) {
                    Some(near) => bail!("no output \"{n}\" in the plan; did you mean \"{near}\"?"),
                    None if names.is_empty() => {
                        bail!("the plan declares no outputs ([output.NAME] with a value)")
                    }
                    None => bail!(
                        "no output \"{n}\" in the plan; it has: {}",
                        names.join(", ")
                    ),
                }
            }
        },
    };
    let mut values = Vec::new();
    for o in outputs {
        values.push((o, o.live(&live)?));
    }
    if args.raw {
        if let Some((_, v)) = values.first() {
            out!("{v}");
        }
        return Ok(EXIT_OK);
    }
    if args.json {
        // Terraform's `output -json` shape: sensitive values included, marked.
        let map: serde_json::Map<String, serde_json::Value> = values
            .iter()
            .map(|(o, v)| {
                let entry =
                    serde_json::json!({"sensitive": o.sensitive, "type": "string", "value": v});
                (o.name.clone(), entry)
            })
            .collect();
        let shown = match &args.name {
            Some(_) => map
                .into_iter()
                .next()
                .map(|(_, v)| v["value"].clone())
                .unwrap_or_default(),
            None => serde_json::Value::Object(map),
        };
        outln!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(EXIT_OK);
    }
    let _ = Style::detect();
    for (o, v) in values {
        // All outputs at once hide sensitive ones; one named output shows its value.
        let text = if o.sensitive && args.name.is_none() {
            "<sensitive>".to_string()
        } else {
            serde_json::Value::from(v).to_string()
        };
        match &args.name {
            Some(_) => outln!("{text}"),
            None => outln!("{} = {text}", o.name),
        }
    }
    Ok(EXIT_OK)
}
