//! Auth events for hub owners (issue 19): what changed, written as an outbox item in the
//! same transaction as the change (an event exists exactly when its change committed), and
//! delivered by the `events` function to an EventBridge bus and, per team, to a webhook
//! signed per the Standard Webhooks spec. Every event has a unique id: receivers dedupe on
//! it (delivery is at least once).

use serde_json::{json, Value};

use crate::domain::ids::{ContactId, TeamId};

/// The event types (the EventBridge detail-type, the webhook payload's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    ContactCreated,
    MembershipCreated,
    SessionCreated,
    SessionEnded,
    SessionReuseDetected,
    EmailChangeRequested,
    EmailChangeConfirmed,
    EmailChangeUndone,
    PasswordSet,
    PasswordChanged,
    MembershipBanned,
    MembershipUnbanned,
}

impl EventType {
    pub const ALL: &'static [EventType] = &[
        EventType::ContactCreated,
        EventType::MembershipCreated,
        EventType::SessionCreated,
        EventType::SessionEnded,
        EventType::SessionReuseDetected,
        EventType::EmailChangeRequested,
        EventType::EmailChangeConfirmed,
        EventType::EmailChangeUndone,
        EventType::PasswordSet,
        EventType::PasswordChanged,
        EventType::MembershipBanned,
        EventType::MembershipUnbanned,
    ];

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|t| t.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ContactCreated => "contact.created",
            EventType::MembershipCreated => "membership.created",
            EventType::SessionCreated => "session.created",
            EventType::SessionEnded => "session.ended",
            EventType::SessionReuseDetected => "session.reuse_detected",
            EventType::EmailChangeRequested => "email_change.requested",
            EventType::EmailChangeConfirmed => "email_change.confirmed",
            EventType::EmailChangeUndone => "email_change.undone",
            EventType::PasswordSet => "password.set",
            EventType::PasswordChanged => "password.changed",
            EventType::MembershipBanned => "membership.banned",
            EventType::MembershipUnbanned => "membership.unbanned",
        }
    }
}

/// One auth event. `email` is kept beside the event and added to what is delivered only
/// for a team that opted in (`Team::events_include_email`); ids, team, hub, time and the
/// reason are always there; never a token, code or password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEvent {
    pub id: String,
    pub event_type: EventType,
    /// Unix seconds of the change.
    pub at: i64,
    pub contact_id: ContactId,
    pub team_id: Option<TeamId>,
    pub hub_id: Option<String>,
    pub session_id: Option<String>,
    /// session.ended: logout, reuse, revoked, logout_others; and, ending every session of
    /// the contact at once (no `session_id`): logout_everywhere, password_change,
    /// email_change (every session but the confirming one), email_change_undone.
    pub reason: Option<String>,
    pub email: Option<String>,
}

impl AuthEvent {
    pub fn new(event_type: EventType, at: i64, contact_id: &ContactId) -> AuthEvent {
        AuthEvent {
            id: crate::domain::secret::new_id(),
            event_type,
            at,
            contact_id: contact_id.clone(),
            team_id: None,
            hub_id: None,
            session_id: None,
            reason: None,
            email: None,
        }
    }

    pub fn team(mut self, team: Option<&TeamId>) -> Self {
        self.team_id = team.cloned();
        self
    }

    pub fn hub(mut self, hub: Option<&str>) -> Self {
        self.hub_id = hub.map(str::to_string);
        self
    }

    pub fn session(mut self, session_id: &str) -> Self {
        self.session_id = Some(session_id.to_string());
        self
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_string());
        self
    }

    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_string());
        self
    }

    /// What is delivered (the EventBridge detail; the webhook payload's `data`): the email
    /// only when the team opted in.
    pub fn detail(&self, include_email: bool) -> Value {
        let mut d = json!({
            "id": self.id,
            "type": self.event_type.as_str(),
            "time": crate::flows::account::rfc3339(self.at),
            "contact_id": self.contact_id,
            "team_id": self.team_id,
            "hub_id": self.hub_id,
        });
        if let Some(s) = &self.session_id {
            d["session_id"] = json!(s);
        }
        if let Some(r) = &self.reason {
            d["reason"] = json!(r);
        }
        if include_email {
            if let Some(e) = &self.email {
                d["email"] = json!(e);
            }
        }
        d
    }
}

