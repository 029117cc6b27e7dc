//! `outpost serve`: bind every configured listener, hand each connection to
//! its protocol, shut down gracefully on SIGTERM/SIGINT.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use outpost_config::Config;
use outpost_net::{
    AuthLayer, AuthThrottle, Conn, ConnLimiter, ListenerContext, Session, ThrottleConfig,
    TlsAcceptor,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::setup;

/// What answers on a listener.
#[derive(Clone)]
enum Service {
    Pop3(Arc<outpost_pop3::Pop3Context>),
    Smtp(Arc<outpost_smtp::SmtpContext>),
    Imap(Arc<outpost_imap::ImapContext>),
    ManageSieve(Arc<outpost_sieve::ManageSieveContext>),
    /// The HTTP stack (`http` and `https`), and the acceptor that offers
    /// h2 and http/1.1 by ALPN for the implicit-TLS listener.
    Http(outpost_http::HttpServer, TlsAcceptor),
}

struct Listener {
    name: &'static str,
    implicit_tls: bool,
    socket: TcpListener,
    service: Service,
    limiter: ConnLimiter,
}

pub async fn serve(config: Option<PathBuf>) -> Result<()> {
    let demo = config.is_none();
    let cfg = match &config {
        Some(p) => Config::load(p)?,
        None => {
            let mut c = setup::demo_config();
            setup::demo_listeners(&mut c);
            c
        }
    };
    init_logging(&cfg);
    if demo {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    }
    let tls = setup::tls_acceptor(&cfg, true)?;
    // Bind before touching storage, so a port in use leaves nothing behind.
    let mut sockets = Vec::new();
    for (name, addr) in cfg.listen.all() {
        let socket = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow!("listen.{name}: cannot listen on {addr}: {e}"))?;
        sockets.push((name, socket));
    }
    let store = setup::open_store(&cfg).await?;
    let demo_password = if demo {
        setup::provision_demo(&store).await?
    } else {
        None
    };
    let dir = setup::directory(&cfg, store.clone(), config.as_deref())?;
    let throttle = AuthThrottle::new(ThrottleConfig {
        window: Duration::from_secs(cfg.auth.window_seconds),
        slow_after: cfg.auth.slow_after,
        delay: Duration::from_secs(2),
        block_after: cfg.auth.block_after,
        block_for: Duration::from_secs(cfg.auth.block_seconds),
    });

    // One directory check behind the one throttle, for every listener.
    let auth = AuthLayer::new(
        crate::backends::authenticator(dir.clone()),
        throttle.clone(),
    );
    let listener = ListenerContext {
        hostname: cfg.hostname.clone(),
        tls: Some(tls.clone()),
        auth,
        allow_plaintext_on_loopback: cfg.auth.allow_plaintext_on_loopback,
    };

    let pop3 = {
        let mut ctx = outpost_pop3::Pop3Context::new(
            listener.clone(),
            crate::backends::pop3_backend(dir.clone()),
        );
        ctx.limits.idle_timeout = Duration::from_secs(cfg.limits.pop3_idle_timeout);
        Arc::new(ctx)
    };

    let inbound = if cfg.inbound.check {
        let servers = cfg.inbound.dns_server_addrs().unwrap_or_default();
        let auth = if !cfg.inbound.test_txt.is_empty() || (!cfg.queue.dns && servers.is_empty()) {
            outpost_queue::inbound::InboundAuth::with_records(
                &cfg.hostname,
                cfg.inbound
                    .test_txt
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
        } else {
            let dns = outpost_queue::inbound::DnsSettings {
                servers,
                timeout: Duration::from_millis(cfg.inbound.dns_timeout_ms),
                retries: cfg.inbound.dns_retries,
            };
            outpost_queue::inbound::InboundAuth::new(&cfg.hostname, &dns)
        };
        match auth {
            Ok(auth) => Some(outpost_mailflow::InboundChecks {
                auth,
                dmarc_reject: cfg.inbound.dmarc_reject,
                dmarc_quarantine_junk: cfg.inbound.dmarc_quarantine_junk,
            }),
            Err(e) => {
                tracing::warn!("inbound SPF/DKIM/DMARC checks are off: {e}");
                None
            }
        }
    } else {
        None
    };
    // The mail flow: delivery, submission, notices, DKIM; one for the
    // whole server.
    let flow = {
        let mut settings = outpost_mailflow::Settings::from_config(&cfg)?;
        settings.inbound = inbound;
        Arc::new(outpost_mailflow::MailFlow::new(dir.clone(), settings))
    };
    let scheduler = scheduling_engine(&flow);
    let smtp_backend = crate::backends::smtp_backend(flow.clone());
    let smtp = |role: outpost_smtp::Role| {
        let mut ctx = outpost_smtp::SmtpContext::new(role, listener.clone(), smtp_backend.clone());
        ctx.limits.message_size = cfg.limits.message_size as usize;
        ctx.limits.max_recipients = cfg.limits.max_recipients;
        ctx.limits.command_timeout = Duration::from_secs(cfg.limits.smtp_command_timeout);
        ctx.limits.check_timeout = Duration::from_secs(cfg.inbound.check_timeout);
        if role != outpost_smtp::Role::Submission {
            // Like Postfix, accept over-long lines from other servers rather
            // than bounce mail from sloppy generators; size stays bounded.
            ctx.limits.max_data_line_length = 0;
        }
        Arc::new(ctx)
    };
    let mx = smtp(outpost_smtp::Role::Mx);
    let submission = smtp(outpost_smtp::Role::Submission);
    let lmtp = smtp(outpost_smtp::Role::Lmtp);

    let managesieve = Arc::new(outpost_sieve::ManageSieveContext {
        listener: listener.clone(),
        backend: Arc::new(crate::sieve_backend::SieveStore { dir: dir.clone() }),
        engine: flow.engine().clone(),
        limits: outpost_sieve::ManageSieveLimits {
            max_scripts: cfg.sieve.max_scripts,
            max_script_size: cfg.sieve.max_script_size,
            ..Default::default()
        },
    });

    let imap = Arc::new(outpost_imap::ImapContext {
        listener: listener.clone(),
        storage: Arc::new(crate::imap_store::ImapStore {
            store: store.clone(),
        }),
        limits: outpost_imap::ImapLimits {
            max_literal: cfg.limits.message_size,
            idle_timeout: Duration::from_secs(cfg.limits.imap_idle_timeout),
            ..Default::default()
        },
    });

    // The HTTP stack, serving every HTTP service's router.
    let https_port = sockets
        .iter()
        .find(|(name, _)| *name == "https")
        .and_then(|(_, s)| s.local_addr().ok())
        .map_or(443, |a| a.port());
    let http = outpost_http::HttpServer::new(
        http_router(
            &cfg,
            &dir,
            &listener,
            &scheduler,
            &flow,
            autodiscover_settings(&cfg, |name| {
                sockets
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, s)| s.local_addr().ok())
            }),
        ),
        outpost_http::HttpSettings {
            hostname: cfg.hostname.clone(),
            https_port,
            max_header_size: cfg.http.max_header_size,
            body_limit: cfg.http.body_limit,
            header_read_timeout: cfg.http.header_read_timeout(),
            body_read_timeout: cfg.http.body_read_timeout(),
            idle_timeout: cfg.http.idle_timeout(),
            requests_per_ip: cfg.http.requests_per_ip,
            long_polls_per_ip: cfg.http.long_polls_per_ip,
            h2_max_concurrent_streams: cfg.http.h2_max_concurrent_streams,
            allow_plaintext_on_loopback: cfg.http.allow_plaintext_on_loopback,
        },
    )
    // Phones hold an ActiveSync Ping on their connection most of the time:
    // those connections get the codec that buffers nothing while one waits.
    .with_long_poll_paths(outpost_activesync::http::is_path);
    let http_tls = outpost_http::HttpServer::tls_acceptor(&tls);

    let mut listeners = Vec::new();
    for (name, socket) in sockets {
        let service = match name {
            "pop3" | "pop3s" => Service::Pop3(pop3.clone()),
            "smtp" => Service::Smtp(mx.clone()),
            "submission" | "submissions" => Service::Smtp(submission.clone()),
            "lmtp" => Service::Smtp(lmtp.clone()),
            "imap" | "imaps" => Service::Imap(imap.clone()),
            "managesieve" => Service::ManageSieve(managesieve.clone()),
            "http" | "https" => Service::Http(http.clone(), http_tls.clone()),
            other => return Err(anyhow!("listen.{other}: no service of that name")),
        };
        listeners.push(Listener {
            name,
            implicit_tls: matches!(name, "submissions" | "imaps" | "pop3s" | "https"),
            socket,
            service,
            limiter: ConnLimiter::new(
                cfg.limits.connections_per_ip_for(name),
                cfg.limits.connections_total,
            ),
        });
    }

    // Record what was bound (port 0 becomes a real port) for tools and tests.
    let mut bound: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for l in &listeners {
        let a = l.socket.local_addr()?;
        bound.entry(l.name).or_default().push(a.to_string());
        tracing::info!("listening: {} on {a}", l.name);
    }
    let json = serde_json::to_string_pretty(&bound)?;
    setup::write_atomically(&cfg.data_dir.join("listeners.json"), json.as_bytes())?;

    if let Some(a) = listeners
        .iter()
        .find(|l| l.name == "https")
        .and_then(|l| l.socket.local_addr().ok())
    {
        let port = match a.port() {
            443 => String::new(),
            p => format!(":{p}"),
        };
        tracing::info!(
            "calendars and contacts (CalDAV/CardDAV): https://{}{port}/dav/",
            cfg.hostname
        );
    }
    if demo {
        print_demo_table(&cfg, &listeners, demo_password.as_deref());
    }
    if listeners.is_empty() {
        tracing::warn!("no listeners configured under [listen]; nothing to serve");
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut accept_tasks = JoinSet::new();
    let sessions_done = Arc::new(tokio::sync::Notify::new());
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for l in listeners {
        accept_tasks.spawn(accept_loop(
            l,
            tls.clone(),
            stop_rx.clone(),
            active.clone(),
            sessions_done.clone(),
        ));
    }

    // Sweeper, every `[storage] sweep_interval`: bodies whose last message
    // went away `sweep_grace` ago, compaction of packs that are mostly dead
    // space, pack files nothing names, and journal rows older than
    // `journal_keep`.
    let sweeper_store = store.clone();
    let mut sweeper_stop = stop_rx.clone();
    let sweep_every = cfg.storage.sweep_interval();
    let policy = outpost_store::SweepPolicy {
        blob_grace_secs: cfg.storage.sweep_grace().as_secs() as i64,
        journal_keep_secs: i64::try_from(cfg.storage.journal_keep().as_secs()).unwrap_or(i64::MAX),
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(sweep_every) => {}
                _ = sweeper_stop.changed() => return,
            }
            match sweeper_store.sweep(policy).await {
                Ok(r) => {
                    if r.blobs > 0 {
                        tracing::info!("removed {} unreferenced message blob(s)", r.blobs);
                    }
                    let j = r.journal;
                    if j.collection_rows + j.principal_rows > 0 {
                        tracing::info!(
                            "pruned {} journal row(s) older than journal_keep ({} of folder lists)",
                            j.collection_rows + j.principal_rows,
                            j.principal_rows
                        );
                    }
                }
                Err(e) => tracing::warn!("sweep failed: {e}"),
            }
        }
    });

    // The Global Address List of every domain, filled from the directory
    // and kept current (crate::gal_refresh). The timed refresh is for an
    // LDAP source only: built-in changes are announced.
    let gal_every = outpost_config::parse_duration(&cfg.directory.gal_refresh)
        .ok()
        .filter(|d| !d.is_zero() && dir.ldap().is_some());
    crate::gal_refresh::spawn(dir.clone(), gal_every, stop_rx.clone());

    // Outbound queue runner (crate outpost-queue).
    let queue_runner = tokio::spawn(
        crate::outbound::runner(&cfg, store.clone(), flow.clone())?.run(stop_rx.clone()),
    );

    wait_for_signal().await;
    tracing::info!("shutting down: no new connections; waiting for sessions in flight");
    let _ = stop_tx.send(true);
    while accept_tasks.join_next().await.is_some() {}
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while active.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        if tokio::time::timeout_at(deadline, sessions_done.notified())
            .await
            .is_err()
        {
            tracing::info!(
                "{} session(s) still open after 10 s; closing them",
                active.load(std::sync::atomic::Ordering::SeqCst)
            );
            break;
        }
    }
    let _ = queue_runner.await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Refused connections being answered at once, per listener.
