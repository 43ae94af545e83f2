//! The inbox long-poll, `GET /v1/inbox?wait=N[&since=T]`, on a real hub
//! served on 127.0.0.1:0: a waiting request answers soon after a drop for
//! its own party is committed and not for another party's; at once when a
//! drop (after `since`) is already there; with the inbox as it is when the
//! wait ends, the hub shuts down, or too many requests already wait.
//!
//! Timing bounds are generous (seconds against waits of 30 s and more) so a
//! loaded machine cannot make them fail; the cap of a minute is checked by
//! structure in `sealdrop_hub::inbox_wait`, not by waiting.

mod common;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sealdrop_hub::Hub;
use sealdrop_proto::api::{Commit, Committed, CreatedDrop, Inbox, Uploaded, code};
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::keys::MemberSecretKey;
use sealdrop_proto::note::sign_doc;
use sealdrop_proto::request::sign_request;
use tokio::task::JoinHandle;

use common::{Keys, World, err, inner_fsm, ok, party};

/// Well under every wait these tests ask for: an answer "at once" or "soon
/// after the commit" comes within this even on a loaded machine.
const PROMPT: Duration = Duration::from_secs(5);

/// Camden, islington, hackney and barnet; `inner-fsm` between the first three.
impl Keys {
    fn waiting_directory(&self) -> SignedDirectory {
        let parties = vec![
            party(&[&self.camden], vec![]),
            party(&[&self.islington], vec![]),
            party(&[&self.hackney], vec![]),
            party(&[&self.barnet], vec![]),
        ];
        SignedDirectory::sign(common::directory(1, parties, vec![inner_fsm()]), &self.authority).unwrap()
    }
}

/// A waiting request's answer: its status, body and how long it took.
struct Answer {
    status: StatusCode,
    body: String,
    took: Duration,
}

impl Answer {
    fn inbox(&self) -> Inbox {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        serde_json::from_str(&self.body).unwrap()
    }
}

impl World {
    async fn start_waiting(configure: impl FnOnce(Hub) -> Hub) -> World {
        World::launch(|keys| keys.waiting_directory().note, configure).await
    }

    /// Creates, uploads and commits a drop from camden.
    async fn send_to(&self, recipients: &[&str]) -> CreatedDrop {
        let camden = &self.keys.camden;
        let data = common::ciphertext(&self.keys.waiting_directory().directory, recipients, 600);
        let drop = self.created(camden, recipients).await;
        let _: Uploaded = ok(self.upload(camden, &drop.id, &data).await).await;
        let manifest = common::manifest(&self.keys.waiting_directory().directory, camden, &drop, recipients, &data);
        let body = Commit { manifest: sign_doc(&manifest, &camden.signing), known_size: None };
        let _: Committed = ok(self.post(camden, &format!("/v1/drops/{}/commit", drop.id), &body).await).await;
        drop
    }

    /// Starts `GET path` signed by `key` in a task of its own.
    fn start_get(&self, key: &MemberSecretKey, path: &str) -> JoinHandle<Answer> {
        let auth = sign_request(&key.signing, "GET", path, self.now(), Some(b""));
        let mut req = self.client.request(Method::GET, format!("{}{path}", self.base));
        for (name, value) in auth.headers() {
            req = req.header(name, value);
        }
        tokio::spawn(async move {
            let started = Instant::now();
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body = resp.text().await.unwrap();
            Answer { status, body, took: started.elapsed() }
        })
    }

    /// `GET path` signed by `key`, awaited.
    async fn get_timed(&self, key: &MemberSecretKey, path: &str) -> Answer {
        self.start_get(key, path).await.unwrap()
    }

    /// The hub's gauge of waiting inbox requests.
    fn waiting(&self) -> f64 {
        sealdrop_hub::metrics::sample(&self.hub().metrics().encode(), "sealdrop_hub_inbox_waiting", "").unwrap()
    }

