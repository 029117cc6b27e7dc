use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use outpost_config::Config;
use outpost_directory::Directory;
use outpost_store::PrincipalKind;

use crate::setup;

#[derive(Parser)]
#[command(
    name = "outpost",
    version,
    about = "One program for self-hosted mail, calendars and Exchange access"
)]
pub struct Args {
    /// Config file. Without one, `serve` runs the demo and the other commands
    /// work on the demo's data directory (./outpost-data).
    #[arg(long, short = 'c', global = true, env = "OUTPOST_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run every configured service (with no config file: a local demo).
    Serve,
    /// Write a commented starter config, the data directory and a self-signed certificate.
    Init {
        /// Host name for greetings, headers and the certificate.
        #[arg(long, default_value = "localhost")]
        hostname: String,
        /// Data directory to create.
        #[arg(long, default_value = "/var/lib/outpost")]
        data_dir: PathBuf,
        /// Overwrite an existing config file.
        #[arg(long)]
        force: bool,
    },
    /// Validate the config and storage; say exactly what is wrong.
    Check,
    /// Hosted domains.
    Domain {
        #[command(subcommand)]
        action: DomainCmd,
    },
    /// Users (mailboxes with a login).
    User {
        #[command(subcommand)]
        action: UserCmd,
    },
    /// Extra addresses of a user or group.
    Alias {
        #[command(subcommand)]
        action: AliasCmd,
    },
    /// Distribution lists.
    Group {
        #[command(subcommand)]
        action: GroupCmd,
    },
    /// Ask the directory (built-in or LDAP) how something resolves.
    Directory {
        #[command(subcommand)]
        action: DirectoryCmd,
    },
    /// A user's ActiveSync devices: list them, wipe one, remove one (it
    /// must provision again).
    Devices {
        #[command(subcommand)]
        action: DevicesCmd,
    },
    /// A user's Sieve scripts (what ManageSieve clients edit).
    Sieve {
        #[command(subcommand)]
        action: SieveCmd,
    },
    /// A user's out-of-office (the Sieve vacation that ActiveSync, EWS,
    /// JMAP and the web UI show): print or set it.
    Oof {
        #[command(subcommand)]
        action: OofCmd,
    },
    /// A user's calendars: list them, import an .ics file, export one.
    Calendar {
        #[command(subcommand)]
        action: PimCmd,
    },
    /// A user's address books: list them, import a .vcf file, export one.
    Contacts {
        #[command(subcommand)]
        action: PimCmd,
    },
    /// Share a calendar or address book with another user or a group.
    Share {
        #[command(subcommand)]
        action: ShareCmd,
    },
    /// The outbound queue.
    Queue {
        #[command(subcommand)]
        action: QueueCmd,
    },
    /// DKIM signing keys.
    Dkim {
        #[command(subcommand)]
        action: DkimCmd,
    },
    /// Print the DNS records to publish for DOMAIN: MX, SPF, DKIM, DMARC,
    /// RFC 6186 SRV records, autoconfig/autodiscover names and the
    /// autodiscover and RFC 6764 CalDAV/CardDAV SRV records.
    Dns { domain: String },
    /// Deliver a message from standard input to local recipients (like
    /// Dovecot's LDA). Exit codes follow sysexits: 67 unknown user,
    /// 75 temporary failure.
    Deliver {
        /// Envelope sender, for Return-Path.
        #[arg(long, short = 'f', default_value = "")]
        from: String,
        #[arg(required = true)]
        recipients: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum PimCmd {
    /// The user's collections with their object counts.
    List { user: String },
    /// Import a file: one stored object per UID; an object whose UID is
    /// already there replaces it. Prints what was skipped and why.
    Import {
        user: String,
        file: PathBuf,
        /// Collection (URL name); default: "personal".
        #[arg(long, default_value = "personal")]
        to: String,
    },
    /// Export a collection to FILE, or to standard output.
    Export {
        user: String,
        file: Option<PathBuf>,
        #[arg(long, default_value = "personal")]
        from: String,
    },
}

#[derive(Subcommand)]
pub enum ShareCmd {
    /// Give GRANTEE (a user or group address) rights on OWNER's
    /// COLLECTION: `calendars/NAME`, `addressbooks/NAME`, or a NAME only
    /// one of the owner's calendars and address books has. Giving rights
    /// again replaces them.
    Add {
        owner: String,
        collection: String,
        grantee: String,
        /// read, read-write or free-busy.
        #[arg(long, default_value = "read")]
        rights: String,
    },
    /// OWNER's shared collections and who has which rights (or only
    /// COLLECTION's).
    List {
        owner: String,
        collection: Option<String>,
    },
    /// Take GRANTEE's rights on OWNER's COLLECTION away.
    Remove {
        owner: String,
        collection: String,
        grantee: String,
    },
}

#[derive(Subcommand)]
pub enum DirectoryCmd {
    /// How a login or address resolves: DN, primary and secondary
    /// addresses, groups, enabled, and where mail to it goes. Exit code 67
    /// when nothing has it, 75 when the directory cannot be reached.
    Lookup { query: String },
    /// Entries of the global address list whose name, given name, surname
    /// (or a word of them) or any address starts with PREFIX.
    Search {
        prefix: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print each entry as a vCard 4.0, as the GAL address book has it.
        #[arg(long)]
        vcard: bool,
    },
    /// The whole global address list: mail users and distribution groups
    /// (built-in and, with an LDAP source, the directory's).
    Gal {
        /// Print each entry as a vCard 4.0.
        #[arg(long)]
        vcard: bool,
    },
}

/// Directory attributes shown in the global address list. An empty value
/// clears one (`user set`).
#[derive(clap::Args, Default)]
pub struct ContactArgs {
    #[arg(long)]
    pub given_name: Option<String>,
    #[arg(long)]
    pub surname: Option<String>,
    /// Job title.
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub department: Option<String>,
    #[arg(long)]
    pub company: Option<String>,
    /// Office location (building, room).
    #[arg(long)]
    pub office: Option<String>,
    /// Work telephone number.
    #[arg(long)]
    pub phone: Option<String>,
    #[arg(long)]
    pub mobile: Option<String>,
}

impl ContactArgs {
    fn attrs(self) -> outpost_store::ContactAttrs {
        outpost_store::ContactAttrs {
            given_name: self.given_name,
            surname: self.surname,
            title: self.title,
            department: self.department,
            company: self.company,
            office: self.office,
            phone: self.phone,
            mobile: self.mobile,
        }
    }

    fn any(&self) -> bool {
        [
            &self.given_name,
            &self.surname,
            &self.title,
            &self.department,
            &self.company,
            &self.office,
            &self.phone,
            &self.mobile,
        ]
        .iter()
        .any(|v| v.is_some())
    }
}

#[derive(Subcommand)]
pub enum DevicesCmd {
    /// List a user's devices: id, type, provisioned or not, wipe state,
    /// last seen, user agent.
    List { user: String },
    /// Ask for a remote wipe: the device erases itself on its next request.
    Wipe { user: String, device: String },
    /// Forget a device: it must provision again.
    Remove { user: String, device: String },
}

#[derive(Subcommand)]
pub enum SieveCmd {
    /// List a user's scripts; the active one is marked.
    List { user: String },
    /// Print a script.
    Get { user: String, name: String },
    /// Store a script from FILE (or standard input with "-"); it must compile.
    /// A Dovecot/Pigeonhole `NAME.sieve` file can be given as it is.
    Put {
        user: String,
        name: String,
        file: PathBuf,
        /// Also make it the active script.
        #[arg(long)]
        activate: bool,
    },
    /// Make a script the active one ("" deactivates all).
    Activate { user: String, name: String },
    /// Remove a script (not the active one).
    Remove { user: String, name: String },
    /// Import a Dovecot/Pigeonhole tree: every `DIR/<user>/sieve/NAME.sieve`
    /// (or `DIR/<domain>/<user>/...`) is compiled and stored as NAME, and
    /// the one `<user>/.dovecot.sieve` links to is made active. A script
    /// that does not compile is reported as FILE:LINE and skipped; the
    /// others go on. Exits 1 if anything was skipped.
    Import {
        /// The old homes, e.g. /home/vmail.
        dir: PathBuf,
        /// Domain of user directories named by local part only.
        #[arg(long)]
        domain: Option<String>,
        /// Check and report only; store nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
pub enum OofCmd {
    /// Print the out-of-office settings as JSON.
    Get { user: String },
    /// Set the out-of-office; the texts not given are kept.
    Set {
        user: String,
        /// disabled, enabled, or scheduled (needs --start and --end).
        #[arg(long)]
        state: String,
        /// Start of a scheduled out-of-office, RFC 3339 (2026-12-24T00:00:00Z).
        #[arg(long)]
        start: Option<String>,
        /// End of a scheduled out-of-office (exclusive), RFC 3339.
        #[arg(long)]
        end: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        /// The reply to senders in hosted domains.
        #[arg(long)]
        message: Option<String>,
        /// The reply to external senders (default: the same as --message).
        #[arg(long)]
        external_message: Option<String>,
        /// Which external senders are answered: none, known or all.
        #[arg(long)]
        external_audience: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum QueueCmd {
    /// Queued messages with each recipient's state.
    List,
    /// Try message ID's pending recipients now.
    Retry { id: i64 },
    /// Drop message ID from the queue (no bounce is sent).
    Remove { id: i64 },
}

#[derive(Subcommand)]
pub enum DkimCmd {
    /// Make a signing key for DOMAIN in <data_dir>/dkim and print its DNS record.
    Generate {
        domain: String,
        /// Default: [dkim] selector.
        #[arg(long)]
        selector: Option<String>,
        /// rsa (2048 bits, understood everywhere) or ed25519 (RFC 8463).
        #[arg(long, default_value = "rsa")]
        algorithm: String,
    },
}

#[derive(Subcommand)]
pub enum DomainCmd {
    /// Host DOMAIN, and make its DKIM key (selector [dkim] selector, RSA
    /// 2048) unless it has one: mail from it is signed from the first
    /// message; `outpost dns DOMAIN` prints the record to publish.
    Add {
        domain: String,
    },
    List,
    Remove {
        domain: String,
    },
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user; the password comes from --password-stdin or a prompt.
    Add {
        address: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        contact: ContactArgs,
    },
    /// Change a user's display name or directory attributes (title,
    /// department, phones...); what is not given is kept.
    Set {
        address: String,
        #[arg(long)]
        name: Option<String>,
        /// What kind of calendar user it is (RFC 5545 CUTYPE): individual,
        /// room or resource. A room or resource answers invitations by
        /// itself (docs/scheduling.md).
        #[arg(long = "type", value_name = "TYPE")]
        calendar_user_type: Option<String>,
        #[command(flatten)]
        contact: ContactArgs,
    },
    List,
    Remove {
        address: String,
    },
    /// Set a user's password.
    Passwd {
        address: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum AliasCmd {
    /// Give the user or group that owns TARGET the extra address ALIAS.
    Add {
        alias: String,
        target: String,
    },
    List,
    Remove {
        alias: String,
    },
}

#[derive(Subcommand)]
pub enum GroupCmd {
    /// Create a group, or add members to an existing one.
    Add {
        group: String,
        #[arg(long, default_value = "")]
        name: String,
        /// A member address (a user, another group, or an outside address). Repeatable.
        #[arg(long = "member")]
        members: Vec<String>,
    },
    List,
    /// Remove a group, or only the given members from it.
    Remove {
        group: String,
        #[arg(long = "member")]
        members: Vec<String>,
    },
}

pub async fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Serve => crate::serve::serve(args.config).await,
        Command::Init {
            hostname,
            data_dir,
            force,
        } => {
            let path = args.config.unwrap_or_else(|| PathBuf::from("outpost.toml"));
            setup::init(&path, &hostname, &data_dir, force)
        }
        Command::Check => check(args.config).await,
        Command::Domain { action } => domain(args.config, action).await,
        Command::User { action } => user(args.config, action).await,
        Command::Alias { action } => alias(args.config, action).await,
        Command::Group { action } => group(args.config, action).await,
        Command::Queue {
            action: QueueCmd::List,
        } => queue_list(args.config).await,
        Command::Queue {
            action: QueueCmd::Retry { id },
        } => {
            let (_, dir) = open(args.config).await?;
            if !dir.store().queue_retry(id).await? {
                bail!("queue: no message {id} with pending recipients");
            }
            println!("queue: message {id} will be tried now");
            Ok(())
        }
        Command::Queue {
            action: QueueCmd::Remove { id },
        } => {
            let (_, dir) = open(args.config).await?;
            if !dir.store().queue_remove(id).await? {
                bail!("queue: no message {id}");
            }
            println!("queue: message {id} removed");
            Ok(())
        }
        Command::Dkim {
            action:
                DkimCmd::Generate {
                    domain,
                    selector,
                    algorithm,
                },
        } => crate::dkim::generate(&admin_config(args.config)?, &domain, selector, &algorithm),
        Command::Dns { domain } => crate::dkim::dns(&admin_config(args.config)?, &domain),
        Command::Deliver { from, recipients } => deliver(args.config, from, recipients).await,
        Command::Devices { action } => devices(args.config, action).await,
        Command::Sieve { action } => sieve(args.config, action).await,
        Command::Oof { action } => oof(args.config, action).await,
        Command::Calendar { action } => {
            pim(
                args.config,
                outpost_store::groupware::CollectionKind::Calendar,
                action,
            )
            .await
        }
        Command::Contacts { action } => {
            pim(
                args.config,
                outpost_store::groupware::CollectionKind::AddressBook,
                action,
            )
            .await
        }
        Command::Directory { action } => directory(args.config, action).await,
        Command::Share { action } => share(args.config, action).await,
    }
}

/// `calendars/NAME`, `addressbooks/NAME` (the DAV URL's segments; also
/// `calendar/`, `contacts/`), or a NAME only one of the owner's calendars
/// and address books has.
async fn find_collection(
    store: &outpost_store::Store,
    owner: i64,
    spec: &str,
) -> Result<outpost_store::groupware::GroupwareCollection> {
    use outpost_store::groupware::CollectionKind;
    let (kind, name) = match spec.split_once('/') {
        Some(("calendars" | "calendar", n)) => (Some(CollectionKind::Calendar), n),
        Some(("addressbooks" | "addressbook" | "contacts", n)) => {
            (Some(CollectionKind::AddressBook), n)
        }
        Some((k, _)) => {
            bail!("{spec:?}: {k:?} is not a kind; write calendars/NAME or addressbooks/NAME")
        }
        None => (None, spec),
    };
    let mut found = Vec::new();
    for k in [CollectionKind::Calendar, CollectionKind::AddressBook] {
        if kind.is_some_and(|want| want != k) {
            continue;
        }
        if let Some(c) = store.groupware_collection(owner, k, name).await? {
            found.push(c);
        }
    }
    match found.len() {
        0 => bail!("no calendar or address book {spec:?} (see outpost calendar list / contacts list)"),
        1 => Ok(found.remove(0)),
        _ => bail!("both a calendar and an address book are called {name:?}; write calendars/{name} or addressbooks/{name}"),
    }
}

fn collection_label(c: &outpost_store::groupware::GroupwareCollection) -> String {
    let k = match c.kind {
        outpost_store::groupware::CollectionKind::Calendar => "calendars",
        outpost_store::groupware::CollectionKind::AddressBook => "addressbooks",
    };
    format!("{k}/{}", c.name)
}

async fn share(path: Option<PathBuf>, action: ShareCmd) -> Result<()> {
    use outpost_store::groupware::Rights;
    let (_, dir) = open(path).await?;
    let store = dir.store().clone();
    let owner_of = |u: String| {
        let dir = &dir;
        async move {
            let p = dir.user(&u).await?;
            dir.store().ensure_default_groupware(p.id).await?;
            anyhow::Ok(p)
        }
    };
    // A user first, then a group (built-in or LDAP).
    let grantee_of = |g: String| {
        let dir = &dir;
        async move {
            match dir.user(&g).await {
                Ok(p) => return anyhow::Ok(p),
                Err(outpost_store::StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            match dir.group(&g).await {
                Ok(p) => anyhow::Ok(p),
                Err(outpost_store::StoreError::NotFound(_)) => {
                    bail!("{g}: no user or group has this address")
                }
                Err(e) => Err(e.into()),
            }
        }
    };
    // The primary address (an LDAP entry's from the directory), else the name.
    let name_of = |id: i64| {
        let dir = &dir;
        async move {
            let first = dir.addresses_of(id).await?.into_iter().next();
            Ok::<String, anyhow::Error>(match (first, dir.store().principal(id).await?) {
                (Some(a), _) => a,
                (None, Some(p)) => p.display_name,
                (None, None) => format!("principal {id}"),
            })
        }
    };
    match action {
        ShareCmd::Add {
            owner,
            collection,
            grantee,
            rights,
        } => {
            let r = Rights::parse(&rights).ok_or_else(|| {
                anyhow!("--rights {rights:?}: write read, read-write or free-busy")
            })?;
            let o = owner_of(owner.clone()).await?;
            let c = find_collection(&store, o.id, &collection).await?;
            let g = grantee_of(grantee.clone()).await?;
            if g.id == o.id {
                bail!("{grantee} owns {collection}; an owner needs no share");
            }
            store.grant(c.id, g.id, r).await?;
            println!(
                "{grantee} has {} on {} of {owner}",
                r.as_str(),
                collection_label(&c)
            );
        }
        ShareCmd::Remove {
            owner,
            collection,
            grantee,
        } => {
            let o = owner_of(owner.clone()).await?;
            let c = find_collection(&store, o.id, &collection).await?;
            let g = grantee_of(grantee.clone()).await?;
            if !store.revoke(c.id, g.id).await? {
                bail!(
                    "{grantee} has no share of {} of {owner}",
                    collection_label(&c)
                );
            }
            println!(
                "{grantee} no longer shares {} of {owner}",
                collection_label(&c)
            );
        }
        ShareCmd::List { owner, collection } => {
            let o = owner_of(owner).await?;
            let colls = match collection {
                Some(spec) => vec![find_collection(&store, o.id, &spec).await?],
                None => store.groupware_collections(o.id, None).await?,
            };
            for c in colls {
                for g in store.grants(c.id).await? {
                    println!(
                        "{}\t{}\t{}",
                        collection_label(&c),
                        name_of(g.grantee).await?,
                        g.rights.as_str()
                    );
                }
            }
        }
    }
    Ok(())
}

async fn directory(path: Option<PathBuf>, action: DirectoryCmd) -> Result<()> {
    let (_, dir) = open(path).await?;
    let temp = |e: outpost_store::StoreError| {
        if e.is_temporary() {
            exit_with(75, e.into())
        } else {
            e.into()
        }
    };
    match action {
        DirectoryCmd::Lookup { query } => {
            let Some(d) = dir.describe(&query).await.map_err(temp)? else {
                return Err(exit_with(
                    67,
                    anyhow!("{query}: no user, group or address has this name"),
                ));
            };
            let kind = match d.kind {
                PrincipalKind::User => "user",
                PrincipalKind::Group => "group",
            };
            let list = |v: &[String]| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.join(", ")
                }
            };
            println!("{query}: {} {kind}", d.source);
            if let Some(dn) = &d.dn {
                println!("  dn:        {dn}");
            }
            if let Some(id) = &d.external_id {
                println!("  id:        {id}");
            }
            if let Some(id) = d.principal_id {
                println!("  principal: {id}");
            }
            println!("  name:      {}", d.name);
            println!("  primary:   {}", d.primary.as_deref().unwrap_or("-"));
            println!("  secondary: {}", list(&d.secondary));
            if !d.logins.is_empty() {
                println!("  logins:    {}", list(&d.logins));
            }
            println!("  groups:    {}", list(&d.groups));
            if d.kind == PrincipalKind::Group {
                println!("  members:   {}", list(&d.members));
            }
            println!("  enabled:   {}", if d.enabled { "yes" } else { "no" });
            if query.contains('@') {
                match dir.resolve(&query).await.map_err(temp)? {
                    outpost_directory::Lookup::Local(res) => {
                        let mut to: Vec<String> =
                            res.users.into_iter().map(|u| u.address).collect();
                        to.extend(res.external);
                        println!("  mail to {query} goes to: {}", to.join(", "));
                    }
                    outpost_directory::Lookup::Unknown => {
                        println!("  mail to {query}: refused (no mailbox)")
                    }
                    outpost_directory::Lookup::NotLocal => {
                        println!("  mail to {query}: not a hosted domain (outpost domain add)")
                    }
                }
            }
        }
        DirectoryCmd::Search {
            prefix,
            limit,
            vcard,
        } => {
            let found = dir.search_gal(&prefix, limit).await.map_err(temp)?;
            print_gal(&found, vcard);
        }
        DirectoryCmd::Gal { vcard } => {
            let all = dir.gal_entries().await.map_err(temp)?;
            print_gal(&all, vcard);
        }
    }
    Ok(())
}

/// One line per entry (primary address, name, kind, source, title,
/// department), or the vCards.
fn print_gal(entries: &[outpost_directory::GalEntry], vcard: bool) {
    for e in entries {
        if vcard {
            print!("{}", outpost_directory::to_vcard(e));
            continue;
        }
        let kind = match e.kind {
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
        };
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        println!(
            "{}\t{}\t{kind}\t{}\t{}\t{}",
            e.primary(),
            e.display_name,
            e.source,
            opt(&e.attrs.title),
            opt(&e.attrs.department)
        );
    }
}

/// The config for administrative commands: the file, or the demo's.
fn admin_config(path: Option<PathBuf>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(&p)?),
        None => Ok(setup::demo_config()),
    }
}

async fn open(path: Option<PathBuf>) -> Result<(Config, Directory)> {
    let cfg = admin_config(path.clone())?;
    let store = setup::open_store(&cfg).await?;
    let dir = setup::directory(&cfg, store, path.as_deref())?;
    Ok((cfg, dir))
}

async fn check(path: Option<PathBuf>) -> Result<()> {
    let path =
        path.ok_or_else(|| anyhow!("check needs a config file: outpost check --config FILE"))?;
    let cfg = Config::load(&path)?;
    // No [tls]: serve generates a self-signed pair on its first start, so
    // a missing pair is not an error here either.
    let (cert, key, generated) = cfg.tls_paths();
    if generated && !(cert.exists() && key.exists()) {
        println!(
            "tls: no [tls] certificate configured and none generated yet; a self-signed pair will be generated in {} when serve starts",
            cert.parent().unwrap_or(&cert).display()
        );
    } else {
        setup::tls_acceptor(&cfg, false)?;
    }
    let store = setup::open_store(&cfg).await?;
    let domains = store.domains().await?;
    let users = store.principals(PrincipalKind::User).await?;
    if let Some(ldap) = setup::ldap_source(&cfg, Some(&path))? {
        ldap.probe().await.map_err(|e| anyhow!("directory: {e}"))?;
        println!(
            "directory: {} reachable; base {} readable",
            ldap.settings().url,
            ldap.settings().base_dn
        );
    }
    println!(
        "{}: config valid; storage {} reachable ({} domain(s), {} user(s)); {} listener(s)",
        path.display(),
        outpost_store::redact(&cfg.storage_url()),
        domains.len(),
        users.len(),
        cfg.listen.all().len()
    );
    Ok(())
}

async fn domain(path: Option<PathBuf>, action: DomainCmd) -> Result<()> {
    let (cfg, dir) = open(path).await?;
    let store = dir.store();
    match action {
        DomainCmd::Add { domain } => {
            let d = store.add_domain(&domain).await?;
            println!("added domain {}", d.name);
            // As mox and Stalwart do: signed from the first message.
            let sel = &cfg.dkim.selector;
            match outpost_mailflow::dkim::ensure_key(
                &outpost_mailflow::dkim::key_dir(&cfg),
                &d.name,
                sel,
                outpost_mailflow::dkim::Algorithm::Rsa,
            ) {
                Ok((key, true)) => println!(
                    "created DKIM key {} (selector {sel}); publish the records `outpost dns {}` prints",
                    key.display(),
                    d.name
                ),
                Ok((key, false)) => println!(
                    "DKIM key {} (selector {sel}) already exists; kept",
                    key.display()
                ),
                Err(e) => eprintln!(
                    "warning: no DKIM key for {}: {e}; mail from it goes out unsigned until `outpost dkim generate {}` succeeds",
                    d.name, d.name
                ),
            }
        }
        DomainCmd::List => {
            for d in store.domains().await? {
                match d.catchall {
                    Some(c) => println!("{}\tcatch-all: {c}", d.name),
                    None => println!("{}", d.name),
                }
            }
        }
        DomainCmd::Remove { domain } => {
            store.remove_domain(&domain).await?;
            println!("removed domain {domain}");
        }
    }
    Ok(())
}

async fn user(path: Option<PathBuf>, action: UserCmd) -> Result<()> {
    let (_, dir) = open(path).await?;
    match action {
        UserCmd::Add {
            address,
            name,
            password_stdin,
            contact,
        } => {
            // Checked before anything is created.
            let attrs = contact.attrs().normalized()?;
            let pw = read_password(password_stdin, &format!("Password for {address}: "))?;
            let p = dir.add_user(&address, &name, &pw).await?;
            if attrs != outpost_store::ContactAttrs::default() {
                dir.store().set_contact_attrs(p.id, attrs).await?;
            }
            println!(
                "added user {} with mailboxes INBOX, Sent, Drafts, Trash, Junk, Archive",
                p.address.unwrap_or_default()
            );
        }
        UserCmd::Set {
            address,
            name,
            calendar_user_type,
            contact,
        } => {
            if name.is_none() && !contact.any() && calendar_user_type.is_none() {
                bail!("nothing to change: give --name, --type, --title, --department, --company, --office, --phone, --mobile, --given-name or --surname");
            }
            let t = match calendar_user_type.as_deref().map(str::to_ascii_lowercase) {
                None => None,
                Some(t) => match outpost_store::groupware::CalendarUserType::parse(&t) {
                    c @ (outpost_store::groupware::CalendarUserType::Individual
                    | outpost_store::groupware::CalendarUserType::Room
                    | outpost_store::groupware::CalendarUserType::Resource) => Some(c),
                    _ => bail!("--type {t}: a user is individual, room or resource"),
                },
            };
            let p = dir.user(&address).await?;
            if name.is_some() || contact.any() {
                dir.update_contact(&address, name, contact.attrs()).await?;
            }
            if let Some(t) = t {
                dir.store().set_calendar_user_type(p.id, t).await?;
            }
            println!("updated {}", p.address.unwrap_or(address));
        }
        UserCmd::List => {
            for p in dir.store().principals(PrincipalKind::User).await? {
                if p.source != "internal" {
                    // Mailboxes of directory users: addresses live there.
                    println!(
                        "{}:{}\t{}\t(from the directory; outpost directory lookup for details)",
                        p.source,
                        p.external_id.unwrap_or_default(),
                        p.display_name
                    );
                    continue;
                }
                let addrs = dir.store().addresses_of(p.id).await?;
                let aliases: Vec<&str> = addrs
                    .iter()
                    .filter(|a| !a.1)
                    .map(|a| a.0.as_str())
                    .collect();
                println!(
                    "{}\t{}{}{}",
                    p.address.unwrap_or_default(),
                    p.display_name,
                    if aliases.is_empty() {
                        String::new()
                    } else {
                        format!("\taliases: {}", aliases.join(", "))
                    },
                    if p.disabled { "\t(disabled)" } else { "" }
                );
            }
        }
        UserCmd::Remove { address } => {
            let p = dir.user(&address).await?;
            dir.store().remove_principal(p.id).await?;
            println!(
                "removed user {} and its mail",
                p.address.unwrap_or_default()
            );
        }
        UserCmd::Passwd {
            address,
            password_stdin,
        } => {
            let pw = read_password(password_stdin, &format!("New password for {address}: "))?;
            dir.set_password(&address, &pw).await?;
            println!("password changed for {address}");
        }
    }
    Ok(())
}

async fn alias(path: Option<PathBuf>, action: AliasCmd) -> Result<()> {
    let (_, dir) = open(path).await?;
    match action {
        AliasCmd::Add { alias, target } => {
            dir.add_alias(&alias, &target).await?;
            println!("{alias} now reaches {target}");
        }
        AliasCmd::List => {
            for (a, t) in dir.store().aliases().await? {
                println!("{a}\t{t}");
            }
        }
        AliasCmd::Remove { alias } => {
            dir.store().remove_address(&alias).await?;
            println!("removed alias {alias}");
        }
    }
    Ok(())
}

async fn group(path: Option<PathBuf>, action: GroupCmd) -> Result<()> {
    let (_, dir) = open(path).await?;
    let store = dir.store();
    match action {
        GroupCmd::Add {
            group,
            name,
            members,
        } => {
            let g = match store.principal_by_address(&group).await? {
                Some(p) if p.kind == PrincipalKind::Group => p,
                Some(_) => bail!("{group} belongs to a user, not a group"),
                None => {
                    let g = dir.add_group(&group, &name).await?;
                    println!("added group {}", g.address.clone().unwrap_or_default());
                    g
                }
            };
            for m in members {
                let hosted = match outpost_store::domain_of(&m) {
                    Some(d) => store.domain(d).await?.is_some(),
                    None => bail!("{m:?} is not an address"),
                };
                if hosted && !dir.knows(&m).await? {
                    bail!("{m}: no user or group has this address (add it first, or use an outside address)");
                }
                store.add_member(g.id, &m).await?;
                println!("{m} is a member of {group}");
            }
        }
        GroupCmd::List => {
            for g in store.principals(PrincipalKind::Group).await? {
                let members = store.members(g.id).await?;
                println!(
                    "{}\t{}\tmembers: {}",
                    g.address.unwrap_or_default(),
                    g.display_name,
                    members.join(", ")
                );
            }
        }
        GroupCmd::Remove { group, members } => {
            let g = dir.group(&group).await?;
            if g.source == outpost_directory::LDAP_SOURCE {
                bail!("{group} is a group of the LDAP directory; change it there");
            }
            if members.is_empty() {
                store.remove_principal(g.id).await?;
                println!("removed group {group}");
            } else {
                for m in members {
                    store.remove_member(g.id, &m).await?;
                    println!("{m} removed from {group}");
                }
            }
        }
    }
    Ok(())
}

fn read_password(from_stdin: bool, prompt: &str) -> Result<String> {
    let pw = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let pw = rpassword::prompt_password(prompt).context("reading the password")?;
        let again = rpassword::prompt_password("Again: ").context("reading the password")?;
        if pw != again {
            bail!("the two passwords differ; nothing was changed");
        }
        pw
    };
    if pw.is_empty() {
        bail!("empty password; give one on standard input with --password-stdin");
    }
    Ok(pw)
}

async fn deliver(path: Option<PathBuf>, from: String, recipients: Vec<String>) -> Result<()> {
    use outpost_directory::Lookup;
    use std::io::Read;
    let (cfg, dir) = open(path).await.map_err(|e| exit_with(75, e))?;
    let flow =
        outpost_mailflow::MailFlow::from_config(&cfg, dir.clone()).map_err(|e| exit_with(78, e))?;
    let mut message = Vec::new();
    std::io::stdin()
        .take(cfg.limits.message_size + 1)
        .read_to_end(&mut message)?;
    if message.len() as u64 > cfg.limits.message_size {
        return Err(exit_with(
            73,
            anyhow!(
                "message larger than limits.message_size ({})",
                cfg.limits.message_size
            ),
        ));
    }
    let mut users = Vec::new();
    for r in &recipients {
        match dir.resolve(r).await.map_err(|e| exit_with(75, e.into()))? {
            Lookup::Local(res) => {
                for u in res.users {
                    if !users
                        .iter()
                        .any(|x: &outpost_directory::Recipient| x.principal_id == u.principal_id)
                    {
                        users.push(u);
                    }
                }
            }
            Lookup::Unknown | Lookup::NotLocal => {
                return Err(exit_with(67, anyhow!("{r}: no such local recipient")))
            }
        }
    }
    flow.deliver_local(&from, &users, &message)
        .await
        .map_err(|e| exit_with(75, anyhow!("delivery failed: {e}")))?;
    Ok(())
}

/// An error that makes the process exit with a particular code.
#[derive(Debug)]
pub struct ExitWith(pub u8, pub anyhow::Error);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.1)
    }
}

