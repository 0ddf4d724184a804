//! Read model `assignments`: every live assignment. Owns `assignments`.

use charter_events::assignment::{AssignmentEvent, SubjectType};
use charter_events::RecordedEvent;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use serde::Serialize;
use uuid::Uuid;

use crate::projection::{execute, stream_projection, ProjectionError};

/// The read model `assignments` (see the module's documentation).
pub struct Assignments;

stream_projection!(Assignments, AssignmentEvent, "assignments", ["assignments"]);

impl Assignments {
    /// Applies `event`, decoded from `e`.
    async fn apply_event(
        &self,
        tx: &Transaction<'_>,
        e: &RecordedEvent,
        event: AssignmentEvent,
    ) -> Result<(), ProjectionError> {
        let touched = match &event {
            AssignmentEvent::Created(c) => {
                let subject_type = match c.subject_type {
                    SubjectType::User => "user",
                    SubjectType::Group => "group",
                    SubjectType::ServiceAccount => "service_account",
                };
                execute(
                    tx,
                    "INSERT INTO assignments VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &c.assignment_id,
                        &c.tenant_id,
                        &c.workspace_id,
                        &c.role_id,
                        &subject_type,
                        &c.subject_id,
                        &e.recorded_at,
                    ],
                )
                .await?
            }
            AssignmentEvent::Deleted(d) => {
                execute(
                    tx,
                    "DELETE FROM assignments WHERE assignment_id = $1",
                    &[&d.assignment_id],
                )
                .await?
            }
        };
        if touched != 1 {
            return Err(ProjectionError::Invariant(format!(
                "{} at position {} touched {touched} assignment rows",
                e.event_type, e.position
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssignmentRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub workspace_id: Option<Uuid>,
    pub role_id: Uuid,
    /// `user`, `group` or `service_account`.
    pub subject_type: String,
    pub subject_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default)]
pub struct ListAssignments {
    pub user_id: Option<Uuid>,
    pub group_id: Option<Uuid>,
    pub workspace_id: Option<Uuid>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

pub async fn list(
    client: &impl GenericClient,
    tenant_id: Uuid,
    q: &ListAssignments,
) -> Result<Vec<AssignmentRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT assignment_id, tenant_id, workspace_id, role_id, subject_type, subject_id, created_at \
             FROM projections.assignments WHERE tenant_id = $1 \
               AND ($2::uuid IS NULL OR (subject_type = 'user' AND subject_id = $2)) \
               AND ($3::uuid IS NULL OR (subject_type = 'group' AND subject_id = $3)) \
               AND ($4::uuid IS NULL OR workspace_id = $4) \
               AND ($5::uuid IS NULL OR assignment_id > $5) \
             ORDER BY assignment_id LIMIT $6",
            &[&tenant_id, &q.user_id, &q.group_id, &q.workspace_id, &q.after, &q.limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AssignmentRow {
            id: r.get(0),
            tenant_id: r.get(1),
            workspace_id: r.get(2),
            role_id: r.get(3),
            subject_type: r.get(4),
            subject_id: r.get(5),
            created_at: r.get(6),
        })
        .collect())
}
