//! The facts written in more than one file agree with the Rust tables:
//! `Route::ALL` with template.yaml (HttpApi events, one function per crate), the local
//! router (CargoLambda.toml) and openapi.yaml; `ErrorCode::ALL` with openapi.yaml's
//! `ErrorCode` enum. Plain `cargo test` runs it (no servers).

use std::collections::{BTreeMap, BTreeSet};

use contact_auth::errors::ErrorCode;
use contact_auth::routes::{Route, EVENT_FUNCTIONS};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `MagicConsumeFunction` -> `magic-consume`.
fn logical_to_function(logical: &str) -> String {
    let mut out = String::new();
    for (i, c) in logical.trim_end_matches("Function").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

type RouteSet = BTreeSet<(String, String, String)>;

fn rust_routes() -> RouteSet {
    Route::ALL
        .iter()
        .map(|r| {
            (
                r.method().to_string(),
                r.path().to_string(),
                r.function().to_string(),
            )
        })
        .collect()
}

/// (method, path, function) of template.yaml's HttpApi events; and path -> function of
/// its OPTIONS events.
fn template_routes() -> (RouteSet, BTreeMap<String, String>, BTreeSet<String>) {
    let doc: serde_yaml::Value = serde_yaml::from_str(&read("template.yaml")).unwrap();
    let mut routes = RouteSet::new();
    let mut preflight = BTreeMap::new();
    let mut functions = BTreeSet::new();
    for (name, res) in doc["Resources"].as_mapping().unwrap() {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let function = logical_to_function(name.as_str().unwrap());
        functions.insert(function.clone());
        for (_, ev) in res["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            if ev["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let method = ev["Properties"]["Method"].as_str().unwrap().to_uppercase();
            let path = ev["Properties"]["Path"].as_str().unwrap().to_string();
            if method == "OPTIONS" {
                preflight.insert(path, function.clone());
            } else {
                routes.insert((method, path, function.clone()));
            }
        }
    }
    (routes, preflight, functions)
}

fn router_routes() -> (RouteSet, BTreeMap<String, String>) {
    let doc: toml::Value = toml::from_str(&read("CargoLambda.toml")).unwrap();
    let mut routes = RouteSet::new();
    let mut preflight = BTreeMap::new();
    for (path, entries) in doc["watch"]["router"].as_table().unwrap() {
        for e in entries.as_array().unwrap() {
            let method = e["method"].as_str().unwrap().to_uppercase();
            let function = e["function"].as_str().unwrap().to_string();
            if method == "OPTIONS" {
                preflight.insert(path.clone(), function);
            } else {
                routes.insert((method, path.clone(), function));
            }
        }
    }
    (routes, preflight)
}

#[test]
fn routes_agree_with_the_template_the_router_and_openapi() {
    let rust = rust_routes();
    let (template, template_preflight, template_functions) = template_routes();
    assert_eq!(rust, template, "Route::ALL vs template.yaml HttpApi events");
    let (router, router_preflight) = router_routes();
    assert_eq!(
        rust, router,
        "Route::ALL vs CargoLambda.toml [watch.router]"
    );
    // Preflights: every API path, to the same function locally and deployed.
    assert_eq!(router_preflight, template_preflight, "OPTIONS routes");
    let api_paths: BTreeSet<_> = Route::ALL
        .iter()
        .map(|r| r.path().to_string())
        .filter(|p| p.starts_with("/api/"))
        .collect();
    let preflight_paths: BTreeSet<_> = router_preflight.keys().cloned().collect();
    assert_eq!(
        api_paths, preflight_paths,
        "every API path answers preflights"
    );

    let spec: serde_yaml::Value = serde_yaml::from_str(&read("openapi.yaml")).unwrap();
    let mut openapi = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            let m = method.as_str().unwrap();
            if ["get", "post", "patch", "put", "delete"].contains(&m) {
                openapi.insert((m.to_uppercase(), path.as_str().unwrap().to_string()));
            }
        }
    }
    let rust_pairs: BTreeSet<_> = rust
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    assert_eq!(rust_pairs, openapi, "Route::ALL vs openapi.yaml paths");

    // One crate per function: every route, plus the event functions; and template.yaml
    // builds each.
    let crates: BTreeSet<String> = std::fs::read_dir(format!("{ROOT}/functions"))
        .unwrap()
        .flatten()
        .filter(|d| d.path().join("Cargo.toml").exists())
        .map(|d| d.file_name().to_string_lossy().to_string())
        .collect();
    let mut expected: BTreeSet<String> = Route::ALL
        .iter()
        .map(|r| r.function().to_string())
        .collect();
    expected.extend(EVENT_FUNCTIONS.iter().map(|f| f.to_string()));
    assert_eq!(
        crates, expected,
        "functions/ vs Route::ALL + EVENT_FUNCTIONS"
    );
    assert_eq!(template_functions, expected, "template.yaml functions");
}

