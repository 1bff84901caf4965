//! The operator's tools (`letterlock keys`, `user`, `dovecot-config`) as library functions,
//! against in-memory SQLite: the key policies and the files and settings Dovecot gets.

use std::path::Path;

use letterlock_jose::Algorithm;
use letterlock_jose::keyring::KeyState;
use letterlock_server::admin::dovecot::{DovecotOauth2, DovecotVersion, export_keys};
use letterlock_server::admin::keys::{self, Retired, SealingState};
use letterlock_server::admin::users;
use letterlock_server::config::Config;
use letterlock_store::Store;

use crate::support::NOW;

async fn store() -> Store {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// A store with the keys a first start makes: one ES256 signing key, one sealing key.
async fn started() -> Store {
    let store = store().await;
    letterlock_server::keys::ensure_keys(&store, Algorithm::Es256, NOW).await.unwrap();
    store
}

fn sealing_states(list: &keys::KeyList) -> Vec<(String, SealingState)> {
    list.sealing.iter().map(|key| (key.kid.clone(), key.state)).collect()
}

#[tokio::test]
async fn the_newest_unretired_sealing_key_seals_and_retiring_the_last_makes_a_fresh_one() {
    let store = started().await;
    let config = Config::default();
    let first = keys::list(&store, &config, NOW).await.unwrap().sealing[0].kid.clone();
    let second = keys::rotate_sealing(&store, NOW).await.unwrap();
    assert_eq!(
        sealing_states(&keys::list(&store, &config, NOW).await.unwrap()),
        [(first.clone(), SealingState::OpeningOnly), (second.clone(), SealingState::Sealing)]
    );

    let retired = keys::retire(&store, &second, NOW + 1).await.unwrap();
    assert_eq!(retired, Retired { revoked: 0, fresh: None }, "another key still seals");
    assert_eq!(
        sealing_states(&keys::list(&store, &config, NOW).await.unwrap()),
        [(first.clone(), SealingState::Sealing), (second.clone(), SealingState::Retired(NOW + 1))]
    );

    let retired = keys::retire(&store, &first, NOW + 2).await.unwrap();
    let fresh = retired.fresh.expect("retiring the last key makes a fresh one");
    assert_eq!(retired.revoked, 0);
    assert_eq!(
        sealing_states(&keys::list(&store, &config, NOW).await.unwrap()),
        [
            (first.clone(), SealingState::Retired(NOW + 2)),
            (second.clone(), SealingState::Retired(NOW + 1)),
            (fresh, SealingState::Sealing)
        ]
    );

    let error = keys::retire(&store, &first, NOW + 3).await.unwrap_err();
    assert_eq!(error.to_string(), format!("no sealing key {first} that is not retired already"));
    let error = keys::retire(&store, "nope", NOW + 3).await.unwrap_err();
    assert_eq!(error.to_string(), "no sealing key nope that is not retired already");
}

#[tokio::test]
async fn a_rotated_signing_key_waits_for_the_activation_delay_unless_told_otherwise() {
    let store = started().await;
    let config = Config::parse("[keys]\nactivation_delay_seconds = 3600").unwrap();
    let pending = keys::rotate_signing(&store, &config, None, false, NOW).await.unwrap();
    assert_eq!((pending.algorithm, pending.activates_at), (Algorithm::Es256, NOW + 3600));
    let now = keys::rotate_signing(&store, &config, Some("EdDSA"), true, NOW).await.unwrap();
    assert_eq!((now.algorithm, now.activates_at), (Algorithm::EdDsa, NOW));
    let list = keys::list(&store, &config, NOW).await.unwrap();
    let state = |kid: &str| list.signing.iter().find(|key| key.kid == kid).unwrap().state;
    assert_eq!(state(&pending.kid), KeyState::Pending);
    assert_eq!(state(&now.kid), KeyState::Active);
    assert_eq!(list.signing.len(), 3);

    let error = keys::rotate_signing(&store, &config, Some("RS256"), false, NOW).await.unwrap_err();
    assert_eq!(error.to_string(), "unknown algorithm RS256; use ES256 or EdDSA");
}

#[tokio::test]
async fn dovecot_gets_the_published_es256_keys_and_the_settings_naming_them() {
    let store = started().await;
    let config = Config::parse(
        "issuer = \"https://auth.example.com\"\n\
         [[resources]]\nuri = \"imaps://mail.example.com\"\ntoken_typ = \"JWT\"\n",
    )
    .unwrap();
    let eddsa = keys::rotate_signing(&store, &config, Some("EdDSA"), false, NOW).await.unwrap();
    let ring = letterlock_server::keys::load_signing_ring(&store, 600).await.unwrap();
    let es256 = keys::list(&store, &config, NOW).await.unwrap().signing[0].kid.clone();

    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("default/ES256/unpublished-kid");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, "old").unwrap();
    let exported = export_keys(&ring, NOW, dir.path()).unwrap();
    assert_eq!(exported.directory, dir.path().join("default/ES256"));
    assert_eq!(exported.written, std::slice::from_ref(&es256));
    assert_eq!(exported.skipped, [(eddsa.kid, KeyState::Pending)], "Dovecot verifies ES256 only");
    assert!(!stale.exists(), "files of keys no longer published are removed");
    let pem = std::fs::read_to_string(exported.directory.join(&es256)).unwrap();
    let (key, _) = ring.states(NOW).next().unwrap();
    assert_eq!(Some(pem), letterlock_jose::key::p256_spki_pem(&key.key.public_jwk(None)));

    let settings = DovecotOauth2::local(&config, "imaps://mail.example.com", dir.path()).unwrap();
    let rendered = settings.render(DovecotVersion::V2_3);
    let dict = format!("local_validation_key_dict = fs:posix:prefix={}/", dir.path().display());
    assert!(rendered.lines().any(|line| line == dict), "{rendered}");
    assert!(rendered.lines().any(|line| line == "client_id = imaps://mail.example.com"));
    assert!(DovecotOauth2::local(&config, "imaps://other.example", Path::new("/x")).is_err());
}

