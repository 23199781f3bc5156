//! What survives a restart: registrations, and the key generated on first start (stored as a
//! hash only).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wabridge::store::KeyRole;

use crate::helpers::*;

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn status_with_key(app: &TestApp, path: &str, key: &str) -> u16 {
    app.client
        .get(app.url(path))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn ingest_status_with_key(app: &TestApp, key: &str) -> u16 {
    app.client
        .post(app.url("/v1/ingest"))
        .header("X-API-Key", key)
        .json(&session_event("session.qr", "s1"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn registrations_survive_a_restart() {
    let mut app = spawn_app().await;
    let created = app
        .register(&json!({
            "url": "http://127.0.0.1:5678/webhook/abc",
            "events": ["message.received", "session.*"],
            "sessionId": "shop-main",
            "description": "survives",
            "headers": {"X-Workflow": "orders"},
            "rateLimit": 2.5
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let paused = app
        .register(&json!({"url": "http://127.0.0.1:5678/other", "events": ["*"]}))
        .await;
    let paused_id = paused["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.patch(
            &format!("/v1/webhooks/{paused_id}"),
            &json!({"active": false})
        )
        .await
        .status(),
        200
    );
    let before: Value = app
        .get(&format!("/v1/webhooks/{id}"))
        .await
        .json()
        .await
        .unwrap();
    app.stop().await;
    let dir = app.dir.take().expect("the temp dir");
    drop(app);

    let mut again = spawn_app_on(&dir.path().join("wabridge.db"), |_| {}).await;
    let res = again.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(res.status(), 200);
    let after: Value = res.json().await.unwrap();
    assert_eq!(after, before, "every field as before the restart");
    assert_eq!(after["id"], id);
    assert_eq!(after["events"], json!(["message.received", "session.*"]));
    assert_eq!(after["headerNames"], json!(["X-Workflow"]));

    let list: Value = again.get("/v1/webhooks").await.json().await.unwrap();
    let listed: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![id.as_str(), paused_id.as_str()]);
    assert_eq!(list["data"][1]["active"], false, "still paused");

    // And it is the real thing: it can be deleted, once.
    assert_eq!(
        again.delete(&format!("/v1/webhooks/{id}")).await.status(),
        204
    );
    assert_eq!(
        again.delete(&format!("/v1/webhooks/{id}")).await.status(),
        404
    );
    again.stop().await;
    drop(dir);
}

#[tokio::test]
async fn keys_are_generated_on_first_start_and_kept_as_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("wabridge.db");
    let no_keys = |c: &mut wabridge::config::Config| {
        c.api_keys = vec![];
        c.ingest_keys = vec![];
    };

    // First start: one key per role.
    let (mut app, generated) = spawn_app_on_with_keys(&db_path, no_keys).await;
    assert_eq!(generated.len(), 2, "{generated:?}");
    let admin = generated
        .iter()
        .find(|k| k.role == KeyRole::Admin)
        .expect("an admin key")
        .key
        .clone();
    let ingest = generated
        .iter()
        .find(|k| k.role == KeyRole::Ingest)
        .expect("an ingest key")
        .key
        .clone();
    assert!(admin.starts_with("wbk_") && admin.len() > 40, "{admin}");
    assert!(ingest.starts_with("wbi_") && ingest.len() > 40, "{ingest}");
    assert!(
        !format!("{generated:?}").contains(&admin),
        "Debug hides keys"
    );

    assert_eq!(status_with_key(&app, "/v1/webhooks", &admin).await, 200);
    assert_eq!(status_with_key(&app, "/v1/webhooks", &ingest).await, 401);
    assert_eq!(status_with_key(&app, "/v1/webhooks", ADMIN_KEY).await, 401);
    assert_eq!(ingest_status_with_key(&app, &ingest).await, 202);
    assert_eq!(ingest_status_with_key(&app, &admin).await, 401);

    // A registration whose secret is stored (it must be: deliveries are signed with it).
    let res = app
        .client
        .post(app.url("/v1/webhooks"))
        .header("X-API-Key", &admin)
        .json(&json!({
            "url": "http://127.0.0.1:5678/hook",
            "events": ["*"],
            "secret": "a-plain-openwa-secret"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    app.stop().await;

    // The database holds the hashes, never the keys.
    let bytes = stored_bytes(&db_path);
    for key in [&admin, &ingest] {
        assert!(!contains(&bytes, key), "a plaintext key is stored");
        let hash = hex::encode(&Sha256::digest(key.as_bytes())[..]);
        assert!(contains(&bytes, &hash), "the key's hash is stored");
    }
    assert!(
        contains(&bytes, "a-plain-openwa-secret"),
        "the webhook secret is stored (this is what the check above looks in)"
    );
    drop(app);

    // Second start on the same database: nothing new is generated, the first keys still work.
    let (mut again, generated) = spawn_app_on_with_keys(&db_path, no_keys).await;
    assert!(generated.is_empty(), "{generated:?}");
    assert_eq!(status_with_key(&again, "/v1/webhooks", &admin).await, 200);
    assert_eq!(ingest_status_with_key(&again, &ingest).await, 202);
    let list: Value = again
        .client
        .get(again.url("/v1/webhooks"))
        .header("X-API-Key", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    again.stop().await;
    drop(again);

    // Configured keys take over: the stored one is then not accepted.
    let (configured, generated) = spawn_app_on_with_keys(&db_path, |_| {}).await;
    assert!(generated.is_empty());
    assert_eq!(
        status_with_key(&configured, "/v1/webhooks", ADMIN_KEY).await,
        200
    );
    assert_eq!(
        status_with_key(&configured, "/v1/webhooks", &admin).await,
        401
    );
    drop(configured);
    drop(dir);
}
