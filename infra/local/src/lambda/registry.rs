//! The function registry: one entry per cargo binary (the template's
//! `Metadata.BuildProperties.Binary`), each a constructor wiring the Lambda's handler with the
//! embedded adapters and the stack's resources. Adding a function is one entry in [`FUNCTIONS`]
//! and one file in [`super::functions`]. A template function whose binary has no entry stops the
//! start, naming both.

use std::collections::BTreeMap;
use std::sync::Arc;

use hearth_iot_rules::template::Function;

use super::{LocalFunction, StackClock};
use crate::broker::Hooks;
use crate::glue::{Queues, Storage};
use crate::metrics::Metrics;
use crate::provisioner::LocalProvisioner;
use crate::stack::StackError;

/// What a function's constructor may wire it to.
#[derive(Clone)]
pub struct Resources {
    /// The embedded database and its adapters.
    pub storage: Storage,
    /// Every queue of the template, by logical id.
    pub queues: Queues,
    /// The stack's counters.
    pub metrics: Arc<Metrics>,
    /// The broker's platform side (the local shadow service, publishing).
    pub hooks: Arc<Hooks>,
    /// The local IoT registry (things, certificates).
    pub provisioner: Arc<LocalProvisioner>,
    /// The stack's clock (the functions' "now").
    pub clock: StackClock,
}

/// Builds a function from its template definition (environment resolved) and the resources.
pub type Constructor = fn(&Function, &Resources) -> Result<Arc<dyn LocalFunction>, StackError>;

/// The local functions, by binary name.
pub const FUNCTIONS: &[(&str, Constructor)] = &[
    (
        "hearth-state-processor",
        super::functions::state_processor::build,
    ),
    ("hearth-api", super::functions::owner_api::build),
];

/// A function of the template and its local handler.
pub struct Hosted {
    /// The template's definition.
    pub function: Function,
    /// The handler.
    pub handler: Arc<dyn LocalFunction>,
}

/// Every function of the template, hosted.
#[derive(Default)]
pub struct Registry {
    by_id: BTreeMap<String, Hosted>,
}

/// The ARN prefix of a local function (`FunctionName` may be given as an ARN).
const FUNCTION_ARN: &str = "arn:aws:lambda:local:000000000000:function:";

impl Registry {
    /// Hosts every function of `functions` with the constructor `table` has for its binary.
    ///
    /// # Errors
    /// A function's binary has no entry, or its constructor refuses its environment.
    pub fn build(
        functions: &[Function],
        table: &[(&str, Constructor)],
        resources: &Resources,
    ) -> Result<Self, StackError> {
        let mut by_id = BTreeMap::new();
        for function in functions {
            let Some((_, constructor)) = table.iter().find(|(b, _)| *b == function.binary) else {
                return Err(StackError::Function {
                    function: function.logical_id.clone(),
                    detail: format!(
                        "binary `{}` has no local implementation (the local stack's function \
                         registry has: {})",
                        function.binary,
                        table.iter().map(|(b, _)| *b).collect::<Vec<_>>().join(", ")
                    ),
                });
            };
            let handler = constructor(function, resources)?;
            by_id.insert(
                function.logical_id.clone(),
                Hosted {
                    function: function.clone(),
                    handler,
                },
            );
        }
        Ok(Self { by_id })
    }

    /// The function named `name`: its logical id, its `FunctionName`, or its local ARN
    /// (`arn:aws:lambda:local:000000000000:function:<name>`, optionally `:<qualifier>`).
    pub fn get(&self, name: &str) -> Option<&Hosted> {
        let name = match name.strip_prefix(FUNCTION_ARN) {
            Some(rest) => rest.split(':').next().unwrap_or(rest),
            None => name,
        };
        self.by_id.get(name).or_else(|| {
            self.by_id
                .values()
                .find(|h| h.function.name.as_deref() == Some(name))
        })
    }

    /// The hosted functions, by logical id.
    pub fn iter(&self) -> impl Iterator<Item = &Hosted> {
        self.by_id.values()
    }

    /// Logical ids, in order.
    pub fn names(&self) -> Vec<String> {
        self.by_id.keys().cloned().collect()
    }
}

/// A variable of a function's environment.
pub fn env<'a>(function: &'a Function, name: &str) -> Result<&'a str, StackError> {
    function
        .environment
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| StackError::Function {
            function: function.logical_id.clone(),
            detail: format!("the template does not set {name}"),
        })
}

/// Checks that an environment variable names a table of the template (`local://table/<id>`).
pub fn table(function: &Function, name: &str) -> Result<(), StackError> {
    let table = env(function, name)?;
    if table.starts_with("local://table/") {
        Ok(())
    } else {
        Err(StackError::Function {
            function: function.logical_id.clone(),
            detail: format!("{name}={table} is not a table of the template"),
        })
    }
}
