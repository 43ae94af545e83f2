//! The coordinator's first afternoon with the real binaries: `directory new`
//! from key cards, the JSON Schema `directory sign` enforces, `directory
//! fingerprint`, listing the hub's log key after `sealdrop-hub init`
//! (`directory set-hub`), and `issued_at` kept current by every edit.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use sealdrop_e2e::{
    Coordinator, Hub, Party, TestClock, Tool, copy_with_mode, example_directory_json, hub_command, json, keys_example,
    new_member, read_text, repo_root, write_file,
};

/// Key cards for `members` (`party/member`) in `dir/cards`; returns the card folder and the key files.
fn cards(dir: &Path, members: &[&str]) -> (PathBuf, Vec<PathBuf>) {
    let cards = dir.join("cards");
    std::fs::create_dir_all(&cards).unwrap();
    let keys = members
        .iter()
        .map(|m| {
            let (party, member) = m.split_once('/').unwrap();
            let (key, card) = new_member(dir, party, member);
            std::fs::rename(&card, cards.join(card.file_name().unwrap())).unwrap();
            key
        })
        .collect();
    (cards, keys)
}

fn new_args<'a>(cards: &'a Path, out: &'a Path) -> Vec<&'a OsStr> {
    [
        OsStr::new("directory"),
        "new".as_ref(),
        "--cards".as_ref(),
        cards.as_os_str(),
        "--agreement".as_ref(),
        "fsm-share".as_ref(),
        "--purpose".as_ref(),
        "Each home borough receives its residents' free school meals records".as_ref(),
        "--lawful-basis".as_ref(),
        "UK GDPR Art. 6(1)(e); Education Act 1996".as_ref(),
        "--valid-from".as_ref(),
        "2026-01-01".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]
    .to_vec()
}

#[test]
fn directory_new_builds_a_directory_from_key_cards_and_never_overwrites() {
    let tool = Tool::new();
    let dir = tool.dir.path();
    let (cards, _) =
        cards(dir, &["camden/data-team", "camden/sen-team", "hammersmith-and-fulham/data-team", "kent/data-team"]);
    // A witness key beside the cards goes to its party.
    let witness = tool.ok([
        OsStr::new("witness"),
        "keygen".as_ref(),
        "--party".as_ref(),
        "camden".as_ref(),
        "--out".as_ref(),
        dir.join("camden-witness.key").as_os_str(),
    ]);
    write_file(&cards.join("camden.witness.pub"), &witness);
    let out = dir.join("directory.json");
    let stdout = tool.ok(new_args(&cards, &out));
    assert!(stdout.contains("3 parties, 4 member keys from 5 files"), "{stdout}");

    let d = json(&read_text(&out));
    assert_eq!(d["serial"], 1);
    let parties = d["parties"].as_array().unwrap();
    let ids: Vec<&str> = parties.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["camden", "hammersmith-and-fulham", "kent"], "London's order, then the others");
    // London parties get their names and codes from the reference list.
    assert_eq!(parties[0]["name"], "Camden");
    assert_eq!(parties[0]["aliases"], serde_json::json!(["E09000007", "202"]));
    assert_eq!(parties[1]["name"], "Hammersmith and Fulham");
    assert_eq!(parties[1]["aliases"], serde_json::json!(["E09000013", "205"]));
    // Others only their id as a name, and the coordinator is told.
    assert_eq!((parties[2]["name"].as_str(), parties[2]["aliases"].as_array().map(Vec::len)), (Some("Kent"), Some(0)));
    let members: Vec<&str> =
        parties[0]["members"].as_array().unwrap().iter().map(|m| m["member"].as_str().unwrap()).collect();
    assert_eq!(members, ["data-team", "sen-team"], "grouped by party");
    assert_eq!(parties[0]["witness_keys"][0].as_str(), Some(witness.trim()));
    let a = &d["agreements"][0];
    assert_eq!(a["id"], "fsm-share");
    assert_eq!(a["parties"], serde_json::json!(["camden", "hammersmith-and-fulham", "kent"]));
    assert_eq!(
        (a["valid_from"].as_str(), a["valid_until"].as_str()),
        (Some("2026-01-01T00:00:00Z"), Some("2027-01-01T00:00:00Z"))
    );
    assert_eq!(a["max_expiry_days"], 30);

    // It signs as it is.
    let key = dir.join("authority.key");
    tool.ok([
        OsStr::new("directory"),
        "keygen".as_ref(),
        "--name".as_ref(),
        "test-coordinator".as_ref(),
        "--out".as_ref(),
        key.as_os_str(),
    ]);
    let signed = dir.join("directory.signed");
    tool.ok([
        OsStr::new("directory"),
        "sign".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        "--input".as_ref(),
        out.as_os_str(),
        "--out".as_ref(),
        signed.as_os_str(),
    ]);

    // Never overwritten.
    let before = read_text(&out);
    let (code, stderr) = tool.fail(new_args(&cards, &out));
    assert_eq!((code, sealdrop_e2e::error_code(&stderr).as_deref()), (3, Some("output_exists")), "{stderr}");
    assert_eq!(read_text(&out), before);

    // Something in the folder that is not a card is named.
    write_file(&cards.join("notes.txt"), "call Kent on Monday");
    let (_, stderr) = tool.fail(new_args(&cards, &dir.join("other.json")));
    assert!(stderr.starts_with("error[bad_card]: ") && stderr.contains("notes.txt"), "{stderr}");
    assert!(!dir.join("other.json").exists());
}

