//! The finance bureau's dashboard: one self-contained page (inline CSS and vanilla JS, no
//! external resources, no build step) that reads the JSON endpoints with a bearer token.

/// The page, embedded in the binary.
pub(crate) const PAGE: &str = include_str!("dashboard.html");

/// The page loads nothing from elsewhere and talks only to this service.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";
