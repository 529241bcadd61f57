//! contact-auth-admin: local/dev administration against the table in `TABLE_NAME`
//! (DynamoDB Local through `AWS_ENDPOINT_URL_DYNAMODB`, or a real table).
//!
//!   create-table [--template template.yaml] [--if-missing]   table from template.yaml
//!   seed-demo                                                team_abc123, member-academy, my-hub
//!   team --id ID --name NAME [--primary-hub HUB_ID]
//!   hub --id ID --slug SLUG --team TEAM_ID --title TITLE [--origins a,b] [--registration on|off]
//!   origins --slug SLUG --set ORIGIN[,ORIGIN...]             replace a hub's allowed redirect origins
//!   dev-key --out PATH                                       write a local signing secret if missing

use std::collections::HashMap;
use std::process::ExitCode;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use base64::Engine;
use contact_auth::adapters::dynamo::DynamoStore;
use contact_auth::domain::model::{Hub, Team};
use contact_auth::domain::redirect::normalize_origin;
use contact_auth::ports::Store;

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

/// The table definition, read from template.yaml's `ContactTable` resource.
pub struct TableSpec {
    pub attributes: Vec<(String, String)>,
    pub keys: Vec<(String, String)>,
    pub ttl_attribute: Option<String>,
    pub stream_view: Option<String>,
}

pub fn table_spec(template: &str) -> Res<TableSpec> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(template).map_err(|e| format!("template.yaml: {e}"))?;
    let props = &doc["Resources"]["ContactTable"]["Properties"];
    let pairs = |list: &serde_yaml::Value, a: &str, b: &str| -> Vec<(String, String)> {
        list.as_sequence()
            .map(|s| {
                s.iter()
                    .filter_map(|e| Some((e[a].as_str()?.to_string(), e[b].as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let spec = TableSpec {
        attributes: pairs(
            &props["AttributeDefinitions"],
            "AttributeName",
            "AttributeType",
        ),
        keys: pairs(&props["KeySchema"], "AttributeName", "KeyType"),
        ttl_attribute: props["TimeToLiveSpecification"]["AttributeName"]
            .as_str()
            .map(str::to_string),
        stream_view: props["StreamSpecification"]["StreamViewType"]
            .as_str()
            .map(str::to_string),
    };
    if spec.keys.is_empty() || spec.attributes.is_empty() {
        return Err("template.yaml: ContactTable has no KeySchema/AttributeDefinitions".into());
    }
    Ok(spec)
}

async fn create_table(store: &DynamoStore, f: &HashMap<String, String>) -> Res<()> {
    let path = f
        .get("template")
        .map(String::as_str)
        .unwrap_or("template.yaml");
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let spec = table_spec(&text)?;
    let client = store.client();
    let exists = client
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .is_ok();
    if exists {
        if f.contains_key("if-missing") {
            println!("table {} exists", store.table());
            return Ok(());
        }
        return Err(format!("table {} already exists", store.table()));
    }
    let mut req = client
        .create_table()
        .table_name(store.table())
        .billing_mode(BillingMode::PayPerRequest);
    for (name, ty) in &spec.attributes {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::from(ty.as_str()))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    for (name, ty) in &spec.keys {
        req = req.key_schema(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(ty.as_str()))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    if let Some(view) = &spec.stream_view {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    req.send().await.map_err(|e| {
        format!(
            "create_table: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(e)
        )
    })?;
    if let Some(attr) = &spec.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(store.table())
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map_err(|e| {
                format!(
                    "update_time_to_live: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            })?;
    }
    println!("table {} created from {path}", store.table());
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
    let origins = vec!["http://localhost:5173".to_string()];
    store
        .put_team(&Team {
            team_id: "team_abc123".into(),
            name: "Demo Team".into(),
            primary_hub_id: Some("hub_member_academy".into()),
        })
        .await
        .map_err(|e| e.to_string())?;
    for (id, slug, title) in [
        ("hub_member_academy", "member-academy", "Member Academy"),
        ("hub_my_hub", "my-hub", "My Hub"),
    ] {
        put_hub(
            store,
            Hub {
                hub_id: id.into(),
                slug: slug.into(),
                team_id: "team_abc123".into(),
                title: title.into(),
                allowed_redirect_origins: origins.clone(),
                registration_enabled: true,
            },
        )
        .await?;
    }
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
        _ => Err(format!(
            "unknown command {cmd:?}; commands: create-table, seed-demo, team, hub, origins, dev-key"
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_table_schema_from_the_template() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
                .unwrap();
        let spec = table_spec(&text).unwrap();
        assert_eq!(
            spec.keys,
            vec![("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]
        );
        assert_eq!(spec.ttl_attribute.as_deref(), Some("expires_at"));
        assert_eq!(spec.stream_view.as_deref(), Some("NEW_IMAGE"));
    }
}
