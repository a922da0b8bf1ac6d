//! Browser proof against the real `kitsune2-bootstrap-srv` 0.4.1: an agent info signed in the
//! page with a fresh ed25519 key is accepted and listed verified; a tampered signature and an
//! expired info are rejected by the server, and our client says so clearly.
//!
//! Run through `node scripts/devnet.mjs -- wasm-pack test ...`, which starts the server and
//! sets `FENNEC_BOOTSTRAP_URL` (read at compile time: the test page has no environment).
#![cfg(target_arch = "wasm32")]

use fennec::browser::bootstrap as fetch;
use fennec::core::bootstrap::{BootstrapClient, BootstrapError, HttpRequest};
use fennec::{
    AgentInfo, AgentInfoSigned, AgentKey, DhtArc, Ed25519Verifier, SpaceId, Timestamp, Url,
};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn client() -> BootstrapClient {
    let Some(url) = option_env!("FENNEC_BOOTSTRAP_URL") else {
        panic!("FENNEC_BOOTSTRAP_URL is not set: run the browser tests through scripts/devnet.mjs");
    };
    BootstrapClient::new(url).unwrap()
}

fn random_space() -> SpaceId {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    SpaceId::from_bytes(b.to_vec())
}

fn signed_info(key: &AgentKey, space: &SpaceId, created_at: Timestamp) -> AgentInfoSigned {
    let url = Url::parse(&format!("ws://127.0.0.1:1/{}", key.agent_id().to_b64())).unwrap();
    let info = AgentInfo::new(
        key.agent_id(),
        space.clone(),
        created_at,
        Some(url),
        DhtArc::FULL,
    );
    AgentInfoSigned::sign(key, info).unwrap()
}

#[wasm_bindgen_test]
async fn real_server_accepts_and_lists_our_signed_agent_info() {
    let client = client();
    let space = random_space();
    let key = AgentKey::generate().unwrap();
    let info = signed_info(&key, &space, fennec::browser::clock::now());

    fetch::put(&client, &info)
        .await
        .expect("server accepts a freshly signed info");

    let listed = fetch::get(&client, &space, &Ed25519Verifier).await.unwrap();
    assert_eq!(
        listed.len(),
        1,
        "exactly our agent is in the fresh space: {listed:?}"
    );
    let got = listed.into_iter().next().unwrap().expect("entry verifies");
    assert_eq!(got.info().agent, key.agent_id());
    assert_eq!(
        got.encode(),
        info.encode(),
        "server returns the exact bytes we signed"
    );
}

#[wasm_bindgen_test]
async fn real_server_rejects_a_tampered_signature() {
    let client = client();
    let space = random_space();
    let key = AgentKey::generate().unwrap();
    let good = signed_info(&key, &space, fennec::browser::clock::now());
    // Sign a different info with the same key and graft its signature onto `good`.
    let other = signed_info(&key, &space, fennec::browser::clock::now().add_micros(1));
    let sig_of = |s: &AgentInfoSigned| {
        s.encode()
            .rsplit_once("\"signature\":")
            .unwrap()
            .1
            .to_string()
    };
    let tampered = good.encode().replace(&sig_of(&good), &sig_of(&other));
    assert_ne!(tampered, good.encode());

    let mut req = client.put_request(&good).unwrap();
    req.body = Some(tampered);
    let err = put_raw(&req).await.unwrap_err();
    assert!(
        matches!(err, BootstrapError::Rejected { status: 500, .. }),
        "{err}"
    );

    let listed = fetch::get(&client, &space, &Ed25519Verifier).await.unwrap();
    assert!(listed.is_empty(), "nothing was stored: {listed:?}");
}

#[wasm_bindgen_test]
async fn real_server_rejects_an_expired_agent_info() {
    let client = client();
    let space = random_space();
    let key = AgentKey::generate().unwrap();
    let hour_ago = fennec::browser::clock::now().add_micros(-3_600_000_000);
    let expired = signed_info(&key, &space, hour_ago);
    assert!(expired.info().is_expired(fennec::browser::clock::now()));

    let err = fetch::put(&client, &expired).await.unwrap_err();
    assert!(
        matches!(err, BootstrapError::Rejected { status: 500, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("bootstrap server rejected the request: HTTP 500"),
        "{err}"
    );
}

#[wasm_bindgen_test]
async fn unreachable_server_is_a_network_error() {
    let client = BootstrapClient::new("http://127.0.0.1:9").unwrap();
    let err = fetch::get(&client, &random_space(), &Ed25519Verifier)
        .await
        .unwrap_err();
    assert!(matches!(err, BootstrapError::Network(_)), "{err}");
}

async fn put_raw(req: &HttpRequest) -> Result<(), BootstrapError> {
    let (status, body) = fetch::send(req).await?;
    fennec::core::bootstrap::parse_put_response(status, &body)
}
