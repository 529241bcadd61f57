//! contact-auth-admin: local/dev administration against the table in `TABLE_NAME`
//! (DynamoDB Local through `AWS_ENDPOINT_URL_DYNAMODB`, or a real table). `--help` lists
//! the commands; each has its own `--help`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use contact_auth::adapters::dynamo::DynamoStore;
use contact_auth::adapters::ses::SesMailer;
use contact_auth::app::App;
use contact_auth::config::Config;
use contact_auth::domain::branding::{validate_accent, validate_logo_url, validate_name};
use contact_auth::domain::email::parse_email;
use contact_auth::domain::i18n::{validate_override, Locale};
use contact_auth::domain::ids::{ContactId, HubId, TeamId};
use contact_auth::domain::jwt::{KeySet, SigningKeys, TokenAlg};
use contact_auth::domain::model::{Hub, Team};
use contact_auth::domain::redirect::normalize_origin;
use contact_auth::ports::{Contacts, Directory, Suppressions};
use contact_auth::runtime::KeysDep;
use testkit::app::TestApp;
use testkit::verdict::{check_event, check_http, check_mail, Expected, MailObserved, Observed};
use testkit::{fixtures, poll, schema, seed};

mod keys;

type Res<T> = Result<T, String>;

/// The algorithm asked for: `--alg`, else ACCESS_TOKEN_ALG, else none.
fn requested_alg(flag: Option<String>) -> Res<Option<TokenAlg>> {
    flag.or_else(|| {
        std::env::var("ACCESS_TOKEN_ALG")
            .ok()
            .filter(|v| !v.is_empty())
    })
    .map(|name| {
        TokenAlg::parse(&name)
            .ok_or_else(|| format!("unknown algorithm {name}: RS256, ES256 or EdDSA"))
    })
    .transpose()
}

