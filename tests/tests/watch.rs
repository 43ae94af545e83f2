//! `sealdrop watch`, the unattended service, as a process against a real
//! hub: files saved into an outbox folder reach the recipient's inbox
//! folder, acknowledged, and both sides are told; and every way that can go
//! wrong (a file still being written, a restart mid-send, the hub down, a
//! refused file, a misplaced file) ends with nothing lost and nothing sent twice.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use sealdrop_e2e::watch::{Watcher, files_below, wait_for};
use sealdrop_e2e::{AGREEMENT, Hub, Party, json, read_text};

/// Long enough for a loaded CI machine; the tests end as soon as the thing waited for happens.
const WITHIN: Duration = Duration::from_secs(60);

/// The job's `sent.json`.
fn sent_record(job: &std::path::Path) -> serde_json::Value {
    json(&read_text(&job.join("sent.json")))
}

#[test]
fn a_file_saved_in_the_outbox_reaches_the_recipients_inbox_acknowledged_and_both_sides_are_told() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let sender = Watcher::start(&camden, &[]);
    let receiver = Watcher::start(&islington, &[]);
    let content = b"upn,name,fsm\nA123,Ada,1\n";
    sender.drop_file("islington/fsm-islington.csv", content);

    // The sender: moved to sent/<job>/ with its drop id.
    let jobs = sender.wait_jobs("sent", 1, WITHIN);
    let job = &jobs[0];
    assert!(job.file_name().unwrap().to_string_lossy().ends_with("-fsm-islington.csv"), "{job:?}");
    assert_eq!(std::fs::read(job.join("fsm-islington.csv")).unwrap(), content, "the sent file is kept as it was");
    let record = sent_record(job);
    let drop = record["drops"][0]["drop"].as_str().unwrap().to_owned();
    assert_eq!(record["drops"][0]["to"], serde_json::json!(["islington"]));
    assert_eq!(record["agreement"], AGREEMENT);
    assert_eq!(record["drops"][0]["already_sent"], false);
    let receipt = record["drops"][0]["receipt"].as_str().expect("a receipt beside the file");
    assert!(job.join(receipt).is_file());
    let left = files_below(&sender.dir.join("outbox"));
    assert!(left.is_empty(), "nothing left in the outbox: {left:?}");

    // The receiver: placed under inbox/<sender>/<agreement>/, private, acknowledged.
    let placed = receiver.dir.join("inbox").join("camden").join(AGREEMENT).join("fsm-islington.csv");
    wait_for(WITHIN, "the file in islington's inbox", || placed.is_file().then_some(()));
    assert_eq!(std::fs::read(&placed).unwrap(), content);
    assert_eq!(placed.metadata().unwrap().permissions().mode() & 0o777, 0o600, "received records are 0600");
    let arrived = receiver.wait_event("arrived", WITHIN);
    assert_eq!(arrived["drops"], serde_json::json!([drop]));
    assert_eq!(arrived["from"], "camden");
    assert_eq!(arrived["agreement"], AGREEMENT);
    assert_eq!(arrived["files"], 1);
    assert!(!arrived.to_string().contains("fsm-islington"), "no file names unless configured: {arrived}");
    assert!(!arrived.to_string().contains("Ada"), "never content: {arrived}");
    wait_for(WITHIN, "the drop to leave islington's inbox", || islington.inbox_ids().is_empty().then_some(()));

    // The sender is told of the acknowledgement.
    let acked = sender.wait_event("acknowledged", WITHIN);
    assert_eq!((acked["drops"][0].as_str(), acked["to"][0].as_str()), (Some(drop.as_str()), Some("islington")));
    let status = sender.status();
    assert_eq!(status["sent"], 1, "{status}");
    assert_eq!(status["health"], "ok");
    assert_eq!(receiver.status()["received"], 1);
}

#[test]
fn a_file_still_being_written_is_not_taken_until_it_settles() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let sender = Watcher::start(&camden, &["--settle", "3"]);
    let path = sender.dir.join("outbox").join("islington").join("ehc.csv");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Written in place, the way a copy over SMB writes: a first part...
    std::fs::write(&path, b"upn,plan\n").unwrap();
    for i in 0..4 {
        std::thread::sleep(Duration::from_millis(700));
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, format!("A{i},yes\n").as_bytes()).unwrap();
        assert!(path.is_file(), "taken while still being written (after {} appends)", i + 1);
    }
    assert!(sender.jobs("sent").is_empty() && islington.inbox_ids().is_empty(), "nothing sent while it changed");
    let jobs = sender.wait_jobs("sent", 1, WITHIN);
    let id = sent_record(&jobs[0])["drops"][0]["drop"].as_str().unwrap().to_owned();
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    assert_eq!(read_text(&out.join("ehc.csv")), "upn,plan\nA0,yes\nA1,yes\nA2,yes\nA3,yes\n", "the whole file");
}

