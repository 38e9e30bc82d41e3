//! Access keys: rotation rules evaluated at a point in time, and the sinks that receive
//! secrets. Pure except for the sinks' file and process I/O.

pub mod sink;

use serde::{Deserialize, Serialize};
pub use sink::Sink;

/// Seconds since the Unix epoch: times are plain numbers here, rendered only for display.
pub type Epoch = i64;

pub const DAY: Epoch = 86_400;
pub const HOUR: Epoch = 3_600;

/// What the live read needs to know about declared users' keys in one account, by
/// lower-cased user name (saved with a plan: its fingerprint covers these keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHints {
    pub users: std::collections::BTreeMap<String, UserKeyHint>,
    /// Managed policies the plan declares with `adopt = true`, by lower-cased name: an
    /// adopted policy is marked by its tag (its description cannot change), which IAM's
    /// bulk read does not return, so their tags are read one by one.
    #[serde(default)]
    pub adopted_policies: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserKeyHint {
    /// The key whose secret the sink holds, if the sink can be read.
    pub sink_key: Option<String>,
    /// The rule rotates by age: every key's last use matters.
    pub rotating: bool,
}

/// The declared access-key policy of one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRule {
    /// Active keys wanted at rest: 0 or 1.
    pub count: u8,
    /// Rotate when the current key is older than this many days (None: never by age).
    pub rotate_after_days: Option<i64>,
    /// Deactivate the previous key this many days after its successor was created.
    pub deactivate_after_days: i64,
    /// Delete a deactivated key this many days after it was deactivated.
    pub delete_after_days: i64,
    /// A key used within this many hours is not deactivated without --force.
    pub in_use_hours: i64,
    pub sink: Sink,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveKey {
    pub id: String,
    pub active: bool,
    pub created: Epoch,
    /// When iamplan deactivated it (recorded in a user tag), if known.
    pub deactivated: Option<Epoch>,
    /// The user carries iamplan tags about this key (to remove with the key).
    #[serde(default)]
    pub tagged: bool,
    pub last_used: Option<LastUsed>,
    /// Made by a run that stopped before the key was known to be in its sink: the record
    /// that run left on the user names it (`KeyHistory::pending_made`).
    #[serde(default)]
    pub pending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastUsed {
    pub when: Epoch,
    pub service: String,
    pub region: String,
}

/// What happens to keys now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum KeyAction {
    /// Delete before anything else (room under the two-key limit, or expired).
    Delete {
        id: String,
    },
    /// Create a key and hand its secret to the sink.
    Create,
    Deactivate {
        id: String,
    },
}

/// One line of the plan per key: its facts and what will happen to it, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyReport {
    pub id: String,
    pub status: String,
    pub age_days: i64,
    pub last_used: String,
    pub in_sink: bool,
    pub outlook: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPlan {
    pub actions: Vec<KeyAction>,
    pub reports: Vec<KeyReport>,
    pub notes: Vec<String>,
}

/// Inputs beyond the rule and the keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyContext {
    pub now: Epoch,
    /// `iamplan rotate`: rotate now whatever the ages.
    pub rotate_now: bool,
    /// `--force`: deactivate keys even if recently used.
    pub force: bool,
    /// `now` is not the clock (`--now`): keys issued are recorded as issued at `now`.
    pub simulated: bool,
    /// This run took over the lock of a run that died, which held it since this time: keys
    /// made since then that nobody received are that run's leftovers.
    pub recovering_since: Option<Epoch>,
}

fn days(secs: Epoch) -> i64 {
    secs.div_euclid(DAY)
}

/// A time for the plan: `2026-12-01 10:30Z`.
pub fn fmt_time(t: Epoch) -> String {
    match jiff::Timestamp::from_second(t) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%MZ").to_string(),
        Err(_) => format!("{t} seconds since 1970"),
    }
}

