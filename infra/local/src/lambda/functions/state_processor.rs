//! `hearth-state-processor`: the state processor with the embedded adapters. Its state store
//! defers writes to the SQS event source's checkpoints (see
//! [`hearth_embedded::Db::deferred_state_store`]). SQS batches arrive typed; a direct invoke
//! with an SQS event (as `sam local invoke -e` sends one) goes through the same handler.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hearth_iot_rules::template::Function;
use hearth_ports::{Clock, DeadLetterSink, StateStore};
use hearth_state_processor::Ports;
use serde_json::Value;

use crate::lambda::registry::{Resources, env, table};
use crate::lambda::{Invocation, InvokeError, LocalFunction};
use crate::metrics::{Measured, Metrics};
use crate::stack::StackError;

/// The state processor, run in-process.
struct StateProcessor {
    store: Arc<dyn StateStore>,
    deferred: hearth_embedded::EmbeddedStateStore,
    dead_letters: Arc<dyn DeadLetterSink>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
}

/// Wires the state processor to the table and dead-letter queue its environment names.
pub fn build(
    function: &Function,
    resources: &Resources,
) -> Result<Arc<dyn LocalFunction>, StackError> {
    table(function, "HEARTH_TABLE_NAME")?;
    let dlq = env(function, "HEARTH_DEAD_LETTER_QUEUE_URL")?;
    let dlq_name = dlq.strip_prefix("local://queue/").unwrap_or(dlq);
    if !resources.queues.contains_key(dlq_name) {
        return Err(StackError::Function {
            function: function.logical_id.clone(),
            detail: format!("HEARTH_DEAD_LETTER_QUEUE_URL={dlq} is not a queue of the template"),
        });
    }
    let deferred = resources.storage.deferred_state_store();
    let store: Arc<dyn StateStore> = Arc::new(Measured::new(
        Arc::new(deferred.clone()),
        resources.metrics.clone(),
    ));
    Ok(Arc::new(StateProcessor {
        store,
        deferred,
        dead_letters: Arc::new(resources.storage.dead_letters()),
        metrics: resources.metrics.clone(),
        clock: resources.clock.clock(),
    }))
}

#[async_trait]
impl LocalFunction for StateProcessor {
    async fn invoke(&self, event: Invocation) -> Result<Value, InvokeError> {
        let event: SqsEvent =
            serde_json::from_value(event.payload).map_err(InvokeError::invalid_event)?;
        let response = self.sqs(&event).await?;
        serde_json::to_value(response)
            .map_err(|e| InvokeError::new("InvalidResponse", e.to_string()))
    }

    async fn sqs(&self, event: &SqsEvent) -> Result<SqsBatchResponse, InvokeError> {
        let ports = Ports {
            store: &*self.store,
            dead_letters: &*self.dead_letters,
            clock: &*self.clock,
        };
        let (response, _) = hearth_state_processor::handle(ports, event)
            .await
            .map_err(|e| InvokeError::new("Retryable", e.to_string()))?;
        self.metrics
            .batch(event.records.len(), response.batch_item_failures.len());
        Ok(response)
    }

    async fn checkpoint(&self) -> Result<(), String> {
        let unwritten = self.metrics.checkpoint_begins();
        // Thousands of states encoded and committed: off the runtime's worker threads.
        let deferred = self.deferred.clone();
        let written = tokio::task::spawn_blocking(move || deferred.checkpoint())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match written {
            Ok(_) => {
                self.metrics.checkpointed(unwritten);
                Ok(())
            }
            Err(e) => {
                self.metrics.checkpoint_failed(unwritten);
                Err(e)
            }
        }
    }
}
