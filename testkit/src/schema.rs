//! The table schema, read from `template.yaml` (its `ContactTable` resource is the one
//! source of truth): local table creation (tools/admin, tests) uses exactly that.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

type Res<T> = Result<T, String>;

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

/// Creates `table` as template.yaml describes it (keys, on-demand billing, stream,
/// TTL). Returns false when it exists and `if_missing` is set.
pub async fn create_table(
    client: &Client,
    table: &str,
    template: &str,
    if_missing: bool,
) -> Res<bool> {
    let spec = table_spec(template)?;
    if client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok()
    {
        if if_missing {
            return Ok(false);
        }
        return Err(format!("table {table} already exists"));
    }
    let mut req = client
        .create_table()
        .table_name(table)
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
            .table_name(table)
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
    Ok(true)
}