const REFUSALS_IN_FLIGHT: usize = 64;

async fn accept_loop(
    l: Listener,
    tls: TlsAcceptor,
    mut stop: watch::Receiver<bool>,
    active: Arc<std::sync::atomic::AtomicUsize>,
    done: Arc<tokio::sync::Notify>,
) {
    use std::sync::atomic::Ordering;
    let refusing = Arc::new(tokio::sync::Semaphore::new(REFUSALS_IN_FLIGHT));
    loop {
        let (tcp, peer) = tokio::select! {
            r = l.socket.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("{}: accept failed: {e}", l.name);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().unwrap_or(peer);
        let permit = match l.limiter.try_acquire(peer.ip()) {
            Ok(p) => p,
            Err(why) => {
                tracing::warn!("{}: refused {peer}: {why:?}", l.name);
                // Answered in the protocol, inside TLS on an implicit-TLS
                // listener; a bounded number at a time, beyond which the
                // connection is just closed (a flood must not buy handshakes).
                if let Ok(slot) = refusing.clone().try_acquire_owned() {
                    let message = refusal(&l.service);
                    let tls = l.implicit_tls.then(|| tls.clone());
                    tokio::spawn(async move {
                        outpost_net::listener::refuse(Conn::Plain(tcp), tls.as_ref(), message)
                            .await;
                        drop(slot);
                    });
                }
                continue;
            }
        };
        let session = Session::new(peer, local, l.name);
        let service = l.service.clone();
        let stop = stop.clone();
        let implicit = l.implicit_tls;
        let tls = tls.clone();
        let active = active.clone();
        let done = done.clone();
        active.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let _permit = permit;
            handle(Conn::Plain(tcp), session, service, implicit, tls, stop).await;
            active.fetch_sub(1, Ordering::SeqCst);
            done.notify_waiters();
        });
    }
}