/// The Standard Webhooks signature of a payload: `v1,<base64 HMAC-SHA256 over
/// "{id}.{timestamp}.{body}">` with the secret's bytes (`whsec_<base64>`; the prefix is
/// not part of the key). None for a secret that is not of that form.
pub fn webhook_signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_")?).ok()?;
    // A short key would make signatures guessable: 24 bytes at least (the spec's examples).
    if key.len() < 24 {
        return None;
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", b64.encode(mac.finalize().into_bytes())))
}

/// Whether an address may receive webhooks: a public unicast address only — never
/// loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with
/// the cloud metadata service, fe80::/10), carrier-grade NAT (100.64/10), unspecified,
/// broadcast, multicast, documentation or benchmarking ranges, nor an IPv6 form of one of
/// these (IPv4-mapped, NAT64 well-known prefix). `allow_loopback`: local development only.
pub fn webhook_address_allowed(addr: std::net::IpAddr, allow_loopback: bool) -> bool {
    use std::net::IpAddr;
    let v4_ok = |v4: std::net::Ipv4Addr| {
        let [a, b, c, _] = v4.octets();
        if v4.is_loopback() {
            return allow_loopback;
        }
        !(v4.is_private()
            || v4.is_link_local()
            || v4.is_unspecified()
            || v4.is_broadcast()
            || v4.is_multicast()
            || v4.is_documentation()
            || a == 0
            || (a == 100 && (64..128).contains(&b))
            || (a == 192 && b == 0 && c == 0)
            || (a == 198 && (18..20).contains(&b))
            || a >= 240)
    };
    match addr {
        IpAddr::V4(v4) => v4_ok(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_ok(v4);
            }
            let seg = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
            if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
                let [.., hi, lo] = seg;
                let v4 =
                    std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
                return v4_ok(v4);
            }
            if v6.is_loopback() {
                return allow_loopback;
            }
            // 6to4 (2002::/16) carries an IPv4 address in its next 32 bits.
            if seg[0] == 0x2002 {
                let v4 = std::net::Ipv4Addr::new(
                    (seg[1] >> 8) as u8,
                    seg[1] as u8,
                    (seg[2] >> 8) as u8,
                    seg[2] as u8,
                );
                return v4_ok(v4);
            }
            // Also refused: site-local (fec0::/10), Teredo (2001::/32), the local-use NAT64
            // prefix (64:ff9b:1::/48) and anything else under 64:ff9b::/32.
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] & 0xffc0) == 0xfec0
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
                || (seg[0] == 0x2001 && seg[1] == 0x0000)
                || (seg[0] == 0x64 && seg[1] == 0xff9b)
                || seg[0] == 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_unique_and_dotted() {
        let names: std::collections::HashSet<_> =
            EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), EventType::ALL.len());
        assert!(names.iter().all(|n| n.contains('.')));
    }

    #[test]
    fn the_email_is_delivered_only_when_the_team_opted_in() {
        let e = AuthEvent::new(EventType::ContactCreated, 0, &ContactId::from_stored("c"))
            .team(Some(&TeamId::from_stored("t")))
            .email("member@example.com");
        assert!(e.detail(false).get("email").is_none());
        assert_eq!(e.detail(true)["email"], "member@example.com");
        assert_eq!(e.detail(false)["type"], "contact.created");
        assert_eq!(e.detail(false)["time"], "1970-01-01T00:00:00Z");
        assert!(!e.detail(false).to_string().contains("example.com"));
    }

    #[test]
    fn signatures_follow_the_standard_webhooks_test_vector() {
        // The spec's example (standard-webhooks/standard-webhooks, libraries' tests).
        let sig = webhook_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(webhook_signature("not-a-secret", "i", 1, "b"), None);
        assert_eq!(webhook_signature("whsec_", "i", 1, "b"), None);
        assert_eq!(webhook_signature("whsec_c2hvcnQ=", "i", 1, "b"), None);
    }

    #[test]
    fn webhooks_go_to_public_addresses_only() {
        let ok = |s: &str| webhook_address_allowed(s.parse().unwrap(), false);
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::6810:84e5",
            "2002:5db8:d70e::1",
        ] {
            assert!(ok(public), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "240.0.0.1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "64:ff9b:1::a9fe:a9fe",
            "fec0::1",
        ] {
            assert!(!ok(private), "{private}");
        }
        assert!(webhook_address_allowed("127.0.0.1".parse().unwrap(), true));
        assert!(!webhook_address_allowed(
            "169.254.169.254".parse().unwrap(),
            true
        ));
    }
}
