//! One plan file's TOML -> its schema, section by section: a mistake in one resource's
//! table is reported and the other resources are still read, so that one run shows every
//! mistake of the file (serde alone stops at the first).

use super::error::{SpecError, nearest};
use super::schema::FileSpec;
use serde::de::{DeserializeOwned, IntoDeserializer};
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The top-level tables a plan file may have.
const SECTIONS: [&str; 9] = [
    "stack",
    "variables",
    "accounts",
    "policy",
    "group",
    "role",
    "user",
    "output",
    "smoke",
];

/// A file's schema as far as it could be read, and its errors. `None`: the TOML itself
/// is broken, so nothing of the file can be trusted.
pub fn parse(path: &Path, source: &str) -> (Option<FileSpec>, Vec<SpecError>) {
    let (table, syntax) = DeTable::parse_recoverable(source);
    let mut errors = Errors {
        path,
        source,
        found: Vec::new(),
    };
    if !syntax.is_empty() {
        syntax.into_iter().for_each(|e| errors.toml(e));
        return (None, errors.found);
    }
    let mut spec = FileSpec::default();
    let e = &mut errors;
    for (key, value) in table.into_inner() {
        let section = key.get_ref().to_string();
        match section.as_str() {
            "stack" => {
                spec.stack = e.ok(whole(value));
                if spec.stack.is_none() {
                    spec.unreadable
                        .push((section, Spanned::new(key.span(), String::new())));
                }
            }
            "variables" => spec.variables = e.ok(whole(value)).unwrap_or_default(),
            "accounts" => spec.accounts = entries(value, "accounts", e, &mut spec.unreadable),
            "policy" => spec.policy = entries(value, "policy", e, &mut spec.unreadable),
            "group" => spec.group = entries(value, "group", e, &mut spec.unreadable),
            "role" => spec.role = entries(value, "role", e, &mut spec.unreadable),
            "user" => spec.user = entries(value, "user", e, &mut spec.unreadable),
            "output" => spec.output = entries(value, "output", e, &mut spec.unreadable),
            "smoke" => spec.smoke = entries(value, "smoke", e, &mut spec.unreadable),
            other => {
                let help = match nearest(other, SECTIONS) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None => format!("a plan file's tables are {}", SECTIONS.join(", ")),
                };
                e.found.push(
                    SpecError::at(
                        path,
                        source,
                        Some(key.span()),
                        format!("unknown table `{other}`"),
                    )
                    .with_help(help),
                );
            }
        }
    }
    (Some(spec), errors.found)
}

/// The errors of one file so far.
struct Errors<'a> {
    path: &'a Path,
    source: &'a str,
    found: Vec<SpecError>,
}

impl Errors<'_> {
    fn toml(&mut self, e: toml::de::Error) {
        let msg = plain_message(e.message().trim());
        let mut err = SpecError::at(self.path, self.source, e.span(), msg.clone());
        if let Some(help) = unknown_field_help(&msg) {
            err = err.with_help(help);
        }
        self.found.push(err);
    }

    fn ok<T>(&mut self, r: Result<T, toml::de::Error>) -> Option<T> {
        r.map_err(|e| self.toml(e)).ok()
    }
}

fn whole<T: DeserializeOwned>(value: Spanned<DeValue<'_>>) -> Result<T, toml::de::Error> {
    T::deserialize(value.into_deserializer())
}

/// A table of named entries (`[role.NAME]`...), each read on its own; the names of those
/// that cannot be read are kept in `unreadable`.
fn entries<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    section: &str,
    errors: &mut Errors,
    unreadable: &mut Vec<(String, Spanned<String>)>,
) -> BTreeMap<Spanned<String>, Spanned<T>> {
    let mut out = BTreeMap::new();
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        errors.found.push(SpecError::at(
            errors.path,
            errors.source,
            Some(span),
            "expected a table of named entries, e.g. [role.NAME]",
        ));
        return out;
    };
    for (name, entry) in table {
        let name = Spanned::new(name.span(), name.into_inner().into_owned());
        match errors.ok(whole::<Spanned<T>>(entry)) {
            Some(v) => {
                out.insert(name, v);
            }
            None => unreadable.push((section.to_string(), name)),
        }
    }
    out
}

/// serde's messages in the user's words: never an internal type name.
fn plain_message(msg: &str) -> String {
    if msg.contains("untagged enum") || msg.contains("internally tagged enum") {
        // Only the shape is known here; the types say what they expect in their own
        // Deserialize where it matters.
        return "this value has the wrong shape here".into();
    }
    msg.to_string()
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" into a suggestion.
pub fn unknown_field_help(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (field, expected) = rest.split_once('`')?;
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match nearest(field, names.iter().copied()) {
        Some(n) => Some(format!("did you mean `{n}`?")),
        None => Some(format!("valid keys here: {}", names.join(", "))),
    }
}