impl std::error::Error for ExitWith {}

fn exit_with(code: u8, e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(ExitWith(code, e))
}

async fn queue_list(path: Option<PathBuf>) -> Result<()> {
    let (_, dir) = open(path).await?;
    let entries = dir.store().queue_list().await?;
    if entries.is_empty() {
        println!("queue is empty");
    }
    for e in entries {
        let from = if e.mail_from.is_empty() {
            "<>"
        } else {
            e.mail_from.as_str()
        };
        println!(
            "{}	{} bytes	from {from}	queued at {}",
            e.id, e.size, e.created_at
        );
        for (addr, status, attempts, err) in e.recipients {
            println!(
                "	{addr}	{status}	{attempts} attempt(s){}",
                err.map(|e| format!("\t{e}")).unwrap_or_default()
            );
        }
    }
    Ok(())
}

async fn oof(path: Option<PathBuf>, action: OofCmd) -> Result<()> {
    use outpost_mailflow::{Audience, OofState};
    let (cfg, dir) = open(path).await?;
    let flow = outpost_mailflow::MailFlow::from_config(&cfg, dir.clone())?;
    let time = |v: Option<String>| -> Result<Option<i64>> {
        v.map(|t| {
            chrono::DateTime::parse_from_rfc3339(&t)
                .map(|d| d.timestamp())
                .with_context(|| format!("{t:?} is not an RFC 3339 time (2026-12-24T00:00:00Z)"))
        })
        .transpose()
    };
    match action {
        OofCmd::Get { user } => {
            let p = dir.user(&user).await?;
            let o = flow.out_of_office(p.id).await?;
            println!("{}", serde_json::to_string_pretty(&o)?);
        }
        OofCmd::Set {
            user,
            state,
            start,
            end,
            subject,
            message,
            external_message,
            external_audience,
        } => {
            let p = dir.user(&user).await?;
            let mut o = flow.out_of_office(p.id).await?;
            o.state = match state.as_str() {
                "disabled" => OofState::Disabled,
                "enabled" => OofState::Enabled,
                "scheduled" => OofState::Scheduled,
                other => bail!("--state {other:?}: disabled, enabled or scheduled"),
            };
            if let Some(t) = time(start)? {
                o.start = Some(t);
            }
            if let Some(t) = time(end)? {
                o.end = Some(t);
            }
            if subject.is_some() {
                o.subject = subject;
            }
            if let Some(m) = message {
                o.internal_reply = m;
            }
            if external_message.is_some() {
                o.external_reply = external_message;
            }
            if let Some(a) = external_audience {
                o.external_audience = match a.as_str() {
                    "none" => Audience::None,
                    "known" => Audience::Known,
                    "all" => Audience::All,
                    other => bail!("--external-audience {other:?}: none, known or all"),
                };
            }
            flow.set_out_of_office(p.id, &o).await?;
            println!("out-of-office of {user}: {state}");
        }
    }
    Ok(())
}