#[test]
fn temporary_and_lock_file_names_are_never_taken() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let sender = Watcher::start(&camden, &[]);
    let outbox = sender.dir.join("outbox").join("islington");
    std::fs::create_dir_all(&outbox).unwrap();
    // Writers' temporary names, Excel's save name, and what Explorer leaves
    // in a folder a member of staff opened over SMB.
    let names = [
        "~$ehc.xlsx",
        "big.csv.part",
        "big.csv.tmp",
        ".hidden.csv",
        "x.crdownload",
        "y.partial",
        "3A4F21B0",
        "Thumbs.db",
        "desktop.ini",
    ];
    for n in names {
        std::fs::write(outbox.join(n), b"upn\nA1\n").unwrap();
    }
    // Well past the settle time (1 s here): still there, nothing sent.
    std::thread::sleep(Duration::from_secs(5));
    for n in names {
        assert!(outbox.join(n).is_file(), "{n} was taken");
    }
    assert!(sender.jobs("sent").is_empty() && sender.jobs("failed").is_empty());
    assert!(islington.inbox_ids().is_empty());
    // The service was looking all along: a real file beside them is sent,
    // and only it.
    std::fs::write(outbox.join("ehc.csv"), b"upn\nA1\n").unwrap();
    let jobs = sender.wait_jobs("sent", 1, WITHIN);
    assert!(jobs[0].join("ehc.csv").is_file(), "the real file was sent: {jobs:?}");
    assert_eq!(islington.inbox_ids().len(), 1);
    for n in names {
        assert!(outbox.join(n).is_file(), "{n} was taken with the real file");
    }
    assert_eq!(sender.jobs("sent").len(), 1);
}

#[test]
fn a_file_written_then_renamed_is_sent_whole() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let sender = Watcher::start(&camden, &[]);
    let outbox = sender.dir.join("outbox").join("islington");
    std::fs::create_dir_all(&outbox).unwrap();
    let content = sealdrop_e2e::pseudo_random_bytes(300_000, 7);
    // Half written under a temporary name for longer than the settle time...
    std::fs::write(outbox.join("pupils.dat.part"), &content[..150_000]).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mut f = std::fs::OpenOptions::new().append(true).open(outbox.join("pupils.dat.part")).unwrap();
    std::io::Write::write_all(&mut f, &content[150_000..]).unwrap();
    drop(f);
    assert!(sender.jobs("sent").is_empty(), "a temporary name was sent");
    // ...then renamed: sent, byte for byte.
    std::fs::rename(outbox.join("pupils.dat.part"), outbox.join("pupils.dat")).unwrap();
    let jobs = sender.wait_jobs("sent", 1, WITHIN);
    let id = sent_record(&jobs[0])["drops"][0]["drop"].as_str().unwrap().to_owned();
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    assert_eq!(std::fs::read(out.join("pupils.dat")).unwrap(), content);
}

#[test]
fn a_file_in_an_unknown_party_folder_is_refused_into_failed_and_nothing_is_sent() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let sender = Watcher::start(&camden, &[]);
    sender.drop_file("islingtn/fsm.csv", b"upn\nA1\n");
    sender.drop_file("stray.csv", b"upn\nA2\n");
    sender.drop_file("islington/empty.csv", b"");
    sender.drop_file("no-such-agreement/islington/under.csv", b"upn\nA3\n");
    sender.drop_file("camden/own.csv", b"upn\nA4\n");
    let failed = sender.wait_jobs("failed", 5, WITHIN);
    let reasons: Vec<String> = failed.iter().map(|j| read_text(&j.join("reason.txt"))).collect();
    for r in &reasons {
        assert_eq!(r.lines().count(), 1, "one line: {r:?}");
        assert!(r.starts_with("error["), "{r:?}");
    }
    let by_file = |name: &str| {
        let i = failed.iter().position(|j| j.join(name).is_file()).unwrap_or_else(|| panic!("{name} in failed/"));
        reasons[i].clone()
    };
    assert!(by_file("fsm.csv").contains("did you mean islington?"), "{}", by_file("fsm.csv"));
    assert!(by_file("stray.csv").starts_with("error[outbox_misplaced]"), "{}", by_file("stray.csv"));
    assert!(by_file("empty.csv").contains("empty"), "{}", by_file("empty.csv"));
    assert!(by_file("under.csv").starts_with("error[unknown_agreement]"), "{}", by_file("under.csv"));
    assert!(by_file("own.csv").starts_with("error[to_own_party]"), "{}", by_file("own.csv"));
    assert!(sender.jobs("sent").is_empty());
    let told = sender.wait_event("send_failed", WITHIN);
    assert!(told["code"].is_string(), "{told}");
    assert_eq!(sender.status()["recent_failures"].as_array().unwrap().len(), 5);
    // Nothing reached the hub: no drop for anyone, nothing in the log but its start.
    assert!(islington.inbox_ids().is_empty());
    assert!(camden.status().is_empty(), "camden sent nothing");
}