#[tokio::test]
async fn disabling_an_account_goes_through_the_same_address_rules_as_the_others() {
    let store = store().await;
    let added = users::add(&store, "Ann@Example.com", "ann's long password", NOW).await.unwrap();
    assert_eq!(added.address, "ann@example.com");
    let error =
        users::add(&store, "ann@example.com", "ann's long password", NOW).await.unwrap_err();
    assert_eq!(error.to_string(), "an account for ann@example.com exists already");

    let disabled = users::disable(&store, " ANN@example.com", NOW).await.unwrap();
    assert_eq!((disabled.address.as_str(), disabled.revoked), ("ann@example.com", 0));
    let listed = users::list(&store).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].disabled);

    let error = users::disable(&store, "bob@example.com", NOW).await.unwrap_err();
    assert_eq!(error.to_string(), "no account for bob@example.com");
    let error = users::disable(&store, "bad", NOW).await.unwrap_err();
    assert_eq!(error.to_string(), "'bad' is not a mail address");
    let error = users::passwd(&store, "bob@example.com", "a long new password", false, NOW)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "no account for bob@example.com");
    assert_eq!(
        users::passwd(&store, "ann@example.com", "a long new password", true, NOW).await.unwrap(),
        0
    );
}

/// Issue 18 point 5 (in part): an operator answers "which devices does this person have?" and
/// revokes the stolen one, from a shell; another person's device id is refused.
#[tokio::test]
async fn an_operator_lists_and_revokes_a_persons_devices_and_enables_them_again() {
    let store = store().await;
    let ann = users::add(&store, "ann@example.com", "ann's long password", NOW).await.unwrap();
    let bob = users::add(&store, "bob@example.com", "bob's long password", NOW).await.unwrap();
    let grant = |id: &str, user: &str, name: &str| letterlock_store::GrantRecord {
        id: id.into(),
        user_id: user.into(),
        client_id: "client".into(),
        device_name: name.into(),
        client_name: "Mail".into(),
        software_id: None,
        software_version: None,
        vendor: None,
        scope: letterlock_protocol::ScopeSet::parse("urn:ietf:params:oauth:scope:mail").unwrap(),
        resources: vec!["imaps://mail.example.com".into()],
        redirect_uris: Vec::new(),
        created_at: NOW,
        last_used_at: NOW,
        last_address: None,
        revoked_at: None,
    };
    for (id, user, name) in [
        ("g-phone", &ann.id, "Phone"),
        ("g-laptop", &ann.id, "Laptop"),
        ("g-bob", &bob.id, "Bob's"),
    ] {
        store.insert_grant(&grant(id, user, name)).await.unwrap();
    }
    let shown = users::show(&store, "Ann@Example.com").await.unwrap();
    assert_eq!(shown.user.address, "ann@example.com");
    let mut names: Vec<_> = shown.devices.iter().map(|grant| grant.device_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Laptop", "Phone"]);

    // Another person's device is not this person's to revoke.
    let error = users::revoke(&store, "ann@example.com", users::Revoke::Device("g-bob"), NOW)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "the account has no device g-bob");
    assert!(store.grant("g-bob").await.unwrap().unwrap().revoked_at.is_none());
    let revoked = users::revoke(&store, "ann@example.com", users::Revoke::Device("g-phone"), NOW)
        .await
        .unwrap();
    assert_eq!(revoked, 1);
    assert!(store.grant("g-phone").await.unwrap().unwrap().revoked_at.is_some());
    assert!(store.grant("g-laptop").await.unwrap().unwrap().revoked_at.is_none());
    let revoked = users::revoke(&store, "ann@example.com", users::Revoke::All, NOW).await.unwrap();
    assert_eq!(revoked, 1, "only the laptop was still live");
    assert!(store.grant("g-bob").await.unwrap().unwrap().revoked_at.is_none());

    users::disable(&store, "ann@example.com", NOW).await.unwrap();
    let enabled = users::enable(&store, "ann@example.com").await.unwrap();
    assert!(!enabled.disabled);
    assert!(!store.user(&ann.id).await.unwrap().unwrap().disabled);
    let error = users::enable(&store, "nobody@example.com").await.unwrap_err();
    assert_eq!(error.to_string(), "no account for nobody@example.com");
}

