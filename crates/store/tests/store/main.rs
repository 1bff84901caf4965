//! The storage conformance suite, run against SQLite and against a real PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failed test"
)]

use letterlock_test_support::postgres::TestPostgres;

use letterlock_protocol::ScopeSet;
use letterlock_store::{
    Backend, ChallengePurpose, ClientRecord, CodeRedemption, DeviceCodeRecord, DeviceStatus, Error,
    GrantRecord, PasskeyChallengeRecord, PasskeyRecord, RefreshTokenRecord, RetryAnswer,
    RevocationRecord, Rotation, SealingKeyRecord, SessionRecord, SigningKeyRecord, Store,
    UserRecord,
};
use letterlock_store::{PendingSignInRecord, TotpRecord};

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

async fn count(store: &Store, table: &str) -> i64 {
    store.row_counts().await.unwrap().into_iter().find(|(name, _)| *name == table).unwrap().1
}

fn grant(id: &str, user_id: &str, client_id: &str) -> GrantRecord {
    GrantRecord {
        id: id.into(),
        user_id: user_id.into(),
        client_id: client_id.into(),
        device_name: "Laptop".into(),
        client_name: "Example Mail".into(),
        software_id: Some("example-mail".into()),
        software_version: None,
        vendor: None,
        scope: ScopeSet::parse("urn:ietf:params:oauth:scope:mail offline_access").unwrap(),
        resources: vec!["imaps://mail.example.com".into()],
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        created_at: 100,
        last_used_at: 100,
        last_address: None,
        revoked_at: None,
    }
}

/// Test-only: un-revokes a grant by inserting a fresh copy under the same id.
async fn sqlx_reset_grant(store: &Store, id: &str) {
    let mut revived = store.grant(id).await.unwrap().unwrap();
    revived.revoked_at = None;
    store.delete_client(&revived.client_id, 0).await.unwrap();
    store.insert_grant(&revived).await.unwrap();
}