/// An agreement made "from now" is in force the moment `directory new`
/// returns: its start is now's whole second, never the next one (CI once
/// sent within half a second of `directory new` and was refused as "not in
/// force until" a time half a second ahead).
#[test]
fn an_agreement_made_from_now_is_in_force_at_once() {
    let tool = Tool::new();
    let dir = tool.dir.path();
    let (cards, _) = cards(dir, &["camden/data-team", "islington/data-team"]);
    let clock = TestClock::new();
    std::fs::write(clock.path(), "2026-12-07T15:35:20.900Z").unwrap();
    let out = dir.join("directory.json");
    let args: Vec<&OsStr> =
        new_args(&cards, &out).into_iter().filter(|a| *a != "--valid-from" && *a != "2026-01-01").collect();
    let mut cmd = tool.command();
    cmd.env("SEALDROP_TEST_CLOCK", clock.path()).args(args);
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let d = json(&read_text(&out));
    assert_eq!(d["agreements"][0]["valid_from"].as_str(), Some("2026-12-07T15:35:20Z"));
    assert_eq!(d["issued_at"].as_str(), Some("2026-12-07T15:35:20Z"));
}

/// A change that breaks a directory.
type Breaker = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn directory_sign_names_the_field_that_breaks_the_schema() {
    let tool = Tool::new();
    let key = sealdrop_e2e::authority_key_copy(tool.dir.path());
    // What the schema can say too (not: which parties exist, whose key it is).
    let cross_field = ["there is no party", "it is listed as"];
    let cases: Vec<(&str, Breaker)> = vec![
        (
            "parties[2].members[0].signing_key: malformed signed-note key",
            Box::new(|d| d["parties"][2]["members"][0]["signing_key"] = "barnet/data-team+1234".into()),
        ),
        (
            "parties[1].members[0].age_recipient: \"age1nope\" is not an age recipient sealdrop encrypts to",
            Box::new(|d| d["parties"][1]["members"][0]["age_recipient"] = "age1nope".into()),
        ),
        ("parties[4].colour: unknown field `colour`", Box::new(|d| d["parties"][4]["colour"] = "red".into())),
        (
            "agreements[0]: missing field `lawful_basis`",
            Box::new(|d| {
                d["agreements"][0].as_object_mut().unwrap().remove("lawful_basis");
            }),
        ),
        (
            "agreements[0].parties[33]: there is no party `kent`",
            Box::new(|d| d["agreements"][0]["parties"].as_array_mut().unwrap().push("kent".into())),
        ),
        (
            "parties[3].members[0].signing_key: the key is named \"camden/data-team\", but it is listed as bexley/data-team",
            Box::new(|d| {
                d["parties"][3]["members"][0]["signing_key"] = d["parties"][6]["members"][0]["signing_key"].clone()
            }),
        ),
        ("hub: missing field `log_key`", Box::new(|d| d["hub"] = serde_json::json!({"origin": "hub.example.org"}))),
        (
            "agreements[0].max_expiry_days: must be at least 1",
            Box::new(|d| d["agreements"][0]["max_expiry_days"] = 0.into()),
        ),
    ];
    for (i, (expected, break_it)) in cases.iter().enumerate() {
        let mut d = example_directory_json();
        break_it(&mut d);
        let input = tool.dir.path().join(format!("broken-{i}.json"));
        write_file(&input, serde_json::to_string_pretty(&d).unwrap());
        let out = tool.dir.path().join(format!("broken-{i}.signed"));
        let (code, stderr) = tool.fail([
            OsStr::new("directory"),
            "sign".as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            "--input".as_ref(),
            input.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        sealdrop_e2e::assert_one_error_line(&stderr);
        assert_eq!(code, 3, "{stderr}");
        assert!(stderr.starts_with("error[directory_invalid]: "), "{stderr}");
        assert!(stderr.contains(expected), "case {i}: expected {expected:?} in {stderr}");
        assert!(!out.exists());
        // The schema refuses it too.
        if !cross_field.iter().any(|c| expected.contains(c)) {
            assert!(schema::validate(&schema::load(), &d).is_err(), "case {i}: the schema accepts it");
        }
    }
}

/// The subset of JSON Schema `docs/directory.schema.json` uses, enough to
/// check documents against it here.
mod schema {
    use serde_json::Value;

    pub fn load() -> Value {
        sealdrop_e2e::json(&sealdrop_e2e::read_text(&sealdrop_e2e::repo_root().join("docs/directory.schema.json")))
    }

    pub fn validate(root: &Value, doc: &Value) -> Result<(), String> {
        check(root, root, doc, "")
    }

    fn check(root: &Value, s: &Value, v: &Value, at: &str) -> Result<(), String> {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("unsupported $ref {r}"));
            check(root, &root["$defs"][name], v, at)?;
        }
        let known = [
            "$schema",
            "$id",
            "$ref",
            "$defs",
            "title",
            "description",
            "type",
            "additionalProperties",
            "required",
            "properties",
            "items",
            "pattern",
            "minimum",
            "maximum",
            "minLength",
        ];
        if let Some(k) = s.as_object().unwrap().keys().find(|k| !known.contains(&k.as_str())) {
            panic!("the test does not know the schema keyword {k}");
        }
        let fail = |why: String| Err(format!("{at}: {why}"));
        match s.get("type").and_then(Value::as_str) {
            Some("object") if !v.is_object() => return fail("not an object".into()),
            Some("array") if !v.is_array() => return fail("not an array".into()),
            Some("string") if !v.is_string() => return fail("not a string".into()),
            Some("integer") if !(v.is_u64() || v.is_i64()) => return fail("not an integer".into()),
            _ => {}
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str)
            && !regex::Regex::new(p).unwrap().is_match(v.as_str().unwrap())
        {
            return fail(format!("does not match {p}"));
        }
        if let Some(n) = s.get("minLength").and_then(Value::as_u64)
            && (v.as_str().unwrap().chars().count() as u64) < n
        {
            return fail("too short".into());
        }
        if let Some(n) = s.get("minimum").and_then(Value::as_f64)
            && v.as_f64().unwrap() < n
        {
            return fail(format!("below {n}"));
        }
        if let Some(n) = s.get("maximum").and_then(Value::as_f64)
            && v.as_f64().unwrap() > n
        {
            return fail(format!("above {n}"));
        }
        if let Some(obj) = v.as_object() {
            let props = s.get("properties").and_then(Value::as_object);
            for r in s.get("required").and_then(Value::as_array).into_iter().flatten() {
                if !obj.contains_key(r.as_str().unwrap()) {
                    return fail(format!("missing {r}"));
                }
            }
            for (k, val) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => check(root, ps, val, &format!("{at}.{k}"))?,
                    None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return fail(format!("unknown field {k}"));
                    }
                    None => {}
                }
            }
        }
        if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
            for (i, val) in arr.iter().enumerate() {
                check(root, items, val, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }
}