#[test]
fn a_hub_that_is_down_keeps_the_job_and_it_is_sent_once_when_the_hub_returns() {
    let mut hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let sender = Watcher::start(&camden, &[]);
    hub.stop();
    sender.drop_file("islington/fsm.csv", b"upn\nA1\n");
    // Taken, and waiting: nothing in failed/, the status file says why.
    wait_for(WITHIN, "the job to wait with its reason", || {
        let s = sender.status();
        let pending = s["pending"].as_array()?.first()?.clone();
        (pending["attempts"].as_u64()? >= 1).then_some(pending)
    });
    assert!(sender.jobs("failed").is_empty());
    assert!(sender.status()["hub_unreachable_since"].is_string());
    hub.restart_on_same_port();
    let jobs = sender.wait_jobs("sent", 1, WITHIN);
    let id = sent_record(&jobs[0])["drops"][0]["drop"].as_str().unwrap().to_owned();
    assert_eq!(islington.inbox_ids(), [id]);
    assert!(sender.jobs("failed").is_empty());
    assert!(sender.status()["hub_unreachable_since"].is_null());
}

#[test]
fn a_watch_killed_after_the_commit_sends_the_file_once_after_restart() {
    let mut hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    // The hub commits, then dies before the sender hears: the worst moment.
    hub.restart_on_same_port_with_failpoint("commit:after_db");
    let mut sender = Watcher::start(&camden, &[]);
    sender.drop_file("islington/fsm.csv", b"upn\nA1\n");
    hub.wait_exit(WITHIN);
    // The service is killed too, with the job taken and unanswered.
    sender.kill();
    let work = sender.dir.join(".sealdrop").join("work");
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 1, "the job waits in .sealdrop/work");
    hub.restart_on_same_port();
    sender.restart(&camden);
    let jobs = sender.wait_jobs("sent", 1, WITHIN);
    let record = sent_record(&jobs[0]);
    assert_eq!(record["drops"][0]["already_sent"], true, "{record}");
    let id = record["drops"][0]["drop"].as_str().unwrap().to_owned();
    assert_eq!(islington.inbox_ids(), [id], "exactly one drop");
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

#[test]
fn drops_arriving_while_it_runs_are_seen_within_seconds_through_the_long_poll() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let receiver = Watcher::start(&islington, &["--poll", "60"]);
    // The first look does not wait, so status.json shows the hub answering
    // at once (not after the first long poll's 60 s); the long poll then
    // starts waiting on an empty inbox.
    wait_for(Duration::from_secs(15), "a first inbox poll", || {
        receiver.status()["last_inbox_poll"].as_str().map(str::to_owned)
    });
    std::thread::sleep(Duration::from_secs(2));
    let file = camden.file("fsm.csv", b"upn\nA1\n");
    let started = std::time::Instant::now();
    camden.send("islington", &[&file]);
    let placed = receiver.dir.join("inbox").join("camden").join(AGREEMENT).join("fsm.csv");
    wait_for(WITHIN, "the drop in the inbox", || placed.is_file().then_some(()));
    // Without the long-poll it would wait for the next poll (60 s here).
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[test]
fn a_split_by_column_sends_each_party_its_rows_and_merge_csv_combines_arrivals() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let sender = Watcher::start(&camden, &[]);
    let receiver = Watcher::start(&islington, &["--merge-csv"]);
    sender.drop_file("split/home_la/fsm-all.csv", b"upn,home_la\nA1,Islington\nA2,Camden\nA3,Islington\n");
    let jobs = sender.wait_jobs("sent", 1, WITHIN);
    let record = sent_record(&jobs[0]);
    assert_eq!(record["drops"].as_array().unwrap().len(), 1, "{record}");
    assert_eq!(record["drops"][0]["to"], serde_json::json!(["islington"]));
    let merged_dir = receiver.dir.join("inbox").join("merged");
    let merged = wait_for(WITHIN, "a merged CSV", || {
        std::fs::read_dir(&merged_dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "csv"))
    });
    assert!(merged.file_name().unwrap().to_string_lossy().starts_with(&format!("{AGREEMENT}-")), "{merged:?}");
    let text = read_text(&merged);
    assert!(
        text.contains("A1,Islington,camden") && text.contains("A3,Islington,camden") && !text.contains("A2"),
        "{text}"
    );
}

