use super::*;
use std::path::PathBuf;

fn rule() -> KeyRule {
    KeyRule {
        count: 1,
        rotate_after_days: Some(90),
        deactivate_after_days: 7,
        delete_after_days: 14,
        in_use_hours: 24,
        sink: Sink::Json {
            path: PathBuf::from("k.json"),
        },
    }
}

fn key(id: &str, active: bool, created_day: i64) -> LiveKey {
    LiveKey {
        id: id.into(),
        active,
        created: created_day * DAY,
        deactivated: None,
        tagged: false,
        last_used: None,
        pending: false,
    }
}

fn at(day: i64) -> KeyContext {
    KeyContext {
        now: day * DAY,
        ..KeyContext::default()
    }
}

#[test]
fn first_key_is_created() {
    let p = plan_keys(&rule(), &[], None, at(0));
    assert_eq!(p.actions, vec![KeyAction::Create]);
}

#[test]
fn young_current_key_is_left_alone() {
    let p = plan_keys(&rule(), &[key("A", true, 0)], Some("A"), at(89));
    assert!(p.actions.is_empty(), "{p:?}");
    assert!(p.reports[0].outlook.contains("rotates on"));
}

#[test]
fn rotation_is_due_after_n_days() {
    let p = plan_keys(&rule(), &[key("A", true, 0)], Some("A"), at(90));
    assert_eq!(p.actions, vec![KeyAction::Create]);
    let p = plan_keys(
        &rule(),
        &[key("A", true, 0)],
        Some("A"),
        KeyContext {
            rotate_now: true,
            ..at(1)
        },
    );
    assert_eq!(p.actions, vec![KeyAction::Create]);
}

#[test]
fn previous_key_is_deactivated_m_days_after_its_successor() {
    let keys = [key("A", true, 0), key("B", true, 90)];
    assert!(
        plan_keys(&rule(), &keys, Some("B"), at(96))
            .actions
            .is_empty()
    );
    let p = plan_keys(&rule(), &keys, Some("B"), at(97));
    assert_eq!(p.actions, vec![KeyAction::Deactivate { id: "A".into() }]);
}

#[test]
fn recently_used_previous_key_waits_unless_forced() {
    let mut a = key("A", true, 0);
    a.last_used = Some(LastUsed {
        when: 97 * DAY - HOUR,
        service: "sts".into(),
        region: "us-east-1".into(),
    });
    let keys = [a, key("B", true, 90)];
    let p = plan_keys(&rule(), &keys, Some("B"), at(97));
    assert!(p.actions.is_empty());
    assert!(
        p.reports[0].outlook.contains("--force"),
        "{:?}",
        p.reports[0]
    );
    let p = plan_keys(
        &rule(),
        &keys,
        Some("B"),
        KeyContext {
            force: true,
            ..at(97)
        },
    );
    assert_eq!(p.actions, vec![KeyAction::Deactivate { id: "A".into() }]);
}

#[test]
fn inactive_key_is_deleted_k_days_after_deactivation() {
    let mut a = key("A", false, 0);
    a.deactivated = Some(97 * DAY);
    let keys = [a, key("B", true, 90)];
    assert!(
        plan_keys(&rule(), &keys, Some("B"), at(110))
            .actions
            .is_empty()
    );
    assert_eq!(
        plan_keys(&rule(), &keys, Some("B"), at(111)).actions,
        vec![KeyAction::Delete { id: "A".into() }]
    );
}

#[test]
fn at_two_keys_an_inactive_one_makes_room_before_the_new_key() {
    let mut a = key("A", false, 0);
    a.deactivated = Some(100 * DAY);
    let keys = [a, key("B", true, 10)];
    let p = plan_keys(&rule(), &keys, Some("B"), at(100));
    assert_eq!(
        p.actions,
        vec![KeyAction::Delete { id: "A".into() }, KeyAction::Create]
    );
}

#[test]
fn two_active_keys_block_a_new_one_with_a_note() {
    let keys = [key("A", true, 80), key("B", true, 90)];
    let p = plan_keys(
        &rule(),
        &keys,
        Some("B"),
        KeyContext {
            rotate_now: true,
            ..at(92)
        },
    );
    assert!(!p.actions.contains(&KeyAction::Create));
    assert!(
        p.notes.iter().any(|n| n.contains("two active keys")),
        "{p:?}"
    );
}

#[test]
fn key_unknown_to_the_sink_is_replaced() {
    let p = plan_keys(&rule(), &[key("A", true, 0)], None, at(5));
    assert_eq!(
        p.actions,
        vec![KeyAction::Create, KeyAction::Deactivate { id: "A".into() }]
    );
    assert!(p.notes[0].contains("secret is lost"));
}

#[test]
fn only_key_is_never_deactivated_without_a_replacement() {
    let mut r = rule();
    r.rotate_after_days = None;
    // Current and in the sink: untouched however old.
    assert!(
        plan_keys(&r, &[key("A", true, 0)], Some("A"), at(1000))
            .actions
            .is_empty()
    );
}

#[test]
fn count_zero_deletes_every_key() {
    let mut r = rule();
    r.count = 0;
    let p = plan_keys(
        &r,
        &[key("A", true, 0), key("B", false, 1)],
        Some("A"),
        at(2),
    );
    assert_eq!(
        p.actions,
        vec![
            KeyAction::Delete { id: "A".into() },
            KeyAction::Delete { id: "B".into() }
        ]
    );
}

