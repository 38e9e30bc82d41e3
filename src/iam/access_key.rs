//! A user's access keys: the rule in `[user.NAME.access_keys]` and what it means now
//! (`keys::plan_keys` decides; this turns the decision into steps and the plan's lines).

use super::user::User;
use crate::diff::DiffCx;
use crate::keys::{KeyAction, KeyReport, KeyRule, Sink, plan_keys};
use crate::ops::Op;
use crate::plan::KeyStatus;
use crate::spec::{At, SpecError};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeysSpec {
    /// Active keys wanted at rest: 0 or 1.
    pub count: Option<Spanned<i64>>,
    pub rotate_after_days: Option<Spanned<i64>>,
    pub deactivate_after_days: Option<Spanned<i64>>,
    pub delete_after_days: Option<Spanned<i64>>,
    pub in_use_hours: Option<Spanned<i64>>,
    pub sink: Option<Spanned<SinkSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
pub enum SinkSpec {
    Json {
        path: String,
    },
    Credentials {
        path: String,
        profile: String,
    },
    Colon {
        path: String,
    },
    Command {
        argv: Vec<String>,
        // Plain: a span cannot be kept inside an internally tagged table.
        timeout_seconds: Option<i64>,
    },
}

/// Builds the rule from `[user.NAME.access_keys]`.
pub fn build(
    at: &At,
    user: &Spanned<String>,
    k: &Spanned<AccessKeysSpec>,
) -> Result<KeyRule, SpecError> {
    let spec = k.get_ref();
    let num = |v: &Option<Spanned<i64>>,
               default: i64,
               range: std::ops::RangeInclusive<i64>,
               what: &str|
     -> Result<i64, SpecError> {
        match v {
            None => Ok(default),
            Some(n) if range.contains(n.get_ref()) => Ok(*n.get_ref()),
            Some(n) => Err(at.err(
                n.span(),
                format!(
                    "{what} {} is out of range ({}..={})",
                    n.get_ref(),
                    range.start(),
                    range.end()
                ),
            )),
        }
    };
    let count = num(&spec.count, 1, 0..=1, "count")? as u8;
    let rotate_after_days = match &spec.rotate_after_days {
        None => None,
        Some(_) => Some(num(
            &spec.rotate_after_days,
            90,
            1..=3650,
            "rotate_after_days",
        )?),
    };
    let deactivate_after_days = num(
        &spec.deactivate_after_days,
        7,
        0..=3650,
        "deactivate_after_days",
    )?;
    let delete_after_days = num(&spec.delete_after_days, 7, 0..=3650, "delete_after_days")?;
    let in_use_hours = num(&spec.in_use_hours, 24, 0..=8760, "in_use_hours")?;
    let base = at.file.path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &str| sink_path(base, p, std::env::var_os("HOME").map(PathBuf::from));
    let sink = match &spec.sink {
        None if count == 0 => Sink::Command {
            argv: vec![],
            timeout_seconds: None,
        },
        None => {
            return Err(at.err(k.span(), format!("user \"{}\" wants an access key but names no sink for its secret", user.get_ref()))
                    .with_help("add sink = { type = \"json\", path = \"secrets/robot.json\" } (or credentials, colon, command)"));
        }
        Some(s) => match s.get_ref() {
            SinkSpec::Json { path } => Sink::Json {
                path: resolve(path),
            },
            SinkSpec::Colon { path } => Sink::Colon {
                path: resolve(path),
            },
            SinkSpec::Credentials { path, profile } => Sink::Credentials {
                path: resolve(path),
                profile: profile.clone(),
            },
            SinkSpec::Command { argv, .. } if argv.is_empty() => {
                return Err(at.err(s.span(), "the sink command is empty"));
            }
            SinkSpec::Command {
                argv,
                timeout_seconds,
            } => Sink::Command {
                argv: argv.clone(),
                timeout_seconds: match *timeout_seconds {
                    None => None,
                    Some(n @ 1..=86_400) => Some(n as u64),
                    Some(n) => {
                        return Err(at.err(
                            s.span(),
                            format!("timeout_seconds {n} is out of range (1..=86400)"),
                        ));
                    }
                },
            },
        },
    };
    Ok(KeyRule {
        count,
        rotate_after_days,
        deactivate_after_days,
        delete_after_days,
        in_use_hours,
        sink,
    })
}

/// Where a sink may not write, and that no two users share one: checked with the plan's
/// files, before anything is read or written. A sink that overwrote a plan file, or the
/// AWS config or credentials file iamplan itself reads, would destroy what it depends on;
/// two users writing one file would replace each other's key on every run.
pub fn check_target(
    cx: &crate::spec::BuildCx,
    k: &Spanned<AccessKeysSpec>,
    sink: &Sink,
) -> Result<(), SpecError> {
    let span = k.get_ref().sink.as_ref().map_or(k.span(), |s| s.span());
    let Some(path) = sink.file() else {
        return Ok(());
    };
    // `a/../k.json` is `k.json`: compare paths without `.` and `..`.
    let normal: PathBuf = {
        let mut out = PathBuf::new();
        for c in path.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                other => out.push(other),
            }
        }
        out
    };
    let path = normal.as_path();
    let err = |msg: String, help: &str| Err(cx.err(span.clone(), msg).with_help(help));
    let same = |other: &Path| same_file(path, other);
    if cx.b.plan_files.iter().any(|f| same(f)) {
        return err(
            format!("the sink path {} is one of the plan files", path.display()),
            "the secret would overwrite the plan: write it elsewhere, e.g. secrets/robot.json",
        );
    }
    if path.extension().is_some_and(|x| x == "toml") {
        return err(
            format!("the sink path {} ends in .toml", path.display()),
            "plan directories are read as *.toml: a secret there would be read as a plan file next time; name it .json, .key or similar",
        );
    }
    if path.is_dir() {
        return err(
            format!("the sink path {} is a directory", path.display()),
            "name a file in it, e.g. secrets/robot.json",
        );
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let aws_file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let credentials = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config = aws_file("AWS_CONFIG_FILE", "config");
    if config.as_deref().is_some_and(same) {
        return err(
            format!("the sink path {} is the AWS config file", path.display()),
            "a key goes into the credentials file (type = \"credentials\", with a profile), or a file of its own",
        );
    }
    if credentials.as_deref().is_some_and(same) && !matches!(sink, Sink::Credentials { .. }) {
        return err(
            format!(
                "the sink path {} is the AWS credentials file, and the sink would replace it",
                path.display()
            ),
            "use type = \"credentials\" with a profile: it merges the key into the file and keeps the other profiles",
        );
    }
    let profiled = |p: &Path| match sink {
        Sink::Credentials { profile, .. } => format!("{} [{profile}]", p.display()),
        _ => p.display().to_string(),
    };
    let target = profiled(path);
    let user = format!("{}/{}", cx.ctx.alias, cx.name.get_ref());
    let mut claimed = cx.b.sink_targets.borrow_mut();
    // Sinks are compared as the files they write: `alias/a.json` with `alias -> secrets` is
    // `secrets/a.json`, and a link is the file it leads to.
    let real = resolved(path);
    let key = profiled(&real);
    // A whole-file sink and a credentials profile in the same file clash too.
    let file = real.display().to_string();
    let clash = claimed
        .iter()
        .find(|(t, who)| {
            **who != user
                && (**t == key
                    || (matches!(sink, Sink::Credentials { .. }) && **t == file)
                    || (!matches!(sink, Sink::Credentials { .. })
                        && t.starts_with(&format!("{file} ["))))
        })
        .map(|(_, who)| who.clone());
    if let Some(other) = clash {
        let other = other.rsplit('/').next().unwrap_or(&other).to_string();
        return err(
            format!(
                "user \"{}\" writes its key to {target}, as user \"{other}\" does",
                cx.name.get_ref()
            ),
            "each user needs a sink of its own (another file, or another profile of a credentials file): each apply would replace the other user's key",
        );
    }
    claimed.insert(key, user);
    Ok(())
}

