//! Secrets at rest (`WABRIDGE_SECRET_KEY`): what the database holds, that deliveries are still
//! signed with the registration's secret, rotation, and refusals to start. On the suite's
//! backend (SQLite, or PostgreSQL under scripts/with-postgres.sh).

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use wabridge::app::Application;
use wabridge::secret::at_rest::{AtRest, AtRestKey};

use crate::helpers::*;

const HEADER_VALUE: &str = "Bearer header-value-that-must-not-be-stored-7f3a";

fn key() -> String {
    AtRestKey::generate().unwrap()
}

fn at_rest(current: Option<&str>, previous: &[&str]) -> AtRest {
    AtRest::new(
        current.map(|k| AtRestKey::parse(k).unwrap()),
        previous
            .iter()
            .map(|k| AtRestKey::parse(k).unwrap())
            .collect(),
    )
}

fn key_id(key: &str) -> String {
    AtRestKey::parse(key).unwrap().id().to_owned()
}

/// The `secret` and `headers` columns of a registration, read straight from the database.
async fn raw_columns(db_path: &Path, id: &str) -> (String, String) {
    use sqlx::{Connection as _, Row as _};
    let url = database_url(db_path);
    let sql = "SELECT secret, headers FROM webhooks WHERE id = ";
    if on_postgres() {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{sql}$1")))
            .bind(id)
            .fetch_one(&mut c)
            .await
            .unwrap();
        (row.get(0), row.get(1))
    } else {
        let mut c = sqlx::SqliteConnection::connect(&format!("{url}?mode=ro"))
            .await
            .unwrap();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{sql}?")))
            .bind(id)
            .fetch_one(&mut c)
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn register(app: &TestApp, rx: &Receiver) -> (String, String) {
    let created = app
        .register(&json!({
            "url": rx.url,
            "events": ["session.*"],
            "headers": {"Authorization": HEADER_VALUE}
        }))
        .await;
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// Ingests one event and waits for `n` receipts in total; each is checked with the official
/// Standard Webhooks verifier against `secret`, and carries the custom header.
async fn deliver_and_verify(app: &TestApp, rx: &Receiver, secret: &str, n: usize) {
    app.ingest_ok(&session_event("session.qr", &format!("s-{n}")))
        .await;
    let got = rx.wait_for(n, Duration::from_secs(15)).await;
    for r in &got {
        verify_officially(secret, r);
        assert_eq!(r.header("authorization"), HEADER_VALUE);
    }
}

#[tokio::test]
async fn with_a_key_the_database_holds_no_secret_nor_header_value_and_deliveries_verify() {
    let key = key();
    let app = spawn_app_with(|c| c.at_rest = at_rest(Some(&key), &[])).await;
    let rx = Receiver::start().await;
    let (id, secret) = register(&app, &rx).await;

    // The first attempt fails: it went out through the hand-off after ingest; the retry goes
    // out through a claim. Both read the secret and the header from the store.
    rx.script([Reply::status(500)]);
    app.ingest_ok(&session_event("session.qr", "s1")).await;
    let got = rx.wait_for(2, Duration::from_secs(15)).await;
    for r in &got {
        verify_officially(&secret, r);
        assert_eq!(r.header("authorization"), HEADER_VALUE);
    }
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));

    // A change rewrites the row, still sealed, and deliveries still verify.
    let res = app
        .patch(
            &format!("/v1/webhooks/{id}"),
            &json!({"description": "changed"}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    deliver_and_verify(&app, &rx, &secret, 3).await;

    let (stored_secret, stored_headers) = raw_columns(&app.db_path, &id).await;
    let prefix = format!("enc:v1:{}:", key_id(&key));
    assert!(stored_secret.starts_with(&prefix), "{stored_secret}");
    let sealed: Value = serde_json::from_str(&stored_headers).unwrap();
    assert!(
        sealed.as_str().is_some_and(|s| s.starts_with(&prefix)),
        "{stored_headers}"
    );
    let bytes = stored_bytes(&app.db_path);
    let whsec_body = secret.trim_start_matches("whsec_");
    for needle in [
        secret.as_str(),
        whsec_body,
        HEADER_VALUE,
        "header-value-that",
    ] {
        assert!(!contains(&bytes, needle), "{needle:?} is stored in clear");
    }
}

#[tokio::test]
async fn plaintext_rows_stay_readable_and_rotation_rewrites_them_under_each_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rotate.db");
    let rx = Receiver::start().await;
    let (a, b) = (key(), key());

    // Nothing to rotate yet: refused, and no empty database is created.
    if !on_postgres() {
        let out = rotate(&db, Some(&a), None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("there is no database at"), "{stderr}");
        assert!(!db.exists());
    }

    // Registered without a key: plaintext.
    let mut app = spawn_app_on(&db, |_| {}).await;
    let (id, secret) = register(&app, &rx).await;
    app.stop().await;
    drop(app);
    assert_eq!(raw_columns(&db, &id).await.0, secret);

    // With key A, the plaintext row is read as it is (and left as it is until rotated).
    let mut app = spawn_app_on(&db, |c| c.at_rest = at_rest(Some(&a), &[])).await;
    deliver_and_verify(&app, &rx, &secret, 1).await;
    app.stop().await;
    drop(app);
    assert_eq!(raw_columns(&db, &id).await.0, secret);

    // Rotate to A with the real binary: the row is sealed under A.
    let out = rotate(&db, Some(&a), None);
    assert_rotated(&out, 1);
    assert!(
        raw_columns(&db, &id)
            .await
            .0
            .starts_with(&format!("enc:v1:{}:", key_id(&a)))
    );
    // Again: nothing left to rewrite.
    assert_rotated(&rotate(&db, Some(&a), None), 0);

    // Rotate to B, reading with A.
    assert_rotated(&rotate(&db, Some(&b), Some(&a)), 1);
    let (stored_secret, stored_headers) = raw_columns(&db, &id).await;
    assert!(stored_secret.starts_with(&format!("enc:v1:{}:", key_id(&b))));
    assert!(stored_headers.contains(&key_id(&b)));

    // A alone, or no key at all, can no longer read it: the bridge refuses to start.
    let err = build_error(&db, at_rest(Some(&a), &[])).await;
    assert!(err.contains(&key_id(&b)), "{err}");
    assert!(err.contains("WABRIDGE_SECRET_KEY_PREVIOUS"), "{err}");
    assert!(!err.contains(&secret) && !err.contains(&a), "{err}");
    let err = build_error(&db, AtRest::plaintext()).await;
    assert!(err.contains("WABRIDGE_SECRET_KEY is not set"), "{err}");

    // B alone reads it, and deliveries verify with the registration's secret.
    let mut app = spawn_app_on(&db, |c| c.at_rest = at_rest(Some(&b), &[])).await;
    deliver_and_verify(&app, &rx, &secret, 2).await;
    app.stop().await;
    drop(app);

    // Back to plaintext: no current key, B as the previous one.
    assert_rotated(&rotate(&db, None, Some(&b)), 1);
    let (stored_secret, stored_headers) = raw_columns(&db, &id).await;
    assert_eq!(stored_secret, secret);
    assert!(stored_headers.contains(HEADER_VALUE));
}

#[tokio::test]
async fn a_secret_moved_to_another_row_is_refused_at_start() {
    let k = key();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("moved.db");
    let rx = Receiver::start().await;
    let mut app = spawn_app_on(&db, |c| c.at_rest = at_rest(Some(&k), &[])).await;
    let (first, _) = register(&app, &rx).await;
    let (second, _) = register(&app, &rx).await;
    app.stop().await;
    drop(app);
    // Copy the first row's (valid, same key) ciphertexts over the second's.
    let (secret, headers) = raw_columns(&db, &first).await;
    overwrite_columns(&db, &second, &secret, &headers).await;
    let err = build_error(&db, at_rest(Some(&k), &[])).await;
    assert!(err.contains(&second), "{err}");
    assert!(err.contains("altered or moved"), "{err}");
}

async fn overwrite_columns(db_path: &Path, id: &str, secret: &str, headers: &str) {
    use sqlx::Connection as _;
    let url = database_url(db_path);
    if on_postgres() {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE webhooks SET secret = $1, headers = $2 WHERE id = $3")
            .bind(secret)
            .bind(headers)
            .bind(id)
            .execute(&mut c)
            .await
            .unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE webhooks SET secret = ?, headers = ? WHERE id = ?")
            .bind(secret)
            .bind(headers)
            .bind(id)
            .execute(&mut c)
            .await
            .unwrap();
    }
}

/// Application::build on `db` with these keys must fail; its message (as main prints it).
async fn build_error(db: &Path, at_rest: AtRest) -> String {
    init_crypto();
    let mut config = test_config(db);
    config.at_rest = at_rest;
    match Application::build(config).await {
        Ok(_) => panic!("the bridge started although it cannot read the stored secrets"),
        Err(e) => format!("{e:#}"),
    }
}

fn wabridge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wabridge"));
    c.env_remove("WABRIDGE_SECRET_KEY")
        .env_remove("WABRIDGE_SECRET_KEY_PREVIOUS")
        .env_remove("WABRIDGE_DATABASE_URL")
        .env("RUST_LOG", "warn");
    c
}

/// `wabridge secrets rotate` on `db` with these keys.
fn rotate(db: &Path, current: Option<&str>, previous: Option<&str>) -> Output {
    let mut c = wabridge();
    let url = database_url(db);
    c.args(["secrets", "rotate", "--database-url", url.as_str()]);
    if let Some(k) = current {
        c.env("WABRIDGE_SECRET_KEY", k);
    }
    if let Some(k) = previous {
        c.env("WABRIDGE_SECRET_KEY_PREVIOUS", k);
    }
    c.output().expect("the wabridge binary runs")
}

fn assert_rotated(out: &Output, rewritten: u64) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with(&format!("{rewritten} of 1 registrations rewritten")),
        "{stdout}"
    );
}

