//! The failover of a stream being pumped through ([`super::stream_through`]): what
//! the pipeline's failover is told and gives back, and the switch to the next
//! attempt's upstream.

use worker::Response;

use super::{config, InFlight, Pump};

/// Where a stream that failed before its content ended goes on
/// (`provider.stream_failover: "continue"`): told what the client has had, it sends
/// the next attempt and gives its response, or `None` to end as without failover.
pub trait Failover {
    fn next(
        &mut self,
        from: Resume,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Resumed>> + '_>>;
}

/// What the stream that failed had come to.
pub struct Resume {
    /// The text the client has had.
    pub text: String,
    /// What its attempts so far charge the caller (picodollars).
    pub spent_picos: u64,
    /// The output tokens of the attempt that failed.
    pub generated: u64,
}

/// The next attempt, answering: its streamed response and what reads it.
pub struct Resumed {
    /// The provider's slug (what the stream's errors name).
    pub slug: String,
    pub resp: Response,
    pub inflight: InFlight,
    pub translator: crate::providers::stream::Translator,
    pub meta: crate::api::GenerationMeta,
    pub pricing: crate::catalog::Pricing,
    pub prompt_estimate: u64,
}

impl Pump {
    /// The failure the stream holds, failed over: the next attempt's stream read on
    /// from here, or, when there is none, the failure sent as it would have been.
    pub(super) async fn fail_over(&mut self) -> Vec<u8> {
        let Some(mut failover) = self.failover.take() else {
            return self.chat.give_up();
        };
        let from = Resume {
            text: self.chat.sent_text().to_string(),
            spent_picos: self.chat.spent_picos(),
            generated: self.chat.final_usage().completion_tokens,
        };
        let next = failover.next(from).await;
        self.failover = Some(failover);
        let Some(next) = next else {
            return self.chat.give_up();
        };
        let mut resp = next.resp;
        let Ok(body) = resp.stream() else {
            return self.chat.give_up();
        };
        self.provider = next.slug;
        // The old upstream, dropped, is aborted.
        self.body = body;
        self.inflight = next.inflight;
        self.idle_ms = 0;
        self.chat.started(config::now_ms());
        self.chat.switch(
            next.translator,
            next.meta,
            next.pricing,
            next.prompt_estimate,
        )
    }
}