    /// Returns once `n` inbox requests wait (registered before their first
    /// read, so a commit from now on wakes them).
    async fn until_waiting(&self, n: f64) {
        let give_up = Instant::now() + Duration::from_secs(30);
        while self.waiting() != n {
            assert!(Instant::now() < give_up, "{} inbox requests wait, not {n}", self.waiting());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_waiting_inbox_answers_soon_after_a_commit_for_its_party_only() {
    // No rereads within the test: only the commit's wake-up can answer it.
    let w = World::start_waiting(|hub| hub.with_inbox_recheck_interval(Duration::from_secs(60))).await;
    let waiting = w.start_get(&w.keys.islington, "/v1/inbox?wait=30");
    w.until_waiting(1.0).await;

    // Hackney's drop wakes islington's waiter at most to read its own,
    // still empty, inbox: it goes on waiting.
    let _other = w.send_to(&["hackney"]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!waiting.is_finished(), "another party's commit answered islington's waiting request");
    assert_eq!(w.waiting(), 1.0);

    let sent = Instant::now();
    let drop = w.send_to(&["islington", "hackney"]).await;
    let answer = waiting.await.unwrap();
    let since_commit = sent.elapsed();
    let ids: Vec<_> = answer.inbox().drops.into_iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![drop.id], "islington's inbox holds only its own drop");
    assert!(since_commit < PROMPT, "answered {since_commit:?} after the commit, of a 30 s wait");
    assert!(answer.took < Duration::from_secs(29), "answered by the commit, not the end of the wait");
    assert_eq!(w.waiting(), 0.0, "the answered request no longer counts as waiting");
}

#[tokio::test]
async fn a_waiting_inbox_answers_at_once_for_a_drop_after_since() {
    let w = World::start_waiting(|hub| hub).await;
    let drop = w.send_to(&["islington"]).await;
    let committed = w.get_timed(&w.keys.islington, "/v1/inbox").await.inbox().drops[0].committed;

    let answer = w.get_timed(&w.keys.islington, "/v1/inbox?wait=30").await;
    assert_eq!(answer.inbox().drops[0].id, drop.id);
    assert!(answer.took < PROMPT, "a drop already there is answered at once, took {:?}", answer.took);

    let before = committed - jiff::SignedDuration::from_secs(1);
    let answer = w.get_timed(&w.keys.islington, &format!("/v1/inbox?wait=30&since={before}")).await;
    assert_eq!(answer.inbox().drops.len(), 1);
    assert!(answer.took < PROMPT, "a drop committed after `since` is new, took {:?}", answer.took);

    // Nothing committed after `since`: the request waits its second out,
    // then answers with the whole inbox, the older drop included.
    let answer = w.get_timed(&w.keys.islington, &format!("/v1/inbox?wait=1&since={committed}")).await;
    assert_eq!(answer.inbox().drops[0].id, drop.id);
    assert!(answer.took >= Duration::from_millis(900), "it waited: {:?}", answer.took);

    // A wait over the minute is shortened, not refused.
    let answer = w.get_timed(&w.keys.islington, "/v1/inbox?wait=3600").await;
    assert_eq!(answer.inbox().drops.len(), 1);
}

#[tokio::test]
async fn a_waiting_inbox_answers_its_empty_inbox_when_the_wait_ends() {
    let w = World::start_waiting(|hub| hub).await;
    let answer = w.get_timed(&w.keys.islington, "/v1/inbox?wait=1").await;
    assert!(answer.inbox().drops.is_empty());
    assert!(answer.took >= Duration::from_millis(900), "it waited: {:?}", answer.took);
    assert!(answer.took < Duration::from_secs(1) + PROMPT, "it stopped waiting: {:?}", answer.took);
    // wait=0 does not wait.
    let answer = w.get_timed(&w.keys.islington, "/v1/inbox?wait=0").await;
    assert!(answer.inbox().drops.is_empty());
    assert!(answer.took < PROMPT);
    assert_eq!(w.waiting(), 0.0);
}

#[tokio::test]
async fn inbox_requests_beyond_the_cap_answer_at_once() {
    let w = World::start_waiting(|hub| hub.with_max_inbox_waiters(1)).await;
    let first = w.start_get(&w.keys.islington, "/v1/inbox?wait=60");
    w.until_waiting(1.0).await;
    let beyond = w.get_timed(&w.keys.hackney, "/v1/inbox?wait=60").await;
    assert!(beyond.inbox().drops.is_empty(), "beyond the cap: the inbox as it is, never an error");
    assert!(beyond.took < PROMPT, "beyond the cap the answer comes at once, took {:?}", beyond.took);
    // The first is still waiting; a commit for it ends this test promptly.
    assert!(!first.is_finished());
    w.send_to(&["islington"]).await;
    assert_eq!(first.await.unwrap().inbox().drops.len(), 1);
}

#[tokio::test]
async fn a_hub_shutting_down_answers_its_waiting_inbox_requests() {
    let mut w = World::start_waiting(|hub| hub).await;
    let waiting =
        [w.start_get(&w.keys.islington, "/v1/inbox?wait=60"), w.start_get(&w.keys.hackney, "/v1/inbox?wait=60")];
    w.until_waiting(2.0).await;
    let stopping = Instant::now();
    w.stop().await;
    assert!(stopping.elapsed() < PROMPT, "the drain did not wait out the long-polls: {:?}", stopping.elapsed());
    for request in waiting {
        let answer = request.await.unwrap();
        assert!(answer.inbox().drops.is_empty());
        assert!(answer.took < Duration::from_secs(50), "answered at the shutdown, not the end: {:?}", answer.took);
    }
}

#[tokio::test]
async fn bad_inbox_queries_are_refused_and_the_signature_covers_the_query() {
    let w = World::start_waiting(|hub| hub).await;
    let islington = &w.keys.islington;
    for query in ["wait=soon", "wait=-1", "wait=1&since=yesterday", "wait=1&after=2026-06-01T09:00:00Z"] {
        let message = err(w.get(islington, &format!("/v1/inbox?{query}")).await, 400, code::BAD_REQUEST).await;
        assert!(!message.contains('\n'), "one line: {message}");
    }
    // Signed for no wait, sent asking for one: refused, so a relay cannot
    // turn a member's request into one that holds the connection.
    let auth = sign_request(&islington.signing, "GET", "/v1/inbox", w.now(), Some(b""));
    err(w.send(Method::GET, "/v1/inbox?wait=60", Some(&auth), vec![]).await, 401, code::BAD_SIGNATURE).await;
}