async fn accounts_and_grants(store: &Store) {
    // Users: unique addresses, password change, disabling ends sessions.
    let alice = UserRecord {
        id: "u1".into(),
        address: "alice@example.com".into(),
        password_hash: "$argon2id$hash".into(),
        disabled: false,
        created_at: 10,
        password_changed_at: 10,
        source: letterlock_store::LOCAL_SOURCE.into(),
        checked_at: 0,
    };
    store.insert_user(&alice).await.unwrap();
    assert!(matches!(
        store.insert_user(&UserRecord { id: "u9".into(), ..alice.clone() }).await,
        Err(Error::Conflict)
    ));
    assert_eq!(store.user_by_address("alice@example.com").await.unwrap(), Some(alice.clone()));
    assert!(store.set_password("u1", "$argon2id$new", 20).await.unwrap());
    assert_eq!(store.user("u1").await.unwrap().unwrap().password_changed_at, 20);
    // An identity source proves an address: a new person gets a row without a password, a
    // known address keeps its id and password and is marked as proved by the source.
    let dora = store.user_proven_by("dora@example.com", "dovecot", "u5", 30).await.unwrap();
    assert_eq!((dora.id.as_str(), dora.password_hash.as_str()), ("u5", ""));
    assert_eq!((dora.source.as_str(), dora.checked_at), ("dovecot", 30));
    let again = store.user_proven_by("alice@example.com", "directory", "u6", 40).await.unwrap();
    assert_eq!((again.id.as_str(), again.password_hash.as_str()), ("u1", "$argon2id$new"));
    assert_eq!((again.source.as_str(), again.checked_at), ("directory", 40));
    store.set_checked("u1", 50).await.unwrap();
    assert_eq!(store.user("u1").await.unwrap().unwrap().checked_at, 50);
    let session = SessionRecord {
        id_hash: "s".into(),
        user_id: "u1".into(),
        csrf: "c".into(),
        created_at: 10,
        expires_at: 50,
    };
    store.insert_session(&session).await.unwrap();
    assert_eq!(store.session("s", 49).await.unwrap(), Some(session.clone()));
    assert_eq!(store.session("s", 50).await.unwrap(), None, "an ended session is gone");
    assert!(store.set_disabled("u1", true).await.unwrap());
    assert_eq!(store.session("s", 20).await.unwrap(), None, "disabling ends sessions");
    assert!(store.user("u1").await.unwrap().unwrap().disabled);
    store.set_disabled("u1", false).await.unwrap();
    assert_eq!(store.users().await.unwrap().len(), 2, "alice and dora");

    // Pending requests are decided once.
    store.insert_pending_request("r1", "{}", 200).await.unwrap();
    assert_eq!(store.pending_request("r1", 100).await.unwrap().as_deref(), Some("{}"));
    assert_eq!(store.pending_request("r1", 200).await.unwrap(), None);
    assert!(store.delete_pending_request("r1").await.unwrap());
    assert!(!store.delete_pending_request("r1").await.unwrap());

    // Grants: one live grant per user and installation, touched, revoked, fed.
    store.insert_grant(&grant("g1", "u1", "c2")).await.unwrap();
    store.insert_grant(&grant("g2", "u1", "other")).await.unwrap();
    assert_eq!(store.live_grant("u1", "c2").await.unwrap().unwrap().id, "g1");
    assert!(store.record_issue(None, None, "g1", 150, Some(Some("192.0.2.7"))).await.unwrap());
    let touched = store.grant("g1").await.unwrap().unwrap();
    assert_eq!((touched.last_used_at, touched.last_address.as_deref()), (150, Some("192.0.2.7")));
    let approved_again: Vec<String> =
        vec!["http://127.0.0.1/callback".into(), "com.example.mail:/cb".into()];
    assert!(
        store
            .update_grant(&GrantRecord {
                device_name: "Work laptop".into(),
                redirect_uris: approved_again.clone(),
                ..touched
            })
            .await
            .unwrap()
    );
    let updated = &store.grants_of_user("u1").await.unwrap()[0];
    assert_eq!(
        (updated.device_name.as_str(), &updated.redirect_uris),
        ("Work laptop", &approved_again)
    );
    assert!(
        !store.revoke_grant("g2", Some("someone-else"), 160).await.unwrap(),
        "only the owner revokes"
    );
    assert!(store.revoke_grant("g2", Some("u1"), 160).await.unwrap());
    assert!(!store.revoke_grant("g2", None, 161).await.unwrap(), "revoked once");
    assert_eq!(
        store.revocations_after(0, 10).await.unwrap(),
        vec![RevocationRecord {
            cursor: 1,
            grant_id: "g2".into(),
            token_id: None,
            revoked_at: 160
        }]
    );
    assert_eq!(store.revocations_after(1, 10).await.unwrap(), vec![]);
    store.insert_grant(&grant("g3", "u1", "third")).await.unwrap();
    store.insert_grant(&grant("g4", "u1", "fourth")).await.unwrap();
    assert_eq!(store.revoke_grants_of_user("u1", 170).await.unwrap(), 3, "g1, g3 and g4");
    let feed = store.revocations_after(1, 10).await.unwrap();
    assert_eq!(feed.len(), 3);
    assert!(feed.iter().all(|entry| entry.cursor > 1 && entry.revoked_at == 170));
    assert_eq!(store.revocations_after(1, 2).await.unwrap().len(), 2, "limited");
    let cursor = feed[2].cursor;
    // One access token of a grant (RFC 7009): remembered, and fed with its grant, once.
    assert!(store.revoke_access_token("g3", "jti-a", 900, 175).await.unwrap());
    assert!(!store.revoke_access_token("g3", "jti-a", 900, 176).await.unwrap(), "once");
    assert!(store.access_token_revoked("jti-a").await.unwrap());
    assert!(!store.access_token_revoked("jti-b").await.unwrap());
    let feed = store.revocations_after(cursor, 10).await.unwrap();
    assert_eq!(
        feed.iter()
            .map(|entry| (entry.grant_id.as_str(), entry.token_id.as_deref()))
            .collect::<Vec<_>>(),
        vec![("g3", Some("jti-a"))]
    );
    let cursor = feed[0].cursor;
    // The grants of the client ids sealed under one key; `_` is no wildcard.
    store.insert_grant(&grant("g5", "u1", "ll1.k_1.sealed")).await.unwrap();
    store.insert_grant(&grant("g6", "u1", "ll1.kx1.sealed")).await.unwrap();
    store.insert_grant(&grant("g7", "u1", "ll1.K_1.sealed")).await.unwrap();
    assert_eq!(store.revoke_grants_of_clients_starting_with("ll1.k_1.", 180).await.unwrap(), 1);
    let feed = store.revocations_after(cursor, 10).await.unwrap();
    assert_eq!(feed.iter().map(|entry| entry.grant_id.as_str()).collect::<Vec<_>>(), ["g5"]);
    store.revoke_grants_of_user("u1", 181).await.unwrap();
    // Bring g1 back to life for the code and refresh checks below.
    sqlx_reset_grant(store, "g1").await;
    assert_eq!(store.live_grant("u1", "other").await.unwrap(), None);

    // Codes: first use is fresh, every later use says reused.
    store.insert_code("h1", "g1", "{\"pkce\":1}", 300).await.unwrap();
    assert_eq!(
        store.redeem_code("h1", 200).await.unwrap(),
        CodeRedemption::Fresh {
            grant_id: "g1".into(),
            details: "{\"pkce\":1}".into(),
            expires_at: 300
        }
    );
    assert_eq!(
        store.redeem_code("h1", 201).await.unwrap(),
        CodeRedemption::Reused { grant_id: "g1".into() }
    );
    assert_eq!(store.redeem_code("nope", 201).await.unwrap(), CodeRedemption::Unknown);

    // Refresh tokens rotate once.
    let refresh = RefreshTokenRecord {
        hash: "r".into(),
        grant_id: "g1".into(),
        jkt: Some("thumb".into()),
        created_at: 1,
        expires_at: 1000,
        rotated_at: None,
        replaces: None,
        retry: None,
    };
    store.insert_refresh_token(&refresh).await.unwrap();
    assert_eq!(store.refresh_token("r").await.unwrap(), Some(refresh.clone()));
    let next =
        RefreshTokenRecord { hash: "r2".into(), replaces: Some("r".into()), ..refresh.clone() };
    // Issue 16: the rotation keeps the answer for a retry until the window ends.
    let kept = RetryAnswer { sealed: "sealed-answer".into(), until: 65 };
    let rotation = |hash, retry| Some(Rotation { hash, retry });
    assert!(
        store.record_issue(rotation("r", Some(&kept)), Some(&next), "g1", 5, None).await.unwrap()
    );
    assert_eq!(store.refresh_token("r").await.unwrap().unwrap().retry, Some(kept.clone()));
    assert!(
        !store
            .record_issue(
                rotation("r", None),
                Some(&RefreshTokenRecord { hash: "r3".into(), ..refresh.clone() }),
                "g1",
                6,
                None
            )
            .await
            .unwrap(),
        "rotated once; nothing written the second time"
    );
    assert_eq!(store.refresh_token("r3").await.unwrap(), None);
    assert_eq!(store.refresh_token("r2").await.unwrap(), Some(next));
    let context = store.refresh_context("r2").await.unwrap().unwrap();
    assert_eq!(
        (context.grant.id.as_str(), context.address.as_str(), context.user_disabled),
        ("g1", "alice@example.com", false)
    );
    assert_eq!(store.grant_with_user("g1").await.unwrap().unwrap().1, "alice@example.com");
    let rotated = store.refresh_token("r").await.unwrap().unwrap();
    assert_eq!((rotated.rotated_at, rotated.retry), (Some(5), Some(kept.clone())), "kept");
    assert_eq!(context.token.replaces.as_deref(), Some("r"));
    // Using the successor erases the answer kept with the token it replaced, in the same
    // transaction: the client evidently got it.
    let after =
        RefreshTokenRecord { hash: "r4".into(), replaces: Some("r2".into()), ..refresh.clone() };
    let kept_too = RetryAnswer { sealed: "second".into(), until: 70 };
    assert!(
        store
            .record_issue(rotation("r2", Some(&kept_too)), Some(&after), "g1", 10, None)
            .await
            .unwrap()
    );
    let rotated = store.refresh_token("r").await.unwrap().unwrap();
    assert_eq!((rotated.rotated_at, rotated.retry), (Some(5), None), "erased, still rotated");
    assert_eq!(store.refresh_token("r2").await.unwrap().unwrap().retry, Some(kept_too.clone()));
    // Purging erases the answers whose window ended, and keeps the rotated record.
    store.purge_expired(69).await.unwrap();
    assert_eq!(store.refresh_token("r2").await.unwrap().unwrap().retry, Some(kept_too));
    store.purge_expired(70).await.unwrap();
    let purged = store.refresh_token("r2").await.unwrap().unwrap();
    assert_eq!((purged.rotated_at, purged.retry), (Some(10), None));

    // Device codes: found by either code, decided once, polled.
    let device = DeviceCodeRecord {
        hash: "d1".into(),
        user_code: "BCDF-GHJK".into(),
        request: "{}".into(),
        status: DeviceStatus::Pending,
        grant_id: None,
        expires_at: 900,
        last_poll_at: 0,
    };
    store.insert_device_code(&device).await.unwrap();
    assert_eq!(store.device_code(Some("d1"), None).await.unwrap(), Some(device.clone()));
    assert_eq!(store.device_code(None, Some("BCDF-GHJK")).await.unwrap(), Some(device.clone()));
    assert!(
        store
            .update_device_code("d1", DeviceStatus::Pending, DeviceStatus::Approved, Some("g1"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_device_code("d1", DeviceStatus::Pending, DeviceStatus::Denied, None)
            .await
            .unwrap(),
        "decided once"
    );
    assert_eq!(store.poll_device_code("d1", 40).await.unwrap(), Some(0));
    assert_eq!(store.poll_device_code("d1", 45).await.unwrap(), Some(40));
    assert_eq!(
        store.device_code(Some("d1"), None).await.unwrap().unwrap().grant_id.as_deref(),
        Some("g1")
    );

    // One-time values.
    assert!(store.remember_once("jti-1", 400).await.unwrap());
    assert!(!store.remember_once("jti-1", 400).await.unwrap());
    assert!(store.seen("jti-1").await.unwrap());
    store.purge_expired(1000).await.unwrap();
    assert!(!store.seen("jti-1").await.unwrap());
    assert_eq!(store.refresh_token("r").await.unwrap(), None);

    // Deleting a stored client removes its grants and what hangs from them, and tells the
    // front doors that its live grants are revoked.
    store.insert_client(&client("c2")).await.ok();
    store.insert_code("h2", "g1", "{}", 5000).await.unwrap();
    let cursor = store.revocations_after(0, 100).await.unwrap().last().unwrap().cursor;
    assert!(store.delete_client("c2", 190).await.unwrap());
    assert_eq!(store.grant("g1").await.unwrap(), None);
    assert_eq!(store.redeem_code("h2", 10).await.unwrap(), CodeRedemption::Unknown);
    let feed = store.revocations_after(cursor, 10).await.unwrap();
    assert_eq!(
        feed.iter().map(|entry| (entry.grant_id.as_str(), entry.revoked_at)).collect::<Vec<_>>(),
        [("g1", 190)]
    );
}

/// Every storage operation, checked in turn on one fresh store.
async fn conformance(store: &Store) {
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrating twice is a no-op");
    for table in ["signing_keys", "sealing_keys", "clients", "users", "grants"] {
        assert_eq!(count(store, table).await, 0, "{table}");
    }

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
    assert_eq!(count(store, "clients").await, 2);
    assert!(store.delete_client("c1", 1_700_000_200).await.unwrap());
    assert!(!store.delete_client("c1", 1_700_000_200).await.unwrap());
    assert_eq!(store.client("c1").await.unwrap(), None);
    assert_eq!(count(store, "signing_keys").await, 2);
    assert_eq!(count(store, "sealing_keys").await, 2);
    assert_eq!(count(store, "clients").await, 1);

    accounts_and_grants(store).await;
    upstream_sign_ins(store).await;
    second_factors(store).await;
    passkeys(store).await;
}

/// Issue 17: a sign-in at an upstream provider is taken once, and not after it expired.
async fn upstream_sign_ins(store: &Store) {
    store.insert_upstream_sign_in("h1", r#"{"provider":"corp"}"#, 1_000).await.unwrap();
    assert!(matches!(store.insert_upstream_sign_in("h1", "{}", 1_000).await, Err(Error::Conflict)));
    assert_eq!(store.take_upstream_sign_in("other", 10).await.unwrap(), None);
    assert_eq!(
        store.take_upstream_sign_in("h1", 10).await.unwrap().as_deref(),
        Some(r#"{"provider":"corp"}"#)
    );
    assert_eq!(store.take_upstream_sign_in("h1", 10).await.unwrap(), None, "taken once");
    store.insert_upstream_sign_in("h2", "{}", 1_000).await.unwrap();
    assert_eq!(store.take_upstream_sign_in("h2", 1_000).await.unwrap(), None, "expired");
    assert_eq!(count(store, "upstream_sign_ins").await, 0, "an expired one is gone too");
    store.insert_upstream_sign_in("h3", "{}", 1_000).await.unwrap();
    store.purge_expired(1_000).await.unwrap();
    assert_eq!(count(store, "upstream_sign_ins").await, 0, "purged");
}

/// Issue 17: a TOTP factor is confirmed once, each of its steps used once, its recovery codes
/// each once, and a sign-in waiting for it is ended by one request only.
async fn second_factors(store: &Store) {
    let alice = store.user("u1").await.unwrap().unwrap();
    let bob = UserRecord { id: "u2fa".into(), address: "bob2fa@example.com".into(), ..alice };
    store.insert_user(&bob).await.unwrap();
    assert_eq!(store.totp("u2fa").await.unwrap(), None);

    // An unconfirmed secret can be replaced; a confirmed one cannot.
    assert!(store.put_unconfirmed_totp("u2fa", "FIRST", 10).await.unwrap());
    assert!(store.put_unconfirmed_totp("u2fa", "SECOND", 11).await.unwrap());
    assert!(!store.confirm_totp("u2fa", "FIRST", 5).await.unwrap(), "a replaced secret");
    assert!(!store.use_totp_step("u2fa", 5).await.unwrap(), "not confirmed yet");
    assert!(store.confirm_totp("u2fa", "SECOND", 5).await.unwrap());
    assert!(!store.confirm_totp("u2fa", "SECOND", 6).await.unwrap(), "confirmed once");
    assert!(!store.put_unconfirmed_totp("u2fa", "THIRD", 12).await.unwrap());
    assert_eq!(
        store.totp("u2fa").await.unwrap(),
        Some(TotpRecord {
            user_id: "u2fa".into(),
            secret: "SECOND".into(),
            confirmed: true,
            last_step: Some(5),
            created_at: 11,
        })
    );
    // Each step once, and never an earlier one.
    assert!(!store.use_totp_step("u2fa", 5).await.unwrap());
    assert!(store.use_totp_step("u2fa", 6).await.unwrap());
    assert!(!store.use_totp_step("u2fa", 6).await.unwrap());
    assert!(!store.use_totp_step("u2fa", 4).await.unwrap());

    // Recovery codes: each once; replacing them voids the old ones.
    let hashes: Vec<String> = (0..10).map(|n| format!("hash-{n}")).collect();
    store.replace_recovery_codes("u2fa", &hashes, 20).await.unwrap();
    assert_eq!(store.recovery_codes_left("u2fa").await.unwrap(), 10);
    assert!(store.use_recovery_code("u2fa", "hash-3", 21).await.unwrap());
    assert!(!store.use_recovery_code("u2fa", "hash-3", 22).await.unwrap());
    assert!(!store.use_recovery_code("u1", "hash-4", 22).await.unwrap(), "another user's");
    assert_eq!(store.recovery_codes_left("u2fa").await.unwrap(), 9);
    store.replace_recovery_codes("u2fa", &["new".to_owned()], 23).await.unwrap();
    assert!(!store.use_recovery_code("u2fa", "hash-5", 24).await.unwrap());
    assert_eq!(store.recovery_codes_left("u2fa").await.unwrap(), 1);
    // Turning the factor off takes its codes with it.
    assert!(store.delete_totp("u2fa").await.unwrap());
    assert!(!store.delete_totp("u2fa").await.unwrap());
    assert_eq!(store.totp("u2fa").await.unwrap(), None);
    assert_eq!(count(store, "recovery_codes").await, 0);

    // A waiting sign-in: read until it expires, ended once, purged when old.
    let pending = PendingSignInRecord {
        id_hash: "p1".into(),
        user_id: "u2fa".into(),
        csrf: "csrf".into(),
        method: "password:local".into(),
        next: "/account".into(),
        created_at: 100,
        expires_at: 400,
    };
    store.insert_pending_sign_in(&pending).await.unwrap();
    assert!(matches!(store.insert_pending_sign_in(&pending).await, Err(Error::Conflict)));
    assert_eq!(store.pending_sign_in("p1", 399).await.unwrap(), Some(pending.clone()));
    assert_eq!(store.pending_sign_in("p1", 400).await.unwrap(), None);
    assert!(store.delete_pending_sign_in("p1").await.unwrap());
    assert!(!store.delete_pending_sign_in("p1").await.unwrap());
    store.insert_pending_sign_in(&pending).await.unwrap();
    store.purge_expired(400).await.unwrap();
    assert_eq!(count(store, "pending_sign_ins").await, 0);
}

/// Issue 17: passkeys and their challenges.
async fn passkeys(store: &Store) {
    let user = UserRecord {
        id: "pk-user".into(),
        address: "pat@example.com".into(),
        password_hash: "$argon2id$hash".into(),
        disabled: false,
        created_at: 10,
        password_changed_at: 10,
        source: letterlock_store::LOCAL_SOURCE.into(),
        checked_at: 10,
    };
    store.insert_user(&user).await.unwrap();
    let passkey = PasskeyRecord {
        credential_id: "Y3JlZA".into(),
        user_id: user.id.clone(),
        public_key: vec![0xa5, 0x01, 0x02, 0, 255],
        sign_count: 0,
        name: "Laptop — Touch ID".into(),
        aaguid: "00000000000000000000000000000000".into(),
        transports: "internal hybrid".into(),
        created_at: 20,
        last_used_at: None,
    };
    store.insert_passkey(&passkey).await.unwrap();
    assert!(matches!(store.insert_passkey(&passkey).await, Err(Error::Conflict)));
    let second = PasskeyRecord {
        credential_id: "c2Vjb25k".into(),
        sign_count: 7,
        created_at: 30,
        ..passkey.clone()
    };
    store.insert_passkey(&second).await.unwrap();
    assert_eq!(store.passkey("Y3JlZA").await.unwrap(), Some(passkey.clone()));
    assert_eq!(store.passkey("missing").await.unwrap(), None);
    assert_eq!(store.passkeys_of_user(&user.id).await.unwrap(), vec![passkey.clone(), second]);

    // The counter: 0 stays allowed while both are 0; once it counts, it must grow.
    assert!(store.record_passkey_use("Y3JlZA", 0, 40).await.unwrap());
    assert_eq!(store.passkey("Y3JlZA").await.unwrap().unwrap().last_used_at, Some(40));
    assert!(store.record_passkey_use("Y3JlZA", 5, 41).await.unwrap());
    assert!(!store.record_passkey_use("Y3JlZA", 5, 42).await.unwrap(), "the same counter");
    assert!(!store.record_passkey_use("Y3JlZA", 4, 42).await.unwrap(), "a counter going back");
    assert!(!store.record_passkey_use("Y3JlZA", 0, 42).await.unwrap(), "back to 0");
    assert!(store.record_passkey_use("Y3JlZA", u32::MAX, 43).await.unwrap());
    let used = store.passkey("Y3JlZA").await.unwrap().unwrap();
    assert_eq!((used.sign_count, used.last_used_at), (u32::MAX, Some(43)));
    assert!(!store.record_passkey_use("missing", 1, 43).await.unwrap());

    // Removing: only the owner's, once.
    assert!(!store.delete_passkey("someone-else", "Y3JlZA").await.unwrap());
    assert!(store.delete_passkey(&user.id, "Y3JlZA").await.unwrap());
    assert!(!store.delete_passkey(&user.id, "Y3JlZA").await.unwrap());
    assert_eq!(store.passkeys_of_user(&user.id).await.unwrap().len(), 1);

    // Challenges are taken once, and not after they expire.
    let challenge = PasskeyChallengeRecord {
        challenge_hash: "hash-a".into(),
        purpose: ChallengePurpose::Register,
        user_id: Some(user.id.clone()),
        bound_to: "session-hash".into(),
        expires_at: 100,
    };
    store.insert_passkey_challenge(&challenge).await.unwrap();
    assert!(matches!(store.insert_passkey_challenge(&challenge).await, Err(Error::Conflict)));
    assert_eq!(store.take_passkey_challenge("hash-a", 99).await.unwrap(), Some(challenge.clone()));
    assert_eq!(store.take_passkey_challenge("hash-a", 99).await.unwrap(), None);
    let sign_in = PasskeyChallengeRecord {
        challenge_hash: "hash-b".into(),
        purpose: ChallengePurpose::SignIn,
        user_id: None,
        ..challenge.clone()
    };
    store.insert_passkey_challenge(&sign_in).await.unwrap();
    assert_eq!(store.take_passkey_challenge("hash-b", 100).await.unwrap(), None, "expired");
    assert_eq!(count(store, "passkey_challenges").await, 0, "an expired challenge is gone too");
    store
        .insert_passkey_challenge(&PasskeyChallengeRecord {
            challenge_hash: "hash-c".into(),
            ..sign_in.clone()
        })
        .await
        .unwrap();
    store.purge_expired(100).await.unwrap();
    assert_eq!(count(store, "passkey_challenges").await, 0);
    store
        .insert_passkey_challenge(&PasskeyChallengeRecord {
            challenge_hash: "hash-d".into(),
            ..sign_in
        })
        .await
        .unwrap();
    assert_eq!(
        store.take_passkey_challenge("hash-d", 50).await.unwrap().map(|taken| taken.purpose),
        Some(ChallengePurpose::SignIn)
    );
    assert_eq!(count(store, "passkeys").await, 1);
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
    let Some(server) = TestPostgres::start() else { return };
    let url = server.fresh_database("letterlock_conformance").await;
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    conformance(&store).await;
    store.close().await;
}

/// Review 2026-12-01, finding 7: on PostgreSQL two revocations can commit in another order than
/// their sequence numbers. A revocation that draws its number first and commits last must still
/// reach a front door whose cursor has passed the other one.
#[tokio::test]
async fn postgres_feed_keeps_a_revocation_that_commits_after_a_later_one() {
    use sqlx::Connection as _;
    let Some(server) = TestPostgres::start() else { return };
    let url = server.fresh_database("letterlock_feed_order").await;
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    for (user, grant_id) in [("ua", "ga"), ("ub", "gb")] {
        let record = UserRecord {
            id: user.into(),
            address: format!("{user}@example.com"),
            password_hash: "$argon2id$hash".into(),
            disabled: false,
            created_at: 10,
            password_changed_at: 10,
            source: letterlock_store::LOCAL_SOURCE.into(),
            checked_at: 0,
        };
        store.insert_user(&record).await.unwrap();
        store.insert_grant(&grant(grant_id, user, "c")).await.unwrap();
    }
    // The number of lock requests that wait, seen from outside.
    let mut monitor = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut waiting = async || -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")
            .fetch_one(&mut monitor)
            .await
            .unwrap()
    };

    // A holder of ga's row keeps revocation A from committing once it has started.
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut hold = holder.begin().await.unwrap();
    sqlx::query("SELECT id FROM grants WHERE id = 'ga' FOR UPDATE")
        .fetch_one(&mut *hold)
        .await
        .unwrap();
    let revocation_a = tokio::spawn({
        let store = store.clone();
        async move { store.revoke_grants_of_user("ua", 200).await.unwrap() }
    });
    let mut rounds = 0;
    while waiting().await < 1 {
        rounds += 1;
        assert!(rounds < 1000, "revocation A never waited for the held row");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Revocation B starts later; it either commits now or waits behind A.
    let revocation_b = tokio::spawn({
        let store = store.clone();
        async move { store.revoke_grant("gb", None, 201).await.unwrap() }
    });
    let mut rounds = 0;
    while !revocation_b.is_finished() && waiting().await < 2 {
        rounds += 1;
        assert!(rounds < 1000, "revocation B neither committed nor waited");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // A front door polls while A is still open.
    let first = store.revocations_after(0, 10).await.unwrap();
    let cursor = first.last().map_or(0, |entry| entry.cursor);
    hold.rollback().await.unwrap();
    assert_eq!(revocation_a.await.unwrap(), 1);
    assert!(revocation_b.await.unwrap());
    // Its next poll, from its cursor, must bring what it has not seen.
    let next = store.revocations_after(cursor, 10).await.unwrap();
    let seen: Vec<&str> = first.iter().chain(&next).map(|entry| entry.grant_id.as_str()).collect();
    assert!(
        seen.contains(&"ga") && seen.contains(&"gb"),
        "a revocation was skipped: first poll {first:?}, then from cursor {cursor}: {next:?}"
    );
    store.close().await;
}

#[tokio::test]
async fn unknown_url_schemes_are_refused() {
    assert!(matches!(Store::connect("mysql://localhost/x").await, Err(Error::UnsupportedUrl)));
}
