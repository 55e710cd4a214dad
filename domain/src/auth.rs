//! The client's bearer token (spec A9): decoded, never verified — the Annotations
//! service verifies it. We need its user (`nameid`) and its expiry.

use base64::Engine as _;

/// The `Authorization` header value as the client sent it, with what we read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerToken {
    header: String,
    user_id: Option<String>,
    expires_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the Authorization header is not `Bearer <token>`")]
    NotBearer,
}

/// A token expiring within this many seconds is refreshed first.
pub const REFRESH_WITHIN_SECS: i64 = 60;

impl BearerToken {
    /// Parses `Bearer <jwt>`. A token that is not a readable JWT is kept (it is forwarded
    /// byte for byte) but has no user and no known expiry.
    pub fn parse(header: &str) -> Result<Self, TokenError> {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::NotBearer)?;
        let claims = token
            .split('.')
            .nth(1)
            .and_then(|payload| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(payload.trim_end_matches('='))
                    .ok()
            })
            .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok());
        let user_id = claims.as_ref().and_then(|c| match c.get("nameid") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        });
        let expires_at = claims
            .as_ref()
            .and_then(|c| c.get("exp"))
            .and_then(serde_json::Value::as_i64);
        Ok(Self {
            header: header.to_string(),
            user_id,
            expires_at,
        })
    }

    /// The header value, byte for byte as received (or as refreshed).
    pub fn header(&self) -> &str {
        &self.header
    }

    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// True when the token expires within [`REFRESH_WITHIN_SECS`] of `now` (Unix seconds).
    pub fn needs_refresh(&self, now: i64) -> bool {
        self.expires_at
            .is_some_and(|exp| exp - now < REFRESH_WITHIN_SECS)
    }
}

/// What a request brings to act on the user's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub token: BearerToken,
    pub refresh_token: Option<String>,
}

#[cfg(test)]
pub(crate) fn jwt_with(claims: &serde_json::Value) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!(
        "{}.{}.sig",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_user_and_expiry_and_keeps_the_header() {
        let header = format!(
            "Bearer {}",
            jwt_with(&json!({"nameid": "u-7", "exp": 1000}))
        );
        let token = BearerToken::parse(&header).unwrap();
        assert_eq!(token.header(), header);
        assert_eq!(token.user_id(), Some("u-7"));
        assert!(!token.needs_refresh(900));
        assert!(token.needs_refresh(941));
    }

    #[test]
    fn opaque_tokens_are_forwarded_without_claims() {
        let token = BearerToken::parse("Bearer test-jwt-123").unwrap();
        assert_eq!(token.header(), "Bearer test-jwt-123");
        assert_eq!(token.user_id(), None);
        assert!(!token.needs_refresh(i64::MAX));
    }

    #[test]
    fn other_schemes_are_refused() {
        assert_eq!(BearerToken::parse("Basic abc"), Err(TokenError::NotBearer));
        assert_eq!(BearerToken::parse("Bearer "), Err(TokenError::NotBearer));
    }
}