/// The file a sink path writes, with every symbolic link resolved: the link at the end
/// (followed as the sink follows it) and those among its directories; for a path that does
/// not exist yet, its nearest existing directory resolved and the rest appended.
fn resolved(path: &Path) -> PathBuf {
    let p = crate::keys::sink::link_target(path).unwrap_or_else(|_| path.to_path_buf());
    let mut missing = Vec::new();
    let mut at = p.as_path();
    loop {
        if let Ok(real) = at.canonicalize() {
            return missing.iter().rev().fold(real, |acc, name| acc.join(name));
        }
        match (at.file_name(), at.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name.to_os_string());
                at = parent;
            }
            _ => return p.clone(),
        }
    }
}

/// Two paths name the same file: by identity when both exist, else by their text.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}

/// The key the user's sink holds: read from the sink file (before the plan), or for a
/// command sink, the key recorded on the user when the command confirmed it.
fn sink_key(cx: &DiffCx, rule: &KeyRule, live: Option<&User>) -> Option<String> {
    if rule.sink.readable() {
        cx.opts.sink_keys.get(cx.addr).cloned().flatten()
    } else {
        let live = live?;
        used_since_made(live).or_else(|| live.key_history.delivered.clone())
    }
}

/// A key a run was handing to a command sink when it stopped, before the command confirmed
/// it, that has been used since: only the command ever had its secret, so the command got
/// it. (Its being recorded as pending proves nothing: the run may have stopped before the
/// command ran.)
fn used_since_made(live: &User) -> Option<String> {
    let h = &live.key_history;
    live.access_keys
        .iter()
        .find(|k| {
            k.active
                && k.pending
                && k.last_used.is_some()
                && h.delivered.as_deref() != Some(k.id.as_str())
        })
        .map(|k| k.id.clone())
}

