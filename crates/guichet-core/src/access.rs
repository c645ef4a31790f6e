//! Who may do what: one table, checked by every use case of the service
//! (the JSON API and the screens call the same use cases). Pure: the
//! service passes the actor and the dossier.

use crate::{Dossier, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Citizen,
    CaseWorker,
    Reviewer,
    FinanceOfficer,
    ProgramManager,
    Administrator,
    /// Signs agreements for the organization (countersigns loan
    /// agreements) with a personal certificate.
    SigningOfficer,
}

/// Someone acting: a user and the roles the organization gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: UserId,
    pub roles: Vec<Role>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read a dossier (answers, documents, decision, events).
    Read,
    /// Create a draft, answer, attach, submit, withdraw, provide
    /// information, request a review, sign the agreement.
    ActAsApplicant,
    /// Request information, decide.
    Decide,
    /// Review a decision.
    Review,
    /// Schedule payments, mark them paid.
    Pay,
    /// Publish a program version, simulate.
    ManagePrograms,
    /// Users, roles, settings, the audit log.
    Administer,
}

/// Why not. The service answers 404 for `NotYours` (a citizen must not
/// learn that someone else's dossier exists) and 403 for the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("this dossier is not yours")]
    NotYours,
    #[error("your role does not allow this")]
    Role,
}

impl Actor {
    fn has(&self, r: Role) -> bool {
        self.roles.contains(&r)
    }

    /// Whether this actor may do `action` (on `dossier` when it concerns one).
    pub fn may(&self, action: Action, dossier: Option<&Dossier>) -> Result<(), Denied> {
        let own = dossier.is_some_and(|d| d.applicant == self.user);
        let staff = self.has(Role::CaseWorker) || self.has(Role::Reviewer) || self.has(Role::FinanceOfficer);
        let ok = match action {
            Action::Read => own || staff || self.has(Role::Administrator),
            Action::ActAsApplicant => {
                if dossier.is_some() && !own {
                    return Err(if staff || self.has(Role::Administrator) { Denied::Role } else { Denied::NotYours });
                }
                self.has(Role::Citizen) || own
            }
            Action::Decide => self.has(Role::CaseWorker) && !own,
            // The rule "not the one who decided" is the dossier's own (see
            // `Command::Review`); here, the role, and never on one's own file.
            Action::Review => self.has(Role::Reviewer) && !own,
            Action::Pay => self.has(Role::FinanceOfficer) && !own,
            Action::ManagePrograms => self.has(Role::ProgramManager),
            Action::Administer => self.has(Role::Administrator),
        };
        if ok {
            Ok(())
        } else if dossier.is_some() && !own && !staff && !self.has(Role::Administrator) {
            Err(Denied::NotYours)
        } else {
            Err(Denied::Role)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(user: &str, roles: &[Role]) -> Actor {
        Actor { user: UserId(user.into()), roles: roles.to_vec() }
    }

    fn dossier_of(user: &str) -> Dossier {
        let events = Dossier::create("p", UserId(user.into()), 1).expect("create");
        Dossier::replay(&events).expect("replay")
    }

    /// The whole matrix: every role × every action × own / someone else's.
    #[test]
    fn authorization_matrix() {
        use Action::*;
        use Role::*;
        let mine = dossier_of("alice");
        let theirs = dossier_of("bob");
        // (role, action, on own dossier allowed, on someone else's allowed)
        let table: &[(Role, Action, bool, bool)] = &[
            (Citizen, Read, true, false),
            (Citizen, ActAsApplicant, true, false),
            (Citizen, Decide, false, false),
            (Citizen, Review, false, false),
            (Citizen, Pay, false, false),
            (CaseWorker, Read, true, true),
            (CaseWorker, ActAsApplicant, true, false),
            (CaseWorker, Decide, false, true),
            (CaseWorker, Review, false, false),
            (Reviewer, Review, false, true),
            (Reviewer, Decide, false, false),
            (FinanceOfficer, Pay, false, true),
            (FinanceOfficer, Decide, false, false),
            (Administrator, Read, true, true),
            (Administrator, Decide, false, false),
        ];
        for (role, action, on_own, on_other) in table {
            let a = actor("alice", &[*role]);
            assert_eq!(a.may(*action, Some(&mine)).is_ok(), *on_own, "{role:?} {action:?} on own");
            assert_eq!(a.may(*action, Some(&theirs)).is_ok(), *on_other, "{role:?} {action:?} on other's");
        }
        // A citizen probing someone else's dossier learns nothing (404).
        assert_eq!(actor("alice", &[Citizen]).may(Read, Some(&theirs)), Err(Denied::NotYours));
        // Staff are refused by role (403).
        assert_eq!(actor("alice", &[CaseWorker]).may(Pay, Some(&theirs)), Err(Denied::Role));
        // Program and administration actions.
        assert!(actor("m", &[ProgramManager]).may(ManagePrograms, None).is_ok());
        assert!(actor("c", &[Citizen]).may(ManagePrograms, None).is_err());
        assert!(actor("a", &[Administrator]).may(Administer, None).is_ok());
        assert!(actor("w", &[CaseWorker]).may(Administer, None).is_err());
    }
}
