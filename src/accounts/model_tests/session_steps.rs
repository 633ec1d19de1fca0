//! The model's session steps: a request admitted in a session, and each session's
//! figures checked against its requests.

use super::*;

impl Model {
    /// A request of session `s{session}`: always admitted by the object, against the
    /// session's budget too.
    pub(super) fn admit_in_session(
        &mut self,
        iso: usize,
        key: usize,
        ask: u64,
        session: usize,
        max_cost: Option<u64>,
    ) {
        let hash = key_hash(key);
        self.next_gen += 1;
        let gen_id = format!("gen-{}-{}", self.now() / 1000, self.next_gen);
        let id = format!("s{session}");
        let facts = PlanFacts {
            free: false,
            ask: Ask {
                reserve: ask,
                ..Ask::default()
            },
        };
        let limits = max_cost.map(|m| SessionLimits {
            max_cost: Some(m),
            ..SessionLimits::default()
        });
        let before = store_state(&self.books).sessions.get(&id).cloned();
        let op = Op::Admit(Admission {
            caller: hash.clone(),
            gen_id: gen_id.clone(),
            free_windows: Vec::new(),
            rps: None,
            if_training: facts,
            if_private: facts,
            lease: false,
            session: Some(SessionAsk {
                id: id.clone(),
                limits,
            }),
        });
        let Ok(Reply::Admitted(a)) = self.run(op) else {
            return;
        };
        let after = store_state(&self.books).sessions.get(&id).cloned();
        let max_of = |b: &Option<SessionRow>| b.as_ref().and_then(|r| r.limits.max_cost);
        if max_of(&after) != max_of(&before) {
            let was = max_of(&before);
            let expected = match (was, max_cost) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            assert_eq!(max_of(&after), expected, "{id}: limits only go down");
            let entry = self.session_admits.entry(id.clone()).or_default();
            let spent = before.map_or(0, |b| b.cost);
            entry.1 = entry.1.max(u128::from(spent));
        }
        if let Some(e) = a.session_refused {
            assert!(matches!(*e, crate::error::Error::SessionLimit(_)), "{e:?}");
            return;
        }
        let view = a
            .session
            .expect("an admitted session request says its session");
        assert_eq!(view.id, id);
        self.session_admits
            .entry(id.clone())
            .or_default()
            .0
            .push(gen_id.clone());
        self.reserved_gens.push(gen_id.clone());
        self.isolates[iso].running.push(Running {
            key: hash,
            gen_id,
            ask,
            ticket: None,
            session: Some(id),
        });
    }

    /// Each session's figures against its requests: what it was charged is what its
    /// settled generations were, never past its `max_cost` (but for what it had spent
    /// when a request lowered it under that), what it holds is what its reservations
    /// hold, and it counts each admitted request once.
    pub(super) fn check_sessions(&self, s: &State, records: &Records) {
        for (id, row) in &s.sessions {
            let (gens, floor) = self.session_admits.get(id).cloned().unwrap_or_default();
            assert_eq!(row.requests, gens.len() as u64, "{id}: requests");
            let charged: u64 = gens
                .iter()
                .filter_map(|g| records.get(g))
                .map(|r| r.2)
                .sum();
            assert_eq!(
                row.cost, charged,
                "{id}: cost is what its requests were charged"
            );
            let held: u64 = s
                .reservation_sessions
                .iter()
                .filter(|(_, sess)| *sess == id)
                .filter_map(|(g, _)| s.reservations.get(g))
                .map(|r| r.1)
                .sum();
            assert_eq!(row.held, held, "{id}: held is what its reservations hold");
            if let Some(max) = row.limits.max_cost {
                assert!(
                    u128::from(row.cost) <= u128::from(max).max(floor),
                    "{id}: settled {} past its max_cost {max}",
                    row.cost
                );
            }
        }
    }
}
