//! `iamplan fmt`: one canonical layout for plan files, so that diffs between plans show
//! changes of meaning rather than of taste, and so that every comment survives.
//!
//! The layout:
//! - Sections come in the order a reader needs them: `stack`, `variables`, `accounts`,
//!   `policy`, `group`, `role`, `user`, `output`, `smoke`, then any other top-level table in
//!   the order it first appears (keys outside any table stay first: TOML has no other place
//!   for them). Within a section, resources (`[role.NAME]` and everything under `role.NAME`)
//!   keep their order, and a resource's sub-tables follow it in their own order.
//!   Array-of-tables elements are never reordered: their order is their meaning.
//! - One blank line before every table header, none at the start of the file or right after a
//!   header, at most one in a row anywhere, no indentation, no trailing whitespace, `\n` line
//!   ends, and exactly one newline at the end (an empty file stays empty).
//! - `key = value` and `a.b = value`, `[a.b]` headers without inner spaces. Values keep their
//!   text, including their quotes and the inside of multi-line strings (line ends and trailing
//!   spaces there are data), arrays and inline tables; only whitespace at the end of lines
//!   inside arrays and inline tables goes. The spaces before a trailing comment are kept,
//!   since they often align a column of comments.
//! - Comments go with what they describe. Comment lines above a header or key move with it,
//!   even with a blank line between them. The exception is a block that starts right under a
//!   table's last key and ends in a blank line: it stays at the end of that table (it is
//!   usually a note or a commented-out key). At the top of the file such a block is the
//!   file's header and stays first; at the bottom, what follows a blank line is the file's
//!   footer and stays last.

use std::collections::HashMap;
use std::ops::Range;

use toml_edit::{Decor, DocumentMut, Item, RawString, Table, Value};

/// The top-level sections, in the order `fmt` puts them.
const SECTIONS: &str = "stack variables accounts policy group role user output smoke";

/// Why a file could not be formatted: TOML syntax (the caller reports it with file:line:col).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FormatError {
    pub message: String,
    pub span: Option<Range<usize>>,
}

/// What pass one learns about a table, in the order `walk` visits tables.
struct Node {
    path: Vec<String>,
    position: isize,
    shown: bool,
    has_body: bool,
    gap: Vec<String>,
}

/// The canonical layout of one plan file. Idempotent: format(format(x)) == format(x).
pub fn format(source: &str) -> Result<String, FormatError> {
    let mut doc: DocumentMut = source
        .parse()
        .map_err(|e: toml_edit::TomlError| FormatError {
            message: e.message().to_owned(),
            span: e.span(),
        })?;

    let mut nodes = Vec::new();
    each_table(&mut doc, |path, in_array, table| {
        tidy_body(table, &mut true);
        tidy_suffix(table.decor_mut());
        nodes.push(Node {
            path: path.to_vec(),
            position: table.position().unwrap_or_default(),
            // As toml_edit prints them: implicit parents like `[role]` are not shown.
            shown: !path.is_empty()
                && (in_array || !(table.is_implicit() && table.get_values().is_empty())),
            has_body: !table.get_values().is_empty(),
            gap: lines(raw(table.decor().prefix())),
        });
    });

    // The lines between two tables are the tail of the table above and the head of the
    // table below; the root table (node 0) is above the first header.
    let mut original: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].shown).collect();
    original.sort_by_key(|&i| nodes[i].position);
    let mut tails = vec![Vec::new(); nodes.len()];
    let mut heads = vec![Vec::new(); nodes.len()];
    let mut above = 0;
    for &i in &original {
        (tails[above], heads[i]) = split(&nodes[i].gap, false);
        above = i;
    }
    let (tail, mut footer) = split(&lines(raw(Some(doc.trailing()))), true);
    tails[above] = tail;
    footer.pop_if(|line| line.is_empty());

    let mut earliest: HashMap<&[String], isize> = HashMap::new();
    for &i in &original {
        let path = &nodes[i].path;
        for len in [1, path.len().min(2)] {
            let seen = earliest.entry(&path[..len]).or_insert(isize::MAX);
            *seen = (*seen).min(nodes[i].position);
        }
    }
    let mut order = original;
    order.sort_by_key(|&i| {
        let path = &nodes[i].path;
        let known = SECTIONS.split(' ').position(|s| s == path[0]);
        let (section, resource) = (&path[..1], &path[..path.len().min(2)]);
        let position = nodes[i].position;
        (
            known.unwrap_or(usize::MAX),
            earliest[section],
            earliest[resource],
            position,
        )
    });

    let mut placed = vec![None; nodes.len()];
    let mut above = 0;
    for (rank, &i) in (1..).zip(&order) {
        let mut gap = tails[above].clone();
        // A blank line before each header, unless it would be the file's first line.
        if !gap.is_empty() || above != 0 || nodes[0].has_body {
            gap.push(String::new());
        }
        gap.extend_from_slice(&heads[i]);
        placed[i] = Some((rank, text(&gap)));
        above = i;
    }
    let mut end = tails[above].clone();
    if !footer.is_empty() && (!end.is_empty() || !order.is_empty() || nodes[0].has_body) {
        end.push(String::new());
    }
    end.extend(footer);
    doc.set_trailing(text(&end));

    let mut index = 0;
    each_table(&mut doc, |_, _, table| {
        if let Some((rank, prefix)) = placed[index].take() {
            table.set_position(Some(rank));
            table.decor_mut().set_prefix(prefix);
        }
        index += 1;
    });
    Ok(doc.to_string())
}