/// Parses an RFC 3339 time (`2026-12-01T00:00:00Z`, offsets allowed), or a bare date
/// (midnight UTC), to epoch seconds. Impossible dates and times (`2027-02-30`, `25:99`)
/// are refused.
pub fn parse_time(s: &str) -> Option<Epoch> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts.as_second());
    }
    let date: jiff::civil::Date = s.parse().ok()?;
    let midnight = date.to_datetime(jiff::civil::Time::midnight());
    let ts = jiff::tz::TimeZone::UTC.to_timestamp(midnight).ok()?;
    Some(ts.as_second())
}

/// Plans one user's keys. `sink_key` is the key whose secret the sink holds.
pub fn plan_keys(
    rule: &KeyRule,
    keys: &[LiveKey],
    sink_key: Option<&str>,
    cx: KeyContext,
) -> KeyPlan {
    let mut plan = KeyPlan::default();
    let now = cx.now;
    let mut keys: Vec<&LiveKey> = keys.iter().collect();
    keys.sort_by(|a, b| {
        a.created
            .cmp(&b.created)
            .then_with(|| (Some(a.id.as_str()) == sink_key).cmp(&(Some(b.id.as_str()) == sink_key)))
    });
    let current = keys
        .iter()
        .copied()
        .find(|k| k.active && Some(k.id.as_str()) == sink_key);
    let recently_used = |k: &LiveKey| {
        k.last_used
            .as_ref()
            .is_some_and(|u| now - u.when < rule.in_use_hours * HOUR)
    };

    // Made after the sink's key, never used, never handed over: a crash between its
    // creation and its delivery. Nobody holds its secret, so it goes now, before a new key
    // needs its slot. Only a dead run's leftover qualifies: one its record names (`pending`:
    // certain even within IAM's one-second steps), or, without a record, one made after the
    // sink's key while it held the lock. A key made by hand, or seen through a stale copy of
    // the sink, is deactivated as before.
    let orphan = |k: &LiveKey| {
        let is_current = current.is_some_and(|c| c.id == k.id);
        k.active
            && !is_current
            && k.last_used.is_none()
            && cx.recovering_since.is_some_and(|t| {
                k.pending || (k.created >= t && current.is_some_and(|c| k.created > c.created))
            })
    };
    // A command cannot be asked what it received, and only its success is proof: a key whose
    // delivery was never confirmed may or may not be what it holds. It is replaced by a key
    // whose delivery is confirmed; the sink's recorded key keeps its grace until then.
    let command = !rule.sink.readable();
    let redeliver = command && keys.iter().any(|&k| orphan(k));

    // Decide whether a new key is needed.
    let need_new = rule.count > 0
        && (redeliver
            || match current {
                None => true,
                Some(c) => {
                    cx.rotate_now
                        || rule
                            .rotate_after_days
                            .is_some_and(|n| now - c.created >= n * DAY)
                }
            });
    if rule.count > 0 && current.is_none() {
        plan.notes.push(match sink_key {
            Some(id) => format!("the sink holds key {id}, which is not an active key of this user: a new key is issued"),
            None if keys.is_empty() => "no access key yet: one is issued and handed to the sink".into(),
            None => "the sink holds no key of this user (its secret is lost or was never delivered): a new key is issued and the old ones retire on schedule".into(),
        });
    }

    // Every other key's fate, and whether it frees a slot before a new key is created.
    let mut slots_used = keys.len();
    let mut deferred_deactivations = Vec::new();
    for k in &keys {
        let is_current = current.is_some_and(|c| c.id == k.id);
        let age = days(now - k.created);
        let last_used = match &k.last_used {
            Some(u) => format!("{} ({}, {})", fmt_time(u.when), u.service, u.region),
            None => "never".into(),
        };
        let outlook: String;
        if rule.count == 0 {
            plan.actions.push(KeyAction::Delete { id: k.id.clone() });
            slots_used -= 1;
            outlook = "delete now (the plan wants no keys)".into();
        } else if is_current {
            outlook = if need_new {
                if cx.rotate_now {
                    "rotate now (requested): a new key is issued; this one retires on schedule"
                        .into()
                } else {
                    format!(
                        "rotate now (older than {} days): a new key is issued; this one retires on schedule",
                        rule.rotate_after_days.unwrap_or(0)
                    )
                }
            } else {
                match rule.rotate_after_days {
                    Some(n) => format!(
                        "current (in the sink); rotates on {}",
                        fmt_time(k.created + n * DAY)
                    ),
                    None => "current (in the sink)".into(),
                }
            };
        } else if !k.active {
            let since = k.deactivated.unwrap_or_else(|| {
                successor_created(&keys, k).unwrap_or(k.created) + rule.deactivate_after_days * DAY
            });
            let due = since + rule.delete_after_days * DAY;
            if now >= due || (need_new && slots_used >= 2) {
                plan.actions.push(KeyAction::Delete { id: k.id.clone() });
                slots_used -= 1;
                outlook = if now >= due {
                    "delete now (inactive long enough)".into()
                } else {
                    "delete now, to make room for the new key (IAM allows two)".into()
                };
            } else {
                outlook = format!("inactive; deleted on {}", fmt_time(due));
            }
        } else {
            // Active, not in the sink: a predecessor of the current key, or an orphan.
            let successor = current
                .filter(|c| c.created >= k.created)
                .and_then(|_| successor_created(&keys, k));
            let due = match successor {
                Some(s) => s + rule.deactivate_after_days * DAY,
                None => now, // newer than the sink's key, or no current key at all: secret lost
            };
            let has_working_alternative = current.is_some() || need_new;
            if orphan(k) && command {
                plan.actions.push(KeyAction::Delete { id: k.id.clone() });
                slots_used -= 1;
                outlook = "delete now: a run stopped before the command confirmed it got this key, and it was never used; a new key goes to the command, whose success is the proof".into();
            } else if orphan(k) {
                plan.actions.push(KeyAction::Delete { id: k.id.clone() });
                slots_used -= 1;
                outlook = "delete now: made after the sink's key and never used, so nobody holds its secret (a crash or a lost answer between its creation and its delivery)".into();
            } else if command && k.pending {
                // The command may hold it: taking it back without proof could break its users.
                outlook = "kept: a run stopped before the command confirmed it got this key; the run that takes the stack's lock over replaces it".into();
            } else if !has_working_alternative {
                outlook = "kept: it is the only key this user has".into();
            } else if now < due {
                outlook = format!("previous key; deactivated on {}", fmt_time(due));
            } else if recently_used(k) && !cx.force {
                outlook = format!(
                    "due for deactivation, but used within the last {} hours: waits (pass --force to deactivate anyway)",
                    rule.in_use_hours
                );
            } else {
                deferred_deactivations.push(k.id.clone());
                outlook = if successor.is_some() {
                    "deactivate now (its successor is old enough)".into()
                } else {
                    "deactivate now: its secret is not in the sink (lost), and a replacement is in the sink".into()
                };
            }
        }
        plan.reports.push(KeyReport {
            id: k.id.clone(),
            status: if k.active {
                "Active".into()
            } else {
                "Inactive".into()
            },
            age_days: age,
            last_used,
            in_sink: Some(k.id.as_str()) == sink_key,
            outlook,
        });
    }
    if need_new {
        if slots_used >= 2 {
            plan.notes.push(
                "a new key is due, but the user already has two active keys and neither may be removed yet: no key is created this run".into(),
            );
        } else {
            plan.actions.push(KeyAction::Create);
        }
    }
    plan.actions.extend(
        deferred_deactivations
            .into_iter()
            .map(|id| KeyAction::Deactivate { id }),
    );
    plan
}

/// When the next key after `k` was created.
fn successor_created(keys: &[&LiveKey], k: &LiveKey) -> Option<Epoch> {
    // Keys are sorted by creation; the next one is the successor (even within a second).
    let i = keys.iter().position(|o| o.id == k.id)?;
    keys.get(i + 1).map(|o| o.created)
}

#[cfg(test)]
mod tests;
