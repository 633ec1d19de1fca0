//! What an account and a key have left once a request's hold is taken from them, as
//! replies report it (`X-Credits-Remaining`, `X-Key-Limit-Remaining`).

use super::ledger::{Funds, KeyBudget};

/// What an account and a key have left once a request's hold is taken from them
/// (`X-Credits-Remaining`, `X-Key-Limit-Remaining`): the balance (credits less settled
/// usage) and, for a key with a limit, the limit less what it spent this period; each
/// less the hold. Other requests' holds are not taken off: a lease is the same key's
/// money, held for its next requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Left {
    pub credits: u64,
    pub key: Option<u64>,
}

impl Left {
    pub fn of(funds: &Funds, key: &KeyBudget, hold: u64) -> Left {
        let balance = funds.credits.saturating_sub(funds.usage);
        Left {
            credits: u64::try_from(balance).unwrap_or(u64::MAX),
            key: key.limit.map(|l| l.saturating_sub(key.spent)),
        }
        .less(hold)
    }

    /// With `picos` more spent or held.
    pub fn less(self, picos: u64) -> Left {
        Left {
            credits: self.credits.saturating_sub(picos),
            key: self.key.map(|k| k.saturating_sub(picos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_after_a_hold() {
        let funds = Funds {
            credits: 10_000,
            usage: 2_500,
            reserved: 4_000,
        };
        let key = KeyBudget {
            limit: Some(3_000),
            spent: 1_000,
            reserved: 1_500,
        };
        let left = Left::of(&funds, &key, 300);
        assert_eq!(
            left,
            Left {
                credits: 7_200,
                key: Some(1_700)
            },
            "other holds are not taken off"
        );
        let none = Left::of(&funds, &KeyBudget::default(), 0);
        assert_eq!((none.credits, none.key), (7_500, None));
        assert_eq!(
            left.less(u64::MAX),
            Left {
                credits: 0,
                key: Some(0)
            }
        );
    }
}
