//! Ctrl-C (and SIGTERM) during a send: the drop it created and did not
//! commit is withdrawn from the hub before the client exits 130 (143) with
//! one `error[interrupted]` line saying so; if the hub cannot be reached
//! then, the same send run again replaces it, as the line says; a drop
//! already committed is sent and stays. Uploads are caught in the middle by
//! a proxy that stalls them ([`Cut::stall_request`]), so each interrupt
//! lands exactly where the test means it to.

use std::path::Path;
use std::process::{Child, Output};
use std::time::Duration;

use sealdrop_e2e::{
    Cut, CutProxy, Hub, Party, error_code, is_drop_id, list_dir, pseudo_random_bytes, tree, write_file,
};

/// Sends `signal` (`INT`, `TERM`) to the client.
fn kill(child: &Child, signal: &str) {
    let sent = std::process::Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status();
    assert!(sent.expect("run kill").success(), "kill -{signal} {}", child.id());
}

/// Waits for the client (at most a minute).
fn wait(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the client {pid} did not exit within a minute of the signal"))
        .expect("wait for the client")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one `error[...]` line of `err`; fails if there is not exactly one.
fn the_error_line(err: &str) -> String {
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error[")).collect();
    assert_eq!(lines.len(), 1, "exactly one error line:\n{err}");
    lines[0].to_owned()
}

fn count(hub: &Hub, sql: &str) -> i64 {
    hub.query_text(&format!("SELECT CAST(({sql}) AS TEXT)"), &[]).parse().unwrap()
}

/// Camden's drops on the hub, and how many are still open.
fn drops_of_camden(hub: &Hub) -> (i64, i64) {
    (
        count(hub, "SELECT COUNT(*) FROM drops WHERE sender = 'camden'"),
        count(hub, "SELECT COUNT(*) FROM drops WHERE sender = 'camden' AND state = 'open'"),
    )
}

fn the_open_drop(hub: &Hub) -> String {
    hub.query_text("SELECT id FROM drops WHERE state = 'open'", &[])
}

/// The drop whose upload `proxy` stalled: the first upload it saw (it
/// stalls the first that matches). Not "the open drop": a split's other
/// parts may be open too, and commit at any moment.
fn the_stalled_drop(proxy: &CutProxy) -> String {
    let put = proxy.requests_matching("PUT", "/content").into_iter().next().expect("the proxy saw an upload");
    let id = put.line.split('/').nth(3).expect("PUT /v1/drops/<id>/content");
    id.to_owned()
}

/// A 2 MiB file, more than fits in the sockets' buffers once the proxy stalls.
fn big_file(camden: &Party) -> std::path::PathBuf {
    camden.file("records.bin", pseudo_random_bytes(2 << 20, 18))
}

/// Starts `send --to islington FILE` as `camden` through `proxy`, which
/// stalls the upload; returns once the hub holds the open drop and the
/// upload is held.
fn start_stalled_send(hub: &Hub, camden: &Party, proxy: &CutProxy, file: &Path) -> (Child, String) {
    let child = camden.spawn(["--quiet", "send", "--to", "islington", file.to_str().unwrap()]);
    proxy.wait_stalled(Duration::from_secs(60));
    let id = the_open_drop(hub);
    assert!(is_drop_id(&id), "{id:?}");
    (child, id)
}

/// What a plain `status` shows as waiting.
fn waiting(camden: &Party) -> Vec<serde_json::Value> {
    camden.status().into_iter().filter(|d| d["state"] != "delivered").collect()
}

#[test]
fn ctrl_c_during_an_upload_withdraws_the_drop_and_the_same_send_then_goes_once() {
    let hub = Hub::start();
    let proxy = CutProxy::start(&hub.addr, Some(Cut::stall_request("PUT", "/content", 64 * 1024)));
    let mut camden = Party::with_url(&proxy.url, "camden");
    let file = big_file(&camden);
    let (child, id) = start_stalled_send(&hub, &camden, &proxy, &file);
    assert_eq!(drops_of_camden(&hub), (1, 1));

    kill(&child, "INT");
    let out = wait(child);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "stderr:\n{err}");
    assert_eq!(
        the_error_line(&err),
        format!("error[interrupted]: send interrupted; drop {id} withdrawn from the hub; nothing was sent")
    );
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", String::from_utf8_lossy(&out.stdout));
    // Gone from the hub: no row, nothing waiting in `status`, no upload file.
    assert_eq!(drops_of_camden(&hub), (0, 0), "{}", hub.log());
    assert!(list_dir(&hub.data.path().join("uploads")).is_empty(), "the partial upload outlived the withdrawal");
    camden.point_at(&hub);
    assert_eq!(waiting(&camden), Vec::<serde_json::Value>::new(), "status still shows the drop");
    assert!(list_dir(&camden.state.join("outgoing")).is_empty(), "a local record outlived the withdrawal");

    // The same send again goes once, and islington gets the file.
    let sent = camden.send("islington", &[&file]);
    assert_ne!(sent, id);
    assert_eq!(drops_of_camden(&hub), (1, 0));
    let islington = Party::new(&hub, "islington");
    let incoming = islington.work().join("in");
    islington.fetch(&sent, &incoming);
    assert_eq!(tree(&incoming).get("records.bin"), Some(&pseudo_random_bytes(2 << 20, 18)));
}

#[test]
fn with_the_hub_unreachable_the_line_says_so_and_the_same_send_again_replaces_the_drop() {
    let mut hub = Hub::start();
    let proxy = CutProxy::start(&hub.addr, Some(Cut::stall_request("PUT", "/content", 64 * 1024)));
    let mut camden = Party::with_url(&proxy.url, "camden");
    let file = big_file(&camden);
    let (child, id) = start_stalled_send(&hub, &camden, &proxy, &file);
    // The hub freezes: the stalled upload stays connected, and the
    // withdrawal gets no answer (the client gives up after 10 s).
    let frozen = std::process::Command::new("kill").args(["-STOP", &hub.pid().to_string()]).status();
    assert!(frozen.expect("run kill").success());

    kill(&child, "INT");
    let out = wait(child);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "stderr:\n{err}");
    assert_eq!(
        the_error_line(&err),
        format!(
            "error[interrupted]: send interrupted; drop {id} could not be withdrawn (hub unreachable); nobody can \
             see it: run the same send again to replace it"
        )
    );

    // The hub comes back (a new process: the frozen one never answered)
    // with the drop still open; the same send replaces it.
    hub.restart();
    camden.point_at(&hub);
    assert_eq!(drops_of_camden(&hub), (1, 1));
    let again = camden.run(["send", "--to", "islington", file.to_str().unwrap()]);
    let err = stderr(&again);
    assert!(again.status.success(), "{err}");
    assert!(err.contains(&format!("withdrew drop {id}, left open by an earlier run of this send")), "{err}");
    let sent = String::from_utf8_lossy(&again.stdout).trim().to_owned();
    assert_ne!(sent, id);
    assert_eq!(drops_of_camden(&hub), (1, 0), "the open drop was replaced, not left beside the new one");
    assert_eq!(waiting(&camden).len(), 1);
    assert!(list_dir(&camden.state.join("outgoing")).is_empty());
    // Another send of the same file is a new drop, as it always was.
    camden.send("islington", &[&file]);
    assert_eq!(drops_of_camden(&hub), (2, 0));
}

