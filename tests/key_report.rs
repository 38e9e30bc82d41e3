//! Access keys read from the credential report (two calls) instead of one ListAccessKeys
//! per user: a no-change plan makes no per-user read, and every out-of-band key change
//! the plan acts on is still seen (against MiniStack, whose report is made on request).

mod common;

use common::{Emulator, api_calls as calls, write};

const USERS: usize = 10;

fn plan_text() -> String {
    let mut t = String::from("[stack]\nname = \"report\"\n");
    for u in 0..USERS {
        t.push_str(&format!(
            "[user.robot{u}]\n[user.robot{u}.access_keys]\nsink = {{ type = \"json\", path = \"keys/robot{u}.json\" }}\n"
        ));
    }
    t
}

fn sink_key(dir: &std::path::Path, u: usize) -> String {
    let text = std::fs::read_to_string(dir.join(format!("keys/robot{u}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["AccessKeyId"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_credential_report_replaces_per_user_reads_and_misses_no_change() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", &plan_text());
    let plan = plan.to_str().unwrap();
    emu.iamplan(&["apply", plan, "--auto-approve"])
        .expect(0, "apply");

    let clean = emu
        .iamplan(&["plan", plan, "--detailed-exitcode", "--stats"])
        .expect(0, "a plan right after apply");
    let c = calls(&clean.stderr);
    assert_eq!(c.get("GetCredentialReport"), Some(&1), "{c:?}");
    assert_eq!(c.get("ListAccessKeys"), None, "no per-user read: {c:?}");

    // Out of band: robot0's key deleted; robot1 given a second key; robot2's key
    // deactivated; robot3's key replaced by one made by hand. Keys made by hand come a
    // second later than iamplan's (IAM's creation times have one-second steps: a key of
    // the same second as the sink's counts as its predecessor, with a predecessor's grace).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let iam = emu.iam().await;
    let key = |u: usize| sink_key(dir.path(), u);
    iam.delete_access_key()
        .user_name("robot0")
        .access_key_id(key(0))
        .send()
        .await
        .unwrap();
    iam.create_access_key()
        .user_name("robot1")
        .send()
        .await
        .unwrap();
    iam.update_access_key()
        .user_name("robot2")
        .access_key_id(key(2))
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();
    iam.delete_access_key()
        .user_name("robot3")
        .access_key_id(key(3))
        .send()
        .await
        .unwrap();
    iam.create_access_key()
        .user_name("robot3")
        .send()
        .await
        .unwrap();

    let drifted = emu
        .iamplan(&["plan", plan, "--json", "--stats"])
        .expect(0, "plan after the out-of-band changes");
    let c = calls(&drifted.stderr);
    // Only the users with a key iamplan did not make are read one by one.
    assert_eq!(c.get("ListAccessKeys"), Some(&2), "{c:?}");
    let json: serde_json::Value = serde_json::from_str(&drifted.stdout).unwrap();
    let changed: Vec<String> = json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["change"]["actions"] != serde_json::json!(["no-op"]))
        .map(|r| r["address"].as_str().unwrap().to_string())
        .collect();
    for u in 0..4 {
        assert!(
            changed.iter().any(|a| a.contains(&format!("robot{u}"))),
            "robot{u}'s out-of-band key change is in the plan: {changed:?}"
        );
    }
    for u in 4..USERS {
        assert!(
            !changed
                .iter()
                .any(|a| a.contains(&format!("robot{u}\"")) || a.ends_with(&format!("robot{u}"))),
            "robot{u} is unchanged: {changed:?}"
        );
    }

    // Applying converges: the next plan is clean, again without per-user reads except
    // where a key iamplan did not make remains (robot1's extra key, now deactivated).
    emu.iamplan(&["apply", plan, "--auto-approve"])
        .expect(0, "apply the repairs");
    let again = emu
        .iamplan(&["plan", plan, "--detailed-exitcode", "--stats"])
        .expect(0, "clean after the repairs");
    let c = calls(&again.stderr);
    assert!(c.get("ListAccessKeys").copied().unwrap_or(0) <= 2, "{c:?}");
}
