//! The service's configuration file (DESIGN §9) and its principals: who holds which bearer
//! token, stored only as the token's BLAKE3 hash.

use std::collections::HashMap;
use std::path::PathBuf;

use fundledger_events::{Actor, Role};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Bytes of randomness in a demo token (shown as twice as many hex digits).
const DEMO_TOKEN_BYTES: usize = 32;

/// The TOML configuration of `fundledger serve`:
///
/// ```toml
/// listen = "127.0.0.1:8080"
/// store = "sqlite://data/fundledger.db"
/// [[principals]]
/// id = "fin.wang"
/// role = "finance"
/// unit = "市财政局"              # or firm = "<USCC>" for an applicant
/// token_blake3 = "<lowercase hex BLAKE3 of the bearer token>"
/// ```
///
/// `listen` and `store` are optional here so that the command line can tell a value given in
/// the file from its own default; unknown fields are refused, so a typo is not ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    #[serde(default)]
    pub listen: Option<String>,
    /// Store URL of DESIGN §8, e.g. `sqlite://data/fundledger.db`.
    #[serde(default)]
    pub store: Option<String>,
    /// The C2SP signing key file (from `fundledger keygen`) used to sign the checkpoints served
    /// at `/v1/checkpoint`; none means no checkpoint is served.
    #[serde(default)]
    pub checkpoint_key: Option<PathBuf>,
    /// How often (ms) the service compares the store's head with what it serves, to follow
    /// other server processes on the same ledger when a notification was lost (default 1000).
    #[serde(default)]
    pub follow_interval_ms: Option<u64>,
    #[serde(default)]
    pub principals: Vec<Principal>,
}

/// A person or system that may call the service, and the hash of its bearer token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    pub id: String,
    pub role: Role,
    /// The bureau (责任单位) of an officer, e.g. `市财政局`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The USCC of an applicant's firm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firm: Option<String>,
    /// Lowercase hex BLAKE3 of the bearer token (never the token itself).
    pub token_blake3: String,
}

impl Principal {
    /// The actor every command of this principal is recorded under.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.id.clone(),
            role: self.role,
            unit: self.unit.clone(),
            firm: self.firm.clone(),
        }
    }

    /// The firm an applicant is confined to; `None` for every other role.
    pub fn own_firm(&self) -> Option<&str> {
        match self.role {
            Role::Applicant => self.firm.as_deref(),
            _ => None,
        }
    }
}

