//! Which hub or team a request is for: exactly one of `slug` / `team_id` (register,
//! magic, login), each checked for shape before any read.

use crate::domain::ids::TeamId;
use crate::edge::attr_pointer;
use crate::errors::ApiError;

/// A hub slug: 1–64 of `a-z 0-9 -`, not starting or ending with `-` (case-folded).
pub fn parse_slug(raw: &str) -> Result<String, ApiError> {
    let slug = raw.trim().to_ascii_lowercase();
    let ok = !slug.is_empty()
        && slug.len() <= 64
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(slug)
    } else {
        Err(ApiError::validation(
            attr_pointer("slug"),
            "slug must be 1-64 characters of a-z, 0-9 and '-'.",
        ))
    }
}

/// A team id: 1–64 of `A-Z a-z 0-9 _ -`.
pub fn parse_team_id(raw: &str) -> Result<TeamId, ApiError> {
    let t = raw.trim();
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(TeamId::from_stored(t))
    } else {
        Err(ApiError::validation(
            attr_pointer("team_id"),
            "team_id must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'.",
        ))
    }
}

pub enum Target {
    Slug(String),
    Team(TeamId),
}

/// The shared "exactly one of slug / team_id" rule (register, magic, login).
pub fn parse_target(slug: Option<String>, team_id: Option<String>) -> Result<Target, ApiError> {
    match (slug, team_id) {
        (Some(s), None) => Ok(Target::Slug(parse_slug(&s)?)),
        (None, Some(t)) => Ok(Target::Team(parse_team_id(&t)?)),
        _ => Err(ApiError::validation(
            "/data/attributes",
            "Give exactly one of slug or team_id.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_team_ids() {
        assert_eq!(parse_slug(" My-Hub ").unwrap(), "my-hub");
        for bad in ["", "-a", "a-", "a_b", "a b", &"a".repeat(65)] {
            assert!(parse_slug(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_team_id("team_abc123").unwrap().as_str(),
            "team_abc123"
        );
        assert!(parse_team_id("team abc").is_err());
        assert!(parse_team_id("").is_err());
        assert!(parse_target(None, None).is_err());
        assert!(parse_target(Some("a".into()), Some("b".into())).is_err());
        assert_eq!(
            parse_target(None, None).err().unwrap().pointer.as_deref(),
            Some("/data/attributes")
        );
    }

    #[test]
    fn exactly_one_of_slug_or_team_id_picks_the_target() {
        match parse_target(Some(" My-Hub ".into()), None) {
            Ok(Target::Slug(s)) => assert_eq!(s, "my-hub"),
            _ => panic!("a slug alone is a slug target"),
        }
        match parse_target(None, Some("team_1".into())) {
            Ok(Target::Team(t)) => assert_eq!(t.as_str(), "team_1"),
            _ => panic!("a team_id alone is a team target"),
        }
        // Each is still checked.
        assert!(parse_target(Some("a b".into()), None).is_err());
        assert!(parse_target(None, Some("a b".into())).is_err());
    }
}
