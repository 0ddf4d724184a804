//! Running a generation: read what the database holds, generate on a blocking thread, and
//! write each batch in one transaction (COPY of the events, then the claims and hierarchy
//! rows the batch's commands changed) while the next batch is being generated.

use std::io::Cursor;
use std::time::{Duration, Instant};

use chrono::Utc;
use deadpool_postgres::{GenericClient, Pool};
use futures::SinkExt;
use uuid::Uuid;

use charter_log::reader::{event_from_row, EVENT_COLUMNS};

use super::check::LogChecker;
use super::gen::Gen;
use super::names::SERVICES;
use super::out::{BatchEnd, Msg, Out, COPY_EVENTS};
use super::world::Platform;
use super::{Existing, Expected, Options, SeedError, Summary};
use charter::domain::permission_registry::{PermissionRegistry, CHARTER_SERVICE};
use charter::domain::user::UserStatus;
use charter::store::events;
use charter_events::streams::{registry_stream, PERMISSION_NAME_SCOPE, TENANT_SLUG_SCOPE};

/// Generates `options.events` events into the database behind `pool` (the service's role is
/// enough: it may insert into `events` and maintain the claims). `progress` is called after
/// every commit with the events written so far.
pub async fn run(
    pool: &Pool,
    options: &Options,
    mut progress: impl FnMut(u64),
) -> Result<Summary, SeedError> {
    if options.events < 500 {
        return Err(SeedError::Options("--events must be at least 500".into()));
    }
    let mut client = pool.get().await?;
    let existing = Existing::load(&client).await?;
    let end = Utc::now();
    let mut start = end - chrono::Duration::days(options.days.max(1) as i64);
    if let Some(last) = existing.last_recorded_at {
        start = start.max(last + chrono::Duration::milliseconds(1));
    }
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Msg>(8);
    let sink = Box::new(move |msg| sender.blocking_send(msg).is_ok());
    let checker = match options.check {
        true => Some(checked_log(&client).await?),
        false => None,
    };
    let out = Out::new(sink, options.batch_events, checker);
    let mut generator = Gen::new(options.events, options.seed, start, end, out);
    let started = Instant::now();
    let generating = tokio::task::spawn_blocking(move || {
        let result = generator.run(&existing);
        // Hang up: the writer ends when the channel does.
        generator.out.close();
        (generator, result)
    });
    let written = write(&mut client, &mut receiver, &mut progress).await;
    drop(receiver);
    let (generator, generated) = generating
        .await
        .map_err(|e| SeedError::Generator(format!("the generator panicked: {e}")))?;
    generated.map_err(SeedError::Generator)?;
    written?;
    Ok(summary(&generator, started.elapsed(), start))
}

async fn write(
    client: &mut deadpool_postgres::Object,
    receiver: &mut tokio::sync::mpsc::Receiver<Msg>,
    progress: &mut impl FnMut(u64),
) -> Result<u64, SeedError> {
    let mut written = 0;
    while let Some(first) = receiver.recv().await {
        let tx = client.transaction().await?;
        // A batch takes longer than one command may.
        tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
        let mut sink = Box::pin(tx.copy_in::<_, Cursor<Vec<u8>>>(COPY_EVENTS).await?);
        let mut next = Some(first);
        let end: BatchEnd = loop {
            match next {
                Some(Msg::Rows(rows)) => sink.send(Cursor::new(rows)).await?,
                Some(Msg::Commit(end)) => break end,
                // The generator stopped mid-batch; its error is reported by the caller.
                None => return Ok(written),
            }
            next = receiver.recv().await;
        };
        sink.as_mut().finish().await?;
        write_indexes(&tx, &end).await?;
        tx.commit().await?;
        // Wake the log's followers (projections, relay) of every instance.
        client
            .execute(
                "SELECT pg_notify($1, '')",
                &[&charter_log::listener::CHANNEL],
            )
            .await?;
        written += end.events;
        progress(written);
    }
    Ok(written)
}

