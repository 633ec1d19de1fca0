//! Billing a stream at the service tier its upstream says served it
//! (`catalog::tier`).

use super::ChatStream;
use crate::catalog::Pricing;

impl ChatStream {
    /// Bills at the tier the upstream says served the stream: `prices` at the default,
    /// flex and priority tiers ([`crate::catalog::Model::served_pricing`]).
    pub fn with_tier_prices(mut self, prices: Option<Box<[Pricing; 3]>>) -> Self {
        self.tier_prices = prices;
        self
    }

    /// The tier that served the stream as a chat reply names it, if the upstream said.
    pub fn service_tier(&self) -> Option<&'static str> {
        let served = crate::catalog::Tier::served(self.sent.service_tier.as_deref())?;
        Some(crate::catalog::tier::reply_name(served))
    }

    /// The prices the stream is billed at: its endpoint's, or those of the tier that
    /// served it.
    pub(super) fn priced(&self) -> &Pricing {
        let served = crate::catalog::Tier::served(self.sent.service_tier.as_deref());
        crate::catalog::tier::pick(self.tier_prices.as_deref(), served, &self.pricing)
    }
}