/// `dovecot-config`'s printed settings, pinned byte for byte as the binary printed them before
/// the logic moved into the library.
mod dovecot_output {
    use super::*;
    use letterlock_server::admin::dovecot::{DovecotOauth2, DovecotVersion};
    use letterlock_server::config::Config;

    const CONFIG: &str = "issuer = \"https://auth.example.com\"\n\
        [[resources]]\nuri = \"imaps://mail.example.com\"\ntoken_typ = \"JWT\"\n\
        [[resources]]\nuri = \"smtps://mail.example.com\"\n\
        [[resource_servers]]\nclient_id = \"dovecot\"\nsecret = \"dovecot's secret: 0123/4567\"\n\
        resources = [\"imaps://mail.example.com\"]\n";

    fn config() -> Config {
        Config::parse(CONFIG).unwrap()
    }

    /// `letterlock dovecot-config --resource imaps://mail.example.com --keys-dir /tmp/binpin/keys`
    /// as the binary printed it before the logic moved here.
    #[test]
    fn local_validation_for_dovecot_2_3() {
        let settings = DovecotOauth2::local(
            &config(),
            "imaps://mail.example.com",
            Path::new("/tmp/binpin/keys"),
        )
        .unwrap();
        assert_eq!(
            settings.render(DovecotVersion::V2_3),
            "\
# Dovecot 2.3 oauth2 passdb for imaps://mail.example.com, from letterlock dovecot-config
# dovecot.conf:  auth_mechanisms = $auth_mechanisms oauthbearer xoauth2
#   passdb { driver = oauth2  mechanisms = oauthbearer xoauth2  args = /etc/dovecot/dovecot-oauth2.conf.ext }
# Keep auth_cache_size = 0 (the default) with this passdb: Dovecot 2.3 accepts a cached token
# past its expiry, for as long as auth_cache_ttl (an hour by default).
introspection_mode = local
issuers = https://auth.example.com
client_id = imaps://mail.example.com
scope = urn:ietf:params:oauth:scope:mail
username_attribute = sub
openid_configuration_url = https://auth.example.com/.well-known/openid-configuration
local_validation_key_dict = fs:posix:prefix=/tmp/binpin/keys/
"
        );
    }

