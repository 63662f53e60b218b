//! Assembling the local stack: storage, routing from the template, broker, functions, HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mqtt5::broker::config::{BrokerConfig, StorageBackend, StorageConfig};
use mqtt5::broker::{BrokerShutdownHandle, MqttBroker};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info};

use crate::api::LocalApi;
use crate::auth::{Access, DeviceAuth};
use crate::backend::Backend;
use crate::broker::Hooks;
use crate::glue::{self, Storage};
use crate::lambda::http_api::HttpRoutes;
use crate::lambda::registry::{Constructor, FUNCTIONS, Registry, Resources};
use crate::lambda::schedule::{Scheduler, clock_router};
use crate::lambda::{StackClock, invoke};
use crate::metrics::Metrics;
use crate::pipeline::{self, EventSource};
use crate::provisioner::{LocalCa, LocalProvisioner};
use crate::shadow_service::ShadowService;
use crate::tokens::DevTokens;

/// Largest MQTT packet the local broker accepts.
const MAX_PACKET_BYTES: usize = 128 * 1024 + 4 * 1024;

/// Where the stack keeps its data and listens.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory (created if missing).
    pub data_dir: PathBuf,
    /// MQTT listener (port 0 picks a free port).
    pub mqtt: SocketAddr,
    /// HTTP listener (port 0 picks a free port).
    pub http: SocketAddr,
    /// The SAM template to emulate.
    pub template: PathBuf,
    /// Let any MQTT client connect and use any topic (no credentials, no policy).
    pub allow_anonymous: bool,
    /// Template parameters given a value (`--parameter-overrides Key=Value`).
    pub parameter_overrides: BTreeMap<String, String>,
    /// Run on a manual clock that `POST /local/clock` moves (`--manual-clock`).
    pub manual_clock: bool,
    /// The function registry: a constructor per binary name ([`FUNCTIONS`] by default).
    pub functions: Vec<(&'static str, Constructor)>,
}

impl Config {
    /// A stack of `template` with its data in `data_dir`, listening on `mqtt` and `http`, with
    /// the device policy enforced, the template's defaults, the system clock and every local
    /// function.
    pub fn new(data_dir: PathBuf, mqtt: SocketAddr, http: SocketAddr, template: PathBuf) -> Self {
        Self {
            data_dir,
            mqtt,
            http,
            template,
            allow_anonymous: false,
            parameter_overrides: BTreeMap::new(),
            manual_clock: false,
            functions: FUNCTIONS.to_vec(),
        }
    }
}

