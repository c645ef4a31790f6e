//! The audit log's integrity: each aggregate's events form a hash chain
//! (each link is the SHA-256 of the previous link and the event's
//! canonical JSON), and a checkpoint signs the Merkle root over links
//! (the Certificate Transparency construction, RFC 6962), so history
//! cannot be rewritten unnoticed.

use crate::Event;
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// The link that follows `prev` for an event stored as `json`. The store
/// keeps each event's JSON exactly as first written and chains those bytes,
/// so a later change of the event types never breaks old links.
pub fn link_json(prev: &Hash, json: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(json);
    h.finalize().into()
}

fn link(prev: &Hash, event: &Event) -> Result<Hash, ChainError> {
    let json = serde_json::to_vec(event).map_err(|e| ChainError::Encoding(e.to_string()))?;
    Ok(link_json(prev, &json))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("event {index} does not follow from the one before: the history was changed")]
    Broken { index: usize },
    #[error("the log has {events} events but {links} links")]
    Length { events: usize, links: usize },
    #[error("cannot encode an event: {0}")]
    Encoding(String),
}

/// The links of a log, from the all-zero genesis.
pub fn chain(events: &[Event]) -> Result<Vec<Hash>, ChainError> {
    let mut prev = [0u8; 32];
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        prev = link(&prev, e)?;
        out.push(prev);
    }
    Ok(out)
}

/// Checks stored links against the events; reports the first broken one.
pub fn verify_chain(events: &[Event], links: &[Hash]) -> Result<(), ChainError> {
    if events.len() != links.len() {
        return Err(ChainError::Length { events: events.len(), links: links.len() });
    }
    let mut prev = [0u8; 32];
    for (i, (e, stored)) in events.iter().zip(links).enumerate() {
        let l = link(&prev, e)?;
        if &l != stored {
            return Err(ChainError::Broken { index: i });
        }
        prev = l;
    }
    Ok(())
}

/// The RFC 6962 Merkle tree hash over leaves (leaf: SHA-256(0x00 ‖ d),
/// node: SHA-256(0x01 ‖ left ‖ right), split at the largest power of two
/// below the count). The empty tree hashes the empty string.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest(b"").into(),
        1 => {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(leaves[0]);
            h.finalize().into()
        }
        n => {
            let k = n.next_power_of_two() / 2;
            let (l, r) = (merkle_root(&leaves[..k]), merkle_root(&leaves[k..]));
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(l);
            h.update(r);
            h.finalize().into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserId;

    fn log() -> Vec<Event> {
        vec![
            Event::Created { program: "p".into(), applicant: UserId("c".into()), at: 1 },
            Event::Submitted { at: 2 },
            Event::Withdrawn { reason: "x".into(), at: 3 },
        ]
    }

    #[test]
    fn a_changed_event_breaks_the_chain_at_that_event() {
        let events = log();
        let links = chain(&events).expect("chain");
        assert_eq!(verify_chain(&events, &links), Ok(()));
        let mut changed = events.clone();
        changed[1] = Event::Submitted { at: 99 };
        assert_eq!(verify_chain(&changed, &links), Err(ChainError::Broken { index: 1 }));
        assert_eq!(verify_chain(&events[..2], &links), Err(ChainError::Length { events: 2, links: 3 }));
        // Reordering is caught too.
        let swapped = vec![events[0].clone(), events[2].clone(), events[1].clone()];
        assert!(verify_chain(&swapped, &links).is_err());
    }

    #[test]
    fn merkle_root_follows_rfc_6962() {
        // RFC 6962 test vector: the empty tree.
        let empty = merkle_root(&[]);
        assert_eq!(
            empty.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let leaves: Vec<Hash> = (0u8..7).map(|i| [i; 32]).collect();
        let a = merkle_root(&leaves);
        let mut changed = leaves.clone();
        changed[6][0] ^= 1;
        assert_ne!(a, merkle_root(&changed));
        // The root of 3 leaves is node(node(l0, l1), leaf(l2)).
        let leaf = |x: &Hash| merkle_root(std::slice::from_ref(x));
        let node = |l: Hash, r: Hash| {
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(l);
            h.update(r);
            let out: Hash = h.finalize().into();
            out
        };
        assert_eq!(merkle_root(&leaves[..3]), node(node(leaf(&leaves[0]), leaf(&leaves[1])), leaf(&leaves[2])));
    }
}