/// Plans the user's keys; returns the per-key lines and notes for the user's change.
/// Keys with nothing to do now are reported on their own (`KeyStatus`).
pub fn plan(cx: &mut DiffCx, want: &User, live: Option<&User>) -> (Vec<KeyReport>, Vec<String>) {
    let Some(rule) = &want.keys else {
        return (vec![], vec![]);
    };
    let live_keys = live.map(|l| l.access_keys.as_slice()).unwrap_or(&[]);
    let mut kcx = cx.opts.keys;
    kcx.rotate_now = cx.opts.rotate.contains(&cx.addr.key);
    let plan = plan_keys(rule, live_keys, sink_key(cx, rule, live).as_deref(), kcx);
    let user = || want.name.clone();
    let mut recorded = Vec::new();
    // A crash between handing a key to a command and recording it: record it now.
    if let Some(l) = live.filter(|_| !rule.sink.readable()) {
        if let Some(k) = used_since_made(l) {
            recorded.push(format!("key {k} was being handed to the {} when a run stopped, and has been used since: the command got it, so it counts as delivered (and is recorded so); the previous key keeps its grace and is not deactivated while it is in use", rule.sink));
            // Before any new key: its own `delivered` record must come last.
            cx.step_before_creates(Op::TagUser {
                user: user(),
                tags: std::collections::BTreeMap::from([crate::ownership::delivered_tag(&k)]),
            });
        }
        if l.key_history.delivering.is_some() {
            cx.step_before_creates(Op::UntagUser {
                user: user(),
                keys: vec![crate::ownership::delivering_tag_key()],
            });
        }
    }
    for a in &plan.actions {
        match a {
            // Room under IAM's two-key limit, before a new key is created.
            KeyAction::Delete { id } => cx.step_before_creates(Op::DeleteAccessKey {
                user: user(),
                id: id.clone(),
                untag: live_keys.iter().any(|k| k.id == *id && k.tagged),
            }),
            KeyAction::Create => cx.step(Op::CreateAccessKey {
                user: user(),
                sink: rule.sink.clone(),
                issued_at: kcx.simulated.then_some(kcx.now),
                known: live_keys.iter().map(|k| k.id.clone()).collect(),
            }),
            KeyAction::Deactivate { id } => cx.step(Op::DeactivateAccessKey {
                user: user(),
                id: id.clone(),
                at: kcx.now,
            }),
        }
    }
    let mut notes = if plan.actions.is_empty() && !kcx.rotate_now {
        vec![]
    } else {
        plan.notes
    };
    recorded.append(&mut notes);
    let notes = recorded;
    if plan.actions.is_empty() {
        // Nothing happens to the keys now: still show them, and when something will.
        if !plan.reports.is_empty() {
            cx.key_status(KeyStatus {
                address: cx.addr.clone(),
                name: want.name.clone(),
                keys: plan.reports,
            });
        }
        return (vec![], notes);
    }
    (plan.reports, notes)
}

/// Where a sink path points: `~/` and `$HOME/` (or `${HOME}/`) expand as the AWS CLI expands
/// them, a relative path is relative to the plan file, and the result is absolute, so that a
/// saved plan applied from another directory writes to the same file.
fn sink_path(plan_dir: &Path, path: &str, home: Option<PathBuf>) -> PathBuf {
    let in_home = ["~/", "$HOME/", "${HOME}/"]
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix));
    let p = match (in_home, home, path) {
        (Some(rest), Some(home), _) => home.join(rest),
        (None, Some(home), "~") => home,
        _ if Path::new(path).is_absolute() => PathBuf::from(path),
        _ => plan_dir.join(path),
    };
    std::path::absolute(&p).unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_paths_expand_home_and_become_absolute() {
        let home = Some(PathBuf::from("/home/ci"));
        let dir = Path::new("/work/plans/robot");
        assert_eq!(
            sink_path(dir, "~/.aws/robot", home.clone()),
            PathBuf::from("/home/ci/.aws/robot")
        );
        assert_eq!(
            sink_path(dir, "$HOME/k.json", home.clone()),
            PathBuf::from("/home/ci/k.json")
        );
        assert_eq!(
            sink_path(dir, "${HOME}/k.json", home.clone()),
            PathBuf::from("/home/ci/k.json")
        );
        assert_eq!(
            sink_path(dir, "secrets/k.json", home.clone()),
            PathBuf::from("/work/plans/robot/secrets/k.json")
        );
        assert_eq!(sink_path(dir, "/etc/k", home), PathBuf::from("/etc/k"));
        let relative = sink_path(Path::new("plans"), "k.json", None);
        assert!(
            relative.is_absolute() && relative.ends_with("plans/k.json"),
            "{relative:?}"
        );
    }
}