/// The claims released and taken, and the hierarchy rows set, by the batch's commands.
async fn write_indexes(
    tx: &deadpool_postgres::Transaction<'_>,
    end: &BatchEnd,
) -> Result<(), SeedError> {
    let columns = |rows: &[(String, String, String)]| {
        let mut cols: (Vec<String>, Vec<String>, Vec<String>) = Default::default();
        for (scope, value, stream) in rows {
            cols.0.push(scope.clone());
            cols.1.push(value.clone());
            cols.2.push(stream.clone());
        }
        cols
    };
    if !end.claims_deleted.is_empty() {
        let (scopes, values, streams) = columns(&end.claims_deleted);
        tx.execute(
            "DELETE FROM unique_claims c USING unnest($1::text[], $2::text[], $3::text[]) AS d(s, v, st) \
             WHERE c.claim_scope = d.s AND c.claim_value = d.v AND c.stream_id = d.st",
            &[&scopes, &values, &streams],
        )
        .await?;
    }
    if !end.claims_inserted.is_empty() {
        let (scopes, values, streams) = columns(&end.claims_inserted);
        tx.execute(
            "INSERT INTO unique_claims (claim_scope, claim_value, stream_id) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
            &[&scopes, &values, &streams],
        )
        .await?;
    }
    if !end.hierarchy.is_empty() {
        let tenants: Vec<Uuid> = end.hierarchy.iter().map(|(t, _)| *t).collect();
        let parents: Vec<Option<Uuid>> = end.hierarchy.iter().map(|(_, p)| *p).collect();
        tx.execute(
            "INSERT INTO tenant_hierarchy (tenant_id, parent_id) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[]) \
             ON CONFLICT (tenant_id) DO UPDATE SET parent_id = EXCLUDED.parent_id",
            &[&tenants, &parents],
        )
        .await?;
    }
    Ok(())
}

/// A checker that has seen the log so far (the generated history continues it).
async fn checked_log(client: &impl GenericClient) -> Result<LogChecker, SeedError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY events.tx_id, events.position");
    let mut checker = LogChecker::new();
    for row in client.query(&sql, &[]).await? {
        let event = event_from_row(&row).map_err(|e| SeedError::Generator(e.to_string()))?;
        checker
            .feed(event)
            .map_err(|e| SeedError::Generator(format!("the existing log fails the check: {e}")))?;
    }
    Ok(checker)
}

impl Existing {
    pub async fn load(client: &impl GenericClient) -> Result<Self, SeedError> {
        let mut existing = Existing::default();
        let platform = client
            .query_opt(
                "SELECT (data ->> 'user_id')::uuid, tenant_id FROM events \
                 WHERE event_type = 'user.platform_access_granted' ORDER BY tx_id, position LIMIT 1",
                &[],
            )
            .await?;
        existing.platform = platform.map(|r| Platform {
            user_id: r.get(0),
            tenant_id: r.get(1),
        });
        let services = std::iter::once(CHARTER_SERVICE).chain(SERVICES.iter().map(|(s, _)| *s));
        for service in services {
            let loaded =
                events::load::<PermissionRegistry>(client, &registry_stream(service)).await?;
            if loaded.version > 0 {
                existing.registries.insert(
                    service.to_owned(),
                    (loaded.state.permissions, loaded.version),
                );
            }
        }
        for row in client
            .query(
                "SELECT claim_scope, claim_value, stream_id FROM unique_claims \
                 WHERE claim_scope = ANY($1)",
                &[&vec![PERMISSION_NAME_SCOPE, TENANT_SLUG_SCOPE]],
            )
            .await?
        {
            let (scope, value): (String, String) = (row.get(0), row.get(1));
            if scope == TENANT_SLUG_SCOPE {
                existing.slugs.insert(value);
            } else {
                existing.permission_holders.insert(value, row.get(2));
            }
        }
        existing.last_recorded_at = client
            .query_one("SELECT max(recorded_at) FROM events", &[])
            .await?
            .get(0);
        Ok(existing)
    }
}

fn summary(g: &Gen, elapsed: Duration, start: chrono::DateTime<Utc>) -> Summary {
    let w = &g.w;
    let count = |n: usize| n as u64;
    let expected = Expected {
        tenants: count(w.tenants.len()),
        workspaces: count(w.workspaces.len()),
        users: count(w.users.len()),
        users_live: count(
            w.users
                .iter()
                .filter(|u| u.status != UserStatus::Deleted)
                .count(),
        ),
        groups: count(w.groups.len()),
        group_members: count(w.members.len()),
        roles: count(w.roles.len()),
        assignments: count(w.assignments.iter().filter(|a| !a.deleted).count()),
        permissions: count(w.registry.len()),
        sessions: count(w.sessions.len()),
    };
    Summary {
        events: g.out.events,
        commands: g.out.commands,
        transactions: g.out.transactions,
        seconds: elapsed.as_secs_f64(),
        per_type: (g.out.per_type.iter())
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        expected,
        tenant_ids: w.tenants.iter().map(|t| t.id).collect(),
        services: SERVICES.iter().map(|(s, _)| s.to_string()).collect(),
        first_recorded_at: start,
        last_recorded_at: g.clock.now(),
    }
}