async fn handle(
    conn: Conn,
    session: Session,
    service: Service,
    implicit_tls: bool,
    tls: TlsAcceptor,
    stop: watch::Receiver<bool>,
) {
    let conn = if implicit_tls {
        let timeout = Duration::from_secs(30);
        let tls = match &service {
            Service::Http(_, alpn) => alpn,
            _ => &tls,
        };
        // Boxed, like each service below: the task of a connection keeps
        // room for its future's largest state for as long as it lives, and
        // a held ActiveSync Ping should not pay for a TLS handshake's or an
        // IMAP session's (docs/benchmarks.md, "ActiveSync").
        let shake =
            outpost_net::listener::handshake(conn, tls, &session, session.listener, timeout);
        match Box::pin(shake).await {
            Ok(c) => c,
            Err(_) => return,
        }
    } else {
        conn
    };
    match service {
        Service::Pop3(ctx) => Box::pin(outpost_pop3::serve(conn, session, ctx)).await,
        Service::Smtp(ctx) => Box::pin(outpost_smtp::serve(conn, session, ctx)).await,
        Service::Imap(ctx) => Box::pin(outpost_imap::serve(conn, session, ctx)).await,
        Service::ManageSieve(ctx) => Box::pin(outpost_sieve::serve(conn, session, ctx)).await,
        Service::Http(server, _) => Box::pin(server.serve_connection(conn, &session, stop)).await,
    }
}