#[derive(Parser)]
#[command(
    name = "contact-auth-admin",
    about = "contact-auth: local and operator administration of the table in TABLE_NAME"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table as template.yaml's ContactTable describes it.
    CreateTable {
        #[arg(long, default_value = "template.yaml")]
        template: String,
        /// Succeed when the table exists already.
        #[arg(long)]
        if_missing: bool,
    },
    /// The demo data: team_abc123 with hubs member-academy and my-hub.
    SeedDemo,
    /// Create or replace a team.
    Team {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        primary_hub: Option<String>,
    },
    /// A team's auth events: a webhook URL (signed per Standard Webhooks; a new secret is
    /// made and printed once, unless --secret), whether deliveries carry the email
    /// address, or --remove. Every event also goes to the stack's EventBridge bus.
    Events {
        #[arg(long)]
        team: String,
        /// https only (a local stack with EVENTS_WEBHOOK_DEV=1 also takes http to loopback).
        #[arg(long)]
        webhook_url: Option<String>,
        /// A `whsec_<base64>` secret to keep (default: a new random one).
        #[arg(long)]
        secret: Option<String>,
        #[arg(long)]
        include_email: bool,
        #[arg(long)]
        remove: bool,
    },
    /// Create or replace a hub (its slug must be free or already this hub's).
    Hub {
        #[arg(long)]
        id: String,
        #[arg(long)]
        slug: String,
        #[arg(long)]
        team: String,
        #[arg(long)]
        title: String,
        /// Allowed redirect origins, comma-separated.
        #[arg(long, default_value = "")]
        origins: String,
        #[arg(long, value_parser = ["on", "off"], default_value = "on")]
        registration: String,
    },
    /// A team's own sender address for its mail (a verified SES identity; used only when it
    /// matches one of the deployment's TeamSenderAddresses patterns), or --address "" to
    /// go back to the deployment's sender.
    Sender {
        #[arg(long)]
        team: String,
        #[arg(long)]
        address: String,
    },
    /// A hub's branding: what its mail and hosted page show. Each option replaces one
    /// value; "" clears it. --text LOCALE:KEY=TEXT overrides one fixed text (keys and
    /// their {placeholders}: shared/i18n/en.json); --clear-text LOCALE:KEY removes one.
    Branding(BrandingArgs),
    /// Replace a hub's allowed redirect origins.
    Origins {
        #[arg(long)]
        slug: String,
        /// ORIGIN[,ORIGIN...]
        #[arg(long)]
        set: String,
    },
    /// Replace a hub's trusted egress networks (an office NAT a whole membership signs in
    /// from): requests from them skip every per-IP limit; per-email limits still hold.
    /// Functions pick a change up within their hub cache (60 s). Empty --set clears it.
    TrustedNetworks {
        #[arg(long)]
        slug: String,
        /// CIDR[,CIDR...]: IPv4 at most /16 wide, IPv6 at most /48
        #[arg(long, default_value = "")]
        set: String,
    },
    /// Send parked mail jobs (SES stopped the account's sending: daily quota, paused,
    /// suspended) and stuck ones (older than --stuck-after) through the mailer again, once
    /// SES sends again; sign-in jobs older than the link lifetime are deleted instead
    /// (README "Operating it": the runbook).
    Redrive {
        /// Seconds after which a job that is not parked counts as stuck: the stream
        /// mapping's record age (6 h), after which its record is skipped; a younger job may
        /// still be on its way through the mailer, and a copy would mail it twice.
        #[arg(long, default_value_t = 21_600)]
        stuck_after: i64,
        /// Count only; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Sign up COUNT members of the demo hub member-academy (<PREFIX>-<i>@example.com)
    /// through the real sign-in path (the load scenario's crowd; not for production).
    SeedMembers {
        #[arg(long)]
        count: usize,
        #[arg(long, default_value = "load")]
        prefix: String,
    },
    /// Ban a member: every session in the team ends for good (an unban does not revive it).
    Ban {
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
    },
    /// Show whether SES reported an address undeliverable (a permanent bounce or a
    /// complaint: the mailer sends it nothing); with --lift, lift that (a member who fixed
    /// their mailbox and has no password to log in with). README "Bounces and complaints".
    Suppression {
        #[arg(long)]
        email: String,
        #[arg(long)]
        lift: bool,
    },
    /// Make a banned member active again.
    Unban {
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
    },
    /// Write a local signing secret document to PATH if it is missing (keys of
    /// ACCESS_TOKEN_ALG, RS256 by default).
    DevKey {
        #[arg(long)]
        out: String,
    },
    /// Rotate the signing key: previous <- current, current <- next (published since the
    /// last rotation), next <- a new key of --alg. Prints the kids and what to do next.
    RotateKey {
        /// The Secrets Manager secret (the stack's SigningKeySecretArn output).
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        secret_id: Option<String>,
        /// A local document instead (make dev: .dev/signing-key.json).
        #[arg(long)]
        file: Option<String>,
        /// The algorithm of the new key (default: ACCESS_TOKEN_ALG; else the document's
        /// next key's, i.e. the deployment's; else RS256).
        #[arg(long)]
        alg: Option<String>,
        /// Rotate even within two hours of the last rotation.
        #[arg(long)]
        force: bool,
        /// A leaked key: replace current and next with new keys and publish no previous
        /// one, so every token signed before stops verifying (within the reread bound).
        #[arg(long, conflicts_with = "force")]
        revoke: bool,
    },
    /// A fresh table, seeded, with the setup of F.expected.json done; the event with its
    /// placeholders filled in goes to PATH (make invoke).
    Fixture {
        #[arg(long)]
        event: String,
        #[arg(long)]
        out: String,
        #[arg(long, default_value = "template.yaml")]
        template: String,
        /// Append every secret the setup used to this file (secrets-in-logs check).
        #[arg(long)]
        secrets: Option<String>,
    },
    /// Compare a function's answer (the JSON `cargo lambda invoke` printed) with an
    /// expected file; for the mailer, with the new mails (a JSON array from the SES sink).
    Verdict {
        #[arg(long)]
        expected: String,
        #[arg(long)]
        response: String,
        #[arg(long)]
        mails: Option<String>,
        /// The response is an event function's result (ses-events), not an HTTP answer.
        #[arg(long)]
        event: bool,
    },
    /// The local mailer: follow the table's stream and send each new job's mail (the
    /// deployed mailer is triggered by the stream instead).
    DevMailer,
    /// The local events function: follows the table's stream and delivers each auth event
    /// (EventBridge at AWS_ENDPOINT_URL_EVENTBRIDGE, and the team's webhook).
    DevEvents,
    /// Print an item key (`{"pk":{"S":…},"sk":{"S":…}}`) from the one key module
    /// (`adapters::dynamo::keys`), for tests and tools that read the table directly.
    Key {
        #[command(subcommand)]
        kind: KeyKind,
    },
    /// Build the product's common-password set (an FST) from a JSON array of strings,
    /// e.g. the `passwords` crate's data/common-passwords.json.
    PasswordList {
        #[arg(long)]
        from: String,
        #[arg(long, default_value = "shared/data/common-passwords.fst")]
        out: String,
    },
}

