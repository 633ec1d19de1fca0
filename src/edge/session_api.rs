//! The sessions of an account (issue 24): `GET /sessions/{id}`, `GET /sessions?limit=`
//! and `PATCH /sessions/{id}` (its limits), each one message to the account's object,
//! which keeps them ([`crate::accounts::session`]).

use serde_json::Value;

use super::account::Op;
use super::account_api::limit_param;
use crate::accounts::session::SessionCall;
use crate::api::route::Route;
use crate::api::session::{check_id, LimitsPatch};
use crate::error::Error;

/// The message for one of the session routes by `caller`, from its query and body.
pub fn op(query: &str, body: &Value, caller: String, route: Route) -> Result<Op, Error> {
    let call = match route {
        Route::Sessions => SessionCall::List(limit_param(query)?),
        Route::SessionGet(id) => {
            check_id(&id, "session_id")?;
            SessionCall::Get(id)
        }
        Route::SessionUpdate(id) => {
            check_id(&id, "session_id")?;
            let limits = body
                .get("session_limits")
                .filter(|l| !l.is_null())
                .ok_or_else(|| Error::bad_request("session_limits: is required"))?;
            SessionCall::Update(id, LimitsPatch::from_body(limits, "session_limits")?)
        }
        _ => return Err(Error::MethodNotAllowed),
    };
    Ok(Op::Sessions { caller, call })
}
