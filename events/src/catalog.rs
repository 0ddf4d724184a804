//! The machinery shared by every event family: the [`DomainEvent`] trait, the decode error,
//! and the `event_family!` macro that ties enum variants to their stable type names,
//! schema versions and JSON Schemas.

use schemars::Schema;
use serde_json::Value;

/// A family of events belonging to one aggregate type (for example every `tenant.*` event).
pub trait DomainEvent: Sized {
    /// The aggregate type whose streams hold these events, e.g. `tenant`.
    const STREAM_TYPE: &'static str;
    /// The stable, dotted, past-tense type name, e.g. `tenant.renamed`.
    fn event_type(&self) -> &'static str;
    /// The version of this event type's data schema.
    fn schema_version(&self) -> u32;
    /// The event's data, as stored in `events.data` and published as the CloudEvent data.
    fn to_data(&self) -> Value;
    /// Rebuilds an event from a stored row, upcasting older schema versions.
    fn decode(event_type: &str, schema_version: u32, data: Value) -> Result<Self, DecodeError>;

    /// Whether the event is published to Kafka. Internal events (those carrying secrets such
    /// as password hashes) stay in the log, which must rebuild everything, but get no outbox
    /// row.
    fn published(&self) -> bool {
        true
    }
}

/// Which tenant (and workspace) an event belongs to: its row's `tenant_id`/`workspace_id`,
/// its CloudEvent `source`, and its Kafka key.
pub trait Scoped {
    fn tenant_id(&self) -> uuid::Uuid;
    fn workspace_id(&self) -> Option<uuid::Uuid> {
        None
    }
}

/// The JSON Schema of one version of one event type.
#[derive(Debug, Clone)]
pub struct EventSchema {
    pub event_type: &'static str,
    pub schema_version: u32,
    /// Whether events of this type are published to Kafka (see [`DomainEvent::published`]).
    pub published: bool,
    /// False for a superseded version: no longer emitted, but rows of it stay in the log (and
    /// may still be in flight to consumers), and decoding upcasts them to the current one.
    pub current: bool,
    pub schema: Schema,
}

impl EventSchema {
    /// The file name under `schemas/events/`, e.g. `tenant.created.v1.json`.
    pub fn file_name(&self) -> String {
        schema_file_name(self.event_type, self.schema_version)
    }
}

/// The file name of an event type's JSON Schema under `schemas/events/`.
pub fn schema_file_name(event_type: &str, schema_version: u32) -> String {
    format!("{event_type}.v{schema_version}.json")
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {event_type} v{schema_version}")]
    UnknownType {
        event_type: String,
        schema_version: u32,
    },
    #[error("event {event_type} v{schema_version} has invalid data: {source}")]
    InvalidData {
        event_type: String,
        schema_version: u32,
        #[source]
        source: serde_json::Error,
    },
}

/// Declares an event family: an enum whose variants each wrap one payload struct, bound to a
/// stable type name and schema version. Generates the [`DomainEvent`] impl and `schemas()`.
/// A variant marked `internal` is never published (see [`DomainEvent::published`]).
///
/// An optional `upcast { "type" v N => Legacy, … }` section lists superseded versions: rows of
/// those stay in the log untouched, and `decode` reads them as `Legacy` and converts them with
/// `From<Legacy> for Family`, so every consumer of the family sees only current versions.
#[macro_export]
macro_rules! event_family {
    (@published) => { true };
    (@published internal) => { false };
    (
        $(#[$meta:meta])*
        pub enum $family:ident for $stream_type:literal {
            $( $variant:ident($payload:ty) = $type_name:literal v $version:literal $($internal:ident)? ),+ $(,)?
        }
        $( upcast {
            $( $legacy_name:literal v $legacy_version:literal => $legacy:ty ),+ $(,)?
        } )?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $family { $( $variant($payload) ),+ }

        impl $crate::catalog::DomainEvent for $family {
            const STREAM_TYPE: &'static str = $stream_type;

            fn event_type(&self) -> &'static str {
                match self { $( Self::$variant(_) => $type_name ),+ }
            }

            fn schema_version(&self) -> u32 {
                match self { $( Self::$variant(_) => $version ),+ }
            }

            fn published(&self) -> bool {
                match self { $( Self::$variant(_) => $crate::event_family!(@published $($internal)?) ),+ }
            }

            fn to_data(&self) -> serde_json::Value {
                let data = match self { $( Self::$variant(p) => serde_json::to_value(p) ),+ };
                data.expect("event payloads serialize infallibly")
            }

            fn decode(
                event_type: &str,
                schema_version: u32,
                data: serde_json::Value,
            ) -> Result<Self, $crate::catalog::DecodeError> {
                match (event_type, schema_version) {
                    $( ($type_name, $version) => serde_json::from_value::<$payload>(data)
                        .map(Self::$variant)
                        .map_err(|source| $crate::catalog::DecodeError::InvalidData {
                            event_type: event_type.to_owned(),
                            schema_version,
                            source,
                        }), )+
                    $( $( ($legacy_name, $legacy_version) => serde_json::from_value::<$legacy>(data)
                        .map(Self::from)
                        .map_err(|source| $crate::catalog::DecodeError::InvalidData {
                            event_type: event_type.to_owned(),
                            schema_version,
                            source,
                        }), )+ )?
                    _ => Err($crate::catalog::DecodeError::UnknownType {
                        event_type: event_type.to_owned(),
                        schema_version,
                    }),
                }
            }
        }

        impl $family {
            /// The JSON Schema of every event type in this family.
            pub fn schemas() -> Vec<$crate::catalog::EventSchema> {
                let current = [ $( $crate::catalog::EventSchema {
                    event_type: $type_name,
                    schema_version: $version,
                    published: $crate::event_family!(@published $($internal)?),
                    current: true,
                    schema: schemars::schema_for!($payload),
                } ),+ ];
                let legacy: Vec<$crate::catalog::EventSchema> = vec![ $( $( {
                    let published = current
                        .iter()
                        .find(|s| s.event_type == $legacy_name)
                        .map_or(true, |s| s.published);
                    $crate::catalog::EventSchema {
                        event_type: $legacy_name,
                        schema_version: $legacy_version,
                        published,
                        current: false,
                        schema: schemars::schema_for!($legacy),
                    }
                } ),+ )? ];
                current.into_iter().chain(legacy).collect()
            }
        }

        $( impl From<$payload> for $family {
            fn from(p: $payload) -> Self { Self::$variant(p) }
        } )+
    };
}
