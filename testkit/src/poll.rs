//! The local mailer: follows every shard of the table's stream from its start and feeds
//! inserted mail jobs to `contact_auth::runtime::process_records`, the code the Lambda
//! handler runs (DynamoDB Local has no stream trigger). `contact-auth-admin dev-mailer`
//! runs it for `make dev` and the tests; the deployed mailer has no poll loop and no
//! Streams client.

use std::time::Duration;

use contact_auth::handlers::mailer::{MailerApp, MailerStore};
use contact_auth::ports::Mailer;
use contact_auth::runtime::{process_records, JobRecord, JobRef, KeysDep};

/// Local poll mode: follows every shard of the table's stream from its start and feeds
/// inserted jobs to the same code the Lambda handler runs.
pub async fn poll_stream<S: MailerStore, M: Mailer>(app: &MailerApp<S, M>) -> Result<(), String> {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    use contact_auth::adapters::aws::{sdk_config, Service};
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(Service::DynamoDb));
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk_config(Service::DynamoDbStreams));
    let table = app.config.table_name.clone();
    let stream_arn = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .map_err(|e| {
            format!(
                "describe_table failed: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
        })?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or("the table has no stream")?;
    tracing::info!(table = %table, "mailer polling the table stream");
    let mut iterators: std::collections::HashMap<String, Option<String>> = Default::default();
    let mut last_describe = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        if last_describe.elapsed() > Duration::from_secs(2) {
            last_describe = std::time::Instant::now();
            match streams
                .describe_stream()
                .stream_arn(&stream_arn)
                .send()
                .await
            {
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), "describe_stream failed")
                }
                Ok(desc) => {
                    for shard in desc
                        .stream_description
                        .map(|d| d.shards.unwrap_or_default())
                        .unwrap_or_default()
                    {
                        let Some(id) = shard.shard_id else { continue };
                        if iterators.contains_key(&id) {
                            continue;
                        }
                        let it = streams
                            .get_shard_iterator()
                            .stream_arn(&stream_arn)
                            .shard_id(&id)
                            .shard_iterator_type(ShardIteratorType::TrimHorizon)
                            .send()
                            .await
                            .ok()
                            .and_then(|o| o.shard_iterator);
                        iterators.insert(id, it);
                    }
                }
            }
        }
        let mut busy = false;
        for it in iterators.values_mut() {
            let Some(current) = it.clone() else { continue };
            let out = match streams.get_records().shard_iterator(&current).send().await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), "get_records failed");
                    continue;
                }
            };
            let records: Vec<JobRecord> = out
                .records()
                .iter()
                .map(|r| {
                    let insert = r.event_name().map(|n| n.as_str()) == Some("INSERT");
                    let image = r.dynamodb().and_then(|d| d.new_image()).cloned();
                    let job_id = match (insert, image) {
                        (true, Some(img)) => {
                            serde_dynamo::aws_sdk_dynamodbstreams_1::from_item::<JobRef>(img)
                                .ok()
                                .and_then(JobRef::mail_job_id)
                        }
                        _ => None,
                    };
                    JobRecord {
                        sequence_number: r
                            .dynamodb()
                            .and_then(|d| d.sequence_number())
                            .map(str::to_string),
                        job_id,
                    }
                })
                .collect();
            busy |= !records.is_empty();
            app.keys.refresh(&app.config).await;
            let failed = !process_records(app, records).await.is_empty();
            if failed {
                // Keep the iterator: retry the same batch after a pause.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            *it = out.next_shard_iterator;
        }
        if !busy {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
