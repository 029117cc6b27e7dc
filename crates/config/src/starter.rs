use std::path::Path;

/// A commented starter config, written by `outpost init`.
pub fn starter_config(hostname: &str, data_dir: &Path) -> String {
    let d = data_dir.display();
    format!(
        r#"# Outpost configuration. Every key is optional; unknown keys are errors.
# `outpost check --config THIS_FILE` validates it.

# Host name used in SMTP greetings, Received: headers and the certificate.
hostname = "{hostname}"
# Database, message blobs, TLS files and keys live here.
data_dir = "{d}"

[storage]
# Embedded SQLite (the default) or PostgreSQL, e.g. "postgres://outpost@db.example.org/outpost".
url = "sqlite://{d}/outpost.db"
# blobs = "{d}/blobs"
# Bodies up to pack_max are appended to pack files in blobs/packs/ (one write
# and one flush per batch of deliveries), larger ones get a file each.
# Bodies up to inline_max (default 0: none) are kept in the database instead.
# pack_max = 1048576
# inline_max = 0
# Every sweep_interval, bodies whose last message went away more than
# sweep_grace ago are removed and mostly-empty pack files compacted.
# sweep_interval = "5m"
# sweep_grace = "1h"
# The sweep also prunes the change journals: changes older than journal_keep
# are forgotten, and a client that last synced before that (IMAP QRESYNC,
# CalDAV/CardDAV sync tokens, ActiveSync) starts its sync of the folder over.
# journal_keep = "90d"

[tls]
# A self-signed pair was generated into {d}/tls/. Point these at your real
# certificate chain and key (for example from an ACME client) for production.
# cert = "/etc/outpost/fullchain.pem"
# key  = "/etc/outpost/key.pem"

[listen]
# A service that is not listed is not started.
smtp        = ["0.0.0.0:25"]     # MX: mail for hosted domains
submission  = ["0.0.0.0:587"]    # STARTTLS, then AUTH required
submissions = ["0.0.0.0:465"]    # implicit TLS, AUTH required
imap        = ["0.0.0.0:143"]    # STARTTLS
imaps       = ["0.0.0.0:993"]
pop3        = ["0.0.0.0:110"]    # STLS
pop3s       = ["0.0.0.0:995"]
# lmtp      = ["127.0.0.1:24"]   # for sites that keep their own MTA
# https     = ["0.0.0.0:443"]    # HTTP/1.1 and HTTP/2: DAV and the web services
# http      = ["0.0.0.0:80"]     # /.well-known/ and redirects to https only

[limits]
message_size = 52428800          # bytes; SMTP SIZE and IMAP APPENDLIMIT
max_recipients = 100
# Connections from one client address, per listener. Unset: 50 on smtp and
# lmtp (other servers; Postfix allows 50 too) and 300 on the listeners mail
# programs use, because a whole office often comes from one NAT address
# (30 Thunderbird users keep up to 5 IMAP connections each). A number here
# applies to every listener.
# connections_per_ip = 300
connections_total = 5000

[auth]
allow_plaintext_on_loopback = false
slow_after = 3                   # failed logins before answers slow down
block_after = 10                 # failed logins before the client is refused
block_seconds = 900

[http]
# max_header_size = 16384               # bytes of request line + headers; 431 beyond
# body_limit = 1048576                  # bytes, unless a service sets its own; 413 beyond
# header_read_timeout = "20s"           # to send a request head (slowloris)
# body_read_timeout = "60s"             # between two pieces of a request body; 408 beyond
# idle_timeout = "60s"                  # keep-alive without a request in flight
# requests_per_ip = 128                 # requests at once per client address; 429 beyond
# long_polls_per_ip = 5000             # held ActiveSync Pings per client address (apart from the above)
# h2_max_concurrent_streams = 100
# allow_plaintext_on_loopback = false   # serve plain-HTTP loopback clients like HTTPS

[queue]
# relay = "smtp.provider.example:587"   # smarthost; absent: deliver by MX
# relay_username = "outpost"            # AUTH at the relay (only over STARTTLS)
# relay_password_file = "/etc/outpost/relay.pw"
# retry = ["1m", "5m", "15m", "1h", "4h"]   # waits between attempts; the last repeats
# max_age = "5d"                        # then bounce
# delay_warning = "4h"                  # one delay notice to the sender
# workers = 16                          # deliveries at once
# domain_workers = 4                    # deliveries at once per destination domain
# require_tls_domains = ["bank.example"]   # STARTTLS with a verified certificate, or wait

[inbound]
# SPF, DKIM and DMARC on mail from other servers (Authentication-Results:).
# check = true
# dmarc_reject = true                   # refuse DMARC failures under p=reject
# dmarc_quarantine_junk = true          # file p=quarantine failures in Junk
# dns_servers = ["127.0.0.1"]           # default: /etc/resolv.conf's
# dns_timeout_ms = 1000                 # one try of a query; lost packets are resent within it
# dns_retries = 3                       # tries after a try with no answer
# check_timeout = 20                    # seconds; then 451 4.4.3 and the sender retries

[sieve]
# Global scripts around each user's own (Pigeonhole's sieve_before/after).
# before = ["/etc/outpost/spam.sieve"]
# after = []
# max_scripts = 32                      # per user (ManageSieve quota)
# max_script_size = 65536
# max_redirects = 4
# Envelope sender of mail redirected by a script or sent on by a group or
# alias to outside members: "srs" rewrites it (SPF passes at the
# destination; bounces come back and are sent on), "original" keeps it.
# redirect_sender = "srs"
# srs_secret_file = "{d}/srs.key"       # generated on first use; same file on every node
# srs_max_age_days = 21
# spamtest/spamtestplus and virustest (RFC 5235), from your scanners' fields:
# spam_score_header = "X-Spam-Score"
# spam_score_max = 10.0                 # this score and above: certainly spam
# virus_header = "X-Virus-Status"       # "Clean" / "Infected", or 1-5

[dkim]
# Keys: `outpost dkim generate DOMAIN`; records to publish: `outpost dns DOMAIN`.
selector = "outpost"

[directory]
# Users, addresses and groups: Outpost's own tables ("internal", managed with
# `outpost user/alias/group`), or an existing Active Directory, Samba AD or
# OpenLDAP ("ldap"). Hosted domains are still added with `outpost domain add`;
# local aliases and groups keep working on top of LDAP.
source = "internal"
# url = "ldaps://dc1.example.org"        # or ldap://... (upgraded with StartTLS)
# ca_file = "/etc/outpost/ad-ca.pem"     # absent: the system trust store
# base_dn = "DC=example,DC=org"
# bind_dn = "CN=outpost,CN=Users,DC=example,DC=org"   # read-only service account
# bind_password_file = "/etc/outpost/ldap.pw"         # or bind_password_env = "OUTPOST_LDAP_PW"
# preset = "ad"                          # or "openldap"
# cache_ttl = "60s"                      # found / not-found answers and logins are reused this long

[log]
level = "info"
"#
    )
}