#[derive(Subcommand)]
enum KeyKind {
    /// A mail job.
    Job {
        #[arg(long)]
        id: String,
    },
    /// A magic link, by its raw token (hashed here).
    Magic {
        #[arg(long)]
        token: String,
    },
    /// A refresh token's record, by the raw token (hashed here).
    Refresh {
        #[arg(long)]
        token: String,
    },
    /// The email index entry of an address (its identity key).
    Email {
        #[arg(long)]
        email: String,
    },
    /// A refresh-token family's revocation item.
    Family {
        #[arg(long)]
        id: String,
    },
    /// A contact's profile.
    Profile {
        #[arg(long)]
        contact: String,
    },
    /// A contact's membership in a team.
    Membership {
        #[arg(long)]
        contact: String,
        #[arg(long)]
        team: String,
    },
    /// The failed-login counter of a team and email in the current 15-minute window.
    LoginFailures {
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
    },
    /// An outbox auth event.
    Event {
        #[arg(long)]
        id: String,
    },
    /// A team's auth-event settings (webhook, email opt-in).
    EventSettings {
        #[arg(long)]
        team: String,
    },
    /// The key prefixes tests filter on: {"job": "JOB#", "rate": "RATE#", ...}.
    Prefixes,
}

fn print_key((pk, sk): (String, String)) -> Res<()> {
    println!("{}", serde_json::json!({"pk": {"S": pk}, "sk": {"S": sk}}));
    Ok(())
}

fn key(kind: KeyKind) -> Res<()> {
    use contact_auth::adapters::dynamo::keys;
    use contact_auth::domain::rate::{email_scope, login_failures};
    use contact_auth::domain::secret::RawToken;
    let token = |t: &str| RawToken::parse(t).ok_or("not a token".to_string());
    match kind {
        KeyKind::Job { id } => print_key(keys::job(&id)),
        KeyKind::Magic { token: t } => print_key(keys::magic(&token(&t)?.hash())),
        KeyKind::Refresh { token: t } => print_key(keys::refresh(&token(&t)?.hash())),
        KeyKind::Email { email } => {
            let email = parse_email(&email).map_err(|e| e.detail().to_string())?;
            print_key(keys::email(&email.key))
        }
        KeyKind::Family { id } => print_key(keys::family(&id)),
        KeyKind::Event { id } => print_key(keys::event(&id)),
        KeyKind::EventSettings { team } => {
            print_key(keys::event_settings(&TeamId::from_stored(team)))
        }
        KeyKind::Profile { contact } => print_key(keys::profile(&ContactId::from_stored(contact))),
        KeyKind::Membership { contact, team } => print_key(keys::membership(
            &ContactId::from_stored(contact),
            &TeamId::from_stored(team),
        )),
        KeyKind::LoginFailures { team, email } => {
            let email = parse_email(&email).map_err(|e| e.detail().to_string())?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let counter = login_failures(&email_scope(&team, &email.key), now);
            print_key(keys::rate(&counter.key))
        }
        KeyKind::Prefixes => {
            let prefix =
                |k: (String, String)| k.0.split('#').next().unwrap_or("").to_string() + "#";
            println!(
                "{}",
                serde_json::json!({
                    "job": keys::JOB_PREFIX,
                    "rate": prefix(keys::rate("x")),
                    "refresh": prefix(keys::refresh(&contact_auth::domain::secret::TokenHash::from_stored("x".into()))),
                    "magic": prefix(keys::magic(&contact_auth::domain::secret::TokenHash::from_stored("x".into()))),
                    "contact": prefix(keys::profile(&ContactId::from_stored("x"))),
                    "membership_sk": keys::MEMBERSHIP_PREFIX,
                })
            );
            Ok(())
        }
    }
}

