//! Scenarios the random interleavings reach only by chance, played on the same model:
//! a revoked lease whose requests still run, an isolate lost after admissions it never
//! reported, key renames and deletions under running requests, and a renewal from an
//! isolate of the previous version.

use super::*;

/// A revoked lease keeps holding what its running requests may spend for as long as
/// their own reservations would live, not the (much shorter) lease TTL that only an
/// isolate's renewals extend: the isolate dropped the lease, so nothing renews it.
#[test]
fn a_revoked_lease_outlives_the_lease_ttl_while_its_requests_run() {
    let mut m = Model::new(1_000_000_000_000, [None; KEYS]);
    m.admit(0, 0, 1_000_000_000, true);
    let ask = 5_000_000_000;
    m.admit(0, 0, ask, false);
    let lease_id = m.isolates[0].book.get("k0").unwrap().id.clone();
    assert!(m.isolates[0].running.last().unwrap().ticket.is_some());
    m.key_change(0, KeyChange::Disable, true);
    m.renew(0, 0, false, false);
    assert!(m.isolates[0].book.get("k0").is_none(), "revoked");
    let closing = store_state(&m.books).leases[&lease_id].0.clone();
    assert!(closing.closing && closing.amount == ask);
    m.advance(LEASE_TTL_MS + 1000);
    m.check();
    let s = store_state(&m.books);
    assert!(
        s.entries.iter().all(|e| e.kind != "expired_hold"),
        "{:?}",
        s.entries
    );
    assert!(
        s.leases.contains_key(&lease_id),
        "the running request lost its hold"
    );
    // It ends, and settles against what its lease still holds.
    m.finish(0, 1, Cost::At);
    m.deliver(0);
    m.check();
    let s = store_state(&m.books);
    assert!(!s.leases.contains_key(&lease_id));
    assert_eq!(s.totals.get("expired_holds").copied().unwrap_or(0), 0);
    assert!(s.entries.is_empty(), "{:?}", s.entries);
    assert_eq!(m.records().values().map(|g| g.2).sum::<u64>(), ask);
    // Past a reservation's TTL, a closing lease whose requests never settle expires.
    m.admit(1, 1, 1_000_000_000, true);
    m.admit(1, 1, ask, false);
    m.key_change(1, KeyChange::Disable, true);
    m.renew(1, 1, false, false);
    m.advance(RESERVATION_TTL_MS + 1000);
    m.check();
    let s = store_state(&m.books);
    assert!(s.leases.is_empty() && s.reservations.is_empty());
    assert!(s
        .entries
        .iter()
        .any(|e| e.kind == "expired_hold" && e.picos == u128::from(ask)));
}

/// An isolate that admits requests against its lease and dies before it reports them
/// (no renewal since) leaves them unsettled: the lease's expiry records what they could
/// owe, and a settlement that still comes is matched to it.
#[test]
fn an_isolate_lost_after_unreported_admissions_leaves_them_recorded() {
    let mut m = Model::new(1_000_000_000_000, [None; KEYS]);
    m.admit(0, 0, 1_000_000_000, true);
    let lease_id = m.isolates[0].book.get("k0").unwrap().id.clone();
    m.renew(0, 0, false, false);
    let ask = 2_000_000_000;
    for _ in 0..3 {
        m.admit(0, 0, ask, false);
    }
    assert_eq!(m.leased_gens.len(), 3, "admitted against the lease");
    // One of them ends and is queued, not delivered; the isolate dies.
    m.finish(0, 1, Cost::At);
    let lost = m.isolates[0].queue.clone();
    m.step(Step::Crash { iso: 0 });
    m.advance(LEASE_TTL_MS + 1000);
    m.check();
    let s = store_state(&m.books);
    assert!(!s.leases.contains_key(&lease_id), "the lease expired");
    let recorded: u128 = s
        .entries
        .iter()
        .filter(|e| e.kind == "expired_hold")
        .map(|e| e.picos)
        .sum();
    assert!(recorded >= u128::from(3 * ask), "{:?}", s.entries);
    assert_eq!(s.totals.get("expired_holds").copied(), Some(recorded));
    // A settlement that survived elsewhere lands late: matched to the lease's record.
    m.isolates[1].queue = lost;
    m.deliver(1);
    m.check();
    let s = store_state(&m.books);
    assert_eq!(
        s.totals.get("expired_holds").copied(),
        Some(recorded - u128::from(ask))
    );
    assert!(s.entries.iter().any(|e| e.kind == "late_settle"));
}

/// A rename changes no money: the key's lease and holds stay as they were.
#[test]
fn a_rename_touches_no_hold() {
    let mut m = Model::new(1_000_000_000_000, [Some(500_000_000_000), None, None]);
    m.admit(0, 0, 1_000_000_000, true);
    let before = store_state(&m.books);
    m.key_change(0, KeyChange::Rename, false);
    let after = store_state(&m.books);
    assert_eq!(after.leases, before.leases);
    assert_eq!(after.reservations, before.reservations);
    assert_eq!(after.totals, before.totals);
    m.renew(0, 0, false, false);
    assert!(
        m.isolates[0].book.get("k0").is_some(),
        "the lease was not revoked"
    );
}

