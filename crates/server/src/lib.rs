//! Letterlock's authorization server.
//!
//! [`router`] builds the whole HTTP surface from an [`AppState`]; tests drive it with
//! `tower::ServiceExt::oneshot`, no socket needed. [`prepare`] and [`BoundServer`] add what a
//! process needs: the data folder, storage and migrations, first keys, the listener (plain or
//! TLS), background key reloads, and graceful shutdown; [`run`] chains them. The server knows no
//! front door: the `letterlock` binary starts those beside it.
//!
//! Endpoints (under the issuer's path):
//!
//! | path | what |
//! |---|---|
//! | `/.well-known/oauth-authorization-server[/path]` | RFC 8414 metadata |
//! | `/.well-known/openid-configuration` | the same document, where OpenID clients look |
//! | `/jwks.json` | the signing keys (RFC 7517) |
//! | `POST /register` | open dynamic client registration (RFC 7591) |
//! | `GET/PUT/DELETE /register/{client_id}` | client management, stored mode only (RFC 7592) |
//!
//! ```no_run
//! # async fn example() -> Result<(), letterlock_server::ServerError> {
//! use letterlock_server::config::Config;
//! let config = Config::default(); // the embedded defaults
//! letterlock_server::run(config, letterlock_server::listen::shutdown_signal()).await
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod accounts;
pub mod admin;
pub mod clients;
pub mod clock;
pub mod config;
pub mod dpop;
mod endpoints;
pub mod error;
pub mod grants;
mod http;
pub mod identity;
pub mod keys;
pub mod limits;
pub mod listen;
pub mod pages;
pub mod proxy;
pub mod random;
pub mod replay;
pub mod second_factor;
pub mod secrets;
pub mod settings;
pub mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use letterlock_protocol::ErrorCode;
use letterlock_protocol::issuer::{
    AUTHORIZATION_SERVER_WELL_KNOWN, OPENID_CONFIGURATION_WELL_KNOWN,
};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::{Config, ConfigError, RegistrationMode};
use crate::error::ApiError;
pub use crate::state::AppState;

/// Why the server cannot start or keep going.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] letterlock_store::Error),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Jose(#[from] letterlock_jose::Error),
    /// The random generator failed.
    #[error(transparent)]
    Random(#[from] random::RandomFailed),
    /// A stored key cannot be loaded.
    #[error("stored key '{0}' is corrupt")]
    CorruptKey(String),
    /// The TLS certificate or key cannot be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The HTTP surface of the authorization server.
pub fn router(state: AppState) -> Router {
    let prefix = state.issuer().path_prefix().to_owned();
    let mut router = Router::new()
        .route(
            &format!("{AUTHORIZATION_SERVER_WELL_KNOWN}{prefix}"),
            get(endpoints::discovery::metadata),
        )
        .route(
            &format!("{prefix}{OPENID_CONFIGURATION_WELL_KNOWN}"),
            get(endpoints::discovery::metadata),
        )
        .route(&format!("{prefix}/jwks.json"), get(endpoints::discovery::jwks))
        .route(&format!("{prefix}/register"), post(endpoints::register::register))
        .route(&format!("{prefix}/authorize"), get(endpoints::authorize::authorize))
        .route(&format!("{prefix}/authorize/continue"), get(endpoints::authorize::resume))
        .route(&format!("{prefix}/login"), post(endpoints::authorize::login))
        .route(&format!("{prefix}/consent"), post(endpoints::authorize::consent))
        .route(&format!("{prefix}/sign-in/upstream/{{name}}"), get(endpoints::upstream::start))
        .route(
            &format!("{prefix}/sign-in/upstream/{{name}}/callback"),
            get(endpoints::upstream::callback),
        )
        .route(
            &format!("{prefix}/login/second-factor"),
            get(endpoints::second_factor::page).post(endpoints::second_factor::submit),
        )
        .route(&format!("{prefix}/token"), post(endpoints::token::token))
        .route(
            &format!("{prefix}{}", letterlock_protocol::oidc::USERINFO_PATH),
            get(endpoints::userinfo::userinfo).post(endpoints::userinfo::userinfo),
        )
        .route(
            &format!("{prefix}/device_authorization"),
            post(endpoints::device::device_authorization),
        )
        .route(
            &format!("{prefix}/device"),
            get(endpoints::device::verification).post(endpoints::device::enter_code),
        )
        .route(&format!("{prefix}/device/consent"), post(endpoints::device::decide))
        .route(&format!("{prefix}/revoke"), post(endpoints::introspect::revoke))
        .route(&format!("{prefix}/introspect"), post(endpoints::introspect::introspect))
        .route(&format!("{prefix}/account"), get(endpoints::account::page))
        .route(&format!("{prefix}/account/{{action}}"), post(endpoints::account::action))
        .route(
            &format!("{prefix}/account/totp/{{action}}"),
            post(endpoints::second_factor::account_action),
        )
        .route(&format!("{prefix}/account/api/devices"), get(endpoints::account::api_devices))
        .route(
            &format!("{prefix}/account/api/devices/revoke-all"),
            post(endpoints::account::api_revoke_all),
        )
        .route(
            &format!("{prefix}/account/api/devices/{{id}}/revoke"),
            post(endpoints::account::api_revoke),
        )
        .route(&format!("{prefix}/revocations"), get(endpoints::account::feed))
        .route(&format!("{prefix}/passkey.js"), get(endpoints::passkey::script))
        .route(
            &format!("{prefix}/passkey/register/options"),
            post(endpoints::passkey::register_options),
        )
        .route(&format!("{prefix}/passkey/register"), post(endpoints::passkey::register))
        .route(&format!("{prefix}/passkey/remove"), post(endpoints::passkey::remove))
        .route(
            &format!("{prefix}/passkey/sign-in/options"),
            post(endpoints::passkey::sign_in_options),
        )
        .route(&format!("{prefix}/passkey/sign-in"), post(endpoints::passkey::sign_in));
    if state.registration().mode == RegistrationMode::Stored {
        router = router.route(
            &format!("{prefix}/register/{{client_id}}"),
            get(endpoints::register::read)
                .put(endpoints::register::update)
                .delete(endpoints::register::delete),
        );
    }
    let timeout = Duration::from_secs(state.limits().request_timeout_seconds.max(1));
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::internal(&"a request handler panicked").into_response()
        }))
        .with_state(state)
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::InvalidRequest, "no such endpoint")
        .into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::InvalidRequest,
        "method not allowed on this endpoint",
    )
    .into_response()
}