async fn devices(path: Option<PathBuf>, action: DevicesCmd) -> Result<()> {
    let (_cfg, dir) = open(path).await?;
    let store = dir.store();
    match action {
        DevicesCmd::List { user } => {
            let p = dir.user(&user).await?;
            for d in store.eas_devices(p.id).await? {
                let state = match (d.wipe_requested, d.wipe_acknowledged) {
                    (Some(_), Some(_)) => "wiped",
                    (Some(_), None) => "wipe-pending",
                    _ if d.policy_key.is_some() => "provisioned",
                    _ => "unprovisioned",
                };
                println!(
                    "{}\t{}\t{}\tlast-seen={}\t{}",
                    d.device_id,
                    d.device_type,
                    state,
                    d.last_seen,
                    d.user_agent.unwrap_or_default()
                );
            }
        }
        DevicesCmd::Wipe { user, device } => {
            let p = dir.user(&user).await?;
            if !store.eas_request_wipe(p.id, &device).await? {
                bail!("{user} has no device {device:?}");
            }
            println!("device {device:?} of {user} will be wiped on its next request");
        }
        DevicesCmd::Remove { user, device } => {
            let p = dir.user(&user).await?;
            if !store.eas_remove_device(p.id, &device).await? {
                bail!("{user} has no device {device:?}");
            }
            println!("removed device {device:?} of {user}; it must provision again");
        }
    }
    Ok(())
}