#[test]
fn once_runs_one_pass_and_exits_non_zero_when_a_file_was_refused() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let dir = camden.dir.path().join("watch");
    std::fs::create_dir_all(dir.join("outbox/islington")).unwrap();
    std::fs::write(dir.join("outbox/islington/fsm.csv"), b"upn\nA1\n").unwrap();
    // Older than the settle time: --once takes it at once.
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options().write(true).open(dir.join("outbox/islington/fsm.csv")).unwrap().set_modified(old).unwrap();
    let out = camden.ok(["watch", "--dir", &dir.to_string_lossy(), "--once"]);
    let summary = json(&out);
    assert_eq!(summary["sent"], 1, "{summary}");
    assert_eq!(islington.inbox_ids().len(), 1);
    std::fs::write(dir.join("outbox/nowhere.csv"), b"x").unwrap();
    let f = std::fs::File::options().write(true).open(dir.join("outbox/nowhere.csv")).unwrap();
    f.set_modified(old).unwrap();
    let (code, stderr) = camden.fail(["watch", "--dir", &dir.to_string_lossy(), "--once"]);
    assert_ne!(code, 0);
    assert!(stderr.lines().last().unwrap().starts_with("error[watch_failed]: 1 file(s) refused"), "{stderr}");
    // A second service on the same folder is refused.
    let _running = Watcher::start(&camden, &[]);
    let (_, stderr) = camden.fail(["watch", "--dir", &dir.to_string_lossy(), "--once"]);
    assert!(stderr.contains("error[watch_busy]"), "{stderr}");
}

#[test]
fn a_watch_killed_mid_upload_resumes_and_sends_the_file_once() {
    let mut hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    // The hub dies 4 MiB into the upload of a 12 MiB file (kept locally to resume: over 8 MiB).
    hub.restart_on_same_port_with_failpoint("upload:mid_body");
    let mut sender = Watcher::start(&camden, &[]);
    let content = sealdrop_e2e::pseudo_random_bytes(12 << 20, 11);
    sender.drop_file("islington/census.dat", &content);
    hub.wait_exit(WITHIN);
    // Killed once the cut-off upload was noted (its local copy kept).
    wait_for(WITHIN, "the cut-off upload to be noted", || {
        let log = sender.log();
        log.lines().any(|l| l.contains("trying again in") && !l.starts_with("the inbox was not checked")).then_some(())
    });
    sender.kill();
    hub.restart_on_same_port();
    sender.restart(&camden);
    let jobs = sender.wait_jobs("sent", 1, WITHIN);
    assert!(sender.log().contains("continuing the upload of drop"), "resumed, not sent afresh:\n{}", sender.log());
    let id = sent_record(&jobs[0])["drops"][0]["drop"].as_str().unwrap().to_owned();
    assert_eq!(islington.inbox_ids(), std::slice::from_ref(&id), "exactly one drop");
    let out = islington.work().join("in");
    islington.fetch(&id, &out);
    assert_eq!(std::fs::read(out.join("census.dat")).unwrap(), content);
}

