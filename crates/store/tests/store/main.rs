//! The storage conformance suite, run against SQLite and against a real PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failed test"
)]

mod support {
    pub mod postgres;
}

use letterlock_store::{Backend, ClientRecord, Error, SealingKeyRecord, SigningKeyRecord, Store};

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        metadata: r#"{"redirect_uris":["http://127.0.0.1/"]}"#.into(),
        software_statement: Some("eyJ.statement.sig".into()),
        vendor: Some("https://vendor.example".into()),
        registration_token_hash: "hash-1".into(),
        client_secret_hash: None,
        issued_at: 1_700_000_000,
        updated_at: 1_700_000_000,
    }
}

/// Every storage operation, checked in turn on one fresh store.
async fn conformance(store: &Store) {
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrating twice is a no-op");
    let empty: Vec<(&str, i64)> = vec![("signing_keys", 0), ("sealing_keys", 0), ("clients", 0)];
    assert_eq!(store.row_counts().await.unwrap(), empty);

    // Signing keys come back in activation order, bytes intact.
    let later = SigningKeyRecord {
        kid: "b".into(),
        algorithm: "EdDSA".into(),
        private_key: vec![0, 1, 2, 255],
        created_at: 10,
        activates_at: 3_000_000_000,
    };
    let sooner = SigningKeyRecord {
        kid: "a".into(),
        algorithm: "ES256".into(),
        activates_at: 20,
        ..later.clone()
    };
    store.insert_signing_key(&later).await.unwrap();
    store.insert_signing_key(&sooner).await.unwrap();
    assert_eq!(store.signing_keys().await.unwrap(), vec![sooner.clone(), later.clone()]);
    assert!(matches!(store.insert_signing_key(&sooner).await, Err(Error::Conflict)));

    // Sealing keys: retire once; retiring again or an unknown key changes nothing.
    let sealing = SealingKeyRecord {
        kid: "s1".into(),
        material: vec![7; 32],
        created_at: 5,
        retired_at: None,
    };
    store.insert_sealing_key(&sealing).await.unwrap();
    assert!(store.retire_sealing_key("s1", 99).await.unwrap());
    assert!(!store.retire_sealing_key("s1", 100).await.unwrap());
    assert!(!store.retire_sealing_key("nope", 100).await.unwrap());
    // Keys made in the same second keep the order they were added in.
    let same_second = SealingKeyRecord { kid: "a0".into(), ..sealing.clone() };
    store.insert_sealing_key(&same_second).await.unwrap();
    assert_eq!(
        store.sealing_keys().await.unwrap(),
        vec![SealingKeyRecord { retired_at: Some(99), ..sealing }, same_second]
    );

    // Clients: insert, read, update, delete.
    let record = client("c1");
    store.insert_client(&record).await.unwrap();
    assert!(matches!(store.insert_client(&record).await, Err(Error::Conflict)));
    assert_eq!(store.client("c1").await.unwrap(), Some(record.clone()));
    assert_eq!(store.client("missing").await.unwrap(), None);
    let updated = ClientRecord {
        metadata: "{}".into(),
        software_statement: None,
        vendor: None,
        registration_token_hash: "hash-2".into(),
        client_secret_hash: Some("secret".into()),
        updated_at: 1_700_000_100,
        ..record.clone()
    };
    assert!(store.update_client(&updated).await.unwrap());
    assert_eq!(store.client("c1").await.unwrap(), Some(updated));
    assert!(!store.update_client(&client("missing")).await.unwrap());
    // Text survives untouched, including characters outside ASCII.
    let unicode = ClientRecord {
        metadata: r#"{"client_name":"Courriel — été ✉"}"#.into(),
        ..client("c2")
    };
    store.insert_client(&unicode).await.unwrap();
    assert_eq!(store.client("c2").await.unwrap(), Some(unicode));
    assert_eq!(store.row_counts().await.unwrap()[2], ("clients", 2));
    assert!(store.delete_client("c1").await.unwrap());
    assert!(!store.delete_client("c1").await.unwrap());
    assert_eq!(store.client("c1").await.unwrap(), None);
    assert_eq!(
        store.row_counts().await.unwrap(),
        vec![("signing_keys", 2), ("sealing_keys", 2), ("clients", 1)]
    );
}

#[tokio::test]
async fn sqlite_in_memory() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    conformance(&store).await;
}

#[tokio::test]
async fn sqlite_file_is_created_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("letterlock.db").display());
    let store = Store::connect(&url).await.unwrap();
    conformance(&store).await;
    store.close().await;
    let reopened = Store::connect(&url).await.unwrap();
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.signing_keys().await.unwrap().len(), 2);
}

#[tokio::test]
async fn postgres() {
    let server = support::postgres::TestPostgres::start();
    let url = server.fresh_database("letterlock_conformance").await;
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    conformance(&store).await;
    store.close().await;
}

#[tokio::test]
async fn unknown_url_schemes_are_refused() {
    assert!(matches!(Store::connect("mysql://localhost/x").await, Err(Error::UnsupportedUrl)));
}