/// Calls `visit` on the root and every table with a header, parents first, as toml_edit's
/// printer visits them; the `bool` tells an array-of-tables element.
fn each_table(doc: &mut DocumentMut, mut visit: impl FnMut(&[String], bool, &mut Table)) {
    walk(doc.as_table_mut(), &mut Vec::new(), false, &mut visit);
}

fn walk(
    table: &mut Table,
    path: &mut Vec<String>,
    in_array: bool,
    visit: &mut impl FnMut(&[String], bool, &mut Table),
) {
    if !table.is_dotted() {
        visit(path, in_array, table);
    }
    for (key, item) in table.iter_mut() {
        path.push(key.get().to_owned());
        match item {
            Item::Table(child) => walk(child, path, false, visit),
            Item::ArrayOfTables(array) => {
                for child in array.iter_mut() {
                    walk(child, path, true, visit);
                }
            }
            _ => {}
        }
        path.pop();
    }
}

/// Lays out the `key = value` lines of a table; `first` is true until its first key.
fn tidy_body(table: &mut Table, first: &mut bool) {
    for (mut key, item) in table.iter_mut() {
        key.dotted_decor_mut().clear();
        match item {
            Item::Value(value) => {
                let mut above = lines(raw(key.leaf_decor().prefix()));
                if *first && above.first().is_some_and(String::is_empty) {
                    above.remove(0);
                }
                *first = false;
                *key.leaf_decor_mut() = Decor::new(text(&above), " ");
                value.decor_mut().set_prefix(" ");
                tidy_suffix(value.decor_mut());
                tidy_value(value);
            }
            Item::Table(dotted) if dotted.is_dotted() => {
                key.leaf_decor_mut().clear();
                tidy_body(dotted, first);
            }
            // A key in a header: `[a.b]`.
            _ => key.leaf_decor_mut().clear(),
        }
    }
}

/// Removes whitespace at the ends of lines inside arrays and inline tables.
fn tidy_value(value: &mut Value) {
    match value {
        Value::Array(array) => {
            for element in array.iter_mut() {
                tidy_decor(element.decor_mut());
                tidy_value(element);
            }
            array.set_trailing(strip_line_ends(raw(Some(array.trailing()))));
        }
        Value::InlineTable(table) => {
            for (mut key, element) in table.iter_mut() {
                tidy_decor(key.leaf_decor_mut());
                tidy_decor(element.decor_mut());
                tidy_value(element);
            }
            table.set_trailing(strip_line_ends(raw(Some(table.trailing()))));
        }
        _ => {}
    }
}