/// Prepares storage and state from a configuration: creates the data folder (owner only) and
/// the SQLite file (owner only), migrates, and creates the first keys.
pub async fn prepare(config: &Config) -> Result<AppState, ServerError> {
    let store = open_store(config).await?;
    AppState::new(config, store, Arc::new(clock::SystemClock)).await
}

/// Opens and migrates the configured database, creating the data folder and SQLite file with
/// owner-only permissions first.
pub async fn open_store(config: &Config) -> Result<letterlock_store::Store, ServerError> {
    let url = config.database_url();
    if let Some(path) =
        url.strip_prefix("sqlite://").map(|rest| rest.split('?').next().unwrap_or(rest))
        && path != ":memory:"
    {
        create_private_file(std::path::Path::new(path))?;
    }
    let store = letterlock_store::Store::connect(&url).await?;
    store.migrate().await?;
    Ok(store)
}

fn create_private_file(path: &std::path::Path) -> Result<(), ServerError> {
    let io = |context: String| move |source| ServerError::Io { context, source };
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent).map_err(io(format!("cannot create {}", parent.display())))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io(format!("cannot create {}", path.display())))?;
    Ok(())
}

/// Runs the authorization server alone until `shutdown` completes: [`prepare`], then
/// [`BoundServer::bind`] and [`BoundServer::serve`]. `letterlock serve` does the same steps
/// itself, with the front doors started between the last two.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let state = prepare(&config).await?;
    BoundServer::bind(&config, state).await?.serve(shutdown).await
}

/// The authorization server with its listener open and its TLS and proxy settings checked: the
/// issuer's URLs answer (connections wait in the listen queue) as soon as this exists, so what
/// reads them over HTTP, like front doors in the same process, can start before [`serve`]
/// runs.
///
/// [`serve`]: BoundServer::serve
pub struct BoundServer {
    state: AppState,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    options: listen::ListenOptions,
    reload_interval: Duration,
}

impl BoundServer {
    /// Checks the listener's settings (TLS files, `trusted_proxies`) and opens the listener.
    pub async fn bind(config: &Config, state: AppState) -> Result<Self, ServerError> {
        let issuer = state.issuer().clone();
        if !issuer.is_https() {
            tracing::warn!(%issuer, "the issuer uses plain http, which is accepted only on loopback for development");
        }
        let tls = config.tls.as_ref().map(listen::tls_acceptor).transpose()?;
        let trusted_proxies = config
            .trusted_proxies
            .iter()
            .map(|text| {
                proxy::Cidr::parse(text).ok_or_else(|| {
                    ConfigError::invalid(
                        "trusted_proxies",
                        format!("'{text}' is not an address or CIDR block"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let address = config.listen_address();
        if tls.is_none() && issuer.is_https() && !address.ip().is_loopback() {
            tracing::warn!(%address, "listening without TLS on a public address; put a TLS-terminating proxy in front");
        }
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|source| {
            ServerError::Io { context: format!("cannot listen on {address}"), source }
        })?;
        tracing::info!(%issuer, address = %listener.local_addr().unwrap_or(address), tls = tls.is_some(), "letterlock is serving");
        Ok(Self {
            state,
            listener,
            tls,
            options: listen::ListenOptions::from_limits(&config.limits, trusted_proxies),
            reload_interval: Duration::from_secs(config.keys.reload_interval_seconds.max(1)),
        })
    }

    /// The state the server answers from.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves requests, with the background tasks (key reloads, pruning), until `shutdown`
    /// completes; then closes the store.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Self { state, listener, tls, options, reload_interval } = self;
        let background = tokio::spawn(background_tasks(state.clone(), reload_interval));
        listen::serve_with(listener, router(state.clone()), tls, options, shutdown).await;
        background.abort();
        state.store().close().await;
        Ok(())
    }
}

/// Reloads keys (so rotations reach running servers), prunes rate-limiter state, and deletes
/// expired codes, sessions, requests, refresh tokens and one-time values.
async fn background_tasks(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Err(error) = state.reload_keys().await {
            tracing::warn!(%error, "reloading keys failed; keeping the ones loaded");
        }
        state.prune_rate_limits();
        if let Err(error) = state.store().purge_expired(state.now()).await {
            tracing::warn!(%error, "deleting expired records failed");
        }
    }
}
