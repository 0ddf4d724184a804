//! The `group` aggregate: a named set of users of one tenant.

use std::collections::BTreeSet;

use charter_events::group::{
    GroupCreated, GroupDeleted, GroupEvent, GroupMemberAdded, GroupMemberRemoved,
};
use uuid::Uuid;

use super::delegation::{Authority, Escalation};
use super::tenant::{require_active, TenantGate, TenantStatus};
use super::user::UserStatus;
use super::{Aggregate, Rejection, RejectionKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub members: BTreeSet<Uuid>,
    pub deleted: bool,
}

/// The write model of one group stream. `None` until `group.created`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group(pub Option<GroupState>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCommand {
    pub tenant_id: Uuid,
    pub tenant_status: Option<TenantStatus>,
    /// Who decides: a new member receives everything the group's assignments grant, so a
    /// caller adds members only to groups whose every permission it holds.
    pub authority: Authority,
    pub action: GroupAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupAction {
    Create {
        group_id: Uuid,
        name: String,
    },
    /// `user` is the user as loaded from its stream: its tenant and status, `None` if missing.
    /// `confers` is every permission the group's live assignments grant, in any scope.
    AddMember {
        user_id: Uuid,
        user: Option<(Uuid, UserStatus)>,
        confers: BTreeSet<String>,
    },
    RemoveMember {
        user_id: Uuid,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("group not found")]
    NotFound,
    #[error("group already exists")]
    AlreadyExists,
    #[error("user {0} not found")]
    UserNotFound(Uuid),
    #[error("user {0} is not a member of the group")]
    NotAMember(Uuid),
    #[error("tenant not found")]
    TenantNotFound,
    #[error("tenant is blocked")]
    TenantBlocked,
    #[error(transparent)]
    Escalation(#[from] Escalation),
}

impl From<GroupError> for Rejection {
    fn from(e: GroupError) -> Self {
        use RejectionKind::*;
        let (kind, code) = match &e {
            GroupError::NotFound
            | GroupError::TenantNotFound
            | GroupError::UserNotFound(_)
            | GroupError::NotAMember(_) => (NotFound, "not-found"),
            GroupError::AlreadyExists => (Conflict, "already-exists"),
            GroupError::TenantBlocked => (Conflict, "tenant-blocked"),
            GroupError::Escalation(e) => return e.clone().into(),
        };
        Rejection::new(kind, code, e)
    }
}

impl Aggregate for Group {
    type Command = GroupCommand;
    type Event = GroupEvent;
    type Error = GroupError;

    fn apply(self, event: &GroupEvent) -> Self {
        let Some(mut g) = self.0 else {
            return match event {
                GroupEvent::Created(e) => Group(Some(GroupState {
                    id: e.group_id,
                    tenant_id: e.tenant_id,
                    name: e.name.clone(),
                    members: BTreeSet::new(),
                    deleted: false,
                })),
                _ => Group(None),
            };
        };
        match event {
            GroupEvent::Created(_) => {}
            GroupEvent::MemberAdded(e) => {
                g.members.insert(e.user_id);
            }
            GroupEvent::MemberRemoved(e) => {
                g.members.remove(&e.user_id);
            }
            GroupEvent::Deleted(_) => g.deleted = true,
        }
        Group(Some(g))
    }

    fn decide(&self, command: &GroupCommand) -> Result<Vec<GroupEvent>, GroupError> {
        require_active(command.tenant_status).map_err(|gate| match gate {
            TenantGate::NotFound => GroupError::TenantNotFound,
            TenantGate::Blocked => GroupError::TenantBlocked,
        })?;
        let tenant_id = command.tenant_id;
        if let GroupAction::Create { group_id, name } = &command.action {
            if self.0.is_some() {
                return Err(GroupError::AlreadyExists);
            }
            return Ok(vec![GroupCreated {
                group_id: *group_id,
                tenant_id,
                name: name.clone(),
            }
            .into()]);
        }
        let g = match &self.0 {
            Some(g) if !g.deleted && g.tenant_id == tenant_id => g,
            _ => return Err(GroupError::NotFound),
        };
        let group_id = g.id;
        Ok(match &command.action {
            GroupAction::Create { .. } => unreachable!("handled above"),
            GroupAction::AddMember {
                user_id,
                user,
                confers,
            } => {
                // Only live users of this same tenant can join.
                match user {
                    Some((t, status)) if *t == tenant_id && *status != UserStatus::Deleted => {}
                    _ => return Err(GroupError::UserNotFound(*user_id)),
                }
                if g.members.contains(user_id) {
                    vec![]
                } else {
                    command
                        .authority
                        .may_hand_out(|| format!("adding a member to group {group_id}"), confers)?;
                    vec![GroupMemberAdded {
                        group_id,
                        tenant_id,
                        user_id: *user_id,
                    }
                    .into()]
                }
            }
            GroupAction::RemoveMember { user_id } => {
                if !g.members.contains(user_id) {
                    return Err(GroupError::NotAMember(*user_id));
                }
                vec![GroupMemberRemoved {
                    group_id,
                    tenant_id,
                    user_id: *user_id,
                }
                .into()]
            }
            GroupAction::Delete => vec![GroupDeleted {
                group_id,
                tenant_id,
            }
            .into()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;

    const T: Uuid = Uuid::from_u128(1);
    const G: Uuid = Uuid::from_u128(3);
    const U: Uuid = Uuid::from_u128(7);

    fn cmd(action: GroupAction) -> GroupCommand {
        GroupCommand {
            tenant_id: T,
            tenant_status: Some(TenantStatus::Active),
            authority: Authority::Platform,
            action,
        }
    }

    fn created() -> GroupEvent {
        GroupCreated {
            group_id: G,
            tenant_id: T,
            name: "admins".into(),
        }
        .into()
    }

    fn added() -> GroupEvent {
        GroupMemberAdded {
            group_id: G,
            tenant_id: T,
            user_id: U,
        }
        .into()
    }

    fn add(user: Option<(Uuid, UserStatus)>) -> GroupAction {
        GroupAction::AddMember {
            user_id: U,
            user,
            confers: BTreeSet::new(),
        }
    }

    #[test]
    fn a_delegate_adds_members_only_to_groups_it_could_have_granted() {
        let admins = |authority: Authority| GroupCommand {
            authority,
            ..cmd(GroupAction::AddMember {
                user_id: U,
                user: Some((T, UserStatus::Active)),
                confers: ["iam.roles.write", "iam.users.write"]
                    .map(String::from)
                    .into(),
            })
        };
        given::<Group>([created()])
            .when(admins(Authority::holding([
                "iam.groups.write",
                "iam.users.write",
            ])))
            .then_error(GroupError::Escalation(Escalation {
                what: format!("adding a member to group {G}"),
                missing: vec!["iam.roles.write".into()],
            }));
        given::<Group>([created()])
            .when(admins(Authority::holding([
                "iam.roles.write",
                "iam.users.write",
            ])))
            .then([added()]);
        // Already a member: nothing is handed out, nothing refused.
        given::<Group>([created(), added()])
            .when(admins(Authority::holding::<&str>([])))
            .then([]);
        // Removing a member hands out nothing.
        let remove = GroupCommand {
            authority: Authority::holding::<&str>([]),
            ..cmd(GroupAction::RemoveMember { user_id: U })
        };
        given::<Group>([created(), added()])
            .when(remove)
            .then([GroupMemberRemoved {
                group_id: G,
                tenant_id: T,
                user_id: U,
            }
            .into()]);
    }

    #[test]
    fn adds_a_member_once() {
        given::<Group>([created()])
            .when(cmd(add(Some((T, UserStatus::Active)))))
            .then([added()]);
        given::<Group>([created(), added()])
            .when(cmd(add(Some((T, UserStatus::Active)))))
            .then([]);
    }

    #[test]
    fn only_live_users_of_the_same_tenant_can_join() {
        for user in [
            None,
            Some((T, UserStatus::Deleted)),
            Some((Uuid::from_u128(2), UserStatus::Active)),
        ] {
            given::<Group>([created()])
                .when(cmd(add(user)))
                .then_error(GroupError::UserNotFound(U));
        }
        // A disabled user can be a member; it simply has no entitlements while disabled.
        given::<Group>([created()])
            .when(cmd(add(Some((T, UserStatus::Disabled)))))
            .then([added()]);
    }

    #[test]
    fn removes_members_and_refuses_strangers() {
        given::<Group>([created(), added()])
            .when(cmd(GroupAction::RemoveMember { user_id: U }))
            .then([GroupMemberRemoved {
                group_id: G,
                tenant_id: T,
                user_id: U,
            }
            .into()]);
        given::<Group>([created()])
            .when(cmd(GroupAction::RemoveMember { user_id: U }))
            .then_error(GroupError::NotAMember(U));
    }

    #[test]
    fn a_deleted_group_is_gone() {
        let deleted: GroupEvent = GroupDeleted {
            group_id: G,
            tenant_id: T,
        }
        .into();
        given::<Group>([created(), deleted])
            .when(cmd(GroupAction::Delete))
            .then_error(GroupError::NotFound);
    }
}