#[test]
fn an_interrupt_after_the_commit_leaves_the_drop_sent_and_journaled() {
    // Three requests: the commit's answer is held.
    let hub = Hub::start_with_options(&["--max-single-request-bytes", "0"]);
    interrupt_after_the_commit(hub, Cut::stall_response("POST", "/commit", 0));
}

#[test]
fn an_interrupt_after_a_drop_sent_in_one_request_leaves_it_sent_and_journaled() {
    // One request (a small drop): its answer is held.
    let hub = Hub::start();
    interrupt_after_the_commit(hub, Cut::stall_response("PUT /v1/drops/d-", " HTTP/1.1", 0));
}

fn interrupt_after_the_commit(hub: Hub, stall: Cut) {
    // The hub commits; its answer is held, so the interrupt comes after the commit.
    let proxy = CutProxy::start(&hub.addr, Some(stall));
    let camden = Party::with_url(&proxy.url, "camden");
    let file = camden.file("fsm.csv", "pupil_ref,name\nSYN001,Zoë\n");
    let child = camden.spawn(["--quiet", "send", "--to", "islington", file.to_str().unwrap()]);
    proxy.wait_stalled(Duration::from_secs(60));
    let id = hub.query_text("SELECT id FROM drops WHERE state = 'committed'", &[]);
    kill(&child, "INT");
    // The client finishes the commit's bookkeeping before it reports.
    std::thread::sleep(Duration::from_millis(500));
    proxy.release();
    let out = wait(child);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "stderr:\n{err}");
    assert_eq!(
        the_error_line(&err),
        format!(
            "error[interrupted]: send interrupted; drop {id} had already been committed: sent, and not withdrawn \
             (`sealdrop recall ID` takes one back)"
        )
    );
    assert_eq!(drops_of_camden(&hub), (1, 0));
    let journal = camden.journal();
    assert!(journal.iter().any(|e| e["drop"] == id.as_str()), "the sent drop is in the journal: {journal:?}");
    assert_eq!(Party::new(&hub, "islington").inbox_ids(), vec![id]);
}

