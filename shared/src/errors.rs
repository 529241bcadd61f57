//! The one list of error codes the API answers with: one table below gives each code its
//! wire name, HTTP status, title and default detail. Every failure is mapped to one of
//! these at the edge; handlers never build error bodies by hand.

use http::StatusCode;

/// Declares `ErrorCode` and everything derived from the table: `ALL`, `as_str`,
/// `status`, `title`, `default_detail`. One row per code; nothing is written twice.
macro_rules! error_codes {
    ($($variant:ident = ($code:literal, $status:literal, $title:literal, $detail:literal),)*) => {
        /// A stable, public error code. `as_str` is what clients see in `errors[].code`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code, for docs and tests (the OpenAPI file lists the same set).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status as written in the table (a unit test checks each is 4xx/5xx).
            pub fn status_code(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            pub fn status(self) -> StatusCode {
                StatusCode::from_u16(self.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }

            pub fn title(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $title,)*
                }
            }

            /// The detail used when a handler gives none. Never carries request data.
            pub fn default_detail(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $detail,)*
                }
            }
        }
    };
}

error_codes! {
    MalformedJson = ("malformed_json", 400, "Malformed JSON",
        "The request body is not valid JSON."),
    ValidationError = ("validation_error", 422, "Validation Error",
        "The request is not valid."),
    UnknownAttribute = ("unknown_attribute", 422, "Unknown Attribute",
        "This attribute is not accepted on this route."),
    TypeMismatch = ("type_mismatch", 409, "Type Mismatch",
        "data.type does not match this route."),
    UnsupportedMediaType = ("unsupported_media_type", 415, "Unsupported Media Type",
        "Send the body as application/vnd.api+json (or application/json)."),
    PayloadTooLarge = ("payload_too_large", 413, "Payload Too Large",
        "The request body is larger than 16 KiB."),
    NotFound = ("not_found", 404, "Not Found",
        "There is nothing at this path."),
    MethodNotAllowed = ("method_not_allowed", 405, "Method Not Allowed",
        "This method is not allowed on this path."),
    PasswordNotAllowed = ("password_not_allowed", 422, "Password Not Allowed",
        "Registration is by magic link only; set a password after signing in with POST /api/v1/contact-auth/me/password."),
    RedirectUrlRequiresSlug = ("redirect_url_requires_slug", 422, "Redirect URL Requires Slug",
        "redirect_url can only be used with slug: it is checked against the hub's allowed redirect origins."),
    RedirectUrlNotAllowed = ("redirect_url_not_allowed", 422, "Redirect URL Not Allowed",
        "The origin of redirect_url is not in the hub's allowed redirect origins."),
    MagicLinkInvalid = ("magic_link_invalid", 401, "Magic Link Invalid",
        "This sign-in link is invalid, already used or expired. Request a new link."),
    RateLimited = ("rate_limited", 429, "Rate Limited",
        "Too many requests. Retry later."),
    Unauthorized = ("unauthorized", 401, "Unauthorized",
        "A valid access token is required."),
    InvalidCredentials = ("invalid_credentials", 401, "Invalid Credentials",
        "The email or password is incorrect."),
    RefreshTokenMissing = ("refresh_token_missing", 401, "Refresh Token Missing",
        "No refresh token was sent (cookie or body)."),
    RefreshTokenInvalid = ("refresh_token_invalid", 401, "Refresh Token Invalid",
        "The refresh token is invalid or expired. Sign in again."),
    RefreshTokenReused = ("refresh_token_reused", 401, "Refresh Token Reused",
        "The refresh token was already used; the session has been ended. Sign in again."),
    EmailTaken = ("email_taken", 409, "Email Taken",
        "This email address belongs to another account."),
    PasswordAlreadySet = ("password_already_set", 409, "Password Already Set",
        "A password is already set. Use POST /api/v1/contact-auth/me/password/change."),
    PasswordNotSet = ("password_not_set", 400, "Password Not Set",
        "No password is set yet. Use POST /api/v1/contact-auth/me/password."),
    CurrentPasswordIncorrect = ("current_password_incorrect", 422, "Current Password Incorrect",
        "The current password is incorrect."),
    PasswordTooShort = ("password_too_short", 422, "Password Too Short",
        "The password must be at least 8 characters."),
    PasswordTooLong = ("password_too_long", 422, "Password Too Long",
        "The password must be at most 256 characters."),
    PasswordTooCommon = ("password_too_common", 422, "Password Too Common",
        "This password is too common. Choose another one."),
    PasswordContainsEmail = ("password_contains_email", 422, "Password Contains Email",
        "The password must not be the email address."),
    SessionNotFound = ("session_not_found", 404, "Session Not Found",
        "None of your active sessions has this id."),
    ReauthenticationRequired = ("reauthentication_required", 403, "Reauthentication Required",
        "This change needs a recent sign-in. Sign in again (with an email link or your password) and retry within 10 minutes."),
    InternalError = ("internal_error", 500, "Internal Error",
        "Something went wrong on our side. Retry later."),
    Unavailable = ("unavailable", 503, "Service Unavailable",
        "The service is temporarily unavailable. Retry later."),
}