#[test]
fn error_codes_agree_with_openapi() {
    let spec: serde_yaml::Value = serde_yaml::from_str(&read("openapi.yaml")).unwrap();
    let documented: BTreeSet<String> = spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let rust: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(rust, documented, "ErrorCode::ALL vs openapi.yaml ErrorCode");
}

#[test]
fn the_table_schema_is_read_from_the_template() {
    let spec = testkit::schema::table_spec(&read("template.yaml")).unwrap();
    assert_eq!(
        spec.keys,
        vec![("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]
    );
    assert_eq!(
        spec.attributes,
        vec![("pk".into(), "S".into()), ("sk".into(), "S".into())]
    );
    assert_eq!(spec.ttl_attribute.as_deref(), Some("expires_at"));
    assert_eq!(spec.stream_view.as_deref(), Some("NEW_IMAGE"));
}

/// The mailer's stream fixtures carry job items as the product writes them: the key from
/// `keys::job` (on the record and in its image) and the `kind` its event filter matches.
#[test]
fn stream_fixtures_use_the_product_job_keys() {
    use contact_auth::adapters::dynamo::{codec::MAIL_JOB_KIND, keys};
    let mut checked = 0;
    let dir = format!("{ROOT}/events/mailer");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json") || name.ends_with(".expected.json") {
            continue;
        }
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for record in event["Records"].as_array().unwrap() {
            let ddb = &record["dynamodb"];
            let image = &ddb["NewImage"];
            let Some(job_id) = image["job_id"]["S"].as_str() else {
                continue;
            };
            let (pk, sk) = keys::job(job_id);
            for item in [&ddb["Keys"], image] {
                assert_eq!(item["pk"]["S"], pk.as_str(), "{name}");
                assert_eq!(item["sk"]["S"], sk.as_str(), "{name}");
            }
            assert_eq!(image["kind"]["S"], MAIL_JOB_KIND, "{name}");
            checked += 1;
        }
    }
    assert!(
        checked >= 6,
        "only {checked} job images under events/mailer"
    );
}

/// `make sam-local`'s env file: SAM passes a variable to a function only when the template
/// declares it for that function (in Globals or its own Environment) and silently drops the
/// rest, so every variable in sam-local.env.json must be declared; and its endpoints are
/// the `make dev` ports (tools/stack.mjs).
#[test]
fn the_sam_local_env_file_sets_only_declared_variables() {
    let doc: serde_yaml::Value = serde_yaml::from_str(&read("template.yaml")).unwrap();
    let env: serde_json::Value = serde_json::from_str(&read("sam-local.env.json")).unwrap();
    let names = |vars: &serde_yaml::Value| -> Vec<String> {
        vars.as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, _)| k.as_str().map(String::from))
            .collect()
    };
    let mut declared: BTreeSet<String> =
        names(&doc["Globals"]["Function"]["Environment"]["Variables"])
            .into_iter()
            .collect();
    for (_, res) in doc["Resources"].as_mapping().unwrap() {
        declared.extend(names(&res["Properties"]["Environment"]["Variables"]));
    }
    let params = env["Parameters"].as_object().unwrap();
    assert!(params.len() >= 5);
    for name in params.keys() {
        assert!(
            declared.contains(name),
            "{name} is not declared in template.yaml: sam local would drop it"
        );
    }
    assert_eq!(
        params["AWS_ENDPOINT_URL_DYNAMODB"],
        "http://host.docker.internal:8000"
    );
    assert_eq!(params["TABLE_NAME"], "contact-auth-dev");
}