fn table_name() -> Res<String> {
    std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set".to_string())
}

fn read(path: &str) -> Res<String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

async fn create_table(store: &DynamoStore, template: &str, if_missing: bool) -> Res<()> {
    let text = read(template)?;
    if schema::create_table(store.client(), store.table(), &text, if_missing).await? {
        println!("table {} created from {template}", store.table());
    } else {
        println!("table {} exists", store.table());
    }
    Ok(())
}

fn origins(raw: &str) -> Res<Vec<String>> {
    raw.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|o| normalize_origin(o.trim()).ok_or(format!("not an origin: {o}")))
        .collect()
}

async fn hub_with_slug(store: &DynamoStore, slug: &str) -> Res<Hub> {
    store
        .hub_by_slug(slug)
        .await
        .map_err(|e| e.to_string())?
        .ok_or(format!("no hub with slug {slug}"))
}

async fn put_hub(store: &DynamoStore, hub: Hub) -> Res<()> {
    if !store.put_hub(&hub).await.map_err(|e| e.to_string())? {
        return Err(format!("slug {} belongs to another hub", hub.slug));
    }
    println!("hub {} ({}) saved", hub.slug, hub.hub_id);
    Ok(())
}

async fn seed_demo(store: &DynamoStore) -> Res<()> {
    seed::seed_demo(store).await.map_err(|e| e.to_string())?;
    println!("seeded team_abc123 with hubs member-academy and my-hub");
    Ok(())
}

