//! # guichet-core
//!
//! The dossier — an application to an aid program — as a state machine:
//! commands are checked against the current state and produce events; the
//! state is rebuilt from the events alone, so the event log is the truth
//! (and the audit trail). Pure: no clock, no IO; times and identities come
//! in with the commands.

mod access;
mod audit;
mod dossier;
mod envelope;
mod identity;

pub use access::{Action, Actor, Denied, Role};
pub use audit::{ChainError, Hash, chain, link_json, merkle_root, verify_chain};
pub use dossier::{BankDetails, Command, CommandError, Decision, Dossier, Event, Outcome, State, Timestamp, UserId};
pub use envelope::{
    Envelope, EnvelopeError, EnvelopeEvent, EnvelopeState, Evidence, Field, NewEnvelope, Party, Recipient, Standing,
};
pub use identity::{BankAccount, Email, IdentityError, PostalCode, Sin};
