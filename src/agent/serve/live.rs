//! The law in force (docs/law.md § Only fresh law decides): compiled from the applied commit
//! in the mirror after every pull, swapped in whole, and fresh only until the applied
//! heartbeat's age limit plus the skew.
//!
//! Owns the swap: a new law is compiled from the approved tree beside the one serving and
//! replaces it in one pointer store, so a request sees the old law or the new one, never a mix.
//! A law that cannot be compiled leaves the last good one serving (until its own deadline).
//! The state store is opened once and outlives every swap.

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::law::decide::Bounds;
use crate::law::signed::Signers;
use crate::law::store::LawStore;
use crate::law::{Engine, Law, LawError, Provenance};
use crate::time::Instant;

use super::super::Applied;

/// The store every law shares.
pub type SharedStore = Arc<dyn LawStore>;

/// The engine the server decides with.
pub type LiveEngine = Engine<SharedStore>;

/// Why a new law could not be put in force (the last good one keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("the mirror cannot be read at {commit}: {reason}")]
    Mirror { commit: String, reason: String },
    #[error("the law at {commit} cannot be compiled: {source}")]
    Law {
        commit: String,
        #[source]
        source: LawError,
    },
    /// Receipts are kept, but the approved root at this commit does not vouch for the key
    /// they are signed with: the logs would prove nothing, so no law is put in force.
    #[error("the law at {commit} is not put in force: the receipt key of {member:?} is not a key of the root's `agent` role there ({why}); its receipt logs would prove nothing")]
    ReceiptKey {
        commit: String,
        member: String,
        why: String,
    },
}

/// The law in force and how it is refreshed.
pub struct Live {
    current: RwLock<Option<Arc<LiveEngine>>>,
    store: SharedStore,
    bounds: Bounds,
    anchor: crate::trust::Anchor,
    /// The heartbeat age limit plus the skew, in seconds.
    fresh_for: i64,
    /// The provenance receipts every engine records into (docs/law.md § Receipts).
    receipts: Option<Arc<crate::law::receipts::Receipts>>,
}

impl Live {
    pub fn new(
        store: SharedStore,
        bounds: Bounds,
        anchor: crate::trust::Anchor,
        max_heartbeat_age: time::Duration,
        skew: time::Duration,
        receipts: Option<Arc<crate::law::receipts::Receipts>>,
    ) -> Live {
        Live {
            current: RwLock::new(None),
            receipts,
            store,
            bounds,
            anchor,
            fresh_for: (max_heartbeat_age + skew).whole_seconds(),
        }
    }

    /// The engine in force (`None` before the first approved state).
    pub fn engine(&self) -> Option<Arc<LiveEngine>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Whether an order could be decided at `now`: a law in force, fresh, and a clock not
    /// behind the store's latest change.
    pub fn ready(&self, now: Instant) -> Result<(), String> {
        let Some(e) = self.engine() else {
            return Err("no approved state has been applied yet".into());
        };
        if now > e.fresh_until {
            return Err(format!(
                "the applied law is stale since {} (no fresh heartbeat)",
                crate::time::format(e.fresh_until)
            ));
        }
        self.store.healthy()?;
        let hw = self.store.high_water();
        if now.unix() < hw.unix() - crate::law::store::CLOCK_TOLERANCE {
            return Err(format!(
                "the clock ({}) is behind the state store's last change ({})",
                crate::time::format(now),
                crate::time::format(hw)
            ));
        }
        Ok(())
    }

    /// Puts the law of the applied state in force, unless it already is. Returns whether it
    /// changed.
    pub fn refresh(
        &self,
        mirror: &Path,
        applied: &Applied,
        now: Instant,
    ) -> Result<bool, LiveError> {
        if self
            .engine()
            .is_some_and(|e| e.law.provenance.commit == applied.commit)
        {
            return Ok(false);
        }
        let mirror_err = |reason: String| LiveError::Mirror {
            commit: applied.commit.clone(),
            reason,
        };
        let oid =
            git2::Oid::from_str(&applied.commit).map_err(|e| mirror_err(e.message().into()))?;
        let tree = crate::source::Repo::discover(mirror)
            .and_then(|r| r.tree_at(oid))
            .map_err(|e| mirror_err(e.to_string()))?;
        let law_err = |source| LiveError::Law {
            commit: applied.commit.clone(),
            source,
        };
        let (trust, _) = crate::trust::load(&tree, &self.anchor, now);
        let trust = trust.ok_or_else(|| law_err(LawError::NoTrust))?;
        if let Some(r) = &self.receipts {
            if let Err(why) = r.vouched_by(&trust) {
                return Err(LiveError::ReceiptKey {
                    commit: applied.commit.clone(),
                    member: r.agent.clone(),
                    why,
                });
            }
        }
        let law = Law::from_tree(
            &tree,
            Provenance {
                commit: applied.commit.clone(),
                root_version: applied.root_version,
                snapshot_version: Some(applied.snapshot_version),
            },
        )
        .map_err(law_err)?;
        // Without a heartbeat (never applied with --serve, which refuses --allow-stale) the law
        // is stale from the start.
        let fresh_until = applied
            .heartbeat_issued
            .as_deref()
            .and_then(|t| crate::time::parse(t).ok())
            .and_then(|t| Instant::from_unix(t.unix().saturating_add(self.fresh_for)))
            .unwrap_or(Instant::MIN);
        let engine = Engine {
            law,
            signers: Signers::from_trust(&trust),
            bounds: self.bounds,
            store: self.store.clone(),
            fresh_until,
            attestations: Default::default(),
            health: Default::default(),
            receipts: self.receipts.clone(),
        };
        if let Ok(mut g) = self.current.write() {
            *g = Some(Arc::new(engine));
        }
        Ok(true)
    }
}