#[test]
fn sigterm_during_a_split_withdraws_the_open_parts_and_the_same_split_sends_the_rest_once() {
    let hub = Hub::start();
    let proxy = CutProxy::start(&hub.addr, Some(Cut::stall_request("PUT", "/content", 1024)));
    let camden = Party::with_url(&proxy.url, "camden");
    let mut text = String::from("pupil_ref,home_la\n");
    for i in 0..600 {
        let la = ["islington", "hackney", "westminster", "barnet"][i % 4];
        text.push_str(&format!("SYN{i:04},{la}\n"));
    }
    let input = camden.work().join("pupils.csv");
    write_file(&input, &text);
    let child = camden.spawn(["--quiet", "send", "--split-by", "home_la", "--yes", input.to_str().unwrap()]);
    proxy.wait_stalled(Duration::from_secs(60));
    let stalled = the_stalled_drop(&proxy);
    kill(&child, "TERM");
    let out = wait(child);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(143), "stderr:\n{err}");
    let line = the_error_line(&err);
    assert_eq!(error_code(&line).as_deref(), Some("interrupted"), "{line}");
    assert!(line.starts_with("error[interrupted]: split interrupted; "), "{line}");
    let withdrawn = line.split(" withdrawn from the hub").next().unwrap();
    assert!(withdrawn.contains(&stalled), "the stalled part is withdrawn: {line}");
    assert_eq!(count(&hub, &format!("SELECT COUNT(*) FROM drops WHERE id = '{stalled}'")), 0, "{line}");
    let (all, open) = drops_of_camden(&hub);
    assert_eq!(open, 0, "no part is left open: {line}");
    assert!(all < 4, "the interrupted part was not sent: {line}");
    assert!(list_dir(&camden.state.join("spool")).is_empty(), "the encrypted parts were left behind");

    // The same split again sends exactly the parts that are missing.
    let mut camden = camden;
    camden.point_at(&hub);
    camden.ok(["send", "--split-by", "home_la", "--yes", input.to_str().unwrap()]);
    assert_eq!(drops_of_camden(&hub), (4, 0));
    for party in ["islington", "hackney", "westminster", "barnet"] {
        assert_eq!(Party::new(&hub, party).inbox_ids().len(), 1, "{party}");
    }
}
