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
    tokio::time::sleep(Duration::from_millis(1100)).await;
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
