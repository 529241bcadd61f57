//! The local mailer: follows every shard of the table's stream from its start and feeds
//! inserted mail jobs to `contact_auth::runtime::process_records`, the code the Lambda
//! handler runs (DynamoDB Local has no stream trigger). `contact-auth-admin dev-mailer`
//! runs it for `make dev` and the tests; the deployed mailer has no poll loop and no
//! Streams client.

use std::time::Duration;

use contact_auth::handlers::events::EventsApp;
use contact_auth::handlers::mailer::{MailerApp, MailerStore};
use contact_auth::ports::Mailer;
use contact_auth::ports::{EventBus, EventStore, WebhookSender};
use contact_auth::runtime::{
    process_event_records, process_records, EventImage, EventRecord, JobRecord, JobRef, KeysDep,
};

/// Local poll mode: follows every shard of the table's stream from its start and feeds
/// inserted jobs to the same code the Lambda handler runs.
pub async fn poll_stream<S: MailerStore, M: Mailer>(app: &MailerApp<S, M>) -> Result<(), String> {
    tracing::info!(table = %app.config.table_name, "mailer polling the table stream");
    follow_stream(&app.config.table_name, |records| async move {
        let records: Vec<JobRecord> = records
            .into_iter()
            .map(|r| JobRecord {
                job_id: match (r.insert, r.image) {
                    (true, Some(img)) => {
                        serde_dynamo::aws_sdk_dynamodbstreams_1::from_item::<JobRef>(img)
                            .ok()
                            .and_then(JobRef::mail_job_id)
                    }
                    _ => None,
                },
                sequence_number: r.sequence_number,
            })
            .collect();
        app.keys.refresh(&app.config).await;
        process_records(app, records).await.is_empty()
    })
    .await
}

/// The local events function (`contact-auth-admin dev-events`): the same stream, inserted
/// outbox events fed to `process_event_records`, the code the Lambda handler runs.
pub async fn poll_events<S, B, W>(app: &EventsApp<S, B, W>) -> Result<(), String>
where
    S: EventStore,
    B: EventBus,
    W: WebhookSender,
{
    tracing::info!(table = %app.config.table_name, "events polling the table stream");
    follow_stream(&app.config.table_name, |records| async move {
        let records: Vec<EventRecord> = records
            .into_iter()
            .map(|r| EventRecord {
                event: match (r.insert, r.image) {
                    (true, Some(img)) => {
                        serde_dynamo::aws_sdk_dynamodbstreams_1::from_item::<EventImage>(img)
                            .ok()
                            .and_then(EventImage::auth_event)
                    }
                    _ => None,
                },
                sequence_number: r.sequence_number,
            })
            .collect();
        process_event_records(app, records).await.is_none()
    })
    .await
}

/// One stream record as read: its sequence number, whether it is an insert, its new image.
pub struct RawRecord {
    pub sequence_number: Option<String>,
    pub insert: bool,
    pub image:
        Option<std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>,
}

/// Follows every shard of `table`'s stream from its start, handing each batch of records to
/// `on_batch` (false: retry the same batch after a pause).
pub async fn follow_stream<F, Fut>(table: &str, mut on_batch: F) -> Result<(), String>
where
    F: FnMut(Vec<RawRecord>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    use contact_auth::adapters::aws::{sdk_config, Service};
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(Service::DynamoDb));
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk_config(Service::DynamoDbStreams));
    let stream_arn = ddb
        .describe_table()
        .table_name(table)
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
            let records: Vec<RawRecord> = out
                .records()
                .iter()
                .map(|r| RawRecord {
                    sequence_number: r
                        .dynamodb()
                        .and_then(|d| d.sequence_number())
                        .map(str::to_string),
                    insert: r.event_name().map(|n| n.as_str()) == Some("INSERT"),
                    image: r.dynamodb().and_then(|d| d.new_image()).cloned(),
                })
                .collect();
            busy |= !records.is_empty();
            let failed = !on_batch(records).await;
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
