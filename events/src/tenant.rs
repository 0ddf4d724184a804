//! Events of the `tenant` aggregate. A tenant is an isolated customer account; tenants form a
//! hierarchy through an optional parent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant came into existence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantCreated {
    pub tenant_id: Uuid,
    pub name: String,
    /// Globally unique, lower-case, URL-safe handle.
    pub slug: String,
    /// The parent tenant, if this tenant sits below another in the hierarchy.
    pub parent_id: Option<Uuid>,
}

/// A tenant's display name changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantRenamed {
    pub tenant_id: Uuid,
    pub name: String,
}

/// A tenant moved below another parent (or to the root when `parent_id` is null).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantMoved {
    pub tenant_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub previous_parent_id: Option<Uuid>,
}

/// A tenant was blocked: its principals can no longer act, and its workspaces are frozen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantBlocked {
    pub tenant_id: Uuid,
    pub reason: Option<String>,
}

/// A blocked tenant was unblocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantUnblocked {
    pub tenant_id: Uuid,
}

/// A tenant was soft-deleted. Its history stays in the log; its slug stays reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantDeleted {
    pub tenant_id: Uuid,
}

crate::event_family! {
    /// Every event of the `tenant` aggregate.
    pub enum TenantEvent for "tenant" {
        Created(TenantCreated) = "tenant.created" v 1,
        Renamed(TenantRenamed) = "tenant.renamed" v 1,
        Moved(TenantMoved) = "tenant.moved" v 1,
        Blocked(TenantBlocked) = "tenant.blocked" v 1,
        Unblocked(TenantUnblocked) = "tenant.unblocked" v 1,
        Deleted(TenantDeleted) = "tenant.deleted" v 1,
    }
}

impl crate::Scoped for TenantEvent {
    fn tenant_id(&self) -> Uuid {
        match self {
            Self::Created(e) => e.tenant_id,
            Self::Renamed(e) => e.tenant_id,
            Self::Moved(e) => e.tenant_id,
            Self::Blocked(e) => e.tenant_id,
            Self::Unblocked(e) => e.tenant_id,
            Self::Deleted(e) => e.tenant_id,
        }
    }
}
