//! What makes "no state file" safe: the marks iamplan leaves on the resources it owns, and
//! what it records on users about their access keys. The reader and the writer both use
//! this module, so a mark is written and parsed in one place (see README, "Ownership").

use std::collections::BTreeMap;

/// The tag that marks a role, user or managed policy as owned by a stack.
pub const OWNER_TAG: &str = "iamplan:stack";

/// Tags that mark a resource as the stack's own.
pub fn owner_tags(stack: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(OWNER_TAG.to_string(), stack.to_string())])
}

/// The user's tags plus the ownership tag.
pub fn with_owner_tag(tags: &BTreeMap<String, String>, stack: &str) -> BTreeMap<String, String> {
    let mut t = tags.clone();
    t.insert(OWNER_TAG.into(), stack.into());
    t
}

/// Removes the ownership tag from live tags; returns the owning stack.
pub fn take_owner_tag(tags: &mut BTreeMap<String, String>) -> Option<String> {
    tags.remove(OWNER_TAG)
}

/// Managed policies carry the mark in their description too: GetAccountAuthorizationDetails
/// returns descriptions but not policy tags, and a tag alone would cost a call per policy.
pub fn policy_marker(stack: &str) -> String {
    format!("[{OWNER_TAG}={stack}]")
}

/// The description iamplan writes: the user's text, then the marker.
pub fn marked_description(description: &str, stack: &str) -> String {
    if description.is_empty() {
        policy_marker(stack)
    } else {
        format!("{description} {}", policy_marker(stack))
    }
}

/// Splits a live policy description into the user's text and the owning stack.
pub fn split_policy_description(desc: &str) -> (String, Option<String>) {
    let prefix = format!("[{OWNER_TAG}=");
    if let Some(i) = desc.rfind(&prefix)
        && desc.ends_with(']')
    {
        let stack = desc[i + prefix.len()..desc.len() - 1].to_string();
        return (desc[..i].trim_end().to_string(), Some(stack));
    }
    (desc.to_string(), None)
}

/// Groups cannot be tagged: their mark is an inline policy with this name prefix that
/// denies an action no AWS service has, so it grants and blocks nothing.
pub const GROUP_MARKER_PREFIX: &str = "iamplan-stack-";

pub fn group_marker_name(stack: &str) -> String {
    format!("{GROUP_MARKER_PREFIX}{stack}")
}

/// The stack a group's inline policy marks the group as owned by, if it is a marker.
pub fn group_marker_stack(policy_name: &str) -> Option<&str> {
    policy_name.strip_prefix(GROUP_MARKER_PREFIX)
}

pub fn group_marker_document() -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "IamplanOwnershipMarker",
            "Effect": "Deny",
            "Action": "iamplan:OwnershipMarker",
            "Resource": "*"
        }]
    })
}

/// User tags about access keys. They live on the user, so nothing is kept on local disk:
/// when iamplan deactivated a key, which key a command sink received, (under `--now`)
/// when a key was issued in simulated time, and when IAM made each key iamplan made
/// (which identifies a key in the credential report, whose rows carry no key IDs).
const DEACTIVATED_TAG_PREFIX: &str = "iamplan:deactivated:";
const DELIVERED_TAG: &str = "iamplan:delivered";
/// Set just before CreateAccessKey, removed once the new key is in its sink (or deleted
/// again): `after:` and the IDs of the keys the user had then. A crash in between leaves it,
/// and the run that takes the lock over knows exactly which key the dead run made, even
/// when IAM's creation times (one-second steps) cannot tell it from the sink's. (Older
/// versions wrote the new key's ID itself, after creating it.)
const DELIVERING_TAG: &str = "iamplan:delivering";
const PENDING_PREFIX: &str = "after:";
const ISSUED_TAG_PREFIX: &str = "iamplan:issued:";
const CREATED_TAG_PREFIX: &str = "iamplan:created:";

/// What a user's tags record about its keys (parsed out of the live tags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyHistory {
    /// When iamplan deactivated each key, by key ID (epoch seconds).
    pub deactivated: BTreeMap<String, i64>,
    /// When a key was issued under `--now`, by key ID.
    pub issued: BTreeMap<String, i64>,
    /// IAM's creation time of each key iamplan made, by key ID (epoch seconds).
    pub created: BTreeMap<String, i64>,
    /// The key last handed to a command sink.
    pub delivered: Option<String>,
    /// The pending-key record of a run that was making a key (see `pending_made`): left
    /// by a run that stopped before the key was in its sink.
    pub delivering: Option<String>,
}

impl KeyHistory {
    /// Takes iamplan's key tags out of a user's live tags, leaving the user's own.
    pub fn take_from(tags: &mut BTreeMap<String, String>) -> Self {
        let mut h = KeyHistory {
            delivered: tags.remove(DELIVERED_TAG),
            delivering: tags.remove(DELIVERING_TAG),
            ..KeyHistory::default()
        };
        tags.retain(|k, v| {
            let (map, id) = if let Some(id) = k.strip_prefix(DEACTIVATED_TAG_PREFIX) {
                (&mut h.deactivated, id)
            } else if let Some(id) = k.strip_prefix(ISSUED_TAG_PREFIX) {
                (&mut h.issued, id)
            } else if let Some(id) = k.strip_prefix(CREATED_TAG_PREFIX) {
                (&mut h.created, id)
            } else {
                return true;
            };
            if let Ok(t) = v.parse() {
                map.insert(id.to_string(), t);
            }
            false
        });
        h
    }

