//! contact-auth-admin: local/dev administration against the table in `TABLE_NAME`
//! (DynamoDB Local through `AWS_ENDPOINT_URL_DYNAMODB`, or a real table).
//!
//!   create-table [--template template.yaml] [--if-missing]   table from template.yaml
//!   seed-demo                                                team_abc123, member-academy, my-hub
//!   team --id ID --name NAME [--primary-hub HUB_ID]
//!   hub --id ID --slug SLUG --team TEAM_ID --title TITLE [--origins a,b] [--registration on|off]
//!   origins --slug SLUG --set ORIGIN[,ORIGIN...]             replace a hub's allowed redirect origins
//!   ban --team TEAM_ID --email EMAIL                         ban a member: every session in the team
//!                                                            ends for good (an unban does not revive it)
//!   unban --team TEAM_ID --email EMAIL                       make a banned member active again
//!   dev-key --out PATH                                       write a local signing secret if missing
//!   fixture --event F.json --out PATH [--secrets PATH]       a fresh table, seeded, with the setup of
//!                                                            F.expected.json done; the event with its
//!                                                            placeholders filled in goes to PATH

use std::collections::HashMap;
use std::process::ExitCode;

use std::sync::Arc;

use base64::Engine;
use contact_auth::adapters::dynamo::DynamoStore;
use contact_auth::adapters::keys::load_keys;
use contact_auth::adapters::schema;
use contact_auth::app::App;
use contact_auth::config::Config;
use contact_auth::domain::email::parse_email;
use contact_auth::domain::model::{Hub, Team};
use contact_auth::domain::redirect::normalize_origin;
use contact_auth::fixtures;
use contact_auth::ports::{OffsetClock, Store};

type Res<T> = Result<T, String>;

fn flags(args: &[String]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut i = 0;
    while i < args.len() {
        if let Some(name) = args[i].strip_prefix("--") {
            let value = args.get(i + 1).filter(|v| !v.starts_with("--")).cloned();
            if value.is_some() {
                i += 1;
            }
            out.insert(name.to_string(), value.unwrap_or_else(|| "true".into()));
        }
        i += 1;
    }
    out
}

fn need<'a>(f: &'a HashMap<String, String>, k: &str) -> Res<&'a str> {
    f.get(k)
        .map(String::as_str)
        .ok_or(format!("--{k} is required"))
}

fn table_name() -> Res<String> {
    std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set".to_string())
}

async fn create_table(store: &DynamoStore, f: &HashMap<String, String>) -> Res<()> {
    let path = f
        .get("template")
        .map(String::as_str)
        .unwrap_or("template.yaml");
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let created = schema::create_table(
        store.client(),
        store.table(),
        &text,
        f.contains_key("if-missing"),
    )
    .await?;
    if created {
        println!("table {} created from {path}", store.table());
    } else {
        println!("table {} exists", store.table());
    }
    Ok(())
}

fn origins(raw: Option<&String>) -> Res<Vec<String>> {
    raw.map(|r| {
        r.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|o| normalize_origin(o.trim()).ok_or(format!("not an origin: {o}")))
            .collect()
    })
    .unwrap_or(Ok(vec![]))
}

async fn put_hub(store: &DynamoStore, hub: Hub) -> Res<()> {
    if !store.put_hub(&hub).await.map_err(|e| e.to_string())? {
        return Err(format!("slug {} belongs to another hub", hub.slug));
    }
    println!("hub {} ({}) saved", hub.slug, hub.hub_id);
    Ok(())
}

async fn seed_demo(store: &DynamoStore) -> Res<()> {
    store.seed_demo().await.map_err(|e| e.to_string())?;
    println!("seeded team_abc123 with hubs member-academy and my-hub");
    Ok(())
}

fn dev_key(f: &HashMap<String, String>) -> Res<()> {
    let out = need(f, "out")?;
    if std::path::Path::new(out).exists() {
        println!("signing key {out} exists");
        return Ok(());
    }
    let mut bytes = [0u8; 48];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    if let Some(dir) = std::path::Path::new(out).parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(out, format!("{{\"signing_secret\":\"{secret}\"}}\n"))
        .map_err(|e| e.to_string())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o600));
    }
    println!("wrote a new local signing key to {out}");
    Ok(())
}