fn refusal(service: &Service) -> &'static [u8] {
    match service {
        Service::Pop3(_) => b"-ERR [SYS/TEMP] Too many connections, try again later\r\n",
        Service::Smtp(_) => {
            b"421 4.7.0 Too many connections from your address, try again later\r\n"
        }
        Service::ManageSieve(_) => b"BYE \"Too many connections, try again later\"\r\n",
        Service::Imap(_) => b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
        // Without ALPN on the refusal's handshake, the client speaks
        // HTTP/1.1 and reads this.
        Service::Http(..) => {
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        }
    }
}

/// The scheduling engine (RFC 6638/iTIP/iMIP, `outpost_scheduling`), one
/// for the server: the mail flow hands it the calendar parts of delivered
/// mail, and the DAV backend calls it after each calendar write.
fn scheduling_engine(flow: &Arc<outpost_mailflow::MailFlow>) -> outpost_scheduling::Scheduler {
    let scheduler = outpost_scheduling::Scheduler::new(flow.clone());
    flow.set_imip_handler(Arc::new(scheduler.clone()));
    scheduler
}

/// Every HTTP service, merged into the one router the HTTP stack serves on
/// `[listen] http` and `https`. This is where protocol routers are mounted:
/// a protocol crate hands over its `axum::Router`, wrapped with
/// `outpost_http::require_user` when it needs a login, and merged here;
/// discovery is mounted unwrapped, since plain HTTP serves it too.
///
/// - DAV (`outpost_dav`, over [`crate::dav_store::DavBackend`]): `/dav/...`
///   and `PROPFIND /` (Thunderbird starts there), behind HTTP Basic through
///   the shared auth layer and its throttle; `/.well-known/caldav` and
///   `/.well-known/carddav` answer their 301 to `/dav/` without a login
///   (RFC 6764), on plain HTTP too.
/// - ActiveSync (`outpost_activesync`): `/Microsoft-Server-ActiveSync`
///   in any case, behind HTTP Basic, over [`crate::eas_store::EasStore`].
/// - EWS (`outpost_ews`): `/EWS/Exchange.asmx` and `/EWS/Services.wsdl`
///   in any case, behind HTTP Basic, over the same `EasStore` value.
/// - Autodiscover (`outpost_autodiscover`): POX v1 and SOAP
///   (`autodiscover.svc`) behind the login, JSON v2 without, at
///   `/autodiscover/...` in any letter case; Mozilla autoconfig
///   (`/.well-known/autoconfig/mail/config-v1.1.xml`,
///   `/mail/config-v1.1.xml`) without a login, on plain HTTP too; the Apple
///   profile at `/mobileconfig` behind the login.
/// - Any other path is 404.
fn http_router(
    cfg: &Config,
    dir: &outpost_directory::Directory,
    listener: &ListenerContext,
    scheduler: &outpost_scheduling::Scheduler,
    flow: &Arc<outpost_mailflow::MailFlow>,
    autodiscover: outpost_autodiscover::Settings,
) -> axum::Router {
    // One DAV backend: the DAV router's, and ActiveSync's for calendar and
    // contact writes.
    let dav_backend =
        Arc::new(crate::dav_store::DavBackend::new(dir.clone()).with_scheduler(scheduler.clone()));
    let dav = outpost_dav::router(
        dav_backend.clone(),
        outpost_dav::DavConfig {
            // What the store accepts is what CalDAV/CardDAV announce as
            // max-resource-size.
            max_resource_size: outpost_store::groupware::MAX_OBJECT_BYTES,
            ..outpost_dav::DavConfig::default()
        },
    );
    let basic = outpost_http::BasicAuth::new(
        listener.auth.clone(),
        &cfg.hostname,
        cfg.http.allow_plaintext_on_loopback,
    );
    // The same DAV router twice: unwrapped for the discovery paths only,
    // behind the login for its own paths.
    let open = dav.clone().into_service::<axum::body::Body>();
    // One store value behind ActiveSync and EWS: one mailbox.
    let exchange = Arc::new(crate::eas_store::EasStore::new(
        flow.clone(),
        dav_backend,
        scheduler.clone(),
    ));
    let eas = outpost_http::require_user(
        outpost_activesync::http::router(exchange.clone(), outpost_activesync::Limits::default()),
        basic.clone(),
    )
    .into_service::<axum::body::Body>();
    let ews = outpost_http::require_user(
        outpost_ews::router(
            exchange,
            outpost_ews::Limits {
                max_message_size: cfg.limits.message_size,
                ..outpost_ews::Limits::default()
            },
        ),
        basic.clone(),
    )
    .into_service::<axum::body::Body>();
    let dav = outpost_http::require_user(dav, basic.clone()).into_service::<axum::body::Body>();
    let autodiscover = outpost_autodiscover::router(
        autodiscover,
        Arc::new(crate::backends::AutodiscoverAccounts { dir: dir.clone() }),
        basic.clone(),
    );
    axum::Router::new()
        .route_service(outpost_activesync::http::PATH, eas.clone())
        .route_service("/.well-known/caldav", open.clone())
        .route_service("/.well-known/carddav", open)
        .route_service("/", dav.clone())
        .route_service("/dav", dav.clone())
        .route_service("/dav/", dav.clone())
        .route_service("/dav/{*rest}", dav)
        .fallback(move |req: axum::extract::Request| async move {
            // The ActiveSync path in any other case (clients differ).
            if outpost_activesync::http::is_path(req.uri().path()) {
                use axum::response::IntoResponse;
                use tower::ServiceExt;
                return match eas.oneshot(req).await {
                    Ok(r) => r.into_response(),
                    Err(never) => match never {},
                };
            }
            // EWS in any letter case (Outlook and DavMail write /ews/...).
            if outpost_ews::is_path(req.uri().path()) {
                use axum::response::IntoResponse;
                use tower::ServiceExt;
                return match ews.oneshot(req).await {
                    Ok(r) => r.into_response(),
                    Err(never) => match never {},
                };
            }
            // Autodiscover's paths are matched in any letter case, so
            // they cannot be axum routes; its router answers 404 for the
            // rest.
            use axum::response::IntoResponse;
            use tower::ServiceExt;
            match autodiscover.oneshot(req).await {
                Ok(r) => r.into_response(),
                Err(never) => match never {},
            }
        })
}

