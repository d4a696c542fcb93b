//! Group commit of registrations. A SQLite file has one writer, and a commit writes every
//! index page it touched: job ids and CIDs are hashes, so a thousand new jobs touch about a
//! thousand pages of each index, and a commit per request pays for them per request. Calls
//! that arrive while a commit is under way wait in a queue; the next writer takes them all
//! and commits them together, each page written once for many callers. Every caller keeps
//! its own all-or-none: if anything in a group fails, the group is rolled back and each
//! call is run again alone, so one tenant over its quota fails only its own call.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::jobs::{register_in, Prepared};
use super::records::JobRecord;
use super::{query_err, Store, StoreError};
use crate::jobs::JobSpec;

/// What one call gets back.
type Outcome = Result<Vec<(JobRecord, bool)>, StoreError>;

/// Jobs one group commits at most: bounds a commit's time (the latency of the calls in it)
/// and its memory. A single larger call is committed alone.
const GROUP_MAX_JOBS: usize = 65_536;

/// One waiting call.
#[derive(Debug)]
struct Pending {
    jobs: Vec<Prepared>,
    now_ms: i64,
    quota: Option<(String, u64)>,
    reply: oneshot::Sender<Outcome>,
}

/// The queue of registrations and the right to write them (held by one group at a time).
#[derive(Debug, Default)]
pub(super) struct Registrar {
    queue: Mutex<VecDeque<Pending>>,
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl Registrar {
    /// Queues one call and returns its outcome once committed (or refused).
    pub(super) async fn register(
        &self,
        store: &Store,
        specs: Vec<JobSpec>,
        now_ms: i64,
        quota: Option<(String, u64)>,
    ) -> Outcome {
        let jobs = Prepared::all(specs)?;
        let (reply, mut outcome) = oneshot::channel();
        self.lock_queue().push_back(Pending {
            jobs,
            now_ms,
            quota,
            reply,
        });
        loop {
            tokio::select! {
                biased;
                got = &mut outcome => return got.unwrap_or_else(|_| Err(dropped())),
                turn = self.writer.clone().lock_owned() => {
                    let group = self.take_group();
                    if group.is_empty() {
                        // An earlier group took this call and has answered it (it answers
                        // before it lets the writer go).
                        drop(turn);
                        return outcome.await.unwrap_or_else(|_| Err(dropped()));
                    }
                    // The group runs as its own task: a caller that goes away (a closed
                    // HTTP connection) does not cancel the other callers' commit.
                    let store = store.clone();
                    let _ = tokio::spawn(async move {
                        commit_group(&store, group).await;
                        drop(turn);
                    })
                    .await;
                }
            }
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        // The queue holds no invariant a panic could break midway: a poisoned lock is
        // still a valid queue.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The calls the next commit takes: every one waiting, up to [`GROUP_MAX_JOBS`] jobs
    /// (at least one call).
    fn take_group(&self) -> Vec<Pending> {
        let mut queue = self.lock_queue();
        let mut group = Vec::new();
        let mut jobs = 0;
        while let Some(next) = queue.front() {
            if !group.is_empty() && jobs + next.jobs.len() > GROUP_MAX_JOBS {
                break;
            }
            jobs += next.jobs.len();
            if let Some(p) = queue.pop_front() {
                group.push(p);
            }
        }
        group
    }
}

fn dropped() -> StoreError {
    StoreError::Query {
        op: "register_job",
        reason: "the registration's commit ended without an answer".into(),
    }
}

/// Commits `group` in one transaction; if any part fails, each call alone.
async fn commit_group(store: &Store, group: Vec<Pending>) {
    if group.len() > 1 {
        if let Ok(outcomes) = together(store, &group).await {
            for (p, o) in group.into_iter().zip(outcomes) {
                let _ = p.reply.send(Ok(o));
            }
            return;
        }
    }
    for p in group {
        let outcome = together(store, std::slice::from_ref(&p))
            .await
            .and_then(|mut o| o.pop().ok_or_else(dropped));
        let _ = p.reply.send(outcome);
    }
}

/// Every call of `group` in one transaction, all or none.
async fn together(
    store: &Store,
    group: &[Pending],
) -> Result<Vec<Vec<(JobRecord, bool)>>, StoreError> {
    let mut tx = store
        .pool
        .begin()
        .await
        .map_err(query_err("register_job"))?;
    let mut outcomes = Vec::with_capacity(group.len());
    for p in group {
        let quota = p.quota.as_ref().map(|(t, m)| (t.as_str(), *m));
        outcomes.push(register_in(&mut tx, store.backend, &p.jobs, p.now_ms, quota).await?);
    }
    tx.commit().await.map_err(query_err("register_job"))?;
    Ok(outcomes)
}
