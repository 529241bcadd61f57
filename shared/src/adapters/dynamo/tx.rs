//! Transactions whose items carry what they mean. Each transaction has its own step enum;
//! `DynamoStore::commit` answers which steps' conditions failed (with the old item when
//! the step asked for it), so an outcome is an exhaustive match over named steps and
//! adding an item cannot change what an outcome means. DynamoDB reports cancellation
//! reasons in item order; `failed_steps` is the one place that order is read.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::Item;

/// How `TransactWriteItems` ended: done, or cancelled with one (code, old item) per item.
pub(super) enum TxOutcome {
    Ok,
    Cancelled(Vec<(String, Option<Item>)>),
}

/// A transaction being built: items and, beside each, the step it is.
pub(super) struct Tx<S> {
    steps: Vec<S>,
    pub(super) items: Vec<TransactWriteItem>,
}

impl<S: Copy> Tx<S> {
    pub(super) fn new() -> Self {
        Tx {
            steps: Vec::new(),
            items: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, step: S, item: TransactWriteItem) {
        self.steps.push(step);
        self.items.push(item);
    }

    pub(super) fn steps(&self) -> &[S] {
        &self.steps
    }
}

/// A committed transaction: done, or the steps whose conditions failed (never empty).
#[derive(Debug, PartialEq)]
pub(super) enum Settled<S> {
    Done,
    Failed(Vec<(S, Option<Item>)>),
}

/// Whether `step`'s condition failed.
pub(super) fn has<S: PartialEq>(failed: &[(S, Option<Item>)], step: S) -> bool {
    failed.iter().any(|(s, _)| *s == step)
}

/// The steps whose condition failed, with the old item when it was returned.
pub(super) fn failed_steps<S: Copy>(
    steps: &[S],
    reasons: &[(String, Option<Item>)],
) -> Vec<(S, Option<Item>)> {
    steps
        .iter()
        .zip(reasons)
        .filter(|(_, (code, _))| code == "ConditionalCheckFailed")
        .map(|(step, (_, old))| (*step, old.clone()))
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::adapters::dynamo::codec::s;
    use std::collections::HashMap;

    /// Synthetic cancellation reasons: `failed` lists the positions that failed.
    pub(crate) fn reasons(len: usize, failed: &[usize]) -> Vec<(String, Option<Item>)> {
        (0..len)
            .map(|i| {
                let code = if failed.contains(&i) {
                    "ConditionalCheckFailed"
                } else {
                    "None"
                };
                (code.to_string(), None)
            })
            .collect()
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Step {
        A,
        B,
        C,
        D,
    }

    #[test]
    fn cancellations_are_read_by_step_not_position() {
        let steps = [Step::A, Step::B, Step::C, Step::D];
        let old = HashMap::from([("email_change_id".to_string(), s("c1"))]);
        let mut r = reasons(4, &[1, 2]);
        r[2].1 = Some(old.clone());
        let failed = failed_steps(&steps, &r);
        assert_eq!(failed, vec![(Step::B, None), (Step::C, Some(old))]);
        // Fewer reasons than steps (a malformed answer) never panics.
        assert!(failed_steps(&steps, &[]).is_empty());
        // Other codes (TransactionConflict, None) are not failed conditions.
        let other = vec![
            ("TransactionConflict".to_string(), None),
            ("None".to_string(), None),
        ];
        assert!(failed_steps(&steps, &other).is_empty());
    }
}
