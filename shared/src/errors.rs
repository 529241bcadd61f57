//! The one list of error codes the API answers with. Every failure is mapped to one of
//! these at the edge; handlers never build error bodies by hand.

use http::StatusCode;

/// A stable, public error code. `as_str` is what clients see in `errors[].code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MalformedJson,
    ValidationError,
    UnknownAttribute,
    TypeMismatch,
    UnsupportedMediaType,
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed,
    PasswordNotAllowed,
    RedirectUrlRequiresSlug,
    RedirectUrlNotAllowed,
    MagicLinkInvalid,
    RateLimited,
    Unauthorized,
    InvalidCredentials,
    RefreshTokenMissing,
    RefreshTokenInvalid,
    RefreshTokenReused,
    EmailTaken,
    PasswordAlreadySet,
    PasswordNotSet,
    CurrentPasswordIncorrect,
    PasswordTooShort,
    PasswordTooLong,
    PasswordTooCommon,
    PasswordContainsEmail,
    ReauthenticationRequired,
    InternalError,
    Unavailable,
}

impl ErrorCode {
    /// Every code, for docs and tests (the OpenAPI file lists the same set).
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::MalformedJson,
        ErrorCode::ValidationError,
        ErrorCode::UnknownAttribute,
        ErrorCode::TypeMismatch,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PasswordNotAllowed,
        ErrorCode::RedirectUrlRequiresSlug,
        ErrorCode::RedirectUrlNotAllowed,
        ErrorCode::MagicLinkInvalid,
        ErrorCode::RateLimited,
        ErrorCode::Unauthorized,
        ErrorCode::InvalidCredentials,
        ErrorCode::RefreshTokenMissing,
        ErrorCode::RefreshTokenInvalid,
        ErrorCode::RefreshTokenReused,
        ErrorCode::EmailTaken,
        ErrorCode::PasswordAlreadySet,
        ErrorCode::PasswordNotSet,
        ErrorCode::CurrentPasswordIncorrect,
        ErrorCode::PasswordTooShort,
        ErrorCode::PasswordTooLong,
        ErrorCode::PasswordTooCommon,
        ErrorCode::PasswordContainsEmail,
        ErrorCode::ReauthenticationRequired,
        ErrorCode::InternalError,
        ErrorCode::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::ValidationError => "validation_error",
            ErrorCode::UnknownAttribute => "unknown_attribute",
            ErrorCode::TypeMismatch => "type_mismatch",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PasswordNotAllowed => "password_not_allowed",
            ErrorCode::RedirectUrlRequiresSlug => "redirect_url_requires_slug",
            ErrorCode::RedirectUrlNotAllowed => "redirect_url_not_allowed",
            ErrorCode::MagicLinkInvalid => "magic_link_invalid",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::RefreshTokenMissing => "refresh_token_missing",
            ErrorCode::RefreshTokenInvalid => "refresh_token_invalid",
            ErrorCode::RefreshTokenReused => "refresh_token_reused",
            ErrorCode::EmailTaken => "email_taken",
            ErrorCode::PasswordAlreadySet => "password_already_set",
            ErrorCode::PasswordNotSet => "password_not_set",
            ErrorCode::CurrentPasswordIncorrect => "current_password_incorrect",
            ErrorCode::PasswordTooShort => "password_too_short",
            ErrorCode::PasswordTooLong => "password_too_long",
            ErrorCode::PasswordTooCommon => "password_too_common",
            ErrorCode::PasswordContainsEmail => "password_contains_email",
            ErrorCode::ReauthenticationRequired => "reauthentication_required",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            MalformedJson | PasswordNotSet => StatusCode::BAD_REQUEST,
            ValidationError
            | UnknownAttribute
            | PasswordNotAllowed
            | RedirectUrlRequiresSlug
            | RedirectUrlNotAllowed
            | CurrentPasswordIncorrect
            | PasswordTooShort
            | PasswordTooLong
            | PasswordTooCommon
            | PasswordContainsEmail => StatusCode::UNPROCESSABLE_ENTITY,
            TypeMismatch | EmailTaken | PasswordAlreadySet => StatusCode::CONFLICT,
            ReauthenticationRequired => StatusCode::FORBIDDEN,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            MagicLinkInvalid | Unauthorized | InvalidCredentials | RefreshTokenMissing
            | RefreshTokenInvalid | RefreshTokenReused => StatusCode::UNAUTHORIZED,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn title(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedJson => "Malformed JSON",
            ValidationError => "Validation Error",
            UnknownAttribute => "Unknown Attribute",
            TypeMismatch => "Type Mismatch",
            UnsupportedMediaType => "Unsupported Media Type",
            PayloadTooLarge => "Payload Too Large",
            NotFound => "Not Found",
            MethodNotAllowed => "Method Not Allowed",
            PasswordNotAllowed => "Password Not Allowed",
            RedirectUrlRequiresSlug => "Redirect URL Requires Slug",
            RedirectUrlNotAllowed => "Redirect URL Not Allowed",
            MagicLinkInvalid => "Magic Link Invalid",
            RateLimited => "Rate Limited",
            Unauthorized => "Unauthorized",
            InvalidCredentials => "Invalid Credentials",
            RefreshTokenMissing => "Refresh Token Missing",
            RefreshTokenInvalid => "Refresh Token Invalid",
            RefreshTokenReused => "Refresh Token Reused",
            EmailTaken => "Email Taken",
            PasswordAlreadySet => "Password Already Set",
            PasswordNotSet => "Password Not Set",
            CurrentPasswordIncorrect => "Current Password Incorrect",
            PasswordTooShort => "Password Too Short",
            PasswordTooLong => "Password Too Long",
            PasswordTooCommon => "Password Too Common",
            PasswordContainsEmail => "Password Contains Email",
            ReauthenticationRequired => "Reauthentication Required",
            InternalError => "Internal Error",
            Unavailable => "Service Unavailable",
        }
    }

    /// The detail used when a handler gives none. Never carries request data.
    pub fn default_detail(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedJson => "The request body is not valid JSON.",
            ValidationError => "The request is not valid.",
            UnknownAttribute => "This attribute is not accepted on this route.",
            TypeMismatch => "data.type does not match this route.",
            UnsupportedMediaType => {
                "Send the body as application/vnd.api+json (or application/json)."
            }
            PayloadTooLarge => "The request body is larger than 16 KiB.",
            NotFound => "There is nothing at this path.",
            MethodNotAllowed => "This method is not allowed on this path.",
            PasswordNotAllowed => {
                "Registration is by magic link only; set a password after signing in with POST /api/v1/contact-auth/me/password."
            }
            RedirectUrlRequiresSlug => {
                "redirect_url can only be used with slug: it is checked against the hub's allowed redirect origins."
            }
            RedirectUrlNotAllowed => {
                "The origin of redirect_url is not in the hub's allowed redirect origins."
            }
            MagicLinkInvalid => {
                "This sign-in link is invalid, already used or expired. Request a new link."
            }
            RateLimited => "Too many requests. Retry later.",
            Unauthorized => "A valid access token is required.",
            InvalidCredentials => "The email or password is incorrect.",
            RefreshTokenMissing => "No refresh token was sent (cookie or body).",
            RefreshTokenInvalid => "The refresh token is invalid or expired. Sign in again.",
            RefreshTokenReused => {
                "The refresh token was already used; the session has been ended. Sign in again."
            }
            EmailTaken => "This email address belongs to another account.",
            PasswordAlreadySet => {
                "A password is already set. Use POST /api/v1/contact-auth/me/password/change."
            }
            PasswordNotSet => "No password is set yet. Use POST /api/v1/contact-auth/me/password.",
            CurrentPasswordIncorrect => "The current password is incorrect.",
            PasswordTooShort => "The password must be at least 8 characters.",
            PasswordTooLong => "The password must be at most 256 characters.",
            PasswordTooCommon => "This password is too common. Choose another one.",
            PasswordContainsEmail => "The password must not be the email address.",
            ReauthenticationRequired => {
                "This change needs a recent sign-in. Sign in again (with an email link or your password) and retry within 10 minutes."
            }
            InternalError => "Something went wrong on our side. Retry later.",
            Unavailable => "The service is temporarily unavailable. Retry later.",
        }
    }
}

/// An error a handler returns; the edge turns it into a JSON:API error document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: Option<String>,
    pub pointer: Option<String>,
    /// Seconds, for `Retry-After` on 429/503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            detail: None,
            pointer: None,
            retry_after: None,
        }
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
}

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortError::Unavailable(m) => write!(f, "dependency unavailable: {m}"),
            PortError::Internal(m) => write!(f, "internal: {m}"),
            PortError::Permanent(m) => write!(f, "permanent: {m}"),
        }
    }
}

impl std::error::Error for PortError {}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        tracing::error!(error = %e, "port failure");
        match e {
            PortError::Unavailable(_) => ApiError::unavailable(),
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
            assert!(c.status().is_client_error() || c.status().is_server_error());
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