/// Where Autodiscover points clients: the host name, the bound HTTPS port
/// (`:443` omitted) and the IMAP/POP3/submission listeners (implicit TLS
/// preferred). `bound` gives a listener's bound address by name.
fn autodiscover_settings(
    cfg: &Config,
    bound: impl Fn(&str) -> Option<SocketAddr>,
) -> outpost_autodiscover::Settings {
    use outpost_autodiscover::{MailEndpoint, Settings};
    let endpoint = |tls: &str, plain: &str| {
        bound(tls)
            .map(|a| MailEndpoint {
                port: a.port(),
                implicit_tls: true,
            })
            .or_else(|| {
                bound(plain).map(|a| MailEndpoint {
                    port: a.port(),
                    implicit_tls: false,
                })
            })
    };
    let https_port = bound("https").map_or(443, |a| a.port());
    Settings {
        hostname: cfg.hostname.clone(),
        public_url: Settings::public_url_for(&cfg.hostname, https_port),
        imap: endpoint("imaps", "imap"),
        pop3: endpoint("pop3s", "pop3"),
        smtp: endpoint("submissions", "submission"),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// `host:port` for a URL (IPv6 in brackets; the unspecified address shown
/// as loopback, where a local client reaches it).
fn dav_host(a: SocketAddr) -> String {
    let ip = if a.ip().is_unspecified() {
        match a {
            SocketAddr::V4(_) => std::net::IpAddr::from([127, 0, 0, 1]),
            SocketAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        }
    } else {
        a.ip()
    };
    SocketAddr::new(ip, a.port()).to_string()
}

fn print_demo_table(cfg: &Config, listeners: &[Listener], password: Option<&str>) {
    let addr_of = |name: &str| -> Option<SocketAddr> {
        listeners
            .iter()
            .find(|l| l.name == name)
            .and_then(|l| l.socket.local_addr().ok())
    };
    println!();
    println!(
        "Outpost demo is running (data in {}).",
        cfg.data_dir.display()
    );
    println!();
    println!("  user:      {}", setup::DEMO_USER);
    match password {
        Some(pw) => println!(
            "  password:  {pw}    (shown only now; change it with: outpost user passwd {})",
            setup::DEMO_USER
        ),
        None => println!(
            "  password:  as printed at first start (reset: outpost user passwd {})",
            setup::DEMO_USER
        ),
    }
    println!();
    println!("  {:<12} {:<22} security", "service", "address");
    for (name, sec) in [
        ("smtp", "MX: mail for example.test (STARTTLS)"),
        ("submission", "STARTTLS, then AUTH PLAIN/LOGIN"),
        ("submissions", "implicit TLS"),
        ("lmtp", "LMTP, no authentication"),
        ("imap", "STARTTLS (plaintext login allowed on loopback)"),
        ("imaps", "implicit TLS"),
        ("pop3", "STLS (plaintext login allowed on loopback)"),
        ("pop3s", "implicit TLS"),
        (
            "managesieve",
            "ManageSieve, STARTTLS (plaintext login allowed on loopback)",
        ),
        (
            "https",
            "HTTPS, HTTP/1.1 and HTTP/2: CalDAV/CardDAV at /dav/",
        ),
        (
            "http",
            "plain HTTP (served on loopback; elsewhere redirects)",
        ),
    ] {
        if let Some(a) = addr_of(name) {
            println!("  {name:<12} {:<22} {sec}", a.to_string());
        }
    }
    println!();
    if let Some(a) = addr_of("https") {
        println!(
            "  Calendars and contacts (CalDAV/CardDAV): https://{}/dav/",
            dav_host(a)
        );
    }
    if let Some(a) = addr_of("http") {
        println!(
            "    on loopback also:                      http://{}/dav/",
            dav_host(a)
        );
    }
    println!("  The certificate is self-signed: tell your client to accept it.");
    println!("  Add users with: outpost user add someone@example.test");
    println!("  Stop with Ctrl-C.");
    println!();
}
