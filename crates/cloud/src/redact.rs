//! Keeping secrets (account keys, SAS signatures, bearer tokens) out of every string this crate prints.

use std::fmt;

/// A value that must never be printed: `Debug` and `Display` show `<redacted>`.
///
/// The inner value is reachable only through [`Redacted::expose`], so a call
/// site that needs the secret says so in the code.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// Wraps a secret.
    pub fn new(secret: T) -> Self {
        Self(secret)
    }

    /// The secret itself, for the one place that signs or sends it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(secret: T) -> Self {
        Self(secret)
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Parameter names whose values are secrets wherever they appear as `name=value`
/// (URL queries, connection strings, form bodies), compared case-insensitively.
const SECRET_KEYS: &[&str] = &[
    "sig",
    "accountkey",
    "sharedaccesssignature",
    "access_token",
    "refresh_token",
    "client_secret",
    "client_assertion",
    "password",
];

/// Returns `text` with the values of known secret parameters and bearer tokens
/// replaced by `<redacted>`.
///
/// Applied to every message that comes from the Azure SDK or a service before
/// it reaches an [`Error`](crate::Error): those can quote request URLs, and a
/// SAS in a URL carries its signature in `sig=`.
pub fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let (before, after_eq) = rest.split_at(eq);
        let name_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &before[name_start..];
        out.push_str(before);
        out.push('=');
        let value = &after_eq[1..];
        if SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            // A SharedAccessSignature value is itself a query string, so it runs to the
            // next `;` (connection-string separator); any other value ends at `&` too.
            let stops: &[char] = if name.eq_ignore_ascii_case("sharedaccesssignature") {
                &[';', '"', '\'', ' ', '\n', '\r', '\t', '<', '>']
            } else {
                &['&', ';', '"', '\'', ' ', '\n', '\r', '\t', '<', '>', ',']
            };
            let end = value.find(stops).unwrap_or(value.len());
            if end > 0 {
                out.push_str("<redacted>");
            }
            rest = &value[end..];
        } else {
            rest = value;
        }
    }
    out.push_str(rest);
    redact_bearer(&out)
}

fn redact_bearer(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let lower = rest.to_ascii_lowercase();
        let Some(at) = lower.find("bearer ") else {
            out.push_str(rest);
            return out;
        };
        let token_start = at + "bearer ".len();
        out.push_str(&rest[..token_start]);
        let token = &rest[token_start..];
        let end = token
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
            .unwrap_or(token.len());
        if end > 0 {
            out.push_str("<redacted>");
        }
        rest = &token[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_never_prints_its_value() {
        let key = Redacted::new(String::from("c2VjcmV0LWtleQ=="));
        assert_eq!(format!("{key}"), "<redacted>");
        assert_eq!(format!("{key:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&key)), "Some(<redacted>)");
        assert_eq!(key.expose(), "c2VjcmV0LWtleQ==");
    }

    #[test]
    fn scrubs_sas_signatures_in_urls() {
        let url = "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&ss=bq&sig=AbC%2Bdef%3D&se=2030-01-01T00%3A00%3A00Z";
        let clean = redact_secrets(url);
        assert!(!clean.contains("AbC"), "{clean}");
        assert!(clean.contains("sig=<redacted>&se=2030"), "{clean}");
        assert!(clean.contains("sv=2022-11-02"), "{clean}");
    }

    #[test]
    fn scrubs_connection_string_keys() {
        let cs = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFy+/==;EndpointSuffix=core.windows.net";
        let clean = redact_secrets(cs);
        assert_eq!(
            clean,
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=<redacted>;EndpointSuffix=core.windows.net"
        );
        let cs = "BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=2022-11-02&sig=abc&se=x;Queue=q";
        let clean = redact_secrets(cs);
        assert!(!clean.contains("abc"), "{clean}");
        assert!(clean.ends_with(";Queue=q"), "{clean}");
    }

    #[test]
    fn scrubs_bearer_tokens_and_token_fields() {
        let text = r#"Authorization: Bearer eyJ0eXAi.payload.sig, body {"access_token=eyJabc"}"#;
        let clean = redact_secrets(text);
        assert!(!clean.contains("eyJ"), "{clean}");
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let text = "blob runs/abc/frames/000001.png not found (status=404)";
        assert_eq!(redact_secrets(text), text);
    }
}