#[test]
fn the_schema_accepts_every_directory_the_tools_write() {
    let schema = schema::load();
    // The published example, and one with every optional part: a hub, witness keys, a revocation.
    schema::validate(&schema, &example_directory_json()).unwrap();
    let coordinator = Coordinator::new();
    let keys = tempfile::tempdir().unwrap();
    let (_, card) = new_member(keys.path(), "camden", "data-team");
    coordinator.run(&[
        "directory",
        "revoke",
        "--key",
        "camden/data-team",
        "--reason",
        "left",
        "--replace-with",
        card.to_str().unwrap(),
    ]);
    let hub_log = sealdrop_proto::keys::NoteSigningKey::generate("test-hub").unwrap().verifier().to_string();
    coordinator.run(&["directory", "set-hub", "--log-key", &hub_log]);
    let d = json(&read_text(&coordinator.json));
    assert!(d["hub"]["log_key"].is_string() && d["parties"][6]["revoked"][0].is_object(), "{d}");
    schema::validate(&schema, &d).unwrap();
    // The schema's own refusals are real ones.
    let mut bad = d.clone();
    bad["parties"][0]["members"][0]["age_recipient"] = "age1bbbb".into();
    let err = schema::validate(&schema, &bad).unwrap_err();
    assert!(err.starts_with(".parties[0].members[0].age_recipient: does not match"), "{err}");
    let mut bad = d;
    bad["hub"]["log_key"] = "test-hub+xyz".into();
    assert!(schema::validate(&schema, &bad).unwrap_err().starts_with(".hub.log_key: "));
}