/// `ban` / `unban`: the member is found by the email's identity key.
async fn ban(store: &DynamoStore, team: &str, email: &str, banned: bool) -> Res<()> {
    let email = parse_email(email).map_err(|e| e.detail().to_string())?;
    let contact = store
        .contact_id_by_email(&email.key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no contact with this email")?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if !store
        .set_banned(&contact, &TeamId::from_stored(team), banned, now)
        .await
        .map_err(|e| e.to_string())?
    {
        return Err(format!("contact {contact} is not a member of team {team}"));
    }
    let what = if banned {
        "banned (sessions in the team ended)"
    } else {
        "unbanned"
    };
    println!("contact {contact} {what} in team {team}");
    Ok(())
}

async fn suppression(store: &DynamoStore, email: &str, lift: bool) -> Res<()> {
    let email = parse_email(email).map_err(|e| e.detail().to_string())?;
    let err = |e: contact_auth::errors::PortError| e.to_string();
    let suppressed = store.suppressed(&email.key).await.map_err(err)?;
    let contact = store.contact_id_by_email(&email.key).await.map_err(err)?;
    let whose = match &contact {
        Some(c) => format!("contact {c}"),
        None => "no contact".to_string(),
    };
    match (suppressed, lift) {
        (None, _) => println!("not suppressed ({whose})"),
        (Some(reason), false) => println!(
            "suppressed after a {}: {} ({whose}); --lift to lift",
            reason.as_str(),
            match reason {
                contact_auth::domain::suppression::Reason::Bounce => "no mail goes to it",
                contact_auth::domain::suppression::Reason::Complaint =>
                    "only security notices go to it",
            }
        ),
        (Some(_), true) => {
            store
                .lift_suppression(&email.key, contact.as_ref())
                .await
                .map_err(err)?;
            println!("suppression lifted ({whose})");
        }
    }
    Ok(())
}

/// Prepares one `events/` fixture for `make invoke` (tools/invoke.mjs): the table in
/// TABLE_NAME is created and seeded, the `setup` steps of the expected file run through
/// the real handlers (`testkit::fixtures`, as in the replay tests), and the event is
/// written out with its placeholders filled in.
async fn fixture(
    store: DynamoStore,
    event_path: &str,
    out: &str,
    template: &str,
    secrets: Option<&str>,
) -> Res<()> {
    let expected_path = event_path
        .strip_suffix(".json")
        .map(|stem| format!("{stem}.expected.json"))
        .ok_or("--event must name a .json file")?;
    let expected = Expected::parse(&read(&expected_path)?)?;
    let event = read(event_path)?;
    create_table(&store, template, false).await?;
    seed_demo(&store).await?;
    let keys = std::env::var("SIGNING_KEY_FILE")
        .map_err(|_| "SIGNING_KEY_FILE is not set".to_string())
        .and_then(|p| read(&p))?;
    SigningKeys::from_json(&keys)?; // TestApp signs with it: refuse a bad document here
    let config = Config::from_env()?;
    let app = TestApp::new(config, store, &keys).shifted(-expected.clock_offset);
    let steps = fixtures::parse_steps(&expected.setup)?;
    let prepared = fixtures::setup(&app, &steps).await?;
    std::fs::write(out, prepared.resolve(&event)).map_err(|e| format!("{out}: {e}"))?;
    if let Some(path) = secrets {
        let mut lines = prepared.secrets.join("\n");
        lines.push('\n');
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, lines.as_bytes()))
            .map_err(|e| format!("{path}: {e}"))?;
    }
    println!(
        "fixture {event_path} prepared in table {}",
        app.config.table_name
    );
    Ok(())
}

fn verdict(expected: &str, response: &str, mails: Option<&str>, event: bool) -> Res<()> {
    let exp = Expected::parse(&read(expected)?)?;
    let out: serde_json::Value =
        serde_json::from_str(&read(response)?).map_err(|e| format!("{response}: {e}"))?;
    let problems = match mails {
        Some(m) => {
            let new_mails: Vec<serde_json::Value> =
                serde_json::from_str(&read(m)?).map_err(|e| format!("{m}: {e}"))?;
            let failures = out["batchItemFailures"].as_array().map_or(0, Vec::len);
            check_mail(
                &exp,
                &MailObserved {
                    batch_item_failures: failures,
                    new_mails,
                    mails_to_anyone: None,
                },
            )
        }
        None if event => check_event(&exp, &out),
        None => check_http(&exp, &Observed::from_lambda_json(&out)?),
    };
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("differs from {expected}: {}", problems.join("; ")))
    }
}

/// `contact-auth-admin events`: checks the URL (https, or http to loopback on a local
/// stack; a literal private address is refused here, a name is checked at every delivery)
/// and stores the team's settings.
async fn events_settings(
    store: &DynamoStore,
    team: &str,
    url: Option<String>,
    secret: Option<String>,
    include_email: bool,
    remove: bool,
) -> Res<()> {
    use contact_auth::ports::EventSettings;
    let team_id = TeamId::from_stored(team);
    if remove {
        store
            .put_event_settings(&team_id, None)
            .await
            .map_err(|e| e.to_string())?;
        println!("team {team}: event settings removed (events still go to the bus)");
        return Ok(());
    }
    let dev = std::env::var("EVENTS_WEBHOOK_DEV").is_ok_and(|v| v == "1");
    if let Some(u) = &url {
        let (_, host, _) = contact_auth::adapters::webhook::url_problem(u, dev)
            .map_err(|why| format!("webhook URL refused: {why}"))?;
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            if !contact_auth::domain::events::webhook_address_allowed(ip, dev) {
                return Err("webhook URL refused: private_address".into());
            }
        }
    }
    let secret = match (&url, secret) {
        (None, _) => None,
        (Some(_), Some(s)) => {
            contact_auth::domain::events::webhook_signature(&s, "check", 0, "")
                .ok_or("--secret must be whsec_<base64 of at least 24 bytes>")?;
            Some(s)
        }
        (Some(_), None) => {
            use base64::Engine;
            let mut key = [0u8; 24];
            getrandom::getrandom(&mut key).map_err(|e| e.to_string())?;
            let s = format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode(key)
            );
            println!("webhook secret (shown once; give it to the receiver): {s}");
            Some(s)
        }
    };
    let settings = EventSettings {
        webhook_url: url.clone(),
        webhook_secret: secret,
        include_email,
        paused_until: None,
    };
    store
        .put_event_settings(&team_id, Some(&settings))
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "team {team}: webhook {}, email in deliveries: {include_email}",
        url.as_deref().unwrap_or("none")
    );
    Ok(())
}