async fn run(args: Vec<String>) -> Res<()> {
    let cmd = args.first().cloned().unwrap_or_default();
    let f = flags(&args[1.min(args.len())..]);
    if cmd == "dev-key" {
        return dev_key(&f);
    }
    let store = DynamoStore::from_env(&table_name()?).await;
    match cmd.as_str() {
        "create-table" => create_table(&store, &f).await,
        "seed-demo" => seed_demo(&store).await,
        "team" => store
            .put_team(&Team {
                team_id: need(&f, "id")?.into(),
                name: need(&f, "name")?.into(),
                primary_hub_id: f.get("primary-hub").cloned(),
            })
            .await
            .map(|_| println!("team saved"))
            .map_err(|e| e.to_string()),
        "hub" => {
            put_hub(
                &store,
                Hub {
                    hub_id: need(&f, "id")?.into(),
                    slug: need(&f, "slug")?.into(),
                    team_id: need(&f, "team")?.into(),
                    title: need(&f, "title")?.into(),
                    allowed_redirect_origins: origins(f.get("origins"))?,
                    registration_enabled: f.get("registration").map(String::as_str) != Some("off"),
                },
            )
            .await
        }
        "origins" => {
            let slug = need(&f, "slug")?;
            let mut hub = store
                .hub_by_slug(slug)
                .await
                .map_err(|e| e.to_string())?
                .ok_or(format!("no hub with slug {slug}"))?;
            hub.allowed_redirect_origins = origins(f.get("set"))?;
            put_hub(&store, hub).await
        }
        "ban" => ban(&store, &f, true).await,
        "unban" => ban(&store, &f, false).await,
        "fixture" => fixture(store, &f).await,
        _ => Err(format!(
            "unknown command {cmd:?}; commands: create-table, seed-demo, team, hub, origins, ban, unban, dev-key, fixture"
        )),
    }
}

/// `ban` / `unban --team T --email E`: the member is found by the email's identity key.
async fn ban(store: &DynamoStore, f: &HashMap<String, String>, banned: bool) -> Res<()> {
    let team = need(f, "team")?;
    let email = parse_email(need(f, "email")?).map_err(|e| e.detail().to_string())?;
    let contact = store
        .contact_id_by_email(&email.key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no contact with this email")?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if !store
        .set_banned(&contact, team, banned, now)
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

/// Prepares one `events/` fixture for `make invoke` (tools/invoke.mjs): the table in
/// TABLE_NAME is created and seeded, the `setup` steps of the expected file run through
/// the real handlers (`contact_auth::fixtures`, the same code the replay tests use), and
/// the event is written out with its placeholders filled in.
async fn fixture(store: DynamoStore, f: &HashMap<String, String>) -> Res<()> {
    let event_path = need(f, "event")?;
    let out = need(f, "out")?;
    let expected_path = event_path
        .strip_suffix(".json")
        .map(|stem| format!("{stem}.expected.json"))
        .ok_or("--event must name a .json file")?;
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&expected_path).map_err(|e| format!("{expected_path}: {e}"))?,
    )
    .map_err(|e| format!("{expected_path}: {e}"))?;
    let event = std::fs::read_to_string(event_path).map_err(|e| format!("{event_path}: {e}"))?;
    create_table(&store, f).await?;
    seed_demo(&store).await?;
    let offset = expected["clock_offset"].as_i64().unwrap_or(0);
    let app = App::new(Config::from_env().map_err(|e| e.to_string())?)
        .with_store(Arc::new(store))
        .with_keys(Arc::new(load_keys().await?))
        .with_clock(Arc::new(OffsetClock(-offset)));
    let steps = expected["setup"].as_array().cloned().unwrap_or_default();
    let prepared = fixtures::setup(&app, &steps).await?;
    std::fs::write(out, prepared.resolve(&event)).map_err(|e| format!("{out}: {e}"))?;
    if let Some(path) = f.get("secrets") {
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

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