    #[test]
    fn local_validation_for_dovecot_2_4() {
        let settings = DovecotOauth2::local(
            &config(),
            "imaps://mail.example.com",
            Path::new("/tmp/binpin/keys"),
        )
        .unwrap();
        assert_eq!(
            settings.render(DovecotVersion::V2_4),
            "\
# Dovecot 2.4 oauth2 settings for imaps://mail.example.com, from letterlock dovecot-config --dovecot 2.4
# Include it from dovecot.conf, after dovecot_config_version. In 2.4 the
# OAUTHBEARER and XOAUTH2 mechanisms need no oauth2 passdb, only:
#   auth_mechanisms {
#     oauthbearer = yes
#     xoauth2 = yes
#   }
oauth2_introspection_mode = local
oauth2_issuers = https://auth.example.com
oauth2_client_id = imaps://mail.example.com
oauth2_scope = urn:ietf:params:oauth:scope:mail
oauth2_username_attribute = sub
oauth2_openid_configuration_url = https://auth.example.com/.well-known/openid-configuration
oauth2_client_secret = unused-by-local-validation
oauth2_local_validation {
  dict fs {
    fs posix {
      prefix = /tmp/binpin/keys/
    }
  }
}
"
        );
    }

    #[test]
    fn introspection_for_dovecot_2_3() {
        let settings = DovecotOauth2::introspection(&config(), "imaps://mail.example.com").unwrap();
        assert_eq!(
            settings.render(DovecotVersion::V2_3),
            "\
# Dovecot 2.3 oauth2 passdb for imaps://mail.example.com, from letterlock dovecot-config --introspection
# dovecot.conf:  auth_mechanisms = $auth_mechanisms oauthbearer xoauth2
#   passdb { driver = oauth2  mechanisms = oauthbearer xoauth2  args = /etc/dovecot/dovecot-oauth2.conf.ext }
# Keep auth_cache_size = 0 (the default) with this passdb: Dovecot 2.3 accepts a cached token
# past its expiry, for as long as auth_cache_ttl (an hour by default).
introspection_mode = post
introspection_url = https://dovecot:dovecot%27s+secret%3A+0123%2F4567@auth.example.com/introspect
force_introspection = yes
active_attribute = active
active_value = true
username_attribute = sub
scope = urn:ietf:params:oauth:scope:mail
openid_configuration_url = https://auth.example.com/.well-known/openid-configuration
"
        );
    }

    #[test]
    fn introspection_for_dovecot_2_4() {
        let settings = DovecotOauth2::introspection(&config(), "imaps://mail.example.com").unwrap();
        assert_eq!(
            settings.render(DovecotVersion::V2_4),
            "\
# Dovecot 2.4 oauth2 settings for imaps://mail.example.com, from letterlock dovecot-config --dovecot 2.4 --introspection
# Include it from dovecot.conf, after dovecot_config_version. In 2.4 the
# OAUTHBEARER and XOAUTH2 mechanisms need no oauth2 passdb, only:
#   auth_mechanisms {
#     oauthbearer = yes
#     xoauth2 = yes
#   }
oauth2_introspection_mode = post
oauth2_introspection_url = https://dovecot:dovecot%27s+secret%3A+0123%2F4567@auth.example.com/introspect
oauth2_force_introspection = yes
oauth2_active_attribute = active
oauth2_active_value = true
oauth2_username_attribute = sub
oauth2_scope = urn:ietf:params:oauth:scope:mail
oauth2_openid_configuration_url = https://auth.example.com/.well-known/openid-configuration
"
        );
    }

    #[test]
    fn refusals_name_the_resource_and_the_fix() {
        let keys = Path::new("/nowhere");
        let error = DovecotOauth2::local(&config(), "smtps://mail.example.com", keys).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Dovecot 2.3 refuses typ at+jwt: set token_typ = \"JWT\" for smtps://mail.example.com in [[resources]]"
        );
        let error = DovecotOauth2::local(&config(), "x", keys).unwrap_err();
        assert_eq!(error.to_string(), "x is not in [[resources]]");
        let error = DovecotOauth2::introspection(&config(), "x").unwrap_err();
        assert_eq!(error.to_string(), "no [[resource_servers]] entry serves x");
    }
}
