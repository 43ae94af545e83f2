//! Command-line surface: options from the environment, several paths in one
//! drop, `fetch --all`, and drop ids on stdout for scripts.

use std::ffi::OsStr;

use sealdrop_e2e::{Hub, Party, read_bytes, tree};

#[test]
fn global_options_can_come_from_the_environment() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let file = camden.file("env.csv", b"from env\n");

    // The same as `Party::command` but with SEALDROP_* variables instead of flags.
    let mut cmd = std::process::Command::new(&sealdrop_e2e::bins().client);
    cmd.current_dir(camden.work())
        .env("HOME", camden.dir.path())
        .env("NO_COLOR", "1")
        .env("SEALDROP_CONFIG", camden.dir.path().join("none.toml"))
        .env("SEALDROP_HUB", &hub.url)
        .env("SEALDROP_IDENTITY", &camden.key)
        .env("SEALDROP_AUTHORITY", &camden.authority)
        .env("SEALDROP_STATE", &camden.state)
        .env_remove("SEALDROP_TEST_CLOCK")
        .args([OsStr::new("send"), OsStr::new("--to"), OsStr::new("islington"), file.as_os_str()]);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "send with SEALDROP_* variables failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(sealdrop_e2e::is_drop_id(&id), "{id:?}");
    assert!(islington.inbox_ids().contains(&id));
}

#[test]
fn several_paths_travel_as_one_drop() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let a = camden.file("a.csv", b"a\n");
    camden.file("reports/x/1.txt", b"1\n");
    camden.file("reports/2.txt", b"2\n");
    let elsewhere = camden.file("deep/down/b.txt", b"b\n");

    let id = camden.send("islington", &[&a, &camden.work().join("reports"), &elsewhere]);
    assert_eq!(islington.inbox_ids(), std::slice::from_ref(&id), "several paths must make one drop");
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    let got = tree(&out);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(names, ["a.csv", "b.txt", "reports/", "reports/2.txt", "reports/x/", "reports/x/1.txt"], "{names:?}");
    assert_eq!(got["a.csv"], b"a\n");
    assert_eq!(got["b.txt"], b"b\n");
    assert_eq!(got["reports/x/1.txt"], b"1\n");
}

#[test]
fn fetch_all_fetches_every_waiting_drop() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let hackney = Party::new(&hub, "hackney");
    let islington = Party::new(&hub, "islington");
    let one = camden.send("islington", &[&camden.file("one.csv", b"1\n")]);
    let two = hackney.send("islington", &[&hackney.file("two.csv", b"2\n")]);
    let mut waiting = islington.inbox_ids();
    waiting.sort();
    let mut want = vec![one.clone(), two.clone()];
    want.sort();
    assert_eq!(waiting, want);

    let out = islington.work().join("in");
    islington.ok([OsStr::new("fetch"), OsStr::new("--all"), OsStr::new("-o"), out.as_os_str()]);
    assert_eq!(read_bytes(&out.join("one.csv")), b"1\n");
    assert_eq!(read_bytes(&out.join("two.csv")), b"2\n");
    assert!(islington.inbox().is_empty(), "drops fetched with --all are still waiting");
    assert_eq!(camden.status_of(&one)["state"], "delivered");
    assert_eq!(hackney.status_of(&two)["state"], "delivered");

    // Nothing left: --all succeeds and writes nothing more.
    islington.ok([OsStr::new("fetch"), OsStr::new("--all"), OsStr::new("-o"), out.as_os_str()]);
    assert_eq!(sealdrop_e2e::list_dir(&out), ["one.csv", "two.csv"]);
}

#[test]
fn fetch_takes_several_ids() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let one = camden.send("islington", &[&camden.file("one.csv", b"1\n")]);
    let two = camden.send("islington", &[&camden.file("two.csv", b"2\n")]);
    let three = camden.send("islington", &[&camden.file("three.csv", b"3\n")]);
    let out = islington.work().join("in");
    islington.ok([OsStr::new("fetch"), OsStr::new(&one), OsStr::new(&three), OsStr::new("-o"), out.as_os_str()]);
    assert_eq!(sealdrop_e2e::list_dir(&out), ["one.csv", "three.csv"]);
    assert_eq!(islington.inbox_ids(), [two]);
}

#[test]
fn fetch_defaults_to_the_current_folder() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let id = camden.send("islington", &[&camden.file("here.csv", b"here\n")]);
    islington.ok(["fetch", id.as_str()]);
    assert_eq!(read_bytes(&islington.work().join("here.csv")), b"here\n");
}
