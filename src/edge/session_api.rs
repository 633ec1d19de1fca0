//! The sessions of an account (issue 24): `GET /sessions/{id}`, `GET /sessions?limit=`
//! and `PATCH /sessions/{id}` (its limits), answered by the account's object, which
//! keeps them ([`crate::accounts::session`]).

use worker::{Env, Response};

use super::account::{self, Op};
use super::account_api::{data, json_body, limit_param};
use super::request::ClientRequest;
use crate::api::route::Route;
use crate::api::session::{check_id, LimitsPatch};
use crate::error::Error;

/// One of the session routes, for `caller` of account `acc`.
pub async fn route(
    mut req: ClientRequest,
    env: &Env,
    acc: &str,
    caller: String,
    route: Route,
) -> Result<Response, Error> {
    let op = match route {
        Route::Sessions => Op::Sessions {
            caller,
            limit: limit_param(req.query())?,
        },
        Route::SessionGet(id) => {
            check_id(&id, "session_id")?;
            Op::Session { caller, id }
        }
        Route::SessionUpdate(id) => {
            check_id(&id, "session_id")?;
            let body = json_body(&mut req).await?;
            let limits = body
                .get("session_limits")
                .filter(|l| !l.is_null())
                .ok_or_else(|| Error::bad_request("session_limits: is required"))?;
            let limits = LimitsPatch::from_body(limits, "session_limits")?;
            Op::SessionUpdate { caller, id, limits }
        }
        _ => return Err(Error::MethodNotAllowed),
    };
    data(account::call(env, acc, op).await?)
}