fn tidy_decor(decor: &mut Decor) {
    if let Some(prefix) = decor.prefix().map(|p| strip_line_ends(raw(Some(p)))) {
        decor.set_prefix(prefix);
    }
    if let Some(suffix) = decor.suffix().map(|s| strip_line_ends(raw(Some(s)))) {
        decor.set_suffix(suffix);
    }
}

/// Keeps a trailing comment and the spaces before it, drops trailing whitespace.
fn tidy_suffix(decor: &mut Decor) {
    let suffix = raw(decor.suffix()).trim_end().to_owned();
    decor.set_suffix(suffix);
}

fn strip_line_ends(s: &str) -> String {
    let mut pieces: Vec<&str> = s.split('\n').collect();
    let last = pieces.len() - 1;
    for piece in &mut pieces[..last] {
        *piece = piece.trim_end();
    }
    pieces.join("\n")
}

fn raw(s: Option<&RawString>) -> &str {
    s.and_then(RawString::as_str).unwrap_or("")
}

/// The comment and blank lines of a decor, unindented, "" for a run of blank lines. What
/// follows the last newline is the indentation of the next item, dropped.
fn lines(decor: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pieces: Vec<&str> = decor.split('\n').collect();
    pieces.pop();
    for line in pieces.into_iter().map(str::trim) {
        if !(line.is_empty() && out.last().is_some_and(String::is_empty)) {
            out.push(line.to_owned());
        }
    }
    out
}

fn text(lines: &[String]) -> String {
    lines
        .iter()
        .fold(String::new(), |text, line| text + line + "\n")
}

