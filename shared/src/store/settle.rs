//! What a successful attempt at a secret gives back ([`super::slots`]), in the
//! same atomic write as its effect, and what taking its slots yields.

use super::records::Bucket;
use super::slots::BucketKey;
use crate::clock::Timestamp;
use crate::model::{Code, Purpose, RateState};

/// The slots an attempt took, and the try of its code counted with them.
#[derive(Debug)]
pub struct Taken {
    /// The code as it stands after this try, to compare with what was presented;
    /// `None` when there is no live code with tries left (a wrong guess, then).
    pub code: Option<Code>,
    pub settle: Settle,
}

/// What a successful attempt gives back, in the same atomic write as its
/// effect: its back-off starts over, its window slots are refunded, the code
/// it presented is spent and the TOTP step it used is recorded. The code and
/// the step are conditions: if a racing attempt spent or used them first, the
/// whole write is refused.
#[derive(Debug, Clone, Default)]
pub struct Settle {
    pub clear: Option<BucketKey>,
    pub refunds: Vec<(BucketKey, Timestamp)>,
    pub code: Option<Spend>,
    pub totp_step: Option<u64>,
}

/// A code to spend, as it was compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub purpose: Purpose,
    pub subject: String,
    pub digest: String,
}

impl Settle {
    /// Also spends `code` (the one this attempt's try was counted on).
    pub fn spending(mut self, code: &Code) -> Self {
        self.code = Some(Spend {
            purpose: code.purpose,
            subject: code.subject.clone(),
            digest: code.digest.clone(),
        });
        self
    }

    /// Whether it gives back nothing at all (a change no guess came before).
    pub fn is_empty(&self) -> bool {
        self.clear.is_none()
            && self.refunds.is_empty()
            && self.code.is_none()
            && self.totp_step.is_none()
    }

    /// Also records the TOTP step the attempt's code matched.
    pub fn at_step(mut self, step: u64) -> Self {
        self.totp_step = Some(step);
        self
    }
}

/// A window slot given back, if the window it was taken in is still the bucket's.
pub(in crate::store) fn refund(bucket: &mut Bucket<RateState>, window_start: Timestamp) -> bool {
    let state = &mut bucket.state;
    if state.window_start != window_start || state.count == 0 {
        return false;
    }
    state.count -= 1;
    bucket.ver += 1;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refunds_only_in_the_window_they_were_taken_in() {
        let mut b = Bucket {
            state: RateState {
                window_start: 10,
                count: 1,
                last: 10,
            },
            ver: 3,
            op: String::new(),
            expires_at: 100,
        };
        assert!(!refund(&mut b, 9));
        assert!(refund(&mut b, 10));
        assert_eq!((b.state.count, b.ver), (0, 4));
        assert!(!refund(&mut b, 10), "never below zero");
    }
}
