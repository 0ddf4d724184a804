//! Events of the `group` aggregate: a named set of users of one tenant. Assignments to a group
//! apply to every member.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupCreated {
    pub group_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupMemberAdded {
    pub group_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupMemberRemoved {
    pub group_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
}

/// A group was deleted; its name becomes free, its memberships and assignments lapse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupDeleted {
    pub group_id: Uuid,
    pub tenant_id: Uuid,
}

crate::event_family! {
    /// Every event of the `group` aggregate.
    pub enum GroupEvent for "group" {
        Created(GroupCreated) = "group.created" v 1,
        MemberAdded(GroupMemberAdded) = "group.member_added" v 1,
        MemberRemoved(GroupMemberRemoved) = "group.member_removed" v 1,
        Deleted(GroupDeleted) = "group.deleted" v 1,
    }
}

impl crate::Scoped for GroupEvent {
    fn tenant_id(&self) -> Uuid {
        match self {
            Self::Created(e) => e.tenant_id,
            Self::MemberAdded(e) => e.tenant_id,
            Self::MemberRemoved(e) => e.tenant_id,
            Self::Deleted(e) => e.tenant_id,
        }
    }
}
