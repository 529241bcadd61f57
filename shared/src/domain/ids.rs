//! Contact, team and hub ids as their own types.
//!
//! A contact id passed where a team id belongs (`membership(team, contact)`), or a hub id
//! signed into a token as its team, is an authorisation bug; with these types it does not
//! compile. The wire form is unchanged: each serialises as its plain string
//! (`#[serde(transparent)]`), in the table, in JWT claims and in mail jobs.
//!
//! Ids are not secrets (they appear in tokens and logs), so `Debug` shows them.
//!
//! The item keys take them in order, and the compiler holds callers to it:
//!
//! ```
//! use contact_auth::adapters::dynamo::keys;
//! use contact_auth::domain::ids::{ContactId, TeamId};
//! let (contact, team) = (ContactId::generate(), TeamId::from_stored("team_abc123"));
//! let (pk, sk) = keys::membership(&contact, &team);
//! assert_eq!(sk, "TEAM#team_abc123");
//! # let _ = pk;
//! ```
//!
//! ```compile_fail
//! use contact_auth::adapters::dynamo::keys;
//! use contact_auth::domain::ids::{ContactId, TeamId};
//! let (contact, team) = (ContactId::generate(), TeamId::from_stored("team_abc123"));
//! keys::membership(&team, &contact); // swapped: expected `&ContactId`, found `&TeamId`
//! ```
//!
//! ```compile_fail
//! use contact_auth::domain::ids::TeamId;
//! let team: TeamId = "from a request body".into(); // only `parse_team_id` or `from_stored`
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// An id that was checked when it was written: read from the table, from a
            /// verified token, or from the admin tool's arguments.
            pub fn from_stored(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// A contact (member) id: a UUID v4 made by `ContactId::generate`.
    ContactId
);
id_type!(
    /// A team id: 1–64 characters of `A-Za-z0-9_-` (`target::parse_team_id` checks
    /// one from a request).
    TeamId
);
id_type!(
    /// A hub id (a hub is one team's public face, found by its slug).
    HubId
);

impl ContactId {
    /// A new random contact id (UUID v4).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_wire_form_and_show_their_type() {
        let c = ContactId::from_stored("c-1");
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"c-1\"");
        assert_eq!(
            serde_json::from_str::<TeamId>("\"team_1\"").unwrap(),
            TeamId::from_stored("team_1")
        );
        assert_eq!(c.to_string(), "c-1");
        assert_eq!(c.as_str(), "c-1");
        assert_eq!(format!("{c:?}"), "ContactId(\"c-1\")");
        assert_eq!(format!("{:?}", HubId::from_stored("h")), "HubId(\"h\")");
    }

    #[test]
    fn generated_contact_ids_are_distinct_uuids() {
        let (a, b) = (ContactId::generate(), ContactId::generate());
        assert_ne!(a, b);
        assert!(uuid::Uuid::parse_str(a.as_str()).is_ok());
    }
}