#[test]
fn times_parse_and_print() {
    let t = parse_time("2026-12-01T10:30:00Z").unwrap();
    assert_eq!(fmt_time(t), "2026-12-01 10:30Z");
    assert_eq!(parse_time("2026-12-01T12:30:00+02:00"), Some(t));
    assert_eq!(parse_time("1970-01-01"), Some(0));
    assert_eq!(parse_time("2026-13-01T00:00:00Z"), None);
    assert_eq!(parse_time("yesterday"), None);
    // Impossible dates and times were accepted by the hand-written parser.
    assert_eq!(parse_time("2027-02-30T00:00:00Z"), None);
    assert_eq!(parse_time("2027-01-01T25:99:00Z"), None);
    assert_eq!(parse_time("2027-02-29"), None);
    assert_eq!(parse_time("2028-02-29"), Some(1_835_395_200));
}

/// A crash after CreateAccessKey and before the delivery leaves a key newer than the sink's,
/// never used. With a rotation due, one run must delete it (nobody has its secret) and
/// issue the new key, not deactivate it and wait for a second run at the two-key limit.
#[test]
fn an_undelivered_never_used_key_is_deleted_at_once_even_when_rotation_is_due() {
    let keys = [key("OLD", true, 0), key("ORPHAN", true, 90)];
    // The run that made it died holding the stack's lock since day 90.
    let recovering = |day: i64| KeyContext {
        recovering_since: Some(90 * DAY),
        ..at(day)
    };
    let p = plan_keys(&rule(), &keys, Some("OLD"), recovering(90));
    assert_eq!(
        p.actions,
        vec![
            KeyAction::Delete {
                id: "ORPHAN".into()
            },
            KeyAction::Create
        ],
        "{p:?}"
    );
    assert!(
        p.reports[1]
            .outlook
            .starts_with("delete now: made after the sink's key and never used")
    );
    // Not due: the orphan still goes, and nothing else happens.
    let keys = [key("OLD", true, 0), key("ORPHAN", true, 50)];
    let since_50 = |day: i64| KeyContext {
        recovering_since: Some(50 * DAY),
        ..at(day)
    };
    let p = plan_keys(&rule(), &keys, Some("OLD"), since_50(51));
    assert_eq!(
        p.actions,
        vec![KeyAction::Delete {
            id: "ORPHAN".into()
        }],
        "{p:?}"
    );
    // Without a dead run's lock (a key made by hand, a stale copy of the sink elsewhere):
    // deactivated, which can be undone, not deleted.
    let p = plan_keys(&rule(), &keys, Some("OLD"), at(51));
    assert_eq!(
        p.actions,
        vec![KeyAction::Deactivate {
            id: "ORPHAN".into()
        }],
        "{p:?}"
    );
    // A key that was used may be in someone's hands: it is deactivated, not deleted.
    let mut used = key("ORPHAN", true, 30);
    used.last_used = Some(LastUsed {
        when: 31 * DAY,
        service: "sts".into(),
        region: "us-east-1".into(),
    });
    let p = plan_keys(
        &rule(),
        &[key("OLD", true, 0), used],
        Some("OLD"),
        recovering(40),
    );
    assert_eq!(
        p.actions,
        vec![KeyAction::Deactivate {
            id: "ORPHAN".into()
        }],
        "{p:?}"
    );
}

/// The dead run's record names its key: it is its leftover even when IAM gave it the same
/// second as the sink's key (which the creation times alone cannot tell apart).
#[test]
fn a_recorded_key_made_in_the_sink_keys_second_is_the_dead_runs_leftover() {
    let mut orphan = key("NEW", true, 90);
    orphan.pending = true;
    let keys = [key("OLD", true, 90), orphan];
    let cx = KeyContext {
        recovering_since: Some(90 * DAY),
        ..at(90)
    };
    let p = plan_keys(&rule(), &keys, Some("OLD"), cx);
    assert_eq!(
        p.actions,
        vec![KeyAction::Delete { id: "NEW".into() }],
        "{p:?}"
    );
    // Without the record, the same second reads as the sink key's predecessor.
    let keys = [key("OLD", true, 90), key("NEW", true, 90)];
    let p = plan_keys(&rule(), &keys, Some("OLD"), cx);
    assert!(p.actions.is_empty(), "{p:?}");
}

/// A key made for a command sink whose delivery the command never confirmed: the command
/// holds it or the previous key. It is never counted as delivered, the previous key is not
/// retired for it, and the run that takes the lock over replaces it with a key whose
/// delivery it sees succeed.
#[test]
fn an_unconfirmed_command_key_is_replaced_and_the_held_key_kept() {
    let mut command = rule();
    command.sink = Sink::Command {
        argv: vec!["store".into()],
        timeout_seconds: None,
    };
    let mut unconfirmed = key("NEW", true, 10);
    unconfirmed.pending = true;
    let keys = [key("OLD", true, 0), unconfirmed];
    // A plan (no lock taken over): nothing happens to either key.
    let p = plan_keys(&command, &keys, Some("OLD"), at(11));
    assert!(p.actions.is_empty(), "{p:?}");
    assert!(
        p.reports[1]
            .outlook
            .starts_with("kept: a run stopped before the command confirmed")
    );
    // The run that takes the lock over: the unconfirmed key goes, a new one is handed over,
    // and the held key is not deactivated now.
    let cx = KeyContext {
        recovering_since: Some(10 * DAY),
        ..at(11)
    };
    let p = plan_keys(&command, &keys, Some("OLD"), cx);
    assert_eq!(
        p.actions,
        vec![KeyAction::Delete { id: "NEW".into() }, KeyAction::Create],
        "{p:?}"
    );
}