#[test]
fn directory_fingerprint_prints_the_fingerprint_every_other_command_shows() {
    let tool = Tool::new();
    let dir = tool.dir.path();
    let fp = |file: &Path| -> serde_json::Value {
        json(&tool.ok([OsStr::new("directory"), "fingerprint".as_ref(), file.as_os_str(), "--json".as_ref()]))
    };
    // A member key: its card and its secret key file give what `keygen` printed.
    let key = dir.join("camden.key");
    let out = tool
        .command()
        .args(["keygen", "--party", "camden", "--member", "data-team", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let printed = stderr.split("fingerprint ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    write_file(&dir.join("card.json"), &out.stdout);
    for file in [dir.join("card.json"), key] {
        let f = fp(&file);
        assert_eq!(
            (f["fingerprint"].as_str(), f["name"].as_str()),
            (Some(printed.as_str()), Some("camden/data-team")),
            "{f}"
        );
    }
    // The authority key, public and secret, as the demo and the IG report show it.
    let public = keys_example().join("authority.pub");
    let vk: sealdrop_proto::keys::NoteVerifierKey = read_text(&public).trim().parse().unwrap();
    let line = tool.ok([OsStr::new("directory"), "fingerprint".as_ref(), public.as_os_str()]);
    assert_eq!(line.trim(), format!("{}  {}  (authority, hub log or member public key)", vk.fingerprint(), vk.name()));
    assert_eq!(fp(&sealdrop_e2e::authority_key_copy(dir))["fingerprint"].as_str(), Some(vk.fingerprint().as_str()));
    // A hub's log key, printed by `sealdrop-hub verifier-key`.
    let data = Hub::init_data();
    let out = hub_command().args(["verifier-key", "--data"]).arg(data.path()).output().unwrap();
    write_file(&dir.join("hub-log.pub"), &out.stdout);
    let log: sealdrop_proto::keys::NoteVerifierKey = String::from_utf8(out.stdout).unwrap().trim().parse().unwrap();
    let f = fp(&dir.join("hub-log.pub"));
    assert_eq!((f["fingerprint"].as_str(), f["name"].as_str()), (Some(log.fingerprint().as_str()), Some("test-hub")));
    // Anything else is refused, naming the file.
    let (code, stderr) =
        tool.fail([OsStr::new("directory"), "fingerprint".as_ref(), repo_root().join("README.md").as_os_str()]);
    assert_eq!(code, 3);
    assert!(stderr.starts_with("error[key_invalid]: ") && stderr.contains("README.md"), "{stderr}");
}

#[test]
fn every_edit_and_signature_sets_issued_at_to_now_never_back() {
    let clock = TestClock::new();
    let coordinator = Coordinator::new();
    let issued = |file: &Path| json(&read_text(file))["issued_at"].as_str().unwrap().to_owned();
    let run = |args: &[&str]| {
        let mut cmd = coordinator.tool.command();
        cmd.env("SEALDROP_TEST_CLOCK", clock.path()).args(args).arg("--input").arg(&coordinator.json);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let keys = tempfile::tempdir().unwrap();
    assert_eq!(issued(&coordinator.json), "2026-11-26T00:00:00Z", "the example's");

    // An edit a year later: issued now.
    let t1 = 1_826_000_000; // 2027-11-12
    clock.set(t1);
    let (_, card) = new_member(keys.path(), "camden", "sen-team");
    run(&["directory", "add-member", "--card", card.to_str().unwrap()]);
    let at = |t: i64| sealdrop_proto::Timestamp::from_second(t).unwrap().to_string();
    assert_eq!(issued(&coordinator.json), at(t1));
    clock.advance(3600);
    run(&["directory", "revoke", "--key", "camden/sen-team", "--reason", "left"]);
    assert_eq!(issued(&coordinator.json), at(t1 + 3600));
    // A clock behind the file's time does not take it back.
    clock.set(t1 - 86_400);
    let log_key = sealdrop_proto::keys::NoteSigningKey::generate("hub.example.org").unwrap().verifier().to_string();
    run(&["directory", "set-hub", "--log-key", &log_key]);
    assert_eq!(issued(&coordinator.json), at(t1 + 3600));
    assert_eq!(json(&read_text(&coordinator.json))["serial"], 4);

    // Signing a day later signs it as issued then, leaving the file alone.
    clock.set(t1 + 86_400);
    let signed = coordinator.tool.dir.path().join("d.signed");
    let out = coordinator
        .tool
        .command()
        .env("SEALDROP_TEST_CLOCK", clock.path())
        .args(["directory", "sign", "--key"])
        .arg(&coordinator.key)
        .arg("--input")
        .arg(&coordinator.json)
        .arg("--out")
        .arg(&signed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let note = read_text(&signed);
    assert!(note.contains(&format!("\"issued_at\": \"{}\"", at(t1 + 86_400))), "{note}");
    assert_eq!(issued(&coordinator.json), at(t1 + 3600));
}

/// The README's order: a directory without the hub, signed; the hub
/// initialised with it; its log key printed, listed by the coordinator,
/// signed and published; members then send and fetch, and the audit says the
/// log key is the one the directory vouches for.
#[test]
fn a_deployment_from_key_cards_lists_the_hubs_log_key_after_the_hub_exists() {
    let tool = Tool::new();
    let dir = tool.dir.path();
    let (cards, keys) = cards(dir, &["camden/data-team", "islington/data-team"]);
    let json_file = dir.join("directory.json");
    tool.ok(new_args(&cards, &json_file));
    let authority = dir.join("authority.key");
    tool.ok([
        OsStr::new("directory"),
        "keygen".as_ref(),
        "--name".as_ref(),
        "coordinator.test".as_ref(),
        "--out".as_ref(),
        authority.as_os_str(),
    ]);
    let sign = |out: &Path| {
        tool.ok([
            OsStr::new("directory"),
            "sign".as_ref(),
            "--key".as_ref(),
            authority.as_os_str(),
            "--input".as_ref(),
            json_file.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
    };
    let first = dir.join("directory-1.signed");
    sign(&first);

    // The hub operator initialises the hub with it and prints the log key.
    let data = tempfile::tempdir().unwrap();
    let out = hub_command()
        .args(["init", "--data"])
        .arg(data.path())
        .args(["--origin", "hub.test.example", "--authority"])
        .arg(authority.with_extension("pub"))
        .arg("--directory")
        .arg(&first)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = hub_command().args(["verifier-key", "--data"]).arg(data.path()).output().unwrap();
    assert!(out.status.success());
    let hub_log = dir.join("hub-log.pub");
    write_file(&hub_log, &out.stdout);
    let hub = Hub::serve_initialised(data, None);

    // The coordinator lists it: a wrong origin is refused, the right one defaults.
    let set_hub = |extra: &[&str]| {
        let mut args = vec![
            "directory",
            "set-hub",
            "--input",
            json_file.to_str().unwrap(),
            "--log-key",
            hub_log.to_str().unwrap(),
        ];
        args.extend(extra);
        tool.run(args)
    };
    let wrong = set_hub(&["--origin", "hub.other.example"]);
    assert_eq!(wrong.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&wrong.stderr)
            .starts_with("error[key_invalid]: the log key is named \"hub.test.example\"")
    );
    assert!(set_hub(&[]).status.success());
    let d = json(&read_text(&json_file));
    assert_eq!((d["serial"].as_u64(), d["hub"]["origin"].as_str()), (Some(2), Some("hub.test.example")));
    assert_eq!(d["hub"]["log_key"].as_str(), Some(read_text(&hub_log).trim()));
    let second = dir.join("directory.signed");
    sign(&second);

    // The members, each with its own key and the coordinator's authority.pub.
    let member = |id: &str, key: &Path| {
        let p = Party::new(&hub, id);
        copy_with_mode(key, &p.key, 0o600);
        Party { authority: authority.with_extension("pub"), ..p }
    };
    let camden = member("camden", &keys[0]);
    let islington = member("islington", &keys[1]);
    let published = camden.ok([OsStr::new("directory"), "publish".as_ref(), second.as_os_str()]);
    assert!(published.contains("serial 2"), "{published}");
    let shown = json(&islington.ok(["directory", "show", "--json"]));
    assert_eq!(shown["hub"]["log_key"].as_str(), Some(read_text(&hub_log).trim()));

    let id = camden.send("islington", &[&camden.file("fsm.csv", "upn\nA1\n")]);
    islington.fetch(&id, &islington.work());
    assert_eq!(read_text(&islington.work().join("fsm.csv")), "upn\nA1\n");
    let audit = json(&islington.ok(["audit", "verify", "--json"]));
    assert_eq!((audit["verified"].as_bool(), audit["log_key_vouched"].as_bool()), (Some(true), Some(true)), "{audit}");
}