/// A key deleted while its request runs keeps its limit for that request: what its
/// provider bills past the hold is charged only as far as the limit allows, and the
/// rest is recorded, as it would have been had the key stayed.
#[test]
fn a_deleted_key_keeps_its_limit_for_the_requests_it_left_running() {
    let limit = 50_000_000_000; // $0.05
    let mut m = Model::new(1_000_000_000_000, [Some(limit), None, None]);
    let ask = 40_000_000_000;
    m.admit(0, 0, ask, false);
    m.key_change(0, KeyChange::Delete, false);
    assert!(!store_state(&m.books).keys.contains_key("k0"));
    // Billed $0.15 for a request that held $0.04.
    m.finish(0, 0, Cost::Above(712));
    m.deliver(0);
    m.check();
    let s = store_state(&m.books);
    let records = m.records();
    let (_, g, charged) = records.values().next().unwrap();
    assert!(g.cost_picos > 3 * limit - 1_000_000_000, "{}", g.cost_picos);
    assert_eq!(*charged, limit, "charged past the deleted key's limit");
    let loss: u128 = s.entries.iter().map(|e| e.picos).sum();
    assert_eq!(loss, u128::from(g.cost_picos - limit));
}

/// An isolate of the previous version renews without saying what it admitted: its
/// lease is unbounded, and expires recording all it held.
#[test]
fn a_lease_renewed_without_a_report_expires_recording_all_it_held() {
    let mut m = Model::new(1_000_000_000_000, [None; KEYS]);
    m.admit(0, 0, 1_000_000_000, true);
    let l = m.isolates[0].book.get("k0").unwrap().clone();
    let old = Op::Lease {
        caller: "k0".into(),
        lease_id: l.id.clone(),
        in_flight: 0,
        admitted: None,
        top_up: false,
        release: false,
        settle: Vec::new(),
    };
    let Ok(Reply::Lease(state)) = m.run(old) else {
        panic!("not renewed")
    };
    assert!(state
        .lease
        .is_some_and(|g| g.admit_until == Some(crate::accounts::store::UNBOUNDED)));
    let held = store_state(&m.books).leases[&l.id].0.amount;
    m.step(Step::Crash { iso: 0 });
    m.advance(LEASE_TTL_MS + 1000);
    m.check();
    let s = store_state(&m.books);
    assert_eq!(
        s.totals.get("expired_holds").copied(),
        Some(u128::from(held))
    );
}

/// 64 requests of one $0.10 session admitted at once, each able to cost $0.03 and
/// each billed past its hold: only those whose worst cases fit are admitted, and the
/// session is charged at most $0.10 however much its provider bills; the excess is
/// the operator's loss, recorded per generation.
#[test]
fn concurrent_requests_never_settle_past_their_session_budget() {
    let budget = 100_000_000_000; // $0.10
    let mut m = Model::new(1_000_000_000_000, [None; KEYS]);
    for i in 0..64 {
        m.admit_in_session(i % ISOLATES, i % KEYS, 30_000_000_000, 0, Some(budget));
    }
    let running: usize = m.isolates.iter().map(|i| i.running.len()).sum();
    assert_eq!(running, 3, "$0.10 holds three $0.03 worst cases");
    let s = store_state(&m.books);
    assert_eq!(s.sessions["s0"].held, 90_000_000_000);
    assert_eq!(s.sessions["s0"].requests, 3);
    for iso in 0..ISOLATES {
        while !m.isolates[iso].running.is_empty() {
            m.finish(iso, 0, Cost::Above(256));
        }
        m.deliver(iso);
        m.check();
    }
    let s = store_state(&m.books);
    let row = &s.sessions["s0"];
    assert_eq!(
        (row.cost, row.held),
        (budget, 0),
        "charged to its max_cost, no more"
    );
    let loss: u128 = s
        .entries
        .iter()
        .filter(|e| e.kind == "operator_loss")
        .map(|e| e.picos)
        .sum();
    assert_eq!(loss, 3 * 60_000_000_000 - u128::from(budget));
    assert!(s.entries.iter().any(|e| e.note.contains("session")));
    // Spent: the next request is refused, naming the limit, and counts nothing.
    m.admit_in_session(0, 0, 1, 0, None);
    let s = store_state(&m.books);
    assert_eq!(s.sessions["s0"].requests, 3);
    assert!(m.isolates[0].running.is_empty());
}