async fn sieve(path: Option<PathBuf>, action: SieveCmd) -> Result<()> {
    let (cfg, dir) = open(path).await?;
    let store = dir.store();
    match action {
        SieveCmd::List { user } => {
            let p = dir.user(&user).await?;
            for s in store.sieve_list(p.id).await? {
                println!("{}{}", s.name, if s.active { "\t(active)" } else { "" });
            }
        }
        SieveCmd::Get { user, name } => {
            let p = dir.user(&user).await?;
            match store.sieve_get(p.id, &name).await? {
                Some(s) => print!("{}", s.content),
                None => bail!("{user} has no script named {name:?}"),
            }
        }
        SieveCmd::Put {
            user,
            name,
            file,
            activate,
        } => {
            let p = dir.user(&user).await?;
            let content = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let engine = outpost_mailflow::sieve_engine(&cfg)?;
            if let Err(e) = engine.compile(&content) {
                bail!("{}: {e}; nothing was stored", file.display());
            }
            store.sieve_put(p.id, &name, &content).await?;
            if activate {
                store.sieve_set_active(p.id, Some(&name)).await?;
            }
            println!(
                "stored script {name:?} for {user}{}",
                if activate { " (active)" } else { "" }
            );
        }
        SieveCmd::Activate { user, name } => {
            let p = dir.user(&user).await?;
            let target = (!name.is_empty()).then_some(name.as_str());
            store.sieve_set_active(p.id, target).await?;
            match target {
                Some(n) => println!("{n:?} is now the active script of {user}"),
                None => println!("{user} has no active script now"),
            }
        }
        SieveCmd::Remove { user, name } => {
            let p = dir.user(&user).await?;
            store.sieve_delete(p.id, &name).await?;
            println!("removed script {name:?} of {user}");
        }
        SieveCmd::Import {
            dir: root,
            domain,
            dry_run,
        } => {
            let sum =
                crate::sieve_import::import(&cfg, &dir, &root, domain.as_deref(), dry_run).await?;
            println!(
                "{}{} script(s) imported for {} user(s), {} activated, {} skipped",
                if dry_run { "dry run: " } else { "" },
                sum.scripts,
                sum.users,
                sum.activated,
                sum.failed
            );
            if sum.failed > 0 {
                return Err(exit_with(
                    1,
                    anyhow!("{} script(s) or user(s) skipped; see above", sum.failed),
                ));
            }
        }
    }
    Ok(())
}