async fn dev_events() -> Res<()> {
    let app = contact_auth::runtime::events_app()
        .await
        .map_err(|e| e.to_string())?;
    // Locally a webhook that fails is retried sooner.
    let app = contact_auth::handlers::events::EventsApp {
        retry_delays: vec![
            std::time::Duration::from_millis(200),
            std::time::Duration::from_millis(500),
        ],
        ..app
    };
    poll::poll_events(&app).await
}

async fn dev_mailer() -> Res<()> {
    let config = Config::from_env()?;
    let store = DynamoStore::from_env(&config.table_name).await;
    // The same key document the functions read (SIGNING_KEY_FILE locally): the mailer
    // derives each job's token and code from its link key.
    let keys = <KeySet as KeysDep>::from_env(&config)
        .await
        .map_err(|e| e.to_string())?;
    let app = App::new(config)
        .with_store(store)
        .with_keys(keys)
        .with_mailer(SesMailer::from_env().await);
    poll::poll_stream(&app).await
}

async fn run(cli: Cli) -> Res<()> {
    let store = || async { Ok::<_, String>(DynamoStore::from_env(&table_name()?).await) };
    match cli.command {
        Command::DevKey { out } => {
            // RS256 when nothing asks otherwise: the contract's default.
            keys::dev_key(&out, requested_alg(None)?.unwrap_or(TokenAlg::RS256)).await
        }
        Command::RotateKey {
            secret_id,
            file,
            alg,
            force,
            revoke,
        } => {
            let target = match (secret_id, file) {
                (Some(id), _) => keys::Target::Secret(id),
                (None, Some(path)) => keys::Target::File(path),
                (None, None) => return Err("--secret-id or --file".into()),
            };
            let alg = requested_alg(alg)?;
            let mode = if revoke {
                keys::Mode::Revoke
            } else if force {
                keys::Mode::Forced
            } else {
                keys::Mode::Scheduled
            };
            keys::rotate_key(target, alg, mode).await
        }
        Command::Verdict {
            expected,
            response,
            mails,
            event,
        } => verdict(&expected, &response, mails.as_deref(), event),
        Command::Key { kind } => key(kind),
        Command::PasswordList { from, out } => {
            let fst = testkit::password_list::build(&read(&from)?)?;
            std::fs::write(&out, &fst).map_err(|e| format!("{out}: {e}"))?;
            println!("{out}: {} bytes", fst.len());
            Ok(())
        }
        Command::DevEvents => {
            contact_auth::runtime::init_tracing();
            dev_events().await
        }
        Command::DevMailer => {
            contact_auth::runtime::init_tracing();
            dev_mailer().await
        }
        Command::CreateTable {
            template,
            if_missing,
        } => create_table(&store().await?, &template, if_missing).await,
        Command::SeedDemo => seed_demo(&store().await?).await,
        Command::Team {
            id,
            name,
            primary_hub,
        } => {
            let store = store().await?;
            let team_id = TeamId::from_stored(id);
            // Replacing a team keeps its sender address (`sender` sets it).
            let sender_address = store
                .team(&team_id)
                .await
                .map_err(|e| e.to_string())?
                .and_then(|t| t.sender_address);
            store
                .put_team(&Team {
                    team_id,
                    name,
                    primary_hub_id: primary_hub.map(HubId::from_stored),
                    sender_address,
                })
                .await
                .map(|_| println!("team saved"))
                .map_err(|e| e.to_string())
        }
        Command::Sender { team, address } => sender(&store().await?, &team, address).await,
        Command::Branding(args) => branding(&store().await?, args).await,
        Command::Events {
            team,
            webhook_url,
            secret,
            include_email,
            remove,
        } => {
            events_settings(
                &store().await?,
                &team,
                webhook_url,
                secret,
                include_email,
                remove,
            )
            .await
        }
        Command::Hub {
            id,
            slug,
            team,
            title,
            origins: o,
            registration,
        } => {
            let store = store().await?;
            let hub_id = HubId::from_stored(id);
            // Replacing a hub keeps its trusted networks (`trusted-networks` sets them) and
            // its branding (`branding`).
            let (trusted_cidrs, branding) = store
                .hub(&hub_id)
                .await
                .map_err(|e| e.to_string())?
                .map(|h| (h.trusted_cidrs, h.branding))
                .unwrap_or_default();
            let hub = Hub {
                hub_id,
                slug,
                team_id: TeamId::from_stored(team),
                title,
                allowed_redirect_origins: origins(&o)?,
                registration_enabled: registration == "on",
                trusted_cidrs,
                branding,
            };
            put_hub(&store, hub).await
        }
        Command::SeedMembers { count, prefix } => {
            let keys = std::env::var("SIGNING_KEY_FILE")
                .map_err(|_| "SIGNING_KEY_FILE is not set".to_string())
                .and_then(|p| read(&p))?;
            let app = TestApp::new(Config::from_env()?, store().await?, &keys);
            for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
                let steps: Vec<serde_json::Value> = chunk
                    .iter()
                    .map(|i| serde_json::json!({"op": "session", "email": format!("{prefix}-{i}@example.com")}))
                    .collect();
                let steps = fixtures::parse_steps(&serde_json::Value::Array(steps))?;
                fixtures::setup(&app, &steps).await?;
            }
            println!(
                "{count} members of member-academy: {prefix}-0..{}@example.com",
                count.saturating_sub(1)
            );
            Ok(())
        }
        Command::Redrive {
            stuck_after,
            dry_run,
        } => {
            let config = Config::from_env()?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let r = store()
                .await?
                .redrive_pending(config.magic_ttl, stuck_after, now, dry_run)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}redriven {}, expired sign-in jobs deleted {}, left to the mailer {}",
                if dry_run { "(dry run) " } else { "" },
                r.redriven,
                r.expired,
                r.left
            );
            Ok(())
        }
        Command::TrustedNetworks { slug, set } => {
            let store = store().await?;
            let mut hub = hub_with_slug(&store, &slug).await?;
            hub.trusted_cidrs = set
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(contact_auth::domain::rate::trusted_cidr)
                .collect::<Res<Vec<_>>>()?;
            println!("trusted networks of {slug}: {:?}", hub.trusted_cidrs);
            put_hub(&store, hub).await
        }
        Command::Origins { slug, set } => {
            let store = store().await?;
            let mut hub = hub_with_slug(&store, &slug).await?;
            hub.allowed_redirect_origins = origins(&set)?;
            put_hub(&store, hub).await
        }
        Command::Ban { team, email } => ban(&store().await?, &team, &email, true).await,
        Command::Unban { team, email } => ban(&store().await?, &team, &email, false).await,
        Command::Suppression { email, lift } => suppression(&store().await?, &email, lift).await,
        Command::Fixture {
            event,
            out,
            template,
            secrets,
        } => fixture(store().await?, &event, &out, &template, secrets.as_deref()).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Args, Debug)]