/// The sessions API on the books: a session read by any key of the account, listed
/// (an API key's own, a provisioning key's all, the most recent first), its limits
/// patched by the key that made it or a provisioning key only; a key's default limits
/// for a session that has none, and a key that requires a session.
#[test]
fn sessions_are_read_listed_patched_and_shaped_by_their_key() {
    use super::super::session::SessionCall;
    use crate::api::session::LimitsPatch;
    let mut m = Model::new(1_000_000_000_000, [None; KEYS]);
    m.admit_in_session(0, 0, 1_000, 1, Some(5_000));
    m.advance(1000);
    m.admit_in_session(0, 1, 1_000, 2, None);
    let view = |m: &Model, op: Op| match m.books.handle(op) {
        Ok(Reply::View(v)) => Ok(v),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    };
    let get = |m: &Model, caller: &str, id: &str| {
        view(
            m,
            Op::Sessions {
                caller: caller.into(),
                call: SessionCall::Get(id.into()),
            },
        )
    };
    let s1 = get(&m, "k2", "s1").unwrap();
    assert_eq!(s1["key_hash"], "k0");
    assert_eq!(s1["requests"], 1);
    assert_eq!(s1["remaining_requests"], serde_json::Value::Null);
    assert_eq!(s1["created_at"], super::super::ledger::iso8601(START_MS));
    let money = |v: &serde_json::Value| serde_json::to_string(&crate::money::Exact(v)).unwrap();
    assert_eq!(money(&s1["remaining_cost"]), "0.000000004");
    assert_eq!(money(&s1["limits"]["max_cost"]), "0.000000005");
    assert_eq!(get(&m, "k0", "s9").unwrap_err().status(), 404);
    let list = |m: &Model, caller: &str, limit| {
        let v = view(
            m,
            Op::Sessions {
                caller: caller.into(),
                call: SessionCall::List(limit),
            },
        )
        .unwrap();
        let ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        ids
    };
    assert_eq!(list(&m, "prov", 10), ["s2", "s1"]);
    assert_eq!(list(&m, "prov", 1), ["s2"]);
    assert_eq!(list(&m, "k0", 10), ["s1"]);
    assert!(list(&m, "k2", 0).is_empty());
    // Patched: not by another API key; by the key that made it, or a provisioning key.
    let patch = |m: &Model, caller: &str, id: &str, body: serde_json::Value| {
        let limits = LimitsPatch::from_body(&body, "session_limits").unwrap();
        view(
            m,
            Op::Sessions {
                caller: caller.into(),
                call: SessionCall::Update(id.into(), limits),
            },
        )
    };
    let body = serde_json::json!({"max_requests": 1, "max_cost": "1"});
    assert_eq!(
        patch(&m, "k1", "s1", body.clone()).unwrap_err().status(),
        403
    );
    assert_eq!(
        patch(&m, "k0", "s9", body.clone()).unwrap_err().status(),
        404
    );
    let up = patch(&m, "k0", "s1", body).unwrap();
    assert_eq!(up["limits"]["max_requests"], 1);
    assert_eq!(up["remaining_requests"], 0);
    let off = patch(&m, "prov", "s1", serde_json::json!({"max_requests": null})).unwrap();
    assert_eq!(off["limits"]["max_requests"], serde_json::Value::Null);
    assert_eq!(money(&off["limits"]["max_cost"]), "1");
    // A key's default applies to a session with no limits that asks for none; a key
    // that requires a session refuses a request without one, and gets no lease.
    let patch_key = KeyPatch {
        session_limits_default: Some(Some(SessionLimits {
            max_requests: Some(7),
            ..SessionLimits::default()
        })),
        require_session_id: Some(true),
        ..KeyPatch::default()
    };
    let wire = Op::KeyUpdate {
        caller: None,
        hash: "k2".into(),
        patch: patch_key,
    }
    .to_wire()
    .unwrap();
    let shown = view(&m, Op::from_wire(&wire).unwrap()).unwrap();
    assert_eq!(shown["require_session_id"], true);
    assert_eq!(shown["session_limits_default"]["max_requests"], 7);
    m.admit_in_session(0, 2, 1_000, 3, None);
    assert_eq!(get(&m, "k2", "s3").unwrap()["limits"]["max_requests"], 7);
    m.admit_in_session(0, 2, 1_000, 4, Some(9_000));
    let s4 = get(&m, "k2", "s4").unwrap();
    assert_eq!(s4["limits"]["max_requests"], serde_json::Value::Null);
    let facts = PlanFacts {
        free: false,
        ask: Ask {
            reserve: 1_000,
            ..Ask::default()
        },
    };
    let bare = Op::Admit(Admission {
        caller: "k2".into(),
        gen_id: "gen-1-x".into(),
        free_windows: Vec::new(),
        rps: None,
        if_training: facts,
        if_private: facts,
        lease: true,
        session: None,
    });
    let e = m.books.handle(bare).unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.to_string().starts_with("session_id: "), "{e}");
    // Null removes the default, and a key's limit (`limit: null` survives the wire).
    let clear = KeyPatch {
        session_limits_default: Some(None),
        limit: Some(None),
        ..KeyPatch::default()
    };
    let wire = Op::KeyUpdate {
        caller: None,
        hash: "k2".into(),
        patch: clear,
    }
    .to_wire()
    .unwrap();
    let Op::KeyUpdate { patch, .. } = Op::from_wire(&wire).unwrap() else {
        panic!("not a key update")
    };
    assert_eq!(patch.limit, Some(None), "{wire}");
    assert_eq!(patch.session_limits_default, Some(None));
    assert_eq!(patch.require_session_id, None);
    m.run(Op::KeyUpdate {
        caller: None,
        hash: "k2".into(),
        patch,
    })
    .unwrap();
    m.check();
}