#[test]
fn a_bad_key_is_refused_by_the_binary_with_a_readable_message_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("bad.db").display());
    let short = "c2hvcnQta2V5LW9mLTE4LWJ5dGVz"; // 21 bytes
    for (var, value, says) in [
        ("WABRIDGE_SECRET_KEY", short, "32 random bytes"),
        ("WABRIDGE_SECRET_KEY", "not base64 at all!", "not base64"),
        ("WABRIDGE_SECRET_KEY", "   ", "empty"),
        ("WABRIDGE_SECRET_KEY_PREVIOUS", short, "32 random bytes"),
    ] {
        for args in [
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                db.as_str(),
            ][..],
            &["secrets", "rotate", "--database-url", db.as_str()][..],
        ] {
            let out = wabridge()
                .args(args)
                .env(var, value)
                .output()
                .expect("the wabridge binary runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?} {var}: {stderr}");
            assert!(stderr.contains(var), "{stderr}");
            assert!(stderr.contains(says), "{stderr}");
            if !value.trim().is_empty() {
                assert!(!stderr.contains(value), "the key is echoed: {stderr}");
            }
        }
    }
    assert!(
        !dir.path().join("bad.db").exists(),
        "nothing was opened with a bad key"
    );

    // `secrets new-key` makes keys that are accepted, a different one each time.
    let new_key = || {
        let out = wabridge().args(["secrets", "new-key"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (k1, k2) = (new_key(), new_key());
    assert_ne!(k1, k2);
    assert!(AtRestKey::parse(&k1).is_ok(), "{k1}");
}
