//! The token-signing key ring on a real (SQLite) store: rotation, verification across
//! rotations and across processes, and the JWKS document.
use std::sync::Arc;
use std::time::Duration;
use vidsight_auth::tokens::{Claims, KeyRing, AUDIENCE};
use vidsight_store::{Accounts, SqliteStore};

async fn store() -> Arc<dyn Accounts> {
    let dir = tempfile::tempdir().unwrap().keep();
    let store = SqliteStore::connect(&format!("sqlite://{}/k.db", dir.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

fn claims(sub: &str) -> Claims {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    Claims {
        iss: "vidsight".into(),
        aud: AUDIENCE.into(),
        sub: sub.into(),
        role: "member".into(),
        sid: "s".into(),
        epoch: 0,
        iat: now,
        exp: now + 60,
        jti: "j".into(),
    }
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn keys_rotate_and_old_tokens_keep_verifying_in_every_process() {
    let accounts = store().await;
    let ring = KeyRing::open(
        accounts.clone(),
        Duration::from_millis(200),
        Duration::from_secs(900),
        "vidsight".into(),
    )
    .await
    .unwrap();
    let first = ring.sign(&claims("a")).await.unwrap();
    assert_eq!(ring.verify(&first).await.unwrap().sub, "a");
    assert!(!ring.rotate_if_due().await.unwrap(), "not due yet");

    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(ring.rotate_if_due().await.unwrap(), "due");
    let second = ring.sign(&claims("b")).await.unwrap();
    assert_ne!(kid(&first), kid(&second), "signed with the new key");
    assert_eq!(
        ring.verify(&first).await.unwrap().sub,
        "a",
        "the retired key still verifies"
    );
    let jwks = ring.jwks().await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    // another API process on the same database rotates; this one picks the key up when it
    // first sees a token signed with it
    let other = KeyRing::open(
        accounts.clone(),
        Duration::from_millis(200),
        Duration::from_secs(900),
        "vidsight".into(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(other.rotate_if_due().await.unwrap());
    let third = other.sign(&claims("c")).await.unwrap();
    assert_eq!(ring.verify(&third).await.unwrap().sub, "c");
    assert_eq!(other.verify(&first).await.unwrap().sub, "a");

    // a token for another issuer does not pass
    let stranger = KeyRing::open(
        accounts,
        Duration::from_secs(3600),
        Duration::from_secs(900),
        "someone-else".into(),
    )
    .await
    .unwrap();
    assert!(stranger.verify(&third).await.is_err());
}

/// Two API processes starting at once on an empty ring each make a key; a token either one
/// signs verifies on the other straight away (a cluster's first requests go through both).
#[tokio::test]
async fn processes_starting_together_accept_each_others_tokens_at_once() {
    let accounts = store().await;
    let open = || {
        KeyRing::open(
            accounts.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(900),
            "vidsight".into(),
        )
    };
    let (a, b) = tokio::join!(open(), open());
    let (a, b) = (a.unwrap(), b.unwrap());
    let from_a = a.sign(&claims("a")).await.unwrap();
    let from_b = b.sign(&claims("b")).await.unwrap();
    assert_eq!(b.verify(&from_a).await.unwrap().sub, "a");
    assert_eq!(a.verify(&from_b).await.unwrap().sub, "b");

    // a forged kid is refused, and many at once cost one read of the ring, not one each
    let forged = {
        use base64::Engine;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("0000000000000000".into());
        // the signature does not matter: the kid is unknown before it is checked
        let mut parts: Vec<String> = from_a.split('.').map(String::from).collect();
        parts[0] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&header).unwrap());
        parts.join(".")
    };
    let before = a.reads();
    let results = futures::future::join_all((0..20).map(|_| a.verify(&forged))).await;
    assert!(results.iter().all(|result| result.is_err()));
    assert_eq!(
        a.reads() - before,
        1,
        "twenty misses at once share one read"
    );
}