    /// Whether the pending-key record says the run that wrote it made key `id` (a key it
    /// had not delivered when it stopped, if it stopped).
    pub fn pending_made(&self, id: &str) -> bool {
        match self.delivering.as_deref() {
            None => false,
            Some(v) => match v.strip_prefix(PENDING_PREFIX) {
                Some(before) => !before.split(' ').any(|k| k == id),
                None => v == id,
            },
        }
    }

    /// Whether the user carries tags about this key (to remove with the key).
    pub fn mentions(&self, id: &str) -> bool {
        self.deactivated.contains_key(id)
            || self.issued.contains_key(id)
            || self.created.contains_key(id)
    }
}

pub fn deactivated_tag(id: &str, at: i64) -> BTreeMap<String, String> {
    BTreeMap::from([(format!("{DEACTIVATED_TAG_PREFIX}{id}"), at.to_string())])
}

pub fn issued_tag(id: &str, at: i64) -> (String, String) {
    (format!("{ISSUED_TAG_PREFIX}{id}"), at.to_string())
}

pub fn created_tag(id: &str, at: i64) -> (String, String) {
    (format!("{CREATED_TAG_PREFIX}{id}"), at.to_string())
}

/// The record written before a key is made: the user's keys until then (tag values allow
/// letters, digits and spaces, not commas).
pub fn pending_key_tag(known: &[String]) -> (String, String) {
    (
        DELIVERING_TAG.to_string(),
        format!("{PENDING_PREFIX}{}", known.join(" ")),
    )
}

/// The tag key of `pending_key_tag`, to remove it.
pub fn delivering_tag_key() -> String {
    DELIVERING_TAG.to_string()
}

pub fn delivered_tag(id: &str) -> (String, String) {
    (DELIVERED_TAG.to_string(), id.to_string())
}

/// The tag keys to remove when a key is deleted.
pub fn key_tag_keys(id: &str) -> Vec<String> {
    vec![
        format!("{DEACTIVATED_TAG_PREFIX}{id}"),
        format!("{ISSUED_TAG_PREFIX}{id}"),
        format!("{CREATED_TAG_PREFIX}{id}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_description_marker_round_trips() {
        let desc = marked_description("invoke one function", "demo");
        assert_eq!(
            split_policy_description(&desc),
            ("invoke one function".into(), Some("demo".into()))
        );
        assert_eq!(
            split_policy_description(&marked_description("", "x")),
            (String::new(), Some("x".into()))
        );
        assert_eq!(split_policy_description("plain"), ("plain".into(), None));
    }

    #[test]
    fn group_marker_round_trips() {
        assert_eq!(group_marker_stack(&group_marker_name("demo")), Some("demo"));
        assert_eq!(group_marker_stack("logs"), None);
    }

    #[test]
    fn key_history_round_trips_through_user_tags() {
        let mut tags = BTreeMap::from([("team".to_string(), "data".to_string())]);
        tags.extend(deactivated_tag("AKIA1", 100));
        let (k, v) = created_tag("AKIA4", 300);
        tags.insert(k, v);
        let (k, v) = issued_tag("AKIA2", 200);
        tags.insert(k, v);
        let (k, v) = delivered_tag("AKIA2");
        tags.insert(k, v);
        tags.insert("iamplan:issued:AKIA3".into(), "not a number".into());
        let h = KeyHistory::take_from(&mut tags);
        assert_eq!(h.deactivated, BTreeMap::from([("AKIA1".into(), 100)]));
        assert_eq!(h.issued, BTreeMap::from([("AKIA2".into(), 200)]));
        assert_eq!(h.created, BTreeMap::from([("AKIA4".into(), 300)]));
        assert!(h.mentions("AKIA4"));
        assert_eq!(h.delivered.as_deref(), Some("AKIA2"));
        assert!(h.mentions("AKIA1") && h.mentions("AKIA2") && !h.mentions("AKIA3"));
        // Only the user's own tags remain (a malformed iamplan tag is dropped, not kept).
        assert_eq!(tags, BTreeMap::from([("team".into(), "data".into())]));
        assert_eq!(key_tag_keys("AKIA1").len(), 3);
    }

    #[test]
    fn the_pending_record_names_the_key_made_after_it() {
        let mut tags = BTreeMap::from([pending_key_tag(&["AKIAOLD1".into(), "AKIAOLD2".into()])]);
        let h = KeyHistory::take_from(&mut tags);
        assert!(h.pending_made("AKIANEW"));
        assert!(!h.pending_made("AKIAOLD1") && !h.pending_made("AKIAOLD2"));
        // No keys before it: any key is the new one.
        let mut tags = BTreeMap::from([pending_key_tag(&[])]);
        assert!(KeyHistory::take_from(&mut tags).pending_made("AKIAX"));
        // The older form names the new key itself.
        let mut tags = BTreeMap::from([(DELIVERING_TAG.to_string(), "AKIANEW".to_string())]);
        let h = KeyHistory::take_from(&mut tags);
        assert!(h.pending_made("AKIANEW") && !h.pending_made("AKIAOLD"));
        assert!(!KeyHistory::default().pending_made("AKIANEW"));
    }
}