/// An error a handler returns; the edge turns it into a JSON:API error document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: Option<String>,
    pub pointer: Option<String>,
    /// Seconds, for `Retry-After` on 429/503.
    pub retry_after: Option<u64>,
    /// `meta.reason`: a machine-readable why (`magic_link_invalid`: `LinkRefusal`).
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            detail: None,
            pointer: None,
            retry_after: None,
            reason: None,
        }
    }

    /// `magic_link_invalid` with its `meta.reason`.
    pub fn link_refused(reason: crate::domain::model::LinkRefusal) -> Self {
        use crate::domain::model::LinkRefusal;
        let mut e = ApiError::new(ErrorCode::MagicLinkInvalid);
        match reason {
            LinkRefusal::Invalid => {
                e = e.detail(
                    "This sign-in code is not valid. Type the code from the newest email, or use its link.",
                )
            }
            LinkRefusal::VerifierMismatch => {
                e = e.detail(
                    "This link was requested in another browser. Open it there, or type its code on the page that asked for it.",
                )
            }
            _ => {}
        }
        e.reason = Some(reason.as_str());
        e
    }

    pub fn at(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn validation(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::ValidationError)
            .at(pointer)
            .detail(detail)
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let secs = retry_after.max(1);
        let mut e = ApiError::new(ErrorCode::RateLimited).detail(format!(
            "Too many requests. Retry in {secs} second{}.",
            if secs == 1 { "" } else { "s" }
        ));
        e.retry_after = Some(secs);
        e
    }

    pub fn internal() -> Self {
        ApiError::new(ErrorCode::InternalError)
    }

    pub fn unavailable() -> Self {
        let mut e = ApiError::new(ErrorCode::Unavailable);
        e.retry_after = Some(5);
        e
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        ApiError::new(code)
    }
}

/// Failures of the ports (store, mailer, key source). The text is for logs only and
/// must never contain secrets; it never reaches a response body.
#[derive(Debug)]
pub enum PortError {
    /// The dependency is unreachable or throttling: answer 503.
    Unavailable(String),
    /// Anything else: answer 500.
    Internal(String),
    /// The dependency refused the request for good (e.g. SES rejected a message):
    /// retrying cannot help. Answer 500 on a request path; the mailer drops the job.
    Permanent(String),
    /// SES refused a send for the account's send rate: wait and send again.
    Throttled(String),
    /// SES stopped the account's sending (daily quota, paused, suspended): no retry soon
    /// helps; the mailer parks the job for `contact-auth-admin redrive`.
    Paused(String),
}

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortError::Unavailable(m) => write!(f, "dependency unavailable: {m}"),
            PortError::Internal(m) => write!(f, "internal: {m}"),
            PortError::Permanent(m) => write!(f, "permanent: {m}"),
            PortError::Throttled(m) => write!(f, "throttled: {m}"),
            PortError::Paused(m) => write!(f, "sending paused: {m}"),
        }
    }
}

impl std::error::Error for PortError {}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        tracing::error!(error = %e, "port failure");
        match e {
            PortError::Unavailable(_) | PortError::Throttled(_) | PortError::Paused(_) => {
                ApiError::unavailable()
            }
            PortError::Internal(_) | PortError::Permanent(_) => ApiError::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_have_client_or_server_status() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert!(c
                .as_str()
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch == '_'));
            assert!((400..=599).contains(&c.status_code()), "{}", c.as_str());
            assert_eq!(c.status().as_u16(), c.status_code());
            assert!(!c.title().is_empty() && !c.default_detail().is_empty());
        }
    }

    #[test]
    fn rate_limited_detail_says_when() {
        let e = ApiError::rate_limited(42);
        assert_eq!(e.retry_after, Some(42));
        assert!(e.detail.unwrap().contains("42 seconds"));
        assert_eq!(ApiError::rate_limited(0).retry_after, Some(1));
    }
}