/// Parses `Key=Value` (one `--parameter-overrides` item, as `sam deploy` takes them; also
/// `ParameterKey=Key,ParameterValue=Value`).
pub fn parameter_override(text: &str) -> Result<(String, String), String> {
    let long = text
        .strip_prefix("ParameterKey=")
        .and_then(|rest| rest.split_once(",ParameterValue="));
    let (key, value) = match long {
        Some(pair) => pair,
        None => text
            .split_once('=')
            .ok_or_else(|| format!("`{text}`: expected Key=Value"))?,
    };
    if key.is_empty() {
        return Err(format!("`{text}`: the parameter name is empty"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Why the stack could not start (or a benchmark failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The template could not be read or uses something the local stack cannot emulate.
    #[error("template {path}: {detail}")]
    Template {
        /// The template.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The data directory could not be opened.
    #[error("data directory {path}: {detail}")]
    Storage {
        /// The directory.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A function of the template has no local implementation or an environment it cannot run.
    #[error("function {function}: {detail}")]
    Function {
        /// The function's logical id.
        function: String,
        /// What is wrong.
        detail: String,
    },
    /// The MQTT broker failed to start.
    #[error("MQTT broker: {0}")]
    Broker(String),
    /// A listener could not be bound, or another I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A benchmark step failed.
    #[error("benchmark: {0}")]
    Bench(String),
}

/// A running local stack.
pub struct Stack {
    mqtt: SocketAddr,
    http: SocketAddr,
    data_dir: PathBuf,
    template: PathBuf,
    functions: Vec<String>,
    http_routes: Vec<String>,
    manual_clock: bool,
    rules: usize,
    metrics: Arc<Metrics>,
    shutdown: watch::Sender<bool>,
    broker: BrokerShutdownHandle,
    broker_task: tokio::task::JoinHandle<()>,
    hooks: Arc<Hooks>,
    ingress: Arc<glue::RulesIngress>,
    tasks: JoinSet<()>,
    backend: Backend,
    storage: Storage,
    allow_anonymous: bool,
}

/// The device policy the broker enforces: the template's one `AWS::IoT::Policy`.
fn device_policy(
    routing: &hearth_iot_rules::template::Routing,
    template: &std::path::Path,
) -> Result<hearth_iot_rules::policy::Policy, StackError> {
    let policies = routing.policies();
    match policies.values().next() {
        Some(policy) if policies.len() == 1 => Ok(policy.clone()),
        _ => Err(StackError::Template {
            path: template.display().to_string(),
            detail: format!(
                "the broker enforces the device policy: the template needs exactly one \
                 AWS::IoT::Policy, it has {} ({}); or start with --allow-anonymous",
                policies.len(),
                policies.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// Refuses event sources the template declares that the local stack does not emulate yet
/// (rather than never invoking them).
fn refuse_unemulated(
    routing: &hearth_iot_rules::template::Routing,
    template: &std::path::Path,
) -> Result<(), StackError> {
    use hearth_iot_rules::template::Trigger;
    for function in routing.functions() {
        for event in &function.events {
            if let Trigger::DynamoDb(stream) = &event.trigger {
                return Err(StackError::Function {
                    function: function.logical_id.clone(),
                    detail: format!(
                        "event {}: DynamoDB stream event sources (table {}) are not emulated \
                         locally yet",
                        event.name, stream.table
                    ),
                });
            }
        }
    }
    if let Some(route) = routing.sqs_send_message_routes().first() {
        return Err(StackError::Template {
            path: template.display().to_string(),
            detail: format!(
                "resource {}: route {} ({}): SQS-SendMessage integrations are not emulated locally yet",
                route.route_id,
                route.route.key(),
                route.integration
            ),
        });
    }
    Ok(())
}

impl Stack {
    /// Starts everything; returns once every listener is bound.
    pub async fn start(config: Config) -> Result<Stack, StackError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| StackError::Storage {
            path: config.data_dir.display().to_string(),
            detail: e.to_string(),
        })?;
        let routing = glue::load_routing_with(&config.template, &config.parameter_overrides)?;
        refuse_unemulated(&routing, &config.template)?;
        let storage = Storage::open(&config.data_dir)?;
        let queues = storage.open_queues(&routing)?;
        let metrics = Arc::new(Metrics::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        // Committers and functions run on the backend thread, not among the connections.
        let backend = Backend::start()?;
        let clock = if config.manual_clock {
            StackClock::manual()
        } else {
            StackClock::system()
        };

        // IoT Core: broker, rules, shadow service, presence.
        let (log, logged) = storage.open_ingest_log()?;
        let ingress = Arc::new(
            glue::RulesIngress::start(&routing, &queues, log, logged, backend.handle()).await?,
        );
        let shadows = ShadowService::new(storage.shadows());
        let hooks = Arc::new(Hooks::new(
            ingress.clone(),
            shadows,
            storage.versions(),
            clock.clock(),
        ));
        let provisioner = Arc::new(LocalProvisioner::new(
            storage.documents("iot"),
            LocalCa::open(&config.data_dir)?,
        ));

        // Functions: every function of the template, from the registry.
        let registry = Arc::new(Registry::build(
            routing.functions(),
            &config.functions,
            &Resources {
                storage: storage.clone(),
                queues: queues.clone(),
                metrics: metrics.clone(),
                hooks: hooks.clone(),
                provisioner: provisioner.clone(),
                clock: clock.clone(),
            },
        )?);
        // Their SQS event sources.
        for consumer in glue::consumers(&routing) {
            let Some(hosted) = registry.get(&consumer.function) else {
                return Err(StackError::Function {
                    function: consumer.function,
                    detail: "consumes a queue but is not hosted".to_owned(),
                });
            };
            let queue = glue::queue_for(&consumer, &queues)?;
            let source = EventSource {
                function: consumer.function.clone(),
                queue,
                handler: hosted.handler.clone(),
                batch_size: consumer.batch_size,
                batching_window: consumer.batching_window,
                concurrency: consumer.concurrency,
                checkpoint_every: consumer.checkpoint_every,
            };
            tasks.spawn_on(pipeline::run(source, shutdown_rx.clone()), backend.handle());
        }
        // Their schedules.
        let scheduler = Arc::new(Scheduler::new(&registry, clock.clone()));
        tasks.spawn(scheduler.clone().run(shutdown_rx.clone()));

        let access = if config.allow_anonymous {
            tracing::warn!(
                "--allow-anonymous: ANY MQTT client may connect and use ANY topic; the device \
                 policy is NOT enforced"
            );
            Access::Anonymous
        } else {
            Access::Policy {
                policy: device_policy(&routing, &config.template)?,
                arn_prefix: routing.arn_prefix(),
                provisioner: provisioner.clone(),
            }
        };
        let auth = Arc::new(DeviceAuth::new(access, hooks.clone()));
        let broker_config = BrokerConfig::default()
            .with_bind_address(config.mqtt)
            .with_max_clients(100_000)
            // AWS IoT Core's largest payload (128 KiB) plus room for the topic and properties.
            .with_max_packet_size(MAX_PACKET_BYTES)
            .with_sys_topics_enabled(false)
            .with_storage(StorageConfig {
                backend: StorageBackend::File,
                base_dir: config.data_dir.join("mqtt"),
                ..StorageConfig::default()
            })
            .with_event_handler(hooks.clone());
        let mut broker = MqttBroker::with_config(broker_config)
            .await
            .map_err(|e| StackError::Broker(e.to_string()))?
            .with_auth_provider(auth);
        hooks.attach(broker.router());
        let mqtt = broker
            .local_addr()
            .ok_or_else(|| StackError::Broker("no MQTT listener address".to_owned()))?;
        provisioner.set_endpoint(mqtt.to_string());
        let broker_handle = broker.shutdown_handle();
        let broker_task = tokio::spawn(async move {
            if let Err(e) = broker.run().await {
                error!(error = %e, "MQTT broker stopped");
            }
        });

        // HTTP: local views, development tokens, the clock, direct invokes, and the template's
        // HTTP API routes (the owner API) for everything else.
        let listener = TcpListener::bind(config.http).await?;
        let http = listener.local_addr()?;
        let inspect = Arc::new(glue::Inspector::new(&storage, &queues, metrics.clone()));
        let api = Arc::new(LocalApi {
            tokens: DevTokens::open(&config.data_dir, clock.clock())?,
        });
        let http_routes = Arc::new(HttpRoutes::new(&registry, api.clone(), clock.clone()));
        let route_keys = http_routes.keys();
        let routes = crate::api::router(api)
            .merge(clock_router(clock.clone(), scheduler))
            .merge(invoke::router(registry.clone()))
            .merge(http_routes.router());
        let http_shutdown = shutdown_rx.clone();
        tasks.spawn(async move {
            if let Err(e) = crate::http::serve(listener, inspect, routes, http_shutdown).await {
                error!(error = %e, "HTTP listener stopped");
            }
        });

        info!(%mqtt, %http, data_dir = %config.data_dir.display(), "local stack started");
        Ok(Stack {
            mqtt,
            http,
            data_dir: config.data_dir,
            template: config.template,
            functions: registry.names(),
            http_routes: route_keys,
            manual_clock: config.manual_clock,
            rules: glue::rule_count(&routing),
            metrics,
            shutdown,
            broker: broker_handle,
            broker_task,
            hooks,
            ingress,
            tasks,
            backend,
            storage,
            allow_anonymous: config.allow_anonymous,
        })
    }

    /// The MQTT listener.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt
    }

    /// The HTTP listener.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// An in-process subscriber on the broker (see [`Hooks::subscribe_in_process`]).
    pub async fn subscribe_in_process(
        &self,
        client_id: &str,
        filter: &str,
        capacity: usize,
    ) -> Option<crate::broker::InProcess> {
        self.hooks
            .subscribe_in_process(client_id, filter, capacity)
            .await
    }

    /// The stack's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// What `hearth-local up` prints.
    pub fn banner(&self) -> String {
        format!(
            "Hearth local stack is up\n\
             \n  MQTT      mqtt://{mqtt}  (MQTT 3.1.1 and 5, QoS 0/1, retained; {access})\
             \n  HTTP      http://{http}  (HTTP API routes: {routes} ; POST /dev/tokens ; GET /.well-known/jwks.json ; POST /2015-03-31/functions/<name>/invocations ; GET /health, /local/devices/<thing>/state, /local/queues, /local/dead-letters, /local/metrics ; GET/POST /local/clock)\
             \n  clock     {clock}\
             \n  data      {data}\
             \n  template  {template}: {rules} topic rules, functions: {functions}\
             \n\nProvision a device through the owner API (a maker registers it, an owner claims it: the\
             \nclaim returns mqttUsername and mqttPassword), then connect with client id = thing name:\
             \n  mosquitto_pub -h {host} -p {port} -i <thing> -u <thing> -P <password> -q 1 -t '$aws/things/<thing>/shadow/update' -m '{{\"state\":{{\"reported\":{{\"power\":\"on\"}}}}}}'\
             \n  curl http://{http}/local/devices/<thing>/state\
             \n(`simulate` does all of this for many devices; `up --allow-anonymous` lets any client in.)\
             \n\nCall the owner API with a development token (POST /dev/tokens {{\"user\":\"alice\"}} also gives one):\
             \n  TOKEN=$(cargo run -q --profile local -p hearth-local -- token alice --data-dir {data})\
             \n  curl -H \"Authorization: Bearer $TOKEN\" http://{http}/v1/devices\
             \nLoad it:  cargo run --profile local -p hearth-local -- simulate --devices 1000 --rate 10000\
             \nCtrl-C stops the stack; the data directory keeps shadows, state and queued messages.",
            mqtt = self.mqtt,
            http = self.http,
            access = if self.allow_anonymous {
                "!!! --allow-anonymous: ANY client may connect and use ANY topic !!!"
            } else {
                "devices connect with the credentials a claim returns; the template's IoT policy applies"
            },
            host = self.mqtt.ip(),
            port = self.mqtt.port(),
            data = self.data_dir.display(),
            template = self.template.display(),
            rules = self.rules,
            functions = self.functions.join(", "),
            routes = if self.http_routes.is_empty() {
                "none".to_owned()
            } else {
                self.http_routes.join(", ")
            },
            clock = if self.manual_clock {
                "manual (--manual-clock): moves only with POST /local/clock {\"advanceSeconds\": n}"
            } else {
                "system"
            },
        )
    }

    /// Stops the listeners and the functions (a batch in progress finishes), and flushes the
    /// storage. Messages received but not yet deleted stay queued.
    pub async fn stop(mut self) {
        // The broker first: connections close and their disconnect events are still
        // projected; only then is the platform detached from the broker's hooks.
        self.broker.shutdown();
        if tokio::time::timeout(Duration::from_secs(5), &mut self.broker_task)
            .await
            .is_err()
        {
            self.broker_task.abort();
        }
        self.hooks.detach();
        // What the broker acknowledged reaches the queues before they close.
        self.ingress.close().await;
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        // Whatever is left on the backend (after a timeout above) is cancelled before the
        // final flush, so nothing writes after it.
        self.backend.stop().await;
        if let Err(e) = self.storage.flush().await {
            error!(error = %e, "final flush failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parameter_override;

    #[test]
    fn parameter_overrides_take_both_sam_syntaxes() {
        assert_eq!(
            parameter_override("EnableOwnerApi=false"),
            Ok(("EnableOwnerApi".to_owned(), "false".to_owned()))
        );
        assert_eq!(
            parameter_override("Prefix=a=b"),
            Ok(("Prefix".to_owned(), "a=b".to_owned()))
        );
        assert_eq!(
            parameter_override("ParameterKey=Prefix,ParameterValue=dev"),
            Ok(("Prefix".to_owned(), "dev".to_owned()))
        );
        assert!(parameter_override("Prefix").is_err());
        assert!(parameter_override("=x").is_err());
    }
}
