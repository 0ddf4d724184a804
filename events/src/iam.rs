//! Every published event as one type, for consumers of `charter.iam.events.v1`.
//!
//! A consumer receives a CloudEvent whose `type` is `dev.charter.<event_type>.v<N>`
//! ([`crate::cloudevent`]). [`IamEvent::decode`] routes it to its family by the part of the
//! type name before the first dot and decodes it there, upcasting a superseded version to the
//! current one, so a consumer matches only on current payloads.

use serde_json::Value;

use crate::assignment::AssignmentEvent;
use crate::group::GroupEvent;
use crate::keyring::KeyringEvent;
use crate::permission::PermissionEvent;
use crate::role::RoleEvent;
use crate::service_account::ServiceAccountEvent;
use crate::session::SessionEvent;
use crate::tenant::TenantEvent;
use crate::token::TokenEvent;
use crate::user::UserEvent;
use crate::workspace::WorkspaceEvent;
use crate::{DecodeError, DomainEvent};

macro_rules! iam_events {
    ($( $variant:ident($family:ty) = $prefix:literal ),+ $(,)?) => {
        /// One event of any family, decoded and upcast.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum IamEvent {
            $(
                #[doc = concat!("A `", $prefix, ".*` event.")]
                $variant($family),
            )+
        }

        impl IamEvent {
            /// Decodes an event by its type name (`tenant.renamed`, without the CloudEvents
            /// prefix) and schema version; superseded versions are upcast.
            pub fn decode(
                event_type: &str,
                schema_version: u32,
                data: Value,
            ) -> Result<Self, DecodeError> {
                let family = event_type.split_once('.').map_or(event_type, |(f, _)| f);
                match family {
                    $( $prefix => <$family>::decode(event_type, schema_version, data)
                        .map(Self::$variant), )+
                    _ => Err(DecodeError::UnknownType {
                        event_type: event_type.to_owned(),
                        schema_version,
                    }),
                }
            }

            /// The stable type name, e.g. `tenant.renamed`.
            pub fn event_type(&self) -> &'static str {
                match self { $( Self::$variant(e) => e.event_type() ),+ }
            }

            /// The current schema version of this event's type.
            pub fn schema_version(&self) -> u32 {
                match self { $( Self::$variant(e) => e.schema_version() ),+ }
            }

            /// The event's data, in its current schema.
            pub fn to_data(&self) -> Value {
                match self { $( Self::$variant(e) => e.to_data() ),+ }
            }
        }

        $( impl From<$family> for IamEvent {
            fn from(e: $family) -> Self { Self::$variant(e) }
        } )+
    };
}

iam_events! {
    Tenant(TenantEvent) = "tenant",
    Workspace(WorkspaceEvent) = "workspace",
    Permission(PermissionEvent) = "permission",
    User(UserEvent) = "user",
    Group(GroupEvent) = "group",
    Role(RoleEvent) = "role",
    Assignment(AssignmentEvent) = "assignment",
    ServiceAccount(ServiceAccountEvent) = "service_account",
    Session(SessionEvent) = "session",
    Keyring(KeyringEvent) = "keyring",
    Token(TokenEvent) = "token",
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::all_schemas;

    /// Every type in the catalogue routes to a family that knows it: decoding it fails, if
    /// at all, on its (empty) data, never as an unknown type.
    #[test]
    fn every_catalogued_type_routes_to_its_family() {
        for s in all_schemas() {
            match IamEvent::decode(s.event_type, s.schema_version, Value::Null) {
                Err(DecodeError::InvalidData { .. }) => {}
                other => panic!("{} v{}: {other:?}", s.event_type, s.schema_version),
            }
        }
    }

    #[test]
    fn unknown_types_and_versions_are_refused() {
        for (ty, v) in [("tenant.renamed", 99), ("nope.created", 1), ("tenant", 1)] {
            assert!(
                matches!(
                    IamEvent::decode(ty, v, Value::Null),
                    Err(DecodeError::UnknownType { .. })
                ),
                "{ty} v{v}"
            );
        }
    }

    #[test]
    fn a_superseded_version_is_upcast() {
        let v1 = serde_json::json!({
            "user_id": "00000000-0000-0000-0000-000000000001",
            "tenant_id": "00000000-0000-0000-0000-000000000002",
            "username": "ada",
            "email": "ada@example.com",
            "display_name": "Ada",
            "has_password": true,
        });
        let event = IamEvent::decode("user.created", 1, v1).expect("v1 decodes");
        assert_eq!(event.event_type(), "user.created");
        assert_eq!(event.schema_version(), 2);
        let IamEvent::User(UserEvent::Created(created)) = event else {
            panic!("not a user.created: {event:?}");
        };
        assert_eq!(created.username, "ada");
        assert_eq!(created.given_name, None);
    }
}
