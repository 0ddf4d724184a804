//! The `tenant` aggregate: an isolated customer account inside a hierarchy of tenants.

use charter_events::tenant::{
    TenantBlocked, TenantCreated, TenantDeleted, TenantEvent, TenantMoved, TenantRenamed,
    TenantUnblocked,
};
use serde::Serialize;
use uuid::Uuid;

use super::{Aggregate, Rejection, RejectionKind};

/// How deep the hierarchy may grow (the root tenant is depth 1).
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Blocked,
    Deleted,
}

/// Why something inside a tenant cannot change now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantGate {
    NotFound,
    Blocked,
}

/// Things inside a tenant (workspaces, users, groups, ...) only change while it is active.
/// `status` is the tenant's status as read under its shared lock; `None` when it is missing.
pub fn require_active(status: Option<TenantStatus>) -> Result<(), TenantGate> {
    match status {
        None | Some(TenantStatus::Deleted) => Err(TenantGate::NotFound),
        Some(TenantStatus::Blocked) => Err(TenantGate::Blocked),
        Some(TenantStatus::Active) => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantState {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub parent_id: Option<Uuid>,
    pub status: TenantStatus,
    pub blocked_reason: Option<String>,
}

/// The write model of one tenant stream. `None` until `tenant.created`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tenant(pub Option<TenantState>);

/// What a command needs to know about a prospective parent, loaded before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentContext {
    pub id: Uuid,
    /// `None` when no such tenant exists.
    pub status: Option<TenantStatus>,
    /// The parent's own ancestors, nearest first.
    pub ancestors: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantCommand {
    Create {
        tenant_id: Uuid,
        name: String,
        slug: String,
        parent: Option<ParentContext>,
    },
    Rename {
        name: String,
    },
    Move {
        parent: Option<ParentContext>,
        /// Levels in the moving tenant's subtree, itself included (1 for a leaf).
        subtree_height: usize,
    },
    Block {
        reason: Option<String>,
    },
    Unblock,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("tenant not found")]
    NotFound,
    #[error("tenant already exists")]
    AlreadyExists,
    #[error("tenant has been deleted")]
    Deleted,
    #[error("parent tenant {0} does not exist")]
    ParentNotFound(Uuid),
    #[error("parent tenant {0} is blocked")]
    ParentBlocked(Uuid),
    #[error("moving the tenant below {0} would create a cycle")]
    Cycle(Uuid),
    #[error("the tenant hierarchy may be at most {MAX_DEPTH} levels deep")]
    TooDeep,
}

impl From<TenantError> for Rejection {
    fn from(e: TenantError) -> Self {
        use RejectionKind::*;
        let (kind, code) = match &e {
            TenantError::NotFound | TenantError::Deleted => (NotFound, "not-found"),
            TenantError::AlreadyExists => (Conflict, "already-exists"),
            TenantError::ParentNotFound(_) => (Invalid, "parent-not-found"),
            TenantError::ParentBlocked(_) => (Invalid, "parent-blocked"),
            TenantError::Cycle(_) => (Invalid, "hierarchy-cycle"),
            TenantError::TooDeep => (Invalid, "hierarchy-too-deep"),
        };
        Rejection::new(kind, code, e)
    }
}

impl Tenant {
    fn live(&self) -> Result<&TenantState, TenantError> {
        match &self.0 {
            None => Err(TenantError::NotFound),
            Some(t) if t.status == TenantStatus::Deleted => Err(TenantError::Deleted),
            Some(t) => Ok(t),
        }
    }
}

/// Checks that `parent` can hold `child`, which is being created or moved together with a
/// subtree `height` levels tall.
fn check_parent(child: Uuid, parent: &ParentContext, height: usize) -> Result<(), TenantError> {
    match parent.status {
        None | Some(TenantStatus::Deleted) => return Err(TenantError::ParentNotFound(parent.id)),
        Some(TenantStatus::Blocked) => return Err(TenantError::ParentBlocked(parent.id)),
        Some(TenantStatus::Active) => {}
    }
    if parent.id == child || parent.ancestors.contains(&child) {
        return Err(TenantError::Cycle(parent.id));
    }
    // root = depth 1: the parent sits at ancestors + 1, the subtree's deepest level at
    // ancestors + 1 + height.
    if parent.ancestors.len() + 1 + height > MAX_DEPTH {
        return Err(TenantError::TooDeep);
    }
    Ok(())
}

impl Aggregate for Tenant {
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenantError;

    fn apply(self, event: &TenantEvent) -> Self {
        let Some(mut t) = self.0 else {
            return match event {
                TenantEvent::Created(e) => Tenant(Some(TenantState {
                    id: e.tenant_id,
                    name: e.name.clone(),
                    slug: e.slug.clone(),
                    parent_id: e.parent_id,
                    status: TenantStatus::Active,
                    blocked_reason: None,
                })),
                _ => Tenant(None),
            };
        };
        match event {
            TenantEvent::Created(_) => {}
            TenantEvent::Renamed(e) => t.name = e.name.clone(),
            TenantEvent::Moved(e) => t.parent_id = e.parent_id,
            TenantEvent::Blocked(e) => {
                t.status = TenantStatus::Blocked;
                t.blocked_reason = e.reason.clone();
            }
            TenantEvent::Unblocked(_) => {
                t.status = TenantStatus::Active;
                t.blocked_reason = None;
            }
            TenantEvent::Deleted(_) => t.status = TenantStatus::Deleted,
        }
        Tenant(Some(t))
    }

    fn decide(&self, command: &TenantCommand) -> Result<Vec<TenantEvent>, TenantError> {
        if let TenantCommand::Create {
            tenant_id,
            name,
            slug,
            parent,
        } = command
        {
            if self.0.is_some() {
                return Err(TenantError::AlreadyExists);
            }
            if let Some(parent) = parent {
                check_parent(*tenant_id, parent, 1)?;
            }
            return Ok(vec![TenantCreated {
                tenant_id: *tenant_id,
                name: name.clone(),
                slug: slug.clone(),
                parent_id: parent.as_ref().map(|p| p.id),
            }
            .into()]);
        }

        let t = self.live()?;
        let tenant_id = t.id;
        let events = match command {
            TenantCommand::Create { .. } => unreachable!("handled above"),
            TenantCommand::Rename { name } if *name == t.name => vec![],
            TenantCommand::Rename { name } => vec![TenantRenamed {
                tenant_id,
                name: name.clone(),
            }
            .into()],
            TenantCommand::Move {
                parent,
                subtree_height,
            } => {
                let new_parent = parent.as_ref().map(|p| p.id);
                if new_parent == t.parent_id {
                    vec![]
                } else {
                    if let Some(parent) = parent {
                        check_parent(tenant_id, parent, *subtree_height)?;
                    }
                    vec![TenantMoved {
                        tenant_id,
                        parent_id: new_parent,
                        previous_parent_id: t.parent_id,
                    }
                    .into()]
                }
            }
            TenantCommand::Block { .. } if t.status == TenantStatus::Blocked => vec![],
            TenantCommand::Block { reason } => vec![TenantBlocked {
                tenant_id,
                reason: reason.clone(),
            }
            .into()],
            TenantCommand::Unblock if t.status == TenantStatus::Active => vec![],
            TenantCommand::Unblock => vec![TenantUnblocked { tenant_id }.into()],
            TenantCommand::Delete => vec![TenantDeleted { tenant_id }.into()],
        };
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn created(n: u128, parent: Option<u128>) -> TenantEvent {
        TenantCreated {
            tenant_id: id(n),
            name: format!("Tenant {n}"),
            slug: format!("t{n}"),
            parent_id: parent.map(id),
        }
        .into()
    }

    fn parent(n: u128, status: Option<TenantStatus>, ancestors: &[u128]) -> ParentContext {
        ParentContext {
            id: id(n),
            status,
            ancestors: ancestors.iter().copied().map(id).collect(),
        }
    }

    fn create(n: u128, parent: Option<ParentContext>) -> TenantCommand {
        TenantCommand::Create {
            tenant_id: id(n),
            name: format!("Tenant {n}"),
            slug: format!("t{n}"),
            parent,
        }
    }

    #[test]
    fn creates_a_root_tenant() {
        let state = given::<Tenant>([])
            .when(create(1, None))
            .then([created(1, None)]);
        assert_eq!(state.0.unwrap().status, TenantStatus::Active);
    }

    #[test]
    fn creates_below_an_active_parent() {
        given::<Tenant>([])
            .when(create(2, Some(parent(1, Some(TenantStatus::Active), &[]))))
            .then([created(2, Some(1))]);
    }

    #[test]
    fn rejects_a_missing_deleted_or_blocked_parent() {
        given::<Tenant>([])
            .when(create(2, Some(parent(1, None, &[]))))
            .then_error(TenantError::ParentNotFound(id(1)));
        given::<Tenant>([])
            .when(create(2, Some(parent(1, Some(TenantStatus::Deleted), &[]))))
            .then_error(TenantError::ParentNotFound(id(1)));
        given::<Tenant>([])
            .when(create(2, Some(parent(1, Some(TenantStatus::Blocked), &[]))))
            .then_error(TenantError::ParentBlocked(id(1)));
    }

    #[test]
    fn cannot_be_created_twice() {
        given::<Tenant>([created(1, None)])
            .when(create(1, None))
            .then_error(TenantError::AlreadyExists);
    }

    #[test]
    fn rejects_a_move_that_would_create_a_cycle() {
        // 1 <- 2 <- 3: moving 1 below 3 closes a loop.
        given::<Tenant>([created(1, None)])
            .when(TenantCommand::Move {
                parent: Some(parent(3, Some(TenantStatus::Active), &[2, 1])),
                subtree_height: 3,
            })
            .then_error(TenantError::Cycle(id(3)));
        given::<Tenant>([created(1, None)])
            .when(TenantCommand::Move {
                parent: Some(parent(1, Some(TenantStatus::Active), &[])),
                subtree_height: 1,
            })
            .then_error(TenantError::Cycle(id(1)));
    }

    #[test]
    fn moves_to_a_new_parent_and_back_to_the_root() {
        let moved = TenantMoved {
            tenant_id: id(2),
            parent_id: Some(id(3)),
            previous_parent_id: Some(id(1)),
        };
        let state = given::<Tenant>([created(2, Some(1))])
            .when(TenantCommand::Move {
                parent: Some(parent(3, Some(TenantStatus::Active), &[])),
                subtree_height: 1,
            })
            .then([moved.clone().into()]);
        assert_eq!(state.0.unwrap().parent_id, Some(id(3)));
        given::<Tenant>([created(2, Some(1)), moved.into()])
            .when(TenantCommand::Move {
                parent: None,
                subtree_height: 1,
            })
            .then([TenantMoved {
                tenant_id: id(2),
                parent_id: None,
                previous_parent_id: Some(id(3)),
            }
            .into()]);
    }

    #[test]
    fn limits_the_depth_of_the_hierarchy() {
        let ancestors: Vec<u128> = (100..100 + MAX_DEPTH as u128 - 1).collect();
        given::<Tenant>([])
            .when(create(
                1,
                Some(parent(99, Some(TenantStatus::Active), &ancestors)),
            ))
            .then_error(TenantError::TooDeep);
        let ancestors: Vec<u128> = (100..100 + MAX_DEPTH as u128 - 2).collect();
        given::<Tenant>([])
            .when(create(
                1,
                Some(parent(99, Some(TenantStatus::Active), &ancestors)),
            ))
            .then([created(1, Some(99))]);
    }

    #[test]
    fn a_move_counts_the_height_of_the_subtree_that_moves() {
        // The parent is at depth 20; a subtree 12 levels tall fits (depth 32), 13 does not.
        let ancestors: Vec<u128> = (100..119).collect();
        let target = parent(99, Some(TenantStatus::Active), &ancestors);
        let mv = |height| TenantCommand::Move {
            parent: Some(target.clone()),
            subtree_height: height,
        };
        given::<Tenant>([created(1, None)])
            .when(mv(13))
            .then_error(TenantError::TooDeep);
        given::<Tenant>([created(1, None)])
            .when(mv(12))
            .then([TenantMoved {
                tenant_id: id(1),
                parent_id: Some(id(99)),
                previous_parent_id: None,
            }
            .into()]);
    }

    #[test]
    fn renames_and_ignores_a_rename_to_the_same_name() {
        given::<Tenant>([created(1, None)])
            .when(TenantCommand::Rename {
                name: "Acme".into(),
            })
            .then([TenantRenamed {
                tenant_id: id(1),
                name: "Acme".into(),
            }
            .into()]);
        given::<Tenant>([created(1, None)])
            .when(TenantCommand::Rename {
                name: "Tenant 1".into(),
            })
            .then([]);
    }

    #[test]
    fn blocks_and_unblocks_idempotently() {
        let blocked: TenantEvent = TenantBlocked {
            tenant_id: id(1),
            reason: Some("unpaid".into()),
        }
        .into();
        let state = given::<Tenant>([created(1, None)])
            .when(TenantCommand::Block {
                reason: Some("unpaid".into()),
            })
            .then([blocked.clone()]);
        assert_eq!(state.0.unwrap().status, TenantStatus::Blocked);
        given::<Tenant>([created(1, None), blocked.clone()])
            .when(TenantCommand::Block { reason: None })
            .then([]);
        given::<Tenant>([created(1, None), blocked])
            .when(TenantCommand::Unblock)
            .then([TenantUnblocked { tenant_id: id(1) }.into()]);
        given::<Tenant>([created(1, None)])
            .when(TenantCommand::Unblock)
            .then([]);
    }

    #[test]
    fn a_deleted_tenant_accepts_no_command() {
        let history = [created(1, None), TenantDeleted { tenant_id: id(1) }.into()];
        for cmd in [
            TenantCommand::Rename { name: "x".into() },
            TenantCommand::Block { reason: None },
            TenantCommand::Unblock,
            TenantCommand::Delete,
            TenantCommand::Move {
                parent: None,
                subtree_height: 1,
            },
        ] {
            given::<Tenant>(history.clone())
                .when(cmd)
                .then_error(TenantError::Deleted);
        }
    }

    #[test]
    fn commands_on_a_missing_tenant_are_not_found() {
        given::<Tenant>([])
            .when(TenantCommand::Delete)
            .then_error(TenantError::NotFound);
    }
}