/// What is wrong with a configuration. Each message names the principal and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration is not valid: {0}")]
    Toml(String),
    #[error("principal #{index} has an empty id")]
    EmptyId { index: usize },
    #[error("principal id {id:?} appears more than once; ids must be unique")]
    DuplicateId { id: String },
    #[error(
        "principal {id:?}: token_blake3 must be 64 lowercase hex digits, the BLAKE3 hash of the \
         bearer token (e.g. `printf %s TOKEN | b3sum`), never the token itself"
    )]
    BadTokenHash { id: String },
    #[error("principals {id:?} and {other:?} have the same token; give each its own token")]
    DuplicateToken { id: String, other: String },
    #[error("principal {id:?}: role {role:?} is not one of admin, applicant, reviewer, approver, finance, government, auditor")]
    UnknownRole { id: String, role: String },
    #[error("principal {id:?} is an applicant and must name its firm: firm = \"<USCC>\"")]
    ApplicantWithoutFirm { id: String },
    #[error("principal {id:?}: firm {firm:?} is not a valid USCC (GB 32100-2015 check digit)")]
    InvalidFirm { id: String, firm: String },
    #[error("principal {id:?} has role {role} and names a firm; only applicants belong to a firm")]
    FirmOnOfficer { id: String, role: &'static str },
    #[error("principal {id:?} has role {role} and must name its unit (责任单位), e.g. unit = \"市工信局\"")]
    MissingUnit { id: String, role: &'static str },
    #[error("{field} is empty; leave it out to use the default")]
    EmptyField { field: &'static str },
}

impl Config {
    /// Reads and validates a configuration file's text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|error| ConfigError::Toml(error.to_string()))?;
        for (field, value) in [("listen", &config.listen), ("store", &config.store)] {
            if value.as_deref().is_some_and(|text| text.trim().is_empty()) {
                return Err(ConfigError::EmptyField { field });
            }
        }
        validate_principals(&config.principals)?;
        Ok(config)
    }
}

/// Checks a list of principals: ids unique and non-empty, token hashes well formed and
/// distinct, an applicant names a valid firm, an officer names its unit (admins and auditors
/// may omit it), and nobody but an applicant names a firm.
pub fn validate_principals(principals: &[Principal]) -> Result<(), ConfigError> {
    let mut ids: HashMap<&str, ()> = HashMap::new();
    let mut hashes: HashMap<&str, &str> = HashMap::new();
    for (index, principal) in principals.iter().enumerate() {
        let id = principal.id.as_str();
        if id.trim().is_empty() {
            return Err(ConfigError::EmptyId { index });
        }
        if ids.insert(id, ()).is_some() {
            return Err(ConfigError::DuplicateId { id: id.to_string() });
        }
        if parse_token_hash(&principal.token_blake3).is_none() {
            return Err(ConfigError::BadTokenHash { id: id.to_string() });
        }
        if let Some(other) = hashes.insert(principal.token_blake3.as_str(), id) {
            return Err(ConfigError::DuplicateToken {
                id: id.to_string(),
                other: other.to_string(),
            });
        }
        let blank = |field: &Option<String>| field.as_deref().is_none_or(|v| v.trim().is_empty());
        match principal.role {
            Role::Applicant => match principal.firm.as_deref() {
                None => return Err(ConfigError::ApplicantWithoutFirm { id: id.to_string() }),
                Some(firm) if !fundledger_ledger::uscc::is_valid(firm) => {
                    return Err(ConfigError::InvalidFirm {
                        id: id.to_string(),
                        firm: firm.to_string(),
                    })
                }
                Some(_) => {}
            },
            role => {
                if principal.firm.is_some() {
                    return Err(ConfigError::FirmOnOfficer {
                        id: id.to_string(),
                        role: role.as_str(),
                    });
                }
                let unit_optional = matches!(role, Role::Admin | Role::Auditor);
                if !unit_optional && blank(&principal.unit) {
                    return Err(ConfigError::MissingUnit {
                        id: id.to_string(),
                        role: role.as_str(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The 32-byte hash from 64 lowercase hex digits, or `None`.
pub(crate) fn parse_token_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64
        || !text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    {
        return None;
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

/// The `token_blake3` value for a bearer token: lowercase hex of its BLAKE3 hash.
pub fn token_hash_hex(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// Each demo principal with its bearer token, for printing (demo only).
pub type DemoTokens = Vec<(Principal, String)>;

/// **Demo only.** Mints a fresh random bearer token (hex of 32 random bytes) for each member
/// of `cast`, given as `(id, role, unit, firm)` with the role as written in a command
/// (`"finance"`, `"applicant"`, …); `&str` and `String` both do. Returns the principals to
/// serve (hashes only) and each principal with its token. The tokens live only in this
/// process's memory and in whatever the caller prints; a real deployment lists its principals
/// in the configuration file instead.
pub fn demo_principals<I, R, U, F>(
    cast: &[(I, R, Option<U>, Option<F>)],
) -> Result<(Vec<Principal>, DemoTokens), ConfigError>
where
    I: AsRef<str>,
    R: AsRef<str>,
    U: AsRef<str>,
    F: AsRef<str>,
{
    let mut rng = rand::thread_rng();
    let mut with_tokens = Vec::with_capacity(cast.len());
    for (id, role, unit, firm) in cast {
        let (id, role) = (id.as_ref(), role.as_ref());
        let role: Role = serde_json::from_value(serde_json::Value::String(role.to_string()))
            .map_err(|_| ConfigError::UnknownRole {
                id: id.to_string(),
                role: role.to_string(),
            })?;
        let mut bytes = [0u8; DEMO_TOKEN_BYTES];
        rng.fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let principal = Principal {
            id: id.to_string(),
            role,
            unit: unit.as_ref().map(|unit| unit.as_ref().to_string()),
            firm: firm.as_ref().map(|firm| firm.as_ref().to_string()),
            token_blake3: token_hash_hex(&token),
        };
        with_tokens.push((principal, token));
    }
    let principals: Vec<Principal> = with_tokens.iter().map(|(p, _)| p.clone()).collect();
    validate_principals(&principals)?;
    Ok((principals, with_tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRM: &str = "91350100M000100Y43";

    fn hash(token: &str) -> String {
        token_hash_hex(token)
    }

    fn check(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text)
    }

    #[test]
    fn the_design_example_loads() {
        let text = format!(
            "listen = \"127.0.0.1:8080\"\nstore = \"sqlite://data/fundledger.db\"\n\
             [[principals]]\nid = \"fin.wang\"\nrole = \"finance\"\nunit = \"市财政局\"\n\
             token_blake3 = \"{}\"\n\
             [[principals]]\nid = \"app.a\"\nrole = \"applicant\"\nfirm = \"{FIRM}\"\n\
             token_blake3 = \"{}\"\n\
             [[principals]]\nid = \"audit\"\nrole = \"auditor\"\ntoken_blake3 = \"{}\"\n",
            hash("a"),
            hash("b"),
            hash("c")
        );
        let config = check(&text).unwrap();
        assert_eq!(config.listen.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(config.principals.len(), 3);
        assert_eq!(config.principals[1].own_firm(), Some(FIRM));
        assert_eq!(
            config.principals[0].actor().unit.as_deref(),
            Some("市财政局")
        );
    }

    #[test]
    fn bad_configurations_are_refused() {
        let one = |fields: &str| format!("[[principals]]\nid = \"p\"\n{fields}\n");
        let h = hash("x");
        let cases: Vec<(String, &str)> = vec![
            (
                format!(
                    "lisen = \"x\"\n{}",
                    one("role=\"admin\"\ntoken_blake3=\"{h}\"")
                ),
                "Toml",
            ),
            (one(&format!("role=\"boss\"\ntoken_blake3=\"{h}\"")), "Toml"),
            (
                one(&format!("role=\"admin\"\ntoken_blake3=\"{h}\"\ncolour=1")),
                "Toml",
            ),
            (
                one(&format!(
                    "role=\"admin\"\ntoken_blake3=\"{}\"",
                    h.to_uppercase()
                )),
                "BadTokenHash",
            ),
            (one("role=\"admin\"\ntoken_blake3=\"abc\""), "BadTokenHash"),
            (
                one(&format!("role=\"applicant\"\ntoken_blake3=\"{h}\"")),
                "ApplicantWithoutFirm",
            ),
            (
                one(&format!(
                    "role=\"applicant\"\nfirm=\"123\"\ntoken_blake3=\"{h}\""
                )),
                "InvalidFirm",
            ),
            (
                one(&format!("role=\"finance\"\ntoken_blake3=\"{h}\"")),
                "MissingUnit",
            ),
            (
                one(&format!(
                    "role=\"reviewer\"\nunit=\" \"\ntoken_blake3=\"{h}\""
                )),
                "MissingUnit",
            ),
            (
                one(&format!(
                    "role=\"finance\"\nunit=\"市财政局\"\nfirm=\"{FIRM}\"\ntoken_blake3=\"{h}\""
                )),
                "FirmOnOfficer",
            ),
            (
                format!(
                    "{}{}",
                    one(&format!("role=\"admin\"\ntoken_blake3=\"{h}\"")),
                    one(&format!("role=\"admin\"\ntoken_blake3=\"{}\"", hash("y")))
                ),
                "DuplicateId",
            ),
            (
                format!(
                    "{}[[principals]]\nid=\"q\"\nrole=\"admin\"\ntoken_blake3=\"{h}\"\n",
                    one(&format!("role=\"admin\"\ntoken_blake3=\"{h}\""))
                ),
                "DuplicateToken",
            ),
            (
                one(&format!("id=\"\"\nrole=\"admin\"\ntoken_blake3=\"{h}\"")),
                "Toml",
            ),
            (
                format!(
                    "listen = \"\"\n{}",
                    one(&format!("role=\"admin\"\ntoken_blake3=\"{h}\""))
                ),
                "EmptyField",
            ),
        ];
        for (text, expected) in cases {
            let error = check(&text).expect_err(&text);
            let name = format!("{error:?}");
            assert!(name.starts_with(expected), "{text}\n→ {name}");
        }
        let empty_id = "[[principals]]\nid = \" \"\nrole = \"admin\"\ntoken_blake3 = \""
            .to_string()
            + &h
            + "\"\n";
        assert!(matches!(
            check(&empty_id),
            Err(ConfigError::EmptyId { index: 0 })
        ));
    }

    #[test]
    fn demo_tokens_are_random_and_hashed() {
        let cast = [
            ("fin.wang", "finance", Some("市财政局"), None),
            ("app.a", "applicant", None, Some(FIRM)),
        ];
        let (principals, tokens) = demo_principals(&cast).unwrap();
        assert_eq!(principals.len(), 2);
        for (principal, token) in &tokens {
            assert_eq!(token.len(), 64);
            assert_eq!(principal.token_blake3, token_hash_hex(token));
            assert_ne!(principal.token_blake3, *token);
        }
        let (_, again) = demo_principals(&cast).unwrap();
        // Owned strings, as the demo crate's cast comes.
        let owned = vec![(
            "fin.zhao".to_string(),
            "finance".to_string(),
            Some("市财政局".to_string()),
            None::<String>,
        )];
        assert_eq!(demo_principals(&owned).unwrap().0[0].id, "fin.zhao");
        assert_ne!(tokens[0].1, again[0].1);
        let bad: [(&str, &str, Option<&str>, Option<&str>); 1] = [("x", "boss", None, None)];
        assert!(matches!(
            demo_principals(&bad),
            Err(ConfigError::UnknownRole { .. })
        ));
    }
}
