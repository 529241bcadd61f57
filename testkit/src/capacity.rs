//! `make cost`'s measurements of one request: the DynamoDB capacity it consumes, as
//! DynamoDB Local reports it when asked (`ReturnConsumedCapacity: TOTAL`, added to every
//! request by `CapacityMeter`, an SDK interceptor), and the CPU time of the thread that
//! ran it (the handler, the SDK, its HTTP client: everything a Lambda instance would
//! spend on it but TLS).

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;

/// Capacity consumed since the last `take`: read and write units (the on-demand request
/// units are the same numbers) and the number of calls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacity {
    pub read_units: f64,
    pub write_units: f64,
    pub calls: u32,
}

/// The operation of the call in flight (`GetItem`, `TransactWriteItems`, ...).
#[derive(Debug, Clone)]
struct Operation(String);

impl aws_smithy_types::config_bag::Storable for Operation {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// The units of a transaction, counted from its request (see `transaction_units`).
#[derive(Debug, Clone, Copy)]
struct TransactionUnits(f64, f64);

impl aws_smithy_types::config_bag::Storable for TransactionUnits {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// DynamoDB Local under-reports transactions: a transaction of five 1 KB puts reports 2
/// units, where DynamoDB bills 2 write units per item per started KB (and 2 read units per
/// item per started 4 KB for a transactional read). So a transaction's units are counted
/// from its request: each `Put` by the size of its item (its JSON, an overestimate), each
/// `Update`, `Delete` and `ConditionCheck` as one KB (this service's items are well under
/// it), each `Get` as one 4 KB read. (read units, write units)
fn transaction_units(operation: &str, body: &Value) -> Option<(f64, f64)> {
    let items = body["TransactItems"].as_array()?;
    match operation {
        "TransactWriteItems" => Some((
            0.0,
            items
                .iter()
                .map(|i| {
                    let kb = i["Put"]["Item"].to_string().len().div_ceil(1024).max(1);
                    2.0 * kb as f64
                })
                .sum(),
        )),
        "TransactGetItems" => Some((2.0 * items.len() as f64, 0.0)),
        _ => None,
    }
}

/// Asks DynamoDB for the capacity of every request and adds it up.
#[derive(Debug, Clone, Default)]
pub struct CapacityMeter(Arc<Mutex<Capacity>>);

impl CapacityMeter {
    pub fn take(&self) -> Capacity {
        self.0
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

/// The units in one `ConsumedCapacity` object. Transactions report their units in
/// `ReadCapacityUnits`/`WriteCapacityUnits` too; a single-item call may give only
/// `CapacityUnits`, which then counts as reads for reads and writes for writes.
fn units(c: &Value, operation: &str) -> (f64, f64) {
    let read = c["ReadCapacityUnits"].as_f64();
    let write = c["WriteCapacityUnits"].as_f64();
    if read.is_some() || write.is_some() {
        return (read.unwrap_or(0.0), write.unwrap_or(0.0));
    }
    let total = c["CapacityUnits"].as_f64().unwrap_or(0.0);
    let is_read = matches!(
        operation,
        "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems"
    );
    if is_read {
        (total, 0.0)
    } else {
        (0.0, total)
    }
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = ctx.request_mut();
        // DynamoDB's JSON protocol names the operation in `X-Amz-Target`
        // (`DynamoDB_20120810.GetItem`).
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.split('.').nth(1))
            .unwrap_or("")
            .to_string();
        let Some(mut body) = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        else {
            return Ok(());
        };
        if let Some((read, write)) = transaction_units(&operation, &body) {
            cfg.interceptor_state()
                .store_put(TransactionUnits(read, write));
        }
        cfg.interceptor_state().store_put(Operation(operation));
        if let Some(o) = body.as_object_mut() {
            o.insert("ReturnConsumedCapacity".into(), "TOTAL".into());
        }
        let bytes = serde_json::to_vec(&body)?;
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Operation>()
            .map(|o| o.0.clone())
            .unwrap_or_default();
        let consumed = ctx
            .response()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            .map(|v| v["ConsumedCapacity"].clone())
            .unwrap_or(Value::Null);
        let list = match consumed {
            Value::Array(a) => a,
            Value::Null => vec![],
            one => vec![one],
        };
        let counted = cfg.load::<TransactionUnits>().copied();
        if let Ok(mut c) = self.0.lock() {
            c.calls += 1;
            if let Some(TransactionUnits(r, w)) = counted {
                c.read_units += r;
                c.write_units += w;
                return Ok(());
            }
            for item in &list {
                let (r, w) = units(item, &operation);
                c.read_units += r;
                c.write_units += w;
            }
        }
        Ok(())
    }
}

/// CPU time this thread has used, in milliseconds (`CLOCK_THREAD_CPUTIME_ID`, exact to
/// the nanosecond; /proc's schedstat lags by up to a scheduler tick). None if unavailable.
pub fn thread_cpu_ms() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through the valid pointer it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_from_the_read_and_write_fields_or_the_total_by_operation() {
        let t: Value = serde_json::json!({"TableName": "t", "CapacityUnits": 4.0, "ReadCapacityUnits": 2.0, "WriteCapacityUnits": 2.0});
        assert_eq!(units(&t, "TransactWriteItems"), (2.0, 2.0));
        let g: Value = serde_json::json!({"TableName": "t", "CapacityUnits": 0.5});
        assert_eq!(units(&g, "GetItem"), (0.5, 0.0));
        assert_eq!(units(&g, "PutItem"), (0.0, 0.5));
    }

    #[test]
    fn transactions_count_two_units_per_item_and_started_kb() {
        let body = serde_json::json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "v": {"S": "x".repeat(1500)}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "b"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "c"}}}},
        ]});
        assert_eq!(
            transaction_units("TransactWriteItems", &body),
            Some((0.0, 8.0))
        );
        assert_eq!(
            transaction_units("TransactGetItems", &body),
            Some((6.0, 0.0))
        );
        assert_eq!(transaction_units("PutItem", &body), None);
    }

    #[test]
    fn thread_cpu_time_grows_with_work() {
        let Some(a) = thread_cpu_ms() else { return };
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = thread_cpu_ms().unwrap();
        assert!(b > a, "{a} -> {b}");
    }
}