/// A resource name for a UID: the UID itself when it is a safe URL
/// segment, else a hash of it.
fn resource_name(uid: &str, ext: &str) -> String {
    let safe = !uid.is_empty()
        && uid.len() <= 200
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+".contains(c))
        && !uid.starts_with('.');
    if safe {
        format!("{uid}.{ext}")
    } else {
        format!(
            "{}.{ext}",
            &outpost_store::BlobStore::hash(uid.as_bytes())[..32]
        )
    }
}

async fn pim(
    path: Option<PathBuf>,
    kind: outpost_store::groupware::CollectionKind,
    action: PimCmd,
) -> Result<()> {
    use outpost_store::groupware::{CollectionKind, Precondition, PutOutcome};
    use outpost_store::pim::Piece;
    let (_, dir) = open(path).await?;
    let store = dir.store().clone();
    let user_of = |u: String| {
        let dir = &dir;
        async move {
            let p = dir.user(&u).await?;
            dir.store().ensure_default_groupware(p.id).await?;
            anyhow::Ok(p)
        }
    };
    let (noun, ext) = match kind {
        CollectionKind::Calendar => ("calendar", "ics"),
        CollectionKind::AddressBook => ("address book", "vcf"),
    };
    match action {
        PimCmd::List { user } => {
            let p = user_of(user).await?;
            for c in store.groupware_collections(p.id, Some(kind)).await? {
                let n = store.groupware_objects(c.id).await?.len();
                let comps = c
                    .components
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(",");
                println!("{}\t{}\t{} object(s)\t{}", c.name, c.display_name, n, comps);
            }
            for sh in dir.shared_with(p.id).await? {
                if sh.collection.kind == kind {
                    println!(
                        "{}\t{}\tshared ({})",
                        sh.collection.name,
                        sh.collection.display_name,
                        sh.rights.as_str()
                    );
                }
            }
        }
        PimCmd::Import { user, file, to } => {
            let p = user_of(user.clone()).await?;
            let coll = store
                .groupware_collection(p.id, kind, &to)
                .await?
                .ok_or_else(|| anyhow!("{user} has no {noun} {to:?}"))?;
            let raw =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let text = String::from_utf8(raw)
                .map_err(|_| anyhow!("{}: not UTF-8 text", file.display()))?;
            let pieces = match kind {
                CollectionKind::Calendar => outpost_store::pim::split_icalendar(&text),
                CollectionKind::AddressBook => outpost_store::pim::split_vcards(&text),
            };
            let existing = store.groupware_objects(coll.id).await?;
            let (mut stored, mut skipped) = (0usize, 0usize);
            for piece in pieces {
                let (uid, body) = match piece {
                    Piece::Object { uid, text } => (uid, text),
                    Piece::Skipped(why) => {
                        skipped += 1;
                        println!("skipped: {why}");
                        continue;
                    }
                };
                let name = existing
                    .iter()
                    .find(|o| o.uid == uid)
                    .map(|o| o.name.clone())
                    .unwrap_or_else(|| resource_name(&uid, ext));
                let data: std::sync::Arc<[u8]> = body.into_bytes().into();
                let out = match kind {
                    CollectionKind::Calendar => {
                        store
                            .put_icalendar(coll.id, &name, data, Precondition::None)
                            .await?
                    }
                    CollectionKind::AddressBook => {
                        store
                            .put_vcard(coll.id, &name, data, Precondition::None)
                            .await?
                    }
                };
                match out {
                    PutOutcome::Created(_) | PutOutcome::Replaced(_) => stored += 1,
                    PutOutcome::Invalid(e) => {
                        skipped += 1;
                        println!("skipped {uid}: {e}");
                    }
                    PutOutcome::NotAllowed(why) => {
                        skipped += 1;
                        println!("skipped {uid}: {why}");
                    }
                    PutOutcome::UidConflict { existing } => {
                        skipped += 1;
                        println!("skipped {uid}: UID already stored as {existing}");
                    }
                    PutOutcome::PreconditionFailed => {
                        skipped += 1;
                        println!("skipped {uid}: changed while importing");
                    }
                }
            }
            println!("imported {stored} object(s) into {noun} {to} of {user}; skipped {skipped}");
        }
        PimCmd::Export { user, file, from } => {
            let p = user_of(user.clone()).await?;
            let coll = store
                .groupware_collection(p.id, kind, &from)
                .await?
                .ok_or_else(|| anyhow!("{user} has no {noun} {from:?}"))?;
            let names: Vec<String> = store
                .groupware_objects(coll.id)
                .await?
                .into_iter()
                .map(|o| o.name)
                .collect();
            let objects = store.groupware_objects_by_names(coll.id, &names).await?;
            let texts: Vec<String> = objects
                .iter()
                .map(|o| String::from_utf8_lossy(&o.data).into_owned())
                .collect();
            let out = match kind {
                CollectionKind::Calendar => {
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    let (joined, bad) = outpost_store::pim::join_icalendar(&refs);
                    if bad > 0 {
                        eprintln!("{bad} stored object(s) could not be read and were left out");
                    }
                    joined
                }
                CollectionKind::AddressBook => texts.concat(),
            };
            match file {
                Some(f) => {
                    std::fs::write(&f, out).with_context(|| format!("writing {}", f.display()))?;
                    eprintln!("exported {} object(s) to {}", objects.len(), f.display());
                }
                None => print!("{out}"),
            }
        }
    }
    Ok(())
}