/// Splits the lines between two items at the first blank line into what belongs to the item
/// above and what belongs to the item below; at the end of the file there is no item below.
fn split(lines: &[String], at_end: bool) -> (Vec<String>, Vec<String>) {
    match lines.iter().position(String::is_empty) {
        Some(0) => (Vec::new(), lines[1..].to_vec()),
        Some(blank) => (lines[..blank].to_vec(), lines[blank + 1..].to_vec()),
        None if at_end => (lines.to_vec(), Vec::new()),
        None => (Vec::new(), lines.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::format;

    /// Formats `source`, checking what holds for every input: the same TOML data, idempotence,
    /// and the whitespace rules.
    fn check(source: &str) -> String {
        let formatted = format(source).unwrap();
        let data = |s: &str| toml::from_str::<toml::Value>(s).unwrap();
        assert_eq!(data(&formatted), data(source), "data changed:\n{formatted}");
        assert_eq!(format(&formatted).unwrap(), formatted, "not idempotent");
        assert!(!formatted.starts_with('\n') && !formatted.contains("\n\n\n"));
        assert!(formatted.is_empty() || formatted.ends_with('\n') && !formatted.ends_with("\n\n"));
        assert!(
            formatted.lines().all(|l| l == l.trim_end()),
            "trailing whitespace"
        );
        formatted
    }

    #[test]
    fn plan_files_keep_every_line() {
        let plans = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
        let mut count = 0;
        let dirs = std::fs::read_dir(plans).unwrap().map(|d| d.unwrap().path());
        let files = dirs
            .filter(|d| d.is_dir())
            .flat_map(|d| std::fs::read_dir(d).unwrap());
        for path in files.map(|f| f.unwrap().path()) {
            if path.extension().is_some_and(|e| e == "toml") {
                let source = std::fs::read_to_string(&path).unwrap();
                // Only blank lines and the order of tables may change.
                let lines = |s: &str| {
                    let mut lines: Vec<String> = s.lines().map(String::from).collect();
                    lines.retain(|l| !l.is_empty());
                    lines.sort();
                    lines
                };
                assert_eq!(lines(&check(&source)), lines(&source), "{}", path.display());
                count += 1;
            }
        }
        assert!(count > 0);
    }

    #[test]
    fn sections_are_reordered_with_their_comments() {
        let source = "# File header.\n\n# The role.\n[role.a]   # trailing\npath = \"/x/\"\n\
            [extra]\n[[role.a.trust.statement]]\n\n[stack]\nname = \"s\"\n# Policies.\n[policy.p]\n\
            document = '''\n{ \"a\":  1 }\n'''\n";
        let expected = "# File header.\n\n[stack]\nname = \"s\"\n\n# Policies.\n[policy.p]\n\
            document = '''\n{ \"a\":  1 }\n'''\n\n# The role.\n[role.a]   # trailing\npath = \"/x/\"\n\n\
            [[role.a.trust.statement]]\n\n[extra]\n";
        assert_eq!(check(source), expected);
    }

    #[test]
    fn whitespace_is_normalised() {
        let source = "  [stack]  \n  name=\"s\"  \n\tpath   =   '/x/'   # note  \n\n\n\n\
            [ variables ]\n\n\na=1\n\n\n\nb = [\n  \"x\",  \n  \"y\", # why  \n]\nc . d={ e = 1 }\n\n\n";
        let expected = "[stack]\nname = \"s\"\npath = '/x/'   # note\n\n\
            [variables]\na = 1\n\nb = [\n  \"x\",\n  \"y\", # why\n]\nc.d = { e = 1 }\n";
        assert_eq!(check(source), expected);
    }

    #[test]
    fn comments_stay_with_their_table_and_key() {
        let source = "# Header.\n\n[user.u]\n# Above a key.\naccess_keys = { count = 1 }   # one\n\
            # old = true\n\n[variables]\n# Above a.\na = \"x\" # after a\n# End of variables.\n\n\
            # Footer.\n";
        let expected = "# Header.\n\n[variables]\n# Above a.\na = \"x\" # after a\n\
            # End of variables.\n\n[user.u]\n# Above a key.\naccess_keys = { count = 1 }   # one\n\
            # old = true\n\n# Footer.\n";
        assert_eq!(check(source), expected);
    }

    #[test]
    fn arrays_of_tables_keep_their_order() {
        let source = "[smoke.c]\n[[smoke.c.assume]]\nrole = \"first\"\n[[role.x.trust.statement]]\n\
            sid = \"1\"\n[[smoke.c.assume]]\nrole = \"second\"\n[role.y]\n[role.x.inline.p]\n\
            [[role.x.trust.statement]]\nsid = \"2\"\n";
        let expected = "[[role.x.trust.statement]]\nsid = \"1\"\n\n[role.x.inline.p]\n\n\
            [[role.x.trust.statement]]\nsid = \"2\"\n\n[role.y]\n\n[smoke.c]\n\n\
            [[smoke.c.assume]]\nrole = \"first\"\n\n[[smoke.c.assume]]\nrole = \"second\"\n";
        assert_eq!(check(source), expected);
    }

    #[test]
    fn syntax_errors_have_a_span() {
        for source in [
            "[stack]\nname = \n",
            "[stack]\n[stack]\n",
            "a = \"x\nb = 1\n",
        ] {
            let error = format(source).unwrap_err();
            let span = error.span.clone().expect("a span");
            assert!(
                span.end <= source.len() && !error.message.is_empty(),
                "{error:?}"
            );
        }
    }

    #[test]
    fn files_with_few_tables() {
        assert_eq!(check(""), "");
        assert_eq!(check("\n\n# only a comment  \n\n"), "# only a comment\n");
        let source = "# top\n\n a=1\n# about a\n\n[stack]\nname='s'";
        assert_eq!(
            check(source),
            "# top\n\na = 1\n# about a\n\n[stack]\nname = 's'\n"
        );
    }
}