#[test]
fn a_rate_limited_send_waits_for_retry_after() {
    let hub = Hub::start_with_options(&[
        "--rate-limit-loopback",
        "limit",
        "--rate-limit-per-address",
        "1000",
        "--rate-limit-per-party",
        "1",
        "--rate-limit-per-party-burst",
        "8",
        // Three requests per send (create, upload, commit): more than the
        // party's allowance refills while the file settles. A send in one
        // request may fit in the refill and never be refused.
        "--max-single-request-bytes",
        "0",
    ]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let sender = Watcher::start(&camden, &["--poll", "60"]);
    // Use up camden's requests, then save a file: its first attempt is refused with 429.
    wait_for(WITHIN, "camden to be rate limited", || {
        let out = camden.run(["inbox"]);
        String::from_utf8_lossy(&out.stderr).contains("rate_limited").then_some(())
    });
    sender.drop_file("islington/fsm.csv", b"upn\nA1\n");
    // The refusal is waited out (the service says so), never a failure of the file.
    wait_for(WITHIN, "the send to be rate limited and waited out", || {
        let log = sender.log();
        log.lines().any(|l| l.contains("error[rate_limited]") && l.contains("trying again in")).then_some(())
    });
    // Then it goes, once, and never to failed/.
    let jobs = sender.wait_jobs("sent", 1, WITHIN);
    let id = sent_record(&jobs[0])["drops"][0]["drop"].as_str().unwrap().to_owned();
    assert!(sender.jobs("failed").is_empty());
    let listed = wait_for(WITHIN, "islington's inbox", || {
        let out = islington.run(["inbox", "--json"]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(listed.matches(id.as_str()).count(), 1, "exactly one drop: {listed}");
}

#[test]
fn a_drop_is_acknowledged_only_after_its_files_are_in_the_inbox() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    // The folder the drop must go into cannot be made: a file is in the way.
    let inbox = islington.dir.path().join("watch").join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("camden"), b"in the way").unwrap();
    let receiver = Watcher::start(&islington, &["--poll", "2"]);
    let file = camden.file("fsm.csv", b"upn\nA1\n");
    let id = camden.send("islington", &[&file]);
    let failed = receiver.wait_event("fetch_failed", WITHIN);
    assert_eq!(failed["drops"], serde_json::json!([id]));
    // Not acknowledged: still waiting on the hub, and camden sees it waiting.
    assert_eq!(islington.inbox_ids(), std::slice::from_ref(&id));
    assert_eq!(sealdrop_e2e::recipient_status(&camden.status_of(&id), "islington")["outcome"], "waiting");
    // Once the folder can be made, the drop is placed, then acknowledged.
    std::fs::remove_file(inbox.join("camden")).unwrap();
    let placed = inbox.join("camden").join(AGREEMENT).join("fsm.csv");
    wait_for(WITHIN, "the drop placed", || placed.is_file().then_some(()));
    wait_for(WITHIN, "the acknowledgement", || islington.inbox_ids().is_empty().then_some(()));
    receiver.wait_event("arrived", WITHIN);
    assert_eq!(receiver.events().iter().filter(|e| e["kind"] == "arrived").count(), 1);
}

#[test]
fn both_sides_are_told_through_a_real_webhook_and_a_real_smtp_relay_with_starttls() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let webhook = sealdrop_e2e::webhook::WebhookReceiver::start();
    let relay = sealdrop_e2e::smtp::SmtpReceiver::start();
    let url = webhook.url();
    let sender = Watcher::start(&camden, &["--notify-webhook", &url, "--notify-webhook-format", "json"]);
    let (addr, ca) = (relay.addr(), relay.ca());
    let _receiver = Watcher::start(
        &islington,
        &[
            "--notify-email",
            "data-team@islington.example",
            "--smtp-server",
            &addr,
            "--smtp-from",
            "sealdrop@islington.example",
            "--smtp-ca",
            &ca.to_string_lossy(),
            "--notify-events",
            "arrived",
        ],
    );
    sender.drop_file("islington/fsm-islington.csv", b"upn,name\nA1,Ada\n");
    let jobs = sender.wait_jobs("sent", 1, WITHIN);
    let drop = sent_record(&jobs[0])["drops"][0]["drop"].as_str().unwrap().to_owned();

    // Islington's team gets a mail, over STARTTLS, naming the drop and the sender, not the file.
    let mail = relay.wait_for(1, WITHIN).remove(0);
    assert!(mail.tls, "the mail came over STARTTLS");
    assert_eq!(mail.rcpt_tos, ["data-team@islington.example"]);
    let subject = mail.header("Subject").unwrap_or_default();
    assert!(subject.contains("arrived") && subject.contains("camden"), "{subject}");
    assert!(mail.raw.contains(&drop), "{}", mail.raw);
    assert!(!mail.raw.contains("fsm-islington") && !mail.raw.contains("Ada"), "{}", mail.raw);

    // Camden's channel hears of the acknowledgement.
    let acked = wait_for(WITHIN, "the acknowledgement on the webhook", || {
        webhook.requests().into_iter().map(|r| r.body).find(|b| b["event"]["kind"] == "acknowledged")
    });
    assert_eq!(acked["event"]["drops"], serde_json::json!([drop]));
    assert_eq!(acked["event"]["to"], serde_json::json!(["islington"]));
    assert!(!acked.to_string().contains("fsm-islington"), "{acked}");
}
