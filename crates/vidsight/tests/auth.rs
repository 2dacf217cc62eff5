//! Identity and access through the real server: every route's protection (enumerated from
//! the OpenAPI document), tokens checked and forged with an independent JWT library
//! (PyJWT), refresh rotation and reuse detection, cookies and CSRF, TOTP checked against an
//! independent implementation, API keys and scopes, brute force, administration, quotas,
//! GDPR export and erasure, security headers, CORS and the gateway's identity headers.
//! Runs on the embedded backends, and on the production ones with TEST_BACKENDS=production.
mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

/// Runs a Python 3 script with arguments and returns its stdout.
fn python(script: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (make test installs PyJWT)");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// An independent RFC 6238 implementation (Python's standard library only).
const PY_TOTP: &str = r#"
import base64, hashlib, hmac, struct, sys
secret = sys.argv[1]
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
if len(sys.argv) > 3: key = sys.argv[3].encode()
digest = hmac.new(key, struct.pack(">Q", int(sys.argv[2]) // 30), hashlib.sha1).digest()
offset = digest[-1] & 15
print("%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000))
"#;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Member {
    id: String,
    email: String,
    token: String,
    client: reqwest::Client,
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn login(
    server: &TestServer,
    email: &str,
    password: &str,
    totp: Option<&str>,
) -> (StatusCode, Value) {
    let mut body = json!({ "email": email, "password": password });
    if let Some(code) = totp {
        body["totp"] = json!(code);
    }
    post(
        &reqwest::Client::new(),
        server.url("/api/v1/auth/login"),
        body,
    )
    .await
}

async fn member(server: &TestServer, email: &str) -> Member {
    let (status, user) = post(
        &reqwest::Client::new(),
        server.url("/api/v1/auth/register"),
        json!({ "email": email, "password": TEST_PASSWORD }),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["role"], "member", "only the first account is admin");
    let (status, tokens) = login(server, email, TEST_PASSWORD, None).await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    Member {
        id: user["id"].as_str().unwrap().to_owned(),
        email: email.to_owned(),
        client: client_with_token(&token),
        token,
    }
}

async fn status_of(client: &reqwest::Client, method: &str, url: &str) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let response = client
        .request(method, url)
        .header("tus-resumable", "1.0.0")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn small_clip(dir: &std::path::Path, name: &str, seconds: u32) -> Vec<u8> {
    let source = format!("testsrc2=size=160x120:rate=10:duration={seconds}");
    std::fs::read(lavfi_clip(dir, name, &source, &[])).unwrap()
}

async fn upload_as(
    server: &TestServer,
    client: &reqwest::Client,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name("clip.mp4")
        .mime_str("video/mp4")
        .unwrap();
    let response = client
        .post(server.url("/api/v1/videos"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The routes anyone may call, listed here on purpose: making a route public must be a
/// visible change to this test.
const PUBLIC: [&str; 9] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/openapi.json",
    "/api/v1/auth/register",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/auth/jwks.json",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_credentials_hides_other_members_resources_and_guards_admin_routes() {
    assert_eq!(
        vidsight_api::auth::PUBLIC_ROUTES
            .iter()
            .copied()
            .collect::<BTreeSet<_>>(),
        PUBLIC.into_iter().collect::<BTreeSet<_>>(),
        "the public routes changed: update PUBLIC after a security review"
    );
    let media = tempfile::tempdir().unwrap();
    let server = TestServer::start(json!({})).await;
    let alice = member(&server, "alice@vidsight.test").await;
    let bob = member(&server, "bob@vidsight.test").await;

    // alice's resources: an analysed video (with a keyframe) and an API key
    let (status, video) =
        upload_as(&server, &alice.client, small_clip(media.path(), "a.mp4", 2)).await;
    assert_eq!(status, 201, "{video}");
    let video_id = video["id"].as_str().unwrap().to_owned();
    let analysis_id = video["latest_analysis_id"].as_str().unwrap().to_owned();
    let ready = wait_finished(
        &alice.client,
        &server.base,
        &video_id,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let (_, insights) = status_of(
        &alice.client,
        "get",
        &server.url(&format!("/api/v1/videos/{video_id}/insights")),
    )
    .await;
    let keyframe = insights["shots"][0]["keyframe"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, key) = post(
        &alice.client,
        server.url("/api/v1/api-keys"),
        json!({ "name": "alice's" }),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let key_id = key["id"].as_str().unwrap().to_owned();
    let created = alice
        .client
        .post(server.url("/api/v1/uploads"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "1000")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let upload_id = created.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    let (_, document) = status_of(
        &reqwest::Client::new(),
        "get",
        &server.url("/api/v1/openapi.json"),
    )
    .await;
    let anonymous = reqwest::Client::new();
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            // OPTIONS is CORS/tus discovery, answered without credentials by design
            if !["get", "head", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            checked += 1;
            let public = PUBLIC.contains(&path.as_str());
            let admin = path.starts_with("/api/v1/admin/");
            // alice's resource in place of each path parameter
            let mut concrete = path.clone();
            let mut owned = false;
            if concrete.contains("{name}") {
                concrete = concrete.replace("{name}", &keyframe);
                owned = true;
            }
            if concrete.contains("{sheet}") {
                concrete = concrete.replace("{sheet}", "sheet-000.jpg");
                owned = true;
            }
            if concrete.contains("{id}") {
                let id = if path.starts_with("/api/v1/analyses/") {
                    &analysis_id
                } else if path.starts_with("/api/v1/api-keys/") {
                    &key_id
                } else if path.starts_with("/api/v1/uploads/") {
                    &upload_id
                } else if path.starts_with("/api/v1/admin/") {
                    // refused (403) before any lookup
                    &alice.id
                } else if path.starts_with("/api/v1/videos/") {
                    &video_id
                } else {
                    panic!("{method} {path}: a new kind of path parameter; add its owner check and classify it here")
                };
                concrete = concrete.replace("{id}", id);
                owned = true;
            }
            assert!(
                !concrete.contains('{'),
                "{method} {path}: unclassified path parameter"
            );
            let url = server.url(&concrete);

            let (status, body) = status_of(&anonymous, method, &url).await;
            if !public {
                assert_eq!(status, 401, "{method} {path} without credentials: {body}");
                if method != "head" {
                    assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
                }
            }
            if admin {
                let (status, body) = status_of(&bob.client, method, &url).await;
                assert_eq!(status, 403, "{method} {path} as a member: {body}");
                assert_eq!(body["error"]["code"], "forbidden");
            } else if owned && !public {
                let (status, body) = status_of(&bob.client, method, &url).await;
                assert_eq!(
                    status, 404,
                    "{method} {path} with another member's resource: {body}"
                );
                if method != "head" {
                    assert_eq!(body["error"]["code"], "not-found", "{method} {path}");
                }
            }
        }
    }
    assert!(checked >= 35, "only {checked} operations found");

    // nothing bob tried changed alice's things; the admin (and alice) still see them
    for client in [&server.client, &alice.client] {
        let (status, _) = status_of(
            client,
            "get",
            &server.url(&format!("/api/v1/videos/{video_id}")),
        )
        .await;
        assert_eq!(status, 200);
        let (status, _) = status_of(
            client,
            "get",
            &server.url(&format!("/api/v1/analyses/{analysis_id}")),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (_, keys) = status_of(&alice.client, "get", &server.url("/api/v1/api-keys")).await;
    assert!(keys[0]["revoked_at"].is_null(), "{keys}");
    // listings are per account; an administrator may list everyone's
    let (_, listed) = status_of(&bob.client, "get", &server.url("/api/v1/videos")).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0, "{listed}");
    let (status, _) = status_of(&bob.client, "get", &server.url("/api/v1/videos?owner=all")).await;
    assert_eq!(status, 403);
    let (_, everyone) = status_of(
        &server.client,
        "get",
        &server.url("/api/v1/videos?owner=all"),
    )
    .await;
    assert_eq!(everyone["items"].as_array().unwrap().len(), 1, "{everyone}");
    let _ = bob.email;
    server.stop().await;
}

async fn newest_signing_key(server: &TestServer) -> (String, String) {
    let url = server.config.database_url();
    let query = "SELECT kid, private_key FROM signing_keys ORDER BY created_at DESC LIMIT 1";
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let row: (String, String) = sqlx::query_as(query).fetch_one(&pool).await.unwrap();
        row
    } else {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let row: (String, String) = sqlx::query_as(query).fetch_one(&pool).await.unwrap();
        row
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_verify_with_pyjwt_and_forged_tokens_are_refused() {
    let server = TestServer::start(json!({ "roles": "api" })).await;
    let (_, jwks) = status_of(
        &reqwest::Client::new(),
        "get",
        &server.url("/api/v1/auth/jwks.json"),
    )
    .await;
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );

    // an independent library accepts our token with our published key
    let claims: Value = serde_json::from_str(&python(
        r#"
import json, sys, jwt
jwks, token = json.loads(sys.argv[1]), sys.argv[2]
header = jwt.get_unverified_header(token)
assert header["alg"] == "EdDSA" and header["kid"], header
key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
print(json.dumps(jwt.decode(token, key=jwt.PyJWK(key).key, algorithms=["EdDSA"], audience="vidsight-api", issuer="vidsight")))
"#,
        &[&jwks.to_string(), &server.token],
    ))
    .unwrap();
    assert_eq!(claims["role"], "admin");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        15 * 60
    );

    // tokens made by the same independent library: one valid (our key, so the harness can
    // tell right from wrong) and every kind of forgery
    let (kid, private_key) = newest_signing_key(&server).await;
    let forged: Value = serde_json::from_str(&python(
        r#"
import base64, json, sys, time, jwt
from cryptography.hazmat.primitives.serialization import load_der_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
key = load_der_private_key(base64.b64decode(sys.argv[1]), None)
kid, claims, jwks = sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
now = int(time.time())
def part(value): return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
public_x = base64.urlsafe_b64decode(jwks["keys"][0]["x"] + "==")
print(json.dumps({
    "valid": jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid}),
    "expired": jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, key, algorithm="EdDSA", headers={"kid": kid}),
    "unknown_kid": jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "00000000deadbeef"}),
    "other_key_same_kid": jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}),
    "alg_none": part({"alg": "none", "typ": "JWT", "kid": kid}) + "." + part(claims) + ".",
    "hs256_with_public_key": jwt.encode(claims, public_x, algorithm="HS256", headers={"kid": kid}),
    "wrong_audience": jwt.encode({**claims, "aud": "someone-else"}, key, algorithm="EdDSA", headers={"kid": kid}),
    "wrong_issuer": jwt.encode({**claims, "iss": "someone-else"}, key, algorithm="EdDSA", headers={"kid": kid}),
}))
"#,
        &[&private_key, &kid, &claims.to_string(), &jwks.to_string()],
    ))
    .unwrap();
    let me = |token: String| {
        let server_url = server.url("/api/v1/users/me");
        async move {
            let response = reqwest::Client::new()
                .get(server_url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = me(forged["valid"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, 200, "a correctly signed token: {body}");
    for name in [
        "expired",
        "unknown_kid",
        "other_key_same_kid",
        "alg_none",
        "hs256_with_public_key",
        "wrong_audience",
        "wrong_issuer",
    ] {
        let (status, body) = me(forged[name].as_str().unwrap().to_owned()).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{name}");
    }
    let (_, body) = me(forged["expired"].as_str().unwrap().to_owned()).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    // tampering: the payload of a real token swapped for one naming another role
    let parts: Vec<&str> = server.token.split('.').collect();
    let mut payload = claims.clone();
    payload["role"] = json!("member");
    payload["sub"] = json!(uuid::Uuid::now_v7().to_string());
    use base64_like::encode;
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        encode(payload.to_string().as_bytes()),
        parts[2]
    );
    let (status, _) = me(tampered).await;
    assert_eq!(status, 401);
    let (status, _) = me("not.a.jwt".into()).await;
    assert_eq!(status, 401);
    server.stop().await;
}

/// base64url without padding, for building a tampered token in the test.
mod base64_like {
    pub fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .fold(0u32, |acc, byte| (acc << 8) | *byte as u32)
                << (8 * (3 - chunk.len()));
            for index in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * index)) & 63) as usize] as char);
            }
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_session() {
    let server =
        TestServer::start(json!({ "roles": "api", "auth": { "refresh_reuse_grace_seconds": 1 } }))
            .await;
    let (status, first) = login(&server, ADMIN_EMAIL, TEST_PASSWORD, None).await;
    assert_eq!(status, 200);
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 900);
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let anonymous = reqwest::Client::new();
    let (status, second) = post(
        &anonymous,
        server.url("/api/v1/auth/refresh"),
        json!({ "refresh_token": refresh }),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, refresh, "rotated");
    let second_access = second["access_token"].as_str().unwrap().to_owned();
    let (status, _) = status_of(
        &client_with_token(&second_access),
        "get",
        &server.url("/api/v1/users/me"),
    )
    .await;
    assert_eq!(status, 200);

    // the spent token again at once (a second tab): within the grace period, it still works
    let (status, twin) = post(
        &anonymous,
        server.url("/api/v1/auth/refresh"),
        json!({ "refresh_token": refresh }),
    )
    .await;
    assert_eq!(status, 200, "{twin}");
    let twin_refresh = twin["refresh_token"].as_str().unwrap().to_owned();

    // and later: theft assumed, the whole family is revoked
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) = post(
        &anonymous,
        server.url("/api/v1/auth/refresh"),
        json!({ "refresh_token": refresh }),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = post(
        &anonymous,
        server.url("/api/v1/auth/refresh"),
        json!({ "refresh_token": second_refresh }),
    )
    .await;
    assert_eq!(status, 401, "the newest token of the family is revoked too");
    let (status, _) = post(
        &anonymous,
        server.url("/api/v1/auth/refresh"),
        json!({ "refresh_token": twin_refresh }),
    )
    .await;
    assert_eq!(status, 401, "so is the second tab's");
    let (status, _) = status_of(
        &client_with_token(&second_access),
        "get",
        &server.url("/api/v1/users/me"),
    )
    .await;
    assert_eq!(status, 401, "and so are its access tokens");
    let (status, _) = post(
        &anonymous,
        server.url("/api/v1/auth/refresh"),
        json!({ "refresh_token": "vsr_garbage_x" }),
    )
    .await;
    assert_eq!(status, 401);
    // other sessions are untouched
    let (status, _) = status_of(&server.client, "get", &server.url("/api/v1/users/me")).await;
    assert_eq!(status, 200);

    // sign-out ends one session; a password change ends them all
    let (_, third) = login(&server, ADMIN_EMAIL, TEST_PASSWORD, None).await;
    let third_client = client_with_token(third["access_token"].as_str().unwrap());
    let response = third_client
        .post(server.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, _) = status_of(&third_client, "get", &server.url("/api/v1/users/me")).await;
    assert_eq!(status, 401);
    let (status, _) = post(
        &anonymous,
        server.url("/api/v1/auth/refresh"),
        json!({ "refresh_token": third["refresh_token"] }),
    )
    .await;
    assert_eq!(status, 401);

    let (status, body) = post(
        &server.client,
        server.url("/api/v1/auth/password"),
        json!({ "current_password": "wrong password!", "new_password": "another long passphrase" }),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (401, Some("invalid-credentials"))
    );
    let (status, body) = post(
        &server.client,
        server.url("/api/v1/auth/password"),
        json!({ "current_password": TEST_PASSWORD, "new_password": "short" }),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (400, Some("invalid-input"))
    );
    let (status, _) = post(
        &server.client,
        server.url("/api/v1/auth/password"),
        json!({ "current_password": TEST_PASSWORD, "new_password": "another long passphrase" }),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = status_of(&server.client, "get", &server.url("/api/v1/users/me")).await;
    assert_eq!(status, 401, "every session ended with the password change");
    let (status, _) = login(&server, ADMIN_EMAIL, TEST_PASSWORD, None).await;
    assert_eq!(status, 401);
    let (status, _) = login(
        &server,
        "  Admin@VIDSIGHT.test ",
        "another long passphrase",
        None,
    )
    .await;
    assert_eq!(status, 200, "emails are normalised");
    server.stop().await;
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_value(cookies: &[String], name: &str) -> String {
    cookies
        .iter()
        .find(|cookie| cookie.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
        .split(';')
        .next()
        .unwrap()[name.len() + 1..]
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sessions_use_httponly_cookies_and_writes_need_the_csrf_header() {
    for tls in [false, true] {
        let server = TestServer::start(json!({ "roles": "api", "http": { "tls": tls } })).await;
        let response = reqwest::Client::new()
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({ "email": ADMIN_EMAIL, "password": TEST_PASSWORD, "cookie": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let cookies = set_cookies(&response);
        let body: Value = response.json().await.unwrap();
        assert!(
            body.get("refresh_token").is_none(),
            "the refresh token stays in its cookie: {body}"
        );
        for (name, http_only) in [
            ("vs_access", true),
            ("vs_refresh", true),
            ("vs_csrf", false),
        ] {
            let cookie = cookies
                .iter()
                .find(|cookie| cookie.starts_with(&format!("{name}=")))
                .unwrap();
            assert!(cookie.contains("SameSite=Lax"), "{cookie}");
            assert_eq!(cookie.contains("HttpOnly"), http_only, "{cookie}");
            assert_eq!(cookie.contains("Secure"), tls, "{cookie}");
        }
        assert!(cookies.iter().any(
            |cookie| cookie.starts_with("vs_refresh=") && cookie.contains("Path=/api/v1/auth")
        ));
        let access = cookie_value(&cookies, "vs_access");
        let refresh = cookie_value(&cookies, "vs_refresh");
        let csrf = cookie_value(&cookies, "vs_csrf");
        let jar = format!("vs_access={access}; vs_refresh={refresh}; vs_csrf={csrf}");
        let browser = reqwest::Client::new();
        let read = browser
            .get(server.url("/api/v1/users/me"))
            .header("cookie", &jar)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200, "reads need no CSRF header");
        let forged = browser
            .post(server.url("/api/v1/api-keys"))
            .header("cookie", &jar)
            .json(&json!({ "name": "x", "scopes": ["read"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403);
        let body: Value = forged.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf-failed");
        let wrong = browser
            .post(server.url("/api/v1/api-keys"))
            .header("cookie", &jar)
            .header("x-csrf-token", "not-it")
            .json(&json!({ "name": "x", "scopes": ["read"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 403);
        let written = browser
            .post(server.url("/api/v1/api-keys"))
            .header("cookie", &jar)
            .header("x-csrf-token", &csrf)
            .json(&json!({ "name": "x", "scopes": ["read"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(written.status(), 201);
        // refreshing from the cookie also needs the header, and rotates the cookies
        let refreshed = browser
            .post(server.url("/api/v1/auth/refresh"))
            .header("cookie", &jar)
            .send()
            .await
            .unwrap();
        assert_eq!(refreshed.status(), 403);
        let refreshed = browser
            .post(server.url("/api/v1/auth/refresh"))
            .header("cookie", &jar)
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(refreshed.status(), 200);
        let rotated = set_cookies(&refreshed);
        assert_ne!(cookie_value(&rotated, "vs_refresh"), refresh);
        // security headers, and HSTS only under TLS
        let health = browser.get(server.url("/healthz")).send().await.unwrap();
        let headers = health.headers();
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers.contains_key("strict-transport-security"), tls);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_enrollment_matches_an_independent_implementation_and_is_enforced() {
    // the independent implementation agrees with RFC 6238 (SHA-1 vector at T = 59)
    assert_eq!(
        python(PY_TOTP, &["", "59", "12345678901234567890"]),
        "287082"
    );
    let server = TestServer::start(json!({ "roles": "api" })).await;
    let alice = member(&server, "mfa@vidsight.test").await;
    let (status, enrollment) = post(
        &alice.client,
        server.url("/api/v1/auth/mfa/totp"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{enrollment}");
    let secret = enrollment["secret"].as_str().unwrap().to_owned();
    let uri = enrollment["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/vidsight:mfa%40vidsight.test?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(enrollment["qr_svg"].as_str().unwrap().contains("<svg"));

    let (status, body) = post(
        &alice.client,
        server.url("/api/v1/auth/mfa/totp/confirm"),
        json!({ "code": "000000" }),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (401, Some("invalid-mfa-code"))
    );
    let now = unix_now();
    let code = python(PY_TOTP, &[&secret, &now.to_string()]);
    let (status, confirmed) = post(
        &alice.client,
        server.url("/api/v1/auth/mfa/totp/confirm"),
        json!({ "code": code }),
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(recovery.iter().collect::<BTreeSet<_>>().len(), 10);

    let (status, body) = login(&server, &alice.email, TEST_PASSWORD, None).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (401, Some("mfa-required"))
    );
    let (status, body) = login(&server, &alice.email, TEST_PASSWORD, Some(&code)).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (401, Some("invalid-mfa-code")),
        "a code works once"
    );
    // the next step's code (within the accepted skew), from the independent implementation
    let next = python(PY_TOTP, &[&secret, &(now + 30).to_string()]);
    let (status, body) = login(&server, &alice.email, TEST_PASSWORD, Some(&next)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = login(&server, &alice.email, "wrong password!!", Some(&next)).await;
    assert_eq!(status, 401);
    // recovery codes work once each, in any case and with the dash or without
    let (status, _) = login(
        &server,
        &alice.email,
        TEST_PASSWORD,
        Some(&recovery[0].to_uppercase()),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = login(&server, &alice.email, TEST_PASSWORD, Some(&recovery[0])).await;
    assert_eq!(status, 401);
    let (status, _) = login(
        &server,
        &alice.email,
        TEST_PASSWORD,
        Some(&recovery[1].replace('-', "")),
    )
    .await;
    assert_eq!(status, 200);

    let (status, _) = post(
        &alice.client,
        server.url("/api/v1/auth/mfa/totp/disable"),
        json!({ "password": TEST_PASSWORD, "code": "123" }),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = post(
        &alice.client,
        server.url("/api/v1/auth/mfa/totp/disable"),
        json!({ "password": TEST_PASSWORD, "code": recovery[2] }),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = login(&server, &alice.email, TEST_PASSWORD, None).await;
    assert_eq!(status, 200, "two-factor is off");
    let (_, audit) = status_of(
        &server.client,
        "get",
        &server.url(&format!("/api/v1/admin/audit?user_id={}", alice.id)),
    )
    .await;
    let events: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    for expected in [
        "mfa.enabled",
        "mfa.disabled",
        "mfa.recovery_code_used",
        "login.failed",
        "login.succeeded",
    ] {
        assert!(
            events.contains(&expected),
            "{expected} missing from {events:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_shown_once_scoped_and_revocable() {
    let media = tempfile::tempdir().unwrap();
    let server = TestServer::start(json!({})).await;
    let alice = member(&server, "keys@vidsight.test").await;
    let (status, read) = post(
        &alice.client,
        server.url("/api/v1/api-keys"),
        json!({ "name": "dashboard", "scopes": ["read"] }),
    )
    .await;
    assert_eq!(status, 201, "{read}");
    let read_secret = read["secret"].as_str().unwrap().to_owned();
    assert!(read_secret.starts_with(&format!("vsk_{}_", read["prefix"].as_str().unwrap())));
    let (status, write) = post(
        &alice.client,
        server.url("/api/v1/api-keys"),
        json!({ "name": "uploader", "scopes": ["read", "write"] }),
    )
    .await;
    assert_eq!(status, 201);
    let write_secret = write["secret"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &alice.client,
        server.url("/api/v1/api-keys"),
        json!({ "name": "root", "scopes": ["admin"] }),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );

    let reader = client_with_token(&read_secret);
    let (status, _) = status_of(&reader, "get", &server.url("/api/v1/videos")).await;
    assert_eq!(status, 200);
    let (status, body) = upload_as(&server, &reader, small_clip(media.path(), "r.mp4", 1)).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "read-only"
    );
    let writer = client_with_token(&write_secret);
    let (status, video) = upload_as(&server, &writer, small_clip(media.path(), "w.mp4", 1)).await;
    assert_eq!(status, 201, "{video}");
    assert_eq!(video["owner_id"].as_str(), Some(alice.id.as_str()));
    let (status, _) = post(
        &writer,
        server.url("/api/v1/api-keys"),
        json!({ "name": "more" }),
    )
    .await;
    assert_eq!(status, 403, "keys do not mint keys");
    for path in [
        "/api/v1/auth/mfa/totp",
        "/api/v1/auth/password",
        "/api/v1/auth/logout-all",
    ] {
        let (status, body) = post(
            &writer,
            server.url(path),
            json!({ "current_password": TEST_PASSWORD, "new_password": "taken over by a key" }),
        )
        .await;
        assert_eq!(status, 403, "{path} with a key: {body}");
    }
    let (status, write_only) = post(
        &alice.client,
        server.url("/api/v1/api-keys"),
        json!({ "name": "drop box", "scopes": ["write"] }),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = status_of(
        &client_with_token(write_only["secret"].as_str().unwrap()),
        "get",
        &server.url("/api/v1/videos"),
    )
    .await;
    assert_eq!(status, 403, "a key without the read scope cannot read");

    let (_, listed) = status_of(&alice.client, "get", &server.url("/api/v1/api-keys")).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        !listed
            .iter()
            .any(|key| key.to_string().contains(&read_secret[12..])),
        "secrets are never listed"
    );
    assert!(
        listed
            .iter()
            .filter(|key| !key["last_used_at"].is_null())
            .count()
            == 3,
        "{listed:?}"
    );

    let response = alice
        .client
        .delete(server.url(&format!(
            "/api/v1/api-keys/{}",
            read["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, body) = status_of(&reader, "get", &server.url("/api/v1/videos")).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = status_of(
        &client_with_token("vsk_000000000000_nope"),
        "get",
        &server.url("/api/v1/videos"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = status_of(
        &client_with_token(&format!("{}x", &write_secret)),
        "get",
        &server.url("/api/v1/videos"),
    )
    .await;
    assert_eq!(
        status, 401,
        "a key with the right prefix and the wrong secret"
    );

    // an administrator's admin-scoped key reaches admin routes; a read key of theirs does not
    let (status, admin_key) = post(
        &server.client,
        server.url("/api/v1/api-keys"),
        json!({ "name": "ops", "scopes": ["read", "admin"] }),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = status_of(
        &client_with_token(admin_key["secret"].as_str().unwrap()),
        "get",
        &server.url("/api/v1/admin/users"),
    )
    .await;
    assert_eq!(status, 200);
    let (_, plain_key) = post(
        &server.client,
        server.url("/api/v1/api-keys"),
        json!({ "name": "plain", "scopes": ["read"] }),
    )
    .await;
    let (status, _) = status_of(
        &client_with_token(plain_key["secret"].as_str().unwrap()),
        "get",
        &server.url("/api/v1/admin/users"),
    )
    .await;
    assert_eq!(status, 403);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_on_sign_in_meets_429s_and_a_lockout() {
    // the shipped limits: 10 sign-in attempts per IP, then 10 a minute
    let server = TestServer::start(
        json!({ "roles": "api", "rate_limit": { "auth_burst": 10, "auth_per_minute": 10.0 } }),
    )
    .await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for attempt in 0..20 {
        let response = client
            .post(server.url("/api/v1/auth/login"))
            .header("user-agent", "brute/1.0")
            .json(&json!({ "email": ADMIN_EMAIL, "password": format!("guess number {attempt}") }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .map(|value| value.to_str().unwrap().parse::<u64>().unwrap());
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate-limited");
        }
    }
    assert!(
        statuses[..5].iter().all(|status| *status == 401),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|status| **status == 429).count() >= 10,
        "{statuses:?}"
    );
    assert!(
        retry_after.is_some_and(|seconds| seconds >= 1),
        "{retry_after:?}"
    );
    // even the right password waits out the lockout
    let (status, _) = login(&server, ADMIN_EMAIL, TEST_PASSWORD, None).await;
    assert_eq!(status, 429);
    // the failures are in the audit log with the IP and user agent
    let (_, audit) = status_of(
        &server.client,
        "get",
        &server.url("/api/v1/admin/audit?event=login.failed"),
    )
    .await;
    let failures = audit["items"].as_array().unwrap();
    assert!(failures.len() >= 5, "{audit}");
    assert_eq!(failures[0]["ip"], "127.0.0.1");
    assert_eq!(failures[0]["user_agent"], "brute/1.0");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_account_lockout_doubles_and_a_success_resets_it() {
    // a generous per-IP bucket isolates the account lockout
    let server = TestServer::start(json!({ "roles": "api", "rate_limit": { "auth_burst": 1000, "auth_per_minute": 60000.0, "lockout_after_failures": 3 } })).await;
    let _ = member(&server, "lock@vidsight.test").await;
    for _ in 0..2 {
        let (status, _) = login(&server, "lock@vidsight.test", "wrong password 1", None).await;
        assert_eq!(status, 401);
    }
    let (status, _) = login(&server, "lock@vidsight.test", "wrong password 1", None).await;
    assert_eq!(status, 401, "the third failure locks (1 s)");
    let (status, _) = login(&server, "lock@vidsight.test", TEST_PASSWORD, None).await;
    assert_eq!(status, 429);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = login(&server, "lock@vidsight.test", TEST_PASSWORD, None).await;
    assert_eq!(
        status, 200,
        "after the lockout the right password works, and resets the count"
    );
    let (status, _) = login(&server, "lock@vidsight.test", "wrong password 2", None).await;
    assert_eq!(status, 401, "the count starts again");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_manage_accounts_and_invitation_only_registration() {
    let server =
        TestServer::start(json!({ "roles": "api", "auth": { "registration": "invite" } })).await;
    // the first account (the test admin) could register; nobody else can
    let (status, body) = post(
        &reqwest::Client::new(),
        server.url("/api/v1/auth/register"),
        json!({ "email": "walk-in@vidsight.test", "password": TEST_PASSWORD }),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (403, Some("registration-closed"))
    );
    let (status, me) = status_of(&server.client, "get", &server.url("/api/v1/users/me")).await;
    assert_eq!((status.as_u16(), me["role"].as_str()), (200, Some("admin")));

    let (status, invited) = post(
        &server.client,
        server.url("/api/v1/admin/users"),
        json!({ "email": "Invited@Vidsight.test", "password": TEST_PASSWORD }),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    assert_eq!(invited["email"], "invited@vidsight.test");
    assert_eq!(invited["role"], "member");
    let (status, body) = post(
        &server.client,
        server.url("/api/v1/admin/users"),
        json!({ "email": "invited@vidsight.test", "password": TEST_PASSWORD }),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (409, Some("email-taken"))
    );
    for (email, password) in [
        ("not-an-email", TEST_PASSWORD),
        ("x@vidsight.test", "short"),
    ] {
        let (status, body) = post(
            &server.client,
            server.url("/api/v1/admin/users"),
            json!({ "email": email, "password": password }),
        )
        .await;
        assert_eq!(
            (status.as_u16(), body["error"]["code"].as_str()),
            (400, Some("invalid-input")),
            "{email}"
        );
    }
    let id = invited["id"].as_str().unwrap().to_owned();
    let (_, tokens) = login(&server, "invited@vidsight.test", TEST_PASSWORD, None).await;
    let invited_client = client_with_token(tokens["access_token"].as_str().unwrap());
    let (status, _) = status_of(&invited_client, "get", &server.url("/api/v1/users/me")).await;
    assert_eq!(status, 200);

    // disabling ends the sessions at once and refuses sign-in
    let response = server
        .client
        .patch(server.url(&format!("/api/v1/admin/users/{id}")))
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, body) = status_of(&invited_client, "get", &server.url("/api/v1/users/me")).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (403, Some("account-disabled")),
        "the session stops at once"
    );
    let (status, body) = login(&server, "invited@vidsight.test", TEST_PASSWORD, None).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (403, Some("account-disabled"))
    );
    let response = server
        .client
        .patch(server.url(&format!("/api/v1/admin/users/{id}")))
        .json(&json!({ "disabled": false, "role": "admin" }))
        .send()
        .await
        .unwrap();
    let updated: Value = response.json().await.unwrap();
    assert_eq!(
        (updated["disabled"].as_bool(), updated["role"].as_str()),
        (Some(false), Some("admin"))
    );
    let (status, _) = login(&server, "invited@vidsight.test", TEST_PASSWORD, None).await;
    assert_eq!(status, 200);

    let (_, audit) = status_of(
        &server.client,
        "get",
        &server.url(&format!("/api/v1/admin/audit?user_id={id}")),
    )
    .await;
    let events: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "login.succeeded",
            "user.enabled",
            "login.failed",
            "user.disabled",
            "login.succeeded",
            "user.created"
        ],
        "newest first"
    );
    assert!(
        audit["items"][1]["actor_id"].is_string(),
        "who did it: {audit}"
    );
    let (_, users) = status_of(
        &server.client,
        "get",
        &server.url("/api/v1/admin/users?limit=1"),
    )
    .await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1);
    assert!(users["next_cursor"].is_string());
    let response = server
        .client
        .delete(server.url(&format!("/api/v1/admin/users/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, _) = status_of(
        &server.client,
        "get",
        &server.url(&format!("/api/v1/admin/users/{id}")),
    )
    .await;
    assert_eq!(status, 404);
    let (_, audit) = status_of(
        &server.client,
        "get",
        &server.url("/api/v1/admin/audit?limit=500"),
    )
    .await;
    let events: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    for expected in ["user.deleted", "login.succeeded"] {
        assert!(
            events.contains(&expected),
            "{expected} missing from {events:?}"
        );
    }
    assert!(
        !audit.to_string().contains(&id),
        "nothing of the erased account stays in the log"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_with_quota_exceeded_and_usage_reports_them() {
    let media = tempfile::tempdir().unwrap();
    let server = TestServer::start(json!({ "quota": { "analysis_minutes_per_month": 1 } })).await;
    let alice = member(&server, "quota@vidsight.test").await;
    let (_, usage) = status_of(&alice.client, "get", &server.url("/api/v1/users/me/usage")).await;
    assert_eq!(usage["analysis_limit_minutes"], 1, "{usage}");
    assert!(
        usage["storage_limit_bytes"].is_null(),
        "unlimited by default: {usage}"
    );

    // 70 s of video is over a 1-minute monthly allowance
    let (status, body) = upload_as(
        &server,
        &alice.client,
        small_clip(media.path(), "long.mp4", 70),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 minutes"),
        "{body}"
    );
    let (status, video) = upload_as(
        &server,
        &alice.client,
        small_clip(media.path(), "short.mp4", 20),
    )
    .await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_str().unwrap().to_owned();
    let (_, usage) = status_of(&alice.client, "get", &server.url("/api/v1/users/me/usage")).await;
    assert_eq!(usage["videos"], 1);
    assert!(
        (usage["analysis_minutes"].as_f64().unwrap() - 20.0 / 60.0).abs() < 0.02,
        "{usage}"
    );
    assert!(usage["storage_bytes"].as_i64().unwrap() > 0);
    wait_finished(&alice.client, &server.base, &id, Duration::from_secs(60)).await;
    // two re-runs of 20 s fit in the minute; a third does not
    let rerun = server.url(&format!("/api/v1/videos/{id}/analyses"));
    let (status, body) = post(&alice.client, rerun.clone(), json!({})).await;
    assert_eq!(status, 202, "{body}");
    wait_finished(&alice.client, &server.base, &id, Duration::from_secs(60)).await;
    let (status, _) = post(&alice.client, rerun.clone(), json!({})).await;
    assert_eq!(status, 202);
    wait_finished(&alice.client, &server.base, &id, Duration::from_secs(60)).await;
    let (status, body) = post(&alice.client, rerun.clone(), json!({})).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{body}"
    );

    // an administrator sets a per-account storage limit
    let response = server
        .client
        .patch(server.url(&format!("/api/v1/admin/users/{}", alice.id)))
        .json(&json!({ "quota_storage_bytes": 1000, "quota_analysis_minutes": 100 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, body) = upload_as(
        &server,
        &alice.client,
        small_clip(media.path(), "more.mp4", 1),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1000 bytes"),
        "{body}"
    );
    let (_, usage) = status_of(&alice.client, "get", &server.url("/api/v1/users/me/usage")).await;
    assert_eq!(
        (
            usage["storage_limit_bytes"].as_i64(),
            usage["analysis_limit_minutes"].as_i64()
        ),
        (Some(1000), Some(100))
    );
    server.stop().await;
}

/// Every row of every table, as text, for finding what is left of an account.
async fn database_dump(server: &TestServer) -> String {
    let url = server.config.database_url();
    let mut dump = String::new();
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&pool)
                .await
                .unwrap();
        for table in tables {
            let columns: Vec<String> =
                sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            if columns.is_empty() {
                continue;
            }
            let concat = columns
                .iter()
                .map(|column| format!("quote(\"{column}\")"))
                .collect::<Vec<_>>()
                .join(" || ',' || ");
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT {concat} FROM \"{table}\""))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            dump.push_str(&format!("{table}: {}\n", rows.join("\n")));
        }
    } else {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()").fetch_all(&pool).await.unwrap();
        for table in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            dump.push_str(&format!("{table}: {}\n", rows.join("\n")));
        }
    }
    dump
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_exports_everything_and_erasure_leaves_nothing() {
    let media = tempfile::tempdir().unwrap();
    let server = TestServer::start(json!({})).await;
    let alice = member(&server, "gdpr@vidsight.test").await;
    let (_, video) = upload_as(
        &server,
        &alice.client,
        small_clip(media.path(), "mine.mp4", 2),
    )
    .await;
    let video_id = video["id"].as_str().unwrap().to_owned();
    assert_eq!(
        wait_finished(
            &alice.client,
            &server.base,
            &video_id,
            Duration::from_secs(60)
        )
        .await["status"],
        "ready"
    );
    let (_, queued) = upload_as(
        &server,
        &alice.client,
        small_clip(media.path(), "queued.mp4", 1),
    )
    .await;
    let queued_id = queued["id"].as_str().unwrap().to_owned();
    let (status, _) = post(
        &alice.client,
        server.url("/api/v1/api-keys"),
        json!({ "name": "script" }),
    )
    .await;
    assert_eq!(status, 201);
    // someone else's video stays
    let (_, other) = server
        .upload(
            small_clip(media.path(), "admins.mp4", 1),
            "admins.mp4",
            "video/mp4",
        )
        .await;
    let other_id = other["id"].as_str().unwrap().to_owned();

    let response = alice
        .client
        .get(server.url("/api/v1/users/me/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let export: Value = response.json().await.unwrap();
    assert_eq!(export["account"]["email"], "gdpr@vidsight.test");
    assert_eq!(export["api_keys"].as_array().unwrap().len(), 1);
    let videos = export["videos"].as_array().unwrap();
    assert_eq!(videos.len(), 2);
    let ready = videos
        .iter()
        .find(|entry| entry["video"]["id"] == video_id.as_str())
        .unwrap();
    assert_valid_insights(&ready["analyses"][0]["insights"]);
    assert!(!ready["links"]["keyframes"].as_array().unwrap().is_empty());
    for link in [
        ready["links"]["content"].as_str().unwrap(),
        ready["links"]["keyframes"][0].as_str().unwrap(),
    ] {
        let (status, _) = (
            alice
                .client
                .get(server.url(link))
                .send()
                .await
                .unwrap()
                .status(),
            (),
        );
        assert_eq!(status, 200, "{link}");
    }
    let audit: Vec<&str> = export["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    assert!(
        audit.contains(&"user.registered")
            && audit.contains(&"login.succeeded")
            && audit.contains(&"apikey.created"),
        "{audit:?}"
    );
    assert!(
        !export.to_string().contains(&other_id),
        "only the account's own data"
    );

    // erasure: API keys cannot do it; a session can
    let (_, key) = post(
        &alice.client,
        server.url("/api/v1/api-keys"),
        json!({ "name": "eraser" }),
    )
    .await;
    let response = client_with_token(key["secret"].as_str().unwrap())
        .delete(server.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = alice
        .client
        .delete(server.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, _) = status_of(&alice.client, "get", &server.url("/api/v1/users/me")).await;
    assert_eq!(status, 401);
    let (status, _) = login(&server, "gdpr@vidsight.test", TEST_PASSWORD, None).await;
    assert_eq!(status, 401);

    let dump = database_dump(&server).await;
    for trace in [
        alice.id.as_str(),
        "gdpr@vidsight.test",
        video_id.as_str(),
        queued_id.as_str(),
    ] {
        assert!(
            !dump.contains(trace),
            "`{trace}` is still in the database:\n{}",
            dump.lines()
                .filter(|line| line.contains(trace))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(dump.contains(&other_id), "the rest is intact");
    let objects = server.stored_objects().await;
    assert!(
        objects
            .iter()
            .all(|key| !key.contains(&video_id) && !key.contains(&queued_id)),
        "{objects:?}"
    );
    assert!(
        objects.iter().any(|key| key.contains(&other_id)),
        "{objects:?}"
    );
    let (status, _) = server.get_json(&format!("/api/v1/videos/{video_id}")).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_count_only_with_the_gateway_secret() {
    let secret = "a-long-shared-gateway-secret";
    let server =
        TestServer::start(json!({ "roles": "api", "auth": { "gateway_secret": secret } })).await;
    let alice = member(&server, "gw@vidsight.test").await;
    let (_, admin) = status_of(&server.client, "get", &server.url("/api/v1/users/me")).await;
    let admin_id = admin["id"].as_str().unwrap();
    let anonymous = reqwest::Client::new();
    let as_admin = |secret: Option<&str>| {
        let mut request = anonymous
            .get(server.url("/api/v1/admin/users"))
            .header("x-user-id", admin_id)
            .header("x-user-role", "admin")
            .header("x-user-scopes", "read,write,admin")
            .header("x-user-credential", "session");
        if let Some(secret) = secret {
            request = request.header("x-gateway-secret", secret);
        }
        request.send()
    };
    assert_eq!(
        as_admin(None).await.unwrap().status(),
        401,
        "a client cannot claim an identity"
    );
    assert_eq!(
        as_admin(Some("a-long-shared-gateway-guess"))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(as_admin(Some(secret)).await.unwrap().status(), 200);
    // the gateway cannot make a member an admin
    let via_gateway = |method: reqwest::Method,
                       path: &str,
                       user: &str,
                       scopes: Option<&str>,
                       credential: &str| {
        let mut request = anonymous
            .request(method, server.url(path))
            .header("x-gateway-secret", secret)
            .header("x-user-id", user)
            .header("x-user-role", "admin")
            .header("x-user-credential", credential)
            .json(&json!({ "name": "x" }));
        if let Some(scopes) = scopes {
            request = request.header("x-user-scopes", scopes);
        }
        request.send()
    };
    let response = via_gateway(
        reqwest::Method::GET,
        "/api/v1/admin/users",
        &alice.id,
        Some("read,write,admin"),
        "session",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 403);
    // no scope header grants nothing; an API key behind the gateway is still only a key
    let response = via_gateway(
        reqwest::Method::GET,
        "/api/v1/users/me",
        &alice.id,
        None,
        "session",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 403);
    let response = via_gateway(
        reqwest::Method::GET,
        "/api/v1/users/me",
        &alice.id,
        Some("none"),
        "session",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 403);
    let response = via_gateway(
        reqwest::Method::GET,
        "/api/v1/users/me",
        &alice.id,
        Some("read"),
        "api-key",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    for (method, path) in [
        (reqwest::Method::DELETE, "/api/v1/users/me"),
        (reqwest::Method::POST, "/api/v1/api-keys"),
        (reqwest::Method::POST, "/api/v1/auth/mfa/totp"),
        (reqwest::Method::POST, "/api/v1/auth/logout-all"),
    ] {
        let response = via_gateway(
            method.clone(),
            path,
            &alice.id,
            Some("read,write"),
            "api-key",
        )
        .await
        .unwrap();
        assert_eq!(
            response.status(),
            403,
            "{method} {path} with a key through the gateway"
        );
    }

    // the verify endpoint nginx calls: identity headers for a valid credential, the original
    // request authorized as the API would
    let response = anonymous
        .get(server.url("/api/v1/auth/verify"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-user-id"], alice.id.as_str());
    assert_eq!(response.headers()["x-user-role"], "member");
    assert_eq!(response.headers()["x-user-scopes"], "read,write");
    assert_eq!(response.headers()["x-user-credential"], "session");
    let response = anonymous
        .get(server.url("/api/v1/auth/verify"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = anonymous
        .get(server.url("/api/v1/auth/verify"))
        .bearer_auth(&alice.token)
        .header("x-original-method", "GET")
        .header("x-original-uri", "/api/v1/admin/audit?limit=5")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "a member's request to an admin route"
    );
    // verify judges the original request, not its own GET: a write-only key may upload
    let (_, write_only) = post(
        &alice.client,
        server.url("/api/v1/api-keys"),
        json!({ "name": "drop box", "scopes": ["write"] }),
    )
    .await;
    let write_only = write_only["secret"].as_str().unwrap().to_owned();
    for (method, expected) in [("POST", 200), ("GET", 403)] {
        let response = anonymous
            .get(server.url("/api/v1/auth/verify"))
            .bearer_auth(&write_only)
            .header("x-original-method", method)
            .header("x-original-uri", "/api/v1/videos")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            expected,
            "{method} with a write-only key"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_closed_by_default_and_open_to_configured_origins() {
    for (origins, allowed) in [
        (json!([]), false),
        (json!(["https://app.example.com"]), true),
    ] {
        let server =
            TestServer::start(json!({ "roles": "api", "http": { "cors_origins": origins } })).await;
        let response = reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, server.url("/api/v1/videos"))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,x-csrf-token",
            )
            .send()
            .await
            .unwrap();
        let allow = response
            .headers()
            .get("access-control-allow-origin")
            .map(|value| value.to_str().unwrap().to_owned());
        assert_eq!(
            allow.as_deref() == Some("https://app.example.com"),
            allowed,
            "{allow:?}"
        );
        let response = server
            .client
            .get(server.url("/api/v1/videos"))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "never for other origins"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_from_many_addresses_are_capped_per_account() {
    // many addresses (through a trusted gateway's X-Forwarded-For), one account, all at once:
    // the account's attempt bucket is taken before any password is checked
    let secret = "a-long-shared-gateway-secret";
    let server = TestServer::start(json!({
        "roles": "api",
        "auth": { "gateway_secret": secret },
        "rate_limit": { "auth_burst": 5, "auth_per_minute": 1.0, "lockout_after_failures": 100 }
    }))
    .await;
    let client = reqwest::Client::new();
    let guesses = (0..20).map(|index| {
        let request = client
            .post(server.url("/api/v1/auth/login"))
            .header("x-gateway-secret", secret)
            .header("x-forwarded-for", format!("198.51.100.{index}"))
            .json(&json!({ "email": ADMIN_EMAIL, "password": format!("parallel guess {index}") }));
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|status| **status == 401).count();
    let refused = statuses.iter().filter(|status| **status == 429).count();
    assert!(checked <= 5, "{statuses:?}");
    assert_eq!(checked + refused, 20, "{statuses:?}");
    // the audit log has the addresses the gateway reported
    let (_, audit) = status_of(
        &server.client,
        "get",
        &server.url("/api/v1/admin/audit?event=login.failed"),
    )
    .await;
    let addresses: BTreeSet<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["ip"].as_str())
        .collect();
    assert!(
        addresses.iter().all(|ip| ip.starts_with("198.51.100.")),
        "{addresses:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_see_the_queue_failed_jobs_and_everyones_usage() {
    let media = tempfile::tempdir().unwrap();
    // a video whose stored file goes bad before a worker sees it: its analysis fails
    let data = tempfile::tempdir().unwrap();
    let api = TestServer::start_in(data.path(), json!({ "roles": "api" })).await;
    let (status, video) = api
        .upload(small_clip(media.path(), "f.mp4", 1), "f.mp4", "video/mp4")
        .await;
    assert_eq!(status, 201);
    let id = video["id"].as_str().unwrap().to_owned();
    api.blobs()
        .put_bytes(
            &format!("videos/{id}/original"),
            bytes::Bytes::from_static(b"not a video any more"),
        )
        .await
        .unwrap();
    api.stop().await;
    let server = TestServer::start_in(data.path(), json!({})).await;
    assert_eq!(
        server.wait_finished(&id, Duration::from_secs(30)).await["status"],
        "failed"
    );

    let (status, queue) =
        status_of(&server.client, "get", &server.url("/api/v1/admin/queue")).await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["dead"], 1, "{queue}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, queue) = status_of(&server.client, "get", &server.url("/api/v1/admin/queue")).await;
        if queue["workers"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no worker reported in: {queue}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, failed) = status_of(
        &server.client,
        "get",
        &server.url("/api/v1/admin/jobs/failed"),
    )
    .await;
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["video_id"], id.as_str());
    assert!(
        failed[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("unsupported-media-type"),
        "{failed:?}"
    );
    let job = failed[0]["id"].as_str().unwrap().to_owned();
    let (status, analysis) = post(
        &server.client,
        server.url(&format!("/api/v1/admin/jobs/{job}/retry")),
        json!({}),
    )
    .await;
    assert_eq!(status, 202, "{analysis}");
    assert_eq!(analysis["video_id"], id.as_str());
    let (status, _) = post(
        &server.client,
        server.url(&format!(
            "/api/v1/admin/jobs/{}/retry",
            uuid::Uuid::now_v7()
        )),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);

    let alice = member(&server, "usage@vidsight.test").await;
    let (_, usage) = status_of(&server.client, "get", &server.url("/api/v1/admin/usage")).await;
    let items = usage["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{usage}");
    assert_eq!(items[0]["user"]["email"], ADMIN_EMAIL);
    assert_eq!(items[0]["usage"]["videos"], 1);
    assert_eq!(items[1]["user"]["id"], alice.id.as_str());
    assert_eq!(items[1]["usage"]["videos"], 0);
    server.stop().await;
}