struct BrandingArgs {
    #[arg(long)]
    slug: String,
    /// Shown instead of the hub's title (1-80 characters).
    #[arg(long)]
    display_name: Option<String>,
    /// An https image URL.
    #[arg(long)]
    logo_url: Option<String>,
    /// #rrggbb; white text on it needs a 4.5:1 contrast.
    #[arg(long)]
    accent: Option<String>,
    /// The From display name (default: the display name).
    #[arg(long)]
    sender_name: Option<String>,
    #[arg(long)]
    reply_to: Option<String>,
    /// en, de, fr, es or nl.
    #[arg(long)]
    default_locale: Option<String>,
    #[arg(long = "text", value_name = "LOCALE:KEY=TEXT")]
    texts: Vec<String>,
    #[arg(long = "clear-text", value_name = "LOCALE:KEY")]
    clear_texts: Vec<String>,
}

/// One optional value: None keeps it, "" clears it, else the validated value.
fn set_opt(
    slot: &mut Option<String>,
    raw: Option<String>,
    check: impl Fn(&str) -> Result<String, String>,
) -> Res<()> {
    if let Some(v) = raw {
        *slot = if v.trim().is_empty() {
            None
        } else {
            Some(check(&v)?)
        };
    }
    Ok(())
}

fn locale_arg(tag: &str) -> Res<Locale> {
    Locale::from_tag(tag)
        .filter(|l| l.tag() == tag.trim().to_ascii_lowercase())
        .ok_or(format!(
            "not a supported locale: {tag} (en, de, fr, es, nl)"
        ))
}

