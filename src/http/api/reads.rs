//! The two reads every resource of a tenant answers alike, written once.

/// Defines, in a resource's handler module, `get` (one resource, from the write side, so never
/// stale, with its stream version as `ETag`) and, when given, `list` (a page of the resource's
/// directory read model, after the consistency token). What differs between resources is the
/// input: the documentation strings, the types, the stream and when a resource counts as
/// live. The module supplies `view` (its outcome-to-response function) and imports
/// `NotFound`, `ListParams` and `Page`.
macro_rules! tenant_reads {
    (
        tag = $tag:tt, id = $id:ident, noun = $noun:tt,
        get {
            $(#[doc = $get_doc:tt])*
            path = $get_path:tt, operation_id = $get_op:tt, description = $get_desc:tt,
            body = $get_body:ident, aggregate = $aggregate:ident, stream = $stream:path,
            live = |$state:ident, $tenant:ident| $live:expr $(,)?
        }
        $(list {
            $(#[doc = $list_doc:tt])*
            path = $list_path:tt, operation_id = $list_op:tt, description = $list_desc:tt,
            row = $row:ident, read = $read:path $(,)?
        })?
    ) => {
        $(#[doc = $get_doc])*
        #[utoipa::path(
            get, path = $get_path, tag = $tag, operation_id = $get_op,
            responses(
                (status = 200, description = $get_desc, body = $get_body,
                    headers(("ETag" = String, description = "The stream version"))),
                NotFound,
            ),
        )]
        #[tracing::instrument(skip_all, fields(tenant_id = %path.0, $id = %path.1))]
        pub async fn get(
            state: actix_web::web::Data<crate::http::state::AppState>,
            path: actix_web::web::Path<(uuid::Uuid, uuid::Uuid)>,
        ) -> Result<actix_web::HttpResponse, crate::http::problem::ApiError> {
            let ($tenant, id) = path.into_inner();
            crate::http::respond::get_current::<$aggregate, _>(
                &state,
                $tenant,
                &$stream(id),
                |$state: &$aggregate| $live,
                view,
                &format!(concat!($noun, " {}"), id),
            )
            .await
        }

        $(
            $(#[doc = $list_doc])*
            #[utoipa::path(
                get, path = $list_path, tag = $tag, operation_id = $list_op,
                params(ListParams),
                responses((status = 200, description = $list_desc, body = Page<$row>), NotFound),
            )]
            #[tracing::instrument(skip_all, fields(tenant_id = %path))]
            pub async fn list(
                state: actix_web::web::Data<crate::http::state::AppState>,
                path: actix_web::web::Path<uuid::Uuid>,
                params: actix_web::web::Query<ListParams>,
            ) -> Result<actix_web::HttpResponse, crate::http::problem::ApiError> {
                let limit = params.limit()?;
                let tenant_id = *path;
                let after = params.after;
                crate::http::respond::tenant_page(
                    &state,
                    tenant_id,
                    params.consistency.as_deref(),
                    limit,
                    |client| async move { $read(&client, tenant_id, after, limit).await },
                    |row: &$row| row.id,
                )
                .await
            }
        )?
    };
}

pub(crate) use tenant_reads;