async fn branding(store: &DynamoStore, a: BrandingArgs) -> Res<()> {
    let mut hub = hub_with_slug(store, &a.slug).await?;
    let b = &mut hub.branding;
    set_opt(&mut b.display_name, a.display_name, |v| {
        validate_name("display name", v)
    })?;
    set_opt(&mut b.logo_url, a.logo_url, validate_logo_url)?;
    set_opt(&mut b.accent, a.accent, validate_accent)?;
    set_opt(&mut b.sender_name, a.sender_name, |v| {
        validate_name("sender name", v)
    })?;
    set_opt(&mut b.reply_to, a.reply_to, |v| {
        parse_email(v)
            .map(|e| e.display)
            .map_err(|e| format!("reply-to: {}", e.detail()))
    })?;
    if let Some(tag) = a.default_locale {
        b.default_locale = if tag.trim().is_empty() {
            None
        } else {
            Some(locale_arg(&tag)?)
        };
    }
    for t in a.texts {
        let (target, text) = t.split_once('=').ok_or("--text LOCALE:KEY=TEXT")?;
        let (tag, key) = target.split_once(':').ok_or("--text LOCALE:KEY=TEXT")?;
        validate_override(key, text)?;
        b.texts
            .entry(locale_arg(tag)?)
            .or_default()
            .insert(key.to_string(), text.to_string());
    }
    for t in a.clear_texts {
        let (tag, key) = t.split_once(':').ok_or("--clear-text LOCALE:KEY")?;
        let locale = locale_arg(tag)?;
        if let Some(m) = b.texts.get_mut(&locale) {
            m.remove(key);
            if m.is_empty() {
                b.texts.remove(&locale);
            }
        }
    }
    let shown = format!("{:?}", hub.branding);
    put_hub(store, hub).await?;
    println!("branding of {}: {shown}", a.slug);
    Ok(())
}

async fn sender(store: &DynamoStore, team: &str, address: String) -> Res<()> {
    let team_id = TeamId::from_stored(team);
    let mut t = store
        .team(&team_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or(format!("no team {team}"))?;
    t.sender_address = if address.trim().is_empty() {
        None
    } else {
        let e = parse_email(&address).map_err(|e| format!("sender: {}", e.detail()))?;
        Some(e.display)
    };
    store.put_team(&t).await.map_err(|e| e.to_string())?;
    println!(
        "sender of {team}: {} (used only when it matches the deployment's TEAM_SENDER_ADDRESSES)",
        t.sender_address
            .as_deref()
            .unwrap_or("the deployment's sender")
    );
    Ok(())
}
